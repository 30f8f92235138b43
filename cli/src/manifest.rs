//! The canonical reward manifest (format v1, proof/src/reward/manifest.rs) read back, its
//! Merkle root recomputed from the node lines, and its totals checked against the
//! RewardEpoch that commits to it.

use depin_crds::RewardEpochSpec;
use depin_proof::merkle::{Hash, root_of};
use depin_proof::reward::{MANIFEST_HEADER, reward_leaf};
use thiserror::Error;

/// A parsed manifest: header totals, paying pools, and every leaf in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Epoch number.
    pub epoch: u64,
    /// Scheduled emission, base units.
    pub emission: u128,
    /// Burned for usage, base units.
    pub burn: u128,
    /// Re-minted on top of the schedule, base units.
    pub remint: u128,
    /// Dust and pools nobody earned from, base units.
    pub unallocated: u128,
    /// Nodes paid a non-zero reward this epoch.
    pub node_count: u64,
    /// Leaves the header announces.
    pub leaf_count: u64,
    /// The `merkle-root` line.
    pub merkle_root: Hash,
    /// Paying pools, in manifest order.
    pub pools: Vec<PoolLine>,
    /// Node lines, in manifest (leaf) order.
    pub nodes: Vec<NodeLine>,
}

/// One `pool` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolLine {
    /// Pool name (`storage`, `hotspot.beacon`, …).
    pub pool: String,
    /// Base units in the pool.
    pub amount: u128,
    /// Base units paid to nodes.
    pub paid: u128,
    /// Sum of shares, canonical decimal.
    pub total_shares: String,
    /// Base units per share, canonical decimal.
    pub reward_per_share: String,
}

/// One `node` line: a Merkle leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLine {
    /// Node id (`namespace/name`).
    pub node: String,
    /// Base units earned this epoch.
    pub reward: u128,
    /// Lifetime base units: what the leaf commits to.
    pub cumulative: u128,
}

/// A manifest line that does not follow format v1.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("manifest line {line}: {problem}")]
pub struct ManifestError {
    /// 1-based line number (one past the end for a missing line).
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// The header lines in their fixed order, after [`MANIFEST_HEADER`].
const HEADER_KEYS: [&str; 8] = [
    "epoch",
    "emission",
    "burn",
    "remint",
    "unallocated",
    "node-count",
    "leaf-count",
    "merkle-root",
];

/// Parses a format-v1 manifest; strict, since the bytes are what the root commits to.
pub fn parse_manifest(text: &str) -> Result<Manifest, ManifestError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let mut manifest = parse_header(&mut lines)?;
    for (n, line) in lines {
        let bad = |problem: &str| error(n, format!("{problem}: {line:?}"));
        match line.split_once(' ') {
            Some(("pool", rest)) if manifest.nodes.is_empty() => {
                let [pool, amount, paid, shares, per_share] =
                    fields(rest, ["amount", "paid", "total-shares", "reward-per-share"])
                        .ok_or_else(|| bad("malformed pool line"))?;
                manifest.pools.push(PoolLine {
                    pool: pool.into(),
                    amount: number((n, amount))?,
                    paid: number((n, paid))?,
                    total_shares: shares.into(),
                    reward_per_share: per_share.into(),
                });
            }
            Some(("node", rest)) => {
                let [node, reward, cumulative] = fields(rest, ["reward", "cumulative"])
                    .ok_or_else(|| bad("malformed node line"))?;
                manifest.nodes.push(NodeLine {
                    node: node.into(),
                    reward: number((n, reward))?,
                    cumulative: number((n, cumulative))?,
                });
            }
            _ => return Err(bad("expected a pool line, then node lines")),
        }
    }
    Ok(manifest)
}

/// The first line and the [`HEADER_KEYS`] lines, as a manifest with no pools or nodes yet.
fn parse_header<'a>(
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<Manifest, ManifestError> {
    match lines.next() {
        Some((_, MANIFEST_HEADER)) => {}
        other => {
            let found = other.map_or("nothing", |(_, l)| l);
            let problem = format!("expected {MANIFEST_HEADER:?}, found {found:?}");
            return Err(error(1, problem));
        }
    }
    let mut header = Vec::with_capacity(HEADER_KEYS.len());
    for key in HEADER_KEYS {
        let (n, line) = lines.next().unwrap_or((header.len() + 2, ""));
        match line.split_once(' ') {
            Some((k, value)) if k == key => header.push((n, value)),
            _ => {
                return Err(error(
                    n,
                    format!("expected `{key} <value>`, found {line:?}"),
                ));
            }
        }
    }
    let (root_line, root_hex) = header[7];
    Ok(Manifest {
        epoch: number(header[0])?,
        emission: number(header[1])?,
        burn: number(header[2])?,
        remint: number(header[3])?,
        unallocated: number(header[4])?,
        node_count: number(header[5])?,
        leaf_count: number(header[6])?,
        merkle_root: parse_hash(root_hex)
            .ok_or_else(|| error(root_line, "bad merkle-root hex".into()))?,
        pools: Vec::new(),
        nodes: Vec::new(),
    })
}

