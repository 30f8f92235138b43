//! MeterBridge → agent Deployment polling the meter over Modbus TCP.

use super::{NodeKind, RoleSettings, Workload, pod, workload};
use crate::error::InvalidSpec;
use depin_crds::{Direction, MeterBridge, MeterBridgeSpec, MeterProfile, NodeStatus};
use depin_proto::config::{MeterConfig, Role};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service};
use kube::{Resource, ResourceExt};

/// Where the agent keeps its reading-chain head (sequence number, last hash).
pub const STATE_DIR: &str = "/tmp/depin-meter";

impl NodeKind for MeterBridge {
    type Spec = MeterBridgeSpec;
    const ROLE: Role = Role::Meter;

    fn spec(&self) -> &Self::Spec {
        &self.spec
    }

    fn node_status(&self) -> Option<&NodeStatus> {
        self.status.as_ref()
    }

    fn validate(&self) -> Result<RoleSettings, InvalidSpec> {
        let spec = &self.spec;
        if spec.meter.modbus.host.trim().is_empty() {
            return Err(InvalidSpec::new(
                "spec.meter.modbus.host",
                "must not be empty",
            ));
        }
        if !(spec.rated_capacity_kw.is_finite() && spec.rated_capacity_kw > 0.0) {
            return Err(InvalidSpec::new(
                "spec.ratedCapacityKw",
                "must be a positive number",
            ));
        }
        if spec.interval_seconds == 0 {
            return Err(InvalidSpec::new(
                "spec.intervalSeconds",
                "must be at least 1",
            ));
        }
        Ok(RoleSettings::Meter(MeterConfig {
            host: spec.meter.modbus.host.clone(),
            port: spec.meter.modbus.port,
            unit_id: spec.meter.modbus.unit_id,
            profile: match spec.meter.profile {
                MeterProfile::Sunspec => "sunspec".into(),
            },
            direction: match spec.direction {
                Direction::Production => "production".into(),
                Direction::Consumption => "consumption".into(),
            },
            rated_capacity_kw: spec.rated_capacity_kw,
            interval_seconds: spec.interval_seconds,
            state_dir: STATE_DIR.into(),
        }))
    }

    fn build(&self, _: &RoleSettings, pod: PodTemplateSpec) -> (Workload, Vec<Service>) {
        let name = self.name_any();
        let namespace = self.namespace().unwrap_or_default();
        let kind = Self::kind(&());
        let labels = pod::labels(&name, &kind, Self::ROLE);
        let owner = self.controller_owner_ref(&()).unwrap_or_default();
        let meta = pod::child_meta(name, &namespace, &labels, &owner);
        let replicas = pod::replicas(self.spec.agent.as_ref());
        (
            Workload::Deployment(workload::deployment(meta, &kind, replicas, pod)),
            vec![],
        )
    }
}
