//! The session layer, the only one that talks to agents: the tonic service and one task
//! per agent connection (nonce → hello → challenges when due → decode each message, run
//! its rule from `decide/`, carry the outcome out → receipts once durable). Protobuf,
//! channels, metrics and receipt signing live here.

pub mod deadlines;
pub mod limits;
mod meter;
mod poc;
mod respond;
pub(crate) mod rounds;
pub mod seal;

use super::Verifier;
use super::now_ms;
use super::state::index::NodeEntry;
use super::state::ledger::IssuedChain;
use super::state::ledger::{self, Challenge, NodeLedger, RETENTION_MS};
use super::state::schedule::{Rtt, Schedule};
use depin_proof::RejectReason;
use depin_proof::gpu::ChainChallenge;
use depin_proof::identity::PublicKey;
use depin_proof::session::{HelloContext, ServerNonce, Session, verify_hello};
use depin_proof::storage::StorageChallenge;
use depin_proto::config::Role;
use depin_proto::v1::{self, agent_message::Body as In, verifier_message::Body as Out};
use depin_proto::{gpu_wire, wire};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Messages buffered towards one agent before the session waits for it.
const OUTBOUND_BUFFER: usize = 64;

/// Where a session's messages to its agent go.
pub type Outbound = mpsc::Sender<Result<v1::VerifierMessage, Status>>;

/// The gRPC service.
pub struct VerifierService {
    verifier: Arc<Verifier>,
}

impl VerifierService {
    /// Serves `verifier`.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self { verifier }
    }
}

#[tonic::async_trait]
impl v1::verifier_server::Verifier for VerifierService {
    type SessionStream = ReceiverStream<Result<v1::VerifierMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<v1::AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let v = &self.verifier;
        // A session slot is taken only once the hello is verified (in `run`); until then
        // the connection holds one of the few handshake slots, for at most the hello
        // timeout.
        v.metrics
            .session_limit
            .set(i64::try_from(v.limits.fit(v.index.len())).unwrap_or(i64::MAX));
        let Ok(handshake) = v.limits.handshakes().clone().try_acquire_owned() else {
            v.metrics
                .sessions_refused
                .with_label_values(&["HandshakesAtCapacity"])
                .inc();
            return Err(Status::resource_exhausted(
                "too many connections are saying hello; retry later",
            ));
        };
        let (tx, rx) = mpsc::channel(OUTBOUND_BUFFER);
        tokio::spawn(run(v.clone(), request.into_inner(), tx, handshake));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn ping(
        &self,
        request: Request<v1::PingRequest>,
    ) -> Result<Response<v1::PingReply>, Status> {
        Ok(Response::new(v1::PingReply {
            payload: request.into_inner().payload,
            server_time_ms: now_ms(),
        }))
    }
}

/// Wraps a body for the wire.
fn message(body: Out) -> v1::VerifierMessage {
    v1::VerifierMessage { body: Some(body) }
}

/// Wraps a receipt (and the original one, for a Replay) for the wire.
fn receipt_message(
    receipt: &depin_proof::receipt::Receipt,
    original: Option<&depin_proof::receipt::Receipt>,
) -> v1::VerifierMessage {
    message(Out::Receipt(wire::receipt_to_wire(receipt, original)))
}

/// How often a session looks for sectors whose seal audit has passed.
const SEAL_POLL_MS: u64 = 250;

/// Refuses a hello: counted under the node's kind (Unknown when no CR has the key).
fn refuse(v: &Verifier, kind: &str, reason: RejectReason) -> Status {
    v.metrics.count(kind, Err(reason));
    Status::unauthenticated(format!("{}: {reason}", reason.as_str()))
}

