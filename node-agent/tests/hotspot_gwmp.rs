//! The hotspot role's packet-forwarder side, without a verifier: a forwarder's PUSH_DATA
//! carrying a beacon-sized frame becomes a witness report (RSSI and SNR observed), other
//! frames do not, and garbage datagrams are counted as malformed without hurting the agent.
//! Only the configured forwarder is served: the same frames from another source address
//! or gateway EUI are dropped, counted by reason, and witness nothing.

#![allow(clippy::unwrap_used)]

use depin_agent::Agent;
use depin_gwmp::codec::{self, Received, parse_datarate, parse_eui};
use depin_proof::identity::NodeKey;
use depin_proto::config::{AgentConfig, HotspotConfig, NodeRef, Role, VerifierConfig};
use std::time::Duration;
use tokio::sync::watch;

fn config(port: u16) -> AgentConfig {
    AgentConfig {
        role: Role::Hotspot,
        node: NodeRef {
            kind: "HotspotGateway".into(),
            name: "hs".into(),
            namespace: "fleet".into(),
            wallet: "w".into(),
        },
        // Nothing listens here: the session keeps retrying; the forwarder side still runs.
        verifier: VerifierConfig {
            endpoint: "http://127.0.0.1:9".into(),
            public_key: None,
        },
        identity_key_file: "unused".into(),
        http_port: 0,
        hotspot: Some(HotspotConfig {
            region: "EU868".into(),
            latitude: 52.37,
            longitude: 4.89,
            antenna_gain_dbi: 1.2,
            elevation_meters: 5.0,
            packet_forwarder_port: port,
            gateway_eui: Some("00000000000000AA".into()),
            // The honest forwarder sends from 127.0.0.2; the injectors from elsewhere.
            source_cidrs: vec!["127.0.0.2/32".into()],
        }),
        storage: None,
        gpu: None,
        meter: None,
    }
}

fn frame(len: usize) -> Received {
    Received {
        data: vec![7; len],
        frequency_hz: 868_100_000,
        datarate: parse_datarate("SF9BW125").unwrap(),
        rssi_dbm: -97,
        snr_db: 4.5,
        tmst: 1_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beacon_sized_frames_become_witnesses_and_garbage_is_counted() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = config(port);
    let metrics = depin_agent::metrics::AgentMetrics::new(&config).unwrap();
    let state = depin_agent::http::HttpState::new(metrics.clone());
    let (stop, stop_rx) = watch::channel(false);
    let agent = Agent {
        config,
        key: NodeKey::from_seed([9; 32]),
    };
    let probe = state.clone();
    let task = tokio::spawn({
        let metrics = metrics.clone();
        async move { depin_agent::prove(&agent, metrics, state, stop_rx).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let forwarder = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let target = ("127.0.0.1", port);
    forwarder.send_to(b"\x02garbage", target).await.unwrap();
    // Issue 13: the 12-byte PUSH_DATA that panics semtech-udp 0.12 used to kill the
    // receive task for good while /readyz stayed 200. The PUSH_ACK below shows the agent
    // still serves its forwarder after it.
    forwarder
        .send_to(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], target)
        .await
        .unwrap();
    let mac = parse_eui("00000000000000aa").unwrap();
    // Two injectors first: the forwarder's EUI from another address, and another EUI from
    // the forwarder's address. Each offers a beacon-sized frame the agent never heard.
    let injected = |mac| codec::encode(&codec::push_data(9, mac, vec![codec::rxpk(&frame(51))]));
    let other_pod = tokio::net::UdpSocket::bind("127.0.0.3:0").await.unwrap();
    other_pod
        .send_to(&injected(mac).unwrap(), target)
        .await
        .unwrap();
    let other_eui = parse_eui("00000000000000bb").unwrap();
    forwarder
        .send_to(&injected(other_eui).unwrap(), target)
        .await
        .unwrap();
    let push = codec::push_data(
        1,
        mac,
        vec![codec::rxpk(&frame(51)), codec::rxpk(&frame(23))],
    );
    forwarder
        .send_to(&codec::encode(&push).unwrap(), target)
        .await
        .unwrap();
    // The PUSH_ACK comes back to the forwarder.
    let mut ack = [0u8; 64];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), forwarder.recv_from(&mut ack))
        .await
        .expect("PUSH_ACK in time")
        .unwrap();
    assert_eq!((n, ack[3]), (4, 0x01), "PUSH_ACK");

    let packets = |kind: &str| {
        metrics
            .hotspot_gwmp_packets
            .with_label_values(&[kind])
            .get()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while packets("malformed") < 2 || packets("rxpk") < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "counters synced: malformed {} rxpk {}",
            packets("malformed"),
            packets("rxpk")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        metrics.hotspot_witnesses_reported.get(),
        1,
        "only the 51-byte frame"
    );
    assert_eq!(metrics.hotspot_witness_rssi.get_sample_count(), 1);
    assert!((metrics.hotspot_witness_rssi.get_sample_sum() + 97.0).abs() < 1e-9);
    assert!((metrics.hotspot_witness_snr.get_sample_sum() - 4.5).abs() < 1e-9);
    assert_eq!(packets("push_data"), 1);
    assert!(probe.is_ready(), "ready: the receive loop never died");
    assert_eq!(metrics.hotspot_gwmp_receive_restarts.get(), 0);
    let dropped = |reason: &str| {
        metrics
            .hotspot_gwmp_dropped
            .with_label_values(&[reason])
            .get()
    };
    while dropped("source") < 1 || dropped("gateway_eui") < 1 {
        assert!(tokio::time::Instant::now() < deadline, "drops counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        metrics.hotspot_witnesses_reported.get(),
        1,
        "injected frames witnessed nothing"
    );
    let mut nothing = [0u8; 16];
    assert!(
        tokio::time::timeout(
            Duration::from_millis(200),
            other_pod.recv_from(&mut nothing)
        )
        .await
        .is_err(),
        "an injector gets no PUSH_ACK"
    );

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .unwrap()
        .unwrap();
}
