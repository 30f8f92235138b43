//! Solar physics at a meter's declared location: where the sun is, the most a PV array of
//! a given nameplate can produce under a clear sky over an interval, and over a day.
//!
//! Every bound here is an *upper* bound for the best-placed array there is (a two-axis
//! tracker, so the beam always hits the panel square on), not a yield forecast: an honest
//! fixed roof produces well below it, and a reading above it cannot be physics.
//!
//! The sun's position comes from `solar-positioning` (NREL SPA, Reda & Andreas 2003,
//! ±0.0003°): the verifier only needs the elevation, but a maintained, validated
//! implementation is cheaper to trust than one more hand-rolled NOAA series.

use solar_positioning::time::JulianDate;
use solar_positioning::{Location, SolarPositions};

/// Milliseconds per day.
pub const DAY_MS: u64 = 86_400_000;
/// Extraterrestrial irradiance at perihelion, W/m²: the solar constant 1361 W/m² (Kopp &
/// Lean 2011) × 1.034 for the closest Earth–Sun distance in early January.
const EXTRATERRESTRIAL_W_M2: f64 = 1_407.0;
/// Diffuse sky plus ground-reflected light on a tracked panel under a clear sky, W/m²:
/// clear-sky diffuse on the horizontal stays near 100 W/m² (Ineichen & Perez 2002); 150
/// leaves room for bright ground (snow albedo) on a steep panel.
const DIFFUSE_W_M2: f64 = 150.0;
/// Irradiance allowed while the sun is just below the horizon, W/m²: skylight during
/// early civil twilight is at most a few tens of W/m².
const TWILIGHT_W_M2: f64 = 30.0;
/// Degrees below the horizon at which production must have stopped. 3° covers refraction
/// (0.57° at the horizon) + the sun's semi-diameter (0.27°), a slot label off by one
/// 5-minute slot (1.25° of hour angle at the equator) and a low local horizon (a roof on
/// a hill, ~1°); below it, skylight is under 1 W/m² and a PV array yields nothing.
pub const TWILIGHT_TOLERANCE_DEG: f64 = 3.0;
/// Integration step cap, ms: 5 minutes (the sun moves ≤ 1.25° in it).
const MAX_STEP_MS: u64 = 300_000;
/// Integration step floor, ms: short slots integrate at one minute (the bound barely
/// changes in a minute, and a finer step only costs verifier CPU).
const MIN_STEP_MS: u64 = 60_000;
/// At most this many steps per interval (14 days of 5-minute steps): a longer gap is
/// bounded by its last 14 days only, so one reading cannot make the verifier spin.
const MAX_STEPS: u64 = 14 * 288;
/// ΔT (TT − UT1), s, for 2020–2030 (IERS): it moves the sun by ~0.0003° per second, so a
/// fixed value is exact enough for a bound with degrees of tolerance.
const DELTA_T_S: f64 = 69.0;

/// A declared installation site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Site {
    /// Latitude, degrees north (−90..=90).
    pub latitude: f64,
    /// Longitude, degrees east (−180..=180).
    pub longitude: f64,
}

impl Site {
    /// A site from degrees; `None` when either coordinate is out of range or not finite
    /// (the CRD's schema bounds them; this guards the verifier's other callers).
    pub fn new(latitude: f64, longitude: f64) -> Option<Self> {
        ((-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude)).then_some(
            Self {
                latitude,
                longitude,
            },
        )
    }

    /// The sun's true (unrefracted) elevation above the horizon at `unix_ms`, degrees.
    /// `None` only when SPA refuses the input (a time outside years −2000..6000).
    pub fn sun_elevation_deg(&self, unix_ms: u64) -> Option<f64> {
        let jd = unix_ms as f64 / DAY_MS as f64 + 2_440_587.5;
        let time = JulianDate::new(jd, DELTA_T_S).ok()?;
        let location = Location {
            latitude: self.latitude,
            longitude: self.longitude,
        };
        // Grena3 (±0.01°, 2010–2110) is ~10× cheaper than SPA, which covers the rest; a
        // gap's bound takes one position per 5 minutes, so the cost matters.
        let position = SolarPositions::grena3()
            .at_from_julian(time, location, 0.0, None)
            .or_else(|_| SolarPositions::new().at_from_julian(time, location, 0.0, None))
            .ok()?;
        let elevation = position.elevation_angle();
        // SPA returns finite angles for finite input; a NaN here would make every
        // comparison false and let energy through, so refuse it instead.
        elevation.is_finite().then_some(elevation)
    }

    /// The solar day `unix_ms` falls in: days counted from local mean solar midnight, so
    /// a day's production never straddles two keys.
    pub fn solar_day(&self, unix_ms: u64) -> u64 {
        // Longitude × 240 000 ms/° is the mean-solar-time offset (4 minutes per degree).
        let offset = (self.longitude * 240_000.0) as i64;
        let local = i128::from(unix_ms) + i128::from(offset);
        u64::try_from(local.div_euclid(i128::from(DAY_MS))).unwrap_or(0)
    }

