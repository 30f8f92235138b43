//! The seal and root-bound challenges: one honest case, then one lie per row.

use proptest::prelude::*;

use super::{Fixture, SECTOR, sector_bytes};
use crate::entropy::ChallengeId;
use crate::identity::NodeKey;
use crate::merkle::Hash;
use crate::reject::RejectReason;
use crate::storage::messages::STORAGE_CHALLENGE_INDEX_DOMAIN;
use crate::storage::{
    LeafOpening, MAX_SECTOR_BYTES, SealParams, SealedSector, SectorCommitment, SectorId,
    SectorTree, StorageParams, StorageResponse, answer_challenge, challenged_leaves,
    check_response_deadline, commit_sealed, commit_sector, response_clock_start_ms,
    verify_sealed_root,
};

/// 64 KiB sector of 64-byte leaves (1024 leaves), three Argon2d passes: fast, and every
/// code path is production's.
const LEN: usize = 64 * 1024;

fn seal_params() -> SealParams {
    SealParams {
        work_blocks: 0,
        max_passes: 3,
    }
}

/// The fixture with its sector replaced by the node's sealed replica, root frozen.
fn sealed_fixture(seed: u8) -> Fixture {
    let mut f = Fixture::new(LEN, seed);
    f.params.seal = seal_params();
    let (sealed, tree) =
        commit_sealed(&f.node.public(), SECTOR, LEN as u64, &f.params).expect("packs");
    f.data = sealed.to_bytes();
    f.tree = tree;
    f.sectors.insert(SECTOR, *f.tree.commitment());
    f
}

fn leaf(data: &[u8], index: u64, leaf_size: u32) -> &[u8] {
    let start = usize::try_from(index * u64::from(leaf_size)).expect("small");
    &data[start..(start + leaf_size as usize).min(data.len())]
}

/// What a node answering with `tree` over `data` sends (it derives indices from `tree`);
/// tables re-sign it with [`Fixture::resign`] so the lie, not the signature, is judged.
fn answer_with(f: &Fixture, tree: &SectorTree, data: &[u8]) -> StorageResponse {
    answer_challenge(
        tree,
        &f.challenge(),
        &mut std::io::Cursor::new(data),
        &f.node.public(),
        &f.session_key,
        &f.params,
    )
    .expect("in-memory read")
}

#[test]
fn sealed_root_check_accepts_the_packing_and_names_each_lie() {
    let f = sealed_fixture(20);
    let node = f.node.public();
    let honest = *f.tree.commitment();
    assert_eq!(verify_sealed_root(&node, &honest, &f.params), Ok(()));

    let other = NodeKey::from_seed([7; 32]).public();
    let (_, other_identity) = commit_sealed(&other, SECTOR, LEN as u64, &f.params).expect("packs");
    let (_, other_sector) =
        commit_sealed(&node, SectorId(6), LEN as u64, &f.params).expect("packs");
    let four_passes = StorageParams {
        seal: SealParams {
            work_blocks: u64::MAX,
            max_passes: 4,
        },
        ..f.params
    };
    let (_, cheaper) = commit_sealed(&node, SECTOR, LEN as u64, &four_passes).expect("packs");
    // A sparse tree: only the leaves some challenge opened are real, the rest zeros.
    let challenged = challenged_leaves(&f.challenge().id(&node), &honest, 46);
    let mut sparse = vec![0u8; LEN];
    for &i in &challenged {
        let start = i as usize * 64;
        sparse[start..start + 64].copy_from_slice(leaf(&f.data, i, 64));
    }
    let mut one_leaf_changed = f.data.clone();
    one_leaf_changed[LEN / 2] ^= 1;
    let unpacked = |data: &[u8]| *commit_sector(SECTOR, data, 64).commitment();

    let table: Vec<(&str, SectorCommitment, RejectReason)> = vec![
        (
            "unpacked zeros",
            unpacked(&vec![0; LEN]),
            RejectReason::WrongSeal,
        ),
        (
            "unpacked public content (the old XOF fill)",
            unpacked(&sector_bytes(LEN, 20)),
            RejectReason::WrongSeal,
        ),
        (
            "root of another identity's packing",
            *other_identity.commitment(),
            RejectReason::WrongSeal,
        ),
        (
            "root of another sector's packing",
            SectorCommitment {
                root: other_sector.commitment().root,
                ..honest
            },
            RejectReason::WrongSeal,
        ),
        (
            "other passes (cheaper or dearer packing)",
            *cheaper.commitment(),
            RejectReason::WrongSeal,
        ),
        (
            "sparse tree re-committed after a challenge",
            unpacked(&sparse),
            RejectReason::WrongSeal,
        ),
        (
            "one byte of the replica changed",
            unpacked(&one_leaf_changed),
            RejectReason::WrongSeal,
        ),
        (
            "sector larger than the seal allows",
            SectorCommitment {
                sector_bytes: MAX_SECTOR_BYTES + 1,
                leaf_count: f.params.leaf_count_for(MAX_SECTOR_BYTES + 1),
                ..honest
            },
            RejectReason::WrongSectorSize,
        ),
        (
            "empty sector",
            SectorCommitment {
                sector_bytes: 0,
                leaf_count: 0,
                ..honest
            },
            RejectReason::WrongSectorSize,
        ),
    ];
    for (name, commitment, want) in table {
        assert_eq!(
            verify_sealed_root(&node, &commitment, &f.params),
            Err(want),
            "{name}"
        );
    }
}

