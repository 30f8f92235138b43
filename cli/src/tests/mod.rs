//! Tests over a real closed epoch: `close_epoch` from depin-proof makes the manifest,
//! the RewardEpoch record and the claims exactly as the operator does.

mod claims;
mod fake_api;
mod manifests;
mod rendering;

use depin_crds::{PoolTotal, RewardEpochSpec};
use depin_proof::merkle::Hash;
use depin_proof::reward::{
    CumulativeTotals, Decimal, EpochResult, GpuClassSpec, KindWeightsSpec, NodeTally, PolicySpec,
    RewardPolicy, Work, close_epoch,
};

fn dec(text: &str) -> Decimal {
    Decimal::parse(text).expect("test decimal")
}

/// A policy without sub-pools or burn-and-mint, two GPU classes.
fn policy() -> RewardPolicy {
    RewardPolicy::validate(&PolicySpec {
        epoch_seconds: 3600,
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
        hotspot_split: None,
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
        burn_and_mint: None,
    })
    .expect("test policy is valid")
}

/// Epoch 3: one node of each kind (two storage nodes) plus an idle node that earned before.
fn closed() -> EpochResult {
    let tallies = vec![
        NodeTally::new(
            "fleet/hs-1",
            Work::Hotspot {
                beacon_units: dec("1"),
                witness_units: dec("2"),
            },
        ),
        NodeTally::new("fleet/sn-1", Work::proven_storage(200 << 30, dec("0.5"))),
        NodeTally::new("fleet/sn-2", Work::proven_storage(150 << 30, dec("1"))),
        NodeTally::new(
            "fleet/gpu-1",
            Work::Gpu {
                class: "a100".into(),
                availability: dec("0.75"),
            },
        ),
        NodeTally::new("fleet/m-1", Work::Meter { verified_wh: 4200 }),
    ];
    let previous: CumulativeTotals = [
        ("fleet/sn-1".to_owned(), 1_000),
        ("fleet/idle".to_owned(), 77),
    ]
    .into();
    close_epoch(&policy(), 3, &tallies, &previous, &[]).expect("epoch closes")
}

/// The RewardEpoch the reward controller writes for `result` (operator record.rs).
fn record_of(result: &EpochResult) -> RewardEpochSpec {
    RewardEpochSpec {
        policy: "default".into(),
        epoch: result.epoch,
        window_start: 1_800_000_000,
        window_end: 1_800_003_600,
        emission: result.emission.to_string(),
        data_credits_burned: "0".into(),
        burn: result.burn.to_string(),
        remint: result.remint.to_string(),
        pools: result
            .pools
            .iter()
            .map(|p| PoolTotal {
                pool: p.pool.as_str().to_string(),
                amount: p.amount.to_string(),
                paid: p.paid.to_string(),
                total_shares: p.total_shares.to_string(),
                reward_per_share: p.reward_per_share.clone(),
            })
            .collect(),
        unallocated: result.unallocated.to_string(),
        node_count: result.node_count,
        merkle_root: hex::encode(result.merkle_root),
    }
}
