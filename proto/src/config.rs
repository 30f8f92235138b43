//! The agent configuration file (`agent.yaml` in the agent's ConfigMap).
//!
//! The operator is the only writer and the agent the only reader, so both sides share
//! these types; unknown keys are refused so a typo never silently falls back to a default.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Key under which the configuration sits in the agent ConfigMap.
pub const CONFIG_KEY: &str = "agent.yaml";
/// Where the agent ConfigMap is mounted in the pod.
pub const CONFIG_DIR: &str = "/etc/depin";
/// Where the identity Secret is mounted in the pod.
pub const IDENTITY_DIR: &str = "/var/run/depin/identity";
/// Key of the hex ed25519 seed in the identity Secret.
pub const IDENTITY_KEY: &str = "ed25519.key";
/// Key of the hex public key in the identity Secret.
pub const IDENTITY_PUB: &str = "ed25519.pub";
/// Port of the agent's /metrics, /healthz and /readyz.
pub const AGENT_HTTP_PORT: u16 = 8080;

/// Everything an agent needs to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    /// Which proof work this agent does.
    pub role: Role,
    /// The node CR this agent serves.
    pub node: NodeRef,
    /// The operator's verifier endpoint.
    pub verifier: VerifierConfig,
    /// Path of the identity key file.
    pub identity_key_file: String,
    /// Port for /metrics, /healthz and /readyz.
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    /// Settings for the hotspot role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotspot: Option<HotspotConfig>,
    /// Settings for the storage role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageConfig>,
    /// Settings for the gpu role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuConfig>,
    /// Settings for the meter role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<MeterConfig>,
}

fn default_http_port() -> u16 {
    AGENT_HTTP_PORT
}

/// The proof work an agent does; one per node kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// HotspotGateway: beacons and witnesses over GWMP.
    Hotspot,
    /// StorageNode: sector commitments and storage challenges.
    Storage,
    /// GpuWorker: matrix-multiply challenges.
    Gpu,
    /// MeterBridge: signed meter readings.
    Meter,
}

impl Role {
    /// Lower-case name, as in the config file and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hotspot => "hotspot",
            Self::Storage => "storage",
            Self::Gpu => "gpu",
            Self::Meter => "meter",
        }
    }
}

/// Identifies the node CR.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRef {
    /// CR kind (HotspotGateway, StorageNode, GpuWorker, MeterBridge).
    pub kind: String,
    /// CR name.
    pub name: String,
    /// CR namespace.
    pub namespace: String,
    /// Payout wallet (informational; the verifier uses the CR).
    pub wallet: String,
}

/// Where the verifier is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifierConfig {
    /// gRPC endpoint URL, e.g. `http://depin-operator.depin-system.svc:50051`.
    pub endpoint: String,
    /// The verifier's ed25519 public key (hex). When set the agent refuses any verifier
    /// whose ServerHello shows another key (an impostor on the network) and keeps its
    /// unacknowledged results for the real one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// Hotspot role settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HotspotConfig {
    /// LoRaWAN region name (EU868, US915, ...).
    pub region: String,
    /// Asserted latitude in degrees.
    pub latitude: f64,
    /// Asserted longitude in degrees.
    pub longitude: f64,
    /// Antenna gain in dBi.
    pub antenna_gain_dbi: f64,
    /// Antenna elevation in metres.
    pub elevation_meters: f64,
    /// UDP port of the packet-forwarder endpoint.
    pub packet_forwarder_port: u16,
    /// Gateway EUI (16 hex digits) of the one forwarder served; unset: none is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_eui: Option<String>,
    /// Networks (CIDR) the forwarder's datagrams must come from.
    #[serde(default)]
    pub source_cidrs: Vec<String>,
}

/// Storage role settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageConfig {
    /// Bytes of the volume to prove.
    pub capacity_bytes: u64,
    /// Bytes per sector.
    pub sector_size_bytes: u64,
    /// Mount path of the data volume.
    pub data_dir: String,
}

/// GPU role settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GpuConfig {
    /// GPUs requested.
    pub gpus: u32,
    /// Declared model/class.
    pub model: String,
    /// Declared int8 TOPS.
    pub declared_tops: f64,
}

