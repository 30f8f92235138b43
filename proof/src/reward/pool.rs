//! Pools: which node kind (or hotspot sub-pool) a share of the epoch's tokens belongs to,
//! and the integer arithmetic that splits an amount by weight or by shares.

use super::decimal::Decimal;
use super::wide::mul_div_floor;

/// The four node kinds a policy rewards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    /// HotspotGateway: beacons and witnesses (Helium-like PoC).
    Hotspot,
    /// StorageNode: proven sector capacity.
    Storage,
    /// GpuWorker: verified matmul throughput.
    Gpu,
    /// MeterBridge: verified energy readings.
    Meter,
}

impl NodeKind {
    /// Every kind, in manifest order.
    pub const ALL: [NodeKind; 4] = [
        NodeKind::Hotspot,
        NodeKind::Storage,
        NodeKind::Gpu,
        NodeKind::Meter,
    ];

    /// The lower-case name used in policy fields (`pools.hotspot`) and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            NodeKind::Hotspot => "hotspot",
            NodeKind::Storage => "storage",
            NodeKind::Gpu => "gpu",
            NodeKind::Meter => "meter",
        }
    }
}

/// A pool that pays nodes: one per kind, or the hotspot's beacon and witness sub-pools
/// when the policy splits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pool {
    /// The whole hotspot pool (no beacon/witness split configured).
    Hotspot,
    /// Hotspot sub-pool paid per hex-scaled beacon reward unit.
    HotspotBeacon,
    /// Hotspot sub-pool paid per hex-scaled witness reward unit.
    HotspotWitness,
    /// The storage pool.
    Storage,
    /// The GPU pool.
    Gpu,
    /// The meter pool.
    Meter,
}

impl Pool {
    /// How many pools exist; a per-pool array has this length.
    pub const COUNT: usize = 6;

    /// Every pool, in manifest order.
    pub const ALL: [Pool; Pool::COUNT] = [
        Pool::Hotspot,
        Pool::HotspotBeacon,
        Pool::HotspotWitness,
        Pool::Storage,
        Pool::Gpu,
        Pool::Meter,
    ];

    /// The name in RewardEpoch `pools[].pool` and the manifest (`hotspot.beacon`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Pool::Hotspot => "hotspot",
            Pool::HotspotBeacon => "hotspot.beacon",
            Pool::HotspotWitness => "hotspot.witness",
            Pool::Storage => "storage",
            Pool::Gpu => "gpu",
            Pool::Meter => "meter",
        }
    }

    /// Position in [`Pool::ALL`], for per-pool arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The node kind the pool pays.
    pub const fn kind(self) -> NodeKind {
        match self {
            Pool::Hotspot | Pool::HotspotBeacon | Pool::HotspotWitness => NodeKind::Hotspot,
            Pool::Storage => NodeKind::Storage,
            Pool::Gpu => NodeKind::Gpu,
            Pool::Meter => NodeKind::Meter,
        }
    }
}

/// `floor(amount × weight)`: the part of `amount` a pool of that weight receives. Weights
/// are at most 1, so the result never exceeds `amount`.
pub(crate) fn weighted_part(amount: u128, weight: Decimal) -> u128 {
    // A weight ≤ 1 makes the quotient ≤ amount, so it always fits; the fallback (for an
    // unvalidated weight above 1) pays nothing rather than more than exists.
    mul_div_floor(amount, weight.units(), Decimal::ONE.units())
        .filter(|part| *part <= amount)
        .unwrap_or(0)
}

/// `floor(pool × shares / total_shares)`: one node's payout from a pool. Zero when the pool
/// has no shares (its whole amount then stays unallocated).
pub fn payout(pool: u128, shares: u128, total_shares: u128) -> u128 {
    // shares ≤ total_shares makes the quotient ≤ pool, so it fits whenever the inputs are
    // consistent; inconsistent ones pay nothing instead of more than the pool.
    mul_div_floor(pool, shares, total_shares)
        .filter(|paid| *paid <= pool)
        .unwrap_or(0)
}

/// Splits `pool` over `shares` pro rata, floored; returns the payouts and the dust left,
/// or `None` when the shares' sum overflows. No shares: nothing paid, all of it dust.
pub fn split_by_shares(pool: u128, shares: &[u128]) -> Option<(Vec<u128>, u128)> {
    let total = shares
        .iter()
        .try_fold(0u128, |sum, s| sum.checked_add(*s))?;
    if total == 0 {
        return Some((vec![0; shares.len()], pool));
    }
    let paid: Vec<u128> = shares.iter().map(|s| payout(pool, *s, total)).collect();
    // Σ floor(pool·sᵢ/S) ≤ pool·Σsᵢ/S = pool, so this never underflows.
    let dust = pool - paid.iter().sum::<u128>();
    Some((paid, dust))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn names_and_indices_line_up() {
        for (i, pool) in Pool::ALL.into_iter().enumerate() {
            assert_eq!(pool.index(), i);
            assert!(pool.as_str().starts_with(pool.kind().as_str()));
        }
    }

    #[test]
    fn splits_floor_and_keep_the_dust() {
        assert_eq!(split_by_shares(10, &[1, 1, 1]), Some((vec![3, 3, 3], 1)));
        assert_eq!(split_by_shares(10, &[0, 0]), Some((vec![0, 0], 10)));
        assert_eq!(split_by_shares(10, &[]), Some((vec![], 10)));
        let halves = [u128::MAX / 2, u128::MAX / 2];
        assert_eq!(split_by_shares(u128::MAX, &halves).map(|s| s.1), Some(1));
        assert_eq!(split_by_shares(1, &[u128::MAX, 1]), None);
    }

    proptest! {
        #[test]
        fn split_conserves_and_ignores_scale(
            pool: u128,
            shares in proptest::collection::vec(0u128..u128::MAX / 64, 0..20),
        ) {
            let (paid, dust) = split_by_shares(pool, &shares).expect("sum fits");
            prop_assert_eq!(paid.iter().sum::<u128>() + dust, pool);
            let doubled: Vec<u128> = shares.iter().map(|s| s * 2).collect();
            prop_assert_eq!(split_by_shares(pool, &doubled), Some((paid.clone(), dust)));
            for (s, p) in shares.iter().zip(&paid) {
                prop_assert!(*s > 0 || *p == 0);
            }
        }
    }
}
