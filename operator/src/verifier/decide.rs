//! What to do with one agent response: look its challenge up in the node's ledger, run the
//! depin-proof verifier, and move the challenge on. Pure of I/O: the session carries out
//! the returned [`Decision`] (send now, wait for the original receipt, or record first).

use super::Verifier;
use super::ledger::{Challenge, Issued, NodeLedger, State};
use depin_proof::RejectReason;
use depin_proof::entropy::ChallengeId;
use depin_proof::gpu::{
    GpuCommitContext, GpuCommitment, GpuOpenContext, GpuOpening, sample_rows,
    verify_gpu_commitment, verify_gpu_opening,
};
use depin_proof::identity::PublicKey;
use depin_proof::receipt::{ProofKind, Receipt};
use depin_proof::storage::{StorageContext, StorageResponse, verify_storage_response};
use depin_proto::v1;
use depin_proto::wire::{self, Filed};
use std::collections::HashSet;
use tokio::sync::watch;

/// What the session does next.
pub enum Decision {
    /// Send this now; nothing is recorded.
    Reply(v1::VerifierMessage),
    /// The same challenge is being recorded: answer Replay with its receipt once it exists.
    AwaitOriginal {
        /// The challenge.
        challenge: ChallengeId,
        /// Its proof kind.
        kind: ProofKind,
        /// Yields the original receipt.
        original: watch::Receiver<Option<Receipt>>,
    },
    /// Make this result durable, then send its receipt.
    Record {
        /// The challenge.
        challenge: ChallengeId,
        /// Its proof kind.
        kind: ProofKind,
        /// Work units when accepted, else the reason.
        result: Result<u128, RejectReason>,
        /// What earned the units (GPU: the measured throughput class).
        part: Option<&'static str>,
        /// Publishes the receipt to duplicates waiting on it.
        done: watch::Sender<Option<Receipt>>,
    },
}

/// Wraps a receipt for the wire.
pub fn receipt_message(receipt: &Receipt, original: Option<&Receipt>) -> v1::VerifierMessage {
    v1::VerifierMessage {
        body: Some(v1::verifier_message::Body::Receipt(wire::receipt_to_wire(
            receipt, original,
        ))),
    }
}

/// An unrecorded rejection (the challenge is unknown or already settled).
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

/// Answers a response whose challenge is missing or settled; `None` when it is live.
fn settled(
    v: &Verifier,
    ledger: &NodeLedger,
    node: PublicKey,
    id: ChallengeId,
    kind: ProofKind,
) -> Option<Decision> {
    match ledger.challenges.get(&id).map(|issued| &issued.state) {
        None => Some(Decision::Reply(receipt_message(
            &unrecorded(v, node, id, kind, RejectReason::UnknownChallenge),
            None,
        ))),
        Some(State::Answered(original)) => Some(Decision::Reply(receipt_message(
            &unrecorded(v, node, id, kind, RejectReason::Replay),
            Some(original),
        ))),
        Some(State::Recording { receipt, .. }) => {
            v.metrics.count(kind_label(kind), Err(RejectReason::Replay));
            Some(Decision::AwaitOriginal {
                challenge: id,
                kind,
                original: receipt.clone(),
            })
        }
        Some(State::Open | State::Committed(_)) => None,
    }
}

/// Moves `issued` to Recording and returns the decision to record `result`.
fn record(
    v: &Verifier,
    issued: &mut Issued,
    id: ChallengeId,
    result: Result<u128, RejectReason>,
) -> Decision {
    record_part(v, issued, id, result, None)
}

/// [`record`] of work with a part (`status.proofs.workUnitsByPart`).
fn record_part(
    v: &Verifier,
    issued: &mut Issued,
    id: ChallengeId,
    result: Result<u128, RejectReason>,
    part: Option<&'static str>,
) -> Decision {
    // Every session of a challenge belongs to the same node.
    let node = issued.sessions.first().map(|s| s.node);
    let result = v.in_time(node.as_ref(), issued.challenge.work_started_ms(), result);
    v.metrics
        .count(kind_label(issued.challenge.kind()), result.map(|_| ()));
    let (done, receipt) = watch::channel(None);
    let before = std::mem::replace(&mut issued.state, State::Open);
    issued.state = State::Recording {
        receipt,
        before: Box::new(before),
    };
    Decision::Record {
        challenge: id,
        kind: issued.challenge.kind(),
        result,
        part,
        done,
    }
}

/// A storage response.
pub fn storage_response(
    v: &Verifier,
    ledger: &mut NodeLedger,
    node: PublicKey,
    filed: &Filed<StorageResponse>,
    now_ms: u64,
) -> Decision {
    let id = filed.challenge;
    if let Some(decision) = settled(v, ledger, node, id, ProofKind::Storage) {
        return decision;
    }
    let NodeLedger {
        sectors,
        challenges,
    } = ledger;
    let Some(issued) = challenges.get_mut(&id) else {
        return Decision::Reply(receipt_message(
            &unrecorded(
                v,
                node,
                id,
                ProofKind::Storage,
                RejectReason::UnknownChallenge,
            ),
            None,
        ));
    };
    let result = (|| {
        let Challenge::Storage(challenge) = &issued.challenge else {
            return Err(RejectReason::UnknownChallenge);
        };
        let r = &filed.message;
        // The response must name the deadline and beacon draw it was issued for.
        if (r.sector, r.period, r.deadline_index, r.entropy_tick)
            != (
                challenge.sector,
                challenge.deadline.period,
                challenge.deadline.index,
                challenge.entropy.tick,
            )
        {
            return Err(RejectReason::UnknownChallenge);
        }
        let session = issued
            .session_for(&filed.session_key)
            .ok_or(RejectReason::BadSignature)?;
        let no_replays: HashSet<(PublicKey, ChallengeId)> = HashSet::new();
        let ctx = StorageContext {
            params: &v.settings.storage,
            beacon: &v.beacon,
            session,
            sectors: &*sectors,
            seen: &no_replays, // replays are settled by the ledger above
            now_ms,
        };
        let proof = verify_storage_response(r, &ctx)?;
        Ok(sectors
            .get(&proof.sector)
            .map_or(0, |c| u128::from(c.sector_bytes)))
    })();
    record(v, issued, id, result)
}