/// Meter role settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeterConfig {
    /// Modbus TCP host.
    pub host: String,
    /// Modbus TCP port.
    pub port: u16,
    /// Modbus unit id.
    pub unit_id: u8,
    /// Register map name (sunspec).
    pub profile: String,
    /// production or consumption.
    pub direction: String,
    /// Nameplate capacity in kW.
    pub rated_capacity_kw: f64,
    /// Seconds per reading slot.
    pub interval_seconds: u32,
    /// Directory for state that must survive restarts (sequence number, chain head).
    pub state_dir: String,
}

/// Why a configuration file was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The YAML did not parse or a key was wrong; serde names the key and line.
    #[error("agent config: {0}")]
    Parse(#[from] serde_yaml::Error),
    /// A key has a value outside its allowed range.
    #[error("agent config: {key}: {problem}")]
    Invalid {
        /// Dotted path of the offending key.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl AgentConfig {
    /// Parses and checks a configuration file's text.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = serde_yaml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    /// The YAML the operator writes.
    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        serde_yaml::to_string(self)
    }

    /// Cross-key checks serde cannot express.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        if !(self.verifier.endpoint.starts_with("http://")
            || self.verifier.endpoint.starts_with("https://"))
        {
            return invalid("verifier.endpoint", "must be an http:// or https:// URL");
        }
        if self.node.name.is_empty() {
            return invalid("node.name", "must not be empty");
        }
        let section_present = match self.role {
            Role::Hotspot => self.hotspot.is_some(),
            Role::Storage => self.storage.is_some(),
            Role::Gpu => self.gpu.is_some(),
            Role::Meter => self.meter.is_some(),
        };
        if !section_present {
            return Err(ConfigError::Invalid {
                key: match self.role {
                    Role::Hotspot => "hotspot",
                    Role::Storage => "storage",
                    Role::Gpu => "gpu",
                    Role::Meter => "meter",
                },
                problem: format!("section required for role {}", self.role.as_str()),
            });
        }
        if let Some(storage) = &self.storage {
            if storage.sector_size_bytes == 0 {
                return invalid("storage.sectorSizeBytes", "must be greater than 0");
            }
            if storage.capacity_bytes < storage.sector_size_bytes {
                return invalid("storage.capacityBytes", "must hold at least one sector");
            }
        }
        if let Some(gpu) = &self.gpu
            && (gpu.declared_tops <= 0.0 || !gpu.declared_tops.is_finite())
        {
            return invalid("gpu.declaredTops", "must be a positive number");
        }
        if let Some(meter) = &self.meter
            && meter.interval_seconds == 0
        {
            return invalid("meter.intervalSeconds", "must be greater than 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORAGE: &str = "role: storage
node: {kind: StorageNode, name: sn-1, namespace: fleet, wallet: w}
verifier: {endpoint: 'http://depin-operator.depin-system.svc:50051'}
identityKeyFile: /var/run/depin/identity/ed25519.key
storage: {capacityBytes: 1073741824, sectorSizeBytes: 1073741824, dataDir: /data}
";

    #[test]
    fn valid_config_parses_and_round_trips() {
        let config = AgentConfig::from_yaml(STORAGE).expect("valid");
        assert_eq!(config.role, Role::Storage);
        assert_eq!(config.http_port, AGENT_HTTP_PORT);
        let again = AgentConfig::from_yaml(&config.to_yaml().expect("yaml")).expect("valid");
        assert_eq!(config, again);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                STORAGE.replace("role: storage", "role: miner"),
                "unknown variant `miner`",
            ),
            (
                STORAGE.replace("dataDir", "dataDirectory"),
                "unknown field `dataDirectory`",
            ),
            (STORAGE.replace("'http://", "'tcp://"), "verifier.endpoint"),
            (
                STORAGE.replace(
                    "storage: {",
                    "gpu: {gpus: 1, model: x, declaredTops: 1}\nx: {",
                ),
                "unknown field `x`",
            ),
            (
                STORAGE.replace("sectorSizeBytes: 1073741824", "sectorSizeBytes: 0"),
                "storage.sectorSizeBytes",
            ),
            (
                STORAGE.replace("capacityBytes: 1073741824", "capacityBytes: 10"),
                "storage.capacityBytes",
            ),
            (
                STORAGE.replace("role: storage", "role: meter"),
                "meter: section required",
            ),
        ];
        for (text, expected) in cases {
            let err = AgentConfig::from_yaml(&text)
                .expect_err(expected)
                .to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }
}
