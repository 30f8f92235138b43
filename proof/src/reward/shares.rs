//! Verified work → shares. One tally is one node's verified work for the epoch (the
//! operator may pass several per node; they add up).

use super::decimal::Decimal;
use super::epoch::EpochError;
use super::policy::RewardPolicy;
use super::pool::{NodeKind, Pool};

/// Longest node id: Kubernetes `namespace/name` is at most 63 + 1 + 253 bytes, with room
/// for a kind prefix.
pub const MAX_NODE_ID_LEN: usize = 512;

/// One node's verified work in one epoch, by kind. Decimal fields hold at most 18 places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Hotspot proof of coverage: HIP-15 reward units already multiplied by the node's
    /// HIP-17 hex-density scale, summed over the epoch's valid beacons and witnesses
    /// (research §1(b): each share = hex_scale × reward_unit, beacon and witness summed
    /// separately).
    Hotspot {
        /// Scaled beacon reward units.
        beacon_units: Decimal,
        /// Scaled witness reward units.
        witness_units: Decimal,
    },
    /// Storage: shares = max(0, proven − 2 × missed − 1 × faulted) byte-periods, in GiB,
    /// × reputation; 0 when disqualified. A byte-period is one byte proven (or missed, or
    /// declared faulty) in one proving period, so the same capacity earns the same shares
    /// whatever its sector size, and declared capacity never enters.
    Storage {
        /// Σ over passed sector-deadlines of the sector's size in bytes.
        proven_byte_periods: u128,
        /// Σ over missed sector-deadlines (no passing proof, no declared fault).
        missed_byte_periods: u128,
        /// Σ over sector-deadlines the node declared faulty before the cutoff.
        faulted_byte_periods: u128,
        /// Reputation score in [0, 1] (Storj-style α/(α+β)) at the epoch's last write.
        reputation: Decimal,
        /// Below the disqualification threshold: earns nothing.
        disqualified: bool,
    },
    /// GPU: shares = the policy's weight for the verified throughput class × availability.
    Gpu {
        /// Throughput class the verifier assigned (a `gpuClasses[].name` of the policy).
        class: String,
        /// Fraction of the epoch's challenges answered within the class deadline, in [0, 1].
        availability: Decimal,
    },
    /// Meter: shares = verified kWh.
    Meter {
        /// Verified energy in Wh (integer, as the meter's cumulative register counts).
        verified_wh: u64,
    },
}

impl Work {
    /// Storage work with nothing missed or faulted: `proven_byte_periods` at `reputation`.
    pub fn proven_storage(proven_byte_periods: u128, reputation: Decimal) -> Self {
        Work::Storage {
            proven_byte_periods,
            missed_byte_periods: 0,
            faulted_byte_periods: 0,
            reputation,
            disqualified: false,
        }
    }

    /// The node kind this work is for.
    pub fn kind(&self) -> NodeKind {
        match self {
            Work::Hotspot { .. } => NodeKind::Hotspot,
            Work::Storage { .. } => NodeKind::Storage,
            Work::Gpu { .. } => NodeKind::Gpu,
            Work::Meter { .. } => NodeKind::Meter,
        }
    }
}

/// One node's verified work for an epoch, the unit `close_epoch` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTally {
    /// Stable node id (e.g. `namespace/name`): 1 to 512 printable ASCII bytes, no spaces.
    pub node: String,
    /// What the node proved.
    pub work: Work,
    /// Extra per-node multiplier (location trust, QoS); 1 when none applies.
    pub multiplier: Decimal,
}

impl NodeTally {
    /// A tally with multiplier 1.
    pub fn new(node: impl Into<String>, work: Work) -> Self {
        Self {
            node: node.into(),
            work,
            multiplier: Decimal::ONE,
        }
    }
}

/// Whether `node` can be a manifest line and a leaf: printable ASCII without spaces, so
/// the line format needs no escaping.
pub(crate) fn check_node_id(node: &str) -> Result<(), EpochError> {
    let ok =
        (1..=MAX_NODE_ID_LEN).contains(&node.len()) && node.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(EpochError::BadNodeId(node.to_owned()));
    }
    Ok(())
}

