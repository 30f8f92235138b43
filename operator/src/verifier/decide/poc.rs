//! Proof-of-Coverage rules: settling one beacon's round with depin-proof's `settle_poc`,
//! moving the PoC history on, and pricing every report's units at the beaconer's hex
//! density (`price_poc`, as iot_verifier does).
//!
//! Work units: HIP-15 units are fractions (a witness of a busy beacon earns ~0.22), so
//! the tally counts micro-units (1 unit = 1 000 000 work units).
//!
//! Rules: a round is judged by the PoC rules of the RewardPolicy its *beaconer* names
//! (`spec.poc` merged onto the verifier's settings; the settings alone when the policy
//! sets none, is missing or its section is invalid). Witnesses follow the beacon they
//! heard, whatever their own policy says, so one round has one rule table.

use crate::verifier::state::index::{NodeEntry, PolicyDenylist};
use crate::verifier::state::poc::{DensityCache, Filed, History, Round};
use depin_proof::RejectReason;
use depin_proof::entropy::{Beacon, ChallengeId};
use depin_proof::identity::PublicKey;
use depin_proof::poc::{
    BeaconContext, BeaconSubmission, HIP104_DENSITY, HotspotInfo, PocOutcome, PocParams,
    WitnessSubmission, is_active, price_poc, settle_poc,
};
use depin_proof::reward::Decimal;
use std::collections::HashMap;
use std::sync::Arc;

/// Decimal units (10^-18) per recorded work unit (10^-6 of a HIP-15 unit).
pub const DECIMAL_UNITS_PER_WORK_UNIT: u128 = 1_000_000_000_000;

/// `status.proofs.workUnitsByPart` key of beacon units (the `beacon` hotspot sub-pool).
pub const BEACON_PART: &str = "beacon";
/// `status.proofs.workUnitsByPart` key of witness units (the `witness` hotspot sub-pool).
pub const WITNESS_PART: &str = "witness";

/// What settling a round looks up about the fleet.
pub trait PocLookup {
    /// The PoC rules for hotspots paid by `policy`.
    fn rules(&self, policy: &str) -> PocParams;
    /// The denylist of `policy`.
    fn denylist(&self, policy: &str) -> Arc<PolicyDenylist>;
    /// Every hotspot with what it asserts.
    fn hotspots(&self) -> HashMap<PublicKey, HotspotInfo>;
}

/// One report's result, ready to record.
pub struct Verdict<R> {
    /// The reporting node.
    pub entry: NodeEntry,
    /// Where its receipt goes.
    pub reply: R,
    /// The report's id.
    pub id: ChallengeId,
    /// Work units, or the rule broken; `None`: not recorded (its beacon never arrived or
    /// failed its own rules, which is not the witness's doing).
    pub result: Option<Result<u128, RejectReason>>,
    /// `beacon` or `witness`: the reward sub-pool the units count toward.
    pub part: &'static str,
}

