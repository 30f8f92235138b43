//! GPU rules: a chain commitment (one root per stage, timed against the deadline of the
//! class the challenge was sized for) and the opening of the stage rows it was asked for.

use super::{ChallengeRules, Outcome, record, settled};
use crate::verifier::state::ledger::{Challenge, NodeLedger, State};
use depin_proof::RejectReason;
use depin_proof::entropy::ChallengeId;
use depin_proof::gpu::{
    ChainCommitContext, ChainCommitment, ChainOpenContext, ChainOpening, GpuClass,
    sample_stage_rows, verify_chain_commitment, verify_chain_opening,
};
use depin_proof::identity::PublicKey;
use depin_proof::receipt::ProofKind;
use depin_proto::wire::Filed;
use std::collections::HashSet;

/// A chain commitment received at `now_ms`: one root per stage of the class the challenge
/// was sized for, signed, in time for that class's deadline plus the capped round trip.
/// An accepted one gets its samples (nothing recorded yet); a refused one is recorded.
pub fn commitment(
    ledger: &NodeLedger,
    filed: &Filed<ChainCommitment>,
    rules: &ChallengeRules<'_>,
    now_ms: u64,
) -> Outcome {
    let id = filed.challenge;
    if let Some(outcome) = settled(ledger, id, ProofKind::Gpu) {
        return outcome;
    }
    let Some(issued) = ledger.challenges.get(&id) else {
        return unknown(id);
    };
    if let State::Committed(committed) = &issued.state {
        let (verified, request) = committed.as_ref();
        // Re-sent after a reconnect: the same samples again. Other roots: a second
        // commitment, refused unrecorded.
        return if verified.stage_roots == filed.message.stage_roots {
            Outcome::AskAgain(request.clone())
        } else {
            Outcome::Refuse {
                challenge: id,
                kind: ProofKind::Gpu,
                reason: RejectReason::Replay,
            }
        };
    }
    let Challenge::Gpu(chain) = &issued.challenge else {
        return record(
            issued,
            id,
            Err(RejectReason::UnknownChallenge),
            None,
            rules,
            now_ms,
        );
    };
    let Some(session) = issued.session_for(&filed.session_key) else {
        return record(
            issued,
            id,
            Err(RejectReason::BadSignature),
            None,
            rules,
            now_ms,
        );
    };
    let no_replays: HashSet<(PublicKey, ChallengeId)> = HashSet::new();
    let ctx = ChainCommitContext {
        class: &chain.class,
        beacon: rules.beacon,
        session,
        challenge: &chain.challenge,
        seen: &no_replays,
        measured_rtt_ms: chain.rtt_ms,
        received_at_ms: now_ms,
    };
    match verify_chain_commitment(&filed.message, &ctx) {
        Ok(verified) => {
            let request = sample_stage_rows(rules.beacon, &verified);
            Outcome::Commit {
                challenge: id,
                committed: Box::new((verified, request)),
            }
        }
        Err(reason) => record(issued, id, Err(reason), None, rules, now_ms),
    }
}

/// A chain opening received at `now_ms`: the proof's final step, always recorded once the
/// commitment was in. Paid as the class's work (2n³K int8 operations) under the class's
/// name, which the reward controller pays by.
pub fn opening(
    ledger: &NodeLedger,
    filed: &Filed<ChainOpening>,
    rules: &ChallengeRules<'_>,
    now_ms: u64,
) -> Outcome {
    let id = filed.challenge;
    if let Some(outcome) = settled(ledger, id, ProofKind::Gpu) {
        return outcome;
    }
    let Some(issued) = ledger.challenges.get(&id) else {
        return unknown(id);
    };
    let State::Committed(committed) = &issued.state else {
        return unknown(id);
    };
    let (verified, request) = committed.as_ref();
    let result = match issued.session_for(&filed.session_key) {
        None => Err(RejectReason::BadSignature),
        Some(session) => verify_chain_opening(
            &filed.message,
            &ChainOpenContext {
                session,
                commitment: verified,
                request,
            },
        ),
    };
    let class = result.as_ref().ok().map(|proof| proof.class.name.clone());
    let result = result.map(|proof| work_units(&proof.class));
    record(issued, id, result, class, rules, now_ms)
}

