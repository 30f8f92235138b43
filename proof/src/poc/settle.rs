//! Settling one beacon: verify it, verify its witnesses in arrival order, select at most
//! the cap, apply reciprocity, and price the result in HIP-15 reward units.

use std::collections::BTreeSet;

use super::density::DEFAULT_TX_SCALE;
use super::verify::{
    BeaconContext, BeaconSubmission, VerifiedBeacon, VerifiedWitness, WitnessContext,
    WitnessSubmission, check_reciprocity, verify_beacon, verify_witness,
};
use crate::identity::PublicKey;
use crate::reject::RejectReason;
use crate::reward::Decimal;

/// HIP-15 decay: `0.8 = 4/5`, kept as integers so units are exact.
const DECAY_NUM: u128 = 4;
const DECAY_DEN: u128 = 5;
/// HIP-15 cap on a beaconer's units: 2.
const BEACON_UNIT_CAP: u128 = 2;

/// One witness's verdict and its reward units (zero unless accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessOutcome {
    /// Who reported.
    pub witness: PublicKey,
    /// Accepted, or the rule it broke.
    pub result: Result<VerifiedWitness, RejectReason>,
    /// HIP-15 witness reward units (before hex-density scaling).
    pub units: Decimal,
}

impl WitnessOutcome {
    /// Whether the witness passed the rule table, even if reciprocity or the cap kept it
    /// from being rewarded; the history records these as valid witnesses (HIP-106 counts
    /// rule-valid activity, or no new hotspot could ever become reciprocal).
    pub fn passed_rules(&self) -> bool {
        // `NoRecentWitness` on a witness is never its own rule: it is the beaconer's
        // reciprocity failing, which voids the whole PoC after the witness passed.
        matches!(
            self.result,
            Ok(_)
                | Err(RejectReason::NoRecentBeacon
                    | RejectReason::WitnessCapReached
                    | RejectReason::NoRecentWitness)
        )
    }
}

/// Everything decided about one beacon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PocOutcome {
    /// The beacon as verified, or the rule it broke. A beacon that passed its own rules can
    /// still end up `NoWitnesses` or `NoRecentWitness` here; then `verified` keeps it.
    pub beacon: Result<VerifiedBeacon, RejectReason>,
    /// The beacon if it passed its own rules (whatever its witnesses did).
    pub verified: Option<VerifiedBeacon>,
    /// One entry per submitted witness, in arrival order; empty when the beacon failed its
    /// own rules (witnesses of an invalid beacon are not examined, as in iot_verifier).
    pub witnesses: Vec<WitnessOutcome>,
    /// HIP-15 beaconer reward units (before hex-density scaling).
    pub beacon_units: Decimal,
}

impl PocOutcome {
    /// Whether the history should record this as a valid beacon (it passed its rules and
    /// at least one witness passed theirs).
    pub fn records_valid_beacon(&self) -> bool {
        self.verified.is_some() && self.witnesses.iter().any(WitnessOutcome::passed_rules)
    }

    /// Witnesses the history should record as valid.
    pub fn valid_witnesses(&self) -> impl Iterator<Item = &PublicKey> {
        self.witnesses
            .iter()
            .filter(|w| w.passed_rules())
            .map(|w| &w.witness)
    }
}

/// Settles a beacon with the witnesses reported for it. Witnesses are examined in order of
/// receive time (ties keep the given order), so the first `max_witnesses_per_beacon` valid
/// ones are selected, as iot_verifier sorts by received time before taking 14.
pub fn settle_poc(
    beacon: &BeaconSubmission,
    witnesses: &[WitnessSubmission],
    ctx: &BeaconContext<'_>,
) -> PocOutcome {
    let verified = match verify_beacon(beacon, ctx) {
        Ok(v) => v,
        Err(reason) => {
            return PocOutcome {
                beacon: Err(reason),
                verified: None,
                witnesses: Vec::new(),
                beacon_units: Decimal::ZERO,
            };
        }
    };
    let mut order: Vec<&WitnessSubmission> = witnesses.iter().collect();
    order.sort_by_key(|w| w.received_ms);
    let first_witness_ms = order.first().map(|w| w.received_ms);
    let mut accepted = BTreeSet::new();
    let mut selected = 0u32;
    let mut outcomes = Vec::with_capacity(order.len());
    for submission in order {
        let result = verify_witness(
            submission,
            &WitnessContext {
                params: ctx.params,
                beacon: &verified,
                hotspots: ctx.hotspots,
                denylist: ctx.denylist,
                history: ctx.history,
                first_witness_ms,
                accepted: &accepted,
                selected,
            },
        );
        if result.is_ok() {
            selected += 1;
        }
        let outcome = WitnessOutcome {
            witness: submission.report.witness,
            result,
            units: Decimal::ZERO,
        };
        if outcome.passed_rules() {
            accepted.insert(outcome.witness);
        }
        outcomes.push(outcome);
    }
    let beacon_result = if selected == 0 {
        Err(RejectReason::NoWitnesses)
    } else {
        check_reciprocity(
            ctx.history.last_valid_witness_ms(&verified.report.beaconer),
            verified.received_ms,
            ctx.params,
            RejectReason::NoRecentWitness,
        )
        .map(|()| verified.clone())
    };
    let beacon_units = if beacon_result.is_ok() {
        let per_witness = witness_units(selected, ctx.params.witness_redundancy);
        for outcome in outcomes.iter_mut().filter(|o| o.result.is_ok()) {
            outcome.units = per_witness;
        }
        beacon_units(selected, ctx.params.witness_redundancy)
    } else {
        // iot_verifier `verify_poc`: a beaconer failing HIP-106 reciprocity makes the whole
        // PoC invalid (`handle_invalid_poc`), so its selected witnesses earn nothing either;
        // otherwise a ring could pay itself through one hotspot that never witnesses.
        for outcome in outcomes.iter_mut().filter(|o| o.result.is_ok()) {
            outcome.result = Err(RejectReason::NoRecentWitness);
        }
        Decimal::ZERO
    };
    PocOutcome {
        beacon: beacon_result,
        verified: Some(verified),
        witnesses: outcomes,
        beacon_units,
    }
}

