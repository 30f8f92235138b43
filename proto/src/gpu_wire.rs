//! Between the wire messages and depin-proof's GPU chain proof (see `wire` for the rules:
//! decoding failures are `Malformed`, no signature is checked here).

use depin_proof::RejectReason;
use depin_proof::entropy::ChallengeId;
use depin_proof::gpu::{
    ChainChallenge, ChainCommitment, ChainOpening, MAX_MATRIX_N, MAX_SAMPLES, MAX_STAGES,
    OpenedRow, Sample, SampleRequest, StageOpening,
};
use depin_proof::identity::PublicKey;
use depin_proof::merkle::MerklePath;

use crate::v1;
use crate::wire::{
    Filed, challenge_from_wire, entropy_from_wire, entropy_to_wire, fixed, key_from_wire,
};

/// A chain challenge with its id, the commitment deadline and the class name.
pub fn chain_challenge_to_wire(
    challenge: &ChainChallenge,
    id: ChallengeId,
    deadline_ms: u64,
    class_name: &str,
) -> v1::GpuChallenge {
    v1::GpuChallenge {
        challenge_id: id.0.to_vec(),
        entropy: Some(entropy_to_wire(&challenge.entropy)),
        nonce: challenge.nonce.to_vec(),
        n: challenge.n,
        issued_at_ms: challenge.issued_at_ms,
        deadline_ms,
        stages: challenge.stages,
        class_name: class_name.to_string(),
    }
}

/// Decodes a chain challenge (n a power of two ≤ `MAX_MATRIX_N`, 1..=`MAX_STAGES` stages).
pub fn chain_challenge_from_wire(wire: &v1::GpuChallenge) -> Result<ChainChallenge, RejectReason> {
    if !wire.n.is_power_of_two()
        || wire.n < 2
        || wire.n > MAX_MATRIX_N
        || wire.stages == 0
        || wire.stages > MAX_STAGES
    {
        return Err(RejectReason::Malformed);
    }
    Ok(ChainChallenge {
        entropy: entropy_from_wire(wire.entropy.as_ref())?,
        nonce: fixed(&wire.nonce)?,
        n: wire.n,
        stages: wire.stages,
        issued_at_ms: wire.issued_at_ms,
    })
}

/// A chain commitment signed by `session_key`.
pub fn chain_commitment_to_wire(session_key: &PublicKey, c: &ChainCommitment) -> v1::GpuCommitment {
    v1::GpuCommitment {
        challenge_id: c.challenge.0.to_vec(),
        session_key: session_key.as_bytes().to_vec(),
        n: c.n,
        stage_roots: c.stage_roots.iter().map(|r| r.to_vec()).collect(),
        signature: c.signature.to_vec(),
        ..v1::GpuCommitment::default()
    }
}

/// Decodes a chain commitment (at most `MAX_STAGES` roots of 32 bytes).
pub fn chain_commitment_from_wire(
    wire: &v1::GpuCommitment,
) -> Result<Filed<ChainCommitment>, RejectReason> {
    if wire.stage_roots.len() > MAX_STAGES as usize {
        return Err(RejectReason::Malformed);
    }
    let challenge = challenge_from_wire(&wire.challenge_id)?;
    Ok(Filed {
        challenge,
        session_key: key_from_wire(&wire.session_key)?,
        message: ChainCommitment {
            challenge,
            n: wire.n,
            stage_roots: wire
                .stage_roots
                .iter()
                .map(|r| fixed(r))
                .collect::<Result<_, _>>()?,
            signature: fixed(&wire.signature)?,
        },
    })
}

/// The samples the verifier wants opened.
pub fn sample_request_to_wire(request: &SampleRequest) -> v1::RowRequest {
    v1::RowRequest {
        challenge_id: request.challenge.0.to_vec(),
        rows: request.samples.iter().map(|s| s.index).collect(),
        stages: request.samples.iter().map(|s| s.stage).collect(),
    }
}

/// Decodes a sample request (parallel `rows` and `stages`, at most `MAX_SAMPLES`).
pub fn sample_request_from_wire(wire: &v1::RowRequest) -> Result<SampleRequest, RejectReason> {
    if wire.rows.len() > MAX_SAMPLES as usize || wire.rows.len() != wire.stages.len() {
        return Err(RejectReason::Malformed);
    }
    Ok(SampleRequest {
        challenge: challenge_from_wire(&wire.challenge_id)?,
        samples: wire
            .rows
            .iter()
            .zip(&wire.stages)
            .map(|(&index, &stage)| Sample { stage, index })
            .collect(),
    })
}

fn row_to_wire(row: &OpenedRow) -> v1::StageRow {
    v1::StageRow {
        index: row.index,
        cells: row.row.iter().map(|v| v.to_ne_bytes()[0]).collect(),
        path: row.path.to_bytes(),
    }
}

