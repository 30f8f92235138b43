//! Worked examples of `close_epoch`, computed by hand, and its error table.

use super::*;

pub(super) fn hotspot(node: &str, beacon: &str, witness: &str) -> NodeTally {
    let work = Work::Hotspot {
        beacon_units: dec(beacon),
        witness_units: dec(witness),
    };
    NodeTally::new(node, work)
}

/// A storage node that proved `gib` GiB in each of `periods` periods and missed nothing.
pub(super) fn storage(node: &str, gib: &str, periods: u64, reputation: &str) -> NodeTally {
    let work = Work::Storage {
        proven_byte_periods: byte_periods(gib, periods),
        missed_byte_periods: 0,
        faulted_byte_periods: 0,
        reputation: dec(reputation),
        disqualified: false,
    };
    NodeTally::new(node, work)
}

/// `gib` (a decimal) GiB × `periods` in bytes.
pub(super) fn byte_periods(gib: &str, periods: u64) -> u128 {
    dec(gib).units() * u128::from(periods) * (1 << 30) / Decimal::ONE.units()
}

pub(super) fn gpu(node: &str, class: &str, availability: &str) -> NodeTally {
    let work = Work::Gpu {
        class: class.into(),
        availability: dec(availability),
    };
    NodeTally::new(node, work)
}

pub(super) fn meter(node: &str, wh: u64) -> NodeTally {
    NodeTally::new(node, Work::Meter { verified_wh: wh })
}

/// One node of each kind (two of most), plus a meter that proved nothing.
pub(super) fn fleet() -> Vec<NodeTally> {
    vec![
        hotspot("default/hs-1", "1", "2"),
        hotspot("default/hs-2", "0", "1"),
        storage("default/st-1", "100", 2, "0.5"),
        storage("default/st-2", "50", 2, "1"),
        gpu("default/gpu-1", "a100", "0.5"),
        gpu("default/gpu-2", "t4", "1"),
        meter("default/m-1", 0),
    ]
}

fn reward_of(result: &EpochResult, node: &str) -> Option<u128> {
    result
        .nodes
        .iter()
        .find(|n| n.node == node)
        .map(|n| n.reward)
}

fn pool(result: &EpochResult, pool: Pool) -> &PoolOutcome {
    result
        .pools
        .iter()
        .find(|p| p.pool == pool)
        .expect("pool listed")
}

#[test]
fn epoch_zero_splits_by_weight_then_by_share() {
    let r = close_epoch(&policy(), 0, &fleet(), &CumulativeTotals::new(), &[]).expect("closes");
    assert_eq!((r.emission, r.burn, r.remint), (1_000_000_000, 0, 0));
    // hotspot 0.4 → beacon 0.2 of it, witness 0.8; storage 0.3; gpu 0.2; meter 0.1.
    let amounts: Vec<(Pool, u128)> = r.pools.iter().map(|p| (p.pool, p.amount)).collect();
    assert_eq!(
        amounts,
        [
            (Pool::HotspotBeacon, 80_000_000),
            (Pool::HotspotWitness, 320_000_000),
            (Pool::Storage, 300_000_000),
            (Pool::Gpu, 200_000_000),
            (Pool::Meter, 100_000_000),
        ]
    );
    // Witness: hs-1 has 2 of 3 shares, hs-2 1 of 3 (1 base unit of dust).
    assert_eq!(
        reward_of(&r, "default/hs-1"),
        Some(80_000_000 + 213_333_333)
    );
    assert_eq!(reward_of(&r, "default/hs-2"), Some(106_666_666));
    // 100 GiB × 2 × 0.5 = 100 shares = 50 GiB × 2 × 1.
    assert_eq!(reward_of(&r, "default/st-1"), Some(150_000_000));
    assert_eq!(reward_of(&r, "default/st-2"), Some(150_000_000));
    // a100 weight 4 × 0.5 = 2 shares vs t4 1 × 1.
    assert_eq!(reward_of(&r, "default/gpu-1"), Some(133_333_333));
    assert_eq!(reward_of(&r, "default/gpu-2"), Some(66_666_666));
    // The meter proved nothing: no reward, no leaf; its whole pool is unallocated.
    assert_eq!(reward_of(&r, "default/m-1"), None);
    assert_eq!(pool(&r, Pool::Meter).paid, 0);
    assert_eq!(pool(&r, Pool::Meter).reward_per_share, "0");
    assert_eq!(r.unallocated, 100_000_000 + 1 + 1);
    assert_eq!(r.rewarded() + r.unallocated, r.emission + r.remint);
    assert_eq!((r.node_count, r.nodes.len()), (6, 6));
    let witness = pool(&r, Pool::HotspotWitness);
    assert_eq!(witness.total_shares, dec("3"));
    assert_eq!(witness.reward_per_share, "106666666.666666666666666666");
}

