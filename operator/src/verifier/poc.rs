//! Proof-of-Coverage rounds: beacon and witness reports arrive on different hotspots'
//! sessions; they are grouped by beacon, held for the witness lag window, then settled in
//! one go with depin-proof's `settle_poc`. Each report's result is recorded (units scaled
//! by the reporter's hex density) and answered with a receipt on the session it came on.
//!
//! Work units: HIP-15 units are fractions (a witness of a busy beacon earns ~0.22), so
//! the tally counts micro-units (1 unit = 1 000 000 work units).
//!
//! Rules: a round is judged by the PoC rules of the RewardPolicy its *beaconer* names
//! (`spec.poc` merged onto the verifier's settings; the settings alone when the policy
//! sets none, is missing or its section is invalid). Witnesses follow the beacon they
//! heard, whatever their own policy says, so one round has one rule table.
//!
//! Like meter chains, the PoC history (last beacon, last valid beacon and witness per
//! hotspot) lives in memory. So that a verifier restart does not cost every honest hotspot
//! its rewards until it has beaconed and witnessed again (hours at Helium's intervals),
//! reciprocity treats a hotspot with no record as active at the verifier's start: the
//! benefit of the doubt lasts one reciprocity window, after which the record (or its
//! absence) decides as usual. A hotspot that really never beacons gains at most that one
//! window per restart.

use super::index::NodeEntry;
use super::session::{Live, Outbound};
use super::{Verifier, now_ms};
use depin_proof::RejectReason;
use depin_proof::entropy::ChallengeId;
use depin_proof::identity::PublicKey;
use depin_proof::poc::{
    BeaconContext, BeaconId, BeaconSubmission, HIP104_DENSITY, PocHistory, PocOutcome, PocParams,
    WitnessSubmission, hex_scales, is_active, settle_poc,
};
use depin_proof::receipt::{ProofKind, Receipt};
use depin_proof::reward::Decimal;
use depin_proto::v1;
use depin_proto::wire;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tonic::Status;

/// The metric `kind` label of PoC reports.
const KIND: &str = "HotspotGateway";
/// Decimal units (10^-18) per recorded work unit (10^-6 of a HIP-15 unit).
const DECIMAL_UNITS_PER_WORK_UNIT: u128 = 1_000_000_000_000;
/// Slack after the lag windows before a round is settled (scheduling, last packets).
const SETTLE_SLACK_MS: u64 = 500;
/// How long a settled report's receipt is kept to answer resends with Replay.
const SETTLED_RETENTION_MS: u64 = 10 * 60 * 1000;

/// A report waiting in a round, with who sent it and where its receipt goes.
struct Filed<T> {
    submission: T,
    entry: NodeEntry,
    out: Outbound,
    id: ChallengeId,
}

#[derive(Default)]
struct Round {
    beacon: Option<Filed<BeaconSubmission>>,
    witnesses: Vec<Filed<WitnessSubmission>>,
}

impl Round {
    fn holds(&self, id: &ChallengeId) -> bool {
        self.beacon.as_ref().is_some_and(|b| b.id == *id)
            || self.witnesses.iter().any(|w| w.id == *id)
    }
}

/// The verifier's PoC history (receive times, unix ms).
#[derive(Default)]
struct History {
    last_beacon: HashMap<PublicKey, u64>,
    last_valid_beacon: HashMap<PublicKey, u64>,
    last_valid_witness: HashMap<PublicKey, u64>,
    /// When this history began (the verifier's start): what reciprocity assumes for a
    /// hotspot without a record (module docs).
    since_ms: u64,
}

impl PocHistory for History {
    fn last_beacon_ms(&self, node: &PublicKey) -> Option<u64> {
        self.last_beacon.get(node).copied()
    }
    fn last_valid_beacon_ms(&self, node: &PublicKey) -> Option<u64> {
        Some(
            self.last_valid_beacon
                .get(node)
                .copied()
                .unwrap_or(self.since_ms),
        )
    }
    fn last_valid_witness_ms(&self, node: &PublicKey) -> Option<u64> {
        Some(
            self.last_valid_witness
                .get(node)
                .copied()
                .unwrap_or(self.since_ms),
        )
    }
}

#[derive(Default)]
struct State {
    rounds: HashMap<BeaconId, Round>,
    history: History,
    settled: HashMap<ChallengeId, (Receipt, u64)>,
}

/// Open PoC rounds and the history the rules read (in memory; see the module docs).
#[derive(Default)]
pub struct PocBook {
    inner: Mutex<State>,
}

