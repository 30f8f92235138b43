//! Proof messages sent but not yet acknowledged. Kept across reconnects (in memory) and
//! re-sent, in order, at the start of every session, until a receipt names their challenge.
//!
//! Duplicates are safe: the verifier records one result per challenge and answers any
//! repeat with a Replay rejection carrying the original receipt, which settles the entry
//! here just like the original would have. A challenge the verifier no longer knows (it
//! restarted with a new beacon secret) is answered UnknownChallenge, also settling it.

use depin_proof::entropy::ChallengeId;
use depin_proof::receipt::ProofKind;
use depin_proto::v1::AgentMessage;
use std::collections::BTreeMap;
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
}

impl Outbox {
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
        self.entries.insert(
            challenge,
            Pending {
                kind,
                message,
                challenge_at,
                seq,
            },
        );
    }

    /// Settles `challenge`; returns its entry if it was waiting.
    pub fn settle(&mut self, challenge: &ChallengeId) -> Option<Pending> {
        self.entries.remove(challenge)
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
mod tests {
    use super::*;

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
}
