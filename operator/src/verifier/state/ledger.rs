//! What the verifier has issued to each node and how each challenge stands. Kept per node,
//! not per connection, so an agent that reconnects can still answer (or learn the receipt
//! of) a challenge it got on an earlier session of this verifier.
//!
//! Counting rule: a challenge gets exactly one recorded result. Open → (GPU: Committed →)
//! Recording → Answered. A second response for a challenge that is Recording or Answered
//! is answered with a Replay rejection carrying the original receipt and is not recorded;
//! a response naming a challenge this verifier never issued (e.g. one from before an
//! operator restart, whose beacon secret died with it) is an UnknownChallenge rejection,
//! also not recorded.

use depin_proof::entropy::ChallengeId;
use depin_proof::gpu::{ChainChallenge, GpuClass, SampleRequest, VerifiedChainCommitment};
use depin_proof::identity::PublicKey;
use depin_proof::receipt::{ProofKind, Receipt};
use depin_proof::session::Session;
use depin_proof::storage::{
    SectorCommitment, SectorId, SectorRecord, StorageChallenge, StorageLedger,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::watch;

/// How long a challenge is remembered after its window closed (for Replay answers and for
/// receipts of agents that reconnect late).
pub const RETENTION_MS: u64 = 10 * 60 * 1000;

/// A challenge as issued.
#[derive(Clone, Debug)]
pub enum Challenge {
    /// A storage deadline.
    Storage(StorageChallenge),
    /// A GPU chain of products, sized for the class the node claims.
    Gpu(Box<IssuedChain>),
}

/// A chain challenge as issued: the class it was sized for and the round trip the
/// verifier measured on the session it went out on.
#[derive(Clone, Debug)]
pub struct IssuedChain {
    /// What was asked.
    pub challenge: ChainChallenge,
    /// The class whose work and deadline it carries.
    pub class: GpuClass,
    /// Median round trip of the session's last probes, ms (the deadline adds it, capped).
    pub rtt_ms: u64,
}

impl Challenge {
    /// When the work it asks for started: the deadline opening, or the issue time.
    pub fn work_started_ms(&self) -> u64 {
        match self {
            Challenge::Storage(c) => c.deadline.opens_at_ms,
            Challenge::Gpu(c) => c.challenge.issued_at_ms,
        }
    }

    /// Which proof answers it.
    pub fn kind(&self) -> ProofKind {
        match self {
            Challenge::Storage(_) => ProofKind::Storage,
            Challenge::Gpu(_) => ProofKind::Gpu,
        }
    }
}

/// Where a challenge stands.
#[derive(Clone, Debug)]
pub enum State {
    /// Sent, not answered.
    Open,
    /// GPU: stage roots accepted in time, these samples requested.
    Committed(Box<(VerifiedChainCommitment, SampleRequest)>),
    /// A result is being made durable; the receiver yields its receipt.
    Recording {
        /// Resolves to the receipt once recorded (closed if recording failed).
        receipt: watch::Receiver<Option<Receipt>>,
        /// The state to return to if recording fails, so a resend is verified afresh.
        before: Box<State>,
    },
    /// Recorded and acknowledged with this receipt.
    Answered(Box<Receipt>),
}

/// One issued challenge.
#[derive(Clone, Debug)]
pub struct Issued {
    /// What was asked.
    pub challenge: Challenge,
    /// Sessions it was sent on; a response must be signed by one of their keys.
    pub sessions: Vec<Session>,
    /// Progress.
    pub state: State,
    /// Set once its window closed unanswered (counted once as a missed deadline).
    pub missed: bool,
    /// When it may be forgotten, unix ms.
    pub forget_at_ms: u64,
}

impl Issued {
    /// The session whose key is `session_key`, if the challenge was sent on it.
    pub fn session_for(&self, session_key: &PublicKey) -> Option<&Session> {
        self.sessions.iter().find(|s| s.session_key == *session_key)
    }

    /// Moves the challenge to Recording; the returned sender publishes its receipt to
    /// duplicates waiting on it (dropped unsent if recording fails).
    pub fn begin_recording(&mut self) -> watch::Sender<Option<Receipt>> {
        let (done, receipt) = watch::channel(None);
        let before = std::mem::replace(&mut self.state, State::Open);
        self.state = State::Recording {
            receipt,
            before: Box::new(before),
        };
        done
    }

    /// Returns a challenge whose recording failed to the state it had before, so a resend
    /// is verified afresh.
    pub fn recording_failed(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Open);
        self.state = match state {
            State::Recording { before, .. } => *before,
            other => other,
        };
    }

    /// The receipt of the recording in progress, for a duplicate to wait on.
    pub fn original_receipt(&self) -> Option<watch::Receiver<Option<Receipt>>> {
        match &self.state {
            State::Recording { receipt, .. } => Some(receipt.clone()),
            _ => None,
        }
    }
}

