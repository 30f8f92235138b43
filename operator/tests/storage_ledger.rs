//! The verifier's durable sector ledger over the real protocol, settled in closed epochs:
//! missed deadlines cost more than they save, a restarted verifier keeps accepted roots
//! (not audited again) and reputation, and a disqualified node earns nothing.

mod support;

use depin_operator::verifier::decide::tally::NodeTallies;
use depin_operator::verifier::persist::sink::{MemorySink, TallySink};
use depin_operator::verifier::state::index::{NodeEntry, NodeIndex};
use depin_proof::identity::NodeKey;
use depin_proof::storage::{
    CapacityLimit, ReputationParams, SealedSector, SectorId, SectorTree, StorageLedger,
    StorageParams, commit_sealed,
};
use depin_proto::config::Role;
use depin_proto::v1::{self, agent_message::Body as Out, verifier_message::Body as In};
use depin_proto::wire;
use std::sync::Arc;
use std::time::Duration;
use support::epoch;
use support::*;

const EPOCH_SECONDS: u64 = 4;

/// A sector this node sealed honestly (the test's agents keep it in memory).
fn sealed(node: &NodeKey) -> (SealedSector, SectorTree) {
    commit_sealed(
        &node.public(),
        SectorId(0),
        SECTOR,
        &StorageParams::default(),
    )
    .expect("seals")
}

/// Commits the sealed sector, then answers the challenges `answers(i)` picks (i counts
/// challenges from 0) until `stop`. Returns how many challenges came.
async fn play(
    mut agent: Scripted,
    answers: impl Fn(usize) -> bool,
    stop: tokio::sync::watch::Receiver<bool>,
) -> usize {
    let (sector, tree) = sealed(&agent.node);
    agent
        .send(Out::SectorCommitments(v1::SectorCommitments {
            commitments: vec![wire::commitment_to_wire(&tree.sign(&agent.node))],
        }))
        .await;
    let mut challenged = 0;
    while !*stop.borrow() {
        let next = tokio::time::timeout(Duration::from_millis(200), agent.next()).await;
        let Ok(Ok(In::StorageChallenge(w))) = next else {
            continue;
        };
        if answers(challenged) {
            answer_storage(&agent, &tree, &sector.to_bytes(), &w).await;
        }
        challenged += 1;
    }
    challenged
}

/// Stores in `sink` what a previous leader left for `node`: its sealed root accepted, and
/// `failures` failed audits behind it. Returns the reputation score it left.
async fn left_by_a_previous_leader(
    sink: &MemorySink,
    node: &NodeEntry,
    key: &NodeKey,
    failures: usize,
) -> f64 {
    let rp = ReputationParams::default();
    let mut left = StorageLedger::new(&rp);
    let (_, tree) = sealed(key);
    let limit = CapacityLimit {
        sector_bytes: SECTOR,
        capacity_bytes: SECTOR,
    };
    left.commit(tree.commitment(), &limit, 0, &rp)
        .expect("accepted");
    for _ in 0..failures {
        left.reputation = left.reputation.after_audit(false, &rp);
    }
    let status = depin_operator::verifier::persist::storage::to_status(&left);
    sink.store(
        &node.id,
        &NodeTallies {
            storage: Some(status),
            ..NodeTallies::default()
        },
    )
    .await
    .expect("seeded");
    left.reputation.score()
}

fn node(index: &NodeIndex, name: &str, key: &NodeKey) -> NodeEntry {
    let e = entry(Role::Storage, name, &key.public(), storage_declared(1));
    index.upsert(e.clone());
    e
}

/// Runs `honest` (answers everything) and `rogue` (answers what `rogue_answers` picks)
/// for epochs `n` and `n + 1` on a verifier over `sink`; returns what each was paid.
async fn two_epochs(
    sink: Arc<MemorySink>,
    index: NodeIndex,
    (honest, honest_key): (&NodeEntry, NodeKey),
    (rogue, rogue_key): (&NodeEntry, NodeKey),
    rogue_answers: impl Fn(usize) -> bool + Send + 'static,
) -> (Running, u128, u128, usize) {
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    // Both play inside the two epochs that are closed, from their first challenge on.
    let n = epoch::start_of_next_epoch(EPOCH_SECONDS).await;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let honest_play = tokio::spawn(play(
        Scripted::open(&verifier.endpoint, honest_key)
            .await
            .expect("opens"),
        |_| true,
        stop.clone(),
    ));
    let rogue_play = tokio::spawn(play(
        Scripted::open(&verifier.endpoint, rogue_key)
            .await
            .expect("opens"),
        rogue_answers,
        stop,
    ));
    // Settle past the last deadline's accounting grace (2 s) before closing.
    epoch::end_of_epoch(n + 1, EPOCH_SECONDS, Duration::from_millis(2_600)).await;
    stop_tx.send(true).expect("stop");
    let honest_challenged = honest_play.await.expect("honest ran");
    let rogue_challenged = rogue_play.await.expect("rogue ran");
    assert!(
        honest_challenged >= 3 && rogue_challenged >= 3,
        "{honest_challenged} / {rogue_challenged}"
    );
    let policy = epoch::policy(&epoch::policy_yaml(EPOCH_SECONDS));
    let (mut honest_paid, mut rogue_paid) = (0, 0);
    for e in [n, n + 1] {
        let closed = epoch::close(&sink, &[honest, rogue], &policy, e);
        honest_paid += closed.paid_to(honest);
        rogue_paid += closed.paid_to(rogue);
    }
    (verifier, honest_paid, rogue_paid, rogue_challenged)
}

