//! Reward tests: validation tables, epoch examples, golden manifest, claims, invariants.

mod claims;
mod epochs;
mod golden;
mod invariants;
mod validation;

use super::*;

/// The example policy every test starts from: Helium-like 0.2/0.8 hotspot split, two GPU
/// classes, burn-and-mint on, 6-decimal token.
pub(super) fn spec() -> PolicySpec {
    PolicySpec {
        epoch_seconds: 86_400,
        token_decimals: 6,
        initial_per_epoch: "1000000000".into(),
        halving_every_epochs: 10,
        max_supply: None,
        pools: KindWeightsSpec {
            hotspot: "0.4".into(),
            storage: "0.3".into(),
            gpu: "0.2".into(),
            meter: "0.1".into(),
        },
        hotspot_split: Some(HotspotSplitSpec {
            beacon: "0.2".into(),
            witness: "0.8".into(),
        }),
        gpu_classes: vec![
            GpuClassSpec {
                name: "a100".into(),
                weight: "4".into(),
            },
            GpuClassSpec {
                name: "t4".into(),
                weight: "1".into(),
            },
        ],
        burn_and_mint: Some(BurnAndMintSpec {
            dc_per_token: "100000".into(),
            smoothing_epochs: 7,
            max_remint_per_epoch: "50000000".into(),
        }),
    }
}

pub(super) fn policy() -> RewardPolicy {
    RewardPolicy::validate(&spec()).expect("example policy is valid")
}

pub(super) fn dec(text: &str) -> Decimal {
    Decimal::parse(text).expect("test decimal")
}
