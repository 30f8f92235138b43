//! Statistical checks: honest provers always pass, lossy ones are caught at 1 − (1 − f)^k.

use std::collections::HashSet;

use proptest::prelude::*;

use super::{Fixture, PERIOD, SECTOR};
use crate::reject::RejectReason;
use crate::storage::{challenged_leaves, commit_sector};

/// Fraction of `trials` deadlines in which a node that lost `lost` of its leaves is caught.
fn caught_rate(lost_fraction: f64, trials: u64) -> f64 {
    let mut f = Fixture::new(64 * 1000, 8);
    let lost: HashSet<u64> = (0..1000)
        .filter(|i| (*i as f64) < lost_fraction * 1000.0)
        .collect();
    let mut caught = 0;
    for trial in 0..trials {
        // Each trial is a different period, hence different beacon entropy and leaves.
        f.deadline = f.params.deadline(PERIOD + trial, 5).expect("exists");
        let mut response = f.respond();
        let indices =
            challenged_leaves(&f.challenge().id(&f.node.public()), f.tree.commitment(), 46);
        for (index, opening) in indices.iter().zip(&mut response.openings) {
            if lost.contains(index) {
                opening.leaf = vec![0; 64]; // the node no longer has these bytes
            }
        }
        match f.verify(&f.resign(response)) {
            Ok(_) => {}
            Err(RejectReason::BadMerklePath) => caught += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    caught as f64 / trials as f64
}

#[test]
fn missing_leaves_are_caught_at_the_expected_rate() {
    for lost in [0.02f64, 0.05] {
        let expected = 1.0 - (1.0 - lost).powi(46);
        let rate = caught_rate(lost, 200);
        println!("f={lost}: caught {rate:.3}, expected {expected:.3}");
        let sigma = (expected * (1.0 - expected) / 200.0).sqrt();
        assert!(
            (rate - expected).abs() <= 4.0 * sigma,
            "f={lost}: caught {rate}, expected {expected} ± {}",
            4.0 * sigma
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn honest_provers_always_pass(len in 1usize..6000, leaf_size in prop::sample::select(vec![32u32, 64, 100, 4096]), seed in any::<u8>(), period in 1u64..1000) {
        let mut f = Fixture::new(len, seed);
        f.params.leaf_size = leaf_size;
        f.tree = commit_sector(SECTOR, &f.data, leaf_size);
        f.sectors.insert(SECTOR, *f.tree.commitment());
        f.deadline = f.params.deadline(period, 5).expect("exists");
        let response = f.respond();
        prop_assert!(f.verify(&response).is_ok());
    }
}
