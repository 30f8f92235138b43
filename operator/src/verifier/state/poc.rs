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
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The hex-density scales of the active hotspots, recomputed only when the set of active
/// hotspots (or a location) changed since the last round: settling used to rebuild the
/// fleet's density map (H3 parents and k = 1 disks at seven resolutions, O(N log N)) for
/// every round, while between two rounds the active set almost never changes (a hotspot's
/// first beacon, or one passing the 60 h interactivity limit).
#[derive(Debug, Default)]
pub struct DensityCache {
    /// The active hotspots the scales were computed for, sorted by key.
    active: Vec<(PublicKey, h3o::CellIndex)>,
    scales: BTreeMap<PublicKey, depin_proof::reward::Decimal>,
    /// Times the map was rebuilt (for tests and the bench).
    pub rebuilds: u64,
}

impl DensityCache {
    /// `key`'s scale among `active` (any order), rebuilding the map only when `active`
    /// differs from the set it was built for.
    pub fn scale_of(
        &mut self,
        mut active: Vec<(PublicKey, h3o::CellIndex)>,
        key: &PublicKey,
        levels: &[depin_proof::poc::DensityLevel],
    ) -> Option<depin_proof::reward::Decimal> {
        active.sort_unstable_by_key(|a| a.0);
        if active != self.active || self.rebuilds == 0 {
            self.scales = depin_proof::poc::hex_scales(&active, levels);
            self.active = active;
            self.rebuilds += 1;
        }
        self.scales.get(key).copied()
    }
}

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
    /// Hex-density scales, rebuilt only when the active set changes.
    pub density: DensityCache,
}

impl<R> Default for PocState<R> {
    fn default() -> Self {
        Self {
            rounds: HashMap::new(),
            history: History::default(),
            settled: HashMap::new(),
            density: DensityCache::default(),
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

#[cfg(test)]
mod density_tests {
    use super::*;
    use depin_proof::identity::NodeKey;
    use depin_proof::poc::{HIP104_DENSITY, cell_at, hex_scales};

    #[test]
    fn the_density_map_is_rebuilt_only_when_the_active_set_changes() {
        let key = |i: u8| NodeKey::from_seed([i; 32]).public();
        let here = cell_at(52.3700, 4.8900, 12).expect("valid");
        let far = cell_at(52.3880, 4.8900, 12).expect("valid");
        let mut cache = DensityCache::default();
        let two = vec![(key(1), here), (key(2), far)];
        let scale = |cache: &mut DensityCache, set: &Vec<(PublicKey, h3o::CellIndex)>, k| {
            cache.scale_of(set.clone(), &k, &HIP104_DENSITY)
        };
        let uncached = |set: &Vec<(PublicKey, h3o::CellIndex)>, k: PublicKey| {
            hex_scales(set, &HIP104_DENSITY).get(&k).copied()
        };
        assert_eq!(scale(&mut cache, &two, key(1)), uncached(&two, key(1)));
        // The same set in another order: no rebuild.
        let reordered = vec![(key(2), far), (key(1), here)];
        assert_eq!(
            scale(&mut cache, &reordered, key(2)),
            uncached(&two, key(2))
        );
        assert_eq!(cache.rebuilds, 1);
        // A third hotspot stacked on the first: rebuilt, and both now share the cell.
        let three = vec![(key(1), here), (key(2), far), (key(3), here)];
        let shared = scale(&mut cache, &three, key(1));
        assert_eq!(shared, uncached(&three, key(1)));
        assert_ne!(shared, uncached(&two, key(1)));
        assert_eq!(cache.rebuilds, 2);
        // A hotspot moved: rebuilt.
        let moved = vec![(key(1), here), (key(2), far), (key(3), far)];
        assert_eq!(scale(&mut cache, &moved, key(3)), uncached(&moved, key(3)));
        assert_eq!(cache.rebuilds, 3);
        // Not active: no scale (the caller pays DEFAULT_TX_SCALE).
        assert_eq!(scale(&mut cache, &moved, key(9)), None);
        assert_eq!(cache.rebuilds, 3);
    }
}
