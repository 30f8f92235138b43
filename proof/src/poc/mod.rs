//! LoRa Proof-of-Coverage, modelled on Helium's `iot_verifier` (research depin-anchors
//! §1(b), helium/oracles@824f7724): a hotspot transmits a beacon whose payload derives from
//! the verifier's entropy, hotspots that hear it report signed witnesses, and a pure rule
//! table decides which beacons and witnesses count, each refusal naming its rule.
//!
//! Reward units follow HIP-15 and are scaled per H3 cell by HIP-17/HIP-104 hex density.
//! Every constant below carries its source; every one is also a field of [`PocParams`], so
//! a RewardPolicy can override it.
//!
//! Reports are signed by the node's long-term key, not a session key: a beacon is settled
//! together with witnesses that arrive on other nodes' sessions, possibly after the
//! beaconer's session has ended, so each report must stay checkable on its own.

mod density;
mod geo;
mod messages;
mod region;
mod settle;
mod verify;

#[cfg(test)]
mod tests;

pub use density::{DEFAULT_TX_SCALE, DensityLevel, HIP104_DENSITY, hex_scales, is_active};
pub use geo::{
    GeoError, LOCATION_RESOLUTION, cell_at, cell_distance, free_space_path_loss_db, great_circle_m,
    grid_span_m,
};
pub use messages::{
    BEACON_DOMAIN, BEACON_PAYLOAD_SIZE, BeaconId, BeaconReport, DerivedBeacon, WITNESS_DOMAIN,
    WitnessReport, derive_beacon,
};
pub use region::{BEACON_DATARATE, Region, UnknownRegion};
pub use settle::{
    PocOutcome, PocShares, WitnessOutcome, beacon_units, price_poc, settle_poc, witness_units,
};
pub use verify::{
    BeaconContext, BeaconSubmission, Denylist, HotspotInfo, HotspotLookup, NoDenylist, PocHistory,
    VerifiedBeacon, VerifiedWitness, WitnessContext, WitnessSubmission, verify_beacon,
    verify_witness,
};

use crate::entropy::DEFAULT_LIFESPAN_MS;

/// Default beacon interval. Helium gateway-rs `default_poc_interval` / iot_verifier
/// `beacon_interval`: 6 h (it should divide 24 h).
pub const DEFAULT_BEACON_INTERVAL_MS: u64 = 6 * 60 * 60 * 1000;
/// Helium iot_verifier `MAX_BEACON_TO_WITNESS_LAG`: 4000 ms after the beacon arrived.
pub const MAX_BEACON_TO_WITNESS_LAG_MS: u64 = 4_000;
/// Helium iot_verifier `MAX_WITNESS_LAG`: 1500 ms after the first witness, when witnesses
/// arrived before their beacon.
pub const MAX_WITNESS_LAG_MS: u64 = 1_500;
/// Helium iot_verifier frequency check: |f_beacon − f_witness| ≤ 100 kHz.
pub const MAX_FREQUENCY_DELTA_HZ: u64 = 100_000;
/// Helium iot_verifier `POC_CELL_PARENT_RES`: distances are measured between res-11 parents.
pub const POC_CELL_PARENT_RES: u8 = 11;
/// Helium iot_verifier `POC_CELL_DISTANCE_MINIMUM`: at least 8 res-11 cells apart.
pub const POC_CELL_DISTANCE_MINIMUM: u32 = 8;
/// Helium iot_verifier max distance: 100 km great-circle.
pub const MAX_WITNESS_DISTANCE_M: u64 = 100_000;
/// Helium HIP-106 reciprocity window: 48 h.
pub const RECIPROCITY_WINDOW_MS: u64 = 48 * 60 * 60 * 1000;
/// Helium iot_verifier `max_witnesses_per_poc`: 14 selected witnesses per beacon.
pub const MAX_WITNESSES_PER_BEACON: u32 = 14;
/// Helium HIP-15 `WITNESS_REDUNDANCY`: 4.
pub const WITNESS_REDUNDANCY: u32 = 4;
/// Helium HIP-17 `HIP_17_INTERACTIVITY_LIMIT`: a hotspot counts toward density if it
/// beaconed within 60 h.
pub const HIP17_INTERACTIVITY_LIMIT_MS: u64 = 60 * 60 * 60 * 1000;

