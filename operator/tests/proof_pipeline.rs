//! The proof pipeline end to end, in process: tonic verifier on 127.0.0.1, in-memory node
//! index and tally sink, real agents and scripted ones.

#![allow(clippy::unwrap_used)]

mod support;

use depin_operator::verifier::Settings;
use depin_operator::verifier::persist::sink::{MemorySink, SinkError, TallySink};
use depin_operator::verifier::state::index::{Declared, NodeIndex};
use depin_proof::RejectReason;
use depin_proof::identity::NodeKey;
use depin_proof::storage::{SectorId, StorageParams, answer_challenge};
use depin_proto::config::Role;
use depin_proto::v1::{self, agent_message::Body as Out, verifier_message::Body as In};
use depin_proto::wire::{self, Filed};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::*;

fn key(seed: u8) -> NodeKey {
    NodeKey::from_seed([seed; 32])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_storage_and_gpu_agents_get_accepted_receipts_and_tallies_rise() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    let (storage_key, gpu_key) = (key(1), key(2));
    index.upsert(entry(
        Role::Storage,
        "sn",
        &storage_key.public(),
        storage_declared(2),
    ));
    index.upsert(entry(
        Role::Gpu,
        "gw",
        &gpu_key.public(),
        Declared::Gpu {
            declared_tops: 0.001,
        },
    ));
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let storage = storage_agent(&verifier.endpoint, "sn", storage_key, 2);
    let gpu = gpu_agent(&verifier.endpoint, "gw", gpu_key);

    let accepted = |name: &str| sink.tally("fleet", name).map_or(0, |t| t.accepted);
    eventually(20, "both sectors proven", || accepted("sn") >= 2).await;
    eventually(20, "two GPU proofs", || accepted("gw") >= 2).await;

    let sn = sink.tally("fleet", "sn").unwrap();
    assert_eq!(sn.rejected, 0, "{sn:?}");
    assert_eq!(
        sn.work_units,
        Some((u128::from(sn.accepted) * u128::from(SECTOR)).to_string())
    );
    assert!(sn.last_accepted_time.is_some());
    let gw = sink.tally("fleet", "gw").unwrap();
    assert_eq!(gw.rejected, 0, "{gw:?}");
    assert_eq!(
        gw.work_units,
        // The test class's chain: 2n³K int8 operations at n = 256, K = 4.
        Some((u128::from(gw.accepted) * 2 * 256u128.pow(3) * 4).to_string())
    );
    eventually(5, "agents saw their receipts", || {
        storage.accepted("storage") >= 2 && gpu.accepted("gpu") >= 2
    })
    .await;
    let m = &verifier.verifier.metrics;
    assert!(m.accepted("StorageNode") >= 2 && m.accepted("GpuWorker") >= 2);
    assert!(m.challenges_issued.with_label_values(&["GpuWorker"]).get() >= 2);
    assert!(storage.metrics.committed_bytes.get() == i64::try_from(2 * SECTOR).unwrap());
    assert!(gpu.metrics.gpu_backend.with_label_values(&["cpu"]).get() == 1);
    storage.stop().await;
    gpu.stop().await;
    verifier.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_key_is_refused_with_unknown_node() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let refused = Scripted::open(&verifier.endpoint, key(9))
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(
        refused.message().starts_with("UnknownNode"),
        "{}",
        refused.message()
    );
    // The real agent keeps retrying and says it is refused.
    let agent = gpu_agent(&verifier.endpoint, "stranger", key(9));
    eventually(10, "agent reports refused", || {
        agent.metrics.session_state.get() == 3
    })
    .await;
    assert!(
        verifier
            .verifier
            .metrics
            .rejected("Unknown", RejectReason::UnknownNode)
            >= 2
    );
    assert_eq!(sink.writes(), 0);
    agent.stop().await;
    verifier.stop().await;
}

