//! Where closed epochs' manifests live: ConfigMap shards `<policy>-<e>-<root16>-<i>` in
//! the operator's namespace (durable, written before the RewardEpoch commit), and the
//! latest few per policy in memory (what the claim endpoint serves).
//!
//! Shards are named by the manifest's root, so they are content-addressed: a replica that
//! computed epoch `e` differently (a paused leader resuming after losing its Lease, say)
//! writes shards under another name and can never overwrite the committed ones; the
//! RewardEpoch's root says which shards are the epoch's. Shards under the old name
//! (`<policy>-<e>-manifest-<i>`) are still read.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use super::manifest::{ManifestError, Published, SHARD_BYTES, shards};

/// Field manager of everything the reward controller writes.
pub const REWARDS_FIELD_MANAGER: &str = "depin-rewards";
/// Annotation on every shard: how many shards the manifest has.
const SHARD_COUNT: &str = "depin.dev/manifest-shards";
/// Latest manifests kept in memory per policy.
const KEEP: usize = 4;
/// Older manifests (asked for by the manifest endpoint) kept in memory, all policies
/// together: a client reading one old epoch again is not a fresh apiserver load.
const ARCHIVED: usize = 2;

/// Why a manifest could not be stored or loaded.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// The API failed; retried on the next tick.
    #[error("manifest shard {name}: {source}")]
    Api {
        /// The ConfigMap.
        name: String,
        /// The failure.
        source: kube::Error,
    },
    /// A shard is missing or the bytes do not check out.
    #[error("manifest of {policy} epoch {epoch}: {problem}")]
    Corrupt {
        /// The policy.
        policy: String,
        /// The epoch.
        epoch: u64,
        /// What is wrong.
        problem: String,
    },
}

impl From<(String, kube::Error)> for BookError {
    fn from((name, source): (String, kube::Error)) -> Self {
        Self::Api { name, source }
    }
}

/// Hex digits of the root in a shard's name: 64 bits, so two different manifests of one
/// epoch collide only by a 2^-64 chance (and a collision is caught: the root is checked).
const ROOT_IN_NAME: usize = 16;

/// The name of shard `i` of the manifest with hex root `root` of `policy`'s epoch `epoch`.
pub fn shard_name(policy: &str, epoch: u64, root: &str, i: usize) -> String {
    let prefix = root.get(..ROOT_IN_NAME).unwrap_or(root);
    format!("{policy}-{epoch}-{prefix}-{i}")
}

/// Shard names before they were content-addressed.
fn legacy_shard_name(policy: &str, epoch: u64, i: usize) -> String {
    format!("{policy}-{epoch}-manifest-{i}")
}

/// The latest epochs per policy, by epoch number.
type Recent = HashMap<String, BTreeMap<u64, Arc<Published>>>;
/// Older epochs with their policy, newest last.
type Older = std::collections::VecDeque<(String, Arc<Published>)>;

/// Closed epochs' manifests: memory in front of ConfigMap shards. Cheap to clone.
#[derive(Clone)]
pub struct Book {
    client: Client,
    namespace: String,
    recent: Arc<RwLock<Recent>>,
    /// The last few older manifests that dropped out of `recent`, newest last.
    older: Arc<RwLock<Older>>,
}

impl Book {
    /// A book storing shards in `namespace`.
    pub fn new(client: Client, namespace: String) -> Self {
        Self {
            client,
            namespace,
            recent: Arc::default(),
            older: Arc::default(),
        }
    }

