use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Cursor;

use super::messages::STORAGE_RESPONSE_DOMAIN;
use super::*;
use crate::entropy::{Beacon, ChallengeId, EntropyConfig};
use crate::identity::{NodeKey, PublicKey};
use crate::reject::RejectReason;
use crate::session::Session;

type Seen = BTreeSet<(PublicKey, ChallengeId)>;

const SECTOR: SectorId = SectorId(5);
const PERIOD: u64 = 10;

fn params() -> StorageParams {
    // 2-minute deadlines, 64-byte leaves: small and fast, same code paths as production.
    StorageParams {
        leaf_size: 64,
        proving_period_ms: 48 * 120_000,
        ..StorageParams::default()
    }
}

fn sector_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&[seed])
        .finalize_xof()
        .fill(&mut out);
    out
}

struct Fixture {
    params: StorageParams,
    beacon: Beacon,
    node: NodeKey,
    session_key: NodeKey,
    session: Session,
    data: Vec<u8>,
    tree: SectorTree,
    sectors: BTreeMap<SectorId, SectorCommitment>,
    deadline: Deadline,
}

impl Fixture {
    fn new(len: usize, seed: u8) -> Self {
        let params = params();
        let node = NodeKey::from_seed([1; 32]);
        let session_key = NodeKey::from_seed([2; 32]);
        let session = Session {
            node: node.public(),
            session_key: session_key.public(),
            nonce: crate::session::ServerNonce([0; 32]),
        };
        let data = sector_bytes(len, seed);
        let tree = commit_sector(SECTOR, &data, params.leaf_size);
        let sectors = [(SECTOR, *tree.commitment())].into_iter().collect();
        let deadline = params
            .deadline(PERIOD, params.deadline_index_of(SECTOR))
            .expect("deadline exists");
        let beacon = Beacon::new([seed; 32], EntropyConfig::default());
        Self {
            params,
            beacon,
            node,
            session_key,
            session,
            data,
            tree,
            sectors,
            deadline,
        }
    }

    fn challenge(&self) -> StorageChallenge {
        StorageChallenge::for_deadline(&self.params, &self.beacon, SECTOR, self.deadline)
    }

    fn respond(&self) -> StorageResponse {
        let mut source = Cursor::new(&self.data);
        answer_challenge(
            &self.tree,
            &self.challenge(),
            &mut source,
            &self.node.public(),
            &self.session_key,
            &self.params,
        )
        .expect("in-memory read")
    }

    fn verify_at(
        &self,
        response: &StorageResponse,
        now_ms: u64,
        seen: &Seen,
    ) -> Result<VerifiedStorageProof, RejectReason> {
        let ctx = StorageContext {
            params: &self.params,
            beacon: &self.beacon,
            session: &self.session,
            sectors: &self.sectors,
            seen,
            now_ms,
        };
        verify_storage_response(response, &ctx)
    }

    fn verify(&self, response: &StorageResponse) -> Result<VerifiedStorageProof, RejectReason> {
        self.verify_at(
            response,
            self.deadline.opens_at_ms + 1_000,
            &BTreeSet::new(),
        )
    }

    /// Re-signs after a lie, as a cheating node would, so only the lie itself is judged.
    fn resign(&self, mut response: StorageResponse) -> StorageResponse {
        let challenge = StorageChallenge {
            entropy: self.beacon.entropy(response.entropy_tick),
            ..self.challenge()
        };
        let indices = challenged_leaves(
            &challenge.id(&self.node.public()),
            self.tree.commitment(),
            self.params.challenges_per_deadline,
        );
        let hashes: Vec<_> = indices
            .iter()
            .zip(&response.openings)
            .map(|(i, o)| leaf_hash(*i, &o.leaf))
            .collect();
        response.signature = self
            .session_key
            .sign(STORAGE_RESPONSE_DOMAIN, &response.body(&hashes));
        response
    }
}

