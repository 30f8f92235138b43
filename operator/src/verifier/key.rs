//! The verifier's identity: one ed25519 key in a Secret in the operator's namespace,
//! created once by the first leader and read by every later one, so receipts are signed by
//! the same key across restarts and failovers and agents can pin it (their ConfigMap holds
//! its public half; a verifier without it is refused and the agent keeps its outbox).

use crate::controllers::identity::{build_secret, key_of};
use depin_proof::identity::NodeKey;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};
use std::collections::BTreeMap;

/// Reads the verifier key from Secret `name` in `namespace`, creating it (with a fresh
/// key) when it does not exist; a replica that loses the creation race reads the winner's.
/// A Secret that exists but holds no valid key is an error, never overwritten.
pub async fn load_or_create(
    client: &Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<NodeKey> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = match api.get_opt(name).await? {
        Some(secret) => secret,
        None => {
            let labels = BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "depin-operator".to_string(),
                ),
                (
                    "app.kubernetes.io/component".to_string(),
                    "verifier".to_string(),
                ),
            ]);
            let fresh = build_secret(name, namespace, labels, None, &NodeKey::generate());
            match api.create(&PostParams::default(), &fresh).await {
                Ok(created) => {
                    tracing::info!(secret = name, "verifier key created");
                    created
                }
                Err(kube::Error::Api(status)) if status.code == 409 => api.get(name).await?,
                Err(err) => return Err(err.into()),
            }
        }
    };
    Ok(key_of(&secret)?)
}
