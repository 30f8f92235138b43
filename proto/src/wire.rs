//! Between the wire messages (`v1`) and the domain messages of depin-proof.
//!
//! The gRPC layer stays thin: a handler decodes with a `*_from_wire` function (any bad
//! length or size is `RejectReason::Malformed`), calls a depin-proof verifier or prover,
//! and encodes the result with a `*_to_wire` function. Nothing here checks a signature.

use depin_proof::RejectReason;
use depin_proof::entropy::{ChallengeId, Entropy};
use depin_proof::gpu::{
    GpuChallenge, GpuCommitment, GpuOpening, MAX_MATRIX_N, RowOpening, RowRequest,
};
use depin_proof::identity::PublicKey;
use depin_proof::merkle::MerklePath;
use depin_proof::meter::{Reading, SignedReading};
use depin_proof::poc::{BEACON_PAYLOAD_SIZE, BeaconReport, WitnessReport};
use depin_proof::receipt::{ProofKind, Receipt, TallySnapshot};
use depin_proof::session::{ServerNonce, SessionHello};
use depin_proof::storage::{
    Deadline, LeafOpening, SectorCommitment, SectorId, SignedSectorCommitment, StorageChallenge,
    StorageResponse,
};

use crate::v1;

/// Most leaves one storage response may open (k); far above any sane policy.
pub const MAX_OPENINGS: usize = 4096;
/// Most rows one GPU opening may carry.
pub const MAX_ROWS: usize = 4096;
/// Most sector commitments one message may carry.
pub const MAX_COMMITMENTS: usize = 65_536;
/// Longest LoRa data rate name accepted (e.g. `SF12BW500` is 9).
pub const MAX_DATARATE_BYTES: usize = 16;
/// Longest meter serial accepted, bytes (SunSpec common model `SN` is 32 bytes).
pub const MAX_SERIAL_BYTES: usize = 64;

/// A response as the verifier files it: the challenge it answers and the session key that
/// signed it (which may belong to an earlier session of the same node, after a reconnect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed<T> {
    /// The challenge answered.
    pub challenge: ChallengeId,
    /// The session key the message is signed with.
    pub session_key: PublicKey,
    /// The domain message.
    pub message: T,
}

pub(crate) fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], RejectReason> {
    bytes.try_into().map_err(|_| RejectReason::Malformed)
}

/// A 32-byte public key.
pub fn key_from_wire(bytes: &[u8]) -> Result<PublicKey, RejectReason> {
    PublicKey::from_bytes(bytes, "key").map_err(|_| RejectReason::Malformed)
}

/// A 32-byte challenge id.
pub fn challenge_from_wire(bytes: &[u8]) -> Result<ChallengeId, RejectReason> {
    fixed(bytes).map(ChallengeId)
}

pub(crate) fn entropy_from_wire(entropy: Option<&v1::Entropy>) -> Result<Entropy, RejectReason> {
    let entropy = entropy.ok_or(RejectReason::Malformed)?;
    Ok(Entropy {
        tick: entropy.tick,
        value: fixed(&entropy.value)?,
    })
}

pub(crate) fn entropy_to_wire(entropy: &Entropy) -> v1::Entropy {
    v1::Entropy {
        tick: entropy.tick,
        value: entropy.value.to_vec(),
    }
}

/// The agent's hello.
pub fn hello_to_wire(hello: &SessionHello, role: &str, agent_version: &str) -> v1::Hello {
    v1::Hello {
        node_key: hello.node.as_bytes().to_vec(),
        session_key: hello.session_key.as_bytes().to_vec(),
        nonce: hello.nonce.0.to_vec(),
        signature: hello.signature.to_vec(),
        role: role.to_string(),
        agent_version: agent_version.to_string(),
    }
}

/// Decodes a hello (its signature is checked by `verify_hello`).
pub fn hello_from_wire(hello: &v1::Hello) -> Result<SessionHello, RejectReason> {
    Ok(SessionHello {
        node: key_from_wire(&hello.node_key)?,
        session_key: key_from_wire(&hello.session_key)?,
        nonce: ServerNonce(fixed(&hello.nonce)?),
        signature: fixed(&hello.signature)?,
    })
}

