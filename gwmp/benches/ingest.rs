//! GWMP uplink ingest rate on loopback: PUSH_DATA packets (one 51-byte rxpk each) per
//! second through the [`Endpoint`] (decode, PUSH_ACK, rxpk event to a consumer), against
//! the raw primitive measured in the same run: a UDP socket that answers each datagram
//! with a 4-byte ack without decoding it.
//!
//! The sender keeps a window of datagrams in flight and counts acks; a rate is the median
//! of three windows of `DEPIN_BENCH_SECONDS` (default 1) each.
//! Run: `cargo bench -p depin-gwmp --bench ingest`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use depin_gwmp::codec::{self, Received, encode, parse_datarate};
use depin_gwmp::semtech_udp::MacAddress;
use depin_gwmp::{Endpoint, EndpointConfig, Event};
use tokio::net::UdpSocket;

/// Datagrams in flight: enough to keep both sides busy, few enough not to overflow the
/// loopback socket buffers (a dropped datagram would stall a window until the timeout).
const WINDOW: usize = 32;

fn push_data() -> Vec<u8> {
    let frame = Received {
        data: vec![0xa5; 51],
        frequency_hz: 868_100_000,
        datarate: parse_datarate("SF9BW125").unwrap_or_default(),
        rssi_dbm: -100,
        snr_db: 5.0,
        tmst: 1,
    };
    let packet = codec::push_data(1, MacAddress::from([1; 8]), vec![codec::rxpk(&frame)]);
    encode(&packet).unwrap_or_default()
}

/// Sends windows of `datagram` to `target` for `seconds`, returns acked datagrams/second.
async fn drive(target: SocketAddr, datagram: &[u8], seconds: f64) -> f64 {
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
        for _ in 0..WINDOW {
            let _ = socket.send(datagram).await;
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
    let datagram = push_data();

    let Some(raw) = raw_echo().await else {
        eprintln!("cannot bind a loopback socket");
        return;
    };
    let Ok((endpoint, mut events)) = Endpoint::bind(
        "127.0.0.1:0",
        EndpointConfig {
            admission: depin_gwmp::Admission::Any,
            ..EndpointConfig::default()
        },
    )
    .await
    else {
        eprintln!("cannot bind the endpoint");
        return;
    };
    let consumed = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&consumed);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::Rxpk { rxpk, .. } = event {
                // What the hotspot role does first with every frame.
                std::hint::black_box(codec::received(&rxpk));
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let Ok(target) = endpoint.local_addr() else {
        return;
    };

    let mut raw_rates = Vec::new();
    let mut endpoint_rates = Vec::new();
    for _ in 0..3 {
        raw_rates.push(drive(raw, &datagram, seconds).await);
        endpoint_rates.push(drive(target, &datagram, seconds).await);
    }
    let (raw_rate, endpoint_rate) = (median(raw_rates), median(endpoint_rates));
    let counters = endpoint.counters();
    println!(
        "datagram: {} bytes (PUSH_DATA, one rxpk, 51-byte payload)",
        datagram.len()
    );
    println!("| path | packets/s | × raw UDP |");
    println!("|---|---|---|");
    println!("| raw UDP recv + 4-byte ack | {raw_rate:.0} | 1.00 |");
    println!(
        "| Endpoint: decode + PUSH_ACK + rxpk event | {endpoint_rate:.0} | {:.2} |",
        endpoint_rate / raw_rate.max(1.0)
    );
    println!(
        "push_data {} acked, rxpk events consumed {}, dropped {}, malformed {}",
        counters.push_data,
        consumed.load(Ordering::Relaxed),
        counters.events_dropped,
        counters.malformed_total()
    );
}
