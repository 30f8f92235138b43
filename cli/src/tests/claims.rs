//! Claim files: an honest one from `claim_proof` verifies, every lie fails with its reason.

use super::*;
use crate::claim::{ClaimFile, ClaimReject, render_json, verify_claim_file};
use depin_proof::reward::{Claim, claim_proof};

/// The claim file the operator's claim endpoint serves for `node` (operator http.rs).
pub(super) fn file_of(result: &EpochResult, node: &str) -> ClaimFile {
    let claim = claim_proof(result, node).expect("node is a leaf");
    ClaimFile {
        policy: "default".into(),
        epoch: claim.epoch,
        node: claim.node.clone(),
        cumulative: claim.cumulative.to_string(),
        merkle_root: hex::encode(result.merkle_root),
        leaf_count: claim.proof.leaf_count,
        index: claim.proof.index,
        path: claim.proof.path.siblings.iter().map(hex::encode).collect(),
        claim: hex::encode(claim.to_bytes()),
    }
}

/// Re-encodes the claim bytes after `f` changes the decoded claim, and mirrors the change
/// in the readable fields: a consistent forgery only the Merkle path can catch.
fn forge(file: &mut ClaimFile, f: impl FnOnce(&mut Claim)) {
    let bytes = hex::decode(&file.claim).expect("hex");
    let mut claim = Claim::from_bytes(&bytes).expect("claim");
    f(&mut claim);
    file.cumulative = claim.cumulative.to_string();
    file.path = claim.proof.path.siblings.iter().map(hex::encode).collect();
    file.claim = hex::encode(claim.to_bytes());
}

#[test]
fn an_honest_claim_verifies_against_its_root() {
    let result = closed();
    for total in &result.nodes {
        let file = file_of(&result, &total.node);
        let own = verify_claim_file(&file, None).expect("consistent");
        assert!(!own.independent_root);
        let given = verify_claim_file(&file, Some(result.merkle_root)).expect("verifies");
        assert!(given.independent_root);
        assert_eq!(
            (given.claim.node.as_str(), given.claim.cumulative),
            (total.node.as_str(), total.cumulative)
        );
        assert_eq!(given.root, result.merkle_root);
    }
}

#[test]
fn json_output_reads_back_and_uses_the_endpoint_names() {
    let file = file_of(&closed(), "fleet/sn-1");
    let json = render_json(&file);
    for key in [
        "\"merkleRoot\"",
        "\"leafCount\"",
        "\"cumulative\": \"",
        "\"claim\"",
    ] {
        assert!(json.contains(key), "{key} in {json}");
    }
    let back: ClaimFile = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, file);
    assert!(verify_claim_file(&back, Some(closed().merkle_root)).is_ok());
}

#[test]
fn each_lie_in_a_claim_file_fails_with_its_reason() {
    let result = closed();
    let root = result.merkle_root;
    let honest = file_of(&result, "fleet/sn-1");
    // The same node's real claim one epoch later: valid, but under another root.
    let next = close_epoch(&policy(), 4, &[], &result.cumulative_totals(), &[]).expect("closes");
    type Lie = fn(&mut ClaimFile);
    let lies: Vec<(&str, Lie, Option<Hash>, &str)> = vec![
        (
            "cumulative in the JSON + 1",
            |f| {
                f.cumulative = (f.cumulative.parse::<u128>().expect("int") + 1).to_string();
            },
            Some(root),
            "FieldMismatch",
        ),
        (
            "path entry in the JSON flipped",
            |f| f.path[0] = hex::encode([0u8; 32]),
            Some(root),
            "FieldMismatch",
        ),
        ("epoch in the JSON", |f| f.epoch += 1, None, "FieldMismatch"),
        (
            "node in the JSON",
            |f| f.node = "fleet/sn-2".into(),
            None,
            "FieldMismatch",
        ),
        ("index in the JSON", |f| f.index ^= 1, None, "FieldMismatch"),
        (
            "cumulative forged consistently",
            |f| forge(f, |c| c.cumulative += 1),
            Some(root),
            "BadMerklePath",
        ),
        (
            "cumulative forged, own root",
            |f| forge(f, |c| c.cumulative *= 2),
            None,
            "BadMerklePath",
        ),
        (
            "sibling forged consistently",
            |f| forge(f, |c| c.proof.path.siblings[0][0] ^= 1),
            Some(root),
            "BadMerklePath",
        ),
        (
            "root in the file replaced",
            |f| f.merkle_root = hex::encode([9u8; 32]),
            None,
            "BadMerklePath",
        ),
        ("other root given", |_| {}, Some([9u8; 32]), "OtherRoot"),
        (
            "claim bytes truncated",
            |f| f.claim.truncate(40),
            None,
            "MalformedClaim",
        ),
        (
            "claim not hex",
            |f| f.claim.replace_range(0..2, "zz"),
            None,
            "BadHex",
        ),
        (
            "path entry not 32 bytes",
            |f| f.path[1].truncate(62),
            None,
            "BadHex",
        ),
    ];
    for (lie, f, given, reason) in lies {
        let mut file = honest.clone();
        f(&mut file);
        match verify_claim_file(&file, given) {
            Err(reject) => assert_eq!(reject.reason(), reason, "{lie}: {reject}"),
            Ok(_) => panic!("{lie}: verified"),
        }
    }
    let later = file_of(&next, "fleet/sn-1");
    assert!(verify_claim_file(&later, Some(next.merkle_root)).is_ok());
    assert!(matches!(
        verify_claim_file(&later, Some(root)),
        Err(ClaimReject::OtherRoot { .. })
    ));
}

#[test]
fn a_tampered_amount_says_which_field() {
    let mut file = file_of(&closed(), "fleet/m-1");
    let real = file.cumulative.clone();
    file.cumulative = "1".into();
    let reject = verify_claim_file(&file, None).expect_err("tampered");
    assert_eq!(
        reject.to_string(),
        format!("cumulative in the file is 1 but the claim bytes say {real}")
    );
}
