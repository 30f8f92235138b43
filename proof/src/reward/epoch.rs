//! Closing an epoch: emission and re-mint into pools, pools into node rewards, rewards into
//! cumulative totals under a Merkle root.

use std::collections::BTreeMap;

use thiserror::Error;

use super::claim::reward_leaf;
use super::decimal::{Decimal, ratio_to_string};
use super::emission::{EpochBurn, dc_burned_in};
use super::policy::RewardPolicy;
use super::pool::{Pool, payout, weighted_part};
use super::shares::{NodeTally, check_node_id, tally_shares};
use crate::merkle::{Hash, MerkleTree};

/// Lifetime reward per node id in base units: what the previous epoch's result left.
pub type CumulativeTotals = BTreeMap<String, u128>;

/// Why an epoch could not be closed. Nothing is half-closed: the caller retries with
/// corrected tallies.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EpochError {
    /// A node id is empty, longer than 512 bytes, or not printable ASCII without spaces.
    #[error("node id {0:?} must be 1 to 512 printable ASCII characters without spaces")]
    BadNodeId(String),
    /// A fraction in a tally (reputation, availability) is above 1.
    #[error("node {node}: {field} {value} is above 1")]
    AboveOne {
        /// The node.
        node: String,
        /// The tally field.
        field: &'static str,
        /// The value given.
        value: Decimal,
    },
    /// A GPU tally names a class the policy does not list.
    #[error("node {node}: GPU class {class:?} is not in the policy's gpuClasses")]
    UnknownGpuClass {
        /// The node.
        node: String,
        /// The class named.
        class: String,
    },
    /// A node's shares do not fit in 18-place fixed point (about 3.4 × 10^20).
    #[error("node {0}: shares overflow")]
    ShareOverflow(String),
    /// A pool's total shares do not fit in 18-place fixed point.
    #[error("pool {0}: total shares overflow")]
    PoolShareOverflow(&'static str),
    /// Emission plus re-mint does not fit in a u128.
    #[error("emission plus re-mint overflows")]
    SupplyOverflow,
    /// A node's cumulative total does not fit in a u128.
    #[error("node {0}: cumulative total overflows")]
    CumulativeOverflow(String),
}

impl EpochError {
    /// A stable CamelCase label for conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            EpochError::BadNodeId(_) => "BadNodeId",
            EpochError::AboveOne { .. } => "AboveOne",
            EpochError::UnknownGpuClass { .. } => "UnknownGpuClass",
            EpochError::ShareOverflow(_) => "ShareOverflow",
            EpochError::PoolShareOverflow(_) => "PoolShareOverflow",
            EpochError::SupplyOverflow => "SupplyOverflow",
            EpochError::CumulativeOverflow(_) => "CumulativeOverflow",
        }
    }
}

/// One pool's outcome (RewardEpoch `pools[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOutcome {
    /// Which pool.
    pub pool: Pool,
    /// Base units in the pool: floor((emission + remint) × weight).
    pub amount: u128,
    /// Base units paid to nodes; `amount − paid` is dust or an empty pool.
    pub paid: u128,
    /// Sum of the nodes' shares.
    pub total_shares: Decimal,
    /// `amount / total_shares` to 18 places, floored; informational, payouts divide
    /// exactly. "0" for an empty pool.
    pub reward_per_share: String,
}

/// One Merkle leaf: a node that has ever earned, with this epoch's reward and its total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTotal {
    /// Node id.
    pub node: String,
    /// Base units earned in this epoch (0 for a node that earned only earlier).
    pub reward: u128,
    /// Lifetime base units, the claimable amount the leaf commits to.
    pub cumulative: u128,
}

/// A closed epoch: everything the RewardEpoch object and the manifest publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochResult {
    /// The epoch number.
    pub epoch: u64,
    /// Scheduled emission (halving, max-supply cap).
    pub emission: u128,
    /// Base units burned (data credits at the fixed rate) during this epoch.
    pub burn: u128,
    /// Base units re-minted on top of the schedule.
    pub remint: u128,
    /// Paying pools in manifest order.
    pub pools: Vec<PoolOutcome>,
    /// Split dust, pool dust and empty pools: emission + remint − Σ rewards.
    pub unallocated: u128,
    /// Nodes paid a non-zero reward in this epoch.
    pub node_count: u64,
    /// Every node with a non-zero cumulative total, sorted by node id (byte order).
    pub nodes: Vec<NodeTotal>,
    /// Merkle root over the `nodes` leaves.
    pub merkle_root: Hash,
    pub(crate) tree: MerkleTree,
}