async fn run(
    v: Arc<Verifier>,
    mut inbound: Streaming<v1::AgentMessage>,
    out: Outbound,
    handshake: OwnedSemaphorePermit,
) {
    let nonce = ServerNonce::random();
    let hello = v1::ServerHello {
        nonce: nonce.0.to_vec(),
        verifier_key: v.public_key().as_bytes().to_vec(),
        leaf_size: v.settings.storage.leaf_size,
        server_time_ms: now_ms(),
    };
    if out
        .send(Ok(message(Out::ServerHello(hello))))
        .await
        .is_err()
    {
        return;
    }
    let (session, entry) = match accept(&v, &mut inbound, &nonce).await {
        Ok(accepted) => accepted,
        Err(status) => {
            drop(handshake);
            let _ = out.send(Err(status)).await;
            return;
        }
    };
    drop(handshake);
    // One live session per node: the newest replaces the one before (an agent that
    // restarted must not wait for its old connection to time out), and takes over its
    // slot once it has ended.
    let (claim, replaced, took_over) = v.live.claim(&session.node);
    let permit = if took_over {
        tokio::time::timeout(
            v.settings.hello_timeout,
            v.limits.sessions().clone().acquire_owned(),
        )
        .await
        .ok()
        .and_then(Result::ok)
    } else {
        v.limits.sessions().clone().try_acquire_owned().ok()
    };
    let Some(_permit) = permit else {
        v.live.release(&session.node, claim);
        v.metrics
            .sessions_refused
            .with_label_values(&["AtCapacity"])
            .inc();
        let _ = out
            .send(Err(Status::resource_exhausted(
                "verifier is at its session limit; retry later",
            )))
            .await;
        return;
    };
    let kind = entry.id.kind();
    tracing::info!(node = %entry.id, session_key = %session.session_key, "session opened");
    let gauge = v.metrics.active_sessions.with_label_values(&[kind]);
    gauge.inc();
    let welcome = v1::Welcome {
        kind: kind.into(),
        namespace: entry.id.namespace.clone(),
        name: entry.id.name.clone(),
    };
    if out.send(Ok(message(Out::Welcome(welcome)))).await.is_ok() {
        let mut schedule = Schedule::new(v.started_ms);
        if entry.id.role == Role::Gpu {
            schedule.start_gpu_rounds(now_ms(), v.gpu_interval_ms());
        }
        if entry.id.role == Role::Hotspot {
            // A fixed per-node offset: a reconnect inside an interval cannot beacon twice.
            let key = session.node.as_bytes();
            let offset = u64::from_le_bytes([
                key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
            ]);
            let interval = v.poc_params(&entry.reward_policy).beacon_interval_ms;
            schedule.start_beacons(now_ms(), interval, offset);
        }
        let live = Live {
            replaced,
            ledger: v.ledger.node(&session.node),
            schedule,
            bucket: TokenBucket::new(v.settings.session_rate, v.settings.session_burst),
            rtt: Rtt::default(),
            v: v.clone(),
            session,
            out,
        };
        let reason = live.run(inbound).await;
        tracing::info!(node = %entry.id, %reason, "session closed");
    }
    v.live.release(&entry.key, claim);
    gauge.dec();
}

/// The live session of each node, so a node has at most one.
#[derive(Default)]
pub struct LiveSessions {
    next: std::sync::atomic::AtomicU64,
    by_node: Mutex<HashMap<PublicKey, (u64, oneshot::Sender<()>)>>,
}

impl LiveSessions {
    /// Makes a new session `node`'s live one, ending the previous one; returns the claim
    /// (for [`Self::release`]), what fires when a newer session replaces this one, and
    /// whether it replaced one.
    fn claim(&self, node: &PublicKey) -> (u64, oneshot::Receiver<()>, bool) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (replace, replaced) = oneshot::channel();
        let previous = self
            .by_node
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(*node, (id, replace));
        let took_over = previous.is_some();
        if let Some((_, end)) = previous {
            let _ = end.send(());
        }
        (id, replaced, took_over)
    }

    /// Forgets `node`'s live session if it is still claim `id`.
    fn release(&self, node: &PublicKey, id: u64) {
        let mut by_node = self.by_node.lock().unwrap_or_else(PoisonError::into_inner);
        if by_node.get(node).is_some_and(|(live, _)| *live == id) {
            by_node.remove(node);
        }
    }
}

