//! Storage rules: a sector commitment against what the node declared, and a deadline's
//! response against the challenge issued for it.

use super::{ChallengeRules, Outcome, record, settled};
use crate::verifier::state::index::Declared;
use crate::verifier::state::ledger::{Challenge, NodeLedger};
use depin_proof::RejectReason;
use depin_proof::identity::PublicKey;
use depin_proof::receipt::ProofKind;
use depin_proof::session::KnownNodes;
use depin_proof::storage::{
    CommitmentContext, SectorCommitment, SectorLookup, SignedSectorCommitment, StorageContext,
    StorageParams, StorageResponse, VerifiedSectorCommitment, verify_sector_commitment,
    verify_storage_response,
};
use depin_proto::wire::Filed;
use std::collections::HashSet;

/// A signed sector commitment: valid, from a known node, and fitting its declared volume.
/// What happens to it next is [`admission`]'s.
pub fn commitment(
    signed: &SignedSectorCommitment,
    params: &StorageParams,
    known_nodes: &dyn KnownNodes,
    declared: &Declared,
) -> Result<VerifiedSectorCommitment, RejectReason> {
    let ctx = CommitmentContext {
        params,
        known_nodes,
    };
    let verified = verify_sector_commitment(signed, &ctx)?;
    fits_declared(declared, &verified.commitment)?;
    Ok(verified)
}

/// Where a valid commitment goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The sector's accepted root again (agents re-send commitments on every session).
    Unchanged,
    /// The root already waiting for its seal audit.
    Pending,
    /// A root to audit before it enters the ledger; `reset`: it replaces an accepted one.
    Audit {
        /// Whether an accepted root is being replaced.
        reset: bool,
    },
    /// A root too large to audit: it enters the ledger now.
    Commit {
        /// Whether an accepted root is being replaced.
        reset: bool,
    },
}

/// Where `new` goes, given the sector's accepted root (`accepted`: live, not terminated),
/// the root waiting for its audit (`pending`) and the largest audited sector.
///
/// A sector's root is fixed once accepted: challenged leaves are derived from it, so an
/// agent that could swap it freely after seeing a challenge would commit a sparse tree
/// holding just those leaves. A different root is therefore a *reset*
/// (`depin_proof::storage::StorageLedger::commit`: a failed audit, the sector's history
/// forfeited, its next pass unpaid), taken only once the new root's seal checks out. A
/// second root while one is still being audited is refused (`SectorReset`) unpunished:
/// one audit per sector at a time.
pub fn admission(
    accepted: Option<&SectorCommitment>,
    pending: Option<&SectorCommitment>,
    new: &SectorCommitment,
    audit_max_bytes: u64,
) -> Result<Admission, RejectReason> {
    if accepted == Some(new) {
        return Ok(Admission::Unchanged);
    }
    match pending {
        Some(p) if p == new => return Ok(Admission::Pending),
        Some(_) => return Err(RejectReason::SectorReset),
        None => {}
    }
    let reset = accepted.is_some();
    Ok(if new.sector_bytes > audit_max_bytes {
        Admission::Commit { reset }
    } else {
        Admission::Audit { reset }
    })
}

/// A fault declaration received on `session` at `now_ms`: for a live sector of this node,
/// in that sector's deadline, before the deadline's cutoff, signed by the session key.
pub fn fault(
    storage: &depin_proof::storage::StorageLedger,
    declaration: &depin_proof::storage::FaultDeclaration,
    rules: &ChallengeRules<'_>,
    session: &depin_proof::session::Session,
    now_ms: u64,
) -> Result<depin_proof::storage::VerifiedFault, RejectReason> {
    let no_replays: HashSet<(PublicKey, depin_proof::entropy::ChallengeId)> = HashSet::new();
    let ctx = StorageContext {
        params: rules.storage,
        beacon: rules.beacon,
        session,
        sectors: storage,
        seen: &no_replays,
        now_ms,
    };
    depin_proof::storage::verify_fault_declaration(declaration, &ctx)
}