/// Proof-of-Coverage parameters a `RewardPolicy` sets; defaults are Helium's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PocParams {
    /// How long after issue the verifier's entropy may be used (Helium: 180 s).
    pub entropy_lifespan_ms: u64,
    /// One beacon per hotspot per interval, intervals aligned to the unix epoch.
    pub beacon_interval_ms: u64,
    /// Longest a witness may arrive after its beacon.
    pub max_beacon_to_witness_lag_ms: u64,
    /// Longest a witness may arrive after the first witness, when the beacon came later.
    pub max_witness_lag_ms: u64,
    /// Largest allowed |beacon − witness| frequency, in Hz.
    pub max_frequency_delta_hz: u64,
    /// H3 resolution both locations are reduced to before measuring grid distance.
    pub distance_resolution: u8,
    /// Fewest grid cells (at `distance_resolution`) between beaconer and witness.
    pub min_distance_cells: u32,
    /// Largest great-circle distance between beaconer and witness, in metres.
    pub max_distance_m: u64,
    /// Slack added to the free-space RSSI bound, in dB×10 (Helium: none).
    pub rssi_margin_ddb: i32,
    /// A beacon (witness) counts only if its sender witnessed (beaconed) within this window.
    pub reciprocity_window_ms: u64,
    /// Most witnesses selected (and rewarded) per beacon.
    pub max_witnesses_per_beacon: u32,
    /// HIP-15 witness redundancy `R`.
    pub witness_redundancy: u32,
    /// How recently a hotspot must have beaconed to count toward hex density.
    pub density_activity_ms: u64,
}

impl Default for PocParams {
    fn default() -> Self {
        Self {
            entropy_lifespan_ms: DEFAULT_LIFESPAN_MS,
            beacon_interval_ms: DEFAULT_BEACON_INTERVAL_MS,
            max_beacon_to_witness_lag_ms: MAX_BEACON_TO_WITNESS_LAG_MS,
            max_witness_lag_ms: MAX_WITNESS_LAG_MS,
            max_frequency_delta_hz: MAX_FREQUENCY_DELTA_HZ,
            distance_resolution: POC_CELL_PARENT_RES,
            min_distance_cells: POC_CELL_DISTANCE_MINIMUM,
            max_distance_m: MAX_WITNESS_DISTANCE_M,
            rssi_margin_ddb: 0,
            reciprocity_window_ms: RECIPROCITY_WINDOW_MS,
            max_witnesses_per_beacon: MAX_WITNESSES_PER_BEACON,
            witness_redundancy: WITNESS_REDUNDANCY,
            density_activity_ms: HIP17_INTERACTIVITY_LIMIT_MS,
        }
    }
}

impl PocParams {
    /// The interval bucket `time_ms` falls in (beacons are limited to one per bucket).
    pub fn interval_of(&self, time_ms: u64) -> u64 {
        // A zero interval would divide by zero; treat it as 1 ms rather than panic.
        time_ms / self.beacon_interval_ms.max(1)
    }

    /// When to beacon in interval `interval`: a uniformly random offset inside the
    /// interval-aligned window (gateway-rs `mk_next_beacon_time`); `random` is any u64 the
    /// caller draws. An agent whose slot in the current interval has passed uses the next.
    pub fn beacon_time(&self, interval: u64, random: u64) -> u64 {
        let length = self.beacon_interval_ms.max(1);
        interval
            .saturating_mul(length)
            .saturating_add(random % length)
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;

    #[test]
    fn activity_and_beacon_schedule() {
        let params = PocParams::default();
        assert!(is_active(Some(0), params.density_activity_ms, &params));
        assert!(!is_active(Some(0), params.density_activity_ms + 1, &params));
        assert!(!is_active(None, 0, &params));
        let t = params.beacon_time(3, u64::MAX);
        assert_eq!(params.interval_of(t), 3);
        assert_eq!(params.beacon_time(3, 0), 3 * DEFAULT_BEACON_INTERVAL_MS);
    }
}
