//! HotspotGateway → agent Deployment plus a UDP Service for the packet forwarder.

use super::{NodeKind, RoleSettings, Workload, pod, workload};
use crate::error::InvalidSpec;
use depin_crds::{HotspotGateway, HotspotGatewaySpec, NodeStatus};
use depin_proto::config::{HotspotConfig, Role};
use k8s_openapi::api::core::v1::{
    ContainerPort, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

impl NodeKind for HotspotGateway {
    type Spec = HotspotGatewaySpec;
    const ROLE: Role = Role::Hotspot;
    // The packet-forwarder Service `<name>-pf` is a DNS label (63).
    const MAX_NAME: usize = 60;
    const MAX_NAME_WHY: &'static str = "its packet-forwarder Service <name>-pf is a DNS label";

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
        let forwarder = &spec.packet_forwarder;
        let gateway_eui = match &forwarder.gateway_eui {
            Some(eui) if eui.len() == 16 && eui.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(eui.to_ascii_uppercase())
            }
            Some(_) => {
                return Err(InvalidSpec::new(
                    "spec.packetForwarder.gatewayEui",
                    "must be 16 hex digits",
                ));
            }
            None => None,
        };
        let mut source_cidrs = Vec::with_capacity(forwarder.source_cidrs.len());
        for (i, cidr) in forwarder.source_cidrs.iter().enumerate() {
            let net: ipnet::IpNet = cidr.parse().map_err(|_| {
                InvalidSpec::new(
                    format!("spec.packetForwarder.sourceCidrs[{i}]"),
                    format!("{cidr:?} is not a CIDR such as 10.244.0.0/16"),
                )
            })?;
            // Canonical form (host bits cleared): what the agent matches and the
            // NetworkPolicy's ipBlock both accept.
            source_cidrs.push(net.trunc().to_string());
        }
        Ok(RoleSettings::Hotspot(HotspotConfig {
            region: spec.region.as_str().into(),
            latitude: spec.location.latitude,
            longitude: spec.location.longitude,
            antenna_gain_dbi: spec.antenna_gain_dbi,
            elevation_meters: spec.elevation_meters,
            packet_forwarder_port: forwarder.port,
            gateway_eui,
            source_cidrs,
        }))
    }

    fn network_policies(&self, settings: &RoleSettings) -> Vec<NetworkPolicy> {
        let RoleSettings::Hotspot(hotspot) = settings else {
            return Vec::new();
        };
        vec![forwarder_policy(self, hotspot)]
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
                    target_port: Some(IntOrString::String("gwmp".into())),
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

/// The agent's ingress: UDP to the packet-forwarder port only from the forwarder (its
/// `sourceCidrs` as ipBlocks, its `sourcePodLabels` as a pod selector), and the agent's
/// HTTP port (metrics, probes) from anywhere, as without a policy. Loopback networks are
/// left out: traffic inside the pod never meets a NetworkPolicy. With no peer left the UDP
/// rule is omitted, not written with an empty `from`, which would admit every source.
/// Enforced only where the CNI implements NetworkPolicy; the agent's own check holds
/// everywhere.
pub fn forwarder_policy(node: &HotspotGateway, hotspot: &HotspotConfig) -> NetworkPolicy {
    let name = node.name_any();
    let namespace = node.namespace().unwrap_or_default();
    let kind = HotspotGateway::kind(&());
    let labels = pod::labels(&name, &kind, Role::Hotspot);
    // The controller owner reference always exists for an object read from the API.
    let owner = node.controller_owner_ref(&()).unwrap_or_default();
    let mut peers: Vec<NetworkPolicyPeer> = hotspot
        .source_cidrs
        .iter()
        .filter(|cidr| {
            cidr.parse::<ipnet::IpNet>()
                .is_ok_and(|net| !net.network().is_loopback())
        })
        .map(|cidr| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.clone(),
                except: None,
            }),
            ..NetworkPolicyPeer::default()
        })
        .collect();
    let pod_labels = &node.spec.packet_forwarder.source_pod_labels;
    if !pod_labels.is_empty() {
        peers.push(NetworkPolicyPeer {
            pod_selector: Some(LabelSelector {
                match_labels: Some(pod_labels.clone()),
                match_expressions: None,
            }),
            ..NetworkPolicyPeer::default()
        });
    }
    let port = |number: u16, protocol: &str| NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(number))),
        protocol: Some(protocol.into()),
        end_port: None,
    };
    let mut ingress = Vec::with_capacity(2);
    if !peers.is_empty() {
        ingress.push(NetworkPolicyIngressRule {
            from: Some(peers),
            ports: Some(vec![port(hotspot.packet_forwarder_port, "UDP")]),
        });
    }
    ingress.push(NetworkPolicyIngressRule {
        from: None,
        ports: Some(vec![port(depin_proto::config::AGENT_HTTP_PORT, "TCP")]),
    });
    NetworkPolicy {
        metadata: pod::child_meta(format!("{name}-pf"), &namespace, &labels, &owner),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(pod::selector(&name, &kind)),
                match_expressions: None,
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(ingress),
            egress: None,
        }),
    }
}
