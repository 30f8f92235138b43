//! One controller per node kind, all sharing one pipeline:
//! dereference → validate (pure) → build (pure) → apply (server-side) → status.

pub mod desired;
pub mod gpu_worker;
pub mod hotspot_gateway;
pub mod identity;
pub mod meter_bridge;
pub mod pipeline;
pub mod pod;
pub mod quantity;
pub mod status;
pub mod storage_node;
pub mod workload;

use crate::context::Context;
use crate::error::InvalidSpec;
use depin_crds::{NodeSpec, NodeStatus};
use depin_proto::config::{GpuConfig, HotspotConfig, MeterConfig, Role, StorageConfig};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;

/// The kind-specific part of the agent configuration, produced by `validate`.
#[derive(Clone, Debug, PartialEq)]
pub enum RoleSettings {
    /// HotspotGateway settings.
    Hotspot(HotspotConfig),
    /// StorageNode settings.
    Storage(StorageConfig),
    /// GpuWorker settings.
    Gpu(GpuConfig),
    /// MeterBridge settings.
    Meter(MeterConfig),
}

/// The agent workload for one node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Workload {
    /// Stateless roles.
    Deployment(Deployment),
    /// Roles that own a volume.
    StatefulSet(StatefulSet),
}

/// Settings fitted to what the node's children really hold, and the status saying so.
#[derive(Clone, Debug, PartialEq)]
pub struct Fitted {
    /// The agent's settings (StorageNode: capacity capped by the volume).
    pub settings: RoleSettings,
    /// `status.capacity` (StorageNode).
    pub capacity: Option<depin_crds::CapacityStatus>,
    /// Kind-specific conditions (StorageNode: CapacityLimited).
    pub extra: Vec<status::Extra>,
}

impl Fitted {
    /// Settings that need no fitting.
    pub fn unchanged(settings: RoleSettings) -> Self {
        Self {
            settings,
            capacity: None,
            extra: Vec::new(),
        }
    }
}

/// Longest name of any node CR: it is the value of the `depin.dev/node` and
/// `app.kubernetes.io/instance` labels on every child, and label values stop at 63.
pub const MAX_NODE_NAME: usize = 63;

/// Pure: refuses a CR name its children could not carry, naming the limit and why.
pub fn check_name(name: &str, max: usize, why: &str) -> Result<(), InvalidSpec> {
    if name.len() <= max {
        return Ok(());
    }
    Err(InvalidSpec::new(
        "metadata.name",
        format!(
            "{} characters; at most {max} for this kind ({why}); pick a shorter name",
            name.len()
        ),
    ))
}

/// What a node kind adds to the shared pipeline.
pub trait NodeKind:
    kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The CR's spec type.
    type Spec: NodeSpec + Send + Sync;
    /// Which agent role serves this kind.
    const ROLE: Role;
    /// Longest CR name whose children Kubernetes accepts (the apiserver takes 253).
    const MAX_NAME: usize = MAX_NODE_NAME;
    /// The spec.
    fn spec(&self) -> &Self::Spec;
    /// The status, if any.
    fn node_status(&self) -> Option<&NodeStatus>;
    /// Why [`Self::MAX_NAME`] is what it is, for the refusal message.
    const MAX_NAME_WHY: &'static str = "the name is a label value on its children";
    /// Pure checks the schema cannot express; returns the agent's role settings.
    fn validate(&self) -> Result<RoleSettings, InvalidSpec>;
    /// Pure: the workload and any Services, from the shared agent pod template.
    fn build(&self, settings: &RoleSettings, pod: PodTemplateSpec) -> (Workload, Vec<Service>);
    /// Reads what the node's children really hold and fits the settings to it (a
    /// StorageNode's volume may be smaller than its spec); other kinds keep them.
    fn fit<'a>(
        &'a self,
        _client: &'a kube::Client,
        settings: RoleSettings,
    ) -> impl std::future::Future<Output = crate::error::Result<Fitted>> + Send + 'a {
        std::future::ready(Ok(Fitted::unchanged(settings)))
    }
    /// Pure: NetworkPolicies guarding the agent pod (none unless a kind needs one).
    fn network_policies(&self, _settings: &RoleSettings) -> Vec<NetworkPolicy> {
        Vec::new()
    }
}

/// Runs the four controllers until shutdown.
pub async fn run(ctx: Arc<Context>, shutdown: &crate::Shutdown) {
    tokio::join!(
        pipeline::run::<depin_crds::HotspotGateway>(ctx.clone(), shutdown.signal()),
        pipeline::run::<depin_crds::StorageNode>(ctx.clone(), shutdown.signal()),
        pipeline::run::<depin_crds::GpuWorker>(ctx.clone(), shutdown.signal()),
        pipeline::run::<depin_crds::MeterBridge>(ctx, shutdown.signal()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_their_children_cannot_carry_are_refused_naming_the_limit() {
        let storage = |name: &str| {
            check_name(
                name,
                <depin_crds::StorageNode as NodeKind>::MAX_NAME,
                <depin_crds::StorageNode as NodeKind>::MAX_NAME_WHY,
            )
        };
        assert_eq!(storage(&"s".repeat(52)), Ok(()));
        let err = storage(&"s".repeat(60)).expect_err("60 > 52");
        assert_eq!(err.field, "metadata.name");
        assert!(
            err.problem.starts_with("60 characters; at most 52"),
            "{err}"
        );
        assert!(err.problem.contains("controller-revision-hash"), "{err}");
        assert_eq!(<depin_crds::HotspotGateway as NodeKind>::MAX_NAME, 60);
        assert_eq!(<depin_crds::GpuWorker as NodeKind>::MAX_NAME, MAX_NODE_NAME);
        assert_eq!(
            <depin_crds::MeterBridge as NodeKind>::MAX_NAME,
            MAX_NODE_NAME
        );
    }
}
