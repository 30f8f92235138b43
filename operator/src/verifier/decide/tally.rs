//! Pure tally arithmetic: one proof result into a node's per-epoch `status.proofs`.

use depin_crds::ProofTally;
use depin_proof::RejectReason;
use depin_proof::receipt::TallySnapshot;

/// The reward epoch at `now_unix_s` for epochs of `epoch_seconds`.
pub fn epoch_at(now_unix_s: u64, epoch_seconds: u64) -> u64 {
    now_unix_s / epoch_seconds.max(1)
}

/// Whether work done at `work_ms` comes too late to count: its reward epoch ended and the
/// policy's grace period after it is over at `now_ms`, so the reward controller may have
/// frozen (closed) that epoch. Such a result is rejected as `LateForEpoch` rather than
/// quietly counted in a later epoch than the one it belongs to.
pub fn late_for_epoch(work_ms: u64, now_ms: u64, epoch_seconds: u64, grace_seconds: u64) -> bool {
    let epoch_ms = epoch_seconds.max(1).saturating_mul(1000);
    let work_epoch = work_ms / epoch_ms;
    let frozen_at = work_epoch
        .saturating_add(1)
        .saturating_mul(epoch_ms)
        .saturating_add(grace_seconds.saturating_mul(1000));
    now_ms >= frozen_at
}

/// A node's durable tallies: the epoch being counted and the one before it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeTallies {
    /// `status.proofs`: the epoch being counted.
    pub proofs: Option<ProofTally>,
    /// `status.previousProofs`: the epoch before, frozen for the reward controller.
    pub previous: Option<ProofTally>,
    /// `status.meter` (MeterBridges): the chain tip and serial claim, written with the
    /// tallies so a restarted verifier continues the chain.
    pub meter: Option<depin_crds::MeterRecord>,
    /// `status.poc` (HotspotGateways): the PoC history, written with the tallies so a
    /// restarted verifier keeps reciprocity.
    pub poc: Option<depin_crds::PocRecord>,
    /// `status.unclosedProofs`: older epochs not closed yet, oldest first.
    pub unclosed: Vec<ProofTally>,
    /// `status.storage` (StorageNodes): the sector ledger, written with the tallies so a
    /// restarted verifier keeps roots, proven periods and reputation.
    pub storage: Option<depin_crds::StorageLedgerStatus>,
}

/// What one storage event adds to the epoch's `proofs.storage` besides the ledger itself:
/// accounted deadlines and resets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageDelta {
    /// Closed deadlines' outcomes.
    pub totals: depin_proof::storage::AccountTotals,
    /// Sectors reset (re-committed under a new root).
    pub resets: u64,
}

fn add_decimal(text: &mut String, more: u128) {
    let so_far: u128 = text.parse().unwrap_or(0);
    *text = so_far.saturating_add(more).to_string();
}

/// Adds `delta` to the epoch's storage accounting and takes reputation and
/// disqualification from `ledger` (the node's ledger as written with it), so the reward
/// math reads them as of the epoch's last write.
pub fn add_storage(
    tally: &mut ProofTally,
    delta: &StorageDelta,
    ledger: &depin_crds::StorageLedgerStatus,
) {
    let storage = tally.storage.get_or_insert_with(Default::default);
    let t = &delta.totals;
    storage.missed = storage.missed.saturating_add(t.missed);
    storage.faulted = storage.faulted.saturating_add(t.faulted);
    add_decimal(&mut storage.missed_byte_periods, t.missed_byte_periods);
    add_decimal(&mut storage.faulted_byte_periods, t.faulted_byte_periods);
    storage.terminated = storage.terminated.saturating_add(t.terminated);
    storage.resets = storage.resets.saturating_add(delta.resets);
    storage.reputation = ledger.reputation.score.clone();
    storage.disqualified = ledger.disqualified;
}

/// Most tallies of unclosed epochs a node keeps; beyond, the oldest is dropped (an epoch
/// left unclosed for 32 epochs needs an operator, not more status).
pub const MAX_UNCLOSED: usize = 32;

