//! Where tallies are made durable: the node CR's `status.proofs` (server-side apply under
//! its own field manager), or memory in tests. The seam is this one small trait.

use super::index::NodeId;
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
    /// The tally stored for `node` (None when it has none yet).
    fn load<'a>(&'a self, node: &'a NodeId)
    -> BoxFuture<'a, Result<Option<ProofTally>, SinkError>>;
    /// Stores `tally` as `node`'s tally; durable once this resolves Ok.
    fn store<'a>(
        &'a self,
        node: &'a NodeId,
        tally: &'a ProofTally,
    ) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// Tallies in memory, for tests and benchmarks; counts writes so batching is observable.
#[derive(Default)]
pub struct MemorySink {
    tallies: Mutex<HashMap<(String, String), ProofTally>>,
    writes: Mutex<u64>,
}

impl MemorySink {
    /// The stored tally of `namespace/name`.
    pub fn tally(&self, namespace: &str, name: &str) -> Option<ProofTally> {
        let tallies = self.tallies.lock().unwrap_or_else(PoisonError::into_inner);
        tallies
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Writes so far.
    pub fn writes(&self) -> u64 {
        *self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TallySink for MemorySink {
    fn load<'a>(
        &'a self,
        node: &'a NodeId,
    ) -> BoxFuture<'a, Result<Option<ProofTally>, SinkError>> {
        Box::pin(async move { Ok(self.tally(&node.namespace, &node.name)) })
    }

    fn store<'a>(
        &'a self,
        node: &'a NodeId,
        tally: &'a ProofTally,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let mut tallies = self.tallies.lock().unwrap_or_else(PoisonError::into_inner);
            tallies.insert((node.namespace.clone(), node.name.clone()), tally.clone());
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
    fn load<'a>(
        &'a self,
        node: &'a NodeId,
    ) -> BoxFuture<'a, Result<Option<ProofTally>, SinkError>> {
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
            let proofs = object
                .data
                .get("status")
                .and_then(|s| s.get("proofs"))
                .cloned();
            match proofs {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(value) => {
                    serde_json::from_value(value)
                        .map(Some)
                        .map_err(|e| SinkError::Api {
                            node: node.to_string(),
                            message: format!("status.proofs does not parse: {e}"),
                        })
                }
            }
        })
    }

    fn store<'a>(
        &'a self,
        node: &'a NodeId,
        tally: &'a ProofTally,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let (api, resource) = self.api(node);
            let body = serde_json::json!({
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "status": {"proofs": tally},
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