/// Work units of one verified chain: its int8 operations, 2n³K.
pub fn work_units(class: &GpuClass) -> u128 {
    2 * u128::from(class.n).pow(3) * u128::from(class.stages)
}

fn unknown(challenge: ChallengeId) -> Outcome {
    Outcome::Refuse {
        challenge,
        kind: ProofKind::Gpu,
        reason: RejectReason::UnknownChallenge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::decide::Shape;
    use crate::verifier::state::index::EpochWindow;
    use crate::verifier::state::ledger::{Issued, IssuedChain};
    use depin_proof::entropy::{Beacon, EntropyConfig};
    use depin_proof::gpu::{ChainChallenge, ChainWork};
    use depin_proof::identity::NodeKey;
    use depin_proof::receipt::Receipt;
    use depin_proof::session::{ServerNonce, Session};
    use depin_proof::storage::{SectorId, StorageChallenge, StorageParams};

    const ISSUED_AT: u64 = 600_000; // beacon tick 10

    /// A small class: n = 64, 2 stages, 8 samples; deadline W/P_c = 1 ms at 1 GOPS.
    fn class() -> GpuClass {
        GpuClass::resolve("unit", Some(0.001), Some(64), Some(2), Some(8)).expect("valid")
    }

    /// One chain challenge, issued and worked honestly.
    struct Case {
        storage: StorageParams,
        beacon: Beacon,
        session_key: NodeKey,
        ledger: NodeLedger,
        work: ChainWork,
        commitment: Filed<ChainCommitment>,
        now_ms: u64,
        epoch: Option<EpochWindow>,
    }

    impl Case {
        fn honest() -> Self {
            let beacon = Beacon::new([4; 32], EntropyConfig::default());
            let (node, session_key) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
            let session = Session {
                node: node.public(),
                session_key: session_key.public(),
                nonce: ServerNonce([0; 32]),
            };
            let class = class();
            let challenge = ChainChallenge::issue(&beacon, &class, ISSUED_AT, [5; 32]);
            let id = challenge.id(&node.public());
            let mut ledger = NodeLedger::default();
            let issued = IssuedChain {
                challenge,
                class,
                rtt_ms: 0,
            };
            ledger.issue(id, Challenge::Gpu(Box::new(issued)), &session, u64::MAX);
            let work = ChainWork::compute(&challenge, &node.public(), 1).expect("valid n");
            let commitment = Filed {
                challenge: id,
                session_key: session_key.public(),
                message: work.commit(&session_key),
            };
            Self {
                storage: StorageParams::default(),
                beacon,
                session_key,
                ledger,
                work,
                commitment,
                now_ms: ISSUED_AT,
                epoch: None,
            }
        }

        fn rules(&self) -> ChallengeRules<'_> {
            ChallengeRules {
                storage: &self.storage,
                beacon: &self.beacon,
                epoch: self.epoch,
            }
        }

        fn issued(&mut self) -> &mut Issued {
            self.ledger
                .challenges
                .get_mut(&self.commitment.challenge)
                .expect("issued")
        }

        fn commit(&self) -> Outcome {
            commitment(&self.ledger, &self.commitment, &self.rules(), self.now_ms)
        }

        /// Commits honestly (applying the outcome as the session does), then opens.
        fn committed(mut self) -> (Self, Filed<ChainOpening>) {
            let Outcome::Commit { committed, .. } = self.commit() else {
                panic!("the honest commitment is accepted");
            };
            let opening = Filed {
                challenge: self.commitment.challenge,
                session_key: self.session_key.public(),
                message: self.work.open(&committed.1, &self.session_key),
            };
            self.issued().state = State::Committed(committed);
            (self, opening)
        }

        fn open(&self, filed: &Filed<ChainOpening>) -> Outcome {
            opening(&self.ledger, filed, &self.rules(), self.now_ms)
        }
    }

    #[test]
    fn an_honest_commitment_is_accepted_and_each_lie_has_its_reason() {
        let close = class().close_ms();
        let deadline = class().deadline_ms(0);
        type Lie = fn(&mut Case);
        let table: &[(&str, Lie, Shape)] = &[
            ("honest", |_| {}, Shape::Committed),
            (
                "a challenge never issued",
                |c| c.commitment.challenge = ChallengeId([7; 32]),
                Shape::Refused(RejectReason::UnknownChallenge),
            ),
            (
                "already answered",
                |c| {
                    let key = NodeKey::from_seed([9; 32]);
                    let id = c.commitment.challenge;
                    let original = Receipt::sign(
                        &key,
                        key.public(),
                        id,
                        ProofKind::Gpu,
                        Ok(()),
                        true,
                        None,
                        0,
                    );
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
                "the id of a storage challenge (wrong kind)",
                |c| {
                    let storage = StorageParams::default();
                    let deadline = storage.deadline(0, 0).expect("deadline exists");
                    let challenge =
                        StorageChallenge::for_deadline(&storage, &c.beacon, SectorId(0), deadline);
                    c.issued().challenge = Challenge::Storage(challenge);
                },
                Shape::Recorded(Err(RejectReason::UnknownChallenge)),
            ),
            (
                "signed by a session it was never sent on",
                |c| c.commitment.session_key = NodeKey::from_seed([8; 32]).public(),
                Shape::Recorded(Err(RejectReason::BadSignature)),
            ),
            (
                "a stage root short (work left out)",
                |c| {
                    c.commitment.message.stage_roots.pop();
                },
                Shape::Recorded(Err(RejectReason::WrongStageCount)),
            ),
        ];
        for (name, lie, want) in table {
            let mut case = Case::honest();
            lie(&mut case);
            assert_eq!(case.commit().shape(), *want, "{name}");
        }
        // Timing rows: slower than the class allows, then after its close.
        for (at, want) in [
            (deadline, Shape::Committed),
            (deadline + 1, Shape::Recorded(Err(RejectReason::TooSlow))),
            (close + 1, Shape::Recorded(Err(RejectReason::AfterWindow))),
        ] {
            let mut case = Case::honest();
            case.now_ms = ISSUED_AT + at;
            assert_eq!(case.commit().shape(), want, "{at} ms after the challenge");
        }
    }

    #[test]
    fn a_resent_commitment_gets_the_same_samples_and_other_roots_are_a_replay() {
        let (case, _) = Case::honest().committed();
        assert_eq!(case.commit().shape(), Shape::AskedAgain);
        let mut other = case;
        other.commitment.message.stage_roots[0][0] ^= 1;
        assert_eq!(other.commit().shape(), Shape::Refused(RejectReason::Replay));
    }

    #[test]
    fn an_honest_opening_earns_2n_cubed_k_and_each_lie_has_its_reason() {
        let honest = Shape::Recorded(Ok(work_units(&class())));
        assert_eq!(work_units(&class()), 2 * 64 * 64 * 64 * 2);
        type Lie = fn(&mut Case, &mut Filed<ChainOpening>);
        let table: &[(&str, Lie, Shape)] = &[
            ("honest", |_, _| {}, honest),
            (
                "a challenge never issued",
                |_, o| o.challenge = ChallengeId([7; 32]),
                Shape::Refused(RejectReason::UnknownChallenge),
            ),
            (
                "before any accepted commitment",
                |c, _| c.issued().state = State::Open,
                Shape::Refused(RejectReason::UnknownChallenge),
            ),
            (
                "signed by a session it was never sent on",
                |_, o| o.session_key = NodeKey::from_seed([8; 32]).public(),
                Shape::Recorded(Err(RejectReason::BadSignature)),
            ),
            (
                "samples other than those asked for",
                |_, o| drop(o.message.openings.pop()),
                Shape::Recorded(Err(RejectReason::WrongRowCount)),
            ),
            (
                "valid work of an epoch already frozen",
                |c, _| {
                    c.epoch = Some(EpochWindow {
                        epoch_seconds: 1,
                        grace_seconds: 0,
                    });
                    c.now_ms = ISSUED_AT + 1_000;
                },
                Shape::Recorded(Err(RejectReason::LateForEpoch)),
            ),
        ];
        for (name, lie, want) in table {
            let (mut case, mut opening) = Case::honest().committed();
            lie(&mut case, &mut opening);
            assert_eq!(case.open(&opening).shape(), *want, "{name}");
        }
    }
}
