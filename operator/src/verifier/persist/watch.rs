//! Feeds the node index from kube watches of the four node kinds and of RewardPolicies.

use crate::Shutdown;
use crate::controllers::{NodeKind, RoleSettings};
use crate::verifier::state::index::{
    Declared, NodeEntry, NodeId, NodeIndex, PolicyDenylist, PolicyEntry,
};
use crate::verifier::state::meter::Replacement;
use depin_crds::{NodeSpec, RewardPolicy};
use depin_proof::identity::PublicKey;
use depin_proof::meter::{MeterDirection, Site};
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
        // What the volume really holds bounds the sectors accepted (the controller writes
        // it once the claim is bound: a grown spec on a claim that could not expand).
        Ok(RoleSettings::Storage(s)) => Declared::Storage {
            capacity_bytes: node
                .node_status()
                .and_then(|st| st.capacity.as_ref())
                .map_or(s.capacity_bytes, |c| c.proving_bytes.min(s.capacity_bytes)),
            sector_size_bytes: s.sector_size_bytes,
        },
        Ok(RoleSettings::Gpu(g)) => Declared::Gpu {
            declared_tops: g.declared_tops,
        },
        Ok(RoleSettings::Hotspot(h)) => hotspot_declared(&h, node.spec().payout()),
        Ok(RoleSettings::Meter(m)) => {
            // Only MeterBridge records replacements, direction and site; reaching its spec
            // by downcast keeps NodeKind free of one-kind fields.
            let bridge = (node as &dyn std::any::Any).downcast_ref::<depin_crds::MeterBridge>();
            Declared::Meter {
                // Validation keeps the capacity positive and finite; `as` saturates anyway.
                rated_capacity_w: (m.rated_capacity_kw * 1000.0).round() as u64,
                slot_ms: u64::from(m.interval_seconds.max(1)) * 1000,
                replacement: bridge.and_then(replacement_of),
                direction: bridge.map_or(MeterDirection::Production, direction_of),
                site: bridge.and_then(site_of),
            }
        }
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
        created: node
            .meta()
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| t.0.as_second()),
    })
}

/// What a MeterBridge measures, in verifier terms.
pub fn direction_of(bridge: &depin_crds::MeterBridge) -> MeterDirection {
    match bridge.spec.direction {
        depin_crds::meter_bridge::Direction::Production => MeterDirection::Production,
        depin_crds::meter_bridge::Direction::Consumption => MeterDirection::Consumption,
    }
}

/// Where a MeterBridge's installation is; `None` without `spec.location` (a production
/// meter then proves no energy: `MissingLocation`).
pub fn site_of(bridge: &depin_crds::MeterBridge) -> Option<Site> {
    let at = bridge.spec.location.as_ref()?;
    Site::new(at.latitude, at.longitude)
}

/// The swap a MeterBridge records; `None` without one or when `replacedAt` does not parse
/// (the schema's `date-time` format makes the API server refuse that first).
pub fn replacement_of(bridge: &depin_crds::MeterBridge) -> Option<Replacement> {
    let recorded = bridge.spec.replacement.as_ref()?;
    match recorded.replaced_at.parse::<jiff::Timestamp>() {
        Ok(at) => Some(Replacement {
            // Before 1970 means before any slot: it excuses nothing.
            at_ms: u64::try_from(at.as_millisecond()).unwrap_or(0),
            new_serial: recorded.new_serial.clone(),
        }),
        Err(err) => {
            tracing::warn!(meter = %kube::ResourceExt::name_any(bridge), %err, "spec.replacement.replacedAt is not RFC 3339; replacement ignored");
            None
        }
    }
}

/// A policy's `spec.poc` merged onto the verifier's `base` rules; `None` (the verifier
/// keeps `base`) when the policy has no section or an invalid one, which is logged here
/// and shown on the policy's `Valid` condition by the reward controller.
pub fn policy_rules(
    policy: &str,
    rules: Option<&depin_crds::PocRules>,
    base: &PocParams,
) -> Option<PocParams> {
    match crate::rewards::policy::poc::poc_params(rules?, base) {
        Ok(params) => Some(params),
        Err(err) => {
            tracing::warn!(%policy, %err, "spec.poc ignored; its hotspots keep the verifier's PoC rules");
            None
        }
    }
}

