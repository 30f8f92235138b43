//! The seal: a node-unique packing of a sector that is costly to regenerate, so a node that
//! answers challenges inside the response deadline must have kept the packed bytes.
//!
//! Packing (research storage-packing.md, "one design"; Arweave 2.6 replica packing with the
//! miner's address in the key, Filecoin SDR's sequential labelling):
//! `seed = BLAKE3_derive_key(SEAL_DOMAIN, node ‖ sector ‖ sector_bytes ‖ passes)`;
//! `Mem = Argon2d(password = seed, m = the whole sector, t = passes, p = 1)`;
//! the replica is `D ⊕ Mem` (D = zeros unless data is XORed in) and `comm_R` is the ordinary
//! Merkle root of its leaves. One lane and one memory for the whole sector make the number of
//! independently regenerable units B = 1: any last-pass block needs every earlier pass, so
//! regenerating even one challenged leaf costs at least `(passes − 1)` full passes over the
//! sector, done one block after another (Argon2d's data-dependent references cannot be
//! computed ahead, and one lane cannot be split across cores).
//!
//! The memory itself is the entropy, never a hash of it: a short tag would be a perfect
//! checkpoint for a cheater.

use std::io::{self, Read, Write};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use thiserror::Error;

use super::prove::{SectorTree, commit_sector_from};
use super::{SectorCommitment, SectorId, StorageParams};
use crate::identity::PublicKey;
use crate::reject::RejectReason;

/// BLAKE3 `derive_key` context of the seal seed; the version names the packing.
pub const SEAL_DOMAIN: &str = "depin/storage/seal/v1";
/// Argon2 salt (it must be ≥ 8 bytes); every per-sector input is already in the seed.
const SEAL_SALT: &[u8] = b"depin/storage/seal/v1/salt";
/// Argon2 block size: 1 KiB.
pub const SEAL_BLOCK_BYTES: u64 = Block::SIZE as u64;

/// Default sequential work of one seal, in Argon2 block compressions: 16 passes over 1 GiB.
/// Measured on this kind of machine (docs/r2/storage-seal.md) a pass over 1 GiB takes
/// ~0.7 s, so regenerating any leaf costs ≥ 15 passes ≈ 10 s, five times the 2 s response
/// deadline, which leaves a ×5 speed-up margin for a faster attacker.
pub const DEFAULT_SEAL_WORK_BLOCKS: u64 = 16 << 20;
/// Fewest passes: with one pass a leaf at offset x depends only on blocks ≤ x, so a cheater
/// would regenerate a prefix; from two on, every last-pass block needs a whole earlier pass.
pub const MIN_SEAL_PASSES: u32 = 3;
/// Default most passes: 256 × 64 MiB = the default work, so every sector from
/// [`MIN_SECTOR_BYTES`] up gets the full work; smaller (test) sectors are capped here.
pub const DEFAULT_MAX_SEAL_PASSES: u32 = 256;
/// Smallest sector the seal is sized for (64 MiB): below it the default work would need more
/// than [`DEFAULT_MAX_SEAL_PASSES`] passes. The CRD refuses smaller sizes.
pub const MIN_SECTOR_BYTES: u64 = 64 << 20;
/// Largest sector (1 GiB): packing and the verifier's recomputation hold the whole sector
/// in memory, so this bounds what a commitment can make the verifier allocate.
pub const MAX_SECTOR_BYTES: u64 = 1 << 30;

/// How much sequential work one seal costs; part of [`StorageParams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealParams {
    /// Target Argon2 block compressions per seal; passes = work / sector blocks, clamped.
    pub work_blocks: u64,
    /// Upper bound on passes, so tiny (test) sectors stay cheap.
    pub max_passes: u32,
}

impl Default for SealParams {
    fn default() -> Self {
        Self {
            work_blocks: DEFAULT_SEAL_WORK_BLOCKS,
            max_passes: DEFAULT_MAX_SEAL_PASSES,
        }
    }
}

impl SealParams {
    /// Argon2 passes for a sector of `sector_bytes`:
    /// `clamp(ceil(work_blocks / blocks), MIN_SEAL_PASSES, max_passes)`.
    pub fn passes_for(&self, sector_bytes: u64) -> u32 {
        let wanted = self.work_blocks.div_ceil(seal_blocks(sector_bytes));
        let cap = self.max_passes.max(MIN_SEAL_PASSES);
        u32::try_from(wanted)
            .unwrap_or(u32::MAX)
            .clamp(MIN_SEAL_PASSES, cap)
    }
}

