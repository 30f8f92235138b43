//! depin-agent: wiring only; see the library for what runs.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = depin_agent::Args::parse();
    depin_agent::init_logging(args.log_json);
    match depin_agent::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole cause chain on one line, e.g. which config key was bad.
            tracing::error!("{err:#}");
            eprintln!("depin-agent: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
