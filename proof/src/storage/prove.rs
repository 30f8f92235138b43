//! Prover side (the storage agent): commit a sector, answer a deadline's challenge.

use std::io::{self, Read, Seek, SeekFrom};

use super::messages::{
    LeafOpening, SECTOR_COMMITMENT_DOMAIN, STORAGE_RESPONSE_DOMAIN, SectorCommitment,
    SignedSectorCommitment, StorageChallenge, StorageResponse, challenged_leaves, leaf_hash,
};
use super::{SectorId, StorageParams};
use crate::identity::{NodeKey, PublicKey};
use crate::merkle::{LeafHash, MerkleTree};

/// What the agent keeps per sector: the commitment and the whole tree, to open any leaf.
/// Memory: 64 bytes per leaf (leaves plus inner levels), 4 MiB per GiB at 16 KiB leaves.
#[derive(Debug, Clone)]
pub struct SectorTree {
    commitment: SectorCommitment,
    tree: MerkleTree,
}

impl SectorTree {
    /// The commitment to publish.
    pub fn commitment(&self) -> &SectorCommitment {
        &self.commitment
    }

    /// The commitment signed by the node's long-term key.
    pub fn sign(&self, node_key: &NodeKey) -> SignedSectorCommitment {
        let node = node_key.public();
        SignedSectorCommitment {
            node,
            commitment: self.commitment,
            signature: node_key.sign(SECTOR_COMMITMENT_DOMAIN, &self.commitment.body(&node)),
        }
    }

    /// The inclusion path of leaf `index`, or `None` when out of range.
    pub fn path(&self, index: u64) -> Option<crate::merkle::MerklePath> {
        self.tree.path(index)
    }

    fn from_leaves(
        sector: SectorId,
        sector_bytes: u64,
        leaf_size: u32,
        leaves: Vec<LeafHash>,
    ) -> Self {
        let tree = MerkleTree::new(leaves);
        let commitment = SectorCommitment {
            sector,
            sector_bytes,
            leaf_size,
            leaf_count: tree.leaf_count(),
            root: tree.root(),
        };
        Self { commitment, tree }
    }
}

/// Commits to a sector held in memory.
pub fn commit_sector(sector: SectorId, data: &[u8], leaf_size: u32) -> SectorTree {
    let size = usize::try_from(leaf_size.max(1)).unwrap_or(usize::MAX);
    let leaves = data
        .chunks(size)
        .zip(0u64..)
        .map(|(leaf, index)| leaf_hash(index, leaf))
        .collect();
    SectorTree::from_leaves(sector, data.len() as u64, leaf_size.max(1), leaves)
}

/// Commits to a sector streamed from `reader` (a file on the PVC), one leaf in memory at a time.
pub fn commit_sector_from<R: Read>(
    sector: SectorId,
    mut reader: R,
    leaf_size: u32,
) -> io::Result<SectorTree> {
    let mut buffer = vec![0u8; usize::try_from(leaf_size.max(1)).unwrap_or(usize::MAX)];
    let (mut leaves, mut total) = (Vec::new(), 0u64);
    loop {
        let filled = read_full(&mut reader, &mut buffer)?;
        if filled == 0 {
            break;
        }
        leaves.push(leaf_hash(leaves.len() as u64, &buffer[..filled]));
        total += filled as u64;
        if filled < buffer.len() {
            break;
        }
    }
    Ok(SectorTree::from_leaves(
        sector,
        total,
        leaf_size.max(1),
        leaves,
    ))
}

/// Reads until `buffer` is full or the reader is exhausted; returns the bytes read.
fn read_full<R: Read>(reader: &mut R, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Answers a challenge by reading the challenged leaves from `source` (the sector's bytes;
/// an `io::Cursor` over a slice in tests) and signing with the session key.
pub fn answer_challenge<S: Read + Seek>(
    sector: &SectorTree,
    challenge: &StorageChallenge,
    source: &mut S,
    node: &PublicKey,
    session_key: &NodeKey,
    params: &StorageParams,
) -> io::Result<StorageResponse> {
    let commitment = &sector.commitment;
    let indices = challenged_leaves(
        &challenge.id(node),
        commitment,
        params.challenges_per_deadline,
    );
    let mut openings = Vec::with_capacity(indices.len());
    let mut hashes = Vec::with_capacity(indices.len());
    for &index in &indices {
        let len = usize::try_from(commitment.leaf_len(index)).unwrap_or(usize::MAX);
        let mut leaf = vec![0u8; len];
        source.seek(SeekFrom::Start(
            index.saturating_mul(u64::from(commitment.leaf_size)),
        ))?;
        source.read_exact(&mut leaf)?;
        let path = sector
            .path(index)
            .ok_or_else(|| io::Error::other("challenged leaf outside the tree"))?;
        hashes.push(leaf_hash(index, &leaf));
        openings.push(LeafOpening { leaf, path });
    }
    let mut response = StorageResponse {
        sector: commitment.sector,
        period: challenge.deadline.period,
        deadline_index: challenge.deadline.index,
        entropy_tick: challenge.entropy.tick,
        openings,
        signature: [0; 64],
    };
    response.signature = session_key.sign(STORAGE_RESPONSE_DOMAIN, &response.body(&hashes));
    Ok(response)
}