/// A GPU commitment: accepted commitments get their row request (nothing recorded yet);
/// refused ones are recorded.
pub fn gpu_commitment(
    v: &Verifier,
    ledger: &mut NodeLedger,
    node: PublicKey,
    declared_tops: f64,
    filed: &Filed<GpuCommitment>,
    now_ms: u64,
) -> Decision {
    let id = filed.challenge;
    if let Some(decision) = settled(v, ledger, node, id, ProofKind::Gpu) {
        return decision;
    }
    let Some(issued) = ledger.challenges.get_mut(&id) else {
        return Decision::Reply(receipt_message(
            &unrecorded(v, node, id, ProofKind::Gpu, RejectReason::UnknownChallenge),
            None,
        ));
    };
    if let State::Committed(committed) = &issued.state {
        let (verified, request) = committed.as_ref();
        // The agent re-sent its commitment (reconnect): ask for the same rows again. A
        // different root for the same challenge is a second commitment: Replay.
        return Decision::Reply(if verified.root == filed.message.root {
            row_request_message(request)
        } else {
            receipt_message(
                &unrecorded(v, node, id, ProofKind::Gpu, RejectReason::Replay),
                None,
            )
        });
    }
    let Challenge::Gpu(challenge) = &issued.challenge else {
        return record(v, issued, id, Err(RejectReason::UnknownChallenge));
    };
    let Some(session) = issued.session_for(&filed.session_key) else {
        return record(v, issued, id, Err(RejectReason::BadSignature));
    };
    let no_replays: HashSet<(PublicKey, ChallengeId)> = HashSet::new();
    let ctx = GpuCommitContext {
        params: &v.settings.gpu,
        beacon: &v.beacon,
        session,
        challenge,
        seen: &no_replays,
        declared_tops,
        received_at_ms: now_ms,
    };
    match verify_gpu_commitment(&filed.message, &ctx) {
        Ok(verified) => {
            let request = sample_rows(&v.beacon, &verified, v.settings.gpu.sampled_rows);
            let message = row_request_message(&request);
            issued.state = State::Committed(Box::new((verified, request)));
            Decision::Reply(message)
        }
        Err(reason) => record(v, issued, id, Err(reason)),
    }
}

/// A GPU opening: the proof's final step, always recorded when the commitment was in.
pub fn gpu_opening(
    v: &Verifier,
    ledger: &mut NodeLedger,
    node: PublicKey,
    filed: &Filed<GpuOpening>,
) -> Decision {
    let id = filed.challenge;
    if let Some(decision) = settled(v, ledger, node, id, ProofKind::Gpu) {
        return decision;
    }
    let Some(issued) = ledger.challenges.get_mut(&id) else {
        return Decision::Reply(receipt_message(
            &unrecorded(v, node, id, ProofKind::Gpu, RejectReason::UnknownChallenge),
            None,
        ));
    };
    let State::Committed(committed) = &issued.state else {
        // An opening before any accepted commitment answers nothing we asked.
        return Decision::Reply(receipt_message(
            &unrecorded(v, node, id, ProofKind::Gpu, RejectReason::UnknownChallenge),
            None,
        ));
    };
    let (verified, request) = committed.as_ref();
    let result = match issued.session_for(&filed.session_key) {
        None => Err(RejectReason::BadSignature),
        Some(session) => {
            let ctx = GpuOpenContext {
                session,
                commitment: verified,
                request,
            };
            verify_gpu_opening(&filed.message, &ctx)
        }
    };
    // The throughput class measured at commitment decides the GPU's reward class.
    let class = result.as_ref().ok().map(|proof| proof.class.policy_name());
    let result = result.map(|proof| gpu_work_units(proof.n));
    record_part(v, issued, id, result, class)
}

/// Work units of one verified GPU proof: the int8 operations of the product, 2n³.
pub fn gpu_work_units(n: u32) -> u128 {
    2 * u128::from(n).pow(3)
}

/// The metric `kind` label of a proof (each proof comes from one node kind).
pub fn kind_label(kind: ProofKind) -> &'static str {
    match kind {
        ProofKind::Storage => "StorageNode",
        ProofKind::Gpu => "GpuWorker",
        ProofKind::Meter => "MeterBridge",
        ProofKind::Hotspot => "HotspotGateway",
    }
}

fn row_request_message(request: &depin_proof::gpu::RowRequest) -> v1::VerifierMessage {
    v1::VerifierMessage {
        body: Some(v1::verifier_message::Body::RowRequest(
            wire::row_request_to_wire(request),
        )),
    }
}
