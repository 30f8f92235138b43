//! The verifier's record of one storage node, kept durably in its status: each accepted
//! sector's fixed root, when it became due, its deadline history and faults, and the node's
//! reputation. Pure: the caller feeds commitments, proofs, fault declarations and the clock,
//! and persists the result.
//!
//! Rules (research depin-anchors §2(b)–(c)):
//! - A sector's root is fixed once accepted. A different root for it is a *reset*
//!   ([`CommitOutcome::Reset`], reason `SectorReset`): the sector's history is forfeited,
//!   it counts as one failed audit, and its next `vetting_deadlines_after_reset` passes earn
//!   nothing. Proofs against the old root are refused as `SectorReset`.
//! - Every accepted, non-terminated sector is due once per proving period in its deadline,
//!   from the first deadline that opens after it was committed. When a deadline has closed,
//!   each due sector is [`DeadlineOutcome::Passed`] (a proof was recorded for that period),
//!   [`DeadlineOutcome::Faulted`] (a fault was declared before the cutoff) or
//!   [`DeadlineOutcome::Missed`] (neither). Misses and rejections are failed audits;
//!   declared faults age the fault without touching the score (Filecoin: cheaper than an
//!   undeclared fault); a sector unproven for `fault_max_age_periods` periods is terminated.
//! - Deadlines that opened before `observed_from_ms` (the verifier was not running to issue
//!   their challenges) never count as missed: downtime of the verifier is not the node's.

use std::collections::BTreeMap;

use super::messages::SectorCommitment;
use super::reputation::{
    DeadlineResult, Reputation, ReputationParams, SectorHealth, SectorState, settle,
};
use super::verify::SectorLookup;
use super::{Deadline, SectorId, StorageParams};
use crate::merkle::Hash;
use crate::reject::RejectReason;

/// One accepted sector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectorRecord {
    /// The accepted commitment; its root only changes by a reset.
    pub commitment: SectorCommitment,
    /// When the current root was accepted, unix ms; deadlines opening earlier are not due.
    pub committed_at_ms: u64,
    /// Health and counters since the last reset.
    pub state: SectorState,
    /// Latest proving period with a recorded proof.
    pub last_proven_period: Option<u64>,
    /// Proven periods whose deadline is not accounted yet, oldest first (at most
    /// [`MAX_UNACCOUNTED_PROOFS`]): accounting that runs late, after the next period's
    /// proof, must still find this one, or an honest pass would be counted missed.
    pub unaccounted_proofs: Vec<u64>,
    /// Latest proving period the node declared a fault for.
    pub declared_fault_period: Option<u64>,
    /// Declared-faulty periods whose deadline is not accounted yet, oldest first (at most
    /// [`MAX_UNACCOUNTED_PROOFS`]); like `unaccounted_proofs`, so that a declaration for
    /// the period after does not turn this one into a miss.
    pub unaccounted_faults: Vec<u64>,
    /// Passes still unpaid after a reset.
    pub vetting_left: u32,
    /// Resets over the sector's life.
    pub resets: u64,
}

/// Everything the verifier keeps about one storage node.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageLedger {
    /// Accepted sectors.
    pub sectors: BTreeMap<SectorId, SectorRecord>,
    /// Audit reputation (one audit per due sector-deadline).
    pub reputation: Reputation,
    /// Set once the score fell below the threshold; final, as in Storj.
    pub disqualified: bool,
    /// Deadlines closing at or before this (unix ms) are accounted.
    pub accounted_through_ms: u64,
}

/// The most sectors a node may have accepted: what its volume really holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityLimit {
    /// The node's sector size, bytes.
    pub sector_bytes: u64,
    /// Bytes the node's volume holds (the smaller of spec and volume).
    pub capacity_bytes: u64,
}

impl CapacityLimit {
    /// Whole sectors that fit.
    pub fn sectors(&self) -> u64 {
        self.capacity_bytes / self.sector_bytes.max(1)
    }
}

/// What an accepted commitment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// First acceptance of the sector.
    New,
    /// The accepted root again (agents re-send commitments on every session).
    Unchanged,
    /// A new root for an accepted sector: its history is forfeited (reason `SectorReset`).
    Reset {
        /// The root it replaced.
        previous_root: Hash,
    },
}

/// How one due sector's closed deadline went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineOutcome {
    /// A proof for the period was recorded.
    Passed,
    /// The node declared the fault before the cutoff.
    Faulted,
    /// No passing proof and no declaration before the window closed.
    Missed,
}

