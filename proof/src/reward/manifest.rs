//! The canonical manifest: one closed epoch as deterministic text, for golden tests and for
//! serving to anyone who wants to recompute the root.
//!
//! Format v1 (ASCII, one record per `\n`-terminated line, fields split by one space, no
//! floats anywhere, amounts in base units as plain decimal integers):
//!
//! ```text
//! depin-reward-manifest v1
//! epoch <u64>
//! emission <u128>
//! burn <u128>
//! remint <u128>
//! unallocated <u128>
//! node-count <u64>                 nodes paid this epoch
//! leaf-count <u64>                 nodes with a non-zero cumulative total
//! merkle-root <64 lower-case hex>
//! pool <name> amount=<u128> paid=<u128> total-shares=<decimal> reward-per-share=<decimal>
//! node <id> reward=<u128> cumulative=<u128>
//! ```
//!
//! Pools appear in [`super::Pool::ALL`] order (paying pools only); nodes by id in byte
//! order, which is the leaf order. Decimals are canonical (no trailing zeros, no point for
//! whole numbers). Node ids are printable ASCII without spaces, so no escaping exists.
//! Hand-written rather than serde: a serializer upgrade must not change published bytes.

use std::fmt::Write;

use super::epoch::EpochResult;

/// First line of every manifest; bump the version with any format change.
pub const MANIFEST_HEADER: &str = "depin-reward-manifest v1";

impl EpochResult {
    /// The canonical manifest bytes (see the module docs for the format).
    pub fn manifest_bytes(&self) -> Vec<u8> {
        self.manifest().into_bytes()
    }

    /// The canonical manifest as text.
    pub fn manifest(&self) -> String {
        // ~60 bytes per node line, plus a few hundred for the header and pools.
        let mut out = String::with_capacity(512 + 64 * self.nodes.len());
        // Writing to a String cannot fail; `let _` drops the always-Ok results.
        let _ = writeln!(out, "{MANIFEST_HEADER}");
        let _ = writeln!(out, "epoch {}", self.epoch);
        let _ = writeln!(out, "emission {}", self.emission);
        let _ = writeln!(out, "burn {}", self.burn);
        let _ = writeln!(out, "remint {}", self.remint);
        let _ = writeln!(out, "unallocated {}", self.unallocated);
        let _ = writeln!(out, "node-count {}", self.node_count);
        let _ = writeln!(out, "leaf-count {}", self.nodes.len());
        let _ = writeln!(out, "merkle-root {}", hex::encode(self.merkle_root));
        for pool in &self.pools {
            let _ = writeln!(
                out,
                "pool {} amount={} paid={} total-shares={} reward-per-share={}",
                pool.pool.as_str(),
                pool.amount,
                pool.paid,
                pool.total_shares,
                pool.reward_per_share,
            );
        }
        for node in &self.nodes {
            let _ = writeln!(
                out,
                "node {} reward={} cumulative={}",
                node.node, node.reward, node.cumulative
            );
        }
        out
    }
}
