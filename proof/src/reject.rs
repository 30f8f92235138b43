//! Why a verifier refused a proof: one variant per rule, named for the metric label.

use thiserror::Error;

/// The rule a message broke. The variant name (see [`RejectReason::as_str`]) is the
/// `reason` label on rejection metrics and the reason in status conditions, so names are
/// stable: add variants, never rename them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Error)]
pub enum RejectReason {
    /// The signature does not verify under the key that should have made it.
    #[error("signature does not verify")]
    BadSignature,
    /// The public key is not a registered node.
    #[error("node is not registered")]
    UnknownNode,
    /// A session hello answers a different server nonce than the one this connection sent.
    #[error("hello signs a different server nonce")]
    WrongSessionNonce,
    /// The beacon never issued this entropy (wrong value, or a tick still in the future).
    #[error("entropy was not issued by the beacon")]
    UnknownEntropy,
    /// The entropy was issued but is past its lifespan, or older than the draw it claims.
    #[error("entropy has expired")]
    ExpiredEntropy,
    /// This (node, challenge) pair was already answered.
    #[error("challenge already answered")]
    Replay,
    /// The message names a challenge the verifier did not issue to this node.
    #[error("challenge was not issued to this node")]
    UnknownChallenge,
    /// The message arrived before its window opened.
    #[error("arrived before the window opened")]
    BeforeWindow,
    /// The message arrived after its window closed.
    #[error("arrived after the window closed")]
    AfterWindow,
    /// The sector has no recorded commitment for this node.
    #[error("sector has no commitment")]
    UnknownSector,
    /// The sector is not scheduled in the deadline the message names.
    #[error("sector is not due in this deadline")]
    WrongDeadline,
    /// A leaf (or the committed leaf size) does not have the size the policy requires.
    #[error("leaf has the wrong size")]
    WrongLeafSize,
    /// The number of leaves (opened, or committed for the sector size) is wrong.
    #[error("wrong number of leaves")]
    WrongLeafCount,
    /// A Merkle path does not lead from the opened leaf or row to the committed root.
    #[error("Merkle path does not reach the committed root")]
    BadMerklePath,
    /// A fault was declared after the deadline's cutoff.
    #[error("fault declared after the cutoff")]
    LateFaultDeclaration,
    /// The committed matrix dimension differs from the challenge's.
    #[error("matrix dimension differs from the challenge")]
    WrongMatrixSize,
    /// The number of opened rows, or their indices, differ from those requested.
    #[error("opened rows differ from those requested")]
    WrongRowCount,
    /// An opened row of C differs from the verifier's recomputation.
    #[error("opened row differs from the recomputed product")]
    WrongRow,
    /// The response time implies throughput below the declared class's floor.
    #[error("throughput below the declared class")]
    TooSlow,
    /// The message could not be decoded (field lengths, sizes out of range).
    #[error("malformed message")]
    Malformed,
    /// The hotspot has no asserted location (Helium iot_verifier `NotAsserted`).
    #[error("hotspot has no asserted location")]
    NotAsserted,
    /// The node is on the denylist.
    #[error("node is denylisted")]
    Denied,
    /// A second beacon inside one beacon interval (Helium `IrregularInterval`).
    #[error("beacon inside an interval already used")]
    IrregularInterval,
    /// The beacon's data, frequency or datarate differ from what its entropy derives.
    #[error("beacon payload differs from its derivation")]
    BadBeaconPayload,
    /// The beacon has no valid witness, so nothing confirms it was transmitted.
    #[error("beacon has no valid witness")]
    NoWitnesses,
    /// The beaconer has no valid witness inside the reciprocity window (HIP-106).
    #[error("beaconer has not witnessed recently")]
    NoRecentWitness,
    /// A hotspot reported witnessing its own beacon.
    #[error("hotspot witnessed its own beacon")]
    SelfWitness,
    /// Beaconer and witness share an owner, whose witnessing proves nothing.
    #[error("beaconer and witness have the same owner")]
    SameOwner,
    /// The (beaconer, witness) pair is on the edge denylist.
    #[error("beaconer-witness edge is denylisted")]
    DeniedEdge,
    /// The witness arrived later than the allowed lag after the beacon or first witness.
    #[error("witness arrived too late")]
    TooLate,
    /// The witnessed data is not the beacon's data.
    #[error("witnessed data is not the beacon's")]
    PayloadMismatch,
    /// The witnessed frequency is too far from the beacon's.
    #[error("witnessed frequency too far from the beacon's")]
    InvalidFrequency,
    /// Beaconer and witness operate in different regional plans.
    #[error("beaconer and witness regions differ")]
    InvalidRegion,
    /// The witness is closer to the beaconer than the minimum H3 cell distance.
    #[error("witness below the minimum distance")]
    BelowMinDistance,
    /// H3 cannot compute the grid distance between beaconer and witness (a pentagon lies
    /// between them), so the minimum-distance rule cannot be shown to hold (Helium
    /// iot_verifier rejects these too, labelled `BelowMinDistance`).
    #[error("witness distance cannot be computed on the H3 grid")]
    UncomputableDistance,
    /// The witness is farther from the beaconer than radio can plausibly reach.
    #[error("witness above the maximum distance")]
    AboveMaxDistance,
    /// The witness heard the beacon louder than free-space path loss allows.
    #[error("received power above the free-space bound")]
    BadRssi,
    /// The same report was already accepted (a witness per beacon, a reading per slot).
    #[error("report already accepted")]
    Duplicate,
    /// The beacon already has the maximum number of selected witnesses.
    #[error("beacon's witness cap reached")]
    WitnessCapReached,
    /// The witness has no valid beacon inside the reciprocity window (HIP-106).
    #[error("witness has not beaconed recently")]
    NoRecentBeacon,
    /// The meter serial is already claimed by another node of the fleet.
    #[error("meter serial claimed by another node")]
    DuplicateMeterSerial,
    /// The reading's sequence number does not follow the previous one.
    #[error("reading sequence number does not follow")]
    SequenceGap,
    /// The reading's previous hash is not the hash of the previous reading.
    #[error("reading does not chain to the previous one")]
    ChainBroken,
    /// The reading's time slot is outside the allowed window around now.
    #[error("slot outside the allowed window")]
    SlotOutsideWindow,
    /// The reading's time slot is not after the previous reading's.
    #[error("slot not after the previous reading's")]
    SlotOutOfOrder,
    /// A second, different reading for a slot (the slot is banned, Glow).
    #[error("conflicting reading for the slot")]
    DuplicateSlot,
    /// The cumulative energy register went backwards without a recorded meter replacement.
    #[error("energy register went backwards")]
    RegisterRollback,
    /// More energy than rated capacity × elapsed time × 1.35 allows (Glow).
    #[error("energy above rated capacity")]
    ExceedsCapacity,
    /// The energy delta disagrees with average power × elapsed time.
    #[error("energy delta disagrees with average power")]
    EnergyMismatch,
    /// The chain's meter serial changed without a recorded meter replacement.
    #[error("meter serial changed without a recorded replacement")]
    MeterSerialChanged,
    /// The work belongs to a reward epoch whose grace period is over (its tallies are
    /// frozen for the reward controller).
    #[error("the work's reward epoch is already closed")]
    LateForEpoch,
    /// A different root for an accepted sector (storage ledger): the sector's history is
    /// forfeited and it is vetted again; proofs against the replaced root are refused.
    #[error("sector was re-committed under a new root")]
    SectorReset,
    /// A sector beyond what the node's volume really holds (the smaller of spec.capacity
    /// and the bound volume's size).
    #[error("sector lies beyond the volume's capacity")]
    BeyondCapacity,
    /// A sector root is not the root of this node's seal (packing) of the sector: unpacked
    /// data, another identity's packing, other seal parameters, or a re-committed tree.
    #[error("sector root does not match the node's sealed packing")]
    WrongSeal,
    /// A sector commitment is empty or larger than the seal allows (`MAX_SECTOR_BYTES`),
    /// so the verifier will not allocate it to check the seal.
    #[error("sector size outside the sealable range")]
    WrongSectorSize,
    /// A storage response arrived after the response deadline (challenge sent + D), later
    /// than reading the leaves takes, so it may have been regenerated instead of read.
    #[error("storage response after the response deadline")]
    LateResponse,
    /// A GPU chain commitment does not carry one root per stage of its class.
    #[error("the commitment's stage roots do not match the class's stage count")]
    WrongStageCount,
    /// An opened sample's input rows are not row i and its butterfly partner of the
    /// previous stage.
    #[error("the opened input rows are not the row and its butterfly partner")]
    WrongPartnerRow,
    /// No answer arrived before the GPU round closed: a missed round counts as a failure.
    #[error("no answer before the GPU round closed")]
    NoResponse,
    /// A production meter's energy in an interval when the sun stayed below the horizon
    /// (beyond the twilight tolerance) at its declared location.
    #[error("production while the sun is down")]
    ProductionAtNight,
    /// More energy than the clear-sky bound at the declared location, integrated over
    /// every slot since the previous reading, allows.
    #[error("energy above the clear-sky bound")]
    AboveClearSky,
    /// The solar day's credited energy would exceed its clear-sky yield at the declared
    /// location.
    #[error("energy above the day's clear-sky yield")]
    AboveDailyYield,
    /// A production meter declares no location, so no energy of it can be shown to obey
    /// the sun.
    #[error("production meter declares no location")]
    MissingLocation,
}