/// One closed deadline: every sector that was due in it and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineAccount {
    /// The deadline.
    pub deadline: Deadline,
    /// Due sectors with their size in bytes and outcome, by sector id.
    pub sectors: Vec<(SectorId, u64, DeadlineOutcome)>,
}

/// What accounting closed deadlines did, to add to the epoch's tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountTotals {
    /// Deadlines accounted.
    pub deadlines: u64,
    /// Sector-deadlines passed.
    pub passed: u64,
    /// Sector-deadlines missed.
    pub missed: u64,
    /// Sector-deadlines with a declared fault.
    pub faulted: u64,
    /// Bytes × periods missed (Σ sector size over missed sector-deadlines).
    pub missed_byte_periods: u128,
    /// Bytes × periods under a declared fault.
    pub faulted_byte_periods: u128,
    /// Sectors terminated by this accounting.
    pub terminated: u64,
}

/// Sectors by health, for status and gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SectorCounts {
    /// Proven at their last deadline, or not yet due.
    pub active: u64,
    /// Unproven at their last deadline.
    pub faulty: u64,
    /// Unproven for the fault limit; no longer challenged or paid.
    pub terminated: u64,
    /// Bytes under active or faulty (not terminated) sectors.
    pub live_bytes: u64,
}

/// Proven periods a sector remembers until they are accounted: a sweep this many periods
/// late counts the oldest as unobserved (only passes count there), never a pass as missed.
pub const MAX_UNACCOUNTED_PROOFS: usize = 16;

/// Most deadlines one accounting call walks: two periods' worth at the default 48 per
/// period. Older deadlines of a long-stalled sweep are treated as unobserved.
const MAX_DEADLINES_PER_CALL: u64 = 96;

impl StorageLedger {
    /// A node with no sectors and the prior reputation.
    pub fn new(params: &ReputationParams) -> Self {
        Self {
            sectors: BTreeMap::new(),
            reputation: Reputation::new(params),
            disqualified: false,
            accounted_through_ms: 0,
        }
    }

    /// Records an accepted commitment (checked by `verify_sector_commitment`) at `now_ms`.
    /// Refused: a sector of another size than the node's (`WrongLeafCount`, as before), or
    /// one beyond what its volume holds (`BeyondCapacity`).
    pub fn commit(
        &mut self,
        commitment: &SectorCommitment,
        limit: &CapacityLimit,
        now_ms: u64,
        params: &ReputationParams,
    ) -> Result<CommitOutcome, RejectReason> {
        if commitment.sector_bytes != limit.sector_bytes {
            return Err(RejectReason::WrongLeafCount);
        }
        if commitment.sector.0 >= limit.sectors() {
            return Err(RejectReason::BeyondCapacity);
        }
        let fresh = |resets, vetting_left| SectorRecord {
            commitment: *commitment,
            committed_at_ms: now_ms,
            state: SectorState::default(),
            last_proven_period: None,
            unaccounted_proofs: Vec::new(),
            declared_fault_period: None,
            unaccounted_faults: Vec::new(),
            vetting_left,
            resets,
        };
        let Some(record) = self.sectors.get_mut(&commitment.sector) else {
            self.sectors.insert(commitment.sector, fresh(0, 0));
            return Ok(CommitOutcome::New);
        };
        if record.commitment == *commitment {
            return Ok(CommitOutcome::Unchanged);
        }
        let previous_root = record.commitment.root;
        // A terminated sector was already given up: re-committing it is a fresh start, not
        // a broken promise, but it still has to be vetted again.
        if record.state.health != SectorHealth::Terminated {
            self.reputation = self.reputation.after_audit(false, params);
            self.disqualified |= self.reputation.score() < params.disqualify_below;
        }
        *record = fresh(
            record.resets.saturating_add(1),
            params.vetting_deadlines_after_reset,
        );
        Ok(CommitOutcome::Reset { previous_root })
    }

    /// What [`Self::record_proof`] would return, without recording: the verifier decides
    /// (and makes the tally durable) before the ledger moves on.
    pub fn proof_bytes(
        &self,
        sector: SectorId,
        period: u64,
        root: &Hash,
    ) -> Result<u64, RejectReason> {
        let record = self
            .sectors
            .get(&sector)
            .filter(|r| r.state.health != SectorHealth::Terminated)
            .ok_or(RejectReason::UnknownSector)?;
        if record.commitment.root != *root {
            return Err(RejectReason::SectorReset);
        }
        if record.last_proven_period.is_some_and(|p| p >= period) {
            return Err(RejectReason::Replay);
        }
        Ok(if record.vetting_left > 0 {
            0
        } else {
            record.commitment.sector_bytes
        })
    }

