//! A storage node's sector ledger as kept in its StorageNode's `status.storage`, and back.
//! Written with every status write of the node (proofs, commitments, closed deadlines),
//! read back before a restarted verifier accepts any commitment, so accepted roots stay
//! fixed (a swap across a restart is a reset, not a fresh start), sealed roots are not
//! audited again, a period proven before the restart is not paid twice, and reputation
//! and disqualification carry over.

use depin_crds::{ReputationStatus, SectorHealthStatus, SectorStatus, StorageLedgerStatus};
use depin_proof::storage::{
    Reputation, SectorCommitment, SectorHealth, SectorId, SectorRecord, SectorState, StorageLedger,
};

/// A score as the CRD's weight string: six decimals, trailing zeros dropped ("1", "0.97").
pub fn score_text(score: f64) -> String {
    let text = format!("{:.6}", score.clamp(0.0, 1.0));
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() {
        "0".into()
    } else {
        text.into()
    }
}

/// The status form of `ledger`.
pub fn to_status(ledger: &StorageLedger) -> StorageLedgerStatus {
    let counts = ledger.counts();
    StorageLedgerStatus {
        sectors: ledger
            .sectors
            .iter()
            .map(|(id, r)| SectorStatus {
                sector: id.0,
                root: hex::encode(r.commitment.root),
                sector_bytes: r.commitment.sector_bytes,
                leaf_size: r.commitment.leaf_size,
                leaf_count: r.commitment.leaf_count,
                committed_at_ms: r.committed_at_ms,
                health: match r.state.health {
                    SectorHealth::Active => SectorHealthStatus::Active,
                    SectorHealth::Faulty => SectorHealthStatus::Faulty,
                    SectorHealth::Terminated => SectorHealthStatus::Terminated,
                },
                faulty_periods: r.state.faulty_periods,
                proven: r.state.proven,
                missed: r.state.missed,
                declared_faults: r.state.declared_faults,
                rejected: r.state.rejected,
                last_proven_period: r.last_proven_period,
                unaccounted_proofs: r.unaccounted_proofs.clone(),
                declared_fault_period: r.declared_fault_period,
                unaccounted_faults: r.unaccounted_faults.clone(),
                vetting_left: r.vetting_left,
                resets: r.resets,
            })
            .collect(),
        reputation: ReputationStatus {
            alpha: ledger.reputation.alpha,
            beta: ledger.reputation.beta,
            score: score_text(ledger.reputation.score()),
        },
        disqualified: ledger.disqualified,
        active_sectors: counts.active,
        faulty_sectors: counts.faulty,
        terminated_sectors: counts.terminated,
        accounted_through_ms: ledger.accounted_through_ms,
    }
}

/// The ledger a restarted verifier continues from. Err names the field that does not
/// parse: a ledger that cannot be read is never silently a fresh start (which would let
/// every root be swapped and every period be paid again).
pub fn from_status(status: &StorageLedgerStatus) -> Result<StorageLedger, String> {
    let mut ledger = StorageLedger::default();
    for (i, s) in status.sectors.iter().enumerate() {
        let root: [u8; 32] = hex::decode(&s.root)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| format!("status.storage.sectors[{i}].root: not 64 hex digits"))?;
        let record = SectorRecord {
            commitment: SectorCommitment {
                sector: SectorId(s.sector),
                sector_bytes: s.sector_bytes,
                leaf_size: s.leaf_size,
                leaf_count: s.leaf_count,
                root,
            },
            committed_at_ms: s.committed_at_ms,
            state: SectorState {
                health: match s.health {
                    SectorHealthStatus::Active => SectorHealth::Active,
                    SectorHealthStatus::Faulty => SectorHealth::Faulty,
                    SectorHealthStatus::Terminated => SectorHealth::Terminated,
                },
                faulty_periods: s.faulty_periods,
                proven: s.proven,
                rejected: s.rejected,
                missed: s.missed,
                declared_faults: s.declared_faults,
            },
            last_proven_period: s.last_proven_period,
            unaccounted_proofs: s.unaccounted_proofs.clone(),
            declared_fault_period: s.declared_fault_period,
            unaccounted_faults: s.unaccounted_faults.clone(),
            vetting_left: s.vetting_left,
            resets: s.resets,
        };
        if ledger.sectors.insert(SectorId(s.sector), record).is_some() {
            return Err(format!(
                "status.storage.sectors[{i}]: sector {} listed twice",
                s.sector
            ));
        }
    }
    let (alpha, beta) = (status.reputation.alpha, status.reputation.beta);
    if !(alpha.is_finite() && beta.is_finite() && alpha >= 0.0 && beta >= 0.0) {
        return Err("status.storage.reputation: alpha and beta must be finite and >= 0".into());
    }
    // A ledger written before any audit has α = β = 0; it starts from the prior instead.
    if alpha + beta > 0.0 {
        ledger.reputation = Reputation { alpha, beta };
    }
    ledger.disqualified = status.disqualified;
    ledger.accounted_through_ms = status.accounted_through_ms;
    Ok(ledger)
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_proof::storage::{CapacityLimit, ReputationParams};

    #[test]
    fn a_ledger_round_trips_and_bad_fields_are_named() {
        let rp = ReputationParams::default();
        let mib = 1 << 20;
        let limit = CapacityLimit {
            sector_bytes: mib,
            capacity_bytes: 4 * mib,
        };
        let commitment = |sector, root| SectorCommitment {
            sector: SectorId(sector),
            sector_bytes: mib,
            leaf_size: 16 * 1024,
            leaf_count: 64,
            root: [root; 32],
        };
        let mut ledger = StorageLedger::new(&rp);
        ledger
            .commit(&commitment(0, 1), &limit, 5, &rp)
            .expect("new");
        ledger
            .commit(&commitment(1, 1), &limit, 5, &rp)
            .expect("new");
        ledger
            .commit(&commitment(1, 2), &limit, 9, &rp)
            .expect("reset");
        ledger
            .record_proof(SectorId(0), 3, &[1; 32])
            .expect("proven");
        ledger.accounted_through_ms = 77;
        let status = to_status(&ledger);
        assert_eq!(
            status.reputation.score,
            score_text(ledger.reputation.score())
        );
        assert_eq!(from_status(&status), Ok(ledger));

        let mut bad = status.clone();
        bad.sectors[1].root = "zz".into();
        let err = from_status(&bad).expect_err("bad root");
        assert!(err.contains("status.storage.sectors[1].root"), "{err}");
        let mut twice = status.clone();
        twice.sectors[1].sector = 0;
        let err = from_status(&twice).expect_err("repeated sector");
        assert!(err.contains("listed twice"), "{err}");
        let mut nan = status;
        nan.reputation.beta = f64::NAN;
        assert!(from_status(&nan).is_err());
    }

    #[test]
    fn scores_are_weight_strings() {
        for (score, want) in [(1.0, "1"), (0.0, "0"), (0.97, "0.97"), (0.9598, "0.9598")] {
            assert_eq!(score_text(score), want);
        }
        assert_eq!(score_text(2.0 / 3.0), "0.666667");
    }
}
