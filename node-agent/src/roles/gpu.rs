//! GPU role: compute the challenge's int8 product C = A·B, commit to its rows, open the
//! rows the verifier picks. The CPU backend (depin_proof's kernel on every core) always
//! works; see `Backend::detect` for CUDA.

use depin_proof::gpu::{GpuChallenge, GpuWork, achieved_tops};
use depin_proof::identity::PublicKey;
use std::time::{Duration, Instant};

/// Which hardware computes the products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// depin_proof::gpu::matmul_i8 on `threads` CPU threads.
    Cpu {
        /// Threads used.
        threads: usize,
    },
}

impl Backend {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Backend::Cpu { .. } => "cpu",
        }
    }

    /// Picks the backend and says why in the log.
    ///
    /// A CUDA kernel needs FFI (`unsafe` calls into the driver or cuBLAS; cudarc's GEMM and
    /// kernel launches are `unsafe fn`), which this workspace forbids (`unsafe_code =
    /// "forbid"`). So the `cuda` cargo feature is a stub and every build computes on the
    /// CPU; the probe still reports a present NVIDIA device, so a GPU node running this
    /// agent says plainly that its GPU is idle instead of silently under-performing.
    pub fn detect() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        match nvidia_device() {
            None => tracing::info!(threads, "no CUDA device found; using the CPU backend"),
            Some(device) if cfg!(feature = "cuda") => tracing::warn!(
                %device,
                threads,
                "CUDA device found, but the cuda backend is a stub (a kernel needs unsafe FFI, which this workspace forbids); using the CPU backend"
            ),
            Some(device) => tracing::warn!(
                %device,
                threads,
                "CUDA device found, but this agent was built without the `cuda` feature; using the CPU backend"
            ),
        }
        Backend::Cpu { threads }
    }
}

/// The first NVIDIA GPU the driver exposes, if any (no FFI: the driver's /proc files).
fn nvidia_device() -> Option<String> {
    let gpus = std::fs::read_dir("/proc/driver/nvidia/gpus").ok()?;
    let first = gpus.flatten().next()?;
    let info = std::fs::read_to_string(first.path().join("information")).unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("Model:"))
        .map_or_else(
            || first.file_name().to_string_lossy().into_owned(),
            |m| m.trim().to_string(),
        );
    Some(model)
}

/// The GPU role.
#[derive(Debug, Clone)]
pub struct GpuRole {
    /// The node's public key (challenge seeds bind it).
    pub node: PublicKey,
    /// The backend.
    pub backend: Backend,
}

/// One computed challenge.
pub struct Computed {
    /// C and its row tree.
    pub work: GpuWork,
    /// Compute time.
    pub elapsed: Duration,
    /// Throughput over the compute time, TOPS.
    pub tops: f64,
}

impl GpuRole {
    /// Computes a challenge (blocking: run it off the async runtime); None when n is out of
    /// range.
    pub fn compute(&self, challenge: &GpuChallenge) -> Option<Computed> {
        let started = Instant::now();
        let work = match self.backend {
            Backend::Cpu { threads } => GpuWork::compute(challenge, &self.node, threads)?,
        };
        let elapsed = started.elapsed();
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        Some(Computed {
            work,
            elapsed,
            tops: achieved_tops(challenge.n, ms),
        })
    }
}
