//! The node agent: loads its configuration and identity, serves health and metrics, and
//! (per role) does the node's proof work.

pub mod http;
pub mod metrics;

use anyhow::Context as _;
use depin_proof::identity::NodeKey;
use depin_proto::config::AgentConfig;
use std::path::PathBuf;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Command-line arguments.
#[derive(Debug, clap::Parser)]
#[command(name = "depin-agent", version, about = "DePIN node agent")]
pub struct Args {
    /// Path of the agent configuration (the operator mounts it from the agent ConfigMap).
    #[arg(long, env = "DEPIN_AGENT_CONFIG", default_value = "/etc/depin/agent.yaml")]
    pub config: PathBuf,
    /// Log JSON lines instead of text.
    #[arg(long, env = "DEPIN_LOG_JSON", default_value_t = false, action = clap::ArgAction::Set)]
    pub log_json: bool,
    /// Check the configuration and identity, print a summary, and exit.
    #[arg(long)]
    pub check: bool,
}

/// Installs the log subscriber; `RUST_LOG` overrides the `info` default.
pub fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry.with(fmt::layer().json()).init();
    } else {
        registry.with(fmt::layer()).init();
    }
}

/// A loaded, checked agent: its configuration and identity.
pub struct Agent {
    /// The configuration the operator wrote.
    pub config: AgentConfig,
    /// The node's long-term key.
    pub key: NodeKey,
}

/// Reads and checks the configuration and identity key; errors name the file and key.
pub fn load(config_path: &std::path::Path) -> anyhow::Result<Agent> {
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("reading agent config {}", config_path.display()))?;
    let config = AgentConfig::from_yaml(&text).with_context(|| format!("in {}", config_path.display()))?;
    let key_text = std::fs::read_to_string(&config.identity_key_file)
        .with_context(|| format!("reading identity key {} (identityKeyFile)", config.identity_key_file))?;
    // The error names the file, never the key material.
    let key = NodeKey::from_hex(&key_text, "identityKeyFile").context("loading identity key")?;
    Ok(Agent { config, key })
}

/// Runs the agent until SIGTERM/SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let agent = load(&args.config)?;
    let public = agent.key.public().to_hex();
    tracing::info!(role = agent.config.role.as_str(), node = %agent.config.node.name, public_key = %public, "agent configured");
    if args.check {
        println!("ok: role={} node={} public_key={}", agent.config.role.as_str(), agent.config.node.name, public);
        return Ok(());
    }
    let metrics = metrics::AgentMetrics::new(&agent.config)?;
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], agent.config.http_port));
    let state = http::HttpState::new(metrics);
    // Nothing else to wait for yet: configuration and identity are loaded.
    state.set_ready(true);
    http::serve(addr, state, shutdown_signal()).await.context("serving /metrics")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
