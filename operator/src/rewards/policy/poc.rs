//! `spec.poc` of a RewardPolicy → the PoC rule table's [`PocParams`].
//!
//! Validation reads the section alone, with Helium's value for every unset field, never
//! the operator's flags: the reward controller's `Valid` condition and the verifier then
//! always agree on whether a section is usable. Only the merge onto the verifier's own
//! params sees the flags (an unset `beaconIntervalSeconds` keeps `--poc-beacon-interval`).

use depin_crds::PocRules;
use depin_proof::poc::{LOCATION_RESOLUTION, PocParams, grid_span_m};

const DAY_SECONDS: u64 = 86_400;
const MS_PER_SECOND: u64 = 1_000;
/// PocParams holds the RSSI margin in dB × 10, Helium's unit for gains and signals.
const DDB_PER_DB: u32 = 10;

/// A `spec.poc` field that cannot be used, named as written in the CRD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct PocRuleError {
    /// The field's path in the RewardPolicy spec, e.g. `poc.beaconIntervalSeconds`.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: PocProblem,
}

impl PocRuleError {
    /// The condition reason and metric label, from the problem.
    pub fn reason(&self) -> &'static str {
        match self.problem {
            PocProblem::OutOfRange { .. } => "OutOfRange",
            PocProblem::IntervalSplitsDay(_) => "IntervalSplitsDay",
            PocProblem::ShorterThanTwoIntervals { .. } => "ShorterThanTwoIntervals",
            PocProblem::EmptyDistanceBand { .. } => "EmptyDistanceBand",
        }
    }
}

/// What is wrong with a `spec.poc` field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PocProblem {
    /// Outside the range the CRD schema states (checked again for clients that skip it).
    #[error("{value} is outside {min}..={max}")]
    OutOfRange {
        /// The value given.
        value: u64,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
    },
    /// Beacon windows that do not tile a day drift against daily epochs (Helium: the
    /// interval "should divide 24 h").
    #[error("{0} s does not divide a day (86400 s)")]
    IntervalSplitsDay(u64),
    /// Honest hotspots act once per beacon interval, so a shorter window drops them
    /// between their own beacons.
    #[error(
        "{window_s} s is shorter than two beacon intervals of {interval_s} s (an unset \
         poc.beaconIntervalSeconds reads as Helium's 21600 s)"
    )]
    ShorterThanTwoIntervals {
        /// The window given, seconds.
        window_s: u64,
        /// The beacon interval it is measured against, seconds.
        interval_s: u64,
    },
    /// The minimum distance reaches past the maximum: no witness could ever count.
    #[error(
        "{cells} cells at H3 resolution {resolution} span about {span_m} m, not less than \
         poc.maxDistanceMeters ({max_m} m): no witness could ever count"
    )]
    EmptyDistanceBand {
        /// `minDistanceCells`.
        cells: u32,
        /// `distanceH3Resolution`.
        resolution: u8,
        /// About how far that many cells reach, metres.
        span_m: u64,
        /// `maxDistanceMeters`.
        max_m: u64,
    },
}

/// One field's allowed range, as the CRD schema states it (a test keeps the two equal).
#[derive(Debug, Clone, Copy)]
struct Bound {
    /// The field's path in the RewardPolicy spec.
    field: &'static str,
    /// Smallest allowed value.
    min: u64,
    /// Largest allowed value.
    max: u64,
}

const fn bound(field: &'static str, min: u64, max: u64) -> Bound {
    Bound { field, min, max }
}

/// Every `spec.poc` field with its range, in CRD order.
const BOUNDS: [Bound; 13] = [
    bound("poc.entropyLifespanSeconds", 1, 3_600),
    bound("poc.beaconIntervalSeconds", 1, DAY_SECONDS),
    bound("poc.maxBeaconToWitnessLagMilliseconds", 1, 600_000),
    bound("poc.maxWitnessLagMilliseconds", 1, 600_000),
    bound("poc.maxFrequencyDeltaHz", 0, 10_000_000),
    bound("poc.minDistanceCells", 0, 100_000),
    bound("poc.distanceH3Resolution", 0, LOCATION_RESOLUTION as u64),
    // Half the Earth's circumference: no two points are further apart.
    bound("poc.maxDistanceMeters", 1, 20_037_508),
    bound("poc.rssiMarginDb", 0, 100),
    bound("poc.reciprocityWindowSeconds", 0, 31_536_000),
    bound("poc.maxWitnessesPerBeacon", 1, 1_000),
    bound("poc.witnessRedundancy", 1, 1_000),
    bound("poc.densityActivitySeconds", 1, 31_536_000),
];

