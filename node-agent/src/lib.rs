//! The node agent: loads its configuration and identity, serves health and metrics, and
//! (per role) does the node's proof work.

mod answers;
pub mod http;
pub mod metrics;
pub mod outbox;
pub mod roles;
pub mod session;

use anyhow::Context as _;
use depin_proof::identity::{NodeKey, PublicKey};
use depin_proto::config::{AgentConfig, Role};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Command-line arguments.
#[derive(Debug, clap::Parser)]
#[command(name = "depin-agent", version, about = "DePIN node agent")]
pub struct Args {
    /// Path of the agent configuration (the operator mounts it from the agent ConfigMap).
    #[arg(
        long,
        env = "DEPIN_AGENT_CONFIG",
        default_value = "/etc/depin/agent.yaml"
    )]
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
        // Colour only on a terminal: pod logs are read by kubectl and log shippers.
        registry
            .with(fmt::layer().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())))
            .init();
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
    let config =
        AgentConfig::from_yaml(&text).with_context(|| format!("in {}", config_path.display()))?;
    let key_text = std::fs::read_to_string(&config.identity_key_file).with_context(|| {
        format!(
            "reading identity key {} (identityKeyFile)",
            config.identity_key_file
        )
    })?;
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
        println!(
            "ok: role={} node={} public_key={}",
            agent.config.role.as_str(),
            agent.config.node.name,
            public
        );
        return Ok(());
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    serve(agent, stop_rx).await
}

/// Serves /metrics, /healthz and /readyz and does the role's proof work until `stop`
/// turns true.
pub async fn serve(agent: Agent, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let metrics = metrics::AgentMetrics::new(&agent.config)?;
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], agent.config.http_port));
    let state = http::HttpState::new(metrics.clone());
    // /healthz answers from the start, also while a storage node fills its sectors;
    // /readyz waits for the role's state.
    let mut http = tokio::spawn(http::serve(addr, state.clone(), stopped(stop.clone())));
    tokio::select! {
        served = &mut http => {
            served.context("http task")?.context("serving /metrics")?;
            return Ok(());
        }
        proved = prove(&agent, metrics, state, stop) => proved?,
    }
    http.await
        .context("http task")?
        .context("serving /metrics")?;
    tracing::info!("stopped");
    Ok(())
}

/// Does the role's proof work until `stop` turns true: prepares the role's state, marks
/// the agent ready, then keeps a verifier session.
pub async fn prove(
    agent: &Agent,
    metrics: metrics::AgentMetrics,
    ready: http::HttpState,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let config = &agent.config;
    let key = Arc::new(agent.key.clone());
    let work = match config.role {
        Role::Storage => {
            let storage = config.storage.clone().context("storage section missing")?;
            let started = std::time::Instant::now();
            let (fill_key, dir) = (key.clone(), storage.data_dir.clone());
            tracing::info!(capacity = storage.capacity_bytes, sector = storage.sector_size_bytes, %dir, "preparing sectors");
            let role = tokio::task::spawn_blocking(move || {
                roles::storage::StorageRole::prepare(&storage, &fill_key)
            })
            .await
            .context("sector task")?
            .with_context(|| format!("preparing sectors in {dir} (storage.dataDir)"))?;
            metrics.commit_seconds.set(started.elapsed().as_secs_f64());
            metrics
                .committed_bytes
                .set(i64::try_from(role.committed_bytes()).unwrap_or(i64::MAX));
            roles::Work::Storage(Arc::new(role))
        }
        Role::Gpu => {
            let backend = roles::gpu::Backend::detect();
            metrics
                .gpu_backend
                .with_label_values(&[backend.label()])
                .set(1);
            roles::Work::Gpu(Arc::new(roles::gpu::GpuRole {
                node: key.public(),
                backend,
            }))
        }
        Role::Meter => {
            let meter = config.meter.as_ref().context("meter section missing")?;
            let role = roles::meter::MeterRole::prepare(meter, key.clone())
                .context("preparing the meter role")?;
            let head = role.head();
            tracing::info!(next_seq = head.next_seq, host = %meter.host, port = meter.port, "meter chain loaded");
            roles::Work::Meter(Arc::new(role))
        }
        Role::Hotspot => {
            let hotspot = config.hotspot.as_ref().context("hotspot section missing")?;
            let role = Arc::new(
                roles::hotspot::HotspotRole::bind(hotspot, key.clone())
                    .await
                    .context("starting the hotspot role")?,
            );
            // A receive loop that keeps panicking makes the pod unready (issue 13: it used
            // to die silently while /readyz said 200).
            let watched = Arc::clone(&role);
            ready.add_check(move || watched.receiving());
            roles::Work::Hotspot(role)
        }
    };
    ready.set_ready(true);
    // The storage volume outlives the process (meter readings have their own pending files).
    let outbox_dir = config
        .storage
        .as_ref()
        .filter(|_| config.role == Role::Storage)
        .map(|storage| std::path::Path::new(&storage.data_dir).join("outbox"));
    let pinned_verifier = config
        .verifier
        .public_key
        .as_deref()
        .map(|hex| PublicKey::from_hex(hex, "verifier.publicKey"))
        .transpose()
        .context("agent config")?;
    let prover = session::Prover {
        endpoint: config.verifier.endpoint.clone(),
        key,
        work,
        metrics,
        outbox_dir,
        pinned_verifier,
    };
    session::run(prover, stop).await;
    Ok(())
}

/// Wall-clock unix ms (meter slots are wall-clock slots, shared with the verifier).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
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
