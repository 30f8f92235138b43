//! Chain-proof messages and the exact bytes each signature covers.

use super::class::GpuClass;
use crate::entropy::{Beacon, ChallengeId, Entropy, derive_challenge};
use crate::identity::PublicKey;
use crate::layout::Layout;
use crate::merkle::{Hash, LeafHash, MerklePath};

/// Domain tag of chain challenge seeds.
pub const CHAIN_CHALLENGE_DOMAIN: &[u8] = b"depin/gpu/chain-challenge/v1";
/// Domain tag of chain commitments (signed by the session key).
pub const CHAIN_COMMITMENT_DOMAIN: &[u8] = b"depin/gpu/chain-commitment/v1";
/// Domain tag of chain openings (signed by the session key).
pub const CHAIN_OPENING_DOMAIN: &[u8] = b"depin/gpu/chain-opening/v1";
/// Domain of the verifier-private value that picks the sampled (stage, row) pairs.
pub(crate) const CHAIN_SAMPLE_DOMAIN: &[u8] = b"depin/gpu/chain-sample/v1";

/// What the verifier sends to start a chain proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainChallenge {
    /// The beacon value the matrices derive from.
    pub entropy: Entropy,
    /// A fresh verifier nonce.
    pub nonce: [u8; 32],
    /// Matrix dimension n (a power of two).
    pub n: u32,
    /// Chained products K.
    pub stages: u32,
    /// When the verifier sent it, unix ms (the throughput clock starts here).
    pub issued_at_ms: u64,
}

impl ChainChallenge {
    /// A challenge for `class` issued at `now_ms` with the current beacon value.
    pub fn issue(beacon: &Beacon, class: &GpuClass, now_ms: u64, nonce: [u8; 32]) -> Self {
        Self {
            entropy: beacon.current(now_ms),
            nonce,
            n: class.n,
            stages: class.stages,
            issued_at_ms: now_ms,
        }
    }

    /// The seed: `derive_challenge(domain, E_t, node, nonce || n u32 || stages u32 ||
    /// issued_at u64)`. The node key is in it, so two identities never share matrices.
    pub fn id(&self, node: &PublicKey) -> ChallengeId {
        let context = Layout::with_capacity(48)
            .fixed32(&self.nonce)
            .u32(self.n)
            .u32(self.stages)
            .u64(self.issued_at_ms)
            .finish();
        derive_challenge(CHAIN_CHALLENGE_DOMAIN, &self.entropy, node, &context)
    }
}

/// The worker's commitment: one Merkle root per stage, `R_1..R_K`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCommitment {
    /// The challenge answered.
    pub challenge: ChallengeId,
    /// Matrix dimension computed.
    pub n: u32,
    /// `R_k` for k = 1..=K, in order.
    pub stage_roots: Vec<Hash>,
    /// ed25519 by the session key over [`ChainCommitment::signing_bytes`].
    pub signature: [u8; 64],
}

impl ChainCommitment {
    /// Body: `challenge (32) || n u32 || count u32 || R_k (32) per stage`.
    pub(crate) fn body(&self) -> Vec<u8> {
        let mut layout = Layout::with_capacity(40 + 32 * self.stage_roots.len())
            .fixed32(&self.challenge.0)
            .u32(self.n)
            .count(self.stage_roots.len());
        for root in &self.stage_roots {
            layout = layout.fixed32(root);
        }
        layout.finish()
    }

    /// The exact bytes the signature covers (domain prefix included).
    pub fn signing_bytes(&self) -> Vec<u8> {
        crate::identity::signing_bytes(CHAIN_COMMITMENT_DOMAIN, &self.body())
    }
}

/// One sampled row: row `index` of stage `stage` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Stage k, 1..=K.
    pub stage: u32,
    /// Row i, 0..n.
    pub index: u32,
}

/// The rows the verifier wants opened, drawn only after the commitment was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRequest {
    /// The challenge.
    pub challenge: ChallengeId,
    /// The samples, in the order the openings must follow.
    pub samples: Vec<Sample>,
}

/// One opened row of some stage with its path to that stage's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedRow {
    /// Row index.
    pub index: u32,
    /// The n int8 values.
    pub row: Vec<i8>,
    /// Siblings from the row's leaf to its stage root.
    pub path: MerklePath,
}

/// The opening of one sample: `D_k[i]`, and for k > 1 the two rows of `D_{k−1}` it is
/// computed from (row i, then its partner); for k = 1 they are rows of A, which the
/// verifier derives from the seed, so `inputs` is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageOpening {
    /// Stage k.
    pub stage: u32,
    /// `D_k[i]` on a path to `R_k`.
    pub row: OpenedRow,
    /// `D_{k−1}[i]` and `D_{k−1}[partner]` on paths to `R_{k−1}` (k > 1), else empty.
    pub inputs: Vec<OpenedRow>,
}

/// The worker's answer to a [`SampleRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainOpening {
    /// The challenge.
    pub challenge: ChallengeId,
    /// One opening per sample, in request order.
    pub openings: Vec<StageOpening>,
    /// ed25519 by the session key over [`ChainOpening::signing_bytes`].
    pub signature: [u8; 64],
}

impl ChainOpening {
    /// Body: `challenge (32) || count u32 || per opening: stage u32 || index u32 ||
    /// leaf (32) || input count u32 || (index u32 || leaf (32)) per input`. Rows enter
    /// through their leaf hashes ([`super::chain::stage_leaf`]), which bind their values.
    pub(crate) fn body(&self) -> Vec<u8> {
        let mut layout = Layout::with_capacity(36 + 112 * self.openings.len())
            .fixed32(&self.challenge.0)
            .count(self.openings.len());
        for opening in &self.openings {
            let leaf = opening_leaf(opening.stage, &opening.row);
            layout = layout
                .u32(opening.stage)
                .u32(opening.row.index)
                .fixed32(leaf.as_bytes())
                .count(opening.inputs.len());
            for input in &opening.inputs {
                let leaf = opening_leaf(opening.stage.saturating_sub(1), input);
                layout = layout.u32(input.index).fixed32(leaf.as_bytes());
            }
        }
        layout.finish()
    }

    /// The exact bytes the signature covers (domain prefix included).
    pub fn signing_bytes(&self) -> Vec<u8> {
        crate::identity::signing_bytes(CHAIN_OPENING_DOMAIN, &self.body())
    }
}

/// The leaf of an opened row of `stage`.
pub(crate) fn opening_leaf(stage: u32, row: &OpenedRow) -> LeafHash {
    super::chain::stage_leaf(stage, row.index, &row.row)
}
