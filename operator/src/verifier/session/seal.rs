//! Seal audits: every new sector root is checked against this node's packing of the
//! sector (`depin_proof::storage::verify_sealed_root`: the verifier packs the sector again,
//! one honest seal of CPU and the sector's size in memory) before the sector is ever
//! challenged. A root over anything else (zeros, public content a cheater regenerates on
//! demand, another identity's packing) is refused as `WrongSeal`, recorded against the
//! node, and never earns.
//!
//! One audit runs at a time on a blocking thread, oldest first, so the verifier's cost is
//! bounded to one core and one sector of memory however many roots arrive.

use super::super::{Verifier, now_ms};
use crate::verifier::decide::tally::StorageDelta;
use crate::verifier::state::index::{Declared, NodeEntry};
use crate::verifier::state::ledger::{self, NodeLedger};
use depin_proof::RejectReason;
use depin_proof::storage::{
    CapacityLimit, CommitOutcome, ReputationParams, SectorCommitment, verify_sealed_root,
};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Enters `c` (its seal checked, or too large to audit) into the node's sector ledger at
/// `now_ms`: a new sector, or a reset of an accepted one (a failed audit, its history
/// forfeited, its next pass unpaid).
pub(crate) fn enter(
    entry: &NodeEntry,
    node: &mut NodeLedger,
    c: &SectorCommitment,
    now_ms: u64,
) -> Result<CommitOutcome, RejectReason> {
    let Declared::Storage {
        capacity_bytes,
        sector_size_bytes,
    } = entry.declared
    else {
        return Err(RejectReason::UnknownSector);
    };
    let limit = CapacityLimit {
        sector_bytes: sector_size_bytes,
        capacity_bytes,
    };
    node.storage
        .commit(c, &limit, now_ms, &ReputationParams::default())
}

/// Makes what [`enter`] did durable (`status.storage`, and a reset as a `SectorReset`
/// rejection so the owner sees why the sector earns nothing for a while), off the caller's
/// path.
pub(crate) fn persist(
    v: &Arc<Verifier>,
    entry: NodeEntry,
    entered: Result<CommitOutcome, RejectReason>,
) {
    let (result, delta) = match entered {
        Ok(CommitOutcome::Unchanged) => return,
        Ok(CommitOutcome::New) => (None, StorageDelta::default()),
        Ok(CommitOutcome::Reset { .. }) => (
            Some(Err(RejectReason::SectorReset)),
            StorageDelta {
                resets: 1,
                ..StorageDelta::default()
            },
        ),
        Err(reason) => (Some(Err(reason)), StorageDelta::default()),
    };
    if let Some(Err(reason)) = result {
        v.metrics.count(entry.id.kind(), Err(reason));
    }
    v.record_storage_later(entry, result, delta, "sector commitment");
}

/// One root to audit.
pub struct SealAudit {
    /// The node that committed it.
    pub entry: NodeEntry,
    /// The commitment, as accepted by the other rules.
    pub commitment: SectorCommitment,
}

/// The queue's two ends.
pub fn queue() -> (
    mpsc::UnboundedSender<SealAudit>,
    mpsc::UnboundedReceiver<SealAudit>,
) {
    // Unbounded, but one entry per pending sector root at most: a root is queued only
    // when it enters `unsealed`, and the frozen-root rule keeps one root per sector.
    mpsc::unbounded_channel()
}

/// Runs audits until the queue closes (the verifier is dropped).
pub(crate) async fn audit(v: Arc<Verifier>, mut jobs: mpsc::UnboundedReceiver<SealAudit>) {
    while let Some(job) = jobs.recv().await {
        let (node, commitment) = (job.entry.key, job.commitment);
        let params = v.settings.storage;
        let started = std::time::Instant::now();
        let verdict =
            tokio::task::spawn_blocking(move || verify_sealed_root(&node, &commitment, &params))
                .await
                .unwrap_or(Err(depin_proof::RejectReason::WrongSeal));
        let (still_pending, entered) = {
            let handle = v.ledger.node(&node);
            let mut ledger = ledger::lock(&handle);
            let pending = ledger.unsealed.get(&commitment.sector) == Some(&commitment);
            let mut entered = None;
            if pending {
                ledger.unsealed.remove(&commitment.sector);
                if verdict.is_ok() {
                    entered = Some(enter(&job.entry, &mut ledger, &commitment, now_ms()));
                }
            }
            (pending, entered)
        };
        if let Some(entered) = entered {
            persist(&v, job.entry.clone(), entered);
        }
        let label = verdict.map_or_else(|r| r.as_str(), |()| "Sealed");
        v.metrics.seal_audits.with_label_values(&[label]).inc();
        tracing::info!(node = %job.entry.id, sector = commitment.sector.0, result = label, seconds = started.elapsed().as_secs_f64(), "seal audit");
        if let (Err(reason), true) = (verdict, still_pending) {
            v.metrics.count(job.entry.id.kind(), Err(reason));
            // Recorded, so the owner sees why the sector earns nothing.
            if let Err(err) = v.recorder.record(&job.entry, Err(reason)).await {
                tracing::warn!(node = %job.entry.id, %err, "seal audit result not recorded");
            }
        }
    }
}
