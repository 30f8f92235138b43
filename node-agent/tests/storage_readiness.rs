//! A storage agent stays live while it fills its sectors, turns ready once they are
//! committed, and restarts without filling them again. No verifier is running: readiness
//! depends on the role's own state only.

#![allow(clippy::unwrap_used)]

use depin_agent::Agent;
use depin_proof::identity::NodeKey;
use depin_proto::config::{AgentConfig, NodeRef, Role, StorageConfig, VerifierConfig};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const SECTOR: u64 = 32 << 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Status code and body of `GET path` on the agent, or None when it is not listening yet.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Some((code, body))
}

fn config(dir: &std::path::Path, port: u16) -> AgentConfig {
    AgentConfig {
        role: Role::Storage,
        node: NodeRef {
            kind: "StorageNode".into(),
            name: "sn".into(),
            namespace: "fleet".into(),
            wallet: "w".into(),
        },
        // Nothing listens here: the session just keeps retrying in the background.
        verifier: VerifierConfig {
            endpoint: "http://127.0.0.1:9".into(),
            public_key: None,
        },
        identity_key_file: "unused".into(),
        http_port: port,
        hotspot: None,
        storage: Some(StorageConfig {
            capacity_bytes: 4 * SECTOR,
            sector_size_bytes: SECTOR,
            data_dir: dir.display().to_string(),
        }),
        gpu: None,
        meter: None,
    }
}

/// Runs an agent until ready; returns how long that took and whether /healthz was ok
/// every time it was asked before readiness.
async fn run_until_ready(dir: &std::path::Path) -> (Duration, bool, String) {
    let port = free_port();
    let agent = Agent {
        config: config(dir, port),
        key: NodeKey::from_seed([7; 32]),
    };
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(depin_agent::serve(agent, stop_rx));
    let started = Instant::now();
    let mut live_throughout = true;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "agent never became ready"
        );
        if let Some((code, _)) = get(port, "/healthz").await {
            live_throughout &= code == 200;
            if get(port, "/readyz").await.map(|(c, _)| c) == Some(200) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready_after = started.elapsed();
    let metrics = get(port, "/metrics").await.unwrap().1;
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
    (ready_after, live_throughout, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_agent_is_live_while_filling_and_ready_once_committed() {
    let dir = std::env::temp_dir().join(format!("depin-agent-readiness-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (first, live, metrics) = run_until_ready(&dir).await;
    assert!(live, "/healthz failed while sectors were being filled");
    let committed = metrics
        .lines()
        .find(|l| l.starts_with("depin_agent_storage_committed_bytes{"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_default();
    assert_eq!(committed, (4 * SECTOR).to_string(), "{metrics}");
    let state = std::fs::read_to_string(dir.join(depin_agent::roles::storage::STATE_FILE)).unwrap();
    assert!(state.contains("\"roots\""), "{state}");
    let mtime = std::fs::metadata(dir.join("sectors/sector-3.bin"))
        .unwrap()
        .modified()
        .unwrap();

    let (_second, live, _) = run_until_ready(&dir).await;
    assert!(live);
    let again = std::fs::metadata(dir.join("sectors/sector-3.bin"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(mtime, again, "a restart must not re-fill sectors");
    eprintln!("ready after {first:?} (fill of {} MiB)", (4 * SECTOR) >> 20);
    let _ = std::fs::remove_dir_all(&dir);
}
