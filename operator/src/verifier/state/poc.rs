//! Proof-of-Coverage bookkeeping: open rounds (a beacon's reports, held until its witness
//! lag window passes), the PoC history the rules read, and recently settled receipts for
//! answering resends. Settling a round is `decide::poc`.
//!
//! The PoC history (last beacon, last valid beacon and witness per hotspot, and when the
//! verifier's history of it began) is written to the hotspot's `status.poc` with every
//! settled report's tally and read back before a restarted verifier settles any round.
//! Reciprocity treats a hotspot with no valid beacon or witness as active from where its
//! history began: a new hotspot gets one reciprocity window of benefit of the doubt, once;
//! a restart does not renew it (a mute beaconer stays void across restarts).
//!
//! `R` is where a report's receipt goes (the session layer's outbound channel); this
//! module only carries it.

use super::index::NodeEntry;
use depin_proof::entropy::ChallengeId;
use depin_proof::identity::PublicKey;
use depin_proof::poc::{BeaconId, BeaconSubmission, PocHistory, WitnessSubmission};
use depin_proof::receipt::Receipt;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// How long a settled report's receipt is kept to answer resends with Replay.
pub const SETTLED_RETENTION_MS: u64 = 10 * 60 * 1000;

/// A report waiting in a round, with who sent it and where its receipt goes.
pub struct Filed<T, R> {
    /// The report and when it arrived.
    pub submission: T,
    /// The reporting node.
    pub entry: NodeEntry,
    /// Where its receipt goes.
    pub reply: R,
    /// The report's id (its receipt's challenge).
    pub id: ChallengeId,
}

/// One beacon's reports.
pub struct Round<R> {
    /// The beacon report, once in.
    pub beacon: Option<Filed<BeaconSubmission, R>>,
    /// Witness reports in receive order.
    pub witnesses: Vec<Filed<WitnessSubmission, R>>,
}

impl<R> Default for Round<R> {
    fn default() -> Self {
        Self {
            beacon: None,
            witnesses: Vec::new(),
        }
    }
}

impl<R> Round<R> {
    fn holds(&self, id: &ChallengeId) -> bool {
        self.beacon.as_ref().is_some_and(|b| b.id == *id)
            || self.witnesses.iter().any(|w| w.id == *id)
    }
}

/// A report to file.
pub enum Report<R> {
    /// A beaconer's report.
    Beacon(Filed<BeaconSubmission, R>),
    /// A witness's report.
    Witness(Filed<WitnessSubmission, R>),
}

/// The verifier's PoC history (receive times, unix ms).
#[derive(Debug, Default)]
pub struct History {
    /// Last beacon that passed its own rules, per hotspot.
    pub last_beacon: HashMap<PublicKey, u64>,
    /// Last beacon with at least one valid witness, per hotspot.
    pub last_valid_beacon: HashMap<PublicKey, u64>,
    /// Last valid witness, per hotspot.
    pub last_valid_witness: HashMap<PublicKey, u64>,
    /// When this history began (the verifier's start): what reciprocity assumes for a
    /// hotspot without a record (module docs).
    pub since_ms: u64,
    /// Where a hotspot's history began earlier than `since_ms`: restored from its
    /// `status.poc`, so a restart does not renew its benefit of the doubt.
    pub since: HashMap<PublicKey, u64>,
}

impl History {
    fn since_of(&self, node: &PublicKey) -> u64 {
        self.since.get(node).copied().unwrap_or(self.since_ms)
    }

    /// `node`'s durable record (`status.poc`).
    pub fn record_of(&self, node: &PublicKey) -> depin_crds::PocRecord {
        depin_crds::PocRecord {
            since_ms: self.since_of(node),
            last_beacon_ms: self.last_beacon.get(node).copied(),
            last_valid_beacon_ms: self.last_valid_beacon.get(node).copied(),
            last_valid_witness_ms: self.last_valid_witness.get(node).copied(),
        }
    }

    /// Takes back `node`'s record after a restart; whatever is newer in memory stays.
    pub fn restore(&mut self, node: PublicKey, record: &depin_crds::PocRecord) {
        let since = record.since_ms.min(self.since_of(&node));
        self.since.insert(node, since);
        for (map, at) in [
            (&mut self.last_beacon, record.last_beacon_ms),
            (&mut self.last_valid_beacon, record.last_valid_beacon_ms),
            (&mut self.last_valid_witness, record.last_valid_witness_ms),
        ] {
            if let Some(at) = at {
                let kept = map.entry(node).or_insert(at);
                *kept = (*kept).max(at);
            }
        }
    }
}