#[test]
fn honest_response_passes_and_each_lie_has_its_reason() {
    let f = Fixture::new(64 * 100 + 17, 1);
    let honest = f.respond();
    let proof = f.verify(&honest).expect("honest response");
    assert_eq!(
        (proof.sector, proof.deadline, proof.leaves_checked),
        (SECTOR, f.deadline, 46)
    );

    let mut tampered_leaf = honest.clone();
    tampered_leaf.openings[3].leaf[0] ^= 1;
    let mut short_leaf = honest.clone();
    short_leaf.openings[0].leaf.pop();
    let mut dropped = honest.clone();
    dropped.openings.pop();
    let mut swapped_path = honest.clone();
    swapped_path.openings[0].path = f.tree.path(0).expect("leaf 0");
    swapped_path.openings[0].leaf = f.data[..64].to_vec();
    let tick = honest.entropy_tick;
    let other = NodeKey::from_seed([9; 32]);
    let mut foreign_signature = honest.clone();
    foreign_signature.signature = other.sign(STORAGE_RESPONSE_DOMAIN, b"anything");

    let table: Vec<(&str, StorageResponse, RejectReason)> = vec![
        (
            "sector never committed",
            f.resign(StorageResponse {
                sector: SectorId(6),
                ..honest.clone()
            }),
            RejectReason::UnknownSector,
        ),
        (
            "sector not due in that deadline",
            f.resign(StorageResponse {
                deadline_index: 4,
                ..honest.clone()
            }),
            RejectReason::WrongDeadline,
        ),
        (
            "deadline index out of range",
            f.resign(StorageResponse {
                deadline_index: 53,
                ..honest.clone()
            }),
            RejectReason::WrongDeadline,
        ),
        (
            "answer for last period",
            f.resign(StorageResponse {
                period: PERIOD - 1,
                ..honest.clone()
            }),
            RejectReason::AfterWindow,
        ),
        (
            "answer for next period",
            f.resign(StorageResponse {
                period: PERIOD + 1,
                ..honest.clone()
            }),
            RejectReason::BeforeWindow,
        ),
        (
            "older beacon value",
            f.resign(StorageResponse {
                entropy_tick: tick - 1,
                ..honest.clone()
            }),
            RejectReason::ExpiredEntropy,
        ),
        (
            "later beacon value",
            f.resign(StorageResponse {
                entropy_tick: tick + 1,
                ..honest.clone()
            }),
            RejectReason::UnknownEntropy,
        ),
        (
            "one opening dropped",
            f.resign(dropped),
            RejectReason::WrongLeafCount,
        ),
        (
            "leaf truncated",
            f.resign(short_leaf),
            RejectReason::WrongLeafSize,
        ),
        (
            "leaf bytes changed",
            f.resign(tampered_leaf.clone()),
            RejectReason::BadMerklePath,
        ),
        (
            "another leaf's path",
            f.resign(swapped_path),
            RejectReason::BadMerklePath,
        ),
        (
            "leaf changed after signing",
            tampered_leaf,
            RejectReason::BadSignature,
        ),
        (
            "signed by another key",
            foreign_signature,
            RejectReason::BadSignature,
        ),
    ];
    for (name, response, want) in table {
        assert_eq!(f.verify(&response), Err(want), "{name}");
    }
}

#[test]
fn timing_and_replay_rules() {
    let f = Fixture::new(64 * 100 + 17, 2);
    let honest = f.respond();
    let seen: BTreeSet<_> = [(f.node.public(), f.challenge().id(&f.node.public()))]
        .into_iter()
        .collect();
    let none = BTreeSet::new();
    let table: &[(&str, u64, &Seen, Result<(), RejectReason>)] = &[
        ("at the opening", f.deadline.opens_at_ms, &none, Ok(())),
        (
            "last millisecond",
            f.deadline.closes_at_ms - 1,
            &none,
            Ok(()),
        ),
        (
            "before the window",
            f.deadline.opens_at_ms - 1,
            &none,
            Err(RejectReason::BeforeWindow),
        ),
        (
            "at the close",
            f.deadline.closes_at_ms,
            &none,
            Err(RejectReason::AfterWindow),
        ),
        (
            "answered twice",
            f.deadline.opens_at_ms + 5,
            &seen,
            Err(RejectReason::Replay),
        ),
    ];
    for (name, now, seen, want) in table {
        assert_eq!(
            f.verify_at(&honest, *now, seen).map(|_| ()),
            *want,
            "{name}"
        );
    }
}

#[test]
fn entropy_not_yet_issued_is_unknown() {
    // A deadline opening mid-tick draws from the next tick; before it is issued nobody,
    // the node included, can know the challenged leaves.
    let mut f = Fixture::new(64 * 10, 3);
    f.params.proving_period_ms = 48 * 90_000;
    f.deadline = f.params.deadline(PERIOD, 5).expect("exists");
    assert_ne!(f.deadline.opens_at_ms % 60_000, 0);
    let response = f.respond();
    assert_eq!(
        f.verify_at(&response, f.deadline.opens_at_ms, &BTreeSet::new())
            .map(|_| ()),
        Err(RejectReason::UnknownEntropy)
    );
    let issued = f.beacon.config().issued_at_ms(response.entropy_tick);
    assert!(f.verify_at(&response, issued, &BTreeSet::new()).is_ok());
}

