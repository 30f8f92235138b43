//! In-process epoch close for the adversarial tests: what the in-memory sink recorded for
//! each node becomes the reward controller's tallies (the operator's own mapping,
//! `rewards::tallies::tally_for`), and the real reward math closes the epoch. A soundness
//! test then asserts on what each node was *paid*, not only on verdicts.

#![allow(dead_code, clippy::unwrap_used)]

use depin_operator::rewards::tallies::{NodeRecord, tally_for};
use depin_operator::verifier::persist::sink::MemorySink;
use depin_operator::verifier::state::index::{Declared, NodeEntry, NodeIndex, PolicyEntry};
use depin_proof::reward::{CumulativeTotals, EpochResult, NodeKind, RewardPolicy, close_epoch};
use depin_proto::config::Role;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A RewardPolicy spec with every pool funded (hotspot 0.4, storage 0.3, gpu 0.2, meter
/// 0.1), `epoch_seconds` long epochs and 10^11 base units per epoch; tests overlay YAML.
pub fn policy_yaml(epoch_seconds: u64) -> String {
    format!(
        "epochSeconds: {epoch_seconds}\n\
         token: {{symbol: DPN, decimals: 8}}\n\
         emission: {{initialPerEpoch: \"100000000000\", halvingEveryEpochs: 730}}\n\
         pools: {{hotspot: \"0.4\", storage: \"0.3\", gpu: \"0.2\", meter: \"0.1\"}}\n\
         graceSeconds: 0\n"
    )
}

/// The validated reward math of a RewardPolicy spec written in YAML (as `kubectl` takes it).
pub fn policy(yaml: &str) -> RewardPolicy {
    let spec: depin_crds::RewardPolicySpec =
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("policy YAML: {e}\n{yaml}"));
    depin_operator::rewards::policy::validate(&spec)
        .unwrap_or_else(|e| panic!("policy refused: {e}"))
}

/// Registers policy `name` with the verifier's index: `epoch_seconds` epochs, no grace.
pub fn register_policy(index: &NodeIndex, name: &str, epoch_seconds: u64) {
    index.set_policy(
        name,
        PolicyEntry {
            epoch_seconds,
            grace_seconds: 0,
            poc: None,
            ..PolicyEntry::default()
        },
    );
}

/// Unix seconds now.
pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The wall-clock epoch running now for `epoch_seconds` epochs (the verifier's numbering).
pub fn current_epoch(epoch_seconds: u64) -> u64 {
    now_s() / epoch_seconds
}

/// Sleeps until the next epoch boundary; returns the epoch that starts there. Tests start
/// their agents right after it, so the whole epoch is observed.
pub async fn start_of_next_epoch(epoch_seconds: u64) -> u64 {
    let next = current_epoch(epoch_seconds) + 1;
    let at = UNIX_EPOCH + Duration::from_secs(next * epoch_seconds);
    if let Ok(wait) = at.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    next
}

/// Sleeps until epoch `n` has ended plus `settle` (writes batched by the recorder land).
pub async fn end_of_epoch(n: u64, epoch_seconds: u64, settle: Duration) {
    let at = UNIX_EPOCH + Duration::from_secs((n + 1) * epoch_seconds) + settle;
    if let Ok(wait) = at.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
}

/// The node kind of an index entry.
pub fn kind_of(entry: &NodeEntry) -> NodeKind {
    match entry.id.role {
        Role::Hotspot => NodeKind::Hotspot,
        Role::Storage => NodeKind::Storage,
        Role::Gpu => NodeKind::Gpu,
        Role::Meter => NodeKind::Meter,
    }
}

/// What the reward controller would read from `entry`'s CR: its kind, declared capacity
/// and the tallies the verifier stored for it.
pub fn record(sink: &MemorySink, entry: &NodeEntry) -> NodeRecord {
    let tallies = sink.tallies(&entry.id.namespace, &entry.id.name);
    let capacity_bytes = match entry.declared {
        Declared::Storage { capacity_bytes, .. } => Some(capacity_bytes),
        _ => None,
    };
    NodeRecord {
        namespace: entry.id.namespace.clone(),
        name: entry.id.name.clone(),
        kind: Some(kind_of(entry)),
        capacity_bytes,
        // Declared::Meter does not carry spec.direction yet: every meter here produces.
        consumption: false,
        status: depin_crds::NodeStatus {
            proofs: tallies.proofs,
            previous_proofs: tallies.previous,
            ..Default::default()
        },
    }
}

/// A closed epoch and how to read it per node.
#[derive(Debug)]
pub struct ClosedEpoch {
    /// The reward math's result.
    pub result: EpochResult,
}

impl ClosedEpoch {
    /// Base units paid to `namespace/name` in this epoch (0 when unpaid).
    pub fn paid(&self, namespace: &str, name: &str) -> u128 {
        let id = format!("{namespace}/{name}");
        self.result
            .nodes
            .iter()
            .find(|n| n.node == id)
            .map_or(0, |n| n.reward)
    }

    /// Base units paid to the entry's node.
    pub fn paid_to(&self, entry: &NodeEntry) -> u128 {
        self.paid(&entry.id.namespace, &entry.id.name)
    }

    /// Base units the pool of `kind` paid out in total.
    pub fn pool_paid(&self, kind: NodeKind) -> u128 {
        self.result
            .pools
            .iter()
            .filter(|p| p.pool.kind() == kind)
            .map(|p| p.paid)
            .sum()
    }
}

/// Closes the policy's first epoch, whose verifier (wall-clock) epoch is `wall_epoch`, over
/// `entries` with `policy`, as the reward controller does: one tally per node from what the
/// sink recorded for `wall_epoch`, no earlier totals, no burns. (RewardEpoch numbers count
/// from the policy's genesis, so halving starts there: `rewards::schedule`.)
pub fn close(
    sink: &MemorySink,
    entries: &[&NodeEntry],
    policy: &RewardPolicy,
    wall_epoch: u64,
) -> ClosedEpoch {
    let tallies: Vec<_> = entries
        .iter()
        .filter_map(|e| tally_for(&record(sink, e), wall_epoch, policy))
        .collect();
    let result = close_epoch(policy, 1, &tallies, &CumulativeTotals::default(), &[])
        .unwrap_or_else(|e| panic!("closing the epoch of wall-clock epoch {wall_epoch}: {e}"));
    ClosedEpoch { result }
}
