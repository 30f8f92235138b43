//! Meter role: polls a SunSpec meter over Modbus TCP every few seconds, averages real
//! power over each slot (`intervalSeconds`), and at each slot boundary signs the next link
//! of the node's reading chain (`depin_proof::meter::ChainHead`) and hands it to the
//! session, which keeps it in the outbox until the verifier's receipt arrives.
//!
//! Restarts: the chain head and every reading still waiting for a receipt are files in
//! `stateDir`, written before the reading is sent, so a restarted agent continues the
//! chain (same sequence, same hashes) and re-sends what the verifier may not have seen.

use crate::metrics::AgentMetrics;
use crate::session::{Done, agent_message};
use depin_meter::{Direction, SunSpecReader};
use depin_proof::RejectReason;
use depin_proof::entropy::ChallengeId;
use depin_proof::identity::NodeKey;
use depin_proof::meter::{BadChainHead, ChainHead, SignedReading};
use depin_proof::receipt::ProofKind;
use depin_proto::config::MeterConfig;
use depin_proto::v1::{self, agent_message::Body as Out};
use depin_proto::wire;
use prost::Message as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The chain head file in `stateDir` (`ChainHead::encode`, 48 bytes).
pub const HEAD_FILE: &str = "chain-head";
/// Readings waiting for a receipt, one `<chain hash hex>.pb` file each, under `stateDir`.
pub const PENDING_DIR: &str = "pending";
/// Longest time between two power samples: "a few seconds", like Glow's 1 s–5 s sensor
/// loops; shorter slots (tests) sample five times per slot, but at most every 100 ms.
const MAX_POLL: Duration = Duration::from_secs(2);
const MIN_POLL: Duration = Duration::from_millis(100);
/// Longest wait before reconnecting to a meter that keeps failing.
const MAX_RECONNECT: Duration = Duration::from_secs(30);