fn error(line: usize, problem: String) -> ManifestError {
    ManifestError { line, problem }
}

/// A plain decimal integer field on line `n`.
fn number<T: std::str::FromStr>((n, value): (usize, &str)) -> Result<T, ManifestError> {
    value
        .parse()
        .map_err(|_| error(n, format!("{value:?} is not a whole number in range")))
}

/// Splits `name k1=v1 k2=v2 …` into `[name, v1, v2, …]`, keys exactly as listed.
fn fields<'a, const K: usize, const N: usize>(
    rest: &'a str,
    keys: [&str; K],
) -> Option<[&'a str; N]> {
    let mut parts = rest.split(' ');
    let mut out = [""; N];
    out[0] = parts.next().filter(|name| !name.is_empty())?;
    for (slot, key) in out[1..].iter_mut().zip(keys) {
        *slot = parts.next()?.strip_prefix(key)?.strip_prefix('=')?;
    }
    (K + 1 == N && parts.next().is_none()).then_some(out)
}

/// Decodes 64 hex digits.
pub fn parse_hash(text: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

impl Manifest {
    /// The root over the node lines, built as the operator builds it (`close_epoch`):
    /// one `reward_leaf(epoch, node, cumulative)` per line, in manifest order.
    pub fn recomputed_root(&self) -> Hash {
        let leaves: Vec<_> = self
            .nodes
            .iter()
            .map(|n| reward_leaf(self.epoch, &n.node, n.cumulative))
            .collect();
        root_of(&leaves)
    }
}

/// A way a manifest disagrees with itself or with its RewardEpoch.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ManifestProblem {
    /// The `merkle-root` line is not the RewardEpoch's `merkleRoot`.
    #[error("manifest merkle-root {manifest} differs from RewardEpoch merkleRoot {record}")]
    RootLineDiffers {
        /// The manifest's line.
        manifest: String,
        /// The RewardEpoch's field.
        record: String,
    },
    /// The node lines do not hash to the `merkle-root` line.
    #[error("root recomputed from the node lines is {recomputed}, manifest says {manifest}")]
    RecomputedRootDiffers {
        /// Root over the node lines.
        recomputed: String,
        /// The manifest's line.
        manifest: String,
    },
    /// `leaf-count` is not the number of node lines.
    #[error("leaf-count {header} but {lines} node lines")]
    LeafCountDiffers {
        /// The header's count.
        header: u64,
        /// Node lines present.
        lines: usize,
    },
    /// Node lines are not strictly ascending by id (leaf order), or a node repeats.
    #[error("node lines out of byte order (or repeated) at {0}")]
    NodesOutOfOrder(String),
    /// A header total disagrees with the RewardEpoch.
    #[error("{field} is {manifest} in the manifest but {record} in the RewardEpoch")]
    TotalDiffers {
        /// Header key.
        field: &'static str,
        /// Manifest value.
        manifest: String,
        /// RewardEpoch value.
        record: String,
    },
    /// The pool lines disagree with the RewardEpoch's `pools`.
    #[error("pool lines differ from the RewardEpoch's pools")]
    PoolsDiffer,
    /// Σ node rewards, Σ pool paid and `node-count` are not consistent.
    #[error(
        "node rewards sum to {rewards} ({paid_nodes} nodes) but pools paid {paid} to node-count {node_count}"
    )]
    PayoutsDoNotAddUp {
        /// Σ reward over node lines.
        rewards: u128,
        /// Node lines with a non-zero reward.
        paid_nodes: u64,
        /// Σ paid over pool lines.
        paid: u128,
        /// The header's node-count.
        node_count: u64,
    },
    /// Σ paid + unallocated is not emission + remint.
    #[error("pools paid plus unallocated is {allocated}, emission plus remint is {supply}")]
    SupplyDoesNotAddUp {
        /// Σ paid + unallocated.
        allocated: u128,
        /// emission + remint.
        supply: u128,
    },
}

