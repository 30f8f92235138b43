//! `kubectl depin claim-proof` and `verify-claim`: a node's claim fetched from the
//! operator, saved as JSON, and verified offline against a Merkle root.

use std::fmt::Write;

use depin_proof::merkle::Hash;
use depin_proof::reward::{Claim, verify_claim};
use kube::Client;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::manifest::parse_hash;
use crate::operator::{OperatorAccess, OperatorError, check_name};

/// A claim as the operator's claim endpoint serves it and `claim-proof -o json` saves it:
/// amounts as decimal strings, hashes and bytes as hex. The readable fields repeat what
/// `claim` encodes; [`verify_claim_file`] checks that they agree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimFile {
    /// RewardPolicy the claim is under.
    pub policy: String,
    /// Epoch whose root the proof leads to.
    pub epoch: u64,
    /// Node id (`namespace/name`).
    pub node: String,
    /// Lifetime base units claimed, decimal.
    pub cumulative: String,
    /// The epoch's Merkle root, hex.
    pub merkle_root: String,
    /// Leaves in the tree.
    pub leaf_count: u64,
    /// Position of the node's leaf.
    pub index: u64,
    /// Sibling hashes from the leaf up, hex.
    pub path: Vec<String>,
    /// `Claim::to_bytes`, hex: what a payer decodes and verifies.
    pub claim: String,
}

/// `GET /rewards/{policy}/claims/{namespace}/{name}`: the node's claim under the latest
/// closed epoch of `policy`, unverified (see [`verify_claim_file`]).
pub async fn fetch_claim(
    client: &Client,
    access: &OperatorAccess,
    policy: &str,
    namespace: &str,
    name: &str,
) -> Result<ClaimFile, OperatorError> {
    check_name("policy", policy)?;
    check_name("namespace", namespace)?;
    check_name("node", name)?;
    let path = format!("/rewards/{policy}/claims/{namespace}/{name}");
    let what = format!("claim of {namespace}/{name} under policy {policy}");
    let body = access.get_text(client, &path, &what).await?;
    serde_json::from_str(&body).map_err(|source| OperatorError::BadBody { what, source })
}

/// Why a claim file does not prove its amount.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ClaimReject {
    /// A hex field does not decode (or a hash is not 32 bytes).
    #[error("{field} is not valid hex of the right length")]
    BadHex {
        /// JSON field, e.g. `path[2]`.
        field: String,
    },
    /// The claim bytes do not decode as `Claim::to_bytes`.
    #[error("claim bytes are malformed (truncated or not a claim)")]
    MalformedClaim,
    /// A readable field says something other than the claim bytes.
    #[error("{field} in the file is {file} but the claim bytes say {claim}")]
    FieldMismatch {
        /// JSON field.
        field: &'static str,
        /// The file's value.
        file: String,
        /// The decoded claim's value.
        claim: String,
    },
    /// The root given to check against is not the one the file names.
    #[error("the file's merkleRoot {file} is not the expected root {expected}")]
    OtherRoot {
        /// The file's merkleRoot.
        file: String,
        /// The root checked against.
        expected: String,
    },
    /// The Merkle path does not lead from (epoch, node, cumulative) to the root.
    #[error("Merkle path does not lead from (epoch, node, cumulative) to root {root}")]
    BadMerklePath {
        /// The root checked against.
        root: String,
    },
}

impl ClaimReject {
    /// A stable CamelCase label for the rejection.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadHex { .. } => "BadHex",
            Self::MalformedClaim => "MalformedClaim",
            Self::FieldMismatch { .. } => "FieldMismatch",
            Self::OtherRoot { .. } => "OtherRoot",
            Self::BadMerklePath { .. } => "BadMerklePath",
        }
    }
}

/// A claim that verified, and against which root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedClaim {
    /// The decoded claim.
    pub claim: Claim,
    /// The root its path leads to.
    pub root: Hash,
    /// Whether that root came from the caller rather than from the file itself (a file
    /// can always be made consistent with a root of its own).
    pub independent_root: bool,
}