/// `unclosed` without the epochs already closed (`last_closed`; None: none known closed)
/// and with `evicted` added when its epoch is not closed, capped at [`MAX_UNCLOSED`].
fn keep_unclosed(
    mut unclosed: Vec<ProofTally>,
    evicted: Option<ProofTally>,
    last_closed: Option<u64>,
) -> Vec<ProofTally> {
    let open = |t: &ProofTally| last_closed.is_none_or(|closed| t.epoch > closed);
    unclosed.extend(evicted.filter(|t| open(t)));
    unclosed.retain(open);
    unclosed.sort_by_key(|t| t.epoch);
    unclosed.dedup_by_key(|t| t.epoch);
    if unclosed.len() > MAX_UNCLOSED {
        let dropped = unclosed.len() - MAX_UNCLOSED;
        tracing::warn!(
            dropped,
            "more unclosed epochs than a node keeps; the oldest tallies are dropped"
        );
        unclosed.drain(..dropped);
    }
    unclosed
}

/// The tally to continue from: `stored` if it belongs to `epoch`, else a fresh one (a new
/// epoch starts at zero; an older stored epoch is the reward controller's to read).
pub fn continue_from(stored: Option<ProofTally>, epoch: u64) -> ProofTally {
    match stored {
        Some(tally) if tally.epoch == epoch => tally,
        _ => ProofTally {
            epoch,
            ..ProofTally::default()
        },
    }
}

/// The tallies to count a result recorded at wall-clock epoch `epoch` into, and the epoch
/// it counts in.
///
/// A result counts in the epoch in which it is recorded. When the stored tally is older,
/// it moves to `previous` untouched and counting starts at zero, so nothing is ever added
/// to an epoch after it ends; the reward controller waits `graceSeconds` past the end for
/// writes already in flight. A stored tally newer than `epoch` (this replica's clock is
/// behind the one that wrote it) keeps counting: results go to the current epoch, never
/// back into one that may already be closed.
///
/// The tally that leaves `previous` is kept in `unclosed` while its epoch is not closed
/// (`last_closed`, the policy's `status.lastClosedEpoch`): a reward controller that could
/// not close epochs for a while still finds each one's own tally later.
pub fn roll_over(stored: NodeTallies, epoch: u64, last_closed: Option<u64>) -> (NodeTallies, u64) {
    match stored.proofs {
        Some(current) if current.epoch >= epoch => {
            let counting = current.epoch;
            let tallies = NodeTallies {
                proofs: Some(current),
                previous: stored.previous,
                meter: stored.meter,
                poc: stored.poc,
                unclosed: keep_unclosed(stored.unclosed, None, last_closed),
                storage: stored.storage,
            };
            (tallies, counting)
        }
        Some(old) => (
            NodeTallies {
                proofs: Some(continue_from(None, epoch)),
                previous: Some(old),
                meter: stored.meter,
                poc: stored.poc,
                unclosed: keep_unclosed(stored.unclosed, stored.previous, last_closed),
                storage: stored.storage,
            },
            epoch,
        ),
        None => (
            NodeTallies {
                proofs: Some(continue_from(None, epoch)),
                previous: stored.previous,
                meter: stored.meter,
                poc: stored.poc,
                unclosed: keep_unclosed(stored.unclosed, None, last_closed),
                storage: stored.storage,
            },
            epoch,
        ),
    }
}

/// Work units as a number; an unreadable value (hand-edited status) counts as zero rather
/// than blocking every later write.
pub fn work_units(tally: &ProofTally) -> u128 {
    tally
        .work_units
        .as_deref()
        .and_then(|w| w.parse().ok())
        .unwrap_or(0)
}

/// Adds one result decided at `now` (RFC 3339 for `lastAcceptedTime`) in `epoch`: accepted
/// with its work units, or rejected with its reason. Returns the snapshot for the receipt.
pub fn apply(
    tally: &mut ProofTally,
    epoch: u64,
    result: Result<u128, RejectReason>,
    part: Option<&str>,
    now: &str,
) -> TallySnapshot {
    if tally.epoch != epoch {
        *tally = continue_from(None, epoch);
    }
    match result {
        Ok(units) => {
            tally.accepted += 1;
            tally.work_units = Some(work_units(tally).saturating_add(units).to_string());
            if let Some(part) = part {
                let so_far = tally
                    .work_units_by_part
                    .get(part)
                    .and_then(|w| w.parse::<u128>().ok())
                    .unwrap_or(0);
                tally
                    .work_units_by_part
                    .insert(part.to_string(), so_far.saturating_add(units).to_string());
            }
            tally.last_accepted_time = Some(now.to_string());
        }
        Err(reason) => {
            tally.rejected += 1;
            *tally
                .rejected_by_reason
                .entry(reason.as_str().to_string())
                .or_default() += 1;
            tally.last_reject_reason = Some(reason.as_str().to_string());
        }
    }
    snapshot(tally)
}

