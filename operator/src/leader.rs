//! Leader election on a coordination.k8s.io Lease (kube-lease-manager): one replica runs
//! the controllers; the others wait, not ready, and take over when the lease lapses.

use crate::config::Config;
use kube::Client;
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use tokio::sync::watch;

/// Starts competing for the lease; the receiver turns true while this replica leads.
pub async fn elect(client: Client, config: &Config) -> anyhow::Result<watch::Receiver<bool>> {
    let manager = LeaseManagerBuilder::new(client, &config.lease_name)
        .with_namespace(&config.namespace)
        .with_identity(&config.pod_name)
        .with_duration(config.lease_duration_seconds)
        .with_grace(config.lease_duration_seconds.div_ceil(3).max(1))
        .with_create_mode(LeaseCreateMode::AutoCreate)
        .with_field_manager(crate::FIELD_MANAGER)
        .build()
        .await?;
    let (leading, task) = manager.watch().await;
    tokio::spawn(async move {
        // The lease task only ends on an API error it could not recover from; without it
        // this replica cannot prove leadership, so exiting (and restarting) is the safe move.
        match task.await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::error!(error = %err, "leader election failed; exiting");
                std::process::exit(1);
            }
            Err(err) => {
                tracing::error!(error = %err, "leader election task panicked; exiting");
                std::process::exit(1);
            }
        }
    });
    Ok(leading)
}
