//! Storage rewards are proven bytes × proven periods, asserted on the rewards of a closed
//! epoch: the same capacity earns the same with small or large sectors (before, shares grew
//! with capacity² / sectorSize), and declared capacity that is never proven earns nothing.

mod support;

use depin_operator::verifier::persist::sink::MemorySink;
use depin_operator::verifier::state::index::{Declared, NodeEntry, NodeIndex};
use depin_proof::identity::NodeKey;
use depin_proto::config::{Role, StorageConfig};
use std::sync::Arc;
use std::time::Duration;
use support::{
    RealAgent, SECTOR, agent_config, entry, epoch, scratch_dir, settings, spawn_agent, start,
};

/// Four 2 s proving periods per epoch (support::settings: two 1 s deadlines each).
const EPOCH_SECONDS: u64 = 8;

fn declared(capacity_bytes: u64, sector_size_bytes: u64) -> Declared {
    Declared::Storage {
        capacity_bytes,
        sector_size_bytes,
    }
}

fn agent(endpoint: &str, name: &str, key: NodeKey, capacity: u64, sector: u64) -> RealAgent {
    let mut config = agent_config(Role::Storage, name, endpoint);
    config.storage = Some(StorageConfig {
        capacity_bytes: capacity,
        sector_size_bytes: sector,
        data_dir: scratch_dir(name).display().to_string(),
    });
    spawn_agent(config, key)
}

struct Node {
    entry: NodeEntry,
    key: NodeKey,
}

fn node(index: &NodeIndex, name: &str, declared: Declared) -> Node {
    let key = NodeKey::generate();
    let entry = entry(Role::Storage, name, &key.public(), declared);
    index.upsert(entry.clone());
    Node { entry, key }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_capacity_earns_the_same_whatever_the_sector_size_and_declared_capacity_earns_nothing()
 {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    epoch::register_policy(&index, "default", EPOCH_SECONDS);
    let capacity = 4 * SECTOR;
    // Honest: 4 sectors of 64 KiB. Same capacity as one 256 KiB sector. The inflator
    // declares 64 sectors' capacity but fills and proves 4 of them.
    let small = node(&index, "small-sectors", declared(capacity, SECTOR));
    let large = node(&index, "large-sector", declared(capacity, capacity));
    let inflator = node(&index, "inflator", declared(64 * SECTOR, SECTOR));
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let agents = [
        agent(
            &verifier.endpoint,
            "small-sectors",
            small.key,
            capacity,
            SECTOR,
        ),
        agent(
            &verifier.endpoint,
            "large-sector",
            large.key,
            capacity,
            capacity,
        ),
        agent(
            &verifier.endpoint,
            "inflator",
            inflator.key,
            capacity,
            SECTOR,
        ),
    ];
    // Connected and proving before the epoch starts, so every deadline of it is answered.
    support::eventually(20, "every agent has a proof accepted", || {
        agents.iter().all(|a| a.accepted("storage") >= 1)
    })
    .await;
    let n = epoch::start_of_next_epoch(EPOCH_SECONDS).await;
    epoch::end_of_epoch(n, EPOCH_SECONDS, Duration::from_millis(500)).await;
    for a in agents {
        a.stop().await;
    }
    verifier.stop().await;

    let policy = epoch::policy(&epoch::policy_yaml(EPOCH_SECONDS));
    let entries = [&small.entry, &large.entry, &inflator.entry];
    let closed = epoch::close(&sink, &entries, &policy, n);
    let r = &closed.result;
    let (s, l, i) = (
        closed.paid_to(&small.entry),
        closed.paid_to(&large.entry),
        closed.paid_to(&inflator.entry),
    );
    assert!(s > 0, "honest node unpaid: {r:?}");
    // Four periods × 256 KiB each: 4 × 64 KiB proofs or 1 × 256 KiB proof per period.
    let proven = |e: &NodeEntry| {
        sink.tallies(&e.id.namespace, &e.id.name)
            .previous
            .into_iter()
            .chain(sink.tallies(&e.id.namespace, &e.id.name).proofs)
            .find(|t| t.epoch == n)
            .and_then(|t| t.work_units)
    };
    let four_periods = (4 * capacity).to_string();
    assert_eq!(proven(&small.entry).as_deref(), Some(four_periods.as_str()));
    assert_eq!(proven(&large.entry).as_deref(), Some(four_periods.as_str()));
    assert_eq!(s, l, "same capacity, other sector size: {r:?}");
    // 64 sectors declared, 4 proven: paid like the honest node of 4 (was 16 times more).
    assert_eq!(i, s, "declared capacity must not pay: {r:?}");
    let paid: u128 = r.nodes.iter().map(|n| n.reward).sum();
    assert_eq!(paid + r.unallocated, r.emission + r.remint, "books: {r:?}");
}
