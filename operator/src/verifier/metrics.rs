//! Verifier metrics, registered on the operator's registry (`depin_operator_` prefix).

use depin_proof::RejectReason;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Node kinds as metric labels, plus `Unknown` for sessions refused before a node matched.
pub const KIND_LABELS: [&str; 5] = [
    "HotspotGateway",
    "StorageNode",
    "GpuWorker",
    "MeterBridge",
    "Unknown",
];

/// Why a session was refused or ended by the verifier (label values of `sessions_refused_total`).
pub const SESSION_REFUSALS: [&str; 5] = [
    "AtCapacity",
    "HandshakesAtCapacity",
    "RateLimited",
    "HelloTimeout",
    "BadHello",
];

/// Long-lived verifier tasks whose early end stops the verifier (label values of
/// `verifier_task_failures_total`).
pub const SUPERVISED_TASKS: [&str; 4] = [
    "gpu-rounds",
    "node-watch",
    "seal-audits",
    "storage-deadlines",
];

/// Everything the verifier counts.
#[derive(Clone)]
pub struct VerifierMetrics {
    /// Proofs accepted, by node kind.
    pub proofs_accepted: IntCounterVec,
    /// Proofs (and hellos) rejected, by node kind and RejectReason.
    pub proofs_rejected: IntCounterVec,
    /// Time to decide one message (decode + verify), by node kind.
    pub verification_duration: HistogramVec,
    /// Open, authenticated sessions, by node kind.
    pub active_sessions: IntGaugeVec,
    /// Seal audits of new sector roots, by result (`Sealed` or the reject reason).
    pub seal_audits: IntCounterVec,
    /// The session limit now (`--max-sessions`, or sized from the fleet).
    pub session_limit: IntGauge,
    /// Challenges sent, by node kind.
    pub challenges_issued: IntCounterVec,
    /// Challenges whose window closed without an answer, by node kind.
    pub deadlines_missed: IntCounterVec,
    /// Sector commitments by result (`Accepted` or a RejectReason).
    pub sector_commitments: IntCounterVec,
    /// Storage fault declarations by result (`Accepted` or a RejectReason).
    pub fault_declarations: IntCounterVec,
    /// Sessions refused or cut by the verifier, by reason.
    pub sessions_refused: IntCounterVec,
    /// Durable tally writes by result (`ok`, `retry`, `failed`).
    pub tally_writes: IntCounterVec,
    /// Results per durable tally write (how well writes are batched).
    pub tally_batch_size: Histogram,
    /// Supervised verifier tasks that stopped unexpectedly, by task.
    pub task_failures: IntCounterVec,
}

