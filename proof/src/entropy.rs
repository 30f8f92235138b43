//! The verifier's beacon: a rotating random value `E_t` every challenge derives from, so no
//! challenge can be computed before its entropy is issued or answered after it expires.
//!
//! Time is always an explicit `now_ms` (unix milliseconds) argument: the crate has no clock.

use std::collections::{BTreeSet, HashSet};

use crate::identity::PublicKey;
use crate::layout::Layout;
use crate::reject::RejectReason;

/// Default beacon tick. Helium poc_entropy `ENTROPY_TICK_TIME`: 60 s.
pub const DEFAULT_TICK_MS: u64 = 60_000;
/// Default entropy lifespan. Helium iot_verifier `ENTROPY_LIFESPAN`: 180 s.
pub const DEFAULT_LIFESPAN_MS: u64 = 180_000;

const ENTROPY_DOMAIN: &[u8] = b"depin/entropy/v1";
const PRIVATE_DOMAIN: &[u8] = b"depin/verifier-private/v1";

/// How often the beacon rotates and how long each value stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntropyConfig {
    /// Milliseconds between ticks; tick `t` is issued at `t * tick_ms`.
    pub tick_ms: u64,
    /// Milliseconds after issue during which proofs may use the value.
    pub lifespan_ms: u64,
}

impl Default for EntropyConfig {
    fn default() -> Self {
        Self {
            tick_ms: DEFAULT_TICK_MS,
            lifespan_ms: DEFAULT_LIFESPAN_MS,
        }
    }
}

impl EntropyConfig {
    /// The tick whose value is current at `now_ms`.
    pub fn tick_at(&self, now_ms: u64) -> u64 {
        // A zero tick would divide by zero; treat it as 1 ms rather than panic on bad config.
        now_ms / self.tick_ms.max(1)
    }

    /// The first tick issued at or after `time_ms` (so its value is unknowable before then).
    pub fn first_tick_from(&self, time_ms: u64) -> u64 {
        time_ms.div_ceil(self.tick_ms.max(1))
    }

    /// When tick `tick` is issued, in unix milliseconds.
    pub fn issued_at_ms(&self, tick: u64) -> u64 {
        tick.saturating_mul(self.tick_ms.max(1))
    }
}

/// One beacon value `E_t` and the tick that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entropy {
    /// Tick index: the value was issued at `tick * tick_ms`.
    pub tick: u64,
    /// The 32 random bytes.
    pub value: [u8; 32],
}

impl Entropy {
    /// Checks that the value may still be used at `now_ms`: issued, and not past its lifespan.
    pub fn check_live(&self, now_ms: u64, config: &EntropyConfig) -> Result<(), RejectReason> {
        let issued = config.issued_at_ms(self.tick);
        if now_ms < issued {
            // A value from the future cannot have come from this beacon.
            return Err(RejectReason::UnknownEntropy);
        }
        if now_ms > issued.saturating_add(config.lifespan_ms) {
            return Err(RejectReason::ExpiredEntropy);
        }
        Ok(())
    }
}

/// The verifier's beacon. Values are a keyed BLAKE3 of the tick under a secret the verifier
/// never shares (Helium hashes the timestamp with a Solana blockhash; our secret plays the
/// blockhash's part), so any tick's value can be recomputed without storing it.
#[derive(Clone)]
pub struct Beacon {
    secret: [u8; 32],
    config: EntropyConfig,
}

impl std::fmt::Debug for Beacon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Beacon")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Beacon {
    /// A beacon over `secret` (32 random bytes the verifier generates and keeps).
    pub fn new(secret: [u8; 32], config: EntropyConfig) -> Self {
        Self { secret, config }
    }

    /// The rotation settings.
    pub fn config(&self) -> &EntropyConfig {
        &self.config
    }

    /// The value for `tick`, whether or not it is live; the verifier's own lookup.
    pub fn entropy(&self, tick: u64) -> Entropy {
        let body = Layout::with_capacity(24).u64(tick).finish();
        let mut hasher = blake3::Hasher::new_keyed(&self.secret);
        hasher.update(ENTROPY_DOMAIN).update(&body);
        Entropy {
            tick,
            value: *hasher.finalize().as_bytes(),
        }
    }

    /// The value current at `now_ms`, to hand out with challenges.
    pub fn current(&self, now_ms: u64) -> Entropy {
        self.entropy(self.config.tick_at(now_ms))
    }

    /// Checks presented entropy: issued by this beacon (else `UnknownEntropy`) and live at
    /// `now_ms` (else `ExpiredEntropy`).
    pub fn check(&self, presented: &Entropy, now_ms: u64) -> Result<(), RejectReason> {
        if self.entropy(presented.tick).value != presented.value {
            return Err(RejectReason::UnknownEntropy);
        }
        presented.check_live(now_ms, &self.config)
    }

    /// A verifier-only value for `domain` and `context`, never sent before it is needed
    /// (GPU row sampling). Distinct from every `E_t` because the domain differs.
    pub fn private_value(&self, domain: &[u8], context: &[u8]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.secret);
        hasher
            .update(PRIVATE_DOMAIN)
            .update(&crate::identity::signing_bytes(domain, context));
        *hasher.finalize().as_bytes()
    }
}