#[test]
fn totals_carry_over_and_idle_nodes_stay_claimable() {
    let policy = policy();
    let first = close_epoch(&policy, 0, &fleet(), &CumulativeTotals::new(), &[]).expect("e0");
    let only_storage = [storage("default/st-1", "1", 1, "1")];
    let second =
        close_epoch(&policy, 1, &only_storage, &first.cumulative_totals(), &[]).expect("e1");
    assert_eq!(
        second.nodes.len(),
        6,
        "every earlier earner is still a leaf"
    );
    assert_eq!(second.node_count, 1);
    let st1 = second
        .nodes
        .iter()
        .find(|n| n.node == "default/st-1")
        .expect("leaf");
    assert_eq!((st1.reward, st1.cumulative), (300_000_000, 450_000_000));
    let hs2 = second
        .nodes
        .iter()
        .find(|n| n.node == "default/hs-2")
        .expect("leaf");
    assert_eq!((hs2.reward, hs2.cumulative), (0, 106_666_666));
    let ids: Vec<&str> = second.nodes.iter().map(|n| n.node.as_str()).collect();
    assert!(ids.is_sorted(), "leaves are in node id order");
}

#[test]
fn halving_and_remint_reach_the_epoch() {
    let policy = policy();
    let burns = [
        EpochBurn {
            epoch: 9,
            dc_burned: 700_000,
        }, // 7 tokens = 7 000 000 base units
        EpochBurn {
            epoch: 10,
            dc_burned: 1_400_000,
        },
    ];
    let none = CumulativeTotals::new();
    let e9 = close_epoch(&policy, 9, &fleet(), &none, &burns).expect("e9");
    assert_eq!(
        (e9.emission, e9.burn, e9.remint),
        (1_000_000_000, 7_000_000, 0)
    );
    let e10 = close_epoch(&policy, 10, &fleet(), &none, &burns).expect("e10");
    // Halved at epoch 10; epoch 9's burn re-minted over 7 epochs.
    assert_eq!(
        (e10.emission, e10.burn, e10.remint),
        (500_000_000, 14_000_000, 1_000_000)
    );
    let e11 = close_epoch(&policy, 11, &fleet(), &none, &burns).expect("e11");
    assert_eq!(e11.remint, 3_000_000);
    assert_eq!(e11.rewarded() + e11.unallocated, 503_000_000);
}

#[test]
fn an_exhausted_supply_pays_nothing_but_keeps_the_leaves() {
    let mut s = spec();
    s.max_supply = Some("1500000000".into());
    s.burn_and_mint = None;
    let policy = RewardPolicy::validate(&s).expect("valid");
    let e1 = close_epoch(&policy, 1, &fleet(), &CumulativeTotals::new(), &[]).expect("e1");
    assert_eq!(
        e1.emission, 500_000_000,
        "the epoch crossing the cap gets the remainder"
    );
    let e2 = close_epoch(&policy, 2, &fleet(), &e1.cumulative_totals(), &[]).expect("e2");
    assert_eq!((e2.emission, e2.node_count, e2.unallocated), (0, 0, 0));
    assert_eq!(e2.cumulative_totals(), e1.cumulative_totals());
}

#[test]
fn without_a_split_the_hotspot_pool_pays_beacon_and_witness_units_together() {
    let mut s = spec();
    s.hotspot_split = None;
    let policy = RewardPolicy::validate(&s).expect("valid");
    let r = close_epoch(&policy, 0, &fleet(), &CumulativeTotals::new(), &[]).expect("closes");
    let names: Vec<&str> = r.pools.iter().map(|p| p.pool.as_str()).collect();
    assert_eq!(names, ["hotspot", "storage", "gpu", "meter"]);
    // hs-1 has 3 of 4 units of a 400 000 000 pool.
    assert_eq!(reward_of(&r, "default/hs-1"), Some(300_000_000));
}

#[test]
fn tallies_of_one_node_add_up() {
    let split = [storage("ns/a", "1", 1, "1"), storage("ns/a", "2", 1, "1")];
    let whole = [storage("ns/a", "3", 1, "1")];
    let none = CumulativeTotals::new();
    let a = close_epoch(&policy(), 0, &split, &none, &[]).expect("split");
    let b = close_epoch(&policy(), 0, &whole, &none, &[]).expect("whole");
    assert_eq!(a.manifest(), b.manifest());
}

