//! Where tallies are made durable: the node CR's `status.proofs` and
//! `status.previousProofs` (one server-side apply under its own field manager), or memory
//! in tests. The seam is this one small trait.

use crate::verifier::decide::tally::NodeTallies;
use crate::verifier::state::index::NodeId;
use depin_crds::ProofTally;
use depin_proto::config::Role;
use futures::future::BoxFuture;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Field manager of `status.proofs`: distinct from the node controller's "depin-operator",
/// which owns conditions and publicKey, so neither apply ever removes the other's fields.
pub const VERIFIER_FIELD_MANAGER: &str = "depin-verifier";

/// Why a tally could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The CR is gone (or was re-created under a new uid): nothing to record into.
    #[error("{0} no longer exists")]
    Gone(String),
    /// The API refused or failed; worth retrying.
    #[error("status.proofs of {node}: {message}")]
    Api {
        /// The node.
        node: String,
        /// What went wrong.
        message: String,
    },
}

/// Durable storage for per-node tallies.
pub trait TallySink: Send + Sync + 'static {
    /// The tallies stored for `node` (both None when it has none yet).
    fn load<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, Result<NodeTallies, SinkError>>;
    /// Stores `tallies` as `node`'s tallies, both in one write; durable once this resolves Ok.
    fn store<'a>(
        &'a self,
        node: &'a NodeId,
        tallies: &'a NodeTallies,
    ) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// Tallies in memory, for tests and benchmarks; counts writes so batching is observable.
#[derive(Default)]
pub struct MemorySink {
    tallies: Mutex<HashMap<(String, String), NodeTallies>>,
    writes: Mutex<u64>,
}

impl MemorySink {
    /// The stored current tally (`status.proofs`) of `namespace/name`.
    pub fn tally(&self, namespace: &str, name: &str) -> Option<ProofTally> {
        self.tallies(namespace, name).proofs
    }

    /// Both stored tallies of `namespace/name`.
    pub fn tallies(&self, namespace: &str, name: &str) -> NodeTallies {
        let tallies = self.tallies.lock().unwrap_or_else(PoisonError::into_inner);
        tallies
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Writes so far.
    pub fn writes(&self) -> u64 {
        *self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TallySink for MemorySink {
    fn load<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, Result<NodeTallies, SinkError>> {
        Box::pin(async move { Ok(self.tallies(&node.namespace, &node.name)) })
    }

    fn store<'a>(
        &'a self,
        node: &'a NodeId,
        stored: &'a NodeTallies,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let mut tallies = self.tallies.lock().unwrap_or_else(PoisonError::into_inner);
            tallies.insert((node.namespace.clone(), node.name.clone()), stored.clone());
            *self.writes.lock().unwrap_or_else(PoisonError::into_inner) += 1;
            Ok(())
        })
    }
}

/// The real sink: `status.proofs` of the node CR.
pub struct KubeSink {
    client: Client,
}

impl KubeSink {
    /// A sink writing through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    fn api(&self, node: &NodeId) -> (Api<DynamicObject>, ApiResource) {
        let resource = match node.role {
            Role::Hotspot => ApiResource::erase::<depin_crds::HotspotGateway>(&()),
            Role::Storage => ApiResource::erase::<depin_crds::StorageNode>(&()),
            Role::Gpu => ApiResource::erase::<depin_crds::GpuWorker>(&()),
            Role::Meter => ApiResource::erase::<depin_crds::MeterBridge>(&()),
        };
        (
            Api::namespaced_with(self.client.clone(), &node.namespace, &resource),
            resource,
        )
    }
}

/// `status.<field>` as a tally; absent or null is None.
fn parse_tally(
    node: &NodeId,
    status: Option<&serde_json::Value>,
    field: &str,
) -> Result<Option<ProofTally>, SinkError> {
    parse_field(node, status, field)
}

/// `status.<field>` of a node CR; one that does not parse is an error naming the field,
/// never silently a fresh start (which could restart a meter chain from a new baseline).
fn parse_field<T: serde::de::DeserializeOwned>(
    node: &NodeId,
    status: Option<&serde_json::Value>,
    field: &str,
) -> Result<Option<T>, SinkError> {
    match status.and_then(|s| s.get(field)) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| SinkError::Api {
                node: node.to_string(),
                message: format!("status.{field} does not parse: {e}"),
            }),
    }
}

fn api_error(node: &NodeId, err: kube::Error) -> SinkError {
    match err {
        kube::Error::Api(status) if status.code == 404 => SinkError::Gone(node.to_string()),
        other => SinkError::Api {
            node: node.to_string(),
            message: other.to_string(),
        },
    }
}

impl TallySink for KubeSink {
    fn load<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, Result<NodeTallies, SinkError>> {
        Box::pin(async move {
            let (api, _) = self.api(node);
            // A direct GET rather than the watch cache: the previous leader's last write
            // must be seen, or restarting would count from a stale tally.
            let object = api
                .get_status(&node.name)
                .await
                .map_err(|e| api_error(node, e))?;
            if object.metadata.uid.as_deref() != Some(node.uid.as_str()) {
                return Err(SinkError::Gone(node.to_string()));
            }
            let status = object.data.get("status");
            Ok(NodeTallies {
                proofs: parse_tally(node, status, "proofs")?,
                previous: parse_tally(node, status, "previousProofs")?,
                meter: parse_field(node, status, "meter")?,
                poc: parse_field(node, status, "poc")?,
                unclosed: parse_field(node, status, "unclosedProofs")?.unwrap_or_default(),
                storage: parse_field(node, status, "storage")?,
            })
        })
    }

    fn store<'a>(
        &'a self,
        node: &'a NodeId,
        tallies: &'a NodeTallies,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let (api, resource) = self.api(node);
            // Both fields in one apply: a rollover is never half-written. A None field is
            // left out, which releases it from this manager.
            let mut status = serde_json::Map::new();
            if let Some(proofs) = &tallies.proofs {
                status.insert("proofs".into(), serde_json::json!(proofs));
            }
            if let Some(previous) = &tallies.previous {
                status.insert("previousProofs".into(), serde_json::json!(previous));
            }
            if let Some(meter) = &tallies.meter {
                status.insert("meter".into(), serde_json::json!(meter));
            }
            if let Some(poc) = &tallies.poc {
                status.insert("poc".into(), serde_json::json!(poc));
            }
            if let Some(storage) = &tallies.storage {
                status.insert("storage".into(), serde_json::json!(storage));
            }
            if !tallies.unclosed.is_empty() {
                status.insert("unclosedProofs".into(), serde_json::json!(tallies.unclosed));
            }
            let body = serde_json::json!({
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "status": status,
            });
            // force: the verifier is the only intended owner of status.proofs; taking it over
            // from a hand edit is right.
            let params = PatchParams::apply(VERIFIER_FIELD_MANAGER).force();
            api.patch_status(&node.name, &params, &Patch::Apply(body))
                .await
                .map_err(|e| api_error(node, e))?;
            Ok(())
        })
    }
}
