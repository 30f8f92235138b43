//! /metrics, /healthz and /readyz.

use crate::metrics::Metrics;
use axum::{Router, extract::State, http::StatusCode, routing::get};
use std::net::SocketAddr;
use tokio::sync::watch;

/// What the HTTP endpoints report from.
#[derive(Clone)]
pub struct HttpState {
    /// Metrics to expose.
    pub metrics: Metrics,
    /// True once this replica leads and its controllers run; standbys are not ready so the
    /// Service sends agents to the leader only.
    pub ready: watch::Receiver<bool>,
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    state: HttpState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "http listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(State(state): State<HttpState>) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn readyz(State(state): State<HttpState>) -> (StatusCode, &'static str) {
    if *state.ready.borrow() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "standby")
    }
}