/// One report's result, ready to record.
struct Verdict {
    entry: NodeEntry,
    out: Outbound,
    id: ChallengeId,
    /// Work units, or the rule broken; `None`: not recorded (its beacon never arrived or
    /// failed its own rules, which is not the witness's doing).
    result: Option<Result<u128, RejectReason>>,
    /// `beacon` or `witness`: the reward sub-pool the units count toward.
    part: &'static str,
}

enum Report {
    Beacon(Filed<BeaconSubmission>),
    Witness(Filed<WitnessSubmission>),
}

impl PocBook {
    /// An empty book whose history begins at `since_ms` (the verifier's start).
    pub fn new(since_ms: u64) -> Self {
        let book = Self::default();
        book.lock().history.since_ms = since_ms;
        book
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the maps consistent before it can panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Files a report under its beacon; returns true when this opened a new round (the
    /// caller schedules its settlement), or the original receipt for a settled report.
    fn file(&self, beacon: BeaconId, report: Report) -> Result<bool, Box<Receipt>> {
        let mut state = self.lock();
        let id = match &report {
            Report::Beacon(f) => f.id,
            Report::Witness(f) => f.id,
        };
        if let Some((receipt, _)) = state.settled.get(&id) {
            return Err(Box::new(receipt.clone()));
        }
        let opened = !state.rounds.contains_key(&beacon);
        let round = state.rounds.entry(beacon).or_default();
        if round.holds(&id) {
            return Ok(false); // a resend while the round is open: its receipt will come
        }
        match report {
            Report::Beacon(filed) if round.beacon.is_none() => round.beacon = Some(filed),
            // A second beacon report with the same payload is a replay of the first.
            Report::Beacon(_) => {}
            Report::Witness(filed) => round.witnesses.push(filed),
        }
        Ok(opened)
    }

    /// The policy of the round's beaconer, once its beacon report is in.
    fn beaconer_policy(&self, beacon: &BeaconId) -> Option<String> {
        let state = self.lock();
        let filed = state.rounds.get(beacon)?.beacon.as_ref()?;
        Some(filed.entry.reward_policy.clone())
    }

    /// Settles the round of `beacon`: runs the rule table, updates the history and
    /// returns every report's result.
    fn settle(&self, v: &Verifier, beacon: &BeaconId, now: u64) -> Vec<Verdict> {
        let mut state = self.lock();
        let Some(round) = state.rounds.remove(beacon) else {
            return Vec::new();
        };
        let Some(filed_beacon) = round.beacon else {
            return round
                .witnesses
                .into_iter()
                .map(|w| unrecorded(w.entry, w.out, w.id))
                .collect();
        };
        let params = v.poc_params(&filed_beacon.entry.reward_policy);
        let denylist = v.index.denylist(&filed_beacon.entry.reward_policy);
        let hotspots = v.index.hotspots();
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
                beacon: &v.beacon,
                hotspots: &hotspots,
                denylist: &*denylist,
                history: &state.history,
            },
        );
        record_history(&mut state.history, &outcome, &filed_beacon.submission);
        let active: Vec<_> = hotspots
            .iter()
            .filter(|(key, _)| is_active(state.history.last_beacon_ms(key), now, &params))
            .filter_map(|(key, info)| Some((*key, info.location?)))
            .collect();
        drop(state);
        let scales = hex_scales(&active, &HIP104_DENSITY);
        let scaled = |node: &PublicKey, units: Decimal| {
            let scale = scales.get(node).copied().unwrap_or(Decimal::ONE);
            units.checked_mul(scale).unwrap_or(Decimal::ZERO).units() / DECIMAL_UNITS_PER_WORK_UNIT
        };
        let beaconer = filed_beacon.submission.report.beaconer;
        let mut verdicts = vec![Verdict {
            result: Some(
                outcome
                    .beacon
                    .as_ref()
                    .map(|_| scaled(&beaconer, outcome.beacon_units))
                    .map_err(|r| *r),
            ),
            entry: filed_beacon.entry,
            out: filed_beacon.out,
            id: filed_beacon.id,
            part: BEACON_PART,
        }];
        if outcome.verified.is_none() {
            // Witnesses of a beacon that failed its own rules were not examined.
            verdicts.extend(
                round
                    .witnesses
                    .into_iter()
                    .map(|w| unrecorded(w.entry, w.out, w.id)),
            );
            return verdicts;
        }
        // settle_poc examines witnesses in receive order; match results to reports by key
        // (one witness report per node per beacon: a second is `Duplicate`).
        let mut results: HashMap<PublicKey, Vec<Result<u128, RejectReason>>> = HashMap::new();
        for w in outcome.witnesses.iter().rev() {
            let result = w
                .result
                .as_ref()
                .map(|_| scaled(&w.witness, w.units))
                .map_err(|r| *r);
            results.entry(w.witness).or_default().push(result);
        }
        let mut order: Vec<Filed<WitnessSubmission>> = round.witnesses;
        order.sort_by_key(|w| w.submission.received_ms);
        for w in order {
            let result = results
                .get_mut(&w.submission.report.witness)
                .and_then(Vec::pop);
            verdicts.push(Verdict {
                part: WITNESS_PART,
                entry: w.entry,
                out: w.out,
                id: w.id,
                result,
            });
        }
        verdicts
    }

