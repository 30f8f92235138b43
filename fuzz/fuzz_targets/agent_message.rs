//! What the verifier accepts from an agent: any bytes as an `AgentMessage` (the session
//! stream's message), then the matching `*_from_wire` on whatever prost decoded. Nothing
//! may panic, and a message that decodes must be carried whole: encoding the domain value
//! again gives back the wire message it came from (minus the fields of the other GPU
//! proof, which share the message type).
#![no_main]

use depin_proof::identity::{NodeKey, PublicKey};
use depin_proto::gpu_wire::{
    chain_commitment_from_wire, chain_commitment_to_wire, chain_opening_from_wire,
    chain_opening_to_wire,
};
use depin_proto::v1::{self, agent_message::Body};
use depin_proto::wire::*;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn node() -> PublicKey {
    NodeKey::from_seed([7; 32]).public()
}

fuzz_target!(|data: &[u8]| {
    let Ok(message) = v1::AgentMessage::decode(data) else {
        return;
    };
    match message.body {
        None => {}
        Some(Body::Hello(w)) => {
            if let Ok(hello) = hello_from_wire(&w) {
                assert_eq!(hello_to_wire(&hello, &w.role, &w.agent_version), w);
            }
        }
        Some(Body::SectorCommitments(w)) => {
            for c in &w.commitments {
                if let Ok(signed) = commitment_from_wire(node(), c) {
                    assert_eq!(&commitment_to_wire(&signed), c);
                }
            }
        }
        Some(Body::StorageResponse(w)) => {
            if let Ok(filed) = storage_response_from_wire(w.clone()) {
                assert_eq!(storage_response_to_wire(&filed), w);
            }
        }
        Some(Body::GpuCommitment(w)) => {
            if let Ok(filed) = gpu_commitment_from_wire(&w) {
                let classic = v1::GpuCommitment {
                    stage_roots: vec![],
                    ..w.clone()
                };
                assert_eq!(
                    gpu_commitment_to_wire(&filed.session_key, &filed.message),
                    classic
                );
            }
            if let Ok(filed) = chain_commitment_from_wire(&w) {
                let chain = v1::GpuCommitment { root: vec![], ..w };
                assert_eq!(
                    chain_commitment_to_wire(&filed.session_key, &filed.message),
                    chain
                );
            }
        }
        Some(Body::GpuOpening(w)) => {
            if let Ok(filed) = gpu_opening_from_wire(w.clone()) {
                let classic = v1::GpuOpening {
                    stage_openings: vec![],
                    ..w.clone()
                };
                assert_eq!(
                    gpu_opening_to_wire(&filed.session_key, &filed.message),
                    classic
                );
            }
            if let Ok(filed) = chain_opening_from_wire(w.clone()) {
                let chain = v1::GpuOpening { rows: vec![], ..w };
                assert_eq!(
                    chain_opening_to_wire(&filed.session_key, &filed.message),
                    chain
                );
            }
        }
        Some(Body::MeterReading(w)) => {
            if let Ok(signed) = meter_reading_from_wire(node(), &w) {
                assert_eq!(meter_reading_to_wire(&signed), w);
            }
        }
        Some(Body::BeaconReport(w)) => {
            if let Ok(report) = beacon_report_from_wire(node(), &w) {
                assert_eq!(beacon_report_to_wire(&report), w);
            }
        }
        Some(Body::WitnessReport(w)) => {
            if let Ok(report) = witness_report_from_wire(node(), &w) {
                assert_eq!(witness_report_to_wire(&report), w);
            }
        }
        Some(Body::RttEcho(_)) => {}
        Some(Body::FaultDeclaration(w)) => {
            if let Ok(declaration) = depin_proto::wire::fault_declaration_from_wire(&w) {
                assert_eq!(depin_proto::wire::fault_declaration_to_wire(&declaration), w);
            }
        }
    }
});
