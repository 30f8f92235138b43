//! What deadline results do to a node: a Storj-style audit reputation and Filecoin-style
//! sector faults, as one pure state transition.

use std::collections::BTreeMap;

use super::SectorId;
use crate::reject::RejectReason;

/// Reputation and fault parameters. Storj defaults are from storj/storj@5dbec64f
/// `satellite/reputation` as summarised in research depin-anchors §2(b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReputationParams {
    /// Starting α. Storj: 1000 (a new node starts trusted).
    pub initial_alpha: f64,
    /// Starting β. Storj: 0.
    pub initial_beta: f64,
    /// Forgetting factor applied on every audit. Storj: 0.999.
    pub lambda: f64,
    /// Weight of one audit. Storj: 1.
    pub weight: f64,
    /// Disqualify when α/(α+β) falls below this. Storj: 0.96.
    pub disqualify_below: f64,
    /// Terminate a sector after this many consecutive unproven periods. Filecoin
    /// `FAULT_MAX_AGE` = 42 proving periods (42 days at its 24 h period); each of our
    /// sectors is due once per period too, so the count carries over unchanged and scales
    /// with `--storage-proving-period` (42 min at a 1 min test period).
    pub fault_max_age_periods: u32,
    /// Passed deadlines a sector proves unpaid after a reset (a new root for an accepted
    /// sector), so replacing data costs at least one period of that sector's earnings.
    /// Ours; Storj vets whole nodes over 100 audits, which we do not copy per sector
    /// because one reset would then cost 100 periods.
    pub vetting_deadlines_after_reset: u32,
}

impl Default for ReputationParams {
    fn default() -> Self {
        Self {
            initial_alpha: 1000.0,
            initial_beta: 0.0,
            lambda: 0.999,
            weight: 1.0,
            disqualify_below: 0.96,
            fault_max_age_periods: 42,
            vetting_deadlines_after_reset: 1,
        }
    }
}

/// A beta-distribution reputation: α counts (decayed) successes, β failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reputation {
    /// Decayed success weight.
    pub alpha: f64,
    /// Decayed failure weight.
    pub beta: f64,
}

impl Reputation {
    /// A new node's reputation.
    pub fn new(params: &ReputationParams) -> Self {
        Self {
            alpha: params.initial_alpha,
            beta: params.initial_beta,
        }
    }

    /// The score α/(α+β), in [0, 1]; 1 when nothing is known.
    pub fn score(&self) -> f64 {
        let total = self.alpha + self.beta;
        if total > 0.0 { self.alpha / total } else { 1.0 }
    }

    /// After one audit: success α ← λα + w, β ← λβ; failure α ← λα, β ← λβ + w (Storj).
    pub fn after_audit(self, passed: bool, params: &ReputationParams) -> Self {
        let (alpha, beta) = (params.lambda * self.alpha, params.lambda * self.beta);
        if passed {
            Self {
                alpha: alpha + params.weight,
                beta,
            }
        } else {
            Self {
                alpha,
                beta: beta + params.weight,
            }
        }
    }
}

/// How one sector's deadline went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineResult {
    /// A response was accepted.
    Proven,
    /// A response arrived and was rejected.
    Rejected(RejectReason),
    /// No response before the window closed, and no fault declared.
    Missed,
    /// The node declared the fault before the cutoff.
    DeclaredFault,
}

/// Where a sector stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SectorHealth {
    /// Proven at its last deadline (or not yet challenged).
    #[default]
    Active,
    /// Unproven at its last deadline.
    Faulty,
    /// Unproven for too long; its commitment no longer counts.
    Terminated,
}

/// One sector's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SectorState {
    /// Current health.
    pub health: SectorHealth,
    /// Consecutive deadlines (= periods) without a proof.
    pub faulty_periods: u32,
    /// Deadlines proven.
    pub proven: u64,
    /// Responses rejected.
    pub rejected: u64,
    /// Deadlines missed without a declaration.
    pub missed: u64,
    /// Faults declared.
    pub declared_faults: u64,
}

/// Everything storage results decide about a node.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageNodeState {
    /// Audit reputation.
    pub reputation: Reputation,
    /// Set once the score falls below the threshold; never cleared here (Storj DQ is final).
    pub disqualified: bool,
    /// Per-sector records, ordered for deterministic output.
    pub sectors: BTreeMap<SectorId, SectorState>,
}

