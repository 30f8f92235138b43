//! Agent metrics, `depin_agent_` prefix, constant labels for the node.

use depin_proto::config::AgentConfig;
use prometheus::{Encoder, IntGauge, Opts, Registry, TextEncoder};
use std::collections::HashMap;

/// The agent's metrics registry.
#[derive(Clone)]
pub struct AgentMetrics {
    registry: Registry,
    /// 1 while the agent is ready.
    pub ready: IntGauge,
}

impl AgentMetrics {
    /// Registers the metrics, labelled with the node's kind, name, namespace and role.
    pub fn new(config: &AgentConfig) -> Result<Self, prometheus::Error> {
        let labels = HashMap::from([
            ("kind".to_string(), config.node.kind.clone()),
            ("node".to_string(), config.node.name.clone()),
            ("namespace".to_string(), config.node.namespace.clone()),
            ("role".to_string(), config.role.as_str().to_string()),
        ]);
        let registry = Registry::new_custom(Some("depin_agent".into()), Some(labels))?;
        let info = IntGauge::with_opts(
            Opts::new("build_info", "Agent build; value is always 1.").const_label("version", env!("CARGO_PKG_VERSION")),
        )?;
        info.set(1);
        let ready = IntGauge::new("ready", "1 while the agent is ready to do proof work.")?;
        registry.register(Box::new(info))?;
        registry.register(Box::new(ready.clone()))?;
        Ok(Self { registry, ready })
    }

    /// The registry, for role modules that add metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(%err, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
