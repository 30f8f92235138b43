//! depin-operator: controllers for the four node kinds, the verifier and the reward
//! controller, behind one leader lease.

pub mod config;
pub mod context;
pub mod controllers;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod rewards;
pub mod telemetry;
pub mod verifier;

use crate::config::Config;
use crate::context::Context;
use crate::metrics::Metrics;
use anyhow::Context as _;
use kube::api::ListParams;
use kube::{Api, Client, CustomResourceExt};
use std::sync::Arc;
use tokio::sync::watch;

/// The one field manager for everything the operator applies.
pub const FIELD_MANAGER: &str = "depin-operator";

/// Runs the operator until SIGTERM/SIGINT or loss of leadership.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // kube and tonic may both pull in rustls; pick the provider once, explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Refuse bad verifier flags now, not after winning the lease.
    verifier::Settings::from_config(&config)?;
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    check_crds(&client).await?;
    let metrics = Metrics::new()?;
    let reward_metrics = rewards::RewardMetrics::register(metrics.registry())?;
    let book = rewards::Book::new(client.clone(), config.namespace.clone());
    let (ready_tx, ready_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let shutdown = Shutdown(stop_rx);
    let http = tokio::spawn(http::serve(
        config.http_addr,
        http::HttpState {
            metrics: metrics.clone(),
            ready: ready_rx,
            rewards: book.clone(),
            guard: http::RewardGuard::default(),
        },
        shutdown.signal(),
    ));
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        let _ = stop_tx.send(true);
    });

    let leadership = match config.leader_election {
        true => Some(leader::elect(client.clone(), &config).await?),
        false => None,
    };
    // Without election this replica always leads; the sender lives as long as `run`.
    let (_always, always_leading) = watch::channel(true);
    let mut leading = leadership
        .as_ref()
        .map_or(always_leading, leader::Leadership::subscribe);
    tokio::select! {
        _ = leading.wait_for(|l| *l) => {}
        _ = shutdown.signal() => return Ok(()),
    }
    // Every leader signs with the one key in the Secret, which agents pin.
    let verifier_key =
        verifier::key::load_or_create(&client, &config.namespace, &config.verifier_key_secret)
            .await
            .with_context(|| format!("verifier key Secret {}", config.verifier_key_secret))?;
    let ctx = Arc::new(
        Context::new(client, config, metrics.clone()).with_verifier_key(verifier_key.public()),
    );
    tracing::info!(replica = %ctx.config.pod_name, "leading; starting controllers");
    metrics.leader.set(1);
    let _ = ready_tx.send(true);
    let lost = async move {
        let _ = leading.wait_for(|l| !*l).await;
    };
    let client = ctx.client.clone();
    let leader_work = async {
        // The verifier serves agents only while leading; a verifier that cannot start
        // (bad flags, port taken) stops the operator rather than leave agents unheard.
        let verifier = verifier::run(
            client,
            &ctx.config,
            verifier_key,
            metrics.registry(),
            shutdown.clone(),
        );
        let controllers = async {
            controllers::run(ctx.clone(), &shutdown).await;
            Ok(())
        };
        let rewards = async {
            rewards::RewardController::new(
                ctx.client.clone(),
                book,
                reward_metrics,
                ctx.config.pod_name.clone(),
            )
            .run(shutdown.clone())
            .await;
            Ok(())
        };
        tokio::try_join!(controllers, verifier, rewards).map(|_| ())
    };
    tokio::select! {
        result = leader_work => result?,
        _ = lost => {
            // A standby may already be acting; stop at once rather than race it.
            tracing::error!("lost the leader lease; exiting");
            std::process::exit(1);
        }
    }
    metrics.leader.set(0);
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    let _ = http.await;
    tracing::info!("stopped");
    Ok(())
}

/// Hands out futures that resolve once shutdown was requested.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A future resolving on shutdown (each component gets its own).
    pub fn signal(&self) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.0.clone();
        async move {
            // An error means the sender is gone, which also means shutting down.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    /// Whether shutdown has been requested (a task that ended then ended on purpose).
    pub fn requested(&self) -> bool {
        // A dropped sender means shutting down too (as in `signal`).
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// A handle that never fires, for tests that stop by dropping the runtime.
    pub fn never() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }
}

/// Fails with a clear message when a CRD is missing, instead of retrying forever.
async fn check_crds(client: &Client) -> anyhow::Result<()> {
    async fn probe<K>(client: &Client) -> anyhow::Result<()>
    where
        K: kube::Resource<DynamicType = ()>
            + CustomResourceExt
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<kube::api::PartialObjectMeta<K>> = Api::all(client.clone());
        api.list_metadata(&ListParams::default().limit(1))
            .await
            .map(|_| ())
            .with_context(|| {
                format!(
                    "CRD {} is not installed: run `kubectl apply --server-side -f crds/` first",
                    K::crd_name()
                )
            })
    }
    probe::<depin_crds::HotspotGateway>(client).await?;
    probe::<depin_crds::StorageNode>(client).await?;
    probe::<depin_crds::GpuWorker>(client).await?;
    probe::<depin_crds::MeterBridge>(client).await?;
    probe::<depin_crds::RewardPolicy>(client).await?;
    probe::<depin_crds::RewardEpoch>(client).await?;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
