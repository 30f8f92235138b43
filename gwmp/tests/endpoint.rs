//! The endpoint against a hand-driven forwarder socket: acks, events, downlinks matched to
//! TX_ACK tokens (accepted, refused, power-adjusted, unanswered), and garbage survived.

use std::time::Duration;

use depin_gwmp::codec::{self, Received, decode_downlink, encode, immediate_txpk, parse_datarate};
use depin_gwmp::semtech_udp::{Down, MacAddress, pull_data, tx_ack};
use depin_gwmp::{DownlinkError, Endpoint, EndpointConfig, Event};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::Receiver;

const MAC: [u8; 8] = [0xaa, 0x55, 0x5a, 0, 0, 0, 0, 1];

async fn setup(timeout_ms: u64) -> (Endpoint, Receiver<Event>, UdpSocket) {
    let config = EndpointConfig {
        downlink_timeout: Duration::from_millis(timeout_ms),
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
    ] {
        forwarder.send(junk).await.expect("send");
    }
    // Still alive: a real PULL_DATA is answered after the junk.
    connect(&forwarder, &mut events).await;
    let counters = endpoint.counters();
    assert_eq!(counters.malformed_total(), 6, "{counters:?}");
    let by_kind: std::collections::BTreeMap<_, _> = counters.malformed.into_iter().collect();
    assert_eq!(by_kind["too_short"], 2);
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
