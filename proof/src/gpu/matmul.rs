//! Exact int8 × int8 → int32 matrix products: the prover's fast CPU kernel, the naive
//! reference, and the single-row product the verifier recomputes.
//!
//! The fast kernel is safe Rust written so LLVM vectorises it: B is widened to i16 once,
//! C is computed in tiles of 4 rows × 128 columns held in registers/L1, and the k loop
//! adds two products per step in i16 before widening. That pairing is exact only when no
//! input is -128 (|a·b| ≤ 127², and 2·127² < 2^15), which holds for every challenge matrix
//! ([`super::derive_matrices`] draws from the symmetric range -127..=127, as symmetric int8
//! quantisation does); any other input takes a one-product-per-step path.

//! Exact int8 × int8 → int32 matrix products: the prover's CPU kernels, the naive
//! reference, and the row products the verifier recomputes.
//!
//! Two kernels compute the same integers. [`Kernel::Vnni`] (module `vnni`, the one audited
//! `unsafe` module) uses AVX-512 VNNI's `vpdpbusd` where the CPU has it; it is about 10×
//! the portable kernel and is what the verifier's sampled-row recomputation needs on every
//! proof. [`Kernel::Portable`] is safe Rust written so LLVM vectorises it and runs
//! everywhere: B is widened to i16 once, C is computed in tiles of 4 rows × 128 columns
//! held in registers/L1, and the k loop adds two products per step in i16 before widening.
//! That pairing is exact only when no input is -128 (|a·b| ≤ 127², and 2·127² < 2^15),
//! which holds for every challenge matrix ([`super::derive_matrices`] draws from the
//! symmetric range -127..=127, as symmetric int8 quantisation does); any other input takes
//! a one-product-per-step path.

mod vnni;

use vnni::Vnni;

/// Which int8 kernel computes a product (both give bit-identical results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Safe Rust vectorised by the compiler; runs on every CPU.
    Portable,
    /// AVX-512 VNNI (`vpdpbusd`); only where the CPU has avx512f, avx512bw and avx512vnni.
    Vnni,
}

impl Kernel {
    /// The fastest kernel this CPU runs (detected at run time).
    pub fn best() -> Self {
        if Vnni::detect().is_some() {
            Self::Vnni
        } else {
            Self::Portable
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn is_available(self) -> bool {
        match self {
            Self::Portable => true,
            Self::Vnni => Vnni::detect().is_some(),
        }
    }

    /// Short name for benchmark and log output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Vnni => "avx512-vnni",
        }
    }
}

/// C = A·B for row-major n×n matrices with the fastest kernel this CPU has, split by rows
/// over `threads` scoped threads. Returns `None` when a slice is not n×n.
pub fn matmul_i8(a: &[i8], b: &[i8], n: usize, threads: usize) -> Option<Vec<i32>> {
    matmul_with(Kernel::best(), a, b, n, threads)
}

/// [`matmul_i8`] with a chosen kernel. Returns `None` when a slice is not n×n or the CPU
/// cannot run `kernel`.
pub fn matmul_with(
    kernel: Kernel,
    a: &[i8],
    b: &[i8],
    n: usize,
    threads: usize,
) -> Option<Vec<i32>> {
    let cells = n.checked_mul(n)?;
    if a.len() != cells || b.len() != cells {
        return None;
    }
    let mut c = vec![0i32; cells];
    if n == 0 {
        return Some(c);
    }
    match kernel {
        Kernel::Portable => portable(a, b, n, threads, &mut c),
        Kernel::Vnni => {
            let vnni = Vnni::detect()?;
            // Whole micro-tiles per thread, so no tile is padded twice.
            let rows_per_thread = n.div_ceil(threads.max(1)).div_ceil(vnni::MR) * vnni::MR;
            let chunk = rows_per_thread * n;
            std::thread::scope(|scope| {
                for (a_rows, c_rows) in a.chunks(chunk).zip(c.chunks_mut(chunk)) {
                    scope.spawn(move || vnni.multiply(a_rows, b, n, 0..n, c_rows));
                }
            });
        }
    }
    Some(c)
}

