//! The node's identity Secret: generated once, imported on request, never overwritten.

use super::pod;
use crate::error::{Error, Result};
use depin_crds::{IdentitySpec, NodeSpec};
use depin_proof::identity::{NodeKey, PublicKey};
use depin_proto::config::{IDENTITY_KEY, IDENTITY_PUB, Role};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use std::collections::BTreeMap;

/// Annotation that lets the operator generate a new key for a node whose Secret was lost.
pub const ACCEPT_NEW_IDENTITY: &str = "depin.dev/accept-new-identity";

/// Type of the Secrets the operator generates.
pub const SECRET_TYPE: &str = "depin.dev/identity";

/// The identity a node runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// Secret holding the key.
    pub secret_name: String,
    /// Public half, for status and the verifier.
    pub public_key: PublicKey,
}

/// Name of the Secret a node's identity lives in.
pub fn secret_name(node: &str, spec: Option<&IdentitySpec>) -> String {
    spec.and_then(|i| i.secret_name.clone())
        .unwrap_or_else(|| format!("{node}-identity"))
}

/// Pure: a new identity Secret for node `name` holding `key`.
pub fn build_secret(
    name: &str,
    namespace: &str,
    labels: BTreeMap<String, String>,
    owner: Option<OwnerReference>,
    key: &NodeKey,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(labels),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some(SECRET_TYPE.into()),
        data: Some(BTreeMap::from([
            (IDENTITY_KEY.into(), ByteString(key.seed_hex().into_bytes())),
            (
                IDENTITY_PUB.into(),
                ByteString(key.public().to_hex().into_bytes()),
            ),
        ])),
        ..Secret::default()
    }
}

/// Reads the public key out of an identity Secret, naming the Secret and key on failure.
pub fn public_key_of(secret: &Secret) -> Result<PublicKey> {
    key_of(secret).map(|k| k.public())
}

/// The key pair an identity Secret holds; errors name the Secret and the data key, never
/// the key material.
pub fn key_of(secret: &Secret) -> Result<NodeKey> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let problem = |p: &str| Error::Identity {
        secret: name.clone(),
        problem: p.into(),
    };
    let seed = secret
        .data
        .as_ref()
        .and_then(|d| d.get(IDENTITY_KEY))
        .ok_or_else(|| problem(&format!("has no {IDENTITY_KEY} key")))?;
    let text = std::str::from_utf8(&seed.0)
        .map_err(|_| problem(&format!("{IDENTITY_KEY} is not text")))?;
    // The error names only the key, never its content.
    NodeKey::from_hex(text, "ed25519.key").map_err(|e| problem(&e.to_string()))
}

/// Makes sure node `name` has an identity and returns it. A generated Secret is created
/// exactly once; an existing one, even a broken one, is never overwritten; and a node whose
/// status already shows a key never silently gets a new one if its Secret disappears.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename the arguments
pub async fn ensure<S: NodeSpec>(
    client: &Client,
    namespace: &str,
    name: &str,
    kind: &str,
    role: Role,
    spec: &S,
    owner: OwnerReference,
    known_public_key: Option<&str>,
) -> Result<Identity> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret_name = secret_name(name, spec.identity());
    let imported = spec
        .identity()
        .and_then(|i| i.secret_name.as_ref())
        .is_some();
    let retained = IdentitySpec::retained(spec.identity());
    let secret = match api.get_opt(&secret_name).await? {
        Some(secret) => secret,
        None if imported => {
            return Err(Error::Identity {
                secret: secret_name,
                problem: "not found (spec.identity.secretName)".into(),
            });
        }
        None if known_public_key.is_some() => {
            return Err(Error::Identity {
                secret: secret_name,
                problem: format!(
                    "not found, but the node already has public key {}; restore the Secret (a new key would \
                     orphan the node's proofs and rewards) or annotate the node {ACCEPT_NEW_IDENTITY}=true",
                    known_public_key.unwrap_or_default()
                ),
            });
        }
        None => {
            let owner = (!retained).then(|| owner.clone());
            let fresh = build_secret(
                &secret_name,
                namespace,
                pod::labels(name, kind, role),
                owner,
                &NodeKey::generate(),
            );
            match api.create(&PostParams::default(), &fresh).await {
                Ok(created) => created,
                // Another reconcile won the race; use what it wrote.
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    api.get(&secret_name).await?
                }
                Err(err) => return Err(err.into()),
            }
        }
    };
    if let Some(holder) = generated_for_another(&secret, namespace, name, kind) {
        return Err(Error::DuplicateKey {
            secret: secret_name,
            holder,
        });
    }
    let public_key = public_key_of(&secret)?;
    if !imported {
        sync_ownership(&api, &secret, &owner, retained).await?;
    }
    Ok(Identity {
        secret_name,
        public_key,
    })
}

