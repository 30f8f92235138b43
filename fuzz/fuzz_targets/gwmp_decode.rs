//! Any datagram: decoding must not panic, whatever decodes must re-encode and decode, and
//! the direction-specific decoders must agree with `decode`.
#![no_main]

use depin_gwmp::codec::{decode, decode_downlink, decode_uplink, encode};
use depin_gwmp::semtech_udp::Packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoded = decode(data);
    let (up, down) = (decode_uplink(data), decode_downlink(data));
    match &decoded {
        Ok(Packet::Up(_)) => assert!(up.is_ok() && down.is_err()),
        Ok(Packet::Down(_)) => assert!(down.is_ok() && up.is_err()),
        // A refusal is the same refusal whichever decoder is asked.
        Err(e) => assert!(up.as_ref().err() == Some(e) && down.as_ref().err() == Some(e)),
    }
    if let Ok(packet) = decoded {
        let again = encode(&packet).expect("a decoded packet encodes");
        // Decodes, but need not re-encode to the same bytes: serde_json's float parsing is
        // not exact (no `float_roundtrip`), so a huge `ackr` can come back one ulp off.
        decode(&again).expect("and decodes again");
    }
});