/// A signed sector commitment (the node key travels in the hello, not here).
pub fn commitment_to_wire(signed: &SignedSectorCommitment) -> v1::SectorCommitment {
    let c = &signed.commitment;
    v1::SectorCommitment {
        sector: c.sector.0,
        sector_bytes: c.sector_bytes,
        leaf_size: c.leaf_size,
        leaf_count: c.leaf_count,
        root: c.root.to_vec(),
        signature: signed.signature.to_vec(),
    }
}

/// Decodes a sector commitment made by `node`.
pub fn commitment_from_wire(
    node: PublicKey,
    wire: &v1::SectorCommitment,
) -> Result<SignedSectorCommitment, RejectReason> {
    Ok(SignedSectorCommitment {
        node,
        commitment: SectorCommitment {
            sector: SectorId(wire.sector),
            sector_bytes: wire.sector_bytes,
            leaf_size: wire.leaf_size,
            leaf_count: wire.leaf_count,
            root: fixed(&wire.root)?,
        },
        signature: fixed(&wire.signature)?,
    })
}

/// A fault declaration as sent.
pub fn fault_declaration_to_wire(
    d: &depin_proof::storage::FaultDeclaration,
) -> v1::FaultDeclaration {
    v1::FaultDeclaration {
        sector: d.sector.0,
        period: d.period,
        deadline_index: d.deadline_index,
        signature: d.signature.to_vec(),
    }
}

/// Decodes a fault declaration (its signature is checked against the session key).
pub fn fault_declaration_from_wire(
    wire: &v1::FaultDeclaration,
) -> Result<depin_proof::storage::FaultDeclaration, RejectReason> {
    Ok(depin_proof::storage::FaultDeclaration {
        sector: SectorId(wire.sector),
        period: wire.period,
        deadline_index: wire.deadline_index,
        signature: fixed(&wire.signature)?,
    })
}

/// A storage challenge with its id and the number of leaves to open (k).
pub fn storage_challenge_to_wire(
    challenge: &StorageChallenge,
    id: ChallengeId,
    leaves_to_open: u32,
) -> v1::StorageChallenge {
    v1::StorageChallenge {
        challenge_id: id.0.to_vec(),
        sector: challenge.sector.0,
        period: challenge.deadline.period,
        deadline_index: challenge.deadline.index,
        opens_at_ms: challenge.deadline.opens_at_ms,
        closes_at_ms: challenge.deadline.closes_at_ms,
        entropy: Some(entropy_to_wire(&challenge.entropy)),
        challenges_per_deadline: leaves_to_open,
    }
}

/// Decodes a storage challenge; returns it with k.
pub fn storage_challenge_from_wire(
    wire: &v1::StorageChallenge,
) -> Result<(StorageChallenge, u32), RejectReason> {
    if usize::try_from(wire.challenges_per_deadline).map_or(true, |k| k > MAX_OPENINGS) {
        return Err(RejectReason::Malformed);
    }
    let challenge = StorageChallenge {
        sector: SectorId(wire.sector),
        deadline: Deadline {
            period: wire.period,
            index: wire.deadline_index,
            opens_at_ms: wire.opens_at_ms,
            closes_at_ms: wire.closes_at_ms,
        },
        entropy: entropy_from_wire(wire.entropy.as_ref())?,
    };
    Ok((challenge, wire.challenges_per_deadline))
}

/// A storage response filed under its challenge and session key.
pub fn storage_response_to_wire(filed: &Filed<StorageResponse>) -> v1::StorageResponse {
    let r = &filed.message;
    v1::StorageResponse {
        challenge_id: filed.challenge.0.to_vec(),
        session_key: filed.session_key.as_bytes().to_vec(),
        sector: r.sector.0,
        period: r.period,
        deadline_index: r.deadline_index,
        entropy_tick: r.entropy_tick,
        openings: r
            .openings
            .iter()
            .map(|o| v1::LeafOpening {
                leaf: o.leaf.clone(),
                path: o.path.to_bytes(),
            })
            .collect(),
        signature: r.signature.to_vec(),
    }
}

