use std::collections::BTreeSet;

use proptest::prelude::*;

use super::messages::{GPU_COMMITMENT_DOMAIN, GPU_OPENING_DOMAIN};
use super::*;
use crate::entropy::{Beacon, EntropyConfig};
use crate::identity::{NodeKey, PublicKey};
use crate::reject::RejectReason;
use crate::session::{ServerNonce, Session};

const ISSUED_AT: u64 = 600_000; // beacon tick 10

struct Fixture {
    params: GpuParams,
    beacon: Beacon,
    node: NodeKey,
    session_key: NodeKey,
    session: Session,
    challenge: GpuChallenge,
}

impl Fixture {
    fn new(n: u32, nonce: u8) -> Self {
        let beacon = Beacon::new([4; 32], EntropyConfig::default());
        let node = NodeKey::from_seed([1; 32]);
        let session_key = NodeKey::from_seed([2; 32]);
        let session = Session {
            node: node.public(),
            session_key: session_key.public(),
            nonce: ServerNonce([0; 32]),
        };
        let params = GpuParams {
            n,
            ..GpuParams::default()
        };
        let challenge = GpuChallenge::issue(&beacon, &params, ISSUED_AT, [nonce; 32]);
        Self {
            params,
            beacon,
            node,
            session_key,
            session,
            challenge,
        }
    }

    fn work(&self) -> GpuWork {
        GpuWork::compute(&self.challenge, &self.node.public(), 2).expect("valid n")
    }

    fn verify_commitment(
        &self,
        commitment: &GpuCommitment,
        received_at_ms: u64,
        declared_tops: f64,
    ) -> Result<VerifiedGpuCommitment, RejectReason> {
        self.verify_commitment_seen(commitment, received_at_ms, declared_tops, &BTreeSet::new())
    }

    fn verify_commitment_seen(
        &self,
        commitment: &GpuCommitment,
        received_at_ms: u64,
        declared_tops: f64,
        seen: &BTreeSet<(PublicKey, crate::entropy::ChallengeId)>,
    ) -> Result<VerifiedGpuCommitment, RejectReason> {
        let ctx = GpuCommitContext {
            params: &self.params,
            beacon: &self.beacon,
            session: &self.session,
            challenge: &self.challenge,
            seen,
            declared_tops,
            received_at_ms,
        };
        verify_gpu_commitment(commitment, &ctx)
    }

    fn resign_commitment(&self, mut c: GpuCommitment) -> GpuCommitment {
        c.signature = self.session_key.sign(GPU_COMMITMENT_DOMAIN, &c.body());
        c
    }

    fn resign_opening(&self, mut o: GpuOpening) -> GpuOpening {
        let leaves: Vec<_> = o.rows.iter().map(|r| row_leaf(r.index, &r.row)).collect();
        o.signature = self.session_key.sign(GPU_OPENING_DOMAIN, &o.body(&leaves));
        o
    }

    /// Runs the whole protocol for `work`; the error names the first rule broken.
    fn prove(&self, work: &GpuWork) -> Result<VerifiedGpuProof, RejectReason> {
        let commitment =
            self.verify_commitment(&work.commit(&self.session_key), ISSUED_AT + 50, 0.0)?;
        let request = sample_rows(&self.beacon, &commitment, self.params.sampled_rows);
        let opening = work.open(&request, &self.session_key);
        verify_gpu_opening(
            &opening,
            &GpuOpenContext {
                session: &self.session,
                commitment: &commitment,
                request: &request,
            },
        )
    }
}

