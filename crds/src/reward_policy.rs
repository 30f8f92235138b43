//! RewardPolicy: how verified work becomes tokens, per epoch.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Epoch length, emission schedule and pool weights; node CRs name a policy in
/// `spec.rewardPolicy`. Amounts and weights are strings so no float ever touches a reward.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "depin.dev",
    version = "v1alpha1",
    kind = "RewardPolicy",
    status = "RewardPolicyStatus",
    shortname = "rp",
    category = "depin",
    doc = "How verified work is turned into token rewards each epoch.",
    printcolumn(name = "Epoch s", type_ = "integer", json_path = ".spec.epochSeconds"),
    printcolumn(name = "Token", type_ = "string", json_path = ".spec.token.symbol"),
    printcolumn(
        name = "Last epoch",
        type_ = "integer",
        json_path = ".status.lastClosedEpoch"
    ),
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Valid")].status"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RewardPolicySpec {
    /// Epoch length in seconds (production: 86400; short values for tests and demos).
    #[serde(default = "default_epoch_seconds")]
    #[schemars(range(min = 1))]
    pub epoch_seconds: u64,
    /// The token rewards are paid in.
    pub token: Token,
    /// How many base units each epoch mints.
    pub emission: Emission,
    /// Share of each epoch's emission per node kind; must sum to 1.
    pub pools: Pools,
    /// Optional splits inside a kind's pool (hotspot beacons vs witnesses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_pools: Option<SubPools>,
    /// GPU classes: share weight, and the chained-product work each is challenged with
    /// (built-in cpu, entry, mainstream, high-end, flagship; see docs/r2/gpu.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_classes: Vec<GpuClass>,
    /// Global GPU rounds per epoch: every GpuWorker of this policy is challenged at the
    /// same unpredictable instant once per slot; availability is passed / held (default 96).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub gpu_rounds_per_epoch: Option<u32>,
    /// Optional burn-and-mint: burned data credits are re-minted on top of the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burn_and_mint: Option<BurnAndMint>,
    /// Seconds after an epoch ends during which late proofs still count (default 30).
    #[serde(default = "default_grace_seconds")]
    #[schemars(range(min = 0, max = 86400))]
    pub grace_seconds: u64,
    /// Proof-of-Coverage rule overrides for hotspots paid by this policy; unset: Helium's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poc: Option<PocRules>,
    /// How meter energy is paid; unset: production only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<MeterRewards>,
    /// Closed epochs whose manifest shards are kept (default 90; 0 keeps every one).
    /// Older shards are deleted so etcd does not grow without bound; their RewardEpoch
    /// keeps the Merkle root, and the latest manifest's cumulative totals supersede
    /// every older claim.
    #[serde(default = "default_manifest_retention_epochs")]
    #[schemars(range(min = 0, max = 1000000))]
    pub manifest_retention_epochs: u64,
}

/// Which meters' verified energy the meter pool pays.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterRewards {
    /// Pay consumption meters' verified kWh too (default false: only production earns).
    #[serde(default)]
    pub pay_consumption: bool,
}

impl RewardPolicySpec {
    /// Whether this policy pays consumption meters (`spec.meter.payConsumption`).
    pub fn pays_consumption(&self) -> bool {
        self.meter.as_ref().is_some_and(|m| m.pay_consumption)
    }
}

fn default_grace_seconds() -> u64 {
    30
}

fn default_manifest_retention_epochs() -> u64 {
    90
}

/// Splits inside a kind's pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubPools {
    /// Hotspot pool split between beaconers and witnesses (Helium: 0.2 / 0.8 of the PoC pool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotspot: Option<HotspotSplit>,
}

/// Beacon vs witness weights inside the hotspot pool; must sum to 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HotspotSplit {
    /// Weight of beacon reward units.
    #[schemars(schema_with = "crate::schema::weight")]
    pub beacon: String,
    /// Weight of witness reward units.
    #[schemars(schema_with = "crate::schema::weight")]
    pub witness: String,
}

/// One GPU throughput class and its share weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GpuClass {
    /// Class name as the verifier assigns it (lower-case letters, digits, `-`).
    #[schemars(regex(pattern = r"^[a-z0-9-]{1,32}$"))]
    pub name: String,
    /// Shares per fully available epoch in this class, a decimal string.
    #[schemars(regex(pattern = r"^[0-9]{1,20}(\.[0-9]{1,18})?$"))]
    pub weight: String,
    /// Throughput floor in int8 TOPS; a slower answer is TooSlow (built-in classes: their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0, "exclusiveMinimum" = true))]
    pub min_tops: Option<f64>,
    /// Matrix dimension n of each chained product, a power of two (built-in: their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 16384))]
    pub matrix_n: Option<u32>,
    /// Chained products per challenge (built-in: their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub stages: Option<u32>,
    /// (stage, row) samples opened per proof (default 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub sampled_rows: Option<u32>,
}

