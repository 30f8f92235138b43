//! Exact int8 × int8 → int32 matrix products: the prover's fast CPU kernel, the naive
//! reference, and the single-row product the verifier recomputes.
//!
//! The fast kernel is safe Rust written so LLVM vectorises it: B is widened to i16 once,
//! C is computed in tiles of 4 rows × 128 columns held in registers/L1, and the k loop
//! adds two products per step in i16 before widening. That pairing is exact only when no
//! input is -128 (|a·b| ≤ 127², and 2·127² < 2^15), which holds for every challenge matrix
//! ([`super::derive_matrices`] draws from the symmetric range -127..=127, as symmetric int8
//! quantisation does); any other input takes a one-product-per-step path.

/// Rows of A per tile.
const TILE_ROWS: usize = 4;
/// Columns of C per tile (the i32 accumulators stay in L1: 4 × 128 × 4 bytes).
const TILE_COLS: usize = 128;

/// C = A·B for row-major n×n matrices, split by rows over `threads` scoped threads.
/// Returns `None` when a slice is not n×n.
pub fn matmul_i8(a: &[i8], b: &[i8], n: usize, threads: usize) -> Option<Vec<i32>> {
    let cells = n.checked_mul(n)?;
    if a.len() != cells || b.len() != cells {
        return None;
    }
    let symmetric = !a.contains(&i8::MIN) && !b.contains(&i8::MIN);
    let widened: Vec<i16> = b.iter().map(|&v| i16::from(v)).collect();
    let mut c = vec![0i32; cells];
    if n == 0 {
        return Some(c);
    }
    // Whole tiles per thread, so no tile straddles two threads.
    let rows_per_thread = n.div_ceil(threads.max(1)).div_ceil(TILE_ROWS) * TILE_ROWS;
    let chunk = rows_per_thread * n;
    std::thread::scope(|scope| {
        for (a_rows, c_rows) in a.chunks(chunk).zip(c.chunks_mut(chunk)) {
            let widened = &widened;
            scope.spawn(move || multiply_rows(a_rows, widened, n, c_rows, symmetric));
        }
    });
    Some(c)
}

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
/// recomputes for the sampled rows, O(rows · n²) with the same fast kernel.
/// Returns `None` when the sizes do not match.
pub fn product_rows(a_rows: &[i8], b: &[i8], n: usize) -> Option<Vec<i32>> {
    if n == 0 || !a_rows.len().is_multiple_of(n) || b.len() != n.checked_mul(n)? {
        return None;
    }
    let symmetric = !a_rows.contains(&i8::MIN) && !b.contains(&i8::MIN);
    let widened: Vec<i16> = b.iter().map(|&v| i16::from(v)).collect();
    let mut rows = vec![0i32; a_rows.len()];
    multiply_rows(a_rows, &widened, n, &mut rows, symmetric);
    Some(rows)
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

    #[test]
    fn extreme_values_stay_exact() {
        for fill in [i8::MIN, i8::MAX, -127] {
            let n = 67;
            let m = vec![fill; n * n];
            let c = matmul_i8(&m, &m, n, 3).expect("square");
            assert!(
                c.iter()
                    .all(|&v| v == n as i32 * i32::from(fill) * i32::from(fill)),
                "fill={fill}"
            );
        }
    }

    #[test]
    fn rejects_wrong_sizes() {
        assert_eq!(matmul_i8(&[1; 3], &[1; 4], 2, 1), None);
        assert_eq!(matmul_naive(&[1; 4], &[1; 5], 2), None);
        assert_eq!(product_rows(&[1; 3], &[1; 4], 2), None);
        assert_eq!(product_rows(&[], &[], 0), None);
        assert_eq!(matmul_i8(&[], &[], 0, 1), Some(vec![]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn fast_kernel_matches_naive(n in 1usize..150, seed in any::<u8>(), threads in 1usize..4, allow_min in any::<bool>()) {
            let (a, b) = (matrix(n, seed, allow_min), matrix(n, seed.wrapping_add(1), allow_min));
            let want = matmul_naive(&a, &b, n).expect("square");
            prop_assert_eq!(matmul_i8(&a, &b, n, threads).expect("square"), want.clone());
            let rows = n / 2..n / 2 + 2.min(n - n / 2);
            prop_assert_eq!(product_rows(&a[rows.start * n..rows.end * n], &b, n).expect("square"), want[rows.start * n..rows.end * n].to_vec());
        }
    }
}