/// Pure: the node (`Kind namespace/name`) a generated identity Secret belongs to, when
/// that is not `name` of `kind`. Generated Secrets carry their node's labels (kept when
/// `retainOnDelete` drops the owner reference); a Secret the user made has none and may
/// be imported by exactly the node that names it (the verifier keeps a shared key with
/// the older node).
pub fn generated_for_another(
    secret: &Secret,
    namespace: &str,
    name: &str,
    kind: &str,
) -> Option<String> {
    let labels = secret.metadata.labels.as_ref()?;
    let node = labels.get(pod::NODE_LABEL)?;
    let holder_kind = labels.get(pod::KIND_LABEL).map_or("", String::as_str);
    (node != name || holder_kind != kind).then(|| format!("{holder_kind} {namespace}/{node}"))
}

/// Adds or removes our owner reference so garbage collection follows `retainOnDelete`.
async fn sync_ownership(
    api: &Api<Secret>,
    secret: &Secret,
    owner: &OwnerReference,
    retained: bool,
) -> Result<()> {
    let refs = secret.metadata.owner_references.clone().unwrap_or_default();
    let owned = refs.iter().any(|r| r.uid == owner.uid);
    let wanted: Vec<OwnerReference> = match (retained, owned) {
        (true, true) => refs.into_iter().filter(|r| r.uid != owner.uid).collect(),
        (false, false) => refs
            .into_iter()
            .chain(std::iter::once(owner.clone()))
            .collect(),
        _ => return Ok(()),
    };
    let name = secret.metadata.name.clone().unwrap_or_default();
    let patch = serde_json::json!({"metadata": {"ownerReferences": wanted}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_secret_round_trips_and_keeps_the_seed_out_of_metadata() {
        let key = NodeKey::from_seed([3; 32]);
        let secret = build_secret("n-identity", "fleet", BTreeMap::new(), None, &key);
        assert_eq!(public_key_of(&secret).expect("valid"), key.public());
        assert!(
            !serde_json::to_string(&secret.metadata)
                .expect("json")
                .contains(&key.seed_hex())
        );
        assert_eq!(secret.type_.as_deref(), Some(SECRET_TYPE));
    }

    #[test]
    fn a_secret_generated_for_another_node_is_refused() {
        let key = NodeKey::from_seed([3; 32]);
        let labels = pod::labels("alice", "HotspotGateway", Role::Hotspot);
        let secret = build_secret("alice-identity", "fleet", labels, None, &key);
        // Its own node, and a user-made Secret without node labels: fine.
        assert_eq!(
            generated_for_another(&secret, "fleet", "alice", "HotspotGateway"),
            None
        );
        let unlabelled = build_secret("mine", "fleet", BTreeMap::new(), None, &key);
        assert_eq!(
            generated_for_another(&unlabelled, "fleet", "eve", "HotspotGateway"),
            None
        );
        // Another node naming it, and a same-named node of another kind (whose default
        // Secret name `<name>-identity` collides): refused, naming the holder.
        assert_eq!(
            generated_for_another(&secret, "fleet", "eve", "HotspotGateway").as_deref(),
            Some("HotspotGateway fleet/alice")
        );
        assert_eq!(
            generated_for_another(&secret, "fleet", "alice", "StorageNode").as_deref(),
            Some("HotspotGateway fleet/alice")
        );
        let err = Error::DuplicateKey {
            secret: "alice-identity".into(),
            holder: "HotspotGateway fleet/alice".into(),
        };
        assert_eq!(err.reason(), "DuplicateKey");
        assert!(
            err.to_string().contains("spec.identity.secretName"),
            "{err}"
        );
    }

    #[test]
    fn broken_secret_names_secret_and_key() {
        let mut secret = build_secret(
            "n-identity",
            "fleet",
            BTreeMap::new(),
            None,
            &NodeKey::from_seed([3; 32]),
        );
        secret
            .data
            .as_mut()
            .expect("data")
            .insert(IDENTITY_KEY.into(), ByteString(b"zz".to_vec()));
        let err = public_key_of(&secret).expect_err("bad").to_string();
        assert_eq!(
            err,
            "identity secret n-identity: ed25519.key: not valid hex"
        );
        secret.data = None;
        let err = public_key_of(&secret).expect_err("missing").to_string();
        assert_eq!(err, "identity secret n-identity: has no ed25519.key key");
    }
}
