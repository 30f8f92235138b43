//! Merkle inclusion proofs as a payer decodes them (`MerkleProof::from_bytes`, the tail of
//! a claim) and checks them (`verify_path`), against a real tree of up to 300 leaves.
//! Decoding is canonical (re-encoding gives the same bytes), and a proof verifies only
//! when leaf count, index, leaf and path are all exactly the honest ones.
#![no_main]

use depin_proof::merkle::{LeafHash, MerklePath, MerkleProof, MerkleTree, verify_path};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    leaves: u16,
    /// Which leaf the honest proof is for.
    index: u16,
    /// The proof as it arrives: the honest encoding with these byte edits, or raw bytes.
    edits: Vec<(u16, u8)>,
    truncate: Option<u16>,
    append: Vec<u8>,
    raw: Option<Vec<u8>>,
    /// The leaf presented (honest leaf `i` is the hash of `i` as 8 big-endian bytes).
    leaf: Option<u64>,
}

fn leaf(i: u64) -> LeafHash {
    LeafHash::of(&i.to_be_bytes())
}

fuzz_target!(|input: Input| {
    let count = u64::from(input.leaves % 300 + 1);
    let index = u64::from(input.index) % count;
    let tree = MerkleTree::new((0..count).map(leaf).collect());
    let root = tree.root();
    let honest = MerkleProof {
        leaf_count: count,
        index,
        path: tree.path(index).expect("index in range"),
    };
    let honest_bytes = honest.to_bytes();
    assert!(honest.verify(&root, &leaf(index)));

    let bytes = input.raw.unwrap_or_else(|| {
        let mut b = honest_bytes.clone();
        for (at, mask) in input.edits {
            if let Some(byte) = b.get_mut(usize::from(at)) {
                *byte ^= mask;
            }
        }
        if let Some(len) = input.truncate {
            b.truncate(usize::from(len));
        }
        b.extend_from_slice(&input.append);
        b
    });
    let presented = input.leaf.unwrap_or(index);
    let Ok(proof) = MerkleProof::from_bytes(&bytes) else {
        return;
    };
    assert_eq!(proof.to_bytes(), bytes, "canonical encoding");
    assert_eq!(
        MerklePath::from_bytes(&proof.path.to_bytes()).as_ref(),
        Ok(&proof.path)
    );
    let ok = verify_path(
        &root,
        proof.leaf_count,
        proof.index,
        &leaf(presented),
        &proof.path,
    );
    assert_eq!(ok, bytes == honest_bytes && presented == index, "{proof:?}");
});
