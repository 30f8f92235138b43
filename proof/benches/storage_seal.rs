//! Storage seal: packing cost vs raw BLAKE3, verifier CPU per response vs raw Merkle-path
//! checks, and what a cheater keeping a fraction f of the packed leaves (or regenerating
//! them on demand) gets per deadline, played against the real verifier. Ratios are against
//! primitives measured in the same run (this machine is shared, absolute figures vary).
//!
//! Run: `cargo bench -p depin-proof --bench storage_seal`
//! Env: `DEPIN_SEAL_BENCH_MIB` sector size in MiB (default 64; 1024 for the published
//! 1 GiB figures), `DEPIN_SEAL_BENCH_DEADLINES` simulated deadlines per f (default 2000).

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::io::Cursor;
use std::time::{Duration, Instant};

use depin_proof::entropy::{Beacon, EntropyConfig};
use depin_proof::identity::NodeKey;
use depin_proof::merkle::{LeafHash, verify_path};
use depin_proof::reject::RejectReason;
use depin_proof::session::{ServerNonce, Session};
use depin_proof::storage::{
    SealedSector, SectorId, SectorTree, StorageChallenge, StorageContext, StorageParams,
    StorageResponse, answer_challenge, challenged_leaves, check_response_deadline, commit_sector,
    leaf_hash, response_clock_start_ms, verify_sealed_root, verify_storage_response,
};

const SECTOR: SectorId = SectorId(0);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Calls per second of `f` over the median of three windows of `budget`.
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

fn secs<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64())
}

struct Prover {
    params: StorageParams,
    beacon: Beacon,
    node: NodeKey,
    session_key: NodeKey,
    session: Session,
    tree: SectorTree,
    sectors: BTreeMap<SectorId, depin_proof::storage::SectorCommitment>,
}

impl Prover {
    fn challenge(&self, period: u64) -> StorageChallenge {
        let deadline = self
            .params
            .deadline(period, self.params.deadline_index_of(SECTOR))
            .expect("deadline exists");
        StorageChallenge::for_deadline(&self.params, &self.beacon, SECTOR, deadline)
    }

    fn respond(&self, challenge: &StorageChallenge, disk: &[u8]) -> StorageResponse {
        answer_challenge(
            &self.tree,
            challenge,
            &mut Cursor::new(disk),
            &self.node.public(),
            &self.session_key,
            &self.params,
        )
        .expect("in-memory read")
    }

    fn verify(
        &self,
        challenge: &StorageChallenge,
        response: &StorageResponse,
    ) -> Result<(), RejectReason> {
        let sent = self.beacon.config().issued_at_ms(challenge.entropy.tick);
        let ctx = StorageContext {
            params: &self.params,
            beacon: &self.beacon,
            session: &self.session,
            sectors: &self.sectors,
            seen: &BTreeSet::new(),
            now_ms: sent + 1,
        };
        verify_storage_response(response, &ctx).map(|_| ())
    }
}

