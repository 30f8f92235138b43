//! Meter readings: each node's reading chain (in memory), the fleet's serial claims, and
//! what a session does with one `MeterReading`: decode, verify with depin-proof, credit
//! the proven Wh through the recorder, answer with a receipt once durable.
//!
//! A meter swap recorded in the MeterBridge (`spec.replacement`) lets the first link
//! after it change serial and restart the register; it must be recorded before that link
//! arrives, since a rejected link is not kept and the chain cannot continue past it.
//!
//! Trade-off, on purpose: chains live in memory only. After a verifier restart (or a
//! leader change) a node's chain is rebuilt from the first reading that arrives: that
//! reading is checked (signature, serial, window) and becomes the baseline, proving 0 Wh;
//! every later link is checked in full. An agent could therefore roll its register back
//! exactly across a verifier restart and go unnoticed for one link, at the cost of the
//! energy of that interval (0 is credited for it). Persisting the tip in the CR status
//! would close that gap, but status writes belong to the recorder, and a tip written
//! there would need the same group-commit care; left for later.

use super::index::{Declared, NodeEntry};
use super::session::Live;
use super::{Verifier, now_ms};
use depin_proof::RejectReason;
use depin_proof::entropy::ChallengeId;
use depin_proof::identity::PublicKey;
use depin_proof::meter::{
    ChainTip, MeterChain, MeterContext, MeterParams, SignedReading, VerifiedReading,
    verify_baseline, verify_reading,
};
use depin_proof::receipt::ProofKind;
use depin_proto::v1;
use depin_proto::wire;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tonic::Status;

/// The metric `kind` label of meter proofs.
const KIND: &str = "MeterBridge";

#[derive(Default)]
struct Chains {
    by_node: HashMap<PublicKey, MeterChain>,
    /// Serial → the node that first read it (Glow: one meter, one owner).
    serials: HashMap<String, PublicKey>,
}

/// Every node's chain and the fleet's serial claims (in memory; see the module docs).
#[derive(Default)]
pub struct MeterBook {
    inner: Mutex<Chains>,
}

/// A recorded meter swap (`spec.replacement`), in verifier terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replacement {
    /// When the new meter was installed, unix ms.
    pub at_ms: u64,
    /// The new meter's serial, when recorded: only a reading from it is excused.
    pub new_serial: Option<String>,
}

impl Replacement {
    /// The replacement slot `verify_reading` takes for a reading from `serial`: the first
    /// slot starting at or after the swap (the agent reads at slot starts, so a reading
    /// labelled with the swap's own slot was taken before it); `None` when the reading is
    /// not from the recorded new serial.
    pub fn slot_for(&self, params: &MeterParams, serial: &str) -> Option<u64> {
        if self.new_serial.as_deref().is_some_and(|new| new != serial) {
            return None;
        }
        Some(self.at_ms.div_ceil(params.slot_ms.max(1)))
    }
}

/// The swap a MeterBridge records; `None` without one or when `replacedAt` does not parse
/// (the schema's `date-time` format makes the API server refuse that first).
pub fn replacement_of(bridge: &depin_crds::MeterBridge) -> Option<Replacement> {
    let recorded = bridge.spec.replacement.as_ref()?;
    match recorded.replaced_at.parse::<jiff::Timestamp>() {
        Ok(at) => Some(Replacement {
            // Before 1970 means before any slot: it excuses nothing.
            at_ms: u64::try_from(at.as_millisecond()).unwrap_or(0),
            new_serial: recorded.new_serial.clone(),
        }),
        Err(err) => {
            tracing::warn!(meter = %kube::ResourceExt::name_any(bridge), %err, "spec.replacement.replacedAt is not RFC 3339; replacement ignored");
            None
        }
    }
}

/// What deciding one reading did, so a failed durable write can be undone.
pub struct Decided {
    /// The verdict.
    pub verdict: Result<VerifiedReading, RejectReason>,
    /// The node's chain before the reading (restored if recording fails).
    before: MeterChain,
}

