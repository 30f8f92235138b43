//! Maps the RewardPolicy CRD onto the pure reward math's policy and validates it there, so
//! there is one definition of every rule and every error names the CRD field. Its `poc`
//! section maps onto the PoC rule table in [`poc`].

pub mod poc;

use depin_crds::RewardPolicySpec;
use depin_proof::gpu::rounds::{DEFAULT_ROUNDS_PER_EPOCH, RoundPlan};
use depin_proof::gpu::{GpuClass, GpuClassError};
use depin_proof::reward::{
    BurnAndMintSpec, GpuClassSpec, HotspotSplitSpec, KindWeightsSpec, PolicyError, PolicySpec,
    RewardPolicy,
};

/// GPU class weights used when a policy lists none: the built-in classes
/// (`depin_proof::gpu::GpuClass::built_in`), with weights growing roughly with their
/// floors (our own scale, not a network's).
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

/// The GPU classes a policy challenges and pays: its `gpuClasses` (built-in parameters
/// for built-in names, overridden field by field), or every built-in class named in
/// [`DEFAULT_GPU_CLASSES`] when it lists none.
pub fn gpu_classes(spec: &RewardPolicySpec) -> Result<Vec<GpuClass>, GpuClassError> {
    if spec.gpu_classes.is_empty() {
        return Ok(DEFAULT_GPU_CLASSES
            .iter()
            .filter_map(|(name, _)| GpuClass::built_in(name))
            .collect());
    }
    spec.gpu_classes
        .iter()
        .map(|c| GpuClass::resolve(&c.name, c.min_tops, c.matrix_n, c.stages, c.sampled_rows))
        .collect()
}

/// Where the global GPU rounds of `spec`'s epochs fall (`gpuRoundsPerEpoch`, slots long
/// enough for the slowest class to close).
pub fn gpu_round_plan(spec: &RewardPolicySpec, classes: &[GpuClass]) -> RoundPlan {
    let guard = classes.iter().map(GpuClass::close_ms).max().unwrap_or(0);
    RoundPlan::new(
        spec.epoch_seconds.saturating_mul(1000),
        spec.gpu_rounds_per_epoch
            .unwrap_or(DEFAULT_ROUNDS_PER_EPOCH),
        guard,
    )
}

/// Why a CRD policy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPolicy {
    /// The reward math refuses it.
    #[error(transparent)]
    Reward(#[from] PolicyError),
    /// A `gpuClasses` entry cannot be challenged.
    #[error(transparent)]
    GpuClass(#[from] GpuClassError),
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
            Self::GpuClass(e) => e.reason(),
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
    gpu_classes(spec)?;
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

    #[test]
    fn gpu_classes_default_to_the_built_ins_and_bad_ones_name_the_class() {
        let spec = example();
        let classes = gpu_classes(&RewardPolicySpec {
            gpu_classes: Vec::new(),
            ..spec.clone()
        })
        .expect("defaults");
        let names: Vec<&str> = classes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["cpu", "entry", "mainstream", "high-end", "flagship"]
        );
        let plan = gpu_round_plan(&spec, &classes);
        assert!(plan.slot_ms() >= 2 * plan.guard_ms);

        let class = |name: &str, n: Option<u32>| depin_crds::GpuClass {
            name: name.into(),
            weight: "1".into(),
            min_tops: Some(1.0),
            matrix_n: n,
            stages: Some(2),
            sampled_rows: None,
        };
        let mut bad = spec.clone();
        bad.gpu_classes = vec![class("mine", Some(48))];
        let err = validate(&bad).expect_err("48 is not a power of two");
        assert_eq!(err.reason(), "GpuClassMatrixN");
        assert!(err.to_string().contains("\"mine\""), "{err}");
        bad.gpu_classes = vec![class("mine", None)];
        assert_eq!(
            validate(&bad).expect_err("no n").reason(),
            "GpuClassUnknown"
        );
    }
}
