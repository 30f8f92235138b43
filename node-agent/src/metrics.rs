//! Agent metrics, `depin_agent_` prefix, constant labels for the node.

use depin_proof::RejectReason;
use depin_proto::config::AgentConfig;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::HashMap;

/// Proof kinds as metric labels.
pub const PROOF_LABELS: [&str; 4] = ["storage", "gpu", "meter", "hotspot"];

/// Values of the `session_state` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Not connected (waiting to retry).
    Disconnected = 0,
    /// Connecting or saying hello.
    Connecting = 1,
    /// Hello accepted; proving.
    Established = 2,
    /// The verifier refused the hello (e.g. UnknownNode); retrying slowly.
    Refused = 3,
}

/// The agent's metrics registry.
#[derive(Clone)]
pub struct AgentMetrics {
    registry: Registry,
    /// 1 while the agent is ready.
    pub ready: IntGauge,
    /// Proof responses sent (first sends, not resends), by proof kind.
    pub proofs_submitted: IntCounterVec,
    /// Receipts accepting a proof, by proof kind.
    pub proofs_accepted: IntCounterVec,
    /// Receipts rejecting a proof, by proof kind and reason.
    pub proofs_rejected: IntCounterVec,
    /// Challenge arrival to receipt, by proof kind.
    pub challenge_latency: HistogramVec,
    /// Bytes of sectors under a commitment.
    pub committed_bytes: IntGauge,
    /// Throughput of the last GPU challenge, int8 TOPS, by backend.
    pub gpu_tops: GaugeVec,
    /// 1 for the GPU backend in use (`cpu`, `cuda`).
    pub gpu_backend: IntGaugeVec,
    /// Session state (0 disconnected, 1 connecting, 2 established, 3 refused).
    pub session_state: IntGauge,
    /// Proof messages waiting for a receipt.
    pub outbox: IntGauge,
    /// Verifiers refused for showing another key than the pinned one.
    pub impostors: IntCounter,
    /// Seconds the last sector fill-and-commit took.
    pub commit_seconds: Gauge,
    /// Last power sample read from the meter, W.
    pub meter_power_watts: Gauge,
    /// Last cumulative energy register read from the meter, Wh.
    pub meter_energy_joules: Gauge,
    /// Signed readings produced (one per slot).
    pub meter_readings: IntCounter,
    /// Failed meter reads and connects, by MeterError kind.
    pub meter_read_errors: IntCounterVec,
    /// Beacons the packet forwarder confirmed transmitting.
    pub hotspot_beacons_sent: IntCounter,
    /// Witness reports produced from received beacons.
    pub hotspot_witnesses_reported: IntCounter,
    /// RSSI of reported witnesses, dBm.
    pub hotspot_witness_rssi: Histogram,
    /// SNR of reported witnesses, dB.
    pub hotspot_witness_snr: Histogram,
    /// GWMP traffic by type (rxpk, stat, pull_data, tx_ack, tx_ack_error, malformed).
    pub hotspot_gwmp_packets: IntCounterVec,
    /// GWMP datagrams dropped because they did not come from the configured forwarder.
    pub hotspot_gwmp_dropped: IntCounterVec,
    /// Times the GWMP receive loop panicked and was restarted.
    pub hotspot_gwmp_receive_restarts: IntCounter,
}

