//! The PoC rule table (Helium iot_verifier `do_beacon_verifications` and
//! `do_witness_verifications`, research §1(b)): one function per report kind, one
//! [`RejectReason`] per rule, checked in the order listed on each function.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use h3o::CellIndex;

use super::PocParams;
use super::geo::{cell_distance, free_space_path_loss_db, great_circle_m};
use super::messages::{
    BEACON_DOMAIN, BeaconId, BeaconReport, WITNESS_DOMAIN, WitnessReport, derive_beacon,
};
use super::region::Region;
use crate::entropy::{Beacon, EntropyConfig};
use crate::identity::PublicKey;
use crate::reject::RejectReason;

/// What the fleet asserts about one hotspot (from its HotspotGateway spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotspotInfo {
    /// Asserted location (res-12 cell); `None` until asserted.
    pub location: Option<CellIndex>,
    /// Regional plan.
    pub region: Region,
    /// Antenna gain, dBi × 10 (Helium stores gains the same way).
    pub gain_dbi_x10: i32,
    /// Payout owner; witnessing between one owner's hotspots proves nothing.
    pub owner: String,
}

/// The caller's registry of hotspots.
pub trait HotspotLookup {
    /// The hotspot registered under `node`, if any.
    fn hotspot(&self, node: &PublicKey) -> Option<&HotspotInfo>;
}

impl HotspotLookup for BTreeMap<PublicKey, HotspotInfo> {
    fn hotspot(&self, node: &PublicKey) -> Option<&HotspotInfo> {
        self.get(node)
    }
}

impl<S: std::hash::BuildHasher> HotspotLookup for HashMap<PublicKey, HotspotInfo, S> {
    fn hotspot(&self, node: &PublicKey) -> Option<&HotspotInfo> {
        self.get(node)
    }
}

/// Nodes and (unordered) edges the operator has denied.
pub trait Denylist {
    /// Whether `node` is denied outright.
    fn is_denied(&self, node: &PublicKey) -> bool;
    /// Whether the pair `a`–`b` (either order) is denied.
    fn is_edge_denied(&self, a: &PublicKey, b: &PublicKey) -> bool;
}

/// A denylist that denies nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDenylist;

impl Denylist for NoDenylist {
    fn is_denied(&self, _: &PublicKey) -> bool {
        false
    }
    fn is_edge_denied(&self, _: &PublicKey, _: &PublicKey) -> bool {
        false
    }
}

/// Denied nodes and denied edges (each edge stored once, smaller key first).
impl Denylist for (BTreeSet<PublicKey>, BTreeSet<(PublicKey, PublicKey)>) {
    fn is_denied(&self, node: &PublicKey) -> bool {
        self.0.contains(node)
    }
    fn is_edge_denied(&self, a: &PublicKey, b: &PublicKey) -> bool {
        let edge = if a <= b { (*a, *b) } else { (*b, *a) };
        self.1.contains(&edge)
    }
}

/// The verifier's memory of past PoC activity, in unix ms of the verifier's receive time.
pub trait PocHistory {
    /// The last beacon received from `node`, valid or not (the interval rule).
    fn last_beacon_ms(&self, node: &PublicKey) -> Option<u64>;
    /// The last beacon of `node` that passed the rules with at least one valid witness.
    fn last_valid_beacon_ms(&self, node: &PublicKey) -> Option<u64>;
    /// The last witness by `node` that passed the rules.
    fn last_valid_witness_ms(&self, node: &PublicKey) -> Option<u64>;
}

/// A beacon report and when the verifier received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeaconSubmission {
    /// The signed report.
    pub report: BeaconReport,
    /// Verifier receive time, unix ms.
    pub received_ms: u64,
}

/// A witness report and when the verifier received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessSubmission {
    /// The signed report.
    pub report: WitnessReport,
    /// Verifier receive time, unix ms.
    pub received_ms: u64,
}

