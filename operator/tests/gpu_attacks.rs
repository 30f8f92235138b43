//! GPU availability cheats played over the real protocol against the real verifier and
//! settled in a closed epoch: answer one round and idle, reconnect in a loop to be
//! challenged more often, open parallel sessions for one identity (the newest replaces
//! the one before). Rounds belong to the
//! node (one challenge per round, whichever session asks) and every round not settled is
//! recorded as `NoResponse`, so availability counts the rounds held, not the ones chosen.

mod support;

use depin_operator::verifier::Settings;
use depin_operator::verifier::persist::sink::MemorySink;
use depin_operator::verifier::state::index::{Declared, NodeEntry, NodeIndex};
use depin_proof::RejectReason;
use depin_proof::gpu::ChainWork;
use depin_proof::identity::NodeKey;
use depin_proto::config::Role;
use depin_proto::gpu_wire;
use depin_proto::v1::{agent_message::Body as Out, verifier_message::Body as In};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use support::epoch;
use support::*;

const EPOCH_SECONDS: u64 = 6;
const ROUND_MS: u64 = 300;

/// Rounds of 300 ms, a 250 ms deadline (accounted 500 ms after a round ends).
fn round_settings() -> Settings {
    let base = settings();
    Settings {
        gpu: depin_proof::gpu::GpuParams {
            deadline_ms: 250,
            ..base.gpu
        },
        gpu_interval: Duration::from_millis(ROUND_MS),
        ..base
    }
}

fn gpu_node(name: &str, key: &NodeKey) -> NodeEntry {
    entry(
        Role::Gpu,
        name,
        &key.public(),
        Declared::Gpu {
            declared_tops: 0.001,
        },
    )
}

/// How a scripted session's attempt at one round ended.
enum Round {
    /// Answered in full; the verifier sent the receipt.
    Answered,
    /// No challenge came within the wait.
    Quiet,
    /// The verifier ended the session, with this message.
    Ended(String),
}

/// The next message within `wait`: None on silence, Err when the stream ended.
async fn next_within(agent: &mut Scripted, wait: Duration) -> Result<Option<In>, String> {
    match tokio::time::timeout(wait, agent.next()).await {
        Err(_) => Ok(None),
        Ok(Ok(message)) => Ok(Some(message)),
        Ok(Err(status)) => Err(status.message().to_string()),
    }
}

/// Waits up to `wait` for a GPU challenge and answers it in full (commitment, then the
/// requested rows, then the receipt).
async fn answer_one(agent: &mut Scripted, wait: Duration) -> Round {
    let challenge = loop {
        match next_within(agent, wait).await {
            Ok(Some(In::GpuChallenge(c))) => break c,
            Ok(Some(_)) => continue,
            Ok(None) => return Round::Quiet,
            Err(end) => return Round::Ended(end),
        }
    };
    let challenge = gpu_wire::chain_challenge_from_wire(&challenge).expect("challenge");
    let work = ChainWork::compute(&challenge, &agent.node.public(), 1).expect("computes");
    let commitment = work.commit(&agent.session_key);
    let sent = agent
        .try_send(Out::GpuCommitment(gpu_wire::chain_commitment_to_wire(
            &agent.session_key.public(),
            &commitment,
        )))
        .await;
    if !sent {
        return ended(agent).await;
    }
    let request = loop {
        match next_within(agent, Duration::from_secs(5)).await {
            Ok(Some(In::RowRequest(r))) => break r,
            Ok(Some(_)) => continue,
            Ok(None) => return Round::Quiet,
            Err(end) => return Round::Ended(end),
        }
    };
    let request = gpu_wire::sample_request_from_wire(&request).expect("samples");
    let opening = work.open(&request, &agent.session_key);
    let sent = agent
        .try_send(Out::GpuOpening(gpu_wire::chain_opening_to_wire(
            &agent.session_key.public(),
            &opening,
        )))
        .await;
    if !sent {
        return ended(agent).await;
    }
    loop {
        match next_within(agent, Duration::from_secs(5)).await {
            Ok(Some(In::Receipt(_))) => return Round::Answered,
            Ok(Some(_)) => continue,
            Ok(None) => return Round::Quiet,
            Err(end) => return Round::Ended(end),
        }
    }
}

/// How the verifier ended a session whose request stream is already closed.
async fn ended(agent: &mut Scripted) -> Round {
    loop {
        match next_within(agent, Duration::from_secs(5)).await {
            Ok(Some(_)) => continue,
            Ok(None) => return Round::Ended("no status within 5 s".into()),
            Err(end) => return Round::Ended(end),
        }
    }
}

