//! Proof messages sent but not yet acknowledged. Kept across reconnects and re-sent, in
//! order, at the start of every session, until a receipt names their challenge.
//!
//! Storage responses are also written to the storage volume before they are sent, so an
//! agent that crashes and restarts resends them while their deadline window is open.
//! Meter readings need nothing here: the meter role keeps every unacknowledged reading in
//! its own state dir and resends it (`roles::meter`). GPU messages stay in memory (their
//! opening needs the product, which a restart loses) and so do PoC reports (their round
//! settles within seconds).
//!
//! Duplicates are safe: the verifier records one result per challenge and answers any
//! repeat with a Replay rejection carrying the original receipt, which settles the entry
//! here just like the original would have. A challenge the verifier no longer knows (it
//! restarted with a new beacon secret) is answered UnknownChallenge, also settling it.

use depin_proof::entropy::ChallengeId;
use depin_proof::receipt::ProofKind;
use depin_proto::v1::AgentMessage;
use prost::Message as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::time::Instant;

/// One message waiting for its receipt.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Which proof.
    pub kind: ProofKind,
    /// The message to (re)send.
    pub message: AgentMessage,
    /// When its challenge arrived (for the latency metric).
    pub challenge_at: Instant,
    /// Send order, so resends keep it.
    seq: u64,
}

/// The outbox.
#[derive(Debug, Default)]
pub struct Outbox {
    entries: BTreeMap<ChallengeId, Pending>,
    next_seq: u64,
    /// Where durable kinds are kept (`None`: memory only).
    dir: Option<PathBuf>,
}

/// Kinds whose messages the outbox keeps across an agent restart (module docs).
fn durable(kind: ProofKind) -> bool {
    kind == ProofKind::Storage
}

fn kind_byte(kind: ProofKind) -> u8 {
    match kind {
        ProofKind::Storage => 1,
        ProofKind::Gpu => 2,
        ProofKind::Meter => 3,
        ProofKind::Hotspot => 4,
    }
}

fn kind_of(byte: u8) -> Option<ProofKind> {
    match byte {
        1 => Some(ProofKind::Storage),
        2 => Some(ProofKind::Gpu),
        3 => Some(ProofKind::Meter),
        4 => Some(ProofKind::Hotspot),
        _ => None,
    }
}

/// `<seq>-<challenge>.msg`: names sort in send order.
fn file_name(seq: u64, challenge: &ChallengeId) -> String {
    format!("{seq:020}-{}.msg", hex::encode(challenge.0))
}

