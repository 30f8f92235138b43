//! Verifier side: the reading rule table and the per-meter chain state it reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::MeterParams;
use super::reading::{ChainHash, GENESIS_HASH, READING_DOMAIN, SignedReading};
use super::solar::{DAY_MS, Site};
use crate::identity::PublicKey;
use crate::reject::RejectReason;

/// Milliseconds per hour: W × ms / this = Wh.
const MS_PER_HOUR: u128 = 3_600_000;

/// The fleet's meter serials and the node that claims each (first claim wins).
pub trait SerialRegistry {
    /// The node that claims `serial`, if any.
    fn claimed_by(&self, serial: &str) -> Option<PublicKey>;
}

impl SerialRegistry for BTreeMap<String, PublicKey> {
    fn claimed_by(&self, serial: &str) -> Option<PublicKey> {
        self.get(serial).copied()
    }
}

impl<S: std::hash::BuildHasher> SerialRegistry for HashMap<String, PublicKey, S> {
    fn claimed_by(&self, serial: &str) -> Option<PublicKey> {
        self.get(serial).copied()
    }
}

/// What [`verify_reading`] checks a reading against.
pub struct MeterContext<'a> {
    /// Rule parameters.
    pub params: &'a MeterParams,
    /// Nameplate capacity of the meter's installation, W.
    pub rated_capacity_w: u64,
    /// Verifier time, unix ms.
    pub now_ms: u64,
    /// Serial → node for the whole fleet.
    pub serials: &'a dyn SerialRegistry,
    /// Slot in which the MeterBridge records that the meter was replaced, if it was: the
    /// first reading at or after it may change serial and restart the register.
    pub replaced_at_slot: Option<u64>,
}

/// What a meter is and where (`spec.direction`, `spec.location`): what the solar rules of
/// [`verify_installed`] read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Installation {
    /// What the meter measures: only production obeys the sun.
    pub direction: MeterDirection,
    /// Where it is; a production meter without a site proves no energy
    /// (`MissingLocation`).
    pub site: Option<Site>,
}

/// What a meter measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MeterDirection {
    /// Energy produced (PV): bounded by the sun at the declared site.
    #[default]
    Production,
    /// Energy consumed: bounded by rated capacity only (a load runs at night too).
    Consumption,
}

/// The energy credited to a meter in one solar day, against that day's clear-sky yield.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayYield {
    /// The solar day ([`Site::solar_day`]).
    pub day: u64,
    /// Wh credited in it so far.
    pub credited_wh: u64,
    /// The most that day may credit, Wh.
    pub bound_wh: u64,
}

/// The last accepted link of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTip {
    /// Its sequence number.
    pub seq: u64,
    /// Its slot.
    pub slot: u64,
    /// Its cumulative register, Wh.
    pub cumulative_wh: u64,
    /// Its hash.
    pub hash: ChainHash,
    /// The meter it read.
    pub meter_serial: String,
}

/// What the verifier remembers of one accepted slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRecord {
    /// Hash of the accepted reading.
    pub hash: ChainHash,
    /// Energy credited for it, Wh (revoked if the slot is banned).
    pub credited_wh: u64,
}

/// One node's chain as the verifier knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeterChain {
    /// The last accepted reading.
    pub tip: Option<ChainTip>,
    /// Accepted slots still inside the window.
    pub slots: BTreeMap<u64, SlotRecord>,
    /// Slots banned by a conflicting second report (Glow); nothing is credited for them.
    pub banned: BTreeSet<u64>,
    /// Energy credited in the current solar day (production meters with a site).
    pub day: Option<DayYield>,
}

/// An accepted reading and the energy it proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReading {
    /// The node.
    pub node: PublicKey,
    /// Sequence number.
    pub seq: u64,
    /// Slot.
    pub slot: u64,
    /// Energy proven since the previous reading, Wh (0 for the first reading and across
    /// a recorded meter replacement, where no baseline exists).
    pub delta_wh: u64,
    /// The new tip of the chain.
    pub tip: ChainTip,
    /// The day's credited energy after this reading (production meters with a site).
    pub day: Option<DayYield>,
}

