//! depin-operator: wiring only; see the library for what runs.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = depin_operator::config::Config::parse();
    depin_operator::telemetry::init(config.log_json);
    depin_operator::run(config).await
}
