//! Pure tally arithmetic: one proof result into a node's per-epoch `status.proofs`.

use depin_crds::ProofTally;
use depin_proof::RejectReason;
use depin_proof::receipt::TallySnapshot;

/// The reward epoch at `now_unix_s` for epochs of `epoch_seconds`.
pub fn epoch_at(now_unix_s: u64, epoch_seconds: u64) -> u64 {
    now_unix_s / epoch_seconds.max(1)
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
    now: &str,
) -> TallySnapshot {
    if tally.epoch != epoch {
        *tally = continue_from(None, epoch);
    }
    match result {
        Ok(units) => {
            tally.accepted += 1;
            tally.work_units = Some(work_units(tally).saturating_add(units).to_string());
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
            let snap = apply(&mut tally, *epoch, *result, "2026-01-01T00:00:00Z");
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
}
