//! Per-node health the dashboards and alerts watch: when each node last had a proof
//! accepted, and each storage node's Storj-style audit reputation.
//!
//! Both live in memory and in gauges only. After a restart a node's last-proof time
//! reappears with its next accepted proof, and reputation starts again from the trusted
//! prior (α = 1000): rewards do not read this score (they use the epoch's success ratio
//! from the durable tallies), so a restart can only delay a reputation alert, never pay
//! a disqualified node.

use crate::verifier::state::index::NodeId;
use depin_proof::storage::{Reputation, ReputationParams};
use prometheus::{GaugeVec, Opts, Registry};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// The gauges and the reputation state behind them.
pub struct NodeHealth {
    /// Audit parameters (Storj defaults).
    params: ReputationParams,
    /// Each storage node's reputation, by `namespace/name` (a re-created CR is the same
    /// operator-visible node; its deletion resets it).
    storage: Mutex<HashMap<String, Reputation>>,
    /// `node_last_proof_timestamp_seconds{namespace,kind,node}`.
    last_proof: GaugeVec,
    /// `storage_reputation{namespace,node}`.
    reputation: GaugeVec,
}

impl NodeHealth {
    /// Registers the gauges on `registry`.
    pub fn register(
        registry: &Registry,
        params: ReputationParams,
    ) -> Result<Self, prometheus::Error> {
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
            params,
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

    /// One storage audit of `node`: a recorded response (`passed` = accepted) or a missed
    /// deadline (`passed` = false). Returns the new score.
    pub fn audit(&self, node: &NodeId, passed: bool) -> f64 {
        let score = {
            let mut storage = self.storage.lock().unwrap_or_else(PoisonError::into_inner);
            let reputation = storage
                .entry(key(node))
                .or_insert_with(|| Reputation::new(&self.params));
            *reputation = reputation.after_audit(passed, &self.params);
            reputation.score()
        };
        self.reputation
            .with_label_values(&[&node.namespace, &node.name])
            .set(score);
        score
    }

    /// Whether `node`'s score is below the disqualification threshold.
    pub fn disqualified(&self, node: &NodeId) -> bool {
        let storage = self.storage.lock().unwrap_or_else(PoisonError::into_inner);
        storage
            .get(&key(node))
            .is_some_and(|r| r.score() < self.params.disqualify_below)
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
        if had.is_some() {
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
    fn failed_audits_lower_the_score_until_disqualified_and_passes_do_not() {
        let registry = Registry::new();
        let health = NodeHealth::register(&registry, ReputationParams::default()).unwrap();
        let (honest, flaky) = (node("sn-ok"), node("sn-bad"));
        for _ in 0..10 {
            assert_eq!(health.audit(&honest, true), 1.0);
        }
        let mut scores = Vec::new();
        for _ in 0..41 {
            scores.push(health.audit(&flaky, false));
        }
        assert!(
            scores.windows(2).all(|w| w[1] < w[0]),
            "each failure lowers it"
        );
        // Storj: 1000 trusted audits' worth of prior falls below 0.96 after 41 failures.
        assert!(
            scores[39] >= 0.96 && scores[40] < 0.96,
            "{:?}",
            &scores[38..]
        );
        assert!(health.disqualified(&flaky) && !health.disqualified(&honest));
        assert_eq!(
            gauge(&registry, "storage_reputation", "sn-bad"),
            Some(scores[40])
        );
        health.forget(&flaky);
        assert_eq!(gauge(&registry, "storage_reputation", "sn-bad"), None);
    }

    #[test]
    fn last_proof_time_is_exported_in_seconds_per_node() {
        let registry = Registry::new();
        let health = NodeHealth::register(&registry, ReputationParams::default()).unwrap();
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
