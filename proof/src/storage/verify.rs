//! Verifier side: pure checks of commitments, responses and fault declarations.

use std::collections::{BTreeMap, HashMap};

use super::messages::{
    FAULT_DECLARATION_DOMAIN, FaultDeclaration, SECTOR_COMMITMENT_DOMAIN, STORAGE_RESPONSE_DOMAIN,
    SectorCommitment, SignedSectorCommitment, StorageResponse, challenge_id, challenged_leaves,
    leaf_hash,
};
use super::{Deadline, SectorId, StorageParams};
use crate::entropy::{Beacon, ChallengeId, EntropyConfig, SeenChallenges, check_not_replayed};
use crate::identity::PublicKey;
use crate::merkle::{LeafHash, verify_path};
use crate::reject::RejectReason;
use crate::session::{KnownNodes, Session};

/// What [`verify_sector_commitment`] checks against.
pub struct CommitmentContext<'a> {
    /// Policy parameters (leaf size).
    pub params: &'a StorageParams,
    /// Registered nodes.
    pub known_nodes: &'a dyn KnownNodes,
}

/// A commitment the verifier may record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSectorCommitment {
    /// The committing node.
    pub node: PublicKey,
    /// The commitment, consistent with the policy.
    pub commitment: SectorCommitment,
}

/// Accepts a sector commitment from a registered node whose geometry matches the policy.
pub fn verify_sector_commitment(
    signed: &SignedSectorCommitment,
    ctx: &CommitmentContext<'_>,
) -> Result<VerifiedSectorCommitment, RejectReason> {
    let commitment = &signed.commitment;
    if !ctx.known_nodes.is_known(&signed.node) {
        return Err(RejectReason::UnknownNode);
    }
    if commitment.leaf_size != ctx.params.leaf_size {
        return Err(RejectReason::WrongLeafSize);
    }
    if commitment.leaf_count == 0
        || commitment.leaf_count != ctx.params.leaf_count_for(commitment.sector_bytes)
    {
        return Err(RejectReason::WrongLeafCount);
    }
    if !signed.node.verify(
        SECTOR_COMMITMENT_DOMAIN,
        &commitment.body(&signed.node),
        &signed.signature,
    ) {
        return Err(RejectReason::BadSignature);
    }
    Ok(VerifiedSectorCommitment {
        node: signed.node,
        commitment: *commitment,
    })
}

/// The caller's record of one node's accepted sector commitments.
pub trait SectorLookup {
    /// The commitment recorded for `sector`, if any.
    fn commitment(&self, sector: SectorId) -> Option<&SectorCommitment>;
}

impl<S: std::hash::BuildHasher> SectorLookup for HashMap<SectorId, SectorCommitment, S> {
    fn commitment(&self, sector: SectorId) -> Option<&SectorCommitment> {
        self.get(&sector)
    }
}

impl SectorLookup for BTreeMap<SectorId, SectorCommitment> {
    fn commitment(&self, sector: SectorId) -> Option<&SectorCommitment> {
        self.get(&sector)
    }
}

/// What storage responses and fault declarations are checked against.
pub struct StorageContext<'a> {
    /// Policy parameters.
    pub params: &'a StorageParams,
    /// The verifier's beacon.
    pub beacon: &'a Beacon,
    /// The session the message arrived on (node and session key).
    pub session: &'a Session,
    /// This node's recorded commitments.
    pub sectors: &'a dyn SectorLookup,
    /// Challenges already answered.
    pub seen: &'a dyn SeenChallenges,
    /// Arrival time, unix ms.
    pub now_ms: u64,
}

/// An accepted storage proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedStorageProof {
    /// The proving node.
    pub node: PublicKey,
    /// The proven sector.
    pub sector: SectorId,
    /// The deadline it was proven in.
    pub deadline: Deadline,
    /// The answered challenge (record it in the seen set).
    pub challenge: ChallengeId,
    /// Leaves checked.
    pub leaves_checked: u32,
}

/// The commitment and deadline a message names, if the sector is due in that deadline.
fn due_sector<'a>(
    ctx: &StorageContext<'a>,
    sector: SectorId,
    period: u64,
    index: u32,
) -> Result<(&'a SectorCommitment, Deadline), RejectReason> {
    let commitment = ctx
        .sectors
        .commitment(sector)
        .ok_or(RejectReason::UnknownSector)?;
    if ctx.params.deadline_index_of(sector) != index {
        return Err(RejectReason::WrongDeadline);
    }
    let deadline = ctx
        .params
        .deadline(period, index)
        .ok_or(RejectReason::WrongDeadline)?;
    Ok((commitment, deadline))
}

