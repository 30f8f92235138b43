//! The verifier's long-lived tasks are supervised: a task that dies before shutdown
//! (the node watch panicking on a malformed object, say) stops the verifier with an
//! error naming it, counted in `verifier_task_failures_total`, so the operator exits and
//! is restarted instead of serving agents from a frozen node index. A task that ends
//! because shutdown was requested is not a failure.

#![allow(clippy::unwrap_used)]

mod support;

use depin_operator::Shutdown;
use depin_operator::verifier::persist::sink::MemorySink;
use depin_operator::verifier::state::index::NodeIndex;
use depin_operator::verifier::{Verifier, serve_beside};
use std::sync::Arc;
use std::time::Duration;

fn verifier(shutdown: Shutdown) -> Arc<Verifier> {
    let registry = prometheus::Registry::new();
    let index = NodeIndex::new();
    index.mark_ready();
    Verifier::new(
        support::settings(),
        index,
        Arc::new(MemorySink::default()),
        &registry,
        shutdown,
    )
    .unwrap()
}

fn failures(verifier: &Verifier, task: &str) -> u64 {
    verifier
        .metrics
        .task_failures
        .with_label_values(&[task])
        .get()
}

#[tokio::test]
async fn a_task_that_panics_stops_the_verifier_and_is_counted() {
    let (_stop, shutdown) = Shutdown::never();
    let verifier = verifier(shutdown);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let watch = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        panic!("a malformed object");
    });
    let served = tokio::time::timeout(
        Duration::from_secs(10),
        serve_beside(verifier.clone(), listener, vec![("node-watch", watch)]),
    )
    .await
    .expect("the verifier stops instead of serving on");
    let err = served.expect_err("an early end is an error");
    assert!(err.to_string().contains("node-watch panicked"), "{err}");
    assert_eq!(failures(&verifier, "node-watch"), 1);
    assert_eq!(failures(&verifier, "gpu-rounds"), 0);
    // Nothing listens any more: agents reconnect to the restarted operator.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_task_that_ends_at_shutdown_is_not_a_failure() {
    let (stop, shutdown) = Shutdown::never();
    let signal = shutdown.signal();
    let verifier = verifier(shutdown);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Ends exactly when shutdown is requested, racing the server's own stop.
    let watch = tokio::spawn(signal);
    let serving = tokio::spawn(serve_beside(
        verifier.clone(),
        listener,
        vec![("node-watch", watch)],
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!serving.is_finished(), "serves while the task runs");
    stop.send(true).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("stops on shutdown")
        .unwrap();
    served.expect("a clean stop");
    assert_eq!(failures(&verifier, "node-watch"), 0);
}
