//! Verifier side of the chain proof: accept the stage roots in time for the claimed class,
//! draw hidden (stage, row) samples, recompute each sampled row from its opened inputs.

use super::chain::{initial_row, partner, recompute_rows};
use super::chain_messages::{
    CHAIN_COMMITMENT_DOMAIN, CHAIN_OPENING_DOMAIN, CHAIN_SAMPLE_DOMAIN, ChainChallenge,
    ChainCommitment, ChainOpening, OpenedRow, Sample, SampleRequest, opening_leaf,
};
use super::class::GpuClass;
use super::derive_b;
use crate::entropy::{Beacon, ChallengeId, SeenChallenges, check_not_replayed};
use crate::identity::PublicKey;
use crate::layout::Layout;
use crate::merkle::{Hash, verify_path};
use crate::reject::RejectReason;
use crate::session::Session;

/// What [`verify_chain_commitment`] checks against.
pub struct ChainCommitContext<'a> {
    /// The class the worker claims (the challenge was sized by it).
    pub class: &'a GpuClass,
    /// The verifier's beacon.
    pub beacon: &'a Beacon,
    /// The session the commitment arrived on.
    pub session: &'a Session,
    /// The challenge the verifier issued to this node.
    pub challenge: &'a ChainChallenge,
    /// Challenges already answered.
    pub seen: &'a dyn SeenChallenges,
    /// Round trip the verifier measured on this session before the challenge, ms.
    pub measured_rtt_ms: u64,
    /// Arrival time of the commitment, unix ms.
    pub received_at_ms: u64,
}

/// An accepted commitment: the only input [`sample_stage_rows`] takes. Non-exhaustive so
/// only this crate constructs it, and rows are never sampled before a commitment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VerifiedChainCommitment {
    /// The worker.
    pub node: PublicKey,
    /// The challenge answered (record it in the seen set).
    pub challenge: ChallengeId,
    /// The class it was sized for and passed.
    pub class: GpuClass,
    /// `R_1..R_K`.
    pub stage_roots: Vec<Hash>,
    /// Challenge-to-commitment time minus the RTT allowance, ms.
    pub elapsed_ms: u64,
    /// W / elapsed, TOPS.
    pub achieved_tops: f64,
}

/// Accepts a signed commitment to the issued challenge, with one root per stage, that
/// arrived by the class's deadline (`W / P_c` + capped RTT). Later but before the close:
/// `TooSlow`; after the close: `AfterWindow`.
pub fn verify_chain_commitment(
    commitment: &ChainCommitment,
    ctx: &ChainCommitContext<'_>,
) -> Result<VerifiedChainCommitment, RejectReason> {
    let node = ctx.session.node;
    if commitment.challenge != ctx.challenge.id(&node) {
        return Err(RejectReason::UnknownChallenge);
    }
    check_not_replayed(ctx.seen, &node, &commitment.challenge)?;
    let issued = ctx.challenge.issued_at_ms;
    let Some(elapsed) = ctx.received_at_ms.checked_sub(issued) else {
        return Err(RejectReason::BeforeWindow);
    };
    if elapsed > ctx.class.close_ms() {
        return Err(RejectReason::AfterWindow);
    }
    ctx.beacon
        .check(&ctx.challenge.entropy, ctx.received_at_ms)?;
    if commitment.n != ctx.challenge.n || ctx.challenge.n != ctx.class.n {
        return Err(RejectReason::WrongMatrixSize);
    }
    let stages = usize::try_from(ctx.class.stages).map_err(|_| RejectReason::WrongStageCount)?;
    if commitment.stage_roots.len() != stages || ctx.challenge.stages != ctx.class.stages {
        return Err(RejectReason::WrongStageCount);
    }
    ctx.session.verify(
        CHAIN_COMMITMENT_DOMAIN,
        &commitment.body(),
        &commitment.signature,
    )?;
    let allowance = ctx.class.rtt_allowance_ms(ctx.measured_rtt_ms);
    let elapsed_ms = elapsed.saturating_sub(allowance).max(1);
    // Integer comparison against the deadline, so a float rounding never flips a verdict.
    if elapsed > ctx.class.deadline_ms(ctx.measured_rtt_ms) {
        return Err(RejectReason::TooSlow);
    }
    Ok(VerifiedChainCommitment {
        node,
        challenge: commitment.challenge,
        class: ctx.class.clone(),
        stage_roots: commitment.stage_roots.clone(),
        elapsed_ms,
        achieved_tops: ctx.class.work_ops() / (elapsed_ms as f64 / 1000.0) / 1e12,
    })
}