    /// Records a verified proof of `sector` for proving period `period`, answered against
    /// `root` (the root the challenge was issued for). Returns the bytes it proved for
    /// shares: the sector size, or 0 while the sector is vetting after a reset.
    pub fn record_proof(
        &mut self,
        sector: SectorId,
        period: u64,
        root: &Hash,
    ) -> Result<u64, RejectReason> {
        // One set of checks for both: what is recorded is exactly what was predicted.
        let bytes = self.proof_bytes(sector, period, root)?;
        let record = self.live_record(sector, root)?;
        record.last_proven_period = Some(period);
        record.unaccounted_proofs.push(period);
        if record.unaccounted_proofs.len() > MAX_UNACCOUNTED_PROOFS {
            record.unaccounted_proofs.remove(0);
        }
        record.vetting_left = record.vetting_left.saturating_sub(1);
        Ok(bytes)
    }

    /// Records a verified fault declaration (`verify_fault_declaration` checked the
    /// cutoff) for `sector` in proving period `period`.
    pub fn record_fault(&mut self, sector: SectorId, period: u64) -> Result<(), RejectReason> {
        let root = self
            .sectors
            .get(&sector)
            .map(|r| r.commitment.root)
            .ok_or(RejectReason::UnknownSector)?;
        let record = self.live_record(sector, &root)?;
        record.declared_fault_period = Some(period.max(record.declared_fault_period.unwrap_or(0)));
        if !record.unaccounted_faults.contains(&period) {
            record.unaccounted_faults.push(period);
            record.unaccounted_faults.sort_unstable();
            if record.unaccounted_faults.len() > MAX_UNACCOUNTED_PROOFS {
                record.unaccounted_faults.remove(0);
            }
        }
        Ok(())
    }

    fn live_record(
        &mut self,
        sector: SectorId,
        root: &Hash,
    ) -> Result<&mut SectorRecord, RejectReason> {
        let record = self
            .sectors
            .get_mut(&sector)
            .filter(|r| r.state.health != SectorHealth::Terminated)
            .ok_or(RejectReason::UnknownSector)?;
        if record.commitment.root != *root {
            return Err(RejectReason::SectorReset);
        }
        Ok(record)
    }

    /// The sectors still challenged (not terminated), in order, without copying the ledger.
    pub fn live_sectors(&self) -> impl Iterator<Item = SectorId> + '_ {
        self.sectors
            .iter()
            .filter(|(_, r)| r.state.health != SectorHealth::Terminated)
            .map(|(id, _)| *id)
    }

    /// The accepted commitments still challenged (not terminated), for the schedule.
    pub fn live_commitments(&self) -> BTreeMap<SectorId, SectorCommitment> {
        self.sectors
            .iter()
            .filter(|(_, r)| r.state.health != SectorHealth::Terminated)
            .map(|(id, r)| (*id, r.commitment))
            .collect()
    }

    /// Sectors by health.
    pub fn counts(&self) -> SectorCounts {
        let mut counts = SectorCounts::default();
        for record in self.sectors.values() {
            match record.state.health {
                SectorHealth::Active => counts.active += 1,
                SectorHealth::Faulty => counts.faulty += 1,
                SectorHealth::Terminated => counts.terminated += 1,
            }
            if record.state.health != SectorHealth::Terminated {
                counts.live_bytes = counts
                    .live_bytes
                    .saturating_add(record.commitment.sector_bytes);
            }
        }
        counts
    }

    /// Accounts every deadline that closed after `accounted_through_ms` and by `now_ms`
    /// (at most [`MAX_DEADLINES_PER_CALL`], the most recent ones), applying each outcome.
    pub fn close_deadlines(
        &mut self,
        storage: &StorageParams,
        params: &ReputationParams,
        observed_from_ms: u64,
        now_ms: u64,
    ) -> AccountTotals {
        let mut totals = AccountTotals::default();
        for deadline in closed_since(storage, self.accounted_through_ms, now_ms) {
            let account = account_deadline(self, &deadline, storage, observed_from_ms);
            self.apply(&account, params, &mut totals);
            self.accounted_through_ms = deadline.closes_at_ms;
            totals.deadlines += 1;
        }
        totals
    }

    fn apply(
        &mut self,
        account: &DeadlineAccount,
        params: &ReputationParams,
        totals: &mut AccountTotals,
    ) {
        for (sector, bytes, outcome) in &account.sectors {
            let Some(record) = self.sectors.get_mut(sector) else {
                continue;
            };
            let period = account.deadline.period;
            record.unaccounted_proofs.retain(|p| *p > period);
            record.unaccounted_faults.retain(|p| *p > period);
            let result = match outcome {
                DeadlineOutcome::Passed => {
                    totals.passed += 1;
                    DeadlineResult::Proven
                }
                DeadlineOutcome::Faulted => {
                    totals.faulted += 1;
                    totals.faulted_byte_periods += u128::from(*bytes);
                    DeadlineResult::DeclaredFault
                }
                DeadlineOutcome::Missed => {
                    totals.missed += 1;
                    totals.missed_byte_periods += u128::from(*bytes);
                    DeadlineResult::Missed
                }
            };
            settle(
                &mut record.state,
                &mut self.reputation,
                &mut self.disqualified,
                result,
                params,
            );
            if record.state.health == SectorHealth::Terminated {
                totals.terminated += 1;
            }
        }
    }
}