#[test]
fn responses_from_the_frozen_sealed_root_pass_and_each_lie_fails() {
    let f = sealed_fixture(21);
    let node = f.node.public();
    let honest = f.respond();
    assert!(f.verify(&honest).is_ok(), "honest sealed response");

    // Sparse re-commit: after seeing the challenge, commit a tree holding only the leaves it
    // opens. The root is frozen, so the verifier still checks against the sealed root; the
    // new root also moves the challenged indices away from the leaves the cheat kept.
    let seen = challenged_leaves(&f.challenge().id(&node), f.tree.commitment(), 46);
    let mut sparse = vec![0u8; LEN];
    for &i in &seen {
        let start = i as usize * 64;
        sparse[start..start + 64].copy_from_slice(leaf(&f.data, i, 64));
    }
    let sparse_tree = commit_sector(SECTOR, &sparse, 64);
    let moved = challenged_leaves(&f.challenge().id(&node), sparse_tree.commitment(), 46);
    assert_ne!(moved, seen, "a new root challenges other leaves");

    // Unpacked data: the raw (zero) data at the challenged leaves, on the sealed paths.
    let mut unpacked = honest.clone();
    for opening in &mut unpacked.openings {
        opening.leaf = vec![0; 64];
    }
    // Indices from an old root (before a sector reset): the real sealed leaves and paths,
    // but at the indices the old commitment would have challenged.
    let old = commit_sector(SECTOR, &sector_bytes(LEN, 1), 64);
    let mut old_indices = honest.clone();
    old_indices.openings = challenged_leaves(&f.challenge().id(&node), old.commitment(), 46)
        .into_iter()
        .map(|i| LeafOpening {
            leaf: leaf(&f.data, i, 64).to_vec(),
            path: f.tree.path(i).expect("in range"),
        })
        .collect();
    // Another identity's replica of the same sector, answering for this node.
    let other = NodeKey::from_seed([7; 32]).public();
    let (other_replica, other_tree) =
        commit_sealed(&other, SECTOR, LEN as u64, &f.params).expect("packs");

    let table: Vec<(&str, StorageResponse, RejectReason)> = vec![
        (
            "sparse tree committed after the challenge",
            f.resign(answer_with(&f, &sparse_tree, &sparse)),
            RejectReason::BadMerklePath,
        ),
        (
            "leaves from unpacked data",
            f.resign(unpacked),
            RejectReason::BadMerklePath,
        ),
        (
            "indices from an old root",
            f.resign(old_indices),
            RejectReason::BadMerklePath,
        ),
        (
            "another identity's replica",
            f.resign(answer_with(&f, &other_tree, &other_replica.to_bytes())),
            RejectReason::BadMerklePath,
        ),
    ];
    for (name, response, want) in table {
        assert_eq!(f.verify(&response).map(|_| ()), Err(want), "{name}");
    }
}

#[test]
fn one_copy_behind_two_identities_cannot_pass_for_the_second() {
    let a = sealed_fixture(22);
    // Identity B: same sector number and size, its own key; its verifier freezes B's root.
    let mut b = Fixture::new(LEN, 22);
    b.node = NodeKey::from_seed([3; 32]);
    b.session.node = b.node.public();
    b.params.seal = seal_params();
    let (_, b_tree) =
        commit_sealed(&b.node.public(), SECTOR, LEN as u64, &b.params).expect("packs");
    b.tree = b_tree;
    b.sectors.insert(SECTOR, *b.tree.commitment());

    let differing = a
        .data
        .chunks(64)
        .zip(b.data.chunks(64))
        .filter(|(x, y)| x != y)
        .count();
    assert_eq!(
        differing,
        LEN / 64,
        "every leaf of the two replicas differs"
    );
    // B presenting A's root (one stored copy) fails the seal check at commitment time ...
    assert_eq!(
        verify_sealed_root(&b.node.public(), a.tree.commitment(), &b.params),
        Err(RejectReason::WrongSeal)
    );
    // ... and answering B's challenges from A's bytes fails against B's frozen root.
    b.data = a.data.clone();
    assert_eq!(
        b.verify(&b.respond()).map(|_| ()),
        Err(RejectReason::BadMerklePath)
    );
}

