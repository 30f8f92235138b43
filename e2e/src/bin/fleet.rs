//! Runs the demo fleet on the cluster under test: installs the CRDs and the operator,
//! applies examples/demo-fleet.yaml, and shows the fleet until Ctrl-C, then removes it.
//! `e2e/fleet.sh` wraps this with the local cluster and the images.

use depin_crds::{GpuWorker, HotspotGateway, MeterBridge, NodeStatus, StorageNode};
use depin_e2e::{apply_documents, client, condition, deploy, repo_root, yaml_documents};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client, ResourceExt};
use std::time::{Duration, Instant};

/// One row of the fleet table.
struct Row {
    kind: &'static str,
    name: String,
    status: Option<NodeStatus>,
}

async fn rows<K>(
    client: &Client,
    kind: &'static str,
    status: fn(&K) -> Option<&NodeStatus>,
) -> anyhow::Result<Vec<Row>>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), "fleet");
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|n| Row {
            kind,
            name: n.name_any(),
            status: status(n).cloned(),
        })
        .collect())
}

async fn table(client: &Client) -> anyhow::Result<(String, usize, usize)> {
    let mut all = rows::<HotspotGateway>(client, "HotspotGateway", |n| n.status.as_ref()).await?;
    all.extend(rows::<StorageNode>(client, "StorageNode", |n| n.status.as_ref()).await?);
    all.extend(rows::<GpuWorker>(client, "GpuWorker", |n| n.status.as_ref()).await?);
    all.extend(rows::<MeterBridge>(client, "MeterBridge", |n| n.status.as_ref()).await?);
    let mut out = format!(
        "{:<15} {:<16} {:<6} {:<13} {:>8} {:>8} {:>16} {:>16}\n",
        "KIND", "NODE", "READY", "KEY", "PROOF OK", "REJECTED", "REWARD LAST", "CUMULATIVE"
    );
    let mut ready = 0;
    for row in &all {
        let s = row.status.as_ref();
        let is_ready = condition(s, "Ready").as_deref() == Some("True");
        ready += usize::from(is_ready);
        let proofs = s.and_then(|s| s.proofs.as_ref());
        let rewards = s.and_then(|s| s.rewards.as_ref());
        out.push_str(&format!(
            "{:<15} {:<16} {:<6} {:<13} {:>8} {:>8} {:>16} {:>16}\n",
            row.kind,
            row.name,
            if is_ready { "True" } else { "False" },
            s.and_then(|s| s.key_prefix.clone())
                .unwrap_or_else(|| "-".into()),
            proofs.map_or(0, |p| p.accepted),
            proofs.map_or(0, |p| p.rejected),
            rewards.map_or("-".into(), |r| r.last_epoch_reward.clone()),
            rewards.map_or("-".into(), |r| r.cumulative.clone()),
        ));
    }
    Ok((out, ready, all.len()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = client().await?;
    println!("installing CRDs and the operator ...");
    deploy::install_crds(&client).await?;
    deploy::deploy_operator(&client).await?;
    let docs = yaml_documents(&std::fs::read_to_string(
        repo_root().join("examples/demo-fleet.yaml"),
    )?)?;
    apply_documents(&client, &docs).await?;
    println!(
        "demo fleet applied ({} objects); Ctrl-C stops and removes it",
        docs.len()
    );
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(3));
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                match table(&client).await {
                    Ok((text, ready, total)) => {
                        println!("\n[{:>4} s] {ready}/{total} nodes ready\n{text}", start.elapsed().as_secs());
                    }
                    Err(err) => eprintln!("reading the fleet failed: {err:#}"),
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    println!("\nremoving the demo fleet ...");
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let _ = ns.delete("fleet", &DeleteParams::background()).await;
    let policies: Api<depin_crds::RewardPolicy> = Api::all(client.clone());
    let _ = policies.delete("demo", &DeleteParams::default()).await;
    Ok(())
}
