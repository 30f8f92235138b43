//! Pure builders for what every agent workload shares: labels, owner references, the
//! ConfigMap, and a locked-down pod template.

use crate::config::Config;
use depin_crds::{AgentSpec, PullPolicy};
use depin_proto::config::{AGENT_HTTP_PORT, CONFIG_DIR, CONFIG_KEY, IDENTITY_DIR, Role};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// UID and GID the agent runs as (matches the image's non-root user).
pub const AGENT_UID: i64 = 65532;
/// Label holding the node CR's name.
pub const NODE_LABEL: &str = "depin.dev/node";
/// Label holding the node CR's kind.
pub const KIND_LABEL: &str = "depin.dev/kind";
/// Label every object we create carries; watches select on it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "depin-operator");
/// Pod annotation holding a hash of the agent config, so config changes roll the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "depin.dev/config-hash";

/// Everything the pure build needs besides the CR itself.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentDefaults {
    /// Image when the CR names none.
    pub image: String,
    /// Pull policy when the CR names none.
    pub pull_policy: String,
    /// Verifier endpoint written into agent configs.
    pub verifier_endpoint: String,
    /// The verifier's public key (hex), which agents pin; None: not pinned.
    pub verifier_key: Option<String>,
}

impl AgentDefaults {
    /// Defaults from the operator's configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            image: config.agent_image.clone(),
            pull_policy: config.agent_image_pull_policy.clone(),
            verifier_endpoint: config.verifier_endpoint(),
            verifier_key: None,
        }
    }
}

/// The labels every child of node `name` carries (standard app.kubernetes.io set).
pub fn labels(name: &str, kind: &str, role: Role) -> BTreeMap<String, String> {
    let mut labels = selector(name, kind);
    labels.insert("app.kubernetes.io/component".into(), role.as_str().into());
    labels.insert("app.kubernetes.io/part-of".into(), "depin".into());
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    labels.insert(KIND_LABEL.into(), kind.into());
    labels
}

/// The immutable subset used as the workload selector.
pub fn selector(name: &str, kind: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "depin-agent".into()),
        ("app.kubernetes.io/instance".into(), name.into()),
        (NODE_LABEL.into(), name.into()),
        (KIND_LABEL.into(), kind.into()),
    ])
}

/// Metadata for a child object of the node.
pub fn child_meta(
    name: String,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    owner: &OwnerReference,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.into()),
        labels: Some(labels.clone()),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// The agent ConfigMap holding `agent.yaml`.
pub fn config_map(meta: ObjectMeta, agent_yaml: String) -> ConfigMap {
    ConfigMap {
        metadata: meta,
        data: Some(BTreeMap::from([(CONFIG_KEY.into(), agent_yaml)])),
        ..ConfigMap::default()
    }
}

/// Short stable hash of the agent config, for the pod annotation.
pub fn config_hash(agent_yaml: &str) -> String {
    hex::encode(&blake3::hash(agent_yaml.as_bytes()).as_bytes()[..8])
}

/// Inputs of the shared pod template.
pub struct PodInput<'a> {
    /// Node name.
    pub name: &'a str,
    /// Labels for the pod.
    pub labels: &'a BTreeMap<String, String>,
    /// CR-level agent overrides.
    pub agent: Option<&'a AgentSpec>,
    /// Operator defaults.
    pub defaults: &'a AgentDefaults,
    /// Name of the agent ConfigMap.
    pub config_map: &'a str,
    /// Name of the identity Secret.
    pub identity_secret: &'a str,
    /// Hash of the agent config.
    pub config_hash: &'a str,
}

/// A non-root, read-only, capability-free pod running the agent.
pub fn pod_template(input: &PodInput<'_>) -> PodTemplateSpec {
    let agent = input.agent.cloned().unwrap_or_default();
    let image = agent
        .image
        .clone()
        .unwrap_or_else(|| input.defaults.image.clone());
    let pull_policy = agent
        .image_pull_policy
        .map(PullPolicy::as_str)
        .map(str::to_string)
        .unwrap_or(input.defaults.pull_policy.clone());
    let probe = |path: &str, period| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        ..Probe::default()
    };
    let field_env = |name: &str, path: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let container = Container {
        name: "agent".into(),
        image: Some(image),
        image_pull_policy: Some(pull_policy),
        args: Some(vec![
            "--config".into(),
            format!("{CONFIG_DIR}/{CONFIG_KEY}"),
        ]),
        env: Some(vec![
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: i32::from(AGENT_HTTP_PORT),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(probe("/readyz", 5)),
        liveness_probe: Some(Probe {
            failure_threshold: Some(6),
            ..probe("/healthz", 10)
        }),
        resources: agent.resources.clone(),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "identity".into(),
                mount_path: IDENTITY_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(input.labels.clone()),
            annotations: Some(BTreeMap::from([(
                CONFIG_HASH_ANNOTATION.into(),
                input.config_hash.into(),
            )])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(10),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(AGENT_UID),
                run_as_group: Some(AGENT_UID),
                fs_group: Some(AGENT_UID),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            volumes: Some(vec![
                Volume {
                    name: "config".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: input.config_map.into(),
                        ..ConfigMapVolumeSource::default()
                    }),
                    ..Volume::default()
                },
                Volume {
                    name: "identity".into(),
                    // 0440 + fsGroup: readable by the agent's group only, never world-readable.
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(input.identity_secret.into()),
                        default_mode: Some(0o440),
                        ..SecretVolumeSource::default()
                    }),
                    ..Volume::default()
                },
                Volume {
                    name: "tmp".into(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Volume::default()
                },
            ]),
            ..PodSpec::default()
        }),
    }
}

/// A label selector matching exactly `labels`.
pub fn label_selector(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        ..LabelSelector::default()
    }
}

/// The agent container of a template built by [`pod_template`].
pub fn agent_container(pod: &mut PodTemplateSpec) -> Option<&mut Container> {
    pod.spec
        .as_mut()
        .and_then(|spec| spec.containers.first_mut())
}

/// Replica count from the CR's agent overrides (default 1).
pub fn replicas(agent: Option<&AgentSpec>) -> i32 {
    agent.and_then(|a| a.replicas).unwrap_or(1)
}
