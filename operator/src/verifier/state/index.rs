//! Which public keys may open sessions: node CRs by `status.publicKey`, with what each
//! declared, and the epoch length and PoC rules of every RewardPolicy. Fed by kube watches
//! in the operator (`persist/watch.rs`) and directly by tests.

use depin_proof::identity::PublicKey;
use depin_proof::session::KnownNodes;
use depin_proto::config::Role;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use tokio::sync::watch;

/// Epoch length when a node's RewardPolicy is missing (RewardPolicy's own default: 1 day).
pub const DEFAULT_EPOCH_SECONDS: u64 = 86_400;

/// One node CR, as its status writes are addressed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeId {
    /// The agent role, one per CR kind.
    pub role: Role,
    /// CR namespace.
    pub namespace: String,
    /// CR name.
    pub name: String,
    /// CR uid, so a re-created CR of the same name starts a fresh writer.
    pub uid: String,
}

impl NodeId {
    /// The CR kind, also the `kind` metric label.
    pub fn kind(&self) -> &'static str {
        kind_of(self.role)
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.kind(), self.namespace, self.name)
    }
}

/// The CR kind serving `role`.
pub fn kind_of(role: Role) -> &'static str {
    match role {
        Role::Hotspot => "HotspotGateway",
        Role::Storage => "StorageNode",
        Role::Gpu => "GpuWorker",
        Role::Meter => "MeterBridge",
    }
}

/// What a node's spec declares that the verifier checks proofs against.
#[derive(Clone, Debug, PartialEq)]
pub enum Declared {
    /// StorageNode: volume and sector size.
    Storage {
        /// Bytes of the volume; sectors beyond it are refused.
        capacity_bytes: u64,
        /// Bytes per sector; commitments of another size are refused.
        sector_size_bytes: u64,
    },
    /// GpuWorker: the throughput claimed.
    Gpu {
        /// Declared int8 TOPS.
        declared_tops: f64,
    },
    /// MeterBridge: what a reading's energy is checked against.
    Meter {
        /// Nameplate capacity, W (`ratedCapacityKw` × 1000).
        rated_capacity_w: u64,
        /// Slot length, ms (`intervalSeconds` × 1000).
        slot_ms: u64,
        /// The recorded meter swap (`spec.replacement`), if any.
        replacement: Option<super::meter::Replacement>,
        /// What the meter measures (`spec.direction`): only production obeys the sun.
        direction: depin_proof::meter::MeterDirection,
        /// The declared installation site (`spec.location`).
        site: Option<depin_proof::meter::Site>,
    },
    /// HotspotGateway: the asserted location, plan, antenna and owner PoC checks use.
    Hotspot(depin_proof::poc::HotspotInfo),
    /// Kinds whose proofs arrive in a later issue.
    Other,
}

/// A node allowed to open sessions.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeEntry {
    /// The CR.
    pub id: NodeId,
    /// Its public key.
    pub key: PublicKey,
    /// Name of its RewardPolicy.
    pub reward_policy: String,
    /// What it declares.
    pub declared: Declared,
    /// The CR's creationTimestamp, unix seconds: of two CRs holding one key the older
    /// keeps it (then the smaller uid), so a newcomer cannot take over another node's
    /// proofs by naming its identity Secret.
    pub created: i64,
}

/// Denied hotspots and denied edges (smaller key first), as depin-proof's rules read them.
pub type PolicyDenylist = (
    std::collections::BTreeSet<PublicKey>,
    std::collections::BTreeSet<(PublicKey, PublicKey)>,
);

/// What the verifier uses of one RewardPolicy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyEntry {
    /// Epoch length, seconds.
    pub epoch_seconds: u64,
    /// Seconds after an epoch's end before it closes (`spec.graceSeconds`).
    pub grace_seconds: u64,
    /// Its `spec.poc` merged onto the verifier's PoC rules; `None`: the verifier's own.
    pub poc: Option<depin_proof::poc::PocParams>,
    /// Its `spec.poc.deniedHotspots` and `deniedEdges`.
    pub denylist: Arc<PolicyDenylist>,
    /// Its `status.lastClosedEpoch`: tallies of later epochs are kept until closed.
    pub last_closed_epoch: Option<u64>,
    /// Its `spec.gpuClasses` resolved (`None`: it lists none, the verifier's apply).
    pub gpu_classes: Option<Vec<depin_proof::gpu::GpuClass>>,
}

/// A RewardPolicy's epoch timing, as the `LateForEpoch` rule reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochWindow {
    /// Epoch length, seconds.
    pub epoch_seconds: u64,
    /// Seconds after an epoch's end before it closes.
    pub grace_seconds: u64,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<PublicKey, NodeEntry>,
    policies: HashMap<String, PolicyEntry>,
}

/// The shared index (cheap to clone).
#[derive(Clone)]
pub struct NodeIndex {
    inner: Arc<RwLock<Inner>>,
    ready: Arc<watch::Sender<bool>>,
    on_remove: Arc<OnceLock<RemoveHook>>,
}

/// Called with each entry that leaves the index: its CR was deleted, so its per-node
/// metric series and verifier state (meter chain, serial claim) go with it.
pub type RemoveHook = Box<dyn Fn(&NodeEntry) + Send + Sync>;