/// Decodes a storage response (by value: the leaves, ~0.75 MiB at k = 46, move rather
/// than copy).
pub fn storage_response_from_wire(
    wire: v1::StorageResponse,
) -> Result<Filed<StorageResponse>, RejectReason> {
    if wire.openings.len() > MAX_OPENINGS {
        return Err(RejectReason::Malformed);
    }
    let openings = wire
        .openings
        .into_iter()
        .map(|o| {
            Ok(LeafOpening {
                path: MerklePath::from_bytes(&o.path)?,
                leaf: o.leaf,
            })
        })
        .collect::<Result<Vec<_>, RejectReason>>()?;
    Ok(Filed {
        challenge: challenge_from_wire(&wire.challenge_id)?,
        session_key: key_from_wire(&wire.session_key)?,
        message: StorageResponse {
            sector: SectorId(wire.sector),
            period: wire.period,
            deadline_index: wire.deadline_index,
            entropy_tick: wire.entropy_tick,
            openings,
            signature: fixed(&wire.signature)?,
        },
    })
}

/// A GPU challenge with its id and the commitment deadline.
pub fn gpu_challenge_to_wire(
    challenge: &GpuChallenge,
    id: ChallengeId,
    deadline_ms: u64,
) -> v1::GpuChallenge {
    v1::GpuChallenge {
        challenge_id: id.0.to_vec(),
        entropy: Some(entropy_to_wire(&challenge.entropy)),
        nonce: challenge.nonce.to_vec(),
        n: challenge.n,
        issued_at_ms: challenge.issued_at_ms,
        deadline_ms,
        ..v1::GpuChallenge::default()
    }
}

/// Decodes a GPU challenge (n bounded by `MAX_MATRIX_N`).
pub fn gpu_challenge_from_wire(wire: &v1::GpuChallenge) -> Result<GpuChallenge, RejectReason> {
    if wire.n == 0 || wire.n > MAX_MATRIX_N {
        return Err(RejectReason::Malformed);
    }
    Ok(GpuChallenge {
        entropy: entropy_from_wire(wire.entropy.as_ref())?,
        nonce: fixed(&wire.nonce)?,
        n: wire.n,
        issued_at_ms: wire.issued_at_ms,
    })
}

/// A GPU commitment signed by `session_key`.
pub fn gpu_commitment_to_wire(session_key: &PublicKey, c: &GpuCommitment) -> v1::GpuCommitment {
    v1::GpuCommitment {
        challenge_id: c.challenge.0.to_vec(),
        session_key: session_key.as_bytes().to_vec(),
        n: c.n,
        root: c.root.to_vec(),
        signature: c.signature.to_vec(),
        ..v1::GpuCommitment::default()
    }
}

/// Decodes a GPU commitment.
pub fn gpu_commitment_from_wire(
    wire: &v1::GpuCommitment,
) -> Result<Filed<GpuCommitment>, RejectReason> {
    let challenge = challenge_from_wire(&wire.challenge_id)?;
    Ok(Filed {
        challenge,
        session_key: key_from_wire(&wire.session_key)?,
        message: GpuCommitment {
            challenge,
            n: wire.n,
            root: fixed(&wire.root)?,
            signature: fixed(&wire.signature)?,
        },
    })
}

/// The rows the verifier wants opened.
pub fn row_request_to_wire(request: &RowRequest) -> v1::RowRequest {
    v1::RowRequest {
        challenge_id: request.challenge.0.to_vec(),
        rows: request.rows.clone(),
        ..v1::RowRequest::default()
    }
}

/// Decodes a row request.
pub fn row_request_from_wire(wire: &v1::RowRequest) -> Result<RowRequest, RejectReason> {
    if wire.rows.len() > MAX_ROWS {
        return Err(RejectReason::Malformed);
    }
    Ok(RowRequest {
        challenge: challenge_from_wire(&wire.challenge_id)?,
        rows: wire.rows.clone(),
    })
}

/// A GPU opening signed by `session_key`.
pub fn gpu_opening_to_wire(session_key: &PublicKey, opening: &GpuOpening) -> v1::GpuOpening {
    v1::GpuOpening {
        challenge_id: opening.challenge.0.to_vec(),
        session_key: session_key.as_bytes().to_vec(),
        rows: opening
            .rows
            .iter()
            .map(|r| v1::RowOpening {
                index: r.index,
                values: r.row.clone(),
                path: r.path.to_bytes(),
            })
            .collect(),
        signature: opening.signature.to_vec(),
        ..v1::GpuOpening::default()
    }
}

