//! The agent's side of the proof session: connect, say hello with a fresh session key,
//! answer challenges, keep every answer in the outbox until its receipt arrives, and
//! reconnect with backoff whenever the stream ends.

use crate::metrics::{AgentMetrics, SessionState};
use crate::outbox::Outbox;
use crate::roles::Work;
use crate::roles::gpu::Computed;
use backon::{BackoffBuilder, ExponentialBuilder};
use depin_proof::RejectReason;
use depin_proof::entropy::ChallengeId;
use depin_proof::gpu::GpuWork;
use depin_proof::identity::{NodeKey, PublicKey};
use depin_proof::receipt::{ProofKind, Receipt};
use depin_proof::session::{ServerNonce, SessionHello};
use depin_proto::v1::{self, agent_message::Body as Out, verifier_message::Body as In};
use depin_proto::wire::{self, Filed};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

/// Largest message either side may send (matches the verifier's limit).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Everything a session needs.
pub struct Prover {
    /// Verifier endpoint URL.
    pub endpoint: String,
    /// The node's long-term key.
    pub key: Arc<NodeKey>,
    /// The role's work.
    pub work: Work,
    /// Metrics.
    pub metrics: AgentMetrics,
}

/// Results of blocking work, delivered to whichever connection is live when they finish.
enum Done {
    Storage {
        challenge: ChallengeId,
        message: v1::AgentMessage,
        at: Instant,
    },
    Gpu {
        challenge: ChallengeId,
        computed: Box<Computed>,
        session_key: Arc<NodeKey>,
        at: Instant,
    },
    Failed {
        challenge: ChallengeId,
        error: String,
    },
}

/// What outlives one connection.
struct Memory {
    outbox: Outbox,
    in_flight: HashSet<ChallengeId>,
    gpu: HashMap<ChallengeId, (Arc<GpuWork>, Arc<NodeKey>)>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
}

enum Ended {
    Shutdown,
    Lost {
        established: bool,
        refused: bool,
        why: String,
    },
}

fn lost(established: bool, why: impl std::fmt::Display) -> Ended {
    Ended::Lost {
        established,
        refused: false,
        why: why.to_string(),
    }
}

fn agent_message(body: Out) -> v1::AgentMessage {
    v1::AgentMessage { body: Some(body) }
}

/// Resolves once `shutdown` is true (or its sender is gone). The guard `wait_for` returns
/// is dropped here, never held across an await of the caller.
async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Runs sessions until `shutdown` turns true.
pub async fn run(prover: Prover, mut shutdown: watch::Receiver<bool>) {
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let mut memory = Memory {
        outbox: Outbox::default(),
        in_flight: HashSet::new(),
        gpu: HashMap::new(),
        done_tx,
        done_rx,
    };
    let backoff = || {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(30))
            .with_jitter()
            .without_max_times()
            .build()
    };
    let mut delays = backoff();
    loop {
        prover.metrics.set_session_state(SessionState::Connecting);
        match prover.connect(&mut memory, &mut shutdown).await {
            Ended::Shutdown => break,
            Ended::Lost {
                established,
                refused,
                why,
            } => {
                if established {
                    delays = backoff();
                }
                let state = if refused {
                    SessionState::Refused
                } else {
                    SessionState::Disconnected
                };
                prover.metrics.set_session_state(state);
                let delay = delays.next().unwrap_or(Duration::from_secs(30));
                tracing::warn!(reason = %why, retry_in = ?delay, pending = memory.outbox.len(), "verifier session ended");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop_requested(&mut shutdown) => break,
                }
            }
        }
    }
    prover.metrics.set_session_state(SessionState::Disconnected);
}

impl Prover {
    fn node(&self) -> PublicKey {
        self.key.public()
    }