impl ManifestProblem {
    /// A stable CamelCase label for the problem.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::RootLineDiffers { .. } => "RootLineDiffers",
            Self::RecomputedRootDiffers { .. } => "RecomputedRootDiffers",
            Self::LeafCountDiffers { .. } => "LeafCountDiffers",
            Self::NodesOutOfOrder(_) => "NodesOutOfOrder",
            Self::TotalDiffers { .. } => "TotalDiffers",
            Self::PoolsDiffer => "PoolsDiffer",
            Self::PayoutsDoNotAddUp { .. } => "PayoutsDoNotAddUp",
            Self::SupplyDoesNotAddUp { .. } => "SupplyDoesNotAddUp",
        }
    }
}

/// Every way `manifest` disagrees with `record` or with itself; empty when it checks out.
pub fn check_manifest(manifest: &Manifest, record: &RewardEpochSpec) -> Vec<ManifestProblem> {
    let mut problems = Vec::new();
    let line_root = hex::encode(manifest.merkle_root);
    if !line_root.eq_ignore_ascii_case(&record.merkle_root) {
        problems.push(ManifestProblem::RootLineDiffers {
            manifest: line_root.clone(),
            record: record.merkle_root.clone(),
        });
    }
    let recomputed = hex::encode(manifest.recomputed_root());
    if recomputed != line_root {
        problems.push(ManifestProblem::RecomputedRootDiffers {
            recomputed,
            manifest: line_root,
        });
    }
    if manifest.leaf_count != manifest.nodes.len() as u64 {
        problems.push(ManifestProblem::LeafCountDiffers {
            header: manifest.leaf_count,
            lines: manifest.nodes.len(),
        });
    }
    if let Some(pair) = manifest.nodes.windows(2).find(|w| w[0].node >= w[1].node) {
        problems.push(ManifestProblem::NodesOutOfOrder(pair[1].node.clone()));
    }
    problems.extend(total_problems(manifest, record));
    problems.extend(sum_problems(manifest));
    problems
}

/// Header totals and pools against the RewardEpoch.
fn total_problems(m: &Manifest, r: &RewardEpochSpec) -> Vec<ManifestProblem> {
    let pairs = [
        ("epoch", m.epoch.to_string(), r.epoch.to_string()),
        ("emission", m.emission.to_string(), r.emission.clone()),
        ("burn", m.burn.to_string(), r.burn.clone()),
        ("remint", m.remint.to_string(), r.remint.clone()),
        (
            "unallocated",
            m.unallocated.to_string(),
            r.unallocated.clone(),
        ),
        (
            "node-count",
            m.node_count.to_string(),
            r.node_count.to_string(),
        ),
    ];
    let mut problems: Vec<_> = pairs
        .into_iter()
        .filter(|(_, manifest, record)| manifest != record)
        .map(|(field, manifest, record)| ManifestProblem::TotalDiffers {
            field,
            manifest,
            record,
        })
        .collect();
    let same_pools = m.pools.len() == r.pools.len()
        && m.pools.iter().zip(&r.pools).all(|(a, b)| {
            (a.pool.as_str(), a.amount.to_string(), a.paid.to_string())
                == (b.pool.as_str(), b.amount.clone(), b.paid.clone())
                && (&a.total_shares, &a.reward_per_share) == (&b.total_shares, &b.reward_per_share)
        });
    if !same_pools {
        problems.push(ManifestProblem::PoolsDiffer);
    }
    problems
}

/// `Σ rewards == Σ paid`, paid nodes == node-count, `Σ paid + unallocated == supply`
/// (the invariants `close_epoch` guarantees), without overflow on hostile input.
fn sum_problems(m: &Manifest) -> Vec<ManifestProblem> {
    let rewards = sum(m.nodes.iter().map(|n| n.reward));
    let paid = sum(m.pools.iter().map(|p| p.paid));
    let paid_nodes = m.nodes.iter().filter(|n| n.reward > 0).count() as u64;
    let mut problems = Vec::new();
    if rewards != paid || paid_nodes != m.node_count {
        problems.push(ManifestProblem::PayoutsDoNotAddUp {
            rewards: rewards.unwrap_or(u128::MAX),
            paid_nodes,
            paid: paid.unwrap_or(u128::MAX),
            node_count: m.node_count,
        });
    }
    let allocated = paid.and_then(|p| p.checked_add(m.unallocated));
    let supply = m.emission.checked_add(m.remint);
    if allocated != supply {
        problems.push(ManifestProblem::SupplyDoesNotAddUp {
            allocated: allocated.unwrap_or(u128::MAX),
            supply: supply.unwrap_or(u128::MAX),
        });
    }
    problems
}

/// Σ `amounts`, `None` on overflow.
fn sum(mut amounts: impl Iterator<Item = u128>) -> Option<u128> {
    amounts.try_fold(0u128, u128::checked_add)
}
