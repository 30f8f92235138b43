//! StorageNode → agent StatefulSet with a volume claim of `capacity`.

pub mod volume;

use super::{Fitted, NodeKind, RoleSettings, Workload, pod, quantity, status, workload};
use crate::error::InvalidSpec;
use depin_crds::{NodeStatus, StorageNode, StorageNodeSpec};
use depin_proof::storage::{MAX_SECTOR_BYTES, MIN_SECTOR_BYTES};
use depin_proto::config::{Role, StorageConfig};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodTemplateSpec, Service, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

/// Where the data volume is mounted in the agent.
pub const DATA_DIR: &str = "/data";
/// Sector size when the spec names none (1 GiB, as in the examples).
pub const DEFAULT_SECTOR_BYTES: u64 = 1 << 30;

impl NodeKind for StorageNode {
    type Spec = StorageNodeSpec;
    const ROLE: Role = Role::Storage;
    // The StatefulSet's pods carry `controller-revision-hash: <name>-<10-char hash>`.
    const MAX_NAME: usize = 52;
    const MAX_NAME_WHY: &'static str =
        "its StatefulSet's pods carry the label controller-revision-hash: <name>-<10 characters>";

    fn spec(&self) -> &Self::Spec {
        &self.spec
    }

    fn node_status(&self) -> Option<&NodeStatus> {
        self.status.as_ref()
    }

    fn validate(&self) -> Result<RoleSettings, InvalidSpec> {
        let spec = &self.spec;
        let capacity = quantity::bytes(&spec.capacity.0, "spec.capacity")?;
        let sector = match &spec.sector_size {
            Some(q) => quantity::bytes(&q.0, "spec.sectorSize")?,
            None => DEFAULT_SECTOR_BYTES,
        };
        // The seal's bounds (depin-proof): the CRD pattern lets plain digits through, and
        // quantities like "96Mi" parse, so the power-of-two rule is enforced here.
        if !(MIN_SECTOR_BYTES..=MAX_SECTOR_BYTES).contains(&sector) || !sector.is_power_of_two() {
            return Err(InvalidSpec::new(
                "spec.sectorSize",
                format!(
                    "{sector} bytes is not a power of two from {MIN_SECTOR_BYTES} (64Mi) to {MAX_SECTOR_BYTES} (1Gi)"
                ),
            ));
        }
        if capacity < sector {
            return Err(InvalidSpec::new(
                "spec.capacity",
                format!(
                    "{capacity} bytes cannot hold one sector of {sector} bytes (spec.sectorSize)"
                ),
            ));
        }
        Ok(RoleSettings::Storage(StorageConfig {
            capacity_bytes: capacity,
            sector_size_bytes: sector,
            data_dir: DATA_DIR.into(),
        }))
    }

    async fn fit(
        &self,
        client: &kube::Client,
        settings: RoleSettings,
    ) -> crate::error::Result<Fitted> {
        let RoleSettings::Storage(mut config) = settings else {
            return Ok(Fitted::unchanged(settings));
        };
        let (namespace, name) = (self.namespace().unwrap_or_default(), self.name_any());
        let spec_bytes = config.capacity_bytes;
        let facts = volume::observe(client, &namespace, &name).await?;
        if volume::plan(spec_bytes, &facts) == volume::VolumePlan::Expand {
            volume::expand(client, &namespace, &name, spec_bytes).await?;
        }
        // The agent fills only what the volume holds; status.capacity.provingBytes says the
        // same for the verifier.
        config.capacity_bytes = volume::proving_bytes(spec_bytes, &facts);
        Ok(Fitted {
            settings: RoleSettings::Storage(config),
            capacity: Some(volume::capacity_status(spec_bytes, &facts)),
            extra: vec![(
                status::CAPACITY_LIMITED,
                Some(volume::condition(spec_bytes, &facts)),
            )],
        })
    }

    fn build(&self, _: &RoleSettings, mut pod: PodTemplateSpec) -> (Workload, Vec<Service>) {
        let name = self.name_any();
        let namespace = self.namespace().unwrap_or_default();
        let kind = Self::kind(&());
        let labels = pod::labels(&name, &kind, Self::ROLE);
        let owner = self.controller_owner_ref(&()).unwrap_or_default();
        if let Some(container) = pod::agent_container(&mut pod) {
            container
                .volume_mounts
                .get_or_insert_with(Vec::new)
                .push(VolumeMount {
                    name: "data".into(),
                    mount_path: DATA_DIR.into(),
                    ..VolumeMount::default()
                });
        }
        let claim = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                labels: Some(labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                storage_class_name: self.spec.storage_class_name.clone(),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".into(),
                        Quantity(self.spec.capacity.0.clone()),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        };
        let meta = pod::child_meta(name, &namespace, &labels, &owner);
        let replicas = pod::replicas(self.spec.agent.as_ref());
        (
            Workload::StatefulSet(workload::stateful_set(
                meta,
                &kind,
                replicas,
                pod,
                vec![claim],
            )),
            vec![],
        )
    }
}