impl MeterBook {
    fn lock(&self) -> MutexGuard<'_, Chains> {
        // Every critical section leaves the maps consistent before it can panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets a deleted node: its chain and the serials it claimed (a meter moved to a
    /// new MeterBridge, or the same one re-created with a new key, may claim them again).
    pub fn forget(&self, node: &PublicKey) {
        let mut chains = self.lock();
        chains.by_node.remove(node);
        chains.serials.retain(|_, owner| owner != node);
    }

    /// Verifies `signed` against the node's chain and, when accepted (or a conflicting
    /// second report bans a slot), moves the chain on.
    pub fn decide(
        &self,
        signed: &SignedReading,
        params: &MeterParams,
        rated_capacity_w: u64,
        replacement: Option<&Replacement>,
        now_ms: u64,
    ) -> Decided {
        let mut chains = self.lock();
        let Chains { by_node, serials } = &mut *chains;
        let chain = by_node.entry(signed.node).or_default();
        chain.prune(params, now_ms);
        let before = chain.clone();
        let ctx = MeterContext {
            params,
            rated_capacity_w,
            now_ms,
            serials: &*serials,
            replaced_at_slot: replacement
                .and_then(|r| r.slot_for(params, &signed.reading.meter_serial)),
        };
        let verdict = if chain.tip.is_none() && signed.reading.seq > 0 {
            verify_baseline(signed, &ctx)
        } else {
            verify_reading(signed, chain, &ctx)
        };
        chain.record(signed, &verdict);
        if verdict.is_ok() {
            serials
                .entry(signed.reading.meter_serial.clone())
                .or_insert(signed.node);
        }
        Decided { verdict, before }
    }

    /// Puts a node's chain back as it was before an accepted reading whose result could not
    /// be made durable (the agent resends it after reconnecting).
    fn undo(&self, node: &PublicKey, accepted: &ChainTip, before: MeterChain) {
        let mut chains = self.lock();
        if let Some(chain) = chains.by_node.get_mut(node)
            && chain.tip.as_ref() == Some(accepted)
        {
            *chain = before;
        }
    }

    /// The node's chain tip (tests, debugging).
    pub fn tip(&self, node: &PublicKey) -> Option<ChainTip> {
        self.lock().by_node.get(node).and_then(|c| c.tip.clone())
    }
}

/// The rule parameters for a node: its slot from the MeterBridge, the rest defaults; its
/// capacity, W; its recorded replacement.
fn params_for(declared: &Declared) -> Option<(MeterParams, u64, Option<&Replacement>)> {
    match declared {
        Declared::Meter {
            rated_capacity_w,
            slot_ms,
            replacement,
        } => Some((
            MeterParams {
                slot_ms: *slot_ms,
                ..MeterParams::default()
            },
            *rated_capacity_w,
            replacement.as_ref(),
        )),
        _ => None,
    }
}

fn receipt_message(
    v: &Verifier,
    node: PublicKey,
    id: ChallengeId,
    verdict: Result<(), RejectReason>,
    tally: Option<depin_proof::receipt::TallySnapshot>,
) -> v1::VerifierMessage {
    let receipt = v.sign_receipt(node, id, ProofKind::Meter, verdict, tally.is_some(), tally);
    super::decide::receipt_message(&receipt, None)
}