/// A commitment must fit the node's declared volume: sectors of the declared size, and no
/// more of them than the capacity holds.
pub fn fits_declared(declared: &Declared, c: &SectorCommitment) -> Result<(), RejectReason> {
    match declared {
        Declared::Storage {
            capacity_bytes,
            sector_size_bytes,
        } => {
            if c.sector_bytes != *sector_size_bytes {
                return Err(RejectReason::WrongLeafCount);
            }
            if c.sector.0 >= capacity_bytes / (*sector_size_bytes).max(1) {
                return Err(RejectReason::UnknownSector);
            }
            Ok(())
        }
        _ => Err(RejectReason::UnknownSector),
    }
}

/// A storage response received at `now_ms`: recorded with the sector's bytes as work
/// units when it proves the deadline it names, recorded as rejected when it does not.
pub fn response(
    ledger: &NodeLedger,
    filed: &Filed<StorageResponse>,
    rules: &ChallengeRules<'_>,
    now_ms: u64,
) -> Outcome {
    let id = filed.challenge;
    if let Some(outcome) = settled(ledger, id, ProofKind::Storage) {
        return outcome;
    }
    let Some(issued) = ledger.challenges.get(&id) else {
        return Outcome::Refuse {
            challenge: id,
            kind: ProofKind::Storage,
            reason: RejectReason::UnknownChallenge,
        };
    };
    let result = (|| {
        let Challenge::Storage(challenge) = &issued.challenge else {
            return Err(RejectReason::UnknownChallenge);
        };
        let r = &filed.message;
        // The response must name the deadline and beacon draw it was issued for.
        if (r.sector, r.period, r.deadline_index, r.entropy_tick)
            != (
                challenge.sector,
                challenge.deadline.period,
                challenge.deadline.index,
                challenge.entropy.tick,
            )
        {
            return Err(RejectReason::UnknownChallenge);
        }
        let session = issued
            .session_for(&filed.session_key)
            .ok_or(RejectReason::BadSignature)?;
        let no_replays: HashSet<(PublicKey, depin_proof::entropy::ChallengeId)> = HashSet::new();
        let ctx = StorageContext {
            params: rules.storage,
            beacon: rules.beacon,
            session,
            sectors: &ledger.storage,
            seen: &no_replays, // replays are settled by the ledger above
            now_ms,
        };
        let proof = verify_storage_response(r, &ctx)?;
        let root = ledger
            .storage
            .commitment(proof.sector)
            .map(|c| c.root)
            .ok_or(RejectReason::UnknownSector)?;
        // A period is paid once, even re-issued by a restarted verifier; a sector vetting
        // after a reset proves for nothing.
        let bytes = ledger
            .storage
            .proof_bytes(proof.sector, challenge.deadline.period, &root)?;
        Ok(u128::from(bytes))
    })();
    record(issued, id, result, None, rules, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::decide::Shape;
    use crate::verifier::state::index::EpochWindow;
    use crate::verifier::state::ledger::{Issued, IssuedChain, State};
    use depin_proof::entropy::{Beacon, ChallengeId, EntropyConfig};
    use depin_proof::gpu::{ChainChallenge, GpuClass};
    use depin_proof::identity::NodeKey;
    use depin_proof::receipt::Receipt;
    use depin_proof::session::{ServerNonce, Session};
    use depin_proof::storage::{
        Deadline, SectorId, SectorTree, StorageChallenge, answer_challenge, commit_sector,
    };
    use std::io::Cursor;

    const SECTOR: SectorId = SectorId(5);
    const PERIOD: u64 = 10;

    /// One storage deadline, issued and answered honestly.
    struct Case {
        params: StorageParams,
        beacon: Beacon,
        ledger: NodeLedger,
        filed: Filed<StorageResponse>,
        deadline: Deadline,
        now_ms: u64,
        epoch: Option<EpochWindow>,
    }

    impl Case {
        fn honest() -> Self {
            // 64-byte leaves, 2-minute deadlines: small, same code paths as production.
            let params = StorageParams {
                leaf_size: 64,
                proving_period_ms: 48 * 120_000,
                ..StorageParams::default()
            };
            let beacon = Beacon::new([3; 32], EntropyConfig::default());
            let (node, session_key) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
            let session = Session {
                node: node.public(),
                session_key: session_key.public(),
                nonce: ServerNonce([0; 32]),
            };
            let data: Vec<u8> = (0..64 * 40u32).map(|i| (i % 251) as u8).collect();
            let tree: SectorTree = commit_sector(SECTOR, &data, params.leaf_size);
            let deadline = params
                .deadline(PERIOD, params.deadline_index_of(SECTOR))
                .expect("deadline exists");
            let challenge = StorageChallenge::for_deadline(&params, &beacon, SECTOR, deadline);
            let id = challenge.id(&node.public());
            let mut ledger = NodeLedger::default();
            let limit = depin_proof::storage::CapacityLimit {
                sector_bytes: tree.commitment().sector_bytes,
                capacity_bytes: u64::MAX,
            };
            let rp = depin_proof::storage::ReputationParams::default();
            ledger
                .storage
                .commit(tree.commitment(), &limit, 0, &rp)
                .expect("accepted");
            ledger.issue(id, Challenge::Storage(challenge), &session, u64::MAX);
            let response = answer_challenge(
                &tree,
                &challenge,
                &mut Cursor::new(&data),
                &node.public(),
                &session_key,
                &params,
            )
            .expect("in-memory read");
            Self {
                params,
                beacon,
                ledger,
                filed: Filed {
                    challenge: id,
                    session_key: session_key.public(),
                    message: response,
                },
                deadline,
                now_ms: deadline.opens_at_ms + 1_000,
                epoch: None,
            }
        }

        fn issued(&mut self) -> &mut Issued {
            self.ledger
                .challenges
                .get_mut(&self.filed.challenge)
                .expect("issued")
        }

        fn decide(&self) -> Outcome {
            let rules = ChallengeRules {
                storage: &self.params,
                beacon: &self.beacon,
                epoch: self.epoch,
            };
            response(&self.ledger, &self.filed, &rules, self.now_ms)
        }
    }

    fn receipt(id: ChallengeId) -> Receipt {
        let key = NodeKey::from_seed([9; 32]);
        Receipt::sign(
            &key,
            key.public(),
            id,
            ProofKind::Storage,
            Ok(()),
            true,
            None,
            0,
        )
    }

    #[test]
    fn an_honest_response_is_recorded_and_each_lie_has_its_reason() {
        let sector_bytes = u128::from(64 * 40u32);
        type Lie = fn(&mut Case);
        let table: &[(&str, Lie, Shape)] = &[
            ("honest", |_| {}, Shape::Recorded(Ok(sector_bytes))),
            (
                "honest, inside its policy's epoch",
                |c| {
                    c.epoch = Some(EpochWindow {
                        epoch_seconds: 86_400,
                        grace_seconds: 0,
                    })
                },
                Shape::Recorded(Ok(sector_bytes)),
            ),
            (
                "a challenge never issued",
                |c| c.filed.challenge = ChallengeId([7; 32]),
                Shape::Refused(RejectReason::UnknownChallenge),
            ),
            (
                "already answered",
                |c| {
                    let original = receipt(c.filed.challenge);
                    c.issued().state = State::Answered(Box::new(original));
                },
                Shape::Replayed,
            ),
            (
                "a duplicate while the first is being recorded",
                |c| drop(c.issued().begin_recording()),
                Shape::Awaiting,
            ),
            (
                "after the deadline closed",
                |c| c.now_ms = c.deadline.closes_at_ms,
                Shape::Recorded(Err(RejectReason::AfterWindow)),
            ),
            (
                "before the deadline opened",
                |c| c.now_ms = c.deadline.opens_at_ms - 1,
                Shape::Recorded(Err(RejectReason::BeforeWindow)),
            ),
            (
                "valid work of an epoch already frozen",
                |c| {
                    c.epoch = Some(EpochWindow {
                        epoch_seconds: 1,
                        grace_seconds: 0,
                    })
                },
                Shape::Recorded(Err(RejectReason::LateForEpoch)),
            ),
            (
                "names another period than it was issued for",
                |c| c.filed.message.period += 1,
                Shape::Recorded(Err(RejectReason::UnknownChallenge)),
            ),
            (
                "the id of a GPU challenge (wrong kind)",
                |c| {
                    let class = GpuClass::built_in("test").expect("built-in");
                    let challenge = ChainChallenge::issue(&c.beacon, &class, c.now_ms, [1; 32]);
                    c.issued().challenge = Challenge::Gpu(Box::new(IssuedChain {
                        challenge,
                        class,
                        rtt_ms: 0,
                    }));
                },
                Shape::Recorded(Err(RejectReason::UnknownChallenge)),
            ),
            (
                "signed by a session it was never sent on",
                |c| c.filed.session_key = NodeKey::from_seed([8; 32]).public(),
                Shape::Recorded(Err(RejectReason::BadSignature)),
            ),
            (
                "a forged leaf",
                |c| c.filed.message.openings[0].leaf[0] ^= 1,
                Shape::Recorded(Err(RejectReason::BadSignature)),
            ),
        ];
        for (name, lie, want) in table {
            let mut case = Case::honest();
            lie(&mut case);
            assert_eq!(case.decide().shape(), *want, "{name}");
        }
    }

    #[test]
    fn commitments_must_fit_the_declared_volume() {
        let declared = Declared::Storage {
            capacity_bytes: 4 * 1024,
            sector_size_bytes: 1024,
        };
        let commitment = |sector: u64, bytes: u64| SectorCommitment {
            sector: SectorId(sector),
            sector_bytes: bytes,
            leaf_size: 64,
            leaf_count: bytes / 64,
            root: [0; 32],
        };
        let table: &[(&str, SectorCommitment, &Declared, Result<(), RejectReason>)] = &[
            (
                "the last sector that fits",
                commitment(3, 1024),
                &declared,
                Ok(()),
            ),
            (
                "beyond the capacity",
                commitment(4, 1024),
                &declared,
                Err(RejectReason::UnknownSector),
            ),
            (
                "another sector size",
                commitment(0, 2048),
                &declared,
                Err(RejectReason::WrongLeafCount),
            ),
            (
                "not a storage node",
                commitment(0, 1024),
                &Declared::Other,
                Err(RejectReason::UnknownSector),
            ),
        ];
        for (name, c, declared, want) in table {
            assert_eq!(fits_declared(declared, c), *want, "{name}");
        }
    }

    #[test]
    fn an_accepted_root_is_replaced_only_by_an_audited_reset() {
        let commitment = |root: u8, leaf_count: u64| SectorCommitment {
            sector: SectorId(0),
            sector_bytes: 1024,
            leaf_size: 64,
            leaf_count,
            root: [root; 32],
        };
        let accepted = commitment(1, 16);
        let pending = commitment(3, 16);
        type Row<'a> = (
            &'a str,
            Option<&'a SectorCommitment>,
            Option<&'a SectorCommitment>,
            SectorCommitment,
            u64,
            Result<Admission, RejectReason>,
        );
        let table: &[Row<'_>] = &[
            (
                "a first commitment",
                None,
                None,
                commitment(1, 16),
                1024,
                Ok(Admission::Audit { reset: false }),
            ),
            (
                "the same one re-sent on a new session",
                Some(&accepted),
                None,
                commitment(1, 16),
                1024,
                Ok(Admission::Unchanged),
            ),
            (
                "the root under audit re-sent",
                None,
                Some(&pending),
                commitment(3, 16),
                1024,
                Ok(Admission::Pending),
            ),
            (
                "too large to audit",
                None,
                None,
                commitment(1, 16),
                512,
                Ok(Admission::Commit { reset: false }),
            ),
            // Lies: each replaces the accepted root only as an audited, penalised reset.
            (
                "a new root after a challenge (sparse tree)",
                Some(&accepted),
                None,
                commitment(2, 16),
                1024,
                Ok(Admission::Audit { reset: true }),
            ),
            (
                "another leaf count",
                Some(&accepted),
                None,
                commitment(1, 8),
                1024,
                Ok(Admission::Audit { reset: true }),
            ),
            (
                "a new root, too large to audit",
                Some(&accepted),
                None,
                commitment(2, 16),
                512,
                Ok(Admission::Commit { reset: true }),
            ),
            (
                "a second root while one is audited",
                Some(&accepted),
                Some(&pending),
                commitment(4, 16),
                1024,
                Err(RejectReason::SectorReset),
            ),
        ];
        for (name, old, waiting, new, max, want) in table {
            assert_eq!(admission(*old, *waiting, new, *max), *want, "{name}");
        }
    }
}
