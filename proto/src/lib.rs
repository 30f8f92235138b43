//! The contract between the operator and its agents: the configuration the operator
//! writes into each agent's ConfigMap, and (with the proof pipeline) the gRPC protocol.

pub mod config;
