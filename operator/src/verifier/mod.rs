//! The verifier: the gRPC service agents prove their work to (runs on the leader only).
//!
//! Four layers, each importing only those above it in this list:
//! - `state/`: in-memory data (issued challenges per node in `ledger`, which keys belong to
//!   which node CR in `index`, the per-session `schedule`, meter chains, PoC rounds).
//! - `decide/`: PURE rules, one file per proof kind (+ `tally`): domain input, `now_ms` and
//!   narrow lookups in, an `Outcome` out. No protobuf, channels, metrics or clock.
//! - `persist/`: durable adapters (`sink` of `status.proofs`, `recorder`, kube `watch`).
//! - `session/`: the only code that talks to agents: tonic, hello, challenge issue, and
//!   carrying outcomes out (encode, wait for duplicates, count, sign receipts).
//!
//! `metrics` and `health` are the gauges both session and persist update; this file wires
//! it all together (`Settings`, `Verifier`, `serve`, `run`).

pub mod decide;
pub mod health;
pub mod key;
pub mod metrics;
pub mod persist;
pub mod session;
pub mod state;

use crate::Shutdown;
use crate::config::Config;
use depin_proof::RejectReason;
use depin_proof::entropy::{Beacon, ChallengeId, EntropyConfig};
use depin_proof::gpu::GpuParams;
use depin_proof::identity::{NodeKey, PublicKey};
use depin_proof::receipt::{ProofKind, Receipt, TallySnapshot};
use depin_proof::storage::StorageParams;
use metrics::VerifierMetrics;
use persist::recorder::{self, Recorder};
use persist::sink::{self, TallySink};
use persist::watch;
use state::index::NodeIndex;
use state::ledger::Ledger;
use state::meter::MeterBook;
use state::poc::PocBook;
use std::sync::Arc;
use std::time::Duration;

/// Largest message either side may send: a storage response opens k leaves of 16 KiB
/// (k = 46: 0.75 MiB); 16 MiB leaves room for larger k without inviting abuse.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Everything the verifier is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Storage proof parameters (period, deadlines, k; leaf size is the proof default).
    pub storage: StorageParams,
    /// GPU proof parameters.
    pub gpu: GpuParams,
    /// Time between GPU challenges on a session.
    pub gpu_interval: Duration,
    /// Beacon rotation.
    pub entropy: EntropyConfig,
    /// Proof-of-Coverage rules and the hotspot beacon interval (Helium's defaults), for
    /// hotspots whose RewardPolicy has no `spec.poc` of its own.
    pub poc: depin_proof::poc::PocParams,
    /// Most concurrent sessions.
    pub max_sessions: usize,
    /// Sustained messages per second one session may send.
    pub session_rate: f64,
    /// Messages one session may send in a burst.
    pub session_burst: u32,
    /// Shortest time between two status writes for one node.
    pub write_interval: Duration,
    /// First retry delay of a failed status write (doubling, at most 4 s).
    pub write_retry_delay: Duration,
    /// Retries of a failed status write before the session is cut (the agent resends).
    pub write_retries: usize,
    /// Time an agent has to send its hello.
    pub hello_timeout: Duration,
    /// Largest sector whose seal is audited before it is challenged (`seal::audit`).
    pub seal_audit_max_bytes: u64,
    /// The GPU classes workers are challenged with when their RewardPolicy lists none
    /// (the built-in cpu … flagship), slowest first.
    pub gpu_classes: Vec<depin_proof::gpu::GpuClass>,
}

/// The beacon tick when none is set: Helium's 60 s, or one storage deadline if shorter, so
/// short test periods (e.g. 60 s in 6 deadlines) work without a second flag.
fn default_tick_ms(config: &Config) -> u64 {
    let period = u64::try_from(config.storage_proving_period.as_millis()).unwrap_or(u64::MAX);
    let deadline = period / u64::from(config.storage_deadlines.max(1));
    depin_proof::entropy::DEFAULT_TICK_MS.min(deadline).max(1)
}

/// A configuration the verifier cannot work with.
#[derive(Debug, thiserror::Error)]
#[error("verifier settings: {0}")]
pub struct SettingsError(String);