/// What [`verify_beacon`] checks against.
pub struct BeaconContext<'a> {
    /// Policy parameters.
    pub params: &'a PocParams,
    /// The verifier's entropy source.
    pub beacon: &'a Beacon,
    /// Registered hotspots.
    pub hotspots: &'a dyn HotspotLookup,
    /// Denied nodes and edges.
    pub denylist: &'a dyn Denylist,
    /// Past activity.
    pub history: &'a dyn PocHistory,
}

/// A beacon that passed every beacon rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBeacon {
    /// Its id (hash of the payload).
    pub id: BeaconId,
    /// The report.
    pub report: BeaconReport,
    /// Verifier receive time, unix ms.
    pub received_ms: u64,
    /// The beaconer as registered (location present).
    pub beaconer: HotspotInfo,
    /// Asserted location of the beaconer.
    pub location: CellIndex,
    /// When the beacon's entropy expires, unix ms.
    pub entropy_expires_ms: u64,
}

fn asserted<'a>(
    hotspots: &'a dyn HotspotLookup,
    node: &PublicKey,
) -> Result<(&'a HotspotInfo, CellIndex), RejectReason> {
    let info = hotspots.hotspot(node).ok_or(RejectReason::UnknownNode)?;
    let location = info.location.ok_or(RejectReason::NotAsserted)?;
    Ok((info, location))
}

/// Checks a beacon, in order: registered (`UnknownNode`) with a location (`NotAsserted`),
/// not denied (`Denied`), signature (`BadSignature`), entropy issued (`UnknownEntropy`) and
/// live when received (`ExpiredEntropy`), first beacon of its interval
/// (`IrregularInterval`), payload, frequency and data rate as derived (`BadBeaconPayload`).
pub fn verify_beacon(
    submission: &BeaconSubmission,
    ctx: &BeaconContext<'_>,
) -> Result<VerifiedBeacon, RejectReason> {
    let report = &submission.report;
    let (info, location) = asserted(ctx.hotspots, &report.beaconer)?;
    if ctx.denylist.is_denied(&report.beaconer) {
        return Err(RejectReason::Denied);
    }
    if !report
        .beaconer
        .verify(BEACON_DOMAIN, &report.body(), &report.signature)
    {
        return Err(RejectReason::BadSignature);
    }
    if ctx.beacon.entropy(report.entropy.tick).value != report.entropy.value {
        return Err(RejectReason::UnknownEntropy);
    }
    let lifetime = EntropyConfig {
        tick_ms: ctx.beacon.config().tick_ms,
        lifespan_ms: ctx.params.entropy_lifespan_ms,
    };
    report
        .entropy
        .check_live(submission.received_ms, &lifetime)?;
    if let Some(last) = ctx.history.last_beacon_ms(&report.beaconer)
        && ctx.params.interval_of(submission.received_ms) <= ctx.params.interval_of(last)
    {
        return Err(RejectReason::IrregularInterval);
    }
    let derived = derive_beacon(
        &report.entropy,
        report.local_entropy,
        &report.beaconer,
        info.region,
    );
    if derived.data != report.data
        || derived.frequency_hz != report.frequency_hz
        || derived.datarate != report.datarate
    {
        return Err(RejectReason::BadBeaconPayload);
    }
    Ok(VerifiedBeacon {
        id: report.id(),
        report: report.clone(),
        received_ms: submission.received_ms,
        beaconer: info.clone(),
        location,
        entropy_expires_ms: lifetime
            .issued_at_ms(report.entropy.tick)
            .saturating_add(lifetime.lifespan_ms),
    })
}