/// The section's values in [`BOUNDS`] order, widened to u64.
fn values(rules: &PocRules) -> [Option<u64>; 13] {
    let wide = |v: Option<u32>| v.map(u64::from);
    [
        rules.entropy_lifespan_seconds,
        rules.beacon_interval_seconds,
        rules.max_beacon_to_witness_lag_milliseconds,
        rules.max_witness_lag_milliseconds,
        rules.max_frequency_delta_hz,
        wide(rules.min_distance_cells),
        rules.distance_h3_resolution.map(u64::from),
        rules.max_distance_meters,
        wide(rules.rssi_margin_db),
        rules.reciprocity_window_seconds,
        wide(rules.max_witnesses_per_beacon),
        wide(rules.witness_redundancy),
        rules.density_activity_seconds,
    ]
}

/// The verifier's `base` params with every field the section sets replaced, after
/// [`check`]ing the section; the error names the first unusable field.
pub fn poc_params(rules: &PocRules, base: &PocParams) -> Result<PocParams, PocRuleError> {
    check(rules)?;
    Ok(merge(rules, base))
}

/// Ranges, then the cross-field rules, on the section over Helium's defaults.
pub fn check(rules: &PocRules) -> Result<(), PocRuleError> {
    for (b, value) in BOUNDS.iter().zip(values(rules)) {
        if let Some(value) = value.filter(|v| !(b.min..=b.max).contains(v)) {
            let problem = PocProblem::OutOfRange {
                value,
                min: b.min,
                max: b.max,
            };
            return Err(PocRuleError {
                field: b.field,
                problem,
            });
        }
    }
    let p = merge(rules, &PocParams::default());
    let interval_s = p.beacon_interval_ms / MS_PER_SECOND;
    if !DAY_SECONDS.is_multiple_of(interval_s.max(1)) {
        return Err(PocRuleError {
            field: "poc.beaconIntervalSeconds",
            problem: PocProblem::IntervalSplitsDay(interval_s),
        });
    }
    let windows = [
        ("poc.reciprocityWindowSeconds", p.reciprocity_window_ms),
        ("poc.densityActivitySeconds", p.density_activity_ms),
    ];
    for (field, window_ms) in windows {
        // A zero reciprocity window turns that rule off; density's minimum is 1.
        if window_ms != 0 && window_ms < 2 * p.beacon_interval_ms {
            let window_s = window_ms / MS_PER_SECOND;
            let problem = PocProblem::ShorterThanTwoIntervals {
                window_s,
                interval_s,
            };
            return Err(PocRuleError { field, problem });
        }
    }
    // The range check above keeps the resolution valid, so the span always exists.
    let span_m = grid_span_m(p.min_distance_cells, p.distance_resolution).unwrap_or(0.0);
    if span_m >= p.max_distance_m as f64 {
        let problem = PocProblem::EmptyDistanceBand {
            cells: p.min_distance_cells,
            resolution: p.distance_resolution,
            // Whole metres for the message; `as` saturates.
            span_m: span_m.round() as u64,
            max_m: p.max_distance_m,
        };
        return Err(PocRuleError {
            field: "poc.minDistanceCells",
            problem,
        });
    }
    Ok(())
}

/// `base` with every field the section sets replaced (units converted, saturating).
fn merge(rules: &PocRules, base: &PocParams) -> PocParams {
    let ms = |seconds: u64| seconds.saturating_mul(MS_PER_SECOND);
    let ddb = |db: u32| i32::try_from(db.saturating_mul(DDB_PER_DB)).unwrap_or(i32::MAX);
    PocParams {
        entropy_lifespan_ms: rules
            .entropy_lifespan_seconds
            .map_or(base.entropy_lifespan_ms, ms),
        beacon_interval_ms: rules
            .beacon_interval_seconds
            .map_or(base.beacon_interval_ms, ms),
        max_beacon_to_witness_lag_ms: rules
            .max_beacon_to_witness_lag_milliseconds
            .unwrap_or(base.max_beacon_to_witness_lag_ms),
        max_witness_lag_ms: rules
            .max_witness_lag_milliseconds
            .unwrap_or(base.max_witness_lag_ms),
        max_frequency_delta_hz: rules
            .max_frequency_delta_hz
            .unwrap_or(base.max_frequency_delta_hz),
        distance_resolution: rules
            .distance_h3_resolution
            .unwrap_or(base.distance_resolution),
        min_distance_cells: rules.min_distance_cells.unwrap_or(base.min_distance_cells),
        max_distance_m: rules.max_distance_meters.unwrap_or(base.max_distance_m),
        rssi_margin_ddb: rules.rssi_margin_db.map_or(base.rssi_margin_ddb, ddb),
        reciprocity_window_ms: rules
            .reciprocity_window_seconds
            .map_or(base.reciprocity_window_ms, ms),
        max_witnesses_per_beacon: rules
            .max_witnesses_per_beacon
            .unwrap_or(base.max_witnesses_per_beacon),
        witness_redundancy: rules.witness_redundancy.unwrap_or(base.witness_redundancy),
        density_activity_ms: rules
            .density_activity_seconds
            .map_or(base.density_activity_ms, ms),
    }
}

#[cfg(test)]
mod tests;