    fn api(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Writes `manifest` as shards (server-side apply: rewriting an uncommitted epoch's
    /// shards is harmless, they are only read once its RewardEpoch exists).
    pub async fn store(
        &self,
        policy: &str,
        epoch: u64,
        root: &str,
        manifest: &str,
    ) -> Result<(), BookError> {
        let parts = shards(manifest, SHARD_BYTES);
        let params = PatchParams::apply(REWARDS_FIELD_MANAGER).force();
        for (i, part) in parts.iter().enumerate() {
            let name = shard_name(policy, epoch, root, i);
            let body = serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "labels": {
                        "app.kubernetes.io/managed-by": "depin-operator",
                        "depin.dev/reward-policy": policy,
                        "depin.dev/reward-epoch": epoch.to_string(),
                    },
                    "annotations": {
                        SHARD_COUNT: parts.len().to_string(),
                        "depin.dev/manifest-root": root,
                    },
                },
                "data": {"manifest": part},
            });
            self.api()
                .patch(&name, &params, &Patch::Apply(body))
                .await
                .map_err(|e| (name.clone(), e))?;
        }
        Ok(())
    }

    /// Deletes `policy`'s shards of epochs older than the `retention` latest, `latest`
    /// included (0 keeps everything); returns how many were deleted. Runs after each
    /// close, so the previous epoch (which the next close reads) is always kept.
    pub async fn collect(
        &self,
        policy: &str,
        latest: u64,
        retention: u64,
    ) -> Result<usize, BookError> {
        let selector = format!("depin.dev/reward-policy={policy}");
        let list = self
            .api()
            .list_metadata(&kube::api::ListParams::default().labels(&selector))
            .await
            .map_err(|e| (selector.clone(), e))?;
        let mut deleted = 0;
        for shard in list.items {
            let epoch = shard
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("depin.dev/reward-epoch"))
                .and_then(|e| e.parse().ok());
            let (Some(epoch), Some(name)) = (epoch, shard.metadata.name) else {
                continue;
            };
            if !expired(epoch, latest, retention) {
                continue;
            }
            match self.api().delete(&name, &Default::default()).await {
                Ok(_) => deleted += 1,
                // Another replica or an earlier run got there first.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err((name, err).into()),
            }
        }
        Ok(deleted)
    }

    /// Loads a committed epoch's manifest from its shards and checks it against `root`
    /// (the RewardEpoch's hex merkleRoot). None when shard 0 does not exist.
    pub async fn load(
        &self,
        policy: &str,
        epoch: u64,
        root: &str,
    ) -> Result<Option<Arc<Published>>, BookError> {
        let corrupt = |problem: String| BookError::Corrupt {
            policy: policy.into(),
            epoch,
            problem,
        };
        let mut name_of: fn(&str, u64, &str, usize) -> String = shard_name;
        let mut first_name = name_of(policy, epoch, root, 0);
        let mut first = self
            .api()
            .get_opt(&first_name)
            .await
            .map_err(|e| (first_name.clone(), e))?;
        if first.is_none() {
            name_of = |policy, epoch, _root, i| legacy_shard_name(policy, epoch, i);
            first_name = name_of(policy, epoch, root, 0);
            first = self
                .api()
                .get_opt(&first_name)
                .await
                .map_err(|e| (first_name.clone(), e))?;
        }
        let Some(first) = first else {
            return Ok(None);
        };
        let count: usize = first
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SHARD_COUNT))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| corrupt(format!("{first_name} lacks {SHARD_COUNT}")))?;
        let mut text = shard_text(&first);
        for i in 1..count {
            let name = name_of(policy, epoch, root, i);
            let shard = self.api().get(&name).await.map_err(|e| (name, e))?;
            text.push_str(&shard_text(&shard));
        }
        let published =
            Published::parse(text.into()).map_err(|e: ManifestError| corrupt(e.to_string()))?;
        if hex::encode(published.root) != root {
            return Err(corrupt(format!(
                "root differs from the RewardEpoch's {root}"
            )));
        }
        let published = Arc::new(published);
        self.remember(policy, published.clone());
        Ok(Some(published))
    }

    /// Keeps `published` in memory as one of `policy`'s latest epochs.
    pub fn remember(&self, policy: &str, published: Arc<Published>) {
        let mut recent = self.recent.write().unwrap_or_else(PoisonError::into_inner);
        let epochs = recent.entry(policy.to_string()).or_default();
        epochs.insert(published.epoch, published);
        let mut dropped = Vec::new();
        while epochs.len() > KEEP {
            dropped.extend(epochs.pop_first());
        }
        drop(recent);
        let mut older = self.older.write().unwrap_or_else(PoisonError::into_inner);
        for (_, manifest) in dropped {
            older.retain(|(p, m)| !(p == policy && m.epoch == manifest.epoch));
            older.push_back((policy.to_string(), manifest));
            while older.len() > ARCHIVED {
                older.pop_front();
            }
        }
    }

    /// `policy`'s epoch `epoch` if it is in memory.
    pub fn cached(&self, policy: &str, epoch: u64) -> Option<Arc<Published>> {
        let recent = self.recent.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = recent.get(policy).and_then(|e| e.get(&epoch)) {
            return Some(found.clone());
        }
        drop(recent);
        let older = self.older.read().unwrap_or_else(PoisonError::into_inner);
        older
            .iter()
            .find(|(p, m)| p == policy && m.epoch == epoch)
            .map(|(_, m)| m.clone())
    }

    /// `policy`'s latest epoch in memory (the controller loads it at startup).
    pub fn latest(&self, policy: &str) -> Option<Arc<Published>> {
        let recent = self.recent.read().unwrap_or_else(PoisonError::into_inner);
        recent.get(policy)?.last_key_value().map(|(_, p)| p.clone())
    }

    /// The client the book reads through.
    /// The namespace shards (and burn records) live in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Kubernetes client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// Pure: whether epoch `epoch`'s shards fall outside the `retention` latest epochs up to
/// `latest` (0: nothing expires).
pub fn expired(epoch: u64, latest: u64, retention: u64) -> bool {
    retention > 0 && epoch < latest && latest - epoch >= retention
}

fn shard_text(shard: &ConfigMap) -> String {
    shard
        .data
        .as_ref()
        .and_then(|d| d.get("manifest"))
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::expired;

    #[test]
    fn shards_are_named_by_their_manifests_root() {
        let root = "ab".repeat(32);
        let other = format!("cd{}", &root[2..]);
        assert_eq!(
            super::shard_name("default", 7, &root, 2),
            "default-7-abababababababab-2"
        );
        assert_ne!(
            super::shard_name("default", 7, &root, 0),
            super::shard_name("default", 7, &other, 0),
            "another computation of the epoch cannot overwrite the committed shards"
        );
        assert_eq!(
            super::legacy_shard_name("default", 7, 0),
            "default-7-manifest-0"
        );
    }

    #[test]
    fn retention_keeps_the_latest_epochs_and_zero_keeps_all() {
        // Retention 2 at epoch 10: 9 and 10 stay (10 closes 11 from 10's totals).
        assert!(expired(8, 10, 2));
        assert!(!expired(9, 10, 2));
        assert!(!expired(10, 10, 2));
        assert!(
            !expired(11, 10, 2),
            "a later epoch's shards (uncommitted) stay"
        );
        assert!(expired(9, 10, 1));
        assert!(!expired(10, 10, 1), "retention 1 keeps the latest");
        assert!(!expired(0, u64::MAX, 0), "0 keeps everything");
        assert!(!expired(u64::MAX, u64::MAX, 5));
    }
}
