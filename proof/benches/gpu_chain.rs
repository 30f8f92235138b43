//! GPU chain proof on this machine's CPU: prover time per class against the raw int8
//! product measured in the same run, commitment (hashing) share, verifier cost per proof,
//! and the pass rate of a chain with a fraction f of bad rows against (1 − f)^S.
//!
//! Run: `cargo bench -p depin-proof --bench gpu_chain`
//! Env: `DEPIN_BENCH_GPU_VERIFY_N` (default 4096) sets the n of the verifier-cost row.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Instant;

use depin_proof::entropy::{Beacon, ChallengeId, EntropyConfig};
use depin_proof::gpu::{
    self, ChainChallenge, ChainCommitContext, ChainOpenContext, ChainWork, GpuClass, chain,
};
use depin_proof::identity::NodeKey;
use depin_proof::session::{ServerNonce, Session};

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

struct Rig {
    beacon: Beacon,
    node: NodeKey,
    session_key: NodeKey,
    session: Session,
}

impl Rig {
    fn new() -> Self {
        let beacon = Beacon::new([4; 32], EntropyConfig::default());
        let node = NodeKey::from_seed([1; 32]);
        let session_key = NodeKey::from_seed([2; 32]);
        let session = Session {
            node: node.public(),
            session_key: session_key.public(),
            nonce: ServerNonce([0; 32]),
        };
        Self {
            beacon,
            node,
            session_key,
            session,
        }
    }

    /// Commits `work` as if it arrived 1 ms after issue, and returns the opening check's
    /// result for the verifier's samples.
    fn prove(&self, class: &GpuClass, challenge: &ChainChallenge, work: &ChainWork) -> bool {
        let seen = BTreeSet::new();
        let ctx = ChainCommitContext {
            class,
            beacon: &self.beacon,
            session: &self.session,
            challenge,
            seen: &seen,
            measured_rtt_ms: 0,
            received_at_ms: challenge.issued_at_ms + 1,
        };
        let verified =
            gpu::verify_chain_commitment(&work.commit(&self.session_key), &ctx).expect("commit");
        let request = gpu::sample_stage_rows(&self.beacon, &verified);
        let opening = work.open(&request, &self.session_key);
        gpu::verify_chain_opening(
            &opening,
            &ChainOpenContext {
                session: &self.session,
                commitment: &verified,
                request: &request,
            },
        )
        .is_ok()
    }
}

