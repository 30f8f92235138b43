//! The datagram decoder must survive anything a peer sends: random bytes, valid headers
//! with random bodies, mutated valid datagrams, and well-formed JSON with hostile strings.
//! (The libFuzzer target fuzz/fuzz_targets/gwmp_decode.rs runs the same property without a
//! time bound.)

use depin_gwmp::codec::{self, Received, decode, encode, parse_datarate};
use depin_gwmp::semtech_udp::{MacAddress, Packet};
use proptest::prelude::*;

fn valid_push_data() -> Vec<u8> {
    let frame = Received {
        data: vec![0x40, 1, 2, 3, 4, 5],
        frequency_hz: 868_300_000,
        datarate: parse_datarate("SF12BW125").expect("datarate"),
        rssi_dbm: -110,
        snr_db: -7.25,
        tmst: 42,
    };
    encode(&codec::push_data(
        7,
        MacAddress::from([1, 2, 3, 4, 5, 6, 7, 8]),
        vec![codec::rxpk(&frame)],
    ))
    .expect("encodes")
}

/// Decoding never panics; whatever decodes also encodes.
fn check(bytes: &[u8]) {
    if let Ok(packet) = decode(bytes) {
        let again = encode(&packet).expect("a decoded packet encodes");
        let _: Packet = decode(&again).expect("and decodes again");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check(&bytes);
    }

    #[test]
    fn valid_header_random_body(
        token in any::<u16>(),
        id in 0u8..7,
        eui in any::<[u8; 8]>(),
        body in ".{0,300}",
    ) {
        let mut bytes = vec![2, (token >> 8) as u8, token as u8, id];
        bytes.extend_from_slice(&eui);
        bytes.extend_from_slice(body.as_bytes());
        check(&bytes);
    }

    #[test]
    fn mutated_valid_datagram(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = valid_push_data();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        check(&bytes);
        let keep = cut.index(bytes.len());
        check(&bytes[..keep]);
    }

    #[test]
    fn hostile_strings_in_valid_json(
        // Multi-byte characters near the front: semtech-udp splits data rates at byte 3/4.
        datr in "[ -~]{0,4}[^\\x00-\\x7f]{1,6}[ -~]{0,4}|\\PC{0,12}",
        // Valid values half the time, so parsing reaches the data rate (fields are parsed
        // in key order and `codr` sorts before `datr`).
        codr in "4/5|\\PC{0,6}",
        modu in "LORA|\\PC{0,6}",
    ) {
        let json = serde_json::json!({"rxpk": [{
            "tmst": 1, "chan": 0, "rfch": 0, "freq": 868.1, "stat": 1, "modu": modu,
            "datr": datr, "codr": codr, "rssi": -35, "lsnr": 5.1, "size": 0, "data": ""
        }]});
        let mut bytes = vec![2, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        bytes.extend_from_slice(json.to_string().as_bytes());
        check(&bytes);
        let mut resp = vec![2, 0, 1, 3];
        let txpk = serde_json::json!({"txpk": {
            "imme": true, "freq": 868.1, "rfch": 0, "powe": 14, "modu": modu, "datr": datr,
            "codr": codr, "ipol": false, "size": 0, "data": ""
        }});
        resp.extend_from_slice(txpk.to_string().as_bytes());
        check(&resp);
    }
}