    /// When solar day `day` starts, unix ms (0 before the epoch).
    pub fn solar_day_start_ms(&self, day: u64) -> u64 {
        let offset = (self.longitude * 240_000.0) as i128;
        let start = i128::from(day) * i128::from(DAY_MS) - offset;
        u64::try_from(start.max(0)).unwrap_or(u64::MAX)
    }

    /// Upper bound on a tracked panel's irradiance at `unix_ms`, W/m² (0 at night; `None`
    /// when the sun's position cannot be computed).
    pub fn irradiance_bound_w_m2(&self, unix_ms: u64) -> Option<f64> {
        self.sun_elevation_deg(unix_ms).map(irradiance_bound_w_m2)
    }

    /// Upper bound on the energy an array of `capacity_w` (at 1000 W/m²) produces in
    /// [`from_ms`, `to_ms`), Wh, with each step's irradiance raised by `margin_percent`
    /// and each step capped at `cap_percent` of capacity (Glow's 135 %). `None` when the
    /// sun's position cannot be computed.
    pub fn energy_bound_wh(
        &self,
        capacity_w: u64,
        from_ms: u64,
        to_ms: u64,
        margin_percent: u64,
        cap_percent: u64,
    ) -> Option<f64> {
        let step = step_ms(to_ms.saturating_sub(from_ms));
        let steps = to_ms.saturating_sub(from_ms).div_ceil(step);
        let skipped = steps.saturating_sub(MAX_STEPS);
        let mut t = from_ms.saturating_add(skipped.saturating_mul(step));
        let margin = 1.0 + margin_percent as f64 / 100.0;
        let cap = cap_percent as f64 / 100.0;
        let mut wh = 0.0;
        let mut irradiance_at_t = self.irradiance_bound_w_m2(t)?;
        while t < to_ms {
            let end = t.saturating_add(step).min(to_ms);
            let irradiance_at_end = self.irradiance_bound_w_m2(end)?;
            // The elevation is monotonic within a 5-minute step except at solar noon,
            // where it is flat: the larger endpoint bounds the whole step.
            let irradiance = irradiance_at_t.max(irradiance_at_end);
            let fraction = (irradiance / 1_000.0 * margin).min(cap);
            wh += capacity_w as f64 * fraction * (end - t) as f64 / 3_600_000.0;
            t = end;
            irradiance_at_t = irradiance_at_end;
        }
        Some(wh)
    }

    /// Whether the sun stays more than [`TWILIGHT_TOLERANCE_DEG`] below the horizon over
    /// the whole of [`from_ms`, `to_ms`] (`None` when its position cannot be computed).
    pub fn dark_throughout(&self, from_ms: u64, to_ms: u64) -> Option<bool> {
        Some(self.energy_bound_wh(1_000, from_ms, to_ms, 0, 100)? == 0.0)
    }
}

/// Upper bound on a sun-tracking panel's irradiance for a sun at `elevation_deg`, W/m²:
/// beam from the Meinel & Meinel (1976) clear-sky model, `I₀ · 0.7^(AM^0.678)`, with
/// the Kasten & Young (1989) air mass, plus [`DIFFUSE_W_M2`]; [`TWILIGHT_W_M2`] within
/// [`TWILIGHT_TOLERANCE_DEG`] below the horizon; 0 below that.
pub fn irradiance_bound_w_m2(elevation_deg: f64) -> f64 {
    if elevation_deg.is_nan() || elevation_deg <= -TWILIGHT_TOLERANCE_DEG {
        return 0.0;
    }
    if elevation_deg <= 0.0 {
        return TWILIGHT_W_M2;
    }
    let e = elevation_deg.min(90.0);
    let air_mass = 1.0 / (e.to_radians().sin() + 0.50572 * (e + 6.07995).powf(-1.6364));
    let beam = EXTRATERRESTRIAL_W_M2 * 0.7f64.powf(air_mass.powf(0.678));
    (beam + DIFFUSE_W_M2).max(TWILIGHT_W_M2)
}

