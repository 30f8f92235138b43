//! Property tests over random fleets. Work and multipliers carry at most 6 decimal
//! places, so every share product is exact in 18 places and "double every share" is exact.

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

/// A decimal with at most 6 places, below `max_millionths / 10^6`.
fn six_places(max_millionths: u128) -> impl Strategy<Value = Decimal> {
    (0..=max_millionths).prop_map(|m| Decimal::from_units(m * 1_000_000_000_000))
}

fn work() -> impl Strategy<Value = Work> {
    prop_oneof![
        (six_places(5_000_000_000), six_places(5_000_000_000)).prop_map(|(b, w)| {
            Work::Hotspot {
                beacon_units: b,
                witness_units: w,
            }
        }),
        // Byte-periods in 256 KiB steps: bytes / GiB then has at most 12 places, exact
        // with a 6-place reputation.
        (
            0u128..40_000_000,
            0u128..1_000_000,
            0u128..1_000_000,
            six_places(1_000_000),
            proptest::bool::weighted(0.1),
        )
            .prop_map(|(proven, missed, faulted, reputation, disqualified)| {
                Work::Storage {
                    proven_byte_periods: proven << 18,
                    missed_byte_periods: missed << 18,
                    faulted_byte_periods: faulted << 18,
                    reputation,
                    disqualified,
                }
            }),
        (prop_oneof![Just("a100"), Just("t4")], six_places(1_000_000)).prop_map(
            |(class, availability)| Work::Gpu {
                class: class.into(),
                availability,
            }
        ),
        (0u64..100_000_000).prop_map(|wh| Work::Meter { verified_wh: wh }),
    ]
}

fn tally() -> impl Strategy<Value = NodeTally> {
    (0u8..24, work(), six_places(3_000_000)).prop_map(|(n, work, multiplier)| NodeTally {
        node: format!("ns/node-{n:02}"),
        work,
        multiplier,
    })
}

/// A fleet, earlier totals (some of them for nodes without tallies), burns, an epoch and
/// a policy variant (split or not, burn-and-mint or not, a max supply or not).
#[derive(Debug, Clone)]
struct Case {
    tallies: Vec<NodeTally>,
    previous: CumulativeTotals,
    burns: Vec<EpochBurn>,
    epoch: u64,
    policy: RewardPolicy,
}

fn case() -> impl Strategy<Value = Case> {
    let previous = vec((0u8..32, 1u128..1_000_000_000_000), 0..12);
    let burns = vec((0u64..40, 0u64..100_000_000), 0..10);
    let variant = (
        any::<bool>(),
        any::<bool>(),
        prop::option::of(1u128..20_000_000_000),
    );
    (vec(tally(), 0..40), previous, burns, 0u64..40, variant).prop_map(
        |(tallies, previous, burns, epoch, (split, burn, cap))| {
            let mut s = spec();
            if !split {
                s.hotspot_split = None;
            }
            if !burn {
                s.burn_and_mint = None;
            }
            s.max_supply = cap.map(|c| c.to_string());
            Case {
                tallies,
                previous: previous
                    .into_iter()
                    .map(|(n, t)| (format!("ns/node-{n:02}"), t))
                    .collect(),
                burns: burns
                    .into_iter()
                    .map(|(epoch, dc_burned)| EpochBurn { epoch, dc_burned })
                    .collect(),
                epoch,
                policy: RewardPolicy::validate(&s).expect("variant is valid"),
            }
        },
    )
}

fn close(case: &Case) -> EpochResult {
    close_epoch(
        &case.policy,
        case.epoch,
        &case.tallies,
        &case.previous,
        &case.burns,
    )
    .expect("random fleets close")
}

/// Whether every tally of `node` proved nothing (or it has none).
fn idle(case: &Case, node: &str) -> bool {
    case.tallies.iter().filter(|t| t.node == node).all(|t| {
        t.multiplier.is_zero()
            || match &t.work {
                Work::Hotspot {
                    beacon_units,
                    witness_units,
                } => beacon_units.is_zero() && witness_units.is_zero(),
                Work::Storage {
                    proven_byte_periods,
                    missed_byte_periods,
                    faulted_byte_periods,
                    reputation,
                    disqualified,
                } => {
                    *disqualified
                        || reputation.is_zero()
                        || net_byte_periods(
                            *proven_byte_periods,
                            *missed_byte_periods,
                            *faulted_byte_periods,
                        ) == 0
                }
                Work::Gpu { availability, .. } => availability.is_zero(),
                Work::Meter { verified_wh } => *verified_wh == 0,
            }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn rewards_plus_unallocated_is_exactly_the_supply(case in case()) {
        let r = close(&case);
        prop_assert_eq!(r.rewarded() + r.unallocated, r.emission + r.remint);
        let paid: u128 = r.pools.iter().map(|p| p.paid).sum();
        prop_assert_eq!(paid, r.rewarded());
        for pool in &r.pools {
            prop_assert!(pool.paid <= pool.amount);
        }
        for n in &r.nodes {
            let before = case.previous.get(&n.node).copied().unwrap_or(0);
            prop_assert_eq!(n.cumulative, before + n.reward);
        }
    }

    #[test]
    fn nodes_without_verified_work_get_nothing(case in case()) {
        let r = close(&case);
        for n in &r.nodes {
            if idle(&case, &n.node) {
                prop_assert_eq!(n.reward, 0, "{}", n.node);
            }
        }
        prop_assert_eq!(r.node_count, r.nodes.iter().filter(|n| n.reward > 0).count() as u64);
    }

    #[test]
    fn doubling_every_share_changes_nothing(case in case()) {
        let r = close(&case);
        let mut doubled = case.clone();
        for t in &mut doubled.tallies {
            t.multiplier = t.multiplier.checked_mul_int(2).expect("small");
        }
        let d = close(&doubled);
        prop_assert_eq!(&d.nodes, &r.nodes);
        prop_assert_eq!(d.unallocated, r.unallocated);
        prop_assert_eq!(d.merkle_root, r.merkle_root);
    }

    #[test]
    fn order_of_inputs_does_not_change_a_byte(case in case(), seed: u64) {
        let mut shuffled = case.clone();
        // A seeded rotation and reversal: any permutation must give the same bytes.
        let k = (seed as usize) % shuffled.tallies.len().max(1);
        shuffled.tallies.rotate_left(k);
        shuffled.tallies.reverse();
        shuffled.burns.reverse();
        prop_assert_eq!(close(&case).manifest_bytes(), close(&shuffled).manifest_bytes());
    }

    #[test]
    fn more_shares_never_mean_less_reward(case in case(), pick: prop::sample::Index) {
        prop_assume!(!case.tallies.is_empty());
        let i = pick.index(case.tallies.len());
        let node = case.tallies[i].node.clone();
        let mut more = case.clone();
        more.tallies[i].multiplier = more.tallies[i]
            .multiplier
            .checked_add(Decimal::ONE)
            .expect("small");
        let reward = |r: &EpochResult| r.nodes.iter().find(|n| n.node == node).map_or(0, |n| n.reward);
        prop_assert!(reward(&close(&more)) >= reward(&close(&case)));
    }

    #[test]
    fn every_leaf_verifies_and_a_tampered_amount_does_not(case in case()) {
        let r = close(&case);
        for n in &r.nodes {
            let claim = claim_proof(&r, &n.node).expect("leaf");
            prop_assert!(verify_claim(&r.merkle_root, &claim));
            let tampered = Claim { cumulative: claim.cumulative + 1, ..claim };
            prop_assert!(!verify_claim(&r.merkle_root, &tampered));
        }
    }
}