/// Answers its first challenge, then stays connected and ignores every later one.
async fn one_shot(endpoint: String, key: NodeKey, stop: tokio::sync::watch::Receiver<bool>) {
    let mut agent = Scripted::open(&endpoint, key).await.expect("opens");
    assert!(matches!(
        answer_one(&mut agent, Duration::from_secs(5)).await,
        Round::Answered
    ));
    while !*stop.borrow() {
        // Drain challenges unanswered.
        if let Err(end) = next_within(&mut agent, Duration::from_millis(100)).await {
            panic!("the one-shot session ended: {end}");
        }
    }
}

/// Opens a fresh session every time, answering whatever challenge each one gets: before
/// rounds were the node's, every new session was challenged at once.
async fn reconnector(
    endpoint: String,
    key: NodeKey,
    answered: Arc<AtomicU64>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let mut agent = Scripted::open(&endpoint, key.clone()).await.expect("opens");
        if let Round::Answered = answer_one(&mut agent, Duration::from_millis(60)).await {
            answered.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Keeps one session open and answers every challenge it gets, until the verifier ends
/// it; returns how it ended (None: still live at the stop).
async fn parallel_session(
    mut agent: Scripted,
    answered: Arc<AtomicU64>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<String> {
    while !*stop.borrow() {
        match answer_one(&mut agent, Duration::from_millis(100)).await {
            Round::Answered => {
                answered.fetch_add(1, Ordering::SeqCst);
            }
            Round::Quiet => {}
            Round::Ended(end) => return Some(end),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_rounds_count_and_extra_sessions_earn_no_extra_rounds() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    epoch::register_policy(&index, "default", EPOCH_SECONDS);
    let keys: Vec<NodeKey> = (0..4).map(|_| NodeKey::generate()).collect();
    let honest = gpu_node("honest", &keys[0]);
    let lazy = gpu_node("one-in-many", &keys[1]);
    let looper = gpu_node("reconnector", &keys[2]);
    let hydra = gpu_node("three-sessions", &keys[3]);
    for node in [&honest, &lazy, &looper, &hydra] {
        index.upsert(node.clone());
    }
    let verifier = start(round_settings(), index, sink.clone(), "127.0.0.1:0").await;
    let n = epoch::start_of_next_epoch(EPOCH_SECONDS).await;
    let honest_agent = gpu_agent(&verifier.endpoint, "honest", keys[0].clone());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (looped, hydra_answered) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let plays = vec![
        tokio::spawn(one_shot(
            verifier.endpoint.clone(),
            keys[1].clone(),
            stop.clone(),
        )),
        tokio::spawn(reconnector(
            verifier.endpoint.clone(),
            keys[2].clone(),
            looped.clone(),
            stop.clone(),
        )),
    ];
    // Three sessions of one node, opened one after the other: each newer one ends the
    // one before, so only the last stays live.
    let mut heads = Vec::new();
    for _ in 0..3 {
        let session = Scripted::open(&verifier.endpoint, keys[3].clone())
            .await
            .expect("opens");
        heads.push(tokio::spawn(parallel_session(
            session,
            hydra_answered.clone(),
            stop.clone(),
        )));
    }
    epoch::end_of_epoch(n, EPOCH_SECONDS, Duration::from_millis(900)).await;
    stop_tx.send(true).expect("stop");
    for play in plays {
        play.await.expect("rogue ran");
    }
    let mut ends = Vec::new();
    for head in heads {
        ends.push(head.await.expect("session ran"));
    }
    honest_agent.stop().await;
    verifier.stop().await;

    // Epoch n's tally: the current one, or the previous once n + 1 has begun.
    let tally = |e: &NodeEntry| {
        let t = sink.tallies(&e.id.namespace, &e.id.name);
        [t.proofs, t.previous]
            .into_iter()
            .flatten()
            .find(|p| p.epoch == n)
            .unwrap_or_default()
    };
    let (h, l, r, y) = (tally(&honest), tally(&lazy), tally(&looper), tally(&hydra));
    // An epoch holds EPOCH_SECONDS × 1000 / ROUND_MS = 20 rounds; results land in the
    // epoch they are recorded in, so a round either side may cross the boundary.
    let rounds = EPOCH_SECONDS * 1000 / ROUND_MS;
    eprintln!(
        "tallies: honest {h:?}\n lazy {l:?}\n looper {r:?}\n hydra {y:?}\n answered {looped:?} {hydra_answered:?}"
    );
    assert!(
        h.accepted >= rounds / 2,
        "the honest agent answers most rounds: {h:?}"
    );
    assert_eq!(l.accepted, 1, "{l:?}");
    let missed =
        |t: &depin_crds::ProofTally| t.rejected_by_reason.get("NoResponse").copied().unwrap_or(0);
    assert!(
        missed(&l) >= rounds - 4,
        "every round the one-shot node ignored is a recorded miss: {l:?}"
    );
    for (name, t, answered) in [
        ("reconnector", &r, looped.load(Ordering::SeqCst)),
        ("three sessions", &y, hydra_answered.load(Ordering::SeqCst)),
    ] {
        assert!(
            t.accepted <= rounds + 2 && answered <= rounds + 4,
            "{name} was challenged more than once per round: {answered} answered, {t:?}"
        );
    }

    assert!(
        ends[..2]
            .iter()
            .all(|end| end.as_deref().is_some_and(|e| e.starts_with("Replaced"))),
        "the older sessions are replaced: {ends:?}"
    );
    assert_eq!(ends[2], None, "the newest session stays live: {ends:?}");

    let policy = epoch::policy(&epoch::policy_yaml(EPOCH_SECONDS));
    let closed = epoch::close(&sink, &[&honest, &lazy, &looper, &hydra], &policy, n);
    let res = &closed.result;
    let (paid_h, paid_l) = (closed.paid_to(&honest), closed.paid_to(&lazy));
    assert!(paid_h > 0, "honest GPU unpaid: {res:?}");
    // Paid by availability: one answered round of ~20 earns about a twentieth.
    assert!(
        paid_l * 5 <= paid_h,
        "one answered round earned {paid_l} against the honest {paid_h}: {res:?}"
    );
    for (name, node) in [("reconnector", &looper), ("three sessions", &hydra)] {
        let paid = closed.paid_to(node);
        assert!(
            paid * 4 <= paid_h * 5,
            "{name} earned {paid}, more than an honest node's {paid_h} for the same rounds: {res:?}"
        );
    }
}

/// A CPU claiming a GPU class: a real agent (CPU backend) that declares 10 TOPS is
/// challenged every round with the chain of the class it claims, and computes it honestly,
/// but the class's deadline is W / P_c = 2·256³·4 / 10¹³ s ≈ 0.013 ms: every commitment is
/// `TooSlow`, and the closed epoch pays it nothing, while the CPU worker that claims the
/// CPU-sized class beside it (same chain shape, floor 0.0005 TOPS) is paid. Before chains
/// were sized per class, the measured 2n³ / (challenge → commitment) of a single product
/// decided the class, so a CPU answering for a GPU identity was paid as the class it
/// reached, and the claim itself cost nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_claiming_a_gpu_class_is_too_slow_every_round_and_earns_nothing() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    epoch::register_policy(&index, "default", EPOCH_SECONDS);
    let (honest_key, claimant_key) = (NodeKey::generate(), NodeKey::generate());
    let honest = gpu_node("cpu-honest", &honest_key);
    let claimant = entry(
        Role::Gpu,
        "cpu-as-gpu",
        &claimant_key.public(),
        Declared::Gpu {
            declared_tops: 10.0,
        },
    );
    index.upsert(honest.clone());
    index.upsert(claimant.clone());
    let base = round_settings();
    let gpu_class = depin_proof::gpu::GpuClass {
        name: "gpu".into(),
        min_tops: 10.0,
        ..base.gpu_classes[0].clone()
    };
    let settings = Settings {
        gpu_classes: vec![base.gpu_classes[0].clone(), gpu_class],
        ..base
    };
    let verifier = start(settings, index, sink.clone(), "127.0.0.1:0").await;
    let n = epoch::start_of_next_epoch(EPOCH_SECONDS).await;
    let honest_agent = gpu_agent(&verifier.endpoint, "cpu-honest", honest_key);
    let claimant_agent = gpu_agent(&verifier.endpoint, "cpu-as-gpu", claimant_key);
    epoch::end_of_epoch(n, EPOCH_SECONDS, Duration::from_millis(900)).await;
    honest_agent.stop().await;
    claimant_agent.stop().await;
    let too_slow = verifier
        .verifier
        .metrics
        .rejected("GpuWorker", RejectReason::TooSlow);
    verifier.stop().await;

    let tally = |e: &NodeEntry| {
        let t = sink.tallies(&e.id.namespace, &e.id.name);
        [t.proofs, t.previous]
            .into_iter()
            .flatten()
            .find(|p| p.epoch == n)
            .unwrap_or_default()
    };
    let c = tally(&claimant);
    assert_eq!(c.accepted, 0, "{c:?}");
    assert!(
        c.rejected_by_reason.get("TooSlow").copied().unwrap_or(0) >= 5 && too_slow >= 5,
        "the claimant computed and committed every round, too slowly: {c:?}"
    );
    let policy = epoch::policy(&epoch::policy_yaml(EPOCH_SECONDS));
    let closed = epoch::close(&sink, &[&honest, &claimant], &policy, n);
    let res = &closed.result;
    assert!(
        closed.paid_to(&honest) > 0,
        "the honest CPU worker is paid: {res:?}"
    );
    assert_eq!(
        closed.paid_to(&claimant),
        0,
        "the CPU claiming a GPU class: {res:?}"
    );
}
