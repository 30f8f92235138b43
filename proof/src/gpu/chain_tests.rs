//! Rule tables for the chain proof: one honest case, then one lie per row.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::chain::{mix, partner};
use super::chain_messages::{CHAIN_COMMITMENT_DOMAIN, CHAIN_OPENING_DOMAIN};
use super::*;
use crate::entropy::{Beacon, ChallengeId, EntropyConfig};
use crate::identity::{NodeKey, PublicKey};
use crate::reject::RejectReason;
use crate::session::{ServerNonce, Session};

const ISSUED_AT: u64 = 600_000; // beacon tick 10

struct Fixture {
    class: GpuClass,
    beacon: Beacon,
    node: NodeKey,
    session_key: NodeKey,
    session: Session,
    challenge: ChainChallenge,
}

/// A class sized so its deadline is 100 ms of compute (for timing rows).
fn class(n: u32, stages: u32, samples: u32) -> GpuClass {
    let ops = chain_ops(n, stages);
    GpuClass {
        name: "test".into(),
        min_tops: ops / 0.1 / 1e12,
        n,
        stages,
        samples,
        close_grace_ms: CLOSE_GRACE_MS,
    }
}

impl Fixture {
    fn new(class: GpuClass, nonce: u8) -> Self {
        let beacon = Beacon::new([4; 32], EntropyConfig::default());
        let node = NodeKey::from_seed([1; 32]);
        let session_key = NodeKey::from_seed([2; 32]);
        let session = Session {
            node: node.public(),
            session_key: session_key.public(),
            nonce: ServerNonce([0; 32]),
        };
        let challenge = ChainChallenge::issue(&beacon, &class, ISSUED_AT, [nonce; 32]);
        Self {
            class,
            beacon,
            node,
            session_key,
            session,
            challenge,
        }
    }

    fn work(&self) -> ChainWork {
        ChainWork::compute(&self.challenge, &self.node.public(), 2).expect("valid class")
    }

    fn commit_at(
        &self,
        commitment: &ChainCommitment,
        received_at_ms: u64,
        rtt_ms: u64,
        seen: &BTreeSet<(PublicKey, ChallengeId)>,
    ) -> Result<VerifiedChainCommitment, RejectReason> {
        verify_chain_commitment(
            commitment,
            &ChainCommitContext {
                class: &self.class,
                beacon: &self.beacon,
                session: &self.session,
                challenge: &self.challenge,
                seen,
                measured_rtt_ms: rtt_ms,
                received_at_ms,
            },
        )
    }

    fn commit(
        &self,
        commitment: &ChainCommitment,
    ) -> Result<VerifiedChainCommitment, RejectReason> {
        self.commit_at(commitment, ISSUED_AT + 50, 0, &BTreeSet::new())
    }

    fn open(
        &self,
        verified: &VerifiedChainCommitment,
        request: &SampleRequest,
        opening: &ChainOpening,
    ) -> Result<VerifiedChainProof, RejectReason> {
        verify_chain_opening(
            opening,
            &ChainOpenContext {
                session: &self.session,
                commitment: verified,
                request,
            },
        )
    }

    fn resign_commitment(&self, mut c: ChainCommitment) -> ChainCommitment {
        c.signature = self.session_key.sign(CHAIN_COMMITMENT_DOMAIN, &c.body());
        c
    }

    fn resign_opening(&self, mut o: ChainOpening) -> ChainOpening {
        o.signature = self.session_key.sign(CHAIN_OPENING_DOMAIN, &o.body());
        o
    }
}

/// The chain by the definition in `chain`'s module docs, with the textbook product:
/// the reference a GPU backend must match bit for bit.
fn reference_chain(seed: &ChallengeId, n: usize, stages: u32) -> Vec<Vec<i8>> {
    let (mut d, b) = derive_matrices(seed, n);
    let mut out = Vec::new();
    for stage in 1..=stages {
        let c = matmul_naive(&d, &b, n).expect("square");
        let shift = (stage - 1) % (n.trailing_zeros());
        d = (0..n * n)
            .map(|cell| {
                let (i, j) = (cell / n, cell % n);
                let p = i ^ (1 << shift);
                let x = c[i * n + j] + c[p * n + j];
                let byte = (x ^ (x >> 11)) as u8 as i8;
                if byte == i8::MIN { 0 } else { byte }
            })
            .collect();
        out.push(d.clone());
    }
    out
}