impl EpochResult {
    /// The cumulative totals to pass when closing the next epoch.
    pub fn cumulative_totals(&self) -> CumulativeTotals {
        self.nodes
            .iter()
            .map(|n| (n.node.clone(), n.cumulative))
            .collect()
    }

    /// Σ node rewards of this epoch.
    pub fn rewarded(&self) -> u128 {
        self.nodes.iter().map(|n| n.reward).sum()
    }
}

/// One node's shares in one pool (tallies of the same node and pool merged).
struct ShareEntry<'a> {
    node: &'a str,
    pool: Pool,
    shares: u128,
}

/// Closes `epoch`: `reward_i = Σ_pools floor(pool × shares_i / Σ shares)` (architecture
/// "Rewards"), with emission from the schedule, re-mint from `burns`, and cumulative
/// totals continued from `previous`. Deterministic: the order of `tallies` and `burns`
/// does not matter, and the same inputs give the same manifest bytes.
///
/// Leaves are every node whose cumulative total is non-zero, including nodes that earned
/// nothing this epoch, so the latest root alone lets any node claim its whole balance (a
/// claim pays `cumulative − already claimed`, research §5.4). A node with no verified work
/// and no earlier earnings is not a leaf: it has nothing to claim.
pub fn close_epoch(
    policy: &RewardPolicy,
    epoch: u64,
    tallies: &[NodeTally],
    previous: &CumulativeTotals,
    burns: &[EpochBurn],
) -> Result<EpochResult, EpochError> {
    let emission = policy.emission.scheduled(epoch);
    let (burn, remint) = match &policy.burn_and_mint {
        Some(bm) => (
            bm.dc_to_base_units(dc_burned_in(epoch, burns), policy.token_decimals),
            bm.remint(epoch, policy.token_decimals, burns),
        ),
        None => (0, 0),
    };
    let supply = emission
        .checked_add(remint)
        .ok_or(EpochError::SupplyOverflow)?;
    let entries = collect_shares(policy, tallies)?;
    let mut pools = fund_pools(policy, supply);
    let total_shares = sum_shares(&entries)?;
    let earned = pay_nodes(&entries, &pools, &total_shares);
    // Freed before the tree is built: at a million nodes this lowers the peak by ~100 MiB.
    drop(entries);
    for (pool, paid) in pools.iter_mut().zip(earned.paid) {
        pool.paid = paid;
        pool.total_shares = Decimal::from_units(total_shares[pool.pool.index()]);
        pool.reward_per_share = ratio_to_string(pool.amount, pool.total_shares);
    }
    let nodes = merge_cumulative(previous, &earned.rewards)?;
    let node_count = earned.rewards.len() as u64;
    drop(earned);
    let tree = MerkleTree::new(
        nodes
            .iter()
            .map(|n| reward_leaf(epoch, &n.node, n.cumulative))
            .collect(),
    );
    // Σ rewards ≤ Σ paid ≤ Σ amounts ≤ supply, so this cannot underflow.
    let unallocated = supply - pools.iter().map(|p| p.paid).sum::<u128>();
    Ok(EpochResult {
        epoch,
        emission,
        burn,
        remint,
        pools: pools.into_iter().filter(|p| policy.pays(p.pool)).collect(),
        unallocated,
        node_count,
        merkle_root: tree.root(),
        nodes,
        tree,
    })
}

impl RewardPolicy {
    /// Whether `pool` pays under this policy: the hotspot pool either whole or as its
    /// beacon and witness sub-pools, never both.
    pub fn pays(&self, pool: Pool) -> bool {
        match pool {
            Pool::Hotspot => self.hotspot_split.is_none(),
            Pool::HotspotBeacon | Pool::HotspotWitness => self.hotspot_split.is_some(),
            Pool::Storage | Pool::Gpu | Pool::Meter => true,
        }
    }
}

/// Shares per (node, pool), sorted by node id then pool, zero shares dropped.
fn collect_shares<'a>(
    policy: &RewardPolicy,
    tallies: &'a [NodeTally],
) -> Result<Vec<ShareEntry<'a>>, EpochError> {
    let mut entries = Vec::with_capacity(tallies.len());
    for tally in tallies {
        check_node_id(&tally.node)?;
        for (pool, shares) in tally_shares(policy, tally)? {
            if !shares.is_zero() {
                entries.push(ShareEntry {
                    node: &tally.node,
                    pool,
                    shares: shares.units(),
                });
            }
        }
    }
    entries.sort_unstable_by(|a, b| (a.node, a.pool).cmp(&(b.node, b.pool)));
    // Merge tallies of the same (node, pool) in place: a second vector of a million entries
    // would double this step's memory.
    let mut overflow = None;
    entries.dedup_by(|next, kept| {
        let same = (next.node, next.pool) == (kept.node, kept.pool);
        if same {
            match kept.shares.checked_add(next.shares) {
                Some(sum) => kept.shares = sum,
                None => overflow = Some(next.node),
            }
        }
        same
    });
    match overflow {
        Some(node) => Err(EpochError::ShareOverflow(node.to_owned())),
        None => Ok(entries),
    }
}

