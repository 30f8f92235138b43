//! Verifier side: accept a commitment in time, pick hidden rows, check the opened rows.

use super::messages::{
    GPU_COMMITMENT_DOMAIN, GPU_OPENING_DOMAIN, GPU_SAMPLE_DOMAIN, GpuChallenge, GpuCommitment,
    GpuOpening, RowRequest, row_leaf,
};
use super::{
    GpuParams, ThroughputClass, achieved_tops, derive_a_row, derive_b, product_rows,
    throughput_class,
};
use crate::entropy::{Beacon, ChallengeId, SeenChallenges, check_not_replayed};
use crate::identity::PublicKey;
use crate::layout::Layout;
use crate::merkle::{Hash, LeafHash, verify_path};
use crate::reject::RejectReason;
use crate::session::Session;

/// What [`verify_gpu_commitment`] checks against.
pub struct GpuCommitContext<'a> {
    /// Policy parameters.
    pub params: &'a GpuParams,
    /// The verifier's beacon.
    pub beacon: &'a Beacon,
    /// The session the commitment arrived on.
    pub session: &'a Session,
    /// The challenge the verifier issued on this session.
    pub challenge: &'a GpuChallenge,
    /// Challenges already answered.
    pub seen: &'a dyn SeenChallenges,
    /// Throughput the worker's CR declares, in TOPS.
    pub declared_tops: f64,
    /// Arrival time of the commitment, unix ms.
    pub received_at_ms: u64,
}

/// An accepted commitment: the only input [`sample_rows`] takes. Non-exhaustive so only
/// this crate constructs it, and rows are never sampled before a commitment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VerifiedGpuCommitment {
    /// The worker.
    pub node: PublicKey,
    /// The challenge answered (record it in the seen set).
    pub challenge: ChallengeId,
    /// Matrix dimension.
    pub n: u32,
    /// The committed root over the rows of C.
    pub root: Hash,
    /// Challenge-to-commitment time minus the RTT allowance, ms.
    pub elapsed_ms: u64,
    /// Measured throughput, TOPS.
    pub achieved_tops: f64,
    /// The class that throughput falls in.
    pub class: ThroughputClass,
}

/// Accepts a signed commitment to the issued challenge that arrived inside the deadline at
/// no less than the required share of the declared throughput.
pub fn verify_gpu_commitment(
    commitment: &GpuCommitment,
    ctx: &GpuCommitContext<'_>,
) -> Result<VerifiedGpuCommitment, RejectReason> {
    let node = ctx.session.node;
    if commitment.challenge != ctx.challenge.id(&node) {
        return Err(RejectReason::UnknownChallenge);
    }
    check_not_replayed(ctx.seen, &node, &commitment.challenge)?;
    let issued = ctx.challenge.issued_at_ms;
    if ctx.received_at_ms < issued {
        return Err(RejectReason::BeforeWindow);
    }
    if ctx.received_at_ms > issued.saturating_add(ctx.params.deadline_ms) {
        return Err(RejectReason::AfterWindow);
    }
    ctx.beacon
        .check(&ctx.challenge.entropy, ctx.received_at_ms)?;
    if commitment.n != ctx.challenge.n {
        return Err(RejectReason::WrongMatrixSize);
    }
    ctx.session.verify(
        GPU_COMMITMENT_DOMAIN,
        &commitment.body(),
        &commitment.signature,
    )?;
    let elapsed_ms = (ctx.received_at_ms - issued)
        .saturating_sub(ctx.params.rtt_allowance_ms)
        .max(1);
    let tops = achieved_tops(commitment.n, elapsed_ms);
    if tops < ctx.params.min_fraction_of_declared * ctx.declared_tops {
        return Err(RejectReason::TooSlow);
    }
    Ok(VerifiedGpuCommitment {
        node,
        challenge: commitment.challenge,
        n: commitment.n,
        root: commitment.root,
        elapsed_ms,
        achieved_tops: tops,
        class: throughput_class(tops),
    })
}