    fn remember(&self, id: ChallengeId, receipt: Receipt, now: u64) {
        let mut state = self.lock();
        state.settled.retain(|_, (_, expires)| *expires > now);
        state
            .settled
            .insert(id, (receipt, now + SETTLED_RETENTION_MS));
    }
}

fn unrecorded(entry: NodeEntry, out: Outbound, id: ChallengeId) -> Verdict {
    Verdict {
        entry,
        out,
        id,
        result: None,
        part: WITNESS_PART,
    }
}

/// `status.proofs.workUnitsByPart` key of beacon units (the `beacon` hotspot sub-pool).
pub const BEACON_PART: &str = "beacon";
/// `status.proofs.workUnitsByPart` key of witness units (the `witness` hotspot sub-pool).
pub const WITNESS_PART: &str = "witness";

fn record_history(history: &mut History, outcome: &PocOutcome, beacon: &BeaconSubmission) {
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

/// How long a round stays open: both lag windows, then some slack.
fn settle_wait_ms(params: &PocParams) -> u64 {
    params
        .max_beacon_to_witness_lag_ms
        .saturating_add(params.max_witness_lag_ms)
        .saturating_add(SETTLE_SLACK_MS)
}

/// Settles `beacon` once its lag windows have passed, records every result and sends the
/// receipts.
async fn settle_later(v: Arc<Verifier>, beacon: BeaconId) {
    // A witness may open the round before its beacon names the policy: wait the
    // verifier's windows, then longer if the beaconer's policy allows later witnesses.
    // The round's work happened when it opened (its first report arrived).
    let opened_ms = now_ms();
    let waited = settle_wait_ms(&v.settings.poc);
    tokio::time::sleep(Duration::from_millis(waited)).await;
    if let Some(policy) = v.poc.beaconer_policy(&beacon) {
        let more = settle_wait_ms(&v.poc_params(&policy)).saturating_sub(waited);
        tokio::time::sleep(Duration::from_millis(more)).await;
    }
    let now = now_ms();
    for verdict in v.poc.settle(&v, &beacon, now) {
        let node = verdict.entry.key;
        let Some(result) = verdict.result else {
            v.metrics.count(KIND, Err(RejectReason::UnknownChallenge));
            let receipt = v.sign_receipt(
                node,
                verdict.id,
                ProofKind::Hotspot,
                Err(RejectReason::UnknownChallenge),
                false,
                None,
            );
            let _ = verdict
                .out
                .send(Ok(super::decide::receipt_message(&receipt, None)))
                .await;
            continue;
        };
        let result = v.in_time(Some(&node), opened_ms, result);
        v.metrics.count(KIND, result.map(|_| ()));
        match v
            .recorder
            .record_part(&verdict.entry, result, Some(verdict.part))
            .await
        {
            Ok(tally) => {
                let receipt = v.sign_receipt(
                    node,
                    verdict.id,
                    ProofKind::Hotspot,
                    result.map(|_| ()),
                    true,
                    Some(tally),
                );
                v.poc.remember(verdict.id, receipt.clone(), now);
                // The session may be gone; the agent's resend then gets this as a Replay.
                let _ = verdict
                    .out
                    .send(Ok(super::decide::receipt_message(&receipt, None)))
                    .await;
            }
            Err(err) => {
                tracing::warn!(node = %verdict.entry.id, %err, "PoC result not recorded; the agent will resend");
            }
        }
    }
}

impl Verifier {
    /// The PoC rules for hotspots paid by `policy` (see the module docs).
    pub fn poc_params(&self, policy: &str) -> PocParams {
        self.index.poc_params(policy).unwrap_or(self.settings.poc)
    }
}

/// A policy's `spec.poc` merged onto the verifier's `base` rules; `None` (the verifier
/// keeps `base`) when the policy has no section or an invalid one, which is logged here
/// and shown on the policy's `Valid` condition by the reward controller.
pub fn policy_rules(
    policy: &str,
    rules: Option<&depin_crds::PocRules>,
    base: &PocParams,
) -> Option<PocParams> {
    match crate::rewards::policy::poc::poc_params(rules?, base) {
        Ok(params) => Some(params),
        Err(err) => {
            tracing::warn!(%policy, %err, "spec.poc ignored; its hotspots keep the verifier's PoC rules");
            None
        }
    }
}

/// The denylist a policy's `spec.poc` sets. The schema admits only 64 hex digits; a key
/// that is still not a valid ed25519 point is skipped with a warning (it could never sign).
pub fn policy_denylist(
    policy: &str,
    rules: Option<&depin_crds::PocRules>,
) -> super::index::PolicyDenylist {
    let mut denylist = super::index::PolicyDenylist::default();
    let Some(rules) = rules else {
        return denylist;
    };
    let key = |field: &'static str, hex: &str| match PublicKey::from_hex(hex, field) {
        Ok(key) => Some(key),
        Err(err) => {
            tracing::warn!(%policy, %err, "denylist entry skipped");
            None
        }
    };
    for hex in &rules.denied_hotspots {
        denylist.0.extend(key("spec.poc.deniedHotspots[]", hex));
    }
    for edge in &rules.denied_edges {
        if let (Some(a), Some(b)) = (
            key("spec.poc.deniedEdges[].a", &edge.a),
            key("spec.poc.deniedEdges[].b", &edge.b),
        ) {
            denylist.1.insert(if a <= b { (a, b) } else { (b, a) });
        }
    }
    denylist
}