impl ChainTip {
    /// The tip `signed` makes once its link is proven.
    pub fn of(signed: &SignedReading) -> Self {
        Self {
            seq: signed.reading.seq,
            slot: signed.reading.slot,
            cumulative_wh: signed.reading.cumulative_wh,
            hash: signed.hash(),
            meter_serial: signed.reading.meter_serial.clone(),
        }
    }
}

/// Whether a rejection still moves the chain on: the energy rules judged after the link
/// itself was proven (signature, sequence, hash, slot order, serial, register). The link
/// is real, only its energy is not, so the next reading measures from it: a lie earns 0
/// for its interval instead of wedging the chain, and an honest meter that meets a model
/// miss keeps proving.
pub fn advances_chain(reason: RejectReason) -> bool {
    matches!(
        reason,
        RejectReason::ProductionAtNight
            | RejectReason::AboveClearSky
            | RejectReason::AboveDailyYield
            | RejectReason::MissingLocation
    )
}

/// The checks that need no previous link: signature (`BadSignature`), serial not claimed
/// by another node (`DuplicateMeterSerial`), slot inside the window (`SlotOutsideWindow`).
fn check_unlinked(signed: &SignedReading, ctx: &MeterContext<'_>) -> Result<(), RejectReason> {
    let reading = &signed.reading;
    if !signed
        .node
        .verify(READING_DOMAIN, &signed.body(), &signed.signature)
    {
        return Err(RejectReason::BadSignature);
    }
    if ctx
        .serials
        .claimed_by(&reading.meter_serial)
        .is_some_and(|owner| owner != signed.node)
    {
        return Err(RejectReason::DuplicateMeterSerial);
    }
    let now_slot = ctx.params.slot_at(ctx.now_ms);
    if reading.slot > now_slot.saturating_add(ctx.params.future_slots)
        || reading.slot.saturating_add(ctx.params.window_slots) < now_slot
    {
        return Err(RejectReason::SlotOutsideWindow);
    }
    Ok(())
}

/// A reading arriving where the verifier holds no chain for its node (a restarted
/// verifier): only the checks that need no previous link, then it becomes the baseline,
/// proving nothing itself (`delta_wh` 0).
pub fn verify_baseline(
    signed: &SignedReading,
    ctx: &MeterContext<'_>,
) -> Result<VerifiedReading, RejectReason> {
    check_unlinked(signed, ctx)?;
    let reading = &signed.reading;
    Ok(VerifiedReading {
        node: signed.node,
        seq: reading.seq,
        slot: reading.slot,
        delta_wh: 0,
        tip: ChainTip::of(signed),
        day: None,
    })
}

/// Checks a reading, in order: signature (`BadSignature`), serial not claimed by another
/// node (`DuplicateMeterSerial`), slot inside the window (`SlotOutsideWindow`), one
/// report per slot (`Duplicate` when identical, `DuplicateSlot` when conflicting or
/// banned), sequence (`SequenceGap`), chain (`ChainBroken`), slot order
/// (`SlotOutOfOrder`), serial continuity (`MeterSerialChanged`), register monotonic
/// (`RegisterRollback`), capacity × Δt × 1.35 (`ExceedsCapacity`),
/// |ΔWh − avg W × Δt| within tolerance (`EnergyMismatch`), then for production meters
/// the sun at the declared site: a site is declared (`MissingLocation`), no energy while
/// the sun is down (`ProductionAtNight`), at most the clear-sky bound integrated over
/// every elapsed slot (`AboveClearSky`), at most the day's clear-sky yield
/// (`AboveDailyYield`). Only the physics rules let the chain move on ([`advances_chain`]).
pub fn verify_installed(
    signed: &SignedReading,
    chain: &MeterChain,
    ctx: &MeterContext<'_>,
    installation: &Installation,
) -> Result<VerifiedReading, RejectReason> {
    verify_link(signed, chain, ctx, Some(installation))
}

/// [`verify_installed`] without the solar rules: the chain, register and capacity rules
/// only (what a caller that does not know the installation can check).
pub fn verify_reading(
    signed: &SignedReading,
    chain: &MeterChain,
    ctx: &MeterContext<'_>,
) -> Result<VerifiedReading, RejectReason> {
    verify_link(signed, chain, ctx, None)
}

