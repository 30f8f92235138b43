//! What a session does with one `MeterReading`: decode, judge it with `decide::meter`
//! against the node's chain, credit the proven Wh through the recorder, answer with a
//! receipt once durable (undoing the chain step if that fails).

use super::{Live, receipt_message};
use crate::verifier::decide::meter::{credit, reading, rules_for};
use crate::verifier::persist;
use crate::verifier::state::index::NodeEntry;
use crate::verifier::{Verifier, now_ms};
use depin_proof::RejectReason;
use depin_proof::entropy::ChallengeId;
use depin_proof::identity::PublicKey;
use depin_proof::receipt::{ProofKind, TallySnapshot};
use depin_proto::v1;
use depin_proto::wire;
use tonic::Status;

/// The metric `kind` label of meter proofs.
const KIND: &str = "MeterBridge";

fn meter_receipt(
    v: &Verifier,
    node: PublicKey,
    id: ChallengeId,
    verdict: Result<(), RejectReason>,
    tally: Option<TallySnapshot>,
) -> v1::VerifierMessage {
    let receipt = v.sign_receipt(node, id, ProofKind::Meter, verdict, tally.is_some(), tally);
    receipt_message(&receipt, None)
}

impl Live {
    /// One meter reading: decided now, recorded before its receipt leaves. Awaited in the
    /// session loop (readings come once per slot), so a node's links are recorded in order.
    pub(super) async fn meter_reading(
        &mut self,
        entry: NodeEntry,
        wire_reading: &v1::MeterReading,
    ) -> Result<(), Status> {
        let v = self.v.clone();
        let node = self.session.node;
        let started = std::time::Instant::now();
        let signed = match wire::meter_reading_from_wire(node, wire_reading) {
            Ok(signed) => signed,
            Err(reason) => {
                v.metrics.count(KIND, Err(reason));
                let id = ChallengeId([0; 32]);
                return self
                    .send(meter_receipt(&v, node, id, Err(reason), None))
                    .await;
            }
        };
        let id = ChallengeId(signed.hash());
        if let Err(err) = v.restore_meters().await {
            tracing::warn!(%err, "meter history not restored; readings wait");
            return Err(Status::unavailable(format!(
                "meter history not loaded yet ({err}); reconnect and resend"
            )));
        }
        let Some(rules) = rules_for(&entry.declared) else {
            // Not a (valid) MeterBridge: nothing it reads can be credited.
            v.metrics.count(KIND, Err(RejectReason::UnknownNode));
            let reply = meter_receipt(&v, node, id, Err(RejectReason::UnknownNode), None);
            return self.send(reply).await;
        };
        let decided = reading(&mut v.meters.lock(), &signed, &rules, now_ms());
        v.metrics
            .verification_duration
            .with_label_values(&[KIND])
            .observe(started.elapsed().as_secs_f64());
        let epoch = v.index.epoch_window(&entry.reward_policy);
        let result = credit(&signed, &decided.verdict, &rules, epoch, now_ms());
        v.metrics.count(KIND, result.map(|_| ()));
        if decided.verdict == Err(RejectReason::Duplicate) {
            // A resend of an accepted reading (reconnect): settle it without counting twice.
            return self
                .send(meter_receipt(
                    &v,
                    node,
                    id,
                    Err(RejectReason::Duplicate),
                    None,
                ))
                .await;
        }
        let record = v
            .meters
            .snapshot(&node)
            .and_then(|(chain, claim)| persist::meter::to_status(&chain, claim.as_ref()));
        match v.recorder.record_meter(&entry, result, record).await {
            Ok(tally) => {
                let reply = meter_receipt(&v, node, id, result.map(|_| ()), Some(tally));
                self.send(reply).await
            }
            Err(err) => {
                if let Ok(verified) = &decided.verdict {
                    v.meters.undo(&node, &verified.tip, decided.before);
                }
                Err(Status::unavailable(format!("{err}; reconnect and resend")))
            }
        }
    }
}
