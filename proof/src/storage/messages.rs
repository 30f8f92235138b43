//! Storage messages and the exact bytes each signature covers.

use super::{Deadline, SectorId};
use crate::entropy::{ChallengeId, Entropy, derive_challenge};
use crate::identity::PublicKey;
use crate::layout::Layout;
use crate::merkle::{Hash, LeafHash, MerklePath};

/// Domain tag of sector commitments (signed by the node's long-term key).
pub const SECTOR_COMMITMENT_DOMAIN: &[u8] = b"depin/storage/commitment/v1";
/// Domain tag of challenge seeds.
pub const STORAGE_CHALLENGE_DOMAIN: &[u8] = b"depin/storage/challenge/v1";
/// Domain tag of responses (signed by the session key).
pub const STORAGE_RESPONSE_DOMAIN: &[u8] = b"depin/storage/response/v1";
/// Domain tag of fault declarations (signed by the session key).
pub const FAULT_DECLARATION_DOMAIN: &[u8] = b"depin/storage/fault/v1";

/// The hash of leaf `index` holding `bytes`: `H_leaf(index u64 BE || BLAKE3(bytes))`.
/// The index makes equal leaves hash differently, so one stored leaf cannot answer for its
/// twins. Hashing the bytes in one call (rather than streaming `index || bytes`) keeps the
/// chunks aligned so BLAKE3 stays on its widest SIMD path: about 3× faster on 16 KiB leaves.
pub fn leaf_hash(index: u64, bytes: &[u8]) -> LeafHash {
    let mut block = [0u8; 40];
    block[..8].copy_from_slice(&index.to_be_bytes());
    block[8..].copy_from_slice(blake3::hash(bytes).as_bytes());
    LeafHash::of(&block)
}

/// What a node promises to keep: the Merkle root over a sector's leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectorCommitment {
    /// The sector.
    pub sector: SectorId,
    /// Sector length in bytes.
    pub sector_bytes: u64,
    /// Bytes per leaf.
    pub leaf_size: u32,
    /// Leaves: `ceil(sector_bytes / leaf_size)`.
    pub leaf_count: u64,
    /// Merkle root over [`leaf_hash`] of every leaf, in order.
    pub root: Hash,
}

impl SectorCommitment {
    /// Body: `node (32) || sector u64 || sector_bytes u64 || leaf_size u32 || leaf_count u64 || root (32)`.
    pub(crate) fn body(&self, node: &PublicKey) -> Vec<u8> {
        Layout::with_capacity(92)
            .fixed32(node.as_bytes())
            .u64(self.sector.0)
            .u64(self.sector_bytes)
            .u32(self.leaf_size)
            .u64(self.leaf_count)
            .fixed32(&self.root)
            .finish()
    }

    /// Expected length of leaf `index`: `leaf_size`, except a shorter last leaf.
    pub fn leaf_len(&self, index: u64) -> u64 {
        let start = index.saturating_mul(u64::from(self.leaf_size));
        self.sector_bytes
            .saturating_sub(start)
            .min(u64::from(self.leaf_size))
    }
}

/// A commitment signed by the node's long-term key, so it stays checkable after the
/// session that carried it has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedSectorCommitment {
    /// The committing node.
    pub node: PublicKey,
    /// What is committed.
    pub commitment: SectorCommitment,
    /// ed25519 by `node` over [`SignedSectorCommitment::signing_bytes`].
    pub signature: [u8; 64],
}

impl SignedSectorCommitment {
    /// The exact bytes the signature covers (domain prefix included).
    pub fn signing_bytes(&self) -> Vec<u8> {
        crate::identity::signing_bytes(SECTOR_COMMITMENT_DOMAIN, &self.commitment.body(&self.node))
    }
}

/// What the verifier sends when a sector's deadline opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageChallenge {
    /// The challenged sector.
    pub sector: SectorId,
    /// The deadline being proven.
    pub deadline: Deadline,
    /// The beacon value drawn for this deadline.
    pub entropy: Entropy,
}

impl StorageChallenge {
    /// The challenge the verifier sends for `sector` when `deadline` opens: the beacon value
    /// is fixed by the deadline ([`super::StorageParams::challenge_tick`]), not chosen.
    pub fn for_deadline(
        params: &super::StorageParams,
        beacon: &crate::entropy::Beacon,
        sector: SectorId,
        deadline: Deadline,
    ) -> Self {
        let tick = params.challenge_tick(&deadline, beacon.config());
        Self {
            sector,
            deadline,
            entropy: beacon.entropy(tick),
        }
    }

    /// The challenge seed: `derive_challenge(domain, E_t, node, sector || period || deadline)`.
    pub fn id(&self, node: &PublicKey) -> ChallengeId {
        challenge_id(
            node,
            &self.entropy,
            self.sector,
            self.deadline.period,
            self.deadline.index,
        )
    }
}

pub(crate) fn challenge_id(
    node: &PublicKey,
    entropy: &Entropy,
    sector: SectorId,
    period: u64,
    index: u32,
) -> ChallengeId {
    let context = Layout::with_capacity(20)
        .u64(sector.0)
        .u64(period)
        .u32(index)
        .finish();
    derive_challenge(STORAGE_CHALLENGE_DOMAIN, entropy, node, &context)
}

/// BLAKE3 `derive_key` context of the challenged-index key (research storage-packing.md,
/// "Root freezing and challenges").
pub const STORAGE_CHALLENGE_INDEX_DOMAIN: &str = "depin/storage/chal/v1";