/// Why a sector could not be packed.
#[derive(Debug, Error)]
pub enum SealError {
    /// The sector exceeds [`MAX_SECTOR_BYTES`] (or is empty).
    #[error("sector of {0} bytes is outside 1..={MAX_SECTOR_BYTES} bytes")]
    SectorSize(u64),
    /// Argon2 refused its parameters (should not happen inside the bounds above).
    #[error("argon2: {0}")]
    Argon2(String),
}

impl From<SealError> for io::Error {
    fn from(err: SealError) -> Self {
        io::Error::other(err)
    }
}

/// Argon2 blocks backing a sector: whole KiB, at least 8 (Argon2's minimum), a multiple of
/// the 4 sync points so Argon2 uses every block it is given.
fn seal_blocks(sector_bytes: u64) -> u64 {
    sector_bytes
        .div_ceil(SEAL_BLOCK_BYTES)
        .max(8)
        .next_multiple_of(4)
}

/// The seal seed: `BLAKE3_derive_key(SEAL_DOMAIN, node ‖ sector u64 ‖ sector_bytes u64 ‖
/// passes u32)`. The node key makes every identity's replica different.
pub fn seal_seed(node: &PublicKey, sector: SectorId, sector_bytes: u64, passes: u32) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(SEAL_DOMAIN);
    hasher
        .update(node.as_bytes())
        .update(&sector.0.to_be_bytes())
        .update(&sector_bytes.to_be_bytes())
        .update(&passes.to_be_bytes());
    *hasher.finalize().as_bytes()
}

/// One sector's packed replica, in memory (as Argon2 left it).
pub struct SealedSector {
    sector: SectorId,
    sector_bytes: u64,
    memory: Vec<Block>,
}

impl std::fmt::Debug for SealedSector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSector")
            .field("sector", &self.sector)
            .field("sector_bytes", &self.sector_bytes)
            .finish_non_exhaustive()
    }
}

impl SealedSector {
    /// Packs `sector` of `sector_bytes` for `node` (zero data): the expensive, sequential
    /// step, holding the whole sector in memory. Run it off any async runtime.
    pub fn pack(
        node: &PublicKey,
        sector: SectorId,
        sector_bytes: u64,
        params: &SealParams,
    ) -> Result<Self, SealError> {
        if sector_bytes == 0 || sector_bytes > MAX_SECTOR_BYTES {
            return Err(SealError::SectorSize(sector_bytes));
        }
        let passes = params.passes_for(sector_bytes);
        let blocks = seal_blocks(sector_bytes);
        let m_cost = u32::try_from(blocks).map_err(|_| SealError::SectorSize(sector_bytes))?;
        let argon =
            Params::new(m_cost, passes, 1, None).map_err(|e| SealError::Argon2(e.to_string()))?;
        let mut memory =
            vec![Block::new(); usize::try_from(blocks).map_err(|_| SealError::SectorSize(blocks))?];
        Argon2::new(Algorithm::Argon2d, Version::V0x13, argon)
            .fill_memory(
                &seal_seed(node, sector, sector_bytes, passes),
                SEAL_SALT,
                &mut memory,
            )
            .map_err(|e| SealError::Argon2(e.to_string()))?;
        Ok(Self {
            sector,
            sector_bytes,
            memory,
        })
    }

    /// The sector.
    pub fn sector(&self) -> SectorId {
        self.sector
    }

    /// Replica length in bytes.
    pub fn sector_bytes(&self) -> u64 {
        self.sector_bytes
    }

    /// XORs `data` into the replica from its start (`D ⊕ Mem`); bytes past the sector are
    /// ignored. XOR twice with the same data to unseal.
    pub fn xor_data(&mut self, data: &[u8]) {
        let len = usize::try_from(self.sector_bytes).unwrap_or(usize::MAX);
        for (block, chunk) in self
            .memory
            .iter_mut()
            .zip(data[..data.len().min(len)].chunks(1024))
        {
            for (word, bytes) in block.as_mut().iter_mut().zip(chunk.chunks(8)) {
                let mut le = [0u8; 8];
                le[..bytes.len()].copy_from_slice(bytes);
                *word ^= u64::from_le_bytes(le);
            }
        }
    }

