//! The GWMP endpoint as a hotspot agent runs it: each input is one datagram to a live
//! endpoint on loopback, then a valid PUSH_DATA must still get its PUSH_ACK, and the
//! receive loop must never have needed a restart (a restart means something panicked).
#![no_main]

use std::net::UdpSocket;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use depin_gwmp::codec::{encode, push_data};
use depin_gwmp::semtech_udp::MacAddress;
use depin_gwmp::{Admission, Endpoint, EndpointConfig};
use libfuzzer_sys::fuzz_target;

/// Far above a loopback round trip; only a stuck or dead receive loop takes this long.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

struct Live {
    endpoint: Endpoint,
    forwarder: UdpSocket,
    // Keeps the endpoint's tasks running between inputs.
    _runtime: tokio::runtime::Runtime,
}

fn live() -> &'static Live {
    static LIVE: OnceLock<Live> = OnceLock::new();
    LIVE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let config = EndpointConfig {
            admission: Admission::Any,
            ..EndpointConfig::default()
        };
        let (endpoint, mut events) = runtime
            .block_on(Endpoint::bind("127.0.0.1:0", config))
            .expect("binds");
        // Drained so a full channel is never what the check measures.
        runtime.spawn(async move { while events.recv().await.is_some() {} });
        let forwarder = UdpSocket::bind("127.0.0.1:0").expect("binds");
        forwarder
            .connect(endpoint.local_addr().expect("addr"))
            .expect("connects");
        forwarder
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .expect("timeout");
        Live {
            endpoint,
            forwarder,
            _runtime: runtime,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let live = live();
    static TOKEN: AtomicU16 = AtomicU16::new(0);
    // Over the IPv4 limit the kernel refuses to send; nothing reaches the endpoint.
    let _ = live.forwarder.send(data);
    let token = TOKEN.fetch_add(1, Ordering::Relaxed);
    let probe = push_data(token, MacAddress::from([0xfe; 8]), vec![]);
    let probe = encode(&probe).expect("encodes");
    loop {
        match live.forwarder.send(&probe) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("sending the probe: {e}"),
        }
    }
    let want = [2, (token >> 8) as u8, token as u8, 1];
    let mut buf = [0u8; 65_536];
    // Answers to the input itself (a PUSH_ACK or PULL_ACK) may come first.
    loop {
        let n = match live.forwarder.recv(&mut buf) {
            Ok(n) => n,
            // libFuzzer's -timeout watchdog is a SIGALRM every second; it interrupts a
            // blocking recv without anything being wrong with the endpoint.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("the receive loop still answers: {e}"),
        };
        if buf[..n] == want {
            break;
        }
    }
    assert_eq!(live.endpoint.counters().receive_restarts, 0);
});