#[test]
fn commitment_checks() {
    let f = Fixture::new(64 * 100 + 17, 4);
    let known: HashSet<PublicKey> = [f.node.public()].into_iter().collect();
    let ctx = CommitmentContext {
        params: &f.params,
        known_nodes: &known,
    };
    let honest = f.tree.sign(&f.node);
    assert_eq!(
        verify_sector_commitment(&honest, &ctx).map(|v| v.commitment),
        Ok(*f.tree.commitment())
    );

    let stranger = NodeKey::from_seed([8; 32]);
    let resign = |c: SectorCommitment| SignedSectorCommitment {
        node: f.node.public(),
        commitment: c,
        signature: f.node.sign(
            super::messages::SECTOR_COMMITMENT_DOMAIN,
            &c.body(&f.node.public()),
        ),
    };
    let c = *f.tree.commitment();
    let table: Vec<(&str, SignedSectorCommitment, RejectReason)> = vec![
        (
            "unregistered node",
            f.tree.sign(&stranger),
            RejectReason::UnknownNode,
        ),
        (
            "other leaf size",
            resign(SectorCommitment { leaf_size: 32, ..c }),
            RejectReason::WrongLeafSize,
        ),
        (
            "count does not fit size",
            resign(SectorCommitment {
                leaf_count: 99,
                ..c
            }),
            RejectReason::WrongLeafCount,
        ),
        (
            "empty sector",
            resign(SectorCommitment {
                sector_bytes: 0,
                leaf_count: 0,
                ..c
            }),
            RejectReason::WrongLeafCount,
        ),
        (
            "root swapped after signing",
            SignedSectorCommitment {
                commitment: SectorCommitment { root: [0; 32], ..c },
                ..honest.clone()
            },
            RejectReason::BadSignature,
        ),
    ];
    for (name, signed, want) in table {
        assert_eq!(
            verify_sector_commitment(&signed, &ctx).map(|_| ()),
            Err(want),
            "{name}"
        );
    }
}

#[test]
fn fault_declaration_checks() {
    let f = Fixture::new(640, 5);
    let cutoff = f.deadline.opens_at_ms - f.params.fault_cutoff_ms;
    let declare = |sector, index| FaultDeclaration::sign(&f.session_key, sector, PERIOD, index);
    let mut forged = declare(SECTOR, 5);
    forged.signature[0] ^= 1;
    let table: Vec<(&str, FaultDeclaration, u64, Result<(), RejectReason>)> = vec![
        ("at the cutoff", declare(SECTOR, 5), cutoff, Ok(())),
        (
            "after the cutoff",
            declare(SECTOR, 5),
            cutoff + 1,
            Err(RejectReason::LateFaultDeclaration),
        ),
        (
            "during the window",
            declare(SECTOR, 5),
            f.deadline.opens_at_ms + 1,
            Err(RejectReason::LateFaultDeclaration),
        ),
        (
            "unknown sector",
            declare(SectorId(7), 7),
            cutoff,
            Err(RejectReason::UnknownSector),
        ),
        (
            "wrong deadline",
            declare(SECTOR, 6),
            cutoff,
            Err(RejectReason::WrongDeadline),
        ),
        (
            "bad signature",
            forged,
            cutoff,
            Err(RejectReason::BadSignature),
        ),
    ];
    for (name, declaration, now_ms, want) in table {
        let ctx = StorageContext {
            params: &f.params,
            beacon: &f.beacon,
            session: &f.session,
            sectors: &f.sectors,
            seen: &BTreeSet::new(),
            now_ms,
        };
        assert_eq!(
            verify_fault_declaration(&declaration, &ctx).map(|_| ()),
            want,
            "{name}"
        );
    }
}

#[test]
fn streaming_and_slice_commitments_agree_and_are_deterministic() {
    let data = sector_bytes(64 * 33 + 5, 6);
    let from_slice = commit_sector(SECTOR, &data, 64);
    let from_reader = commit_sector_from(SECTOR, Cursor::new(&data), 64).expect("in-memory read");
    assert_eq!(from_slice.commitment(), from_reader.commitment());
    assert_eq!(from_slice.commitment().leaf_count, 34);
    let f = Fixture::new(64 * 100 + 17, 7);
    let (a, b) = (f.respond(), f.respond());
    assert_eq!(a, b);
    let indices = challenged_leaves(&f.challenge().id(&f.node.public()), f.tree.commitment(), 46);
    assert_eq!(a.signing_bytes(&indices), b.signing_bytes(&indices));
}

mod detection;
mod sealed;
