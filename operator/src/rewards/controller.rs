//! The leader-only epoch-close loop: every few seconds, for every RewardPolicy, validate it
//! and close each due epoch in order.
//!
//! Closing epoch `n` of policy `p` (idempotent at every step, so a crash anywhere is
//! finished by the next run):
//! 1. If RewardEpoch `p-n` exists, it is committed: load its manifest, skip to 5.
//! 2. Gather the tallies of `n` from node status and the cumulative totals from epoch
//!    `n-1`'s manifest (which also holds nodes deleted since), and `close_epoch`.
//! 3. Write the manifest's ConfigMap shards.
//! 4. Create RewardEpoch `p-n`: the commit point. AlreadyExists means another run
//!    committed first: its record wins, this computation is dropped.
//! 5. Write `status.rewards` of every node paid in `n` that does not record `n` yet, then
//!    `status.lastClosedEpoch = n` on the policy.

use std::sync::Arc;
use std::time::Duration;

use depin_crds::{RewardEpoch, RewardPolicy, RewardSummary};
use depin_proof::reward::{CumulativeTotals, NodeTally, RewardPolicy as Policy, close_epoch};
use futures::{StreamExt, TryStreamExt};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};

use super::book::{Book, BookError, REWARDS_FIELD_MANAGER};
use super::burns;
use super::manifest::{ManifestError, Published};
use super::metrics::RewardMetrics;
use super::nodes::{list_nodes, write_rewards};
use super::record::{epoch_record, policy_status, reward_summary};
use super::schedule::Schedule;
use super::tallies::{MeterPay, NodeRecord, needs_reward_write, tally_paid};
use crate::Shutdown;

/// How often due epochs are looked for; epochs close at most this long after their grace.
pub const TICK: Duration = Duration::from_secs(3);
/// Node status writes in flight at once.
const WRITE_CONCURRENCY: usize = 16;

/// Why a policy's epoch could not be closed (retried on the next tick).
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    /// The Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Manifest shards could not be written or read.
    #[error(transparent)]
    Book(#[from] BookError),
    /// The reward math refused the tallies.
    #[error("closing the epoch: {0}")]
    Epoch(#[from] depin_proof::reward::EpochError),
    /// The computed manifest did not read back (a bug).
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A committed epoch has no manifest shards.
    #[error("RewardEpoch {0} is committed but its manifest shards are missing")]
    MissingManifest(String),
    /// RewardEpoch `p-n` exists for another window: an earlier policy of the same name.
    #[error(
        "RewardEpoch {name} covers [{found}, …) but this policy's epoch {epoch} starts at {want}: it belongs to an earlier RewardPolicy of the same name; delete that policy's RewardEpochs (after archiving them) or give this policy another name"
    )]
    NameClash {
        /// The RewardEpoch.
        name: String,
        /// Its epoch number.
        epoch: u64,
        /// Its window start.
        found: u64,
        /// This policy's window start for that epoch.
        want: u64,
    },
}

/// Annotation on every RewardEpoch: the operator replica (pod) that committed it.
pub const CLOSED_BY_ANNOTATION: &str = "depin.dev/closed-by";

/// The reward controller.
#[derive(Clone)]
pub struct RewardController {
    client: Client,
    book: Book,
    metrics: RewardMetrics,
    /// This replica's name, recorded on the epochs it commits.
    replica: String,
}

impl RewardController {
    /// A controller writing manifests through `book`, as replica `replica`.
    pub fn new(client: Client, book: Book, metrics: RewardMetrics, replica: String) -> Self {
        Self {
            client,
            book,
            metrics,
            replica,
        }
    }

