//! Storage role: pack each sector once on the data volume with this node's seal (Argon2d
//! keyed by the node, see depin_proof::storage::seal), commit to the packed bytes (Merkle
//! roots), keep the commitment in a state file, and answer deadline challenges by reading
//! the packed leaves back.
//!
//! Restart: with a matching state file nothing is re-packed or re-committed; each sector
//! is re-hashed from disk to rebuild its tree (needed to open any leaf) and checked against
//! the committed root. A sector that is missing or no longer matches is packed again.

use depin_proof::identity::{NodeKey, PublicKey};
use depin_proof::storage::{
    DEFAULT_LEAF_SIZE, SealedSector, SectorId, SectorTree, SignedSectorCommitment,
    StorageChallenge, StorageParams, StorageResponse, answer_challenge, commit_sector_from,
};
use depin_proto::config::StorageConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Name of the state file in the data directory.
pub const STATE_FILE: &str = "depin-storage-state.json";
/// State file layout: 2 = sealed sectors (1 held unsealed content, which is packed again).
const STATE_VERSION: u32 = 2;
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

/// Packs sector `sector` with the seal, writes it and commits to it (the file appears only
/// once complete). Holds the whole sector in memory while packing.
fn fill(
    dir: &Path,
    node: &PublicKey,
    sector: u64,
    bytes: u64,
    params: &StorageParams,
) -> io::Result<SectorTree> {
    let path = sector_path(dir, sector);
    let partial = path.with_extension("partial");
    let sealed = SealedSector::pack(node, SectorId(sector), bytes, &params.seal)?;
    let mut file = BufWriter::with_capacity(1 << 20, File::create(&partial)?);
    let tree = sealed.write_and_commit(&mut file, params.leaf_size)?;
    let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
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
        // The seal's cost and the leaf size are the verifier's defaults (the policy sets no
        // others today); a mismatch would show as WrongSeal on the commitment.
        let params = StorageParams::default();
        let bytes = config.sector_size_bytes;
        let previous = read_state(dir).filter(|s| {
            s.version == STATE_VERSION
                && s.node == node.to_hex()
                && s.leaf_size == LEAF_SIZE
                && s.sector_bytes == bytes
        });
        let mut state = State {
            version: STATE_VERSION,
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
                    match fill(dir, &node, id, bytes, &params) {
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

    #[test]
    fn sectors_on_disk_are_this_nodes_sealed_packing() {
        let dir = scratch("sealed");
        let config = StorageConfig {
            capacity_bytes: 2 * 65_536,
            sector_size_bytes: 65_536,
            data_dir: dir.display().to_string(),
        };
        let key = NodeKey::from_seed([6; 32]);
        let role = StorageRole::prepare(&config, &key).expect("packs");
        let params = StorageParams::default();
        for signed in role.commitments() {
            assert_eq!(
                depin_proof::storage::verify_sealed_root(
                    &key.public(),
                    &signed.commitment,
                    &params
                ),
                Ok(())
            );
            // The same bytes do not pass as another identity's packing.
            let other = NodeKey::from_seed([7; 32]).public();
            assert_eq!(
                depin_proof::storage::verify_sealed_root(&other, &signed.commitment, &params),
                Err(depin_proof::reject::RejectReason::WrongSeal)
            );
        }
        let on_disk = std::fs::read(sector_path(&dir, 1)).expect("sector file");
        let packed = SealedSector::pack(&key.public(), SectorId(1), 65_536, &params.seal)
            .expect("packs")
            .to_bytes();
        assert_eq!(on_disk, packed, "the file holds the packed replica");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
