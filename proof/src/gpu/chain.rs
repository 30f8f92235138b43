//! The chained product: the exact arithmetic every backend (this CPU code, a future CUDA
//! kernel) must reproduce bit for bit, since the verifier recomputes sampled rows with it.
//!
//! For a challenge seed and a class (n a power of two, K stages):
//! - `D_0 = A`, and `B`: n×n int8 from [`super::derive_matrices`] (symmetric −127..=127).
//! - Stage k = 1..=K: `C_k = D_{k−1} · B`, exact int8×int8→i32 (|C| ≤ n·127² < 2^29 for
//!   n ≤ 16384, so no overflow at any step).
//! - Butterfly partner of row i at stage k: `p = i XOR 2^((k−1) mod log2 n)`.
//! - `D_k[i][j] = mix(C_k[i][j] + C_k[p][j])` (the sum is < 2^30: plain i32 addition).
//! - `mix(x) = sym(low byte of (x XOR (x >> 11)))`, `>>` arithmetic on i32, and `sym`
//!   maps the byte as i8 with −128 → 0, so every stage stays in the symmetric range the
//!   fast kernels need.
//! - Row leaf of D_k[i]: `H_leaf(k u32 BE || i u32 BE || the n bytes of the row)`
//!   ([`crate::merkle::LeafHash::of`]); stage root `R_k` = Merkle root over the n leaves.
//!
//! Why this shape: each stage needs the whole previous stage (the partner is in another
//! half of the matrix, a different half each stage), so a chain cannot be split over
//! machines without moving ~n² bytes per stage; `mix` is not linear, so no algebra skips
//! a stage; and hashing D_k (n² bytes per 2n³ operations, 1/(2n) of the work in bytes)
//! keeps commitment cost far below the products, unlike hashing the i32 C.

use super::{derive_a_row, matmul_i8, product_rows};
use crate::entropy::ChallengeId;
use crate::merkle::{LeafHash, MerkleTree};

/// The mixing function applied to each summed entry (module docs).
pub fn mix(x: i32) -> i8 {
    // Truncation to the low byte is the point of the function.
    let byte = (x ^ (x >> 11)) as u8;
    match byte as i8 {
        i8::MIN => 0,
        v => v,
    }
}

/// Row `index`'s butterfly partner at `stage` (1-based) for n = 2^`log_n`.
pub fn partner(stage: u32, index: u32, n: u32) -> u32 {
    let log_n = n.trailing_zeros().max(1);
    index ^ (1u32 << ((stage.saturating_sub(1)) % log_n))
}

/// The leaf of row `index` of stage `stage`.
pub fn stage_leaf(stage: u32, index: u32, row: &[i8]) -> LeafHash {
    // Safe Rust cannot view &[i8] as &[u8]; copy through a buffer of a whole row at the
    // largest n, so BLAKE3 still sees 16 KiB per update (its SIMD path needs long input).
    let mut buffer = [0u8; 16 * 1024];
    let mut hasher = LeafHash::hasher();
    hasher
        .update(&stage.to_be_bytes())
        .update(&index.to_be_bytes());
    for chunk in row.chunks(buffer.len()) {
        for (byte, &value) in buffer.iter_mut().zip(chunk) {
            *byte = value.to_ne_bytes()[0];
        }
        hasher.update(&buffer[..chunk.len()]);
    }
    hasher.finalize()
}

/// Stage `stage` from the previous one: `D_k = mix(C_k + partner rows of C_k)`, C on
/// `threads` threads. None when sizes do not match or n is not a power of two.
pub fn next_stage(
    previous: &[i8],
    b: &[i8],
    n: usize,
    stage: u32,
    threads: usize,
) -> Option<Vec<i8>> {
    let n32 = u32::try_from(n).ok()?;
    if !n32.is_power_of_two() {
        return None;
    }
    let c = matmul_i8(previous, b, n, threads)?;
    Some(mix_rows(&c, n, stage))
}

/// D_k from C_k (row-major n×n).
fn mix_rows(c: &[i32], n: usize, stage: u32) -> Vec<i8> {
    let n32 = u32::try_from(n).unwrap_or(u32::MAX);
    let mut d = vec![0i8; c.len()];
    for (i, out) in (0u32..).zip(d.chunks_mut(n)) {
        let p = partner(stage, i, n32) as usize;
        let (row, other) = (&c[i as usize * n..][..n], &c[p * n..][..n]);
        for ((o, &x), &y) in out.iter_mut().zip(row).zip(other) {
            *o = mix(x.wrapping_add(y));
        }
    }
    d
}

/// What the verifier recomputes for one sampled row: `D_k[i]` from `D_{k−1}[i]` and
/// `D_{k−1}[p]`, several at once (`inputs` holds the pairs back to back, 2n per row).
pub fn recompute_rows(inputs: &[i8], b: &[i8], n: usize) -> Option<Vec<i8>> {
    if n == 0 || !inputs.len().is_multiple_of(2 * n) {
        return None;
    }
    let c = product_rows(inputs, b, n)?;
    Some(
        c.chunks_exact(2 * n)
            .flat_map(|pair| {
                let (row, other) = pair.split_at(n);
                row.iter()
                    .zip(other)
                    .map(|(&x, &y)| mix(x.wrapping_add(y)))
                    .collect::<Vec<_>>()
            })
            .collect(),
    )
}

/// Row `index` of D_0 = A.
pub fn initial_row(seed: &ChallengeId, n: usize, index: u32) -> Vec<i8> {
    derive_a_row(seed, n, usize::try_from(index).unwrap_or(usize::MAX))
}

/// The Merkle tree over stage `stage`'s rows.
pub fn stage_tree(stage: u32, rows: &[i8], n: usize) -> MerkleTree {
    MerkleTree::new(
        (0u32..)
            .zip(rows.chunks(n.max(1)))
            .map(|(i, row)| stage_leaf(stage, i, row))
            .collect(),
    )
}