/// Accepts a response that opens, inside its deadline window, exactly the leaves the
/// beacon challenged, each on a valid path to the committed root, signed by the session.
pub fn verify_storage_response(
    response: &StorageResponse,
    ctx: &StorageContext<'_>,
) -> Result<VerifiedStorageProof, RejectReason> {
    let (commitment, deadline) = due_sector(
        ctx,
        response.sector,
        response.period,
        response.deadline_index,
    )?;
    if ctx.now_ms < deadline.opens_at_ms {
        return Err(RejectReason::BeforeWindow);
    }
    if ctx.now_ms >= deadline.closes_at_ms {
        return Err(RejectReason::AfterWindow);
    }
    // The deadline fixes the tick, so a node cannot shop among live beacon values for an
    // easier set of leaves; an older tick would let it have known the leaves in advance.
    let expected_tick = ctx.params.challenge_tick(&deadline, ctx.beacon.config());
    if response.entropy_tick < expected_tick {
        return Err(RejectReason::ExpiredEntropy);
    }
    if response.entropy_tick > expected_tick
        || expected_tick > ctx.beacon.config().tick_at(ctx.now_ms)
    {
        return Err(RejectReason::UnknownEntropy);
    }
    let entropy = ctx.beacon.entropy(expected_tick);
    let challenge = challenge_id(
        &ctx.session.node,
        &entropy,
        response.sector,
        deadline.period,
        deadline.index,
    );
    check_not_replayed(ctx.seen, &ctx.session.node, &challenge)?;

    let k = ctx.params.challenges_per_deadline;
    if response.openings.len() != usize::try_from(k).unwrap_or(usize::MAX) {
        return Err(RejectReason::WrongLeafCount);
    }
    let indices = challenged_leaves(&challenge, commitment, k);
    let mut hashes: Vec<LeafHash> = Vec::with_capacity(indices.len());
    for (&index, opening) in indices.iter().zip(&response.openings) {
        if opening.leaf.len() as u64 != commitment.leaf_len(index) {
            return Err(RejectReason::WrongLeafSize);
        }
        hashes.push(leaf_hash(index, &opening.leaf));
    }
    ctx.session.verify(
        STORAGE_RESPONSE_DOMAIN,
        &response.body(&hashes),
        &response.signature,
    )?;
    for ((&index, opening), hash) in indices.iter().zip(&response.openings).zip(&hashes) {
        if !verify_path(
            &commitment.root,
            commitment.leaf_count,
            index,
            hash,
            &opening.path,
        ) {
            return Err(RejectReason::BadMerklePath);
        }
    }
    Ok(VerifiedStorageProof {
        node: ctx.session.node,
        sector: response.sector,
        deadline,
        challenge,
        leaves_checked: k,
    })
}

/// When the response-deadline clock of a challenge drawn from beacon tick `entropy_tick`
/// starts: the tick's issue time. That is when the beacon value becomes known to anyone —
/// not the moment this node's challenge was sent — because every node's challenge in that
/// tick derives from the same `E_t`: a sibling identity that received it first could hand it
/// over, and this node would start regenerating before its own challenge arrived. The
/// verifier sends a deadline's challenges as soon as its tick is issued
/// (operator verifier/schedule.rs), so for a connected node the two coincide.
pub fn response_clock_start_ms(entropy: &EntropyConfig, entropy_tick: u64) -> u64 {
    entropy.issued_at_ms(entropy_tick)
}

/// Checks the response deadline D (`params.response_deadline_ms`): a response must arrive
/// within D of its clock start ([`response_clock_start_ms`]). Later than that, the leaves
/// may have been regenerated rather than read: [`RejectReason::LateResponse`].
pub fn check_response_deadline(
    params: &StorageParams,
    clock_start_ms: u64,
    now_ms: u64,
) -> Result<(), RejectReason> {
    if now_ms > clock_start_ms.saturating_add(params.response_deadline_ms) {
        return Err(RejectReason::LateResponse);
    }
    Ok(())
}

/// An accepted fault declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedFault {
    /// The declaring node.
    pub node: PublicKey,
    /// The faulty sector.
    pub sector: SectorId,
    /// The deadline it will miss.
    pub deadline: Deadline,
}

/// Accepts a fault declaration for a due sector made before the deadline's cutoff.
pub fn verify_fault_declaration(
    declaration: &FaultDeclaration,
    ctx: &StorageContext<'_>,
) -> Result<VerifiedFault, RejectReason> {
    let (_, deadline) = due_sector(
        ctx,
        declaration.sector,
        declaration.period,
        declaration.deadline_index,
    )?;
    // As in Filecoin: the cheap declared-fault path is only open well before the window, so
    // a node cannot keep it as a last-minute escape from the undeclared-miss penalty.
    if ctx.now_ms.saturating_add(ctx.params.fault_cutoff_ms) > deadline.opens_at_ms {
        return Err(RejectReason::LateFaultDeclaration);
    }
    ctx.session.verify(
        FAULT_DECLARATION_DOMAIN,
        &declaration.body(),
        &declaration.signature,
    )?;
    Ok(VerifiedFault {
        node: ctx.session.node,
        sector: declaration.sector,
        deadline,
    })
}
