//! Operator settings: every knob has a default that works, a flag and an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

/// Command-line and environment configuration of the operator.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "depin-operator", version, about = "Runs a DePIN fleet declared as Kubernetes resources")]
pub struct Config {
    /// Image for agent pods when a node's spec.agent.image is unset.
    #[arg(long, env = "DEPIN_AGENT_IMAGE", default_value = "localhost/depin-agent:dev")]
    pub agent_image: String,
    /// Pull policy for agent pods when a node's spec sets none.
    #[arg(long, env = "DEPIN_AGENT_IMAGE_PULL_POLICY", default_value = "IfNotPresent")]
    pub agent_image_pull_policy: String,
    /// gRPC endpoint agents use to reach the verifier; derived from the pod namespace when unset.
    #[arg(long, env = "DEPIN_VERIFIER_ENDPOINT")]
    pub verifier_endpoint: Option<String>,
    /// Namespace the operator runs in (Lease, default verifier Service).
    #[arg(long, env = "POD_NAMESPACE", default_value = "depin-system")]
    pub namespace: String,
    /// Name of this replica, the leader-election identity.
    #[arg(long, env = "POD_NAME", default_value = "depin-operator-local")]
    pub pod_name: String,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "DEPIN_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Reconciles in flight per node kind; bounds memory and API load on startup.
    #[arg(long, env = "DEPIN_RECONCILE_CONCURRENCY", default_value_t = 8)]
    pub reconcile_concurrency: u16,
    /// Longest wait between retries of a failing object.
    #[arg(long, env = "DEPIN_BACKOFF_MAX", default_value = "300", value_parser = parse_seconds)]
    pub backoff_max: Duration,
    /// Re-check every object this often even without changes (drift repair).
    #[arg(long, env = "DEPIN_RESYNC", default_value = "300", value_parser = parse_seconds)]
    pub resync: Duration,
    /// Take part in leader election; off runs the controllers unconditionally (one replica only).
    #[arg(long, env = "DEPIN_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the coordination.k8s.io Lease replicas compete for.
    #[arg(long, env = "DEPIN_LEASE_NAME", default_value = "depin-operator-leader")]
    pub lease_name: String,
    /// Seconds a leader's lease stays valid without renewal.
    #[arg(long, env = "DEPIN_LEASE_DURATION", default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "DEPIN_LOG_JSON", default_value_t = false, action = clap::ArgAction::Set)]
    pub log_json: bool,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.trim_end_matches('s')
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("{text:?} is not a whole number of seconds"))
}

impl Config {
    /// The verifier endpoint written into agent configs.
    pub fn verifier_endpoint(&self) -> String {
        self.verifier_endpoint
            .clone()
            .unwrap_or_else(|| format!("http://depin-operator.{}.svc.cluster.local:50051", self.namespace))
    }

    /// Settings for tests and benchmarks that run the operator in-process.
    pub fn for_tests() -> Self {
        <Self as clap::Parser>::parse_from(["depin-operator"])
    }
}