#[test]
fn packing_is_deterministic_streams_like_the_copy_and_unseals() {
    let node = NodeKey::from_seed([5; 32]).public();
    let params = StorageParams {
        leaf_size: 64,
        seal: seal_params(),
        ..StorageParams::default()
    };
    // An odd length: the last leaf and the last Argon2 block are short.
    let len = 40_000u64;
    let (one, tree) = commit_sealed(&node, SECTOR, len, &params).expect("packs");
    let (two, _) = commit_sealed(&node, SECTOR, len, &params).expect("packs");
    assert_eq!(one.to_bytes(), two.to_bytes());
    assert_eq!(one.to_bytes().len() as u64, len);
    let mut file = Vec::new();
    let written = one.write_and_commit(&mut file, 64).expect("in memory");
    assert_eq!(file, one.to_bytes());
    assert_eq!(written.commitment(), tree.commitment());
    assert_eq!(
        tree.commitment(),
        commit_sector(SECTOR, &file, 64).commitment()
    );

    let data = sector_bytes(len as usize, 9);
    let mut replica = SealedSector::pack(&node, SECTOR, len, &params.seal).expect("packs");
    replica.xor_data(&data);
    let packed: Vec<u8> = one
        .to_bytes()
        .iter()
        .zip(&data)
        .map(|(m, d)| m ^ d)
        .collect();
    assert_eq!(replica.to_bytes(), packed, "replica = D ⊕ Mem");
    replica.xor_data(&data);
    assert_eq!(replica.to_bytes(), one.to_bytes(), "XOR again unseals");
}

#[test]
fn the_seal_passes_follow_the_work_and_the_bounds() {
    let p = SealParams::default();
    let table: &[(&str, u64, u32)] = &[
        ("1 GiB: 16 passes", 1 << 30, 16),
        ("256 MiB: 64 passes", 256 << 20, 64),
        ("64 MiB: the cap, still the full work", 64 << 20, 256),
        ("64 KiB test sector: capped", 64 << 10, 256),
        ("no work asked: the floor", 1 << 30, 3),
    ];
    for (i, (name, bytes, want)) in table.iter().enumerate() {
        let params = if i == table.len() - 1 {
            SealParams {
                work_blocks: 1,
                ..p
            }
        } else {
            p
        };
        assert_eq!(params.passes_for(*bytes), *want, "{name}");
    }
}

#[test]
fn response_deadline_counts_from_the_beacon_tick() {
    let params = StorageParams::default();
    let entropy = crate::entropy::EntropyConfig::default();
    let tick = 1_000;
    let start = response_clock_start_ms(&entropy, tick);
    assert_eq!(start, entropy.issued_at_ms(tick));
    let d = params.response_deadline_ms;
    let table: &[(&str, u64, Result<(), RejectReason>)] = &[
        ("at once", start, Ok(())),
        ("at the deadline", start + d, Ok(())),
        (
            "one ms late",
            start + d + 1,
            Err(RejectReason::LateResponse),
        ),
        (
            "after regenerating the sector",
            start + 10_000,
            Err(RejectReason::LateResponse),
        ),
    ];
    for (name, now, want) in table {
        assert_eq!(
            check_response_deadline(&params, start, *now),
            *want,
            "{name}"
        );
    }
}

fn commitment(root: Hash, leaf_count: u64) -> SectorCommitment {
    SectorCommitment {
        sector: SECTOR,
        sector_bytes: leaf_count * 64,
        leaf_size: 64,
        leaf_count,
        root,
    }
}

/// The draw the doc comment of [`challenged_leaves`] specifies, re-derived independently.
fn first_word(challenge: &ChallengeId, c: &SectorCommitment, j: u32) -> u64 {
    let mut h = blake3::Hasher::new_derive_key(STORAGE_CHALLENGE_INDEX_DOMAIN);
    h.update(&challenge.0)
        .update(&c.sector.0.to_be_bytes())
        .update(&c.root)
        .update(&c.leaf_count.to_be_bytes());
    let key = *h.finalize().as_bytes();
    let mut word = [0u8; 8];
    blake3::Hasher::new_keyed(&key)
        .update(&j.to_be_bytes())
        .finalize_xof()
        .fill(&mut word);
    u64::from_be_bytes(word)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn challenged_indices_change_when_the_root_changes(
        challenge in any::<[u8; 32]>(),
        root in any::<[u8; 32]>(),
        bit in 0usize..256,
        leaf_count in 64u64..1_000_000,
    ) {
        let challenge = ChallengeId(challenge);
        let mut other = root;
        other[bit / 8] ^= 1 << (bit % 8);
        let a = challenged_leaves(&challenge, &commitment(root, leaf_count), 46);
        let b = challenged_leaves(&challenge, &commitment(other, leaf_count), 46);
        prop_assert_ne!(&a, &b);
        prop_assert!(a.iter().chain(&b).all(|&i| i < leaf_count));
    }

    #[test]
    fn a_power_of_two_leaf_count_takes_the_low_bits(
        challenge in any::<[u8; 32]>(),
        root in any::<[u8; 32]>(),
        log in 1u32..30,
    ) {
        let challenge = ChallengeId(challenge);
        let c = commitment(root, 1 << log);
        let got = challenged_leaves(&challenge, &c, 8);
        for (j, index) in got.into_iter().enumerate() {
            let j = u32::try_from(j).expect("small");
            prop_assert_eq!(index, first_word(&challenge, &c, j) & ((1 << log) - 1));
        }
    }
}