/// Decodes `file.claim`, checks every readable field against it, and verifies the Merkle
/// path to `root` (default: the file's own `merkleRoot`, which proves consistency only).
pub fn verify_claim_file(
    file: &ClaimFile,
    root: Option<Hash>,
) -> Result<VerifiedClaim, ClaimReject> {
    let bad_hex = |field: String| ClaimReject::BadHex { field };
    let bytes = hex::decode(&file.claim).map_err(|_| bad_hex("claim".into()))?;
    let claim = Claim::from_bytes(&bytes).map_err(|_| ClaimReject::MalformedClaim)?;
    let file_root = parse_hash(&file.merkle_root).ok_or_else(|| bad_hex("merkleRoot".into()))?;
    let mut path = Vec::with_capacity(file.path.len());
    for (i, sibling) in file.path.iter().enumerate() {
        path.push(parse_hash(sibling).ok_or_else(|| bad_hex(format!("path[{i}]")))?);
    }
    let hexes = |hashes: &[Hash]| hashes.iter().map(hex::encode).collect::<Vec<_>>().join(",");
    let fields = [
        ("epoch", file.epoch.to_string(), claim.epoch.to_string()),
        ("node", file.node.clone(), claim.node.clone()),
        (
            "cumulative",
            file.cumulative.clone(),
            claim.cumulative.to_string(),
        ),
        (
            "leafCount",
            file.leaf_count.to_string(),
            claim.proof.leaf_count.to_string(),
        ),
        (
            "index",
            file.index.to_string(),
            claim.proof.index.to_string(),
        ),
        ("path", hexes(&path), hexes(&claim.proof.path.siblings)),
    ];
    for (field, in_file, in_claim) in fields {
        if in_file != in_claim {
            return Err(ClaimReject::FieldMismatch {
                field,
                file: in_file,
                claim: in_claim,
            });
        }
    }
    let expected = root.unwrap_or(file_root);
    if expected != file_root {
        return Err(ClaimReject::OtherRoot {
            file: hex::encode(file_root),
            expected: hex::encode(expected),
        });
    }
    if !verify_claim(&expected, &claim) {
        return Err(ClaimReject::BadMerklePath {
            root: hex::encode(expected),
        });
    }
    Ok(VerifiedClaim {
        claim,
        root: expected,
        independent_root: root.is_some(),
    })
}

/// The claim file as pretty JSON with a trailing newline (what `-o json` prints).
pub fn render_json(file: &ClaimFile) -> String {
    // A struct of strings and integers always serializes; the fallback is unreachable.
    let mut json = serde_json::to_string_pretty(file).unwrap_or_default();
    json.push('\n');
    json
}

/// The claim for people: node, policy, epoch, amount, root and path.
pub fn render_text(file: &ClaimFile) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; `let _` drops the always-Ok results.
    for (label, value) in [
        ("node", file.node.clone()),
        ("policy", file.policy.clone()),
        ("epoch", file.epoch.to_string()),
        ("cumulative", file.cumulative.clone()),
        ("merkle root", file.merkle_root.clone()),
        (
            "leaf",
            format!("index {} of {}", file.index, file.leaf_count),
        ),
        ("path", format!("{} siblings, leaf up", file.path.len())),
    ] {
        let _ = writeln!(out, "{label:<12} {value}");
    }
    for (i, sibling) in file.path.iter().enumerate() {
        let _ = writeln!(out, "  {i:>3}  {sibling}");
    }
    out
}

/// [`fetch_claim`], then [`verify_claim_file`] against the `merkleRoot` of the claim's
/// RewardEpoch in the cluster: the operator's answer is trusted only as far as the
/// cluster's commit point agrees with it.
pub async fn fetch_verified_claim(
    client: &Client,
    access: &OperatorAccess,
    policy: &str,
    namespace: &str,
    name: &str,
) -> anyhow::Result<(ClaimFile, VerifiedClaim)> {
    let file = fetch_claim(client, access, policy, namespace, name).await?;
    // A valid claim of another node (or policy) would verify too: check it is the one asked for.
    let asked = format!("{namespace}/{name}");
    if (file.node.as_str(), file.policy.as_str()) != (asked.as_str(), policy) {
        anyhow::bail!(
            "asked for the claim of {asked} under policy {policy}, the operator answered with {} under {}",
            file.node,
            file.policy
        );
    }
    let record = crate::epochs::reward_epoch(client, policy, Some(file.epoch)).await?;
    let root = parse_hash(&record.merkle_root).ok_or_else(|| {
        anyhow::anyhow!(
            "RewardEpoch {}: merkleRoot {:?} is not 64 hex digits",
            crate::epochs::epoch_name(policy, file.epoch),
            record.merkle_root
        )
    })?;
    let verified = verify_claim_file(&file, Some(root)).map_err(|reject| {
        anyhow::anyhow!(
            "claim of {namespace}/{name} from the operator does not verify against RewardEpoch {}: {reject}",
            crate::epochs::epoch_name(policy, file.epoch)
        )
    })?;
    Ok((file, verified))
}
