//! Meter rules: one signed reading against its node's chain and the fleet's serials.
//!
//! A meter swap recorded in the MeterBridge (`spec.replacement`) lets the first link
//! after it change serial and restart the register; it must be recorded before that link
//! arrives, since a rejected link is not kept and the chain cannot continue past it.
//! After a verifier restart the first reading becomes the chain's baseline (see
//! `state::meter`).

use super::in_time;
use crate::verifier::state::index::{Declared, EpochWindow};
use crate::verifier::state::meter::{MeterChains, Replacement};
use depin_proof::RejectReason;
use depin_proof::meter::{
    Installation, MeterChain, MeterContext, MeterDirection, MeterParams, SignedReading, Site,
    VerifiedReading, verify_baseline, verify_installed,
};

/// What a node's readings are checked against.
#[derive(Clone, Copy, Debug)]
pub struct MeterRules<'a> {
    /// Its slot from the MeterBridge, the rest defaults.
    pub params: MeterParams,
    /// Nameplate capacity, W.
    pub rated_capacity_w: u64,
    /// Its recorded meter swap.
    pub replacement: Option<&'a Replacement>,
    /// What it measures: only production obeys the sun.
    pub direction: MeterDirection,
    /// Its declared site.
    pub site: Option<Site>,
}

/// The rules for a node; `None` when it is not a (valid) MeterBridge.
pub fn rules_for(declared: &Declared) -> Option<MeterRules<'_>> {
    match declared {
        Declared::Meter {
            rated_capacity_w,
            slot_ms,
            replacement,
            direction,
            site,
        } => Some(MeterRules {
            params: MeterParams {
                slot_ms: *slot_ms,
                ..MeterParams::default()
            },
            rated_capacity_w: *rated_capacity_w,
            replacement: replacement.as_ref(),
            direction: *direction,
            site: *site,
        }),
        _ => None,
    }
}

/// The replacement slot `verify_reading` takes for a reading from `serial`: the first
/// slot starting at or after the swap (the agent reads at slot starts, so a reading
/// labelled with the swap's own slot was taken before it); `None` when the reading is not
/// from the recorded new serial.
pub fn replacement_slot(swap: &Replacement, params: &MeterParams, serial: &str) -> Option<u64> {
    if swap.new_serial.as_deref().is_some_and(|new| new != serial) {
        return None;
    }
    Some(swap.at_ms.div_ceil(params.slot_ms.max(1)))
}

/// What judging one reading did, so a failed durable write can be undone.
#[derive(Debug)]
pub struct Decided {
    /// The verdict.
    pub verdict: Result<VerifiedReading, RejectReason>,
    /// The node's chain before the reading (restored if recording fails).
    pub before: MeterChain,
}

/// Verifies `signed` at `now_ms` against its node's chain in `chains` and, when accepted
/// (or a conflicting second report bans a slot), moves the chain on; an accepted reading
/// claims its serial for the node.
pub fn reading(
    chains: &mut MeterChains,
    signed: &SignedReading,
    rules: &MeterRules<'_>,
    now_ms: u64,
) -> Decided {
    let MeterChains { by_node, serials } = chains;
    let params = &rules.params;
    let chain = by_node.entry(signed.node).or_default();
    chain.prune(params, now_ms);
    let before = chain.clone();
    let ctx = MeterContext {
        params,
        rated_capacity_w: rules.rated_capacity_w,
        now_ms,
        serials: &*serials,
        replaced_at_slot: rules
            .replacement
            .and_then(|r| replacement_slot(r, params, &signed.reading.meter_serial)),
    };
    let installation = Installation {
        direction: rules.direction,
        site: rules.site,
    };
    let verdict = if chain.tip.is_none() && signed.reading.seq > 0 {
        verify_baseline(signed, &ctx)
    } else {
        verify_installed(signed, chain, &ctx, &installation)
    };
    chain.record(signed, &verdict);
    if verdict.is_ok() {
        // The verdict checked the serial is free or ours, so this holds or claims it.
        serials.claim(&signed.reading.meter_serial, signed.node, now_ms);
    }
    Decided { verdict, before }
}

