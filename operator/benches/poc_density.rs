//! The PoC density step of settling one round at fleet scale: rebuilding the hex-density
//! map for every round (what settling did) against the cache that rebuilds it only when
//! the active set changed (`verifier::state::poc::DensityCache`), with the raw primitive
//! the cached path cannot avoid measured in the same run (sorting the active set).
//!
//! Run: `cargo bench -p depin-operator --bench poc_density`
//! Env: `DEPIN_BENCH_HOTSPOTS` (default 100000).

use depin_operator::verifier::state::poc::DensityCache;
use depin_proof::identity::{NodeKey, PublicKey};
use depin_proof::poc::{HIP104_DENSITY, cell_at, hex_scales};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let n: usize = std::env::var("DEPIN_BENCH_HOTSPOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // Hotspots spread over ~2° × 2° around Amsterdam, some stacked (a deterministic LCG).
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let active: Vec<(PublicKey, h3o::CellIndex)> = (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let cell = cell_at(51.4 + 2.0 * next(), 3.9 + 2.0 * next(), 12).expect("cell");
            (NodeKey::from_seed(seed).public(), cell)
        })
        .collect();
    let beaconer = active[n / 2].0;
    let median = |mut runs: Vec<f64>| {
        runs.sort_by(f64::total_cmp);
        runs[runs.len() / 2]
    };
    let time = |f: &mut dyn FnMut()| {
        median(
            (0..5)
                .map(|_| {
                    let start = Instant::now();
                    f();
                    start.elapsed().as_secs_f64()
                })
                .collect(),
        )
    };
    let rebuild = time(&mut || {
        black_box(hex_scales(&active, &HIP104_DENSITY).get(&beaconer).copied());
    });
    let mut cache = DensityCache::default();
    cache.scale_of(active.clone(), &beaconer, &HIP104_DENSITY);
    let cached = time(&mut || {
        black_box(cache.scale_of(active.clone(), &beaconer, &HIP104_DENSITY));
    });
    let sort = time(&mut || {
        let mut copy = active.clone();
        copy.sort_unstable_by_key(|a| a.0);
        black_box(copy);
    });
    assert_eq!(cache.rebuilds, 1, "an unchanged set is never rebuilt");
    println!("PoC density per settled round, {n} active hotspots (median of 5, release)");
    println!("| path | ms per round | × raw sort of the active set |");
    println!("|---|---|---|");
    for (name, secs) in [
        ("rebuild the map every round (before)", rebuild),
        ("cache, active set unchanged (now)", cached),
        ("raw: clone + sort the active set", sort),
    ] {
        println!("| {name} | {:.2} | {:.2} |", secs * 1e3, secs / sort);
    }
    println!("rebuild / cached = {:.1}×", rebuild / cached);
}
