//! The medium's configuration file (`rf-medium --config medium.yaml`). Field names follow
//! the HotspotGateway spec (`region`, `location`, `antennaGainDbi`), so a hotspot's radio
//! entry can be written from its CR; `location` here is where the radio *really* is, which
//! a lying hotspot's asserted location need not match.

use std::collections::BTreeSet;
use std::path::Path;

use depin_gwmp::codec::parse_eui;
use depin_gwmp::semtech_udp::MacAddress;
use depin_proof::poc::Region;
use serde::Deserialize;
use thiserror::Error;

use super::physics::Propagation;

/// Why a configuration was refused; the message names the field.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML does not match the schema.
    #[error("parsing medium config: {0}")]
    Yaml(#[from] serde_yaml::Error),
    /// A field has an invalid value.
    #[error("{field}: {problem}")]
    Invalid {
        /// Path of the field, e.g. `hotspots[2].region`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// A point on Earth, as in the HotspotGateway spec.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Location {
    /// Latitude, degrees.
    pub latitude: f64,
    /// Longitude, degrees.
    pub longitude: f64,
}

/// One hotspot's radio as the medium plays it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HotspotRadio {
    /// Unique name (logs, shadowing keys, default EUI).
    pub name: String,
    /// The hotspot agent's GWMP endpoint, `host:port`.
    pub agent: String,
    /// Gateway EUI the medium presents (16 hex digits); default derived from `name`.
    #[serde(default)]
    pub gateway_eui: Option<String>,
    /// Regional plan; the medium delivers only between radios of one plan.
    pub region: String,
    /// Where the antenna really is.
    pub location: Location,
    /// Antenna gain, dBi.
    #[serde(default)]
    pub antenna_gain_dbi: f64,
}

/// The whole medium.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MediumConfig {
    /// Seed of the shadowing draws: the same seed delivers the same witnesses.
    #[serde(default)]
    pub seed: u64,
    /// Log-distance path-loss exponent (default 2.9, suburban).
    #[serde(default = "default_exponent")]
    pub path_loss_exponent: f64,
    /// Log-normal shadowing standard deviation, dB (default 6).
    #[serde(default = "default_sigma")]
    pub shadowing_sigma_db: f64,
    /// The radios.
    pub hotspots: Vec<HotspotRadio>,
}

fn default_exponent() -> f64 {
    Propagation::default().path_loss_exponent
}

fn default_sigma() -> f64 {
    Propagation::default().shadowing_sigma_db
}

/// A radio with its fields parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Radio {
    /// As configured.
    pub config: HotspotRadio,
    /// Parsed region.
    pub region: Region,
    /// Gateway EUI used on the wire.
    pub eui: MacAddress,
}

impl MediumConfig {
    /// Reads and validates a YAML file.
    pub fn load(path: &Path) -> Result<(Self, Vec<Radio>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let config: Self = serde_yaml::from_str(&text)?;
        let radios = config.validate()?;
        Ok((config, radios))
    }

    /// The propagation settings.
    pub fn propagation(&self) -> Propagation {
        Propagation {
            path_loss_exponent: self.path_loss_exponent,
            shadowing_sigma_db: self.shadowing_sigma_db,
        }
    }

    /// Checks every field and parses regions and EUIs.
    pub fn validate(&self) -> Result<Vec<Radio>, ConfigError> {
        let invalid = |field: String, problem: String| ConfigError::Invalid { field, problem };
        if !(2.0..=6.0).contains(&self.path_loss_exponent) {
            return Err(invalid("pathLossExponent".into(), "must be 2 to 6".into()));
        }
        if !(0.0..=20.0).contains(&self.shadowing_sigma_db) {
            return Err(invalid("shadowingSigmaDb".into(), "must be 0 to 20".into()));
        }
        let mut names = BTreeSet::new();
        let mut euis = BTreeSet::new();
        let mut radios = Vec::with_capacity(self.hotspots.len());
        for (i, h) in self.hotspots.iter().enumerate() {
            let field = |name: &str| format!("hotspots[{i}].{name}");
            if h.name.is_empty() || !names.insert(h.name.clone()) {
                return Err(invalid(
                    field("name"),
                    format!("{:?} is empty or repeated", h.name),
                ));
            }
            let region = h
                .region
                .parse::<Region>()
                .map_err(|e| invalid(field("region"), e.to_string()))?;
            if !(-90.0..=90.0).contains(&h.location.latitude)
                || !(-180.0..=180.0).contains(&h.location.longitude)
            {
                return Err(invalid(
                    field("location"),
                    "outside -90..90 / -180..180".into(),
                ));
            }
            let eui = match &h.gateway_eui {
                Some(text) => parse_eui(text).ok_or_else(|| {
                    invalid(
                        field("gatewayEui"),
                        format!("{text:?} is not 16 hex digits"),
                    )
                })?,
                None => derived_eui(&h.name),
            };
            if !euis.insert(eui.into_array()) {
                return Err(invalid(field("gatewayEui"), "repeated".into()));
            }
            radios.push(Radio {
                config: h.clone(),
                region,
                eui,
            });
        }
        Ok(radios)
    }
}

/// A stable EUI for `name`: the first 8 bytes of its BLAKE3.
fn derived_eui(name: &str) -> MacAddress {
    let hash = blake3::hash(name.as_bytes());
    let mut eui = [0u8; 8];
    eui.copy_from_slice(&hash.as_bytes()[..8]);
    MacAddress::from(eui)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_loads_and_bad_fields_are_named() {
        let example = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/medium.example.yaml"));
        let (config, radios) = MediumConfig::load(example).expect("example is valid");
        assert_eq!((config.seed, radios.len()), (42, 3));
        assert_eq!(radios[2].eui, parse_eui("AA555A0000000103").expect("eui"));
        assert_ne!(radios[0].eui, radios[1].eui);

        let bad = |edit: fn(&mut MediumConfig)| {
            let mut c = config.clone();
            edit(&mut c);
            c.validate().expect_err("invalid").to_string()
        };
        assert!(bad(|c| c.hotspots[1].region = "XX1".into()).starts_with("hotspots[1].region"));
        assert!(bad(|c| c.hotspots[1].name = "hotspot-a".into()).starts_with("hotspots[1].name"));
        assert!(
            bad(|c| c.hotspots[0].location.latitude = 95.0).starts_with("hotspots[0].location")
        );
        assert!(
            bad(|c| c.hotspots[0].gateway_eui = Some("xyz".into()))
                .starts_with("hotspots[0].gatewayEui")
        );
        assert!(bad(|c| c.path_loss_exponent = 1.0).starts_with("pathLossExponent"));
        assert!(serde_yaml::from_str::<MediumConfig>("hotspots: []\nbogus: 1").is_err());
    }
}
