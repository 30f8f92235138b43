//! Maps the RewardPolicy CRD onto the pure reward math's policy and validates it there, so
//! there is one definition of every rule and every error names the CRD field. Its `poc`
//! section maps onto the PoC rule table in [`poc`].

pub mod poc;

use depin_crds::RewardPolicySpec;
use depin_proof::reward::{
    BurnAndMintSpec, GpuClassSpec, HotspotSplitSpec, KindWeightsSpec, PolicyError, PolicySpec,
    RewardPolicy,
};

/// GPU class weights used when a policy lists none: the verifier's throughput classes, with
/// weights growing roughly with int8 throughput (our own scale, not a network's).
pub const DEFAULT_GPU_CLASSES: [(&str, &str); 5] = [
    ("cpu", "0.1"),
    ("entry", "1"),
    ("mainstream", "2"),
    ("high-end", "4"),
    ("flagship", "8"),
];

/// The pure-math view of a CRD policy.
pub fn to_spec(spec: &RewardPolicySpec) -> PolicySpec {
    let gpu_classes = if spec.gpu_classes.is_empty() {
        DEFAULT_GPU_CLASSES
            .iter()
            .map(|(n, w)| GpuClassSpec {
                name: (*n).into(),
                weight: (*w).into(),
            })
            .collect()
    } else {
        spec.gpu_classes
            .iter()
            .map(|c| GpuClassSpec {
                name: c.name.clone(),
                weight: c.weight.clone(),
            })
            .collect()
    };
    PolicySpec {
        epoch_seconds: spec.epoch_seconds,
        token_decimals: spec.token.decimals,
        initial_per_epoch: spec.emission.initial_per_epoch.clone(),
        halving_every_epochs: spec.emission.halving_every_epochs,
        max_supply: spec.emission.max_supply.clone(),
        pools: KindWeightsSpec {
            hotspot: spec.pools.hotspot.clone(),
            storage: spec.pools.storage.clone(),
            gpu: spec.pools.gpu.clone(),
            meter: spec.pools.meter.clone(),
        },
        hotspot_split: spec
            .sub_pools
            .as_ref()
            .and_then(|s| s.hotspot.as_ref())
            .map(|h| HotspotSplitSpec {
                beacon: h.beacon.clone(),
                witness: h.witness.clone(),
            }),
        gpu_classes,
        burn_and_mint: spec.burn_and_mint.as_ref().map(|b| BurnAndMintSpec {
            dc_per_token: b.dc_per_token.clone(),
            smoothing_epochs: b.smoothing_epochs,
            max_remint_per_epoch: b.max_remint_per_epoch.clone(),
        }),
    }
}

/// Why a CRD policy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPolicy {
    /// The reward math refuses it.
    #[error(transparent)]
    Reward(#[from] PolicyError),
    /// Its `poc` section cannot be used by the verifier.
    #[error(transparent)]
    Poc(#[from] poc::PocRuleError),
}

impl InvalidPolicy {
    /// The condition reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Reward(e) => e.reason(),
            Self::Poc(e) => e.reason(),
        }
    }
}

/// Validates a CRD policy; the error names the field as written in the CRD (`spec.…`).
/// A bad `poc` section invalidates the whole policy, like any other field: the verifier
/// meanwhile judges its hotspots by its own rules.
pub fn validate(spec: &RewardPolicySpec) -> Result<RewardPolicy, InvalidPolicy> {
    let policy = RewardPolicy::validate(&to_spec(spec))?;
    if let Some(rules) = &spec.poc {
        poc::check(rules)?;
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_crds::RewardPolicy as Crd;

    fn example() -> RewardPolicySpec {
        let text = include_str!("../../../examples/minimal-fleet.yaml");
        let doc = text.split("\n---\n").next().expect("first document");
        serde_yaml::from_str::<Crd>(doc)
            .expect("policy parses")
            .spec
    }

    #[test]
    fn documented_policy_is_valid() {
        let policy = validate(&example()).expect("valid");
        assert_eq!(policy.emission().scheduled(0), 100_000_000_000);
        assert_eq!(policy.emission().scheduled(730), 50_000_000_000);
    }

    #[test]
    fn cross_field_errors_name_the_field() {
        let mut spec = example();
        spec.pools.meter = "0.2".into();
        let err = validate(&spec).expect_err("weights sum to 1.1");
        assert!(err.to_string().starts_with("pools"), "{err}");
        let mut spec = example();
        spec.sub_pools = Some(depin_crds::SubPools {
            hotspot: Some(depin_crds::HotspotSplit {
                beacon: "0.3".into(),
                witness: "0.3".into(),
            }),
        });
        let err = validate(&spec).expect_err("split sums to 0.6");
        assert!(err.to_string().contains("subPools.hotspot"), "{err}");
        let mut spec = example();
        spec.poc = Some(depin_crds::PocRules {
            beacon_interval_seconds: Some(7),
            ..Default::default()
        });
        let err = validate(&spec).expect_err("7 s does not divide a day");
        assert!(
            err.to_string().starts_with("poc.beaconIntervalSeconds"),
            "{err}"
        );
        assert_eq!(err.reason(), "IntervalSplitsDay");
    }
}