/// The portable kernel over `threads` scoped threads, writing all of `c`.
fn portable(a: &[i8], b: &[i8], n: usize, threads: usize, c: &mut [i32]) {
    let symmetric = !a.contains(&i8::MIN) && !b.contains(&i8::MIN);
    let widened: Vec<i16> = b.iter().map(|&v| i16::from(v)).collect();
    // Whole tiles per thread, so no tile straddles two threads.
    let rows_per_thread = n.div_ceil(threads.max(1)).div_ceil(TILE_ROWS) * TILE_ROWS;
    let chunk = rows_per_thread * n;
    std::thread::scope(|scope| {
        for (a_rows, c_rows) in a.chunks(chunk).zip(c.chunks_mut(chunk)) {
            let widened = &widened;
            scope.spawn(move || multiply_rows(a_rows, widened, n, c_rows, symmetric));
        }
    });
}

/// Rows of A per tile.
const TILE_ROWS: usize = 4;
/// Columns of C per tile (the i32 accumulators stay in L1: 4 × 128 × 4 bytes).
const TILE_COLS: usize = 128;

/// Computes the rows of C for the rows of A in `a_rows` (a multiple of n long).
fn multiply_rows(a_rows: &[i8], b: &[i16], n: usize, c_rows: &mut [i32], symmetric: bool) {
    for (a_tile, c_tile) in a_rows
        .chunks(TILE_ROWS * n)
        .zip(c_rows.chunks_mut(TILE_ROWS * n))
    {
        let rows = a_tile.len() / n;
        for col in (0..n).step_by(TILE_COLS) {
            let width = TILE_COLS.min(n - col);
            let mut acc = [[0i32; TILE_COLS]; TILE_ROWS];
            let mut k = 0;
            if symmetric {
                while k + 1 < n {
                    let b0 = &b[k * n + col..][..width];
                    let b1 = &b[(k + 1) * n + col..][..width];
                    for (r, acc_row) in acc.iter_mut().enumerate().take(rows) {
                        let (x0, x1) = (
                            i16::from(a_tile[r * n + k]),
                            i16::from(a_tile[r * n + k + 1]),
                        );
                        for ((sum, &y0), &y1) in acc_row[..width].iter_mut().zip(b0).zip(b1) {
                            // Both products ≤ 127² in magnitude, so their sum fits i16.
                            *sum += i32::from(x0 * y0 + x1 * y1);
                        }
                    }
                    k += 2;
                }
            }
            while k < n {
                let b0 = &b[k * n + col..][..width];
                for (r, acc_row) in acc.iter_mut().enumerate().take(rows) {
                    let x0 = i16::from(a_tile[r * n + k]);
                    for (sum, &y0) in acc_row[..width].iter_mut().zip(b0) {
                        // One product is at most 128² = 2^14 in magnitude: fits i16.
                        *sum += i32::from(x0 * y0);
                    }
                }
                k += 1;
            }
            for (r, acc_row) in acc.iter().enumerate().take(rows) {
                c_tile[r * n + col..][..width].copy_from_slice(&acc_row[..width]);
            }
        }
    }
}

/// The textbook triple loop, as a correctness reference and benchmark baseline.
pub fn matmul_naive(a: &[i8], b: &[i8], n: usize) -> Option<Vec<i32>> {
    let cells = n.checked_mul(n)?;
    if a.len() != cells || b.len() != cells {
        return None;
    }
    let mut c = vec![0i32; cells];
    for i in 0..n {
        for j in 0..n {
            c[i * n + j] = (0..n)
                .map(|k| i32::from(a[i * n + k]) * i32::from(b[k * n + j]))
                .sum();
        }
    }
    Some(c)
}