impl Live {
    /// A beacon report: filed under its beacon until the round settles.
    pub(super) async fn beacon_report(
        &mut self,
        entry: NodeEntry,
        wire_report: &v1::BeaconReport,
    ) -> Result<(), Status> {
        let received_ms = now_ms();
        match wire::beacon_report_from_wire(self.session.node, wire_report) {
            Ok(report) => {
                let filed = Filed {
                    id: wire::report_id(&report.signing_bytes()),
                    submission: BeaconSubmission {
                        report,
                        received_ms,
                    },
                    entry,
                    out: self.out.clone(),
                };
                let beacon = filed.submission.report.id();
                self.file(beacon, Report::Beacon(filed)).await
            }
            Err(reason) => self.malformed_report(reason).await,
        }
    }

    /// A witness report: filed under the beacon it heard until the round settles.
    pub(super) async fn witness_report(
        &mut self,
        entry: NodeEntry,
        wire_report: &v1::WitnessReport,
    ) -> Result<(), Status> {
        let received_ms = now_ms();
        match wire::witness_report_from_wire(self.session.node, wire_report) {
            Ok(report) => {
                let filed = Filed {
                    id: wire::report_id(&report.signing_bytes()),
                    submission: WitnessSubmission {
                        report,
                        received_ms,
                    },
                    entry,
                    out: self.out.clone(),
                };
                let beacon = filed.submission.report.beacon_id();
                self.file(beacon, Report::Witness(filed)).await
            }
            Err(reason) => self.malformed_report(reason).await,
        }
    }

    async fn file(&self, beacon: BeaconId, report: Report) -> Result<(), Status> {
        let v = self.v.clone();
        match v.poc.file(beacon, report) {
            Ok(true) => {
                tokio::spawn(settle_later(v, beacon));
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(original) => {
                v.metrics.count(KIND, Err(RejectReason::Replay));
                let replay = v.sign_receipt(
                    self.session.node,
                    original.challenge,
                    ProofKind::Hotspot,
                    Err(RejectReason::Replay),
                    false,
                    None,
                );
                self.send(super::decide::receipt_message(&replay, Some(&original)))
                    .await
            }
        }
    }

    async fn malformed_report(&self, reason: RejectReason) -> Result<(), Status> {
        let v = &self.v;
        v.metrics.count(KIND, Err(reason));
        let receipt = v.sign_receipt(
            self.session.node,
            ChallengeId([0; 32]),
            ProofKind::Hotspot,
            Err(reason),
            false,
            None,
        );
        self.send(super::decide::receipt_message(&receipt, None))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_proof::identity::NodeKey;

    #[test]
    fn a_hotspot_without_a_record_counts_as_active_since_the_verifier_started() {
        let book = PocBook::new(1_000);
        let (known, unknown) = (
            NodeKey::from_seed([1; 32]).public(),
            NodeKey::from_seed([2; 32]).public(),
        );
        let mut state = book.lock();
        state.history.last_valid_beacon.insert(known, 5_000);
        let h = &state.history;
        assert_eq!(h.last_valid_beacon_ms(&known), Some(5_000));
        assert_eq!(h.last_valid_beacon_ms(&unknown), Some(1_000));
        assert_eq!(h.last_valid_witness_ms(&unknown), Some(1_000));
        // The beacon-rate and density rules see only real beacons.
        assert_eq!(h.last_beacon_ms(&unknown), None);
    }
}