impl Default for NodeIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeIndex {
    /// An empty index, not yet ready.
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            ready: Arc::new(watch::channel(false).0),
            on_remove: Arc::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated (every write
        // is one insert/remove), so a poisoned lock is still consistent.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds or replaces a node (keyed by public key; a CR whose key changed loses its old
    /// key). A key another, older CR already holds stays with that CR: the newcomer is
    /// left out (the operator refuses it with a `DuplicateKey` condition).
    pub fn upsert(&self, entry: NodeEntry) {
        let mut inner = self.write();
        inner
            .by_key
            .retain(|key, e| !(same_cr(&e.id, &entry.id) && *key != entry.key));
        claim(&mut inner.by_key, entry);
    }

    /// Sets what runs when a CR leaves the index (once; later calls are ignored).
    pub fn on_remove(&self, hook: RemoveHook) {
        let _ = self.on_remove.set(hook);
    }

    fn removed(&self, entries: &[NodeEntry]) {
        if let Some(hook) = self.on_remove.get() {
            entries.iter().for_each(hook);
        }
    }

    /// Removes the CR `id` (whatever key it had).
    pub fn remove(&self, id: &NodeId) {
        let mut gone = Vec::new();
        self.write().by_key.retain(|_, e| {
            let stays = !same_cr(&e.id, id);
            if !stays {
                gone.push(e.clone());
            }
            stays
        });
        self.removed(&gone);
    }

    /// Replaces every node of `role` (after a watch relist).
    pub fn replace_role(&self, role: Role, entries: Vec<NodeEntry>) {
        let gone: Vec<NodeEntry> = {
            let mut inner = self.write();
            let mut gone = Vec::new();
            inner.by_key.retain(|_, e| {
                let stays = e.id.role != role;
                if !stays && !entries.iter().any(|n| same_cr(&n.id, &e.id)) {
                    gone.push(e.clone());
                }
                stays
            });
            for entry in entries {
                claim(&mut inner.by_key, entry);
            }
            gone
        };
        self.removed(&gone);
    }

    /// Nodes (keys) in the index.
    pub fn len(&self) -> usize {
        self.read().by_key.len()
    }

    /// Whether no node is in the index.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The node holding `key`.
    pub fn lookup(&self, key: &PublicKey) -> Option<NodeEntry> {
        self.read().by_key.get(key).cloned()
    }

    /// Every node of `role`.
    pub fn of_role(&self, role: Role) -> Vec<NodeEntry> {
        self.read()
            .by_key
            .values()
            .filter(|e| e.id.role == role)
            .cloned()
            .collect()
    }

    /// Every hotspot with what it asserts (the PoC rules' view of the fleet).
    pub fn hotspots(&self) -> HashMap<PublicKey, depin_proof::poc::HotspotInfo> {
        self.read()
            .by_key
            .iter()
            .filter_map(|(key, e)| match &e.declared {
                Declared::Hotspot(info) => Some((*key, info.clone())),
                _ => None,
            })
            .collect()
    }

    /// Sets what the verifier uses of a RewardPolicy.
    pub fn set_policy(&self, name: &str, entry: PolicyEntry) {
        let entry = PolicyEntry {
            epoch_seconds: entry.epoch_seconds.max(1),
            ..entry
        };
        self.write().policies.insert(name.to_string(), entry);
    }

    /// Forgets a RewardPolicy.
    pub fn remove_policy(&self, name: &str) {
        self.write().policies.remove(name);
    }

    /// Replaces every policy (after a watch relist).
    pub fn replace_policies(&self, policies: HashMap<String, PolicyEntry>) {
        self.write().policies = policies;
    }

    /// The epoch length and grace of `policy`, which decide when its nodes' work is too
    /// late to count; `None` for an unknown policy (never late).
    pub fn epoch_window(&self, policy: &str) -> Option<EpochWindow> {
        self.read().policies.get(policy).map(|p| EpochWindow {
            epoch_seconds: p.epoch_seconds,
            grace_seconds: p.grace_seconds,
        })
    }

    /// The latest epoch `policy` has closed; None when unknown (nothing is known closed).
    pub fn last_closed_epoch(&self, policy: &str) -> Option<u64> {
        self.read().policies.get(policy)?.last_closed_epoch
    }

    /// Epoch length of `policy`, or the default when it does not exist (yet).
    pub fn epoch_seconds(&self, policy: &str) -> u64 {
        self.read()
            .policies
            .get(policy)
            .map_or(DEFAULT_EPOCH_SECONDS, |p| p.epoch_seconds.max(1))
    }

    /// The longest close (ms) of any class a policy lists; 0 when none lists any.
    pub fn longest_gpu_close_ms(&self) -> u64 {
        self.read()
            .policies
            .values()
            .filter_map(|p| p.gpu_classes.as_ref())
            .flatten()
            .map(depin_proof::gpu::GpuClass::close_ms)
            .max()
            .unwrap_or(0)
    }

    /// GPU classes `policy` challenges, or `None` when it does not exist or lists none.
    pub fn gpu_classes(&self, policy: &str) -> Option<Vec<depin_proof::gpu::GpuClass>> {
        self.read().policies.get(policy)?.gpu_classes.clone()
    }

    /// PoC rules of `policy`, or `None` when it does not exist or sets none of its own.
    pub fn poc_params(&self, policy: &str) -> Option<depin_proof::poc::PocParams> {
        self.read().policies.get(policy).and_then(|p| p.poc)
    }

    /// The denylist of `policy` (empty when it has none or does not exist).
    pub fn denylist(&self, policy: &str) -> Arc<PolicyDenylist> {
        self.read()
            .policies
            .get(policy)
            .map(|p| p.denylist.clone())
            .unwrap_or_default()
    }

    /// Marks the index complete (every watch has listed once); sessions wait for this so an
    /// operator restart does not refuse agents whose CRs are simply not loaded yet.
    pub fn mark_ready(&self) {
        self.ready.send_replace(true);
    }

    /// Resolves once the index is complete.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        // The sender lives in self, so the channel cannot close while we wait.
        let _ = rx.wait_for(|ready| *ready).await;
    }
}