/// A scripted storage node with one in-memory sector, sealed like a real agent's (the
/// verifier challenges a root only once its seal checks out); returns its first challenge.
async fn scripted_storage(
    endpoint: &str,
    node: NodeKey,
) -> (Scripted, Vec<u8>, depin_proof::storage::SectorTree) {
    let (sealed, tree) = depin_proof::storage::commit_sealed(
        &node.public(),
        SectorId(0),
        SECTOR,
        &StorageParams::default(),
    )
    .unwrap();
    let data = sealed.to_bytes();
    let mut agent = Scripted::open(endpoint, node).await.unwrap();
    let signed = tree.sign(&agent.node);
    agent
        .send(Out::SectorCommitments(v1::SectorCommitments {
            commitments: vec![wire::commitment_to_wire(&signed)],
        }))
        .await;
    let receipts = agent
        .next_where(|m| {
            if let In::CommitmentReceipts(r) = m {
                Some(r)
            } else {
                None
            }
        })
        .await;
    assert!(receipts.receipts[0].accepted, "{receipts:?}");
    (agent, data, tree)
}

fn answer(
    agent: &Scripted,
    data: &[u8],
    tree: &depin_proof::storage::SectorTree,
    w: &v1::StorageChallenge,
) -> Out {
    let (challenge, k) = wire::storage_challenge_from_wire(w).unwrap();
    let params = StorageParams {
        challenges_per_deadline: k,
        ..StorageParams::default()
    };
    let response = answer_challenge(
        tree,
        &challenge,
        &mut std::io::Cursor::new(data),
        &agent.node.public(),
        &agent.session_key,
        &params,
    )
    .unwrap();
    let filed = Filed {
        challenge: wire::challenge_from_wire(&w.challenge_id).unwrap(),
        session_key: agent.session_key.public(),
        message: response,
    };
    Out::StorageResponse(wire::storage_response_to_wire(&filed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_response_is_rejected_as_replay_and_counted_once() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    index.upsert(entry(
        Role::Storage,
        "sn",
        &key(3).public(),
        storage_declared(1),
    ));
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let (mut agent, data, tree) = scripted_storage(&verifier.endpoint, key(3)).await;
    let challenge = agent
        .next_where(|m| {
            if let In::StorageChallenge(c) = m {
                Some(c)
            } else {
                None
            }
        })
        .await;
    let response = answer(&agent, &data, &tree, &challenge);
    agent.send(response.clone()).await;
    let (first, _) = agent.receipt().await;
    assert_eq!((first.verdict, first.recorded), (Ok(()), true));
    assert_eq!(first.tally.map(|t| t.accepted), Some(1));

    agent.send(response).await;
    let (replay, wire_replay) = agent.receipt().await;
    assert_eq!(
        (replay.verdict, replay.recorded),
        (Err(RejectReason::Replay), false)
    );
    let original = wire::receipt_from_wire(
        agent.node.public(),
        wire_replay.original.as_deref().unwrap(),
    )
    .unwrap();
    assert_eq!(original, first, "a replay carries the original receipt");

    let tally = sink.tally("fleet", "sn").unwrap();
    assert_eq!(
        (tally.accepted, tally.rejected),
        (1, 0),
        "counted once: {tally:?}"
    );
    assert_eq!(
        verifier
            .verifier
            .metrics
            .rejected("StorageNode", RejectReason::Replay),
        1
    );
    verifier.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_storage_response_is_rejected_after_the_window_and_recorded() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    index.upsert(entry(
        Role::Storage,
        "sn",
        &key(4).public(),
        storage_declared(1),
    ));
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let (mut agent, data, tree) = scripted_storage(&verifier.endpoint, key(4)).await;
    let challenge = agent
        .next_where(|m| {
            if let In::StorageChallenge(c) = m {
                Some(c)
            } else {
                None
            }
        })
        .await;
    let response = answer(&agent, &data, &tree, &challenge);
    let late_by = challenge
        .closes_at_ms
        .saturating_sub(depin_operator::verifier::now_ms())
        + 150;
    tokio::time::sleep(Duration::from_millis(late_by)).await;
    agent.send(response).await;
    let (receipt, _) = agent.receipt().await;
    assert_eq!(
        (receipt.verdict, receipt.recorded),
        (Err(RejectReason::AfterWindow), true)
    );
    let tally = sink.tally("fleet", "sn").unwrap();
    assert_eq!(tally.rejected_by_reason.get("AfterWindow"), Some(&1));
    assert_eq!(tally.last_reject_reason.as_deref(), Some("AfterWindow"));
    let m = &verifier.verifier.metrics;
    assert_eq!(m.rejected("StorageNode", RejectReason::AfterWindow), 1);
    assert!(m.deadlines_missed.with_label_values(&["StorageNode"]).get() >= 1);
    verifier.stop().await;
}

/// A scripted GPU worker's commitment to its first challenge, sent after `delay`.
async fn commit_gpu(agent: &mut Scripted, delay: Duration) -> depin_proof::gpu::ChainWork {
    let w = agent
        .next_where(|m| {
            if let In::GpuChallenge(c) = m {
                Some(c)
            } else {
                None
            }
        })
        .await;
    let challenge = depin_proto::gpu_wire::chain_challenge_from_wire(&w).unwrap();
    let work = depin_proof::gpu::ChainWork::compute(&challenge, &agent.node.public(), 1).unwrap();
    tokio::time::sleep(delay).await;
    let commitment = work.commit(&agent.session_key);
    agent
        .send(Out::GpuCommitment(
            depin_proto::gpu_wire::chain_commitment_to_wire(
                &agent.session_key.public(),
                &commitment,
            ),
        ))
        .await;
    work
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_late_gpu_commitments_are_rejected_and_recorded() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    index.upsert(entry(
        Role::Gpu,
        "fast-claim",
        &key(5).public(),
        Declared::Gpu { declared_tops: 1e6 },
    ));
    index.upsert(entry(
        Role::Gpu,
        "late",
        &key(6).public(),
        Declared::Gpu {
            declared_tops: 0.001,
        },
    ));
    // A class far above what this machine does: its deadline (W / P_c) is under a
    // millisecond, so the claimant's honest chain arrives TooSlow (before the close).
    let test_class = settings().gpu_classes[0].clone();
    let claimed = depin_proof::gpu::GpuClass {
        name: "datacenter".into(),
        min_tops: 1000.0,
        ..test_class.clone()
    };
    let strict = Settings {
        gpu_classes: vec![test_class, claimed],
        gpu_interval: Duration::from_secs(60),
        ..settings()
    };
    let verifier = start(strict, index, sink.clone(), "127.0.0.1:0").await;

    let mut claimant = Scripted::open(&verifier.endpoint, key(5)).await.unwrap();
    commit_gpu(&mut claimant, Duration::ZERO).await;
    let (receipt, _) = claimant.receipt().await;
    assert_eq!(
        (receipt.verdict, receipt.recorded),
        (Err(RejectReason::TooSlow), true)
    );

    // The test class closes at 2 × 269 ms + 200 ms: a commitment a second in is late.
    let mut late = Scripted::open(&verifier.endpoint, key(6)).await.unwrap();
    commit_gpu(&mut late, Duration::from_millis(1_000)).await;
    let (receipt, _) = late.receipt().await;
    assert_eq!(
        (receipt.verdict, receipt.recorded),
        (Err(RejectReason::AfterWindow), true)
    );

    assert_eq!(
        sink.tally("fleet", "fast-claim")
            .unwrap()
            .rejected_by_reason
            .get("TooSlow"),
        Some(&1)
    );
    assert_eq!(
        sink.tally("fleet", "late")
            .unwrap()
            .rejected_by_reason
            .get("AfterWindow"),
        Some(&1)
    );
    let m = &verifier.verifier.metrics;
    assert_eq!(m.rejected("GpuWorker", RejectReason::TooSlow), 1);
    assert_eq!(m.rejected("GpuWorker", RejectReason::AfterWindow), 1);
    assert_eq!(
        m.deadlines_missed.with_label_values(&["GpuWorker"]).get(),
        1
    );
    verifier.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_proof_survives_a_reconnect_between_commitment_and_opening() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    index.upsert(entry(
        Role::Gpu,
        "gw",
        &key(7).public(),
        Declared::Gpu {
            declared_tops: 0.001,
        },
    ));
    let slow = Settings {
        gpu_interval: Duration::from_secs(60),
        ..settings()
    };
    let verifier = start(slow, index, sink.clone(), "127.0.0.1:0").await;
    let mut first = Scripted::open(&verifier.endpoint, key(7)).await.unwrap();
    let work = commit_gpu(&mut first, Duration::ZERO).await;
    let request = first
        .next_where(|m| {
            if let In::RowRequest(r) = m {
                Some(r)
            } else {
                None
            }
        })
        .await;
    let request = depin_proto::gpu_wire::sample_request_from_wire(&request).unwrap();
    // The opening is signed by the first session's key, but sent on a new connection.
    let opening = work.open(&request, &first.session_key);
    let opening = Out::GpuOpening(depin_proto::gpu_wire::chain_opening_to_wire(
        &first.session_key.public(),
        &opening,
    ));
    drop(first);
    let mut second = Scripted::open(&verifier.endpoint, key(7)).await.unwrap();
    second.send(opening).await;
    let (receipt, _) = second.receipt().await;
    assert_eq!((receipt.verdict, receipt.recorded), (Ok(()), true));
    assert_eq!(sink.tally("fleet", "gw").unwrap().accepted, 1);
    verifier.stop().await;
}

/// Fails the first `failures` writes, then stores in memory.
struct FlakySink {
    inner: MemorySink,
    failures: AtomicUsize,
}

impl TallySink for FlakySink {
    fn load<'a>(
        &'a self,
        node: &'a depin_operator::verifier::state::index::NodeId,
    ) -> BoxFuture<'a, Result<depin_operator::verifier::decide::tally::NodeTallies, SinkError>>
    {
        self.inner.load(node)
    }

    fn store<'a>(
        &'a self,
        node: &'a depin_operator::verifier::state::index::NodeId,
        tally: &'a depin_operator::verifier::decide::tally::NodeTallies,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Box::pin(async {
                Err(SinkError::Api {
                    node: "sn".into(),
                    message: "apiserver down".into(),
                })
            });
        }
        self.inner.store(node, tally)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_receipt_without_a_durable_write_and_the_resend_counts_once() {
    let index = NodeIndex::new();
    // Writes fail only once armed (below), after the sector ledger is durable.
    let sink = Arc::new(FlakySink {
        inner: MemorySink::default(),
        failures: AtomicUsize::new(0),
    });
    index.upsert(entry(
        Role::Storage,
        "sn",
        &key(8).public(),
        storage_declared(1),
    ));
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let (mut agent, data, tree) = scripted_storage(&verifier.endpoint, key(8)).await;
    let challenge = agent
        .next_where(|m| {
            if let In::StorageChallenge(c) = m {
                Some(c)
            } else {
                None
            }
        })
        .await;
    let response = answer(&agent, &data, &tree, &challenge);
    eventually(20, "the accepted sector is durable", || {
        sink.inner.tallies("fleet", "sn").storage.is_some()
    })
    .await;
    // Initial attempt + 2 retries fail: the write is given up and the session cut.
    sink.failures.store(3, Ordering::SeqCst);
    agent.send(response.clone()).await;
    let cut = loop {
        match agent.next().await {
            Err(status) => break status,
            Ok(In::Receipt(r)) => panic!("receipt before the result was durable: {r:?}"),
            Ok(_) => {}
        }
    };
    assert_eq!(cut.code(), tonic::Code::Unavailable);
    assert_eq!(sink.inner.tally("fleet", "sn").map_or(0, |t| t.accepted), 0);
    // The agent reconnects and resends the same response (signed by its old session key).
    let mut again = Scripted::open(&verifier.endpoint, key(8)).await.unwrap();
    again.send(response).await;
    let (receipt, _) = again.receipt().await;
    assert_eq!((receipt.verdict, receipt.recorded), (Ok(()), true));
    assert_eq!(sink.inner.tally("fleet", "sn").unwrap().accepted, 1);
    verifier.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_verifier_continues_the_tally_without_loss_or_double_counting() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    index.upsert(entry(
        Role::Gpu,
        "gw",
        &key(10).public(),
        Declared::Gpu {
            declared_tops: 0.001,
        },
    ));
    let first = start(settings(), index.clone(), sink.clone(), "127.0.0.1:0").await;
    let addr = first.addr.to_string();
    let agent = gpu_agent(&first.endpoint, "gw", key(10));
    let accepted = || sink.tally("fleet", "gw").map_or(0, |t| t.accepted);
    eventually(20, "two proofs before the restart", || accepted() >= 2).await;
    let decided_by_first = first.verifier.metrics.accepted("GpuWorker");
    first.stop().await;
    let before = accepted();
    assert!(
        before <= decided_by_first,
        "nothing recorded that was not decided"
    );

    let second = start(settings(), index.clone(), sink.clone(), &addr).await;
    eventually(20, "two more proofs after the restart", || {
        accepted() >= before + 2
    })
    .await;
    let acknowledged = agent.accepted("gpu");
    agent.stop().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let decided = decided_by_first + second.verifier.metrics.accepted("GpuWorker");
    let total = accepted();
    assert!(
        total <= decided,
        "never counted twice: {total} recorded, {decided} decided"
    );
    assert!(
        acknowledged <= total,
        "every acknowledged proof is in the tally: {acknowledged} > {total}"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_and_crowding_agents_get_resource_exhausted() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    index.upsert(entry(
        Role::Storage,
        "sn",
        &key(11).public(),
        storage_declared(1),
    ));
    index.upsert(entry(
        Role::Storage,
        "sn-crowd",
        &key(13).public(),
        storage_declared(1),
    ));
    let tight = Settings {
        session_rate: 2.0,
        session_burst: 5,
        max_sessions: 1,
        ..settings()
    };
    let verifier = start(tight, index, sink, "127.0.0.1:0").await;
    let mut flooder = Scripted::open(&verifier.endpoint, key(11)).await.unwrap();
    let crowd = Scripted::open(&verifier.endpoint, key(13))
        .await
        .err()
        .expect("another node over the session limit");
    assert_eq!(crowd.code(), tonic::Code::ResourceExhausted);
    for _ in 0..20 {
        flooder
            .send(Out::SectorCommitments(v1::SectorCommitments::default()))
            .await;
    }
    let cut = loop {
        if let Err(status) = flooder.next().await {
            break status;
        }
    };
    assert_eq!(cut.code(), tonic::Code::ResourceExhausted);
    let refused = &verifier.verifier.metrics.sessions_refused;
    assert_eq!(refused.with_label_values(&["RateLimited"]).get(), 1);
    assert_eq!(refused.with_label_values(&["AtCapacity"]).get(), 1);
    verifier.stop().await;
}

/// Opens a session stream and never says hello (an unauthenticated connection).
async fn silent(
    endpoint: &str,
) -> Result<
    (
        tokio::sync::mpsc::Sender<v1::AgentMessage>,
        tonic::Streaming<v1::VerifierMessage>,
    ),
    tonic::Status,
> {
    let mut client = v1::verifier_client::VerifierClient::connect(endpoint.to_string())
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let inbound = client
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok((tx, inbound))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_cannot_take_a_nodes_session_slot() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    index.upsert(entry(
        Role::Storage,
        "sn",
        &key(12).public(),
        storage_declared(1),
    ));
    let tight = Settings {
        max_sessions: 1,
        hello_timeout: Duration::from_secs(4),
        ..settings()
    };
    let budget = depin_operator::verifier::handshake_budget(tight.max_sessions);
    let verifier = start(tight, index, sink, "127.0.0.1:0").await;
    // The flood fills the handshake budget, not the one session slot.
    let mut flood = Vec::new();
    for _ in 0..budget {
        flood.push(silent(&verifier.endpoint).await.expect("a handshake slot"));
    }
    let Err(over) = silent(&verifier.endpoint).await else {
        panic!("a connection over the handshake budget was served");
    };
    assert_eq!(over.code(), tonic::Code::ResourceExhausted, "{over}");
    let refused = verifier.verifier.metrics.sessions_refused.clone();
    assert_eq!(
        refused.with_label_values(&["HelloTimeout"]).get(),
        0,
        "the flood was opened inside one hello timeout"
    );
    // Each silent connection is cut at the hello timeout; then the node gets its slot.
    eventually(10, "the flood timed out", || {
        refused.with_label_values(&["HelloTimeout"]).get() == u64::try_from(budget).unwrap()
    })
    .await;
    let node = Scripted::open(&verifier.endpoint, key(12))
        .await
        .expect("the node gets the session slot after the flood timed out");
    assert_eq!(
        refused.with_label_values(&["HandshakesAtCapacity"]).get(),
        1
    );
    // A second session of the same node replaces the first (one live session per node),
    // so a restarted agent is not locked out by its old connection.
    let mut old = node;
    let _new = Scripted::open(&verifier.endpoint, key(12))
        .await
        .expect("the newer session takes over the node's slot");
    let ended = loop {
        if let Err(status) = old.next().await {
            break status;
        }
    };
    assert_eq!(ended.code(), tonic::Code::Aborted, "{ended}");
    assert!(ended.message().starts_with("Replaced"), "{ended}");
    drop(flood);
    verifier.stop().await;
}

/// An impostor verifier on the network (any key but the pinned one) gets nothing from an
/// agent that pins the operator's key: no hello, no session, no proof, so nothing it could
/// acknowledge out of the agent's outbox; the same agent proves normally to the real one.
/// Unpinned, the impostor would have had its session (the control row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_pins_the_verifier_key_refuses_an_impostor() {
    let real_key = NodeKey::from_seed([41; 32]);
    let index = NodeIndex::new();
    let node = NodeKey::generate();
    index.upsert(entry(
        Role::Gpu,
        "gpu-pinned",
        &node.public(),
        Declared::Gpu {
            declared_tops: 0.001,
        },
    ));
    let sink = Arc::new(MemorySink::default());
    let impostor = start(settings(), index.clone(), sink.clone(), "127.0.0.1:0").await;
    let real = start_with_key(
        settings(),
        real_key.clone(),
        index.clone(),
        sink,
        "127.0.0.1:0",
    )
    .await;
    let pinned = |endpoint: &str| {
        let mut config = agent_config(Role::Gpu, "gpu-pinned", endpoint);
        config.gpu = Some(depin_proto::config::GpuConfig {
            gpus: 1,
            model: "cpu".into(),
            declared_tops: 0.001,
        });
        config.verifier.public_key = Some(real_key.public().to_hex());
        config
    };
    let sessions = |r: &Running| {
        r.verifier
            .metrics
            .active_sessions
            .with_label_values(&["GpuWorker"])
            .get()
    };
    let challenged = |r: &Running| {
        r.verifier
            .metrics
            .challenges_issued
            .with_label_values(&["GpuWorker"])
            .get()
    };

    let fooled = spawn_agent(pinned(&impostor.endpoint), node.clone());
    eventually(20, "the agent notices the impostor", || {
        fooled.metrics.impostors.get() >= 2
    })
    .await;
    assert_eq!(sessions(&impostor), 0, "no session with the impostor");
    assert_eq!(challenged(&impostor), 0, "the impostor never got a hello");
    fooled.stop().await;

    let honest = spawn_agent(pinned(&real.endpoint), node.clone());
    eventually(30, "proofs accepted by the pinned verifier", || {
        honest.accepted("gpu") > 0
    })
    .await;
    assert_eq!(honest.metrics.impostors.get(), 0);
    honest.stop().await;

    // Control: without the pin the impostor gets its session and challenges.
    let mut unpinned = pinned(&impostor.endpoint);
    unpinned.verifier.public_key = None;
    let open = spawn_agent(unpinned, node);
    eventually(20, "an unpinned agent talks to the impostor", || {
        challenged(&impostor) > 0
    })
    .await;
    open.stop().await;
    impostor.stop().await;
    real.stop().await;
}
