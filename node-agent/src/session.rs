//! The agent's side of the proof session: connect, say hello with a fresh session key,
//! answer challenges, keep every answer in the outbox until its receipt arrives, and
//! reconnect with backoff whenever the stream ends.

use crate::metrics::{AgentMetrics, SessionState};
use crate::outbox::Outbox;
use crate::roles::Work;
use crate::roles::gpu::{Computed, ComputedChain};
use backon::{BackoffBuilder, ExponentialBuilder};
use depin_proof::entropy::ChallengeId;
use depin_proof::gpu::{ChainWork, GpuWork};
use depin_proof::identity::{NodeKey, PublicKey};
use depin_proof::receipt::ProofKind;
use depin_proof::session::{ServerNonce, SessionHello};
use depin_proto::v1::{self, agent_message::Body as Out, verifier_message::Body as In};
use depin_proto::wire;
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
    /// Where unacknowledged storage responses are kept across restarts.
    pub outbox_dir: Option<std::path::PathBuf>,
    /// The verifier key from the ConfigMap: a verifier showing another is an impostor and
    /// is never spoken to (nothing is sent, the outbox is kept). None: any key.
    pub pinned_verifier: Option<PublicKey>,
}

/// Results of blocking work, delivered to whichever connection is live when they finish.
pub(crate) enum Done {
    /// A storage response, ready to send.
    Storage {
        /// The challenge.
        challenge: ChallengeId,
        /// The signed response.
        message: v1::AgentMessage,
        /// When the challenge arrived.
        at: Instant,
    },
    /// A computed GPU product, to commit to.
    Gpu {
        /// The challenge.
        challenge: ChallengeId,
        /// C, its tree and the measured throughput.
        computed: Box<Computed>,
        /// The key of the session the challenge arrived on.
        session_key: Arc<NodeKey>,
        /// When the challenge arrived.
        at: Instant,
    },
    /// A computed GPU chain, to commit to.
    Chain {
        /// The challenge.
        challenge: ChallengeId,
        /// The stages, their trees and the measured throughput.
        computed: Box<ComputedChain>,
        /// The key of the session the challenge arrived on.
        session_key: Arc<NodeKey>,
        /// When the challenge arrived.
        at: Instant,
    },
    /// A signed report the agent sends unprompted (meter reading, beacon or witness).
    Report {
        /// The id its receipt will carry.
        challenge: ChallengeId,
        /// Which proof.
        kind: ProofKind,
        /// The message.
        message: v1::AgentMessage,
    },
    /// The work failed.
    Failed {
        /// The challenge.
        challenge: ChallengeId,
        /// Why.
        error: String,
    },
}

/// What outlives one connection.
pub(crate) struct Memory {
    /// Answers waiting for receipts.
    pub(crate) outbox: Outbox,
    /// Challenges being computed.
    pub(crate) in_flight: HashSet<ChallengeId>,
    /// GPU products kept until their receipt, with the session key that commits to them.
    pub(crate) gpu: HashMap<ChallengeId, (Arc<GpuWork>, Arc<NodeKey>)>,
    /// GPU chains kept until their receipt, with the session key that commits to them.
    pub(crate) chains: HashMap<ChallengeId, (Arc<ChainWork>, Arc<NodeKey>)>,
    /// Where finished work is sent.
    pub(crate) done_tx: mpsc::UnboundedSender<Done>,
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

pub(crate) fn agent_message(body: Out) -> v1::AgentMessage {
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
    let outbox = match &prover.outbox_dir {
        Some(dir) => Outbox::persistent(dir).unwrap_or_else(|err| {
            tracing::warn!(%err, dir = %dir.display(), "outbox directory unusable; unacknowledged proofs are kept in memory only");
            Outbox::default()
        }),
        None => Outbox::default(),
    };
    let mut memory = Memory {
        outbox,
        in_flight: HashSet::new(),
        gpu: HashMap::new(),
        chains: HashMap::new(),
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
    match &prover.work {
        Work::Meter(meter) => start_meter(meter, &memory.done_tx, &prover.metrics, &shutdown),
        Work::Hotspot(hotspot) => {
            tokio::spawn(hotspot.clone().listen(
                memory.done_tx.clone(),
                prover.metrics.clone(),
                shutdown.clone(),
            ));
        }
        Work::Storage(_) | Work::Gpu(_) => {}
    }
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

/// Queues the readings a previous run left unreceipted, then starts polling the meter;
/// readings reach whichever connection is live (or wait for the next one).
fn start_meter(
    meter: &Arc<crate::roles::meter::MeterRole>,
    done: &mpsc::UnboundedSender<Done>,
    metrics: &AgentMetrics,
    shutdown: &watch::Receiver<bool>,
) {
    match meter.pending() {
        Ok(pending) => {
            for (challenge, message) in pending {
                let _ = done.send(Done::Report {
                    challenge,
                    kind: ProofKind::Meter,
                    message,
                });
            }
        }
        Err(err) => tracing::error!(%err, "cannot read pending meter readings"),
    }
    tokio::spawn(
        meter
            .clone()
            .run(done.clone(), metrics.clone(), shutdown.clone()),
    );
}

impl Prover {
    pub(crate) fn node(&self) -> PublicKey {
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
        if let Some(pinned) = self.pinned_verifier.filter(|p| *p != verifier) {
            tracing::error!(shown = %verifier, pinned = %pinned, "the verifier shows another key than the pinned one; not speaking to it (impostor?)");
            self.metrics.impostors.inc();
            return Err(lost(
                false,
                format!("verifier key {verifier} is not the pinned {pinned}"),
            ));
        }
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
        let hello = SessionHello::sign(
            &self.key,
            &session_key.public(),
            ServerNonce(nonce),
            &verifier,
        );
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
}