/// What [`verify_witness`] checks a witness against: the beacon and the state of its
/// settlement so far.
pub struct WitnessContext<'a> {
    /// Policy parameters.
    pub params: &'a PocParams,
    /// The verified beacon the witness claims to have heard.
    pub beacon: &'a VerifiedBeacon,
    /// Registered hotspots.
    pub hotspots: &'a dyn HotspotLookup,
    /// Denied nodes and edges.
    pub denylist: &'a dyn Denylist,
    /// Past activity (reciprocity).
    pub history: &'a dyn PocHistory,
    /// Earliest receive time among this beacon's witnesses, unix ms.
    pub first_witness_ms: Option<u64>,
    /// Witnesses already accepted for this beacon.
    pub accepted: &'a BTreeSet<PublicKey>,
    /// How many of them are selected (count toward the cap).
    pub selected: u32,
}

/// A witness that passed every rule and was selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWitness {
    /// The witness's key.
    pub witness: PublicKey,
    /// Verifier receive time, unix ms.
    pub received_ms: u64,
    /// Great-circle distance to the beaconer, metres.
    pub distance_m: u64,
    /// Received signal, dBm × 10.
    pub signal_ddbm: i32,
    /// SNR, dB × 10.
    pub snr_ddb: i32,
}

/// Checks a witness, in order: not the beaconer (`SelfWitness`), registered and asserted
/// (`UnknownNode`, `NotAsserted`), not denied (`Denied`, `DeniedEdge`), other owner
/// (`SameOwner`), signature (`BadSignature`), payload is the beacon's (`PayloadMismatch`),
/// first report (`Duplicate`), inside the entropy lifetime (`ExpiredEntropy`) and the lag
/// (`TooLate`), same region (`InvalidRegion`), frequency (`InvalidFrequency`), distance
/// (`BelowMinDistance`, `UncomputableDistance`, `AboveMaxDistance`), free-space RSSI
/// bound (`BadRssi`),
/// reciprocity (`NoRecentBeacon`) and finally the cap (`WitnessCapReached`).
pub fn verify_witness(
    submission: &WitnessSubmission,
    ctx: &WitnessContext<'_>,
) -> Result<VerifiedWitness, RejectReason> {
    let report = &submission.report;
    let beacon = &ctx.beacon.report;
    if report.witness == beacon.beaconer {
        return Err(RejectReason::SelfWitness);
    }
    let (info, location) = asserted(ctx.hotspots, &report.witness)?;
    if ctx.denylist.is_denied(&report.witness) {
        return Err(RejectReason::Denied);
    }
    if ctx
        .denylist
        .is_edge_denied(&beacon.beaconer, &report.witness)
    {
        return Err(RejectReason::DeniedEdge);
    }
    if info.owner == ctx.beacon.beaconer.owner {
        return Err(RejectReason::SameOwner);
    }
    if !report
        .witness
        .verify(WITNESS_DOMAIN, &report.body(), &report.signature)
    {
        return Err(RejectReason::BadSignature);
    }
    if report.data != beacon.data {
        return Err(RejectReason::PayloadMismatch);
    }
    if ctx.accepted.contains(&report.witness) {
        return Err(RejectReason::Duplicate);
    }
    check_timing(submission.received_ms, ctx)?;
    if info.region != ctx.beacon.beaconer.region {
        return Err(RejectReason::InvalidRegion);
    }
    if report.frequency_hz.abs_diff(beacon.frequency_hz) > ctx.params.max_frequency_delta_hz {
        return Err(RejectReason::InvalidFrequency);
    }
    let distance_m = check_distance(location, ctx)?;
    check_rssi(report.signal_ddbm, info, distance_m, ctx)?;
    check_reciprocity(
        ctx.history.last_valid_beacon_ms(&report.witness),
        submission.received_ms,
        ctx.params,
        RejectReason::NoRecentBeacon,
    )?;
    if ctx.selected >= ctx.params.max_witnesses_per_beacon {
        return Err(RejectReason::WitnessCapReached);
    }
    Ok(VerifiedWitness {
        witness: report.witness,
        received_ms: submission.received_ms,
        // Rounded to whole metres for the record; the rules above used the exact value.
        distance_m: distance_m.round() as u64,
        signal_ddbm: report.signal_ddbm,
        snr_ddb: report.snr_ddb,
    })
}

