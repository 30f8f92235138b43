//! Pure builders for the two workload shapes.

use super::pod::{label_selector, selector};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, StatefulSet, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// A single-identity Deployment. `Recreate`, never rolling: two pods holding the same node
/// key at once would both submit proofs for one node.
pub fn deployment(meta: ObjectMeta, kind: &str, replicas: i32, pod: PodTemplateSpec) -> Deployment {
    let name = meta.name.clone().unwrap_or_default();
    Deployment {
        metadata: meta,
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: label_selector(selector(&name, kind)),
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..DeploymentStrategy::default()
            }),
            template: pod,
            revision_history_limit: Some(3),
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// A StatefulSet whose pod keeps its volume claims across restarts and reschedules.
pub fn stateful_set(
    meta: ObjectMeta,
    kind: &str,
    replicas: i32,
    pod: PodTemplateSpec,
    claims: Vec<PersistentVolumeClaim>,
) -> StatefulSet {
    let name = meta.name.clone().unwrap_or_default();
    StatefulSet {
        metadata: meta,
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(name.clone()),
            selector: label_selector(selector(&name, kind)),
            template: pod,
            volume_claim_templates: Some(claims),
            revision_history_limit: Some(3),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}
