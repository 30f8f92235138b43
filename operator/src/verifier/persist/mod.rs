//! Durable adapters, the only layer that talks to the Kubernetes API: the tally `sink`
//! (`status.proofs`; in memory for tests), the `recorder` that makes results durable
//! before any receipt leaves, and the `watch` feed of node CRs and RewardPolicies into
//! the in-memory index.

pub mod meter;
pub mod recorder;
pub mod sink;
pub mod storage;
pub mod watch;
