//! Pure build tests: each kind's example CR → the exact objects the operator applies.
//! Golden files hold the full output; `UPDATE_GOLDEN=1 cargo test -p depin-operator --test build`
//! rewrites them after an intended change. Targeted asserts below pin what matters most.

use depin_crds::{GpuWorker, HotspotGateway, MeterBridge, StorageNode};
use depin_operator::controllers::desired::{self, Desired};
use depin_operator::controllers::pod::AgentDefaults;
use depin_operator::controllers::{NodeKind, Workload};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use pretty_assertions::assert_eq;
use serde::Deserialize;
use std::path::PathBuf;

const EXAMPLES: &str = include_str!("../../examples/minimal-fleet.yaml");

fn example<K: NodeKind>() -> K {
    let kind = K::kind(&());
    let doc = serde_yaml::Deserializer::from_str(EXAMPLES)
        .map(|d| serde_yaml::Value::deserialize(d).expect("yaml"))
        .find(|v| v["kind"].as_str() == Some(&*kind))
        .expect("example of kind");
    let mut obj: K = serde_yaml::from_value(doc).expect("parses");
    // As read from the API server: a uid (for owner references) and a generation.
    obj.meta_mut().uid = Some(format!("uid-{kind}"));
    obj.meta_mut().generation = Some(1);
    obj
}

fn defaults() -> AgentDefaults {
    AgentDefaults {
        image: "localhost/depin-agent:dev".into(),
        pull_policy: "IfNotPresent".into(),
        verifier_endpoint: "http://depin-operator.depin-system.svc.cluster.local:50051".into(),
        verifier_key: Some("ab".repeat(32)),
    }
}

fn build<K: NodeKind>(obj: &K) -> Desired {
    let settings = obj.validate().expect("example is valid");
    let secret = format!(
        "{}-identity",
        obj.meta().name.as_deref().unwrap_or_default()
    );
    desired::build(obj, settings, &defaults(), &secret).expect("builds")
}

fn golden(name: &str, desired: &Desired) {
    let mut text = String::new();
    text.push_str(&serde_yaml::to_string(&desired.config_map).expect("yaml"));
    for service in &desired.services {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(service).expect("yaml"));
    }
    for policy in &desired.network_policies {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(policy).expect("yaml"));
    }
    text.push_str("---\n");
    text.push_str(&serde_yaml::to_string(&desired.workload).expect("yaml"));
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.yaml"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).expect("write golden");
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        expected, text,
        "{name}: build output differs from the golden file"
    );
}

fn template(workload: &Workload) -> &PodTemplateSpec {
    match workload {
        Workload::Deployment(d) => &d.spec.as_ref().expect("spec").template,
        Workload::StatefulSet(s) => &s.spec.as_ref().expect("spec").template,
    }
}

fn pod(workload: &Workload) -> &PodSpec {
    template(workload).spec.as_ref().expect("pod spec")
}

/// Every agent pod is locked down the same way.
fn assert_hardened(workload: &Workload) {
    let pod = pod(workload);
    let psc = pod.security_context.as_ref().expect("pod security context");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(65532));
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    let sc = pod.containers[0]
        .security_context
        .as_ref()
        .expect("container security context");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_string()])
    );
    assert_eq!(
        pod.automount_service_account_token,
        Some(false),
        "agents need no API access"
    );
}

fn assert_owned_by(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, kind: &str) {
    let owners = meta.owner_references.as_ref().expect("owner refs");
    assert_eq!(owners.len(), 1);
    assert_eq!(
        (owners[0].kind.as_str(), owners[0].controller),
        (kind, Some(true))
    );
    assert_eq!(owners[0].uid, format!("uid-{kind}"));
    let labels = meta.labels.as_ref().expect("labels");
    for key in [
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/managed-by",
        "app.kubernetes.io/component",
    ] {
        assert!(labels.contains_key(key), "{key} missing");
    }
}

#[test]
fn hotspot_gateway_gets_a_deployment_and_a_udp_service() {
    let node: HotspotGateway = example();
    let desired = build(&node);
    golden("hotspot-gateway", &desired);
    assert_hardened(&desired.workload);
    let Workload::Deployment(deployment) = &desired.workload else {
        panic!("deployment expected")
    };
    assert_owned_by(&deployment.metadata, "HotspotGateway");
    assert_eq!(desired.services.len(), 1);
    let port = &desired.services[0]
        .spec
        .as_ref()
        .expect("spec")
        .ports
        .as_ref()
        .expect("ports")[0];
    assert_eq!((port.port, port.protocol.as_deref()), (1680, Some("UDP")));
    let ports = pod(&desired.workload).containers[0]
        .ports
        .as_ref()
        .expect("ports");
    assert!(
        ports
            .iter()
            .any(|p| p.container_port == 1680 && p.protocol.as_deref() == Some("UDP"))
    );
}