impl Live {
    /// One meter reading: decided now, recorded before its receipt leaves. Awaited in the
    /// session loop (readings come once per slot), so a node's links are recorded in order.
    pub(super) async fn meter_reading(
        &mut self,
        entry: NodeEntry,
        wire_reading: &v1::MeterReading,
    ) -> Result<(), Status> {
        let v = self.v.clone();
        let node = self.session.node;
        let started = std::time::Instant::now();
        let signed = match wire::meter_reading_from_wire(node, wire_reading) {
            Ok(signed) => signed,
            Err(reason) => {
                v.metrics.count(KIND, Err(reason));
                let id = ChallengeId([0; 32]);
                return self
                    .send(receipt_message(&v, node, id, Err(reason), None))
                    .await;
            }
        };
        let id = ChallengeId(signed.hash());
        let Some((params, rated_capacity_w, replacement)) = params_for(&entry.declared) else {
            // Not a (valid) MeterBridge: nothing it reads can be credited.
            v.metrics.count(KIND, Err(RejectReason::UnknownNode));
            let reply = receipt_message(&v, node, id, Err(RejectReason::UnknownNode), None);
            return self.send(reply).await;
        };
        let decided = v
            .meters
            .decide(&signed, &params, rated_capacity_w, replacement, now_ms());
        v.metrics
            .verification_duration
            .with_label_values(&[KIND])
            .observe(started.elapsed().as_secs_f64());
        // A reading is the work of its slot's start: the chain still moves on when that is
        // too late to count (the next link must follow it), but it earns nothing.
        let slot_start_ms = signed.reading.slot.saturating_mul(params.slot_ms);
        let result = v.in_time(
            Some(&node),
            slot_start_ms,
            decided
                .verdict
                .as_ref()
                .map(|verified| u128::from(verified.delta_wh))
                .map_err(|r| *r),
        );
        v.metrics.count(KIND, result.map(|_| ()));
        if decided.verdict == Err(RejectReason::Duplicate) {
            // A resend of an accepted reading (reconnect): settle it without counting twice.
            return self
                .send(receipt_message(
                    &v,
                    node,
                    id,
                    Err(RejectReason::Duplicate),
                    None,
                ))
                .await;
        }
        match v.recorder.record(&entry, result).await {
            Ok(tally) => {
                let reply = receipt_message(&v, node, id, result.map(|_| ()), Some(tally));
                self.send(reply).await
            }
            Err(err) => {
                if let Ok(verified) = &decided.verdict {
                    v.meters.undo(&node, &verified.tip, decided.before);
                }
                Err(Status::unavailable(format!("{err}; reconnect and resend")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_proof::identity::NodeKey;
    use depin_proof::meter::ChainHead;

    const SLOT_MS: u64 = 10_000;

    fn params() -> MeterParams {
        MeterParams {
            slot_ms: SLOT_MS,
            ..MeterParams::default()
        }
    }

    #[test]
    fn a_restarted_verifier_adopts_the_first_reading_as_baseline_then_checks_links() {
        let key = NodeKey::from_seed([5; 32]);
        let mut head = ChainHead::default();
        let now = 1_000 * SLOT_MS;
        // Links 0..3 went to a previous verifier.
        for (i, wh) in [(996, 100), (997, 110), (998, 120)] {
            head.next(&key, "SN", i, wh, 3_600, 10).expect("signed");
        }
        let book = MeterBook::default();
        let baseline = head.next(&key, "SN", 999, 130, 3_600, 10).expect("signed");
        let decided = book.decide(&baseline, &params(), 10_000, None, now);
        assert_eq!(decided.verdict.map(|v| v.delta_wh), Ok(0));
        let rollback = head
            .next(&key, "SN", 1_000, 125, 3_600, 10)
            .expect("signed");
        let decided = book.decide(&rollback, &params(), 10_000, None, now);
        assert_eq!(decided.verdict, Err(RejectReason::RegisterRollback));
    }

    fn bridge(replaced_at: &str, new_serial: Option<&str>) -> depin_crds::MeterBridge {
        let text = include_str!("../../../examples/minimal-fleet.yaml");
        let doc = text
            .split("\n---\n")
            .find(|d| d.contains("kind: MeterBridge"))
            .expect("example MeterBridge");
        let mut bridge: depin_crds::MeterBridge = serde_yaml::from_str(doc).expect("parses");
        bridge.spec.replacement = Some(depin_crds::MeterReplacement {
            replaced_at: replaced_at.into(),
            new_serial: new_serial.map(Into::into),
        });
        bridge
    }

    #[test]
    fn a_recorded_swap_becomes_the_first_slot_starting_after_it() {
        let swap = replacement_of(&bridge("2025-06-01T10:00:05+02:00", Some("SN-2")))
            .expect("RFC 3339 parses");
        let at_ms = 1_748_764_805_000; // 2025-06-01T08:00:05Z
        assert_eq!(swap.at_ms, at_ms);
        // The agent read slot ⌊at/slot⌋ at its start, before the swap: the next slot is
        // the new meter's first.
        assert_eq!(swap.slot_for(&params(), "SN-2"), Some(at_ms / SLOT_MS + 1));
        assert_eq!(
            swap.slot_for(&params(), "SN-3"),
            None,
            "not the recorded serial"
        );
        let on_the_boundary = Replacement {
            at_ms: 100 * SLOT_MS,
            new_serial: None,
        };
        assert_eq!(on_the_boundary.slot_for(&params(), "any"), Some(100));
        assert_eq!(replacement_of(&bridge("yesterday", None)), None);
    }

    #[test]
    fn a_swap_excuses_one_new_serial_link_and_nothing_after_it() {
        let key = NodeKey::from_seed([8; 32]);
        let now = 1_000 * SLOT_MS;
        let swap = Replacement {
            at_ms: 999 * SLOT_MS - 1,
            new_serial: None,
        };
        let book = MeterBook::default();
        let mut head = ChainHead::default();
        let mut decide = |serial: &str, slot: u64, wh: u64, swap: Option<&Replacement>| {
            let signed = head.next(&key, serial, slot, wh, 0, 1).expect("signed");
            book.decide(&signed, &params(), 10_000, swap, now).verdict
        };
        assert!(decide("OLD", 998, 5_000, Some(&swap)).is_ok());
        assert_eq!(
            decide("NEW", 999, 0, Some(&swap)).map(|v| v.delta_wh),
            Ok(0)
        );
        assert_eq!(
            decide("NEW", 1_000, 0, Some(&swap)).map(|v| v.delta_wh),
            Ok(0)
        );
        assert_eq!(
            decide("OLD", 1_001, 0, Some(&swap)).map(|_| ()),
            Err(RejectReason::MeterSerialChanged)
        );
    }

    #[test]
    fn a_forged_baseline_and_a_claimed_serial_are_refused() {
        let (honest, thief) = (NodeKey::from_seed([6; 32]), NodeKey::from_seed([7; 32]));
        let book = MeterBook::default();
        let now = 1_000 * SLOT_MS;
        let first = ChainHead::default()
            .next(&honest, "SN", 1_000, 10, 0, 1)
            .expect("signed");
        assert!(
            book.decide(&first, &params(), 10_000, None, now)
                .verdict
                .is_ok()
        );
        let mut head = ChainHead {
            next_seq: 5,
            ..ChainHead::default()
        };
        let stolen = head.next(&thief, "SN", 1_000, 10, 0, 1).expect("signed");
        assert_eq!(
            book.decide(&stolen, &params(), 10_000, None, now).verdict,
            Err(RejectReason::DuplicateMeterSerial)
        );
        let mut forged = head.next(&thief, "SN-2", 1_001, 10, 0, 1).expect("signed");
        forged.reading.cumulative_wh += 1;
        assert_eq!(
            book.decide(&forged, &params(), 10_000, None, now).verdict,
            Err(RejectReason::BadSignature)
        );
    }

    #[test]
    fn a_deleted_bridge_releases_its_serial_for_the_next_owner() {
        let (old, new) = (NodeKey::from_seed([8; 32]), NodeKey::from_seed([9; 32]));
        let book = MeterBook::default();
        let now = 1_000 * SLOT_MS;
        let reading = |key: &NodeKey| {
            ChainHead::default()
                .next(key, "SN-X", 1_000, 10, 0, 1)
                .expect("signed")
        };
        assert!(
            book.decide(&reading(&old), &params(), 10_000, None, now)
                .verdict
                .is_ok()
        );
        assert_eq!(
            book.decide(&reading(&new), &params(), 10_000, None, now)
                .verdict,
            Err(RejectReason::DuplicateMeterSerial),
            "claimed while the first bridge exists"
        );
        book.forget(&old.public());
        assert!(
            book.decide(&reading(&new), &params(), 10_000, None, now)
                .verdict
                .is_ok()
        );
        assert!(book.tip(&old.public()).is_none(), "the old chain is gone");
    }
}
