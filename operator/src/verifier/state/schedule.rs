//! When a session's next challenge is due. Pure: times are unix ms arguments.
//!
//! Storage: every committed sector once per proving period, in its deadline (sector s is
//! due in deadline s mod D), sent as soon as the deadline's beacon tick has been issued
//! (`StorageParams::challenge_tick`: the first tick at or after the window opens, so the
//! challenged leaves are unknowable before the window). Deadlines that opened before this
//! verifier started are skipped: a previous leader may already have recorded them, and its
//! challenge ids (from its own beacon secret) cannot be recognised, so re-challenging could
//! count one sector-deadline twice.
//!
//! GPU: rounds belong to the node, not to a session. Round r of the global grid spans
//! [r × interval, (r + 1) × interval); a node gets at most one challenge per round however
//! many sessions it opens (a reconnect loop earns nothing extra), and every round it does
//! not settle — no session, no answer, an answer never opened — is recorded as a
//! `NoResponse` miss once the round's last possible deadline has passed, so availability
//! (accepted / recorded) counts missed rounds. Rounds that began before this verifier
//! started are not accounted: a previous leader may have held them.

use depin_proof::entropy::{ChallengeId, EntropyConfig};
use depin_proof::storage::{Deadline, SectorId, StorageParams};
use std::collections::{BTreeMap, HashSet};

/// The GPU round `now_ms` falls in.
pub fn gpu_round(now_ms: u64, interval_ms: u64) -> u64 {
    now_ms / interval_ms.max(1)
}

/// The GPU rounds that can be accounted at `now_ms`: after `accounted` (the last one
/// done; `None` before the first), starting no earlier than the verifier's start, and
/// whose last challenge (issued at the latest at the round's end) has closed with `grace`
/// to spare for answers already in flight.
pub fn accountable_gpu_rounds(
    started_ms: u64,
    accounted: Option<u64>,
    now_ms: u64,
    interval_ms: u64,
    deadline_ms: u64,
    grace_ms: u64,
) -> std::ops::Range<u64> {
    let interval = interval_ms.max(1);
    let first_whole = started_ms.div_ceil(interval);
    let from = accounted.map_or(first_whole, |r| (r + 1).max(first_whole));
    // Round r is done once (r + 1) × interval + deadline + grace ≤ now.
    let done_until = now_ms
        .saturating_sub(deadline_ms.saturating_add(grace_ms))
        .checked_div(interval)
        .unwrap_or(0);
    from..done_until.max(from)
}

/// One session's schedule.
#[derive(Debug, Default)]
pub struct Schedule {
    /// (sector, period) pairs already challenged on this session.
    handled: HashSet<(SectorId, u64)>,
    /// GPU nodes: the next round this session looks at (None: not a GPU node).
    next_gpu_round: Option<u64>,
    /// GPU round length.
    gpu_interval_ms: u64,
    /// Storage deadlines opening before this (the verifier's start) are not challenged.
    not_before_ms: u64,
    /// Challenges by the time their window closes, to notice misses.
    closes: BTreeMap<u64, Vec<ChallengeId>>,
    /// When the next beacon challenge is due (None: not a hotspot).
    next_beacon_ms: Option<u64>,
    /// The hotspot's beacon offset inside each interval.
    beacon_offset_ms: u64,
}

/// When `sector`'s next unhandled deadline opening at or after `not_before_ms` can be
/// challenged, and that deadline. Deadlines whose beacon tick comes only after they close
/// (a tick longer than the deadline) are skipped; settings validation prevents that.
pub fn next_storage(
    sector: SectorId,
    handled: &HashSet<(SectorId, u64)>,
    params: &StorageParams,
    entropy: &EntropyConfig,
    now_ms: u64,
    not_before_ms: u64,
) -> Option<(u64, Deadline)> {
    let mut deadline = params.next_deadline_for(sector, now_ms)?;
    for _ in 0..2 {
        let tick_at = entropy.issued_at_ms(params.challenge_tick(&deadline, entropy));
        let issue_at = deadline.opens_at_ms.max(tick_at);
        let fresh =
            !handled.contains(&(sector, deadline.period)) && deadline.opens_at_ms >= not_before_ms;
        if fresh && issue_at < deadline.closes_at_ms {
            return Some((issue_at, deadline));
        }
        deadline = params.deadline(deadline.period + 1, deadline.index)?;
    }
    None
}

