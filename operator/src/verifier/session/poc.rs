//! What a session does with PoC reports: beacon and witness reports arrive on different
//! hotspots' sessions; they are filed by beacon (`state::poc`), held for the witness lag
//! window, then settled in one go (`decide::poc`). Each report's result is recorded and
//! answered with a receipt on the session it came on.

use super::{Live, Outbound, receipt_message};
use crate::verifier::decide::poc::{PocLookup, settle, unsettled};
use crate::verifier::state::index::{NodeEntry, PolicyDenylist};
use crate::verifier::state::poc::{Filed, Report};
use crate::verifier::{Verifier, now_ms};
use depin_proof::RejectReason;
use depin_proof::entropy::ChallengeId;
use depin_proof::identity::PublicKey;
use depin_proof::poc::{BeaconId, BeaconSubmission, HotspotInfo, PocParams, WitnessSubmission};
use depin_proof::receipt::ProofKind;
use depin_proto::v1;
use depin_proto::wire;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::Status;

/// The metric `kind` label of PoC reports.
const KIND: &str = "HotspotGateway";
/// Slack after the lag windows before a round is settled (scheduling, last packets).
const SETTLE_SLACK_MS: u64 = 500;

/// The fleet as PoC settlement sees it: the index, with the verifier's own rules for
/// policies that set none.
struct Fleet<'a>(&'a Verifier);

impl PocLookup for Fleet<'_> {
    fn rules(&self, policy: &str) -> PocParams {
        self.0.poc_params(policy)
    }
    fn denylist(&self, policy: &str) -> Arc<PolicyDenylist> {
        self.0.index.denylist(policy)
    }
    fn hotspots(&self) -> HashMap<PublicKey, HotspotInfo> {
        self.0.index.hotspots()
    }
}

/// How long a round stays open: both lag windows, then some slack.
fn settle_wait_ms(params: &PocParams) -> u64 {
    params
        .max_beacon_to_witness_lag_ms
        .saturating_add(params.max_witness_lag_ms)
        .saturating_add(SETTLE_SLACK_MS)
}

/// Settles `beacon` once its lag windows have passed, records every result and sends the
/// receipts.
async fn settle_later(v: Arc<Verifier>, beacon: BeaconId) {
    // A witness may open the round before its beacon names the policy: wait the
    // verifier's windows, then longer if the beaconer's policy allows later witnesses.
    // The round's work happened when it opened (its first report arrived).
    let opened_ms = now_ms();
    let waited = settle_wait_ms(&v.settings.poc);
    tokio::time::sleep(Duration::from_millis(waited)).await;
    if let Some(policy) = v.poc.beaconer_policy(&beacon) {
        let more = settle_wait_ms(&v.poc_params(&policy)).saturating_sub(waited);
        tokio::time::sleep(Duration::from_millis(more)).await;
    }
    // Settling without the recorded history would renew every hotspot's benefit of the
    // doubt: until it is back, the round's reports are refused (the agents resend).
    let restored = v.restore_poc().await;
    if let Err(err) = &restored {
        tracing::warn!(%err, "PoC history not restored; the round is not settled");
    }
    let now = now_ms();
    let (verdicts, records) = {
        let mut state = v.poc.lock();
        let verdicts = match state.rounds.remove(&beacon) {
            Some(round) if restored.is_ok() => {
                let state = &mut *state;
                settle(
                    round,
                    &mut state.history,
                    &mut state.density,
                    &v.beacon,
                    &Fleet(&v),
                    now,
                )
            }
            Some(round) => unsettled(round),
            None => Vec::new(),
        };
        let records: Vec<_> = verdicts
            .iter()
            .map(|verdict| state.history.record_of(&verdict.entry.key))
            .collect();
        (verdicts, records)
    };
    for (verdict, record) in verdicts.into_iter().zip(records) {
        let node = verdict.entry.key;
        let Some(result) = verdict.result else {
            v.metrics.count(KIND, Err(RejectReason::UnknownChallenge));
            let receipt = v.sign_receipt(
                node,
                verdict.id,
                ProofKind::Hotspot,
                Err(RejectReason::UnknownChallenge),
                false,
                None,
            );
            let _ = verdict
                .reply
                .send(Ok(receipt_message(&receipt, None)))
                .await;
            continue;
        };
        let result = v.in_time(Some(&node), opened_ms, result);
        v.metrics.count(KIND, result.map(|_| ()));
        match v
            .recorder
            .record_poc(&verdict.entry, result, verdict.part, record)
            .await
        {
            Ok(tally) => {
                let receipt = v.sign_receipt(
                    node,
                    verdict.id,
                    ProofKind::Hotspot,
                    result.map(|_| ()),
                    true,
                    Some(tally),
                );
                v.poc.remember(verdict.id, receipt.clone(), now);
                // The session may be gone; the agent's resend then gets this as a Replay.
                let _ = verdict
                    .reply
                    .send(Ok(receipt_message(&receipt, None)))
                    .await;
            }
            Err(err) => {
                tracing::warn!(node = %verdict.entry.id, %err, "PoC result not recorded; the agent will resend");
            }
        }
    }
}

impl Live {
    /// A beacon report: filed under its beacon until the round settles.
    pub(super) async fn beacon_report(
        &mut self,
        entry: NodeEntry,
        wire_report: &v1::BeaconReport,
    ) -> Result<(), Status> {
        let received_ms = now_ms();
        match wire::beacon_report_from_wire(self.session.node, wire_report) {
            Ok(report) => {
                let filed = Filed {
                    id: wire::report_id(&report.signing_bytes()),
                    submission: BeaconSubmission {
                        report,
                        received_ms,
                    },
                    entry,
                    reply: self.out.clone(),
                };
                let beacon = filed.submission.report.id();
                self.file(beacon, Report::Beacon(filed)).await
            }
            Err(reason) => self.malformed_report(reason).await,
        }
    }

    /// A witness report: filed under the beacon it heard until the round settles.
    pub(super) async fn witness_report(
        &mut self,
        entry: NodeEntry,
        wire_report: &v1::WitnessReport,
    ) -> Result<(), Status> {
        let received_ms = now_ms();
        match wire::witness_report_from_wire(self.session.node, wire_report) {
            Ok(report) => {
                let filed = Filed {
                    id: wire::report_id(&report.signing_bytes()),
                    submission: WitnessSubmission {
                        report,
                        received_ms,
                    },
                    entry,
                    reply: self.out.clone(),
                };
                let beacon = filed.submission.report.beacon_id();
                self.file(beacon, Report::Witness(filed)).await
            }
            Err(reason) => self.malformed_report(reason).await,
        }
    }

    async fn file(&self, beacon: BeaconId, report: Report<Outbound>) -> Result<(), Status> {
        let v = self.v.clone();
        match v.poc.file(beacon, report) {
            Ok(true) => {
                tokio::spawn(settle_later(v, beacon));
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(original) => {
                v.metrics.count(KIND, Err(RejectReason::Replay));
                let replay = v.sign_receipt(
                    self.session.node,
                    original.challenge,
                    ProofKind::Hotspot,
                    Err(RejectReason::Replay),
                    false,
                    None,
                );
                self.send(receipt_message(&replay, Some(&original))).await
            }
        }
    }

    async fn malformed_report(&self, reason: RejectReason) -> Result<(), Status> {
        let v = &self.v;
        v.metrics.count(KIND, Err(reason));
        let receipt = v.sign_receipt(
            self.session.node,
            ChallengeId([0; 32]),
            ProofKind::Hotspot,
            Err(reason),
            false,
            None,
        );
        self.send(receipt_message(&receipt, None)).await
    }
}
