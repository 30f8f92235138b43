//! Any datagram: decoding must not panic, and whatever decodes must re-encode and decode.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = depin_gwmp::codec::decode(data) {
        let again = depin_gwmp::codec::encode(&packet).expect("a decoded packet encodes");
        depin_gwmp::codec::decode(&again).expect("and decodes again");
    }
});
