//! Accounts GPU rounds: once a round's last deadline has passed, every GpuWorker that did
//! not settle it (no session, no answer, an answer never opened) gets one recorded
//! `NoResponse` failure, so availability (accepted / recorded) counts the rounds a node
//! missed, not only the ones it chose to answer. The rule is pure
//! (`schedule::accountable_gpu_rounds`, `NodeLedger::account_gpu_round`); this task only
//! drives it with the clock and records the misses.

use crate::verifier::state::index::NodeEntry;
use crate::verifier::state::ledger::{self, RoundOutcome};
use crate::verifier::state::schedule::accountable_gpu_rounds;
use crate::verifier::{Verifier, now_ms};
use depin_proof::RejectReason;
use depin_proof::identity::PublicKey;
use depin_proto::config::Role;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Runs until the verifier shuts down.
pub async fn account(v: Arc<Verifier>) {
    let mut shutdown = std::pin::pin!(v.shutdown.signal());
    let interval = v.gpu_interval_ms();
    // Often enough that a miss is recorded soon after its round; no busier than 1/s.
    let period = Duration::from_millis(interval.clamp(50, 1_000));
    let mut accounted = None;
    // When each GPU node was first seen: a CR created mid-round is not charged for the
    // rounds that began before it existed.
    let mut known_since: HashMap<PublicKey, u64> = HashMap::new();
    let mut first_pass = true;
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = &mut shutdown => return,
        }
        let now = now_ms();
        let nodes = v.index.of_role(Role::Gpu);
        known_since.retain(|key, _| nodes.iter().any(|n| n.key == *key));
        for node in &nodes {
            // Nodes listed at the start are known from the start (their rounds before it
            // are not this verifier's to account anyway).
            let first = if first_pass { v.started_ms } else { now };
            known_since.entry(node.key).or_insert(first);
        }
        first_pass = false;
        // Half for the commitment, half for the opening.
        let grace = v.gpu_round_grace_ms() / 2;
        let rounds = accountable_gpu_rounds(v.started_ms, accounted, now, interval, grace, grace);
        for round in rounds {
            let begins = round.saturating_mul(interval);
            for node in &nodes {
                if known_since.get(&node.key).is_some_and(|at| *at > begins) {
                    continue;
                }
                let outcome = ledger::lock(&v.ledger.node(&node.key)).account_gpu_round(round);
                if outcome == RoundOutcome::Missed {
                    missed(&v, node.clone());
                }
            }
            accounted = Some(round);
        }
    }
}

/// Records one missed round for `node` without holding up the other nodes' accounting.
fn missed(v: &Arc<Verifier>, node: NodeEntry) {
    let v = v.clone();
    v.metrics
        .count(node.id.kind(), Err(RejectReason::NoResponse));
    tokio::spawn(async move {
        if let Err(err) = v
            .recorder
            .record(&node, Err(RejectReason::NoResponse))
            .await
        {
            tracing::warn!(node = %node.id, %err, "missed GPU round not recorded");
        }
    });
}