#[test]
fn honest_chain_passes_and_matches_the_reference_arithmetic() {
    let f = Fixture::new(class(32, 6, 16), 1);
    let work = f.work();
    let id = f.challenge.id(&f.node.public());
    let reference = reference_chain(&id, 32, 6);
    for (k, want) in (1..).zip(&reference) {
        assert_eq!(work.stage(k).expect("stage"), want.as_slice(), "stage {k}");
    }
    let rebuilt = ChainWork::from_stages(id, 32, reference).expect("stages");
    assert_eq!(rebuilt.stage_roots(), work.stage_roots());

    let verified = f
        .commit(&work.commit(&f.session_key))
        .expect("honest commitment");
    assert_eq!(verified.class, f.class);
    let request = sample_stage_rows(&f.beacon, &verified);
    assert_eq!(request.samples.len(), 16);
    let proof = f
        .open(&verified, &request, &work.open(&request, &f.session_key))
        .expect("honest opening");
    assert_eq!(proof.rows_checked, 16);
}

#[test]
fn stage_one_samples_are_checked_against_the_seed() {
    // One stage only: every sample is a stage-1 row computed from rows of A.
    let f = Fixture::new(class(16, 1, 8), 2);
    let work = f.work();
    let verified = f.commit(&work.commit(&f.session_key)).expect("commit");
    let request = sample_stage_rows(&f.beacon, &verified);
    assert!(request.samples.iter().all(|s| s.stage == 1));
    let mut opening = work.open(&request, &f.session_key);
    f.open(&verified, &request, &opening).expect("honest");
    // Garbage committed as stage 1 (consistent tree, wrong values) is caught.
    let id = f.challenge.id(&f.node.public());
    let fake = ChainWork::from_stages(id, 16, vec![vec![3; 256]]).expect("stage");
    let verified = f.commit(&fake.commit(&f.session_key)).expect("commit");
    let request = sample_stage_rows(&f.beacon, &verified);
    opening = fake.open(&request, &f.session_key);
    assert_eq!(
        f.open(&verified, &request, &opening),
        Err(RejectReason::WrongRow)
    );
}

#[test]
fn commitment_lies_each_fail_for_their_reason() {
    let f = Fixture::new(class(16, 4, 8), 3);
    let work = f.work();
    let honest = work.commit(&f.session_key);
    let none = BTreeSet::new();
    let seen: BTreeSet<_> = [(f.node.public(), honest.challenge)].into();
    let close = f.class.close_ms();
    let deadline = f.class.deadline_ms(0);
    type Row<'a> = (
        &'a str,
        ChainCommitment,
        u64,
        u64,
        &'a BTreeSet<(PublicKey, ChallengeId)>,
        RejectReason,
    );
    let rows: Vec<Row<'_>> = vec![
        (
            "unknown challenge",
            f.resign_commitment(ChainCommitment {
                challenge: ChallengeId([9; 32]),
                ..honest.clone()
            }),
            50,
            0,
            &none,
            RejectReason::UnknownChallenge,
        ),
        (
            "replayed",
            honest.clone(),
            50,
            0,
            &seen,
            RejectReason::Replay,
        ),
        (
            "before issue",
            honest.clone(),
            0,
            0,
            &none,
            RejectReason::BeforeWindow,
        ),
        (
            "late commitment",
            honest.clone(),
            close + 1,
            0,
            &none,
            RejectReason::AfterWindow,
        ),
        (
            "TooSlow for the claimed class",
            honest.clone(),
            deadline + 1,
            0,
            &none,
            RejectReason::TooSlow,
        ),
        (
            "RTT inflated past its cap",
            honest.clone(),
            deadline + deadline / 10,
            10_000,
            &none,
            RejectReason::TooSlow,
        ),
        (
            "wrong n",
            f.resign_commitment(ChainCommitment {
                n: 32,
                ..honest.clone()
            }),
            50,
            0,
            &none,
            RejectReason::WrongMatrixSize,
        ),
        (
            "a stage root missing",
            f.resign_commitment(ChainCommitment {
                stage_roots: honest.stage_roots[1..].to_vec(),
                ..honest.clone()
            }),
            50,
            0,
            &none,
            RejectReason::WrongStageCount,
        ),
        (
            "not signed by the session",
            ChainCommitment {
                signature: [0; 64],
                ..honest.clone()
            },
            50,
            0,
            &none,
            RejectReason::BadSignature,
        ),
    ];
    // "before issue" needs an arrival before the issue time.
    for (name, commitment, after, rtt, seen, want) in rows {
        let at = if name == "before issue" {
            ISSUED_AT - 1
        } else {
            ISSUED_AT + after
        };
        assert_eq!(f.commit_at(&commitment, at, rtt, seen), Err(want), "{name}");
    }
    // The honest commitment at its deadline, with a measured RTT inside the cap, passes.
    let rtt = f.class.compute_ms() / MAX_RTT_SHARE;
    f.commit_at(&honest, ISSUED_AT + f.class.deadline_ms(rtt), rtt, &none)
        .expect("honest at its deadline");
}

