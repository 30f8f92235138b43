//! The reward controller: turns frozen per-epoch proof tallies into RewardEpoch records.

pub mod policy;
