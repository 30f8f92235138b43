//! Per-node health the dashboards and alerts watch: when each node last had a proof
//! accepted, and each storage node's Storj-style audit reputation.
//!
//! The last-proof time lives in memory and reappears after a restart with the node's next
//! accepted proof. The reputation gauge mirrors the durable sector ledger
//! (`status.storage`, which rewards read): it is set from the ledger on every write of
//! it, so after a restart it shows the restored score, not a fresh prior.

use crate::verifier::state::index::NodeId;
use prometheus::{GaugeVec, Opts, Registry};
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

/// The gauges.
pub struct NodeHealth {
    /// Storage nodes with a reputation series, by `namespace/name`.
    storage: Mutex<HashSet<String>>,
    /// `node_last_proof_timestamp_seconds{namespace,kind,node}`.
    last_proof: GaugeVec,
    /// `storage_reputation{namespace,node}`.
    reputation: GaugeVec,
}

impl NodeHealth {
    /// Registers the gauges on `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let last_proof = GaugeVec::new(
            Opts::new(
                "node_last_proof_timestamp_seconds",
                "Unix time of the node's last accepted proof.",
            ),
            &["namespace", "kind", "node"],
        )?;
        let reputation = GaugeVec::new(
            Opts::new(
                "storage_reputation",
                "Storage node audit reputation alpha/(alpha+beta), 0..1.",
            ),
            &["namespace", "node"],
        )?;
        registry.register(Box::new(last_proof.clone()))?;
        registry.register(Box::new(reputation.clone()))?;
        Ok(Self {
            storage: Mutex::default(),
            last_proof,
            reputation,
        })
    }

    /// A proof of `node` was accepted and recorded at `now_ms`.
    pub fn accepted(&self, node: &NodeId, now_ms: u64) {
        self.last_proof
            .with_label_values(&[&node.namespace, node.kind(), &node.name])
            .set(now_ms as f64 / 1000.0);
    }

    /// `node`'s audit reputation as its ledger now holds it.
    pub fn reputation(&self, node: &NodeId, score: f64) {
        self.storage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key(node));
        self.reputation
            .with_label_values(&[&node.namespace, &node.name])
            .set(score);
    }

    /// Drops a deleted node's series so dashboards stop showing it.
    pub fn forget(&self, node: &NodeId) {
        let _ = self
            .last_proof
            .remove_label_values(&[&node.namespace, node.kind(), &node.name]);
        let had = self
            .storage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key(node));
        if had {
            let _ = self
                .reputation
                .remove_label_values(&[&node.namespace, &node.name]);
        }
    }
}

fn key(node: &NodeId) -> String {
    format!("{}/{}", node.namespace, node.name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use depin_proto::config::Role;

    fn node(name: &str) -> NodeId {
        NodeId {
            role: Role::Storage,
            namespace: "fleet".into(),
            name: name.into(),
            uid: String::new(),
        }
    }

    fn gauge(registry: &Registry, name: &str, node: &str) -> Option<f64> {
        registry
            .gather()
            .iter()
            .filter(|family| family.name() == name)
            .flat_map(|family| family.get_metric().iter())
            .find(|m| m.get_label().iter().any(|l| l.value() == node))
            .map(|m| m.get_gauge().get_value())
    }

    #[test]
    fn the_reputation_gauge_follows_the_ledger_and_goes_with_the_node() {
        let registry = Registry::new();
        let health = NodeHealth::register(&registry).unwrap();
        health.reputation(&node("sn-bad"), 0.95);
        assert_eq!(gauge(&registry, "storage_reputation", "sn-bad"), Some(0.95));
        health.reputation(&node("sn-bad"), 0.9);
        assert_eq!(gauge(&registry, "storage_reputation", "sn-bad"), Some(0.9));
        health.forget(&node("sn-bad"));
        assert_eq!(gauge(&registry, "storage_reputation", "sn-bad"), None);
    }

    #[test]
    fn last_proof_time_is_exported_in_seconds_per_node() {
        let registry = Registry::new();
        let health = NodeHealth::register(&registry).unwrap();
        health.accepted(&node("sn-1"), 1_700_000_000_500);
        assert_eq!(
            gauge(&registry, "node_last_proof_timestamp_seconds", "sn-1"),
            Some(1_700_000_000.5)
        );
        assert_eq!(
            gauge(&registry, "node_last_proof_timestamp_seconds", "sn-2"),
            None
        );
    }
}
