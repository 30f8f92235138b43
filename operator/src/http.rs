//! /metrics, /healthz, /readyz, and the reward manifests and claims.
//!
//! The reward endpoints face anyone who can reach the pod: each client address is
//! rate-limited, committed manifests are served from memory (no copy of the bytes) with
//! an ETag and immutable caching, and a manifest not in memory is loaded from the
//! apiserver one at a time, so requests for old epochs cannot turn into an apiserver flood.

use crate::metrics::Metrics;
use crate::rewards::Book;
use crate::rewards::tallies::node_id;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, http::StatusCode, routing::get};
use depin_crds::RewardEpoch;
use governor::{DefaultKeyedRateLimiter, Quota};
use kube::Api;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use tokio::sync::{Semaphore, watch};

/// Reward requests per second one client address may make, sustained and in a burst.
pub const REWARD_REQUESTS_PER_SECOND: u32 = 50;
/// See [`REWARD_REQUESTS_PER_SECOND`].
pub const REWARD_REQUEST_BURST: u32 = 100;
/// Client addresses the limiter remembers before it forgets the idle ones.
const LIMITER_ADDRESSES: usize = 10_000;

/// The reward endpoints' guards, shared by every request.
#[derive(Clone)]
pub struct RewardGuard {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// Manifest loads from the apiserver in flight: one.
    loads: Arc<Semaphore>,
}

impl RewardGuard {
    /// `per_second` sustained and `burst` requests per client address.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            )),
            loads: Arc::new(Semaphore::new(1)),
        }
    }
}

impl Default for RewardGuard {
    fn default() -> Self {
        Self::new(REWARD_REQUESTS_PER_SECOND, REWARD_REQUEST_BURST)
    }
}

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
    /// Rate limit and load gate of the reward endpoints.
    pub guard: RewardGuard,
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    state: HttpState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "http listening");
    serve_on(listener, state, shutdown).await
}

/// Serves on a bound `listener` until `shutdown` resolves.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: HttpState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let rewards = Router::new()
        .route("/rewards/{policy}/epochs/{epoch}/manifest", get(manifest))
        .route("/rewards/{policy}/claims/{namespace}/{name}", get(claim))
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limit));
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(rewards)
        .with_state(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// 429 with `Retry-After` once a client address exceeds its quota.
async fn rate_limit(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let limiter = &state.guard.limiter;
    if limiter.len() > LIMITER_ADDRESSES {
        limiter.retain_recent();
    }
    match limiter.check_key(&peer.ip()) {
        Ok(()) => next.run(request).await,
        Err(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "too many reward requests from this address; retry later",
        )
            .into_response(),
    }
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
/// A committed manifest never changes: its ETag is its root and it may be cached for good.
async fn manifest(
    State(state): State<HttpState>,
    Path((policy, epoch)): Path<(String, u64)>,
    headers: HeaderMap,
) -> Response {
    if let Some(published) = state.rewards.cached(&policy, epoch) {
        return manifest_body(&published, &headers);
    }
    // One apiserver load at a time; whoever waited finds the manifest in memory.
    let Ok(_load) = state.guard.loads.acquire().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    };
    if let Some(published) = state.rewards.cached(&policy, epoch) {
        return manifest_body(&published, &headers);
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
        Ok(Some(published)) => manifest_body(&published, &headers),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            "manifest shards missing or past the policy's manifestRetentionEpochs; the latest manifest's cumulative totals supersede it",
        )
            .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

/// The manifest text without copying it, or 304 when the client holds it already.
fn manifest_body(published: &crate::rewards::manifest::Published, headers: &HeaderMap) -> Response {
    let etag = etag(&published.root);
    if not_modified(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let bytes = Bytes::from_owner(ManifestBytes(published.manifest.clone()));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::ETAG, etag),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        Body::from(bytes),
    )
        .into_response()
}

/// Shares the manifest's `Arc<str>` with the response body.
struct ManifestBytes(Arc<str>);

impl AsRef<[u8]> for ManifestBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

fn etag(root: &[u8; 32]) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{}\"", hex::encode(root)))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || tag.trim().as_bytes() == etag.as_bytes())
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
/// closed epoch's root. It changes when the next epoch closes: the ETag is that root, and
/// clients revalidate (`no-cache`) and get 304 until then.
async fn claim(
    State(state): State<HttpState>,
    Path((policy, namespace, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(published) = state.rewards.latest(&policy) else {
        return (StatusCode::NOT_FOUND, "no closed epoch for this policy").into_response();
    };
    let node = node_id(&namespace, &name);
    let etag = etag(&published.root);
    if not_modified(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let Some(claim) = published.claim(&node) else {
        return (StatusCode::NOT_FOUND, "node has no rewards").into_response();
    };
    let cache = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    let body = Json(ClaimBody {
        policy,
        epoch: claim.epoch,
        node,
        cumulative: claim.cumulative.to_string(),
        merkle_root: hex::encode(published.root),
        leaf_count: claim.proof.leaf_count,
        index: claim.proof.index,
        path: claim.proof.path.siblings.iter().map(hex::encode).collect(),
        claim: hex::encode(claim.to_bytes()),
    });
    (cache, body).into_response()
}