/// The rows to open: `count` indices from `PRF_s(challenge || root)`, s known only to the
/// verifier's beacon, drawn independently so skipping a fraction f of rows passes with
/// probability (1 − f)^count.
pub fn sample_rows(beacon: &Beacon, commitment: &VerifiedGpuCommitment, count: u32) -> RowRequest {
    let context = Layout::with_capacity(64)
        .fixed32(&commitment.challenge.0)
        .fixed32(&commitment.root)
        .finish();
    let key = beacon.private_value(GPU_SAMPLE_DOMAIN, &context);
    let mut stream = blake3::Hasher::new_keyed(&key)
        .update(b"rows")
        .finalize_xof();
    let rows = (0..count)
        .map(|_| {
            let mut word = [0u8; 8];
            stream.fill(&mut word);
            // Multiply-shift onto 0..n; the result is below n, a u32, so it always fits.
            let scaled = (u128::from(u64::from_be_bytes(word)) * u128::from(commitment.n)) >> 64;
            u32::try_from(scaled).unwrap_or(0)
        })
        .collect();
    RowRequest {
        challenge: commitment.challenge,
        rows,
    }
}

/// What [`verify_gpu_opening`] checks against.
pub struct GpuOpenContext<'a> {
    /// The session the opening arrived on.
    pub session: &'a Session,
    /// The accepted commitment.
    pub commitment: &'a VerifiedGpuCommitment,
    /// The rows that were requested.
    pub request: &'a RowRequest,
}

/// A complete, accepted GPU proof.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedGpuProof {
    /// The worker.
    pub node: PublicKey,
    /// The challenge.
    pub challenge: ChallengeId,
    /// Matrix dimension.
    pub n: u32,
    /// Rows recomputed and matched.
    pub rows_checked: u32,
    /// Throughput measured at commitment, TOPS.
    pub achieved_tops: f64,
    /// Its class.
    pub class: ThroughputClass,
}

/// Accepts an opening of exactly the requested rows, each on a valid path to the committed
/// root and equal to the verifier's own O(n²) recomputation of that row.
pub fn verify_gpu_opening(
    opening: &GpuOpening,
    ctx: &GpuOpenContext<'_>,
) -> Result<VerifiedGpuProof, RejectReason> {
    let commitment = ctx.commitment;
    if opening.challenge != commitment.challenge || ctx.request.challenge != commitment.challenge {
        return Err(RejectReason::UnknownChallenge);
    }
    if opening.rows.len() != ctx.request.rows.len()
        || opening
            .rows
            .iter()
            .zip(&ctx.request.rows)
            .any(|(opened, wanted)| opened.index != *wanted)
    {
        return Err(RejectReason::WrongRowCount);
    }
    let n = usize::try_from(commitment.n).map_err(|_| RejectReason::WrongMatrixSize)?;
    if opening.rows.iter().any(|r| r.row.len() != n) {
        return Err(RejectReason::WrongRow);
    }
    let leaves: Vec<LeafHash> = opening
        .rows
        .iter()
        .map(|r| row_leaf(r.index, &r.row))
        .collect();
    ctx.session.verify(
        GPU_OPENING_DOMAIN,
        &opening.body(&leaves),
        &opening.signature,
    )?;
    for (opened, leaf) in opening.rows.iter().zip(&leaves) {
        if !verify_path(
            &commitment.root,
            u64::from(commitment.n),
            u64::from(opened.index),
            leaf,
            &opened.path,
        ) {
            return Err(RejectReason::BadMerklePath);
        }
    }
    // Recompute last: it is the expensive check (n² bytes of B, 2n² ops per row).
    let b = derive_b(&commitment.challenge, n);
    let a_rows: Vec<i8> = opening
        .rows
        .iter()
        .flat_map(|opened| {
            derive_a_row(
                &commitment.challenge,
                n,
                usize::try_from(opened.index).unwrap_or(usize::MAX),
            )
        })
        .collect();
    let recomputed = product_rows(&a_rows, &b, n).ok_or(RejectReason::WrongMatrixSize)?;
    for (opened, expected) in opening.rows.iter().zip(recomputed.chunks_exact(n)) {
        if opened.row != expected {
            return Err(RejectReason::WrongRow);
        }
    }
    Ok(VerifiedGpuProof {
        node: commitment.node,
        challenge: commitment.challenge,
        n: commitment.n,
        rows_checked: u32::try_from(opening.rows.len()).unwrap_or(u32::MAX),
        achieved_tops: commitment.achieved_tops,
        class: commitment.class,
    })
}
