//! Helpers for tests against a live cluster: the local harness (`e2e/cluster.sh`) by
//! default, or any cluster KUBECONFIG points at.

pub mod chaos;
pub mod deploy;
pub mod fleet;
pub mod rogue;
pub mod testbed;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Field manager for everything the tests apply.
pub const MANAGER: &str = "depin-e2e";

/// The repository root (for crds/, examples/, charts/).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The local harness's kubeconfig (what `e2e/cluster.sh kubeconfig` prints).
pub fn harness_kubeconfig() -> PathBuf {
    let cache = std::env::var_os("DEPIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/depin-operator")
        });
    cache.join("cluster/kubeconfig")
}

/// A client for the cluster under test: KUBECONFIG when set, else the local harness.
pub async fn client() -> anyhow::Result<Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let harness = harness_kubeconfig();
    if std::env::var_os("KUBECONFIG").is_none() && harness.exists() {
        let kubeconfig = kube::config::Kubeconfig::read_from(&harness)?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        return Ok(Client::try_from(config)?);
    }
    Client::try_default()
        .await
        .context("no cluster: run `e2e/cluster.sh up` or set KUBECONFIG")
}

/// GET on the operator's HTTP port (manifests, claims, metrics) through the API server's
/// service proxy, so it works from outside the cluster network too.
pub async fn operator_get(client: &Client, path: &str) -> anyhow::Result<String> {
    let path = format!(
        "/api/v1/namespaces/{}/services/{}:http/proxy{path}",
        deploy::OPERATOR_NAMESPACE,
        deploy::OPERATOR
    );
    let request = http::Request::get(path).body(Vec::new())?;
    Ok(client.request_text(request).await?)
}

/// A namespace created for one test, deleted by [`TestNamespace::cleanup`].
pub struct TestNamespace {
    /// Its name.
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates `depin-e2e-<prefix>-<random>`.
    pub async fn create(client: &Client, prefix: &str) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!("e2e-{prefix}-{:05x}", nanos & 0xfffff);
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(Self {
            name,
            client: client.clone(),
        })
    }

    /// A namespaced API in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Deletes the namespace (and everything in it) without waiting.
    pub async fn cleanup(self) {
        let _ = Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::background())
            .await;
    }
}

/// Server-side applies `obj` with the test field manager.
pub async fn apply<K>(api: &Api<K>, obj: &K) -> anyhow::Result<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let mut body = serde_json::to_value(obj)?;
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    Ok(api
        .patch(
            &obj.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(body),
        )
        .await?)
}

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what` and the last
/// observation, so a failing test says what it was waiting for.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        let last = match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => "condition not met".to_string(),
            Err(err) => format!("{err:#}"),
        };
        if start.elapsed() > timeout {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The status of condition `type_` on a node CR, if present.
pub fn condition(status: Option<&depin_crds::NodeStatus>, type_: &str) -> Option<String> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

/// Parses every document of a YAML file into JSON values.
pub fn yaml_documents(text: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| serde_json::Value::deserialize(doc).map_err(anyhow::Error::from))
        .filter(|v| !matches!(v, Ok(serde_json::Value::Null)))
        .collect()
}

/// Server-side applies every document (any kind the cluster knows), in order.
pub async fn apply_documents(client: &Client, docs: &[serde_json::Value]) -> anyhow::Result<()> {
    for doc in docs {
        let api_version = doc["apiVersion"].as_str().context("apiVersion")?;
        let kind = doc["kind"].as_str().context("kind")?;
        let name = doc["metadata"]["name"].as_str().context("metadata.name")?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = kube::discovery::pinned_kind(client, &gvk).await?;
        let api: Api<kube::api::DynamicObject> =
            match (caps.scope, doc["metadata"]["namespace"].as_str()) {
                (kube::discovery::Scope::Namespaced, Some(ns)) => {
                    Api::namespaced_with(client.clone(), ns, &resource)
                }
                (kube::discovery::Scope::Namespaced, None) => {
                    Api::default_namespaced_with(client.clone(), &resource)
                }
                (kube::discovery::Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
            };
        api.patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(doc),
        )
        .await
        .with_context(|| format!("applying {kind}/{name}"))?;
    }
    Ok(())
}