/// The receipt's view of a tally.
pub fn snapshot(tally: &ProofTally) -> TallySnapshot {
    TallySnapshot {
        epoch: tally.epoch,
        accepted: tally.accepted,
        rejected: tally.rejected,
        work_units: work_units(tally),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_to_the_work_units() {
        let mut tally = continue_from(None, 3);
        let now = "2026-01-01T00:00:00Z";
        apply(&mut tally, 3, Ok(5), Some("beacon"), now);
        apply(&mut tally, 3, Ok(7), Some("witness"), now);
        apply(&mut tally, 3, Ok(2), Some("witness"), now);
        apply(
            &mut tally,
            3,
            Err(RejectReason::BadRssi),
            Some("witness"),
            now,
        );
        assert_eq!(tally.work_units.as_deref(), Some("14"));
        let parts: Vec<(&str, &str)> = tally
            .work_units_by_part
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(parts, [("beacon", "5"), ("witness", "9")]);
    }

    #[test]
    fn work_is_late_once_its_epochs_grace_is_over() {
        // 60 s epochs, 5 s grace: epoch 1 is [60 s, 120 s), frozen at 125 s.
        let table: &[(u64, u64, bool)] = &[
            (61_000, 61_500, false),   // same epoch
            (119_999, 124_999, false), // next epoch, inside the grace period
            (119_999, 125_000, true),  // grace over
            (60_000, 300_000, true),   // long after
            (120_000, 125_000, false), // work of the new epoch
        ];
        for (i, (work, now, late)) in table.iter().enumerate() {
            assert_eq!(late_for_epoch(*work, *now, 60, 5), *late, "row {i}");
        }
        assert!(
            !late_for_epoch(0, 0, 0, 0),
            "a zero epoch length does not divide by zero"
        );
    }

    #[test]
    fn results_add_up_and_a_new_epoch_starts_at_zero() {
        let mut tally = continue_from(None, 7);
        // (epoch, result, expected (epoch, accepted, rejected, work units))
        type Row = (u64, Result<u128, RejectReason>, (u64, u64, u64, u128));
        let table: &[Row] = &[
            (7, Ok(10), (7, 1, 0, 10)),
            (7, Err(RejectReason::Replay), (7, 1, 1, 10)),
            (7, Ok(5), (7, 2, 1, 15)),
            (8, Err(RejectReason::AfterWindow), (8, 0, 1, 0)),
        ];
        for (epoch, result, (e, a, r, w)) in table {
            let snap = apply(&mut tally, *epoch, *result, None, "2026-01-01T00:00:00Z");
            assert_eq!(
                (snap.epoch, snap.accepted, snap.rejected, snap.work_units),
                (*e, *a, *r, *w)
            );
        }
        assert_eq!(tally.rejected_by_reason.get("AfterWindow"), Some(&1));
        assert_eq!(
            tally.rejected_by_reason.get("Replay"),
            None,
            "reset with the epoch"
        );
        assert_eq!(tally.last_reject_reason.as_deref(), Some("AfterWindow"));
        assert_eq!(tally.last_accepted_time, None);
    }

    #[test]
    fn rollover_keeps_the_closing_epoch() {
        let tally = |epoch, accepted| ProofTally {
            epoch,
            accepted,
            ..ProofTally::default()
        };
        let stored = |p: Option<ProofTally>, q: Option<ProofTally>| NodeTallies {
            proofs: p,
            previous: q,
            meter: None,
            poc: None,
            unclosed: Vec::new(),
            storage: None,
        };
        // (stored, wall-clock epoch) → (proofs, previous, epoch counted in)
        type Row = (NodeTallies, u64, (ProofTally, Option<ProofTally>, u64));
        let table: Vec<Row> = vec![
            // Nothing stored yet: a fresh tally.
            (stored(None, None), 5, (tally(5, 0), None, 5)),
            // Same epoch: continue.
            (
                stored(Some(tally(5, 3)), Some(tally(4, 9))),
                5,
                (tally(5, 3), Some(tally(4, 9)), 5),
            ),
            // Rollover: the closing epoch moves to previous, the older one is dropped.
            (
                stored(Some(tally(5, 3)), Some(tally(4, 9))),
                6,
                (tally(6, 0), Some(tally(5, 3)), 6),
            ),
            // A silent node: its last tally is kept whatever its age.
            (
                stored(Some(tally(2, 1)), None),
                9,
                (tally(9, 0), Some(tally(2, 1)), 9),
            ),
            // Clock behind the writer of epoch 6: keep counting in 6, never in 5.
            (
                stored(Some(tally(6, 2)), Some(tally(5, 3))),
                5,
                (tally(6, 2), Some(tally(5, 3)), 6),
            ),
        ];
        for (i, (input, epoch, (proofs, previous, counting))) in table.into_iter().enumerate() {
            let (out, at) = roll_over(input, epoch, None);
            assert_eq!(out.proofs, Some(proofs), "row {i}");
            assert_eq!(out.previous, previous, "row {i}");
            assert_eq!(at, counting, "row {i}");
        }
    }

    #[test]
    fn an_unclosed_epoch_keeps_its_tally_until_it_is_closed() {
        let tally = |epoch, accepted| ProofTally {
            epoch,
            accepted,
            ..ProofTally::default()
        };
        // Epochs 4 and 5 counted; the reward controller closed only 3 so far.
        let stored = NodeTallies {
            proofs: Some(tally(5, 2)),
            previous: Some(tally(4, 7)),
            ..NodeTallies::default()
        };
        let (six, _) = roll_over(stored, 6, Some(3));
        assert_eq!(six.previous, Some(tally(5, 2)));
        assert_eq!(six.unclosed, vec![tally(4, 7)], "epoch 4 is not lost");
        // Once 4 is closed it leaves; 5 moves in when 7 starts.
        let (seven, _) = roll_over(six, 7, Some(4));
        assert_eq!(seven.unclosed, vec![tally(5, 2)]);
        // A closed epoch is simply dropped, as before.
        let (eight, _) = roll_over(seven, 8, Some(7));
        assert_eq!(eight.unclosed, Vec::new());
        assert_eq!(eight.previous, Some(tally(7, 0)));
        // Never more than MAX_UNCLOSED, the oldest go first.
        let many: Vec<_> = (0..40).map(|e| tally(e, 1)).collect();
        let kept = keep_unclosed(many, None, None);
        assert_eq!(kept.len(), MAX_UNCLOSED);
        assert_eq!(kept.first().map(|t| t.epoch), Some(8));
    }

    #[test]
    fn stored_tallies_continue_only_in_their_epoch() {
        let stored = ProofTally {
            epoch: 3,
            accepted: 9,
            ..ProofTally::default()
        };
        assert_eq!(continue_from(Some(stored.clone()), 3).accepted, 9);
        assert_eq!(continue_from(Some(stored), 4).accepted, 0);
        assert_eq!(epoch_at(172_799, 86_400), 1);
        assert_eq!(
            epoch_at(5, 0),
            5,
            "a zero epoch length is treated as one second"
        );
    }

    #[test]
    fn storage_accounting_adds_up_and_takes_the_ledgers_reputation() {
        let mut tally = continue_from(None, 1);
        let ledger = |score: &str, disqualified| depin_crds::StorageLedgerStatus {
            reputation: depin_crds::ReputationStatus {
                alpha: 1.0,
                beta: 0.0,
                score: score.into(),
            },
            disqualified,
            ..Default::default()
        };
        let missed = StorageDelta {
            totals: depin_proof::storage::AccountTotals {
                missed: 2,
                missed_byte_periods: 2 << 30,
                ..Default::default()
            },
            resets: 0,
        };
        let reset = StorageDelta {
            resets: 1,
            ..StorageDelta::default()
        };
        add_storage(&mut tally, &missed, &ledger("0.99", false));
        add_storage(&mut tally, &missed, &ledger("0.98", false));
        add_storage(&mut tally, &reset, &ledger("0.5", true));
        let storage = tally.storage.expect("storage accounting");
        assert_eq!((storage.missed, storage.resets), (4, 1));
        assert_eq!(storage.missed_byte_periods, (4u128 << 30).to_string());
        assert_eq!(storage.faulted_byte_periods, "0");
        assert_eq!(
            (storage.reputation.as_str(), storage.disqualified),
            ("0.5", true)
        );
    }
}
