//! RewardEpoch: the immutable, Merkle-committed record of one closed epoch.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One closed epoch of one policy. Written once by the reward controller (its creation is
/// the commit point) and never changed; per-node amounts live in node status and the
/// operator's manifest endpoint, committed to by `merkleRoot`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "depin.dev",
    version = "v1alpha1",
    kind = "RewardEpoch",
    plural = "rewardepochs",
    shortname = "re",
    category = "depin",
    doc = "An immutable record of one closed reward epoch.",
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.policy"),
    printcolumn(name = "Epoch", type_ = "integer", json_path = ".spec.epoch"),
    printcolumn(name = "Emission", type_ = "string", json_path = ".spec.emission"),
    printcolumn(name = "Nodes", type_ = "integer", json_path = ".spec.nodeCount"),
    printcolumn(
        name = "Root",
        type_ = "string",
        json_path = ".spec.merkleRoot",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RewardEpochSpec {
    /// RewardPolicy this epoch was computed under.
    pub policy: String,
    /// Epoch number (0-based since the policy's genesis).
    pub epoch: u64,
    /// Window start, unix seconds (inclusive).
    pub window_start: u64,
    /// Window end, unix seconds (exclusive).
    pub window_end: u64,
    /// Base units scheduled for this epoch.
    #[schemars(schema_with = "crate::schema::amount")]
    pub emission: String,
    /// Data credits burned for usage in this epoch (from the policy's burn records).
    #[serde(default = "zero")]
    #[schemars(schema_with = "crate::schema::amount")]
    pub data_credits_burned: String,
    /// Base units burned for usage in this epoch (`dataCreditsBurned` at the fixed price).
    #[serde(default = "zero")]
    #[schemars(schema_with = "crate::schema::amount")]
    pub burn: String,
    /// Base units re-minted on top of the schedule (burn-and-mint).
    #[serde(default = "zero")]
    #[schemars(schema_with = "crate::schema::amount")]
    pub remint: String,
    /// Per-pool totals.
    #[serde(default)]
    pub pools: Vec<PoolTotal>,
    /// Rounding dust plus pools nobody earned from, in base units.
    #[schemars(schema_with = "crate::schema::amount")]
    pub unallocated: String,
    /// Nodes paid in this epoch.
    pub node_count: u64,
    /// Hex BLAKE3 Merkle root over (epoch, node id, cumulative total) leaves sorted by node id.
    pub merkle_root: String,
}

fn zero() -> String {
    "0".to_string()
}

/// One pool's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolTotal {
    /// Pool name (hotspot, storage, gpu, meter, or a sub-pool such as hotspot.beacon).
    pub pool: String,
    /// Base units in the pool.
    #[schemars(schema_with = "crate::schema::amount")]
    pub amount: String,
    /// Base units actually paid to nodes.
    #[schemars(schema_with = "crate::schema::amount")]
    pub paid: String,
    /// Sum of shares, decimal string.
    pub total_shares: String,
    /// Base units per share, decimal string (informational; payouts use integer division).
    pub reward_per_share: String,
}
