//! Byte-level round trips of every GWMP packet type: exact header bytes, the JSON part
//! compared as JSON, decode, and re-encode to the same bytes. Plus literal datagrams in
//! the shapes PROTOCOL.TXT shows, as a forwarder would send them.

use depin_gwmp::codec::{
    self, DecodeError, Received, decode, decode_downlink, decode_uplink, encode, immediate_txpk,
    parse_datarate, parse_eui,
};
use depin_gwmp::semtech_udp::{
    Down, MacAddress, Packet, SerializablePacket, Up, pull_ack, pull_data, pull_resp, push_ack,
    push_data, tx_ack,
};
use serde_json::{Value, json};

const EUI: [u8; 8] = [0xaa, 0x55, 0x5a, 0x00, 0x00, 0x00, 0x01, 0x01];

fn mac() -> MacAddress {
    MacAddress::from(EUI)
}

/// Encodes, checks the header and the JSON body, decodes, and re-encodes identically.
fn round_trip(packet: &impl SerializablePacket, header: &[u8], body: Option<Value>) -> Packet {
    let bytes = encode(packet).expect("encodes");
    assert_eq!(&bytes[..header.len()], header, "header bytes");
    match body {
        Some(want) => {
            let got: Value = serde_json::from_slice(&bytes[header.len()..]).expect("JSON body");
            assert_eq!(got, want);
        }
        None => assert_eq!(bytes.len(), header.len(), "no body"),
    }
    let decoded = decode(&bytes).expect("decodes");
    assert_eq!(encode(&decoded).expect("re-encodes"), bytes, "stable bytes");
    decoded
}

fn up_header(token: u16, id: u8) -> Vec<u8> {
    let mut h = vec![2, (token >> 8) as u8, token as u8, id];
    h.extend_from_slice(&EUI);
    h
}

#[test]
fn push_data_with_rxpk_and_stat() {
    let frame = Received {
        data: vec![0x40, 1, 2, 3, 4, 0, 0, 0],
        frequency_hz: 868_100_000,
        datarate: parse_datarate("SF9BW125").expect("datarate"),
        rssi_dbm: -97,
        snr_db: 7.5,
        tmst: 3_512_348_611,
    };
    let mut packet = codec::push_data(0xbeef, mac(), vec![codec::rxpk(&frame)]);
    packet.data.stat = Some(push_data::Stat {
        time: "2014-01-12 08:59:28 GMT".into(),
        lati: Some(46.24),
        long: Some(3.2523),
        alti: Some(145),
        rxnb: 2,
        rxok: 2,
        rxfw: 2,
        ackr: Some(100.0),
        dwnb: 2,
        txnb: 2,
        temp: None,
    });
    let body = json!({
        "rxpk": [{
            "chan": 0, "codr": "4/5", "data": "QAECAwQAAAA=", "datr": "SF9BW125",
            "freq": 868.1, "lsnr": 7.5, "modu": "LORA", "rfch": 0, "rssi": -97,
            "rssis": -97, "size": 8, "stat": 1, "tmst": 3_512_348_611u32
        }],
        "stat": {
            "time": "2014-01-12 08:59:28 GMT", "lati": 46.24, "long": 3.2523, "alti": 145,
            "rxnb": 2, "rxok": 2, "rxfw": 2, "ackr": 100.0, "dwnb": 2, "txnb": 2, "temp": null
        }
    });
    let Packet::Up(Up::PushData(decoded)) = round_trip(&packet, &up_header(0xbeef, 0), Some(body))
    else {
        panic!("not PUSH_DATA");
    };
    let rxpk = &decoded.data.rxpk.expect("rxpk")[0];
    assert_eq!(codec::received(rxpk), frame);
}

#[test]
fn acks_and_pull_data() {
    round_trip(
        &push_ack::Packet {
            random_token: 0x0102,
        },
        &[2, 1, 2, 1],
        None,
    );
    round_trip(
        &pull_data::Packet {
            random_token: 0x0a0b,
            gateway_mac: mac(),
        },
        &up_header(0x0a0b, 2),
        None,
    );
    round_trip(
        &pull_ack::Packet {
            random_token: 0xfffe,
        },
        &[2, 0xff, 0xfe, 4],
        None,
    );
}

#[test]
fn pull_resp_carries_a_beacon_txpk() {
    let txpk = immediate_txpk(
        vec![9; 51],
        867_500_000,
        parse_datarate("SF9BW125").expect("datarate"),
        16,
    );
    let packet = pull_resp::Packet {
        random_token: 0x1234,
        data: pull_resp::Data::from_txpk(txpk),
    };
    let body = json!({"txpk": {
        "imme": true, "freq": 867.5, "rfch": 0, "powe": 16, "modu": "LORA",
        "datr": "SF9BW125", "codr": "4/5", "ipol": false, "prea": null,
        "data": "CQkJ".repeat(17), "size": 51
    }});
    let Packet::Down(Down::PullResp(decoded)) =
        round_trip(&packet, &[2, 0x12, 0x34, 3], Some(body))
    else {
        panic!("not PULL_RESP");
    };
    assert!(decoded.data.txpk.is_immediate());
    assert_eq!(decoded.data.txpk.data.data(), &[9; 51][..]);
}