#[test]
fn opening_lies_each_fail_for_their_reason() {
    let f = Fixture::new(class(16, 4, 12), 4);
    let work = f.work();
    let verified = f.commit(&work.commit(&f.session_key)).expect("commit");
    let request = sample_stage_rows(&f.beacon, &verified);
    let honest = work.open(&request, &f.session_key);
    f.open(&verified, &request, &honest).expect("honest");
    let later = request
        .samples
        .iter()
        .position(|s| s.stage > 1)
        .expect("a sample past stage 1");
    let edit = |change: &dyn Fn(&mut ChainOpening)| {
        let mut o = honest.clone();
        change(&mut o);
        f.resign_opening(o)
    };
    let stage = request.samples[later].stage;
    let other_row = (request.samples[later].index + 3) % 16;
    let rows: Vec<(&str, ChainOpening, RejectReason)> = vec![
        (
            "wrong row (path re-made for the lie is not the committed one)",
            edit(&|o| o.openings[later].row.row[0] ^= 1),
            RejectReason::BadMerklePath,
        ),
        (
            "opening for an unsampled row",
            edit(&|o| {
                o.openings[later] = work_open_one(&work, stage, other_row);
            }),
            RejectReason::WrongRowCount,
        ),
        (
            "one sample left out",
            edit(&|o| {
                o.openings.pop();
            }),
            RejectReason::WrongRowCount,
        ),
        (
            "wrong partner row",
            edit(&|o| {
                let swap = work_opened(&work, stage - 1, other_row);
                o.openings[later].inputs[1] = swap;
            }),
            RejectReason::WrongPartnerRow,
        ),
        (
            "inputs left out",
            edit(&|o| o.openings[later].inputs.clear()),
            RejectReason::WrongPartnerRow,
        ),
        (
            "input row edited (inconsistent with R_k-1)",
            edit(&|o| o.openings[later].inputs[0].row[1] ^= 2),
            RejectReason::BadMerklePath,
        ),
        (
            "short row",
            edit(&|o| {
                o.openings[later].row.row.pop();
            }),
            RejectReason::WrongRow,
        ),
        (
            "not signed by the session",
            ChainOpening {
                signature: [0; 64],
                ..honest.clone()
            },
            RejectReason::BadSignature,
        ),
        (
            "other challenge",
            edit(&|o| o.challenge = ChallengeId([5; 32])),
            RejectReason::UnknownChallenge,
        ),
    ];
    for (name, opening, want) in rows {
        assert_eq!(f.open(&verified, &request, &opening), Err(want), "{name}");
    }
}

/// The honest opening of (stage, index), for building lies from true parts.
fn work_open_one(work: &ChainWork, stage: u32, index: u32) -> StageOpening {
    let request = SampleRequest {
        challenge: work.challenge(),
        samples: vec![Sample { stage, index }],
    };
    let key = NodeKey::from_seed([2; 32]);
    work.open(&request, &key).openings.remove(0)
}

/// Row `index` of `stage` with its true path.
fn work_opened(work: &ChainWork, stage: u32, index: u32) -> OpenedRow {
    work_open_one(work, stage, index).row
}