fn main() {
    let rig = Rig::new();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    // Raw primitive: one n×n int8 product on every thread.
    println!("\n## Chain prover (CPU backend, {threads} threads) vs raw int8 product");
    println!(
        "| class | n | K | W ops | chain s | GOPS | × raw product GOPS | hashing share | P_c GOPS | passes? |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for name in ["test", "cpu"] {
        let class = GpuClass::built_in(name).expect("built-in");
        let n = class.n as usize;
        let (a, b) = gpu::derive_matrices(&ChallengeId([9; 32]), n);
        let raw = median_secs(5, || gpu::matmul_i8(&a, &b, n, threads));
        let raw_gops = 2.0 * (n as f64).powi(3) / raw / 1e9;
        let challenge = ChainChallenge::issue(&rig.beacon, &class, 600_000, [7; 32]);
        let secs = median_secs(5, || {
            ChainWork::compute(&challenge, &rig.node.public(), threads)
        });
        let gops = class.work_ops() / secs / 1e9;
        let d = chain::next_stage(&a, &b, n, 1, threads).expect("stage");
        let hash = median_secs(5, || chain::stage_tree(1, &d, n));
        let stage = secs / f64::from(class.stages);
        let floor = class.min_tops * 1e3;
        println!(
            "| {name} | {n} | {} | {:.3e} | {secs:.3} | {gops:.1} | {:.2} | {:.3} | {floor:.1} | {} |",
            class.stages,
            class.work_ops(),
            gops / raw_gops,
            hash / stage,
            if gops >= floor { "yes" } else { "TooSlow" }
        );
    }

    // Every GPU class from this CPU: the time it would need at the measured cpu-class
    // rate, against the class deadline.
    let cpu = GpuClass::built_in("cpu").expect("cpu");
    let cpu_challenge = ChainChallenge::issue(&rig.beacon, &cpu, 600_000, [8; 32]);
    let cpu_secs = median_secs(3, || {
        ChainWork::compute(&cpu_challenge, &rig.node.public(), threads)
    });
    let cpu_tops = cpu.work_ops() / cpu_secs / 1e12;
    println!("\n## This CPU ({cpu_tops:.4} TOPS on the cpu class) against each class");
    println!("| class | P_c TOPS | deadline ms | this CPU would need ms | × deadline | verdict |");
    println!("|---|---|---|---|---|---|");
    for class in GpuClass::built_ins() {
        let need = class.work_ops() / (cpu_tops * 1e12) * 1e3;
        let deadline = class.deadline_ms(0) as f64;
        println!(
            "| {} | {} | {deadline:.0} | {need:.0} | {:.2} | {} |",
            class.name,
            class.min_tops,
            need / deadline,
            if need <= deadline {
                "passes"
            } else if need <= class.close_ms() as f64 {
                "TooSlow"
            } else {
                "miss (NoResponse)"
            }
        );
    }

    // Verifier cost per proof: commitment + S openings, recomputation included.
    let verify_n: u32 = std::env::var("DEPIN_BENCH_GPU_VERIFY_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096);
    println!("\n## Verifier cost per proof (1 thread recomputation, S = 32)");
    println!(
        "| n | K | verify s | of which B regeneration s | rows recomputed | GOPS in row products |"
    );
    println!("|---|---|---|---|---|---|");
    for (n, stages) in [(1024u32, 4u32), (verify_n, 2)] {
        let class =
            GpuClass::resolve("test", Some(1e-9), Some(n), Some(stages), None).expect("class");
        let challenge = ChainChallenge::issue(&rig.beacon, &class, 600_000, [3; 32]);
        let work = ChainWork::compute(&challenge, &rig.node.public(), threads).expect("work");
        let secs = median_secs(3, || assert!(rig.prove(&class, &challenge, &work)));
        // The prove() call includes the verifier's side only plus the prover's open();
        // subtract the open alone.
        let id = challenge.id(&rig.node.public());
        let regen = median_secs(3, || gpu::derive_b(&id, n as usize));
        let ops = 2.0 * 2.0 * f64::from(class.samples) * f64::from(n).powi(2);
        println!(
            "| {n} | {stages} | {secs:.3} | {regen:.3} | {} | {:.1} |",
            2 * class.samples,
            ops / (secs - regen).max(1e-9) / 1e9
        );
    }

    // Survival of bad rows: a fraction f of the last stage's rows is garbage.
    println!("\n## A fraction f of bad rows survives S samples with (1 − f)^S");
    println!("| f (of all rows) | S | trials | passed | measured | (1 − f)^S |");
    println!("|---|---|---|---|---|---|");
    for (bad_every, samples) in [(2usize, 4u32), (2, 8), (1, 2)] {
        let stages = 2u32;
        let class = GpuClass::resolve("test", Some(1e-9), Some(16), Some(stages), Some(samples))
            .expect("class");
        let trials = 2000u32;
        let mut passed = 0u32;
        for trial in 0..trials {
            let mut challenge = ChainChallenge::issue(&rig.beacon, &class, 600_000, [0; 32]);
            challenge.nonce[..4].copy_from_slice(&trial.to_be_bytes());
            let honest = ChainWork::compute(&challenge, &rig.node.public(), 1).expect("work");
            let mut last = honest.stage(stages).expect("stage").to_vec();
            for row in last.chunks_mut(16).step_by(bad_every) {
                row.fill(1);
            }
            let first = honest.stage(1).expect("stage").to_vec();
            let lying =
                ChainWork::from_stages(honest.challenge(), 16, vec![first, last]).expect("stages");
            passed += u32::from(rig.prove(&class, &challenge, &lying));
        }
        let f = 1.0 / (bad_every as f64 * f64::from(stages));
        println!(
            "| {f:.3} | {samples} | {trials} | {passed} | {:.4} | {:.4} |",
            f64::from(passed) / f64::from(trials),
            (1.0 - f).powi(samples as i32)
        );
    }
}
