//! Accounts storage deadlines: once a deadline has closed, every StorageNode's sectors due
//! in it are Passed (a proof for the period is in the ledger), Faulted (declared before
//! the cutoff) or Missed (neither), whether or not the node had a session. Misses and
//! faults lower the epoch's shares (`proofs.storage`), misses lower reputation, and a
//! sector unproven for the fault limit is terminated. The rule is pure
//! (`depin_proof::storage::StorageLedger::close_deadlines`); this task drives it with the
//! clock and makes the result durable.
//!
//! Deadlines that opened before this verifier started count only their passes: the
//! verifier was not there to issue their challenges, and its downtime is not the node's.

use crate::verifier::decide::tally::StorageDelta;
use crate::verifier::state::ledger;
use crate::verifier::{Verifier, now_ms};
use depin_proof::storage::ReputationParams;
use depin_proto::config::Role;
use std::sync::Arc;
use std::time::Duration;

/// How long after a deadline closes it is accounted: a response that arrived just before
/// the close is still being verified (its proof enters the ledger once it is), and must
/// not be counted missed first.
pub const ACCOUNT_GRACE_MS: u64 = 2_000;

/// Runs until the verifier shuts down.
pub async fn account(v: Arc<Verifier>) {
    let mut shutdown = std::pin::pin!(v.shutdown.signal());
    let params = v.settings.storage;
    let deadline_ms = params.proving_period_ms / u64::from(params.deadlines_per_period.max(1));
    // Often enough that a miss shows soon after its deadline; no busier than 1/s.
    let every = Duration::from_millis(deadline_ms.clamp(50, 1_000));
    let reputation = ReputationParams::default();
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = &mut shutdown => return,
        }
        let through = now_ms().saturating_sub(ACCOUNT_GRACE_MS);
        for node in v.index.of_role(Role::Storage) {
            // Never against an empty ledger standing in for a durable one.
            if let Err(err) = v.load_storage(&node).await {
                tracing::warn!(%err, "storage deadlines not accounted: sector ledger not loaded");
                continue;
            }
            let totals = ledger::lock(&v.ledger.node(&node.key))
                .storage
                .close_deadlines(&params, &reputation, v.started_ms, through);
            // Deadlines with nothing due change nothing worth a write; the next write
            // carries how far accounting got.
            if totals.passed + totals.missed + totals.faulted + totals.terminated == 0 {
                continue;
            }
            if totals.missed > 0 {
                tracing::info!(node = %node.id, missed = totals.missed, "storage deadlines missed");
            }
            let delta = StorageDelta { totals, resets: 0 };
            v.record_storage_later(node, None, delta, "closed storage deadlines");
        }
    }
}
