//! Energy meter proof: the agent signs a hash chain of meter readings (sequence number,
//! time slot, cumulative Wh, average W, sample count, previous hash); the verifier checks
//! each link against the rules Glow's GCA server applies to its equipment reports
//! (research depin-anchors §4(b), glowlabs-org/gca-backend@bfcc4a6d) plus chain, register
//! and energy-consistency rules of our own (§4(c)).
//!
//! Trust gap, stated plainly: SunSpec registers carry no signature at the source, so a
//! signed reading proves what the *agent* read, not what the meter measured. The physical
//! plausibility rules (capacity, energy vs. average power, register monotonicity, the sun
//! at the declared site: [`solar`]) and the fleet-wide serial uniqueness carry the weight.

mod reading;
mod serials;
pub mod solar;
mod verify;

#[cfg(test)]
mod tests;

pub use reading::{
    BadChainHead, ChainHash, ChainHead, GENESIS_HASH, READING_DOMAIN, Reading, SignedReading,
};
pub use serials::{ClaimOutcome, SerialBook, SerialClaim};
pub use solar::Site;
pub use verify::{
    ChainTip, DayYield, Installation, MeterChain, MeterContext, MeterDirection, SerialRegistry,
    SlotRecord, VerifiedReading, advances_chain, verify_baseline, verify_installed, verify_reading,
};

/// Default slot length. Glow `glow/timeslot.go`: 5-minute timeslots (a MeterBridge's
/// `intervalSeconds` overrides it per meter).
pub const DEFAULT_SLOT_MS: u64 = 5 * 60 * 1000;
/// Glow `server/report_listener_udp.go`: a report's timeslot may be at most 432 slots
/// (72 h at 5 min) from now.
pub const DEFAULT_WINDOW_SLOTS: u64 = 432;
/// Glow `server/consts.go` `MaxCapacityBuffer`: 135 % of rated capacity.
pub const CAPACITY_BUFFER_PERCENT: u64 = 135;
/// Energy tolerance floor in Wh: the register and the average are each rounded to whole
/// units, so two readings can disagree by up to 2 Wh with no error anywhere.
pub const DEFAULT_ENERGY_TOLERANCE_WH: u64 = 2;
/// Energy tolerance as a percentage of the expected energy: the agent averages discrete
/// samples of W while the register integrates continuously, so a ramping PV curve makes
/// them differ by a few percent (ours, not from a real network).
pub const DEFAULT_ENERGY_TOLERANCE_PERCENT: u64 = 10;
/// Headroom over the clear-sky bound per interval, percent: cloud-edge enhancement lifts
/// irradiance above clear sky for minutes at a time; 5-minute means reach about 1.2 ×
/// clear sky (Yordanov et al. 2013, "Overirradiance events"), so 25 % never refuses
/// honest light while still bounding every slot.
pub const CLEAR_SKY_MARGIN_PERCENT: u64 = 25;
/// Headroom over the day's clear-sky yield, percent: enhancement needs clouds, which
/// shade more than they focus over a day, so a day cannot beat clear sky by much; 10 %
/// absorbs the model's own error (Meinel beam vs. a very clean, dry sky).
pub const DAILY_MARGIN_PERCENT: u64 = 10;

/// Meter proof parameters; `slot_ms` comes from the MeterBridge, the rest from policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterParams {
    /// Length of one time slot (one reading per slot).
    pub slot_ms: u64,
    /// Slots a reading may lag behind now.
    pub window_slots: u64,
    /// Slots a reading may run ahead of now (clock skew between agent and verifier).
    pub future_slots: u64,
    /// Energy may not exceed rated capacity × elapsed time × this percentage / 100.
    pub capacity_buffer_percent: u64,
    /// Absolute slack for |ΔWh − avg W × Δt|, Wh.
    pub energy_tolerance_wh: u64,
    /// Relative slack for |ΔWh − avg W × Δt|, percent of the expected energy.
    pub energy_tolerance_percent: u64,
    /// Headroom over the clear-sky bound of each elapsed slot, percent.
    pub clear_sky_margin_percent: u64,
    /// Headroom over the clear-sky yield of a solar day, percent.
    pub daily_margin_percent: u64,
}

impl Default for MeterParams {
    fn default() -> Self {
        Self {
            slot_ms: DEFAULT_SLOT_MS,
            window_slots: DEFAULT_WINDOW_SLOTS,
            future_slots: 1,
            capacity_buffer_percent: CAPACITY_BUFFER_PERCENT,
            energy_tolerance_wh: DEFAULT_ENERGY_TOLERANCE_WH,
            energy_tolerance_percent: DEFAULT_ENERGY_TOLERANCE_PERCENT,
            clear_sky_margin_percent: CLEAR_SKY_MARGIN_PERCENT,
            daily_margin_percent: DAILY_MARGIN_PERCENT,
        }
    }
}

impl MeterParams {
    /// The slot `time_ms` falls in.
    pub fn slot_at(&self, time_ms: u64) -> u64 {
        // A zero slot length would divide by zero; treat it as 1 ms rather than panic.
        time_ms / self.slot_ms.max(1)
    }

    /// When slot `slot` starts, unix ms.
    pub fn slot_start_ms(&self, slot: u64) -> u64 {
        slot.saturating_mul(self.slot_ms.max(1))
    }
}
