//! Reward math: verified work → per-epoch token rewards, published as a Merkle-committed
//! manifest (architecture "Rewards", research depin-anchors §5.4).
//!
//! Per epoch `e`: `supply = scheduled(e) + remint(e)` (halving with an optional max-supply
//! cap, plus smoothed burn-and-mint) is split into pools by weight; each pool pays
//! `floor(pool × shares_i / Σ shares)`; split dust, pool dust and pools nobody earned from
//! are `unallocated`, so `Σ rewards + unallocated == supply` exactly. Every amount is an
//! integer number of base units (u128) and every weight an exact 18-place [`Decimal`]: no
//! float touches a reward. Cumulative totals per node are committed by a Merkle root and
//! claimed with [`claim_proof`] / [`verify_claim`].
//!
//! Pure and deterministic: the same inputs give byte-identical [`EpochResult::manifest_bytes`].

mod claim;
mod decimal;
mod emission;
mod epoch;
mod manifest;
mod policy;
mod pool;
mod shares;
mod wide;

#[cfg(test)]
mod tests;

pub use claim::{Claim, REWARD_LEAF_DOMAIN, claim_proof, reward_leaf, verify_claim};
pub use decimal::{DECIMAL_PLACES, Decimal, DecimalError};
pub use emission::EpochBurn;
pub use epoch::{CumulativeTotals, EpochError, EpochResult, NodeTotal, PoolOutcome, close_epoch};
pub use manifest::MANIFEST_HEADER;
pub use policy::{
    BurnAndMint, BurnAndMintSpec, EmissionSchedule, GpuClassSpec, HotspotSplit, HotspotSplitSpec,
    KindWeights, KindWeightsSpec, MAX_SMOOTHING_EPOCHS, MAX_TOKEN_DECIMALS, PolicyError,
    PolicyProblem, PolicySpec, RewardPolicy,
};
pub use pool::{NodeKind, Pool, payout, split_by_shares};
pub use shares::{
    FAULT_PENALTY_PERIODS, MAX_NODE_ID_LEN, MISSED_PENALTY_PERIODS, NodeTally, Work,
    net_byte_periods,
};
