//! Interop with npm `packet-forwarder` 1.0.8, a Semtech UDP forwarder client not written
//! here (gwmp/tests/npm/forwarder.js drives it). `sim/setup.sh npm` installs it into
//! ~/.cache/depin-operator/npm; without node or the registry the test is skipped with a
//! message, unless `DEPIN_REQUIRE_INTEROP=1`.

use std::path::PathBuf;
use std::time::Duration;

use depin_gwmp::codec::{self, immediate_txpk, parse_datarate};
use depin_gwmp::{Endpoint, EndpointConfig, Event};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("gwmp/ has a parent")
        .to_path_buf()
}

fn npm_dir() -> PathBuf {
    std::env::var_os("DEPIN_SIM_NPM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/depin-operator/npm")
        })
}

fn peer_available() -> bool {
    let ok = std::process::Command::new(repo_root().join("sim/setup.sh"))
        .arg("npm")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("DEPIN_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "sim/setup.sh npm failed and DEPIN_REQUIRE_INTEROP=1"
        );
        eprintln!("SKIPPED: npm packet-forwarder unavailable (sim/setup.sh npm failed)");
    }
    ok
}

#[tokio::test]
async fn npm_packet_forwarder_talks_to_our_endpoint() {
    if !peer_available() {
        return;
    }
    let (endpoint, mut events) = Endpoint::bind(
        "127.0.0.1:0",
        EndpointConfig {
            admission: depin_gwmp::Admission::Any,
            ..EndpointConfig::default()
        },
    )
    .await
    .expect("binds");
    let port = endpoint.local_addr().expect("addr").port();
    let node = tokio::process::Command::new("node")
        .arg(repo_root().join("gwmp/tests/npm/forwarder.js"))
        .arg(port.to_string())
        .env("NODE_PATH", npm_dir().join("node_modules"))
        .kill_on_drop(true)
        .output();
    let node = tokio::spawn(node);

    let eui = codec::parse_eui("AA555A0000000101").expect("eui");
    let mut seen = (false, false);
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("events in time")
            .expect("channel open");
        match event {
            Event::Rxpk { gateway, rxpk } => {
                assert_eq!(gateway, eui);
                let frame = codec::received(&rxpk);
                assert_eq!(frame.data, vec![0xde, 0xad, 0xbe, 0xef]);
                assert_eq!(
                    (frame.frequency_hz, frame.rssi_dbm, frame.tmst),
                    (868_300_000, -97, 3_512_348_611)
                );
                seen.0 = true;
            }
            Event::Stat { gateway, stat } => {
                assert_eq!((gateway, stat.rxnb), (eui, 1));
                seen.1 = true;
            }
            Event::GatewayConnected { gateway, .. } => {
                assert_eq!(gateway, eui);
                break;
            }
        }
    }
    assert_eq!(seen, (true, true), "rxpk and stat before PULL_DATA");
    let txpk = immediate_txpk(
        vec![1; 51],
        868_100_000,
        parse_datarate("SF9BW125").expect("dr"),
        14,
    );
    let accepted = endpoint
        .send_downlink(Some(eui), txpk)
        .await
        .expect("TX_ACK from the npm side");
    assert_eq!(accepted.adjusted_power_dbm, None);

    let output = node.await.expect("task").expect("node ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "push_ack rxpk",
        "push_ack stat",
        "pull_ack",
        "pull_resp freq=868.1 powe=14 size=51 imme=true",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in {stdout}");
    }
    let counters = endpoint.counters();
    assert_eq!(
        (counters.push_data, counters.pull_data, counters.tx_ack),
        (2, 1, 1)
    );
    assert_eq!(counters.malformed_total(), 0);
}