#[test]
fn each_bad_input_is_refused_with_its_reason() {
    let mut huge = hotspot("ns/huge", "300000000000000000000", "0");
    huge.multiplier = dec("2");
    let rows: Vec<(Vec<NodeTally>, CumulativeTotals, &str)> = vec![
        (
            vec![meter("ns/a b", 1)],
            CumulativeTotals::new(),
            "BadNodeId",
        ),
        (vec![meter("", 1)], CumulativeTotals::new(), "BadNodeId"),
        (
            vec![meter(&"x".repeat(513), 1)],
            CumulativeTotals::new(),
            "BadNodeId",
        ),
        (vec![meter("ns/é", 1)], CumulativeTotals::new(), "BadNodeId"),
        (
            vec![storage("ns/s", "1", 1, "1.01")],
            CumulativeTotals::new(),
            "AboveOne",
        ),
        (
            vec![gpu("ns/g", "a100", "2")],
            CumulativeTotals::new(),
            "AboveOne",
        ),
        (
            vec![gpu("ns/g", "h100", "1")],
            CumulativeTotals::new(),
            "UnknownGpuClass",
        ),
        (vec![huge], CumulativeTotals::new(), "ShareOverflow"),
        (
            vec![
                hotspot("ns/h1", "0", "200000000000000000000"),
                hotspot("ns/h2", "0", "200000000000000000000"),
            ],
            CumulativeTotals::new(),
            "PoolShareOverflow",
        ),
        (vec![], [("bad id".to_owned(), 5)].into(), "BadNodeId"),
        (
            vec![meter("ns/m", 1)],
            [("ns/m".to_owned(), u128::MAX)].into(),
            "CumulativeOverflow",
        ),
    ];
    for (tallies, previous, reason) in rows {
        let err = close_epoch(&policy(), 0, &tallies, &previous, &[]).expect_err(reason);
        assert_eq!(err.reason(), reason, "{err}");
    }
    let err = close_epoch(
        &policy(),
        0,
        &[gpu("ns/g", "h100", "1")],
        &CumulativeTotals::new(),
        &[],
    )
    .expect_err("unknown class");
    assert_eq!(
        err.to_string(),
        "node ns/g: GPU class \"h100\" is not in the policy's gpuClasses"
    );
}

#[test]
fn a_huge_emission_plus_remint_is_refused() {
    let mut s = spec();
    s.initial_per_epoch = u128::MAX.to_string();
    let policy = RewardPolicy::validate(&s).expect("valid");
    let burns = [EpochBurn {
        epoch: 0,
        dc_burned: 100_000,
    }];
    let err = close_epoch(&policy, 1, &[], &CumulativeTotals::new(), &burns).expect_err("overflow");
    assert_eq!(err, EpochError::SupplyOverflow);
}

#[test]
fn storage_shares_are_proven_byte_periods_less_penalties_times_reputation() {
    const GIB: u128 = 1 << 30;
    let policy = policy();
    let work = |proven, missed, faulted, reputation: &str, disqualified| Work::Storage {
        proven_byte_periods: proven,
        missed_byte_periods: missed,
        faulted_byte_periods: faulted,
        reputation: dec(reputation),
        disqualified,
    };
    // (work, expected storage shares)
    let table: Vec<(Work, &str)> = vec![
        // Honest: 1 GiB proven in each of 2 periods.
        (work(2 * GIB, 0, 0, "1", false), "2"),
        // A miss of half a GiB-period costs two of them.
        (work(2 * GIB, GIB / 2, 0, "1", false), "1"),
        // A declared fault of the same size costs one: less than the miss.
        (work(2 * GIB, 0, GIB / 2, "1", false), "1.5"),
        // Reputation scales what is left.
        (work(2 * GIB, GIB / 2, 0, "0.5", false), "0.5"),
        // Penalties never go below zero.
        (work(GIB, 4 * GIB, 4 * GIB, "1", false), "0"),
        // Disqualified: nothing, whatever was proven.
        (work(2 * GIB, 0, 0, "1", true), "0"),
        // 16 KiB, the smallest sector size, still counts exactly.
        (work(16 * 1024, 0, 0, "1", false), "0.0000152587890625"),
    ];
    for (i, (work, want)) in table.into_iter().enumerate() {
        let tally = NodeTally::new("ns/s", work);
        let [(pool, shares), _] =
            crate::reward::shares::tally_shares(&policy, &tally).expect("shares");
        assert_eq!((pool, shares), (Pool::Storage, dec(want)), "row {i}");
    }
}

#[test]
fn the_same_capacity_earns_the_same_whatever_the_sector_size() {
    // 2 GiB for one period as 2 × 1 GiB sectors or 32 × 64 MiB sectors: the verifier adds
    // each passed sector-deadline's size, so both sum to the same byte-periods.
    let sum = |sectors: u128, bytes: u128| (0..sectors).map(|_| bytes).sum::<u128>();
    let (large, small) = (sum(2, 1 << 30), sum(32, 64 << 20));
    let tallies = [
        NodeTally::new(
            "ns/large",
            Work::Storage {
                proven_byte_periods: large,
                missed_byte_periods: 0,
                faulted_byte_periods: 0,
                reputation: Decimal::ONE,
                disqualified: false,
            },
        ),
        NodeTally::new(
            "ns/small",
            Work::Storage {
                proven_byte_periods: small,
                missed_byte_periods: 0,
                faulted_byte_periods: 0,
                reputation: Decimal::ONE,
                disqualified: false,
            },
        ),
    ];
    let r = close_epoch(&policy(), 0, &tallies, &CumulativeTotals::new(), &[]).expect("closes");
    assert_eq!(reward_of(&r, "ns/large"), reward_of(&r, "ns/small"));
    assert!(reward_of(&r, "ns/large").is_some_and(|x| x > 0));
}