    async fn connect(&self, memory: &mut Memory, shutdown: &mut watch::Receiver<bool>) -> Ended {
        let endpoint = match tonic::transport::Endpoint::from_shared(self.endpoint.clone()) {
            Ok(e) => e
                .connect_timeout(Duration::from_secs(5))
                .http2_keep_alive_interval(Duration::from_secs(30)),
            Err(err) => {
                return lost(
                    false,
                    format!("bad verifier endpoint {}: {err}", self.endpoint),
                );
            }
        };
        let channel = match endpoint.connect().await {
            Ok(channel) => channel,
            Err(err) => return lost(false, format!("connecting to {}: {err}", self.endpoint)),
        };
        let mut client = v1::verifier_client::VerifierClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (tx, rx) = mpsc::channel(64);
        let mut inbound = match client.session(ReceiverStream::new(rx)).await {
            Ok(response) => response.into_inner(),
            Err(status) => return lost(false, status),
        };
        let (session_key, verifier) = match self.hello(&mut inbound, &tx).await {
            Ok(accepted) => accepted,
            Err(ended) => return ended,
        };
        self.metrics.set_session_state(SessionState::Established);
        if let Work::Storage(storage) = &self.work {
            let commitments = storage
                .commitments()
                .iter()
                .map(wire::commitment_to_wire)
                .collect();
            let batch = agent_message(Out::SectorCommitments(v1::SectorCommitments {
                commitments,
            }));
            if tx.send(batch).await.is_err() {
                return lost(true, "stream closed");
            }
        }
        for message in memory.outbox.pending() {
            if tx.send(message).await.is_err() {
                return lost(true, "stream closed");
            }
        }
        loop {
            tokio::select! {
                received = inbound.message() => match received {
                    Ok(Some(m)) => self.on_message(m, &session_key, &verifier, memory, &tx).await,
                    Ok(None) => return lost(true, "verifier closed the stream"),
                    Err(status) => return lost(true, status),
                },
                Some(done) = memory.done_rx.recv() => self.on_done(done, memory, &tx).await,
                () = stop_requested(shutdown) => return Ended::Shutdown,
            }
            self.metrics
                .outbox
                .set(i64::try_from(memory.outbox.len()).unwrap_or(i64::MAX));
        }
    }

