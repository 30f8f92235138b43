//! Register words a Modbus device returns, through the SunSpec decoders (`decode_common`,
//! `decode_power` both directions, `decode_string`), and the meter chain head a verifier
//! restores from its CR status (`ChainHead::decode`). Nothing may panic; decoded values
//! stay in the ranges the agent relies on.
#![no_main]

use depin_meter::Direction;
use depin_meter::sunspec::{decode_common, decode_power, decode_string};
use depin_proof::meter::ChainHead;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let regs: Vec<u16> = data
        .chunks_exact(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]))
        .collect();
    let text = decode_string(&regs);
    assert!(!text.contains('\0') && text.trim() == text);
    if let Ok(common) = decode_common(&regs) {
        // 16 registers of text; each byte that is not UTF-8 becomes U+FFFD (3 bytes).
        assert!(common.serial.len() <= 3 * 32 && common.manufacturer.len() <= 3 * 32);
    }
    for direction in [Direction::Production, Direction::Consumption] {
        if let Ok(p) = decode_power(&regs, direction) {
            assert!(p.watts.is_finite() && p.watts >= 0.0);
        }
    }
    if let Ok(head) = ChainHead::decode(data) {
        assert_eq!(head.encode().as_slice(), data);
    }
});