    /// A reader over the replica's bytes (little-endian words of the Argon2 blocks).
    pub fn reader(&self) -> SealedReader<'_> {
        SealedReader {
            sealed: self,
            position: 0,
        }
    }

    /// The replica's bytes, copied (tests and small sectors).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(self.sector_bytes).unwrap_or(0));
        // Reading from memory cannot fail.
        let _ = self.reader().read_to_end(&mut out);
        out
    }

    /// Commits to the replica (its Merkle tree over `leaf_size` leaves).
    pub fn commit(&self, leaf_size: u32) -> SectorTree {
        // The reader only copies from memory, so it never returns an error.
        commit_sector_from(self.sector, self.reader(), leaf_size)
            .unwrap_or_else(|_| unreachable!("reading a sealed sector from memory cannot fail"))
    }

    /// Writes the replica to `out` (the sector file) and commits to it in the same pass.
    pub fn write_and_commit<W: Write>(&self, out: W, leaf_size: u32) -> io::Result<SectorTree> {
        let tee = Tee {
            inner: self.reader(),
            out,
        };
        commit_sector_from(self.sector, tee, leaf_size)
    }
}

/// Streams a [`SealedSector`]'s bytes.
pub struct SealedReader<'a> {
    sealed: &'a SealedSector,
    position: u64,
}

impl Read for SealedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.sealed.sector_bytes.saturating_sub(self.position);
        let want = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let mut written = 0;
        while written < want {
            let block_index = usize::try_from(self.position / SEAL_BLOCK_BYTES).unwrap_or(0);
            let Some(block) = self.sealed.memory.get(block_index) else {
                break;
            };
            let within = usize::try_from(self.position % SEAL_BLOCK_BYTES).unwrap_or(0);
            let mut bytes = [0u8; Block::SIZE];
            for (word, out) in block.as_ref().iter().zip(bytes.chunks_mut(8)) {
                out.copy_from_slice(&word.to_le_bytes());
            }
            let take = (Block::SIZE - within).min(want - written);
            buf[written..written + take].copy_from_slice(&bytes[within..within + take]);
            written += take;
            self.position += take as u64;
        }
        Ok(written)
    }
}

/// Copies everything read through it to `out`.
struct Tee<'a, W> {
    inner: SealedReader<'a>,
    out: W,
}

impl<W: Write> Read for Tee<'_, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Packs and commits in one call: the agent's (and a test's) way to a sealed sector.
pub fn commit_sealed(
    node: &PublicKey,
    sector: SectorId,
    sector_bytes: u64,
    params: &StorageParams,
) -> Result<(SealedSector, SectorTree), SealError> {
    let sealed = SealedSector::pack(node, sector, sector_bytes, &params.seal)?;
    let tree = sealed.commit(params.leaf_size);
    Ok((sealed, tree))
}

/// Checks, at commitment time, that `commitment.root` is the root of `node`'s packing of the
/// sector, by packing it again (CPU = one honest seal, memory = the sector; no cheaper audit
/// exists because the whole sector is one Argon2 memory). Run it off any async runtime and
/// once per sector: the accepted root is frozen afterwards.
///
/// Errors: [`RejectReason::WrongSectorSize`] when the sector is empty or above
/// [`MAX_SECTOR_BYTES`] (the verifier will not allocate it), [`RejectReason::WrongSeal`] when
/// the root differs (unpacked data, another identity's packing, other passes, a sparse or
/// re-committed tree).
pub fn verify_sealed_root(
    node: &PublicKey,
    commitment: &SectorCommitment,
    params: &StorageParams,
) -> Result<(), RejectReason> {
    if commitment.sector_bytes == 0 || commitment.sector_bytes > MAX_SECTOR_BYTES {
        return Err(RejectReason::WrongSectorSize);
    }
    let sealed = SealedSector::pack(
        node,
        commitment.sector,
        commitment.sector_bytes,
        &params.seal,
    )
    .map_err(|_| RejectReason::WrongSectorSize)?;
    let tree = sealed.commit(commitment.leaf_size);
    if tree.commitment().root != commitment.root
        || tree.commitment().leaf_count != commitment.leaf_count
    {
        return Err(RejectReason::WrongSeal);
    }
    Ok(())
}
