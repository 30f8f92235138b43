//! Locations as H3 cells, distances between them, and free-space path loss.

use h3o::{CellIndex, LatLng, Resolution};
use thiserror::Error;

/// Resolution asserted hotspot locations are stored at. Helium asserts res-12 cells
/// (about 300 m² each), fine enough for the res-11 distance rule.
pub const LOCATION_RESOLUTION: u8 = 12;

/// Speed of light as Helium iot_verifier's FSPL uses it: 2.998 × 10^8 m/s.
const SPEED_OF_LIGHT_M_S: f64 = 2.998e8;

/// Why a location could not be turned into a cell.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GeoError {
    /// Latitude or longitude is not a finite number in range.
    #[error("latitude/longitude ({lat}, {lon}) is not a valid coordinate")]
    InvalidCoordinate {
        /// Latitude as given, degrees.
        lat: String,
        /// Longitude as given, degrees.
        lon: String,
    },
    /// The resolution is not 0–15.
    #[error("H3 resolution {0} is not 0-15")]
    InvalidResolution(u8),
}

/// The H3 cell containing (`lat`, `lon`) in degrees at `resolution`.
pub fn cell_at(lat: f64, lon: f64, resolution: u8) -> Result<CellIndex, GeoError> {
    let res =
        Resolution::try_from(resolution).map_err(|_| GeoError::InvalidResolution(resolution))?;
    let invalid = || GeoError::InvalidCoordinate {
        lat: lat.to_string(),
        lon: lon.to_string(),
    };
    // h3o accepts any finite pair (it wraps); an asserted location out of range is a typo.
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(invalid());
    }
    let point = LatLng::new(lat, lon).map_err(|_| invalid())?;
    Ok(point.to_cell(res))
}

/// Grid distance between the parents of `a` and `b` at `resolution`, or `None` when H3
/// cannot measure it (cells too far apart, or on either side of a pentagon's distortion,
/// which can happen a few cells apart). A cell coarser than `resolution` is measured at
/// its own resolution.
pub fn cell_distance(a: CellIndex, b: CellIndex, resolution: u8) -> Option<u32> {
    let res = Resolution::try_from(resolution).ok()?;
    let coarsest = res.min(a.resolution()).min(b.resolution());
    let (pa, pb) = (a.parent(coarsest)?, b.parent(coarsest)?);
    pa.grid_distance(pb)
        .ok()
        .and_then(|d| u32::try_from(d).ok())
}

/// Great-circle distance between the centres of two cells, in metres.
pub fn great_circle_m(a: CellIndex, b: CellIndex) -> f64 {
    LatLng::from(a).distance_m(LatLng::from(b))
}

/// About how far apart, in metres, two cells `cells` grid steps apart at `resolution` are:
/// adjacent hexagon centres sit √3 mean edge lengths apart. `None` for a resolution
/// outside 0–15. Used to spot rule sets whose minimum distance exceeds their maximum.
pub fn grid_span_m(cells: u32, resolution: u8) -> Option<f64> {
    let res = Resolution::try_from(resolution).ok()?;
    Some(f64::from(cells) * 3f64.sqrt() * res.edge_length_m())
}

/// Free-space path loss in dB over `distance_m` at `frequency_hz`:
/// `20·log10(4π·d·f/c)` (Helium iot_verifier, c = 2.998e8). Distances under 1 m are taken
/// as 1 m, so co-located cells give a finite loss instead of −∞.
pub fn free_space_path_loss_db(distance_m: f64, frequency_hz: f64) -> f64 {
    let d = distance_m.max(1.0);
    20.0 * (4.0 * std::f64::consts::PI * d * frequency_hz / SPEED_OF_LIGHT_M_S).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fspl_matches_the_textbook_value() {
        // 1 km at 868 MHz: 91.2 dB (20log10(d_km) + 20log10(f_MHz) + 32.44).
        let loss = free_space_path_loss_db(1_000.0, 868e6);
        assert!((loss - 91.2).abs() < 0.1, "{loss}");
    }

    #[test]
    fn distances_between_cells() {
        let a = cell_at(52.3700, 4.8900, 12).expect("valid");
        let b = cell_at(52.3790, 4.8900, 12).expect("valid"); // ~1 km north
        let d = great_circle_m(a, b);
        assert!((900.0..1_100.0).contains(&d), "{d}");
        let cells = cell_distance(a, b, 11).expect("measurable");
        assert!(cells > 8, "{cells}");
        assert_eq!(cell_distance(a, a, 11), Some(0));
        assert!(cell_at(91.0, 0.0, 12).is_err());
        assert!(cell_at(0.0, 0.0, 16).is_err());
    }

    #[test]
    fn helium_minimum_distance_spans_about_400_metres() {
        // H3 v4's mean res-11 edge is 28.66 m: 8 × √3 × 28.66 ≈ 397 m.
        let span = grid_span_m(8, 11).expect("valid resolution");
        assert!((390.0..405.0).contains(&span), "{span}");
        assert_eq!(grid_span_m(0, 11), Some(0.0));
        assert_eq!(grid_span_m(1, 16), None);
    }
}
