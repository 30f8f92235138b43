//! Storage role: fill sectors on the data volume once, commit to them (Merkle roots), keep
//! the commitment in a state file, and answer deadline challenges by reading leaves back.
//!
//! Restart: with a matching state file nothing is re-filled or re-committed; each sector
//! is re-hashed from disk to rebuild its tree (needed to open any leaf) and checked against
//! the committed root. A sector that is missing or no longer matches is filled again.

use depin_proof::identity::{NodeKey, PublicKey};
use depin_proof::storage::{
    DEFAULT_LEAF_SIZE, SectorId, SectorTree, SignedSectorCommitment, StorageChallenge,
    StorageParams, StorageResponse, answer_challenge, commit_sector_from,
};
use depin_proto::config::StorageConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Name of the state file in the data directory.
pub const STATE_FILE: &str = "depin-storage-state.json";
/// Leaf size every commitment uses (the verifier's policy; see depin_proof::storage).
pub const LEAF_SIZE: u32 = DEFAULT_LEAF_SIZE;

/// What survives a restart: enough to know the sectors were filled and committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct State {
    /// Layout version of this file.
    version: u32,
    /// Hex public key the sectors were filled for.
    node: String,
    /// Leaf size of the commitments.
    leaf_size: u32,
    /// Bytes per sector.
    sector_bytes: u64,
    /// Committed roots (hex) by sector id.
    roots: BTreeMap<u64, String>,
}

struct Sector {
    tree: SectorTree,
    path: PathBuf,
}

/// The storage role's loaded state.
pub struct StorageRole {
    node: PublicKey,
    sectors: BTreeMap<SectorId, Sector>,
    commitments: Vec<SignedSectorCommitment>,
}

impl std::fmt::Debug for StorageRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageRole")
            .field("sectors", &self.sectors.len())
            .finish_non_exhaustive()
    }
}

fn sector_path(dir: &Path, sector: u64) -> PathBuf {
    dir.join("sectors").join(format!("sector-{sector}.bin"))
}

/// The deterministic content of a sector: a BLAKE3 XOF keyed by the node and sector id, so
/// a re-fill writes the same bytes (and the same root) and no two nodes' sectors coincide.
fn content(node: &PublicKey, sector: u64) -> blake3::OutputReader {
    let mut hasher = blake3::Hasher::new_derive_key("depin-agent sector content v1");
    hasher.update(node.as_bytes()).update(&sector.to_be_bytes());
    hasher.finalize_xof()
}

/// Hands out the sector's content while writing it to the file, so filling and committing
/// take one pass.
struct Filler {
    content: blake3::OutputReader,
    remaining: u64,
    file: BufWriter<File>,
}

impl Read for Filler {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.content.fill(&mut buf[..len]);
        self.file.write_all(&buf[..len])?;
        self.remaining -= len as u64;
        Ok(len)
    }
}

/// Writes sector `sector` and commits to it (the file appears only once complete).
fn fill(dir: &Path, node: &PublicKey, sector: u64, bytes: u64) -> io::Result<SectorTree> {
    let path = sector_path(dir, sector);
    let partial = path.with_extension("partial");
    let file = BufWriter::with_capacity(1 << 20, File::create(&partial)?);
    let mut filler = Filler {
        content: content(node, sector),
        remaining: bytes,
        file,
    };
    let tree = commit_sector_from(SectorId(sector), &mut filler, LEAF_SIZE)?;
    let file = filler
        .file
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    std::fs::rename(&partial, &path)?;
    Ok(tree)
}

/// Rebuilds a sector's tree from disk; None when the file is missing or its root changed.
fn reload(dir: &Path, sector: u64, bytes: u64, root: &str) -> Option<SectorTree> {
    let file = File::open(sector_path(dir, sector)).ok()?;
    if file.metadata().ok()?.len() != bytes {
        return None;
    }
    let tree = commit_sector_from(
        SectorId(sector),
        io::BufReader::with_capacity(1 << 20, file),
        LEAF_SIZE,
    )
    .ok()?;
    (hex::encode(tree.commitment().root) == root).then_some(tree)
}

fn write_state(dir: &Path, state: &State) -> io::Result<()> {
    let path = dir.join(STATE_FILE);
    let partial = path.with_extension("partial");
    let text = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    let mut file = File::create(&partial)?;
    file.write_all(&text)?;
    file.sync_all()?;
    std::fs::rename(partial, path)
}