fn verify_link(
    signed: &SignedReading,
    chain: &MeterChain,
    ctx: &MeterContext<'_>,
    installation: Option<&Installation>,
) -> Result<VerifiedReading, RejectReason> {
    let reading = &signed.reading;
    check_unlinked(signed, ctx)?;
    let hash = signed.hash();
    if chain.banned.contains(&reading.slot) {
        return Err(RejectReason::DuplicateSlot);
    }
    if let Some(record) = chain.slots.get(&reading.slot) {
        return Err(if record.hash == hash {
            RejectReason::Duplicate
        } else {
            RejectReason::DuplicateSlot
        });
    }
    let (delta_wh, day) = match &chain.tip {
        None => {
            if reading.seq != 0 {
                return Err(RejectReason::SequenceGap);
            }
            if reading.prev_hash != GENESIS_HASH {
                return Err(RejectReason::ChainBroken);
            }
            (0, None)
        }
        Some(tip) => match check_link(signed, tip, ctx)? {
            // A recorded swap: no baseline, nothing proven, nothing for the sun to bound.
            None => (0, chain.day),
            Some(delta_wh) => match installation {
                Some(installation) => (
                    delta_wh,
                    check_physics(signed, tip, chain, ctx, installation, delta_wh)?,
                ),
                None => (delta_wh, chain.day),
            },
        },
    };
    Ok(VerifiedReading {
        node: signed.node,
        seq: reading.seq,
        slot: reading.slot,
        delta_wh,
        tip: ChainTip::of(signed),
        day,
    })
}

/// The solar rules for a proven link of `delta_wh` from `tip`; returns the day's new
/// credited energy. Energy within `energy_tolerance_wh` is never refused: the register
/// counts whole Wh, so a fraction produced before sunset can tick over after it.
fn check_physics(
    signed: &SignedReading,
    tip: &ChainTip,
    chain: &MeterChain,
    ctx: &MeterContext<'_>,
    installation: &Installation,
    delta_wh: u64,
) -> Result<Option<DayYield>, RejectReason> {
    if installation.direction == MeterDirection::Consumption {
        return Ok(None);
    }
    let tolerance = ctx.params.energy_tolerance_wh;
    let Some(site) = installation.site else {
        return if delta_wh > tolerance {
            Err(RejectReason::MissingLocation)
        } else {
            Ok(chain.day)
        };
    };
    // A reading is taken at its slot's start and covers the time since the previous one.
    let from_ms = ctx.params.slot_start_ms(tip.slot);
    let to_ms = ctx.params.slot_start_ms(signed.reading.slot);
    let bound = |from: u64, margin: u64| {
        site.energy_bound_wh(
            ctx.rated_capacity_w,
            from,
            to_ms,
            margin,
            ctx.params.capacity_buffer_percent,
        )
        // SPA refuses only times outside −2000..6000, which the slot window excludes;
        // should it ever refuse, nothing can be shown plausible.
        .ok_or(RejectReason::AboveClearSky)
    };
    let interval_bound = bound(from_ms, ctx.params.clear_sky_margin_percent)?;
    if delta_wh > tolerance {
        if interval_bound == 0.0 {
            return Err(RejectReason::ProductionAtNight);
        }
        if delta_wh as f64 > interval_bound.ceil() + tolerance as f64 {
            return Err(RejectReason::AboveClearSky);
        }
    }
    let today = site.solar_day(to_ms);
    let day_start = site.solar_day_start_ms(today);
    let (credited_before, bound_wh, attributed) = match chain.day {
        Some(day) if day.day == today => (day.credited_wh, day.bound_wh, delta_wh),
        _ => {
            let whole_day = site
                .energy_bound_wh(
                    ctx.rated_capacity_w,
                    day_start,
                    day_start.saturating_add(DAY_MS),
                    0,
                    ctx.params.capacity_buffer_percent,
                )
                .ok_or(RejectReason::AboveClearSky)?;
            let margin = 1.0 + ctx.params.daily_margin_percent as f64 / 100.0;
            // A link reaching back into yesterday only counts today's part of it here;
            // the interval bound above already limits the rest.
            let today_part = bound(from_ms.max(day_start), ctx.params.clear_sky_margin_percent)?;
            (
                0,
                (whole_day * margin).ceil() as u64,
                delta_wh.min(today_part.ceil() as u64),
            )
        }
    };
    let credited_wh = credited_before.saturating_add(attributed);
    if credited_wh > bound_wh.saturating_add(tolerance) {
        return Err(RejectReason::AboveDailyYield);
    }
    Ok(Some(DayYield {
        day: today,
        credited_wh,
        bound_wh,
    }))
}

