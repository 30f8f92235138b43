//! Feeds the node index from kube watches of the four node kinds and of RewardPolicies.

use super::index::{Declared, NodeEntry, NodeId, NodeIndex, PolicyEntry};
use crate::Shutdown;
use crate::controllers::{NodeKind, RoleSettings};
use depin_crds::{NodeSpec, RewardPolicy};
use depin_proof::identity::PublicKey;
use depin_proof::poc::PocParams;
use futures::StreamExt;
use kube::core::DeserializeGuard;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Watches that must list once before the index is complete (four kinds + policies).
const FEEDS: usize = 5;

/// Runs every watch until shutdown; marks the index ready once all have listed. `poc` is
/// what a policy's `spec.poc` is merged onto (the verifier's own PoC rules).
pub async fn feed(client: Client, index: NodeIndex, poc: PocParams, shutdown: Shutdown) {
    let listed = Arc::new(AtomicUsize::new(0));
    let feeds = async {
        tokio::join!(
            feed_kind::<depin_crds::HotspotGateway>(client.clone(), index.clone(), listed.clone()),
            feed_kind::<depin_crds::StorageNode>(client.clone(), index.clone(), listed.clone()),
            feed_kind::<depin_crds::GpuWorker>(client.clone(), index.clone(), listed.clone()),
            feed_kind::<depin_crds::MeterBridge>(client.clone(), index.clone(), listed.clone()),
            feed_policies(client, index.clone(), poc, listed),
        )
    };
    tokio::select! {
        _ = feeds => {}
        () = shutdown.signal() => {}
    }
}

fn mark_listed(index: &NodeIndex, listed: &AtomicUsize, first: &mut bool) {
    if std::mem::take(first) && listed.fetch_add(1, Ordering::SeqCst) + 1 == FEEDS {
        tracing::info!("verifier node index loaded");
        index.mark_ready();
    }
}

/// What PoC checks a hotspot against; `Other` when its region is unknown (validation
/// normally refuses that first). An unplaceable location leaves it unasserted.
fn hotspot_declared(
    h: &depin_proto::config::HotspotConfig,
    payout: &depin_crds::common::Payout,
) -> Declared {
    use depin_proof::poc::{HotspotInfo, LOCATION_RESOLUTION, cell_at};
    let Ok(region) = h.region.parse() else {
        return Declared::Other;
    };
    Declared::Hotspot(HotspotInfo {
        location: cell_at(h.latitude, h.longitude, LOCATION_RESOLUTION).ok(),
        region,
        // Gains are a few dBi; `as` saturates, never wraps.
        gain_dbi_x10: (h.antenna_gain_dbi * 10.0).round() as i32,
        owner: payout
            .owner
            .clone()
            .unwrap_or_else(|| payout.wallet.clone()),
    })
}

/// The index entry for a node CR: only nodes with a public key in status can prove.
pub fn entry_of<K: NodeKind>(node: &K) -> Option<NodeEntry> {
    let hex = node.node_status()?.public_key.as_deref()?;
    let key = PublicKey::from_hex(hex, "status.publicKey").ok()?;
    let declared = match node.validate() {
        Ok(RoleSettings::Storage(s)) => Declared::Storage {
            capacity_bytes: s.capacity_bytes,
            sector_size_bytes: s.sector_size_bytes,
        },
        Ok(RoleSettings::Gpu(g)) => Declared::Gpu {
            declared_tops: g.declared_tops,
        },
        Ok(RoleSettings::Hotspot(h)) => hotspot_declared(&h, node.spec().payout()),
        Ok(RoleSettings::Meter(m)) => Declared::Meter {
            // Validation keeps the capacity positive and finite; `as` saturates anyway.
            rated_capacity_w: (m.rated_capacity_kw * 1000.0).round() as u64,
            slot_ms: u64::from(m.interval_seconds.max(1)) * 1000,
            // Only MeterBridge records replacements; reaching its spec by downcast keeps
            // NodeKind free of a one-kind field.
            replacement: (node as &dyn std::any::Any)
                .downcast_ref::<depin_crds::MeterBridge>()
                .and_then(super::meter::replacement_of),
        },
        // Invalid specs and kinds without proofs yet: the session may open, proofs fail.
        _ => Declared::Other,
    };
    Some(NodeEntry {
        id: NodeId {
            role: K::ROLE,
            namespace: node.namespace().unwrap_or_default(),
            name: node.name_any(),
            uid: node.uid().unwrap_or_default(),
        },
        key,
        reward_policy: node.spec().reward_policy().to_string(),
        declared,
    })
}

