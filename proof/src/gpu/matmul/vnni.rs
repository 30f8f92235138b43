//! AVX-512 VNNI kernel for exact int8 × int8 → i32 products: the one module of the
//! workspace allowed `unsafe`, because `std::arch` intrinsics are `unsafe fn`s. The one
//! maintained crate that does exact int8 products with VNNI, `rten-gemm`, matched this
//! kernel on square products but was 2.5–3× slower on the verifier's shape (a few sampled
//! rows times a large B) and runs on rayon's global pool; docs/r2/gpu-kernel.md has the
//! figures.
//!
//! # Arithmetic
//! `vpdpbusd` multiplies *unsigned* bytes by *signed* bytes, four pairs per 32-bit lane,
//! and adds them to the lane **without saturation** (its sibling `vpdpbusds` saturates;
//! that one is never used). B is stored offset, `B' = B + 128` in 0..=255, so
//!
//! ```text
//! Σ_k A[i][k]·B'[k][j] = C[i][j] + 128·Σ_k A[i][k]      (exactly, over the integers)
//! ```
//!
//! and C is that sum minus `128·rowsum(A[i])` (C starts at the negated offset). Every
//! step is wrapping arithmetic mod 2^32, a ring homomorphism from ℤ, so the result is exact
//! whenever the true C fits an i32: `|C| ≤ n·128² = n·2^14 ≤ 2^31 − 1` for n ≤ 131 071.
//! For n ≤ 65 793 not even an intermediate wraps (`|A·B'| ≤ n·128·255`, plus the offset
//! `≤ n·2^14`); the callers cap n at [`super::super::MAX_MATRIX_N`] = 16 384, far inside
//! both. Padding adds only zeros: k positions past n are 0 in A (and B' = 128 there), and
//! rows or columns past the matrix are computed on a scratch tile and never copied out.
//!
//! # Invariants the unsafe code relies on (the audit checklist)
//! 1. A [`Vnni`] value exists only after runtime detection of avx512f, avx512bw and
//!    avx512vnni ([`Vnni::detect`]); its field is private, so the target-feature functions
//!    are only called on a CPU that has those features.
//! 2. [`tile`] reads `MR` rows of `a` at `row·a_stride + 4·g .. +4` for g < `groups`, 64
//!    u32 lanes of `b` per group, and reads/writes `PANEL` i32 at `row·c_stride` of `c` for
//!    each of its `MR` rows. It asserts that `a.len()`, `b.len()` and `c.len()` cover that
//!    before touching memory, so every raw-pointer access is inside the slice it came from
//!    (and `c`, borrowed `&mut`, is aliased by nothing).
//! 3. Loads and stores are the unaligned forms (`loadu`/`storeu`, `read_unaligned`), so no
//!    alignment is assumed.
//!
//! Everything else (packing, padding, the offset correction, threading) is safe code.

#![allow(unsafe_code)]

use std::ops::Range;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m512i, _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_set1_epi32, _mm512_setzero_si512,
    _mm512_storeu_si512,
};

/// Rows of C per micro-tile: 6 rows × 4 vectors = 24 accumulators of the 32 zmm registers,
/// leaving 4 for the B vectors and broadcasts, enough independent chains (latency 5 × 2
/// ports) to keep both VNNI ports busy.
pub(super) const MR: usize = 6;
/// Columns of C per panel: four 16-lane vectors.
pub(super) const PANEL: usize = 64;
/// Groups of four k per cache block: a block of one packed panel is 128 · 64 · 4 = 32 KiB,
/// which stays in L1 (48 KiB here) while every row tile of A streams past it. Measured
/// against 64 and 256 groups: 0.53 / 0.62 / 0.61 of the raw `vpdpbusd` loop at n = 1024.
const BLOCK_GROUPS: usize = 128;

/// Columns of C per block: its packed B block is 32 panels × 32 KiB = 1 MiB, inside L2
/// (2 MiB here), so the tiles re-read it from L2 and not L3. At n = 16 384 (256 panels,
/// an 8 MiB packed block otherwise) this measured 1.5× on the verifier's row products.
const COLUMN_BLOCK: usize = 32 * PANEL;

/// Independent accumulator chains in the raw `vpdpbusd` loop (as many as the kernel uses).
pub(super) const LOOP_CHAINS: usize = MR * 4;

/// Proof that this CPU has the AVX-512 features the kernel uses (invariant 1).
#[derive(Debug, Clone, Copy)]
pub(super) struct Vnni {
    _detected: (),
}

