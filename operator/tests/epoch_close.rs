//! The in-process epoch close the adversarial tests assert with: honest storage and GPU
//! agents working through a whole epoch are paid from their pools, a registered node that
//! did no work is paid nothing, and the books balance.

mod support;

use depin_operator::verifier::persist::sink::MemorySink;
use depin_operator::verifier::state::index::{Declared, NodeIndex};
use depin_proof::identity::NodeKey;
use depin_proof::reward::NodeKind;
use depin_proto::config::Role;
use std::sync::Arc;
use std::time::Duration;
use support::epoch;
use support::{entry, gpu_agent, settings, start, storage_agent, storage_declared};

const EPOCH_SECONDS: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_nodes_are_paid_from_their_pools_and_an_idle_node_is_not() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    epoch::register_policy(&index, "default", EPOCH_SECONDS);
    let (storage_key, gpu_key, idle_key) = (
        NodeKey::generate(),
        NodeKey::generate(),
        NodeKey::generate(),
    );
    let storage = entry(
        Role::Storage,
        "honest-storage",
        &storage_key.public(),
        storage_declared(2),
    );
    let gpu = entry(
        Role::Gpu,
        "honest-gpu",
        &gpu_key.public(),
        Declared::Gpu {
            declared_tops: 0.001,
        },
    );
    let idle = entry(
        Role::Storage,
        "idle-storage",
        &idle_key.public(),
        storage_declared(2),
    );
    for e in [&storage, &gpu, &idle] {
        index.upsert(e.clone());
    }
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let n = epoch::start_of_next_epoch(EPOCH_SECONDS).await;
    let agents = [
        storage_agent(&verifier.endpoint, "honest-storage", storage_key, 2),
        gpu_agent(&verifier.endpoint, "honest-gpu", gpu_key),
    ];
    epoch::end_of_epoch(n, EPOCH_SECONDS, Duration::from_millis(500)).await;
    for a in agents {
        a.stop().await;
    }
    verifier.stop().await;

    let policy = epoch::policy(&epoch::policy_yaml(EPOCH_SECONDS));
    let closed = epoch::close(&sink, &[&storage, &gpu, &idle], &policy, n);
    let r = &closed.result;
    assert!(closed.paid_to(&storage) > 0, "honest storage unpaid: {r:?}");
    assert!(closed.paid_to(&gpu) > 0, "honest GPU unpaid: {r:?}");
    assert_eq!(
        closed.paid_to(&idle),
        0,
        "a node without work was paid: {r:?}"
    );
    // The only storage node with work takes the whole storage pool (up to split dust).
    assert_eq!(
        closed.pool_paid(NodeKind::Storage),
        closed.paid_to(&storage)
    );
    let paid: u128 = r.nodes.iter().map(|n| n.reward).sum();
    assert_eq!(paid + r.unallocated, r.emission + r.remint, "books: {r:?}");
}
