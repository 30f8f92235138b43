//! What a session does with each storage and GPU message: decode, run its rule from
//! `decide/` under the node's ledger lock, and carry the outcome out (apply the state
//! transition, count it, reply now, wait for the original receipt, or record first).

use super::{Live, message, receipt_message, seal};
use crate::verifier::decide::storage::Admission;
use crate::verifier::decide::{self, ChallengeRules, Outcome};
use crate::verifier::metrics::kind_label;
use crate::verifier::persist::recorder::RecordError;
use crate::verifier::state::index::NodeEntry;
use crate::verifier::state::ledger::{self, Challenge, NodeLedger, State};
use crate::verifier::{Verifier, now_ms};
use depin_proof::RejectReason;
use depin_proof::entropy::ChallengeId;
use depin_proof::identity::PublicKey;
use depin_proof::receipt::{ProofKind, Receipt, TallySnapshot};
use depin_proof::storage::SectorLookup;
use depin_proto::v1::{self, agent_message::Body as In, verifier_message::Body as Out};
use depin_proto::{gpu_wire, wire};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tonic::Status;

/// An outcome once its state transition is applied: what is left to do outside the lock.
enum Action {
    /// Send this now.
    Reply(v1::VerifierMessage),
    /// Answer Replay with the original receipt once it exists.
    AwaitOriginal {
        challenge: ChallengeId,
        kind: ProofKind,
        original: watch::Receiver<Option<Receipt>>,
    },
    /// Make this result durable, then send its receipt.
    Record {
        challenge: ChallengeId,
        kind: ProofKind,
        result: Result<u128, RejectReason>,
        part: Option<String>,
        done: watch::Sender<Option<Receipt>>,
    },
}

