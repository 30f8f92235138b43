//! Claims: a node proves its cumulative total is under an epoch's Merkle root.
//!
//! Leaf bytes (layout.rs rules: fixed-width big-endian integers, u32 length prefixes),
//! hashed under the Merkle module's leaf key:
//! `"depin-reward-leaf:v1" (20 bytes) || epoch u64 || len(node) u32 || node || cumulative u128`.
//! The domain tag keeps a reward leaf from ever equalling a sector or matrix-row leaf;
//! the epoch keeps an old epoch's proof from verifying under a newer root.

use crate::layout::Layout;
use crate::merkle::{Hash, LeafHash, MerkleProof};
use crate::reject::RejectReason;

use super::epoch::EpochResult;

/// The domain tag every reward leaf starts with (fixed length, so no prefix).
pub const REWARD_LEAF_DOMAIN: &[u8; 20] = b"depin-reward-leaf:v1";

/// The leaf committing `node`'s cumulative total as of `epoch`.
pub fn reward_leaf(epoch: u64, node: &str, cumulative: u128) -> LeafHash {
    // Node ids are at most 512 bytes (checked before any leaf is made); saturating keeps
    // this total for callers hashing an unchecked id, which then simply matches no leaf.
    let len = u32::try_from(node.len()).unwrap_or(u32::MAX);
    LeafHash::hasher()
        .update(REWARD_LEAF_DOMAIN)
        .update(&epoch.to_be_bytes())
        .update(&len.to_be_bytes())
        .update(node.as_bytes())
        .update(&cumulative.to_be_bytes())
        .finalize()
}

/// What a node presents to claim: its cumulative total under one epoch's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The epoch whose root the proof leads to.
    pub epoch: u64,
    /// The node id.
    pub node: String,
    /// Lifetime base units; the payer sends `cumulative − already paid`.
    pub cumulative: u128,
    /// Inclusion proof of the node's leaf.
    pub proof: MerkleProof,
}

impl Claim {
    /// What is still owed after `already_paid` base units (0 if that is more).
    pub fn claimable(&self, already_paid: u128) -> u128 {
        self.cumulative.saturating_sub(already_paid)
    }

    /// Encoding: `epoch u64 || len(node) u32 || node || cumulative u128 || proof`, the
    /// proof as [`MerkleProof::to_bytes`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let proof = self.proof.to_bytes();
        let mut out = Layout::with_capacity(28 + self.node.len() + proof.len())
            .u64(self.epoch)
            .bytes(self.node.as_bytes())
            .u128(self.cumulative)
            .finish();
        out.extend_from_slice(&proof);
        out
    }

    /// Decodes [`Claim::to_bytes`]; `Malformed` on truncated or non-UTF-8 input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RejectReason> {
        let mut rest = bytes;
        let epoch = u64::from_be_bytes(take(&mut rest)?);
        let len = u32::from_be_bytes(take(&mut rest)?);
        let len = usize::try_from(len).map_err(|_| RejectReason::Malformed)?;
        if len > rest.len() {
            return Err(RejectReason::Malformed);
        }
        let (node, after) = rest.split_at(len);
        let node = String::from_utf8(node.to_vec()).map_err(|_| RejectReason::Malformed)?;
        rest = after;
        let cumulative = u128::from_be_bytes(take(&mut rest)?);
        Ok(Self {
            epoch,
            node,
            cumulative,
            proof: MerkleProof::from_bytes(rest)?,
        })
    }
}

/// Splits a fixed-size array off the front of `rest`.
fn take<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], RejectReason> {
    let (head, tail) = rest
        .split_first_chunk::<N>()
        .ok_or(RejectReason::Malformed)?;
    *rest = tail;
    Ok(*head)
}

/// The claim for `node` in `result`, or `None` if it is not a leaf (never earned).
pub fn claim_proof(result: &EpochResult, node: &str) -> Option<Claim> {
    let index = result
        .nodes
        .binary_search_by(|n| n.node.as_str().cmp(node))
        .ok()?;
    let total = &result.nodes[index];
    let index = u64::try_from(index).ok()?;
    Some(Claim {
        epoch: result.epoch,
        node: total.node.clone(),
        cumulative: total.cumulative,
        proof: MerkleProof {
            leaf_count: result.tree.leaf_count(),
            index,
            path: result.tree.path(index)?,
        },
    })
}

/// Whether `claim` is a leaf under `root`; any change to its epoch, node, amount or proof
/// fails.
pub fn verify_claim(root: &Hash, claim: &Claim) -> bool {
    let leaf = reward_leaf(claim.epoch, &claim.node, claim.cumulative);
    claim.proof.verify(root, &leaf)
}
