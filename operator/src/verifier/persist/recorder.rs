//! Makes proof results durable before they are acknowledged: one writer task per node
//! coalesces results into one status write (group commit), then completes every waiting
//! receipt with the tally as of its own result.
//!
//! Batching: a result arriving at an idle writer is written at once; results arriving
//! while a write is in flight, or within `interval` after it, go into the next write.
//! So a node costs at most one API write per `interval`, and a lone proof waits no longer
//! than one write.

use super::sink::{SinkError, TallySink};
use crate::verifier::decide::tally::{self, NodeTallies, StorageDelta};
use crate::verifier::health::NodeHealth;
use crate::verifier::metrics::VerifierMetrics;
use crate::verifier::state::index::{NodeEntry, NodeId, NodeIndex};
use crate::verifier::state::ledger::{self, Ledger};
use backon::{ExponentialBuilder, Retryable};
use depin_proof::RejectReason;
use depin_proof::identity::PublicKey;
use depin_proof::receipt::TallySnapshot;
use depin_proto::config::Role;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Why a result could not be made durable (the receipt is then never sent; the agent
/// resends after reconnecting).
#[derive(Clone, Debug, thiserror::Error)]
pub enum RecordError {
    /// The node CR is gone.
    #[error("{0} no longer exists")]
    Gone(String),
    /// Writing failed after retries.
    #[error("recording failed: {0}")]
    Failed(String),
}

impl From<SinkError> for RecordError {
    fn from(err: SinkError) -> Self {
        match err {
            SinkError::Gone(node) => Self::Gone(node),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// How failed status writes are retried.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// First delay; doubles up to 4 s.
    pub first_delay: Duration,
    /// Retries before giving up.
    pub times: usize,
}

struct Pending {
    /// The proof result to count; None for a write that only carries state (a storage
    /// commitment or closed deadlines).
    result: Option<Result<u128, RejectReason>>,
    /// The node's key (StorageNodes: whose sector ledger is written with the batch).
    key: PublicKey,
    /// StorageNodes: closed deadlines and resets to add to `proofs.storage`.
    storage: StorageDelta,
    /// Which part of the node's work earned it (hotspots: beacon or witness).
    part: Option<String>,
    policy: String,
    /// MeterBridges: the chain as it stands after this result, written with it.
    meter: Option<depin_crds::MeterRecord>,
    /// HotspotGateways: the PoC history as it stands after this result, written with it.
    poc: Option<depin_crds::PocRecord>,
    reply: oneshot::Sender<Result<TallySnapshot, RecordError>>,
}

/// Hands results to per-node writers.
pub struct Recorder {
    sink: Arc<dyn TallySink>,
    index: NodeIndex,
    interval: Duration,
    retry: Retry,
    metrics: VerifierMetrics,
    health: Arc<NodeHealth>,
    /// Storage nodes' sector ledgers, taken as they stand at each write.
    ledger: Arc<Ledger>,
    writers: Mutex<HashMap<NodeId, mpsc::UnboundedSender<Pending>>>,
}

impl Recorder {
    /// A recorder writing through `sink`, at most once per `interval` per node.
    pub fn new(
        sink: Arc<dyn TallySink>,
        index: NodeIndex,
        interval: Duration,
        retry: Retry,
        metrics: VerifierMetrics,
        health: Arc<NodeHealth>,
        ledger: Arc<Ledger>,
    ) -> Self {
        Self {
            sink,
            index,
            interval,
            retry,
            metrics,
            health,
            ledger,
            writers: Mutex::default(),
        }
    }

    /// Records one result for `node`; resolves with the tally right after it, once durable.
    pub async fn record(
        &self,
        node: &NodeEntry,
        result: Result<u128, RejectReason>,
    ) -> Result<TallySnapshot, RecordError> {
        self.record_part(node, result, None).await
    }

    /// [`Self::record`] for work with parts (`status.proofs.workUnitsByPart`).
    pub async fn record_part(
        &self,
        node: &NodeEntry,
        result: Result<u128, RejectReason>,
        part: Option<String>,
    ) -> Result<TallySnapshot, RecordError> {
        self.record_full(
            node,
            Some(result),
            part,
            None,
            None,
            StorageDelta::default(),
        )
        .await
    }

    /// A StorageNode write: `result` if there is one to count, `delta` added to
    /// `proofs.storage`, and the node's sector ledger as it stands at the write.
    pub async fn record_storage(
        &self,
        node: &NodeEntry,
        result: Option<Result<u128, RejectReason>>,
        delta: StorageDelta,
    ) -> Result<TallySnapshot, RecordError> {
        self.record_full(node, result, None, None, None, delta)
            .await
    }

    /// [`Self::record_part`] for a settled PoC report, with the hotspot's PoC history as
    /// it stands after the round (`status.poc`), made durable in the same write.
    pub async fn record_poc(
        &self,
        node: &NodeEntry,
        result: Result<u128, RejectReason>,
        part: &'static str,
        poc: depin_crds::PocRecord,
    ) -> Result<TallySnapshot, RecordError> {
        self.record_full(
            node,
            Some(result),
            Some(part.to_string()),
            None,
            Some(poc),
            StorageDelta::default(),
        )
        .await
    }

    /// [`Self::record`] for a meter reading, with the chain as it stands after it
    /// (`status.meter`), made durable in the same write as the tally.
    pub async fn record_meter(
        &self,
        node: &NodeEntry,
        result: Result<u128, RejectReason>,
        meter: Option<depin_crds::MeterRecord>,
    ) -> Result<TallySnapshot, RecordError> {
        self.record_full(
            node,
            Some(result),
            None,
            meter,
            None,
            StorageDelta::default(),
        )
        .await
    }

    /// What is durable for `node` now (read straight from the sink).
    pub async fn load(&self, node: &NodeEntry) -> Result<NodeTallies, RecordError> {
        Ok(self.sink.load(&node.id).await?)
    }

    async fn record_full(
        &self,
        node: &NodeEntry,
        result: Option<Result<u128, RejectReason>>,
        part: Option<String>,
        meter: Option<depin_crds::MeterRecord>,
        poc: Option<depin_crds::PocRecord>,
        storage: StorageDelta,
    ) -> Result<TallySnapshot, RecordError> {
        let (reply, done) = oneshot::channel();
        let mut pending = Pending {
            result,
            key: node.key,
            storage,
            part,
            policy: node.reward_policy.clone(),
            meter,
            poc,
            reply,
        };
        // A writer that ended (its node was gone) is replaced once.
        for _ in 0..2 {
            let writer = self.writer_for(&node.id);
            match writer.send(pending) {
                Ok(()) => {
                    let recorded = done
                        .await
                        .unwrap_or_else(|_| Err(RecordError::Failed("writer stopped".into())));
                    if recorded.is_ok() && result.is_some_and(|r| r.is_ok()) {
                        self.health.accepted(&node.id, crate::verifier::now_ms());
                    }
                    return recorded;
                }
                Err(mpsc::error::SendError(back)) => {
                    self.lock().remove(&node.id);
                    pending = back;
                }
            }
        }
        Err(RecordError::Failed("writer stopped".into()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, mpsc::UnboundedSender<Pending>>> {
        // Every critical section is one map operation, so a poisoned map is still consistent.
        self.writers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn writer_for(&self, id: &NodeId) -> mpsc::UnboundedSender<Pending> {
        let mut writers = self.lock();
        if let Some(writer) = writers.get(id).filter(|w| !w.is_closed()) {
            return writer.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            id: id.clone(),
            sink: self.sink.clone(),
            index: self.index.clone(),
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            ledger: self.ledger.clone(),
            retry: self.retry,
            current: None,
        };
        tokio::spawn(writer.run(rx, self.interval));
        writers.insert(id.clone(), tx.clone());
        tx
    }
}

struct Writer {
    id: NodeId,
    sink: Arc<dyn TallySink>,
    index: NodeIndex,
    metrics: VerifierMetrics,
    health: Arc<NodeHealth>,
    ledger: Arc<Ledger>,
    retry: Retry,
    /// The durable tally as last written (None until loaded from the sink).
    current: Option<NodeTallies>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Pending>, interval: Duration) {
        let mut last_write: Option<Instant> = None;
        while let Some(first) = rx.recv().await {
            if let Some(at) = last_write {
                tokio::time::sleep_until(at + interval).await;
            }
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            self.metrics.tally_batch_size.observe(batch.len() as f64);
            let outcome = self.write(&batch).await;
            last_write = Some(Instant::now());
            let gone = matches!(outcome, Err(RecordError::Gone(_)));
            match outcome {
                Ok(snapshots) => {
                    for (pending, snapshot) in batch.into_iter().zip(snapshots) {
                        // A waiter that went away (session ended) just misses its receipt.
                        let _ = pending.reply.send(Ok(snapshot));
                    }
                }
                Err(err) => {
                    tracing::warn!(node = %self.id, error = %err, "proof results not recorded");
                    for pending in batch {
                        let _ = pending.reply.send(Err(err.clone()));
                    }
                }
            }
            if gone {
                return;
            }
        }
    }

    /// Applies the batch to the durable tallies and writes them; nothing changes on failure.
    async fn write(&mut self, batch: &[Pending]) -> Result<Vec<TallySnapshot>, RecordError> {
        let base = match &self.current {
            Some(tallies) => tallies.clone(),
            None => {
                let loaded = self.retrying(|| self.sink.load(&self.id)).await?;
                self.current = Some(loaded.clone());
                loaded
            }
        };
        let policy = batch.last().map_or("default", |p| p.policy.as_str());
        let storage = self.storage_snapshot(batch);
        let epoch_seconds = self.index.epoch_seconds(policy);
        let last_closed = self.index.last_closed_epoch(policy);
        // The epoch is taken again on every attempt: a retry that runs past the epoch's
        // end counts in the new epoch instead of adding to one the reward controller may
        // be closing.
        let attempt = || {
            let (base, sink, id, storage) = (&base, &self.sink, &self.id, &storage);
            async move {
                let (next, snapshots) = apply_batch(
                    base.clone(),
                    batch,
                    storage.clone(),
                    epoch_seconds,
                    last_closed,
                );
                sink.store(id, &next).await?;
                Ok((next, snapshots))
            }
        };
        let (next, snapshots) = self.retrying(attempt).await?;
        self.metrics.tally_writes.with_label_values(&["ok"]).inc();
        if let Some(ledger) = &next.storage {
            let score = ledger.reputation.score.parse().unwrap_or(0.0);
            self.health.reputation(&self.id, score);
        }
        self.current = Some(next);
        Ok(snapshots)
    }

    /// A StorageNode's sector ledger as it stands now (everything applied to it so far,
    /// this batch's proofs included), once it was loaded from `status.storage`; None
    /// otherwise, which leaves `status.storage` as it is.
    fn storage_snapshot(&self, batch: &[Pending]) -> Option<depin_crds::StorageLedgerStatus> {
        if self.id.role != Role::Storage {
            return None;
        }
        let key = batch.last()?.key;
        let handle = self.ledger.node(&key);
        let node = ledger::lock(&handle);
        node.storage_loaded
            .then(|| super::storage::to_status(&node.storage))
    }

    async fn retrying<T, F, Fut>(&self, op: F) -> Result<T, RecordError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SinkError>>,
    {
        let policy = ExponentialBuilder::default()
            .with_min_delay(self.retry.first_delay)
            .with_max_delay(Duration::from_secs(4))
            .with_max_times(self.retry.times)
            .with_jitter();
        let result = op
            .retry(policy)
            .when(|err| !matches!(err, SinkError::Gone(_)))
            .notify(|err, delay| {
                self.metrics
                    .tally_writes
                    .with_label_values(&["retry"])
                    .inc();
                tracing::debug!(node = %self.id, error = %err, ?delay, "retrying tally write");
            })
            .await;
        if result.is_err() {
            self.metrics
                .tally_writes
                .with_label_values(&["failed"])
                .inc();
        }
        result.map_err(RecordError::from)
    }
}

/// The tallies after `batch`, counted in the epoch of now (see [`tally::roll_over`]), and
/// each result's snapshot.
fn apply_batch(
    base: NodeTallies,
    batch: &[Pending],
    storage: Option<depin_crds::StorageLedgerStatus>,
    epoch_seconds: u64,
    last_closed: Option<u64>,
) -> (NodeTallies, Vec<TallySnapshot>) {
    let now = jiff::Timestamp::now();
    let wall_epoch = tally::epoch_at(u64::try_from(now.as_second()).unwrap_or(0), epoch_seconds);
    let (mut next, epoch) = tally::roll_over(base, wall_epoch, last_closed);
    let at = jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string();
    // roll_over always leaves a current tally; the default is never used.
    let current = next.proofs.get_or_insert_with(Default::default);
    let snapshots = batch
        .iter()
        .map(|p| match p.result {
            Some(result) => tally::apply(current, epoch, result, p.part.as_deref(), &at),
            None => tally::snapshot(current),
        })
        .collect();
    if let Some(ledger) = storage {
        for p in batch {
            tally::add_storage(current, &p.storage, &ledger);
        }
        next.storage = Some(ledger);
    }
    if let Some(meter) = batch.iter().rev().find_map(|p| p.meter.clone()) {
        next.meter = Some(meter);
    }
    if let Some(poc) = batch.iter().rev().find_map(|p| p.poc.clone()) {
        next.poc = Some(poc);
    }
    (next, snapshots)
}
