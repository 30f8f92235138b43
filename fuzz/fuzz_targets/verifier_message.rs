//! What an agent accepts from a verifier: any bytes as a `VerifierMessage`, then the
//! matching `*_from_wire`. Nothing may panic, and a message that decodes must be carried
//! whole (encoding it again gives the wire message back, or for receipts, whose amounts are
//! text, decodes to the same receipt).
#![no_main]

use depin_proof::RejectReason;
use depin_proof::identity::{NodeKey, PublicKey};
use depin_proto::gpu_wire::{
    chain_challenge_from_wire, chain_challenge_to_wire, sample_request_from_wire,
    sample_request_to_wire,
};
use depin_proto::v1::{self, verifier_message::Body};
use depin_proto::wire::*;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn node() -> PublicKey {
    NodeKey::from_seed([7; 32]).public()
}

/// A receipt (and the original a Replay points to) decodes to a fixed point.
fn receipt(w: &v1::Receipt) {
    if let Ok(r) = receipt_from_wire(node(), w) {
        let original = w
            .original
            .as_deref()
            .and_then(|o| receipt_from_wire(node(), o).ok());
        let again = receipt_to_wire(&r, original.as_ref());
        assert_eq!(receipt_from_wire(node(), &again), Ok(r));
    }
    if let Some(o) = &w.original {
        receipt(o);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(message) = v1::VerifierMessage::decode(data) else {
        return;
    };
    match message.body {
        None | Some(Body::Welcome(_) | Body::RttProbe(_)) => {}
        Some(Body::ServerHello(w)) => {
            if let Ok(key) = key_from_wire(&w.verifier_key) {
                assert_eq!(key.as_bytes().as_slice(), w.verifier_key.as_slice());
            }
        }
        Some(Body::CommitmentReceipts(w)) => {
            for r in &w.receipts {
                if let Some(reason) = RejectReason::from_name(&r.reason) {
                    assert_eq!(reason.as_str(), r.reason);
                }
            }
        }
        Some(Body::StorageChallenge(w)) => {
            if let (Ok((challenge, k)), Ok(id)) = (
                storage_challenge_from_wire(&w),
                challenge_from_wire(&w.challenge_id),
            ) {
                assert_eq!(storage_challenge_to_wire(&challenge, id, k), w);
            }
        }
        Some(Body::GpuChallenge(w)) => {
            let id = challenge_from_wire(&w.challenge_id);
            if let (Ok(challenge), Ok(id)) = (gpu_challenge_from_wire(&w), id) {
                let classic = v1::GpuChallenge {
                    stages: 0,
                    class_name: String::new(),
                    ..w.clone()
                };
                assert_eq!(
                    gpu_challenge_to_wire(&challenge, id, w.deadline_ms),
                    classic
                );
            }
            if let (Ok(challenge), Ok(id)) = (chain_challenge_from_wire(&w), id) {
                let again = chain_challenge_to_wire(&challenge, id, w.deadline_ms, &w.class_name);
                assert_eq!(again, w);
            }
        }
        Some(Body::RowRequest(w)) => {
            if let Ok(request) = row_request_from_wire(&w) {
                let classic = v1::RowRequest {
                    stages: vec![],
                    ..w.clone()
                };
                assert_eq!(row_request_to_wire(&request), classic);
            }
            if let Ok(request) = sample_request_from_wire(&w) {
                assert_eq!(sample_request_to_wire(&request), w);
            }
        }
        Some(Body::Receipt(w)) => receipt(&w),
        Some(Body::BeaconChallenge(w)) => {
            if let Ok(entropy) = beacon_challenge_from_wire(&w) {
                assert_eq!(beacon_challenge_to_wire(&entropy), w);
            }
        }
        Some(Body::FaultReceipt(w)) => {
            if let Some(reason) = RejectReason::from_name(&w.reason) {
                assert_eq!(reason.as_str(), w.reason);
            }
        }
    }
});