impl VerifierMetrics {
    /// Creates the metrics and registers them on `registry`, with every kind × reason
    /// series pre-created at 0 so dashboards and alerts never see gaps.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let proofs_accepted = IntCounterVec::new(
            Opts::new("proofs_accepted_total", "Proofs accepted."),
            &["kind"],
        )?;
        let proofs_rejected = IntCounterVec::new(
            Opts::new(
                "proofs_rejected_total",
                "Proofs and session hellos rejected, by reason.",
            ),
            &["kind", "reason"],
        )?;
        let verification_duration = HistogramVec::new(
            HistogramOpts::new(
                "verification_duration_seconds",
                "Time to decode and verify one agent message.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            &["kind"],
        )?;
        let active_sessions = IntGaugeVec::new(
            Opts::new("verifier_sessions_active", "Authenticated agent sessions."),
            &["kind"],
        )?;
        let seal_audits = IntCounterVec::new(
            Opts::new(
                "verifier_seal_audits_total",
                "Seal audits of new sector roots (the sector packed again), by result.",
            ),
            &["result"],
        )?;
        let session_limit = IntGauge::new(
            "verifier_session_limit",
            "Most concurrent agent sessions admitted (fixed, or sized from the fleet).",
        )?;
        let challenges_issued = IntCounterVec::new(
            Opts::new("challenges_issued_total", "Challenges sent to agents."),
            &["kind"],
        )?;
        let deadlines_missed = IntCounterVec::new(
            Opts::new(
                "deadlines_missed_total",
                "Challenges whose window closed without an answer.",
            ),
            &["kind"],
        )?;
        let sector_commitments = IntCounterVec::new(
            Opts::new(
                "sector_commitments_total",
                "Sector commitments by result (Accepted or a reject reason).",
            ),
            &["result"],
        )?;
        let fault_declarations = IntCounterVec::new(
            Opts::new(
                "storage_fault_declarations_total",
                "Storage fault declarations by result (Accepted or a reject reason).",
            ),
            &["result"],
        )?;
        let sessions_refused = IntCounterVec::new(
            Opts::new(
                "verifier_sessions_refused_total",
                "Sessions refused or cut by the verifier.",
            ),
            &["reason"],
        )?;
        let tally_writes = IntCounterVec::new(
            Opts::new("tally_writes_total", "Durable status.proofs writes."),
            &["result"],
        )?;
        let tally_batch_size = Histogram::with_opts(
            HistogramOpts::new("tally_batch_size", "Proof results per status.proofs write.")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )?;
        let task_failures = IntCounterVec::new(
            Opts::new(
                "verifier_task_failures_total",
                "Supervised verifier tasks that stopped unexpectedly (the verifier then stops).",
            ),
            &["task"],
        )?;
        for metric in [
            &proofs_accepted,
            &challenges_issued,
            &deadlines_missed,
            &task_failures,
        ] {
            registry.register(Box::new(metric.clone()))?;
        }
        registry.register(Box::new(proofs_rejected.clone()))?;
        registry.register(Box::new(verification_duration.clone()))?;
        registry.register(Box::new(active_sessions.clone()))?;
        registry.register(Box::new(session_limit.clone()))?;
        registry.register(Box::new(seal_audits.clone()))?;
        for result in ["Sealed", "WrongSeal", "WrongSectorSize"] {
            seal_audits.with_label_values(&[result]);
        }
        registry.register(Box::new(sector_commitments.clone()))?;
        registry.register(Box::new(fault_declarations.clone()))?;
        registry.register(Box::new(sessions_refused.clone()))?;
        registry.register(Box::new(tally_writes.clone()))?;
        registry.register(Box::new(tally_batch_size.clone()))?;
        for kind in KIND_LABELS {
            proofs_accepted.with_label_values(&[kind]);
            active_sessions.with_label_values(&[kind]);
            challenges_issued.with_label_values(&[kind]);
            deadlines_missed.with_label_values(&[kind]);
            verification_duration.with_label_values(&[kind]);
            for reason in RejectReason::ALL {
                proofs_rejected.with_label_values(&[kind, reason.as_str()]);
            }
        }
        sector_commitments.with_label_values(&["Accepted"]);
        fault_declarations.with_label_values(&["Accepted"]);
        for task in SUPERVISED_TASKS {
            task_failures.with_label_values(&[task]);
        }
        for reason in SESSION_REFUSALS {
            sessions_refused.with_label_values(&[reason]);
        }
        for result in ["ok", "retry", "failed"] {
            tally_writes.with_label_values(&[result]);
        }
        Ok(Self {
            proofs_accepted,
            proofs_rejected,
            verification_duration,
            active_sessions,
            session_limit,
            seal_audits,
            challenges_issued,
            deadlines_missed,
            sector_commitments,
            fault_declarations,
            sessions_refused,
            tally_writes,
            tally_batch_size,
            task_failures,
        })
    }

    /// Counts one decision for a node of `kind`.
    pub fn count(&self, kind: &str, verdict: Result<(), RejectReason>) {
        match verdict {
            Ok(()) => self.proofs_accepted.with_label_values(&[kind]).inc(),
            Err(reason) => self
                .proofs_rejected
                .with_label_values(&[kind, reason.as_str()])
                .inc(),
        }
    }

    /// The rejection count for `kind` and `reason` (tests and benchmarks).
    pub fn rejected(&self, kind: &str, reason: RejectReason) -> u64 {
        self.proofs_rejected
            .with_label_values(&[kind, reason.as_str()])
            .get()
    }

    /// The acceptance count for `kind` (tests and benchmarks).
    pub fn accepted(&self, kind: &str) -> u64 {
        self.proofs_accepted.with_label_values(&[kind]).get()
    }
}

/// The metric `kind` label of a proof (each proof comes from one node kind).
pub fn kind_label(kind: depin_proof::receipt::ProofKind) -> &'static str {
    use depin_proof::receipt::ProofKind;
    match kind {
        ProofKind::Storage => "StorageNode",
        ProofKind::Gpu => "GpuWorker",
        ProofKind::Meter => "MeterBridge",
        ProofKind::Hotspot => "HotspotGateway",
    }
}
