//! Merkle paths of a storage response, through the verifier's own checks. An honest node's
//! response to a real challenge (signed: the signature covers the leaves, not the paths) has
//! its paths edited by the fuzzer on the wire, then goes through `storage_response_from_wire`
//! and `verify_storage_response` as the verifier runs them. A path must be refused unless it
//! is byte for byte the honest one: each (tree, index) has exactly one valid path.
#![no_main]

use std::collections::BTreeSet;
use std::io::Cursor;
use std::sync::OnceLock;

use depin_proof::RejectReason;
use depin_proof::entropy::{Beacon, ChallengeId, EntropyConfig};
use depin_proof::identity::NodeKey;
use depin_proof::session::{ServerNonce, Session};
use depin_proof::storage::{
    SectorCommitment, SectorId, StorageChallenge, StorageContext, StorageParams, answer_challenge,
    commit_sector, verify_storage_response,
};
use depin_proto::v1;
use depin_proto::wire::{Filed, storage_response_from_wire, storage_response_to_wire};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const SECTOR: SectorId = SectorId(5);

struct Honest {
    params: StorageParams,
    beacon: Beacon,
    session: Session,
    sectors: std::collections::BTreeMap<SectorId, SectorCommitment>,
    now_ms: u64,
    wire: v1::StorageResponse,
}

fn honest() -> &'static Honest {
    static HONEST: OnceLock<Honest> = OnceLock::new();
    HONEST.get_or_init(|| {
        // 37 full leaves and a short last one: an odd, promoted node on several levels.
        let params = StorageParams {
            leaf_size: 64,
            challenges_per_deadline: 8,
            proving_period_ms: 48 * 120_000,
            ..StorageParams::default()
        };
        let (node, session_key) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
        let session = Session {
            node: node.public(),
            session_key: session_key.public(),
            nonce: ServerNonce([0; 32]),
        };
        let data: Vec<u8> = (0..37 * 64 + 5).map(|i: u32| (i * 7 + 3) as u8).collect();
        let tree = commit_sector(SECTOR, &data, params.leaf_size);
        let deadline = params
            .deadline(10, params.deadline_index_of(SECTOR))
            .expect("deadline");
        let beacon = Beacon::new([9; 32], EntropyConfig::default());
        let challenge = StorageChallenge::for_deadline(&params, &beacon, SECTOR, deadline);
        let response = answer_challenge(
            &tree,
            &challenge,
            &mut Cursor::new(&data),
            &node.public(),
            &session_key,
            &params,
        )
        .expect("in memory");
        let wire = storage_response_to_wire(&Filed {
            challenge: ChallengeId([3; 32]),
            session_key: session_key.public(),
            message: response,
        });
        let honest = Honest {
            params,
            beacon,
            session,
            sectors: [(SECTOR, *tree.commitment())].into_iter().collect(),
            now_ms: deadline.opens_at_ms + 1_000,
            wire,
        };
        assert_eq!(
            verify(&honest, honest.wire.clone()),
            Ok(()),
            "honest fixture"
        );
        honest
    })
}

fn verify(h: &Honest, wire: v1::StorageResponse) -> Result<(), RejectReason> {
    let filed = storage_response_from_wire(wire)?;
    let seen = BTreeSet::new();
    let ctx = StorageContext {
        params: &h.params,
        beacon: &h.beacon,
        session: &h.session,
        sectors: &h.sectors,
        seen: &seen,
        now_ms: h.now_ms,
    };
    verify_storage_response(&filed.message, &ctx).map(|_| ())
}

/// One change to one opening's path bytes.
#[derive(Debug, Arbitrary)]
enum Edit {
    Replace(Vec<u8>),
    Flip {
        at: u16,
        mask: u8,
    },
    Truncate(u16),
    Append(Vec<u8>),
    /// Moves one 32-byte sibling to another position.
    Move {
        from: u8,
        to: u8,
    },
    /// Uses another opening's path.
    Borrow(u8),
}

fuzz_target!(|edits: Vec<(u8, Edit)>| {
    let h = honest();
    let mut wire = h.wire.clone();
    let k = wire.openings.len();
    for (which, edit) in edits {
        let which = usize::from(which) % k;
        let path = &mut wire.openings[which].path;
        match edit {
            Edit::Replace(bytes) => *path = bytes,
            Edit::Flip { at, mask } => {
                if let Some(b) = path.get_mut(usize::from(at)) {
                    *b ^= mask;
                }
            }
            Edit::Truncate(len) => path.truncate(usize::from(len)),
            Edit::Append(bytes) => path.extend_from_slice(&bytes),
            Edit::Move { from, to } => {
                let n = path.len() / 32;
                if n > 0 && path.len() % 32 == 0 {
                    let (from, to) = (usize::from(from) % n, usize::from(to) % n);
                    let sibling: Vec<u8> = path.drain(from * 32..from * 32 + 32).collect();
                    path.splice(to * 32..to * 32, sibling);
                }
            }
            Edit::Borrow(other) => {
                wire.openings[which].path = h.wire.openings[usize::from(other) % k].path.clone()
            }
        }
    }
    let unchanged = wire
        .openings
        .iter()
        .zip(&h.wire.openings)
        .all(|(a, b)| a.path == b.path);
    let verdict = verify(h, wire);
    if unchanged {
        assert_eq!(verdict, Ok(()));
    } else {
        assert!(
            matches!(
                verdict,
                Err(RejectReason::BadMerklePath | RejectReason::Malformed)
            ),
            "{verdict:?}"
        );
    }
});
