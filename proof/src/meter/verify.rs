//! Verifier side: the reading rule table and the per-meter chain state it reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::MeterParams;
use super::reading::{ChainHash, GENESIS_HASH, READING_DOMAIN, SignedReading};
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
        tip: ChainTip {
            seq: reading.seq,
            slot: reading.slot,
            cumulative_wh: reading.cumulative_wh,
            hash: signed.hash(),
            meter_serial: reading.meter_serial.clone(),
        },
    })
}

/// Checks a reading, in order: signature (`BadSignature`), serial not claimed by another
/// node (`DuplicateMeterSerial`), slot inside the window (`SlotOutsideWindow`), one
/// report per slot (`Duplicate` when identical, `DuplicateSlot` when conflicting or
/// banned), sequence (`SequenceGap`), chain (`ChainBroken`), slot order
/// (`SlotOutOfOrder`), serial continuity (`MeterSerialChanged`), register monotonic
/// (`RegisterRollback`), capacity × Δt × 1.35 (`ExceedsCapacity`), and
/// |ΔWh − avg W × Δt| within tolerance (`EnergyMismatch`).
pub fn verify_reading(
    signed: &SignedReading,
    chain: &MeterChain,
    ctx: &MeterContext<'_>,
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
    let delta_wh = match &chain.tip {
        None => {
            if reading.seq != 0 {
                return Err(RejectReason::SequenceGap);
            }
            if reading.prev_hash != GENESIS_HASH {
                return Err(RejectReason::ChainBroken);
            }
            0
        }
        Some(tip) => check_link(signed, tip, ctx)?,
    };
    Ok(VerifiedReading {
        node: signed.node,
        seq: reading.seq,
        slot: reading.slot,
        delta_wh,
        tip: ChainTip {
            seq: reading.seq,
            slot: reading.slot,
            cumulative_wh: reading.cumulative_wh,
            hash,
            meter_serial: reading.meter_serial.clone(),
        },
    })
}

/// The rules that compare a reading with the previous link; returns the energy proven.
fn check_link(
    signed: &SignedReading,
    tip: &ChainTip,
    ctx: &MeterContext<'_>,
) -> Result<u64, RejectReason> {
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
        return Ok(0);
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
    Ok(delta_wh)
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
