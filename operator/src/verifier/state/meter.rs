//! Every MeterBridge's reading chain and the fleet's serial claims, in memory, backed by
//! each bridge's `status.meter`. The rule that judges a reading against them is
//! `decide::meter`.
//!
//! Durability: every reading's tally write also carries the bridge's chain tip, solar day
//! and serial claim (`persist::meter`, one status write, so they cannot disagree), and a
//! restarted verifier reads every bridge's record back (`Verifier::restore_meters`)
//! before it judges any reading. A rollback across a restart is therefore caught like any
//! other, and a squatter that speaks first after a restart loses to the older recorded
//! claim. What is not kept: the per-slot window (one report per slot) before the tip;
//! readings for slots before the tip are refused by the sequence rule anyway.

use depin_proof::identity::PublicKey;
use depin_proof::meter::{ChainTip, MeterChain, SerialBook, SerialClaim};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Each node's chain and who claimed which serial.
#[derive(Debug, Default)]
pub struct MeterChains {
    /// Node → its reading chain.
    pub by_node: HashMap<PublicKey, MeterChain>,
    /// Who claimed which serial, and when: the earliest recorded claim wins (Glow: one
    /// meter, one owner).
    pub serials: SerialBook,
}

/// Every node's chain and the fleet's serial claims (in memory; see the module docs).
#[derive(Default)]
pub struct MeterBook {
    inner: Mutex<MeterChains>,
}

/// A recorded meter swap (`spec.replacement`), in verifier terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replacement {
    /// When the new meter was installed, unix ms.
    pub at_ms: u64,
    /// The new meter's serial, when recorded: only a reading from it is excused.
    pub new_serial: Option<String>,
}

impl MeterBook {
    /// The chains, locked. Every critical section leaves the maps consistent before it can
    /// panic, so a poisoned lock is still usable.
    pub fn lock(&self) -> MutexGuard<'_, MeterChains> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets a deleted node: its chain and the serials it claimed (a meter moved to a
    /// new MeterBridge, or the same one re-created with a new key, may claim them again).
    pub fn forget(&self, node: &PublicKey) {
        let mut chains = self.lock();
        chains.by_node.remove(node);
        chains.serials.forget(node, None);
    }

    /// Puts a node's chain back as it was before an accepted reading whose result could not
    /// be made durable (the agent resends it after reconnecting).
    pub fn undo(&self, node: &PublicKey, accepted: &ChainTip, before: MeterChain) {
        let mut chains = self.lock();
        if let Some(chain) = chains.by_node.get_mut(node)
            && chain.tip.as_ref() == Some(accepted)
        {
            *chain = before;
        }
    }

    /// Takes back a node's recorded chain and serial claim (a restarted verifier, before
    /// it judges any reading); a chain already in memory is newer and is kept.
    pub fn restore(&self, node: PublicKey, chain: Option<MeterChain>, claim: Option<SerialClaim>) {
        let mut chains = self.lock();
        if let Some(chain) = chain {
            chains.by_node.entry(node).or_insert(chain);
        }
        if let Some(claim) = claim {
            chains.serials.restore(claim);
        }
    }

    /// The node's chain and the claim it holds on its tip's serial, to record.
    pub fn snapshot(&self, node: &PublicKey) -> Option<(MeterChain, Option<SerialClaim>)> {
        let chains = self.lock();
        let chain = chains.by_node.get(node)?.clone();
        let claim = chain
            .tip
            .as_ref()
            .and_then(|tip| chains.serials.winner(&tip.meter_serial))
            .filter(|claim| claim.node == *node)
            .cloned();
        Some((chain, claim))
    }

    /// The node's chain tip (tests, debugging).
    pub fn tip(&self, node: &PublicKey) -> Option<ChainTip> {
        self.lock().by_node.get(node).and_then(|c| c.tip.clone())
    }
}
