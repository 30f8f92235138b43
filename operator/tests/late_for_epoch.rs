//! Work whose reward epoch is past its grace period is refused as `LateForEpoch` (the
//! reward controller may already have closed that epoch), whatever proof kind carries it.
#![allow(clippy::unwrap_used)]

mod support;

use depin_operator::verifier::now_ms;
use depin_operator::verifier::persist::sink::MemorySink;
use depin_operator::verifier::state::index::{Declared, NodeIndex, PolicyEntry};
use depin_proof::RejectReason;
use depin_proof::identity::NodeKey;
use depin_proto::config::Role;
use std::sync::Arc;

#[tokio::test]
async fn accepted_work_of_a_frozen_epoch_is_late_and_rejections_keep_their_reason() {
    let index = NodeIndex::new();
    let key = NodeKey::from_seed([3; 32]).public();
    index.upsert(support::entry(
        Role::Gpu,
        "gpu-1",
        &key,
        Declared::Gpu { declared_tops: 1.0 },
    ));
    index.set_policy(
        "default",
        PolicyEntry {
            epoch_seconds: 60,
            grace_seconds: 5,
            poc: None,
            ..PolicyEntry::default()
        },
    );
    let running = support::start(
        support::settings(),
        index,
        Arc::new(MemorySink::default()),
        "127.0.0.1:0",
    )
    .await;
    let v = &running.verifier;
    let now = now_ms();
    let two_epochs_ago = now - 120_000;
    type Verdict = Result<u128, RejectReason>;
    // (work started at, verdict in, verdict out)
    let table: &[(u64, Verdict, Verdict)] = &[
        (now, Ok(7), Ok(7)),
        (two_epochs_ago, Ok(7), Err(RejectReason::LateForEpoch)),
        (
            two_epochs_ago,
            Err(RejectReason::Replay),
            Err(RejectReason::Replay),
        ),
    ];
    for (i, (work, verdict, want)) in table.iter().enumerate() {
        assert_eq!(v.in_time(Some(&key), *work, *verdict), *want, "row {i}");
    }
    // A node the index does not know has no policy to be late for.
    let stranger = NodeKey::from_seed([4; 32]).public();
    assert_eq!(v.in_time(Some(&stranger), two_epochs_ago, Ok(7)), Ok(7));
    running.stop().await;
}