/// Reads and checks the hello: the first message, within the timeout, from a known node.
async fn accept(
    v: &Verifier,
    inbound: &mut Streaming<v1::AgentMessage>,
    nonce: &ServerNonce,
) -> Result<(Session, NodeEntry), Status> {
    let timeout = v.settings.hello_timeout;
    let first = match tokio::time::timeout(timeout, inbound.message()).await {
        Err(_) => {
            v.metrics
                .sessions_refused
                .with_label_values(&["HelloTimeout"])
                .inc();
            return Err(Status::deadline_exceeded("no hello in time"));
        }
        Ok(result) => result?.ok_or_else(|| Status::cancelled("closed before the hello"))?,
    };
    let Some(In::Hello(hello)) = first.body else {
        v.metrics
            .sessions_refused
            .with_label_values(&["BadHello"])
            .inc();
        return Err(Status::invalid_argument(
            "the first message must be a Hello",
        ));
    };
    // After an operator restart the index is empty until its watches have listed once;
    // refusing meanwhile would bounce every agent as UnknownNode.
    if tokio::time::timeout(timeout, v.index.wait_ready())
        .await
        .is_err()
    {
        return Err(Status::unavailable("node index not loaded yet; retry"));
    }
    let hello = wire::hello_from_wire(&hello).map_err(|reason| refuse(v, "Unknown", reason))?;
    let kind = v
        .index
        .lookup(&hello.node)
        .map_or("Unknown", |e| e.id.kind());
    let session = verify_hello(
        &hello,
        &HelloContext {
            nonce,
            known_nodes: &v.index,
            verifier: &v.public_key(),
        },
    )
    .map_err(|reason| refuse(v, kind, reason))?;
    let entry = v
        .index
        .lookup(&session.node)
        .ok_or_else(|| refuse(v, kind, RejectReason::UnknownNode))?;
    Ok((session, entry))
}

/// Per-session token bucket: a flooding agent is cut off with RESOURCE_EXHAUSTED.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One authenticated session (its message handling is in `respond.rs`).
struct Live {
    /// Fires when a newer session of the same node takes over.
    replaced: oneshot::Receiver<()>,
    v: Arc<Verifier>,
    session: Session,
    out: Outbound,
    ledger: Arc<Mutex<NodeLedger>>,
    schedule: Schedule,
    bucket: TokenBucket,
    /// Round trips measured on this session (GPU workers), for chain deadlines.
    rtt: Rtt,
}

impl Live {
    /// Runs until the agent leaves or the session must end; returns why it ended.
    async fn run(mut self, mut inbound: Streaming<v1::AgentMessage>) -> String {
        let mut shutdown = std::pin::pin!(self.v.shutdown.signal());
        loop {
            let wake = self.next_wake();
            let ended = tokio::select! {
                received = inbound.message() => match received {
                    Ok(Some(m)) if self.bucket.take() => self.handle(m).await.err(),
                    Ok(Some(_)) => {
                        self.v.metrics.sessions_refused.with_label_values(&["RateLimited"]).inc();
                        Some(Status::resource_exhausted("RateLimited: too many messages; slow down and reconnect"))
                    }
                    Ok(None) => return "agent closed the stream".into(),
                    Err(status) => return format!("stream error: {status}"),
                },
                () = tokio::time::sleep_until(wake) => self.tick().await.err(),
                () = self.out.closed() => return "agent went away".into(),
                _ = &mut self.replaced => Some(Status::aborted("Replaced: a newer session of this node took over")),
                () = &mut shutdown => Some(Status::unavailable("verifier shutting down; reconnect")),
            };
            if let Some(status) = ended {
                let reason = status.message().to_string();
                let _ = self.out.send(Err(status)).await;
                return reason;
            }
        }
    }

    fn next_wake(&self) -> Instant {
        let now = now_ms();
        let (due, auditing) = {
            let ledger = ledger::lock(&self.ledger);
            let due = self.schedule.next_due(
                ledger.storage.live_sectors(),
                &self.v.settings.storage,
                &self.v.settings.entropy,
                now,
            );
            (due, !ledger.unsealed.is_empty())
        };
        // Nothing due: look again in a minute (new commitments arrive as messages anyway),
        // or soon while a sector's seal audit may pass and make it due.
        let idle = if auditing { SEAL_POLL_MS } else { 60_000 };
        let wait = due.map_or(idle, |at| at.saturating_sub(now).min(idle));
        Instant::now() + Duration::from_millis(wait)
    }