impl StorageNodeState {
    /// A new node with no sectors.
    pub fn new(params: &ReputationParams) -> Self {
        Self {
            reputation: Reputation::new(params),
            disqualified: false,
            sectors: BTreeMap::new(),
        }
    }
}

/// The node's state after one sector's deadline result. A declared fault is honest and
/// leaves the audit score alone but still ages the fault; a miss or a rejected response
/// counts as a failed audit. Results for terminated sectors change nothing.
pub fn apply_deadline_result(
    mut state: StorageNodeState,
    sector: SectorId,
    result: DeadlineResult,
    params: &ReputationParams,
) -> StorageNodeState {
    let record = state.sectors.entry(sector).or_default();
    settle(
        record,
        &mut state.reputation,
        &mut state.disqualified,
        result,
        params,
    );
    state
}

/// One sector's deadline result applied to its record and the node's reputation (the rule
/// behind [`apply_deadline_result`], shared with the verifier's sector ledger).
pub(crate) fn settle(
    record: &mut SectorState,
    reputation: &mut Reputation,
    disqualified: &mut bool,
    result: DeadlineResult,
    params: &ReputationParams,
) {
    if record.health == SectorHealth::Terminated {
        return;
    }
    let audit = match result {
        DeadlineResult::Proven => {
            record.proven += 1;
            Some(true)
        }
        DeadlineResult::Rejected(_) => {
            record.rejected += 1;
            Some(false)
        }
        DeadlineResult::Missed => {
            record.missed += 1;
            Some(false)
        }
        DeadlineResult::DeclaredFault => {
            record.declared_faults += 1;
            None
        }
    };
    if audit == Some(true) {
        record.faulty_periods = 0;
        record.health = SectorHealth::Active;
    } else {
        record.faulty_periods = record.faulty_periods.saturating_add(1);
        record.health = if record.faulty_periods >= params.fault_max_age_periods {
            SectorHealth::Terminated
        } else {
            SectorHealth::Faulty
        };
    }
    if let Some(passed) = audit {
        *reputation = reputation.after_audit(passed, params);
    }
    *disqualified |= reputation.score() < params.disqualify_below;
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTOR: SectorId = SectorId(5);

    #[test]
    fn reputation_disqualifies_after_41_straight_failures() {
        // From α=1000, β=0 with λ=0.999, w=1, α+β stays 1000, so the score after m failures is
        // 0.999^m: 0.9607 at m=40, 0.9598 at m=41 (below Storj's 0.96).
        let rp = ReputationParams {
            fault_max_age_periods: 1000,
            ..ReputationParams::default()
        };
        let mut state = StorageNodeState::new(&rp);
        for m in 1..=41 {
            state = apply_deadline_result(state, SECTOR, DeadlineResult::Missed, &rp);
            assert_eq!(state.disqualified, m == 41, "after {m} failures");
        }
        let declared = apply_deadline_result(
            StorageNodeState::new(&rp),
            SECTOR,
            DeadlineResult::DeclaredFault,
            &rp,
        );
        assert_eq!(declared.reputation, Reputation::new(&rp));
        assert_eq!(declared.sectors[&SECTOR].health, SectorHealth::Faulty);
    }

    #[test]
    fn sectors_terminate_after_fault_max_age_and_recover_when_proven() {
        let rp = ReputationParams::default();
        let mut state = StorageNodeState::new(&rp);
        for _ in 0..41 {
            state = apply_deadline_result(state, SECTOR, DeadlineResult::DeclaredFault, &rp);
        }
        assert_eq!(state.sectors[&SECTOR].health, SectorHealth::Faulty);
        let recovered = apply_deadline_result(state.clone(), SECTOR, DeadlineResult::Proven, &rp);
        assert_eq!(
            (
                recovered.sectors[&SECTOR].health,
                recovered.sectors[&SECTOR].faulty_periods
            ),
            (SectorHealth::Active, 0)
        );
        let terminated = apply_deadline_result(
            state,
            SECTOR,
            DeadlineResult::Rejected(RejectReason::BadMerklePath),
            &rp,
        );
        assert_eq!(terminated.sectors[&SECTOR].health, SectorHealth::Terminated);
        let after = apply_deadline_result(terminated.clone(), SECTOR, DeadlineResult::Proven, &rp);
        assert_eq!(after, terminated);
    }
}
