//! /metrics, /healthz, /readyz, and the reward manifests and claims.

use crate::metrics::Metrics;
use crate::rewards::Book;
use crate::rewards::tallies::node_id;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, http::StatusCode, routing::get};
use depin_crds::RewardEpoch;
use kube::Api;
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
    /// Closed epochs' manifests, for the manifest and claim endpoints.
    pub rewards: Book,
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
        .route("/rewards/{policy}/epochs/{epoch}/manifest", get(manifest))
        .route("/rewards/{policy}/claims/{namespace}/{name}", get(claim))
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

/// GET /rewards/{policy}/epochs/{epoch}/manifest: the canonical manifest bytes of a
/// committed epoch (from memory, else from its shards, checked against its RewardEpoch).
async fn manifest(
    State(state): State<HttpState>,
    Path((policy, epoch)): Path<(String, u64)>,
) -> Response {
    if let Some(published) = state.rewards.cached(&policy, epoch) {
        return text(published.manifest.to_string());
    }
    let api: Api<RewardEpoch> = Api::all(state.rewards.client().clone());
    let record = match api.get_opt(&format!("{policy}-{epoch}")).await {
        Ok(Some(record)) => record,
        Ok(None) => return (StatusCode::NOT_FOUND, "epoch not closed").into_response(),
        Err(err) => return (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    };
    match state
        .rewards
        .load(&policy, epoch, &record.spec.merkle_root)
        .await
    {
        Ok(Some(published)) => text(published.manifest.to_string()),
        Ok(None) => (StatusCode::NOT_FOUND, "manifest shards missing").into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

fn text(body: String) -> Response {
    ([("content-type", "text/plain; charset=utf-8")], body).into_response()
}

/// A claim as JSON: amounts as decimal strings, hashes and proofs as hex.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ClaimBody {
    policy: String,
    epoch: u64,
    node: String,
    cumulative: String,
    merkle_root: String,
    leaf_count: u64,
    index: u64,
    /// Sibling hashes from the leaf up.
    path: Vec<String>,
    /// `Claim::to_bytes`, for `Claim::from_bytes` + `verify_claim`.
    claim: String,
}

/// GET /rewards/{policy}/claims/{namespace}/{name}: the node's claim under the latest
/// closed epoch's root.
async fn claim(
    State(state): State<HttpState>,
    Path((policy, namespace, name)): Path<(String, String, String)>,
) -> Response {
    let Some(published) = state.rewards.latest(&policy) else {
        return (StatusCode::NOT_FOUND, "no closed epoch for this policy").into_response();
    };
    let node = node_id(&namespace, &name);
    let Some(claim) = published.claim(&node) else {
        return (StatusCode::NOT_FOUND, "node has no rewards").into_response();
    };
    Json(ClaimBody {
        policy,
        epoch: claim.epoch,
        node,
        cumulative: claim.cumulative.to_string(),
        merkle_root: hex::encode(published.root),
        leaf_count: claim.proof.leaf_count,
        index: claim.proof.index,
        path: claim.proof.path.siblings.iter().map(hex::encode).collect(),
        claim: hex::encode(claim.to_bytes()),
    })
    .into_response()
}
