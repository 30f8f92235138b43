//! MeterBridge: an energy meter read over Modbus TCP whose readings form a signed chain.

use crate::common::{
    AgentSpec, IdentitySpec, Location, NodeStatus, Payout, default_policy, node_spec,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A bridge to an energy meter: the operator runs an agent that polls the meter and signs a
/// hash chain of readings for the verifier.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "depin.dev",
    version = "v1alpha1",
    kind = "MeterBridge",
    namespaced,
    status = "NodeStatus",
    shortname = "mb",
    category = "depin",
    doc = "A bridge to a solar inverter or smart meter proving energy readings.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Rated kW",
        type_ = "number",
        json_path = ".spec.ratedCapacityKw"
    ),
    printcolumn(name = "Direction", type_ = "string", json_path = ".spec.direction"),
    printcolumn(name = "Key", type_ = "string", json_path = ".status.keyPrefix"),
    printcolumn(
        name = "Proofs",
        type_ = "integer",
        json_path = ".status.proofs.accepted"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MeterBridgeSpec {
    /// How to reach and decode the meter.
    pub meter: MeterEndpoint,
    /// Whether the meter measures production (e.g. PV, bounded by the sun at `location`)
    /// or consumption (paid only where the RewardPolicy sets `meter.payConsumption`).
    pub direction: Direction,
    /// Nameplate capacity in kW (greater than zero); caps plausible energy per slot.
    #[schemars(extend("minimum" = 0, "exclusiveMinimum" = true))]
    pub rated_capacity_kw: f64,
    /// Seconds between readings (the slot length), 10 to 3600.
    #[serde(default = "default_interval")]
    #[schemars(range(min = 10, max = 3600))]
    pub interval_seconds: u32,
    /// Installation location: production is checked against the sun there (none at
    /// night, at most clear sky); a production meter without one earns nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Where rewards go.
    pub payout: Payout,
    /// Name of the cluster-scoped RewardPolicy that pays this node.
    #[serde(default = "default_policy")]
    pub reward_policy: String,
    /// Agent pod overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentSpec>,
    /// Identity key source and retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentitySpec>,
    /// The last meter swap: lets the next reading change serial and restart the register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<MeterReplacement>,
}
node_spec!(MeterBridgeSpec);

/// A meter swap, e.g. `kubectl patch mb roof --type merge -p
/// '{"spec":{"replacement":{"replacedAt":"2025-06-01T10:00:00Z","newSerial":"SN-2"}}}'`.
/// The first reading in a slot starting at or after `replacedAt` may then carry a new
/// serial and a restarted register (it proves no energy itself); later readings are
/// checked as usual, so the record can stay in place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterReplacement {
    /// When the new meter was installed, RFC 3339 (e.g. `2025-06-01T10:00:00Z`).
    #[schemars(extend("format" = "date-time"))]
    pub replaced_at: String,
    /// Serial of the new meter; when set, only a reading from this serial is excused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub new_serial: Option<String>,
}

fn default_interval() -> u32 {
    300
}

/// The meter's protocol endpoint and register map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterEndpoint {
    /// Modbus TCP address of the meter or inverter.
    pub modbus: ModbusEndpoint,
    /// Register map to decode (SunSpec models 1 and 1xx/2xx).
    #[serde(default)]
    pub profile: MeterProfile,
}

/// A Modbus TCP endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModbusEndpoint {
    /// Host name or IP address.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// TCP port (default 502).
    #[serde(default = "default_modbus_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Modbus unit (slave) id, 0 to 247 (default 1).
    #[serde(default = "default_unit")]
    #[schemars(range(min = 0, max = 247))]
    pub unit_id: u8,
}

fn default_modbus_port() -> u16 {
    502
}

fn default_unit() -> u8 {
    1
}

/// Register maps the agent can decode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MeterProfile {
    /// SunSpec: "SunS" marker at 40000, common model 1, inverter/meter models.
    #[default]
    Sunspec,
}

/// What the meter measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Energy produced (e.g. a PV inverter).
    Production,
    /// Energy consumed.
    Consumption,
}
