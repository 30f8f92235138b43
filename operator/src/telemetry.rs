//! Log setup: text by default, JSON lines on request, level from RUST_LOG.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber; `RUST_LOG` overrides the default `info` level.
pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
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
