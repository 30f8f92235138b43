//! Reconcile benchmark (not a test): creates N parked MeterBridge nodes (spec.agent.replicas
//! 0, so no pods start) on the cluster under test and reports how long until the operator
//! has reconciled every one, and the operator's peak RSS.
//!
//! Usage: `cargo run -p depin-e2e --bin reconcile-bench -- [--nodes 1000|10000]`

use depin_crds::MeterBridge;
use depin_e2e::deploy::{self, OPERATOR, OPERATOR_NAMESPACE};
use depin_e2e::{TestNamespace, client, eventually};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let nodes: usize = args
        .iter()
        .position(|a| a == "--nodes")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1000);
    let client = client().await?;
    deploy::install_crds(&client).await?;
    deploy::deploy_operator(&client).await?;
    let ns = TestNamespace::create(&client, "bench").await?;
    let api = ns.api::<MeterBridge>();
    let template: MeterBridge = serde_json::from_value(serde_json::json!({
        "apiVersion": "depin.dev/v1alpha1", "kind": "MeterBridge",
        "metadata": {"name": "x"},
        "spec": {"meter": {"modbus": {"host": "meter.invalid"}}, "direction": "production",
                 "ratedCapacityKw": 5.0, "payout": {"wallet": "bench"}, "agent": {"replicas": 0}}
    }))?;
    let start = Instant::now();
    futures::stream::iter(0..nodes)
        .map(|i| {
            let api = api.clone();
            let mut node = template.clone();
            node.metadata.name = Some(format!("bench-{i:05}"));
            async move { api.create(&PostParams::default(), &node).await.map(|_| ()) }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let created = start.elapsed();
    // Listing every node is itself load on the API server: poll less often for big fleets.
    let poll = Duration::from_millis(nodes as u64).max(Duration::from_millis(500));
    let reconciled = eventually(
        "every node reconciled",
        Duration::from_secs(3600),
        || async {
            tokio::time::sleep(poll).await;
            let list = api.list(&ListParams::default()).await?;
            let done = list
                .items
                .iter()
                .filter(|n| {
                    n.status
                        .as_ref()
                        .is_some_and(|s| s.observed_generation.is_some() && s.public_key.is_some())
                })
                .count();
            Ok((done == nodes).then(|| start.elapsed()))
        },
    )
    .await?;
    let peak = operator_peak_rss(&client)
        .await
        .unwrap_or_else(|e| format!("unavailable ({e:#})"));
    println!("nodes: {nodes}");
    println!("create calls done after: {:.1} s", created.as_secs_f64());
    println!(
        "all reconciled after: {:.1} s ({:.0} nodes/s)",
        reconciled.as_secs_f64(),
        nodes as f64 / reconciled.as_secs_f64()
    );
    println!("operator peak RSS: {peak}");
    ns.cleanup().await;
    Ok(())
}

/// Reads `depin_operator_peak_rss_bytes` from the operator pod's /metrics (pod IPs are
/// routable from the node on the local harness).
async fn operator_peak_rss(client: &kube::Client) -> anyhow::Result<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let list = pods
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/name={OPERATOR}")))
        .await?;
    let pod = list
        .items
        .first()
        .ok_or_else(|| anyhow::anyhow!("no operator pod"))?;
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .ok_or_else(|| anyhow::anyhow!("{} has no IP", pod.name_any()))?;
    let body = http_get(&format!("{ip}:8080"), "/metrics").await?;
    let line = body
        .lines()
        .find(|l| l.starts_with("depin_operator_peak_rss_bytes "))
        .ok_or_else(|| anyhow::anyhow!("metric missing"))?;
    let bytes: f64 = line.split_whitespace().nth(1).unwrap_or("0").parse()?;
    Ok(format!("{:.1} MiB", bytes / 1048576.0))
}

async fn http_get(addr: &str, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body)
}
