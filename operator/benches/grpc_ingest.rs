//! gRPC proof ingest vs plain tonic, measured in one run (plain binary, no criterion).
//!
//! - `verify only`: decode + `verify_storage_response` in a loop, one thread, no gRPC.
//! - `echo`: unary `Ping` round trips carrying a storage response's bytes, on one channel
//!   with as many calls in flight as the ingest test has sessions.
//! - `storage ingest`: real verifier sessions; scripted storage nodes answer every
//!   challenge of one proving period (k = 46 leaves of 16 KiB each, production sizes);
//!   counted from the first challenge to the last accepted receipt, results recorded
//!   through the in-memory tally sink.
//! - `gpu ingest`: full GPU proofs (challenge → commitment → row request → opening →
//!   receipt) at n = 64 as fast as the sessions go.
//!
//! `DEPIN_BENCH_NODES` (default 4) and `DEPIN_BENCH_SECTORS` (per node, default 100) size it.

#![allow(clippy::unwrap_used)]

use depin_operator::verifier::persist::sink::MemorySink;
use depin_operator::verifier::state::index::{Declared, NodeEntry, NodeId, NodeIndex};
use depin_operator::verifier::{Settings, Verifier};
use depin_proof::entropy::EntropyConfig;
use depin_proof::gpu::{ChainWork, GpuClass, GpuParams};
use depin_proof::identity::NodeKey;
use depin_proof::session::{HelloContext, ServerNonce, SessionHello, verify_hello};
use depin_proof::storage::{
    DEFAULT_LEAF_SIZE, SectorId, SectorTree, StorageContext, StorageParams, answer_challenge,
    commit_sector, verify_storage_response,
};
use depin_proto::config::Role;
use depin_proto::gpu_wire;
use depin_proto::v1::{self, agent_message::Body as Out, verifier_message::Body as In};
use depin_proto::wire::{self, Filed};
use prost::Message as _;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const SECTOR: usize = 1 << 20;
const K: u32 = 46;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn settings(period_ms: u64) -> Settings {
    Settings {
        storage: StorageParams {
            proving_period_ms: period_ms,
            deadlines_per_period: 1,
            challenges_per_deadline: K,
            ..StorageParams::default()
        },
        gpu: GpuParams {
            n: 64,
            sampled_rows: 16,
            deadline_ms: 10_000,
            min_fraction_of_declared: 0.0,
            ..GpuParams::default()
        },
        gpu_interval: Duration::from_millis(1),
        entropy: EntropyConfig {
            tick_ms: 1_000,
            lifespan_ms: 30_000,
        },
        poc: depin_proof::poc::PocParams::default(),
        max_sessions: 1_000,
        session_rate: 1e9,
        session_burst: u32::MAX,
        write_interval: Duration::ZERO,
        write_retry_delay: Duration::from_millis(10),
        write_retries: 2,
        hello_timeout: Duration::from_secs(10),
        seal_audit_max_bytes: depin_proof::storage::MAX_SECTOR_BYTES,
        // A small chain (n = 64, one stage) with a deadline nothing misses: the bench
        // measures the verifier's ingest, not the prover.
        gpu_classes: vec![GpuClass {
            name: "bench".into(),
            min_tops: 1e-9,
            n: 64,
            stages: 1,
            samples: 16,
            close_grace_ms: 10_000,
        }],
    }
}

struct Server {
    verifier: Arc<Verifier>,
    endpoint: String,
    stop: tokio::sync::watch::Sender<bool>,
}

async fn serve(settings: Settings, index: NodeIndex) -> Server {
    let registry = prometheus::Registry::new();
    let (stop, shutdown) = depin_operator::Shutdown::never();
    let verifier = Verifier::new(
        settings,
        index.clone(),
        Arc::new(MemorySink::default()),
        &registry,
        shutdown,
    )
    .unwrap();
    index.mark_ready();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(depin_operator::verifier::serve(verifier.clone(), listener));
    Server {
        verifier,
        endpoint,
        stop,
    }
}

fn entry(role: Role, name: String, key: &NodeKey, declared: Declared) -> NodeEntry {
    NodeEntry {
        id: NodeId {
            role,
            namespace: "bench".into(),
            uid: name.clone(),
            name,
        },
        key: key.public(),
        reward_policy: "default".into(),
        declared,
        created: 0,
    }
}