/// A node that keeps half its data answers half its deadlines. Each miss costs twice the
/// byte-periods a pass earns (`2 × missed`), so answering one deadline in two earns
/// max(0, P/2 − 2 · P/2) = 0, while the honest node beside it is paid. Before the verifier
/// accounted deadlines, it earned exactly half the honest share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_half_the_deadlines_earns_nothing() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    epoch::register_policy(&index, "default", EPOCH_SECONDS);
    let (honest_key, rogue_key) = (NodeKey::generate(), NodeKey::generate());
    let honest = node(&index, "ledger-honest-half", &honest_key);
    let rogue = node(&index, "ledger-half", &rogue_key);
    let (verifier, honest_paid, rogue_paid, _) = two_epochs(
        sink.clone(),
        index,
        (&honest, honest_key),
        (&rogue, rogue_key),
        |i| i % 2 == 0,
    )
    .await;
    verifier.stop().await;
    let rogue_status = sink.tallies("fleet", "ledger-half");
    let missed: u64 = [rogue_status.proofs, rogue_status.previous]
        .iter()
        .flatten()
        .filter_map(|t| t.storage.as_ref().map(|s| s.missed))
        .sum();
    assert!(missed >= 1, "the skipped deadlines are recorded as missed");
    let ledger = rogue_status.storage.expect("status.storage written");
    assert!(
        ledger.reputation.score.parse::<f64>().expect("score") < 1.0,
        "misses are failed audits: {:?}",
        ledger.reputation
    );
    assert!(honest_paid > 0, "the honest node is paid");
    assert_eq!(rogue_paid, 0, "half the deadlines earned {rogue_paid}");
}

/// A restarted verifier takes each accepted root back from `status.storage`: the sector is
/// challenged at once, without a second seal audit (a failover used to re-audit every
/// sector of the fleet, ~10 s each at 1 GiB), and the reputation it had carries over. Here
/// the restored reputation is one failed audit above the threshold (as a previous leader
/// left it): the first deadline this node then misses disqualifies it, and the closed
/// epochs pay it nothing although it proved deadlines, while the honest node is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_verifier_keeps_roots_and_reputation_and_disqualification_pays_nothing() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    epoch::register_policy(&index, "default", EPOCH_SECONDS);
    let (honest_key, rogue_key) = (NodeKey::generate(), NodeKey::generate());
    let honest = node(&index, "ledger-honest-dq", &honest_key);
    let rogue = node(&index, "ledger-dq", &rogue_key);
    // What the previous leader left: the rogue's sealed root accepted, and 40 failed
    // audits behind it (0.999^40 prior: one more failure crosses 0.96).
    let left = left_by_a_previous_leader(&sink, &rogue, &rogue_key, 40).await;
    assert!(left >= ReputationParams::default().disqualify_below);

    // The rogue answers its first two challenges, then stops.
    let (verifier, honest_paid, rogue_paid, _) = two_epochs(
        sink.clone(),
        index,
        (&honest, honest_key),
        (&rogue, rogue_key),
        |i| i < 2,
    )
    .await;
    let audits = |result: &str| {
        verifier
            .verifier
            .metrics
            .seal_audits
            .with_label_values(&[result])
            .get()
    };
    let (sealed_audits, wrong) = (audits("Sealed"), audits("WrongSeal"));
    verifier.stop().await;

    assert_eq!(
        (sealed_audits, wrong),
        (1, 0),
        "only the honest node's new root is audited; the restored one is not"
    );
    let rogue_status = sink.tallies("fleet", "ledger-dq");
    let accepted: u64 = [&rogue_status.proofs, &rogue_status.previous]
        .into_iter()
        .flatten()
        .chain(&rogue_status.unclosed)
        .map(|t| t.accepted)
        .sum();
    assert!(
        accepted >= 1,
        "the restored root was challenged and proven: {rogue_status:?}"
    );
    let ledger = rogue_status.storage.expect("status.storage");
    assert!(
        ledger.disqualified,
        "one more miss disqualifies: {:?}",
        ledger.reputation
    );
    assert!(
        rogue_status
            .proofs
            .and_then(|t| t.storage)
            .is_some_and(|s| s.disqualified),
        "the epoch's tally says so for the reward controller"
    );
    assert!(honest_paid > 0, "the honest node is paid");
    assert_eq!(rogue_paid, 0, "a disqualified node earned {rogue_paid}");
}

