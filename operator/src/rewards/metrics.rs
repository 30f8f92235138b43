//! Reward metrics on the operator registry (names fixed: the dashboards query them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use depin_crds::RewardEpochSpec;
use depin_proof::reward::NodeKind;
use prometheus::{HistogramOpts, HistogramVec, IntGaugeVec, Opts, Registry};

use super::manifest::Published;
use super::tallies::NodeRecord;

/// Gauges of the latest closed epoch per policy, and the close duration.
#[derive(Clone)]
pub struct RewardMetrics {
    /// Latest closed epoch number.
    pub epoch: IntGaugeVec,
    /// Seconds to close one epoch (compute, shards, commit, node writes).
    pub close_duration: HistogramVec,
    /// Scheduled emission of the latest epoch.
    pub emission: IntGaugeVec,
    /// Burned base units in the latest epoch.
    pub burn: IntGaugeVec,
    /// Base units per pool in the latest epoch.
    pub pool: IntGaugeVec,
    /// Unallocated base units in the latest epoch.
    pub unallocated: IntGaugeVec,
    /// Nodes paid per pool in the latest epoch.
    pub nodes_rewarded: IntGaugeVec,
    /// Each node's reward in the latest epoch (0 for a node of the policy that was not paid).
    pub node: IntGaugeVec,
    /// Label sets of `node` per policy, so the next epoch removes exactly these.
    node_series: Arc<Mutex<HashMap<String, Vec<[String; 4]>>>>,
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec, prometheus::Error> {
    IntGaugeVec::new(Opts::new(name, help), labels)
}

/// Base units as a gauge value; amounts beyond i64 (9.2 × 10^18) saturate.
fn clamp(amount: u128) -> i64 {
    i64::try_from(amount).unwrap_or(i64::MAX)
}

impl RewardMetrics {
    /// Creates the metrics and registers them on `registry` (prefix `depin_operator_`).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let policy = &["policy"];
        let metrics = Self {
            epoch: gauge("reward_epoch", "Latest closed reward epoch.", policy)?,
            close_duration: HistogramVec::new(
                HistogramOpts::new(
                    "reward_epoch_close_duration_seconds",
                    "Wall time to close one reward epoch.",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
                policy,
            )?,
            emission: gauge(
                "reward_emission_base_units",
                "Scheduled emission of the latest epoch.",
                policy,
            )?,
            burn: gauge(
                "reward_burn_base_units",
                "Base units burned in the latest epoch.",
                policy,
            )?,
            pool: gauge(
                "reward_pool_base_units",
                "Base units in each pool in the latest epoch.",
                &["policy", "pool"],
            )?,
            unallocated: gauge(
                "reward_unallocated_base_units",
                "Dust and empty pools of the latest epoch.",
                policy,
            )?,
            nodes_rewarded: gauge(
                "reward_nodes_rewarded",
                "Nodes paid by each pool in the latest epoch.",
                &["policy", "pool"],
            )?,
            node: gauge(
                "reward_node_base_units",
                "Each node's reward in the latest epoch (0 when unpaid).",
                &["policy", "namespace", "kind", "node"],
            )?,
            node_series: Arc::default(),
        };
        registry.register(Box::new(metrics.epoch.clone()))?;
        registry.register(Box::new(metrics.close_duration.clone()))?;
        registry.register(Box::new(metrics.emission.clone()))?;
        registry.register(Box::new(metrics.burn.clone()))?;
        registry.register(Box::new(metrics.pool.clone()))?;
        registry.register(Box::new(metrics.unallocated.clone()))?;
        registry.register(Box::new(metrics.nodes_rewarded.clone()))?;
        registry.register(Box::new(metrics.node.clone()))?;
        Ok(metrics)
    }

