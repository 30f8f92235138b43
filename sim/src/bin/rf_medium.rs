//! `rf-medium`: plays packet forwarder for every hotspot agent in a config file and
//! carries beacons between them by radio physics.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use depin_sim::medium::{Medium, MediumConfig};

/// Runs the RF medium described by a YAML file (see sim/medium.example.yaml).
#[derive(Debug, Parser)]
#[command(name = "rf-medium", version)]
struct Args {
    /// Medium configuration: seed, propagation, and one entry per hotspot radio.
    #[arg(
        long,
        env = "DEPIN_MEDIUM_CONFIG",
        default_value = "/etc/depin/medium.yaml"
    )]
    config: PathBuf,
    /// Seconds between statistics log lines (0: never).
    #[arg(long, default_value_t = 60)]
    stats_every: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    depin_sim::init_logging();
    let args = Args::parse();
    let (config, radios) = MediumConfig::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    tracing::info!(
        radios = radios.len(),
        seed = config.seed,
        "rf-medium starting"
    );
    let medium = Medium::start(&config, radios).await?;
    let mut ticker = tokio::time::interval(Duration::from_secs(args.stats_every.max(1)));
    loop {
        tokio::select! {
            _ = ticker.tick(), if args.stats_every > 0 => {
                let s = medium.stats();
                tracing::info!(
                    transmissions = s.transmissions.load(Ordering::Relaxed),
                    deliveries = s.deliveries.load(Ordering::Relaxed),
                    too_weak = s.too_weak.load(Ordering::Relaxed),
                    refused = s.refused.load(Ordering::Relaxed),
                    "rf-medium"
                );
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}