/// Gives `entry` its key unless an older CR holds it (creationTimestamp, then uid; the
/// order both the operator and every verifier replica see, whatever order events came in).
fn claim(by_key: &mut HashMap<PublicKey, NodeEntry>, entry: NodeEntry) {
    if let Some(holder) = by_key
        .get(&entry.key)
        .filter(|e| !same_cr(&e.id, &entry.id))
    {
        let older = (holder.created, &holder.id.uid) <= (entry.created, &entry.id.uid);
        let (kept, refused) = if older {
            (holder, &entry)
        } else {
            (&entry, holder)
        };
        tracing::warn!(key = %entry.key, kept = %kept.id, refused = %refused.id, "two nodes share one public key; the older one keeps it");
        if older {
            return;
        }
    }
    by_key.insert(entry.key, entry);
}

fn same_cr(a: &NodeId, b: &NodeId) -> bool {
    a.role == b.role && a.namespace == b.namespace && a.name == b.name
}

impl KnownNodes for NodeIndex {
    fn is_known(&self, node: &PublicKey) -> bool {
        self.read().by_key.contains_key(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_proof::identity::NodeKey;

    fn entry(name: &str, seed: u8) -> NodeEntry {
        NodeEntry {
            id: NodeId {
                role: Role::Gpu,
                namespace: "ns".into(),
                name: name.into(),
                uid: "u".into(),
            },
            key: NodeKey::from_seed([seed; 32]).public(),
            reward_policy: "default".into(),
            declared: Declared::Gpu { declared_tops: 1.0 },
            created: 0,
        }
    }

    #[test]
    fn a_rotated_key_replaces_the_old_one() {
        let index = NodeIndex::new();
        index.upsert(entry("a", 1));
        index.upsert(entry("a", 2));
        assert!(!index.is_known(&NodeKey::from_seed([1; 32]).public()));
        assert!(index.is_known(&NodeKey::from_seed([2; 32]).public()));
        index.remove(&entry("a", 9).id);
        assert!(!index.is_known(&NodeKey::from_seed([2; 32]).public()));
    }

    #[test]
    fn a_shared_key_stays_with_the_older_cr_whatever_the_event_order() {
        let key = NodeKey::from_seed([7; 32]).public();
        let older = NodeEntry {
            created: 100,
            ..entry("alice", 7)
        };
        let newer = NodeEntry {
            created: 200,
            ..entry("eve", 7)
        };
        for order in [[&older, &newer], [&newer, &older]] {
            let index = NodeIndex::new();
            for e in order {
                index.upsert(e.clone());
            }
            assert_eq!(index.lookup(&key).map(|e| e.id.name), Some("alice".into()));
            // A relist applies the same rule.
            let relisted = NodeIndex::new();
            relisted.replace_role(Role::Gpu, order.map(Clone::clone).to_vec());
            assert_eq!(
                relisted.lookup(&key).map(|e| e.id.name),
                Some("alice".into())
            );
        }
        // The newcomer gets the key once the holder is gone and it is seen again.
        let index = NodeIndex::new();
        index.upsert(older.clone());
        index.upsert(newer.clone());
        index.remove(&older.id);
        assert!(!index.is_known(&key));
        index.upsert(newer);
        assert_eq!(index.lookup(&key).map(|e| e.id.name), Some("eve".into()));
    }

    #[test]
    fn missing_policy_falls_back_to_a_day() {
        let index = NodeIndex::new();
        assert_eq!(index.epoch_seconds("default"), DEFAULT_EPOCH_SECONDS);
        let poc = depin_proof::poc::PocParams {
            max_distance_m: 1_000,
            ..Default::default()
        };
        index.set_policy(
            "default",
            PolicyEntry {
                epoch_seconds: 60,
                grace_seconds: 5,
                poc: Some(poc),
                ..PolicyEntry::default()
            },
        );
        assert_eq!(index.epoch_seconds("default"), 60);
        assert_eq!(index.poc_params("default"), Some(poc));
        assert_eq!(index.poc_params("other"), None);
    }
}
