//! Operator settings: every knob has a default that works, a flag and an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

/// Command-line and environment configuration of the operator.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "depin-operator",
    version,
    about = "Runs a DePIN fleet declared as Kubernetes resources"
)]
pub struct Config {
    /// Image for agent pods when a node's spec.agent.image is unset.
    #[arg(
        long,
        env = "DEPIN_AGENT_IMAGE",
        default_value = "localhost/depin-agent:dev"
    )]
    pub agent_image: String,
    /// Pull policy for agent pods when a node's spec sets none.
    #[arg(
        long,
        env = "DEPIN_AGENT_IMAGE_PULL_POLICY",
        default_value = "IfNotPresent"
    )]
    pub agent_image_pull_policy: String,
    /// gRPC endpoint agents use to reach the verifier; derived from the pod namespace when unset.
    #[arg(long, env = "DEPIN_VERIFIER_ENDPOINT")]
    pub verifier_endpoint: Option<String>,
    /// Secret (in the operator's namespace) holding the verifier's ed25519 key; created
    /// by the first leader, pinned by every agent.
    #[arg(
        long,
        env = "DEPIN_VERIFIER_KEY_SECRET",
        default_value = "depin-verifier-key"
    )]
    pub verifier_key_secret: String,
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
    #[arg(
        long,
        env = "DEPIN_LEASE_NAME",
        default_value = "depin-operator-leader"
    )]
    pub lease_name: String,
    /// Seconds a leader's lease stays valid without renewal.
    #[arg(long, env = "DEPIN_LEASE_DURATION", default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "DEPIN_LOG_JSON", default_value_t = false, action = clap::ArgAction::Set)]
    pub log_json: bool,
    /// Address of the verifier's gRPC service (agents connect here; leader only).
    #[arg(long, env = "DEPIN_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: SocketAddr,
    /// Most concurrent agent sessions; more are refused with RESOURCE_EXHAUSTED. 0 sizes
    /// the limit from the fleet: one per node CR plus an eighth (at least 64), growing
    /// with the fleet.
    #[arg(long, env = "DEPIN_MAX_SESSIONS", default_value_t = 0)]
    pub max_sessions: usize,
    /// Sustained messages per second one agent session may send before it is cut off.
    #[arg(long, env = "DEPIN_SESSION_RATE", default_value_t = 20.0)]
    pub session_rate: f64,
    /// Messages one agent session may send in a burst (token-bucket size).
    #[arg(long, env = "DEPIN_SESSION_BURST", default_value_t = 200)]
    pub session_burst: u32,
    /// Shortest gap between two status.proofs writes for one node, in ms (results in between
    /// are batched into one write).
    #[arg(long, env = "DEPIN_STATUS_WRITE_INTERVAL_MS", default_value_t = 1000)]
    pub status_write_interval_ms: u64,
    /// Storage proving period: every sector is challenged once per period (Filecoin: 24 h).
    #[arg(long, env = "DEPIN_STORAGE_PROVING_PERIOD", default_value = "86400", value_parser = parse_seconds)]
    pub storage_proving_period: Duration,
    /// Deadlines per proving period; sector s is due in deadline s mod this (Filecoin: 48).
    #[arg(long, env = "DEPIN_STORAGE_DEADLINES", default_value_t = depin_proof::storage::DEFAULT_DEADLINES_PER_PERIOD)]
    pub storage_deadlines: u32,
    /// Leaves challenged per sector per deadline (k; 46 catches 10 % data loss with p ≥ 0.99).
    #[arg(long, env = "DEPIN_STORAGE_CHALLENGES", default_value_t = depin_proof::storage::DEFAULT_CHALLENGES_PER_DEADLINE)]
    pub storage_challenges: u32,
    /// Largest sector whose seal the verifier audits before challenging it (the audit packs
    /// the sector again: one honest seal of CPU, the sector's size in memory). Larger
    /// sectors are challenged unaudited, as before the audit existed; 0 audits none.
    #[arg(
        long,
        env = "DEPIN_STORAGE_SEAL_AUDIT_MAX_BYTES",
        default_value_t = 1073741824
    )]
    pub storage_seal_audit_max_bytes: u64,
    /// GPU round length: each GpuWorker gets one challenge per round (however many sessions
    /// it opens) and a round it does not settle is recorded as a `NoResponse` miss.
    #[arg(long, env = "DEPIN_GPU_CHALLENGE_INTERVAL", default_value = "60", value_parser = parse_seconds)]
    pub gpu_challenge_interval: Duration,
    /// GPU challenge matrix dimension n (2n³ int8 ops). 256: a CPU-only agent answers in
    /// ~40 ms even as an unoptimised build on 2 cores (512 takes ~0.4 s); GPU fleets want 4096+.
    #[arg(long, env = "DEPIN_GPU_MATRIX_N", default_value_t = 256)]
    pub gpu_matrix_n: u32,
    /// Rows of C a GPU worker must open (a worker that skipped half the rows passes with 2^-s).
    #[arg(long, env = "DEPIN_GPU_SAMPLED_ROWS", default_value_t = depin_proof::gpu::DEFAULT_SAMPLED_ROWS)]
    pub gpu_sampled_rows: u32,
    /// Time from a GPU challenge to its commitment before it is AfterWindow.
    #[arg(long, env = "DEPIN_GPU_DEADLINE", default_value = "60", value_parser = parse_seconds)]
    pub gpu_deadline: Duration,
    /// Share of the declared TOPS a GPU worker must reach, else TooSlow (0 accepts any speed).
    #[arg(long, env = "DEPIN_GPU_MIN_FRACTION", default_value_t = depin_proof::gpu::DEFAULT_MIN_FRACTION_OF_DECLARED)]
    pub gpu_min_fraction: f64,
    /// Beacon tick: a new challenge entropy value this often; default 60 s (Helium), or one
    /// storage deadline when that is shorter (a tick may not exceed a deadline).
    #[arg(long, env = "DEPIN_BEACON_TICK", value_parser = parse_seconds)]
    pub beacon_tick: Option<Duration>,
    /// How long a beacon value stays usable (Helium: 180 s).
    #[arg(long, env = "DEPIN_BEACON_LIFESPAN", default_value = "180", value_parser = parse_seconds)]
    pub beacon_lifespan: Duration,
    /// Each hotspot is asked to beacon once per this many seconds (Helium: 6 h).
    #[arg(long, env = "DEPIN_POC_BEACON_INTERVAL", default_value = "21600", value_parser = parse_seconds)]
    pub poc_beacon_interval: Duration,
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
        self.verifier_endpoint.clone().unwrap_or_else(|| {
            format!(
                "http://depin-operator.{}.svc.cluster.local:50051",
                self.namespace
            )
        })
    }

    /// Settings for tests and benchmarks that run the operator in-process.
    pub fn for_tests() -> Self {
        <Self as clap::Parser>::parse_from(["depin-operator"])
    }
}