impl RejectReason {
    /// Every reason, so the operator can pre-register one metric series per label.
    pub const ALL: [RejectReason; 63] = [
        RejectReason::BadSignature,
        RejectReason::UnknownNode,
        RejectReason::WrongSessionNonce,
        RejectReason::UnknownEntropy,
        RejectReason::ExpiredEntropy,
        RejectReason::Replay,
        RejectReason::UnknownChallenge,
        RejectReason::BeforeWindow,
        RejectReason::AfterWindow,
        RejectReason::UnknownSector,
        RejectReason::WrongDeadline,
        RejectReason::WrongLeafSize,
        RejectReason::WrongLeafCount,
        RejectReason::BadMerklePath,
        RejectReason::LateFaultDeclaration,
        RejectReason::WrongMatrixSize,
        RejectReason::WrongRowCount,
        RejectReason::WrongRow,
        RejectReason::TooSlow,
        RejectReason::Malformed,
        RejectReason::NotAsserted,
        RejectReason::Denied,
        RejectReason::IrregularInterval,
        RejectReason::BadBeaconPayload,
        RejectReason::NoWitnesses,
        RejectReason::NoRecentWitness,
        RejectReason::SelfWitness,
        RejectReason::SameOwner,
        RejectReason::DeniedEdge,
        RejectReason::TooLate,
        RejectReason::PayloadMismatch,
        RejectReason::InvalidFrequency,
        RejectReason::InvalidRegion,
        RejectReason::BelowMinDistance,
        RejectReason::AboveMaxDistance,
        RejectReason::BadRssi,
        RejectReason::Duplicate,
        RejectReason::WitnessCapReached,
        RejectReason::NoRecentBeacon,
        RejectReason::DuplicateMeterSerial,
        RejectReason::SequenceGap,
        RejectReason::ChainBroken,
        RejectReason::SlotOutsideWindow,
        RejectReason::SlotOutOfOrder,
        RejectReason::DuplicateSlot,
        RejectReason::RegisterRollback,
        RejectReason::ExceedsCapacity,
        RejectReason::EnergyMismatch,
        RejectReason::MeterSerialChanged,
        RejectReason::LateForEpoch,
        RejectReason::SectorReset,
        RejectReason::BeyondCapacity,
        RejectReason::WrongSeal,
        RejectReason::WrongSectorSize,
        RejectReason::LateResponse,
        RejectReason::WrongStageCount,
        RejectReason::WrongPartnerRow,
        RejectReason::NoResponse,
        RejectReason::ProductionAtNight,
        RejectReason::AboveClearSky,
        RejectReason::AboveDailyYield,
        RejectReason::MissingLocation,
        RejectReason::UncomputableDistance,
    ];

