//! The async paths (RewardEpoch reads, the operator through the service proxy or direct)
//! against a fake apiserver: a plain-HTTP listener answering fixed paths, so the real kube
//! client, request building and error mapping run without a cluster.

use std::collections::HashMap;
use std::sync::Arc;

use depin_crds::RewardEpoch;
use kube::{Client, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::claims::file_of;
use super::*;
use crate::claim::fetch_verified_claim;
use crate::operator::{OperatorAccess, OperatorError};
use crate::rewards::{epoch_report, fetch_manifest};

/// Path (query dropped) → (status, body); anything else is the apiserver's JSON 404.
type Routes = HashMap<String, (u16, String)>;

const PROXY: &str = "/api/v1/namespaces/depin-system/services/depin-operator:http/proxy";
const EPOCHS: &str = "/apis/depin.dev/v1alpha1/rewardepochs";

/// Serves `routes` on a local port; returns its base URL.
async fn serve(routes: Routes) -> http::Uri {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                // GETs have no body: the request ends with the blank line.
                while !head.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let target = head.split(' ').nth(1).unwrap_or("");
                let path = target.split('?').next().unwrap_or("");
                let (code, body) = routes.get(path).cloned().unwrap_or_else(|| {
                    let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"not found"}"#;
                    (404, status.to_owned())
                });
                let response = format!(
                    "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}").parse().expect("url")
}

fn client(url: &http::Uri) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::try_from(Config::new(url.clone())).expect("client")
}

fn epoch_json(result: &EpochResult) -> serde_json::Value {
    serde_json::to_value(RewardEpoch::new("default-3", record_of(result))).expect("json")
}

/// The cluster and operator of a fleet whose epoch 3 of policy `default` is closed.
fn routes(result: &EpochResult, manifest: String) -> Routes {
    let claim = crate::claim::render_json(&file_of(result, "fleet/sn-1"));
    let list = serde_json::json!({
        "apiVersion": "depin.dev/v1alpha1", "kind": "RewardEpochList",
        "metadata": {}, "items": [epoch_json(result)],
    });
    [
        (
            format!("{EPOCHS}/default-3"),
            (200, epoch_json(result).to_string()),
        ),
        (EPOCHS.to_owned(), (200, list.to_string())),
        (
            format!("{PROXY}/rewards/default/epochs/3/manifest"),
            (200, manifest),
        ),
        (
            format!("{PROXY}/rewards/default/epochs/4/manifest"),
            (404, "epoch not closed".into()),
        ),
        (
            format!("{PROXY}/rewards/default/claims/fleet/sn-1"),
            (200, claim.clone()),
        ),
        // An operator answering with somebody else's (valid) claim.
        (
            format!("{PROXY}/rewards/default/claims/fleet/sn-2"),
            (200, claim),
        ),
        (
            format!("{PROXY}/rewards/default/claims/fleet/new"),
            (404, "node has no rewards".into()),
        ),
    ]
    .into()
}

#[tokio::test]
async fn latest_epoch_and_its_manifest_through_the_service_proxy() {
    let result = closed();
    let url = serve(routes(&result, result.manifest())).await;
    let report = epoch_report(&client(&url), &OperatorAccess::default(), "default", None)
        .await
        .expect("report");
    assert_eq!(report.record.epoch, 3);
    assert!(report.verified(), "{:?}", report.problems);
    assert_eq!(report.manifest.recomputed_root(), result.merkle_root);
}

#[tokio::test]
async fn a_tampered_served_manifest_is_reported() {
    let result = closed();
    let forged = result
        .manifest()
        .replace("cumulative=77\n", "cumulative=7700\n");
    let url = serve(routes(&result, forged)).await;
    let report = epoch_report(
        &client(&url),
        &OperatorAccess::default(),
        "default",
        Some(3),
    )
    .await
    .expect("report");
    let reasons: Vec<_> = report.problems.iter().map(|p| p.reason()).collect();
    assert_eq!(reasons, ["RecomputedRootDiffers"]);
}

#[tokio::test]
async fn errors_say_which_policy_epoch_or_node() {
    let result = closed();
    let url = serve(routes(&result, result.manifest())).await;
    let client = client(&url);
    let proxy = OperatorAccess::default();
    let err = fetch_manifest(&client, &proxy, "default", 4)
        .await
        .expect_err("open");
    assert_eq!(
        err.to_string(),
        "manifest of policy default epoch 4: not found at the operator (epoch not closed)"
    );
    let err = epoch_report(&client, &proxy, "default", Some(4))
        .await
        .expect_err("open");
    assert!(
        err.to_string()
            .contains("epoch 4 of policy default is not closed"),
        "{err}"
    );
    let err = epoch_report(&client, &proxy, "other", None)
        .await
        .expect_err("none");
    assert!(
        err.to_string().contains("policy other has no closed epoch"),
        "{err}"
    );
    let elsewhere = OperatorAccess::ServiceProxy {
        namespace: "ops".into(),
        service: "depin-operator".into(),
    };
    let err = fetch_manifest(&client, &elsewhere, "default", 3)
        .await
        .expect_err("no svc");
    assert!(matches!(err, OperatorError::ServiceMissing { .. }), "{err}");
    let err = fetch_verified_claim(&client, &proxy, "default", "fleet", "new")
        .await
        .expect_err("no rewards");
    assert!(err.to_string().contains("claim of fleet/new under policy default: not found at the operator (node has no rewards)"), "{err}");
    let err = fetch_verified_claim(&client, &proxy, "default", "fleet", "sn-2")
        .await
        .expect_err("someone else's claim");
    assert!(
        err.to_string()
            .contains("the operator answered with fleet/sn-1"),
        "{err}"
    );
}

#[tokio::test]
async fn a_claim_is_checked_against_the_reward_epoch() {
    let result = closed();
    let url = serve(routes(&result, result.manifest())).await;
    let (file, verified) = fetch_verified_claim(
        &client(&url),
        &OperatorAccess::default(),
        "default",
        "fleet",
        "sn-1",
    )
    .await
    .expect("verifies");
    assert_eq!(file.node, "fleet/sn-1");
    assert!(verified.independent_root);
    assert_eq!(verified.root, result.merkle_root);

    // The operator serving a claim under a root the cluster never committed is refused.
    let mut other = routes(&result, result.manifest());
    let mut lie = file_of(&result, "fleet/sn-1");
    lie.merkle_root = hex::encode([5u8; 32]);
    other.insert(
        format!("{PROXY}/rewards/default/claims/fleet/sn-1"),
        (200, crate::claim::render_json(&lie)),
    );
    let url = serve(other).await;
    let err = fetch_verified_claim(
        &client(&url),
        &OperatorAccess::default(),
        "default",
        "fleet",
        "sn-1",
    )
    .await
    .expect_err("other root");
    assert!(
        err.to_string()
            .contains("does not verify against RewardEpoch default-3"),
        "{err}"
    );
}

#[tokio::test]
async fn direct_url_reaches_the_operator_without_the_proxy() {
    let result = closed();
    let manifest = result.manifest();
    let routes: Routes = [(
        "/rewards/default/epochs/3/manifest".to_owned(),
        (200, manifest.clone()),
    )]
    .into();
    let url = serve(routes).await;
    let direct = OperatorAccess::Direct { url: url.clone() };
    // The kube client argument is unused for a direct URL; any client will do.
    let text = fetch_manifest(&client(&url), &direct, "default", 3)
        .await
        .expect("manifest");
    assert_eq!(text, manifest);
}
