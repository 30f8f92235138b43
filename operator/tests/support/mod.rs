//! In-process verifier and agents for the proof-pipeline tests: the real tonic service on
//! 127.0.0.1, an in-memory node index and tally sink, real depin-agent sessions, and a
//! scripted agent that can misbehave on purpose.

#![allow(dead_code, clippy::unwrap_used)]

pub mod epoch;

use depin_agent::Agent;
use depin_operator::verifier::persist::sink::TallySink;
use depin_operator::verifier::state::index::{Declared, NodeEntry, NodeId, NodeIndex};
use depin_operator::verifier::{Settings, Verifier};
use depin_proof::entropy::EntropyConfig;
use depin_proof::gpu::GpuParams;
use depin_proof::identity::{NodeKey, PublicKey};
use depin_proof::session::{ServerNonce, SessionHello};
use depin_proof::storage::StorageParams;
use depin_proto::config::{AgentConfig, GpuConfig, NodeRef, Role, StorageConfig, VerifierConfig};
use depin_proto::v1::{self, agent_message::Body as Out, verifier_message::Body as In};
use depin_proto::wire;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// Sector size in the tests: four 16 KiB leaves.
pub const SECTOR: u64 = 64 * 1024;

/// Fast settings: 2 s proving period of two 1 s deadlines, 250 ms beacon ticks, n = 32.
pub fn settings() -> Settings {
    Settings {
        storage: StorageParams {
            proving_period_ms: 2_000,
            deadlines_per_period: 2,
            challenges_per_deadline: 4,
            // Faults for the next period (≥ 1 s ahead) are in time; the open one is late.
            fault_cutoff_ms: 200,
            ..StorageParams::default()
        },
        gpu: GpuParams {
            n: 32,
            sampled_rows: 4,
            deadline_ms: 2_000,
            min_fraction_of_declared: 0.0,
            ..GpuParams::default()
        },
        gpu_interval: Duration::from_millis(300),
        entropy: EntropyConfig {
            tick_ms: 250,
            lifespan_ms: 5_000,
        },
        // 3 s beacon intervals; every other PoC rule at Helium's values.
        poc: depin_proof::poc::PocParams {
            beacon_interval_ms: 3_000,
            ..depin_proof::poc::PocParams::default()
        },
        max_sessions: 100,
        session_rate: 1_000.0,
        session_burst: 1_000,
        write_interval: Duration::from_millis(50),
        write_retry_delay: Duration::from_millis(10),
        write_retries: 2,
        hello_timeout: Duration::from_secs(5),
        seal_audit_max_bytes: depin_proof::storage::MAX_SECTOR_BYTES,
        // The built-in test class (n = 256, 4 stages, 0.0005 TOPS: a 269 ms deadline that a
        // CPU agent of a debug build meets well in time on a loaded machine), closing
        // 200 ms after twice that instead of 2 s, so rounds are accounted within 1.5 s.
        gpu_classes: vec![depin_proof::gpu::GpuClass {
            close_grace_ms: 200,
            ..depin_proof::gpu::GpuClass::built_in("test").unwrap()
        }],
    }
}

