//! Prover side (the GPU agent's CPU fallback): compute C, commit, open requested rows.

use super::messages::{
    GPU_COMMITMENT_DOMAIN, GPU_OPENING_DOMAIN, GpuChallenge, GpuCommitment, GpuOpening, RowOpening,
    RowRequest, row_leaf,
};
use super::{MAX_MATRIX_N, derive_matrices, matmul_i8};
use crate::entropy::ChallengeId;
use crate::identity::{NodeKey, PublicKey};
use crate::merkle::{Hash, MerkleTree};

/// The worker's result for one challenge: C and the tree over its rows.
#[derive(Debug, Clone)]
pub struct GpuWork {
    challenge: ChallengeId,
    n: u32,
    product: Vec<i32>,
    tree: MerkleTree,
}

impl GpuWork {
    /// Derives A and B from the challenge, computes C = A·B on `threads` CPU threads and
    /// builds the row tree. `None` when n is 0 or above [`MAX_MATRIX_N`].
    pub fn compute(challenge: &GpuChallenge, node: &PublicKey, threads: usize) -> Option<Self> {
        if challenge.n == 0 || challenge.n > MAX_MATRIX_N {
            return None;
        }
        let id = challenge.id(node);
        let n = usize::try_from(challenge.n).ok()?;
        let (a, b) = derive_matrices(&id, n);
        let product = matmul_i8(&a, &b, n, threads)?;
        Some(Self::from_product(id, challenge.n, product))
    }

    /// Wraps a product computed elsewhere (a real GPU kernel) with its row tree.
    pub fn from_product(challenge: ChallengeId, n: u32, product: Vec<i32>) -> Self {
        let width = usize::try_from(n).unwrap_or(usize::MAX).max(1);
        let leaves = product
            .chunks(width)
            .zip(0u32..)
            .map(|(row, index)| row_leaf(index, row))
            .collect();
        Self {
            challenge,
            n,
            product,
            tree: MerkleTree::new(leaves),
        }
    }

    /// C, row-major.
    pub fn product(&self) -> &[i32] {
        &self.product
    }

    /// The Merkle root over the rows of C.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// The commitment, signed by the session key.
    pub fn commit(&self, session_key: &NodeKey) -> GpuCommitment {
        let mut commitment = GpuCommitment {
            challenge: self.challenge,
            n: self.n,
            root: self.tree.root(),
            signature: [0; 64],
        };
        commitment.signature = session_key.sign(GPU_COMMITMENT_DOMAIN, &commitment.body());
        commitment
    }

    /// Opens the requested rows (skipping indices outside C, which the verifier rejects).
    pub fn open(&self, request: &RowRequest, session_key: &NodeKey) -> GpuOpening {
        let width = usize::try_from(self.n).unwrap_or(usize::MAX).max(1);
        let rows: Vec<RowOpening> = request
            .rows
            .iter()
            .filter_map(|&index| {
                let row = self
                    .product
                    .chunks(width)
                    .nth(usize::try_from(index).ok()?)?;
                Some(RowOpening {
                    index,
                    row: row.to_vec(),
                    path: self.tree.path(u64::from(index))?,
                })
            })
            .collect();
        let mut opening = GpuOpening {
            challenge: self.challenge,
            rows,
            signature: [0; 64],
        };
        let leaves: Vec<_> = opening
            .rows
            .iter()
            .map(|r| row_leaf(r.index, &r.row))
            .collect();
        opening.signature = session_key.sign(GPU_OPENING_DOMAIN, &opening.body(&leaves));
        opening
    }
}