/// What one settled PoC pays, in hex-scaled reward shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PocShares {
    /// The hex scale applied to every share of this PoC: the beaconer's.
    pub hex_scale: Decimal,
    /// The beaconer's share.
    pub beacon: Decimal,
    /// Each witness's share, in the order of [`PocOutcome::witnesses`].
    pub witnesses: Vec<Decimal>,
}

/// Prices a settled PoC: every HIP-15 unit, the beaconer's and each witness's, times the
/// *beaconer's* hex scale, as iot_verifier does (`verify_witness` and `verify_beacon` both
/// look up `hex_density_map.get(beaconer location)`): the scale measures how crowded the
/// area the beacon covers is, so a witness cannot raise its pay by sitting in an empty hex
/// while hearing a crowded one. `beaconer_scale` is `None` when the beaconer is missing
/// from the density map (it had not beaconed within the interactivity window when the map
/// was drawn, e.g. a new hotspot); then [`DEFAULT_TX_SCALE`] (0.2) applies, as in Helium.
pub fn price_poc(outcome: &PocOutcome, beaconer_scale: Option<Decimal>) -> PocShares {
    let hex_scale = beaconer_scale.unwrap_or(DEFAULT_TX_SCALE);
    // Both factors are at most 2 (units) and 1 (scale): the product cannot overflow.
    let scaled = |units: Decimal| units.checked_mul(hex_scale).unwrap_or(Decimal::ZERO);
    PocShares {
        hex_scale,
        beacon: scaled(outcome.beacon_units),
        witnesses: outcome.witnesses.iter().map(|w| scaled(w.units)).collect(),
    }
}

/// `(4^n, 5^n)`: the HIP-15 decay `0.8^n` as an exact fraction. `n` is bounded by the
/// witness cap; past 40 (0.8^40 ≈ 1.3 × 10^-4) it stops shrinking, which keeps
/// `5^n × W` inside a u128 for any u32 witness count.
fn decay(n: u32) -> (u128, u128) {
    let n = n.min(40);
    (DECAY_NUM.pow(n), DECAY_DEN.pow(n))
}

/// HIP-15 beaconer units for `selected` witnesses with redundancy `r`: 0 with none,
/// `W/R` up to `R`, then `2 − 0.8^(W−R)` (capped at 2).
pub fn beacon_units(selected: u32, r: u32) -> Decimal {
    let redundancy = r.max(1);
    let (w, r) = (u128::from(selected), u128::from(redundancy));
    if w == 0 {
        Decimal::ZERO
    } else if w <= r {
        Decimal::from_ratio(w, r).unwrap_or(Decimal::ZERO)
    } else {
        let (num, den) = decay(selected - redundancy);
        // 2 − num/den = (2·den − num)/den, and num < den, so this is positive and < 2.
        Decimal::from_ratio(BEACON_UNIT_CAP * den - num, den).unwrap_or(Decimal::ZERO)
    }
}

/// HIP-15 per-witness units for `selected` witnesses with redundancy `r`: 1 up to `R`,
/// then `(R − (1 − 0.8^(W−R))) / W` (W = 5 gives 0.76, W = 14 about 0.22).
pub fn witness_units(selected: u32, r: u32) -> Decimal {
    let redundancy = r.max(1);
    let (w, r) = (u128::from(selected), u128::from(redundancy));
    if w == 0 {
        Decimal::ZERO
    } else if w <= r {
        Decimal::ONE
    } else {
        let (num, den) = decay(selected - redundancy);
        // (R − 1 + num/den)/W = ((R − 1)·den + num)/(den·W).
        Decimal::from_ratio((r - 1) * den + num, den * w).unwrap_or(Decimal::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hip15_units_match_the_published_examples() {
        let d = |s: &str| Decimal::parse(s).expect("decimal");
        assert_eq!(beacon_units(0, 4), Decimal::ZERO);
        assert_eq!(beacon_units(2, 4), d("0.5"));
        assert_eq!(beacon_units(4, 4), Decimal::ONE);
        assert_eq!(beacon_units(5, 4), d("1.2"));
        assert_eq!(witness_units(4, 4), Decimal::ONE);
        assert_eq!(witness_units(5, 4), d("0.76"));
        let w14 = witness_units(14, 4);
        assert!(w14 > d("0.21") && w14 < d("0.23"), "{w14:?}");
        assert!(beacon_units(1_000, 4) < d("2"));
        assert!(witness_units(u32::MAX, 4) > Decimal::ZERO);
    }
}
