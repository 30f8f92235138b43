//! Binary Merkle trees over BLAKE3, generic over leaf hashes (sector leaves, rows of a
//! matrix product, reward manifest entries).
//!
//! - Leaves and inner nodes are hashed under different BLAKE3 keys, so a leaf can never be
//!   passed off as an inner node (second-preimage by tree-shape confusion). [`LeafHash`] can
//!   only be made by hashing under the leaf key, so the type system keeps the separation.
//! - An odd node at the end of a level is promoted unchanged (no duplication, which in
//!   Bitcoin let two different leaf lists share a root, CVE-2012-2459). The path shape then
//!   depends on the leaf count, which every verifier takes from the signed commitment.
//! - The root commits to the leaf count (`root = H_root(count || top node)`), so a root
//!   names exactly one tree shape and a path can never verify under a different count.
//! - Every function here is total: malformed paths or out-of-range indices give `false` or
//!   `None`, never a panic (a common Merkle-library bug, e.g. rs-merkle issue #20).

use crate::reject::RejectReason;

/// A 32-byte BLAKE3 digest.
pub type Hash = [u8; 32];

/// Most siblings a path can have: one per level of a tree with up to 2^64 leaves.
pub const MAX_PATH_LEN: usize = 64;

// Public keys, so anyone can recompute; they only need to differ (keyed BLAKE3 under two
// keys behaves as two independent hash functions) and to be exactly 32 bytes.
const LEAF_KEY: [u8; 32] = *b"depin-proof:merkle-leaf:v1______";
const NODE_KEY: [u8; 32] = *b"depin-proof:merkle-node:v1______";
const ROOT_KEY: [u8; 32] = *b"depin-proof:merkle-root:v1______";

/// The hash of one leaf, made only under the leaf key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeafHash(Hash);

impl LeafHash {
    /// Hashes `data` as one leaf.
    pub fn of(data: &[u8]) -> Self {
        Self(*blake3::keyed_hash(&LEAF_KEY, data).as_bytes())
    }

    /// A streaming hasher for a leaf built from several fields (e.g. `index || bytes`).
    /// Callers must make the field concatenation unambiguous (fixed widths or prefixes).
    pub fn hasher() -> LeafHasher {
        LeafHasher(blake3::Hasher::new_keyed(&LEAF_KEY))
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &Hash {
        &self.0
    }
}

/// Incremental leaf hashing under the leaf key.
#[derive(Debug, Clone)]
pub struct LeafHasher(blake3::Hasher);

impl LeafHasher {
    /// Feeds more leaf bytes.
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(bytes);
        self
    }

    /// The leaf hash of everything fed so far.
    pub fn finalize(&self) -> LeafHash {
        LeafHash(*self.0.finalize().as_bytes())
    }
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // One 64-byte block: a single BLAKE3 compression per inner node.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(left);
    block[32..].copy_from_slice(right);
    *blake3::keyed_hash(&NODE_KEY, &block).as_bytes()
}

/// The published root: the top node bound to the leaf count (a zero top for no leaves).
fn seal_root(leaf_count: u64, top: &Hash) -> Hash {
    let mut block = [0u8; 40];
    block[..8].copy_from_slice(&leaf_count.to_be_bytes());
    block[8..].copy_from_slice(top);
    *blake3::keyed_hash(&ROOT_KEY, &block).as_bytes()
}

/// Replaces `level` by the level above it, in place.
fn reduce_level(level: &mut Vec<Hash>) {
    let pairs = level.len() / 2;
    for i in 0..pairs {
        level[i] = node_hash(&level[2 * i], &level[2 * i + 1]);
    }
    if !level.len().is_multiple_of(2) {
        level[pairs] = level[level.len() - 1]; // promote the odd node
    }
    level.truncate(level.len().div_ceil(2));
}

/// The root over `leaves` without keeping the tree (verifiers, reward manifests).
pub fn root_of(leaves: &[LeafHash]) -> Hash {
    let mut level: Vec<Hash> = leaves.iter().map(|leaf| leaf.0).collect();
    while level.len() > 1 {
        reduce_level(&mut level);
    }
    seal_root(leaves.len() as u64, level.first().unwrap_or(&[0; 32]))
}