fn id_of<K: NodeKind>(meta: &kube::api::ObjectMeta) -> NodeId {
    NodeId {
        role: K::ROLE,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
    }
}

async fn feed_kind<K: NodeKind>(client: Client, index: NodeIndex, listed: Arc<AtomicUsize>) {
    // DeserializeGuard: one unparsable CR must not stall the whole watch.
    let api = Api::<DeserializeGuard<K>>::all(client);
    let mut events =
        std::pin::pin!(watcher(api, watcher::Config::default().any_semantic()).default_backoff());
    let (mut first, mut relist) = (true, Vec::new());
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(guard)) => match &guard.0 {
                Ok(node) => match entry_of(node) {
                    Some(entry) => index.upsert(entry),
                    None => index.remove(&id_of::<K>(node.meta())),
                },
                Err(invalid) => index.remove(&id_of::<K>(&invalid.metadata)),
            },
            Ok(watcher::Event::Delete(guard)) => match &guard.0 {
                Ok(node) => index.remove(&id_of::<K>(node.meta())),
                Err(invalid) => index.remove(&id_of::<K>(&invalid.metadata)),
            },
            Ok(watcher::Event::Init) => relist.clear(),
            Ok(watcher::Event::InitApply(guard)) => {
                if let Ok(node) = &guard.0 {
                    relist.extend(entry_of(node));
                }
            }
            Ok(watcher::Event::InitDone) => {
                index.replace_role(K::ROLE, std::mem::take(&mut relist));
                mark_listed(&index, &listed, &mut first);
            }
            Err(err) => {
                tracing::warn!(kind = %K::kind(&()), error = %err, "verifier watch failed; retrying")
            }
        }
    }
}

fn policy_entry(policy: &RewardPolicy, poc: &PocParams) -> PolicyEntry {
    PolicyEntry {
        epoch_seconds: policy.spec.epoch_seconds,
        grace_seconds: policy.spec.grace_seconds,
        poc: super::poc::policy_rules(&policy.name_any(), policy.spec.poc.as_ref(), poc),
        denylist: std::sync::Arc::new(super::poc::policy_denylist(
            &policy.name_any(),
            policy.spec.poc.as_ref(),
        )),
    }
}

async fn feed_policies(client: Client, index: NodeIndex, poc: PocParams, listed: Arc<AtomicUsize>) {
    let api = Api::<DeserializeGuard<RewardPolicy>>::all(client);
    let mut events =
        std::pin::pin!(watcher(api, watcher::Config::default().any_semantic()).default_backoff());
    let (mut first, mut relist) = (true, HashMap::new());
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(guard)) => {
                if let Ok(policy) = &guard.0 {
                    index.set_policy(&policy.name_any(), policy_entry(policy, &poc));
                }
            }
            Ok(watcher::Event::Delete(guard)) => {
                if let Ok(policy) = &guard.0 {
                    index.remove_policy(&policy.name_any());
                }
            }
            Ok(watcher::Event::Init) => relist.clear(),
            Ok(watcher::Event::InitApply(guard)) => {
                if let Ok(policy) = &guard.0 {
                    relist.insert(policy.name_any(), policy_entry(policy, &poc));
                }
            }
            Ok(watcher::Event::InitDone) => {
                index.replace_policies(std::mem::take(&mut relist));
                mark_listed(&index, &listed, &mut first);
            }
            Err(err) => tracing::warn!(error = %err, "verifier policy watch failed; retrying"),
        }
    }
}
