//! GPU messages and the exact bytes each signature covers.

use crate::entropy::{ChallengeId, Entropy, derive_challenge};
use crate::identity::PublicKey;
use crate::layout::Layout;
use crate::merkle::{Hash, LeafHash, MerklePath};

/// Domain tag of challenge seeds.
pub const GPU_CHALLENGE_DOMAIN: &[u8] = b"depin/gpu/challenge/v1";
/// Domain tag of commitments (signed by the session key).
pub const GPU_COMMITMENT_DOMAIN: &[u8] = b"depin/gpu/commitment/v1";
/// Domain tag of row openings (signed by the session key).
pub const GPU_OPENING_DOMAIN: &[u8] = b"depin/gpu/opening/v1";
/// Domain of the verifier-private value that picks the sampled rows.
pub(crate) const GPU_SAMPLE_DOMAIN: &[u8] = b"depin/gpu/row-sample/v1";

/// The hash of row `index` of C: `H_leaf(index u32 BE || each value i32 BE)`.
pub fn row_leaf(index: u32, row: &[i32]) -> LeafHash {
    let mut bytes = Vec::with_capacity(4 + 4 * row.len());
    bytes.extend_from_slice(&index.to_be_bytes());
    for value in row {
        bytes.extend_from_slice(&value.to_be_bytes());
    }
    LeafHash::of(&bytes)
}

/// What the verifier sends to start a GPU proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuChallenge {
    /// The beacon value the matrices derive from.
    pub entropy: Entropy,
    /// A fresh verifier nonce, so two challenges in one tick differ.
    pub nonce: [u8; 32],
    /// Matrix dimension.
    pub n: u32,
    /// When the verifier sent it, unix ms (the throughput clock starts here).
    pub issued_at_ms: u64,
}

impl GpuChallenge {
    /// A challenge issued at `now_ms` with the current beacon value and a fresh verifier
    /// nonce (e.g. `ServerNonce::random().0`).
    pub fn issue(
        beacon: &crate::entropy::Beacon,
        params: &super::GpuParams,
        now_ms: u64,
        nonce: [u8; 32],
    ) -> Self {
        Self {
            entropy: beacon.current(now_ms),
            nonce,
            n: params.n,
            issued_at_ms: now_ms,
        }
    }

    /// The seed: `derive_challenge(domain, E_t, node, nonce || n u32 || issued_at u64)`.
    pub fn id(&self, node: &PublicKey) -> ChallengeId {
        let context = Layout::with_capacity(44)
            .fixed32(&self.nonce)
            .u32(self.n)
            .u64(self.issued_at_ms)
            .finish();
        derive_challenge(GPU_CHALLENGE_DOMAIN, &self.entropy, node, &context)
    }
}

/// The worker's commitment to C: a Merkle root over its rows ([`row_leaf`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuCommitment {
    /// The challenge answered.
    pub challenge: ChallengeId,
    /// Matrix dimension computed.
    pub n: u32,
    /// Merkle root over the n row leaves.
    pub root: Hash,
    /// ed25519 by the session key over [`GpuCommitment::signing_bytes`].
    pub signature: [u8; 64],
}

impl GpuCommitment {
    /// Body: `challenge (32) || n u32 || root (32)`.
    pub(crate) fn body(&self) -> Vec<u8> {
        Layout::with_capacity(68)
            .fixed32(&self.challenge.0)
            .u32(self.n)
            .fixed32(&self.root)
            .finish()
    }

    /// The exact bytes the signature covers (domain prefix included).
    pub fn signing_bytes(&self) -> Vec<u8> {
        crate::identity::signing_bytes(GPU_COMMITMENT_DOMAIN, &self.body())
    }
}

/// The rows the verifier wants opened, sent only after the commitment was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRequest {
    /// The challenge.
    pub challenge: ChallengeId,
    /// Row indices, in the order the openings must follow.
    pub rows: Vec<u32>,
}

/// One opened row of C with its path to the committed root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOpening {
    /// Row index.
    pub index: u32,
    /// The n values of the row.
    pub row: Vec<i32>,
    /// Siblings from the row's leaf to the root.
    pub path: MerklePath,
}

/// The worker's answer to a [`RowRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuOpening {
    /// The challenge.
    pub challenge: ChallengeId,
    /// One opening per requested row, in request order.
    pub rows: Vec<RowOpening>,
    /// ed25519 by the session key over [`GpuOpening::signing_bytes`].
    pub signature: [u8; 64],
}

impl GpuOpening {
    /// Body: `challenge (32) || count u32 || (index u32 || row leaf (32)) per row`. Rows
    /// enter through their leaf hashes, which bind their values.
    pub(crate) fn body(&self, leaves: &[LeafHash]) -> Vec<u8> {
        let mut layout = Layout::with_capacity(36 + 36 * leaves.len())
            .fixed32(&self.challenge.0)
            .count(leaves.len());
        for (opening, leaf) in self.rows.iter().zip(leaves) {
            layout = layout.u32(opening.index).fixed32(leaf.as_bytes());
        }
        layout.finish()
    }

    /// The exact bytes the signature covers (domain prefix included).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let leaves: Vec<LeafHash> = self
            .rows
            .iter()
            .map(|r| row_leaf(r.index, &r.row))
            .collect();
        crate::identity::signing_bytes(GPU_OPENING_DOMAIN, &self.body(&leaves))
    }
}
