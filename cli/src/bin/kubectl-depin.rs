//! kubectl-depin: `kubectl depin status` lists the fleet with conditions, proofs and rewards.

use clap::{Parser, Subcommand};

/// The DePIN fleet from the command line (reads the cluster through your kubeconfig).
#[derive(Parser)]
#[command(name = "kubectl-depin", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fleet table by kind: readiness, problems, key, proofs and the last proof, rewards.
    Status {
        /// Only this namespace (default: all).
        #[arg(short, long)]
        namespace: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default().await?;
    match cli.command {
        Command::Status { namespace } => {
            let rows = depin_cli::fleet(&client, namespace.as_deref()).await?;
            print!("{}", depin_cli::render(&rows, jiff::Timestamp::now()));
        }
    }
    Ok(())
}
