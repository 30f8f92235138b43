//! `kubectl-depin verify-claim` as a user runs it: exit 0 and "claim valid" for an honest
//! file, exit 1 naming the reason for a tampered one; no cluster involved.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use depin_cli::claim::{ClaimFile, render_json};
use depin_proof::reward::{
    CumulativeTotals, EpochResult, GpuClassSpec, KindWeightsSpec, NodeTally, PolicySpec,
    RewardPolicy, Work, claim_proof, close_epoch,
};

/// Epoch 1 of a meter-only fleet of three.
fn closed() -> EpochResult {
    let policy = RewardPolicy::validate(&PolicySpec {
        epoch_seconds: 60,
        token_decimals: 6,
        initial_per_epoch: "1000000".into(),
        halving_every_epochs: 100,
        max_supply: None,
        pools: KindWeightsSpec {
            hotspot: "0.25".into(),
            storage: "0.25".into(),
            gpu: "0.25".into(),
            meter: "0.25".into(),
        },
        hotspot_split: None,
        gpu_classes: vec![GpuClassSpec {
            name: "t4".into(),
            weight: "1".into(),
        }],
        burn_and_mint: None,
    })
    .expect("policy");
    let tallies: Vec<_> = [("fleet/m-1", 100), ("fleet/m-2", 300), ("fleet/m-3", 50)]
        .map(|(node, wh)| NodeTally::new(node, Work::Meter { verified_wh: wh }))
        .into();
    close_epoch(&policy, 1, &tallies, &CumulativeTotals::new(), &[]).expect("closes")
}

fn claim_file(result: &EpochResult, node: &str) -> ClaimFile {
    let claim = claim_proof(result, node).expect("leaf");
    ClaimFile {
        policy: "default".into(),
        epoch: claim.epoch,
        node: claim.node.clone(),
        cumulative: claim.cumulative.to_string(),
        merkle_root: hex::encode(result.merkle_root),
        leaf_count: claim.proof.leaf_count,
        index: claim.proof.index,
        path: claim.proof.path.siblings.iter().map(hex::encode).collect(),
        claim: hex::encode(claim.to_bytes()),
    }
}

/// Runs the binary with `args`, `stdin` piped in.
fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-depin"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl-depin");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn honest_file_passes_and_tampered_amount_fails() {
    let result = closed();
    let root = hex::encode(result.merkle_root);
    let honest = claim_file(&result, "fleet/m-2");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("claim-m-2.json");
    std::fs::write(&path, render_json(&honest)).expect("write claim file");
    let path = path.to_str().expect("utf-8 path");

    let own = run(&["verify-claim", path], "");
    assert_eq!(own.status.code(), Some(0), "{}", text(&own.stderr));
    let out = text(&own.stdout);
    assert!(
        out.starts_with(&format!(
            "claim valid: fleet/m-2 cumulative {} at epoch 1",
            honest.cumulative
        )),
        "{out}"
    );
    assert!(
        out.contains("note: checked against the root inside the file"),
        "{out}"
    );

    let given = run(
        &["verify-claim", "-", "--root", &root],
        &render_json(&honest),
    );
    assert_eq!(given.status.code(), Some(0), "{}", text(&given.stderr));
    assert!(
        !text(&given.stdout).contains("note:"),
        "an independent root needs no note"
    );

    let mut tampered = honest.clone();
    tampered.cumulative = (honest.cumulative.parse::<u128>().expect("int") + 1).to_string();
    let bad = run(
        &["verify-claim", "-", "--root", &root],
        &render_json(&tampered),
    );
    assert_eq!(bad.status.code(), Some(1));
    let err = text(&bad.stderr);
    assert!(
        err.contains("claim INVALID (FieldMismatch): cumulative in the file is"),
        "{err}"
    );

    let other = run(
        &["verify-claim", path, "--root", &hex::encode([1u8; 32])],
        "",
    );
    assert_eq!(other.status.code(), Some(1));
    assert!(
        text(&other.stderr).contains("claim INVALID (OtherRoot)"),
        "{}",
        text(&other.stderr)
    );

    let garbage = run(&["verify-claim", "-"], "{\"not\": \"a claim\"}");
    assert_eq!(garbage.status.code(), Some(1));
    assert!(
        text(&garbage.stderr).contains("- is not a claim-proof JSON file"),
        "{}",
        text(&garbage.stderr)
    );
}