    /// ServerHello → Hello (fresh session key) → Welcome; returns the session key and the
    /// verifier's receipt key.
    async fn hello(
        &self,
        inbound: &mut tonic::Streaming<v1::VerifierMessage>,
        tx: &mpsc::Sender<v1::AgentMessage>,
    ) -> Result<(Arc<NodeKey>, PublicKey), Ended> {
        let server = match inbound.message().await {
            Ok(Some(v1::VerifierMessage {
                body: Some(In::ServerHello(h)),
            })) => h,
            Ok(_) => return Err(lost(false, "verifier did not start with a ServerHello")),
            Err(status) => return Err(lost(false, status)),
        };
        let nonce = <[u8; 32]>::try_from(server.nonce.as_slice())
            .map_err(|_| lost(false, "bad server nonce"))?;
        let verifier = wire::key_from_wire(&server.verifier_key)
            .map_err(|_| lost(false, "bad verifier key"))?;
        if matches!(self.work, Work::Storage(_))
            && server.leaf_size != crate::roles::storage::LEAF_SIZE
        {
            tracing::error!(
                verifier = server.leaf_size,
                ours = crate::roles::storage::LEAF_SIZE,
                "leaf sizes differ; commitments will be refused"
            );
        }
        let session_key = Arc::new(NodeKey::generate());
        let hello = SessionHello::sign(&self.key, &session_key.public(), ServerNonce(nonce));
        let role = self.work.role();
        let message = agent_message(Out::Hello(wire::hello_to_wire(
            &hello,
            role,
            env!("CARGO_PKG_VERSION"),
        )));
        tx.send(message)
            .await
            .map_err(|_| lost(false, "stream closed before the hello"))?;
        match inbound.message().await {
            Ok(Some(v1::VerifierMessage {
                body: Some(In::Welcome(w)),
            })) => {
                tracing::info!(kind = %w.kind, namespace = %w.namespace, name = %w.name, verifier = %verifier, "verifier session established");
                Ok((session_key, verifier))
            }
            Ok(_) => Err(lost(false, "verifier did not answer the hello")),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                tracing::error!(reason = %status.message(), node = %self.node(), "verifier refused this node");
                Err(Ended::Lost {
                    established: false,
                    refused: true,
                    why: status.message().to_string(),
                })
            }
            Err(status) => Err(lost(false, status)),
        }
    }

    async fn on_message(
        &self,
        message: v1::VerifierMessage,
        session_key: &Arc<NodeKey>,
        verifier: &PublicKey,
        memory: &mut Memory,
        tx: &mpsc::Sender<v1::AgentMessage>,
    ) {
        match message.body {
            Some(In::StorageChallenge(w)) => {
                self.on_storage_challenge(&w, session_key, memory, tx).await
            }
            Some(In::GpuChallenge(w)) => self.on_gpu_challenge(&w, session_key, memory, tx).await,
            Some(In::RowRequest(w)) => self.on_row_request(&w, memory, tx).await,
            Some(In::Receipt(w)) => self.on_receipt(&w, verifier, memory),
            Some(In::CommitmentReceipts(r)) => {
                let refused: Vec<String> = r
                    .receipts
                    .iter()
                    .filter(|c| !c.accepted)
                    .map(|c| format!("{}: {}", c.sector, c.reason))
                    .collect();
                if refused.is_empty() {
                    tracing::info!(sectors = r.receipts.len(), "sector commitments accepted");
                } else {
                    tracing::error!(?refused, "sector commitments refused");
                }
            }
            Some(In::ServerHello(_) | In::Welcome(_)) | None => {}
        }
    }

    /// A challenge already answered (or being answered) is not computed again; a pending
    /// answer is simply re-sent.
    async fn seen(
        &self,
        id: &ChallengeId,
        memory: &Memory,
        tx: &mpsc::Sender<v1::AgentMessage>,
    ) -> bool {
        if let Some(pending) = memory.outbox.get(id) {
            let _ = tx.send(pending.message.clone()).await;
            return true;
        }
        memory.in_flight.contains(id)
    }

    async fn on_storage_challenge(
        &self,
        w: &v1::StorageChallenge,
        session_key: &Arc<NodeKey>,
        memory: &mut Memory,
        tx: &mpsc::Sender<v1::AgentMessage>,
    ) {
        let (Work::Storage(storage), Ok((challenge, k)), Ok(id)) = (
            &self.work,
            wire::storage_challenge_from_wire(w),
            wire::challenge_from_wire(&w.challenge_id),
        ) else {
            tracing::warn!("ignoring a storage challenge this agent cannot answer");
            return;
        };
        if self.seen(&id, memory, tx).await {
            return;
        }
        memory.in_flight.insert(id);
        let (storage, key, done, at) = (
            storage.clone(),
            session_key.clone(),
            memory.done_tx.clone(),
            Instant::now(),
        );
        tokio::task::spawn_blocking(move || {
            let result = storage.answer(&challenge, k, &key).map(|response| {
                let filed = Filed {
                    challenge: id,
                    session_key: key.public(),
                    message: response,
                };
                agent_message(Out::StorageResponse(wire::storage_response_to_wire(&filed)))
            });
            let _ = done.send(match result {
                Ok(message) => Done::Storage {
                    challenge: id,
                    message,
                    at,
                },
                Err(err) => Done::Failed {
                    challenge: id,
                    error: format!("sector {}: {err}", challenge.sector.0),
                },
            });
        });
    }

    async fn on_gpu_challenge(
        &self,
        w: &v1::GpuChallenge,
        session_key: &Arc<NodeKey>,
        memory: &mut Memory,
        tx: &mpsc::Sender<v1::AgentMessage>,
    ) {
        let (Work::Gpu(gpu), Ok(challenge), Ok(id)) = (
            &self.work,
            wire::gpu_challenge_from_wire(w),
            wire::challenge_from_wire(&w.challenge_id),
        ) else {
            tracing::warn!("ignoring a GPU challenge this agent cannot answer");
            return;
        };
        if self.seen(&id, memory, tx).await {
            return;
        }
        memory.in_flight.insert(id);
        let (gpu, key, done, at) = (
            gpu.clone(),
            session_key.clone(),
            memory.done_tx.clone(),
            Instant::now(),
        );
        tokio::task::spawn_blocking(move || {
            let _ = done.send(match gpu.compute(&challenge) {
                Some(computed) => Done::Gpu {
                    challenge: id,
                    computed: Box::new(computed),
                    session_key: key,
                    at,
                },
                None => Done::Failed {
                    challenge: id,
                    error: format!("matrix size {} out of range", challenge.n),
                },
            });
        });
    }

    async fn on_row_request(
        &self,
        w: &v1::RowRequest,
        memory: &mut Memory,
        tx: &mpsc::Sender<v1::AgentMessage>,
    ) {
        let Ok(request) = wire::row_request_from_wire(w) else {
            return;
        };
        let Some((work, key)) = memory.gpu.get(&request.challenge) else {
            tracing::warn!(challenge = %request.challenge.to_hex(), "row request for a product this agent does not hold");
            return;
        };
        let opening = work.open(&request, key);
        let message = agent_message(Out::GpuOpening(wire::gpu_opening_to_wire(
            &key.public(),
            &opening,
        )));
        let at = memory
            .outbox
            .get(&request.challenge)
            .map_or_else(Instant::now, |p| p.challenge_at);
        memory
            .outbox
            .put(request.challenge, ProofKind::Gpu, message.clone(), at);
        let _ = tx.send(message).await;
    }

    fn on_receipt(&self, w: &v1::Receipt, verifier: &PublicKey, memory: &mut Memory) {
        let receipt = match wire::receipt_from_wire(self.node(), w) {
            Ok(r) if r.verify(verifier) => r,
            _ => {
                tracing::warn!("ignoring a receipt that does not verify under the verifier key");
                return;
            }
        };
        // A Replay carries the original decision; that is the one that counts.
        let original = w
            .original
            .as_deref()
            .and_then(|o| wire::receipt_from_wire(self.node(), o).ok());
        let decided: &Receipt = original
            .as_ref()
            .filter(|o| o.verify(verifier))
            .unwrap_or(&receipt);
        let Some(pending) = memory.outbox.settle(&receipt.challenge) else {
            return;
        };
        memory.gpu.remove(&receipt.challenge);
        let proof = receipt.proof.as_str();
        self.metrics
            .challenge_latency
            .with_label_values(&[proof])
            .observe(pending.challenge_at.elapsed().as_secs_f64());
        match decided.verdict {
            Ok(()) => {
                self.metrics
                    .proofs_accepted
                    .with_label_values(&[proof])
                    .inc();
                let tally = decided.tally.unwrap_or_default();
                tracing::info!(proof, challenge = %receipt.challenge.to_hex(), accepted = tally.accepted, work_units = %tally.work_units, "proof accepted");
            }
            Err(reason) => {
                self.metrics
                    .proofs_rejected
                    .with_label_values(&[proof, reason.as_str()])
                    .inc();
                let level_is_warn = reason != RejectReason::UnknownChallenge;
                if level_is_warn {
                    tracing::warn!(proof, challenge = %receipt.challenge.to_hex(), %reason, reason_name = reason.as_str(), "proof rejected");
                } else {
                    tracing::info!(proof, challenge = %receipt.challenge.to_hex(), "verifier no longer knows this challenge (it restarted); dropping it");
                }
            }
        }
    }

    async fn on_done(&self, done: Done, memory: &mut Memory, tx: &mpsc::Sender<v1::AgentMessage>) {
        let (challenge, kind, message, at) = match done {
            Done::Storage {
                challenge,
                message,
                at,
            } => (challenge, ProofKind::Storage, message, at),
            Done::Gpu {
                challenge,
                computed,
                session_key,
                at,
            } => {
                let backend = match &self.work {
                    Work::Gpu(gpu) => gpu.backend.label(),
                    Work::Storage(_) => "cpu",
                };
                self.metrics
                    .gpu_tops
                    .with_label_values(&[backend])
                    .set(computed.tops);
                tracing::info!(
                    backend,
                    elapsed_ms = computed.elapsed.as_millis(),
                    tops = computed.tops,
                    "GPU challenge computed"
                );
                let commitment = computed.work.commit(&session_key);
                let message = agent_message(Out::GpuCommitment(wire::gpu_commitment_to_wire(
                    &session_key.public(),
                    &commitment,
                )));
                memory
                    .gpu
                    .insert(challenge, (Arc::new(computed.work), session_key));
                (challenge, ProofKind::Gpu, message, at)
            }
            Done::Failed { challenge, error } => {
                memory.in_flight.remove(&challenge);
                tracing::error!(%error, "cannot answer challenge");
                return;
            }
        };
        memory.in_flight.remove(&challenge);
        memory.outbox.put(challenge, kind, message.clone(), at);
        self.metrics
            .proofs_submitted
            .with_label_values(&[kind.as_str()])
            .inc();
        // If the stream is gone the message stays in the outbox for the next session.
        let _ = tx.send(message).await;
    }
}
