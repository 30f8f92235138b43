//! GPU capability proof: an int8 matrix product seeded by the beacon, committed as a
//! Merkle root over the rows of C, then opened at rows the verifier picks only after the
//! commitment arrived (research depin-anchors §3(c), "variant B: commit + sample").
//!
//! Why the sampled rows stay hidden until the commitment is in:
//! the row indices are `PRF_s(challenge || root)` where `s` is derived from the beacon's
//! secret key, which never leaves the verifier ([`crate::entropy::Beacon::private_value`]).
//! Before committing, the worker knows neither `s` nor any function of it, so every row is
//! equally likely to be checked; a worker that computed only a fraction of the rows passes
//! s samples with probability (fraction)^s. Mixing in the root binds the sample to the
//! commitment: a second, different commitment to the same challenge would be a `Replay`,
//! and no root can be chosen to steer the sample without knowing `s`. Deriving the indices
//! from the root alone (Fiat–Shamir) would NOT be sound: a worker can recompute a root in
//! O(log n) hashes per altered row and grind until the sample misses its bad rows.
//! [`sample_rows`] takes a [`VerifiedGpuCommitment`], which only [`verify_gpu_commitment`]
//! can make, so the order (commit, then sample) is enforced by the types.
//!
//! Never ask the worker for C·r with a published r: it could compute A(B·r) in O(n²)
//! without ever forming C (research §3(c)).

mod matmul;
mod messages;
mod prove;
mod verify;

#[cfg(test)]
mod tests;

pub use matmul::{
    Kernel, matmul_i8, matmul_naive, matmul_with, product_rows, product_rows_with, row_product,
    vnni_peak_loop,
};
pub use messages::{GpuChallenge, GpuCommitment, GpuOpening, RowOpening, RowRequest, row_leaf};
pub use prove::GpuWork;
pub use verify::{
    GpuCommitContext, GpuOpenContext, VerifiedGpuCommitment, VerifiedGpuProof, sample_rows,
    verify_gpu_commitment, verify_gpu_opening,
};

use crate::entropy::ChallengeId;

/// Largest n accepted: bounds verifier memory (B is n² bytes, 256 MiB here) and keeps
/// int32 accumulation exact (needs n·128² < 2^31, i.e. n < 131072).
pub const MAX_MATRIX_N: u32 = 16 * 1024;
/// Default matrix dimension. Ours: 1024 keeps a CPU worker's answer under a second
/// (research §3(c) suggests 256–1024 for CPU tests); raise it for real GPU classes.
pub const DEFAULT_MATRIX_N: u32 = 1024;
/// Default rows opened. Ours: a worker that skipped half the rows passes with 2^-16.
pub const DEFAULT_SAMPLED_ROWS: u32 = 16;
/// Default time allowed from challenge to commitment. Ours: 60 s, one beacon tick.
pub const DEFAULT_GPU_DEADLINE_MS: u64 = 60_000;
/// Default share of the declared throughput a worker must reach. Ours.
pub const DEFAULT_MIN_FRACTION_OF_DECLARED: f64 = 0.5;

/// GPU proof parameters a `RewardPolicy` sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuParams {
    /// Matrix dimension n (A, B and C are n×n).
    pub n: u32,
    /// Rows of C the worker must open (s).
    pub sampled_rows: u32,
    /// Milliseconds from challenge to commitment before it is `AfterWindow`.
    pub deadline_ms: u64,
    /// Milliseconds of network round trip subtracted before computing throughput.
    pub rtt_allowance_ms: u64,
    /// Fraction of the declared TOPS below which a commitment is `TooSlow`.
    pub min_fraction_of_declared: f64,
}

impl Default for GpuParams {
    fn default() -> Self {
        Self {
            n: DEFAULT_MATRIX_N,
            sampled_rows: DEFAULT_SAMPLED_ROWS,
            deadline_ms: DEFAULT_GPU_DEADLINE_MS,
            rtt_allowance_ms: 0,
            min_fraction_of_declared: DEFAULT_MIN_FRACTION_OF_DECLARED,
        }
    }
}

const MATRIX_A_DOMAIN: &[u8] = b"depin/gpu/matrix-a/v1";
const MATRIX_B_DOMAIN: &[u8] = b"depin/gpu/matrix-b/v1";

/// Maps a random byte into -127..=127 (-128 becomes 0): symmetric int8, which is what
/// lets the fast kernel add two products in i16 exactly.
fn symmetric_i8(byte: u8) -> i8 {
    match byte as i8 {
        i8::MIN => 0,
        v => v,
    }
}