#[test]
fn rows_consistent_with_a_lying_stage_are_caught() {
    // The prover commits true roots for stages 1..3 but a stage 4 computed from a
    // tampered stage 3 (one row changed): the stage-4 rows that depend on it are opened
    // with honest-looking paths, yet their recomputation from R_3's rows differs.
    let f = Fixture::new(class(16, 4, 64), 5);
    let work = f.work();
    let id = f.challenge.id(&f.node.public());
    let mut stages: Vec<Vec<i8>> = (1..=4)
        .map(|k| work.stage(k).expect("stage").to_vec())
        .collect();
    let mut tampered = stages[2].clone();
    tampered[0] ^= 7;
    let b = derive_b(&id, 16);
    stages[3] = chain::next_stage(&tampered, &b, 16, 4, 1).expect("stage");
    let lying = ChainWork::from_stages(id, 16, stages).expect("stages");
    let verified = f
        .commit(&lying.commit(&f.session_key))
        .expect("roots are just hashes");
    let request = sample_stage_rows(&f.beacon, &verified);
    let hits_bad_rows = request
        .samples
        .iter()
        .any(|s| s.stage == 4 && (s.index == 0 || partner(4, s.index, 16) == 0));
    let result = f.open(&verified, &request, &lying.open(&request, &f.session_key));
    if hits_bad_rows {
        assert_eq!(result, Err(RejectReason::WrongRow));
    } else {
        result.expect("the sample missed the two bad rows");
    }
}

/// A chain with a fraction `f` of stage rows replaced by garbage passes S samples with
/// probability (1 − f)^S; measured over many seeds.
#[test]
fn fraction_of_bad_rows_survives_with_one_minus_f_to_the_s() {
    let (n, stages, samples, trials) = (16u32, 2u32, 3u32, 240u32);
    let mut passed = 0u32;
    for trial in 0..trials {
        let mut f = Fixture::new(class(n, stages, samples), 0);
        f.challenge.nonce[..4].copy_from_slice(&trial.to_be_bytes());
        let work = f.work();
        let id = f.challenge.id(&f.node.public());
        // Half the rows of the last stage are garbage: f = 1/4 of all rows.
        let mut last = work.stage(2).expect("stage").to_vec();
        for row in last.chunks_mut(n as usize).step_by(2) {
            row.fill(1);
        }
        let first = work.stage(1).expect("stage").to_vec();
        let lying = ChainWork::from_stages(id, n, vec![first, last]).expect("stages");
        let verified = f.commit(&lying.commit(&f.session_key)).expect("commit");
        let request = sample_stage_rows(&f.beacon, &verified);
        if f.open(&verified, &request, &lying.open(&request, &f.session_key))
            .is_ok()
        {
            passed += 1;
        }
    }
    // (1 − 1/4)^3 = 0.42; 240 trials: a 4-sigma band is 0.29..0.55.
    let rate = f64::from(passed) / f64::from(trials);
    assert!((0.29..=0.55).contains(&rate), "pass rate {rate}");
}

#[test]
fn one_device_for_two_identities_computes_two_chains() {
    // The node key is in the seed: a second identity's chain shares nothing.
    let f = Fixture::new(class(16, 2, 4), 6);
    let other = NodeKey::from_seed([9; 32]).public();
    assert_ne!(f.challenge.id(&f.node.public()), f.challenge.id(&other));
    let mine = f.work();
    let theirs = ChainWork::compute(&f.challenge, &other, 1).expect("work");
    assert_ne!(mine.stage_roots(), theirs.stage_roots());
}

#[test]
fn out_of_range_challenges_compute_nothing() {
    let f = Fixture::new(class(16, 2, 4), 7);
    let node = f.node.public();
    for (n, stages) in [(0, 2), (12, 2), (32768, 2), (16, 0), (16, MAX_STAGES + 1)] {
        let c = ChainChallenge {
            n,
            stages,
            ..f.challenge
        };
        assert!(
            ChainWork::compute(&c, &node, 1).is_none(),
            "n={n} stages={stages}"
        );
    }
    assert!(ChainWork::from_stages(ChallengeId([0; 32]), 16, vec![vec![0; 255]]).is_none());
    assert!(ChainWork::from_stages(ChallengeId([0; 32]), 16, Vec::new()).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn mix_stays_symmetric_and_threads_do_not_change_stages(x in any::<i32>(), seed in any::<u8>(), threads in 1usize..4) {
        prop_assert_ne!(mix(x), i8::MIN);
        let f = Fixture::new(class(32, 3, 4), seed);
        let one = ChainWork::compute(&f.challenge, &f.node.public(), 1).expect("work");
        let many = ChainWork::compute(&f.challenge, &f.node.public(), threads).expect("work");
        prop_assert_eq!(one.stage_roots(), many.stage_roots());
    }
}