#[test]
fn storage_node_gets_a_statefulset_with_a_claim_of_its_capacity() {
    let node: StorageNode = example();
    let desired = build(&node);
    golden("storage-node", &desired);
    assert_hardened(&desired.workload);
    let Workload::StatefulSet(sts) = &desired.workload else {
        panic!("statefulset expected")
    };
    assert_owned_by(&sts.metadata, "StorageNode");
    let claim = &sts
        .spec
        .as_ref()
        .expect("spec")
        .volume_claim_templates
        .as_ref()
        .expect("claims")[0];
    let claim_spec = claim.spec.as_ref().expect("claim spec");
    let size = &claim_spec
        .resources
        .as_ref()
        .expect("resources")
        .requests
        .as_ref()
        .expect("requests")["storage"];
    assert_eq!(size.0, "100Gi");
    assert_eq!(claim_spec.storage_class_name.as_deref(), Some("standard"));
    let config = desired.config_map.data.as_ref().expect("data")["agent.yaml"].clone();
    assert!(config.contains("capacityBytes: 107374182400"), "{config}");
}

#[test]
fn gpu_worker_requests_gpus_and_passes_scheduling_through() {
    let node: GpuWorker = example();
    let desired = build(&node);
    golden("gpu-worker", &desired);
    assert_hardened(&desired.workload);
    let pod = pod(&desired.workload);
    let limits = pod.containers[0]
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .expect("limits");
    assert_eq!(limits["nvidia.com/gpu"].0, "1");
    assert_eq!(
        pod.node_selector.as_ref().expect("selector")["nvidia.com/gpu.present"],
        "true"
    );
}

#[test]
fn meter_bridge_gets_a_deployment_with_its_meter_settings() {
    let node: MeterBridge = example();
    let desired = build(&node);
    golden("meter-bridge", &desired);
    assert_hardened(&desired.workload);
    let config = desired.config_map.data.as_ref().expect("data")["agent.yaml"].clone();
    let parsed = depin_proto::config::AgentConfig::from_yaml(&config)
        .expect("agent accepts what the operator writes");
    let meter = parsed.meter.expect("meter section");
    assert_eq!(
        (meter.host.as_str(), meter.port, meter.unit_id),
        ("192.0.2.10", 502, 1)
    );
}

#[test]
fn spec_change_changes_the_pod_template_so_the_workload_rolls() {
    let mut node: StorageNode = example();
    let before = build(&node);
    node.spec.capacity.0 = "200Gi".into();
    let after = build(&node);
    let hash = |d: &Desired| {
        template(&d.workload)
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.clone())
            .expect("annotations")
    };
    assert_ne!(hash(&before), hash(&after));
}

#[test]
fn validation_names_the_field() {
    let mut node: StorageNode = example();
    node.spec.capacity.0 = "512Mi".into();
    let err = node.validate().expect_err("capacity below one sector");
    assert_eq!(err.field, "spec.capacity");
    let mut node: StorageNode = example();
    node.spec.sector_size = Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
        "1Xi".into(),
    ));
    assert_eq!(
        node.validate().expect_err("bad unit").field,
        "spec.sectorSize"
    );
    let mut node: HotspotGateway = example();
    node.spec.packet_forwarder.port = 8080;
    assert_eq!(
        node.validate().expect_err("port clash").field,
        "spec.packetForwarder.port"
    );
}

