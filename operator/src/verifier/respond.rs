//! What a session does with each agent message: decode, decide (see `decide`), and carry
//! the decision out (reply now, wait for the original receipt, or record first).

use super::decide::{self, Decision, receipt_message};
use super::index::{Declared, NodeEntry};
use super::ledger::{self, NodeLedger, State};
use super::session::{Live, message};
use super::{Verifier, now_ms};
use depin_proof::RejectReason;
use depin_proof::storage::{CommitmentContext, verify_sector_commitment};
use depin_proto::v1::{self, agent_message::Body as In, verifier_message::Body as Out};
use depin_proto::wire;
use std::sync::Mutex;
use tonic::Status;

impl Live {
    /// Decides one message and carries the decision out; Err ends the session.
    pub(super) async fn handle(&mut self, received: v1::AgentMessage) -> Result<(), Status> {
        let v = self.v.clone();
        let node = self.session.node;
        let entry = v
            .index
            .lookup(&node)
            .ok_or_else(|| Status::unauthenticated("UnknownNode: the node CR is gone"))?;
        let started = std::time::Instant::now();
        let now = now_ms();
        let decision = match received.body {
            Some(In::SectorCommitments(batch)) => {
                let receipts = self.commitments(&entry, &batch)?;
                return self.send(message(Out::CommitmentReceipts(receipts))).await;
            }
            Some(In::StorageResponse(r)) => {
                let id = r.challenge_id.clone();
                match wire::storage_response_from_wire(r) {
                    Ok(filed) => decide::storage_response(
                        &v,
                        &mut ledger::lock(&self.ledger),
                        node,
                        &filed,
                        now,
                    ),
                    Err(reason) => {
                        self.malformed(&id, depin_proof::receipt::ProofKind::Storage, reason)
                    }
                }
            }
            Some(In::GpuCommitment(c)) => match wire::gpu_commitment_from_wire(&c) {
                Ok(filed) => {
                    let tops = match entry.declared {
                        Declared::Gpu { declared_tops } => declared_tops,
                        _ => f64::INFINITY, // not a GPU node: every commitment is TooSlow
                    };
                    decide::gpu_commitment(
                        &v,
                        &mut ledger::lock(&self.ledger),
                        node,
                        tops,
                        &filed,
                        now,
                    )
                }
                Err(reason) => self.malformed(
                    &c.challenge_id,
                    depin_proof::receipt::ProofKind::Gpu,
                    reason,
                ),
            },
            Some(In::GpuOpening(o)) => {
                let id = o.challenge_id.clone();
                match wire::gpu_opening_from_wire(o) {
                    Ok(filed) => {
                        decide::gpu_opening(&v, &mut ledger::lock(&self.ledger), node, &filed)
                    }
                    Err(reason) => {
                        self.malformed(&id, depin_proof::receipt::ProofKind::Gpu, reason)
                    }
                }
            }
            Some(In::MeterReading(r)) => return self.meter_reading(entry, &r).await,
            Some(In::BeaconReport(r)) => return self.beacon_report(entry, &r).await,
            Some(In::WitnessReport(r)) => return self.witness_report(entry, &r).await,
            Some(In::Hello(_)) | None => {
                return Err(Status::invalid_argument(
                    "unexpected message after the hello",
                ));
            }
        };
        v.metrics
            .verification_duration
            .with_label_values(&[entry.id.kind()])
            .observe(started.elapsed().as_secs_f64());
        self.carry_out(entry, decision).await
    }

    fn malformed(
        &self,
        id: &[u8],
        kind: depin_proof::receipt::ProofKind,
        reason: RejectReason,
    ) -> Decision {
        self.v.metrics.count(decide::kind_label(kind), Err(reason));
        let id =
            wire::challenge_from_wire(id).unwrap_or(depin_proof::entropy::ChallengeId([0; 32]));
        let receipt = self
            .v
            .sign_receipt(self.session.node, id, kind, Err(reason), false, None);
        Decision::Reply(receipt_message(&receipt, None))
    }

