//! How many agent sessions and unauthenticated handshakes the verifier admits at once.

use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Semaphore;

/// Concurrent unauthenticated handshakes allowed for `max_sessions` sessions: an eighth,
/// at least 16 (a fleet reconnecting after a restart handshakes in waves), at most 1024.
pub fn handshake_budget(max_sessions: usize) -> usize {
    max_sessions.div_ceil(8).clamp(16, 1024)
}

/// The session budget for a fleet of `nodes`: one live session per node (the verifier
/// refuses keys no CR holds and replaces a node's older session), plus an eighth and at
/// least 64 for CRs created since the index last grew and sessions being replaced.
pub fn fleet_budget(nodes: usize) -> usize {
    nodes.saturating_add((nodes / 8).max(64))
}

/// The session and handshake semaphores. A fixed `--max-sessions` never changes them;
/// `--max-sessions 0` sizes them from the fleet and grows them as the fleet grows. They
/// never shrink: permits held by live sessions cannot be taken back, and a fleet that
/// shrank still has at most one session per remaining node.
pub struct SessionLimits {
    fleet_sized: bool,
    sessions: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    /// Sessions and handshakes granted so far.
    granted: Mutex<(usize, usize)>,
}

impl SessionLimits {
    /// Limits for `max_sessions` (0: sized from the fleet, which starts empty).
    pub fn new(max_sessions: usize) -> Self {
        let fleet_sized = max_sessions == 0;
        let sessions = if fleet_sized {
            fleet_budget(0)
        } else {
            max_sessions
        };
        let handshakes = handshake_budget(sessions);
        Self {
            fleet_sized,
            sessions: Arc::new(Semaphore::new(sessions)),
            handshakes: Arc::new(Semaphore::new(handshakes)),
            granted: Mutex::new((sessions, handshakes)),
        }
    }

    /// Grows a fleet-sized budget to a fleet of `nodes`; returns the session budget.
    pub fn fit(&self, nodes: usize) -> usize {
        let mut granted = self.granted.lock().unwrap_or_else(PoisonError::into_inner);
        if self.fleet_sized {
            let sessions = fleet_budget(nodes);
            let handshakes = handshake_budget(sessions);
            if sessions > granted.0 {
                self.sessions.add_permits(sessions - granted.0);
                granted.0 = sessions;
            }
            if handshakes > granted.1 {
                self.handshakes.add_permits(handshakes - granted.1);
                granted.1 = handshakes;
            }
        }
        granted.0
    }

    /// Session slots (taken once the hello is verified).
    pub fn sessions(&self) -> &Arc<Semaphore> {
        &self.sessions
    }

    /// Handshake slots (held from connect to the verified hello).
    pub fn handshakes(&self) -> &Arc<Semaphore> {
        &self.handshakes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_sized_budget_follows_the_fleet_and_a_fixed_one_does_not() {
        let limits = SessionLimits::new(0);
        assert_eq!(limits.sessions().available_permits(), 64);
        assert_eq!(limits.handshakes().available_permits(), 16);
        assert_eq!(limits.fit(10_000), 11_250);
        assert_eq!(limits.sessions().available_permits(), 11_250);
        assert_eq!(limits.handshakes().available_permits(), 1_024);
        // Held permits are not lost and the budget does not shrink.
        let held = limits
            .sessions()
            .clone()
            .try_acquire_many_owned(250)
            .expect("permits");
        assert_eq!(limits.fit(100), 11_250);
        assert_eq!(limits.sessions().available_permits(), 11_000);
        drop(held);
        assert_eq!(limits.sessions().available_permits(), 11_250);

        let fixed = SessionLimits::new(5);
        assert_eq!(fixed.fit(10_000), 5);
        assert_eq!(fixed.sessions().available_permits(), 5);
        assert_eq!(fixed.handshakes().available_permits(), 16);
    }
}