impl Settings {
    /// The settings the operator's flags ask for.
    pub fn from_config(config: &Config) -> Result<Self, SettingsError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let settings = Self {
            storage: StorageParams {
                proving_period_ms: ms(config.storage_proving_period),
                deadlines_per_period: config.storage_deadlines,
                challenges_per_deadline: config.storage_challenges,
                // Filecoin's FaultDeclarationCutoff is 70 of a proving period's 2880 epochs
                // (35 min of 24 h); scaled with the period, so short test periods can
                // declare faults at all.
                fault_cutoff_ms: ms(config.storage_proving_period) / 2880 * 70,
                ..StorageParams::default()
            },
            gpu: GpuParams {
                n: config.gpu_matrix_n,
                sampled_rows: config.gpu_sampled_rows,
                deadline_ms: ms(config.gpu_deadline),
                min_fraction_of_declared: config.gpu_min_fraction,
                ..GpuParams::default()
            },
            gpu_interval: config.gpu_challenge_interval,
            entropy: EntropyConfig {
                tick_ms: config
                    .beacon_tick
                    .map_or_else(|| default_tick_ms(config), ms),
                lifespan_ms: ms(config.beacon_lifespan),
            },
            // Only the beacon interval is a flag (tests need minutes, not 6 h); the other
            // rules are Helium's unless the beaconer's RewardPolicy sets `spec.poc`.
            poc: depin_proof::poc::PocParams {
                beacon_interval_ms: ms(config.poc_beacon_interval),
                ..depin_proof::poc::PocParams::default()
            },
            max_sessions: config.max_sessions,
            session_rate: config.session_rate,
            session_burst: config.session_burst,
            write_interval: Duration::from_millis(config.status_write_interval_ms),
            // About 10 s of retries: rides out an API server blip, yet cuts the session
            // (so the agent reconnects and resends) soon after a real outage.
            write_retry_delay: Duration::from_millis(200),
            write_retries: 5,
            hello_timeout: Duration::from_secs(10),
            seal_audit_max_bytes: config.storage_seal_audit_max_bytes,
            gpu_classes: crate::rewards::policy::DEFAULT_GPU_CLASSES
                .iter()
                .filter_map(|(name, _)| depin_proof::gpu::GpuClass::built_in(name))
                .collect(),
        };
        settings.check()?;
        Ok(settings)
    }

    /// Cross-flag rules: every deadline must see its beacon tick before it closes, and GPU
    /// commitments must arrive while the challenge's entropy is still live.
    pub fn check(&self) -> Result<(), SettingsError> {
        let bad = |m: String| Err(SettingsError(m));
        let deadlines = u64::from(self.storage.deadlines_per_period.max(1));
        let shortest_deadline = self.storage.proving_period_ms / deadlines;
        if self.storage.deadlines_per_period == 0 || shortest_deadline == 0 {
            return bad(
                "--storage-deadlines must be between 1 and the proving period in ms".into(),
            );
        }
        if self.entropy.tick_ms == 0 || self.entropy.tick_ms > shortest_deadline {
            return bad(format!(
                "--beacon-tick ({} ms) must be positive and at most one storage deadline \
                 (--storage-proving-period / --storage-deadlines = {shortest_deadline} ms), or \
                 deadlines would close before their challenge entropy exists",
                self.entropy.tick_ms
            ));
        }
        if self.gpu.deadline_ms > self.entropy.lifespan_ms {
            return bad("--gpu-deadline must not exceed --beacon-lifespan".into());
        }
        if self.gpu.n == 0
            || self.gpu.n > depin_proof::gpu::MAX_MATRIX_N
            || self.gpu.sampled_rows == 0
        {
            return bad(
                "--gpu-matrix-n must be 1..=16384 and --gpu-sampled-rows at least 1".into(),
            );
        }
        if self.storage.challenges_per_deadline == 0
            || usize::try_from(self.storage.challenges_per_deadline)
                .map_or(true, |k| k > depin_proto::wire::MAX_OPENINGS)
        {
            return bad("--storage-challenges must be 1..=4096".into());
        }
        if self.session_rate.is_nan() || self.session_rate <= 0.0 || self.session_burst == 0 {
            return bad("--session-rate and --session-burst must be positive".into());
        }
        Ok(())
    }
}

