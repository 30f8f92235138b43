//! GPU role: compute the challenge's chain of K int8 products (depin_proof::gpu::chain),
//! commit to the stage roots, open the (stage, row) samples the verifier picks. The CPU
//! backend (depin_proof's kernel on every core) always works; see `Backend::detect` for
//! CUDA. A future CUDA backend must produce the same `D_k` bytes (the arithmetic is
//! specified in `depin_proof::gpu::chain`) and hand them to `ChainWork::from_stages`, so
//! the wire protocol does not change when it arrives.

use depin_proof::gpu::{
    ChainChallenge, ChainWork, GpuChallenge, GpuWork, achieved_tops, chain_ops,
};
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

/// Most bytes of stages the CPU backend holds for one challenge (K·n²). Ours: 1 GiB, far
/// above the cpu class (4 MiB); a CPU agent handed a GPU-sized chain declines it at once
/// (the round is then a miss, as it would be after minutes of computing).
pub const MAX_CPU_CHAIN_BYTES: u64 = 1 << 30;

/// The GPU role.
#[derive(Debug, Clone)]
pub struct GpuRole {
    /// The node's public key (challenge seeds bind it).
    pub node: PublicKey,
    /// The backend.
    pub backend: Backend,
}

/// One computed chain.
pub struct ComputedChain {
    /// The stages and their trees.
    pub work: ChainWork,
    /// Compute time.
    pub elapsed: Duration,
    /// Throughput over the compute time, TOPS.
    pub tops: f64,
}

/// Why a chain was not computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainRefused {
    /// n or K out of range.
    #[error("chain n={n} stages={stages} out of range")]
    OutOfRange {
        /// n.
        n: u32,
        /// K.
        stages: u32,
    },
    /// More stage memory than this backend holds.
    #[error("chain n={n} stages={stages} needs {bytes} bytes of stages, more than {limit}")]
    TooLarge {
        /// n.
        n: u32,
        /// K.
        stages: u32,
        /// K·n².
        bytes: u64,
        /// The backend's limit.
        limit: u64,
    },
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
    /// Computes a chain challenge (blocking: run it off the async runtime).
    pub fn compute_chain(&self, challenge: &ChainChallenge) -> Result<ComputedChain, ChainRefused> {
        let bytes = u64::from(challenge.n) * u64::from(challenge.n) * u64::from(challenge.stages);
        let (n, stages) = (challenge.n, challenge.stages);
        if bytes > MAX_CPU_CHAIN_BYTES {
            return Err(ChainRefused::TooLarge {
                n,
                stages,
                bytes,
                limit: MAX_CPU_CHAIN_BYTES,
            });
        }
        let started = Instant::now();
        let work = match self.backend {
            Backend::Cpu { threads } => ChainWork::compute(challenge, &self.node, threads)
                .ok_or(ChainRefused::OutOfRange { n, stages })?,
        };
        let elapsed = started.elapsed();
        Ok(ComputedChain {
            work,
            elapsed,
            tops: chain_ops(n, stages) / elapsed.as_secs_f64().max(1e-6) / 1e12,
        })
    }

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
