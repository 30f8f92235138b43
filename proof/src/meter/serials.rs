//! The fleet's meter serials: one meter, one bridge (Glow: one device, one owner).
//!
//! A claim is durable once the verifier has recorded it in the claimant's MeterBridge
//! status (`status.meter.serialClaim {serial, claimedAtMs}`); on a restart every recorded
//! claim is read back before any reading is judged, and of two bridges claiming one
//! serial the EARLIER recorded claim wins, whoever speaks first afterwards. Ties (two
//! claims recorded in the same millisecond, only possible by hand) go to the smaller key
//! so that every replica settles them alike.

use std::collections::BTreeMap;

use super::verify::SerialRegistry;
use crate::identity::PublicKey;

/// One bridge's claim on a serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialClaim {
    /// The meter serial.
    pub serial: String,
    /// The claiming node.
    pub node: PublicKey,
    /// When the claim was first made, unix ms.
    pub claimed_at_ms: u64,
}

impl SerialClaim {
    /// Whether this claim beats `other` for the same serial: earlier, then smaller key.
    fn beats(&self, other: &SerialClaim) -> bool {
        (self.claimed_at_ms, self.node.as_bytes()) < (other.claimed_at_ms, other.node.as_bytes())
    }
}

/// What [`SerialBook::claim`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The node already holds the serial: nothing new to record.
    Held,
    /// A new claim: record it in the node's CR before acknowledging the reading.
    New(SerialClaim),
    /// Another node's claim is earlier: the reading is refused (`DuplicateMeterSerial`).
    Lost(SerialClaim),
}

/// Every serial's winning claim, plus the claims that lost (kept so that a winner's
/// deletion hands the serial to the next-earliest recorded claim, not to whoever speaks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SerialBook {
    claims: BTreeMap<String, Vec<SerialClaim>>,
}

impl SerialBook {
    /// Reads back a claim recorded in a CR (restart, or a MeterBridge seen by the watch).
    /// Idempotent; a node's own later record of the same serial keeps its earliest time.
    pub fn restore(&mut self, claim: SerialClaim) {
        let claims = self.claims.entry(claim.serial.clone()).or_default();
        match claims.iter_mut().find(|c| c.node == claim.node) {
            Some(known) if claim.claimed_at_ms < known.claimed_at_ms => *known = claim,
            Some(_) => {}
            None => claims.push(claim),
        }
    }

    /// The winning claim on `serial`, if any.
    pub fn winner(&self, serial: &str) -> Option<&SerialClaim> {
        self.claims
            .get(serial)?
            .iter()
            .reduce(|best, c| if c.beats(best) { c } else { best })
    }

    /// `node` reads `serial` at `now_ms`: held, newly claimed (then remembered here; the
    /// caller records it durably), or lost to an earlier claim.
    pub fn claim(&mut self, serial: &str, node: PublicKey, now_ms: u64) -> ClaimOutcome {
        match self.winner(serial) {
            Some(winner) if winner.node == node => ClaimOutcome::Held,
            Some(winner) => ClaimOutcome::Lost(winner.clone()),
            None => {
                let claim = SerialClaim {
                    serial: serial.to_owned(),
                    node,
                    claimed_at_ms: now_ms,
                };
                self.restore(claim.clone());
                ClaimOutcome::New(claim)
            }
        }
    }

    /// Forgets every claim of `node` (its MeterBridge was deleted), or of `node` on
    /// `serial` only (a claim that could not be recorded).
    pub fn forget(&mut self, node: &PublicKey, serial: Option<&str>) {
        for (s, claims) in &mut self.claims {
            if serial.is_none_or(|only| only == s) {
                claims.retain(|c| &c.node != node);
            }
        }
        self.claims.retain(|_, claims| !claims.is_empty());
    }
}

impl SerialRegistry for SerialBook {
    fn claimed_by(&self, serial: &str) -> Option<PublicKey> {
        self.winner(serial).map(|c| c.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeKey;

    fn node(seed: u8) -> PublicKey {
        NodeKey::from_seed([seed; 32]).public()
    }

    fn claim(seed: u8, at: u64) -> SerialClaim {
        SerialClaim {
            serial: "SN".into(),
            node: node(seed),
            claimed_at_ms: at,
        }
    }

    #[test]
    fn the_earlier_recorded_claim_wins_whoever_speaks_first() {
        // (claims read back from CRs, who reads first after the restart) → winner
        let table: &[(&[SerialClaim], u8, u8)] = &[
            // Honest bridge recorded at t=100; the squatter speaks first after a restart.
            (&[claim(1, 100)], 2, 1),
            // Both recorded (the squatter's by a partitioned replica): earlier wins.
            (&[claim(2, 200), claim(1, 100)], 2, 1),
            // Nothing recorded: the first reader claims it.
            (&[], 2, 2),
            // Same millisecond: the smaller key, on every replica.
            (&[claim(1, 100), claim(2, 100)], 2, {
                if node(1).as_bytes() < node(2).as_bytes() {
                    1
                } else {
                    2
                }
            }),
        ];
        for (i, (recorded, first, winner)) in table.iter().enumerate() {
            let mut book = SerialBook::default();
            recorded.iter().cloned().for_each(|c| book.restore(c));
            let outcome = book.claim("SN", node(*first), 500);
            assert_eq!(book.claimed_by("SN"), Some(node(*winner)), "row {i}");
            let expected_lost = *first != *winner;
            assert_eq!(
                matches!(outcome, ClaimOutcome::Lost(_)),
                expected_lost,
                "row {i}: {outcome:?}"
            );
        }
    }

    #[test]
    fn claims_are_new_once_then_held_and_pass_on_when_forgotten() {
        let mut book = SerialBook::default();
        assert_eq!(
            book.claim("SN", node(1), 100),
            ClaimOutcome::New(claim(1, 100))
        );
        assert_eq!(book.claim("SN", node(1), 900), ClaimOutcome::Held);
        book.restore(claim(2, 300));
        assert_eq!(book.claimed_by("SN"), Some(node(1)));
        // A later record by the same node does not move its claim forward in time.
        book.restore(claim(1, 700));
        assert_eq!(book.winner("SN"), Some(&claim(1, 100)));
        book.forget(&node(1), None);
        assert_eq!(book.claimed_by("SN"), Some(node(2)), "next-earliest claim");
        book.forget(&node(2), Some("SN"));
        assert_eq!(book.claimed_by("SN"), None);
    }
}