/// A node whose sector cannot be read declares its next deadline faulty instead of letting
/// it pass unanswered. Over the real protocol: a declaration for the next period is
/// accepted, one for the deadline already open is refused (`LateFaultDeclaration`), the
/// declared deadlines are accounted Faulted (half a miss, no failed audit: only the one
/// undeclared miss lowers reputation), and the closed epochs pay the node nothing for
/// deadlines it did not prove while the honest node is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_fault_costs_half_a_miss_and_no_audit() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    epoch::register_policy(&index, "default", EPOCH_SECONDS);
    let (honest_key, faulty_key) = (NodeKey::generate(), NodeKey::generate());
    let honest = node(&index, "ledger-honest-fault", &honest_key);
    let faulty = node(&index, "ledger-fault", &faulty_key);
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let n = epoch::start_of_next_epoch(EPOCH_SECONDS).await;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let honest_play = tokio::spawn(play(
        Scripted::open(&verifier.endpoint, honest_key)
            .await
            .expect("opens"),
        |_| true,
        stop.clone(),
    ));
    // The faulty node: proves its first deadline, then at every later challenge declares
    // the next one faulty (and, once, the open one) and answers nothing.
    let mut agent = Scripted::open(&verifier.endpoint, faulty_key)
        .await
        .expect("opens");
    let (sector, tree) = sealed(&agent.node);
    agent
        .send(Out::SectorCommitments(v1::SectorCommitments {
            commitments: vec![wire::commitment_to_wire(&tree.sign(&agent.node))],
        }))
        .await;
    let (mut challenged, mut receipts) = (0, Vec::new());
    let until = tokio::time::Instant::now() + epoch_end_in(n + 1, Duration::from_millis(2_600));
    while tokio::time::Instant::now() < until {
        let next = tokio::time::timeout(Duration::from_millis(200), agent.next()).await;
        match next {
            Ok(Ok(In::StorageChallenge(w))) => {
                if challenged == 0 {
                    answer_storage(&agent, &tree, &sector.to_bytes(), &w).await;
                } else {
                    let (c, _) = wire::storage_challenge_from_wire(&w).expect("challenge");
                    let mut periods = vec![c.deadline.period + 1];
                    if challenged == 1 {
                        periods.push(c.deadline.period); // too late: its window is open
                    }
                    for period in periods {
                        let d = depin_proof::storage::FaultDeclaration::sign(
                            &agent.session_key,
                            c.sector,
                            period,
                            c.deadline.index,
                        );
                        agent
                            .send(Out::FaultDeclaration(wire::fault_declaration_to_wire(&d)))
                            .await;
                    }
                }
                challenged += 1;
            }
            Ok(Ok(In::FaultReceipt(r))) => receipts.push((r.accepted, r.reason)),
            _ => {}
        }
    }
    stop_tx.send(true).expect("stop");
    honest_play.await.expect("honest ran");
    let declared = verifier
        .verifier
        .metrics
        .fault_declarations
        .with_label_values(&["Accepted"])
        .get();
    verifier.stop().await;

    assert!(challenged >= 4, "{challenged} challenges");
    assert!(
        receipts.iter().any(|(ok, _)| *ok),
        "a declaration for the next period is accepted: {receipts:?}"
    );
    assert!(
        receipts
            .iter()
            .any(|(ok, why)| !*ok && why == "LateFaultDeclaration"),
        "one for the open deadline is refused: {receipts:?}"
    );
    assert!(declared >= 2);
    let status = sink.tallies("fleet", "ledger-fault");
    let tallies: Vec<_> = [&status.proofs, &status.previous]
        .into_iter()
        .flatten()
        .chain(&status.unclosed)
        .filter_map(|t| t.storage.clone())
        .collect();
    let faulted: u64 = tallies.iter().map(|s| s.faulted).sum();
    let missed: u64 = tallies.iter().map(|s| s.missed).sum();
    assert!(faulted >= 2, "declared deadlines are Faulted: {tallies:?}");
    assert!(
        missed <= 1,
        "only the first unanswered deadline was undeclared: {tallies:?}"
    );
    let ledger = status.storage.expect("status.storage");
    assert_eq!(
        ledger.sectors[0].declared_faults, faulted,
        "{:?}",
        ledger.sectors[0]
    );
    // Faults are no audits: the score is what `missed` failures alone leave.
    assert!(
        ledger.reputation.beta <= missed as f64 + 1e-9,
        "declared faults lowered reputation: {:?} (missed {missed})",
        ledger.reputation
    );
    let policy = epoch::policy(&epoch::policy_yaml(EPOCH_SECONDS));
    let (mut honest_paid, mut faulty_paid) = (0, 0);
    for e in [n, n + 1] {
        let closed = epoch::close(&sink, &[&honest, &faulty], &policy, e);
        honest_paid += closed.paid_to(&honest);
        faulty_paid += closed.paid_to(&faulty);
    }
    assert!(honest_paid > 0, "the honest node is paid");
    assert_eq!(
        faulty_paid, 0,
        "deadlines declared faulty earned {faulty_paid}"
    );
}