    fn commitments(
        &self,
        entry: &NodeEntry,
        batch: &v1::SectorCommitments,
    ) -> Result<v1::CommitmentReceipts, Status> {
        if batch.commitments.len() > wire::MAX_COMMITMENTS {
            return Err(Status::invalid_argument(
                "too many commitments in one message",
            ));
        }
        let v = &self.v;
        let ctx = CommitmentContext {
            params: &v.settings.storage,
            known_nodes: &v.index,
        };
        let mut ledger = ledger::lock(&self.ledger);
        let receipts = batch
            .commitments
            .iter()
            .map(|w| {
                let verdict = wire::commitment_from_wire(self.session.node, w)
                    .and_then(|signed| verify_sector_commitment(&signed, &ctx))
                    .and_then(|verified| {
                        fits_declared(&entry.declared, &verified.commitment).map(|()| verified)
                    });
                let label = verdict.as_ref().map_or_else(|r| r.as_str(), |_| "Accepted");
                v.metrics
                    .sector_commitments
                    .with_label_values(&[label])
                    .inc();
                if let Ok(verified) = &verdict {
                    ledger
                        .sectors
                        .insert(verified.commitment.sector, verified.commitment);
                }
                v1::CommitmentReceipt {
                    sector: w.sector,
                    accepted: verdict.is_ok(),
                    reason: verdict.err().map_or(String::new(), |r| r.as_str().into()),
                }
            })
            .collect();
        Ok(v1::CommitmentReceipts { receipts })
    }

    async fn carry_out(&self, entry: NodeEntry, decision: Decision) -> Result<(), Status> {
        let (v, out, node) = (self.v.clone(), self.out.clone(), self.session.node);
        match decision {
            Decision::Reply(reply) => self.send(reply).await,
            Decision::AwaitOriginal {
                challenge,
                kind,
                mut original,
            } => {
                tokio::spawn(async move {
                    // Closed without a value: recording failed; the agent will resend.
                    let Ok(first) = original.wait_for(Option::is_some).await.map(|r| r.clone())
                    else {
                        return;
                    };
                    let replay = v.sign_receipt(
                        node,
                        challenge,
                        kind,
                        Err(RejectReason::Replay),
                        false,
                        None,
                    );
                    let _ = out.send(Ok(receipt_message(&replay, first.as_ref()))).await;
                });
                Ok(())
            }
            Decision::Record {
                challenge,
                kind,
                result,
                part,
                done,
            } => {
                let ledger = self.ledger.clone();
                tokio::spawn(async move {
                    let recorded = v.recorder.record_part(&entry, result, part).await;
                    let reply = settle_recorded(
                        &v, &ledger, node, challenge, kind, result, recorded, &done,
                    );
                    // Durable before this send: an agent that misses it gets the same
                    // receipt (inside a Replay) when it resends.
                    let _ = out.send(reply).await;
                });
                Ok(())
            }
        }
    }
}

/// Moves a recorded (or failed) challenge on and returns what to tell the agent: its
/// receipt, or UNAVAILABLE so it reconnects and resends (the challenge is open again).
#[allow(clippy::too_many_arguments)] // the decision's parts, as carried out
fn settle_recorded(
    v: &Verifier,
    ledger: &Mutex<NodeLedger>,
    node: depin_proof::identity::PublicKey,
    challenge: depin_proof::entropy::ChallengeId,
    kind: depin_proof::receipt::ProofKind,
    result: Result<u128, RejectReason>,
    recorded: Result<depin_proof::receipt::TallySnapshot, super::recorder::RecordError>,
    done: &tokio::sync::watch::Sender<Option<depin_proof::receipt::Receipt>>,
) -> Result<v1::VerifierMessage, Status> {
    let mut ledger = ledger::lock(ledger);
    let issued = ledger.challenges.get_mut(&challenge);
    match recorded {
        Ok(tally) => {
            let receipt =
                v.sign_receipt(node, challenge, kind, result.map(|_| ()), true, Some(tally));
            if let Some(issued) = issued {
                issued.state = State::Answered(Box::new(receipt.clone()));
            }
            done.send_replace(Some(receipt.clone()));
            Ok(receipt_message(&receipt, None))
        }
        Err(err) => {
            if let Some(issued) = issued {
                let state = std::mem::replace(&mut issued.state, State::Open);
                issued.state = match state {
                    State::Recording { before, .. } => *before,
                    other => other,
                };
            }
            Err(Status::unavailable(format!("{err}; reconnect and resend")))
        }
    }
}

/// A commitment must fit the node's declared volume: sectors of the declared size, and no
/// more of them than the capacity holds.
fn fits_declared(
    declared: &Declared,
    c: &depin_proof::storage::SectorCommitment,
) -> Result<(), RejectReason> {
    match declared {
        Declared::Storage {
            capacity_bytes,
            sector_size_bytes,
        } => {
            if c.sector_bytes != *sector_size_bytes {
                return Err(RejectReason::WrongLeafCount);
            }
            if c.sector.0 >= capacity_bytes / (*sector_size_bytes).max(1) {
                return Err(RejectReason::UnknownSector);
            }
            Ok(())
        }
        _ => Err(RejectReason::UnknownSector),
    }
}
