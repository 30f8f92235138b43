//! Storage "mini-PoSt": Merkle-committed sectors, k random leaf challenges per deadline drawn
//! from the beacon, faults and a Storj-style reputation (research: depin-anchors §2(c)).
//!
//! Threat model, stated plainly: a passing response proves the node could produce the
//! committed leaves inside the deadline window. It does not prove the bytes sit on *this*
//! node's disk if they are cheap to regenerate or fetch (compressible data, a peer holding
//! a copy); Filecoin's sealing (SDR PoRep) or Arweave-style slow packing would be needed
//! for that, and neither is implemented here.

mod ledger;
mod messages;
mod prove;
mod reputation;
mod verify;

#[cfg(test)]
mod tests;

pub use ledger::{
    AccountTotals, CapacityLimit, CommitOutcome, DeadlineAccount, DeadlineOutcome, SectorCounts,
    SectorRecord, StorageLedger, account_deadline, closed_since,
};
pub use messages::{
    FaultDeclaration, LeafOpening, SectorCommitment, SignedSectorCommitment, StorageChallenge,
    StorageResponse, challenged_leaves, leaf_hash,
};
pub use prove::{SectorTree, answer_challenge, commit_sector, commit_sector_from};
pub use reputation::{
    DeadlineResult, Reputation, ReputationParams, SectorHealth, SectorState, StorageNodeState,
    apply_deadline_result,
};
pub use verify::{
    CommitmentContext, SectorLookup, StorageContext, VerifiedFault, VerifiedSectorCommitment,
    VerifiedStorageProof, verify_fault_declaration, verify_sector_commitment,
    verify_storage_response,
};

use crate::entropy::EntropyConfig;

/// Default leaf size: 16 KiB. Ours: 4 KiB leaves halve Merkle commit throughput on this
/// hardware (BLAKE3 cannot use its widest SIMD path on short inputs; research
/// primitive-limits.md: 0.5× vs 0.97× plain BLAKE3) and quadruple the prover's tree memory.
pub const DEFAULT_LEAF_SIZE: u32 = 16 * 1024;
/// Default challenges per sector per deadline. From research depin-anchors §2(c).5:
/// k = 46 catches a node missing 10 % of its leaves with probability 1 − 0.9^46 ≥ 0.99 in
/// a single deadline (Filecoin's own k = 10 only reaches 0.65).
pub const DEFAULT_CHALLENGES_PER_DEADLINE: u32 = 46;
/// Default proving period: 24 h. Filecoin `WPoStProvingPeriod` = 2880 epochs × 30 s.
pub const DEFAULT_PROVING_PERIOD_MS: u64 = 24 * 60 * 60 * 1000;
/// Default deadlines per period: 48 (30 min each). Filecoin `WPoStPeriodDeadlines`.
pub const DEFAULT_DEADLINES_PER_PERIOD: u32 = 48;
/// Default fault-declaration cutoff before a deadline opens: 35 min. Filecoin
/// `FaultDeclarationCutoff` = 70 epochs × 30 s.
pub const DEFAULT_FAULT_CUTOFF_MS: u64 = 70 * 30 * 1000;

/// Proof parameters a `RewardPolicy` sets for storage nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageParams {
    /// Bytes per leaf; the last leaf of a sector may be shorter.
    pub leaf_size: u32,
    /// Leaves challenged per sector per deadline (k).
    pub challenges_per_deadline: u32,
    /// Length of one proving period; every sector is challenged once per period.
    pub proving_period_ms: u64,
    /// Deadlines per period; sector `s` is due in deadline `s mod deadlines_per_period`.
    pub deadlines_per_period: u32,
    /// A fault must be declared at least this long before its deadline opens.
    pub fault_cutoff_ms: u64,
}

impl Default for StorageParams {
    fn default() -> Self {
        Self {
            leaf_size: DEFAULT_LEAF_SIZE,
            challenges_per_deadline: DEFAULT_CHALLENGES_PER_DEADLINE,
            proving_period_ms: DEFAULT_PROVING_PERIOD_MS,
            deadlines_per_period: DEFAULT_DEADLINES_PER_PERIOD,
            fault_cutoff_ms: DEFAULT_FAULT_CUTOFF_MS,
        }
    }
}

/// A sector's number within its node (Filecoin sector numbers are u64 too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SectorId(pub u64);

/// One deadline: a window in which the sectors assigned to it must be proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Deadline {
    /// Proving period number (periods count from the unix epoch).
    pub period: u64,
    /// Index within the period, `0..deadlines_per_period`.
    pub index: u32,
    /// Window start, unix ms, inclusive.
    pub opens_at_ms: u64,
    /// Window end, unix ms, exclusive.
    pub closes_at_ms: u64,
}