impl Vnni {
    /// Detects avx512f + avx512bw + avx512vnni at run time.
    pub(super) fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                return Some(Self { _detected: () });
            }
        }
        None
    }

    /// The raw primitive the benchmarks compare against: `iterations` steps of
    /// [`LOOP_CHAINS`] independent register-only `vpdpbusd`s (no memory traffic), i.e.
    /// `iterations · LOOP_CHAINS · 128` int8 ops. Returns a checksum so the loop is kept.
    pub(super) fn dpbusd_loop(self, iterations: u64) -> i32 {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `self` proves the CPU has avx512f/bw/vnni (invariant 1).
            unsafe { dpbusd_loop(iterations) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = iterations;
            0
        }
    }

    /// Columns `cols` of C = A·B for the rows of A in `a` (row-major, a multiple of n long)
    /// and B (n×n), written row-major to `c` (`rows × cols.len()`). The caller
    /// ([`super`]) checks the lengths; a mismatch here can only panic in slice indexing,
    /// never read out of bounds.
    pub(super) fn multiply(self, a: &[i8], b: &[i8], n: usize, cols: Range<usize>, c: &mut [i32]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `self` proves the CPU has avx512f/bw/vnni (invariant 1).
        unsafe {
            multiply(a, b, n, cols, c);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (a, b, n, cols, c);
    }
}

/// [`Vnni::multiply`], compiled for AVX-512 as a whole so that the safe packing and
/// padding code is vectorised with it.
///
/// Loop order: for each block of [`COLUMN_BLOCK`] columns, each block of
/// 4·[`BLOCK_GROUPS`] rows of B (read row by row and packed for the whole column block at
/// once, so a few sampled rows never walk B column-wise), each 64-column panel, each 6-row
/// tile of A, accumulating straight into C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn multiply(a: &[i8], b: &[i8], n: usize, cols: Range<usize>, c: &mut [i32]) {
    let rows = a.len() / n;
    let width = cols.len();
    let k_groups = n.div_ceil(4);
    let stride = k_groups * 4;
    let padded_rows = rows.div_ceil(MR) * MR;
    // A with its rows padded to a multiple of 4 bytes (zeros) and MR rows per tile.
    let mut a_pad = vec![0i8; padded_rows * stride];
    for (dst, src) in a_pad.chunks_exact_mut(stride).zip(a.chunks_exact(n)) {
        dst[..n].copy_from_slice(src);
    }
    // C starts at −128·rowsum(A[i]), cancelling what the offset B adds to row i.
    for (c_row, a_row) in c.chunks_exact_mut(width).zip(a.chunks_exact(n)) {
        let rowsum: i32 = a_row.iter().map(|&v| i32::from(v)).sum();
        c_row.fill(rowsum.wrapping_mul(-128));
    }
    let block_groups = BLOCK_GROUPS.min(k_groups);
    let panel_block = block_groups * PANEL;
    let mut packed = vec![0u32; COLUMN_BLOCK.min(width).div_ceil(PANEL) * panel_block];
    for block in (0..width).step_by(COLUMN_BLOCK) {
        let block_end = (block + COLUMN_BLOCK).min(width);
        let packed = &mut packed[..(block_end - block).div_ceil(PANEL) * panel_block];
        for g0 in (0..k_groups).step_by(block_groups) {
            let groups = block_groups.min(k_groups - g0);
            let block_cols = cols.start + block..cols.start + block_end;
            pack_block(b, n, g0..g0 + groups, block_cols, packed, panel_block);
            for (p, b_block) in packed.chunks_exact(panel_block).enumerate() {
                let col = block + p * PANEL;
                let lanes = PANEL.min(block_end - col);
                for row in (0..rows).step_by(MR) {
                    let a_tile = &a_pad[row * stride + g0 * 4..];
                    if lanes == PANEL && row + MR <= rows {
                        let c_tile = &mut c[row * width + col..];
                        tile(a_tile, stride, b_block, groups, c_tile, width);
                    } else {
                        // Edge tile: run on a full-size copy, keep only the real cells.
                        let mut edge = [0i32; MR * PANEL];
                        let real = MR.min(rows - row);
                        for (e, c_row) in edge
                            .chunks_exact_mut(PANEL)
                            .zip(c[row * width..].chunks_mut(width))
                            .take(real)
                        {
                            e[..lanes].copy_from_slice(&c_row[col..col + lanes]);
                        }
                        tile(a_tile, stride, b_block, groups, &mut edge, PANEL);
                        for (e, c_row) in edge
                            .chunks_exact(PANEL)
                            .zip(c[row * width..].chunks_mut(width))
                            .take(real)
                        {
                            c_row[col..col + lanes].copy_from_slice(&e[..lanes]);
                        }
                    }
                }
            }
        }
    }
}

