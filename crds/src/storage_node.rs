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
