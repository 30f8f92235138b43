//! The contract between the operator and its agents: the configuration the operator
//! writes into each agent's ConfigMap, and the gRPC proof protocol (`depin.agent.v1`).
//!
//! The gRPC code in `src/gen/` is generated from `proto/agent.proto` by protox (a protobuf
//! compiler in Rust) and tonic-prost-build, and committed; `tests/generated.rs` fails when
//! it is stale. Normal builds therefore need no protobuf compiler at all.

pub mod config;
pub mod gpu_wire;
pub mod wire;

/// Generated messages, client and server for the `depin.agent.v1` package.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::unwrap_used)]
pub mod v1 {
    include!("gen/depin.agent.v1.rs");
}