/// The verifier's shared state.
pub struct Verifier {
    /// Its settings.
    pub settings: Settings,
    /// The beacon every challenge draws from (secret generated at start).
    pub beacon: Beacon,
    /// Which keys may open sessions.
    pub index: NodeIndex,
    /// Issued challenges and storage sector ledgers per node.
    pub ledger: Arc<Ledger>,
    /// Durable tallies.
    pub recorder: Recorder,
    /// Every meter's reading chain and the fleet's meter serials.
    pub meters: Arc<MeterBook>,
    /// Beacons waiting for their witnesses, and the PoC history.
    pub poc: PocBook<session::Outbound>,
    /// When this verifier started, unix ms (storage deadlines opening earlier are skipped).
    pub started_ms: u64,
    /// Metrics.
    pub metrics: VerifierMetrics,
    /// Per-node last-proof time and storage reputation.
    pub health: Arc<health::NodeHealth>,
    key: NodeKey,
    /// Session slots, and the handshake slots of connections that have not yet proven a
    /// node key: their own small budget, so a flood of unauthenticated connections cannot
    /// take the slots of real nodes.
    limits: session::limits::SessionLimits,
    /// The one live session of each node.
    live: session::LiveSessions,
    /// Set once every MeterBridge's recorded chain and claim is back in `meters`.
    meters_restored: tokio::sync::OnceCell<()>,
    /// Set once every HotspotGateway's recorded PoC history is back in `poc`.
    poc_restored: tokio::sync::OnceCell<()>,
    /// New sector roots waiting for their seal audit, and the queue's far end until the
    /// audit task (started by `serve`) takes it.
    seal_audits: tokio::sync::mpsc::UnboundedSender<session::seal::SealAudit>,
    seal_queue:
        std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<session::seal::SealAudit>>>,
    shutdown: Shutdown,
}

pub use session::limits::handshake_budget;

impl Verifier {
    /// A verifier with a fresh beacon secret and receipt key, metrics on `registry`.
    pub fn new(
        settings: Settings,
        index: NodeIndex,
        sink: Arc<dyn TallySink>,
        registry: &prometheus::Registry,
        shutdown: Shutdown,
    ) -> Result<Arc<Self>, prometheus::Error> {
        Self::with_key(
            settings,
            NodeKey::generate(),
            index,
            sink,
            registry,
            shutdown,
        )
    }

    /// [`Self::new`] signing receipts with `key` (the operator's verifier-key Secret, which
    /// agents pin).
    pub fn with_key(
        settings: Settings,
        key: NodeKey,
        index: NodeIndex,
        sink: Arc<dyn TallySink>,
        registry: &prometheus::Registry,
        shutdown: Shutdown,
    ) -> Result<Arc<Self>, prometheus::Error> {
        let metrics = VerifierMetrics::register(registry)?;
        // A fresh secret per start: challenges issued by a previous leader can no longer be
        // verified here, which the ledger's counting rule accounts for (UnknownChallenge).
        let beacon = Beacon::new(
            depin_proof::session::ServerNonce::random().0,
            settings.entropy,
        );
        let retry = recorder::Retry {
            first_delay: settings.write_retry_delay,
            times: settings.write_retries,
        };
        let health = Arc::new(health::NodeHealth::register(registry)?);
        let ledger = Arc::new(Ledger::default());
        let meters = Arc::new(MeterBook::default());
        let (health_of, meters_of) = (health.clone(), meters.clone());
        index.on_remove(Box::new(move |gone| {
            health_of.forget(&gone.id);
            meters_of.forget(&gone.key);
        }));
        let recorder = Recorder::new(
            sink,
            index.clone(),
            settings.write_interval,
            retry,
            metrics.clone(),
            health.clone(),
            ledger.clone(),
        );
        let (seal_audits, seal_queue) = session::seal::queue();
        Ok(Arc::new(Self {
            limits: session::limits::SessionLimits::new(settings.max_sessions),
            live: session::LiveSessions::default(),
            meters_restored: tokio::sync::OnceCell::new(),
            poc_restored: tokio::sync::OnceCell::new(),
            seal_audits,
            seal_queue: std::sync::Mutex::new(Some(seal_queue)),
            settings,
            beacon,
            index,
            ledger,
            recorder,
            meters,
            poc: PocBook::new(now_ms()),
            started_ms: now_ms(),
            metrics,
            health,
            key,
            shutdown,
        }))
    }

    /// `result`, or `LateForEpoch` when it accepts work (started at `work_ms`) whose reward
    /// epoch is already past its grace period for `node`'s policy. Rejections keep their
    /// own reason.
    pub fn in_time(
        &self,
        node: Option<&PublicKey>,
        work_ms: u64,
        result: Result<u128, RejectReason>,
    ) -> Result<u128, RejectReason> {
        let epoch = node
            .and_then(|n| self.index.lookup(n))
            .and_then(|e| self.index.epoch_window(&e.reward_policy));
        decide::in_time(epoch, work_ms, now_ms(), result)
    }