    /// Closes due epochs every [`TICK`] until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) {
        let stop = shutdown.signal();
        tokio::pin!(stop);
        loop {
            self.tick().await;
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = &mut stop => return,
            }
        }
    }

    async fn tick(&self) {
        let api: Api<RewardPolicy> = Api::all(self.client.clone());
        let policies = match api.list(&Default::default()).await {
            Ok(list) => list.items,
            Err(err) => {
                tracing::warn!(error = %err, "listing RewardPolicies");
                return;
            }
        };
        for policy in policies {
            if let Err(err) = self.reconcile(&policy).await {
                tracing::warn!(policy = %policy.name_any(), error = %err, "reward epoch not closed");
            }
        }
    }

    async fn reconcile(&self, crd: &RewardPolicy) -> Result<(), CloseError> {
        let name = crd.name_any();
        let last = crd.status.as_ref().and_then(|s| s.last_closed_epoch);
        let policy = match super::policy::validate(&crd.spec) {
            Ok(policy) => policy,
            Err(err) => {
                let invalid = Err((err.reason(), err.to_string()));
                return self.set_status(crd, invalid, last).await;
            }
        };
        let created = crd
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| u64::try_from(t.0.as_second()).unwrap_or(0));
        let schedule = Schedule::new(crd.spec.epoch_seconds, crd.spec.grace_seconds, created);
        let now = u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0);
        let due = schedule.due(last, now);
        if due.is_empty() {
            self.set_status(crd, Ok(()), last).await?;
        }
        for n in due {
            let meter = MeterPay::of(&crd.spec);
            if let Err(err) = self.close(&name, &policy, meter, &schedule, n).await {
                if matches!(err, CloseError::NameClash { .. }) {
                    self.set_status(crd, Err(("EpochNameClash", err.to_string())), last)
                        .await?;
                }
                return Err(err);
            }
            // Recorded per epoch: a catch-up after downtime keeps its progress.
            self.set_status(crd, Ok(()), Some(n)).await?;
            // Old shards go once this epoch is committed and paid; a failure only delays it.
            let retention = crd.spec.manifest_retention_epochs;
            match self.book.collect(&name, n, retention).await {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(policy = %name, deleted, retention, "old manifest shards deleted")
                }
                Err(err) => {
                    tracing::warn!(policy = %name, error = %err, "deleting old manifest shards")
                }
            }
        }
        if let Some(n) = last
            && self.book.cached(&name, n).is_none()
        {
            // After a restart: serve claims for the latest epoch again.
            self.committed(&name, n).await?;
        }
        Ok(())
    }

    /// Closes epoch `n` of `name` (module docs, steps 1–5 without the policy status).
    async fn close(
        &self,
        name: &str,
        policy: &Policy,
        meter: MeterPay,
        schedule: &Schedule,
        n: u64,
    ) -> Result<(), CloseError> {
        let started = std::time::Instant::now();
        let record_name = format!("{name}-{n}");
        let api: Api<RewardEpoch> = Api::all(self.client.clone());
        let nodes = list_nodes(&self.client, name).await?;
        let (record, published) = match api.get_opt(&record_name).await? {
            Some(existing) if existing.spec.window_start != schedule.window(n).0 => {
                return Err(CloseError::NameClash {
                    name: record_name,
                    epoch: n,
                    found: existing.spec.window_start,
                    want: schedule.window(n).0,
                });
            }
            Some(existing) => {
                let published = self.committed(name, n).await?;
                (existing, published)
            }
            None => {
                let previous = match n.checked_sub(1) {
                    Some(before) => self.committed(name, before).await?.cumulative_totals(),
                    None => CumulativeTotals::new(),
                };
                let tallies: Vec<NodeTally> = nodes
                    .iter()
                    .filter_map(|r| tally_paid(r, schedule.tally_epoch(n), policy, meter))
                    .collect();
                let burns = self.burns(name, n).await?;
                let result = close_epoch(policy, n, &tallies, &previous, &burns.inputs)?;
                let manifest = result.manifest();
                self.book
                    .store(name, n, &hex::encode(result.merkle_root), &manifest)
                    .await?;
                let spec = epoch_record(name, schedule, &result, burns.this_epoch);
                let mut record = RewardEpoch::new(&record_name, spec);
                record
                    .annotations_mut()
                    .insert(CLOSED_BY_ANNOTATION.into(), self.replica.clone());
                let params = PostParams {
                    field_manager: Some(REWARDS_FIELD_MANAGER.into()),
                    ..PostParams::default()
                };
                match api.create(&params, &record).await {
                    Ok(created) => (created, Arc::new(Published::parse(manifest.into())?)),
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        tracing::info!(epoch = %record_name, "closed by another run; using its record");
                        (api.get(&record_name).await?, self.committed(name, n).await?)
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        };
        self.book.remember(name, published.clone());
        self.pay(&nodes, &published, n).await?;
        self.metrics.observe(name, &record.spec, &published, &nodes);
        self.metrics
            .close_duration
            .with_label_values(&[name])
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(epoch = %record_name, nodes = record.spec.node_count, "reward epoch closed");
        Ok(())
    }

    /// The burns closing epoch `n` of `name` uses: its burn records, and the data credits
    /// its committed epochs recorded (for the re-mint window).
    async fn burns(&self, name: &str, n: u64) -> Result<burns::Burns, CloseError> {
        let records: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(self.client.clone(), self.book.namespace());
        let selector = format!("{}={name}", burns::POLICY_LABEL);
        let mut parsed = Vec::new();
        for record in records
            .list(&ListParams::default().labels(&selector))
            .await?
            .items
        {
            match burns::parse(&record) {
                Ok((epoch, dc)) => parsed.push((record.name_any(), epoch, dc)),
                Err(bad) => tracing::warn!(policy = %name, error = %bad, "burn record skipped"),
            }
        }
        let epochs: Api<RewardEpoch> = Api::all(self.client.clone());
        let committed = epochs
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.spec.policy == name && e.spec.epoch < n)
            .map(|e| {
                (
                    e.spec.epoch,
                    e.spec.data_credits_burned.parse().unwrap_or(0),
                )
            })
            .collect();
        let burns = burns::for_epoch(n, &parsed, &committed);
        if !burns.late.is_empty() {
            tracing::warn!(policy = %name, epoch = n, records = ?burns.late, "burn records for epochs already closed are not counted");
        }
        Ok(burns)
    }

    /// Epoch `n` of `name` as committed: from memory, else from its shards, checked
    /// against its RewardEpoch's root.
    async fn committed(&self, name: &str, n: u64) -> Result<Arc<Published>, CloseError> {
        if let Some(published) = self.book.cached(name, n) {
            return Ok(published);
        }
        let record_name = format!("{name}-{n}");
        let api: Api<RewardEpoch> = Api::all(self.client.clone());
        let record = api.get(&record_name).await?;
        self.book
            .load(name, n, &record.spec.merkle_root)
            .await?
            .ok_or(CloseError::MissingManifest(record_name))
    }

    /// Writes `status.rewards` of every node paid in `n` that does not record it yet.
    async fn pay(
        &self,
        nodes: &[NodeRecord],
        published: &Published,
        n: u64,
    ) -> Result<(), CloseError> {
        let due: Vec<(&NodeRecord, RewardSummary)> = nodes
            .iter()
            .filter(|r| needs_reward_write(r.status.rewards.as_ref(), n))
            .filter_map(|r| {
                let total = published.total(&r.id())?;
                (total.reward > 0).then(|| (r, reward_summary(n, total)))
            })
            .collect();
        futures::stream::iter(due)
            .map(|(record, summary)| write_rewards(&self.client, record, summary))
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Applies the policy's status when it differs from what is stored.
    async fn set_status(
        &self,
        crd: &RewardPolicy,
        valid: Result<(), (&str, String)>,
        last_closed: Option<u64>,
    ) -> Result<(), CloseError> {
        let status = policy_status(
            crd.status.as_ref(),
            crd.metadata.generation,
            valid,
            last_closed,
            jiff::Timestamp::now(),
        );
        if crd.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let api: Api<RewardPolicy> = Api::all(self.client.clone());
        let body = serde_json::json!({
            "apiVersion": "depin.dev/v1alpha1",
            "kind": "RewardPolicy",
            "status": status,
        });
        let params = PatchParams::apply(REWARDS_FIELD_MANAGER).force();
        api.patch_status(&crd.name_any(), &params, &Patch::Apply(body))
            .await?;
        Ok(())
    }
}
