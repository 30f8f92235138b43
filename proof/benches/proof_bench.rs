//! Proof-core benchmarks, printed as ratios against the raw primitive measured in the same
//! run (absolute figures on shared 2-core machines vary 10–20 % between runs).
//!
//! Run: `cargo bench -p depin-proof --bench proof_bench`
//! Env: `DEPIN_BENCH_SECTOR_MIB` (default 1024) sets the storage sector size.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::io::Cursor;
use std::time::{Duration, Instant};

use depin_proof::entropy::{Beacon, EntropyConfig};
use depin_proof::gpu::{self, GpuChallenge, GpuCommitContext, GpuOpenContext, GpuParams, GpuWork};
use depin_proof::identity::{NodeKey, PublicKey};
use depin_proof::merkle::{LeafHash, MerkleTree, verify_path};
use depin_proof::session::{HelloContext, ServerNonce, Session, SessionHello, verify_hello};
use depin_proof::storage::{
    self, SectorId, StorageChallenge, StorageContext, StorageParams, StorageResponse,
};

/// Calls `f` repeatedly for three windows of `budget` each; returns the median window's
/// calls per second (the machine is shared, so one window can be unlucky).
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    let mut windows: Vec<f64> = (0..3)
        .map(|_| {
            let start = Instant::now();
            let mut calls = 0u64;
            while start.elapsed() < budget || calls < 3 {
                f();
                calls += 1;
            }
            calls as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    windows.sort_by(f64::total_cmp);
    windows[1]
}

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

fn random_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&[seed])
        .finalize_xof()
        .fill(&mut out);
    out
}

struct Storage {
    params: StorageParams,
    beacon: Beacon,
    node: NodeKey,
    session_key: NodeKey,
    session: Session,
    data: Vec<u8>,
}

impl Storage {
    fn challenge(&self, tree: &storage::SectorTree, period: u64) -> StorageChallenge {
        let deadline = self.params.deadline(
            period,
            self.params.deadline_index_of(tree.commitment().sector),
        );
        let deadline = deadline.expect("deadline exists");
        let tick = self.params.challenge_tick(&deadline, self.beacon.config());
        StorageChallenge {
            sector: tree.commitment().sector,
            deadline,
            entropy: self.beacon.entropy(tick),
        }
    }

    fn respond(&self, tree: &storage::SectorTree, challenge: &StorageChallenge) -> StorageResponse {
        let mut source = Cursor::new(&self.data);
        let params = StorageParams {
            leaf_size: tree.commitment().leaf_size,
            ..self.params
        };
        storage::answer_challenge(
            tree,
            challenge,
            &mut source,
            &self.node.public(),
            &self.session_key,
            &params,
        )
        .expect("in-memory read")
    }

    fn verify(
        &self,
        tree: &storage::SectorTree,
        challenge: &StorageChallenge,
        response: &StorageResponse,
    ) {
        let sectors = [(tree.commitment().sector, *tree.commitment())]
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>();
        let params = StorageParams {
            leaf_size: tree.commitment().leaf_size,
            ..self.params
        };
        let ctx = StorageContext {
            params: &params,
            beacon: &self.beacon,
            session: &self.session,
            sectors: &sectors,
            seen: &BTreeSet::new(),
            now_ms: challenge.deadline.opens_at_ms + 60_000,
        };
        storage::verify_storage_response(response, &ctx).expect("honest response");
    }
}