    async fn send(&self, body: v1::VerifierMessage) -> Result<(), Status> {
        self.out
            .send(Ok(body))
            .await
            .map_err(|_| Status::cancelled("agent went away"))
    }

    /// Issues what is due and notes misses.
    async fn tick(&mut self) -> Result<(), Status> {
        let (v, node, now) = (self.v.clone(), self.session.node, now_ms());
        let entry = v
            .index
            .lookup(&node)
            .ok_or_else(|| Status::unauthenticated("UnknownNode: the node CR is gone"))?;
        let kind = entry.id.kind();
        let mut outgoing = Vec::new();
        {
            let mut ledger = ledger::lock(&self.ledger);
            ledger.prune(now);
            let params = &v.settings.storage;
            for (sector, deadline) in self.schedule.due_storage(
                ledger.storage.live_sectors(),
                params,
                &v.settings.entropy,
                now,
            ) {
                let challenge = StorageChallenge::for_deadline(params, &v.beacon, sector, deadline);
                let id = challenge.id(&node);
                if ledger.is_settled(&id) {
                    continue; // answered on an earlier session of this node
                }
                ledger.issue(
                    id,
                    Challenge::Storage(challenge),
                    &self.session,
                    deadline.closes_at_ms + RETENTION_MS,
                );
                self.schedule.watch_close(deadline.closes_at_ms, id);
                let wire =
                    wire::storage_challenge_to_wire(&challenge, id, params.challenges_per_deadline);
                outgoing.push(message(Out::StorageChallenge(wire)));
            }
            // GPU workers: keep the round trip measured, so chain deadlines can allow it.
            if entry.id.role == Role::Gpu && self.rtt.probe_due(now) {
                let nonce = ServerNonce::random().0;
                self.rtt.probe_sent(nonce, now);
                outgoing.push(message(Out::RttProbe(v1::RttProbe {
                    nonce: nonce.to_vec(),
                })));
            }
            // One challenge per node per round, whichever session asks first: a reconnect
            // loop or a second session earns no extra round.
            if let Some(round) = self
                .schedule
                .due_gpu_round(now)
                .filter(|r| !ledger.gpu_rounds.contains_key(r))
            {
                // The chain of the class the worker claims: work sized so that only
                // hardware of that class finishes it by the deadline, seeded per node.
                if let Some(class) = v.gpu_class(&entry) {
                    let challenge =
                        ChainChallenge::issue(&v.beacon, &class, now, ServerNonce::random().0);
                    let id = challenge.id(&node);
                    let rtt_ms = self.rtt.median_ms();
                    let closes = now + class.close_ms() + 1;
                    // Kept at least until the round is accounted, which asks whether it
                    // settled.
                    let accounted_at = (round + 1)
                        .saturating_mul(v.gpu_interval_ms())
                        .saturating_add(v.gpu_round_grace_ms());
                    let wire = gpu_wire::chain_challenge_to_wire(
                        &challenge,
                        id,
                        class.deadline_ms(rtt_ms),
                        &class.name,
                    );
                    ledger.issue(
                        id,
                        Challenge::Gpu(Box::new(IssuedChain {
                            challenge,
                            class,
                            rtt_ms,
                        })),
                        &self.session,
                        closes.max(accounted_at) + RETENTION_MS,
                    );
                    ledger.gpu_rounds.insert(round, id);
                    self.schedule.watch_close(closes, id);
                    outgoing.push(message(Out::GpuChallenge(wire)));
                }
            }
            let beacon_interval = v.poc_params(&entry.reward_policy).beacon_interval_ms;
            if self.schedule.due_beacon(now, beacon_interval) {
                let wire = wire::beacon_challenge_to_wire(&v.beacon.current(now));
                outgoing.push(message(Out::BeaconChallenge(wire)));
            }
            for id in self.schedule.closed(now) {
                // Counted here for the dashboard; what a miss costs is the deadline
                // sweep's (`storage_deadlines`), which sees every node, connected or not.
                if ledger.mark_missed(&id) {
                    v.metrics.deadlines_missed.with_label_values(&[kind]).inc();
                }
            }
        }
        for challenge in outgoing {
            v.metrics.challenges_issued.with_label_values(&[kind]).inc();
            self.send(challenge).await?;
        }
        Ok(())
    }
}