#[test]
fn honest_commitment_passes_and_each_lie_has_its_reason() {
    let f = Fixture::new(64, 1);
    let honest = f.work().commit(&f.session_key);
    let accepted = f
        .verify_commitment(&honest, ISSUED_AT + 50, 0.0)
        .expect("honest");
    assert_eq!(
        (accepted.n, accepted.elapsed_ms, accepted.root),
        (64, 50, f.work().root())
    );

    let mut flipped = honest;
    flipped.signature[5] ^= 1;
    let seen: BTreeSet<_> = [(f.node.public(), honest.challenge)].into_iter().collect();
    let mut stale = Fixture::new(64, 1);
    stale.challenge.entropy = stale.beacon.entropy(5); // expired at 480 s, before issue
    let mut forged = Fixture::new(64, 1);
    forged.challenge.entropy.value = [0; 32];
    let table: Vec<(
        &str,
        Result<VerifiedGpuCommitment, RejectReason>,
        RejectReason,
    )> = vec![
        (
            "answers another challenge",
            f.verify_commitment(
                &f.resign_commitment(GpuCommitment {
                    challenge: crate::entropy::ChallengeId([7; 32]),
                    ..honest
                }),
                ISSUED_AT + 50,
                0.0,
            ),
            RejectReason::UnknownChallenge,
        ),
        (
            "answered twice",
            f.verify_commitment_seen(&honest, ISSUED_AT + 50, 0.0, &seen),
            RejectReason::Replay,
        ),
        (
            "expired entropy",
            stale.verify_commitment(
                &stale.work().commit(&stale.session_key),
                ISSUED_AT + 50,
                0.0,
            ),
            RejectReason::ExpiredEntropy,
        ),
        (
            "entropy the beacon never issued",
            forged.verify_commitment(
                &forged.work().commit(&forged.session_key),
                ISSUED_AT + 50,
                0.0,
            ),
            RejectReason::UnknownEntropy,
        ),
        (
            "before the challenge",
            f.verify_commitment(&honest, ISSUED_AT - 1, 0.0),
            RejectReason::BeforeWindow,
        ),
        (
            "after the deadline",
            f.verify_commitment(&honest, ISSUED_AT + 60_001, 0.0),
            RejectReason::AfterWindow,
        ),
        (
            "smaller matrices",
            f.verify_commitment(
                &f.resign_commitment(GpuCommitment { n: 32, ..honest }),
                ISSUED_AT + 50,
                0.0,
            ),
            RejectReason::WrongMatrixSize,
        ),
        (
            "bad signature",
            f.verify_commitment(&flipped, ISSUED_AT + 50, 0.0),
            RejectReason::BadSignature,
        ),
        (
            "slower than declared",
            f.verify_commitment(&honest, ISSUED_AT + 50, 1.0),
            RejectReason::TooSlow,
        ),
    ];
    for (name, got, want) in table {
        assert_eq!(got.map(|_| ()), Err(want), "{name}");
    }
}

#[test]
fn honest_opening_passes_and_each_lie_has_its_reason() {
    let f = Fixture::new(48, 2);
    let work = f.work();
    let commitment = f
        .verify_commitment(&work.commit(&f.session_key), ISSUED_AT + 50, 0.0)
        .expect("honest");
    let request = sample_rows(&f.beacon, &commitment, 16);
    let honest = work.open(&request, &f.session_key);
    let check = |opening: &GpuOpening, request: &RowRequest| {
        verify_gpu_opening(
            opening,
            &GpuOpenContext {
                session: &f.session,
                commitment: &commitment,
                request,
            },
        )
        .map(|_| ())
    };
    assert_eq!(check(&honest, &request), Ok(()));

    // A worker that committed to a C with one wrong row, asked for exactly that row.
    let mut product = work.product().to_vec();
    product[48 * 7 + 3] += 1;
    let liar = GpuWork::from_product(commitment.challenge, 48, product);
    let liar_commitment = f
        .verify_commitment(&liar.commit(&f.session_key), ISSUED_AT + 50, 0.0)
        .expect("commitment alone looks fine");
    let row_7 = RowRequest {
        challenge: commitment.challenge,
        rows: vec![7],
    };
    let wrong_row = verify_gpu_opening(
        &liar.open(&row_7, &f.session_key),
        &GpuOpenContext {
            session: &f.session,
            commitment: &liar_commitment,
            request: &row_7,
        },
    );
    assert_eq!(wrong_row.map(|_| ()), Err(RejectReason::WrongRow));

    let mut dropped = honest.clone();
    dropped.rows.pop();
    let mut reordered = honest.clone();
    reordered.rows.swap(0, 1);
    reordered.rows[0].index = reordered.rows[1].index.wrapping_add(1) % 48; // a row not asked for first
    let mut short_row = honest.clone();
    short_row.rows[0].row.pop();
    let mut edited = honest.clone();
    edited.rows[2].row[0] += 1;
    let mut flipped = honest.clone();
    flipped.signature[0] ^= 1;
    let table: Vec<(&str, GpuOpening, RejectReason)> = vec![
        (
            "other challenge",
            f.resign_opening(GpuOpening {
                challenge: crate::entropy::ChallengeId([1; 32]),
                ..honest.clone()
            }),
            RejectReason::UnknownChallenge,
        ),
        (
            "row missing",
            f.resign_opening(dropped),
            RejectReason::WrongRowCount,
        ),
        (
            "rows not the ones asked",
            f.resign_opening(reordered),
            RejectReason::WrongRowCount,
        ),
        (
            "row too short",
            f.resign_opening(short_row),
            RejectReason::WrongRow,
        ),
        (
            "row edited after commitment",
            f.resign_opening(edited.clone()),
            RejectReason::BadMerklePath,
        ),
        (
            "row edited after signing",
            edited,
            RejectReason::BadSignature,
        ),
        ("bad signature", flipped, RejectReason::BadSignature),
    ];
    for (name, opening, want) in table {
        assert_eq!(check(&opening, &request), Err(want), "{name}");
    }
}

