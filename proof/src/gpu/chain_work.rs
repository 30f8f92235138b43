//! Prover side of the chain proof (the GPU agent's CPU backend): compute the K stages,
//! commit to their roots, open the sampled rows.

use super::chain::{next_stage, partner, stage_tree};
use super::chain_messages::{
    CHAIN_COMMITMENT_DOMAIN, CHAIN_OPENING_DOMAIN, ChainChallenge, ChainCommitment, ChainOpening,
    OpenedRow, SampleRequest, StageOpening,
};
use super::class::MAX_STAGES;
use super::{MAX_MATRIX_N, derive_matrices};
use crate::entropy::ChallengeId;
use crate::identity::{NodeKey, PublicKey};
use crate::merkle::{Hash, MerkleTree};

/// The worker's result for one challenge: every stage `D_1..D_K` and its row tree.
#[derive(Debug, Clone)]
pub struct ChainWork {
    challenge: ChallengeId,
    n: u32,
    stages: Vec<Vec<i8>>,
    trees: Vec<MerkleTree>,
}

impl ChainWork {
    /// Derives A and B, computes the K stages on `threads` CPU threads and builds the
    /// stage trees. `None` when n or K is out of range.
    pub fn compute(challenge: &ChainChallenge, node: &PublicKey, threads: usize) -> Option<Self> {
        if challenge.stages == 0 || challenge.stages > MAX_STAGES {
            return None;
        }
        let (n32, n) = checked_n(challenge.n)?;
        let id = challenge.id(node);
        let (mut previous, b) = derive_matrices(&id, n);
        let mut stages = Vec::with_capacity(usize::try_from(challenge.stages).ok()?);
        for stage in 1..=challenge.stages {
            let next = next_stage(&previous, &b, n, stage, threads)?;
            stages.push(std::mem::replace(&mut previous, next));
        }
        // `stages` holds D_0..D_{K−1}; rotate D_K in and drop A.
        stages.push(previous);
        stages.remove(0);
        Self::from_stages(id, n32, stages)
    }

    /// Wraps stages computed elsewhere (a GPU backend's `D_1..D_K`) with their trees.
    /// `None` when a stage is not n×n or n is out of range.
    pub fn from_stages(challenge: ChallengeId, n: u32, stages: Vec<Vec<i8>>) -> Option<Self> {
        let (_, width) = checked_n(n)?;
        if stages.is_empty() || stages.iter().any(|s| s.len() != width * width) {
            return None;
        }
        let trees = (1u32..)
            .zip(&stages)
            .map(|(stage, rows)| stage_tree(stage, rows, width))
            .collect();
        Some(Self {
            challenge,
            n,
            stages,
            trees,
        })
    }

    /// The challenge this work answers.
    pub fn challenge(&self) -> ChallengeId {
        self.challenge
    }

    /// `D_k` (1-based), row-major.
    pub fn stage(&self, stage: u32) -> Option<&[i8]> {
        let index = usize::try_from(stage.checked_sub(1)?).ok()?;
        self.stages.get(index).map(Vec::as_slice)
    }

    /// `R_1..R_K`.
    pub fn stage_roots(&self) -> Vec<Hash> {
        self.trees.iter().map(MerkleTree::root).collect()
    }

    /// The commitment, signed by the session key.
    pub fn commit(&self, session_key: &NodeKey) -> ChainCommitment {
        let mut commitment = ChainCommitment {
            challenge: self.challenge,
            n: self.n,
            stage_roots: self.stage_roots(),
            signature: [0; 64],
        };
        commitment.signature = session_key.sign(CHAIN_COMMITMENT_DOMAIN, &commitment.body());
        commitment
    }

    /// Row `index` of stage `stage` with its path, if both exist.
    fn opened_row(&self, stage: u32, index: u32) -> Option<OpenedRow> {
        let width = usize::try_from(self.n).ok()?;
        let rows = self.stage(stage)?;
        let tree = self
            .trees
            .get(usize::try_from(stage.checked_sub(1)?).ok()?)?;
        Some(OpenedRow {
            index,
            row: rows
                .chunks(width)
                .nth(usize::try_from(index).ok()?)?
                .to_vec(),
            path: tree.path(u64::from(index))?,
        })
    }

    /// Opens the requested samples (skipping ones outside the chain, which the verifier
    /// rejects as unrequested).
    pub fn open(&self, request: &SampleRequest, session_key: &NodeKey) -> ChainOpening {
        let openings = request
            .samples
            .iter()
            .filter_map(|sample| {
                let row = self.opened_row(sample.stage, sample.index)?;
                let inputs = if sample.stage > 1 {
                    let p = partner(sample.stage, sample.index, self.n);
                    vec![
                        self.opened_row(sample.stage - 1, sample.index)?,
                        self.opened_row(sample.stage - 1, p)?,
                    ]
                } else {
                    Vec::new()
                };
                Some(StageOpening {
                    stage: sample.stage,
                    row,
                    inputs,
                })
            })
            .collect();
        let mut opening = ChainOpening {
            challenge: self.challenge,
            openings,
            signature: [0; 64],
        };
        opening.signature = session_key.sign(CHAIN_OPENING_DOMAIN, &opening.body());
        opening
    }
}

/// n as u32 and usize when it is a power of two in 2..=MAX_MATRIX_N.
fn checked_n(n: u32) -> Option<(u32, usize)> {
    (n.is_power_of_two() && (2..=MAX_MATRIX_N).contains(&n))
        .then(|| usize::try_from(n).ok().map(|w| (n, w)))
        .flatten()
}
