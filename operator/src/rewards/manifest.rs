//! A closed epoch's manifest as the operator keeps and serves it (pure): split into
//! ConfigMap-sized shards, read back, and turned into claim proofs.
//!
//! Why shards rather than recomputing after a restart: the tallies an epoch was computed
//! from are overwritten two epochs later, and a deleted node's cumulative total lives
//! nowhere else, so only the published bytes can be served again exactly. The shards are
//! written before the RewardEpoch is created: a committed epoch always has its manifest,
//! and shards of an uncommitted epoch are simply rewritten by the next attempt.

use std::sync::Arc;

use depin_proof::merkle::{Hash, MerkleProof, MerkleTree};
use depin_proof::reward::{Claim, CumulativeTotals, NodeTotal, reward_leaf};

/// Largest shard: ConfigMaps hold at most 1 MiB, leave room for metadata.
pub const SHARD_BYTES: usize = 900 * 1024;

/// Splits `manifest` into shards of at most `limit` bytes, at line ends (one line is
/// ~600 bytes at most: a 512-byte node id plus two amounts).
pub fn shards(manifest: &str, limit: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = manifest;
    while !rest.is_empty() {
        let cut = if rest.len() <= limit {
            rest.len()
        } else {
            // Cut after the last newline within the limit; a line longer than the limit
            // (impossible for valid manifests) is kept whole. Searched as bytes: `limit`
            // may fall inside a multi-byte character, where slicing the str panics, while
            // a cut just after b'\n' is always a character boundary.
            let bytes = rest.as_bytes();
            bytes[..limit]
                .iter()
                .rposition(|&b| b == b'\n')
                .or_else(|| bytes.iter().position(|&b| b == b'\n'))
                .map_or(rest.len(), |i| i + 1)
        };
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out
}

/// Why a stored manifest cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// A line does not follow the v1 format.
    #[error("manifest line {0}: malformed")]
    Malformed(usize),
    /// The nodes do not hash to the root the manifest (or RewardEpoch) states.
    #[error("manifest nodes do not match merkle-root {0}")]
    RootMismatch(String),
}

/// A closed epoch ready to serve: its bytes and the tree over its leaves.
#[derive(Debug)]
pub struct Published {
    /// Epoch number (from genesis).
    pub epoch: u64,
    /// Canonical manifest text.
    pub manifest: Arc<str>,
    /// Every leaf, sorted by node id.
    pub nodes: Vec<NodeTotal>,
    /// Root over `nodes`.
    pub root: Hash,
    tree: MerkleTree,
}

impl Published {
    /// Reads a manifest back (v1 format, see `depin_proof::reward::manifest`) and checks
    /// that its nodes hash to its `merkle-root` line.
    pub fn parse(manifest: Arc<str>) -> Result<Self, ManifestError> {
        let mut epoch = None;
        let mut stated_root = None;
        let mut nodes = Vec::new();
        for (i, line) in manifest.lines().enumerate() {
            let bad = || ManifestError::Malformed(i + 1);
            let mut fields = line.split(' ');
            match fields.next() {
                Some("epoch") => epoch = fields.next().and_then(|e| e.parse().ok()),
                Some("merkle-root") => stated_root = fields.next().map(str::to_owned),
                Some("node") => {
                    let node = fields.next().ok_or_else(bad)?;
                    let amount = |f: Option<&str>, key: &str| {
                        f.and_then(|f| f.strip_prefix(key))
                            .and_then(|v| v.parse::<u128>().ok())
                            .ok_or_else(bad)
                    };
                    // `total` and `claim` binary-search the nodes: out of order, a listed
                    // node could go unserved; repeated, it would be served either amount.
                    if nodes
                        .last()
                        .is_some_and(|last: &NodeTotal| last.node.as_str() >= node)
                    {
                        return Err(bad());
                    }
                    let reward = amount(fields.next(), "reward=")?;
                    let cumulative = amount(fields.next(), "cumulative=")?;
                    nodes.push(NodeTotal {
                        node: node.to_owned(),
                        reward,
                        cumulative,
                    });
                }
                _ => {}
            }
        }
        let epoch = epoch.ok_or(ManifestError::Malformed(2))?;
        let stated = stated_root.unwrap_or_default();
        let tree = MerkleTree::new(
            nodes
                .iter()
                .map(|n| reward_leaf(epoch, &n.node, n.cumulative))
                .collect(),
        );
        let root = tree.root();
        if hex::encode(root) != stated {
            return Err(ManifestError::RootMismatch(stated));
        }
        Ok(Self {
            epoch,
            manifest,
            nodes,
            root,
            tree,
        })
    }

    /// The cumulative totals to close the next epoch from.
    pub fn cumulative_totals(&self) -> CumulativeTotals {
        self.nodes
            .iter()
            .map(|n| (n.node.clone(), n.cumulative))
            .collect()
    }

