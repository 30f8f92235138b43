//! Pure: everything a node should have, from its validated spec.

use super::pod::{self, AgentDefaults, PodInput};
use super::{NodeKind, RoleSettings, Workload};
use crate::error::Result;
use depin_crds::NodeSpec;
use depin_proto::config::{AgentConfig, IDENTITY_DIR, IDENTITY_KEY, NodeRef, VerifierConfig};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::ResourceExt;

/// The children of one node, ready to apply.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// Agent configuration.
    pub config_map: ConfigMap,
    /// Services (the hotspot's UDP endpoint).
    pub services: Vec<Service>,
    /// The agent workload.
    pub workload: Workload,
    /// Ingress rules for the agent pod (the hotspot's forwarder-only policy).
    pub network_policies: Vec<NetworkPolicy>,
}

/// The agent configuration for a node.
pub fn agent_config<K: NodeKind>(
    obj: &K,
    settings: RoleSettings,
    defaults: &AgentDefaults,
) -> AgentConfig {
    let mut config = AgentConfig {
        role: K::ROLE,
        node: NodeRef {
            kind: K::kind(&()).into(),
            name: obj.name_any(),
            namespace: obj.namespace().unwrap_or_default(),
            wallet: obj.spec().payout().wallet.clone(),
        },
        verifier: VerifierConfig {
            endpoint: defaults.verifier_endpoint.clone(),
            public_key: defaults.verifier_key.clone(),
        },
        identity_key_file: format!("{IDENTITY_DIR}/{IDENTITY_KEY}"),
        http_port: depin_proto::config::AGENT_HTTP_PORT,
        hotspot: None,
        storage: None,
        gpu: None,
        meter: None,
    };
    match settings {
        RoleSettings::Hotspot(s) => config.hotspot = Some(s),
        RoleSettings::Storage(s) => config.storage = Some(s),
        RoleSettings::Gpu(s) => config.gpu = Some(s),
        RoleSettings::Meter(s) => config.meter = Some(s),
    }
    config
}

/// Builds the ConfigMap, Services and workload of a node.
pub fn build<K: NodeKind>(
    obj: &K,
    settings: RoleSettings,
    defaults: &AgentDefaults,
    identity_secret: &str,
) -> Result<Desired> {
    let name = obj.name_any();
    let namespace = obj.namespace().unwrap_or_default();
    let kind = K::kind(&());
    let labels = pod::labels(&name, &kind, K::ROLE);
    // Objects read from the API always have a uid, so the owner reference exists.
    let owner = obj.controller_owner_ref(&()).unwrap_or_default();
    let agent_yaml = agent_config(obj, settings.clone(), defaults).to_yaml()?;
    let config_name = format!("{name}-agent");
    let hash = pod::config_hash(&agent_yaml);
    let config_map = pod::config_map(
        pod::child_meta(config_name.clone(), &namespace, &labels, &owner),
        agent_yaml,
    );
    let template = pod::pod_template(&PodInput {
        name: &name,
        labels: &labels,
        agent: obj.spec().agent(),
        defaults,
        config_map: &config_name,
        identity_secret,
        config_hash: &hash,
    });
    let (workload, services) = obj.build(&settings, template);
    let network_policies = obj.network_policies(&settings);
    Ok(Desired {
        config_map,
        services,
        workload,
        network_policies,
    })
}