    /// The reason named `name` (the inverse of [`RejectReason::as_str`]), for decoding
    /// receipts and status.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == name)
    }

    /// The variant name, used verbatim as the metric label and condition reason.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::BadSignature => "BadSignature",
            RejectReason::UnknownNode => "UnknownNode",
            RejectReason::WrongSessionNonce => "WrongSessionNonce",
            RejectReason::UnknownEntropy => "UnknownEntropy",
            RejectReason::ExpiredEntropy => "ExpiredEntropy",
            RejectReason::Replay => "Replay",
            RejectReason::UnknownChallenge => "UnknownChallenge",
            RejectReason::BeforeWindow => "BeforeWindow",
            RejectReason::AfterWindow => "AfterWindow",
            RejectReason::UnknownSector => "UnknownSector",
            RejectReason::WrongDeadline => "WrongDeadline",
            RejectReason::WrongLeafSize => "WrongLeafSize",
            RejectReason::WrongLeafCount => "WrongLeafCount",
            RejectReason::BadMerklePath => "BadMerklePath",
            RejectReason::LateFaultDeclaration => "LateFaultDeclaration",
            RejectReason::WrongMatrixSize => "WrongMatrixSize",
            RejectReason::WrongRowCount => "WrongRowCount",
            RejectReason::WrongRow => "WrongRow",
            RejectReason::TooSlow => "TooSlow",
            RejectReason::Malformed => "Malformed",
            RejectReason::NotAsserted => "NotAsserted",
            RejectReason::Denied => "Denied",
            RejectReason::IrregularInterval => "IrregularInterval",
            RejectReason::BadBeaconPayload => "BadBeaconPayload",
            RejectReason::NoWitnesses => "NoWitnesses",
            RejectReason::NoRecentWitness => "NoRecentWitness",
            RejectReason::SelfWitness => "SelfWitness",
            RejectReason::SameOwner => "SameOwner",
            RejectReason::DeniedEdge => "DeniedEdge",
            RejectReason::TooLate => "TooLate",
            RejectReason::PayloadMismatch => "PayloadMismatch",
            RejectReason::InvalidFrequency => "InvalidFrequency",
            RejectReason::InvalidRegion => "InvalidRegion",
            RejectReason::BelowMinDistance => "BelowMinDistance",
            RejectReason::UncomputableDistance => "UncomputableDistance",
            RejectReason::AboveMaxDistance => "AboveMaxDistance",
            RejectReason::BadRssi => "BadRssi",
            RejectReason::Duplicate => "Duplicate",
            RejectReason::WitnessCapReached => "WitnessCapReached",
            RejectReason::NoRecentBeacon => "NoRecentBeacon",
            RejectReason::DuplicateMeterSerial => "DuplicateMeterSerial",
            RejectReason::SequenceGap => "SequenceGap",
            RejectReason::ChainBroken => "ChainBroken",
            RejectReason::SlotOutsideWindow => "SlotOutsideWindow",
            RejectReason::SlotOutOfOrder => "SlotOutOfOrder",
            RejectReason::DuplicateSlot => "DuplicateSlot",
            RejectReason::RegisterRollback => "RegisterRollback",
            RejectReason::ExceedsCapacity => "ExceedsCapacity",
            RejectReason::EnergyMismatch => "EnergyMismatch",
            RejectReason::MeterSerialChanged => "MeterSerialChanged",
            RejectReason::LateForEpoch => "LateForEpoch",
            RejectReason::SectorReset => "SectorReset",
            RejectReason::BeyondCapacity => "BeyondCapacity",
            RejectReason::WrongSeal => "WrongSeal",
            RejectReason::WrongSectorSize => "WrongSectorSize",
            RejectReason::LateResponse => "LateResponse",
            RejectReason::WrongStageCount => "WrongStageCount",
            RejectReason::WrongPartnerRow => "WrongPartnerRow",
            RejectReason::NoResponse => "NoResponse",
            RejectReason::ProductionAtNight => "ProductionAtNight",
            RejectReason::AboveClearSky => "AboveClearSky",
            RejectReason::AboveDailyYield => "AboveDailyYield",
            RejectReason::MissingLocation => "MissingLocation",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_variant_names_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for reason in RejectReason::ALL {
            assert_eq!(reason.as_str(), format!("{reason:?}"));
            assert_eq!(RejectReason::from_name(reason.as_str()), Some(reason));
            assert!(
                seen.insert(reason.as_str()),
                "duplicate label {}",
                reason.as_str()
            );
        }
    }
}
