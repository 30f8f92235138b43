//! The endpoint against a hand-driven forwarder socket: acks, events, downlinks matched to
//! TX_ACK tokens (accepted, refused, power-adjusted, unanswered), and garbage survived.

use std::time::Duration;

use depin_gwmp::codec::{self, Received, decode_downlink, encode, immediate_txpk, parse_datarate};
use depin_gwmp::semtech_udp::{Down, MacAddress, pull_data, tx_ack};
use depin_gwmp::{Admission, DownlinkError, Endpoint, EndpointConfig, Event};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::Receiver;

const MAC: [u8; 8] = [0xaa, 0x55, 0x5a, 0, 0, 0, 0, 1];

async fn setup(timeout_ms: u64) -> (Endpoint, Receiver<Event>, UdpSocket) {
    setup_admitting(timeout_ms, Admission::Any).await
}

async fn setup_admitting(
    timeout_ms: u64,
    admission: Admission,
) -> (Endpoint, Receiver<Event>, UdpSocket) {
    let config = EndpointConfig {
        downlink_timeout: Duration::from_millis(timeout_ms),
        admission,
        ..EndpointConfig::default()
    };
    let (endpoint, events) = Endpoint::bind("127.0.0.1:0", config).await.expect("binds");
    let forwarder = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
    forwarder
        .connect(endpoint.local_addr().expect("addr"))
        .await
        .expect("connects");
    (endpoint, events, forwarder)
}

async fn recv(socket: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 65_536];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
        .await
        .expect("an answer in time")
        .expect("recv");
    buf.truncate(n);
    buf
}

async fn next_event(events: &mut Receiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("an event in time")
        .expect("channel open")
}

fn frame() -> Received {
    Received {
        data: vec![1, 2, 3],
        frequency_hz: 868_500_000,
        datarate: parse_datarate("SF9BW125").expect("datarate"),
        rssi_dbm: -101,
        snr_db: 3.5,
        tmst: 99,
    }
}

/// Sends PULL_DATA and checks PULL_ACK + the connection event.
async fn connect(forwarder: &UdpSocket, events: &mut Receiver<Event>) {
    let pull = pull_data::Packet {
        random_token: 0x2222,
        gateway_mac: MacAddress::from(MAC),
    };
    forwarder
        .send(&encode(&pull).expect("encodes"))
        .await
        .expect("send");
    assert_eq!(recv(forwarder).await, vec![2, 0x22, 0x22, 4], "PULL_ACK");
    assert!(matches!(
        next_event(events).await,
        Event::GatewayConnected { .. }
    ));
}

#[tokio::test]
async fn push_data_is_acked_and_reported() {
    let (endpoint, mut events, forwarder) = setup(500).await;
    let push = codec::push_data(0x1111, MacAddress::from(MAC), vec![codec::rxpk(&frame())]);
    forwarder
        .send(&encode(&push).expect("encodes"))
        .await
        .expect("send");
    assert_eq!(
        recv(&forwarder).await,
        vec![2, 0x11, 0x11, 1],
        "PUSH_ACK, same token"
    );
    let Event::Rxpk { gateway, rxpk } = next_event(&mut events).await else {
        panic!("expected rxpk");
    };
    assert_eq!(gateway, MacAddress::from(MAC));
    assert_eq!(codec::received(&rxpk), frame());
    let counters = endpoint.counters();
    assert_eq!((counters.push_data, counters.rxpk), (1, 1));
}

