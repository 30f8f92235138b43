//! What every reconcile shares.

use crate::config::Config;
use crate::metrics::Metrics;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use kube::Client;
use kube::runtime::events::Reporter;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Shared state handed to every reconcile.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Operator settings.
    pub config: Config,
    /// Metrics.
    pub metrics: Metrics,
    /// Who Events say they come from.
    pub reporter: Reporter,
    /// The verifier's public key, written into every agent's ConfigMap for pinning.
    pub verifier_key: Option<depin_proof::identity::PublicKey>,
    backoff: Mutex<HashMap<String, ExponentialBackoff>>,
}

impl Context {
    /// A context for `client` and `config`.
    pub fn new(client: Client, config: Config, metrics: Metrics) -> Self {
        let reporter = Reporter {
            controller: crate::FIELD_MANAGER.into(),
            instance: Some(config.pod_name.clone()),
        };
        Self {
            client,
            config,
            metrics,
            reporter,
            verifier_key: None,
            backoff: Mutex::new(HashMap::new()),
        }
    }

    /// The same context with agents pinning the verifier key `key`.
    #[must_use]
    pub fn with_verifier_key(self, key: depin_proof::identity::PublicKey) -> Self {
        Self {
            verifier_key: Some(key),
            ..self
        }
    }

    /// The next retry delay for a failing object: 1 s doubling to the configured cap, with
    /// jitter so a fleet that failed together does not retry in lockstep.
    pub fn next_backoff(&self, kind: &str, key: &str) -> Duration {
        let mut map = self
            .backoff
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let delay = map
            .entry(format!("{kind}/{key}"))
            .or_insert_with(|| {
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_secs(1))
                    .with_max_delay(self.config.backoff_max)
                    .with_jitter()
                    .without_max_times()
                    .build()
            })
            .next()
            .unwrap_or(self.config.backoff_max);
        self.set_backoff_gauge(kind, &map);
        delay
    }

    /// Forgets an object's failures after a successful reconcile.
    pub fn reset_backoff(&self, kind: &str, key: &str) {
        let mut map = self
            .backoff
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.remove(&format!("{kind}/{key}")).is_some() {
            self.set_backoff_gauge(kind, &map);
        }
    }

    fn set_backoff_gauge(&self, kind: &str, map: &HashMap<String, ExponentialBackoff>) {
        let prefix = format!("{kind}/");
        let count = map.keys().filter(|k| k.starts_with(&prefix)).count();
        self.metrics
            .objects_in_backoff
            .with_label_values(&[kind])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}