/// Packs rows `4·groups.start .. 4·groups.end` of B's columns `cols` as the kernel reads
/// them: per 64-column panel (`panel_block` lanes apart), for each group g of four k, 64
/// lanes of four bytes `B[4g + t][col + lane] + 128` (byte t = 0..4, little-endian). Lanes
/// past the last column and k past n hold 128 (B = 0): their products are never written
/// out, or are zero.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn pack_block(
    b: &[i8],
    n: usize,
    groups: Range<usize>,
    cols: Range<usize>,
    packed: &mut [u32],
    panel_block: usize,
) {
    const ZERO: [i8; PANEL] = [0; PANEL];
    let g0 = groups.start;
    for g in 0..groups.len() {
        for (p, panel) in packed.chunks_exact_mut(panel_block).enumerate() {
            let col = cols.start + p * PANEL;
            let lanes = PANEL.min(cols.end - col);
            // Fixed-size rows (zero past the last column or k) let LLVM vectorise the
            // interleave: full panels borrow B in place, the last one is staged.
            let mut staged = [ZERO; 4];
            let mut rows = [&ZERO; 4];
            for (t, (row, stage)) in rows.iter_mut().zip(staged.iter_mut()).enumerate() {
                let k = 4 * (g0 + g) + t;
                if k >= n {
                    continue;
                }
                let src = &b[k * n + col..][..lanes];
                match <&[i8; PANEL]>::try_from(src) {
                    Ok(full) => *row = full,
                    Err(_) => {
                        stage[..lanes].copy_from_slice(src);
                        *row = stage;
                    }
                }
            }
            let group = &mut panel[g * PANEL..][..PANEL];
            for (lane, quad) in group.iter_mut().enumerate() {
                let bytes = [rows[0][lane], rows[1][lane], rows[2][lane], rows[3][lane]];
                // Flipping each sign bit is v + 128 for two's-complement v.
                *quad = u32::from_le_bytes(bytes.map(|v| v as u8)) ^ 0x8080_8080;
            }
        }
    }
}

/// Adds A[0..MR][4·g0 ..] · B'-block into the MR × PANEL tile of `c` whose rows start
/// `c_stride` lanes apart.
///
/// `a` holds MR rows `a_stride` bytes apart, of which the first `4·groups` bytes are read;
/// `b` holds `groups` blocks of 64 packed lanes.
///
/// Safe to call from code compiled with the same target features; everything it touches
/// is bounds-checked first (invariant 2).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn tile(a: &[i8], a_stride: usize, b: &[u32], groups: usize, c: &mut [i32], c_stride: usize) {
    // Invariant 2: every access below is inside these bounds.
    assert!(groups == 0 || a.len() >= (MR - 1) * a_stride + 4 * groups);
    assert!(b.len() >= groups * PANEL);
    assert!(c_stride >= PANEL && c.len() >= (MR - 1) * c_stride + PANEL);
    let (a_ptr, b_ptr, c_ptr) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    let mut acc: [[__m512i; 4]; MR] = [[_mm512_setzero_si512(); 4]; MR];
    for (r, row) in acc.iter_mut().enumerate() {
        for (q, v) in row.iter_mut().enumerate() {
            // SAFETY: r·c_stride + q·16 + 16 ≤ (MR−1)·c_stride + PANEL ≤ c.len()
            // (asserted); unaligned load.
            *v = unsafe { _mm512_loadu_si512(c_ptr.add(r * c_stride + q * 16).cast()) };
        }
    }
    for g in 0..groups {
        // SAFETY: g < groups, so lanes g·64 .. g·64 + 64 lie inside b (asserted).
        let bv = unsafe {
            let p = b_ptr.add(g * PANEL);
            [
                _mm512_loadu_si512(p.cast()),
                _mm512_loadu_si512(p.add(16).cast()),
                _mm512_loadu_si512(p.add(32).cast()),
                _mm512_loadu_si512(p.add(48).cast()),
            ]
        };
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: r < MR and g < groups, so r·a_stride + 4g + 4 ≤ a.len() (asserted);
            // read_unaligned needs no alignment.
            let quad = unsafe {
                a_ptr
                    .add(r * a_stride + 4 * g)
                    .cast::<i32>()
                    .read_unaligned()
            };
            let av = _mm512_set1_epi32(quad);
            for (v, &bq) in row.iter_mut().zip(&bv) {
                // Unsigned operand first (the offset B), signed second (A); no saturation.
                *v = _mm512_dpbusd_epi32(*v, bq, av);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (q, v) in row.iter().enumerate() {
            // SAFETY: as for the loads above; c is exclusively borrowed.
            unsafe { _mm512_storeu_si512(c_ptr.add(r * c_stride + q * 16).cast(), *v) };
        }
    }
}

/// # Safety
/// The CPU must support avx512f, avx512bw and avx512vnni.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dpbusd_loop(iterations: u64) -> i32 {
    let x = _mm512_set1_epi32(std::hint::black_box(0x0102_0304));
    let y = _mm512_set1_epi32(std::hint::black_box(0x0506_0708));
    let mut acc = [_mm512_setzero_si512(); LOOP_CHAINS];
    for _ in 0..iterations {
        for v in acc.iter_mut() {
            *v = _mm512_dpbusd_epi32(*v, x, y);
        }
    }
    let mut lanes = [0i32; 16];
    let mut sum = 0i32;
    for v in acc {
        // SAFETY: `lanes` is 64 bytes, one zmm; unaligned store.
        unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), v) };
        sum = lanes.iter().fold(sum, |s, &l| s.wrapping_add(l));
    }
    sum
}