impl Schedule {
    /// A schedule; storage deadlines opening before `not_before_ms` (the verifier's start)
    /// are skipped. GPU challenges are not a session's: see [`gpu_round`].
    pub fn new(not_before_ms: u64) -> Self {
        Self {
            not_before_ms,
            ..Self::default()
        }
    }

    /// Starts GPU rounds for a GPU node: the round under way at `now_ms` is due at once
    /// (it is issued unless another session of the node already holds it).
    pub fn start_gpu_rounds(&mut self, now_ms: u64, interval_ms: u64) {
        self.gpu_interval_ms = interval_ms.max(1);
        self.next_gpu_round = Some(gpu_round(now_ms, self.gpu_interval_ms));
    }

    /// The GPU round due now, if this session has not looked at it yet; the next one is
    /// due when its round starts.
    pub fn due_gpu_round(&mut self, now_ms: u64) -> Option<u64> {
        let next = self.next_gpu_round?;
        let current = gpu_round(now_ms, self.gpu_interval_ms);
        (next <= current).then(|| {
            self.next_gpu_round = Some(current + 1);
            current
        })
    }

    /// Starts beacon challenges for a hotspot: one per interval, at `offset` (any u64; it
    /// is reduced into the first half of the interval, so the report is received inside
    /// the interval it was issued in), from the first such slot not before `now_ms`.
    pub fn start_beacons(&mut self, now_ms: u64, interval_ms: u64, offset: u64) {
        let interval = interval_ms.max(1);
        self.beacon_offset_ms = offset % (interval / 2).max(1);
        let this = (now_ms / interval) * interval + self.beacon_offset_ms;
        self.next_beacon_ms = Some(if this >= now_ms {
            this
        } else {
            this + interval
        });
    }

    /// Whether a beacon challenge is due; if so the next one is set an interval on.
    pub fn due_beacon(&mut self, now_ms: u64, interval_ms: u64) -> bool {
        let interval = interval_ms.max(1);
        match self.next_beacon_ms {
            Some(at) if at <= now_ms => {
                self.next_beacon_ms =
                    Some((now_ms / interval + 1) * interval + self.beacon_offset_ms);
                true
            }
            _ => false,
        }
    }