/// Entropy lifetime, then Helium's two lags: 4 s after the beacon when the beacon came
/// first, else 1.5 s after the first witness.
fn check_timing(received_ms: u64, ctx: &WitnessContext<'_>) -> Result<(), RejectReason> {
    if received_ms > ctx.beacon.entropy_expires_ms {
        return Err(RejectReason::ExpiredEntropy);
    }
    let first = ctx.first_witness_ms.unwrap_or(received_ms).min(received_ms);
    let late = if ctx.beacon.received_ms <= first {
        received_ms.saturating_sub(ctx.beacon.received_ms) > ctx.params.max_beacon_to_witness_lag_ms
    } else {
        received_ms.saturating_sub(first) > ctx.params.max_witness_lag_ms
    };
    if late {
        Err(RejectReason::TooLate)
    } else {
        Ok(())
    }
}

/// Minimum H3 grid distance, then maximum great-circle distance; returns the latter.
///
/// A grid distance H3 cannot compute (the pair straddles a pentagon's distortion) is a
/// rejection, as in iot_verifier (`calc_cell_distance` failing is `BelowMinDistance`
/// there): skipping the rule would let a fleet parked next to a pentagon witness itself
/// from across the room. Such a pair is reported `AboveMaxDistance` when it is also too
/// far, else `UncomputableDistance`.
fn check_distance(witness: CellIndex, ctx: &WitnessContext<'_>) -> Result<f64, RejectReason> {
    let beaconer = ctx.beacon.location;
    let distance_m = great_circle_m(beaconer, witness);
    let too_far = distance_m > ctx.params.max_distance_m as f64;
    match cell_distance(beaconer, witness, ctx.params.distance_resolution) {
        Some(cells) if cells < ctx.params.min_distance_cells => {
            return Err(RejectReason::BelowMinDistance);
        }
        Some(_) => {}
        None if too_far => return Err(RejectReason::AboveMaxDistance),
        None => return Err(RejectReason::UncomputableDistance),
    }
    if too_far {
        return Err(RejectReason::AboveMaxDistance);
    }
    Ok(distance_m)
}

/// `signal ≤ P_tx + G_beaconer − FSPL(d, f) + G_witness (+ margin)`, all in dB × 10. The
/// transmit power counted is at most the region's maximum, so a beaconer cannot loosen
/// its witnesses' bound by over-reporting it.
fn check_rssi(
    signal_ddbm: i32,
    witness: &HotspotInfo,
    distance_m: f64,
    ctx: &WitnessContext<'_>,
) -> Result<(), RejectReason> {
    let beaconer = &ctx.beacon.beaconer;
    let tx_ddbm = ctx
        .beacon
        .report
        .tx_power_ddbm
        .min(beaconer.region.beacon_power_dbm().saturating_mul(10));
    let loss_ddb =
        10.0 * free_space_path_loss_db(distance_m, ctx.beacon.report.frequency_hz as f64);
    let bound_ddbm = f64::from(tx_ddbm)
        + f64::from(beaconer.gain_dbi_x10)
        + f64::from(witness.gain_dbi_x10)
        + f64::from(ctx.params.rssi_margin_ddb)
        - loss_ddb;
    if f64::from(signal_ddbm) > bound_ddbm {
        Err(RejectReason::BadRssi)
    } else {
        Ok(())
    }
}

/// HIP-106: the counterpart activity must fall inside the window before `now_ms`; a zero
/// window turns the rule off (a fresh fleet has no history to be reciprocal with).
pub(super) fn check_reciprocity(
    last_ms: Option<u64>,
    now_ms: u64,
    params: &PocParams,
    reason: RejectReason,
) -> Result<(), RejectReason> {
    if params.reciprocity_window_ms == 0 {
        return Ok(());
    }
    match last_ms {
        Some(last) if now_ms.saturating_sub(last) <= params.reciprocity_window_ms => Ok(()),
        _ => Err(reason),
    }
}
