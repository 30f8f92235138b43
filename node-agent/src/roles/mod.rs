//! Per-role proof work. Storage and GPU prove to the verifier; hotspot and meter proofs
//! arrive in a later issue.

pub mod gpu;
pub mod storage;

use std::sync::Arc;

/// The proof work this agent does in a session.
#[derive(Debug, Clone)]
pub enum Work {
    /// Storage: committed sectors.
    Storage(Arc<storage::StorageRole>),
    /// GPU: matrix products.
    Gpu(Arc<gpu::GpuRole>),
}

impl Work {
    /// The role name sent in the hello.
    pub fn role(&self) -> &'static str {
        match self {
            Work::Storage(_) => "storage",
            Work::Gpu(_) => "gpu",
        }
    }
}