/// Why the meter role cannot start; each names the config field or file.
#[derive(Debug, thiserror::Error)]
pub enum MeterRoleError {
    /// `meter.direction` is neither production nor consumption.
    #[error("meter.direction: expected production or consumption, got {0:?}")]
    Direction(String),
    /// `meter.profile` names a register map this agent cannot read.
    #[error("meter.profile: only sunspec is supported, got {0:?}")]
    Profile(String),
    /// A state file could not be read or written.
    #[error("{path} (meter.stateDir): {source}")]
    State {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The chain head file is corrupt (starting a fresh chain would break the verifier's).
    #[error("{path} (meter.stateDir): {source}")]
    Head {
        /// The file.
        path: String,
        /// What is wrong with it.
        source: BadChainHead,
    },
}

fn state_error(path: &Path) -> impl FnOnce(std::io::Error) -> MeterRoleError + '_ {
    move |source| MeterRoleError::State {
        path: path.display().to_string(),
        source,
    }
}

/// The meter role's state.
#[derive(Debug)]
pub struct MeterRole {
    config: MeterConfig,
    key: Arc<NodeKey>,
    direction: Direction,
    dir: PathBuf,
    /// The chain head (only the poll task signs; the lock makes the role `Sync`).
    head: Mutex<ChainHead>,
}

/// A signed reading ready for the session: its chain hash (the receipt's challenge id)
/// and the message.
pub type Outgoing = (ChallengeId, v1::AgentMessage);

impl MeterRole {
    /// Checks the config and loads the chain head from `stateDir` (a fresh chain when the
    /// directory is new). A pending reading newer than the head (the agent stopped between
    /// the two writes) moves the head on to it.
    pub fn prepare(config: &MeterConfig, key: Arc<NodeKey>) -> Result<Self, MeterRoleError> {
        let direction = match config.direction.to_ascii_lowercase().as_str() {
            "production" => Direction::Production,
            "consumption" => Direction::Consumption,
            _ => return Err(MeterRoleError::Direction(config.direction.clone())),
        };
        if !config.profile.eq_ignore_ascii_case("sunspec") {
            return Err(MeterRoleError::Profile(config.profile.clone()));
        }
        let dir = PathBuf::from(&config.state_dir);
        let pending_dir = dir.join(PENDING_DIR);
        std::fs::create_dir_all(&pending_dir).map_err(state_error(&pending_dir))?;
        let head_path = dir.join(HEAD_FILE);
        let mut head = match std::fs::read(&head_path) {
            Ok(bytes) => ChainHead::decode(&bytes).map_err(|source| MeterRoleError::Head {
                path: head_path.display().to_string(),
                source,
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => ChainHead::default(),
            Err(err) => return Err(state_error(&head_path)(err)),
        };
        let role = Self {
            config: config.clone(),
            key,
            direction,
            dir,
            head: Mutex::new(ChainHead::default()),
        };
        for signed in role.pending_readings()? {
            if signed.reading.seq >= head.next_seq {
                head = ChainHead {
                    next_seq: signed.reading.seq + 1,
                    last_slot: signed.reading.slot,
                    prev_hash: signed.hash(),
                };
            }
        }
        *role.lock_head() = head;
        Ok(role)
    }

    fn lock_head(&self) -> std::sync::MutexGuard<'_, ChainHead> {
        // The head is replaced whole under the lock, so a poisoned one is still consistent.
        self.head.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current chain head.
    pub fn head(&self) -> ChainHead {
        *self.lock_head()
    }

    fn pending_path(&self, challenge: &ChallengeId) -> PathBuf {
        self.dir
            .join(PENDING_DIR)
            .join(format!("{}.pb", challenge.to_hex()))
    }

    /// Readings signed but not yet receipted, oldest first.
    fn pending_readings(&self) -> Result<Vec<SignedReading>, MeterRoleError> {
        let dir = self.dir.join(PENDING_DIR);
        let mut readings = Vec::new();
        for file in std::fs::read_dir(&dir).map_err(state_error(&dir))? {
            let path = file.map_err(state_error(&dir))?.path();
            let bytes = std::fs::read(&path).map_err(state_error(&path))?;
            let decoded = v1::MeterReading::decode(bytes.as_slice())
                .ok()
                .and_then(|w| wire::meter_reading_from_wire(self.key.public(), &w).ok());
            match decoded {
                Some(signed) => readings.push(signed),
                None => {
                    tracing::warn!(file = %path.display(), "ignoring an unreadable pending meter reading")
                }
            }
        }
        readings.sort_by_key(|s| s.reading.seq);
        Ok(readings)
    }

    /// Readings waiting for a receipt (sent again at start).
    pub fn pending(&self) -> Result<Vec<Outgoing>, MeterRoleError> {
        Ok(self.pending_readings()?.iter().map(outgoing).collect())
    }

    /// Forgets a receipted reading.
    pub fn settled(&self, challenge: &ChallengeId) {
        let path = self.pending_path(challenge);
        if let Err(err) = std::fs::remove_file(&path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %path.display(), %err, "cannot remove a settled meter reading");
        }
    }

    /// A receipt for a reading: forgets the pending file and, when the verifier refused
    /// the link, rewinds the head so the next reading re-takes its place in the chain. The
    /// verifier only moves its tip on accepted links, so without this one refused reading
    /// (say `EnergyMismatch`) would leave every later one `SequenceGap`. Only a link before
    /// the head rewinds it; refusals of links signed after it (the gap they inherited)
    /// leave the head alone. A refused rollback stays refused on every retry until the
    /// register passes the accepted value again, so nothing is credited twice.
    pub fn on_receipt(
        &self,
        challenge: &ChallengeId,
        message: &v1::AgentMessage,
        verdict: Result<(), RejectReason>,
    ) -> Result<(), MeterRoleError> {
        self.settled(challenge);
        let refused = verdict.is_err_and(|r| r != RejectReason::Duplicate);
        let Some(Out::MeterReading(wire_reading)) = &message.body else {
            return Ok(());
        };
        let Ok(signed) = wire::meter_reading_from_wire(self.key.public(), wire_reading) else {
            return Ok(());
        };
        let mut head = self.lock_head();
        if !refused || signed.reading.seq >= head.next_seq {
            return Ok(());
        }
        let rewound = ChainHead {
            next_seq: signed.reading.seq,
            last_slot: head.last_slot,
            prev_hash: signed.reading.prev_hash,
        };
        write_atomically(&self.dir.join(HEAD_FILE), &rewound.encode())?;
        tracing::warn!(seq = signed.reading.seq, reason = ?verdict.err(), "meter reading refused; the next reading takes its place in the chain");
        *head = rewound;
        Ok(())
    }

    /// Signs the reading for `slot` and makes it durable (pending file, then head) before
    /// anything is sent. `None` when the slot is not after the last one.
    pub fn sign(
        &self,
        serial: &str,
        slot: u64,
        cumulative_wh: u64,
        avg_w: u64,
        samples: u32,
    ) -> Result<Option<Outgoing>, MeterRoleError> {
        let mut head = self.lock_head();
        let mut next = *head;
        let Some(signed) = next.next(&self.key, serial, slot, cumulative_wh, avg_w, samples) else {
            return Ok(None);
        };
        let out = outgoing(&signed);
        let pending = self.pending_path(&out.0);
        let wire = wire::meter_reading_to_wire(&signed);
        write_atomically(&pending, &wire.encode_to_vec())?;
        write_atomically(&self.dir.join(HEAD_FILE), &next.encode())?;
        *head = next;
        Ok(Some(out))
    }

    /// Polls the meter and sends one signed reading per slot until `stop` turns true.
    pub(crate) async fn run(
        self: Arc<Self>,
        done: mpsc::UnboundedSender<Done>,
        metrics: AgentMetrics,
        mut stop: watch::Receiver<bool>,
    ) {
        let address = format!("{}:{}", self.config.host, self.config.port);
        let slot_ms = u64::from(self.config.interval_seconds.max(1)) * 1000;
        let poll = (Duration::from_millis(slot_ms) / 5).clamp(MIN_POLL, MAX_POLL);
        let mut reader: Option<SunSpecReader> = None;
        let mut reconnect = MIN_POLL;
        let mut slot = crate::now_ms() / slot_ms;
        let (mut sum_w, mut samples) = (0.0_f64, 0_u32);
        loop {
            let wait = if reader.is_some() { poll } else { reconnect };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            let connected = match reader.as_mut() {
                Some(connected) => connected,
                None => match SunSpecReader::connect(
                    &address,
                    self.config.unit_id,
                    self.direction,
                    depin_meter::DEFAULT_TIMEOUT,
                )
                .await
                {
                    Ok(connected) => reader.insert(connected),
                    Err(err) => {
                        metrics
                            .meter_read_errors
                            .with_label_values(&[err.kind()])
                            .inc();
                        tracing::warn!(%address, %err, retry_in = ?reconnect, "cannot reach the meter");
                        reconnect = (reconnect * 2).min(MAX_RECONNECT);
                        continue;
                    }
                },
            };
            let read = match connected.read().await {
                Ok(read) => read,
                Err(err) => {
                    metrics
                        .meter_read_errors
                        .with_label_values(&[err.kind()])
                        .inc();
                    tracing::warn!(%address, %err, "meter read failed; reconnecting");
                    reader = None;
                    continue;
                }
            };
            reconnect = MIN_POLL;
            metrics.meter_power_watts.set(read.watts);
            // Gauges are f64; registers beyond 2^53 Wh (9 PWh) lose precision, nothing else.
            // Joules, the Prometheus base unit (promtool refuses `_hours`).
            metrics
                .meter_energy_joules
                .set(read.wh_total as f64 * 3600.0);
            sum_w += read.watts.max(0.0);
            samples += 1;
            let now_slot = crate::now_ms() / slot_ms;
            if now_slot <= slot {
                continue;
            }
            slot = now_slot;
            // Rounded mean of non-negative samples; `as` saturates, never wraps.
            let avg_w = (sum_w / f64::from(samples)).round() as u64;
            let signed = self.sign(&read.serial, slot, read.wh_total, avg_w, samples);
            (sum_w, samples) = (0.0, 0);
            match signed {
                Ok(Some((challenge, message))) => {
                    metrics.meter_readings.inc();
                    tracing::debug!(slot, wh = read.wh_total, avg_w, "meter reading signed");
                    let report = Done::Report {
                        challenge,
                        kind: ProofKind::Meter,
                        message,
                    };
                    if done.send(report).is_err() {
                        return; // the session loop is gone: the agent is stopping
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(%err, "cannot persist the meter chain; reading not sent")
                }
            }
        }
    }
}

fn outgoing(signed: &SignedReading) -> Outgoing {
    (
        ChallengeId(signed.hash()),
        agent_message(Out::MeterReading(wire::meter_reading_to_wire(signed))),
    )
}

/// Writes `bytes` to a temporary sibling, syncs it and renames it over `path`, so a crash
/// leaves the old or the new content, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), MeterRoleError> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(state_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> MeterConfig {
        MeterConfig {
            host: "127.0.0.1".into(),
            port: 1,
            unit_id: 1,
            profile: "sunspec".into(),
            direction: "production".into(),
            rated_capacity_kw: 5.0,
            interval_seconds: 10,
            state_dir: dir.display().to_string(),
        }
    }