fn row_from_wire(wire: v1::StageRow) -> Result<OpenedRow, RejectReason> {
    if wire.cells.len() > MAX_MATRIX_N as usize {
        return Err(RejectReason::Malformed);
    }
    Ok(OpenedRow {
        index: wire.index,
        path: MerklePath::from_bytes(&wire.path)?,
        row: wire
            .cells
            .into_iter()
            .map(|b| i8::from_ne_bytes([b]))
            .collect(),
    })
}

/// A chain opening signed by `session_key`.
pub fn chain_opening_to_wire(session_key: &PublicKey, opening: &ChainOpening) -> v1::GpuOpening {
    v1::GpuOpening {
        challenge_id: opening.challenge.0.to_vec(),
        session_key: session_key.as_bytes().to_vec(),
        stage_openings: opening
            .openings
            .iter()
            .map(|o| v1::StageOpening {
                stage: o.stage,
                row: Some(row_to_wire(&o.row)),
                inputs: o.inputs.iter().map(row_to_wire).collect(),
            })
            .collect(),
        signature: opening.signature.to_vec(),
        ..v1::GpuOpening::default()
    }
}

/// Decodes a chain opening (by value: rows move rather than copy). At most `MAX_SAMPLES`
/// openings of at most two inputs each, rows at most `MAX_MATRIX_N` wide.
pub fn chain_opening_from_wire(wire: v1::GpuOpening) -> Result<Filed<ChainOpening>, RejectReason> {
    if wire.stage_openings.len() > MAX_SAMPLES as usize
        || wire.stage_openings.iter().any(|o| o.inputs.len() > 2)
    {
        return Err(RejectReason::Malformed);
    }
    let challenge = challenge_from_wire(&wire.challenge_id)?;
    let openings = wire
        .stage_openings
        .into_iter()
        .map(|o| {
            Ok(StageOpening {
                stage: o.stage,
                row: row_from_wire(o.row.ok_or(RejectReason::Malformed)?)?,
                inputs: o
                    .inputs
                    .into_iter()
                    .map(row_from_wire)
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect::<Result<Vec<_>, RejectReason>>()?;
    Ok(Filed {
        challenge,
        session_key: key_from_wire(&wire.session_key)?,
        message: ChainOpening {
            challenge,
            openings,
            signature: fixed(&wire.signature)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_proof::entropy::{Beacon, EntropyConfig};
    use depin_proof::gpu::{ChainWork, GpuClass};
    use depin_proof::identity::NodeKey;

    #[test]
    fn chain_messages_round_trip() {
        let beacon = Beacon::new([1; 32], EntropyConfig::default());
        let class = GpuClass::resolve("test", None, Some(16), Some(3), Some(5)).expect("class");
        let challenge = ChainChallenge::issue(&beacon, &class, 600_000, [3; 32]);
        let node = NodeKey::from_seed([4; 32]);
        let id = challenge.id(&node.public());
        let wire = chain_challenge_to_wire(&challenge, id, 10, "test");
        assert_eq!(chain_challenge_from_wire(&wire), Ok(challenge));

        let work = ChainWork::compute(&challenge, &node.public(), 1).expect("work");
        let commitment = work.commit(&node);
        let filed =
            chain_commitment_from_wire(&chain_commitment_to_wire(&node.public(), &commitment))
                .expect("commitment");
        assert_eq!(filed.message, commitment);

        let request = SampleRequest {
            challenge: id,
            samples: vec![
                Sample { stage: 1, index: 2 },
                Sample {
                    stage: 3,
                    index: 15,
                },
            ],
        };
        assert_eq!(
            sample_request_from_wire(&sample_request_to_wire(&request)),
            Ok(request.clone())
        );
        let opening = work.open(&request, &node);
        let filed = chain_opening_from_wire(chain_opening_to_wire(&node.public(), &opening))
            .expect("opening");
        assert_eq!(filed.message, opening);
    }

    #[test]
    fn oversized_or_inconsistent_messages_are_malformed() {
        let mut challenge = v1::GpuChallenge {
            n: 12,
            stages: 2,
            ..Default::default()
        };
        assert_eq!(
            chain_challenge_from_wire(&challenge),
            Err(RejectReason::Malformed)
        );
        challenge.n = 16;
        challenge.stages = MAX_STAGES + 1;
        assert_eq!(
            chain_challenge_from_wire(&challenge),
            Err(RejectReason::Malformed)
        );
        let commitment = v1::GpuCommitment {
            stage_roots: vec![vec![0; 32]; MAX_STAGES as usize + 1],
            ..Default::default()
        };
        assert_eq!(
            chain_commitment_from_wire(&commitment).err(),
            Some(RejectReason::Malformed)
        );
        let request = v1::RowRequest {
            rows: vec![1, 2],
            stages: vec![1],
            ..Default::default()
        };
        assert_eq!(
            sample_request_from_wire(&request),
            Err(RejectReason::Malformed)
        );
        let opening = v1::GpuOpening {
            stage_openings: vec![v1::StageOpening {
                stage: 1,
                row: None,
                inputs: vec![],
            }],
            ..Default::default()
        };
        assert_eq!(
            chain_opening_from_wire(opening).err(),
            Some(RejectReason::Malformed)
        );
    }
}