fn matrix_stream(seed: &ChallengeId, domain: &[u8]) -> blake3::OutputReader {
    blake3::Hasher::new_keyed(&seed.0)
        .update(domain)
        .finalize_xof()
}

fn fill_symmetric(stream: &mut blake3::OutputReader, len: usize) -> Vec<i8> {
    let mut bytes = vec![0u8; len];
    stream.fill(&mut bytes);
    bytes.into_iter().map(symmetric_i8).collect()
}

/// The challenge matrices A and B (row-major, n×n) for a seed: BLAKE3 XOF streams, so the
/// verifier can regenerate any single row of A without the rest.
pub fn derive_matrices(seed: &ChallengeId, n: usize) -> (Vec<i8>, Vec<i8>) {
    let cells = n.saturating_mul(n);
    (
        fill_symmetric(&mut matrix_stream(seed, MATRIX_A_DOMAIN), cells),
        derive_b(seed, n),
    )
}

/// Matrix B alone.
pub fn derive_b(seed: &ChallengeId, n: usize) -> Vec<i8> {
    fill_symmetric(
        &mut matrix_stream(seed, MATRIX_B_DOMAIN),
        n.saturating_mul(n),
    )
}

/// Row `row` of matrix A alone (the XOF is seekable).
pub fn derive_a_row(seed: &ChallengeId, n: usize, row: usize) -> Vec<i8> {
    let mut stream = matrix_stream(seed, MATRIX_A_DOMAIN);
    stream.set_position((row as u64).saturating_mul(n as u64));
    fill_symmetric(&mut stream, n)
}

/// Operations in one challenge: 2n³ (a multiply and an add per inner-product term).
pub fn challenge_ops(n: u32) -> f64 {
    2.0 * f64::from(n).powi(3)
}

/// Throughput in TOPS (10^12 int8 ops/s) for `n` done in `elapsed_ms` (at least 1 ms).
pub fn achieved_tops(n: u32, elapsed_ms: u64) -> f64 {
    challenge_ops(n) / (elapsed_ms.max(1) as f64 / 1000.0) / 1e12
}

/// Coarse int8 throughput tiers for dashboards and policy. Ours; the vendor figures that
/// motivate the floors (dense int8: T4 ≈ 130, A100 ≈ 624, H100 SXM ≈ 1979 TOPS) are from
/// datasheets, not verified here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ThroughputClass {
    /// Below 1 TOPS: a CPU.
    Cpu,
    /// 1–100 TOPS: edge and older consumer GPUs.
    Entry,
    /// 100–400 TOPS: inference cards (T4, L4 class).
    Mainstream,
    /// 400–1500 TOPS: A100, L40S, RTX 4090 class.
    HighEnd,
    /// 1500 TOPS and up: H100/H200 class.
    Flagship,
}

impl ThroughputClass {
    /// Lowest TOPS in the class.
    pub const fn floor_tops(self) -> f64 {
        match self {
            ThroughputClass::Cpu => 0.0,
            ThroughputClass::Entry => 1.0,
            ThroughputClass::Mainstream => 100.0,
            ThroughputClass::HighEnd => 400.0,
            ThroughputClass::Flagship => 1500.0,
        }
    }

    /// The name a RewardPolicy's `gpuClasses[].name` uses for this class.
    pub const fn policy_name(self) -> &'static str {
        match self {
            ThroughputClass::Cpu => "cpu",
            ThroughputClass::Entry => "entry",
            ThroughputClass::Mainstream => "mainstream",
            ThroughputClass::HighEnd => "high-end",
            ThroughputClass::Flagship => "flagship",
        }
    }

    /// The class name, for metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            ThroughputClass::Cpu => "Cpu",
            ThroughputClass::Entry => "Entry",
            ThroughputClass::Mainstream => "Mainstream",
            ThroughputClass::HighEnd => "HighEnd",
            ThroughputClass::Flagship => "Flagship",
        }
    }
}

/// The class a measured throughput falls in.
pub fn throughput_class(tops: f64) -> ThroughputClass {
    [
        ThroughputClass::Flagship,
        ThroughputClass::HighEnd,
        ThroughputClass::Mainstream,
        ThroughputClass::Entry,
    ]
    .into_iter()
    .find(|class| tops >= class.floor_tops())
    .unwrap_or(ThroughputClass::Cpu)
}