/// The samples to open: S pairs (k uniform in 1..=K, i uniform in 0..n) from
/// `PRF_s(challenge || H(R_1..R_K))`, s known only to the verifier's beacon. Drawn
/// independently, so a chain with a fraction f of wrong rows passes with (1 − f)^S.
pub fn sample_stage_rows(beacon: &Beacon, commitment: &VerifiedChainCommitment) -> SampleRequest {
    let mut roots = blake3::Hasher::new();
    for root in &commitment.stage_roots {
        roots.update(root);
    }
    let context = Layout::with_capacity(64)
        .fixed32(&commitment.challenge.0)
        .fixed32(roots.finalize().as_bytes())
        .finish();
    let key = beacon.private_value(CHAIN_SAMPLE_DOMAIN, &context);
    let mut stream = blake3::Hasher::new_keyed(&key)
        .update(b"samples")
        .finalize_xof();
    let mut below = |bound: u32| {
        let mut word = [0u8; 8];
        stream.fill(&mut word);
        // Multiply-shift onto 0..bound; the result is below bound, a u32, so it fits.
        let scaled = (u128::from(u64::from_be_bytes(word)) * u128::from(bound)) >> 64;
        u32::try_from(scaled).unwrap_or(0)
    };
    let class = &commitment.class;
    let samples = (0..class.samples)
        .map(|_| Sample {
            stage: below(class.stages) + 1,
            index: below(class.n),
        })
        .collect();
    SampleRequest {
        challenge: commitment.challenge,
        samples,
    }
}

/// What [`verify_chain_opening`] checks against.
pub struct ChainOpenContext<'a> {
    /// The session the opening arrived on.
    pub session: &'a Session,
    /// The accepted commitment.
    pub commitment: &'a VerifiedChainCommitment,
    /// The samples that were requested.
    pub request: &'a SampleRequest,
}

/// A complete, accepted chain proof.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedChainProof {
    /// The worker.
    pub node: PublicKey,
    /// The challenge.
    pub challenge: ChallengeId,
    /// The class passed.
    pub class: GpuClass,
    /// Rows recomputed and matched.
    pub rows_checked: u32,
    /// Throughput measured at commitment, TOPS.
    pub achieved_tops: f64,
}

/// Accepts an opening of exactly the requested samples, each row and input on a valid
/// path to its stage root, inputs at the right indices (row i and its partner), and each
/// row equal to the verifier's own recomputation from its inputs.
pub fn verify_chain_opening(
    opening: &ChainOpening,
    ctx: &ChainOpenContext<'_>,
) -> Result<VerifiedChainProof, RejectReason> {
    let commitment = ctx.commitment;
    if opening.challenge != commitment.challenge || ctx.request.challenge != commitment.challenge {
        return Err(RejectReason::UnknownChallenge);
    }
    if opening.openings.len() != ctx.request.samples.len()
        || opening
            .openings
            .iter()
            .zip(&ctx.request.samples)
            .any(|(o, s)| o.stage != s.stage || o.row.index != s.index)
    {
        return Err(RejectReason::WrongRowCount);
    }
    let class = &commitment.class;
    let n = usize::try_from(class.n).map_err(|_| RejectReason::WrongMatrixSize)?;
    for o in &opening.openings {
        let want_inputs = if o.stage > 1 {
            vec![o.row.index, partner(o.stage, o.row.index, class.n)]
        } else {
            Vec::new()
        };
        let got: Vec<u32> = o.inputs.iter().map(|r| r.index).collect();
        if got != want_inputs {
            return Err(RejectReason::WrongPartnerRow);
        }
        if std::iter::once(&o.row)
            .chain(&o.inputs)
            .any(|r| r.row.len() != n)
        {
            return Err(RejectReason::WrongRow);
        }
    }
    ctx.session
        .verify(CHAIN_OPENING_DOMAIN, &opening.body(), &opening.signature)?;
    let on_path = |stage: u32, row: &OpenedRow| {
        let root = usize::try_from(stage.wrapping_sub(1))
            .ok()
            .and_then(|i| commitment.stage_roots.get(i));
        root.is_some_and(|root| {
            verify_path(
                root,
                u64::from(class.n),
                u64::from(row.index),
                &opening_leaf(stage, row),
                &row.path,
            )
        })
    };
    for o in &opening.openings {
        if !on_path(o.stage, &o.row) || !o.inputs.iter().all(|r| on_path(o.stage - 1, r)) {
            return Err(RejectReason::BadMerklePath);
        }
    }
    // Recompute last: it is the expensive check (n² bytes of B, 2 row products per sample).
    let b = derive_b(&commitment.challenge, n);
    let mut inputs = Vec::with_capacity(2 * n * opening.openings.len());
    for o in &opening.openings {
        if o.stage == 1 {
            let p = partner(1, o.row.index, class.n);
            inputs.extend(initial_row(&commitment.challenge, n, o.row.index));
            inputs.extend(initial_row(&commitment.challenge, n, p));
        } else {
            inputs.extend(o.inputs.iter().flat_map(|r| r.row.iter().copied()));
        }
    }
    let recomputed = recompute_rows(&inputs, &b, n).ok_or(RejectReason::WrongMatrixSize)?;
    for (o, expected) in opening.openings.iter().zip(recomputed.chunks_exact(n)) {
        if o.row.row != expected {
            return Err(RejectReason::WrongRow);
        }
    }
    Ok(VerifiedChainProof {
        node: commitment.node,
        challenge: commitment.challenge,
        class: class.clone(),
        rows_checked: u32::try_from(opening.openings.len()).unwrap_or(u32::MAX),
        achieved_tops: commitment.achieved_tops,
    })
}
