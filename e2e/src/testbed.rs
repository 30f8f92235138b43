//! The common start of every end-to-end test: CRDs and the operator (from the chart)
//! installed, the documented RewardPolicy applied, and the documented examples at hand.

use crate::{apply, client, condition, deploy, eventually, repo_root, yaml_documents};
use depin_crds::{NodeStatus, RewardPolicy};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::Duration;

/// How long a node may take to become Ready (image start, volume fill, first probes).
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Installs the CRDs and the operator, applies the example policy, returns a client.
pub async fn setup() -> anyhow::Result<Client> {
    let client = client().await?;
    deploy::install_crds(&client).await?;
    deploy::deploy_operator(&client).await?;
    let policies: Api<RewardPolicy> = Api::all(client.clone());
    let example = example_docs()?
        .into_iter()
        .find(|d| d["kind"] == "RewardPolicy")
        .ok_or_else(|| anyhow::anyhow!("no RewardPolicy in examples/minimal-fleet.yaml"))?;
    apply(&policies, &serde_json::from_value(example)?).await?;
    Ok(client)
}

fn example_docs() -> anyhow::Result<Vec<serde_json::Value>> {
    yaml_documents(&std::fs::read_to_string(
        repo_root().join("examples/minimal-fleet.yaml"),
    )?)
}

/// The documented example of `K`, moved into namespace `ns`.
pub fn example<K: Resource<DynamicType = ()> + DeserializeOwned>(ns: &str) -> anyhow::Result<K> {
    let kind = K::kind(&());
    let mut doc = example_docs()?
        .into_iter()
        .find(|d| d["kind"] == *kind)
        .ok_or_else(|| anyhow::anyhow!("no {kind} in examples/minimal-fleet.yaml"))?;
    doc["metadata"]["namespace"] = ns.into();
    Ok(serde_json::from_value(doc)?)
}

/// Waits until the node's Ready condition is True and returns its status.
pub async fn wait_ready<K>(
    api: &Api<K>,
    name: &str,
    status: fn(&K) -> Option<&NodeStatus>,
) -> anyhow::Result<NodeStatus>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    eventually(&format!("{name} Ready=True"), READY_TIMEOUT, || async {
        let node = api.get(name).await?;
        let s = status(&node).cloned();
        Ok((condition(s.as_ref(), "Ready").as_deref() == Some("True"))
            .then_some(s)
            .flatten())
    })
    .await
}

/// The hex public key an identity Secret holds.
pub fn secret_pub(secret: &Secret) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get("ed25519.pub"))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default()
}

/// The hex seed an identity Secret holds (tests only: they impersonate nodes).
pub fn secret_seed(secret: &Secret) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get("ed25519.key"))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default()
}