/// Everything the verifier knows about one node.
#[derive(Debug, Default)]
pub struct NodeLedger {
    /// Storage: the durable sector ledger (`status.storage`): accepted roots whose seal
    /// was verified, their deadline history, and the node's reputation. Its live sectors
    /// are the ones challenged (agents re-send their commitments on every session).
    pub storage: StorageLedger,
    /// Commitments that passed every other rule and wait for their seal audit (the
    /// verifier packs the sector again): never challenged, and not in `storage` until
    /// they pass, so a restart forgets them and the agent's next session queues them again.
    pub unsealed: BTreeMap<SectorId, SectorCommitment>,
    /// Storage proofs applied to `storage` while their tally is being made durable: the
    /// sector's record before, put back should the write fail (so the agent's resend is
    /// not refused as a Replay of a period that was never recorded).
    pub proofs_recording: HashMap<ChallengeId, SectorRecord>,
    /// Whether `storage` holds this node's durable ledger (`status.storage`, read back
    /// once per node by this verifier); until then it is not judged against or written
    /// out, so an empty stand-in can never overwrite the durable one.
    pub storage_loaded: bool,
    /// Challenges by id.
    pub challenges: HashMap<ChallengeId, Issued>,
    /// GPU rounds issued to this node (any session) and their challenge, until accounted.
    pub gpu_rounds: BTreeMap<u64, ChallengeId>,
}

/// How a GPU round ended for one node, once its last deadline passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundOutcome {
    /// Its challenge has a result (accepted or rejected), recorded by the session.
    Settled,
    /// No challenge was issued (no session during the round) or it was never answered:
    /// record a `NoResponse` failure.
    Missed,
}

impl NodeLedger {
    /// Records that `challenge` (id `id`) was sent on `session`; an already-issued id (the
    /// same storage deadline on a new session) only gains the session.
    pub fn issue(
        &mut self,
        id: ChallengeId,
        challenge: Challenge,
        session: &Session,
        forget_at_ms: u64,
    ) {
        let entry = self.challenges.entry(id).or_insert_with(|| Issued {
            challenge,
            sessions: Vec::new(),
            state: State::Open,
            missed: false,
            forget_at_ms,
        });
        if entry.session_for(&session.session_key).is_none() {
            entry.sessions.push(session.clone());
        }
    }

    /// Whether `id` was issued and already has (or is getting) a result.
    pub fn is_settled(&self, id: &ChallengeId) -> bool {
        self.challenges
            .get(id)
            .is_some_and(|i| matches!(i.state, State::Recording { .. } | State::Answered(_)))
    }

    /// Marks `id` missed if its window closed unanswered; true the first time only.
    pub fn mark_missed(&mut self, id: &ChallengeId) -> bool {
        match self.challenges.get_mut(id) {
            Some(issued) if matches!(issued.state, State::Open) && !issued.missed => {
                issued.missed = true;
                true
            }
            _ => false,
        }
    }

    /// Settles GPU round `round` for this node and forgets rounds up to it. An unanswered
    /// challenge of the round is forgotten too, so an answer arriving later is an
    /// UnknownChallenge (not recorded): the round counts exactly once.
    pub fn account_gpu_round(&mut self, round: u64) -> RoundOutcome {
        let later = self.gpu_rounds.split_off(&(round + 1));
        let done = std::mem::replace(&mut self.gpu_rounds, later);
        match done.get(&round) {
            Some(id) if self.is_settled(id) => RoundOutcome::Settled,
            Some(id) => {
                self.challenges.remove(id);
                RoundOutcome::Missed
            }
            None => RoundOutcome::Missed,
        }
    }

    /// Forgets challenges past their retention.
    pub fn prune(&mut self, now_ms: u64) {
        self.challenges
            .retain(|_, issued| issued.forget_at_ms > now_ms);
    }
}

/// Every node's ledger.
#[derive(Default)]
pub struct Ledger {
    nodes: Mutex<HashMap<PublicKey, Arc<Mutex<NodeLedger>>>>,
}

impl Ledger {
    /// The ledger of `node` (created empty on first use).
    pub fn node(&self, node: &PublicKey) -> Arc<Mutex<NodeLedger>> {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        nodes.entry(*node).or_default().clone()
    }
}

/// Locks a node ledger. Every update is a single state transition made after all fallible
/// work, so a panic elsewhere cannot leave it half-written and poisoning can be ignored.
pub fn lock(ledger: &Mutex<NodeLedger>) -> MutexGuard<'_, NodeLedger> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}
