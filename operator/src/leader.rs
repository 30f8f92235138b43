//! Leader election on a coordination.k8s.io Lease (kube-lease-manager): one replica runs
//! the controllers; the others wait, not ready, and take over when the lease lapses.

use crate::config::Config;
use kube::Client;
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use tokio::sync::watch;

/// This replica's part in the election.
pub struct Leadership {
    leading: watch::Receiver<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// A receiver that is true while this replica leads.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Gives the lease up so a standby takes over at once instead of waiting for it to
    /// expire. Every receiver from [`Self::subscribe`] must be dropped first.
    pub async fn release(self) {
        drop(self.leading);
        if tokio::time::timeout(std::time::Duration::from_secs(5), self.done)
            .await
            .is_err()
        {
            tracing::warn!("releasing the leader lease timed out; it will expire instead");
        }
    }
}

/// Starts competing for the lease.
pub async fn elect(client: Client, config: &Config) -> anyhow::Result<Leadership> {
    let manager = LeaseManagerBuilder::new(client, &config.lease_name)
        .with_namespace(&config.namespace)
        .with_identity(&config.pod_name)
        .with_duration(config.lease_duration_seconds)
        .with_grace(config.lease_duration_seconds.div_ceil(3).max(1))
        .with_create_mode(LeaseCreateMode::AutoCreate)
        .with_field_manager(crate::FIELD_MANAGER)
        .build()
        .await?;
    // The manager's task releases the lease once every receiver is gone.
    let (leading, task) = manager.watch().await;
    let done = tokio::spawn(async move {
        // The lease task only ends early on an API error it could not recover from;
        // without it this replica cannot prove leadership, so exiting is the safe move.
        match task.await {
            Ok(Ok(_)) => tracing::info!("leader lease released"),
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
    Ok(Leadership { leading, done })
}
