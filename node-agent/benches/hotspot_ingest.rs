//! GWMP uplink ingest of the whole hotspot agent on loopback: PUSH_DATA datagrams, each with
//! one beacon-sized rxpk, sent to a running agent (`depin_agent::prove`, hotspot role) that
//! decodes them, answers PUSH_ACK and turns every frame into a signed witness report
//! queued for the verifier. Measured against the raw primitive in the same run: a UDP
//! socket answering each datagram with a 4-byte ack without decoding it.
//!
//! Rates are the median of three windows of `DEPIN_BENCH_SECONDS` (default 1) each; the
//! witness rate is what the agent signed over all windows.
//! Run: `cargo bench -p depin-agent --bench hotspot_ingest`

use depin_agent::Agent;
use depin_gwmp::codec::{self, Received, encode, parse_datarate};
use depin_gwmp::semtech_udp::MacAddress;
use depin_proof::identity::NodeKey;
use depin_proto::config::{AgentConfig, HotspotConfig, NodeRef, Role, VerifierConfig};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Datagrams in flight (as in the endpoint bench, `gwmp/benches/ingest.rs`).
const WINDOW: usize = 32;

fn config(port: u16) -> AgentConfig {
    AgentConfig {
        role: Role::Hotspot,
        node: NodeRef {
            kind: "HotspotGateway".into(),
            name: "bench".into(),
            namespace: "bench".into(),
            wallet: "w".into(),
        },
        // No verifier: reports wait in the outbox; the forwarder side runs regardless.
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
            gateway_eui: Some("0101010101010101".into()),
            source_cidrs: vec!["127.0.0.0/8".into()],
        }),
        storage: None,
        gpu: None,
        meter: None,
    }
}

fn push_data(seq: u8) -> Vec<u8> {
    let frame = Received {
        // Distinct payloads: each is a different (would-be) beacon to witness.
        data: vec![seq; 51],
        frequency_hz: 868_100_000,
        datarate: parse_datarate("SF9BW125").unwrap_or_default(),
        rssi_dbm: -100,
        snr_db: 5.0,
        tmst: 1,
    };
    let packet = codec::push_data(1, MacAddress::from([1; 8]), vec![codec::rxpk(&frame)]);
    encode(&packet).unwrap_or_default()
}

/// Sends windows of datagrams to `target` for `seconds`; returns acked datagrams/second.
async fn drive(target: SocketAddr, datagrams: &[Vec<u8>], seconds: f64) -> f64 {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0").await else {
        return 0.0;
    };
    if socket.connect(target).await.is_err() {
        return 0.0;
    }
    let mut buf = [0u8; 64];
    let mut acked = 0u64;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        for d in datagrams.iter().cycle().take(WINDOW) {
            let _ = socket.send(d).await;
        }
        for _ in 0..WINDOW {
            match tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf)).await {
                Ok(Ok(_)) => acked += 1,
                _ => break,
            }
        }
    }
    acked as f64 / start.elapsed().as_secs_f64()
}

/// The raw primitive: receive, answer 4 bytes, nothing else.
async fn raw_echo() -> Option<SocketAddr> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let address = socket.local_addr().ok()?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((_, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&[2, buf[1], buf[2], 1], from).await;
        }
    });
    Some(address)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: f64 = std::env::var("DEPIN_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let Some(raw) = raw_echo().await else {
        eprintln!("cannot bind a loopback socket");
        return;
    };
    let port = match std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()) {
        Ok(addr) => addr.port(),
        Err(err) => {
            eprintln!("no free port: {err}");
            return;
        }
    };
    let config = config(port);
    let Ok(metrics) = depin_agent::metrics::AgentMetrics::new(&config) else {
        eprintln!("cannot register the agent metrics");
        return;
    };
    let state = depin_agent::http::HttpState::new(metrics.clone());
    let (stop, stop_rx) = watch::channel(false);
    let agent = Agent {
        config,
        key: NodeKey::from_seed([9; 32]),
    };
    let task = tokio::spawn({
        let metrics = metrics.clone();
        async move { depin_agent::prove(&agent, metrics, state, stop_rx).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let target: SocketAddr = ([127, 0, 0, 1], port).into();
    let datagrams: Vec<Vec<u8>> = (0..=255u8).map(push_data).collect();

    let (mut raw_rates, mut agent_rates) = (Vec::new(), Vec::new());
    let mut agent_seconds = 0.0;
    for _ in 0..3 {
        raw_rates.push(drive(raw, &datagrams, seconds).await);
        let started = Instant::now();
        agent_rates.push(drive(target, &datagrams, seconds).await);
        agent_seconds += started.elapsed().as_secs_f64();
    }
    // Let the role catch up with frames already acked, then count what it signed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let witnesses = metrics.hotspot_witnesses_reported.get() as f64;
    let rxpk = metrics
        .hotspot_gwmp_packets
        .with_label_values(&["rxpk"])
        .get();
    let (raw_rate, agent_rate) = (median(raw_rates), median(agent_rates));
    println!(
        "datagram: {} bytes (PUSH_DATA, one rxpk, 51-byte beacon-sized payload)",
        datagrams[0].len()
    );
    println!("| path | per second | × raw UDP |");
    println!("|---|---|---|");
    println!("| raw UDP recv + 4-byte ack | {raw_rate:.0} packets | 1.00 |");
    println!(
        "| hotspot agent: decode + PUSH_ACK | {agent_rate:.0} packets | {:.2} |",
        agent_rate / raw_rate.max(1.0)
    );
    println!(
        "| hotspot agent: signed witness reports | {:.0} reports | {:.2} |",
        witnesses / agent_seconds,
        witnesses / agent_seconds / raw_rate.max(1.0)
    );
    println!("rxpk counted {rxpk}, witness reports signed {witnesses:.0}");
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}