/// A running verifier.
pub struct Running {
    pub verifier: Arc<Verifier>,
    pub endpoint: String,
    pub addr: std::net::SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the server (sessions end with UNAVAILABLE) and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts a verifier on `addr` (port 0: any free port).
pub async fn start(
    settings: Settings,
    index: NodeIndex,
    sink: Arc<dyn TallySink>,
    addr: &str,
) -> Running {
    start_with_key(settings, NodeKey::generate(), index, sink, addr).await
}

/// [`start`] with the verifier signing as `key`.
pub async fn start_with_key(
    settings: Settings,
    key: NodeKey,
    index: NodeIndex,
    sink: Arc<dyn TallySink>,
    addr: &str,
) -> Running {
    settings.check().unwrap();
    let registry = prometheus::Registry::new();
    let (stop, shutdown) = depin_operator::Shutdown::never();
    let verifier =
        Verifier::with_key(settings, key, index.clone(), sink, &registry, shutdown).unwrap();
    index.mark_ready();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn({
        let verifier = verifier.clone();
        async move {
            depin_operator::verifier::serve(verifier, listener)
                .await
                .unwrap();
        }
    });
    Running {
        verifier,
        endpoint: format!("http://{addr}"),
        addr,
        stop,
        task,
    }
}

pub fn entry(role: Role, name: &str, key: &PublicKey, declared: Declared) -> NodeEntry {
    NodeEntry {
        id: NodeId {
            role,
            namespace: "fleet".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
        },
        key: *key,
        reward_policy: "default".into(),
        declared,
        created: 0,
    }
}

pub fn storage_declared(sectors: u64) -> Declared {
    Declared::Storage {
        capacity_bytes: sectors * SECTOR,
        sector_size_bytes: SECTOR,
    }
}

pub fn scratch_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("depin-pipeline-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A real depin-agent doing its role's work against `endpoint`.
pub struct RealAgent {
    pub metrics: depin_agent::metrics::AgentMetrics,
    dir: Option<std::path::PathBuf>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RealAgent {
    /// The storage agent's data directory (its `sectors/sector-<n>.bin` files).
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.dir.as_deref()
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    pub fn accepted(&self, proof: &str) -> u64 {
        self.metrics
            .proofs_accepted
            .with_label_values(&[proof])
            .get()
    }
}

pub fn agent_config(role: Role, name: &str, endpoint: &str) -> AgentConfig {
    AgentConfig {
        role,
        node: NodeRef {
            kind: "test".into(),
            name: name.into(),
            namespace: "fleet".into(),
            wallet: "w".into(),
        },
        verifier: VerifierConfig {
            endpoint: endpoint.into(),
            public_key: None,
        },
        identity_key_file: "unused".into(),
        http_port: 0,
        hotspot: None,
        storage: None,
        gpu: None,
        meter: None,
    }
}

pub fn spawn_agent(config: AgentConfig, key: NodeKey) -> RealAgent {
    let metrics = depin_agent::metrics::AgentMetrics::new(&config).unwrap();
    let config_dir = config
        .storage
        .as_ref()
        .map(|s| std::path::PathBuf::from(&s.data_dir));
    let state = depin_agent::http::HttpState::new(metrics.clone());
    let (stop, stop_rx) = watch::channel(false);
    let agent = Agent { config, key };
    let task = tokio::spawn({
        let metrics = metrics.clone();
        async move { depin_agent::prove(&agent, metrics, state, stop_rx).await }
    });
    RealAgent {
        metrics,
        dir: config_dir,
        stop,
        task,
    }
}

pub fn storage_agent(endpoint: &str, name: &str, key: NodeKey, sectors: u64) -> RealAgent {
    let mut config = agent_config(Role::Storage, name, endpoint);
    config.storage = Some(StorageConfig {
        capacity_bytes: sectors * SECTOR,
        sector_size_bytes: SECTOR,
        data_dir: scratch_dir(name).display().to_string(),
    });
    spawn_agent(config, key)
}

pub fn gpu_agent(endpoint: &str, name: &str, key: NodeKey) -> RealAgent {
    let mut config = agent_config(Role::Gpu, name, endpoint);
    config.gpu = Some(GpuConfig {
        gpus: 1,
        model: "cpu".into(),
        declared_tops: 0.001,
    });
    spawn_agent(config, key)
}

/// Polls `check` every 50 ms until it holds, or fails after `secs`.
pub async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A hand-driven agent session, for lies and bad timing.
pub struct Scripted {
    pub node: NodeKey,
    pub session_key: NodeKey,
    pub verifier: PublicKey,
    tx: mpsc::Sender<v1::AgentMessage>,
    inbound: tonic::Streaming<v1::VerifierMessage>,
}

impl Scripted {
    /// Connects and says hello; Err is the verifier's refusal.
    pub async fn open(endpoint: &str, node: NodeKey) -> Result<Self, tonic::Status> {
        let mut client = v1::verifier_client::VerifierClient::connect(endpoint.to_string())
            .await
            .unwrap();
        let (tx, rx) = mpsc::channel(64);
        let mut inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
        let Some(In::ServerHello(hello)) = inbound.message().await?.and_then(|m| m.body) else {
            panic!("no ServerHello")
        };
        let nonce = ServerNonce(hello.nonce.as_slice().try_into().unwrap());
        let session_key = NodeKey::generate();
        let verifier = wire::key_from_wire(&hello.verifier_key).unwrap();
        let signed = SessionHello::sign(&node, &session_key.public(), nonce, &verifier);
        tx.send(v1::AgentMessage {
            body: Some(Out::Hello(wire::hello_to_wire(&signed, "test", "0"))),
        })
        .await
        .unwrap();
        match inbound.message().await?.and_then(|m| m.body) {
            Some(In::Welcome(_)) => {}
            other => panic!("expected Welcome, got {other:?}"),
        }
        let verifier = wire::key_from_wire(&hello.verifier_key).unwrap();
        Ok(Self {
            node,
            session_key,
            verifier,
            tx,
            inbound,
        })
    }

    pub async fn send(&self, body: Out) {
        self.tx
            .send(v1::AgentMessage { body: Some(body) })
            .await
            .unwrap();
    }

    /// Sends `body`; false once the verifier has ended the session.
    pub async fn try_send(&self, body: Out) -> bool {
        self.tx
            .send(v1::AgentMessage { body: Some(body) })
            .await
            .is_ok()
    }

    /// The next message, within 10 s.
    pub async fn next(&mut self) -> Result<In, tonic::Status> {
        let message = tokio::time::timeout(Duration::from_secs(10), self.inbound.message())
            .await
            .expect("verifier answered in time")?;
        Ok(message.and_then(|m| m.body).expect("a message"))
    }

    /// The next message `pick` accepts (others are skipped).
    pub async fn next_where<T>(&mut self, mut pick: impl FnMut(In) -> Option<T>) -> T {
        loop {
            if let Some(found) = pick(self.next().await.unwrap()) {
                return found;
            }
        }
    }

    /// The next receipt, decoded and checked against the verifier key.
    pub async fn receipt(&mut self) -> (depin_proof::receipt::Receipt, v1::Receipt) {
        let wire_receipt = self
            .next_where(|m| {
                if let In::Receipt(r) = m {
                    Some(r)
                } else {
                    None
                }
            })
            .await;
        let receipt = wire::receipt_from_wire(self.node.public(), &wire_receipt).unwrap();
        assert!(
            receipt.verify(&self.verifier),
            "receipt signed by the verifier"
        );
        (receipt, wire_receipt)
    }
}

/// Answers storage challenge `w` from `data` under `tree`, as an honest prover would.
pub async fn answer_storage(
    agent: &Scripted,
    tree: &depin_proof::storage::SectorTree,
    data: &[u8],
    w: &v1::StorageChallenge,
) {
    let (challenge, k) = wire::storage_challenge_from_wire(w).expect("challenge");
    let params = StorageParams {
        challenges_per_deadline: k,
        ..StorageParams::default()
    };
    let response = depin_proof::storage::answer_challenge(
        tree,
        &challenge,
        &mut std::io::Cursor::new(data),
        &agent.node.public(),
        &agent.session_key,
        &params,
    )
    .expect("answers");
    let filed = wire::Filed {
        challenge: wire::challenge_from_wire(&w.challenge_id).expect("id"),
        session_key: agent.session_key.public(),
        message: response,
    };
    agent
        .send(Out::StorageResponse(wire::storage_response_to_wire(&filed)))
        .await;
}
