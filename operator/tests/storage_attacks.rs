//! Storage cheats played over the real protocol against the real verifier, settled in a
//! closed epoch: what the cheat is paid, next to an honest node of the same size.

mod support;

use depin_operator::verifier::persist::sink::MemorySink;
use depin_operator::verifier::state::index::{NodeEntry, NodeIndex};
use depin_proof::identity::NodeKey;
use depin_proof::storage::{SectorId, StorageParams, commit_sector};
use depin_proto::config::Role;
use depin_proto::v1::{self, agent_message::Body as Out, verifier_message::Body as In};
use depin_proto::wire;
use std::sync::Arc;
use std::time::Duration;
use support::epoch;
use support::*;

const EPOCH_SECONDS: u64 = 4;

/// The bytes of a one-sector tree, distinct per `seed`.
fn sector_data(seed: u8) -> Vec<u8> {
    (0..SECTOR)
        .map(|i| ((i % 251) as u8).wrapping_add(seed))
        .collect()
}

/// One honest storage node and one rogue of one sector each, registered under the test
/// policy, with a verifier running; returns their entries and keys.
async fn honest_and_rogue(
    rogue_name: &str,
) -> (
    Arc<MemorySink>,
    Running,
    (NodeEntry, NodeKey),
    (NodeEntry, NodeKey),
) {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    epoch::register_policy(&index, "default", EPOCH_SECONDS);
    let (honest_key, rogue_key) = (NodeKey::generate(), NodeKey::generate());
    // Named after the rogue: tests in this binary run at once, and an agent's scratch
    // directory is named after its node.
    let honest_name = format!("honest-beside-{rogue_name}");
    let honest = entry(
        Role::Storage,
        &honest_name,
        &honest_key.public(),
        storage_declared(1),
    );
    let rogue = entry(
        Role::Storage,
        rogue_name,
        &rogue_key.public(),
        storage_declared(1),
    );
    index.upsert(honest.clone());
    index.upsert(rogue.clone());
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    (sink, verifier, (honest, honest_key), (rogue, rogue_key))
}