/// A challenge's identity and seed: `BLAKE3(domain || E_t || node || context)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChallengeId(pub [u8; 32]);

impl ChallengeId {
    /// Lower-case hex, for logs and status.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Derives a challenge seed from the beacon so it cannot be precomputed (needs `E_t`) nor
/// replayed for another node (binds its key) or another purpose (domain, context).
/// The domain is length-prefixed as in [`crate::identity::signing_bytes`]; entropy and key
/// are fixed 32 bytes, so the concatenation is unambiguous.
pub fn derive_challenge(
    domain: &[u8],
    entropy: &Entropy,
    node: &PublicKey,
    context: &[u8],
) -> ChallengeId {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&crate::identity::signing_bytes(domain, &[]));
    hasher
        .update(&entropy.value)
        .update(node.as_bytes())
        .update(context);
    ChallengeId(*hasher.finalize().as_bytes())
}

/// The caller's record of answered challenges, consulted for replay.
pub trait SeenChallenges {
    /// Whether `node` already answered `challenge`.
    fn contains_challenge(&self, node: &PublicKey, challenge: &ChallengeId) -> bool;
}

impl<S: std::hash::BuildHasher> SeenChallenges for HashSet<(PublicKey, ChallengeId), S> {
    fn contains_challenge(&self, node: &PublicKey, challenge: &ChallengeId) -> bool {
        self.contains(&(*node, *challenge))
    }
}

impl SeenChallenges for BTreeSet<(PublicKey, ChallengeId)> {
    fn contains_challenge(&self, node: &PublicKey, challenge: &ChallengeId) -> bool {
        self.contains(&(*node, *challenge))
    }
}

/// Rejects a challenge the node already answered.
pub fn check_not_replayed(
    seen: &dyn SeenChallenges,
    node: &PublicKey,
    challenge: &ChallengeId,
) -> Result<(), RejectReason> {
    if seen.contains_challenge(node, challenge) {
        Err(RejectReason::Replay)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeKey;

    fn beacon() -> Beacon {
        Beacon::new([3; 32], EntropyConfig::default())
    }

    #[test]
    fn liveness_follows_tick_and_lifespan() {
        let beacon = beacon();
        let e = beacon.entropy(10); // issued at 600 s
        let table: &[(u64, Result<(), RejectReason>)] = &[
            (600_000, Ok(())),
            (780_000, Ok(())), // exactly 180 s later: still live
            (780_001, Err(RejectReason::ExpiredEntropy)),
            (599_999, Err(RejectReason::UnknownEntropy)),
        ];
        for (now, want) in table {
            assert_eq!(beacon.check(&e, *now), *want, "now={now}");
        }
        let forged = Entropy {
            tick: 10,
            value: [0; 32],
        };
        assert_eq!(
            beacon.check(&forged, 600_000),
            Err(RejectReason::UnknownEntropy)
        );
    }

    #[test]
    fn values_rotate_and_depend_on_the_secret() {
        let beacon = beacon();
        assert_ne!(beacon.entropy(1).value, beacon.entropy(2).value);
        assert_ne!(
            beacon.entropy(1).value,
            Beacon::new([4; 32], *beacon.config()).entropy(1).value
        );
        assert_eq!(beacon.current(61_000), beacon.entropy(1));
        assert_ne!(beacon.private_value(b"gpu", b"x"), beacon.entropy(0).value);
    }

    #[test]
    fn challenge_binds_every_input() {
        let beacon = beacon();
        let (a, b) = (
            NodeKey::from_seed([1; 32]).public(),
            NodeKey::from_seed([2; 32]).public(),
        );
        let base = derive_challenge(b"d", &beacon.entropy(1), &a, b"ctx");
        assert_eq!(base, derive_challenge(b"d", &beacon.entropy(1), &a, b"ctx"));
        for other in [
            derive_challenge(b"e", &beacon.entropy(1), &a, b"ctx"),
            derive_challenge(b"d", &beacon.entropy(2), &a, b"ctx"),
            derive_challenge(b"d", &beacon.entropy(1), &b, b"ctx"),
            derive_challenge(b"d", &beacon.entropy(1), &a, b"ctz"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn replay_is_detected_per_node() {
        let (a, b) = (
            NodeKey::from_seed([1; 32]).public(),
            NodeKey::from_seed([2; 32]).public(),
        );
        let id = ChallengeId([5; 32]);
        let seen: HashSet<_> = [(a, id)].into_iter().collect();
        assert_eq!(
            check_not_replayed(&seen, &a, &id),
            Err(RejectReason::Replay)
        );
        assert_eq!(check_not_replayed(&seen, &b, &id), Ok(()));
    }
}
