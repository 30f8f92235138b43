//! The reward controller: turns frozen per-epoch proof tallies into RewardEpoch records,
//! Merkle-committed manifests (ConfigMap shards) and node `status.rewards`.

pub mod book;
pub mod burns;
pub mod controller;
pub mod manifest;
pub mod metrics;
pub mod nodes;
pub mod policy;
pub mod record;
pub mod schedule;
pub mod tallies;

pub use book::Book;
pub use controller::RewardController;
pub use metrics::RewardMetrics;
