//! Radio physics of the medium: path loss, deterministic log-normal shadowing, LoRa
//! sensitivity. Pure functions, so the medium's decisions are reproducible from its seed.

use depin_proof::poc::free_space_path_loss_db;

/// Thermal noise density at 290 K, dBm/Hz.
const THERMAL_NOISE_DBM_HZ: f64 = -174.0;
/// Receiver noise figure, dB (SX1301/SX1302 class concentrators are about 6 dB).
const NOISE_FIGURE_DB: f64 = 6.0;
/// Distance up to which propagation is taken as free space, metres.
const FREE_SPACE_RANGE_M: f64 = 100.0;

/// How signals fade beyond free space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Propagation {
    /// Log-distance path-loss exponent past [`FREE_SPACE_RANGE_M`] (2 = free space;
    /// 2.7–3.5 suburban to urban).
    pub path_loss_exponent: f64,
    /// Standard deviation of log-normal shadowing, dB (4–8 dB is typical outdoors).
    pub shadowing_sigma_db: f64,
}

impl Default for Propagation {
    fn default() -> Self {
        Self {
            path_loss_exponent: 2.9,
            shadowing_sigma_db: 6.0,
        }
    }
}

/// Path loss in dB over `distance_m` at `frequency_hz`: free space, plus the log-distance
/// excess past 100 m, plus `shadow_db`; never less than free space, because no
/// obstruction makes a signal stronger than free space allows (so an honest witness never
/// breaks the verifier's free-space RSSI bound).
pub fn path_loss_db(distance_m: f64, frequency_hz: f64, shadow_db: f64, p: &Propagation) -> f64 {
    let free = free_space_path_loss_db(distance_m, frequency_hz);
    let excess = if distance_m > FREE_SPACE_RANGE_M {
        10.0 * (p.path_loss_exponent - 2.0) * (distance_m / FREE_SPACE_RANGE_M).log10()
    } else {
        0.0
    };
    free + (excess + shadow_db).max(0.0)
}

/// Noise floor for `bandwidth_hz`, dBm.
pub fn noise_floor_dbm(bandwidth_hz: f64) -> f64 {
    THERMAL_NOISE_DBM_HZ + 10.0 * bandwidth_hz.max(1.0).log10() + NOISE_FIGURE_DB
}

/// Lowest SNR a LoRa demodulator recovers at spreading factor `sf`, dB (Semtech SX1276
/// datasheet, Table 13: −7.5 dB at SF7, 2.5 dB lower per step, −20 dB at SF12).
pub fn demod_snr_limit_db(sf: u8) -> f64 {
    -7.5 - 2.5 * f64::from(sf.clamp(7, 12) - 7)
}

/// Sensitivity at `sf` and `bandwidth_hz`, dBm (−129.5 dBm at SF9/125 kHz).
pub fn sensitivity_dbm(sf: u8, bandwidth_hz: f64) -> f64 {
    noise_floor_dbm(bandwidth_hz) + demod_snr_limit_db(sf)
}

/// A standard normal draw fixed by `key` (Box–Muller over two BLAKE3-derived uniforms), so
/// the same beacon between the same pair always fades the same way.
pub fn seeded_normal(key: &[u8]) -> f64 {
    let hash = blake3::hash(key);
    let bytes = hash.as_bytes();
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i..i + 8]);
        u64::from_be_bytes(w)
    };
    // 53-bit uniforms in (0, 1]: never 0, so the logarithm stays finite.
    let u1 = ((word(0) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (word(8) >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitivity_matches_the_datasheet() {
        assert!((sensitivity_dbm(9, 125_000.0) - (-129.5)).abs() < 0.1);
        assert!((sensitivity_dbm(12, 125_000.0) - (-137.0)).abs() < 0.1);
    }

    #[test]
    fn loss_is_never_below_free_space() {
        let p = Propagation::default();
        for shadow in [-30.0, -5.0, 0.0, 5.0] {
            for d in [10.0, 500.0, 5_000.0] {
                let loss = path_loss_db(d, 868e6, shadow, &p);
                assert!(loss >= free_space_path_loss_db(d, 868e6) - 1e-9);
            }
        }
        assert!(path_loss_db(5_000.0, 868e6, 0.0, &p) > path_loss_db(1_000.0, 868e6, 0.0, &p));
    }

    #[test]
    fn shadowing_is_seeded_and_roughly_normal() {
        assert_eq!(seeded_normal(b"a"), seeded_normal(b"a"));
        let draws: Vec<f64> = (0u32..4_000)
            .map(|i| seeded_normal(&i.to_be_bytes()))
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!(mean.abs() < 0.06 && (var - 1.0).abs() < 0.1, "{mean} {var}");
    }
}