/// The rogue's play: it committed a root for data it threw away; at every challenge it
/// commits a fresh tree of bytes it does hold (a sparse tree would do the same: any tree
/// built after the challenge) and answers against that. Returns the commitment verdicts.
async fn recommit_after_every_challenge(
    mut agent: Scripted,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<String> {
    // Its first root is an honest seal (it did the packing once, then threw it away).
    let (_, first) = depin_proof::storage::commit_sealed(
        &agent.node.public(),
        SectorId(0),
        SECTOR,
        &StorageParams::default(),
    )
    .expect("seals");
    agent
        .send(Out::SectorCommitments(v1::SectorCommitments {
            commitments: vec![wire::commitment_to_wire(&first.sign(&agent.node))],
        }))
        .await;
    let mut verdicts = Vec::new();
    let mut seed = 2u8;
    while !*stop.borrow() {
        let next = tokio::time::timeout(Duration::from_millis(300), agent.next()).await;
        let Ok(Ok(message)) = next else { continue };
        match message {
            In::StorageChallenge(w) => {
                let data = sector_data(seed);
                seed = seed.wrapping_add(1);
                let tree =
                    commit_sector(SectorId(0), &data, depin_proof::storage::DEFAULT_LEAF_SIZE);
                agent
                    .send(Out::SectorCommitments(v1::SectorCommitments {
                        commitments: vec![wire::commitment_to_wire(&tree.sign(&agent.node))],
                    }))
                    .await;
                answer_storage(&agent, &tree, &data, &w).await;
            }
            In::CommitmentReceipts(r) => {
                // An accepted reset names itself (SectorReset): the root is taken only
                // once audited, and then as a penalised reset.
                verdicts.extend(r.receipts.into_iter().map(|c| {
                    if c.reason.is_empty() {
                        "Accepted".to_string()
                    } else {
                        c.reason
                    }
                }));
            }
            _ => {}
        }
    }
    verdicts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_swapped_after_the_challenge_is_refused_and_earns_nothing() {
    let (sink, verifier, (honest, honest_key), (rogue, rogue_key)) =
        honest_and_rogue("recommitter").await;
    let n = epoch::start_of_next_epoch(EPOCH_SECONDS).await;
    let honest_agent = storage_agent(&verifier.endpoint, &honest.id.name, honest_key, 1);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let session = Scripted::open(&verifier.endpoint, rogue_key)
        .await
        .expect("opens");
    let play = tokio::spawn(recommit_after_every_challenge(session, stop));
    epoch::end_of_epoch(n, EPOCH_SECONDS, Duration::from_millis(500)).await;
    stop_tx.send(true).expect("stop");
    let verdicts = play.await.expect("rogue ran");
    honest_agent.stop().await;
    verifier.stop().await;
    let rogue_tally = sink
        .tallies(&rogue.id.namespace, &rogue.id.name)
        .proofs
        .unwrap_or_default();

    assert_eq!(
        verdicts.first().map(String::as_str),
        Some("Accepted"),
        "{verdicts:?}"
    );
    assert!(
        verdicts.len() >= 2 && verdicts[1..].iter().all(|v| v == "SectorReset"),
        "every swapped root is refused: {verdicts:?}"
    );
    assert!(
        rogue_tally.rejected >= 1 && rogue_tally.accepted == 0,
        "answers against the swapped root are refused: {rogue_tally:?}"
    );
    let policy = epoch::policy(&epoch::policy_yaml(EPOCH_SECONDS));
    let closed = epoch::close(&sink, &[&honest, &rogue], &policy, n);
    let r = &closed.result;
    assert!(closed.paid_to(&honest) > 0, "honest storage unpaid: {r:?}");
    assert_eq!(
        closed.paid_to(&rogue),
        0,
        "the root swapper was paid: {r:?}"
    );
}

/// The rogue's play: commit the root of an all-zero sector (nothing to store: every leaf is
/// regenerated in microseconds) and answer every challenge it gets from zeros. Returns
/// how many challenges came.
async fn zeros_instead_of_the_seal(
    mut agent: Scripted,
    stop: tokio::sync::watch::Receiver<bool>,
) -> usize {
    let zeros = vec![0u8; usize::try_from(SECTOR).expect("fits")];
    let tree = commit_sector(SectorId(0), &zeros, depin_proof::storage::DEFAULT_LEAF_SIZE);
    agent
        .send(Out::SectorCommitments(v1::SectorCommitments {
            commitments: vec![wire::commitment_to_wire(&tree.sign(&agent.node))],
        }))
        .await;
    let mut challenged = 0;
    while !*stop.borrow() {
        let next = tokio::time::timeout(Duration::from_millis(300), agent.next()).await;
        let Ok(Ok(In::StorageChallenge(w))) = next else {
            continue;
        };
        challenged += 1;
        answer_storage(&agent, &tree, &zeros, &w).await;
    }
    challenged
}

/// A root over anything but the node's own seal (here: zeros, which a cheater regenerates
/// instead of storing) fails the verifier's seal audit: `WrongSeal` is recorded, the sector
/// is never challenged, and the closed epoch pays it nothing while the honest (sealed)
/// node beside it is paid. Without the audit the zero sector's answers are valid Merkle
/// proofs and it would be paid like the honest one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsealed_root_is_never_challenged_and_earns_nothing() {
    let (sink, verifier, (honest, honest_key), (rogue, rogue_key)) =
        honest_and_rogue("zeros").await;
    let honest_agent = storage_agent(&verifier.endpoint, &honest.id.name, honest_key, 1);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let session = Scripted::open(&verifier.endpoint, rogue_key)
        .await
        .expect("opens");
    let play = tokio::spawn(zeros_instead_of_the_seal(session, stop));
    // Both roots audited first (on a loaded machine packing and auditing take a while),
    // then one whole epoch is played and closed.
    let audits = |result: &str| {
        verifier
            .verifier
            .metrics
            .seal_audits
            .with_label_values(&[result])
            .get()
    };
    eventually(60, "both roots audited", || {
        audits("WrongSeal") >= 1 && audits("Sealed") >= 1
    })
    .await;
    // Two whole epochs, so a loaded machine that makes the honest node miss its few
    // deadlines in one still shows it paid in the other.
    let n = epoch::start_of_next_epoch(EPOCH_SECONDS).await;
    epoch::end_of_epoch(n + 1, EPOCH_SECONDS, Duration::from_millis(500)).await;
    stop_tx.send(true).expect("stop");
    let challenged = play.await.expect("rogue ran");
    honest_agent.stop().await;
    let m = &verifier.verifier.metrics;
    let wrong = m.seal_audits.with_label_values(&["WrongSeal"]).get();
    let sealed = m.seal_audits.with_label_values(&["Sealed"]).get();
    verifier.stop().await;

    assert_eq!(challenged, 0, "an unsealed root is never challenged");
    assert_eq!(
        (wrong, sealed),
        (1, 1),
        "one audit each: zeros refused, honest passed"
    );
    let rogue_status = sink.tallies("fleet", "zeros");
    let wrong_seals: u64 = [rogue_status.proofs, rogue_status.previous]
        .iter()
        .flatten()
        .filter_map(|t| t.rejected_by_reason.get("WrongSeal"))
        .sum();
    assert_eq!(wrong_seals, 1, "the owner sees why");
    let policy = epoch::policy(&epoch::policy_yaml(EPOCH_SECONDS));
    let mut honest_paid = 0;
    for e in [n, n + 1] {
        let closed = epoch::close(&sink, &[&honest, &rogue], &policy, e);
        let r = &closed.result;
        assert_eq!(
            closed.paid_to(&rogue),
            0,
            "the zero sector was paid in {e}: {r:?}"
        );
        honest_paid += closed.paid_to(&honest);
    }
    let h = sink.tallies("fleet", &honest.id.name);
    assert!(
        honest_paid > 0,
        "honest storage unpaid in {n} and {}: {:?} / {:?}",
        n + 1,
        h.proofs,
        h.previous
    );
}
