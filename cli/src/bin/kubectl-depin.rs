//! kubectl-depin: the fleet (`status`), closed reward epochs (`rewards`), and claim proofs
//! (`claim-proof`, `verify-claim`) from the command line.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use depin_cli::claim::{
    ClaimFile, fetch_verified_claim, render_json, render_text, verify_claim_file,
};
use depin_cli::epochs::{epoch_name, resolve_policy};
use depin_cli::manifest::parse_hash;
use depin_cli::operator::{DEFAULT_NAMESPACE, DEFAULT_SERVICE, OperatorAccess};
use depin_cli::rewards::{epoch_report, render_report};

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
    /// A closed epoch: totals and pools, with its manifest's Merkle root checked against
    /// the RewardEpoch and recomputed from the node lines (exit 1 on any mismatch).
    Rewards {
        /// RewardPolicy (default: the only one).
        #[arg(long)]
        policy: Option<String>,
        /// Epoch number (default: the latest closed one).
        #[arg(long)]
        epoch: Option<u64>,
        /// Also list every node's reward and cumulative total.
        #[arg(long)]
        nodes: bool,
        #[command(flatten)]
        operator: OperatorArgs,
    },
    /// A node's claim under the latest closed epoch, verified locally and against the
    /// RewardEpoch's merkleRoot before it is printed.
    ClaimProof {
        /// Node CR name, or `namespace/name`.
        node: String,
        /// Namespace of the node (default: the kubeconfig's).
        #[arg(short, long)]
        namespace: Option<String>,
        /// RewardPolicy (default: the only one).
        #[arg(long)]
        policy: Option<String>,
        /// `json` is the file `verify-claim` reads.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
        #[command(flatten)]
        operator: OperatorArgs,
    },
    /// Offline: checks a `claim-proof -o json` file (`-` for stdin); exit 1 if invalid.
    VerifyClaim {
        /// The JSON file, or `-` for stdin.
        file: PathBuf,
        /// Root to verify against, hex (default: the file's own, which only shows the file
        /// is consistent; take the root from a RewardEpoch you trust).
        #[arg(long)]
        root: Option<String>,
    },
}

/// How `claim-proof` prints.
#[derive(Clone, Copy, ValueEnum)]
enum Output {
    /// For people.
    Text,
    /// For `verify-claim` and payers.
    Json,
}

/// Where the operator's HTTP endpoints are.
#[derive(Args)]
struct OperatorArgs {
    /// Namespace of the operator Service (reached through the apiserver's service proxy).
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    operator_namespace: String,
    /// Name of the operator Service.
    #[arg(long, default_value = DEFAULT_SERVICE)]
    operator_service: String,
    /// Go straight to this base URL instead (e.g. http://127.0.0.1:8080 after a port-forward).
    #[arg(long)]
    operator_url: Option<http::Uri>,
}

impl OperatorArgs {
    fn access(self) -> OperatorAccess {
        match self.operator_url {
            Some(url) => OperatorAccess::Direct { url },
            None => OperatorAccess::ServiceProxy {
                namespace: self.operator_namespace,
                service: self.operator_service,
            },
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line with the whole cause chain; anyhow's default report adds a backtrace
            // whenever RUST_BACKTRACE is set, which buries the message.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Status { namespace } => {
            let client = kube::Client::try_default().await?;
            let rows = depin_cli::fleet(&client, namespace.as_deref()).await?;
            print!("{}", depin_cli::render(&rows, jiff::Timestamp::now()));
        }
        Command::Rewards {
            policy,
            epoch,
            nodes,
            operator,
        } => {
            let client = kube::Client::try_default().await?;
            let policy = resolve_policy(&client, policy.as_deref()).await?;
            let report = epoch_report(&client, &operator.access(), &policy, epoch).await?;
            print!("{}", render_report(&report, nodes));
            if !report.verified() {
                let name = epoch_name(&policy, report.record.epoch);
                anyhow::bail!(
                    "RewardEpoch {name} and its manifest disagree (see the checks above)"
                );
            }
        }
        Command::ClaimProof {
            node,
            namespace,
            policy,
            output,
            operator,
        } => {
            let client = kube::Client::try_default().await?;
            let (namespace, name) = match node.split_once('/') {
                Some((ns, name)) => (ns.to_owned(), name.to_owned()),
                None => (
                    namespace.unwrap_or_else(|| client.default_namespace().to_owned()),
                    node,
                ),
            };
            let policy = resolve_policy(&client, policy.as_deref()).await?;
            let (file, _) =
                fetch_verified_claim(&client, &operator.access(), &policy, &namespace, &name)
                    .await?;
            let note = format!(
                "verified: the path leads to merkleRoot of RewardEpoch {} in the cluster",
                epoch_name(&policy, file.epoch)
            );
            match output {
                Output::Text => println!("{}{note}", render_text(&file)),
                Output::Json => {
                    print!("{}", render_json(&file));
                    eprintln!("{note}");
                }
            }
        }
        Command::VerifyClaim { file, root } => verify_claim_command(&file, root.as_deref())?,
    }
    Ok(())
}

/// `verify-claim`: no cluster access at all.
fn verify_claim_command(path: &Path, root: Option<&str>) -> anyhow::Result<()> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the claim from stdin")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let file: ClaimFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a claim-proof JSON file", path.display()))?;
    let root = root
        .map(|hex| parse_hash(hex).with_context(|| format!("--root {hex:?} is not 64 hex digits")))
        .transpose()?;
    let verified = verify_claim_file(&file, root)
        .map_err(|reject| anyhow::anyhow!("claim INVALID ({}): {reject}", reject.reason()))?;
    let c = &verified.claim;
    println!(
        "claim valid: {} cumulative {} at epoch {} under root {}",
        c.node,
        c.cumulative,
        c.epoch,
        hex::encode(verified.root)
    );
    if !verified.independent_root {
        println!(
            "note: checked against the root inside the file; pass --root with the merkleRoot of RewardEpoch {} from a source you trust",
            epoch_name(&file.policy, c.epoch)
        );
    }
    Ok(())
}
