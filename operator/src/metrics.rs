//! Operator metrics, one registry, `depin_operator_` prefix, labelled by node kind.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// All operator metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Reconcile runs by kind.
    pub reconciles: IntCounterVec,
    /// Reconcile failures by kind and error reason.
    pub reconcile_errors: IntCounterVec,
    /// Reconcile wall time by kind.
    pub reconcile_duration: HistogramVec,
    /// Objects currently waiting in exponential backoff, by kind.
    pub objects_in_backoff: IntGaugeVec,
    /// 1 while this replica holds the leader lease.
    pub leader: IntGauge,
    /// Node CRs by namespace, kind, condition type and condition status.
    pub nodes: IntGaugeVec,
    /// Peak resident memory of this process (VmHWM), refreshed on every scrape.
    peak_rss: IntGauge,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("depin_operator".into()), None)?;
        let reconciles =
            IntCounterVec::new(Opts::new("reconciles_total", "Reconcile runs."), &["kind"])?;
        let reconcile_errors = IntCounterVec::new(
            Opts::new("reconcile_errors_total", "Reconcile failures by reason."),
            &["kind", "reason"],
        )?;
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new("reconcile_duration_seconds", "Reconcile wall time.").buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["kind"],
        )?;
        let objects_in_backoff = IntGaugeVec::new(
            Opts::new(
                "objects_in_backoff",
                "Objects waiting to retry after errors.",
            ),
            &["kind"],
        )?;
        let leader = IntGauge::new("leader", "1 while this replica holds the leader lease.")?;
        let nodes = IntGaugeVec::new(
            Opts::new(
                "nodes",
                "Node resources by condition (Ready, Progressing, Degraded, InvalidSpec) and status.",
            ),
            &["namespace", "kind", "condition", "status"],
        )?;
        let peak_rss = IntGauge::new(
            "peak_rss_bytes",
            "Peak resident memory of the operator process.",
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(reconcile_errors.clone()))?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(objects_in_backoff.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(nodes.clone()))?;
        registry.register(Box::new(peak_rss.clone()))?;
        Ok(Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            objects_in_backoff,
            leader,
            nodes,
            peak_rss,
        })
    }

    /// Pre-creates the per-kind series so dashboards show zeros instead of gaps.
    pub fn register_kind(&self, kind: &str) {
        self.reconciles.with_label_values(&[kind]);
        self.objects_in_backoff.with_label_values(&[kind]);
        self.reconcile_duration.with_label_values(&[kind]);
    }

    /// The registry, for components that add their own metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text exposition of everything registered.
    pub fn render(&self) -> String {
        if let Some(bytes) = peak_rss_bytes() {
            self.peak_rss.set(bytes);
        }
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail on I/O; an encoder error would mean a broken metric.
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(%err, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// VmHWM from /proc/self/status (Linux only; None elsewhere).
fn peak_rss_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