    #[test]
    fn a_restarted_role_continues_the_chain_and_resends_what_was_not_receipted() {
        let dir = std::env::temp_dir().join(format!("depin-meter-role-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = Arc::new(NodeKey::from_seed([3; 32]));
        let role = MeterRole::prepare(&config(&dir), key.clone()).expect("prepares");
        let (first, _) = role.sign("SN", 10, 100, 0, 1).expect("ok").expect("signed");
        let (second, _) = role
            .sign("SN", 11, 110, 3_600, 4)
            .expect("ok")
            .expect("signed");
        assert!(
            role.sign("SN", 11, 120, 0, 1).expect("ok").is_none(),
            "same slot"
        );
        role.settled(&first);
        let head = role.head();
        drop(role);

        let again = MeterRole::prepare(&config(&dir), key.clone()).expect("prepares");
        assert_eq!(again.head(), head);
        let pending = again.pending().expect("pending");
        assert_eq!(
            pending.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![second]
        );

        // Stopped after the pending file but before the head: the head catches up.
        std::fs::remove_file(dir.join(HEAD_FILE)).expect("remove head");
        let repaired = MeterRole::prepare(&config(&dir), key).expect("prepares");
        assert_eq!(repaired.head(), head);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_refused_link_is_retaken_by_the_next_reading() {
        let dir = std::env::temp_dir().join(format!("depin-meter-rewind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = Arc::new(NodeKey::from_seed([4; 32]));
        let role = MeterRole::prepare(&config(&dir), key).expect("prepares");
        let (first, m1) = role.sign("SN", 10, 100, 0, 1).expect("ok").expect("signed");
        let (second, m2) = role.sign("SN", 11, 900, 0, 1).expect("ok").expect("signed");
        let (third, m3) = role.sign("SN", 12, 910, 0, 1).expect("ok").expect("signed");
        role.on_receipt(&first, &m1, Ok(())).expect("settles");
        let after_first = ChainHead {
            next_seq: 1,
            last_slot: 12,
            prev_hash: role.pending_readings().expect("pending")[0]
                .reading
                .prev_hash,
        };
        role.on_receipt(&second, &m2, Err(RejectReason::ExceedsCapacity))
            .expect("rewinds");
        assert_eq!(role.head(), after_first);
        // The third link inherited the gap: its refusal does not move the head again.
        role.on_receipt(&third, &m3, Err(RejectReason::SequenceGap))
            .expect("settles");
        assert_eq!(role.head(), after_first);
        let (_, retaken) = role.sign("SN", 13, 120, 0, 1).expect("ok").expect("signed");
        let Some(Out::MeterReading(w)) = retaken.body else {
            panic!("a reading")
        };
        assert_eq!((w.seq, w.slot), (1, 13));
        assert!(role.pending().expect("pending").len() == 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_settings_name_their_field() {
        let key = Arc::new(NodeKey::from_seed([3; 32]));
        let mut bad = config(Path::new("/nonexistent-depin"));
        bad.direction = "sideways".into();
        let err = MeterRole::prepare(&bad, key).expect_err("refused");
        assert!(err.to_string().contains("meter.direction"), "{err}");
    }
}
