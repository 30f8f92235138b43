//! Claims: every leaf proves its cumulative total; any lie fails.

use super::epochs::fleet;
use super::*;

fn closed() -> EpochResult {
    let previous: CumulativeTotals = [("default/old".to_owned(), 42)].into();
    close_epoch(&policy(), 3, &fleet(), &previous, &[]).expect("closes")
}

#[test]
fn every_leaf_claims_its_cumulative_total() {
    let r = closed();
    assert_eq!(r.nodes.len(), 7);
    for total in &r.nodes {
        let claim = claim_proof(&r, &total.node).expect("leaf");
        assert_eq!((claim.epoch, claim.cumulative), (3, total.cumulative));
        assert!(verify_claim(&r.merkle_root, &claim), "{}", total.node);
        assert_eq!(Claim::from_bytes(&claim.to_bytes()), Ok(claim));
    }
    assert_eq!(
        claim_proof(&r, "default/m-1"),
        None,
        "no work, never earned"
    );
    assert_eq!(claim_proof(&r, "default/nobody"), None);
}

#[test]
fn each_lie_in_a_claim_fails() {
    let r = closed();
    let honest = claim_proof(&r, "default/gpu-1").expect("leaf");
    let lies: Vec<(&str, Claim)> = vec![
        (
            "amount + 1",
            Claim {
                cumulative: honest.cumulative + 1,
                ..honest.clone()
            },
        ),
        (
            "amount - 1",
            Claim {
                cumulative: honest.cumulative - 1,
                ..honest.clone()
            },
        ),
        (
            "other node",
            Claim {
                node: "default/gpu-2".into(),
                ..honest.clone()
            },
        ),
        (
            "other epoch",
            Claim {
                epoch: 2,
                ..honest.clone()
            },
        ),
        ("other index", {
            let mut c = honest.clone();
            c.proof.index ^= 1;
            c
        }),
        ("other leaf count", {
            let mut c = honest.clone();
            c.proof.leaf_count += 1;
            c
        }),
        ("flipped sibling", {
            let mut c = honest.clone();
            c.proof.path.siblings[0][0] ^= 1;
            c
        }),
    ];
    for (lie, claim) in lies {
        assert!(!verify_claim(&r.merkle_root, &claim), "{lie}");
    }
    // The leaf layout is part of the contract: domain, epoch, u32-prefixed id, u128 total.
    let mut bytes = REWARD_LEAF_DOMAIN.to_vec();
    bytes.extend_from_slice(&3u64.to_be_bytes());
    bytes.extend_from_slice(&13u32.to_be_bytes());
    bytes.extend_from_slice(b"default/gpu-1");
    bytes.extend_from_slice(&honest.cumulative.to_be_bytes());
    assert_eq!(
        reward_leaf(3, "default/gpu-1", honest.cumulative),
        crate::merkle::LeafHash::of(&bytes)
    );
}

#[test]
fn truncated_claim_bytes_are_malformed() {
    let bytes = claim_proof(&closed(), "default/hs-1")
        .expect("leaf")
        .to_bytes();
    for len in [0, 7, 11, 12 + 12, 12 + 12 + 15, bytes.len() - 1] {
        assert_eq!(
            Claim::from_bytes(&bytes[..len]),
            Err(crate::RejectReason::Malformed),
            "len {len}"
        );
    }
}