impl Outbox {
    /// An outbox that keeps storage responses in `dir` and starts with what an earlier run
    /// left there. Unreadable files are skipped with a warning, never fatal.
    pub fn persistent(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut outbox = Self {
            dir: Some(dir.to_path_buf()),
            ..Self::default()
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".msg"))
            .collect();
        names.sort();
        let now = Instant::now();
        for name in names {
            match Self::load(&dir.join(&name), &name) {
                Some((seq, challenge, kind, message)) => {
                    outbox.next_seq = outbox.next_seq.max(seq);
                    let pending = Pending {
                        kind,
                        message,
                        challenge_at: now,
                        seq,
                    };
                    outbox.entries.insert(challenge, pending);
                }
                None => tracing::warn!(file = %name, "unreadable outbox entry skipped"),
            }
        }
        if !outbox.entries.is_empty() {
            tracing::info!(pending = outbox.entries.len(), dir = %dir.display(), "unacknowledged proofs reloaded; resending");
        }
        Ok(outbox)
    }

    fn load(path: &Path, name: &str) -> Option<(u64, ChallengeId, ProofKind, AgentMessage)> {
        let (seq, rest) = name.strip_suffix(".msg")?.split_once('-')?;
        let challenge: [u8; 32] = hex::decode(rest).ok()?.try_into().ok()?;
        let bytes = std::fs::read(path).ok()?;
        let (kind, body) = bytes.split_first()?;
        let message = AgentMessage::decode(body).ok()?;
        Some((
            seq.parse().ok()?,
            ChallengeId(challenge),
            kind_of(*kind)?,
            message,
        ))
    }

    /// Writes one entry durably (temp file, fsync, rename); a failure keeps it in memory.
    fn write(&self, challenge: &ChallengeId, pending: &Pending) {
        let Some(dir) = self.dir.as_ref().filter(|_| durable(pending.kind)) else {
            return;
        };
        let name = file_name(pending.seq, challenge);
        let mut bytes = vec![kind_byte(pending.kind)];
        bytes.extend(pending.message.encode_to_vec());
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let tmp = dir.join(format!("{name}.tmp"));
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, dir.join(&name))
        };
        if let Err(err) = write() {
            tracing::warn!(%err, file = %name, "outbox entry not persisted; kept in memory");
        }
    }

    fn remove(&self, challenge: &ChallengeId, pending: &Pending) {
        if let Some(dir) = self.dir.as_ref().filter(|_| durable(pending.kind)) {
            let _ = std::fs::remove_file(dir.join(file_name(pending.seq, challenge)));
        }
    }

    /// Stores (or replaces, e.g. a GPU commitment by its opening) the message for `challenge`.
    pub fn put(
        &mut self,
        challenge: ChallengeId,
        kind: ProofKind,
        message: AgentMessage,
        challenge_at: Instant,
    ) {
        self.next_seq += 1;
        let seq = self
            .entries
            .get(&challenge)
            .map_or(self.next_seq, |p| p.seq);
        let pending = Pending {
            kind,
            message,
            challenge_at,
            seq,
        };
        self.write(&challenge, &pending);
        self.entries.insert(challenge, pending);
    }

    /// Settles `challenge`; returns its entry if it was waiting.
    pub fn settle(&mut self, challenge: &ChallengeId) -> Option<Pending> {
        let pending = self.entries.remove(challenge)?;
        self.remove(challenge, &pending);
        Some(pending)
    }

    /// Whether `challenge` is waiting.
    pub fn contains(&self, challenge: &ChallengeId) -> bool {
        self.entries.contains_key(challenge)
    }

    /// The message waiting for `challenge`.
    pub fn get(&self, challenge: &ChallengeId) -> Option<&Pending> {
        self.entries.get(challenge)
    }

    /// Everything waiting, oldest first.
    pub fn pending(&self) -> Vec<AgentMessage> {
        let mut all: Vec<&Pending> = self.entries.values().collect();
        all.sort_by_key(|p| p.seq);
        all.into_iter().map(|p| p.message.clone()).collect()
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use depin_proto::v1::agent_message::Body;

    fn msg() -> AgentMessage {
        AgentMessage::default()
    }

    #[test]
    fn replacing_keeps_the_order_and_settling_removes() {
        let mut outbox = Outbox::default();
        let now = Instant::now();
        outbox.put(ChallengeId([1; 32]), ProofKind::Gpu, msg(), now);
        outbox.put(ChallengeId([2; 32]), ProofKind::Storage, msg(), now);
        outbox.put(ChallengeId([1; 32]), ProofKind::Gpu, msg(), now); // opening replaces commitment
        assert_eq!(outbox.len(), 2);
        assert_eq!(outbox.entries[&ChallengeId([1; 32])].seq, 1);
        assert!(outbox.settle(&ChallengeId([1; 32])).is_some());
        assert!(outbox.settle(&ChallengeId([1; 32])).is_none());
        assert!(!outbox.is_empty());
    }

    fn response(sector: u64) -> AgentMessage {
        AgentMessage {
            body: Some(Body::StorageResponse(depin_proto::v1::StorageResponse {
                sector,
                ..Default::default()
            })),
        }
    }

    #[test]
    fn durable_kinds_survive_a_restart_in_order_and_settled_ones_do_not() {
        let dir = std::env::temp_dir().join(format!("depin-outbox-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = Instant::now();
        {
            let mut outbox = Outbox::persistent(&dir).unwrap();
            outbox.put(ChallengeId([3; 32]), ProofKind::Storage, response(7), now);
            outbox.put(ChallengeId([1; 32]), ProofKind::Storage, response(8), now);
            outbox.put(ChallengeId([2; 32]), ProofKind::Gpu, msg(), now);
            outbox.put(ChallengeId([6; 32]), ProofKind::Meter, msg(), now);
            outbox.put(ChallengeId([4; 32]), ProofKind::Storage, msg(), now);
            assert!(outbox.settle(&ChallengeId([4; 32])).is_some());
        } // the agent dies here
        std::fs::write(dir.join("garbage.msg"), b"\xff").unwrap();
        let reloaded = Outbox::persistent(&dir).unwrap();
        assert_eq!(reloaded.len(), 2, "the open storage responses only");
        let sectors: Vec<u64> = reloaded
            .pending()
            .iter()
            .filter_map(|m| match &m.body {
                Some(Body::StorageResponse(r)) => Some(r.sector),
                _ => None,
            })
            .collect();
        assert_eq!(sectors, [7, 8], "resent in the order they were first sent");
        // New entries number after the reloaded ones.
        let mut reloaded = reloaded;
        reloaded.put(ChallengeId([5; 32]), ProofKind::Storage, response(9), now);
        assert!(
            reloaded.entries[&ChallengeId([5; 32])].seq
                > reloaded.entries[&ChallengeId([1; 32])].seq
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