/// Every pool (paying or not, indexed by [`Pool::index`]) with its amount; a non-paying
/// pool gets 0. The split's flooring dust is whatever the amounts leave of `supply`.
fn fund_pools(policy: &RewardPolicy, supply: u128) -> Vec<PoolOutcome> {
    Pool::ALL
        .into_iter()
        .map(|pool| {
            let kind_amount = weighted_part(supply, policy.weights.of(pool.kind()));
            let amount = match (pool, &policy.hotspot_split) {
                _ if !policy.pays(pool) => 0,
                (Pool::HotspotBeacon, Some(split)) => weighted_part(kind_amount, split.beacon),
                (Pool::HotspotWitness, Some(split)) => weighted_part(kind_amount, split.witness),
                _ => kind_amount,
            };
            PoolOutcome {
                pool,
                amount,
                paid: 0,
                total_shares: Decimal::ZERO,
                reward_per_share: String::new(),
            }
        })
        .collect()
}

fn sum_shares(entries: &[ShareEntry<'_>]) -> Result<[u128; Pool::COUNT], EpochError> {
    let mut totals = [0u128; Pool::COUNT];
    for entry in entries {
        let total = &mut totals[entry.pool.index()];
        *total = total
            .checked_add(entry.shares)
            .ok_or(EpochError::PoolShareOverflow(entry.pool.as_str()))?;
    }
    Ok(totals)
}

/// What the pools paid: per node (sorted, non-zero only) and per pool.
struct Earned<'a> {
    rewards: Vec<(&'a str, u128)>,
    paid: [u128; Pool::COUNT],
}

fn pay_nodes<'a>(
    entries: &[ShareEntry<'a>],
    pools: &[PoolOutcome],
    total_shares: &[u128; Pool::COUNT],
) -> Earned<'a> {
    let mut earned = Earned {
        rewards: Vec::new(),
        paid: [0; Pool::COUNT],
    };
    // Entries are sorted by node, so each node's entries are adjacent.
    for group in entries.chunk_by(|a, b| a.node == b.node) {
        let mut reward = 0u128;
        for entry in group {
            let i = entry.pool.index();
            let part = payout(pools[i].amount, entry.shares, total_shares[i]);
            // Parts of one pool sum to at most its amount, so neither sum can overflow.
            earned.paid[i] += part;
            reward += part;
        }
        if reward > 0 {
            earned.rewards.push((group[0].node, reward));
        }
    }
    earned
}

/// Previous totals plus this epoch's rewards, as sorted leaves (non-zero totals only).
fn merge_cumulative(
    previous: &CumulativeTotals,
    rewards: &[(&str, u128)],
) -> Result<Vec<NodeTotal>, EpochError> {
    let mut out = Vec::with_capacity(previous.len() + rewards.len());
    let mut old = previous.iter().peekable();
    for &(node, reward) in rewards {
        // Carry over every earlier node that sorts before this one.
        while let Some((id, total)) = old.next_if(|(id, _)| id.as_str() < node) {
            push_total(&mut out, id, 0, *total)?;
        }
        let before = old
            .next_if(|(id, _)| id.as_str() == node)
            .map_or(0, |(_, t)| *t);
        let cumulative = before
            .checked_add(reward)
            .ok_or_else(|| EpochError::CumulativeOverflow(node.to_owned()))?;
        push_total(&mut out, node, reward, cumulative)?;
    }
    for (id, total) in old {
        push_total(&mut out, id, 0, *total)?;
    }
    Ok(out)
}

fn push_total(
    out: &mut Vec<NodeTotal>,
    node: &str,
    reward: u128,
    cumulative: u128,
) -> Result<(), EpochError> {
    if cumulative > 0 {
        // Earlier totals come from outside this call, so their ids are checked too: every
        // leaf must be a valid manifest line.
        check_node_id(node)?;
        out.push(NodeTotal {
            node: node.to_owned(),
            reward,
            cumulative,
        });
    }
    Ok(())
}