/// The integration step for an interval of `span_ms`: 1 to 5 minutes, finer for short
/// intervals so a slot of 10 s is not bounded by 5 minutes of sun.
fn step_ms(span_ms: u64) -> u64 {
    span_ms.clamp(MIN_STEP_MS.min(span_ms.max(1)), MAX_STEP_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-06-21 00:00 UTC.
    const SOLSTICE_MS: u64 = 1_782_000_000_000;
    /// 2026-12-03 00:00 UTC.
    const DECEMBER_MS: u64 = 1_796_256_000_000;
    const HOUR_MS: u64 = 3_600_000;

    fn amsterdam() -> Site {
        Site::new(52.37, 4.89).expect("valid")
    }

    #[test]
    fn sites_outside_the_globe_are_refused() {
        assert!(Site::new(90.1, 0.0).is_none());
        assert!(Site::new(0.0, -180.5).is_none());
        assert!(Site::new(f64::NAN, 0.0).is_none());
        assert!(Site::new(-90.0, 180.0).is_some());
    }

    #[test]
    fn the_sun_is_where_the_almanac_says() {
        let site = amsterdam();
        // Solar noon in Amsterdam at the June solstice ≈ 11:42 UTC, elevation 90 − 52.37
        // + 23.44 = 61.07°; midnight is 14.2° below the horizon.
        let noon = site
            .sun_elevation_deg(SOLSTICE_MS + 11 * HOUR_MS + 42 * 60_000)
            .expect("in range");
        assert!((noon - 61.07).abs() < 0.1, "{noon}");
        let midnight = site
            .sun_elevation_deg(SOLSTICE_MS - 18 * 60_000)
            .expect("in range");
        assert!((midnight + 14.2).abs() < 0.3, "{midnight}");
        // 3 December: sunrise ≈ 07:35 UTC.
        let before = site
            .sun_elevation_deg(DECEMBER_MS + 7 * HOUR_MS)
            .expect("ok");
        let after = site
            .sun_elevation_deg(DECEMBER_MS + 9 * HOUR_MS)
            .expect("ok");
        assert!(before < 0.0 && after > 0.0, "{before} {after}");
        // Outside Grena3's 2010–2110, SPA answers: 1970-01-01 00:00 UTC is deep night.
        let epoch = site.sun_elevation_deg(0).expect("SPA covers 1970");
        assert!(epoch < -50.0, "{epoch}");
    }

    #[test]
    fn the_irradiance_bound_holds_over_clear_sky_models_and_is_zero_at_night() {
        // Haurwitz clear-sky GHI (what the simulator replays) stays under the bound at
        // every elevation, and the bound never exceeds what reaches the ground at AM 1.
        for tenth in 1..=900 {
            let e = f64::from(tenth) / 10.0;
            let cos_z = e.to_radians().sin();
            let haurwitz = 1098.0 * cos_z * (-0.059 / cos_z).exp();
            assert!(irradiance_bound_w_m2(e) >= haurwitz, "at {e}°");
            assert!(irradiance_bound_w_m2(e) <= 1_150.0, "at {e}°");
        }
        assert_eq!(irradiance_bound_w_m2(-3.0), 0.0);
        assert_eq!(irradiance_bound_w_m2(-1.0), TWILIGHT_W_M2);
        assert_eq!(irradiance_bound_w_m2(f64::NAN), 0.0);
    }

    #[test]
    fn a_day_is_bounded_well_below_nameplate_around_the_clock() {
        let site = amsterdam();
        let day = |start: u64| {
            site.energy_bound_wh(1_000, start, start + 24 * HOUR_MS, 0, 135)
                .expect("in range")
        };
        let june = day(site.solar_day_start_ms(site.solar_day(SOLSTICE_MS + 12 * HOUR_MS)));
        let december = day(site.solar_day_start_ms(site.solar_day(DECEMBER_MS + 12 * HOUR_MS)));
        // 1 kWp: 1.35 × 24 h = 32.4 kWh is what the capacity rule alone allows.
        assert!((10_000.0..16_000.0).contains(&june), "{june}");
        assert!((2_000.0..5_000.0).contains(&december), "{december}");
        assert!(
            site.dark_throughout(DECEMBER_MS - 2 * HOUR_MS, DECEMBER_MS + 5 * HOUR_MS)
                == Some(true)
        );
        assert_eq!(
            site.dark_throughout(DECEMBER_MS + 11 * HOUR_MS, DECEMBER_MS + 12 * HOUR_MS),
            Some(false)
        );
    }

    #[test]
    fn solar_days_split_at_local_midnight() {
        let site = amsterdam();
        let noon = SOLSTICE_MS + 12 * HOUR_MS;
        let day = site.solar_day(noon);
        let start = site.solar_day_start_ms(day);
        assert_eq!(site.solar_day(start), day);
        assert_eq!(site.solar_day(start - 1), day - 1);
        // Local mean midnight at 4.89° E is 23:40:26 UTC.
        assert_eq!(start, SOLSTICE_MS - 1_173_600);
        let west = Site::new(0.0, -179.0).expect("valid");
        assert_eq!(west.solar_day(west.solar_day_start_ms(7)), 7);
    }

    #[test]
    fn short_slots_integrate_finely_and_long_gaps_are_capped() {
        assert_eq!(step_ms(10_000), 10_000);
        assert_eq!(step_ms(120_000), 120_000);
        assert_eq!(step_ms(3_600_000), 300_000);
        assert_eq!(step_ms(0), 1);
        let site = amsterdam();
        let month = site
            .energy_bound_wh(1_000, SOLSTICE_MS, SOLSTICE_MS + 30 * 24 * HOUR_MS, 0, 135)
            .expect("in range");
        let fortnight = site
            .energy_bound_wh(
                1_000,
                SOLSTICE_MS + 16 * 24 * HOUR_MS,
                SOLSTICE_MS + 30 * 24 * HOUR_MS,
                0,
                135,
            )
            .expect("in range");
        assert!((month - fortnight).abs() < 1.0, "{month} vs {fortnight}");
    }
}
