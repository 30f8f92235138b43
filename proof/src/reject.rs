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
}

impl RejectReason {
    /// Every reason, so the operator can pre-register one metric series per label.
    pub const ALL: [RejectReason; 20] = [
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