/// A node with no sectors and Storj's prior (what a verifier starts from for a node whose
/// status holds no ledger yet).
impl Default for StorageLedger {
    fn default() -> Self {
        Self::new(&ReputationParams::default())
    }
}

impl SectorLookup for StorageLedger {
    fn commitment(&self, sector: SectorId) -> Option<&SectorCommitment> {
        self.sectors
            .get(&sector)
            .filter(|r| r.state.health != SectorHealth::Terminated)
            .map(|r| &r.commitment)
    }
}

/// Deadlines closing in `(after_ms, now_ms]`, oldest first, at most
/// [`MAX_DEADLINES_PER_CALL`] (the most recent).
pub fn closed_since(storage: &StorageParams, after_ms: u64, now_ms: u64) -> Vec<Deadline> {
    let mut out = Vec::new();
    if now_ms <= after_ms {
        return out;
    }
    // Walk back from the deadline open at `now` to the first one closing after `after_ms`.
    let mut current = storage.deadline_at(now_ms);
    while (out.len() as u64) < MAX_DEADLINES_PER_CALL {
        let Some(previous) = previous_deadline(storage, &current) else {
            break;
        };
        if previous.closes_at_ms <= after_ms {
            break;
        }
        out.push(previous);
        current = previous;
    }
    out.reverse();
    out
}

fn previous_deadline(storage: &StorageParams, deadline: &Deadline) -> Option<Deadline> {
    if deadline.index > 0 {
        storage.deadline(deadline.period, deadline.index - 1)
    } else {
        let last = storage.deadlines_per_period.max(1) - 1;
        storage.deadline(deadline.period.checked_sub(1)?, last)
    }
}

/// Which sectors were due in the closed `deadline` and how each went, from the ledger's
/// records: due = live, assigned to this deadline index and committed before it opened.
/// Deadlines that opened before `observed_from_ms` report only their passes.
pub fn account_deadline(
    ledger: &StorageLedger,
    deadline: &Deadline,
    storage: &StorageParams,
    observed_from_ms: u64,
) -> DeadlineAccount {
    let observed = deadline.opens_at_ms >= observed_from_ms;
    let sectors = ledger
        .sectors
        .iter()
        .filter(|(id, r)| {
            r.state.health != SectorHealth::Terminated
                && storage.deadline_index_of(**id) == deadline.index
                && r.committed_at_ms <= deadline.opens_at_ms
        })
        .filter_map(|(id, r)| {
            let outcome = if r.unaccounted_proofs.contains(&deadline.period) {
                DeadlineOutcome::Passed
            } else if r.unaccounted_faults.contains(&deadline.period) {
                DeadlineOutcome::Faulted
            } else {
                DeadlineOutcome::Missed
            };
            (observed || outcome == DeadlineOutcome::Passed).then_some((
                *id,
                r.commitment.sector_bytes,
                outcome,
            ))
        })
        .collect();
    DeadlineAccount {
        deadline: *deadline,
        sectors,
    }
}

#[cfg(test)]
mod tests;