/// Decodes a GPU opening (by value: rows move rather than copy).
pub fn gpu_opening_from_wire(wire: v1::GpuOpening) -> Result<Filed<GpuOpening>, RejectReason> {
    let too_wide =
        |r: &v1::RowOpening| usize::try_from(MAX_MATRIX_N).map_or(true, |max| r.values.len() > max);
    if wire.rows.len() > MAX_ROWS || wire.rows.iter().any(too_wide) {
        return Err(RejectReason::Malformed);
    }
    let challenge = challenge_from_wire(&wire.challenge_id)?;
    let rows = wire
        .rows
        .into_iter()
        .map(|r| {
            Ok(RowOpening {
                index: r.index,
                path: MerklePath::from_bytes(&r.path)?,
                row: r.values,
            })
        })
        .collect::<Result<Vec<_>, RejectReason>>()?;
    Ok(Filed {
        challenge,
        session_key: key_from_wire(&wire.session_key)?,
        message: GpuOpening {
            challenge,
            rows,
            signature: fixed(&wire.signature)?,
        },
    })
}

/// A signed meter reading (the node key travels in the hello, not here).
pub fn meter_reading_to_wire(signed: &SignedReading) -> v1::MeterReading {
    let r = &signed.reading;
    v1::MeterReading {
        meter_serial: r.meter_serial.clone(),
        seq: r.seq,
        slot: r.slot,
        cumulative_wh: r.cumulative_wh,
        avg_w: r.avg_w,
        samples: r.samples,
        prev_hash: r.prev_hash.to_vec(),
        signature: signed.signature.to_vec(),
    }
}

/// Decodes a meter reading made by `node` (its signature is checked by `verify_reading`).
pub fn meter_reading_from_wire(
    node: PublicKey,
    wire: &v1::MeterReading,
) -> Result<SignedReading, RejectReason> {
    if wire.meter_serial.len() > MAX_SERIAL_BYTES {
        return Err(RejectReason::Malformed);
    }
    Ok(SignedReading {
        node,
        reading: Reading {
            meter_serial: wire.meter_serial.clone(),
            seq: wire.seq,
            slot: wire.slot,
            cumulative_wh: wire.cumulative_wh,
            avg_w: wire.avg_w,
            samples: wire.samples,
            prev_hash: fixed(&wire.prev_hash)?,
        },
        signature: fixed(&wire.signature)?,
    })
}

/// A beacon challenge: transmit now with `entropy`.
pub fn beacon_challenge_to_wire(entropy: &Entropy) -> v1::BeaconChallenge {
    v1::BeaconChallenge {
        entropy: Some(entropy_to_wire(entropy)),
    }
}

/// Decodes a beacon challenge.
pub fn beacon_challenge_from_wire(wire: &v1::BeaconChallenge) -> Result<Entropy, RejectReason> {
    entropy_from_wire(wire.entropy.as_ref())
}

/// The id a PoC report's receipt carries: BLAKE3 of the report's signed bytes (unique per
/// report, computable by both sides).
pub fn report_id(signing_bytes: &[u8]) -> ChallengeId {
    ChallengeId(*blake3::hash(signing_bytes).as_bytes())
}

fn payload_and_datarate(data: &[u8], datarate: &str) -> Result<(), RejectReason> {
    if data.len() > BEACON_PAYLOAD_SIZE * 4 || datarate.len() > MAX_DATARATE_BYTES {
        return Err(RejectReason::Malformed);
    }
    Ok(())
}

/// A signed beacon report (the beaconer's key travels in the hello).
pub fn beacon_report_to_wire(report: &BeaconReport) -> v1::BeaconReport {
    v1::BeaconReport {
        entropy: Some(entropy_to_wire(&report.entropy)),
        local_entropy: report.local_entropy,
        data: report.data.clone(),
        frequency_hz: report.frequency_hz,
        datarate: report.datarate.clone(),
        tx_power_ddbm: report.tx_power_ddbm,
        timestamp_ms: report.timestamp_ms,
        signature: report.signature.to_vec(),
    }
}

