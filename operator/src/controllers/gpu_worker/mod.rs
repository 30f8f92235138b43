//! GpuWorker → agent Deployment requesting `nvidia.com/gpu`.

use super::{NodeKind, RoleSettings, Workload, pod, workload};
use crate::error::InvalidSpec;
use depin_crds::{GpuWorker, GpuWorkerSpec, NodeStatus};
use depin_proto::config::{GpuConfig, Role};
use k8s_openapi::api::core::v1::{PodTemplateSpec, ResourceRequirements, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{Resource, ResourceExt};

/// Extended resource name the NVIDIA device plugin advertises.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

impl NodeKind for GpuWorker {
    type Spec = GpuWorkerSpec;
    const ROLE: Role = Role::Gpu;

    fn spec(&self) -> &Self::Spec {
        &self.spec
    }

    fn node_status(&self) -> Option<&NodeStatus> {
        self.status.as_ref()
    }

    fn validate(&self) -> Result<RoleSettings, InvalidSpec> {
        let spec = &self.spec;
        let gpus = u32::try_from(spec.gpus).ok().filter(|g| *g > 0);
        let Some(gpus) = gpus else {
            return Err(InvalidSpec::new("spec.gpus", "must be at least 1"));
        };
        if !(spec.declared_tops.is_finite() && spec.declared_tops > 0.0) {
            return Err(InvalidSpec::new(
                "spec.declaredTops",
                "must be a positive number",
            ));
        }
        Ok(RoleSettings::Gpu(GpuConfig {
            gpus,
            model: spec.model.clone(),
            declared_tops: spec.declared_tops,
        }))
    }

    fn build(&self, _: &RoleSettings, mut pod: PodTemplateSpec) -> (Workload, Vec<Service>) {
        let name = self.name_any();
        let namespace = self.namespace().unwrap_or_default();
        let kind = Self::kind(&());
        let labels = pod::labels(&name, &kind, Self::ROLE);
        let owner = self.controller_owner_ref(&()).unwrap_or_default();
        let gpus = Quantity(self.spec.gpus.to_string());
        if let Some(container) = pod::agent_container(&mut pod) {
            // Extended resources must be set as limits; requests default to the same value.
            let resources = container
                .resources
                .get_or_insert_with(ResourceRequirements::default);
            resources
                .limits
                .get_or_insert_with(Default::default)
                .insert(GPU_RESOURCE.into(), gpus);
        }
        if let Some(spec) = pod.spec.as_mut() {
            if !self.spec.node_selector.is_empty() {
                spec.node_selector = Some(self.spec.node_selector.clone());
            }
            if !self.spec.tolerations.is_empty() {
                spec.tolerations = Some(self.spec.tolerations.clone());
            }
        }
        let meta = pod::child_meta(name, &namespace, &labels, &owner);
        let replicas = pod::replicas(self.spec.agent.as_ref());
        (
            Workload::Deployment(workload::deployment(meta, &kind, replicas, pod)),
            vec![],
        )
    }
}