/// How long until epoch `n` (of EPOCH_SECONDS) ends, plus `settle`.
fn epoch_end_in(n: u64, settle: Duration) -> Duration {
    let end_ms = (n + 1) * EPOCH_SECONDS * 1000;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    Duration::from_millis(end_ms.saturating_sub(now_ms)) + settle
}

/// The agent's side of fault declarations, end to end: a real storage agent proves its
/// sector, then the sector file disappears (a failed disk). The next challenge's read
/// fails, and the agent declares the sector's next deadline faulty on its own. The
/// verifier accepts it and the durable ledger records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_cannot_read_a_sector_declares_its_next_deadline() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    let key = NodeKey::generate();
    let entry = node(&index, "ledger-lost-disk", &key);
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let agent = storage_agent(&verifier.endpoint, &entry.id.name, key, 1);
    let accepted = || {
        sink.tally("fleet", "ledger-lost-disk")
            .map_or(0, |t| t.accepted)
    };
    eventually(30, "the sector proven once", || accepted() >= 1).await;
    let file = agent
        .data_dir()
        .expect("a storage agent has a data dir")
        .join("sectors/sector-0.bin");
    std::fs::remove_file(&file).expect("the sector file exists");
    let declared = || {
        verifier
            .verifier
            .metrics
            .fault_declarations
            .with_label_values(&["Accepted"])
            .get()
    };
    eventually(30, "the agent declared a fault", || declared() >= 1).await;
    eventually(10, "the declaration is durable", || {
        sink.tallies("fleet", "ledger-lost-disk")
            .storage
            .is_some_and(|l| l.sectors.iter().any(|s| s.declared_fault_period.is_some()))
    })
    .await;
    agent.stop().await;
    verifier.stop().await;
}

/// A StorageNode the verifier's index admits only after it started (the watch listed it
/// late, or its spec was fixed later) still gets its durable ledger back: its root is not
/// audited again and its reputation is the recorded one, though the deadline sweep had
/// already run over the nodes known before it. A one-shot restore at the first sweep
/// found no such node and left it an empty ledger, which its next write saved over the
/// durable one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_known_only_after_the_start_keeps_its_durable_ledger() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    let key = NodeKey::generate();
    let late = entry(
        Role::Storage,
        "ledger-late",
        &key.public(),
        storage_declared(1),
    );
    let score = left_by_a_previous_leader(&sink, &late, &key, 10).await;
    let verifier = start(settings(), index.clone(), sink.clone(), "127.0.0.1:0").await;
    // Let the deadline sweep run over an index without the node.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    index.upsert(late.clone());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let session = Scripted::open(&verifier.endpoint, key)
        .await
        .expect("opens");
    let played = tokio::spawn(play(session, |_| true, stop));
    let accepted = || sink.tally("fleet", "ledger-late").map_or(0, |t| t.accepted);
    eventually(30, "the restored root proven", || accepted() >= 1).await;
    stop_tx.send(true).expect("stop");
    played.await.expect("played");
    let audits = verifier
        .verifier
        .metrics
        .seal_audits
        .with_label_values(&["Sealed"])
        .get();
    verifier.stop().await;
    assert_eq!(audits, 0, "the recorded root was not audited again");
    let ledger = sink
        .tallies("fleet", "ledger-late")
        .storage
        .expect("status.storage");
    let now: f64 = ledger.reputation.score.parse().expect("score");
    assert!(
        now <= score + 1e-3,
        "the recorded reputation {score} carried over, not a fresh prior: {now}"
    );
}
