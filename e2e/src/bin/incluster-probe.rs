//! In-cluster probe for the local harness test (`e2e/harness-test.sh`).
//!
//! Runs inside a pod: `Client::try_default()` picks up the in-cluster config (the `kubernetes`
//! Service, the mounted service-account token and CA). It must be able to list namespaces and
//! must be denied (403) listing Secrets in `kube-system`. Exit 0 only if both hold.

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::ListParams;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => {
            println!("incluster-probe: OK");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("incluster-probe: FAIL: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    // kube and other crates may pull in more than one rustls provider; pick ring explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default().await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let list = namespaces.list(&ListParams::default()).await?;
    println!("namespaces: {}", list.items.len());
    anyhow::ensure!(!list.items.is_empty(), "namespace list is empty");

    let secrets: Api<Secret> = Api::namespaced(client, "kube-system");
    match secrets.list(&ListParams::default()).await {
        Ok(l) => anyhow::bail!(
            "listing secrets in kube-system was allowed ({} items); RBAC should deny it",
            l.items.len()
        ),
        Err(kube::Error::Api(status)) if status.code == 403 => {
            println!("secrets in kube-system: denied (403) as expected");
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e).context("listing secrets failed, but not with 403")),
    }
}