/// The rules that compare a reading with the previous link; returns the energy proven,
/// `None` across a recorded meter replacement (no baseline: nothing proven).
fn check_link(
    signed: &SignedReading,
    tip: &ChainTip,
    ctx: &MeterContext<'_>,
) -> Result<Option<u64>, RejectReason> {
    let reading = &signed.reading;
    if reading.seq != tip.seq.saturating_add(1) {
        return Err(RejectReason::SequenceGap);
    }
    if reading.prev_hash != tip.hash {
        return Err(RejectReason::ChainBroken);
    }
    if reading.slot <= tip.slot {
        return Err(RejectReason::SlotOutOfOrder);
    }
    let replaced = ctx
        .replaced_at_slot
        .is_some_and(|at| tip.slot < at && at <= reading.slot);
    if reading.meter_serial != tip.meter_serial && !replaced {
        return Err(RejectReason::MeterSerialChanged);
    }
    if replaced {
        // A new meter's register has no baseline in this chain: nothing is proven for the
        // interval, and the next reading measures from this one.
        return Ok(None);
    }
    let delta_wh = reading
        .cumulative_wh
        .checked_sub(tip.cumulative_wh)
        .ok_or(RejectReason::RegisterRollback)?;
    let elapsed_ms = u128::from(reading.slot - tip.slot) * u128::from(ctx.params.slot_ms);
    let delta = u128::from(delta_wh);
    // ΔWh ≤ capacity × Δt × 1.35, cross-multiplied to stay in integers.
    if delta * MS_PER_HOUR * 100
        > u128::from(ctx.rated_capacity_w)
            * elapsed_ms
            * u128::from(ctx.params.capacity_buffer_percent)
    {
        return Err(RejectReason::ExceedsCapacity);
    }
    let expected = u128::from(reading.avg_w) * elapsed_ms / MS_PER_HOUR;
    let tolerance = u128::from(ctx.params.energy_tolerance_wh)
        .max(expected * u128::from(ctx.params.energy_tolerance_percent) / 100);
    if delta.abs_diff(expected) > tolerance {
        return Err(RejectReason::EnergyMismatch);
    }
    Ok(Some(delta_wh))
}

impl MeterChain {
    /// Records the verdict on `signed`: an accepted reading becomes the tip and its slot is
    /// credited; a conflicting second report (`DuplicateSlot`) bans the slot (Glow). Returns
    /// the Wh revoked by a new ban, which the caller subtracts from the node's tally.
    pub fn record(
        &mut self,
        signed: &SignedReading,
        verdict: &Result<VerifiedReading, RejectReason>,
    ) -> u64 {
        match verdict {
            Ok(verified) => {
                self.slots.insert(
                    verified.slot,
                    SlotRecord {
                        hash: verified.tip.hash,
                        credited_wh: verified.delta_wh,
                    },
                );
                self.tip = Some(verified.tip.clone());
                self.day = verified.day;
                0
            }
            Err(reason) if advances_chain(*reason) => {
                self.slots.insert(
                    signed.reading.slot,
                    SlotRecord {
                        hash: signed.hash(),
                        credited_wh: 0,
                    },
                );
                self.tip = Some(ChainTip::of(signed));
                0
            }
            Err(RejectReason::DuplicateSlot) if self.banned.insert(signed.reading.slot) => self
                .slots
                .get_mut(&signed.reading.slot)
                .map(|record| std::mem::take(&mut record.credited_wh))
                .unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Forgets slots that fell out of the window before `now_ms` (no reading for them can
    /// be accepted any more, so remembering them only costs memory).
    pub fn prune(&mut self, params: &MeterParams, now_ms: u64) {
        let oldest = params.slot_at(now_ms).saturating_sub(params.window_slots);
        self.slots = self.slots.split_off(&oldest);
        self.banned = self.banned.split_off(&oldest);
    }
}
