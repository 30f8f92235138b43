//! /metrics, /healthz and /readyz.

use crate::metrics::AgentMetrics;
use axum::{Router, extract::State, http::StatusCode, routing::get};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A check /readyz runs on every probe; false makes the agent unready.
type ReadinessCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// Shared HTTP state.
#[derive(Clone)]
pub struct HttpState {
    metrics: AgentMetrics,
    ready: Arc<AtomicBool>,
    checks: Arc<Mutex<Vec<ReadinessCheck>>>,
}

impl HttpState {
    /// State for `metrics`, not yet ready.
    pub fn new(metrics: AgentMetrics) -> Self {
        Self {
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
            checks: Arc::default(),
        }
    }

    /// Adds a check of a long-lived task (e.g. the GWMP receive loop): while it answers
    /// false, /readyz answers 503 even though the agent was marked ready.
    pub fn add_check(&self, check: impl Fn() -> bool + Send + Sync + 'static) {
        self.checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(check));
    }

    /// Whether the agent is ready and every check passes.
    pub fn is_ready(&self) -> bool {
        let checks = self
            .checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let ready = self.ready.load(Ordering::Relaxed) && checks.iter().all(|check| check());
        self.metrics.ready.set(i64::from(ready));
        ready
    }

    /// Flips readiness (and the `ready` gauge).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
        self.metrics.ready.set(i64::from(ready));
    }
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
    if state.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
