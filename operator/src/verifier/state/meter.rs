//! Every MeterBridge's reading chain and the fleet's serial claims, in memory. The rule
//! that judges a reading against them is `decide::meter`.
//!
//! Trade-off, on purpose: chains live in memory only. After a verifier restart (or a
//! leader change) a node's chain is rebuilt from the first reading that arrives: that
//! reading is checked (signature, serial, window) and becomes the baseline, proving 0 Wh;
//! every later link is checked in full. An agent could therefore roll its register back
//! exactly across a verifier restart and go unnoticed for one link, at the cost of the
//! energy of that interval (0 is credited for it). Persisting the tip in the CR status
//! would close that gap, but status writes belong to the recorder, and a tip written
//! there would need the same group-commit care; left for later.

use depin_proof::identity::PublicKey;
use depin_proof::meter::{ChainTip, MeterChain};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Each node's chain and who claimed which serial.
#[derive(Debug, Default)]
pub struct MeterChains {
    /// Node → its reading chain.
    pub by_node: HashMap<PublicKey, MeterChain>,
    /// Serial → the node that first read it (Glow: one meter, one owner).
    pub serials: HashMap<String, PublicKey>,
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
        chains.serials.retain(|_, owner| owner != node);
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

    /// The node's chain tip (tests, debugging).
    pub fn tip(&self, node: &PublicKey) -> Option<ChainTip> {
        self.lock().by_node.get(node).and_then(|c| c.tip.clone())
    }
}
