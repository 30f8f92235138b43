//! GpuWorker: a GPU that answers seeded matrix-multiply challenges.

use crate::common::{AgentSpec, IdentitySpec, NodeStatus, Payout, default_policy, node_spec};
use k8s_openapi::api::core::v1::Toleration;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A GPU worker: the operator runs an agent requesting `nvidia.com/gpu` that answers
/// matrix-multiply challenges; response time is compared with the declared throughput.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "depin.dev",
    version = "v1alpha1",
    kind = "GpuWorker",
    namespaced,
    status = "NodeStatus",
    shortname = "gw",
    category = "depin",
    doc = "A GPU worker proving compute with seeded int8 matrix-multiply challenges.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "GPUs", type_ = "integer", json_path = ".spec.gpus"),
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.model"),
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
pub struct GpuWorkerSpec {
    /// Number of GPUs to request (nvidia.com/gpu), at least 1.
    #[schemars(range(min = 1, max = 64))]
    pub gpus: i32,
    /// GPU model or class name (e.g. H100), shown to operators and in metrics.
    #[schemars(length(min = 1, max = 64))]
    pub model: String,
    /// Throughput the worker claims, in int8 tera-operations per second (greater than zero).
    #[schemars(extend("minimum" = 0, "exclusiveMinimum" = true))]
    pub declared_tops: f64,
    /// Node labels the agent pod must land on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations passed to the agent pod (e.g. for tainted GPU nodes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
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
node_spec!(GpuWorkerSpec);
