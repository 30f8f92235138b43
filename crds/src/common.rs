//! Spec and status pieces every node kind shares.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a node's rewards go.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payout {
    /// Wallet address or account id that receives this node's rewards.
    #[schemars(length(min = 1, max = 128))]
    pub wallet: String,
    /// Owner id used to detect same-owner witness edges; defaults to the wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Overrides for the agent pod the operator runs for this node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// Agent container image; defaults to the operator's configured agent image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy (Always, IfNotPresent, Never); defaults to IfNotPresent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// CPU and memory requests and limits for the agent container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Replica count; 0 parks the node without deleting it (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub replicas: Option<i32>,
}

/// Kubernetes image pull policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when absent.
    IfNotPresent,
    /// Never pull; the image must already be on the node.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// Where the node's ed25519 identity key lives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySpec {
    /// Existing Secret (same namespace) to import; it must hold `ed25519.key` (hex seed).
    /// When unset the operator generates `<name>-identity` once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Keep the identity Secret when the node is deleted (default true), so re-creating the
    /// node restores the same identity and reward history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_on_delete: Option<bool>,
}

impl IdentitySpec {
    /// Whether the Secret outlives the node (default true: keys are never lost by accident).
    pub fn retained(spec: Option<&Self>) -> bool {
        spec.and_then(|i| i.retain_on_delete).unwrap_or(true)
    }
}

/// A point on Earth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// Latitude in degrees, -90 to 90.
    #[schemars(range(min = -90.0, max = 90.0))]
    pub latitude: f64,
    /// Longitude in degrees, -180 to 180.
    #[schemars(range(min = -180.0, max = 180.0))]
    pub longitude: f64,
}

/// What every node kind's status carries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// The spec generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing, Degraded, InvalidSpec and Proving conditions.
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
    /// The node's ed25519 public key, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// First 12 hex characters of the public key, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Name of the Secret holding the identity key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_secret: Option<String>,
    /// Agent replicas that are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Proof results recorded by the verifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proofs: Option<ProofTally>,
    /// The tally of the epoch before `proofs.epoch`, kept when the verifier rolls over so
    /// the reward controller can still close that epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_proofs: Option<ProofTally>,
    /// Tallies of older epochs the reward controller had not closed yet when the verifier
    /// rolled past them (its close failing for longer than an epoch), oldest first, at
    /// most 32; each leaves once its epoch is closed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unclosed_proofs: Vec<ProofTally>,
    /// Rewards written by the reward controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewards: Option<RewardSummary>,
    /// StorageNode only: the verifier's sector ledger (accepted roots, faults, reputation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<crate::storage_node::StorageLedgerStatus>,
    /// StorageNode only: what the volume really holds and how much of it is proven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::storage_node::CapacityStatus>,
    /// MeterBridge only: the verifier's durable record of the meter (serial claim, chain
    /// tip), read back after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<MeterRecord>,
    /// HotspotGateway only: the verifier's Proof-of-Coverage history of the hotspot (what
    /// reciprocity and activity read), read back after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poc: Option<PocRecord>,
}

/// What the verifier keeps of a hotspot's PoC history in its HotspotGateway's status
/// (receive times, unix ms).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PocRecord {
    /// When the verifier's history of this hotspot began: reciprocity gives a hotspot
    /// without a valid beacon or witness the benefit of the doubt from here, not from a
    /// restart.
    pub since_ms: u64,
    /// Last beacon that passed its own rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_beacon_ms: Option<u64>,
    /// Last beacon with at least one valid witness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_valid_beacon_ms: Option<u64>,
    /// Last valid witness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_valid_witness_ms: Option<u64>,
}

/// What the verifier keeps of a meter in its MeterBridge's status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterRecord {
    /// This bridge's claim on its meter's serial; the earliest recorded claim wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_claim: Option<SerialClaim>,
    /// The last accepted reading, so a restarted verifier continues the chain instead of
    /// adopting a new baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip: Option<MeterTip>,
}

/// A bridge's claim on a meter serial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SerialClaim {
    /// The meter serial (SunSpec common model `SN`).
    #[schemars(length(min = 1, max = 64))]
    pub serial: String,
    /// When the verifier first accepted a reading of it from this bridge, unix ms.
    pub claimed_at_ms: u64,
}

/// The last accepted link of a meter's reading chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterTip {
    /// Its sequence number.
    pub seq: u64,
    /// Its time slot.
    pub slot: u64,
    /// Its cumulative energy register, Wh.
    pub cumulative_wh: u64,
    /// Its chain hash, 64 hex characters.
    #[schemars(length(min = 64, max = 64))]
    pub hash: String,
    /// The meter serial it read.
    pub meter_serial: String,
    /// Solar day of `dayCreditedWh`, when the meter obeys the sun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<u64>,
    /// Wh credited in that solar day so far.
    #[serde(default)]
    pub day_credited_wh: u64,
    /// The most that solar day may credit, Wh.
    #[serde(default)]
    pub day_bound_wh: u64,
}

/// Proof results for one node in the current epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProofTally {
    /// Epoch these counters belong to.
    #[serde(default)]
    pub epoch: u64,
    /// Proofs accepted in this epoch.
    #[serde(default)]
    pub accepted: u64,
    /// Proofs rejected in this epoch.
    #[serde(default)]
    pub rejected: u64,
    /// Rejections by reason (the verifier's reject reason names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Work units earned this epoch (kind-specific), as a decimal string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_units: Option<String>,
    /// Work units by the part of the work that earned them (hotspots: `beacon`,
    /// `witness`), as decimal strings; they add up to `workUnits`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub work_units_by_part: BTreeMap<String, String>,
    /// Most recent rejection reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reject_reason: Option<String>,
    /// RFC 3339 time of the last accepted proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accepted_time: Option<String>,
    /// StorageNode only: misses, faults and reputation this epoch (proven byte-periods are
    /// `workUnits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<crate::storage_node::StorageTally>,
}

/// Rewards paid to one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardSummary {
    /// Last closed epoch that paid this node.
    #[serde(default)]
    pub last_epoch: u64,
    /// Base units paid in that epoch.
    #[schemars(schema_with = "crate::schema::amount")]
    pub last_epoch_reward: String,
    /// Base units paid over all closed epochs.
    #[schemars(schema_with = "crate::schema::amount")]
    pub cumulative: String,
}

/// Fields every node kind's spec has; lets the operator treat kinds uniformly.
pub trait NodeSpec {
    /// Where rewards go.
    fn payout(&self) -> &Payout;
    /// Name of the cluster-scoped RewardPolicy.
    fn reward_policy(&self) -> &str;
    /// Agent pod overrides.
    fn agent(&self) -> Option<&AgentSpec>;
    /// Identity key source.
    fn identity(&self) -> Option<&IdentitySpec>;
}

/// Implements [`NodeSpec`] for a spec struct with the shared fields.
macro_rules! node_spec {
    ($spec:ty) => {
        impl $crate::common::NodeSpec for $spec {
            fn payout(&self) -> &$crate::common::Payout {
                &self.payout
            }
            fn reward_policy(&self) -> &str {
                &self.reward_policy
            }
            fn agent(&self) -> Option<&$crate::common::AgentSpec> {
                self.agent.as_ref()
            }
            fn identity(&self) -> Option<&$crate::common::IdentitySpec> {
                self.identity.as_ref()
            }
        }
    };
}
pub(crate) use node_spec;

/// Default policy name: nodes that name none use the policy called `default`.
pub fn default_policy() -> String {
    "default".to_string()
}
