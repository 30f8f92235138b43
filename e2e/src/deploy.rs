//! Installs what the tests run against: the CRDs from crds/ and the operator as a pod under
//! its own ServiceAccount with the least-privilege rules from charts/depin-operator/files/rbac.yaml.

use crate::{MANAGER, repo_root, yaml_documents};
use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use std::time::Duration;

/// Namespace the operator runs in.
pub const OPERATOR_NAMESPACE: &str = "depin-system";
/// Name of the operator's ServiceAccount, Deployment and Service.
pub const OPERATOR: &str = "depin-operator";

/// Applies every CRD in crds/ with server-side apply and waits until each is Established.
pub async fn install_crds(client: &Client) -> anyhow::Result<Vec<String>> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(repo_root().join("crds"))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        for doc in yaml_documents(&std::fs::read_to_string(&path)?)? {
            let name = doc["metadata"]["name"]
                .as_str()
                .context("crd name")?
                .to_string();
            api.patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(doc),
            )
            .await
            .with_context(|| format!("applying {}", path.display()))?;
            names.push(name);
        }
    }
    for name in &names {
        crate::eventually(
            &format!("CRD {name} established"),
            Duration::from_secs(30),
            || async {
                let crd = api.get(name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                Ok(established.then_some(()))
            },
        )
        .await?;
    }
    Ok(names)
}

/// The rules the operator is granted (the same file the Helm chart uses).
pub fn rbac_rules() -> anyhow::Result<(Vec<PolicyRule>, Vec<PolicyRule>)> {
    let text = std::fs::read_to_string(repo_root().join("charts/depin-operator/files/rbac.yaml"))?;
    let doc: serde_json::Value = serde_yaml::from_str(&text)?;
    Ok((
        serde_json::from_value(doc["clusterRules"].clone())?,
        serde_json::from_value(doc["namespaceRules"].clone())?,
    ))
}

/// Images the operator deployment uses (override with DEPIN_OPERATOR_IMAGE / DEPIN_AGENT_IMAGE).
pub fn images() -> (String, String) {
    (
        std::env::var("DEPIN_OPERATOR_IMAGE")
            .unwrap_or_else(|_| "localhost/depin-operator:dev".into()),
        std::env::var("DEPIN_AGENT_IMAGE").unwrap_or_else(|_| "localhost/depin-agent:dev".into()),
    )
}

/// Deploys (or updates) the operator and waits for its pod to be ready.
pub async fn deploy_operator(client: &Client) -> anyhow::Result<()> {
    let ns = OPERATOR_NAMESPACE;
    let pp = PatchParams::apply(MANAGER).force();
    let (cluster_rules, namespace_rules) = rbac_rules()?;
    let (operator_image, agent_image) = images();
    let apply = |api_version: &str, kind: &str, name: &str, body: serde_json::Value| {
        let mut body = body;
        body["apiVersion"] = api_version.into();
        body["kind"] = kind.into();
        body["metadata"]["name"] = name.into();
        (name.to_string(), body)
    };
    let (n, b) = apply("v1", "Namespace", ns, json!({"metadata": {}}));
    Api::<Namespace>::all(client.clone())
        .patch(&n, &pp, &Patch::Apply(b))
        .await?;
    let (n, b) = apply(
        "v1",
        "ServiceAccount",
        OPERATOR,
        json!({"metadata": {"namespace": ns}}),
    );
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .patch(&n, &pp, &Patch::Apply(b))
        .await?;
    let (n, b) = apply(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        OPERATOR,
        json!({"metadata": {}, "rules": cluster_rules}),
    );
    Api::<ClusterRole>::all(client.clone())
        .patch(&n, &pp, &Patch::Apply(b))
        .await?;
    let subject = json!([{"kind": "ServiceAccount", "name": OPERATOR, "namespace": ns}]);
    let (n, b) = apply(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        OPERATOR,
        json!({"metadata": {}, "subjects": subject, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR}}),
    );
    Api::<ClusterRoleBinding>::all(client.clone())
        .patch(&n, &pp, &Patch::Apply(b))
        .await?;
    let (n, b) = apply(
        "rbac.authorization.k8s.io/v1",
        "Role",
        OPERATOR,
        json!({"metadata": {"namespace": ns}, "rules": namespace_rules}),
    );
    Api::<Role>::namespaced(client.clone(), ns)
        .patch(&n, &pp, &Patch::Apply(b))
        .await?;
    let (n, b) = apply(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        OPERATOR,
        json!({"metadata": {"namespace": ns}, "subjects": subject, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": OPERATOR}}),
    );
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .patch(&n, &pp, &Patch::Apply(b))
        .await?;
    let labels =
        json!({"app.kubernetes.io/name": OPERATOR, "app.kubernetes.io/instance": OPERATOR});
    let env = json!([
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "DEPIN_AGENT_IMAGE", "value": agent_image},
        {"name": "DEPIN_RESYNC", "value": "60"},
        {"name": "RUST_LOG", "value": "info,depin_operator=debug"},
    ]);
    let (n, b) = apply(
        "apps/v1",
        "Deployment",
        OPERATOR,
        json!({
            "metadata": {"namespace": ns, "labels": labels},
            "spec": {
                "replicas": 1,
                // Standbys are not ready until they lead, so a surge pod would wait forever
                // for the old leader to go: replace pods one at a time instead.
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": OPERATOR,
                        "terminationGracePeriodSeconds": 10,
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "operator",
                            "image": operator_image,
                            "imagePullPolicy": "IfNotPresent",
                            "env": env,
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"name": "grpc", "containerPort": 50051, "protocol": "TCP"}],
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 2},
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}
                        }]
                    }
                }
            }
        }),
    );
    Api::<Deployment>::namespaced(client.clone(), ns)
        .patch(&n, &pp, &Patch::Apply(b))
        .await?;
    let (n, b) = apply(
        "v1",
        "Service",
        OPERATOR,
        json!({"metadata": {"namespace": ns, "labels": labels}, "spec": {"selector": labels, "ports": [
            {"name": "grpc", "port": 50051, "targetPort": "grpc", "protocol": "TCP"},
            {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
        ]}}),
    );
    Api::<Service>::namespaced(client.clone(), ns)
        .patch(&n, &pp, &Patch::Apply(b))
        .await?;
    wait_operator_ready(client).await
}

/// Waits until the operator Deployment has a ready, up-to-date pod.
pub async fn wait_operator_ready(client: &Client) -> anyhow::Result<()> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    crate::eventually(
        "operator deployment ready",
        Duration::from_secs(120),
        || async {
            let d = api.get(OPERATOR).await?;
            let generation = d.metadata.generation;
            let status = d.status.unwrap_or_default();
            let ready = status.observed_generation >= generation
                && status.ready_replicas.unwrap_or(0) >= 1
                && status.updated_replicas.unwrap_or(0) >= 1
                && status.replicas.unwrap_or(0) == status.updated_replicas.unwrap_or(0);
            Ok(ready.then_some(()))
        },
    )
    .await
}
