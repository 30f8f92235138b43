//! Golden manifest: fixed inputs → the exact committed bytes. A deliberate format or math
//! change regenerates the file with `DEPIN_BLESS=1 cargo test -p depin-proof golden`, and
//! the diff is reviewed like code.

use super::epochs::{fleet, gpu, hotspot, meter, storage};
use super::*;

const GOLDEN_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/reward_manifest_v1.txt"
);
const GOLDEN: &str = include_str!("../../../tests/golden/reward_manifest_v1.txt");

/// Epoch 12 of the example policy: past the first halving (epoch 10), with burns in the
/// smoothing window, earlier totals (one node idle this epoch), a node with a multiplier,
/// a node with two tallies and a node with no verified work.
fn golden_result() -> EpochResult {
    let mut tallies = fleet();
    let mut boosted = meter("edge/m-2", 12_345);
    boosted.multiplier = dec("1.5");
    tallies.extend([
        boosted,
        meter("edge/m-3", 1_000),
        hotspot("default/hs-1", "0.25", "0.76"),
        storage("edge/st-3", "0.5", 48, "0.961"),
        gpu("edge/gpu-3", "t4", "0.333333"),
    ]);
    let previous: CumulativeTotals = [
        ("default/hs-1".to_owned(), 1_000_000),
        ("default/retired".to_owned(), 777),
        ("edge/st-3".to_owned(), 5),
    ]
    .into();
    let burns = [
        EpochBurn {
            epoch: 4,
            dc_burned: 9_999_999,
        },
        EpochBurn {
            epoch: 5,
            dc_burned: 300_000,
        },
        EpochBurn {
            epoch: 11,
            dc_burned: 123_456,
        },
        EpochBurn {
            epoch: 12,
            dc_burned: 50_000,
        },
    ];
    close_epoch(&policy(), 12, &tallies, &previous, &burns).expect("golden epoch closes")
}

#[test]
fn manifest_matches_the_golden_file() {
    let manifest = golden_result().manifest();
    if std::env::var_os("DEPIN_BLESS").is_some() {
        std::fs::write(GOLDEN_PATH, &manifest).expect("write golden file");
        return;
    }
    pretty_assert(&manifest, GOLDEN);
}

fn pretty_assert(got: &str, want: &str) {
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "line {} differs ({GOLDEN_PATH})", i + 1);
    }
    assert_eq!(got, want, "manifest length differs from {GOLDEN_PATH}");
}

#[test]
fn the_golden_root_is_over_its_node_lines() {
    // Anyone holding the manifest can recompute the root from its node lines alone.
    let epoch = 12;
    let leaves: Vec<_> = GOLDEN
        .lines()
        .filter_map(|line| line.strip_prefix("node "))
        .map(|rest| {
            let fields: Vec<&str> = rest.split(' ').collect();
            let cumulative = fields[2].strip_prefix("cumulative=").expect("field");
            reward_leaf(epoch, fields[0], cumulative.parse().expect("u128"))
        })
        .collect();
    let root = hex::encode(crate::merkle::root_of(&leaves));
    assert!(GOLDEN.contains(&format!("merkle-root {root}\n")));
}
