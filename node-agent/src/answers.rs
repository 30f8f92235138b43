//! What the agent does with each verifier message: compute answers off the async runtime,
//! keep them in the outbox, open GPU rows on request, and settle the outbox on receipts.

use crate::roles::Work;
use crate::session::{Done, Memory, Prover, agent_message};
use depin_proof::RejectReason;
use depin_proof::entropy::ChallengeId;
use depin_proof::identity::{NodeKey, PublicKey};
use depin_proof::receipt::{ProofKind, Receipt};
use depin_proof::storage::FaultDeclaration;
use depin_proto::gpu_wire;
use depin_proto::v1::{self, agent_message::Body as Out, verifier_message::Body as In};
use depin_proto::wire::{self, Filed};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

impl Prover {
    /// Handles one verifier message.
    pub(crate) async fn on_message(
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
            // A chain challenge names its stage count; one without is the single product.
            Some(In::GpuChallenge(w)) if w.stages > 0 => {
                self.on_chain_challenge(&w, session_key, memory, tx).await
            }
            Some(In::GpuChallenge(w)) => self.on_gpu_challenge(&w, session_key, memory, tx).await,
            Some(In::RowRequest(w)) if !w.stages.is_empty() => {
                self.on_sample_request(&w, memory, tx).await
            }
            Some(In::RowRequest(w)) => self.on_row_request(&w, memory, tx).await,

            Some(In::BeaconChallenge(w)) => {
                match (&self.work, wire::beacon_challenge_from_wire(&w)) {
                    (Work::Hotspot(hotspot), Ok(entropy)) => {
                        let (hotspot, done, metrics) = (
                            hotspot.clone(),
                            memory.done_tx.clone(),
                            self.metrics.clone(),
                        );
                        // Transmitting waits for the forwarder's TX_ACK: not on the session loop.
                        tokio::spawn(async move { hotspot.beacon(entropy, &done, &metrics).await });
                    }
                    _ => tracing::warn!("ignoring a beacon challenge this agent cannot answer"),
                }
            }
            Some(In::Receipt(w)) => self.on_receipt(&w, verifier, memory),
            // Answered at once: the verifier adds the round trip to chain deadlines.
            Some(In::RttProbe(p)) => {
                let _ = tx
                    .send(agent_message(Out::RttEcho(v1::RttEcho { nonce: p.nonce })))
                    .await;
            }
            Some(In::FaultReceipt(r)) => {
                if r.accepted {
                    tracing::warn!(
                        sector = r.sector,
                        period = r.period,
                        "sector declared faulty for its next deadline"
                    );
                } else {
                    tracing::error!(sector = r.sector, period = r.period, reason = %r.reason, "fault declaration refused");
                }
            }
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
        let (storage, key, done, at, out) = (
            storage.clone(),
            session_key.clone(),
            memory.done_tx.clone(),
            Instant::now(),
            tx.clone(),
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
                Err(err) => {
                    // The sector cannot be read now: declare its next deadline faulty, far
                    // ahead of that deadline's cutoff. A declared fault costs half a miss
                    // and is no failed audit; should the sector be readable again by then,
                    // its proof still counts as a pass.
                    let next = FaultDeclaration::sign(
                        &key,
                        challenge.sector,
                        challenge.deadline.period + 1,
                        challenge.deadline.index,
                    );
                    let declaration = agent_message(Out::FaultDeclaration(
                        wire::fault_declaration_to_wire(&next),
                    ));
                    let _ = out.blocking_send(declaration);
                    Done::Failed {
                        challenge: id,
                        error: format!("sector {}: {err}", challenge.sector.0),
                    }
                }
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

    async fn on_chain_challenge(
        &self,
        w: &v1::GpuChallenge,
        session_key: &Arc<NodeKey>,
        memory: &mut Memory,
        tx: &mpsc::Sender<v1::AgentMessage>,
    ) {
        let (Work::Gpu(gpu), Ok(challenge), Ok(id)) = (
            &self.work,
            gpu_wire::chain_challenge_from_wire(w),
            wire::challenge_from_wire(&w.challenge_id),
        ) else {
            tracing::warn!("ignoring a GPU chain challenge this agent cannot answer");
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
            let _ = done.send(match gpu.compute_chain(&challenge) {
                Ok(computed) => Done::Chain {
                    challenge: id,
                    computed: Box::new(computed),
                    session_key: key,
                    at,
                },
                Err(refused) => Done::Failed {
                    challenge: id,
                    error: refused.to_string(),
                },
            });
        });
    }

    async fn on_sample_request(
        &self,
        w: &v1::RowRequest,
        memory: &mut Memory,
        tx: &mpsc::Sender<v1::AgentMessage>,
    ) {
        let Ok(request) = gpu_wire::sample_request_from_wire(w) else {
            return;
        };
        let Some((work, key)) = memory.chains.get(&request.challenge) else {
            tracing::warn!(challenge = %request.challenge.to_hex(), "sample request for a chain this agent does not hold");
            return;
        };
        let opening = work.open(&request, key);
        let message = agent_message(Out::GpuOpening(gpu_wire::chain_opening_to_wire(
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
        memory.chains.remove(&receipt.challenge);
        if let (ProofKind::Meter, Work::Meter(meter)) = (pending.kind, &self.work)
            && let Err(err) =
                meter.on_receipt(&receipt.challenge, &pending.message, decided.verdict)
        {
            tracing::error!(%err, "cannot update the meter chain after a receipt");
        }
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

    /// Sends finished work and files it in the outbox.
    pub(crate) async fn on_done(
        &self,
        done: Done,
        memory: &mut Memory,
        tx: &mpsc::Sender<v1::AgentMessage>,
    ) {
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
                    Work::Storage(_) | Work::Meter(_) | Work::Hotspot(_) => "cpu",
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
            Done::Chain {
                challenge,
                computed,
                session_key,
                at,
            } => {
                let backend = match &self.work {
                    Work::Gpu(gpu) => gpu.backend.label(),
                    Work::Storage(_) | Work::Meter(_) | Work::Hotspot(_) => "cpu",
                };
                self.metrics
                    .gpu_tops
                    .with_label_values(&[backend])
                    .set(computed.tops);
                tracing::info!(
                    backend,
                    elapsed_ms = computed.elapsed.as_millis(),
                    tops = computed.tops,
                    "GPU chain computed"
                );
                let commitment = computed.work.commit(&session_key);
                let message = agent_message(Out::GpuCommitment(
                    gpu_wire::chain_commitment_to_wire(&session_key.public(), &commitment),
                ));
                memory
                    .chains
                    .insert(challenge, (Arc::new(computed.work), session_key));
                (challenge, ProofKind::Gpu, message, at)
            }
            Done::Report {
                challenge,
                kind,
                message,
            } => (challenge, kind, message, Instant::now()),
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
