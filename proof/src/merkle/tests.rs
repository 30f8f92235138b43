use proptest::prelude::*;

use super::*;

fn leaves(n: usize) -> Vec<LeafHash> {
    (0..n as u64)
        .map(|i| LeafHash::of(&i.to_be_bytes()))
        .collect()
}

#[test]
fn every_leaf_of_every_small_tree_verifies() {
    for n in 0..=33 {
        let tree = MerkleTree::new(leaves(n));
        assert_eq!(tree.root(), root_of(&leaves(n)), "n={n}");
        assert_eq!(tree.leaf_count(), n as u64);
        for (i, leaf) in leaves(n).iter().enumerate() {
            let path = tree.path(i as u64).expect("in range");
            assert!(
                verify_path(&tree.root(), n as u64, i as u64, leaf, &path),
                "n={n} i={i}"
            );
        }
        assert_eq!(tree.path(n as u64), None);
    }
}

#[test]
fn each_lie_about_a_path_fails() {
    let tree = MerkleTree::new(leaves(11));
    let root = tree.root();
    let leaf = leaves(11)[6];
    let path = tree.path(6).expect("in range");
    assert!(verify_path(&root, 11, 6, &leaf, &path));
    let mut extra = path.clone();
    extra.siblings.push([0; 32]);
    let mut short = path.clone();
    short.siblings.pop();
    let mut flipped = path.clone();
    flipped.siblings[0][0] ^= 1;
    let table: Vec<(&str, u64, u64, LeafHash, MerklePath)> = vec![
        ("wrong leaf", 11, 6, leaves(11)[5], path.clone()),
        ("wrong index", 11, 7, leaf, path.clone()),
        ("index out of range", 11, 11, leaf, path.clone()),
        ("wrong leaf count", 12, 6, leaf, path.clone()),
        ("extra sibling", 11, 6, leaf, extra),
        ("missing sibling", 11, 6, leaf, short),
        ("tampered sibling", 11, 6, leaf, flipped),
    ];
    for (name, count, index, leaf, path) in table {
        assert!(!verify_path(&root, count, index, &leaf, &path), "{name}");
    }
}

#[test]
fn leaves_and_inner_nodes_are_domain_separated() {
    let two = leaves(2);
    let root = root_of(&two);
    // The inner node's preimage, presented as one leaf, must not reproduce the root.
    let mut concat = two[0].as_bytes().to_vec();
    concat.extend_from_slice(two[1].as_bytes());
    assert_ne!(LeafHash::of(&concat).as_bytes(), &root);
    // Nor may the root pass as a leaf of a one-leaf tree that has the same root.
    assert_ne!(root_of(&[LeafHash::of(&root)]), root);
}

#[test]
fn odd_leaf_is_promoted_not_duplicated() {
    let three = leaves(3);
    let mut four = three.clone();
    four.push(three[2]);
    assert_ne!(root_of(&three), root_of(&four));
    assert_ne!(root_of(&[]), root_of(&leaves(1)));
    assert_ne!(root_of(&leaves(1)), *leaves(1)[0].as_bytes());
}

#[test]
fn proof_bytes_round_trip_and_reject_garbage() {
    let tree = MerkleTree::new(leaves(9));
    let proof = MerkleProof {
        leaf_count: 9,
        index: 8,
        path: tree.path(8).expect("in range"),
    };
    let decoded = MerkleProof::from_bytes(&proof.to_bytes()).expect("round trip");
    assert_eq!(decoded, proof);
    assert!(decoded.verify(&tree.root(), &leaves(9)[8]));
    assert_eq!(
        MerkleProof::from_bytes(&[0; 15]),
        Err(RejectReason::Malformed)
    );
    assert_eq!(
        MerklePath::from_bytes(&[0; 33]),
        Err(RejectReason::Malformed)
    );
    assert_eq!(
        MerklePath::from_bytes(&vec![0; 32 * 65]),
        Err(RejectReason::Malformed)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_trees_open_every_chosen_leaf(n in 1usize..300, pick in any::<prop::sample::Index>(), flip in 0usize..32) {
        let all = leaves(n);
        let tree = MerkleTree::new(all.clone());
        let index = pick.index(n);
        let path = tree.path(index as u64).expect("in range");
        prop_assert!(verify_path(&tree.root(), n as u64, index as u64, &all[index], &path));
        prop_assert_eq!(MerklePath::from_bytes(&path.to_bytes()).expect("round trip"), path.clone());
        if let Some(first) = path.siblings.first() {
            let mut bad = path.clone();
            bad.siblings[0][flip] = first[flip] ^ 0x80;
            prop_assert!(!verify_path(&tree.root(), n as u64, index as u64, &all[index], &bad));
        }
    }
}
