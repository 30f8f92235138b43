//! HotspotGateway → agent Deployment plus a UDP Service for the packet forwarder.

use super::{NodeKind, RoleSettings, Workload, pod, workload};
use crate::error::InvalidSpec;
use depin_crds::{HotspotGateway, HotspotGatewaySpec, NodeStatus};
use depin_proto::config::{HotspotConfig, Role};
use k8s_openapi::api::core::v1::{
    ContainerPort, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use kube::{Resource, ResourceExt};

impl NodeKind for HotspotGateway {
    type Spec = HotspotGatewaySpec;
    const ROLE: Role = Role::Hotspot;

    fn spec(&self) -> &Self::Spec {
        &self.spec
    }

    fn node_status(&self) -> Option<&NodeStatus> {
        self.status.as_ref()
    }

    fn validate(&self) -> Result<RoleSettings, InvalidSpec> {
        let spec = &self.spec;
        let finite = [
            ("spec.location.latitude", spec.location.latitude),
            ("spec.location.longitude", spec.location.longitude),
            ("spec.antennaGainDbi", spec.antenna_gain_dbi),
            ("spec.elevationMeters", spec.elevation_meters),
        ];
        if let Some((field, _)) = finite.iter().find(|(_, v)| !v.is_finite()) {
            return Err(InvalidSpec::new(*field, "must be a finite number"));
        }
        if spec.packet_forwarder.port == depin_proto::config::AGENT_HTTP_PORT {
            return Err(InvalidSpec::new(
                "spec.packetForwarder.port",
                "8080 is the agent's HTTP port",
            ));
        }
        Ok(RoleSettings::Hotspot(HotspotConfig {
            region: spec.region.as_str().into(),
            latitude: spec.location.latitude,
            longitude: spec.location.longitude,
            antenna_gain_dbi: spec.antenna_gain_dbi,
            elevation_meters: spec.elevation_meters,
            packet_forwarder_port: spec.packet_forwarder.port,
        }))
    }

    fn build(&self, _: &RoleSettings, mut pod: PodTemplateSpec) -> (Workload, Vec<Service>) {
        let name = self.name_any();
        let namespace = self.namespace().unwrap_or_default();
        let kind = Self::kind(&());
        let labels = pod::labels(&name, &kind, Self::ROLE);
        // The controller owner reference always exists for an object read from the API.
        let owner = self.controller_owner_ref(&()).unwrap_or_default();
        let port = i32::from(self.spec.packet_forwarder.port);
        if let Some(container) = pod::agent_container(&mut pod) {
            container
                .ports
                .get_or_insert_with(Vec::new)
                .push(ContainerPort {
                    name: Some("gwmp".into()),
                    container_port: port,
                    protocol: Some("UDP".into()),
                    ..ContainerPort::default()
                });
        }
        let service = Service {
            metadata: pod::child_meta(format!("{name}-pf"), &namespace, &labels, &owner),
            spec: Some(ServiceSpec {
                selector: Some(pod::selector(&name, &kind)),
                ports: Some(vec![ServicePort {
                    name: Some("gwmp".into()),
                    port,
                    protocol: Some("UDP".into()),
                    target_port: Some(
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                            "gwmp".into(),
                        ),
                    ),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        };
        let meta = pod::child_meta(name, &namespace, &labels, &owner);
        let replicas = pod::replicas(self.spec.agent.as_ref());
        (
            Workload::Deployment(workload::deployment(meta, &kind, replicas, pod)),
            vec![service],
        )
    }
}
