//! Interop: our SunSpec reader against pymodbus's Modbus TCP server holding a register
//! image built by pysunspec2 (sim/python/sunspec_server.py). Both are third-party
//! implementations, so this checks our decoding against theirs, not against ourselves.
//!
//! Needs the shared venv with `pymodbus<4` and `pysunspec2`; the test runs `sim/setup.sh
//! python` (idempotent) to get it. Without Python or PyPI it is skipped with a message,
//! unless `DEPIN_REQUIRE_INTEROP=1`, which makes a missing peer a failure.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use depin_meter::{Direction, SunSpecReader};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("meter/ has a parent")
        .to_path_buf()
}

fn venv_python() -> PathBuf {
    std::env::var_os("DEPIN_SIM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/depin-operator/venv")
        })
        .join("bin/python")
}

/// Runs sim/setup.sh; `false` (skip) when the peer cannot be installed here.
fn peer_available() -> bool {
    let ok = std::process::Command::new(repo_root().join("sim/setup.sh"))
        .arg("python")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("DEPIN_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "sim/setup.sh python failed and DEPIN_REQUIRE_INTEROP=1"
        );
        eprintln!("SKIPPED: pymodbus/pysunspec2 venv unavailable (sim/setup.sh python failed)");
    }
    ok
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts the pymodbus server and waits for its READY line.
async fn start_server(port: u16, model: u16, serial: &str, watts: u32, wh: u32) -> Child {
    let mut child = Command::new(venv_python())
        .arg("-W")
        .arg("ignore")
        .arg(repo_root().join("sim/python/sunspec_server.py"))
        .args(["--port", &port.to_string(), "--model", &model.to_string()])
        .args([
            "--serial",
            serial,
            "--watts",
            &watts.to_string(),
            "--wh",
            &wh.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("READY") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "pymodbus server did not become ready");
    child
}

#[tokio::test]
async fn reads_inverter_and_meter_models_from_pymodbus() {
    if !peer_available() {
        return;
    }
    let cases = [
        (
            103,
            Direction::Production,
            "INV-103-XYZ",
            2830,
            123_456,
            2830.0,
            123_456,
        ),
        (
            203,
            Direction::Production,
            "MTR-203-ABC",
            1500,
            98_765,
            1500.0,
            98_765,
        ),
        (
            203,
            Direction::Consumption,
            "MTR-203-ABC",
            1500,
            98_765,
            1500.0,
            42,
        ),
    ];
    for (model, direction, serial, watts, wh, want_w, want_wh) in cases {
        let port = free_port();
        let mut server = start_server(port, model, serial, watts, wh).await;
        let mut reader = SunSpecReader::connect(
            &format!("127.0.0.1:{port}"),
            1,
            direction,
            Duration::from_secs(3),
        )
        .await
        .expect("connects");
        let map = reader.discover().await.expect("SunSpec map").clone();
        assert_eq!(map.base, 40000);
        assert_eq!(
            map.models.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![1, model]
        );
        let reading = reader.read().await.expect("reads");
        assert_eq!(reading.serial, serial, "model {model}");
        assert_eq!(reading.manufacturer, "DePIN-Labs");
        assert!(
            (reading.watts - want_w).abs() < 1e-6,
            "model {model}: {reading:?}"
        );
        assert_eq!(reading.wh_total, want_wh, "model {model} {direction:?}");
        server.kill().await.expect("server stops");
    }
}
