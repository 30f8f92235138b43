//! int8 × int8 → i32 kernels against the raw AVX-512 VNNI primitive measured in the same
//! run: a register-only `vpdpbusd` loop (the most this core can do) and the 530 GOPS per
//! thread research measured on this kind of machine (`shared/research/primitive-limits.md`).
//! Absolute figures on shared machines vary 10–20 % between runs; read the ratios.
//!
//! Run: `cargo bench -p depin-proof --bench matmul_vnni`
//! Env: `DEPIN_BENCH_ROW_N` (default 16384) sets n for the verifier's row products.

use std::hint::black_box;
use std::time::Instant;

use depin_proof::gpu::{self, Kernel};

/// VNNI int8 ops per second per thread from research (same machine kind, other day).
const RESEARCH_VNNI_GOPS: f64 = 530.0;

/// Median wall time of `runs` calls.
fn median_secs<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn random_i8(len: usize, seed: u8) -> Vec<i8> {
    let mut bytes = vec![0u8; len];
    blake3::Hasher::new()
        .update(&[seed])
        .finalize_xof()
        .fill(&mut bytes);
    bytes.into_iter().map(|v| v as i8).collect()
}

/// GOPS of the raw `vpdpbusd` loop on `threads` threads at once (median of 5), or `None`
/// without VNNI.
fn raw_vnni_gops(threads: usize) -> Option<f64> {
    gpu::vnni_peak_loop(1)?;
    let iterations = 5_000_000;
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let ops: u64 = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| scope.spawn(move || gpu::vnni_peak_loop(iterations)))
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().ok().flatten())
                    .map(|(ops, checksum)| {
                        black_box(checksum);
                        ops
                    })
                    .sum()
            });
            ops as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    Some(runs[2])
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let best = Kernel::best();
    println!("# int8 matmul kernels (best on this CPU: {})", best.name());
    let raw_one = raw_vnni_gops(1);
    let raw_all = raw_vnni_gops(threads);
    match (raw_one, raw_all) {
        (Some(one), Some(all)) => println!(
            "raw vpdpbusd loop: {one:.1} GOPS on 1 thread ({:.2} × research's {RESEARCH_VNNI_GOPS}), {all:.1} GOPS on {threads} threads",
            one / RESEARCH_VNNI_GOPS
        ),
        _ => println!("raw vpdpbusd loop: no AVX-512 VNNI on this CPU"),
    }
    let raw_one = raw_one.unwrap_or(RESEARCH_VNNI_GOPS);
    let raw_all = raw_all.unwrap_or(RESEARCH_VNNI_GOPS * threads as f64);

    println!(
        "\n## Full products (GOPS = 2n³ / s / 1e9; ratio = kernel / raw loop, same thread count)"
    );
    println!("| n | kernel | threads | GOPS | / raw loop | / research 530 per thread |");
    println!("|---|---|---|---|---|---|");
    for n in [256usize, 1024] {
        let (a, b) = (random_i8(n * n, 1), random_i8(n * n, 2));
        let ops = 2.0 * (n as f64).powi(3) / 1e9;
        let naive = ops / median_secs(1, || gpu::matmul_naive(&a, &b, n));
        println!(
            "| {n} | naive | 1 | {naive:.2} | {:.3} | {:.3} |",
            naive / raw_one,
            naive / RESEARCH_VNNI_GOPS
        );
        for kernel in [Kernel::Portable, Kernel::Vnni] {
            if !kernel.is_available() {
                continue;
            }
            for t in [1, threads] {
                let gops = ops / median_secs(9, || gpu::matmul_with(kernel, &a, &b, n, t));
                let raw = if t == 1 { raw_one } else { raw_all };
                println!(
                    "| {n} | {} | {t} | {gops:.1} | {:.3} | {:.3} |",
                    kernel.name(),
                    gops / raw,
                    gops / (RESEARCH_VNNI_GOPS * t as f64)
                );
            }
        }
    }

    let row_n: usize = std::env::var("DEPIN_BENCH_ROW_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16_384);
    println!("\n## Verifier row products (sampled rows of A times all of B; GOPS = 2·rows·n² / s)");
    println!("| n | rows | kernel | threads | ms | rows/s | GOPS | / raw loop |");
    println!("|---|---|---|---|---|---|---|---|");
    for (n, rows) in [(1024usize, 16usize), (1024, 64), (row_n, 32), (row_n, 64)] {
        let b = random_i8(n * n, 3);
        let a = random_i8(rows * n, 4);
        for kernel in [Kernel::Portable, Kernel::Vnni] {
            if !kernel.is_available() || (kernel == Kernel::Portable && n > 4096) {
                continue;
            }
            for t in [1, threads] {
                let secs = median_secs(3, || gpu::product_rows_with(kernel, &a, &b, n, t));
                let gops = 2.0 * rows as f64 * (n * n) as f64 / secs / 1e9;
                let raw = if t == 1 { raw_one } else { raw_all };
                println!(
                    "| {n} | {rows} | {} | {t} | {:.1} | {:.0} | {gops:.1} | {:.3} |",
                    kernel.name(),
                    secs * 1e3,
                    rows as f64 / secs,
                    gops / raw
                );
            }
        }
    }
}