    /// `node`'s leaf, or None if it never earned.
    pub fn total(&self, node: &str) -> Option<&NodeTotal> {
        self.nodes
            .binary_search_by(|n| n.node.as_str().cmp(node))
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// `node`'s claim under this epoch's root, or None if it never earned.
    pub fn claim(&self, node: &str) -> Option<Claim> {
        let index = self
            .nodes
            .binary_search_by(|n| n.node.as_str().cmp(node))
            .ok()?;
        let index_u64 = u64::try_from(index).ok()?;
        Some(Claim {
            epoch: self.epoch,
            node: node.to_owned(),
            cumulative: self.nodes[index].cumulative,
            proof: MerkleProof {
                leaf_count: self.tree.leaf_count(),
                index: index_u64,
                path: self.tree.path(index_u64)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_proof::reward::{
        KindWeightsSpec, NodeTally, PolicySpec, RewardPolicy, Work, close_epoch, verify_claim,
    };

    fn result() -> depin_proof::reward::EpochResult {
        let policy = RewardPolicy::validate(&PolicySpec {
            epoch_seconds: 20,
            token_decimals: 6,
            initial_per_epoch: "1000003".into(),
            halving_every_epochs: 10,
            max_supply: None,
            pools: KindWeightsSpec {
                hotspot: "0".into(),
                storage: "1".into(),
                gpu: "0".into(),
                meter: "0".into(),
            },
            hotspot_split: None,
            gpu_classes: vec![],
            burn_and_mint: None,
        })
        .expect("policy");
        let tallies: Vec<NodeTally> = (0..50)
            .map(|i| NodeTally::new(format!("fleet/node-{i:03}"), Work::Meter { verified_wh: 0 }))
            .chain((0..300u32).map(|i| {
                NodeTally::new(
                    format!("fleet/sn-{i:03}"),
                    Work::proven_storage(
                        (u128::from(i + 1) * 2) << 30,
                        depin_proof::reward::Decimal::ONE,
                    ),
                )
            }))
            .collect();
        let previous = CumulativeTotals::from([("gone/old".to_string(), 77)]);
        close_epoch(&policy, 3, &tallies, &previous, &[]).expect("closes")
    }

    #[test]
    fn shards_reassemble_at_line_ends() {
        let text = result().manifest();
        for limit in [100, 1000, SHARD_BYTES] {
            let parts = shards(&text, limit);
            assert_eq!(parts.concat(), text, "limit {limit}");
            assert!(parts.iter().all(|p| p.ends_with('\n')), "limit {limit}");
            assert!(parts.iter().all(|p| p.len() <= limit), "limit {limit}");
        }
        assert_eq!(shards(&text, SHARD_BYTES).len(), 1);
        assert!(shards("", 10).is_empty());
    }

    #[test]
    fn shards_never_split_a_character() {
        // Found by fuzz target `manifest`: a limit inside a multi-byte character panicked.
        let text = "\u{89dc}a\n\u{e9}\u{e9}\n";
        for limit in 1..=text.len() {
            let parts = shards(text, limit);
            assert_eq!(parts.concat(), text, "limit {limit}");
            assert!(parts.iter().all(|p| p.ends_with('\n')), "limit {limit}");
        }
    }

    #[test]
    fn parsed_manifest_serves_the_same_claims() {
        let result = result();
        let published = Published::parse(result.manifest().into()).expect("parses");
        assert_eq!(published.root, result.merkle_root);
        assert_eq!(published.nodes, result.nodes);
        assert_eq!(published.cumulative_totals(), result.cumulative_totals());
        for node in ["gone/old", "fleet/sn-000", "fleet/sn-299"] {
            let claim = published.claim(node).expect("leaf");
            assert_eq!(
                Some(&claim),
                depin_proof::reward::claim_proof(&result, node).as_ref()
            );
            assert!(verify_claim(&result.merkle_root, &claim));
            let mut tampered = claim.clone();
            tampered.cumulative += 1;
            assert!(!verify_claim(&result.merkle_root, &tampered));
        }
        assert!(
            published.claim("fleet/node-001").is_none(),
            "no work, no leaf"
        );
    }

    #[test]
    fn a_doctored_manifest_is_refused() {
        let text = result()
            .manifest()
            .replacen("cumulative=77", "cumulative=78", 1);
        assert!(matches!(
            Published::parse(text.into()),
            Err(ManifestError::RootMismatch(_))
        ));
        let text = result().manifest().replacen("reward=", "rewrd=", 1);
        assert!(matches!(
            Published::parse(text.into()),
            Err(ManifestError::Malformed(_))
        ));
    }

    /// Found by fuzz target `manifest`: two `node` lines with the same id (and a root
    /// computed over both) parsed, and the claim served for that id had the other line's
    /// amount.
    #[test]
    fn nodes_out_of_order_or_repeated_are_malformed() {
        let honest = result().manifest();
        let lines: Vec<&str> = honest.lines().collect();
        let first = lines
            .iter()
            .position(|l| l.starts_with("node "))
            .expect("nodes");
        let mut swapped = lines.clone();
        swapped.swap(first, first + 1);
        let mut repeated = lines.clone();
        repeated.insert(first + 1, lines[first]);
        for lines in [swapped, repeated] {
            let text = lines.join("\n") + "\n";
            assert_eq!(
                Published::parse(text.into()).err(),
                Some(ManifestError::Malformed(first + 2))
            );
        }
    }
}
