//! Which epochs of a policy are due to close (pure).
//!
//! Epoch numbers in RewardEpochs and node `status.rewards` count from the policy's genesis
//! (0 = the epoch containing its creation), so halving is relative to the policy's start.
//! The verifier's tallies carry wall-clock epochs (`unix seconds / epochSeconds`):
//! RewardEpoch `n` is tally epoch `genesis + n`.

use std::ops::Range;

/// One policy's epoch clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Epoch length in seconds (at least 1).
    pub epoch_seconds: u64,
    /// Seconds after an epoch ends before it is closed.
    pub grace_seconds: u64,
    /// Wall-clock epoch of the policy's creation: RewardEpoch 0.
    pub genesis: u64,
}

impl Schedule {
    /// The clock of a policy created at `created_unix_s`.
    pub fn new(epoch_seconds: u64, grace_seconds: u64, created_unix_s: u64) -> Self {
        let epoch_seconds = epoch_seconds.max(1);
        Self {
            epoch_seconds,
            grace_seconds,
            genesis: created_unix_s / epoch_seconds,
        }
    }

    /// The verifier's (wall-clock) epoch of RewardEpoch `n`.
    pub fn tally_epoch(&self, n: u64) -> u64 {
        self.genesis.saturating_add(n)
    }

    /// `[start, end)` of RewardEpoch `n` in unix seconds.
    pub fn window(&self, n: u64) -> (u64, u64) {
        let start = self.tally_epoch(n).saturating_mul(self.epoch_seconds);
        (start, start.saturating_add(self.epoch_seconds))
    }

    /// Epochs to close now, in order: after `last_closed` (from genesis when none), every
    /// epoch whose end plus grace is at or before `now_unix_s`.
    pub fn due(&self, last_closed: Option<u64>, now_unix_s: u64) -> Range<u64> {
        let from = last_closed.map_or(0, |l| l.saturating_add(1));
        // Epoch n is due when (genesis + n + 1) × S + grace ≤ now.
        let ended = now_unix_s.saturating_sub(self.grace_seconds) / self.epoch_seconds;
        let to = ended.saturating_sub(self.genesis).max(from);
        from..to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_grace_and_resume() {
        // 20 s epochs, 5 s grace, created at t = 1005 → genesis wall epoch 50 = [1000, 1020).
        let s = Schedule::new(20, 5, 1005);
        assert_eq!(s.genesis, 50);
        assert_eq!(s.window(0), (1000, 1020));
        assert_eq!(s.window(2), (1040, 1060));
        assert_eq!(s.tally_epoch(2), 52);
        // (last closed, now) → due range
        let table: &[(Option<u64>, u64, Range<u64>)] = &[
            (None, 1005, 0..0),    // inside genesis epoch
            (None, 1024, 0..0),    // ended, still in grace
            (None, 1025, 0..1),    // grace over: close 0
            (Some(0), 1025, 1..1), // already closed
            (Some(0), 1064, 1..2), // 1 due, 2 in grace
            (Some(0), 1065, 1..3), // catching up after downtime, in order
            (None, 1105, 0..5),    // fresh start long after genesis
            (Some(7), 1065, 8..8), // status ahead of the clock: nothing, never backwards
        ];
        for (i, (last, now, want)) in table.iter().enumerate() {
            assert_eq!(s.due(*last, *now), *want, "row {i}");
        }
    }

    #[test]
    fn zero_length_and_clock_before_genesis() {
        let s = Schedule::new(0, 0, 10);
        assert_eq!(s.epoch_seconds, 1);
        assert_eq!(s.due(None, 5), 0..0);
        assert_eq!(s.due(None, 12), 0..2);
    }
}
