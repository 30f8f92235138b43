//! A clear-sky PV curve: solar elevation from the NOAA approximations, irradiance from
//! the Haurwitz clear-sky model, and a small seeded ripple so two meters differ.

use std::f64::consts::PI;

/// Seconds per day.
const DAY_S: i64 = 86_400;

/// Cosine of the solar zenith angle at `unix_s` for (`lat`, `lon`) in degrees: NOAA
/// Global Monitoring Laboratory "General Solar Position Calculations" (fractional-year
/// series for declination and the equation of time). Negative at night.
pub fn cos_zenith(unix_s: f64, lat: f64, lon: f64) -> f64 {
    let days = (unix_s / DAY_S as f64).floor();
    let hour_utc = (unix_s - days * DAY_S as f64) / 3_600.0;
    let (year, day_of_year) = year_and_ordinal(days as i64);
    let year_days = if is_leap(year) { 366.0 } else { 365.0 };
    let g = 2.0 * PI / year_days * (day_of_year as f64 - 1.0 + (hour_utc - 12.0) / 24.0);
    let eqtime = 229.18
        * (0.000075 + 0.001868 * g.cos()
            - 0.032077 * g.sin()
            - 0.014615 * (2.0 * g).cos()
            - 0.040849 * (2.0 * g).sin());
    let decl = 0.006918 - 0.399912 * g.cos() + 0.070257 * g.sin() - 0.006758 * (2.0 * g).cos()
        + 0.000907 * (2.0 * g).sin()
        - 0.002697 * (3.0 * g).cos()
        + 0.00148 * (3.0 * g).sin();
    let true_solar_min = hour_utc * 60.0 + eqtime + 4.0 * lon;
    let hour_angle = (true_solar_min / 4.0 - 180.0).to_radians();
    let lat = lat.to_radians();
    lat.sin() * decl.sin() + lat.cos() * decl.cos() * hour_angle.cos()
}

/// Global horizontal irradiance under a clear sky, W/m²: Haurwitz (1945),
/// `1098 · cos z · exp(−0.059 / cos z)`; zero with the sun below the horizon.
pub fn clear_sky_ghi(cos_zenith: f64) -> f64 {
    if cos_zenith <= 0.0 {
        0.0
    } else {
        1098.0 * cos_zenith * (-0.059 / cos_zenith).exp()
    }
}

/// A PV installation's output under a clear sky, W: nameplate capacity at the 1000 W/m²
/// standard test irradiance, scaled by GHI, times a seeded ripple in [0.97, 1.0] that
/// changes once a minute (so the same seed replays the same curve). Never above
/// 1.04 × capacity (Haurwitz peaks at 1035 W/m²), well inside the verifier's 1.35.
pub fn pv_watts(capacity_w: f64, unix_s: f64, lat: f64, lon: f64, seed: u64) -> f64 {
    let ghi = clear_sky_ghi(cos_zenith(unix_s, lat, lon));
    capacity_w * ghi / 1000.0 * ripple(seed, (unix_s / 60.0).floor() as i64)
}

fn ripple(seed: u64, minute: i64) -> f64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"depin-sim/pv-ripple/v1");
    hasher
        .update(&seed.to_be_bytes())
        .update(&minute.to_be_bytes());
    let bytes = hasher.finalize();
    let word = u16::from_be_bytes([bytes.as_bytes()[0], bytes.as_bytes()[1]]);
    0.97 + 0.03 * f64::from(word) / f64::from(u16::MAX)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// (year, day of year from 1) for `days` since 1970-01-01 (Hinnant's civil_from_days).
fn year_and_ordinal(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_march = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_march + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let day = doy_march - (153 * mp + 2) / 5 + 1;
    let year = yoe + era * 400 + i64::from(month <= 2);
    const CUMULATIVE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap_shift = i64::from(month > 2 && is_leap(year));
    let ordinal = CUMULATIVE[(month - 1) as usize] + day + leap_shift;
    (year, ordinal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-06-21 00:00 UTC.
    const SOLSTICE: f64 = 1_718_928_000.0;

    #[test]
    fn calendar_is_right() {
        assert_eq!(year_and_ordinal(0), (1970, 1));
        assert_eq!(year_and_ordinal(19_723), (2024, 1)); // 2024-01-01
        assert_eq!(year_and_ordinal(19_723 + 365), (2024, 366)); // 2024-12-31
        assert_eq!(year_and_ordinal((SOLSTICE / 86_400.0) as i64), (2024, 173));
    }

    #[test]
    fn amsterdam_noon_is_bright_and_midnight_dark() {
        let (lat, lon) = (52.37, 4.89);
        // Solar noon in Amsterdam ≈ 11:42 UTC in June; elevation ≈ 61°.
        let noon = cos_zenith(SOLSTICE + 11.7 * 3600.0, lat, lon);
        assert!((noon.acos().to_degrees() - 29.0).abs() < 1.5, "{noon}");
        assert!(cos_zenith(SOLSTICE, lat, lon) < 0.0);
        let w = pv_watts(5_000.0, SOLSTICE + 11.7 * 3600.0, lat, lon, 1);
        assert!((3_800.0..5_200.0).contains(&w), "{w}");
        assert_eq!(pv_watts(5_000.0, SOLSTICE, lat, lon, 1), 0.0);
        let again = pv_watts(5_000.0, SOLSTICE + 11.7 * 3600.0, lat, lon, 1);
        assert_eq!(w, again, "seeded: replays exactly");
        assert_ne!(w, pv_watts(5_000.0, SOLSTICE + 11.7 * 3600.0, lat, lon, 2));
    }
}