fn read_state(dir: &Path) -> Option<State> {
    let text = std::fs::read(dir.join(STATE_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

impl StorageRole {
    /// Loads the committed sectors, filling and committing whatever is missing (blocking:
    /// run it off the async runtime). A sector that cannot be written (volume full) is
    /// logged and left out rather than stopping the others.
    pub fn prepare(config: &StorageConfig, key: &NodeKey) -> io::Result<Self> {
        let dir = Path::new(&config.data_dir);
        std::fs::create_dir_all(dir.join("sectors"))?;
        let node = key.public();
        let count = config.capacity_bytes / config.sector_size_bytes.max(1);
        let bytes = config.sector_size_bytes;
        let previous = read_state(dir).filter(|s| {
            s.version == 1
                && s.node == node.to_hex()
                && s.leaf_size == LEAF_SIZE
                && s.sector_bytes == bytes
        });
        let mut state = State {
            version: 1,
            node: node.to_hex(),
            leaf_size: LEAF_SIZE,
            sector_bytes: bytes,
            roots: BTreeMap::new(),
        };
        let mut sectors = BTreeMap::new();
        let (mut filled, mut reloaded) = (0u64, 0u64);
        for id in 0..count {
            let known = previous.as_ref().and_then(|s| s.roots.get(&id));
            let tree = match known.and_then(|root| reload(dir, id, bytes, root)) {
                Some(tree) => {
                    reloaded += 1;
                    tree
                }
                None => {
                    if known.is_some() {
                        tracing::warn!(
                            sector = id,
                            "sector file missing or changed; filling it again"
                        );
                    }
                    match fill(dir, &node, id, bytes) {
                        Ok(tree) => {
                            filled += 1;
                            tree
                        }
                        Err(err) => {
                            tracing::error!(sector = id, error = %err, "cannot fill sector; leaving it out");
                            continue;
                        }
                    }
                }
            };
            state.roots.insert(id, hex::encode(tree.commitment().root));
            sectors.insert(
                SectorId(id),
                Sector {
                    tree,
                    path: sector_path(dir, id),
                },
            );
        }
        if previous.as_ref() != Some(&state) {
            write_state(dir, &state)?;
        }
        tracing::info!(
            sectors = sectors.len(),
            filled,
            reloaded,
            sector_bytes = bytes,
            "storage sectors committed"
        );
        let commitments = sectors
            .values()
            .map(|s: &Sector| s.tree.sign(key))
            .collect();
        Ok(Self {
            node,
            sectors,
            commitments,
        })
    }

    /// The signed commitments to send at the start of every session.
    pub fn commitments(&self) -> &[SignedSectorCommitment] {
        &self.commitments
    }

    /// Bytes under commitment.
    pub fn committed_bytes(&self) -> u64 {
        self.sectors
            .values()
            .map(|s| s.tree.commitment().sector_bytes)
            .sum()
    }

    /// Answers a deadline challenge by reading the `k` challenged leaves from disk
    /// (blocking), signed with `session_key`.
    pub fn answer(
        &self,
        challenge: &StorageChallenge,
        k: u32,
        session_key: &NodeKey,
    ) -> io::Result<StorageResponse> {
        let sector = self.sectors.get(&challenge.sector).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no sector {}", challenge.sector.0),
            )
        })?;
        let params = StorageParams {
            challenges_per_deadline: k,
            ..StorageParams::default()
        };
        let mut file = File::open(&sector.path)?;
        answer_challenge(
            &sector.tree,
            challenge,
            &mut file,
            &self.node,
            session_key,
            &params,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("depin-agent-storage-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn restart_reuses_the_commitment_and_repairs_a_damaged_sector() {
        let dir = scratch("restart");
        let config = StorageConfig {
            capacity_bytes: 3 * 40_000,
            sector_size_bytes: 40_000,
            data_dir: dir.display().to_string(),
        };
        let key = NodeKey::from_seed([4; 32]);
        let first = StorageRole::prepare(&config, &key).expect("fills");
        assert_eq!(first.commitments().len(), 3);
        assert_eq!(first.committed_bytes(), 120_000);
        let modified = |id| {
            std::fs::metadata(sector_path(&dir, id))
                .and_then(|m| m.modified())
                .expect("file")
        };
        let before = modified(0);
        // Damage sector 1; sector 0 must be reused as is.
        std::fs::write(sector_path(&dir, 1), b"lost").expect("damage");
        let second = StorageRole::prepare(&config, &key).expect("reloads");
        assert_eq!(
            second.commitments(),
            first.commitments(),
            "same content, same roots"
        );
        assert_eq!(modified(0), before, "sector 0 was not re-filled");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
