//! `sunspec-meter`: a simulated SunSpec PV inverter on Modbus TCP.

use anyhow::Context as _;
use clap::Parser;
use depin_sim::meter::{PvMeter, PvMeterConfig};

/// Serves a seeded clear-sky PV curve as SunSpec registers (model 1 + inverter model 103).
#[derive(Debug, Parser)]
#[command(name = "sunspec-meter", version)]
struct Args {
    /// Address to serve Modbus TCP on.
    #[arg(long, default_value = "0.0.0.0:5020")]
    listen: String,
    /// Nameplate capacity, kW.
    #[arg(long, default_value_t = 5.0)]
    capacity_kw: f64,
    /// Latitude of the installation, degrees.
    #[arg(long, default_value_t = 52.37, allow_negative_numbers = true)]
    latitude: f64,
    /// Longitude of the installation, degrees.
    #[arg(long, default_value_t = 4.89, allow_negative_numbers = true)]
    longitude: f64,
    /// Serial number served in the common model (SN).
    #[arg(long, default_value = "SIM-0001")]
    serial: String,
    /// Seed of the output ripple: the same seed replays the same curve.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Simulated unix time to start at, seconds (default: now).
    #[arg(long)]
    start_unix: Option<f64>,
    /// Energy register at start, Wh.
    #[arg(long, default_value_t = 0)]
    initial_wh: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    depin_sim::init_logging();
    let args = Args::parse();
    anyhow::ensure!(args.capacity_kw > 0.0, "--capacity-kw must be positive");
    anyhow::ensure!(args.speed > 0.0, "--speed must be positive");
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, serial = %args.serial, "sunspec-meter serving");
    let meter = PvMeter::new(PvMeterConfig {
        capacity_w: args.capacity_kw * 1000.0,
        latitude: args.latitude,
        longitude: args.longitude,
        serial: args.serial,
        seed: args.seed,
        speed: args.speed,
        start_unix_s: args.start_unix,
        initial_wh: args.initial_wh,
    });
    tokio::select! {
        served = meter.serve(listener) => served.context("serving Modbus TCP")?,
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
    }
    Ok(())
}