/// Rows of C for the given rows of A (`a_rows`, a multiple of n long): what the verifier
/// recomputes for the sampled rows, O(rows · n²), with the fastest kernel on one thread.
/// Returns `None` when the sizes do not match.
pub fn product_rows(a_rows: &[i8], b: &[i8], n: usize) -> Option<Vec<i32>> {
    product_rows_with(Kernel::best(), a_rows, b, n, 1)
}

/// One row of C: `a_row` (n long) times B. Batch rows with [`product_rows`] where possible:
/// each call reads all n² bytes of B for only 2n² operations.
pub fn row_product(a_row: &[i8], b: &[i8], n: usize) -> Option<Vec<i32>> {
    if a_row.len() != n {
        return None;
    }
    product_rows(a_row, b, n)
}

/// [`product_rows`] with a chosen kernel; the VNNI kernel runs on `threads` threads, each
/// taking a band of columns (a few sampled rows are too few to split by rows), the
/// portable fallback on one. Returns `None` when the sizes do not match or the CPU cannot
/// run `kernel`.
pub fn product_rows_with(
    kernel: Kernel,
    a_rows: &[i8],
    b: &[i8],
    n: usize,
    threads: usize,
) -> Option<Vec<i32>> {
    if n == 0 || !a_rows.len().is_multiple_of(n) || b.len() != n.checked_mul(n)? {
        return None;
    }
    let mut rows = vec![0i32; a_rows.len()];
    let row_count = a_rows.len() / n;
    if row_count == 0 {
        return kernel.is_available().then_some(rows);
    }
    match kernel {
        Kernel::Portable => {
            let symmetric = !a_rows.contains(&i8::MIN) && !b.contains(&i8::MIN);
            let widened: Vec<i16> = b.iter().map(|&v| i16::from(v)).collect();
            multiply_rows(a_rows, &widened, n, &mut rows, symmetric);
        }
        Kernel::Vnni => {
            let vnni = Vnni::detect()?;
            let threads = threads.clamp(1, n.div_ceil(vnni::PANEL));
            if threads == 1 {
                vnni.multiply(a_rows, b, n, 0..n, &mut rows);
            } else {
                // Whole panels per band, so no panel is packed twice.
                let band = n.div_ceil(threads).div_ceil(vnni::PANEL) * vnni::PANEL;
                let bands: Option<Vec<(usize, Vec<i32>)>> = std::thread::scope(|scope| {
                    let handles: Vec<_> = (0..n)
                        .step_by(band)
                        .map(|start| {
                            let cols = start..(start + band).min(n);
                            scope.spawn(move || {
                                let mut out = vec![0i32; row_count * cols.len()];
                                vnni.multiply(a_rows, b, n, cols, &mut out);
                                (start, out)
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().ok()).collect()
                });
                // A band whose thread panicked is missing: no partial answer.
                let bands: Vec<(usize, Vec<i32>)> = bands?;
                for (start, out) in bands {
                    let width = out.len() / row_count;
                    for (row, band_row) in rows.chunks_exact_mut(n).zip(out.chunks_exact(width)) {
                        row[start..start + width].copy_from_slice(band_row);
                    }
                }
            }
        }
    }
    Some(rows)
}

/// Runs the raw primitive the benchmarks compare the kernels against: `iterations` steps
/// of independent register-only `vpdpbusd`s. Returns the int8 operations done (multiply
/// and add counted apart, as for a product's 2n³) and a checksum to keep the loop, or
/// `None` when the CPU lacks VNNI.
pub fn vnni_peak_loop(iterations: u64) -> Option<(u64, i32)> {
    let vnni = Vnni::detect()?;
    let checksum = vnni.dpbusd_loop(iterations);
    // Each vpdpbusd does 64 multiplies and 64 adds.
    Some((iterations * vnni::LOOP_CHAINS as u64 * 128, checksum))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn matrix(n: usize, seed: u8, allow_min: bool) -> Vec<i8> {
        let mut bytes = vec![0u8; n * n];
        blake3::Hasher::new()
            .update(&[seed])
            .finalize_xof()
            .fill(&mut bytes);
        bytes
            .into_iter()
            .map(|v| v as i8)
            .map(|v| if !allow_min && v == i8::MIN { 0 } else { v })
            .collect()
    }

    /// Every kernel this CPU runs (the portable one always, VNNI where detected).
    fn kernels() -> Vec<Kernel> {
        [Kernel::Portable, Kernel::Vnni]
            .into_iter()
            .filter(|k| k.is_available())
            .collect()
    }

    /// Checks the full product, a row band over several threads and one row, all against
    /// the naive product, for every kernel.
    fn assert_all_kernels_match(a: &[i8], b: &[i8], n: usize, label: &str) {
        let want = matmul_naive(a, b, n).expect("square");
        for kernel in kernels() {
            for threads in [1, 3] {
                assert_eq!(
                    matmul_with(kernel, a, b, n, threads).expect("square"),
                    want,
                    "{label} n={n} {kernel:?} threads={threads}"
                );
                assert_eq!(
                    product_rows_with(kernel, a, b, n, threads).expect("square"),
                    want,
                    "{label} n={n} {kernel:?} rows threads={threads}"
                );
            }
        }
        let last = n - 1;
        assert_eq!(
            row_product(&a[last * n..], b, n).expect("one row"),
            want[last * n..].to_vec(),
            "{label} n={n} row_product"
        );
        assert_eq!(
            matmul_i8(a, b, n, 2).expect("square"),
            want,
            "{label} n={n} dispatch"
        );
    }

    #[test]
    fn extreme_values_stay_exact() {
        for fill in [i8::MIN, i8::MAX, -127] {
            let n = 67;
            let m = vec![fill; n * n];
            for kernel in kernels() {
                let c = matmul_with(kernel, &m, &m, n, 3).expect("square");
                assert!(
                    c.iter()
                        .all(|&v| v == n as i32 * i32::from(fill) * i32::from(fill)),
                    "fill={fill} {kernel:?}"
                );
            }
        }
    }

    #[test]
    fn adversarial_inputs_match_naive_at_tile_edges() {
        // Sizes around every tile edge: MR = 6 rows, 4-byte k groups, 64-column panels,
        // 256-deep k blocks, and the portable kernel's 4 × 128 tiles.
        for n in [1, 3, 5, 17, 63, 64, 65, 100, 129, 256, 257] {
            let cells = n * n;
            let mixed: Vec<i8> = (0..cells)
                .map(|i| if i % 3 == 0 { i8::MIN } else { i8::MAX })
                .collect();
            let cases: [(&str, Vec<i8>, Vec<i8>); 5] = [
                ("all -128", vec![i8::MIN; cells], vec![i8::MIN; cells]),
                ("all 127", vec![i8::MAX; cells], vec![i8::MAX; cells]),
                ("-128 x 127", vec![i8::MIN; cells], vec![i8::MAX; cells]),
                (
                    "mixed extremes",
                    mixed.clone(),
                    mixed.iter().rev().copied().collect(),
                ),
                ("random", matrix(n, n as u8, true), matrix(n, 200, true)),
            ];
            for (label, a, b) in cases {
                assert_all_kernels_match(&a, &b, n, label);
            }
        }
    }

    #[test]
    fn row_products_span_column_blocks() {
        // Wider than the VNNI kernel's 2048-column blocks, with an edge panel and edge rows;
        // checked row by row (a naive full product would be n³).
        let n = 2048 + 65;
        let (b, a_rows) = (matrix(n, 7, true), matrix(n, 8, true)[..7 * n].to_vec());
        let b_ref = &b;
        let want: Vec<i32> = a_rows
            .chunks_exact(n)
            .flat_map(|row| {
                (0..n).map(move |j| {
                    (0..n)
                        .map(|k| i32::from(row[k]) * i32::from(b_ref[k * n + j]))
                        .sum::<i32>()
                })
            })
            .collect();
        for kernel in kernels() {
            for threads in [1, 2] {
                assert_eq!(
                    product_rows_with(kernel, &a_rows, &b, n, threads).expect("rows"),
                    want,
                    "{kernel:?} threads={threads}"
                );
            }
        }
    }

    #[test]
    fn largest_magnitude_fits_i32_at_n_1024() {
        // |C| is largest when every product is (-128)² = 2^14: n · 2^14 = 2^24 here.
        let n = 1024;
        let m = vec![i8::MIN; n * n];
        for kernel in kernels() {
            let rows = product_rows_with(kernel, &m[..2 * n], &m, n, 2).expect("rows");
            assert!(rows.iter().all(|&v| v == 1 << 24), "{kernel:?}");
        }
    }

    #[test]
    fn vnni_runs_exactly_where_detected() {
        let (a, b) = (matrix(8, 1, true), matrix(8, 2, true));
        assert_eq!(
            matmul_with(Kernel::Vnni, &a, &b, 8, 1).is_some(),
            Kernel::Vnni.is_available()
        );
        assert_eq!(
            Kernel::best(),
            if Kernel::Vnni.is_available() {
                Kernel::Vnni
            } else {
                Kernel::Portable
            }
        );
    }

    #[test]
    fn raw_loop_really_multiplies() {
        // Each lane adds (4, 3, 2, 1) · (8, 7, 6, 5) = 70 per step, over 16 lanes × 24 chains.
        if Kernel::Vnni.is_available() {
            assert_eq!(vnni_peak_loop(10), Some((10 * 24 * 128, 70 * 10 * 16 * 24)));
        } else {
            assert_eq!(vnni_peak_loop(10), None);
        }
    }

    #[test]
    fn rejects_wrong_sizes() {
        assert_eq!(matmul_i8(&[1; 3], &[1; 4], 2, 1), None);
        assert_eq!(matmul_naive(&[1; 4], &[1; 5], 2), None);
        assert_eq!(product_rows(&[1; 3], &[1; 4], 2), None);
        assert_eq!(product_rows(&[], &[], 0), None);
        assert_eq!(row_product(&[1; 4], &[1; 4], 2), None);
        assert_eq!(row_product(&[1; 1], &[1; 4], 2), None);
        for kernel in kernels() {
            assert_eq!(matmul_with(kernel, &[1; 4], &[1; 3], 2, 2), None);
            assert_eq!(product_rows_with(kernel, &[1; 3], &[1; 4], 2, 2), None);
            assert_eq!(matmul_with(kernel, &[], &[], 0, 1), Some(vec![]));
            assert_eq!(product_rows_with(kernel, &[], &[1; 4], 2, 3), Some(vec![]));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn every_kernel_matches_naive(n in 1usize..150, seed in any::<u8>(), threads in 1usize..4, allow_min in any::<bool>()) {
            let (a, b) = (matrix(n, seed, allow_min), matrix(n, seed.wrapping_add(1), allow_min));
            let want = matmul_naive(&a, &b, n).expect("square");
            let rows = n / 2..n / 2 + 2.min(n - n / 2);
            for kernel in kernels() {
                prop_assert_eq!(matmul_with(kernel, &a, &b, n, threads).expect("square"), want.clone());
                prop_assert_eq!(
                    product_rows_with(kernel, &a[rows.start * n..rows.end * n], &b, n, threads).expect("rows"),
                    want[rows.start * n..rows.end * n].to_vec()
                );
            }
            prop_assert_eq!(matmul_i8(&a, &b, n, threads).expect("square"), want.clone());
            prop_assert_eq!(product_rows(&a[rows.start * n..rows.end * n], &b, n).expect("rows"), want[rows.start * n..rows.end * n].to_vec());
        }
    }
}
