//! Per-role proof work. Storage and GPU answer the verifier's challenges; the meter role
//! sends a signed reading every slot; the hotspot role beacons when the verifier says and
//! reports the beacons it hears.

pub mod gpu;
pub mod hotspot;
pub mod meter;
pub mod storage;

use std::sync::Arc;

/// The proof work this agent does in a session.
#[derive(Debug, Clone)]
pub enum Work {
    /// Storage: committed sectors.
    Storage(Arc<storage::StorageRole>),
    /// GPU: matrix products.
    Gpu(Arc<gpu::GpuRole>),
    /// Meter: a signed reading chain.
    Meter(Arc<meter::MeterRole>),
    /// Hotspot: beacons and witnesses over the packet forwarder.
    Hotspot(Arc<hotspot::HotspotRole>),
}

impl Work {
    /// The role name sent in the hello.
    pub fn role(&self) -> &'static str {
        match self {
            Work::Storage(_) => "storage",
            Work::Gpu(_) => "gpu",
            Work::Meter(_) => "meter",
            Work::Hotspot(_) => "hotspot",
        }
    }
}