#[test]
fn sampled_rows_depend_on_the_verifier_secret_and_the_root() {
    let f = Fixture::new(1024, 3);
    let make = |root: [u8; 32]| {
        let work = GpuWork::from_product(f.challenge.id(&f.node.public()), 1024, vec![0; 0]);
        let mut c = work.commit(&f.session_key);
        c.n = 1024;
        c.root = root;
        let c = f.resign_commitment(c);
        f.verify_commitment(&c, ISSUED_AT + 50, 0.0)
            .expect("accepted")
    };
    let (a, b) = (make([1; 32]), make([2; 32]));
    let rows_a = sample_rows(&f.beacon, &a, 16);
    assert_eq!(
        rows_a,
        sample_rows(&f.beacon, &a, 16),
        "deterministic for the verifier"
    );
    assert_ne!(
        rows_a.rows,
        sample_rows(&f.beacon, &b, 16).rows,
        "bound to the root"
    );
    let other_beacon = Beacon::new([5; 32], EntropyConfig::default());
    assert_ne!(
        rows_a.rows,
        sample_rows(&other_beacon, &a, 16).rows,
        "unknowable without the secret"
    );
}

#[test]
fn same_challenge_gives_byte_identical_results() {
    let f = Fixture::new(40, 4);
    let (x, y) = (f.work(), f.work());
    assert_eq!(x.product(), y.product());
    assert_eq!(
        x.commit(&f.session_key).signing_bytes(),
        y.commit(&f.session_key).signing_bytes()
    );
    assert_eq!(
        x.commit(&f.session_key).signature,
        y.commit(&f.session_key).signature
    );
    let (a, b) = derive_matrices(&f.challenge.id(&f.node.public()), 40);
    assert!(a.iter().chain(&b).all(|&v| v != i8::MIN), "symmetric int8");
    assert_eq!(
        derive_a_row(&f.challenge.id(&f.node.public()), 40, 9),
        a[9 * 40..10 * 40].to_vec()
    );
}

#[test]
fn throughput_classes() {
    let table = [
        (0.2, ThroughputClass::Cpu),
        (34.0, ThroughputClass::Cpu),
        (65.0, ThroughputClass::Entry),
        (150.0, ThroughputClass::Mainstream),
        (312.0, ThroughputClass::HighEnd),
        (1979.0, ThroughputClass::Flagship),
    ];
    for (tops, class) in table {
        assert_eq!(throughput_class(tops), class, "{tops} TOPS");
    }
    // n = 1024 in 10 ms: 2·1024³ / 0.01 s ≈ 0.215 TOPS.
    assert!((achieved_tops(1024, 10) - 0.2147).abs() < 1e-3);
    assert_eq!(
        GpuWork::compute(
            &GpuChallenge {
                n: 0,
                ..Fixture::new(1, 0).challenge
            },
            &NodeKey::from_seed([1; 32]).public(),
            1
        )
        .map(|w| w.root()),
        None
    );
}

/// Fraction of trials in which a worker that skipped `skipped` of n = 32 rows is caught.
fn caught_rate(skipped: usize, trials: u8) -> f64 {
    let mut caught = 0;
    for trial in 0..trials {
        let f = Fixture::new(32, trial);
        let honest = f.work();
        let mut product = honest.product().to_vec();
        product[..skipped * 32].fill(0); // rows it never computed
        let lazy = GpuWork::from_product(f.challenge.id(&f.node.public()), 32, product);
        match f.prove(&lazy) {
            Ok(_) => {}
            Err(RejectReason::WrongRow) => caught += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    f64::from(caught) / f64::from(trials)
}

#[test]
fn skipped_rows_are_caught_at_the_expected_rate() {
    for skipped in [2usize, 4] {
        let fraction = skipped as f64 / 32.0;
        let expected = 1.0 - (1.0 - fraction).powi(16);
        let rate = caught_rate(skipped, 200);
        let sigma = (expected * (1.0 - expected) / 200.0).sqrt();
        println!("skipped {skipped}/32: caught {rate:.3}, expected {expected:.3}");
        assert!(
            (rate - expected).abs() <= 4.0 * sigma,
            "skipped {skipped}: caught {rate}, expected {expected}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn honest_workers_always_pass(n in 1u32..80, nonce in any::<u8>()) {
        let f = Fixture::new(n, nonce);
        let proof = f.prove(&f.work());
        prop_assert!(proof.is_ok(), "{:?}", proof);
    }
}
