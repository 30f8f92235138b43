//! Hex-density scaling (HIP-17, re-tuned by HIP-104; Helium iot_verifier `hex_density.rs`,
//! research §1(b)): hotspots stacked in one area share that area's reward instead of each
//! earning in full, so a fleet gains nothing by piling radios into one cell.

use std::collections::BTreeMap;

use h3o::{CellIndex, Resolution};

use super::PocParams;
use crate::reward::Decimal;

/// Resolution hotspots are counted at (Helium HIP-17: res 11).
const DENSITY_BASE_RES: Resolution = Resolution::Eleven;

/// Helium iot_verifier `DEFAULT_TX_SCALE`: 0.2, for a hotspot missing from the density map.
pub const DEFAULT_TX_SCALE: Decimal = Decimal::from_units(200_000_000_000_000_000);

/// One resolution's HIP-17 parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DensityLevel {
    /// H3 resolution the rule applies at.
    pub resolution: u8,
    /// `N`: occupied neighbours (the cell itself included) before the limit starts to grow.
    pub neighbours: u32,
    /// Density target: a cell with at least this many hotspots counts as occupied.
    pub target: u32,
    /// Hard cap on the clipped count.
    pub max: u32,
}

/// HIP-104 density table (N, target, max) per resolution, res 10 down to 4.
pub const HIP104_DENSITY: [DensityLevel; 7] = [
    level(10, 2, 1, 1),
    level(9, 2, 1, 1),
    level(8, 2, 1, 1),
    level(7, 4, 5, 10),
    level(6, 4, 25, 50),
    level(5, 4, 100, 200),
    level(4, 2, 500, 1000),
];

const fn level(resolution: u8, neighbours: u32, target: u32, max: u32) -> DensityLevel {
    DensityLevel {
        resolution,
        neighbours,
        target,
        max,
    }
}

/// Whether a hotspot whose last beacon was at `last_beacon_ms` counts toward density at
/// `now_ms` (HIP-17 interactivity limit, 60 h by default).
pub fn is_active(last_beacon_ms: Option<u64>, now_ms: u64, params: &PocParams) -> bool {
    last_beacon_ms.is_some_and(|last| now_ms.saturating_sub(last) <= params.density_activity_ms)
}

/// Clipped and unclipped counts of one resolution's cells.
struct Counts {
    resolution: Resolution,
    unclipped: BTreeMap<CellIndex, u64>,
    clipped: BTreeMap<CellIndex, u64>,
}

/// The hex scale of every active hotspot: `Π clipped(parent)/unclipped(parent)` over the
/// levels (finest first). At each level a cell's unclipped count is the sum of its
/// children's clipped counts; its limit is `min(max, target × max(occupied − N + 1, 1))`
/// where `occupied` counts cells of its k=1 disk whose *unclipped* count reaches the
/// target (using unclipped counts keeps the rule free of circularity); clipped is
/// `min(unclipped, limit)`. Keys are whatever identifies a hotspot to the caller.
pub fn hex_scales<K: Ord + Clone>(
    hotspots: &[(K, CellIndex)],
    levels: &[DensityLevel],
) -> BTreeMap<K, Decimal> {
    let mut base = BTreeMap::new();
    for (_, cell) in hotspots {
        *base
            .entry(parent_at(*cell, DENSITY_BASE_RES))
            .or_insert(0u64) += 1;
    }
    let mut sorted: Vec<DensityLevel> = levels.to_vec();
    sorted.sort_by_key(|level| std::cmp::Reverse(level.resolution));
    let mut tiers: Vec<Counts> = Vec::with_capacity(sorted.len());
    let mut children = base;
    for level in sorted {
        let Ok(resolution) = Resolution::try_from(level.resolution) else {
            continue;
        };
        let counts = clip_level(&children, resolution, &level);
        children = counts.clipped.clone();
        tiers.push(counts);
    }
    hotspots
        .iter()
        .map(|(key, cell)| {
            let scale = tiers.iter().fold(Decimal::ONE, |acc, counts| {
                let parent = parent_at(*cell, counts.resolution);
                let unclipped = counts.unclipped.get(&parent).copied().unwrap_or(0);
                let clipped = counts.clipped.get(&parent).copied().unwrap_or(0);
                Decimal::from_ratio(u128::from(clipped), u128::from(unclipped))
                    .and_then(|ratio| acc.checked_mul(ratio))
                    // An empty parent cannot hold this hotspot; keep the product unchanged.
                    .unwrap_or(acc)
            });
            (key.clone(), scale)
        })
        .collect()
}

fn parent_at(cell: CellIndex, resolution: Resolution) -> CellIndex {
    // A cell coarser than the target resolution is its own best approximation.
    cell.parent(resolution).unwrap_or(cell)
}

fn clip_level(
    children: &BTreeMap<CellIndex, u64>,
    resolution: Resolution,
    level: &DensityLevel,
) -> Counts {
    let mut unclipped = BTreeMap::new();
    for (child, count) in children {
        *unclipped
            .entry(parent_at(*child, resolution))
            .or_insert(0u64) += count;
    }
    let target = u64::from(level.target);
    let clipped = unclipped
        .iter()
        .map(|(cell, count)| {
            let occupied = cell
                .grid_disk::<Vec<_>>(1)
                .into_iter()
                .filter(|c| unclipped.get(c).is_some_and(|n| *n >= target))
                .count() as u64;
            let steps = (occupied + 1)
                .saturating_sub(u64::from(level.neighbours))
                .max(1);
            let limit = u64::from(level.max).min(target.saturating_mul(steps));
            (*cell, (*count).min(limit))
        })
        .collect();
    Counts {
        resolution,
        unclipped,
        clipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poc::cell_at;

    #[test]
    fn stacked_hotspots_share_their_cell() {
        let here = cell_at(52.3700, 4.8900, 12).expect("valid");
        let far = cell_at(52.3880, 4.8900, 12).expect("valid");
        let scales = hex_scales(&[("a", here), ("b", far)], &HIP104_DENSITY);
        assert_eq!(scales["a"], Decimal::ONE);
        assert_eq!(scales["b"], Decimal::ONE);
        let half = Decimal::parse("0.5").expect("dec");
        let scales = hex_scales(&[("a", here), ("b", here), ("c", far)], &HIP104_DENSITY);
        assert_eq!(
            (scales["a"], scales["b"], scales["c"]),
            (half, half, Decimal::ONE)
        );
        assert_eq!(DEFAULT_TX_SCALE, Decimal::parse("0.2").expect("dec"));
    }
}
