//! HotspotGateway: a LoRaWAN hotspot that beacons and witnesses for Proof-of-Coverage.

use crate::common::{
    AgentSpec, IdentitySpec, Location, NodeStatus, Payout, default_policy, node_spec,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A LoRaWAN hotspot: the operator runs an agent that serves the Semtech packet-forwarder
/// protocol and does Proof-of-Coverage beacons and witnesses.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "depin.dev",
    version = "v1alpha1",
    kind = "HotspotGateway",
    namespaced,
    status = "NodeStatus",
    shortname = "hsg",
    category = "depin",
    doc = "A LoRaWAN hotspot doing Proof-of-Coverage through a Semtech packet forwarder.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "Region", type_ = "string", json_path = ".spec.region"),
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
pub struct HotspotGatewaySpec {
    /// LoRaWAN regional plan the radio operates in.
    pub region: Region,
    /// Asserted antenna location; the verifier checks witness distances against it.
    pub location: Location,
    /// Antenna gain in dBi (-10 to 30); used in the received-power bound.
    #[serde(default)]
    #[schemars(range(min = -10.0, max = 30.0))]
    pub antenna_gain_dbi: f64,
    /// Antenna elevation above ground in metres.
    #[serde(default)]
    #[schemars(range(min = -500.0, max = 10000.0))]
    pub elevation_meters: f64,
    /// Semtech UDP packet-forwarder endpoint the agent serves.
    #[serde(default)]
    pub packet_forwarder: PacketForwarder,
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
}
node_spec!(HotspotGatewaySpec);

/// The Semtech UDP (GWMP) endpoint and the one packet forwarder it serves. GWMP has no
/// authentication, so the agent drops every datagram that does not come from an address
/// in `sourceCidrs` with gateway EUI `gatewayEui`, and the operator's NetworkPolicy for
/// the agent admits the port only from those sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PacketForwarder {
    /// UDP port for PUSH_DATA/PULL_DATA (default 1680, the Semtech convention).
    #[serde(default = "default_forwarder_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Gateway EUI of the forwarder, 16 hex digits; unset, no forwarder is served and the
    /// hotspot neither beacons nor witnesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9A-Fa-f]{16}$"))]
    pub gateway_eui: Option<String>,
    /// Networks (CIDR) the forwarder sends from (default loopback: a forwarder in the pod).
    #[serde(default = "default_source_cidrs")]
    #[schemars(length(max = 16))]
    pub source_cidrs: Vec<String>,
    /// Labels of the forwarder's pods in this namespace: the NetworkPolicy admits these
    /// pods as well as `sourceCidrs` (pod IPs change, so the agent still checks the CIDRs).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_pod_labels: BTreeMap<String, String>,
}

/// The Semtech convention; a CR that names only the EUI still gets a working forwarder.
fn default_forwarder_port() -> u16 {
    1680
}

/// Loopback, IPv4 and IPv6: gateway-rs's default of a forwarder on the same host.
fn default_source_cidrs() -> Vec<String> {
    vec!["127.0.0.0/8".into(), "::1/128".into()]
}

impl Default for PacketForwarder {
    fn default() -> Self {
        Self {
            port: default_forwarder_port(),
            gateway_eui: None,
            source_cidrs: default_source_cidrs(),
            source_pod_labels: BTreeMap::new(),
        }
    }
}

/// LoRaWAN regional parameter plans (names as Helium uses them).
#[allow(non_camel_case_types)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Region {
    /// Europe 863–870 MHz.
    EU868,
    /// United States 902–928 MHz.
    US915,
    /// Australia 915–928 MHz.
    AU915,
    /// Asia 923 MHz, group 1.
    AS923_1,
    /// Asia 923 MHz, group 2.
    AS923_2,
    /// Asia 923 MHz, group 3.
    AS923_3,
    /// Asia 923 MHz, group 4.
    AS923_4,
    /// China 470–510 MHz.
    CN470,
    /// South Korea 920–923 MHz.
    KR920,
    /// India 865–867 MHz.
    IN865,
    /// Russia 864–870 MHz.
    RU864,
    /// Europe 433 MHz.
    EU433,
}

impl Region {
    /// The name as written in the CR.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EU868 => "EU868",
            Self::US915 => "US915",
            Self::AU915 => "AU915",
            Self::AS923_1 => "AS923_1",
            Self::AS923_2 => "AS923_2",
            Self::AS923_3 => "AS923_3",
            Self::AS923_4 => "AS923_4",
            Self::CN470 => "CN470",
            Self::KR920 => "KR920",
            Self::IN865 => "IN865",
            Self::RU864 => "RU864",
            Self::EU433 => "EU433",
        }
    }
}
