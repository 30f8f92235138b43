//! Reward benchmark: closing one epoch for 100 000 and 1 000 000 nodes, time and peak
//! memory, against the raw primitive the close cannot avoid (hashing one leaf per node and
//! building the Merkle tree over them) measured in the same run.
//!
//! Run: `cargo bench -p depin-proof --bench reward_bench`
//! Env: `DEPIN_BENCH_NODES` (default "100000,1000000") picks the fleet sizes.
//! Peak memory is VmHWM from /proc/self/status, reset before each measured close by
//! writing 5 to /proc/self/clear_refs (Linux ≥ 4.0), so it is that close's own peak.

use std::hint::black_box;
use std::time::Instant;

use depin_proof::merkle::MerkleTree;
use depin_proof::reward::{
    BurnAndMintSpec, CumulativeTotals, Decimal, EpochBurn, GpuClassSpec, HotspotSplitSpec,
    KindWeightsSpec, NodeTally, PolicySpec, RewardPolicy, Work, claim_proof, close_epoch,
    reward_leaf, verify_claim,
};

fn policy() -> RewardPolicy {
    let spec = PolicySpec {
        epoch_seconds: 86_400,
        token_decimals: 8,
        initial_per_epoch: "16438356164383".into(), // 60M tokens/year ÷ 365, 8 decimals
        halving_every_epochs: 730,
        max_supply: Some("22300000000000000".into()),
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
            max_remint_per_epoch: "164383561643".into(), // Helium's 1643.83561643/day
        }),
    };
    RewardPolicy::validate(&spec).expect("bench policy is valid")
}

/// A deterministic pseudo-random u64 per (node, salt), so no RNG crate is needed.
fn mix(i: u64, salt: u64) -> u64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 29)
}

fn millionths(x: u64) -> Decimal {
    Decimal::from_units(u128::from(x % 1_000_001) * 1_000_000_000_000)
}

/// 40 % hotspots, 30 % storage, 20 % GPU, 10 % meters; about 1 % prove nothing.
fn fleet(n: u64) -> Vec<NodeTally> {
    (0..n)
        .map(|i| {
            let r = mix(i, 1);
            let work = match i % 10 {
                0..=3 => Work::Hotspot {
                    beacon_units: millionths(r % 3_000_000),
                    witness_units: millionths(mix(i, 2) % 14_000_000),
                },
                4..=6 => Work::proven_storage(
                    u128::from(r % 4096) << 30,
                    millionths(900_000 + r % 100_001),
                ),
                7 | 8 => Work::Gpu {
                    class: if r.is_multiple_of(3) { "a100" } else { "t4" }.into(),
                    availability: millionths(r),
                },
                _ => Work::Meter {
                    verified_wh: r % 50_000,
                },
            };
            let mut tally = NodeTally::new(format!("fleet-{:02}/node-{i:07}", i % 37), work);
            tally.multiplier = millionths(500_000 + mix(i, 3) % 1_000_000);
            tally
        })
        .collect()
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn run(n: u64) {
    let policy = policy();
    let tallies = fleet(n);
    // Half the fleet earned before; every 50th of those is idle this epoch (no tally).
    let previous: CumulativeTotals = (0..n)
        .step_by(2)
        .map(|i| {
            (
                format!("fleet-{:02}/node-{i:07}", i % 37),
                u128::from(mix(i, 4) % 1_000_000_000),
            )
        })
        .chain((0..n / 100).map(|i| (format!("retired/node-{i:07}"), 1)))
        .collect();
    let burns: Vec<EpochBurn> = (93..100)
        .map(|epoch| EpochBurn {
            epoch,
            dc_burned: 5_000_000_000,
        })
        .collect();
    let rss_inputs = status_kib("VmRSS:");
    let peak_reset = reset_peak();

    let start = Instant::now();
    let result = close_epoch(&policy, 100, &tallies, &previous, &burns).expect("closes");
    let close_s = start.elapsed().as_secs_f64();
    let hwm_close = status_kib("VmHWM:");

    let start = Instant::now();
    let manifest = result.manifest_bytes();
    let manifest_s = start.elapsed().as_secs_f64();

    // The raw primitive: one leaf hash per leaf and the tree over them.
    let start = Instant::now();
    let leaves = result
        .nodes
        .iter()
        .map(|t| reward_leaf(result.epoch, &t.node, t.cumulative))
        .collect();
    let root = MerkleTree::new(leaves).root();
    let merkle_s = start.elapsed().as_secs_f64();
    assert_eq!(root, result.merkle_root);

    let claims = 10_000.min(result.nodes.len());
    let start = Instant::now();
    for t in result.nodes.iter().step_by(result.nodes.len() / claims) {
        let claim = claim_proof(&result, &t.node).expect("leaf");
        assert!(verify_claim(black_box(&result.merkle_root), &claim));
    }
    let claim_us = start.elapsed().as_secs_f64() * 1e6 / claims as f64;

    println!(
        "nodes {n}: leaves {}, paid {}",
        result.nodes.len(),
        result.node_count
    );
    println!(
        "  close_epoch            {close_s:8.3} s   {:6.2} µs/node   × leaves+tree {:5.2}",
        close_s * 1e6 / n as f64,
        close_s / merkle_s
    );
    println!("  leaves + Merkle tree   {merkle_s:8.3} s   (raw primitive)");
    println!(
        "  manifest_bytes         {manifest_s:8.3} s   {:.1} MiB",
        manifest.len() as f64 / (1 << 20) as f64
    );
    println!("  claim_proof + verify   {claim_us:8.2} µs per claim");
    if peak_reset {
        println!(
            "  memory: inputs {:.0} MiB RSS; peak during close {:.0} MiB (+{:.0} MiB)",
            mib(rss_inputs),
            mib(hwm_close),
            mib(hwm_close.saturating_sub(rss_inputs))
        );
    } else {
        println!(
            "  memory: peak (VmHWM, not resettable here) {:.0} MiB",
            mib(hwm_close)
        );
    }
}

fn main() {
    let sizes = std::env::var("DEPIN_BENCH_NODES").unwrap_or_else(|_| "100000,1000000".into());
    println!("process start: VmHWM {:.0} MiB", mib(status_kib("VmHWM:")));
    for n in sizes.split(',').filter_map(|s| s.trim().parse().ok()) {
        run(n);
    }
}