/// The `k` leaf indices `challenge` opens in the sector `commitment` describes:
/// `idx_j = draw(BLAKE3_keyed(K, j), leaf_count)` with
/// `K = BLAKE3_derive_key(STORAGE_CHALLENGE_INDEX_DOMAIN, challenge ‖ sector ‖ root ‖ leaf_count)`,
/// where the challenge seed already binds the beacon value `E_t`, the node key, the sector,
/// the period and the deadline ([`StorageChallenge::id`]). Binding the committed root means a
/// tree committed after the challenge was seen (a sparse one holding only the challenged
/// leaves) is challenged somewhere else. Indices are drawn independently (with replacement)
/// so a node missing a fraction f of leaves passes with probability exactly (1 − f)^k, and by
/// rejection sampling so no index is favoured (for a power-of-two `leaf_count` nothing is
/// ever rejected and this is the word's low bits).
pub fn challenged_leaves(
    challenge: &ChallengeId,
    commitment: &SectorCommitment,
    k: u32,
) -> Vec<u64> {
    let mut hasher = blake3::Hasher::new_derive_key(STORAGE_CHALLENGE_INDEX_DOMAIN);
    hasher
        .update(&challenge.0)
        .update(&commitment.sector.0.to_be_bytes())
        .update(&commitment.root)
        .update(&commitment.leaf_count.to_be_bytes());
    let key = *hasher.finalize().as_bytes();
    (0..k)
        .map(|j| draw_index(&key, j, commitment.leaf_count))
        .collect()
}

/// Index `j`: the first 64-bit word of `BLAKE3_keyed(key, j)`'s output stream below the
/// largest multiple of `n` that fits in 2^64, reduced mod `n` (no modulo bias).
fn draw_index(key: &[u8; 32], j: u32, n: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    // 2^64 mod n, computed without 128-bit arithmetic.
    let excess = (u64::MAX % n + 1) % n;
    let mut stream = blake3::Hasher::new_keyed(key)
        .update(&j.to_be_bytes())
        .finalize_xof();
    loop {
        let mut word = [0u8; 8];
        stream.fill(&mut word);
        let word = u64::from_be_bytes(word);
        // Words at or above 2^64 − excess would make the low residues more likely.
        if excess == 0 || word <= u64::MAX - excess {
            return word % n;
        }
    }
}

/// One opened leaf and its path to the sector root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafOpening {
    /// The leaf's bytes.
    pub leaf: Vec<u8>,
    /// Siblings from the leaf to the root.
    pub path: MerklePath,
}

/// A node's answer to a [`StorageChallenge`]: the challenged leaves in challenge order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageResponse {
    /// The sector.
    pub sector: SectorId,
    /// Proving period of the deadline answered.
    pub period: u64,
    /// Deadline index answered.
    pub deadline_index: u32,
    /// Tick of the beacon value the challenge was derived from.
    pub entropy_tick: u64,
    /// One opening per challenged index, in the order [`challenged_leaves`] returns them.
    pub openings: Vec<LeafOpening>,
    /// ed25519 by the session key over [`StorageResponse::signing_bytes`].
    pub signature: [u8; 64],
}

impl StorageResponse {
    /// The exact bytes the signature covers. Leaves enter through their hashes (which bind
    /// their bytes), so the signed message stays small; paths are not signed because a
    /// tampered path fails against the root anyway.
    pub fn signing_bytes(&self, challenged: &[u64]) -> Vec<u8> {
        let hashes: Vec<LeafHash> = challenged
            .iter()
            .zip(&self.openings)
            .map(|(index, opening)| leaf_hash(*index, &opening.leaf))
            .collect();
        crate::identity::signing_bytes(STORAGE_RESPONSE_DOMAIN, &self.body(&hashes))
    }

    /// Body: `sector u64 || period u64 || deadline u32 || entropy_tick u64 || count u32 ||
    /// leaf hash (32) per opening`.
    pub(crate) fn body(&self, leaf_hashes: &[LeafHash]) -> Vec<u8> {
        let mut layout = Layout::with_capacity(32 + 32 * leaf_hashes.len())
            .u64(self.sector.0)
            .u64(self.period)
            .u32(self.deadline_index)
            .u64(self.entropy_tick)
            .count(leaf_hashes.len());
        for hash in leaf_hashes {
            layout = layout.fixed32(hash.as_bytes());
        }
        layout.finish()
    }
}

/// A node telling the verifier, before the cutoff, that a sector will miss a deadline
/// (cheaper than an undeclared miss, as in Filecoin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultDeclaration {
    /// The faulty sector.
    pub sector: SectorId,
    /// Proving period of the deadline that will be missed.
    pub period: u64,
    /// Index of that deadline.
    pub deadline_index: u32,
    /// ed25519 by the session key over [`FaultDeclaration::signing_bytes`].
    pub signature: [u8; 64],
}

impl FaultDeclaration {
    /// Signs a declaration with the session key.
    pub fn sign(
        session_key: &crate::identity::NodeKey,
        sector: SectorId,
        period: u64,
        deadline_index: u32,
    ) -> Self {
        let mut declaration = Self {
            sector,
            period,
            deadline_index,
            signature: [0; 64],
        };
        declaration.signature = session_key.sign(FAULT_DECLARATION_DOMAIN, &declaration.body());
        declaration
    }

    /// Body: `sector u64 || period u64 || deadline u32`.
    pub(crate) fn body(&self) -> Vec<u8> {
        Layout::with_capacity(20)
            .u64(self.sector.0)
            .u64(self.period)
            .u32(self.deadline_index)
            .finish()
    }

    /// The exact bytes the signature covers (domain prefix included).
    pub fn signing_bytes(&self) -> Vec<u8> {
        crate::identity::signing_bytes(FAULT_DECLARATION_DOMAIN, &self.body())
    }
}