struct Session {
    node: NodeKey,
    session_key: NodeKey,
    tx: mpsc::Sender<v1::AgentMessage>,
    inbound: tonic::Streaming<v1::VerifierMessage>,
}

async fn open(endpoint: &str, node: NodeKey) -> Session {
    let mut client = v1::verifier_client::VerifierClient::connect(endpoint.to_string())
        .await
        .unwrap()
        .max_decoding_message_size(depin_operator::verifier::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(depin_operator::verifier::MAX_MESSAGE_BYTES);
    let (tx, rx) = mpsc::channel(256);
    let mut inbound = client
        .session(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let Some(In::ServerHello(hello)) = inbound.message().await.unwrap().and_then(|m| m.body) else {
        panic!()
    };
    let session_key = NodeKey::generate();
    let verifier = wire::key_from_wire(&hello.verifier_key).unwrap();
    let signed = SessionHello::sign(
        &node,
        &session_key.public(),
        ServerNonce(hello.nonce.try_into().unwrap()),
        &verifier,
    );
    tx.send(v1::AgentMessage {
        body: Some(Out::Hello(wire::hello_to_wire(&signed, "bench", "0"))),
    })
    .await
    .unwrap();
    inbound.message().await.unwrap();
    Session {
        node,
        session_key,
        tx,
        inbound,
    }
}

/// Answers every storage challenge; returns (accepted, rejected, first challenge, last receipt).
async fn storage_node(
    mut s: Session,
    data: Arc<Vec<u8>>,
    trees: Arc<Vec<SectorTree>>,
) -> (u64, u64, Instant, Instant) {
    let commitments = trees
        .iter()
        .map(|t| wire::commitment_to_wire(&t.sign(&s.node)))
        .collect();
    s.tx.send(v1::AgentMessage {
        body: Some(Out::SectorCommitments(v1::SectorCommitments {
            commitments,
        })),
    })
    .await
    .unwrap();
    let params = StorageParams {
        challenges_per_deadline: K,
        ..StorageParams::default()
    };
    let (mut accepted, mut rejected, mut first, mut last) = (0, 0, None, Instant::now());
    while accepted + rejected < trees.len() as u64 {
        match s.inbound.message().await.unwrap().and_then(|m| m.body) {
            Some(In::StorageChallenge(w)) => {
                first.get_or_insert_with(Instant::now);
                let (challenge, _) = wire::storage_challenge_from_wire(&w).unwrap();
                let tree = &trees[usize::try_from(challenge.sector.0).unwrap()];
                let mut cursor = std::io::Cursor::new(data.as_slice());
                let response = answer_challenge(
                    tree,
                    &challenge,
                    &mut cursor,
                    &s.node.public(),
                    &s.session_key,
                    &params,
                )
                .unwrap();
                let filed = Filed {
                    challenge: wire::challenge_from_wire(&w.challenge_id).unwrap(),
                    session_key: s.session_key.public(),
                    message: response,
                };
                let body = Out::StorageResponse(wire::storage_response_to_wire(&filed));
                s.tx.send(v1::AgentMessage { body: Some(body) })
                    .await
                    .unwrap();
            }
            Some(In::Receipt(r)) => {
                if r.accepted {
                    accepted += 1
                } else {
                    rejected += 1
                }
                last = Instant::now();
            }
            _ => {}
        }
    }
    (accepted, rejected, first.unwrap_or(last), last)
}

/// Runs full GPU proofs for `window`; returns accepted proofs.
async fn gpu_node(mut s: Session, window: Duration) -> u64 {
    let mut works = std::collections::HashMap::new();
    let mut accepted = 0;
    let end = Instant::now() + window;
    while Instant::now() < end {
        let Ok(Ok(Some(message))) =
            tokio::time::timeout(end - Instant::now(), s.inbound.message()).await
        else {
            break;
        };
        match message.body {
            Some(In::GpuChallenge(w)) => {
                let challenge = gpu_wire::chain_challenge_from_wire(&w).unwrap();
                let work = ChainWork::compute(&challenge, &s.node.public(), 1).unwrap();
                let commitment = work.commit(&s.session_key);
                works.insert(commitment.challenge, work);
                let body = Out::GpuCommitment(gpu_wire::chain_commitment_to_wire(
                    &s.session_key.public(),
                    &commitment,
                ));
                s.tx.send(v1::AgentMessage { body: Some(body) })
                    .await
                    .unwrap();
            }
            Some(In::RowRequest(w)) => {
                let request = gpu_wire::sample_request_from_wire(&w).unwrap();
                let opening = works
                    .remove(&request.challenge)
                    .unwrap()
                    .open(&request, &s.session_key);
                let body = Out::GpuOpening(gpu_wire::chain_opening_to_wire(
                    &s.session_key.public(),
                    &opening,
                ));
                s.tx.send(v1::AgentMessage { body: Some(body) })
                    .await
                    .unwrap();
            }
            Some(In::Receipt(r)) if r.accepted => accepted += 1,
            _ => {}
        }
    }
    accepted
}

/// Unary pings carrying `payload` bytes, `in_flight` at a time, for `window`: calls/s.
async fn echo_rate(endpoint: &str, payload: usize, in_flight: usize, window: Duration) -> f64 {
    let client = v1::verifier_client::VerifierClient::connect(endpoint.to_string())
        .await
        .unwrap()
        .max_decoding_message_size(depin_operator::verifier::MAX_MESSAGE_BYTES);
    let end = Instant::now() + window;
    let started = Instant::now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut calls = 0u64;
                while Instant::now() < end {
                    client
                        .ping(v1::PingRequest {
                            payload: vec![7; payload],
                        })
                        .await
                        .unwrap();
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let mut calls = 0;
    for task in tasks {
        calls += task.await.unwrap();
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

/// decode + verify_storage_response in a loop, one thread: responses/s.
fn verify_rate(data: &[u8], tree: &SectorTree, window: Duration) -> (f64, usize) {
    let node = NodeKey::from_seed([1; 32]);
    let session_key = NodeKey::from_seed([2; 32]);
    let nonce = ServerNonce([3; 32]);
    let known: BTreeSet<_> = [node.public()].into_iter().collect();
    let session = verify_hello(
        &SessionHello::sign(&node, &session_key.public(), nonce, &node.public()),
        &HelloContext {
            nonce: &nonce,
            known_nodes: &known,
            verifier: &node.public(),
        },
    )
    .unwrap();
    let params = StorageParams {
        challenges_per_deadline: K,
        ..StorageParams::default()
    };
    let beacon = depin_proof::entropy::Beacon::new([9; 32], EntropyConfig::default());
    let now = 10 * params.proving_period_ms + 1_000;
    let deadline = params.deadline_at(now);
    let challenge = depin_proof::storage::StorageChallenge::for_deadline(
        &params,
        &beacon,
        SectorId(0),
        deadline,
    );
    let mut cursor = std::io::Cursor::new(data);
    let response = answer_challenge(
        tree,
        &challenge,
        &mut cursor,
        &node.public(),
        &session_key,
        &params,
    )
    .unwrap();
    let filed = Filed {
        challenge: challenge.id(&node.public()),
        session_key: session_key.public(),
        message: response,
    };
    let encoded = wire::storage_response_to_wire(&filed).encode_to_vec();
    let sectors: std::collections::BTreeMap<_, _> =
        [(SectorId(0), *tree.commitment())].into_iter().collect();
    let seen: HashSet<_> = HashSet::new();
    let now = challenge
        .deadline
        .opens_at_ms
        .max(beacon.config().issued_at_ms(challenge.entropy.tick));
    let ctx = StorageContext {
        params: &params,
        beacon: &beacon,
        session: &session,
        sectors: &sectors,
        seen: &seen,
        now_ms: now,
    };
    let (started, mut count) = (Instant::now(), 0u64);
    while started.elapsed() < window {
        let decoded = v1::StorageResponse::decode(encoded.as_slice()).unwrap();
        let filed = wire::storage_response_from_wire(decoded).unwrap();
        verify_storage_response(&filed.message, &ctx).unwrap();
        count += 1;
    }
    (
        count as f64 / started.elapsed().as_secs_f64(),
        encoded.len(),
    )
}

#[tokio::main]
async fn main() {
    let nodes = env("DEPIN_BENCH_NODES", 4);
    let sectors = env("DEPIN_BENCH_SECTORS", 100);
    let data: Arc<Vec<u8>> = Arc::new((0..SECTOR).map(|i| (i * 7 % 251) as u8).collect());
    let trees: Arc<Vec<SectorTree>> = Arc::new(
        (0..sectors)
            .map(|i| commit_sector(SectorId(i as u64), &data, DEFAULT_LEAF_SIZE))
            .collect(),
    );
    let window = Duration::from_secs(3);
    let (verify, message_bytes) = verify_rate(&data, &trees[0], window);

    // One proving period of 20 s (one deadline) with a 1 s beacon tick.
    let index = NodeIndex::new();
    let keys: Vec<NodeKey> = (0..nodes)
        .map(|i| NodeKey::from_seed([u8::try_from(i + 10).unwrap(); 32]))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        let capacity = (sectors * SECTOR) as u64;
        let declared = Declared::Storage {
            capacity_bytes: capacity,
            sector_size_bytes: SECTOR as u64,
        };
        index.upsert(entry(Role::Storage, format!("sn-{i}"), key, declared));
    }
    let server = serve(settings(20_000), index.clone()).await;
    let echo_big = echo_rate(&server.endpoint, message_bytes, nodes, window).await;
    let echo_small = echo_rate(&server.endpoint, 64, nodes, window).await;
    // A verifier leaves the deadline open at its start to its predecessor, so the first
    // challenges come when the next 20 s proving period opens.
    println!("waiting for the next proving period (at most 20 s) ...");
    let mut sessions = Vec::new();
    for key in &keys {
        sessions.push(open(&server.endpoint, key.clone()).await);
    }
    let runs: Vec<_> = sessions
        .into_iter()
        .map(|s| tokio::spawn(storage_node(s, data.clone(), trees.clone())))
        .collect();
    let (mut accepted, mut rejected) = (0, 0);
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    for run in runs {
        let (a, r, f, l) = run.await.unwrap();
        accepted += a;
        rejected += r;
        first = Some(first.map_or(f, |x| x.min(f)));
        last = Some(last.map_or(l, |x| x.max(l)));
    }
    let elapsed = last.unwrap().duration_since(first.unwrap()).as_secs_f64();
    let ingest = accepted as f64 / elapsed;
    let writes = server
        .verifier
        .metrics
        .tally_writes
        .with_label_values(&["ok"])
        .get();
    let _ = server.stop.send(true);

    // GPU: full proofs, n = 64.
    let gpu_index = NodeIndex::new();
    let gpu_keys: Vec<NodeKey> = (0..nodes)
        .map(|i| NodeKey::from_seed([u8::try_from(i + 100).unwrap(); 32]))
        .collect();
    for (i, key) in gpu_keys.iter().enumerate() {
        gpu_index.upsert(entry(
            Role::Gpu,
            format!("gw-{i}"),
            key,
            Declared::Gpu { declared_tops: 0.0 },
        ));
    }
    let gpu_server = serve(settings(20_000), gpu_index).await;
    let mut gpu_runs = Vec::new();
    for key in &gpu_keys {
        let session = open(&gpu_server.endpoint, key.clone()).await;
        gpu_runs.push(tokio::spawn(gpu_node(session, window)));
    }
    let mut gpu_accepted = 0;
    for run in gpu_runs {
        gpu_accepted += run.await.unwrap();
    }
    let gpu_rate = gpu_accepted as f64 / window.as_secs_f64();
    let echo_gpu = echo_rate(&gpu_server.endpoint, 64, nodes, window).await;
    let _ = gpu_server.stop.send(true);

    println!();
    println!(
        "storage response: k = {K}, 16 KiB leaves, {message_bytes} bytes on the wire; {nodes} sessions"
    );
    println!("| measurement | per second | ratio |");
    println!("|---|---|---|");
    println!("| verify only (decode + verify_storage_response, 1 thread) | {verify:.0} | |");
    println!(
        "| tonic unary echo, {message_bytes} B payload, {nodes} in flight | {echo_big:.0} | 1.00 |"
    );
    println!(
        "| storage ingest through sessions ({accepted} accepted, {rejected} rejected, {writes} status writes) | {ingest:.0} | {:.2} × echo |",
        ingest / echo_big
    );
    println!("| tonic unary echo, 64 B payload, {nodes} in flight | {echo_small:.0} | 1.00 |");
    println!("| tonic unary echo, 64 B payload, {nodes} in flight (GPU run) | {echo_gpu:.0} | |");
    println!(
        "| GPU proofs through sessions (n = 64, 2 round trips each; {gpu_accepted} in {}s) | {gpu_rate:.0} | {:.3} × small echo |",
        window.as_secs(),
        gpu_rate / echo_gpu
    );
}