impl StorageParams {
    fn period_ms(&self) -> u64 {
        self.proving_period_ms.max(1)
    }

    fn deadlines(&self) -> u32 {
        self.deadlines_per_period.max(1)
    }

    /// Offset of deadline `index`'s opening within its period; `index` may equal the count.
    fn offset_of(&self, index: u32) -> u64 {
        // u128: index × period cannot overflow, and the result is ≤ period_ms.
        let offset =
            u128::from(index) * u128::from(self.period_ms()) / u128::from(self.deadlines());
        u64::try_from(offset).unwrap_or(u64::MAX)
    }

    /// Deadline `index` of `period`, or `None` when the index does not exist.
    pub fn deadline(&self, period: u64, index: u32) -> Option<Deadline> {
        if index >= self.deadlines() {
            return None;
        }
        let start = period.checked_mul(self.period_ms())?;
        Some(Deadline {
            period,
            index,
            opens_at_ms: start.checked_add(self.offset_of(index))?,
            closes_at_ms: start.checked_add(self.offset_of(index + 1))?,
        })
    }

    /// The deadline open at `now_ms`.
    pub fn deadline_at(&self, now_ms: u64) -> Deadline {
        let period = now_ms / self.period_ms();
        let offset = now_ms % self.period_ms();
        let guess =
            u128::from(offset) * u128::from(self.deadlines()) / u128::from(self.period_ms());
        let mut index = u32::try_from(guess).unwrap_or(0).min(self.deadlines() - 1);
        // Integer rounding may put the guess one off in either direction.
        while index > 0 && self.offset_of(index) > offset {
            index -= 1;
        }
        while index + 1 < self.deadlines() && self.offset_of(index + 1) <= offset {
            index += 1;
        }
        let start = period * self.period_ms();
        Deadline {
            period,
            index,
            opens_at_ms: start + self.offset_of(index),
            closes_at_ms: start.saturating_add(self.offset_of(index + 1)),
        }
    }

    /// The deadline index sector `sector` is proven in, every period.
    pub fn deadline_index_of(&self, sector: SectorId) -> u32 {
        // The remainder is below deadlines(), a u32, so the conversion cannot fail.
        u32::try_from(sector.0 % u64::from(self.deadlines())).unwrap_or(0)
    }

    /// The sector's next deadline that has not closed at `now_ms`.
    pub fn next_deadline_for(&self, sector: SectorId, now_ms: u64) -> Option<Deadline> {
        let index = self.deadline_index_of(sector);
        let period = now_ms / self.period_ms();
        let this = self.deadline(period, index)?;
        if now_ms < this.closes_at_ms {
            Some(this)
        } else {
            self.deadline(period + 1, index)
        }
    }

    /// The beacon tick a deadline's challenges draw from: the first issued at or after the
    /// window opens, so nobody can know the challenged leaves before the window.
    pub fn challenge_tick(&self, deadline: &Deadline, entropy: &EntropyConfig) -> u64 {
        entropy.first_tick_from(deadline.opens_at_ms)
    }

    /// Leaves a sector of `sector_bytes` splits into (the last one may be short).
    pub fn leaf_count_for(&self, sector_bytes: u64) -> u64 {
        sector_bytes.div_ceil(u64::from(self.leaf_size.max(1)))
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;

    #[test]
    fn schedule_covers_the_period_without_gaps() {
        let p = StorageParams {
            proving_period_ms: 1_000_003,
            deadlines_per_period: 7,
            ..StorageParams::default()
        };
        let mut expected_open = 3 * 1_000_003;
        for index in 0..7 {
            let d = p.deadline(3, index).expect("exists");
            assert_eq!(d.opens_at_ms, expected_open);
            assert_eq!(p.deadline_at(d.opens_at_ms), d);
            assert_eq!(p.deadline_at(d.closes_at_ms - 1), d);
            expected_open = d.closes_at_ms;
        }
        assert_eq!(expected_open, 4 * 1_000_003);
        assert_eq!(p.deadline(3, 7), None);
        let sector = SectorId(9); // due in deadline 2
        let d2 = p.deadline(3, 2).expect("exists");
        assert_eq!(p.next_deadline_for(sector, d2.opens_at_ms), Some(d2));
        assert_eq!(
            p.next_deadline_for(sector, d2.closes_at_ms),
            p.deadline(4, 2)
        );
    }
}