/// Decodes a beacon report made by `beaconer`.
pub fn beacon_report_from_wire(
    beaconer: PublicKey,
    wire: &v1::BeaconReport,
) -> Result<BeaconReport, RejectReason> {
    payload_and_datarate(&wire.data, &wire.datarate)?;
    Ok(BeaconReport {
        beaconer,
        entropy: entropy_from_wire(wire.entropy.as_ref())?,
        local_entropy: wire.local_entropy,
        data: wire.data.clone(),
        frequency_hz: wire.frequency_hz,
        datarate: wire.datarate.clone(),
        tx_power_ddbm: wire.tx_power_ddbm,
        timestamp_ms: wire.timestamp_ms,
        signature: fixed(&wire.signature)?,
    })
}

/// A signed witness report (the witness's key travels in the hello).
pub fn witness_report_to_wire(report: &WitnessReport) -> v1::WitnessReport {
    v1::WitnessReport {
        data: report.data.clone(),
        timestamp_ms: report.timestamp_ms,
        tmst: report.tmst,
        signal_ddbm: report.signal_ddbm,
        snr_ddb: report.snr_ddb,
        frequency_hz: report.frequency_hz,
        datarate: report.datarate.clone(),
        signature: report.signature.to_vec(),
    }
}

/// Decodes a witness report made by `witness`.
pub fn witness_report_from_wire(
    witness: PublicKey,
    wire: &v1::WitnessReport,
) -> Result<WitnessReport, RejectReason> {
    payload_and_datarate(&wire.data, &wire.datarate)?;
    Ok(WitnessReport {
        witness,
        data: wire.data.clone(),
        timestamp_ms: wire.timestamp_ms,
        tmst: wire.tmst,
        signal_ddbm: wire.signal_ddbm,
        snr_ddb: wire.snr_ddb,
        frequency_hz: wire.frequency_hz,
        datarate: wire.datarate.clone(),
        signature: fixed(&wire.signature)?,
    })
}

/// A receipt, with the original receipt a Replay refers to.
pub fn receipt_to_wire(receipt: &Receipt, original: Option<&Receipt>) -> v1::Receipt {
    v1::Receipt {
        challenge_id: receipt.challenge.0.to_vec(),
        proof: receipt.proof.as_str().to_string(),
        accepted: receipt.verdict.is_ok(),
        reason: receipt
            .verdict
            .err()
            .map_or(String::new(), |r| r.as_str().to_string()),
        recorded: receipt.recorded,
        tally: receipt.tally.map(|t| v1::Tally {
            epoch: t.epoch,
            accepted: t.accepted,
            rejected: t.rejected,
            work_units: t.work_units.to_string(),
        }),
        issued_at_ms: receipt.issued_at_ms,
        signature: receipt.signature.to_vec(),
        original: original.map(|o| Box::new(receipt_to_wire(o, None))),
    }
}

