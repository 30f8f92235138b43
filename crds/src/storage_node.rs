//! StorageNode: a drive that keeps sectors under a Merkle commitment and answers challenges.

use crate::common::{AgentSpec, IdentitySpec, NodeStatus, Payout, default_policy, node_spec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A storage provider: the operator runs an agent on a volume of `capacity` that commits
/// sectors and answers storage challenges on deadlines.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "depin.dev",
    version = "v1alpha1",
    kind = "StorageNode",
    namespaced,
    status = "NodeStatus",
    shortname = "sn",
    category = "depin",
    doc = "A storage node proving it keeps sectors on a persistent volume.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "Capacity", type_ = "string", json_path = ".spec.capacity"),
    printcolumn(name = "Key", type_ = "string", json_path = ".status.keyPrefix"),
    printcolumn(
        name = "Proofs",
        type_ = "integer",
        json_path = ".status.proofs.accepted"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct StorageNodeSpec {
    /// Size of the volume to prove (a Kubernetes quantity greater than zero, e.g. 100Gi).
    #[schemars(schema_with = "crate::schema::positive_quantity")]
    pub capacity: Quantity,
    /// Size of one sector: a power of two from 64Mi to 1Gi (default 1Gi); capacity is split into whole sectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_sector_size")]
    pub sector_size: Option<Quantity>,
    /// StorageClass of the volume; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Where rewards go.
    pub payout: Payout,
    /// Name of the cluster-scoped RewardPolicy that pays this node.
    #[serde(default = "default_policy")]
    pub reward_policy: String,
    /// Agent pod overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentSpec>,
    /// Identity key source and retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentitySpec>,
}
node_spec!(StorageNodeSpec);

/// Storage accounting of one epoch, beside the proven byte-periods in `workUnits`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageTally {
    /// Sector-deadlines missed: due, no passing proof and no declared fault by the close.
    #[serde(default)]
    pub missed: u64,
    /// Sector-deadlines the node declared faulty before the cutoff.
    #[serde(default)]
    pub faulted: u64,
    /// Σ sector bytes over missed sector-deadlines, as a decimal string.
    #[serde(default = "zero")]
    #[schemars(schema_with = "crate::schema::amount")]
    pub missed_byte_periods: String,
    /// Σ sector bytes over declared-fault sector-deadlines, as a decimal string.
    #[serde(default = "zero")]
    #[schemars(schema_with = "crate::schema::amount")]
    pub faulted_byte_periods: String,
    /// Sectors re-committed under a new root (reason SectorReset).
    #[serde(default)]
    pub resets: u64,
    /// Sectors terminated for staying faulty past the fault limit.
    #[serde(default)]
    pub terminated: u64,
    /// Reputation score α/(α+β) at the epoch's last write, six decimal places.
    #[serde(default = "one")]
    #[schemars(schema_with = "crate::schema::weight")]
    pub reputation: String,
    /// Whether the node was disqualified (score below the threshold) by then.
    #[serde(default)]
    pub disqualified: bool,
}

fn zero() -> String {
    "0".into()
}

fn one() -> String {
    "1".into()
}

/// The verifier's durable sector ledger of one node (field manager `depin-verifier`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageLedgerStatus {
    /// Accepted sectors by id.
    #[serde(default)]
    pub sectors: Vec<SectorStatus>,
    /// Audit reputation.
    #[serde(default)]
    pub reputation: ReputationStatus,
    /// Score fell below the disqualification threshold; final.
    #[serde(default)]
    pub disqualified: bool,
    /// Sectors proven at their last deadline (or not yet due).
    #[serde(default)]
    pub active_sectors: u64,
    /// Sectors unproven at their last deadline.
    #[serde(default)]
    pub faulty_sectors: u64,
    /// Sectors terminated after the fault limit; no longer challenged or paid.
    #[serde(default)]
    pub terminated_sectors: u64,
    /// Deadlines closing at or before this unix ms are accounted.
    #[serde(default)]
    pub accounted_through_ms: u64,
}

/// Storj-style beta reputation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReputationStatus {
    /// Decayed success weight α.
    #[serde(default)]
    pub alpha: f64,
    /// Decayed failure weight β.
    #[serde(default)]
    pub beta: f64,
    /// α/(α+β), six decimal places.
    #[serde(default = "one")]
    #[schemars(schema_with = "crate::schema::weight")]
    pub score: String,
}

/// A node with no audits yet: score 1 (the derived default, an empty score, is not a
/// valid weight, and the apiserver refuses a CRD whose schema default does not validate).
impl Default for ReputationStatus {
    fn default() -> Self {
        Self {
            alpha: 0.0,
            beta: 0.0,
            score: one(),
        }
    }
}

/// One accepted sector: its fixed root and deadline history since its last reset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SectorStatus {
    /// Sector number.
    pub sector: u64,
    /// Accepted Merkle root, hex.
    pub root: String,
    /// Sector size, bytes.
    pub sector_bytes: u64,
    /// Leaf size of the commitment, bytes.
    pub leaf_size: u32,
    /// Leaves in the commitment.
    pub leaf_count: u64,
    /// When the root was accepted, unix ms.
    pub committed_at_ms: u64,
    /// Active, Faulty or Terminated.
    pub health: SectorHealthStatus,
    /// Consecutive periods without a proof.
    #[serde(default)]
    pub faulty_periods: u32,
    /// Deadlines proven.
    #[serde(default)]
    pub proven: u64,
    /// Deadlines missed without a declaration.
    #[serde(default)]
    pub missed: u64,
    /// Faults declared.
    #[serde(default)]
    pub declared_faults: u64,
    /// Responses rejected.
    #[serde(default)]
    pub rejected: u64,
    /// Latest proving period with a recorded proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_proven_period: Option<u64>,
    /// Proven periods whose deadline is not accounted yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unaccounted_proofs: Vec<u64>,
    /// Latest proving period declared faulty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_fault_period: Option<u64>,
    /// Declared-faulty periods whose deadline is not accounted yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unaccounted_faults: Vec<u64>,
    /// Passes still unpaid after a reset.
    #[serde(default)]
    pub vetting_left: u32,
    /// Resets over the sector's life.
    #[serde(default)]
    pub resets: u64,
}

/// Where a sector stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SectorHealthStatus {
    /// Proven at its last deadline, or not yet due.
    #[default]
    Active,
    /// Unproven at its last deadline.
    Faulty,
    /// Unproven past the fault limit.
    Terminated,
}

/// What the node's volume holds (field manager `depin-operator`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityStatus {
    /// `spec.capacity` in bytes.
    pub requested_bytes: u64,
    /// Bytes the bound volume holds (PVC `status.capacity.storage`), once bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_bytes: Option<u64>,
    /// Bytes the agent fills and proves: the smaller of the two; the verifier refuses
    /// sectors beyond (BeyondCapacity).
    pub proving_bytes: u64,
}