/// The Wh to credit for a verdict at `now_ms`. A reading is the work of its slot's start:
/// the chain still moves on when that is too late to count (the next link must follow
/// it), but it earns nothing (`LateForEpoch`).
pub fn credit(
    signed: &SignedReading,
    verdict: &Result<VerifiedReading, RejectReason>,
    rules: &MeterRules<'_>,
    epoch: Option<EpochWindow>,
    now_ms: u64,
) -> Result<u128, RejectReason> {
    let slot_start_ms = signed.reading.slot.saturating_mul(rules.params.slot_ms);
    in_time(
        epoch,
        slot_start_ms,
        now_ms,
        verdict
            .as_ref()
            .map(|verified| u128::from(verified.delta_wh))
            .map_err(|r| *r),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::state::meter::MeterBook;
    use depin_proof::identity::NodeKey;
    use depin_proof::meter::ChainHead;

    const SLOT_MS: u64 = 10_000;

    fn params() -> MeterParams {
        MeterParams {
            slot_ms: SLOT_MS,
            ..MeterParams::default()
        }
    }

    /// The pure rule on a book's chains, as the session runs it.
    fn judge(
        book: &MeterBook,
        signed: &SignedReading,
        swap: Option<&Replacement>,
        now: u64,
    ) -> Decided {
        let rules = MeterRules {
            params: params(),
            rated_capacity_w: 10_000,
            replacement: swap,
            // The chain rules are under test: a consumption meter skips the sun's.
            direction: MeterDirection::Consumption,
            site: None,
        };
        reading(&mut book.lock(), signed, &rules, now)
    }

    #[test]
    fn a_restarted_verifier_adopts_the_first_reading_as_baseline_then_checks_links() {
        let key = NodeKey::from_seed([5; 32]);
        let mut head = ChainHead::default();
        let now = 1_000 * SLOT_MS;
        // Links 0..3 went to a previous verifier.
        for (i, wh) in [(996, 100), (997, 110), (998, 120)] {
            head.next(&key, "SN", i, wh, 3_600, 10).expect("signed");
        }
        let book = MeterBook::default();
        let baseline = head.next(&key, "SN", 999, 130, 3_600, 10).expect("signed");
        let decided = judge(&book, &baseline, None, now);
        assert_eq!(decided.verdict.map(|v| v.delta_wh), Ok(0));
        let rollback = head
            .next(&key, "SN", 1_000, 125, 3_600, 10)
            .expect("signed");
        let decided = judge(&book, &rollback, None, now);
        assert_eq!(decided.verdict, Err(RejectReason::RegisterRollback));
    }

    #[test]
    fn a_swap_excuses_one_new_serial_link_and_nothing_after_it() {
        let key = NodeKey::from_seed([8; 32]);
        let now = 1_000 * SLOT_MS;
        let swap = Replacement {
            at_ms: 999 * SLOT_MS - 1,
            new_serial: None,
        };
        let book = MeterBook::default();
        let mut head = ChainHead::default();
        let mut decide = |serial: &str, slot: u64, wh: u64, swap: Option<&Replacement>| {
            let signed = head.next(&key, serial, slot, wh, 0, 1).expect("signed");
            judge(&book, &signed, swap, now).verdict
        };
        assert!(decide("OLD", 998, 5_000, Some(&swap)).is_ok());
        assert_eq!(
            decide("NEW", 999, 0, Some(&swap)).map(|v| v.delta_wh),
            Ok(0)
        );
        assert_eq!(
            decide("NEW", 1_000, 0, Some(&swap)).map(|v| v.delta_wh),
            Ok(0)
        );
        assert_eq!(
            decide("OLD", 1_001, 0, Some(&swap)).map(|_| ()),
            Err(RejectReason::MeterSerialChanged)
        );
    }

    #[test]
    fn a_forged_baseline_and_a_claimed_serial_are_refused() {
        let (honest, thief) = (NodeKey::from_seed([6; 32]), NodeKey::from_seed([7; 32]));
        let book = MeterBook::default();
        let now = 1_000 * SLOT_MS;
        let first = ChainHead::default()
            .next(&honest, "SN", 1_000, 10, 0, 1)
            .expect("signed");
        assert!(judge(&book, &first, None, now).verdict.is_ok());
        let mut head = ChainHead {
            next_seq: 5,
            ..ChainHead::default()
        };
        let stolen = head.next(&thief, "SN", 1_000, 10, 0, 1).expect("signed");
        assert_eq!(
            judge(&book, &stolen, None, now).verdict,
            Err(RejectReason::DuplicateMeterSerial)
        );
        let mut forged = head.next(&thief, "SN-2", 1_001, 10, 0, 1).expect("signed");
        forged.reading.cumulative_wh += 1;
        assert_eq!(
            judge(&book, &forged, None, now).verdict,
            Err(RejectReason::BadSignature)
        );
    }

    #[test]
    fn a_deleted_bridge_releases_its_serial_for_the_next_owner() {
        let (old, new) = (NodeKey::from_seed([8; 32]), NodeKey::from_seed([9; 32]));
        let book = MeterBook::default();
        let now = 1_000 * SLOT_MS;
        let reading = |key: &NodeKey| {
            ChainHead::default()
                .next(key, "SN-X", 1_000, 10, 0, 1)
                .expect("signed")
        };
        assert!(judge(&book, &reading(&old), None, now).verdict.is_ok());
        assert_eq!(
            judge(&book, &reading(&new), None, now).verdict,
            Err(RejectReason::DuplicateMeterSerial),
            "claimed while the first bridge exists"
        );
        book.forget(&old.public());
        assert!(judge(&book, &reading(&new), None, now).verdict.is_ok());
        assert!(book.tip(&old.public()).is_none(), "the old chain is gone");
    }
}