/// Decodes a receipt addressed to `node` (the wire form leaves the node implicit).
pub fn receipt_from_wire(node: PublicKey, wire: &v1::Receipt) -> Result<Receipt, RejectReason> {
    let verdict = if wire.accepted {
        Ok(())
    } else {
        Err(RejectReason::from_name(&wire.reason).ok_or(RejectReason::Malformed)?)
    };
    let tally = wire
        .tally
        .as_ref()
        .map(|t| {
            Ok::<_, RejectReason>(TallySnapshot {
                epoch: t.epoch,
                accepted: t.accepted,
                rejected: t.rejected,
                work_units: t.work_units.parse().map_err(|_| RejectReason::Malformed)?,
            })
        })
        .transpose()?;
    Ok(Receipt {
        node,
        challenge: challenge_from_wire(&wire.challenge_id)?,
        proof: ProofKind::from_name(&wire.proof).ok_or(RejectReason::Malformed)?,
        verdict,
        recorded: wire.recorded,
        tally,
        issued_at_ms: wire.issued_at_ms,
        signature: fixed(&wire.signature)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_proof::identity::NodeKey;

    #[test]
    fn receipts_survive_the_wire_with_their_signature() {
        let verifier = NodeKey::from_seed([1; 32]);
        let node = NodeKey::from_seed([2; 32]).public();
        let receipt = Receipt::sign(
            &verifier,
            node,
            ChallengeId([3; 32]),
            ProofKind::Gpu,
            Err(RejectReason::TooSlow),
            true,
            Some(TallySnapshot {
                epoch: 1,
                accepted: 2,
                rejected: 3,
                work_units: u128::from(u64::MAX) + 7,
            }),
            42,
        );
        let back = receipt_from_wire(node, &receipt_to_wire(&receipt, None)).expect("decodes");
        assert_eq!(back, receipt);
        assert!(back.verify(&verifier.public()));
    }

    #[test]
    fn meter_readings_survive_the_wire_with_their_signature() {
        let key = NodeKey::from_seed([4; 32]);
        let mut head = depin_proof::meter::ChainHead::default();
        let first = head.next(&key, "SN-1", 10, 500, 0, 1).expect("first");
        let second = head.next(&key, "SN-1", 11, 520, 1200, 12).expect("second");
        for signed in [first, second] {
            let back = meter_reading_from_wire(key.public(), &meter_reading_to_wire(&signed))
                .expect("decodes");
            assert_eq!(back, signed);
            assert_eq!(back.hash(), signed.hash());
        }
        let long = v1::MeterReading {
            meter_serial: "x".repeat(MAX_SERIAL_BYTES + 1),
            prev_hash: vec![0; 32],
            signature: vec![0; 64],
            ..v1::MeterReading::default()
        };
        assert_eq!(
            meter_reading_from_wire(key.public(), &long),
            Err(RejectReason::Malformed)
        );
    }

    #[test]
    fn poc_reports_survive_the_wire_with_their_signature() {
        use depin_proof::entropy::{Beacon, EntropyConfig};
        use depin_proof::poc::{Region, derive_beacon};
        let key = NodeKey::from_seed([5; 32]);
        let entropy = Beacon::new([1; 32], EntropyConfig::default()).entropy(3);
        assert_eq!(
            beacon_challenge_from_wire(&beacon_challenge_to_wire(&entropy)),
            Ok(entropy)
        );
        let derived = derive_beacon(&entropy, 7, &key.public(), Region::EU868);
        let beacon = BeaconReport::sign(&key, entropy, 7, derived.clone(), 160, 99);
        let back = beacon_report_from_wire(key.public(), &beacon_report_to_wire(&beacon))
            .expect("decodes");
        assert_eq!(back, beacon);
        let witness = WitnessReport::sign(
            &key,
            WitnessReport {
                witness: key.public(),
                data: derived.data,
                timestamp_ms: 100,
                tmst: 5,
                signal_ddbm: -1_105,
                snr_ddb: -75,
                frequency_hz: derived.frequency_hz,
                datarate: derived.datarate,
                signature: [0; 64],
            },
        );
        let back = witness_report_from_wire(key.public(), &witness_report_to_wire(&witness))
            .expect("decodes");
        assert_eq!(back, witness);
        assert_ne!(
            report_id(&back.signing_bytes()),
            report_id(&beacon.signing_bytes())
        );
    }

    #[test]
    fn bad_lengths_are_malformed() {
        let hello = v1::Hello {
            node_key: vec![0; 31],
            ..v1::Hello::default()
        };
        assert_eq!(hello_from_wire(&hello), Err(RejectReason::Malformed));
        let challenge = v1::GpuChallenge {
            n: MAX_MATRIX_N + 1,
            ..v1::GpuChallenge::default()
        };
        assert_eq!(
            gpu_challenge_from_wire(&challenge),
            Err(RejectReason::Malformed)
        );
        let response = v1::StorageResponse {
            challenge_id: vec![0; 32],
            session_key: NodeKey::from_seed([2; 32]).public().as_bytes().to_vec(),
            openings: vec![v1::LeafOpening {
                leaf: vec![1],
                path: vec![0; 33],
            }],
            signature: vec![0; 64],
            ..v1::StorageResponse::default()
        };
        assert_eq!(
            storage_response_from_wire(response),
            Err(RejectReason::Malformed)
        );
    }
}
