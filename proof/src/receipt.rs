//! The verifier's signed acknowledgement of a proof response. An agent keeps a response
//! until it holds a receipt for it; the receipt says what was decided and, when the result
//! was recorded, the node's tally right after it.

use crate::entropy::ChallengeId;
use crate::identity::{NodeKey, PublicKey};
use crate::layout::Layout;
use crate::reject::RejectReason;

/// Domain tag of receipts (signed by the verifier's key).
pub const RECEIPT_DOMAIN: &[u8] = b"depin/verifier/receipt/v1";

/// Which proof a receipt answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProofKind {
    /// A storage deadline response.
    Storage,
    /// A GPU matrix-multiply proof (commitment and opening).
    Gpu,
    /// A signed meter reading (the "challenge" is the reading's chain hash).
    Meter,
    /// A PoC beacon or witness report (the "challenge" is the report's hash).
    Hotspot,
}

impl ProofKind {
    /// Lower-case name, as carried in receipts.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProofKind::Storage => "storage",
            ProofKind::Gpu => "gpu",
            ProofKind::Meter => "meter",
            ProofKind::Hotspot => "hotspot",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            ProofKind::Storage,
            ProofKind::Gpu,
            ProofKind::Meter,
            ProofKind::Hotspot,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// A node's proof counters for one epoch, as of one receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TallySnapshot {
    /// Reward epoch the counters belong to.
    pub epoch: u64,
    /// Proofs accepted this epoch.
    pub accepted: u64,
    /// Proofs rejected this epoch.
    pub rejected: u64,
    /// Work units earned this epoch (kind-specific).
    pub work_units: u128,
}

/// The verifier's answer to one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The node the response came from.
    pub node: PublicKey,
    /// The challenge answered.
    pub challenge: ChallengeId,
    /// Which proof.
    pub proof: ProofKind,
    /// Accepted, or the rule the response broke.
    pub verdict: Result<(), RejectReason>,
    /// Whether this result was counted in the node's durable tally (false for a duplicate
    /// or a response to a challenge this verifier never issued).
    pub recorded: bool,
    /// The tally right after this result, when recorded.
    pub tally: Option<TallySnapshot>,
    /// When the verifier decided, unix ms.
    pub issued_at_ms: u64,
    /// ed25519 by the verifier key over [`Receipt::signing_bytes`].
    pub signature: [u8; 64],
}

impl Receipt {
    /// Builds and signs a receipt with the verifier's key.
    #[allow(clippy::too_many_arguments)] // one argument per signed field, in body order
    pub fn sign(
        verifier: &NodeKey,
        node: PublicKey,
        challenge: ChallengeId,
        proof: ProofKind,
        verdict: Result<(), RejectReason>,
        recorded: bool,
        tally: Option<TallySnapshot>,
        issued_at_ms: u64,
    ) -> Self {
        let mut receipt = Self {
            node,
            challenge,
            proof,
            verdict,
            recorded,
            tally,
            issued_at_ms,
            signature: [0; 64],
        };
        receipt.signature = verifier.sign(RECEIPT_DOMAIN, &receipt.body());
        receipt
    }

    /// Whether `verifier` signed exactly this receipt.
    pub fn verify(&self, verifier: &PublicKey) -> bool {
        verifier.verify(RECEIPT_DOMAIN, &self.body(), &self.signature)
    }

    /// The exact bytes the signature covers (domain prefix included).
    pub fn signing_bytes(&self) -> Vec<u8> {
        crate::identity::signing_bytes(RECEIPT_DOMAIN, &self.body())
    }

    /// Body: `node (32) || challenge (32) || proof name || reason name (empty = accepted) ||
    /// recorded u32 || has_tally u32 || epoch u64 || accepted u64 || rejected u64 ||
    /// work_units u128 || issued_at u64`; names are u32-length-prefixed.
    fn body(&self) -> Vec<u8> {
        let reason = self.verdict.err().map_or("", RejectReason::as_str);
        let tally = self.tally.unwrap_or_default();
        Layout::with_capacity(160)
            .fixed32(self.node.as_bytes())
            .fixed32(&self.challenge.0)
            .bytes(self.proof.as_str().as_bytes())
            .bytes(reason.as_bytes())
            .u32(u32::from(self.recorded))
            .u32(u32::from(self.tally.is_some()))
            .u64(tally.epoch)
            .u64(tally.accepted)
            .u64(tally.rejected)
            .u128(tally.work_units)
            .u64(self.issued_at_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn honest(verifier: &NodeKey) -> Receipt {
        Receipt::sign(
            verifier,
            NodeKey::from_seed([1; 32]).public(),
            ChallengeId([2; 32]),
            ProofKind::Storage,
            Ok(()),
            true,
            Some(TallySnapshot {
                epoch: 3,
                accepted: 4,
                rejected: 0,
                work_units: 1 << 30,
            }),
            1_000,
        )
    }

    #[test]
    fn every_field_is_signed() {
        let verifier = NodeKey::from_seed([9; 32]);
        let receipt = honest(&verifier);
        assert!(receipt.verify(&verifier.public()));
        let tally = receipt.tally.unwrap_or_default();
        let lies: Vec<(&str, Receipt)> = vec![
            (
                "other node",
                Receipt {
                    node: NodeKey::from_seed([5; 32]).public(),
                    ..receipt.clone()
                },
            ),
            (
                "other challenge",
                Receipt {
                    challenge: ChallengeId([3; 32]),
                    ..receipt.clone()
                },
            ),
            (
                "other kind",
                Receipt {
                    proof: ProofKind::Gpu,
                    ..receipt.clone()
                },
            ),
            (
                "flipped verdict",
                Receipt {
                    verdict: Err(RejectReason::Replay),
                    ..receipt.clone()
                },
            ),
            (
                "not recorded",
                Receipt {
                    recorded: false,
                    ..receipt.clone()
                },
            ),
            (
                "tally dropped",
                Receipt {
                    tally: None,
                    ..receipt.clone()
                },
            ),
            (
                "inflated work",
                Receipt {
                    tally: Some(TallySnapshot {
                        work_units: tally.work_units + 1,
                        ..tally
                    }),
                    ..receipt.clone()
                },
            ),
            (
                "other time",
                Receipt {
                    issued_at_ms: 1_001,
                    ..receipt.clone()
                },
            ),
        ];
        for (name, lie) in lies {
            assert!(!lie.verify(&verifier.public()), "{name}");
        }
        assert!(!receipt.verify(&NodeKey::from_seed([8; 32]).public()));
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in [
            ProofKind::Storage,
            ProofKind::Gpu,
            ProofKind::Meter,
            ProofKind::Hotspot,
        ] {
            assert_eq!(ProofKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(ProofKind::from_name("teleport"), None);
    }
}