#[test]
fn tx_ack_success_error_and_warning() {
    let ack = |data| tx_ack::Packet {
        random_token: 0x4242,
        gateway_mac: mac(),
        data,
    };
    let header = up_header(0x4242, 5);
    let cases = [
        (
            tx_ack::Data::default(),
            json!({"txpk_ack": {"error": "NONE"}}),
            Ok(None),
        ),
        (
            tx_ack::Data::new_with_error(tx_ack::Error::TooLate),
            json!({"txpk_ack": {"error": "TOO_LATE"}}),
            Err(tx_ack::Error::TooLate),
        ),
        (
            tx_ack::Data::new_with_error(tx_ack::Error::AdjustedTransmitPower(Some(14), Some(77))),
            json!({"txpk_ack": {"warn": "TX_POWER", "value": 14, "tmst": 77}}),
            Err(tx_ack::Error::AdjustedTransmitPower(Some(14), Some(77))),
        ),
    ];
    for (data, body, want) in cases {
        let Packet::Up(Up::TxAck(decoded)) = round_trip(&ack(data), &header, Some(body)) else {
            panic!("not TX_ACK");
        };
        assert_eq!(decoded.get_result(), want);
    }
}

#[test]
fn literal_forwarder_datagrams() {
    let mut push = up_header(0x7777, 0);
    push.extend_from_slice(
        br#"{"rxpk":[{"time":"2013-03-31T16:21:17.528002Z","tmst":3512348611,"chan":2,"rfch":0,"freq":866.349812,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/6","rssi":-35,"lsnr":5.1,"size":4,"data":"AQIDBA=="}]}"#,
    );
    let Up::PushData(p) = decode_uplink(&push).expect("PUSH_DATA") else {
        panic!("kind");
    };
    let frame = codec::received(&p.data.rxpk.expect("rxpk")[0]);
    assert_eq!(
        (frame.frequency_hz, frame.rssi_dbm, frame.data),
        (866_349_812, -35, vec![1, 2, 3, 4])
    );

    // TX_ACK with no JSON (older forwarders), and with a trailing NUL.
    let bare = up_header(1, 5);
    let Up::TxAck(ack) = decode_uplink(&bare).expect("bare TX_ACK") else {
        panic!("kind");
    };
    assert_eq!(ack.get_result(), Ok(None));
    let mut nul = up_header(1, 5);
    nul.extend_from_slice(b"{\"txpk_ack\":{\"error\":\"COLLISION_PACKET\"}}\0");
    let Up::TxAck(ack) = decode_uplink(&nul).expect("TX_ACK") else {
        panic!("kind");
    };
    assert_eq!(ack.get_result(), Err(tx_ack::Error::CollisionPacket));

    assert!(matches!(
        decode_downlink(&[2, 0, 1, 1]),
        Ok(Down::PushAck(_))
    ));
    assert!(matches!(
        decode_uplink(&[2, 0, 1, 4]),
        Err(DecodeError::Direction(_))
    ));
}

#[test]
fn malformed_datagrams_are_named() {
    let cases: [(&[u8], &str); 5] = [
        (&[2, 0], "too_short"),
        (&[1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0], "version"),
        (&[2, 0, 0, 9], "identifier"),
        (&[2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, b'{'], "json"),
        (&[2, 0, 0, 2, 1, 2], "too_short"),
    ];
    for (bytes, kind) in cases {
        assert_eq!(
            decode(bytes).map(|_| ()).map_err(|e| e.kind()),
            Err(kind),
            "{bytes:?}"
        );
    }
}

/// semtech-udp's data-rate parser slices by byte offset; a multi-byte character at the
/// split point would panic inside it. The codec refuses non-ASCII JSON first.
#[test]
fn non_ascii_datarate_is_refused_not_a_panic() {
    let mut push = up_header(1, 0);
    push.extend_from_slice(
        r#"{"rxpk":[{"tmst":1,"chan":0,"rfch":0,"freq":868.1,"stat":1,"modu":"LORA","datr":"aééééé","codr":"4/5","rssi":-35,"lsnr":5.1,"size":0,"data":""}]}"#
            .as_bytes(),
    );
    assert_eq!(decode(&push).map(|_| ()), Err(DecodeError::NotAscii));
    assert_eq!(parse_datarate("aééééé"), None);
}

#[test]
fn eui_text() {
    assert_eq!(parse_eui("AA555A0000000101"), Some(mac()));
    assert_eq!(parse_eui("AA555A00000001"), None);
    assert_eq!(parse_eui("AA555A000000010G"), None);
}

/// Found by fuzz target `gwmp_decode`: an escaped non-ASCII character in a string decodes,
/// and serde_json re-encoded it raw, which `decode` refuses (`NotAscii`).
#[test]
fn escaped_non_ascii_survives_a_re_encode() {
    let mut datagram = up_header(0x1234, 0);
    datagram.extend_from_slice(
        br#"{"stat":{"time":"\u00e9\ud83d\ude00","rxnb":1,"rxok":1,"rxfw":0,"dwnb":5,"txnb":0}}"#,
    );
    let packet = decode(&datagram).expect("escaped characters are ASCII on the wire");
    let again = encode(&packet).expect("encodes");
    assert!(
        again[12..].is_ascii(),
        "{}",
        String::from_utf8_lossy(&again)
    );
    let back = decode(&again).expect("and decodes again");
    let Packet::Up(Up::PushData(push)) = back else {
        panic!("PUSH_DATA")
    };
    assert_eq!(push.data.stat.expect("stat").time, "\u{e9}\u{1f600}");
}