impl PocHistory for History {
    fn last_beacon_ms(&self, node: &PublicKey) -> Option<u64> {
        self.last_beacon.get(node).copied()
    }
    fn last_valid_beacon_ms(&self, node: &PublicKey) -> Option<u64> {
        Some(
            self.last_valid_beacon
                .get(node)
                .copied()
                .unwrap_or_else(|| self.since_of(node)),
        )
    }
    fn last_valid_witness_ms(&self, node: &PublicKey) -> Option<u64> {
        Some(
            self.last_valid_witness
                .get(node)
                .copied()
                .unwrap_or_else(|| self.since_of(node)),
        )
    }
}

/// Everything the book holds.
pub struct PocState<R> {
    /// Open rounds by beacon.
    pub rounds: HashMap<BeaconId, Round<R>>,
    /// What the rules read of the past.
    pub history: History,
    /// Receipts of settled reports and when they may be forgotten.
    pub settled: HashMap<ChallengeId, (Receipt, u64)>,
}

impl<R> Default for PocState<R> {
    fn default() -> Self {
        Self {
            rounds: HashMap::new(),
            history: History::default(),
            settled: HashMap::new(),
        }
    }
}

/// Open PoC rounds and the history the rules read (in memory; see the module docs).
pub struct PocBook<R> {
    inner: Mutex<PocState<R>>,
}

impl<R> PocBook<R> {
    /// An empty book whose history begins at `since_ms` (the verifier's start).
    pub fn new(since_ms: u64) -> Self {
        let book = Self {
            inner: Mutex::new(PocState::default()),
        };
        book.lock().history.since_ms = since_ms;
        book
    }

    /// The book, locked. Every critical section leaves the maps consistent before it can
    /// panic, so a poisoned lock is still usable.
    pub fn lock(&self) -> MutexGuard<'_, PocState<R>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Files a report under its beacon; returns true when this opened a new round (the
    /// caller schedules its settlement), or the original receipt for a settled report.
    pub fn file(&self, beacon: BeaconId, report: Report<R>) -> Result<bool, Box<Receipt>> {
        let mut state = self.lock();
        let id = match &report {
            Report::Beacon(f) => f.id,
            Report::Witness(f) => f.id,
        };
        if let Some((receipt, _)) = state.settled.get(&id) {
            return Err(Box::new(receipt.clone()));
        }
        let opened = !state.rounds.contains_key(&beacon);
        let round = state.rounds.entry(beacon).or_default();
        if round.holds(&id) {
            return Ok(false); // a resend while the round is open: its receipt will come
        }
        match report {
            Report::Beacon(filed) if round.beacon.is_none() => round.beacon = Some(filed),
            // A second beacon report with the same payload is a replay of the first.
            Report::Beacon(_) => {}
            Report::Witness(filed) => round.witnesses.push(filed),
        }
        Ok(opened)
    }

    /// The policy of the round's beaconer, once its beacon report is in.
    pub fn beaconer_policy(&self, beacon: &BeaconId) -> Option<String> {
        let state = self.lock();
        let filed = state.rounds.get(beacon)?.beacon.as_ref()?;
        Some(filed.entry.reward_policy.clone())
    }

    /// Keeps a settled report's receipt for resends (and forgets expired ones).
    pub fn remember(&self, id: ChallengeId, receipt: Receipt, now: u64) {
        let mut state = self.lock();
        state.settled.retain(|_, (_, expires)| *expires > now);
        state
            .settled
            .insert(id, (receipt, now + SETTLED_RETENTION_MS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_proof::identity::NodeKey;

    #[test]
    fn a_hotspot_without_a_record_counts_as_active_since_the_verifier_started() {
        let book = PocBook::<()>::new(1_000);
        let (known, unknown) = (
            NodeKey::from_seed([1; 32]).public(),
            NodeKey::from_seed([2; 32]).public(),
        );
        let mut state = book.lock();
        state.history.last_valid_beacon.insert(known, 5_000);
        let h = &state.history;
        assert_eq!(h.last_valid_beacon_ms(&known), Some(5_000));
        assert_eq!(h.last_valid_beacon_ms(&unknown), Some(1_000));
        assert_eq!(h.last_valid_witness_ms(&unknown), Some(1_000));
        // The beacon-rate and density rules see only real beacons.
        assert_eq!(h.last_beacon_ms(&unknown), None);
    }
}
