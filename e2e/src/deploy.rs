//! Installs what the tests run against: the CRDs from crds/ and the operator rendered from
//! the Helm chart, so it runs under the chart's own ServiceAccount and least-privilege RBAC.

use crate::{MANAGER, repo_root, yaml_documents};
use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
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

/// Images the operator deployment uses (override with DEPIN_OPERATOR_IMAGE / DEPIN_AGENT_IMAGE).
pub fn images() -> (String, String) {
    (
        std::env::var("DEPIN_OPERATOR_IMAGE")
            .unwrap_or_else(|_| "localhost/depin-operator:dev".into()),
        std::env::var("DEPIN_AGENT_IMAGE").unwrap_or_else(|_| "localhost/depin-agent:dev".into()),
    )
}

/// Renders the Helm chart (real Helm, through charts/render.py) with the values for the
/// cluster under test. `DEPIN_CHART_VALUES` names another values file and
/// `DEPIN_KUBE_VERSION` the cluster's version (the local harness: 1.20.2).
pub fn render_chart() -> anyhow::Result<Vec<serde_json::Value>> {
    let root = repo_root();
    let values = std::env::var("DEPIN_CHART_VALUES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("charts/depin-operator/ci/local-cluster-values.yaml"));
    let kube_version = std::env::var("DEPIN_KUBE_VERSION").unwrap_or_else(|_| "1.20.2".into());
    let (operator_image, agent_image) = images();
    let output = std::process::Command::new("python3")
        .arg(root.join("charts/render.py"))
        .args(["-f".as_ref(), values.as_os_str()])
        .args(["--image", &operator_image, "--agent-image", &agent_image])
        .args([
            "--kube-version",
            &kube_version,
            "-n",
            OPERATOR_NAMESPACE,
            "--create-namespace",
        ])
        .output()
        .context("running charts/render.py")?;
    anyhow::ensure!(
        output.status.success(),
        "charts/render.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    yaml_documents(&String::from_utf8(output.stdout)?)
}

/// Deploys (or updates) the operator from the Helm chart and waits for its pod to be ready.
pub async fn deploy_operator(client: &Client) -> anyhow::Result<()> {
    let docs = render_chart()?;
    crate::apply_documents(client, &docs).await?;
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
