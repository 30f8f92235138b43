//! Readings, their signed bytes, and the producer side of the hash chain.

use thiserror::Error;

use crate::identity::{NodeKey, PublicKey};
use crate::layout::Layout;

/// Domain tag of meter readings (signed by the node's long-term key, so the chain stays
/// auditable after the session that carried it).
pub const READING_DOMAIN: &[u8] = b"depin/meter/reading/v1";

/// A link hash: BLAKE3 of a reading's signing bytes.
pub type ChainHash = [u8; 32];

/// The `prev_hash` of the first reading of a chain.
pub const GENESIS_HASH: ChainHash = [0; 32];

/// One meter reading, covering the interval since the previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The meter's serial number (SunSpec common model `SN`).
    pub meter_serial: String,
    /// Position in the chain: 0 for the first reading, then +1 each (persisted by the agent).
    pub seq: u64,
    /// Time slot the reading was taken in (`unix ms / slot_ms`).
    pub slot: u64,
    /// The meter's cumulative energy register, Wh.
    pub cumulative_wh: u64,
    /// Average power over the interval since the previous reading, W.
    pub avg_w: u64,
    /// How many power samples the average is over.
    pub samples: u32,
    /// [`SignedReading::hash`] of the previous reading, or [`GENESIS_HASH`].
    pub prev_hash: ChainHash,
}

/// A reading signed by the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReading {
    /// The reporting node's long-term key.
    pub node: PublicKey,
    /// What was read.
    pub reading: Reading,
    /// ed25519 by `node` over [`SignedReading::signing_bytes`].
    pub signature: [u8; 64],
}

impl SignedReading {
    /// Signs `reading` with the node key.
    pub fn sign(key: &NodeKey, reading: Reading) -> Self {
        let node = key.public();
        let signature = key.sign(READING_DOMAIN, &body(&node, &reading));
        Self {
            node,
            reading,
            signature,
        }
    }

    /// Body: `node (32) || serial (u32 len + bytes) || seq u64 || slot u64 ||
    /// cumulative_wh u64 || avg_w u64 || samples u32 || prev_hash (32)`.
    pub(crate) fn body(&self) -> Vec<u8> {
        body(&self.node, &self.reading)
    }

    /// The exact bytes the signature covers (domain prefix included).
    pub fn signing_bytes(&self) -> Vec<u8> {
        crate::identity::signing_bytes(READING_DOMAIN, &self.body())
    }

    /// This link's hash, which the next reading names as `prev_hash`. It covers the signed
    /// bytes, not the signature, so the chain is a property of the readings alone.
    pub fn hash(&self) -> ChainHash {
        *blake3::hash(&self.signing_bytes()).as_bytes()
    }
}

fn body(node: &PublicKey, r: &Reading) -> Vec<u8> {
    Layout::with_capacity(128)
        .fixed32(node.as_bytes())
        .bytes(r.meter_serial.as_bytes())
        .u64(r.seq)
        .u64(r.slot)
        .u64(r.cumulative_wh)
        .u64(r.avg_w)
        .u32(r.samples)
        .fixed32(&r.prev_hash)
        .finish()
}

/// Length of an encoded [`ChainHead`].
const HEAD_LEN: usize = 8 + 8 + 32;

/// Why a persisted chain head could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("chain head: expected {HEAD_LEN} bytes, got {0}")]
pub struct BadChainHead(pub usize);

/// The producer's chain state, persisted across agent restarts: the next sequence number,
/// the last slot used and the hash to chain from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Sequence number of the next reading.
    pub next_seq: u64,
    /// Slot of the last reading (readings must move to a later slot).
    pub last_slot: u64,
    /// Hash of the last reading ([`GENESIS_HASH`] before the first).
    pub prev_hash: ChainHash,
}

impl Default for ChainHead {
    fn default() -> Self {
        Self {
            next_seq: 0,
            last_slot: 0,
            prev_hash: GENESIS_HASH,
        }
    }
}

impl ChainHead {
    /// Signs the next reading and advances the head. `None` when `slot` is not after the
    /// last one (the verifier would refuse it: wait for the next slot).
    pub fn next(
        &mut self,
        key: &NodeKey,
        meter_serial: &str,
        slot: u64,
        cumulative_wh: u64,
        avg_w: u64,
        samples: u32,
    ) -> Option<SignedReading> {
        if self.next_seq > 0 && slot <= self.last_slot {
            return None;
        }
        let signed = SignedReading::sign(
            key,
            Reading {
                meter_serial: meter_serial.to_owned(),
                seq: self.next_seq,
                slot,
                cumulative_wh,
                avg_w,
                samples,
                prev_hash: self.prev_hash,
            },
        );
        self.next_seq += 1;
        self.last_slot = slot;
        self.prev_hash = signed.hash();
        Some(signed)
    }

    /// Fixed 48-byte encoding for the agent's state file: `next_seq u64 BE || last_slot
    /// u64 BE || prev_hash`.
    pub fn encode(&self) -> [u8; HEAD_LEN] {
        let mut out = [0u8; HEAD_LEN];
        out[..8].copy_from_slice(&self.next_seq.to_be_bytes());
        out[8..16].copy_from_slice(&self.last_slot.to_be_bytes());
        out[16..].copy_from_slice(&self.prev_hash);
        out
    }

    /// Reads back [`ChainHead::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, BadChainHead> {
        let fixed: &[u8; HEAD_LEN] = bytes.try_into().map_err(|_| BadChainHead(bytes.len()))?;
        let (seq, rest) = fixed.split_at(8);
        let (slot, hash) = rest.split_at(8);
        // The split sizes are constants matching the array length, so these cannot fail.
        let word = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        Ok(Self {
            next_seq: word(seq),
            last_slot: word(slot),
            prev_hash: hash.try_into().unwrap_or(GENESIS_HASH),
        })
    }
}
