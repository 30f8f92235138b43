//! Global GPU rounds: every GPU identity paid by a policy is challenged at the same
//! instants, which only the verifier can compute.
//!
//! An epoch of length L_e is cut into R equal slots; round r fires once inside slot r at
//! `slot start + PRF_s(policy || epoch || r) mod (slot − guard)`, where s is the
//! verifier's secret and `guard` is the longest close time of the policy's classes, so a
//! round always closes inside its own slot. Because all identities are challenged at the
//! same instant, one device behind N identities must compute N chains inside one
//! deadline; because the instant is unpredictable, a device must be online and idle for
//! the whole slot to pass. Availability is passed rounds / rounds held, and a round with
//! no commitment by its close is a miss like any failure.

use crate::layout::Layout;

/// Domain of the verifier-private value that places each round inside its slot.
const ROUND_DOMAIN: &[u8] = b"depin/gpu/round/v1";
/// Default rounds per epoch. Ours: 96, one per 15 minutes of a one-day epoch (research:
/// 4 per hour).
pub const DEFAULT_ROUNDS_PER_EPOCH: u32 = 96;

/// Where the rounds of one policy's epochs fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundPlan {
    /// Epoch length, ms.
    pub epoch_ms: u64,
    /// Rounds per epoch actually held: the policy's figure, fewer when slots would be
    /// shorter than twice the guard.
    pub rounds: u32,
    /// Time at the end of each slot no round starts in (the longest class close), ms.
    pub guard_ms: u64,
}

/// One round: which, and when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Round {
    /// Epoch number.
    pub epoch: u64,
    /// Round number in the epoch, 0..rounds.
    pub index: u32,
    /// When every identity of the policy is challenged, unix ms.
    pub at_ms: u64,
}

impl RoundPlan {
    /// A plan for `rounds` per epoch of `epoch_ms`, with slots at least twice `guard_ms`
    /// long (fewer rounds when the epoch is too short; at least one).
    pub fn new(epoch_ms: u64, rounds: u32, guard_ms: u64) -> Self {
        let fit = epoch_ms / guard_ms.saturating_mul(2).max(1);
        let rounds = u64::from(rounds.max(1)).min(fit.max(1));
        Self {
            epoch_ms: epoch_ms.max(1),
            rounds: u32::try_from(rounds).unwrap_or(u32::MAX),
            guard_ms,
        }
    }

    /// Slot length, ms.
    pub fn slot_ms(&self) -> u64 {
        self.epoch_ms / u64::from(self.rounds.max(1))
    }

    /// Round `index` of `epoch`, placed by `secret_value(context)` (the verifier's
    /// [`crate::entropy::Beacon::private_value`] under this module's domain).
    pub fn round(
        &self,
        policy: &str,
        epoch: u64,
        index: u32,
        secret_value: impl Fn(&[u8], &[u8]) -> [u8; 32],
    ) -> Round {
        let context = Layout::with_capacity(48)
            .bytes(policy.as_bytes())
            .u64(epoch)
            .u32(index)
            .finish();
        let value = secret_value(ROUND_DOMAIN, &context);
        let mut word = [0u8; 8];
        word.copy_from_slice(&value[..8]);
        let spread = self.slot_ms().saturating_sub(self.guard_ms).max(1);
        let offset = u64::from_be_bytes(word) % spread;
        let start = epoch
            .saturating_mul(self.epoch_ms)
            .saturating_add(u64::from(index).saturating_mul(self.slot_ms()));
        Round {
            epoch,
            index,
            at_ms: start.saturating_add(offset),
        }
    }

    /// The first round whose slot starts at or after `from_ms`: a verifier that starts
    /// mid-slot skips that slot, so no round is held twice across a restart (the previous
    /// leader may have held it under another secret).
    pub fn first_round_from(
        &self,
        policy: &str,
        from_ms: u64,
        secret_value: impl Fn(&[u8], &[u8]) -> [u8; 32],
    ) -> Round {
        let epoch = from_ms / self.epoch_ms;
        let index = (from_ms % self.epoch_ms).div_ceil(self.slot_ms().max(1));
        let slot = epoch
            .saturating_mul(u64::from(self.rounds))
            .saturating_add(index);
        self.round_of_slot(policy, slot, secret_value)
    }

    /// The round after `round`.
    pub fn next(
        &self,
        policy: &str,
        round: &Round,
        secret_value: impl Fn(&[u8], &[u8]) -> [u8; 32],
    ) -> Round {
        let slot = round
            .epoch
            .saturating_mul(u64::from(self.rounds))
            .saturating_add(u64::from(round.index))
            .saturating_add(1);
        self.round_of_slot(policy, slot, secret_value)
    }

    /// The round of global slot number `slot` (epoch × rounds + index; an index past the
    /// last slot, from a start in the epoch's remainder, carries into the next epoch).
    /// Slots never straddle epochs: the remainder of epoch_ms / rounds is idle.
    fn round_of_slot(
        &self,
        policy: &str,
        slot: u64,
        secret_value: impl Fn(&[u8], &[u8]) -> [u8; 32],
    ) -> Round {
        let rounds = u64::from(self.rounds.max(1));
        let (epoch, index) = (slot / rounds, slot % rounds);
        self.round(
            policy,
            epoch,
            u32::try_from(index).unwrap_or(0),
            secret_value,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::{Beacon, EntropyConfig};

    #[test]
    fn rounds_fall_inside_their_slots_in_order_and_depend_on_the_secret() {
        let plan = RoundPlan::new(60_000, 10, 1_000);
        let beacon = Beacon::new([7; 32], EntropyConfig::default());
        let other = Beacon::new([8; 32], EntropyConfig::default());
        let value = |d: &[u8], c: &[u8]| beacon.private_value(d, c);
        let mut round = plan.first_round_from("p", 0, value);
        let mut differs = false;
        for _ in 0..25 {
            let slot_start = round.epoch * 60_000 + u64::from(round.index) * plan.slot_ms();
            assert!(round.at_ms >= slot_start);
            assert!(round.at_ms + plan.guard_ms <= slot_start + plan.slot_ms());
            let theirs = plan.round("p", round.epoch, round.index, |d, c| {
                other.private_value(d, c)
            });
            differs |= theirs.at_ms != round.at_ms;
            let next = plan.next("p", &round, value);
            assert!(next.at_ms > round.at_ms);
            round = next;
        }
        assert_eq!((round.epoch, round.index), (2, 5));
        assert!(differs, "instants must come from the secret");
    }

    #[test]
    fn a_restart_mid_slot_skips_that_slot_and_short_epochs_hold_fewer_rounds() {
        let plan = RoundPlan::new(60_000, 10, 1_000);
        let value = |_: &[u8], _: &[u8]| [0u8; 32];
        assert_eq!(plan.first_round_from("p", 6_000, value).index, 1);
        assert_eq!(plan.first_round_from("p", 6_001, value).index, 2);
        let r = plan.first_round_from("p", 59_999, value);
        assert_eq!((r.epoch, r.index), (1, 0));
        assert_eq!(RoundPlan::new(10_000, 96, 2_000).rounds, 2);
        assert_eq!(RoundPlan::new(1_000, 96, 2_000).rounds, 1);
    }
}
