//! Pure DePIN proof domain: no async runtime, no Kubernetes, no gRPC.
//!
//! Everything here is deterministic given its inputs, so the operator (verifying) and the
//! agent (producing) share one definition of every signed byte. Time is always an explicit
//! unix-millisecond argument. Every verifier is `verify_*(input, ctx) -> Result<Verified*,
//! RejectReason>`; the byte layout every signature covers is described in `layout.rs`
//! (fixed-width big-endian integers, raw 32-byte keys and hashes, u32 counts).

#![warn(missing_docs)]

pub mod entropy;
pub mod gpu;
pub mod identity;
mod layout;
pub mod merkle;
pub mod meter;
pub mod poc;
pub mod receipt;
pub mod reject;
pub mod reward;
pub mod session;
pub mod storage;

pub use reject::RejectReason;