    /// Publishes a closed epoch from its RewardEpoch record and manifest. `nodes` are the
    /// policy's nodes: each gets a reward series (0 when unpaid), and its kind counts
    /// paid nodes per pool (a node kind pays from
    /// its own pool; a split hotspot pool counts under `hotspot`).
    pub fn observe(
        &self,
        policy: &str,
        record: &RewardEpochSpec,
        published: &Published,
        nodes: &[NodeRecord],
    ) {
        let amount = |text: &str| clamp(text.parse().unwrap_or(0));
        self.epoch
            .with_label_values(&[policy])
            .set(clamp(u128::from(record.epoch)));
        self.emission
            .with_label_values(&[policy])
            .set(amount(&record.emission));
        self.burn
            .with_label_values(&[policy])
            .set(amount(&record.burn));
        self.unallocated
            .with_label_values(&[policy])
            .set(amount(&record.unallocated));
        for pool in &record.pools {
            self.pool
                .with_label_values(&[policy, &pool.pool])
                .set(amount(&pool.amount));
        }
        for kind in NodeKind::ALL {
            self.nodes_rewarded
                .with_label_values(&[policy, kind.as_str()])
                .set(0);
        }
        // The per-node gauge shows the latest epoch only: drop this policy's old series.
        let mut series = self
            .node_series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for labels in series.remove(policy).unwrap_or_default() {
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            let _ = self.node.remove_label_values(&labels);
        }
        // Every node of the policy gets a series, unpaid ones at 0: "paid nothing" (a
        // meter at night, a node that proved nothing) must read as 0 on the dashboard,
        // not as a missing series that looks like a broken scrape.
        let rewards: HashMap<&str, u128> = published
            .nodes
            .iter()
            .map(|n| (n.node.as_str(), n.reward))
            .collect();
        let mut current = Vec::new();
        for record in nodes {
            let reward = rewards.get(record.id().as_str()).copied().unwrap_or(0);
            // The CR kind, like every other per-node series (dashboards join on it); the
            // pool is the node kind's lower-case name.
            let (kind, pool) = record
                .kind
                .map_or(("unknown", "unknown"), |k| (crd_kind(k), k.as_str()));
            let labels = [
                policy.to_string(),
                record.namespace.clone(),
                kind.to_string(),
                record.name.clone(),
            ];
            self.node
                .with_label_values(&[policy, &record.namespace, kind, &record.name])
                .set(clamp(reward));
            current.push(labels);
            if reward > 0 {
                self.nodes_rewarded.with_label_values(&[policy, pool]).inc();
            }
        }
        series.insert(policy.to_string(), current);
    }
}

/// The CR kind paid from a node kind's pool.
fn crd_kind(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Hotspot => "HotspotGateway",
        NodeKind::Storage => "StorageNode",
        NodeKind::Gpu => "GpuWorker",
        NodeKind::Meter => "MeterBridge",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_proof::reward::{
        KindWeightsSpec, NodeTally, PolicySpec, RewardPolicy, Work, close_epoch,
    };

    fn record(name: &str, kind: NodeKind) -> NodeRecord {
        NodeRecord {
            namespace: "fleet".into(),
            name: name.into(),
            kind: Some(kind),
            consumption: false,
            status: Default::default(),
        }
    }

    #[test]
    fn an_unpaid_node_reads_zero_and_is_not_counted_as_rewarded() {
        let policy = RewardPolicy::validate(&PolicySpec {
            epoch_seconds: 20,
            token_decimals: 6,
            initial_per_epoch: "1000".into(),
            halving_every_epochs: 10,
            max_supply: None,
            pools: KindWeightsSpec {
                hotspot: "0".into(),
                storage: "0.5".into(),
                gpu: "0".into(),
                meter: "0.5".into(),
            },
            hotspot_split: None,
            gpu_classes: vec![],
            burn_and_mint: None,
        })
        .expect("policy");
        // A storage node that proved, and a meter at night (no verified energy).
        let tallies = [
            NodeTally::new(
                "fleet/sn-1",
                Work::proven_storage(1 << 30, depin_proof::reward::Decimal::ONE),
            ),
            NodeTally::new("fleet/meter-1", Work::Meter { verified_wh: 0 }),
        ];
        let result = close_epoch(&policy, 1, &tallies, &Default::default(), &[]).expect("closes");
        let published = Published::parse(result.manifest().into()).expect("parses");
        let spec = RewardEpochSpec {
            policy: "p".into(),
            epoch: 1,
            window_start: 0,
            window_end: 20,
            emission: "1000".into(),
            data_credits_burned: "0".into(),
            burn: "0".into(),
            remint: "0".into(),
            pools: vec![],
            unallocated: "0".into(),
            node_count: 1,
            merkle_root: String::new(),
        };
        let registry = Registry::new();
        let metrics = RewardMetrics::register(&registry).expect("registers");
        let nodes = [
            record("sn-1", NodeKind::Storage),
            record("meter-1", NodeKind::Meter),
        ];
        metrics.observe("p", &spec, &published, &nodes);
        let value = |kind: &str, node: &str| {
            metrics
                .node
                .get_metric_with_label_values(&["p", "fleet", kind, node])
                .expect("series exists")
                .get()
        };
        assert!(value("StorageNode", "sn-1") > 0);
        assert_eq!(value("MeterBridge", "meter-1"), 0, "unpaid reads 0");
        let rewarded = |pool: &str| metrics.nodes_rewarded.with_label_values(&["p", pool]).get();
        assert_eq!((rewarded("storage"), rewarded("meter")), (1, 0));

        // The next epoch drops a node that left the policy.
        metrics.observe("p", &spec, &published, &nodes[..1]);
        let families = registry.gather();
        let series = families
            .iter()
            .find(|f| f.name() == "reward_node_base_units")
            .map_or(0, |f| f.get_metric().len());
        assert_eq!(series, 1, "the departed meter's series is removed");
    }
}