/// A whole tree, kept by a prover to open any leaf later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` are the leaf hashes; the last level holds the root alone.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Builds the tree over `leaves`, in order.
    pub fn new(leaves: Vec<LeafHash>) -> Self {
        let mut levels = vec![leaves.into_iter().map(|leaf| leaf.0).collect::<Vec<_>>()];
        while let Some(top) = levels.last().filter(|top| top.len() > 1) {
            let mut next = top.clone();
            reduce_level(&mut next);
            levels.push(next);
        }
        Self { levels }
    }

    /// The root commitment.
    pub fn root(&self) -> Hash {
        let top = self
            .levels
            .last()
            .and_then(|top| top.first())
            .unwrap_or(&[0; 32]);
        seal_root(self.leaf_count(), top)
    }

    /// How many leaves the tree has.
    pub fn leaf_count(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// The inclusion path for leaf `index`, or `None` when out of range.
    pub fn path(&self, index: u64) -> Option<MerklePath> {
        let mut i = usize::try_from(index).ok()?;
        if i >= self.levels.first()?.len() {
            return None;
        }
        let mut siblings = Vec::with_capacity(self.levels.len());
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(i ^ 1) {
                siblings.push(*sibling);
            }
            i /= 2;
        }
        Some(MerklePath { siblings })
    }
}

/// The sibling hashes from a leaf up to the root; index and leaf count come from context.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MerklePath {
    /// Siblings, bottom level first.
    pub siblings: Vec<Hash>,
}

impl MerklePath {
    /// Compact encoding: the siblings' 32-byte hashes back to back.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.siblings.concat()
    }

    /// Decodes [`MerklePath::to_bytes`]; `Malformed` on a ragged or oversized input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RejectReason> {
        if !bytes.len().is_multiple_of(32) || bytes.len() / 32 > MAX_PATH_LEN {
            return Err(RejectReason::Malformed);
        }
        // chunks_exact(32) only yields 32-byte chunks, so the fallback is never taken.
        let siblings = bytes
            .chunks_exact(32)
            .map(|chunk| chunk.try_into().unwrap_or([0; 32]))
            .collect();
        Ok(Self { siblings })
    }
}

/// Whether `path` leads from `leaf` at `index` to `root` in a tree of `leaf_count` leaves.
/// Extra or missing siblings fail, so each (tree, index) has exactly one valid path.
pub fn verify_path(
    root: &Hash,
    leaf_count: u64,
    index: u64,
    leaf: &LeafHash,
    path: &MerklePath,
) -> bool {
    if index >= leaf_count {
        return false;
    }
    let (mut i, mut width, mut acc) = (index, leaf_count, leaf.0);
    let mut siblings = path.siblings.iter();
    while width > 1 {
        if !i.is_multiple_of(2) {
            let Some(left) = siblings.next() else {
                return false;
            };
            acc = node_hash(left, &acc);
        } else if i + 1 < width {
            let Some(right) = siblings.next() else {
                return false;
            };
            acc = node_hash(&acc, right);
        } // else: the odd last node is promoted without a sibling
        i /= 2;
        width = width.div_ceil(2);
    }
    siblings.next().is_none() && seal_root(leaf_count, &acc) == *root
}

/// A self-contained inclusion proof (leaf count, index, path), e.g. for reward claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleProof {
    /// Leaves in the tree.
    pub leaf_count: u64,
    /// Position of the proven leaf.
    pub index: u64,
    /// Siblings from the leaf up.
    pub path: MerklePath,
}

impl MerkleProof {
    /// Encoding: `leaf_count u64 BE || index u64 BE || siblings (32 bytes each)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 32 * self.path.siblings.len());
        out.extend_from_slice(&self.leaf_count.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.path.to_bytes());
        out
    }

    /// Decodes [`MerkleProof::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RejectReason> {
        let (Some(count), Some(index), Some(rest)) =
            (bytes.get(..8), bytes.get(8..16), bytes.get(16..))
        else {
            return Err(RejectReason::Malformed);
        };
        let read = |b: &[u8]| {
            b.try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| RejectReason::Malformed)
        };
        Ok(Self {
            leaf_count: read(count)?,
            index: read(index)?,
            path: MerklePath::from_bytes(rest)?,
        })
    }

    /// Whether the proof places `leaf` under `root`.
    pub fn verify(&self, root: &Hash, leaf: &LeafHash) -> bool {
        verify_path(root, self.leaf_count, self.index, leaf, &self.path)
    }
}

#[cfg(test)]
mod tests;
