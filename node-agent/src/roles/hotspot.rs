//! Hotspot role: serves the Semtech packet-forwarder protocol (GWMP v2) on
//! `packetForwarderPort`, transmits a beacon whenever the verifier sends a
//! `BeaconChallenge` (payload derived from its entropy and our own, sent as an immediate
//! txpk and confirmed by TX_ACK), and turns every received frame of beacon size into a
//! signed witness report. Reports go through the session's outbox until receipted.

use crate::metrics::AgentMetrics;
use crate::session::{Done, agent_message};
use depin_gwmp::codec::{self, immediate_txpk, parse_datarate};
use depin_gwmp::{Admission, Counters, DownlinkError, Endpoint, EndpointConfig, Event, IpNet};
use depin_proof::entropy::Entropy;
use depin_proof::identity::NodeKey;
use depin_proof::poc::{
    BEACON_PAYLOAD_SIZE, BeaconId, BeaconReport, Region, UnknownRegion, WitnessReport,
    derive_beacon,
};
use depin_proof::receipt::ProofKind;
use depin_proof::session::ServerNonce;
use depin_proto::config::HotspotConfig;
use depin_proto::v1::agent_message::Body as Out;
use depin_proto::wire;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Label values of `hotspot_gwmp_packets_total{type}` (the endpoint's counters).
pub const GWMP_PACKET_TYPES: [&str; 7] = [
    "push_data",
    "pull_data",
    "rxpk",
    "stat",
    "pull_resp",
    "tx_ack",
    "malformed",
];
/// Label values of `hotspot_gwmp_dropped_total{reason}`: datagrams not from the
/// configured forwarder.
pub const GWMP_DROP_REASONS: [&str; 3] = ["no_forwarder", "source", "gateway_eui"];
/// Own beacons remembered so the forwarder echoing one back is not witnessed.
const OWN_BEACONS: usize = 16;
/// How often the GWMP counters are copied into metrics when no event arrives.
const COUNTER_SYNC: Duration = Duration::from_secs(1);

/// Why the hotspot role cannot start; each names the config field.
#[derive(Debug, thiserror::Error)]
pub enum HotspotRoleError {
    /// `hotspot.region` is not a known plan.
    #[error("hotspot.region: {0}")]
    Region(#[from] UnknownRegion),
    /// `hotspot.gatewayEui` is not 16 hex digits.
    #[error("hotspot.gatewayEui {0:?} is not 16 hex digits")]
    GatewayEui(String),
    /// An entry of `hotspot.sourceCidrs` is not a CIDR.
    #[error("hotspot.sourceCidrs: {0:?} is not a CIDR")]
    SourceCidr(String),
    /// The packet-forwarder port could not be bound.
    #[error("hotspot.packetForwarderPort {port}: {source}")]
    Bind {
        /// The port.
        port: u16,
        /// The socket error.
        source: std::io::Error,
    },
}

/// The hotspot role's state.
#[derive(Debug)]
pub struct HotspotRole {
    key: Arc<NodeKey>,
    region: Region,
    endpoint: Endpoint,
    /// Taken once by [`HotspotRole::listen`].
    events: Mutex<Option<mpsc::Receiver<Event>>>,
    own: Mutex<VecDeque<BeaconId>>,
}

impl HotspotRole {
    /// Checks the region and binds the GWMP endpoint on all interfaces (the forwarder may
    /// run in another pod or on the gateway hardware), serving only the configured
    /// forwarder: GWMP authenticates nothing, so anything else reaching the port could
    /// make this hotspot sign witnesses for beacons it never heard.
    pub async fn bind(config: &HotspotConfig, key: Arc<NodeKey>) -> Result<Self, HotspotRoleError> {
        let region: Region = config.region.parse()?;
        let port = config.packet_forwarder_port;
        let admission = admission(config)?;
        if admission == Admission::Closed {
            tracing::warn!(
                "hotspot.gatewayEui (spec.packetForwarder.gatewayEui) is not set: no packet forwarder is served, so this hotspot neither beacons nor witnesses"
            );
        }
        let endpoint_config = EndpointConfig {
            admission,
            ..EndpointConfig::default()
        };
        let (endpoint, events) = Endpoint::bind(("0.0.0.0", port), endpoint_config)
            .await
            .map_err(|source| HotspotRoleError::Bind { port, source })?;
        tracing::info!(%region, port, gateway = ?config.gateway_eui, sources = ?config.source_cidrs, "packet-forwarder endpoint listening");
        Ok(Self {
            key,
            region,
            endpoint,
            events: Mutex::new(Some(events)),
            own: Mutex::default(),
        })
    }

    /// Whether the GWMP receive loop is working (feeds /readyz).
    pub fn receiving(&self) -> bool {
        self.endpoint.receiving()
    }

    /// The GWMP endpoint (its address and counters).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn own(&self) -> std::sync::MutexGuard<'_, VecDeque<BeaconId>> {
        // A bounded queue of ids; a panic cannot leave it inconsistent.
        self.own.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Transmits the beacon for `entropy` and, once the forwarder confirms, hands the
    /// signed beacon report to the session.
    pub(crate) async fn beacon(
        &self,
        entropy: Entropy,
        done: &mpsc::UnboundedSender<Done>,
        metrics: &AgentMetrics,
    ) {
        let random = ServerNonce::random().0;
        let local_entropy = u32::from_le_bytes([random[0], random[1], random[2], random[3]]);
        let derived = derive_beacon(&entropy, local_entropy, &self.key.public(), self.region);
        let Some(datarate) = parse_datarate(&derived.datarate) else {
            tracing::error!(datarate = %derived.datarate, "beacon data rate does not parse");
            return;
        };
        let power = self.region.beacon_power_dbm();
        let txpk = immediate_txpk(
            derived.data.clone(),
            derived.frequency_hz,
            datarate,
            u64::try_from(power).unwrap_or(0),
        );
        let id = BeaconId::of(&derived.data);
        {
            let mut own = self.own();
            own.push_back(id);
            if own.len() > OWN_BEACONS {
                own.pop_front();
            }
        }
        let accepted = match self.endpoint.send_downlink(None, txpk).await {
            Ok(accepted) => accepted,
            Err(err) => {
                let level_warn = !matches!(err, DownlinkError::NoGateway);
                if level_warn {
                    tracing::warn!(%err, beacon = %id.to_hex(), "beacon not transmitted");
                } else {
                    tracing::info!("no packet forwarder connected yet; beacon skipped");
                }
                return;
            }
        };
        metrics.hotspot_beacons_sent.inc();
        let tx_power_ddbm = accepted.adjusted_power_dbm.unwrap_or(power) * 10;
        let report = BeaconReport::sign(
            &self.key,
            entropy,
            local_entropy,
            derived,
            tx_power_ddbm,
            crate::now_ms(),
        );
        tracing::info!(beacon = %id.to_hex(), frequency_hz = report.frequency_hz, "beacon transmitted");
        let _ = done.send(Done::Report {
            challenge: wire::report_id(&report.signing_bytes()),
            kind: ProofKind::Hotspot,
            message: agent_message(Out::BeaconReport(wire::beacon_report_to_wire(&report))),
        });
    }

    /// Handles forwarder events until `stop` turns true: frames of beacon size become
    /// witness reports; the endpoint's counters feed the GWMP metrics.
    pub(crate) async fn listen(
        self: Arc<Self>,
        done: mpsc::UnboundedSender<Done>,
        metrics: AgentMetrics,
        mut stop: watch::Receiver<bool>,
    ) {
        let events = self
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(mut events) = events else {
            return; // already listening (a second session::run on the same role)
        };
        let mut seen = Counters::default();
        let mut sync = tokio::time::interval(COUNTER_SYNC);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(Event::Rxpk { rxpk, .. }) => self.witness(&codec::received(&rxpk), &done, &metrics),
                    Some(Event::GatewayConnected { gateway, address }) => {
                        tracing::info!(%gateway, %address, "packet forwarder connected");
                    }
                    Some(Event::Stat { .. }) => {}
                    None => return,
                },
                _ = sync.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            seen = self.sync_counters(seen, &metrics);
        }
    }

    fn witness(
        &self,
        frame: &codec::Received,
        done: &mpsc::UnboundedSender<Done>,
        metrics: &AgentMetrics,
    ) {
        // LoRaWAN uplinks have other sizes; a PoC beacon is exactly 51 bytes (Helium).
        if frame.data.len() != BEACON_PAYLOAD_SIZE
            || self.own().contains(&BeaconId::of(&frame.data))
        {
            return;
        }
        let report = WitnessReport::sign(
            &self.key,
            WitnessReport {
                witness: self.key.public(),
                data: frame.data.clone(),
                timestamp_ms: crate::now_ms(),
                tmst: frame.tmst,
                signal_ddbm: frame.rssi_dbm.saturating_mul(10),
                // SNR is a small float (−20..+15 dB); `as` saturates, never wraps.
                snr_ddb: (f64::from(frame.snr_db) * 10.0).round() as i32,
                frequency_hz: frame.frequency_hz,
                datarate: frame.datarate.to_string(),
                signature: [0; 64],
            },
        );
        metrics.hotspot_witnesses_reported.inc();
        metrics
            .hotspot_witness_rssi
            .observe(f64::from(frame.rssi_dbm));
        metrics.hotspot_witness_snr.observe(f64::from(frame.snr_db));
        tracing::debug!(beacon = %report.beacon_id().to_hex(), rssi = frame.rssi_dbm, "beacon witnessed");
        let _ = done.send(Done::Report {
            challenge: wire::report_id(&report.signing_bytes()),
            kind: ProofKind::Hotspot,
            message: agent_message(Out::WitnessReport(wire::witness_report_to_wire(&report))),
        });
    }

    /// Adds what the endpoint counted since `seen` to the metrics; returns the new snapshot.
    fn sync_counters(&self, seen: Counters, metrics: &AgentMetrics) -> Counters {
        let now = self.endpoint.counters();
        let pairs = [
            ("push_data", now.push_data, seen.push_data),
            ("pull_data", now.pull_data, seen.pull_data),
            ("rxpk", now.rxpk, seen.rxpk),
            ("stat", now.stat, seen.stat),
            ("pull_resp", now.pull_resp, seen.pull_resp),
            ("tx_ack", now.tx_ack, seen.tx_ack),
            ("malformed", now.malformed_total(), seen.malformed_total()),
        ];
        for (kind, now, before) in pairs {
            if now > before {
                metrics
                    .hotspot_gwmp_packets
                    .with_label_values(&[kind])
                    .inc_by(now - before);
            }
        }
        for ((reason, now), (_, before)) in now.refused.iter().zip(seen.refused.iter()) {
            if now > before {
                metrics
                    .hotspot_gwmp_dropped
                    .with_label_values(&[reason])
                    .inc_by(now - before);
            }
        }
        if now.receive_restarts > seen.receive_restarts {
            metrics
                .hotspot_gwmp_receive_restarts
                .inc_by(now.receive_restarts - seen.receive_restarts);
        }
        now
    }
}

/// The endpoint's admission from the config: the pinned EUI and source networks, or
/// closed when no EUI is set.
fn admission(config: &HotspotConfig) -> Result<Admission, HotspotRoleError> {
    let Some(text) = &config.gateway_eui else {
        return Ok(Admission::Closed);
    };
    let gateway =
        codec::parse_eui(text).ok_or_else(|| HotspotRoleError::GatewayEui(text.clone()))?;
    let sources = config
        .source_cidrs
        .iter()
        .map(|cidr| {
            cidr.parse::<IpNet>()
                .map_err(|_| HotspotRoleError::SourceCidr(cidr.clone()))
        })
        .collect::<Result<_, _>>()?;
    Ok(Admission::Pinned { gateway, sources })
}