#[tokio::test]
async fn downlinks_are_matched_to_tx_ack_tokens() {
    let (endpoint, mut events, forwarder) = setup(300).await;
    assert!(matches!(
        endpoint.send_downlink(None, beacon()).await,
        Err(DownlinkError::NoGateway)
    ));
    connect(&forwarder, &mut events).await;

    let answers = [
        tx_ack::Data::default(),
        tx_ack::Data::new_with_error(tx_ack::Error::InvalidTransmitFrequency),
        tx_ack::Data::new_with_error(tx_ack::Error::AdjustedTransmitPower(Some(14), None)),
    ];
    for answer in answers {
        let sending = tokio::spawn({
            let endpoint = endpoint.clone();
            async move { endpoint.send_downlink(None, beacon()).await }
        });
        let Ok(Down::PullResp(resp)) = decode_downlink(&recv(&forwarder).await) else {
            panic!("expected PULL_RESP");
        };
        assert_eq!(resp.data.txpk.data.data(), &[7; 51][..]);
        // A stray TX_ACK with another token first: it must not complete this downlink.
        let stray = tx_ack::Packet {
            random_token: resp.random_token.wrapping_add(1),
            gateway_mac: MacAddress::from(MAC),
            data: tx_ack::Data::default(),
        };
        forwarder
            .send(&encode(&stray).expect("encodes"))
            .await
            .expect("send");
        let ack = tx_ack::Packet {
            random_token: resp.random_token,
            gateway_mac: MacAddress::from(MAC),
            data: answer,
        };
        forwarder
            .send(&encode(&ack).expect("encodes"))
            .await
            .expect("send");
        let outcome = sending.await.expect("task");
        match outcome {
            Ok(accepted) if accepted.adjusted_power_dbm.is_none() => {}
            Ok(accepted) => assert_eq!(accepted.adjusted_power_dbm, Some(14)),
            Err(DownlinkError::Rejected(e)) => {
                assert_eq!(e, tx_ack::Error::InvalidTransmitFrequency);
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    // Nobody answers: the downlink times out (the three stray acks were counted unmatched).
    let outcome = endpoint.send_downlink(None, beacon()).await;
    assert!(
        matches!(outcome, Err(DownlinkError::Timeout(_))),
        "{outcome:?}"
    );
    let counters = endpoint.counters();
    assert_eq!(counters.pull_resp, 4);
    assert_eq!(counters.tx_ack, 6);
    assert_eq!(counters.tx_ack_errors, 1);
    assert_eq!(counters.tx_ack_unmatched, 3);
}

#[tokio::test]
async fn garbage_is_counted_and_survived() {
    let (endpoint, mut events, forwarder) = setup(500).await;
    for junk in [
        &b""[..],
        &[2, 0][..],
        &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
        &[2, 0, 0, 0x42][..],
        &[2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, b'{', b'x'][..],
        &[2, 0, 0, 1][..], // a PUSH_ACK sent to the server
        &POISON[..],
    ] {
        forwarder.send(junk).await.expect("send");
    }
    // Still alive: a real PULL_DATA is answered after the junk.
    connect(&forwarder, &mut events).await;
    let counters = endpoint.counters();
    assert_eq!(counters.malformed_total(), 7, "{counters:?}");
    assert_eq!(counters.receive_restarts, 0, "the guard refused it first");
    let by_kind: std::collections::BTreeMap<_, _> = counters.malformed.into_iter().collect();
    assert_eq!(by_kind["too_short"], 3);
    assert_eq!(by_kind["parser_panic"], 0);
    assert_eq!(by_kind["version"], 1);
    assert_eq!(by_kind["identifier"], 1);
    assert_eq!(by_kind["json"], 1);
    assert_eq!(by_kind["direction"], 1);
}

fn beacon() -> depin_gwmp::semtech_udp::pull_resp::TxPk {
    immediate_txpk(
        vec![7; 51],
        868_100_000,
        parse_datarate("SF9BW125").expect("datarate"),
        16,
    )
}

/// The 12-byte PUSH_DATA that panics semtech-udp 0.12's parser (`buf[8..7]`): version 2,
/// token 0, PUSH_DATA, gateway EUI ending in 0x00, no JSON (issue 13).
const POISON: [u8; 12] = [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// Regression for issue 13: before the guard, this one datagram killed the receive task
/// and no PUSH_DATA was ever acknowledged again. Now a valid PUSH_DATA sent right after
/// it is acknowledged and reported.
#[tokio::test]
async fn the_semtech_udp_panic_datagram_does_not_silence_the_endpoint() {
    let (endpoint, mut events, forwarder) = setup(500).await;
    assert!(
        std::panic::catch_unwind(|| depin_gwmp::semtech_udp::Packet::parse(&POISON)).is_err(),
        "semtech-udp still panics on it; when this fails upstream fixed it"
    );
    forwarder.send(&POISON).await.expect("send");
    let push = codec::push_data(0x3333, MacAddress::from(MAC), vec![codec::rxpk(&frame())]);
    forwarder
        .send(&encode(&push).expect("encodes"))
        .await
        .expect("send");
    assert_eq!(recv(&forwarder).await, vec![2, 0x33, 0x33, 1], "PUSH_ACK");
    assert!(matches!(next_event(&mut events).await, Event::Rxpk { .. }));
    let counters = endpoint.counters();
    assert_eq!((counters.push_data, counters.receive_restarts), (1, 0));
    assert_eq!(counters.malformed_total(), 1, "{counters:?}");
    assert!(endpoint.receiving());
}

/// A pinned endpoint answers and reports only its forwarder: the right EUI from an
/// allowed source. The same PUSH_DATA with another EUI, or the right EUI from a source
/// outside the networks, is dropped unanswered and counted by reason.
#[tokio::test]
async fn only_the_pinned_forwarder_is_served() {
    let loopback: depin_gwmp::IpNet = "127.0.0.0/8".parse().expect("cidr");
    let elsewhere: depin_gwmp::IpNet = "10.0.0.0/8".parse().expect("cidr");
    let pinned = |sources| Admission::Pinned {
        gateway: MacAddress::from(MAC),
        sources,
    };
    let push = |mac: [u8; 8]| {
        encode(&codec::push_data(
            0x4444,
            MacAddress::from(mac),
            vec![codec::rxpk(&frame())],
        ))
        .expect("encodes")
    };
    let mut other = MAC;
    other[7] = 2;

    // Right source, wrong EUI: dropped (its PULL_DATA registers no downlink target);
    // then the forwarder itself is served. One socket's datagrams are handled in order, so
    // the PUSH_ACK for the last proves the first two were seen.
    let (endpoint, mut events, forwarder) = setup_admitting(500, pinned(vec![loopback])).await;
    let wrong_pull = pull_data::Packet {
        random_token: 0x6666,
        gateway_mac: MacAddress::from(other),
    };
    forwarder
        .send(&encode(&wrong_pull).expect("encodes"))
        .await
        .expect("send");
    forwarder.send(&push(other)).await.expect("send");
    forwarder.send(&push(MAC)).await.expect("send");
    assert_eq!(
        recv(&forwarder).await,
        vec![2, 0x44, 0x44, 1],
        "one PUSH_ACK"
    );
    let Event::Rxpk { gateway, .. } = next_event(&mut events).await else {
        panic!("expected rxpk");
    };
    assert_eq!(
        gateway,
        MacAddress::from(MAC),
        "only the pinned EUI's frame"
    );
    let counters = endpoint.counters();
    assert_eq!(
        (counters.push_data, counters.pull_data, counters.rxpk),
        (1, 0, 1)
    );
    let refused: std::collections::BTreeMap<_, _> = counters.refused.into_iter().collect();
    assert_eq!((refused["gateway_eui"], refused["source"]), (2, 0));
    assert!(endpoint.gateways().is_empty());

    // Right EUI from outside the networks (loopback is not in 10/8): nothing at all, not
    // even a PULL_DATA registers it as the downlink target.
    let (endpoint, _events, forwarder) = setup_admitting(500, pinned(vec![elsewhere])).await;
    let pull = pull_data::Packet {
        random_token: 0x5555,
        gateway_mac: MacAddress::from(MAC),
    };
    forwarder
        .send(&encode(&pull).expect("encodes"))
        .await
        .expect("send");
    forwarder.send(&push(MAC)).await.expect("send");
    // Nothing is answered, so wait (bounded) for the counter instead.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while endpoint.counters().refused_total() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let counters = endpoint.counters();
    let refused: std::collections::BTreeMap<_, _> = counters.refused.into_iter().collect();
    assert_eq!(refused["source"], 2, "{counters:?}");
    assert_eq!((counters.push_data, counters.pull_data), (0, 0));
    assert!(endpoint.gateways().is_empty());

    // No forwarder configured: everything is refused.
    let (endpoint, _events, forwarder) = setup_admitting(500, Admission::Closed).await;
    forwarder.send(&push(MAC)).await.expect("send");
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while endpoint.counters().refused_total() < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused: std::collections::BTreeMap<_, _> =
        endpoint.counters().refused.into_iter().collect();
    assert_eq!(refused["no_forwarder"], 1);
}

/// Downlink tokens are drawn at random, not counted up: 64 downlinks in a row are not
/// consecutive (a counter would make every one predictable from the last).
#[tokio::test]
async fn downlink_tokens_are_not_sequential() {
    let (endpoint, mut events, forwarder) = setup(50).await;
    connect(&forwarder, &mut events).await;
    let mut tokens = Vec::new();
    for _ in 0..64 {
        let sending = tokio::spawn({
            let endpoint = endpoint.clone();
            async move { endpoint.send_downlink(None, beacon()).await }
        });
        let Ok(Down::PullResp(resp)) = decode_downlink(&recv(&forwarder).await) else {
            panic!("expected PULL_RESP");
        };
        tokens.push(resp.random_token);
        let _ = sending.await;
    }
    let steps = tokens
        .windows(2)
        .filter(|w| w[1] == w[0].wrapping_add(1))
        .count();
    // Random u16s: P(a given step is +1) = 1/65 536, so even 2 of 63 is ~5e-7.
    assert!(steps < 2, "{steps} sequential steps in {tokens:?}");
    let distinct: std::collections::BTreeSet<_> = tokens.iter().collect();
    assert!(distinct.len() > 60, "{tokens:?}");
}