/// The (pool, shares) a tally earns; at most two pools (hotspot beacon and witness), the
/// second entry's shares are zero otherwise. Every product is floored to 18 places, in the
/// order the [`Work`] docs list the factors, then by the tally's multiplier.
pub(crate) fn tally_shares(
    policy: &RewardPolicy,
    tally: &NodeTally,
) -> Result<[(Pool, Decimal); 2], EpochError> {
    let node = tally.node.as_str();
    let overflow = || EpochError::ShareOverflow(node.to_owned());
    let scaled = |units: Decimal| units.checked_mul(tally.multiplier).ok_or_else(overflow);
    let none = (Pool::Meter, Decimal::ZERO);
    match &tally.work {
        Work::Hotspot {
            beacon_units,
            witness_units,
        } => match policy.hotspot_split {
            Some(_) => Ok([
                (Pool::HotspotBeacon, scaled(*beacon_units)?),
                (Pool::HotspotWitness, scaled(*witness_units)?),
            ]),
            None => {
                let units = beacon_units.checked_add(*witness_units);
                Ok([(Pool::Hotspot, scaled(units.ok_or_else(overflow)?)?), none])
            }
        },
        Work::Storage {
            proven_byte_periods,
            missed_byte_periods,
            faulted_byte_periods,
            reputation,
            disqualified,
        } => {
            at_most_one(node, "reputation", *reputation)?;
            if *disqualified {
                return Ok([(Pool::Storage, Decimal::ZERO), none]);
            }
            let net = net_byte_periods(
                *proven_byte_periods,
                *missed_byte_periods,
                *faulted_byte_periods,
            );
            let units = Decimal::from_ratio(net, GIB)
                .and_then(|gib| gib.checked_mul(*reputation))
                .ok_or_else(overflow)?;
            Ok([(Pool::Storage, scaled(units)?), none])
        }
        Work::Gpu {
            class,
            availability,
        } => {
            at_most_one(node, "availability", *availability)?;
            let weight =
                policy
                    .gpu_classes
                    .get(class)
                    .ok_or_else(|| EpochError::UnknownGpuClass {
                        node: node.to_owned(),
                        class: class.clone(),
                    })?;
            let units = weight.checked_mul(*availability).ok_or_else(overflow)?;
            Ok([(Pool::Gpu, scaled(units)?), none])
        }
        Work::Meter { verified_wh } => {
            // Wh / 1000 is exact in 18 places.
            let kwh = Decimal::from_ratio((*verified_wh).into(), 1000).ok_or_else(overflow)?;
            Ok([(Pool::Meter, scaled(kwh)?), none])
        }
    }
}

/// Bytes per GiB: storage shares are GiB-periods.
const GIB: u128 = 1 << 30;

/// Proving periods of a sector's earnings an undeclared miss costs. Filecoin spec-actors
/// v1 charged an undeclared fault BR(5 days) against BR(2.14 days) for a declared one (a
/// ratio of 2.3); with no pledge to slash, ours come out of the same epoch's proven
/// byte-periods, rounded to 2 : 1.
pub const MISSED_PENALTY_PERIODS: u128 = 2;
/// Proving periods of earnings a declared fault costs (see [`MISSED_PENALTY_PERIODS`]).
pub const FAULT_PENALTY_PERIODS: u128 = 1;

/// Proven byte-periods less the miss and fault penalties, floored at zero.
pub fn net_byte_periods(proven: u128, missed: u128, faulted: u128) -> u128 {
    let penalty = missed
        .saturating_mul(MISSED_PENALTY_PERIODS)
        .saturating_add(faulted.saturating_mul(FAULT_PENALTY_PERIODS));
    proven.saturating_sub(penalty)
}

fn at_most_one(node: &str, field: &'static str, value: Decimal) -> Result<(), EpochError> {
    if value > Decimal::ONE {
        return Err(EpochError::AboveOne {
            node: node.to_owned(),
            field,
            value,
        });
    }
    Ok(())
}