/// The hotspot's NetworkPolicy admits UDP to the forwarder port only from the forwarder:
/// its non-loopback CIDRs as ipBlocks and its pods by label; the agent's HTTP port stays
/// open as without a policy. With only loopback configured (a forwarder in the pod) no
/// UDP rule is written at all — an empty `from` would admit every source.
#[test]
fn hotspot_network_policy_admits_only_the_forwarder() {
    use k8s_openapi::api::networking::v1::NetworkPolicyIngressRule;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let ports = |rule: &NetworkPolicyIngressRule| -> Vec<(i32, String)> {
        rule.ports
            .iter()
            .flatten()
            .map(|p| {
                let Some(IntOrString::Int(n)) = p.port else {
                    panic!("numeric port expected")
                };
                (n, p.protocol.clone().unwrap_or_default())
            })
            .collect()
    };

    let mut node: HotspotGateway = example();
    node.spec.packet_forwarder.source_cidrs = vec!["10.244.3.9/16".into(), "127.0.0.0/8".into()];
    node.spec.packet_forwarder.source_pod_labels = [(
        "app.kubernetes.io/name".to_string(),
        "rf-medium".to_string(),
    )]
    .into();
    let desired = build(&node);
    assert_eq!(desired.network_policies.len(), 1);
    let policy = &desired.network_policies[0];
    assert_owned_by(&policy.metadata, "HotspotGateway");
    let spec = policy.spec.as_ref().expect("spec");
    let Workload::Deployment(deployment) = &desired.workload else {
        panic!("deployment expected")
    };
    let pod_labels = template(&desired.workload)
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .expect("pod labels");
    let selected = spec
        .pod_selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .expect("selector");
    assert!(
        selected.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
        "selects the agent pod"
    );
    assert_eq!(
        deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone()),
        Some(selected)
    );
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string()]));
    let ingress = spec.ingress.as_ref().expect("ingress");
    assert_eq!(ingress.len(), 2);
    assert_eq!(ports(&ingress[0]), vec![(1680, "UDP".into())]);
    let from = ingress[0].from.as_ref().expect("peers");
    assert_eq!(
        from.len(),
        2,
        "the pod CIDR and the forwarder pods; no loopback"
    );
    assert_eq!(
        from[0].ip_block.as_ref().map(|b| b.cidr.as_str()),
        Some("10.244.0.0/16"),
        "canonical form"
    );
    assert_eq!(
        from[1]
            .pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .and_then(|l| l.get("app.kubernetes.io/name"))
            .map(String::as_str),
        Some("rf-medium")
    );
    assert!(from[1].namespace_selector.is_none(), "this namespace only");
    assert_eq!(ports(&ingress[1]), vec![(8080, "TCP".into())]);
    assert!(ingress[1].from.is_none(), "metrics and probes as before");

    // The agent is told the same forwarder.
    let config: depin_proto::config::AgentConfig =
        serde_yaml::from_str(&desired.config_map.data.as_ref().expect("data")["agent.yaml"])
            .expect("agent.yaml");
    let hotspot = config.hotspot.expect("hotspot");
    assert_eq!(hotspot.gateway_eui.as_deref(), Some("AA555A0000000001"));
    assert_eq!(hotspot.source_cidrs, vec!["10.244.0.0/16", "127.0.0.0/8"]);

    // Loopback only (the default): no UDP rule, so nothing outside the pod reaches the port.
    let mut node: HotspotGateway = example();
    node.spec.packet_forwarder = Default::default();
    let desired = build(&node);
    let ingress = desired.network_policies[0]
        .spec
        .as_ref()
        .and_then(|s| s.ingress.clone())
        .expect("ingress");
    assert_eq!(ingress.len(), 1);
    assert_eq!(ports(&ingress[0]), vec![(8080, "TCP".into())]);
    assert!(
        ingress
            .iter()
            .all(|r| ports(r).iter().all(|(_, proto)| proto != "UDP") || r.from.is_some()),
        "never a UDP rule open to every source"
    );

    // Bad forwarder fields name themselves.
    let mut node: HotspotGateway = example();
    node.spec.packet_forwarder.source_cidrs = vec!["10.0.0.0/8".into(), "pod-network".into()];
    assert_eq!(
        node.validate().expect_err("bad cidr").field,
        "spec.packetForwarder.sourceCidrs[1]"
    );
    let mut node: HotspotGateway = example();
    node.spec.packet_forwarder.gateway_eui = Some("AA55".into());
    assert_eq!(
        node.validate().expect_err("bad eui").field,
        "spec.packetForwarder.gatewayEui"
    );
}

#[test]
fn sector_size_must_be_a_power_of_two_from_64mi_to_1gi() {
    let table: &[(&str, bool)] = &[
        ("64Mi", true),
        ("256Mi", true),
        ("1Gi", true),
        ("134217728", true),
        ("1", false),
        ("32Mi", false),
        ("96Mi", false),
        ("2Gi", false),
        ("100000000", false),
    ];
    for (size, ok) in table {
        let mut node: StorageNode = example();
        node.spec.sector_size = Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
            (*size).into(),
        ));
        match node.validate() {
            Ok(_) => assert!(ok, "{size} accepted"),
            Err(err) => {
                assert!(!ok, "{size} refused: {}", err.problem);
                assert_eq!(err.field, "spec.sectorSize", "{size}");
            }
        }
    }
}

#[test]
fn build_is_deterministic() {
    let node: HotspotGateway = example();
    assert_eq!(build(&node), build(&node));
}