fn main() {
    let budget = Duration::from_millis(400);
    let sector_mib: usize = std::env::var("DEPIN_BENCH_SECTOR_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let node = NodeKey::from_seed([1; 32]);
    let session_key = NodeKey::from_seed([2; 32]);
    let session = Session {
        node: node.public(),
        session_key: session_key.public(),
        nonce: ServerNonce([3; 32]),
    };
    let beacon = Beacon::new([4; 32], EntropyConfig::default());
    println!(
        "threads available: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // --- raw ed25519 -------------------------------------------------------------------
    let message = [7u8; 96];
    let sig = node.sign(b"bench", &message);
    let ed_single = rate(budget, || {
        assert!(node.public().verify(b"bench", black_box(&message), &sig))
    });
    let batch_keys: Vec<NodeKey> = (0..64u8).map(|i| NodeKey::from_seed([i; 32])).collect();
    let signed: Vec<Vec<u8>> = (0..64)
        .map(|_| depin_proof::identity::signing_bytes(b"bench", &message))
        .collect();
    let sigs: Vec<ed25519_dalek::Signature> = batch_keys
        .iter()
        .map(|k| ed25519_dalek::Signature::from_bytes(&k.sign(b"bench", &message)))
        .collect();
    let vks: Vec<ed25519_dalek::VerifyingKey> = batch_keys
        .iter()
        .map(|k| *k.public().verifying_key())
        .collect();
    let msgs: Vec<&[u8]> = signed.iter().map(Vec::as_slice).collect();
    let ed_batch = 64.0
        * rate(budget, || {
            ed25519_dalek::verify_batch(&msgs, &sigs, &vks).expect("valid batch")
        });

    // --- hello -------------------------------------------------------------------------
    let nonce = ServerNonce([5; 32]);
    let verifier = session_key.public();
    let hello = SessionHello::sign(&node, &session_key.public(), nonce, &verifier);
    let known: BTreeSet<PublicKey> = [node.public()].into_iter().collect();
    let hello_rate = rate(budget, || {
        verify_hello(
            black_box(&hello),
            &HelloContext {
                nonce: &nonce,
                known_nodes: &known,
                verifier: &verifier,
            },
        )
        .expect("honest");
    });

    // --- Merkle commit vs raw BLAKE3 -----------------------------------------------------
    let data = random_bytes(sector_mib << 20, 9);
    let gib = data.len() as f64 / 1e9;
    let raw_blake3 = median_secs(3, || blake3::hash(&data));
    let commit_16k = median_secs(3, || storage::commit_sector(SectorId(0), &data, 16 * 1024));
    let commit_4k = median_secs(3, || storage::commit_sector(SectorId(0), &data, 4 * 1024));
    let commit_stream = median_secs(3, || {
        storage::commit_sector_from(SectorId(0), Cursor::new(&data), 16 * 1024)
            .expect("in-memory read")
    });

    // --- storage response and verification ----------------------------------------------
    let st = Storage {
        params: StorageParams::default(),
        beacon: beacon.clone(),
        node: node.clone(),
        session_key: session_key.clone(),
        session: session.clone(),
        data,
    };
    let mut storage_rows = Vec::new();
    for leaf_size in [16 * 1024u32, 4 * 1024] {
        let tree = storage::commit_sector(SectorId(0), &st.data, leaf_size);
        let challenge = st.challenge(&tree, 1000);
        let respond = median_secs(11, || st.respond(&tree, &challenge));
        let response = st.respond(&tree, &challenge);
        let verify_rate = rate(budget, || {
            st.verify(&tree, &challenge, black_box(&response))
        });
        let wire: usize = response
            .openings
            .iter()
            .map(|o| o.leaf.len() + o.path.siblings.len() * 32)
            .sum();
        storage_rows.push((
            leaf_size,
            tree.commitment().leaf_count,
            respond,
            verify_rate,
            wire,
        ));
    }

    // Merkle path verification, depth 16 (65 536 leaves).
    let leaves: Vec<LeafHash> = (0..65_536u64)
        .map(|i| LeafHash::of(&i.to_be_bytes()))
        .collect();
    let tree = MerkleTree::new(leaves.clone());
    let path = tree.path(12_345).expect("in range");
    let root = tree.root();
    let path_rate = rate(budget, || {
        assert!(verify_path(
            &root,
            65_536,
            12_345,
            black_box(&leaves[12_345]),
            &path
        ))
    });

    // --- GPU -----------------------------------------------------------------------------
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut gops_rows = Vec::new();
    for n in [512usize, 1024] {
        let (a, b) = gpu::derive_matrices(&depin_proof::entropy::ChallengeId([n as u8; 32]), n);
        let ops = 2.0 * (n as f64).powi(3) / 1e9;
        let naive = ops / median_secs(1, || gpu::matmul_naive(&a, &b, n));
        let one = ops / median_secs(7, || gpu::matmul_i8(&a, &b, n, 1));
        let all = ops / median_secs(7, || gpu::matmul_i8(&a, &b, n, threads));
        gops_rows.push((n, naive, one, all));
    }
    let params = GpuParams::default();
    let challenge = GpuChallenge {
        entropy: beacon.current(600_000),
        nonce: [6; 32],
        n: params.n,
        issued_at_ms: 600_000,
    };
    let work_secs = median_secs(5, || GpuWork::compute(&challenge, &node.public(), threads));
    let work = GpuWork::compute(&challenge, &node.public(), threads).expect("valid n");
    let commitment = work.commit(&session_key);
    let seen = BTreeSet::new();
    let commit_ctx = GpuCommitContext {
        params: &params,
        beacon: &beacon,
        session: &session,
        challenge: &challenge,
        seen: &seen,
        declared_tops: 0.0,
        received_at_ms: 600_000 + 1_000,
    };
    let gpu_commit_rate = rate(budget, || {
        gpu::verify_gpu_commitment(black_box(&commitment), &commit_ctx).expect("honest");
    });
    let verified = gpu::verify_gpu_commitment(&commitment, &commit_ctx).expect("honest");
    let request = gpu::sample_rows(&beacon, &verified, params.sampled_rows);
    let opening = work.open(&request, &session_key);
    let open_ctx = GpuOpenContext {
        session: &session,
        commitment: &verified,
        request: &request,
    };
    let gpu_open_rate = rate(budget, || {
        gpu::verify_gpu_opening(black_box(&opening), &open_ctx).expect("honest");
    });

    // --- report --------------------------------------------------------------------------
    println!("\n## Verification rate vs raw ed25519 (1 thread)");
    println!("| check | per second | × ed25519 single |");
    println!("|---|---|---|");
    let row = |name: &str, r: f64| println!("| {name} | {r:.0} | {:.3} |", r / ed_single);
    row("ed25519 verify (single)", ed_single);
    row("ed25519 verify (batch of 64, per signature)", ed_batch);
    row("session hello (verify_hello)", hello_rate);
    for (leaf, _, _, verify_rate, _) in &storage_rows {
        row(
            &format!("storage response, k=46, {} KiB leaves", leaf / 1024),
            *verify_rate,
        );
    }
    row("GPU commitment (verify_gpu_commitment)", gpu_commit_rate);
    row(
        &format!(
            "GPU opening, n={}, s={} (recomputes rows)",
            params.n, params.sampled_rows
        ),
        gpu_open_rate,
    );
    row("Merkle path, depth 16, incl. leaf compare", path_rate);

    println!("\n## Merkle commit throughput vs raw BLAKE3 ({sector_mib} MiB in memory, 1 thread)");
    println!("| operation | seconds | GB/s | × raw BLAKE3 |");
    println!("|---|---|---|---|");
    for (name, secs) in [
        ("blake3::hash (raw)", raw_blake3),
        ("commit_sector, 16 KiB leaves", commit_16k),
        ("commit_sector, 4 KiB leaves", commit_4k),
        ("commit_sector_from (reader), 16 KiB leaves", commit_stream),
    ] {
        println!(
            "| {name} | {secs:.3} | {:.2} | {:.2} |",
            gib / secs,
            raw_blake3 / secs
        );
    }

    println!("\n## Storage challenge on a {sector_mib} MiB sector (k=46)");
    println!("| leaf size | leaves | commit s | respond ms | verify ms | response bytes |");
    println!("|---|---|---|---|---|---|");
    for ((leaf, count, respond, verify_rate, wire), commit) in
        storage_rows.iter().zip([commit_16k, commit_4k])
    {
        println!(
            "| {} KiB | {count} | {commit:.3} | {:.3} | {:.3} | {wire} |",
            leaf / 1024,
            respond * 1e3,
            1e3 / verify_rate
        );
    }

    println!("\n## CPU int8 matmul (GOPS = 2n³ / s / 1e9)");
    println!("| n | naive | fast, 1 thread | fast, {threads} threads | fast/naive (1 thread) |");
    println!("|---|---|---|---|---|");
    for (n, naive, one, all) in gops_rows {
        println!(
            "| {n} | {naive:.2} | {one:.2} | {all:.2} | {:.1} |",
            one / naive
        );
    }
    println!(
        "\nGpuWork::compute n={} ({threads} threads, incl. deriving A,B and the row tree): {:.3} s = {:.4} TOPS",
        params.n,
        work_secs,
        gpu::achieved_tops(params.n, (work_secs * 1000.0) as u64)
    );
}
