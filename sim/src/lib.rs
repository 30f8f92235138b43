//! Physics stand-ins for what a cluster lacks: an RF medium that plays packet forwarder
//! for many hotspot agents (`medium`), and a SunSpec PV inverter over Modbus TCP
//! (`meter`). Test and demo infrastructure: they play the radios and the device, nothing
//! else, and every random draw is seeded so runs repeat.

#![warn(missing_docs)]

pub mod medium;
pub mod meter;
pub mod solar;

/// Installs a text log subscriber for the simulator binaries (`RUST_LOG` overrides `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}