/// The denylist a policy's `spec.poc` sets. The schema admits only 64 hex digits; a key
/// that is still not a valid ed25519 point is skipped with a warning (it could never sign).
pub fn policy_denylist(policy: &str, rules: Option<&depin_crds::PocRules>) -> PolicyDenylist {
    let mut denylist = PolicyDenylist::default();
    let Some(rules) = rules else {
        return denylist;
    };
    let key = |field: &'static str, hex: &str| match PublicKey::from_hex(hex, field) {
        Ok(key) => Some(key),
        Err(err) => {
            tracing::warn!(%policy, %err, "denylist entry skipped");
            None
        }
    };
    for hex in &rules.denied_hotspots {
        denylist.0.extend(key("spec.poc.deniedHotspots[]", hex));
    }
    for edge in &rules.denied_edges {
        if let (Some(a), Some(b)) = (
            key("spec.poc.deniedEdges[].a", &edge.a),
            key("spec.poc.deniedEdges[].b", &edge.b),
        ) {
            denylist.1.insert(if a <= b { (a, b) } else { (b, a) });
        }
    }
    denylist
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
        poc: policy_rules(&policy.name_any(), policy.spec.poc.as_ref(), poc),
        denylist: std::sync::Arc::new(policy_denylist(
            &policy.name_any(),
            policy.spec.poc.as_ref(),
        )),
        last_closed_epoch: policy.status.as_ref().and_then(|s| s.last_closed_epoch),
        // An invalid list is the policy's to report (its conditions); the verifier then
        // challenges with its own classes rather than none.
        gpu_classes: (!policy.spec.gpu_classes.is_empty())
            .then(|| crate::rewards::policy::gpu_classes(&policy.spec).ok())
            .flatten(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::decide::meter::replacement_slot;
    use depin_proof::meter::MeterParams;

    const SLOT_MS: u64 = 10_000;

    fn params() -> MeterParams {
        MeterParams {
            slot_ms: SLOT_MS,
            ..MeterParams::default()
        }
    }

    fn bridge(replaced_at: &str, new_serial: Option<&str>) -> depin_crds::MeterBridge {
        let text = include_str!("../../../../examples/minimal-fleet.yaml");
        let doc = text
            .split("\n---\n")
            .find(|d| d.contains("kind: MeterBridge"))
            .expect("example MeterBridge");
        let mut bridge: depin_crds::MeterBridge = serde_yaml::from_str(doc).expect("parses");
        bridge.spec.replacement = Some(depin_crds::MeterReplacement {
            replaced_at: replaced_at.into(),
            new_serial: new_serial.map(Into::into),
        });
        bridge
    }

    #[test]
    fn a_recorded_swap_becomes_the_first_slot_starting_after_it() {
        let swap = replacement_of(&bridge("2025-06-01T10:00:05+02:00", Some("SN-2")))
            .expect("RFC 3339 parses");
        let at_ms = 1_748_764_805_000; // 2025-06-01T08:00:05Z
        assert_eq!(swap.at_ms, at_ms);
        // The agent read slot ⌊at/slot⌋ at its start, before the swap: the next slot is
        // the new meter's first.
        assert_eq!(
            replacement_slot(&swap, &params(), "SN-2"),
            Some(at_ms / SLOT_MS + 1)
        );
        assert_eq!(
            replacement_slot(&swap, &params(), "SN-3"),
            None,
            "not the recorded serial"
        );
        let on_the_boundary = Replacement {
            at_ms: 100 * SLOT_MS,
            new_serial: None,
        };
        assert_eq!(
            replacement_slot(&on_the_boundary, &params(), "any"),
            Some(100)
        );
        assert_eq!(replacement_of(&bridge("yesterday", None)), None);
    }
}