/// Settles `round` at `now_ms`: runs the rule table, updates `history` and returns every
/// report's result (the beacon's first, then witnesses in receive order).
pub fn settle<R>(
    round: Round<R>,
    history: &mut History,
    density: &mut DensityCache,
    beacon: &Beacon,
    fleet: &dyn PocLookup,
    now_ms: u64,
) -> Vec<Verdict<R>> {
    let Some(filed_beacon) = round.beacon else {
        return round.witnesses.into_iter().map(unrecorded).collect();
    };
    let params = fleet.rules(&filed_beacon.entry.reward_policy);
    let denylist = fleet.denylist(&filed_beacon.entry.reward_policy);
    let hotspots = fleet.hotspots();
    let witnesses: Vec<WitnessSubmission> = round
        .witnesses
        .iter()
        .map(|w| w.submission.clone())
        .collect();
    let outcome = settle_poc(
        &filed_beacon.submission,
        &witnesses,
        &BeaconContext {
            params: &params,
            beacon,
            hotspots: &hotspots,
            denylist: &*denylist,
            history: &*history,
        },
    );
    // The density map as it stood before this round (iot_verifier refreshes its map
    // apart from settling): a hotspot's first beacon, or its first after the 60 h
    // interactivity limit, is missing from it and paid `DEFAULT_TX_SCALE` (0.2).
    let active: Vec<_> = hotspots
        .iter()
        .filter(|(key, _)| is_active(history.last_beacon.get(key).copied(), now_ms, &params))
        .filter_map(|(key, info)| Some((*key, info.location?)))
        .collect();
    record_history(history, &outcome, &filed_beacon.submission);
    let beaconer = filed_beacon.submission.report.beaconer;
    // Every share of the round is scaled by the *beaconer's* hex (price_poc).
    let shares = price_poc(
        &outcome,
        density.scale_of(active, &beaconer, &HIP104_DENSITY),
    );
    let work_units = |share: Decimal| share.units() / DECIMAL_UNITS_PER_WORK_UNIT;
    let mut verdicts = vec![Verdict {
        result: Some(
            outcome
                .beacon
                .as_ref()
                .map(|_| work_units(shares.beacon))
                .map_err(|r| *r),
        ),
        entry: filed_beacon.entry,
        reply: filed_beacon.reply,
        id: filed_beacon.id,
        part: BEACON_PART,
    }];
    if outcome.verified.is_none() {
        // Witnesses of a beacon that failed its own rules were not examined.
        verdicts.extend(round.witnesses.into_iter().map(unrecorded));
        return verdicts;
    }
    // settle_poc examines witnesses in receive order; match results to reports by key
    // (one witness report per node per beacon: a second is `Duplicate`).
    let mut results: HashMap<PublicKey, Vec<Result<u128, RejectReason>>> = HashMap::new();
    for (w, share) in outcome.witnesses.iter().zip(&shares.witnesses).rev() {
        let result = w
            .result
            .as_ref()
            .map(|_| work_units(*share))
            .map_err(|r| *r);
        results.entry(w.witness).or_default().push(result);
    }
    let mut order: Vec<Filed<WitnessSubmission, R>> = round.witnesses;
    order.sort_by_key(|w| w.submission.received_ms);
    for w in order {
        let result = results
            .get_mut(&w.submission.report.witness)
            .and_then(Vec::pop);
        verdicts.push(Verdict {
            part: WITNESS_PART,
            entry: w.entry,
            reply: w.reply,
            id: w.id,
            result,
        });
    }
    verdicts
}

/// Every report of a round that cannot be settled (the PoC history is unavailable):
/// none is recorded, so none is paid and none is charged.
pub fn unsettled<R>(round: Round<R>) -> Vec<Verdict<R>> {
    let beacon = round.beacon.map(|b| Verdict {
        entry: b.entry,
        reply: b.reply,
        id: b.id,
        result: None,
        part: BEACON_PART,
    });
    beacon
        .into_iter()
        .chain(round.witnesses.into_iter().map(unrecorded))
        .collect()
}

fn unrecorded<R>(w: Filed<WitnessSubmission, R>) -> Verdict<R> {
    Verdict {
        entry: w.entry,
        reply: w.reply,
        id: w.id,
        result: None,
        part: WITNESS_PART,
    }
}

/// Moves the history on after a settled round (receive time of the beacon).
pub fn record_history(history: &mut History, outcome: &PocOutcome, beacon: &BeaconSubmission) {
    let at = beacon.received_ms;
    if outcome.verified.is_some() {
        history.last_beacon.insert(beacon.report.beaconer, at);
    }
    if outcome.records_valid_beacon() {
        history.last_valid_beacon.insert(beacon.report.beaconer, at);
    }
    for witness in outcome.valid_witnesses() {
        history.last_valid_witness.insert(*witness, at);
    }
}