/// Burn-and-mint parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BurnAndMint {
    /// Data credits one whole token buys (the fixed usage price), integer string.
    #[schemars(schema_with = "crate::schema::amount")]
    pub dc_per_token: String,
    /// Burns are re-minted evenly over this many following epochs.
    #[schemars(range(min = 1, max = 10000))]
    pub smoothing_epochs: u64,
    /// Cap on re-minted base units per epoch, integer string.
    #[schemars(schema_with = "crate::schema::amount")]
    pub max_remint_per_epoch: String,
}

fn default_epoch_seconds() -> u64 {
    86_400
}

/// Token display parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    /// Ticker symbol, 2 to 10 upper-case letters or digits.
    #[schemars(regex(pattern = r"^[A-Z0-9]{2,10}$"))]
    pub symbol: String,
    /// Decimal places of one token; amounts are integers in base units (10^-decimals).
    #[schemars(range(min = 0, max = 18))]
    pub decimals: u8,
}

/// Emission schedule with halving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Emission {
    /// Base units minted in epoch 0 (integer string).
    #[schemars(schema_with = "crate::schema::amount")]
    pub initial_per_epoch: String,
    /// Emission halves every this many epochs (at least 1).
    #[schemars(range(min = 1))]
    pub halving_every_epochs: u64,
    /// Optional cap on total scheduled emission in base units; emission stops at the cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_amount")]
    pub max_supply: Option<String>,
}

/// Pool weights per node kind, decimal strings between 0 and 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pools {
    /// Weight of the HotspotGateway pool.
    #[schemars(schema_with = "crate::schema::weight")]
    pub hotspot: String,
    /// Weight of the StorageNode pool.
    #[schemars(schema_with = "crate::schema::weight")]
    pub storage: String,
    /// Weight of the GpuWorker pool.
    #[schemars(schema_with = "crate::schema::weight")]
    pub gpu: String,
    /// Weight of the MeterBridge pool.
    #[schemars(schema_with = "crate::schema::weight")]
    pub meter: String,
}

/// Proof-of-Coverage rule constants. Each is optional: unset fields keep the verifier's
/// value, which is Helium's (research depin-anchors §1(b)) except the beacon interval,
/// which falls back to the operator's `--poc-beacon-interval`. A beacon round is judged by
/// the rules of the policy its beaconer names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PocRules {
    /// How long after issue a beacon may use the verifier's entropy (Helium: 180).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub entropy_lifespan_seconds: Option<u64>,
    /// One beacon per hotspot per epoch-aligned interval; must divide 86400 (Helium: 21600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub beacon_interval_seconds: Option<u64>,
    /// Longest a witness may arrive after its beacon (Helium: 4000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600000))]
    pub max_beacon_to_witness_lag_milliseconds: Option<u64>,
    /// Longest a witness may trail the first witness when the beacon came later (Helium: 1500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600000))]
    pub max_witness_lag_milliseconds: Option<u64>,
    /// Largest |beacon − witness| frequency difference (Helium: 100000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000000))]
    pub max_frequency_delta_hz: Option<u64>,
    /// Fewest H3 grid cells between beaconer and witness; 0 turns the rule off (Helium: 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub min_distance_cells: Option<u32>,
    /// H3 resolution minDistanceCells is counted at; locations are res 12 (Helium: 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 12))]
    pub distance_h3_resolution: Option<u8>,
    /// Largest great-circle distance between beaconer and witness (Helium: 100000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20037508))]
    pub max_distance_meters: Option<u64>,
    /// Slack on the free-space received-power bound, whole dB (Helium: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub rssi_margin_db: Option<u32>,
    /// HIP-106: a beaconer (witness) must have witnessed (beaconed) this recently; 0: off (172800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 31536000))]
    pub reciprocity_window_seconds: Option<u64>,
    /// Most witnesses selected and rewarded per beacon (Helium: 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_witnesses_per_beacon: Option<u32>,
    /// HIP-15 witness redundancy R: witnesses per beacon before rewards decay (Helium: 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub witness_redundancy: Option<u32>,
    /// How recently a hotspot must have beaconed to count toward hex density (Helium: 216000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 31536000))]
    pub density_activity_seconds: Option<u64>,
    /// Hotspots (ed25519 public keys, 64 hex digits as in `status.publicKey`) whose beacons
    /// and witnesses are refused (`Denied`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = r"^[0-9a-f]{64}$")))]
    pub denied_hotspots: Vec<String>,
    /// Hotspot pairs whose witness links are refused either way (`DeniedEdge`), e.g. units
    /// known to share a site.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_edges: Vec<DeniedEdge>,
}

/// Two hotspots that may not witness each other.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeniedEdge {
    /// One hotspot's public key (64 hex digits).
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub a: String,
    /// The other's.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub b: String,
}

/// What the reward controller reports about a policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardPolicyStatus {
    /// The spec generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Valid (spec passed cross-field checks such as weights summing to 1).
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    /// Highest epoch closed under this policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_closed_epoch: Option<u64>,
}
