//! Runs the demo fleet on the cluster under test: installs the CRDs and the operator,
//! applies examples/demo-fleet.yaml, and shows the fleet until Ctrl-C, then removes it.
//! `e2e/fleet.sh` wraps this with the local cluster and the images.

use depin_e2e::{apply_documents, client, deploy, repo_root, yaml_documents};
use kube::Api;
use kube::api::DeleteParams;
use std::time::{Duration, Instant};

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
                match depin_cli::fleet(&client, Some("fleet")).await {
                    Ok(rows) => {
                        let ready = rows.iter().filter(|r| r.ready()).count();
                        let table = depin_cli::render(&rows, jiff::Timestamp::now());
                        println!("\n[{:>4} s] {ready}/{} nodes ready\n{table}", start.elapsed().as_secs(), rows.len());
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
