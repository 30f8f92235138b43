//! A reward claim as a payer receives it (`Claim::from_bytes`, the `claim` hex field of
//! the operator's claim endpoint), then `verify_claim` against a root. Decoding never
//! panics and is canonical: a decoded claim re-encodes to exactly the bytes it came from.
#![no_main]

use depin_proof::reward::{Claim, verify_claim};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first 32 bytes stand in for the root the payer trusts; the rest is the claim.
    let Some((root, bytes)) = data.split_first_chunk::<32>() else {
        return;
    };
    if let Ok(claim) = Claim::from_bytes(bytes) {
        assert_eq!(claim.to_bytes(), bytes);
        let _ = verify_claim(root, &claim);
        let _ = claim.claimable(u128::from_be_bytes(root[..16].try_into().expect("16")));
    }
});