    /// What is durable for every node of `role` (read from the sink, not the watch cache,
    /// so the previous leader's last write is seen); nodes whose CR is gone are skipped.
    async fn recorded(
        &self,
        role: depin_proto::config::Role,
    ) -> Result<Vec<(state::index::NodeEntry, decide::tally::NodeTallies)>, String> {
        let mut recorded = Vec::new();
        for entry in self.index.of_role(role) {
            match self.recorder.load(&entry).await {
                Ok(tallies) => recorded.push((entry, tallies)),
                Err(recorder::RecordError::Gone(_)) => {}
                Err(err) => return Err(format!("{}: {err}", entry.id)),
            }
        }
        Ok(recorded)
    }

    /// Reads every MeterBridge's `status.meter` back into `meters`, once, before any
    /// reading is judged: a chain continues from its recorded tip (no rollback across a
    /// restart) and every recorded serial claim competes (no squatter speaking first).
    /// Err leaves it to be tried again by the next reading.
    pub async fn restore_meters(&self) -> Result<(), String> {
        self.meters_restored
            .get_or_try_init(|| async {
                for (entry, tallies) in self.recorded(depin_proto::config::Role::Meter).await? {
                    if let Some(record) = tallies.meter {
                        let (chain, claim) = persist::meter::from_status(entry.key, &record)
                            .map_err(|err| format!("{}: {err}", entry.id))?;
                        self.meters.restore(entry.key, chain, claim);
                    }
                }
                tracing::info!("meter chains and serial claims restored");
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Reads every HotspotGateway's `status.poc` back into the PoC history, once, before
    /// any round is settled, so reciprocity and activity continue across a restart. Err
    /// leaves it to be tried again by the next round.
    pub async fn restore_poc(&self) -> Result<(), String> {
        self.poc_restored
            .get_or_try_init(|| async {
                let records: Vec<_> = self
                    .recorded(depin_proto::config::Role::Hotspot)
                    .await?
                    .into_iter()
                    .filter_map(|(entry, tallies)| tallies.poc.map(|r| (entry.key, r)))
                    .collect();
                let mut state = self.poc.lock();
                for (key, record) in &records {
                    state.history.restore(*key, record);
                }
                tracing::info!(hotspots = records.len(), "PoC history restored");
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Makes sure `entry`'s sector ledger is the durable one: the first time this verifier
    /// touches a StorageNode (a commitment, a fault declaration, a deadline), its
    /// `status.storage` is read straight from the API (not the watch cache, so the previous
    /// leader's last write is seen) into its ledger, or a new ledger when it has none.
    /// Accepted roots then stay fixed and sealed (not audited again), proven periods are
    /// not paid twice, reputation carries over. Per node, so a node the watch lists only
    /// later (or whose spec was invalid at the start) still gets its own record back.
    /// Err leaves it to be tried again; the caller judges nothing meanwhile.
    pub async fn load_storage(&self, entry: &state::index::NodeEntry) -> Result<(), String> {
        let handle = self.ledger.node(&entry.key);
        if state::ledger::lock(&handle).storage_loaded {
            return Ok(());
        }
        let tallies = self
            .recorder
            .load(entry)
            .await
            .map_err(|err| format!("{}: {err}", entry.id))?;
        let storage = match &tallies.storage {
            Some(status) => persist::storage::from_status(status)
                .map_err(|err| format!("{}: {err}", entry.id))?,
            None => depin_proof::storage::StorageLedger::default(),
        };
        let mut node = state::ledger::lock(&handle);
        if !node.storage_loaded {
            if tallies.storage.is_some() {
                self.health
                    .reputation(&entry.id, storage.reputation.score());
                tracing::info!(node = %entry.id, sectors = storage.sectors.len(), "sector ledger restored");
            }
            node.storage = storage;
            node.storage_loaded = true;
        }
        Ok(())
    }

    /// Writes `entry`'s sector ledger (with `result` and `delta`) off the caller's path. A
    /// failed write leaves the ledger ahead of `status.storage`; the node's next write
    /// (any proof, commitment or closed deadline) carries it. `what` names the change in
    /// the warning.
    pub fn record_storage_later(
        self: &Arc<Self>,
        entry: state::index::NodeEntry,
        result: Option<Result<u128, RejectReason>>,
        delta: decide::tally::StorageDelta,
        what: &'static str,
    ) {
        let v = self.clone();
        tokio::spawn(async move {
            if let Err(err) = v.recorder.record_storage(&entry, result, delta).await {
                tracing::warn!(node = %entry.id, %err, "{what} not recorded");
            }
        });
    }

    /// Queues `commitment`'s seal audit; the sector is challenged once it passes.
    pub fn audit_seal(
        &self,
        entry: state::index::NodeEntry,
        commitment: depin_proof::storage::SectorCommitment,
    ) {
        // Fails only once the audit task is gone, which stops the verifier anyway.
        let _ = self
            .seal_audits
            .send(session::seal::SealAudit { entry, commitment });
    }

    /// GPU round length, ms (`--gpu-challenge-interval`).
    pub fn gpu_interval_ms(&self) -> u64 {
        u64::try_from(self.settings.gpu_interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// How long after a GPU round ends it is accounted: the close of the slowest class's
    /// chain issued at the round's very end, and as long again for the opening.
    pub fn gpu_round_grace_ms(&self) -> u64 {
        let longest = self
            .settings
            .gpu_classes
            .iter()
            .map(depin_proof::gpu::GpuClass::close_ms)
            .chain(std::iter::once(self.index.longest_gpu_close_ms()))
            .max()
            .unwrap_or(0);
        self.settings.gpu.deadline_ms.max(longest).saturating_mul(2)
    }

    /// The class `entry` is challenged with: the fastest of its policy's classes (else the
    /// verifier's) whose floor its declared throughput reaches, or the slowest when it
    /// reaches none (that one it must still pass to earn). None only without any class.
    pub fn gpu_class(&self, entry: &state::index::NodeEntry) -> Option<depin_proof::gpu::GpuClass> {
        let classes = self
            .index
            .gpu_classes(&entry.reward_policy)
            .unwrap_or_else(|| self.settings.gpu_classes.clone());
        let declared = match entry.declared {
            state::index::Declared::Gpu { declared_tops } => declared_tops,
            _ => 0.0,
        };
        depin_proof::gpu::claimed_class(&classes, declared)
            .or_else(|| {
                classes
                    .iter()
                    .min_by(|a, b| a.min_tops.total_cmp(&b.min_tops))
            })
            .cloned()
    }

    /// The PoC rules for hotspots paid by `policy`: its own `spec.poc`, else the verifier's.
    pub fn poc_params(&self, policy: &str) -> depin_proof::poc::PocParams {
        self.index.poc_params(policy).unwrap_or(self.settings.poc)
    }

    /// The key receipts are signed with (sent in every ServerHello).
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    /// Signs a receipt now.
    pub fn sign_receipt(
        &self,
        node: PublicKey,
        challenge: ChallengeId,
        kind: ProofKind,
        verdict: Result<(), RejectReason>,
        recorded: bool,
        tally: Option<TallySnapshot>,
    ) -> Receipt {
        Receipt::sign(
            &self.key,
            node,
            challenge,
            kind,
            verdict,
            recorded,
            tally,
            now_ms(),
        )
    }
}

/// Unix milliseconds now (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Serves the verifier on `listener` until `shutdown` resolves, with the GPU round
/// accounting beside it.
pub async fn serve(
    verifier: Arc<Verifier>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    serve_beside(verifier, listener, Vec::new()).await
}

/// A long-lived task the verifier cannot do without, named as in
/// `verifier_task_failures_total` (one of [`metrics::SUPERVISED_TASKS`]).
pub type Supervised = (&'static str, tokio::task::JoinHandle<()>);

/// Serves like [`serve`] and supervises `tasks` and the GPU round accounting: should
/// one end before shutdown (a panic), serving stops with an error naming it, so the
/// operator exits and is restarted rather than keep serving with a frozen node index
/// or without counting missed rounds.
pub async fn serve_beside(
    verifier: Arc<Verifier>,
    listener: tokio::net::TcpListener,
    mut tasks: Vec<Supervised>,
) -> anyhow::Result<()> {
    let shutdown = verifier.shutdown.signal();
    tasks.push((
        "gpu-rounds",
        tokio::spawn(session::rounds::account(verifier.clone())),
    ));
    tasks.push((
        "storage-deadlines",
        tokio::spawn(session::deadlines::account(verifier.clone())),
    ));
    let queue = verifier
        .seal_queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(queue) = queue {
        tasks.push((
            "seal-audits",
            tokio::spawn(session::seal::audit(verifier.clone(), queue)),
        ));
    }
    let service = depin_proto::v1::verifier_server::VerifierServer::new(
        session::VerifierService::new(verifier.clone()),
    )
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let server = tonic::transport::Server::builder()
        // Keepalives find agents that vanished without closing (node power loss), so their
        // session slots and gauges are released.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(service)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        );
    tokio::pin!(server);
    let names: Vec<&'static str> = tasks.iter().map(|(name, _)| *name).collect();
    let mut handles: Vec<_> = tasks.into_iter().map(|(_, handle)| handle).collect();
    let first_end = futures::future::select_all(handles.iter_mut());
    let stopped = tokio::select! {
        served = &mut server => {
            handles.iter().for_each(tokio::task::JoinHandle::abort);
            return Ok(served?);
        }
        (ended, at, _) = first_end => (names[at], ended),
    };
    if verifier.shutdown.requested() {
        // Tasks end with the server on shutdown; let it finish its graceful stop.
        handles.iter().for_each(tokio::task::JoinHandle::abort);
        return Ok(server.await?);
    }
    handles.iter().for_each(tokio::task::JoinHandle::abort);
    Err(task_stopped(&verifier, stopped.0, &stopped.1))
}

/// The operator's verifier: kube-fed index, status.proofs sink, gRPC on `--grpc-addr`.
/// The node watch is supervised: should it end before shutdown, the index would freeze
/// (new nodes refused, deleted ones still served).
pub async fn run(
    client: kube::Client,
    config: &Config,
    key: NodeKey,
    registry: &prometheus::Registry,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let settings = Settings::from_config(config)?;
    let index = NodeIndex::new();
    let poc = settings.poc;
    let feed = tokio::spawn(watch::feed(
        client.clone(),
        index.clone(),
        poc,
        shutdown.clone(),
    ));
    let sink = Arc::new(sink::KubeSink::new(client));
    let verifier = Verifier::with_key(settings, key, index, sink, registry, shutdown)?;
    let listener = tokio::net::TcpListener::bind(config.grpc_addr).await?;
    tracing::info!(addr = %config.grpc_addr, key = %verifier.public_key(), "verifier listening");
    serve_beside(verifier, listener, vec![("node-watch", feed)]).await
}

/// Counts a supervised task that stopped before shutdown and says why.
fn task_stopped(
    verifier: &Verifier,
    task: &str,
    ended: &Result<(), tokio::task::JoinError>,
) -> anyhow::Error {
    verifier
        .metrics
        .task_failures
        .with_label_values(&[task])
        .inc();
    let why = match ended {
        Err(err) if err.is_panic() => "panicked",
        _ => "ended",
    };
    tracing::error!(task, why, "a verifier task stopped; stopping the verifier");
    anyhow::anyhow!("verifier task {task} {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, SettingsError> {
        let mut all = vec!["depin-operator"];
        all.extend_from_slice(args);
        Settings::from_config(&<Config as clap::Parser>::parse_from(all))
    }

    #[test]
    fn defaults_work_and_short_periods_shorten_the_tick() {
        let defaults = parse(&[]).expect("defaults are valid");
        assert_eq!(
            defaults.seal_audit_max_bytes,
            depin_proof::storage::MAX_SECTOR_BYTES,
            "every sector size is audited by default"
        );
        assert_eq!(defaults.entropy.tick_ms, 60_000);
        assert_eq!(defaults.storage.proving_period_ms, 86_400_000);
        assert_eq!(defaults.gpu.n, 256);
        let short =
            parse(&["--storage-proving-period", "60", "--storage-deadlines", "6"]).expect("valid");
        assert_eq!(short.entropy.tick_ms, 10_000);
        let err = parse(&[
            "--storage-proving-period",
            "60",
            "--storage-deadlines",
            "6",
            "--beacon-tick",
            "30",
        ])
        .expect_err("tick longer than a deadline");
        assert!(err.to_string().contains("--beacon-tick"), "{err}");
        assert!(
            parse(&["--gpu-deadline", "600"]).is_err(),
            "deadline beyond the entropy lifespan"
        );
    }
}
