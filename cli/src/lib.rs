//! kubectl-depin as a library: the fleet table, closed reward epochs checked against their
//! manifests, and claim proofs fetched and verified. The e2e tests drive these functions,
//! so what the tests check is what the plugin prints.

pub mod claim;
pub mod epochs;
pub mod manifest;
pub mod operator;
pub mod rewards;
pub mod status;

pub use status::{NodeRow, fleet, render};

#[cfg(test)]
mod tests;