fn main() {
    let mib = env_or("DEPIN_SEAL_BENCH_MIB", 64);
    let deadlines = env_or("DEPIN_SEAL_BENCH_DEADLINES", 2000);
    let bytes = mib << 20;
    let params = StorageParams::default();
    let k = params.challenges_per_deadline;
    let passes = params.seal.passes_for(bytes);
    let node = NodeKey::from_seed([1; 32]);
    let session_key = NodeKey::from_seed([2; 32]);
    println!(
        "storage seal: {mib} MiB sector, {passes} Argon2d passes (work {} blocks), {} KiB leaves, k = {k}, response deadline D = {} ms",
        params.seal.work_blocks,
        params.leaf_size / 1024,
        params.response_deadline_ms
    );

    // --- packing vs raw BLAKE3 of the same bytes ------------------------------------------
    let (sealed, pack_s) =
        secs(|| SealedSector::pack(&node.public(), SECTOR, bytes, &params.seal).expect("packs"));
    let (tree, commit_s) = secs(|| sealed.commit(params.leaf_size));
    let replica = sealed.to_bytes();
    drop(sealed);
    let (_, blake3_s) = secs(|| black_box(blake3::hash(&replica)));
    let gb = bytes as f64 / 1e9;
    println!(
        "pack (Argon2d fill)        {pack_s:8.3} s  {:7.3} GB/s per pass  = {:7.1} × raw BLAKE3 ({blake3_s:.4} s, {:.2} GB/s)",
        gb * f64::from(passes) / pack_s,
        pack_s / blake3_s,
        gb / blake3_s
    );
    println!(
        "commit (Merkle, 16 KiB)    {commit_s:8.3} s                         = {:7.1} × raw BLAKE3",
        commit_s / blake3_s
    );
    println!(
        "pack + commit per GiB      {:8.3} s",
        (pack_s + commit_s) / (bytes as f64 / f64::from(1u32 << 30))
    );
    let regen_floor_s = pack_s * f64::from(passes - 1) / f64::from(passes);
    let d_s = params.response_deadline_ms as f64 / 1000.0;
    println!(
        "regenerate any leaf        ≥ {regen_floor_s:7.3} s ((t−1)/t of a pack) = {:5.1} × D",
        regen_floor_s / d_s
    );

    // --- verifier: seal check once per sector, then per response --------------------------
    let (check, check_s) = secs(|| verify_sealed_root(&node.public(), tree.commitment(), &params));
    assert_eq!(check, Ok(()), "the honest root passes the seal check");
    println!(
        "verify_sealed_root         {check_s:8.3} s once per sector (memory {mib} MiB) = {:5.2} × pack",
        check_s / pack_s
    );
    let session = Session {
        node: node.public(),
        session_key: session_key.public(),
        nonce: ServerNonce([0; 32]),
    };
    let sectors = [(SECTOR, *tree.commitment())].into_iter().collect();
    let prover = Prover {
        params,
        beacon: Beacon::new([3; 32], EntropyConfig::default()),
        node: node.clone(),
        session_key,
        session,
        tree,
        sectors,
    };
    let budget = Duration::from_millis(400);
    let challenge = prover.challenge(1000);
    let response = prover.respond(&challenge, &replica);
    let verify_rate = rate(budget, || {
        prover
            .verify(&challenge, black_box(&response))
            .expect("honest");
    });
    let indices = challenged_leaves(&challenge.id(&node.public()), prover.tree.commitment(), k);
    let commitment = *prover.tree.commitment();
    let raw_rate = rate(budget, || {
        for (&i, opening) in indices.iter().zip(&response.openings) {
            let hash: LeafHash = leaf_hash(i, black_box(&opening.leaf));
            assert!(verify_path(
                &commitment.root,
                commitment.leaf_count,
                i,
                &hash,
                &opening.path
            ));
        }
    });
    println!(
        "verify_storage_response    {:8.1} µs per response (k = {k})  = {:5.2} × raw leaf hash + Merkle path ×{k} ({:.1} µs)",
        1e6 / verify_rate,
        raw_rate / verify_rate,
        1e6 / raw_rate
    );

    // --- cheaters: keep a fraction f of the packed leaves ----------------------------------
    let leaf = prover.params.leaf_size as usize;
    let leaf_count = commitment.leaf_count;
    println!(
        "cheater keeping a fraction f of the leaves, {deadlines} deadlines each (missing leaves read as zeros):"
    );
    println!("    f     f^k (formula)   passed/deadlines (measured)");
    for f in [0.0f64, 0.5, 0.9, 0.99] {
        // Which leaves it kept: a fixed pseudo-random subset of size ≈ f·N.
        let kept = |i: u64| {
            let h = blake3::hash(&i.to_be_bytes());
            let word = u64::from_be_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
            (word as f64 / u64::MAX as f64) < f
        };
        let mut disk = replica.clone();
        for i in (0..leaf_count).filter(|&i| !kept(i)) {
            let start = i as usize * leaf;
            disk[start..start + leaf].fill(0);
        }
        let mut passed = 0u64;
        for trial in 0..deadlines {
            let challenge = prover.challenge(2000 + trial);
            let response = prover.respond(&challenge, &disk);
            match prover.verify(&challenge, &response) {
                Ok(()) => passed += 1,
                Err(RejectReason::BadMerklePath) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        println!(
            "  {f:5.2}   {:12.3e}   {passed}/{deadlines} = {:.4}",
            f.powi(k as i32),
            passed as f64 / deadlines as f64
        );
    }

    // --- cheater: keep only the tree and regenerate on demand ------------------------------
    // It answers correctly, but only after re-packing the sector; the verifier clocks it.
    let challenge = prover.challenge(9000);
    let sent_ms = response_clock_start_ms(prover.beacon.config(), challenge.entropy.tick);
    let (regenerated, regen_s) = secs(|| {
        SealedSector::pack(&node.public(), SECTOR, bytes, &prover.params.seal)
            .expect("packs")
            .to_bytes()
    });
    let response = prover.respond(&challenge, &regenerated);
    let arrives_ms = sent_ms + (regen_s * 1000.0) as u64;
    let late = check_response_deadline(&prover.params, sent_ms, arrives_ms);
    println!(
        "regenerate on demand: correct leaves after {regen_s:.3} s = {:.1} × D; deadline check: {late:?}; proof check alone: {:?}",
        regen_s / d_s,
        prover.verify(&challenge, &response)
    );
    println!(
        "  compute spent per deadline: {regen_s:.3} core-s and {mib} MiB RAM, to be refused; passes with probability 0 while its speed-up < {:.1}×",
        regen_floor_s / d_s
    );
    // A partial cheater that regenerates its missing leaves pays the same whenever any of
    // the k challenged leaves is missing (probability 1 − f^k) and then arrives late.
    for f in [0.5f64, 0.9, 0.99] {
        println!(
            "  keeping f = {f:4.2} and regenerating the rest: passes in time with f^k = {:.3e}, spends {regen_s:.3} core-s in {:.3} of deadlines",
            f.powi(k as i32),
            1.0 - f.powi(k as i32)
        );
    }
    // Unpacked data cannot even be committed.
    let unpacked = commit_sector(SECTOR, &vec![0u8; bytes as usize], prover.params.leaf_size);
    println!(
        "unpacked root at commitment: {:?}",
        verify_sealed_root(&node.public(), unpacked.commitment(), &prover.params)
    );
}