impl AgentMetrics {
    /// Registers the metrics, labelled with the node's kind, name, namespace and role.
    pub fn new(config: &AgentConfig) -> Result<Self, prometheus::Error> {
        let labels = HashMap::from([
            ("kind".to_string(), config.node.kind.clone()),
            ("node".to_string(), config.node.name.clone()),
            ("namespace".to_string(), config.node.namespace.clone()),
            ("role".to_string(), config.role.as_str().to_string()),
        ]);
        let registry = Registry::new_custom(Some("depin_agent".into()), Some(labels))?;
        let info = IntGauge::with_opts(
            Opts::new("build_info", "Agent build; value is always 1.")
                .const_label("version", env!("CARGO_PKG_VERSION")),
        )?;
        info.set(1);
        let ready = IntGauge::new("ready", "1 while the agent is ready to do proof work.")?;
        let proofs_submitted = IntCounterVec::new(
            Opts::new("proofs_submitted_total", "Proof responses sent."),
            &["proof"],
        )?;
        let proofs_accepted = IntCounterVec::new(
            Opts::new("proofs_accepted_total", "Proofs the verifier accepted."),
            &["proof"],
        )?;
        let proofs_rejected = IntCounterVec::new(
            Opts::new(
                "proofs_rejected_total",
                "Proofs the verifier rejected, by reason.",
            ),
            &["proof", "reason"],
        )?;
        let challenge_latency = HistogramVec::new(
            HistogramOpts::new(
                "challenge_latency_seconds",
                "Time from a challenge's arrival to its receipt.",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["proof"],
        )?;
        let committed_bytes = IntGauge::new(
            "storage_committed_bytes",
            "Bytes of sectors under a commitment.",
        )?;
        let gpu_tops = GaugeVec::new(
            Opts::new("gpu_tops", "Measured int8 TOPS of the last GPU challenge."),
            &["backend"],
        )?;
        let gpu_backend = IntGaugeVec::new(
            Opts::new("gpu_backend", "1 for the GPU backend in use."),
            &["backend"],
        )?;
        let session_state = IntGauge::new(
            "session_state",
            "Verifier session: 0 disconnected, 1 connecting, 2 established, 3 refused.",
        )?;
        let outbox = IntGauge::new("outbox_messages", "Proof messages waiting for a receipt.")?;
        let impostors = IntCounter::new(
            "impostor_verifiers_total",
            "Verifiers refused for showing another key than the pinned one.",
        )?;
        let commit_seconds = Gauge::new(
            "storage_commit_seconds",
            "Seconds the last sector fill and commit took.",
        )?;
        let meter_power_watts = Gauge::new(
            "meter_power_watts",
            "Last real power sample read from the meter, W.",
        )?;
        let meter_energy_joules = Gauge::new(
            "meter_energy_joules",
            "Last cumulative energy register read from the meter, in joules (Wh x 3600).",
        )?;
        let meter_readings = IntCounter::new(
            "meter_readings_total",
            "Signed meter readings produced (one per slot).",
        )?;
        let meter_read_errors = IntCounterVec::new(
            Opts::new(
                "meter_read_errors_total",
                "Failed meter connects and reads, by error kind.",
            ),
            // Not `kind`: every series already carries the node's kind as a const label.
            &["error"],
        )?;
        let hotspot_beacons_sent = IntCounter::new(
            "hotspot_beacons_sent_total",
            "Beacons the packet forwarder confirmed transmitting.",
        )?;
        let hotspot_witnesses_reported = IntCounter::new(
            "hotspot_witnesses_reported_total",
            "Witness reports produced from received beacons.",
        )?;
        let hotspot_witness_rssi = Histogram::with_opts(
            HistogramOpts::new(
                "hotspot_witness_rssi_dbm",
                "RSSI of reported witnesses, dBm.",
            )
            .buckets(vec![
                -140.0, -130.0, -120.0, -110.0, -100.0, -90.0, -80.0, -60.0, -40.0,
            ]),
        )?;
        let hotspot_witness_snr = Histogram::with_opts(
            HistogramOpts::new("hotspot_witness_snr_db", "SNR of reported witnesses, dB.")
                .buckets(vec![-20.0, -15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0]),
        )?;
        let hotspot_gwmp_packets = IntCounterVec::new(
            Opts::new(
                "hotspot_gwmp_packets_total",
                "Packet-forwarder (GWMP) traffic, by type.",
            ),
            &["type"],
        )?;
        let hotspot_gwmp_dropped = IntCounterVec::new(
            Opts::new(
                "hotspot_gwmp_dropped_total",
                "GWMP datagrams dropped unanswered because they did not come from the configured packet forwarder, by reason (no_forwarder, source, gateway_eui).",
            ),
            &["reason"],
        )?;
        let hotspot_gwmp_receive_restarts = IntCounter::new(
            "hotspot_gwmp_receive_restarts_total",
            "Times the GWMP receive loop panicked and was restarted.",
        )?;
        registry.register(Box::new(info))?;
        registry.register(Box::new(ready.clone()))?;
        registry.register(Box::new(proofs_submitted.clone()))?;
        registry.register(Box::new(proofs_accepted.clone()))?;
        registry.register(Box::new(proofs_rejected.clone()))?;
        registry.register(Box::new(challenge_latency.clone()))?;
        registry.register(Box::new(session_state.clone()))?;
        registry.register(Box::new(outbox.clone()))?;
        registry.register(Box::new(impostors.clone()))?;
        match config.role {
            depin_proto::config::Role::Storage => {
                registry.register(Box::new(committed_bytes.clone()))?;
                registry.register(Box::new(commit_seconds.clone()))?;
            }
            depin_proto::config::Role::Gpu => {
                registry.register(Box::new(gpu_tops.clone()))?;
                registry.register(Box::new(gpu_backend.clone()))?;
            }
            depin_proto::config::Role::Meter => {
                registry.register(Box::new(meter_power_watts.clone()))?;
                registry.register(Box::new(meter_energy_joules.clone()))?;
                registry.register(Box::new(meter_readings.clone()))?;
                registry.register(Box::new(meter_read_errors.clone()))?;
                for kind in [
                    "connect",
                    "modbus_timeout",
                    "transport",
                    "exception",
                    "parse",
                ] {
                    meter_read_errors.with_label_values(&[kind]);
                }
            }
            depin_proto::config::Role::Hotspot => {
                registry.register(Box::new(hotspot_beacons_sent.clone()))?;
                registry.register(Box::new(hotspot_witnesses_reported.clone()))?;
                registry.register(Box::new(hotspot_witness_rssi.clone()))?;
                registry.register(Box::new(hotspot_witness_snr.clone()))?;
                registry.register(Box::new(hotspot_gwmp_packets.clone()))?;
                for kind in crate::roles::hotspot::GWMP_PACKET_TYPES {
                    hotspot_gwmp_packets.with_label_values(&[kind]);
                }
                registry.register(Box::new(hotspot_gwmp_dropped.clone()))?;
                for reason in crate::roles::hotspot::GWMP_DROP_REASONS {
                    hotspot_gwmp_dropped.with_label_values(&[reason]);
                }
                registry.register(Box::new(hotspot_gwmp_receive_restarts.clone()))?;
            }
        }
        for proof in PROOF_LABELS {
            proofs_submitted.with_label_values(&[proof]);
            proofs_accepted.with_label_values(&[proof]);
            challenge_latency.with_label_values(&[proof]);
            for reason in RejectReason::ALL {
                proofs_rejected.with_label_values(&[proof, reason.as_str()]);
            }
        }
        Ok(Self {
            registry,
            ready,
            proofs_submitted,
            proofs_accepted,
            proofs_rejected,
            challenge_latency,
            committed_bytes,
            gpu_tops,
            gpu_backend,
            session_state,
            outbox,
            impostors,
            commit_seconds,
            meter_power_watts,
            meter_energy_joules,
            meter_readings,
            meter_read_errors,
            hotspot_beacons_sent,
            hotspot_witnesses_reported,
            hotspot_witness_rssi,
            hotspot_witness_snr,
            hotspot_gwmp_packets,
            hotspot_gwmp_dropped,
            hotspot_gwmp_receive_restarts,
        })
    }

    /// Sets the session state gauge.
    pub fn set_session_state(&self, state: SessionState) {
        self.session_state.set(state as i64);
    }

    /// The registry, for role modules that add metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(%err, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
