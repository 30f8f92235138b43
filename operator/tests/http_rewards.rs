//! The reward endpoints against a hostile client: a committed manifest is served with its
//! root as ETag and immutable caching (304 on revalidation), a claim revalidates until the
//! next epoch, and a client address past its quota gets 429 while /metrics still answers.
//! Served by the real axum router on loopback; the manifest is in memory, so no apiserver
//! is needed (the kube client points at a closed port and is never called).

#![allow(clippy::unwrap_used)]

use depin_operator::http::{HttpState, RewardGuard, serve_on};
use depin_operator::rewards::Book;
use depin_operator::rewards::manifest::Published;
use depin_proof::reward::{
    KindWeightsSpec, NodeTally, PolicySpec, RewardPolicy, Work, close_epoch,
};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn published() -> Arc<Published> {
    let policy = RewardPolicy::validate(&PolicySpec {
        epoch_seconds: 20,
        token_decimals: 6,
        initial_per_epoch: "1000".into(),
        halving_every_epochs: 10,
        max_supply: None,
        pools: KindWeightsSpec {
            hotspot: "0".into(),
            storage: "1".into(),
            gpu: "0".into(),
            meter: "0".into(),
        },
        hotspot_split: None,
        gpu_classes: vec![],
        burn_and_mint: None,
    })
    .unwrap();
    let tallies = [NodeTally::new(
        "fleet/sn-1",
        Work::proven_storage(1 << 30, depin_proof::reward::Decimal::ONE),
    )];
    let result = close_epoch(&policy, 3, &tallies, &Default::default(), &[]).unwrap();
    Arc::new(Published::parse(result.manifest().into()).unwrap())
}

/// One HTTP/1.1 request; returns the status code, the head and the body.
async fn get(addr: std::net::SocketAddr, path: &str, extra: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn manifests_are_cached_by_root_and_clients_are_rate_limited() {
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let book = Book::new(client, "depin-system".into());
    let manifest = published();
    book.remember("p", manifest.clone());
    let (_ready_tx, ready) = tokio::sync::watch::channel(true);
    let state = HttpState {
        metrics: depin_operator::metrics::Metrics::new().unwrap(),
        ready,
        rewards: book,
        guard: RewardGuard::new(1, 8),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_on(listener, state, std::future::pending()));

    let etag = format!("\"{}\"", hex::encode(manifest.root));
    let (code, head, body) = get(addr, "/rewards/p/epochs/3/manifest", "").await;
    assert_eq!(code, 200);
    assert_eq!(body, &*manifest.manifest, "the committed bytes, unchanged");
    assert!(head.contains(&format!("etag: {etag}")), "{head}");
    assert!(head.contains("immutable"), "{head}");
    let revalidate = format!("If-None-Match: {etag}\r\n");
    let (code, _, body) = get(addr, "/rewards/p/epochs/3/manifest", &revalidate).await;
    assert_eq!((code, body.as_str()), (304, ""));

    let (code, head, body) = get(addr, "/rewards/p/claims/fleet/sn-1", "").await;
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("no-cache") && head.contains(&etag), "{head}");
    let (code, _, _) = get(addr, "/rewards/p/claims/fleet/sn-1", &revalidate).await;
    assert_eq!(code, 304);
    // A stale ETag (an older root) gets the new claim.
    let stale = "If-None-Match: \"00\"\r\n";
    let (code, _, _) = get(addr, "/rewards/p/claims/fleet/sn-1", stale).await;
    assert_eq!(code, 200);

    // The burst of 8 is spent (5 requests so far, at 1/s): a flood gets 429 with
    // Retry-After, and the scrape endpoint is not limited.
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(get(addr, "/rewards/p/epochs/3/manifest", "").await.0);
    }
    let limited = codes.iter().filter(|c| **c == 429).count();
    assert!(limited >= 6, "flood refused: {codes:?}");
    let (code, head, _) = get(addr, "/rewards/p/claims/fleet/sn-1", "").await;
    assert_eq!(code, 429);
    assert!(head.contains("retry-after: 1"), "{head}");
    for _ in 0..20 {
        assert_eq!(get(addr, "/metrics", "").await.0, 200);
    }
}