impl Live {
    /// Decides one message and carries the outcome out; Err ends the session.
    pub(super) async fn handle(&mut self, received: v1::AgentMessage) -> Result<(), Status> {
        let v = self.v.clone();
        let node = self.session.node;
        let entry = v
            .index
            .lookup(&node)
            .ok_or_else(|| Status::unauthenticated("UnknownNode: the node CR is gone"))?;
        let started = std::time::Instant::now();
        let now = now_ms();
        let rules = ChallengeRules {
            storage: &v.settings.storage,
            beacon: &v.beacon,
            epoch: v.index.epoch_window(&entry.reward_policy),
        };
        let action = match received.body {
            Some(In::SectorCommitments(batch)) => {
                // Roots are judged against the durable ledger, never a fresh one.
                ledger_loaded(&v, &entry).await?;
                let receipts = self.commitments(&entry, &batch)?;
                return self.send(message(Out::CommitmentReceipts(receipts))).await;
            }
            Some(In::StorageResponse(r)) => {
                let id = r.challenge_id.clone();
                match wire::storage_response_from_wire(r) {
                    Ok(filed) => {
                        self.decide(|ledger| decide::storage::response(ledger, &filed, &rules, now))
                    }
                    Err(reason) => self.malformed(&id, ProofKind::Storage, reason),
                }
            }
            // The chain protocol: a single-product commitment (no stage roots) is
            // `WrongStageCount`, its opening (no stage openings) `WrongRowCount`.
            Some(In::GpuCommitment(c)) => match gpu_wire::chain_commitment_from_wire(&c) {
                Ok(filed) => {
                    self.decide(|ledger| decide::gpu::commitment(ledger, &filed, &rules, now))
                }
                Err(reason) => self.malformed(&c.challenge_id, ProofKind::Gpu, reason),
            },
            Some(In::GpuOpening(o)) => {
                let id = o.challenge_id.clone();
                match gpu_wire::chain_opening_from_wire(o) {
                    Ok(filed) => {
                        self.decide(|ledger| decide::gpu::opening(ledger, &filed, &rules, now))
                    }
                    Err(reason) => self.malformed(&id, ProofKind::Gpu, reason),
                }
            }
            Some(In::RttEcho(e)) => {
                self.rtt.echoed(&e.nonce, now);
                return Ok(());
            }
            Some(In::FaultDeclaration(d)) => {
                return self.fault_declaration(entry, &d, &rules).await;
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
        self.carry_out(entry, action).await
    }

    /// Runs `rule` on the node's ledger and applies its outcome under the same lock, so
    /// two responses to one challenge cannot both be recorded.
    fn decide(&self, rule: impl FnOnce(&NodeLedger) -> Outcome) -> Action {
        let mut ledger = ledger::lock(&self.ledger);
        let outcome = rule(&ledger);
        self.apply(&mut ledger, outcome)
    }

    /// Applies an outcome's state transition and counts it.
    fn apply(&self, ledger: &mut NodeLedger, outcome: Outcome) -> Action {
        let v = &self.v;
        let node = self.session.node;
        match outcome {
            Outcome::Refuse {
                challenge,
                kind,
                reason,
            } => Action::Reply(receipt_message(
                &unrecorded(v, node, challenge, kind, reason),
                None,
            )),
            Outcome::Replay {
                challenge,
                kind,
                original,
            } => Action::Reply(receipt_message(
                &unrecorded(v, node, challenge, kind, RejectReason::Replay),
                Some(&original),
            )),
            Outcome::AwaitOriginal { challenge, kind } => {
                v.metrics.count(kind_label(kind), Err(RejectReason::Replay));
                match ledger
                    .challenges
                    .get(&challenge)
                    .and_then(|issued| issued.original_receipt())
                {
                    Some(original) => Action::AwaitOriginal {
                        challenge,
                        kind,
                        original,
                    },
                    // Unreachable: the rule saw it Recording under this lock.
                    None => Action::Reply(receipt_message(
                        &v.sign_receipt(
                            node,
                            challenge,
                            kind,
                            Err(RejectReason::Replay),
                            false,
                            None,
                        ),
                        None,
                    )),
                }
            }
            Outcome::Commit {
                challenge,
                committed,
            } => {
                let reply = sample_request_message(&committed.1);
                if let Some(issued) = ledger.challenges.get_mut(&challenge) {
                    issued.state = State::Committed(committed);
                }
                Action::Reply(reply)
            }
            Outcome::AskAgain(request) => Action::Reply(sample_request_message(&request)),
            Outcome::Record {
                challenge,
                kind,
                result,
                part,
            } => {
                v.metrics.count(kind_label(kind), result.map(|_| ()));
                let node_ledger = &mut *ledger;
                match node_ledger.challenges.get_mut(&challenge) {
                    Some(issued) => {
                        if let (Challenge::Storage(c), Ok(_)) = (&issued.challenge, result) {
                            // The proven period goes into the ledger now, so the status
                            // write carrying this proof carries it too (a restarted
                            // verifier then never pays the period again); put back
                            // should that write fail.
                            let storage = &mut node_ledger.storage;
                            if let Some(before) = storage.sectors.get(&c.sector).cloned() {
                                let root = before.commitment.root;
                                if storage
                                    .record_proof(c.sector, c.deadline.period, &root)
                                    .is_ok()
                                {
                                    node_ledger.proofs_recording.insert(challenge, before);
                                }
                            }
                        }
                        Action::Record {
                            challenge,
                            kind,
                            result,
                            part,
                            done: issued.begin_recording(),
                        }
                    }
                    // Unreachable: the rule found it under this lock.
                    None => Action::Reply(receipt_message(
                        &unrecorded(v, node, challenge, kind, RejectReason::UnknownChallenge),
                        None,
                    )),
                }
            }
        }
    }

    /// A declared fault: recorded in the sector ledger (the closed deadline then costs
    /// half a miss and is no failed audit), made durable, and answered.
    async fn fault_declaration(
        &self,
        entry: NodeEntry,
        w: &v1::FaultDeclaration,
        rules: &ChallengeRules<'_>,
    ) -> Result<(), Status> {
        let v = self.v.clone();
        ledger_loaded(&v, &entry).await?;
        let now = now_ms();
        let verdict = wire::fault_declaration_from_wire(w).and_then(|d| {
            let mut ledger = ledger::lock(&self.ledger);
            let fault = decide::storage::fault(&ledger.storage, &d, rules, &self.session, now)?;
            ledger
                .storage
                .record_fault(fault.sector, fault.deadline.period)
        });
        let label = verdict
            .as_ref()
            .map_or_else(|r| r.as_str(), |()| "Accepted");
        v.metrics
            .fault_declarations
            .with_label_values(&[label])
            .inc();
        if verdict.is_ok() {
            // Durable before the deadline closes, or a restart would count a miss.
            let delta = crate::verifier::decide::tally::StorageDelta::default();
            v.record_storage_later(entry, None, delta, "fault declaration");
        }
        self.send(message(Out::FaultReceipt(v1::FaultReceipt {
            sector: w.sector,
            period: w.period,
            accepted: verdict.is_ok(),
            reason: verdict.err().map_or(String::new(), |r| r.as_str().into()),
        })))
        .await
    }

    fn malformed(&self, id: &[u8], kind: ProofKind, reason: RejectReason) -> Action {
        let id = wire::challenge_from_wire(id).unwrap_or(ChallengeId([0; 32]));
        Action::Reply(receipt_message(
            &unrecorded(&self.v, self.session.node, id, kind, reason),
            None,
        ))
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
        let now = now_ms();
        let mut ledger = ledger::lock(&self.ledger);
        let mut entered = Vec::new();
        let receipts = batch
            .commitments
            .iter()
            .map(|w| {
                let verdict = wire::commitment_from_wire(self.session.node, w).and_then(|signed| {
                    let verified = decide::storage::commitment(
                        &signed,
                        &v.settings.storage,
                        &v.index,
                        &entry.declared,
                    )?;
                    let c = verified.commitment;
                    let accepted = ledger.storage.commitment(c.sector).copied();
                    let admitted = decide::storage::admission(
                        accepted.as_ref(),
                        ledger.unsealed.get(&c.sector),
                        &c,
                        v.settings.seal_audit_max_bytes,
                    )?;
                    Ok((c, admitted))
                });
                let label = verdict.as_ref().map_or_else(|r| r.as_str(), |_| "Accepted");
                v.metrics
                    .sector_commitments
                    .with_label_values(&[label])
                    .inc();
                let mut reset = false;
                if let Ok((c, admitted)) = &verdict {
                    match *admitted {
                        Admission::Unchanged | Admission::Pending => {}
                        // A new root is challenged only once its seal checks out (a root
                        // over anything but this node's packing could be answered from a
                        // tree alone).
                        Admission::Audit { reset: r } => {
                            reset = r;
                            ledger.unsealed.insert(c.sector, *c);
                            v.audit_seal(entry.clone(), *c);
                        }
                        // Beyond the audit's memory budget: challenged unaudited.
                        Admission::Commit { reset: r } => {
                            reset = r;
                            entered.push(seal::enter(entry, &mut ledger, c, now));
                        }
                    }
                }
                v1::CommitmentReceipt {
                    sector: w.sector,
                    accepted: verdict.is_ok(),
                    // Taken, but as a reset: the sector's history is forfeited.
                    reason: match verdict {
                        Err(r) => r.as_str().into(),
                        Ok(_) if reset => RejectReason::SectorReset.as_str().into(),
                        Ok(_) => String::new(),
                    },
                }
            })
            .collect();
        drop(ledger);
        for outcome in entered {
            seal::persist(v, entry.clone(), outcome);
        }
        Ok(v1::CommitmentReceipts { receipts })
    }

    async fn carry_out(&self, entry: NodeEntry, action: Action) -> Result<(), Status> {
        let (v, out, node) = (self.v.clone(), self.out.clone(), self.session.node);
        match action {
            Action::Reply(reply) => self.send(reply).await,
            Action::AwaitOriginal {
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
            Action::Record {
                challenge,
                kind,
                result,
                part,
                done,
            } => {
                let ledger = self.ledger.clone();
                tokio::spawn(async move {
                    let recorded = v.recorder.record_part(&entry, result, part).await;
                    let settled = Settled {
                        node,
                        challenge,
                        kind,
                        result,
                    };
                    let reply = settled.finish(&v, &ledger, recorded, &done);
                    // Durable before this send: an agent that misses it gets the same
                    // receipt (inside a Replay) when it resends.
                    let _ = out.send(reply).await;
                });
                Ok(())
            }
        }
    }
}

/// `entry`'s durable sector ledger is loaded, or UNAVAILABLE so the agent reconnects and
/// resends: nothing of a storage node is judged against a stand-in.
async fn ledger_loaded(v: &Verifier, entry: &NodeEntry) -> Result<(), Status> {
    v.load_storage(entry).await.map_err(|err| {
        Status::unavailable(format!(
            "sector ledger not loaded yet ({err}); reconnect and resend"
        ))
    })
}

/// An unrecorded rejection, counted and signed.
fn unrecorded(
    v: &Verifier,
    node: PublicKey,
    id: ChallengeId,
    kind: ProofKind,
    reason: RejectReason,
) -> Receipt {
    v.metrics.count(kind_label(kind), Err(reason));
    v.sign_receipt(node, id, kind, Err(reason), false, None)
}

fn sample_request_message(request: &depin_proof::gpu::SampleRequest) -> v1::VerifierMessage {
    message(Out::RowRequest(gpu_wire::sample_request_to_wire(request)))
}

/// A recorded (or failed) result, to be settled in the ledger.
struct Settled {
    node: PublicKey,
    challenge: ChallengeId,
    kind: ProofKind,
    result: Result<u128, RejectReason>,
}

impl Settled {
    /// Moves the challenge on and returns what to tell the agent: its receipt, or
    /// UNAVAILABLE so it reconnects and resends (the challenge is open again).
    fn finish(
        self,
        v: &Verifier,
        ledger: &Arc<Mutex<NodeLedger>>,
        recorded: Result<TallySnapshot, RecordError>,
        done: &watch::Sender<Option<Receipt>>,
    ) -> Result<v1::VerifierMessage, Status> {
        let mut guard = ledger::lock(ledger);
        let ledger = &mut *guard;
        let issued = ledger.challenges.get_mut(&self.challenge);
        match recorded {
            Ok(tally) => {
                let receipt = v.sign_receipt(
                    self.node,
                    self.challenge,
                    self.kind,
                    self.result.map(|_| ()),
                    true,
                    Some(tally),
                );
                if let Some(issued) = issued {
                    issued.state = State::Answered(Box::new(receipt.clone()));
                }
                ledger.proofs_recording.remove(&self.challenge);
                done.send_replace(Some(receipt.clone()));
                Ok(receipt_message(&receipt, None))
            }
            Err(err) => {
                if let Some(issued) = issued {
                    issued.recording_failed();
                }
                if let Some(before) = ledger.proofs_recording.remove(&self.challenge) {
                    let sector = before.commitment.sector;
                    ledger.storage.sectors.insert(sector, before);
                }
                Err(Status::unavailable(format!("{err}; reconnect and resend")))
            }
        }
    }
}