    /// The earliest time anything is due (None: nothing scheduled).
    pub fn next_due(
        &self,
        sectors: impl IntoIterator<Item = SectorId>,
        params: &StorageParams,
        entropy: &EntropyConfig,
        now_ms: u64,
    ) -> Option<u64> {
        let storage = sectors
            .into_iter()
            .filter_map(|sector| {
                next_storage(
                    sector,
                    &self.handled,
                    params,
                    entropy,
                    now_ms,
                    self.not_before_ms,
                )
            })
            .map(|(at, _)| at)
            .min();
        let gpu = self
            .next_gpu_round
            .map(|r| r.saturating_mul(self.gpu_interval_ms));
        [
            storage,
            gpu,
            self.next_beacon_ms,
            self.closes.keys().next().copied(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Storage deadlines due now; each is marked handled.
    pub fn due_storage(
        &mut self,
        sectors: impl IntoIterator<Item = SectorId>,
        params: &StorageParams,
        entropy: &EntropyConfig,
        now_ms: u64,
    ) -> Vec<(SectorId, Deadline)> {
        let due: Vec<_> = sectors
            .into_iter()
            .filter_map(|sector| {
                let (at, deadline) = next_storage(
                    sector,
                    &self.handled,
                    params,
                    entropy,
                    now_ms,
                    self.not_before_ms,
                )?;
                (at <= now_ms).then_some((sector, deadline))
            })
            .collect();
        for (sector, deadline) in &due {
            self.handled.insert((*sector, deadline.period));
        }
        // Forget pairs from periods that are over, so the set stays small.
        let current = now_ms / params.proving_period_ms.max(1);
        self.handled.retain(|(_, period)| *period + 1 >= current);
        due
    }

    /// Notes that `id`'s window closes at `at_ms`.
    pub fn watch_close(&mut self, at_ms: u64, id: ChallengeId) {
        self.closes.entry(at_ms).or_default().push(id);
    }

    /// Challenges whose window has closed by `now_ms` (each returned once).
    pub fn closed(&mut self, now_ms: u64) -> Vec<ChallengeId> {
        let later = self.closes.split_off(&now_ms.saturating_add(1));
        std::mem::replace(&mut self.closes, later)
            .into_values()
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_proof::storage::SectorCommitment;

    fn sectors(ids: &[u64]) -> BTreeMap<SectorId, SectorCommitment> {
        ids.iter()
            .map(|&id| {
                let c = SectorCommitment {
                    sector: SectorId(id),
                    sector_bytes: 1,
                    leaf_size: 1,
                    leaf_count: 1,
                    root: [0; 32],
                };
                (SectorId(id), c)
            })
            .collect()
    }

    #[test]
    fn each_sector_is_challenged_once_per_period_after_its_tick() {
        // 60 s period, 6 deadlines of 10 s, beacon tick 4 s: deadline 1 opens at 10 s but its
        // first tick is at 12 s.
        let params = StorageParams {
            proving_period_ms: 60_000,
            deadlines_per_period: 6,
            ..StorageParams::default()
        };
        let entropy = EntropyConfig {
            tick_ms: 4_000,
            lifespan_ms: 12_000,
        };
        let sectors = sectors(&[0, 1]);
        let mut schedule = Schedule::new(0);
        assert_eq!(
            schedule.next_due(sectors.keys().copied(), &params, &entropy, 0),
            Some(0)
        );
        let due = schedule.due_storage(sectors.keys().copied(), &params, &entropy, 0);
        assert_eq!(
            due.iter().map(|(s, d)| (s.0, d.index)).collect::<Vec<_>>(),
            vec![(0, 0)]
        );
        assert_eq!(
            schedule.next_due(sectors.keys().copied(), &params, &entropy, 1),
            Some(12_000)
        );
        assert!(
            schedule
                .due_storage(sectors.keys().copied(), &params, &entropy, 11_999)
                .is_empty()
        );
        assert_eq!(
            schedule
                .due_storage(sectors.keys().copied(), &params, &entropy, 12_000)
                .len(),
            1
        );
        // Both handled this period: next is sector 0 in the next period.
        assert_eq!(
            schedule.next_due(sectors.keys().copied(), &params, &entropy, 12_001),
            Some(60_000)
        );
    }

    #[test]
    fn a_session_joining_mid_deadline_is_challenged_at_once_unless_it_opened_before_the_start() {
        let params = StorageParams {
            proving_period_ms: 60_000,
            deadlines_per_period: 6,
            ..StorageParams::default()
        };
        let entropy = EntropyConfig {
            tick_ms: 1_000,
            lifespan_ms: 3_000,
        };
        let schedule = Schedule::new(0);
        assert_eq!(
            schedule.next_due(sectors(&[1]).keys().copied(), &params, &entropy, 15_000),
            Some(10_000)
        );
        // A verifier that started at 12 s leaves deadline 1 of period 0 to its predecessor.
        let restarted = Schedule::new(12_000);
        assert_eq!(
            restarted.next_due(sectors(&[1]).keys().copied(), &params, &entropy, 15_000),
            Some(70_000)
        );
    }

    #[test]
    fn beacons_come_once_per_interval_at_a_fixed_offset() {
        let mut schedule = Schedule::new(0);
        // Offset 2_500 in a 10 s interval; joining at 13 s: the next slot is 22.5 s.
        schedule.start_beacons(13_000, 10_000, 2_500);
        assert!(!schedule.due_beacon(22_499, 10_000));
        assert!(schedule.due_beacon(22_500, 10_000));
        assert!(!schedule.due_beacon(29_999, 10_000));
        assert!(schedule.due_beacon(32_600, 10_000));
        // An offset past half the interval is folded into the first half.
        let mut late = Schedule::new(0);
        late.start_beacons(0, 10_000, 9_000);
        assert!(late.due_beacon(4_000, 10_000));
    }

    #[test]
    fn gpu_rounds_are_accounted_once_whole_and_closed_and_closes_fire_once() {
        // (started, accounted, now) → rounds to account; interval 1 000, deadline 300,
        // grace 200: round r is done at (r + 1) × 1 000 + 500.
        let table = [
            ("nothing done yet", 0, None, 1_499, 0..0),
            ("round 0 done", 0, None, 1_500, 0..1),
            ("started mid-round 0: it is skipped", 10, None, 2_500, 1..2),
            ("after the last accounted", 0, Some(3), 6_000, 4..5),
            ("all caught up", 0, Some(4), 6_000, 5..5),
            ("a stalled loop catches up", 0, Some(0), 4_600, 1..4),
        ];
        for (name, started, accounted, now, want) in table {
            assert_eq!(
                accountable_gpu_rounds(started, accounted, now, 1_000, 300, 200),
                want,
                "{name}"
            );
        }
        assert_eq!(gpu_round(2_999, 1_000), 2);
        let mut schedule = Schedule::new(0);
        schedule.start_gpu_rounds(2_500, 1_000);
        assert_eq!(
            schedule.due_gpu_round(2_500),
            Some(2),
            "the round under way, at once"
        );
        assert_eq!(schedule.due_gpu_round(2_999), None, "once per round");
        assert_eq!(
            schedule.due_gpu_round(5_100),
            Some(5),
            "a late tick skips to now"
        );
        assert_eq!(schedule.due_gpu_round(5_900), None);
        schedule.watch_close(50, ChallengeId([1; 32]));
        schedule.watch_close(70, ChallengeId([2; 32]));
        assert_eq!(schedule.closed(60), vec![ChallengeId([1; 32])]);
        assert_eq!(schedule.closed(70), vec![ChallengeId([2; 32])]);
        assert!(schedule.closed(1_000).is_empty());
    }
}

/// A session's round-trip samples from RTT probes: at most one probe out at a time, the
/// median of the last [`RTT_SAMPLES`] echoes. Pure: the caller passes the clock.
#[derive(Debug, Default)]
pub struct Rtt {
    /// The probe out: its nonce and when it was sent, ms.
    pending: Option<([u8; 32], u64)>,
    /// Latest samples, ms, oldest first.
    samples: std::collections::VecDeque<u64>,
    /// When the last probe went out, ms.
    last_probe_ms: Option<u64>,
}

/// Echoes kept for the median.
pub const RTT_SAMPLES: usize = 5;
/// Time between probes.
pub const RTT_PROBE_EVERY_MS: u64 = 10_000;

impl Rtt {
    /// Whether a probe is due at `now_ms` (none yet, or the last one long enough ago; a
    /// probe never echoed is given up then too).
    pub fn probe_due(&self, now_ms: u64) -> bool {
        self.last_probe_ms
            .is_none_or(|at| now_ms.saturating_sub(at) >= RTT_PROBE_EVERY_MS)
    }

    /// Records a probe with `nonce` sent at `now_ms`.
    pub fn probe_sent(&mut self, nonce: [u8; 32], now_ms: u64) {
        self.pending = Some((nonce, now_ms));
        self.last_probe_ms = Some(now_ms);
    }

    /// An echo of `nonce` received at `now_ms`; one for no probe out is ignored (an agent
    /// can delay echoes, never invent them early).
    pub fn echoed(&mut self, nonce: &[u8], now_ms: u64) {
        let Some((sent_nonce, sent_ms)) = self.pending else {
            return;
        };
        if sent_nonce.as_slice() != nonce {
            return;
        }
        self.pending = None;
        self.samples.push_back(now_ms.saturating_sub(sent_ms));
        while self.samples.len() > RTT_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// The median of the samples, ms (0 without any: no allowance).
    pub fn median_ms(&self) -> u64 {
        let mut sorted: Vec<u64> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod rtt_tests {
    use super::*;

    #[test]
    fn the_median_of_the_last_echoes_and_nothing_for_unknown_ones() {
        let mut rtt = Rtt::default();
        assert!(rtt.probe_due(0));
        assert_eq!(rtt.median_ms(), 0, "no samples: no allowance");
        // Honest echoes, then the lies: an echo of another nonce, one with no probe out.
        for (i, took) in [(0u64, 30u64), (1, 10), (2, 20), (3, 500), (4, 15), (5, 25)] {
            let at = i * RTT_PROBE_EVERY_MS;
            assert!(rtt.probe_due(at));
            rtt.probe_sent([i as u8; 32], at);
            assert!(!rtt.probe_due(at + 1));
            rtt.echoed(&[99; 32], at + 1);
            rtt.echoed(&[i as u8; 32], at + took);
            rtt.echoed(&[i as u8; 32], at + took + 1_000);
        }
        // Last five: 10, 20, 500, 15, 25 → median 20 (the 500 ms outlier does not move it).
        assert_eq!(rtt.median_ms(), 20);
    }
}
