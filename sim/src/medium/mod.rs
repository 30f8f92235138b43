//! The RF medium: for every hotspot it is the packet forwarder (one Semtech UDP client per
//! hotspot, Helium's `semtech-udp` client runtime, talking to that hotspot agent's GWMP
//! endpoint). A downlink (PULL_RESP txpk) from one hotspot is acknowledged (TX_ACK) and
//! becomes an uplink (PUSH_DATA rxpk) at every other hotspot of the same region whose
//! received power — transmit power, antenna gains, path loss over the great-circle
//! distance, seeded log-normal shadowing — is above the LoRa sensitivity. It plays the
//! radios, nothing else: no verification, no knowledge of beacons.

mod config;
pub mod physics;

pub use config::{ConfigError, HotspotRadio, Location, MediumConfig, Radio};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use depin_gwmp::codec::{self, Received, mhz_to_hz};
use depin_gwmp::semtech_udp::client_runtime::{ClientTx, Event as ClientEvent, UdpRuntime};
use depin_gwmp::semtech_udp::{pull_resp, tx_ack};
use depin_proof::poc::{cell_at, great_circle_m};
use physics::{Propagation, noise_floor_dbm, path_loss_db, seeded_normal, sensitivity_dbm};
use tokio::task::JoinSet;

/// What the medium has done so far.
#[derive(Debug, Default)]
pub struct MediumStats {
    /// Downlinks received from agents (and acknowledged).
    pub transmissions: AtomicU64,
    /// Downlinks refused with a TX_ACK error (frequency outside the radio's plan).
    pub refused: AtomicU64,
    /// Receptions delivered as PUSH_DATA.
    pub deliveries: AtomicU64,
    /// Receptions that fell below sensitivity.
    pub too_weak: AtomicU64,
}

/// One radio's outgoing side.
struct Station {
    radio: Radio,
    uplink: ClientTx,
}

/// Shared state of a running medium.
struct Shared {
    stations: Vec<Station>,
    propagation: Propagation,
    seed: u64,
    started: Instant,
    stats: Arc<MediumStats>,
}

/// A running medium; dropping it stops every radio.
pub struct Medium {
    stats: Arc<MediumStats>,
    shutdown: triggered::Trigger,
    _tasks: JoinSet<()>,
}

impl Medium {
    /// Starts one forwarder per radio, each pointed at its agent.
    pub async fn start(config: &MediumConfig, radios: Vec<Radio>) -> anyhow::Result<Self> {
        let (shutdown, listener) = triggered::trigger();
        let mut tasks = JoinSet::new();
        let mut stations = Vec::with_capacity(radios.len());
        let mut downlinks = Vec::with_capacity(radios.len());
        for radio in radios {
            let (uplink, events, runtime) =
                UdpRuntime::new(radio.eui, radio.config.agent.clone()).await?;
            let name = radio.config.name.clone();
            let stop = listener.clone();
            tasks.spawn(async move {
                if let Err(e) = runtime.run(stop).await {
                    tracing::warn!(radio = %name, error = %e, "forwarder runtime ended");
                }
            });
            stations.push(Station { radio, uplink });
            downlinks.push(events);
        }
        let stats = Arc::new(MediumStats::default());
        let shared = Arc::new(Shared {
            stations,
            propagation: config.propagation(),
            seed: config.seed,
            started: Instant::now(),
            stats: Arc::clone(&stats),
        });
        for (index, mut events) in downlinks.into_iter().enumerate() {
            let shared = Arc::clone(&shared);
            tasks.spawn(async move {
                while let Some(event) = events.recv().await {
                    if let ClientEvent::DownlinkRequest(request) = event {
                        transmit(&shared, index, request).await;
                    }
                }
            });
        }
        Ok(Self {
            stats,
            shutdown,
            _tasks: tasks,
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> &MediumStats {
        &self.stats
    }
}

impl Drop for Medium {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// Handles one downlink from station `from`: TX_ACK it, then deliver it.
async fn transmit(
    shared: &Shared,
    from: usize,
    request: depin_gwmp::semtech_udp::client_runtime::DownlinkRequest,
) {
    let txpk = request.txpk().clone();
    let sender = &shared.stations[from].radio;
    let frequency_hz = mhz_to_hz(txpk.freq);
    if !sender.region.beacon_channels_hz().contains(&frequency_hz) {
        // A real concentrator refuses a frequency its RF chain cannot reach.
        shared.stats.refused.fetch_add(1, Ordering::Relaxed);
        let _ = request.nack(tx_ack::Error::InvalidTransmitFrequency).await;
        return;
    }
    shared.stats.transmissions.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = request.ack().await {
        tracing::warn!(radio = %sender.config.name, error = %e, "TX_ACK not sent");
    }
    for (to, station) in shared.stations.iter().enumerate() {
        if to == from || station.radio.region != sender.region {
            continue;
        }
        match reception(shared, sender, &station.radio, &txpk) {
            Some(frame) => {
                tracing::debug!(
                    from = %sender.config.name, to = %station.radio.config.name,
                    rssi = frame.rssi_dbm, snr = frame.snr_db, "delivered"
                );
                let push = codec::push_data(0, station.radio.eui, vec![codec::rxpk(&frame)]);
                if station.uplink.send(push).await.is_ok() {
                    shared.stats.deliveries.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                shared.stats.too_weak.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// What `to` hears of `txpk` sent by `from`, or `None` below sensitivity.
fn reception(
    shared: &Shared,
    from: &Radio,
    to: &Radio,
    txpk: &pull_resp::TxPk,
) -> Option<Received> {
    let at = |r: &Radio| cell_at(r.config.location.latitude, r.config.location.longitude, 15).ok();
    let distance_m = great_circle_m(at(from)?, at(to)?);
    let frequency_hz = mhz_to_hz(txpk.freq);
    let mut key = Vec::with_capacity(128);
    key.extend_from_slice(&shared.seed.to_be_bytes());
    key.extend_from_slice(txpk.data.data());
    key.extend_from_slice(from.config.name.as_bytes());
    key.push(0);
    key.extend_from_slice(to.config.name.as_bytes());
    let shadow_db = seeded_normal(&key) * shared.propagation.shadowing_sigma_db;
    let loss = path_loss_db(
        distance_m,
        frequency_hz as f64,
        shadow_db,
        &shared.propagation,
    );
    let rssi = txpk.powe as f64 + from.config.antenna_gain_dbi + to.config.antenna_gain_dbi - loss;
    let bandwidth_hz = f64::from(txpk.datr.bandwidth().hz());
    let sf = u8::try_from(txpk.datr.spreading_factor().factor()).unwrap_or(12);
    if rssi < sensitivity_dbm(sf, bandwidth_hz) {
        return None;
    }
    // The concentrator's free-running microsecond counter (wraps every ~71.6 minutes).
    let tmst = shared.started.elapsed().as_micros() as u32;
    Some(Received {
        data: txpk.data.data().to_vec(),
        frequency_hz,
        datarate: txpk.datr,
        // Whole dBm, as forwarders report RSSI; floor so rounding never lifts it.
        rssi_dbm: rssi.floor() as i32,
        snr_db: ((rssi - noise_floor_dbm(bandwidth_hz)) * 10.0).round() as f32 / 10.0,
        tmst,
    })
}
