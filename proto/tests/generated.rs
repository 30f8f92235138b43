//! The committed gRPC code (`src/gen/`) must be exactly what the `.proto` generates today.
//!
//! Regenerate after editing `proto/agent.proto`:
//! `DEPIN_REGENERATE_PROTO=1 cargo test -p depin-proto --test generated`

use std::path::{Path, PathBuf};

const GENERATED: &str = "src/gen/depin.agent.v1.rs";

fn generate(out_dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // protox is a protobuf compiler in Rust: no system protoc, same output everywhere.
    let fds = protox::compile([root.join("proto/agent.proto")], [root.join("proto")])
        .expect("agent.proto compiles");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .out_dir(out_dir)
        .compile_fds(fds)
        .expect("code generation succeeds");
    out_dir.join("depin.agent.v1.rs")
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("depin-proto-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn committed_code_matches_a_fresh_generation() {
    let dir = scratch_dir("gen");
    let fresh = std::fs::read_to_string(generate(&dir)).expect("generated file");
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GENERATED);
    if std::env::var_os("DEPIN_REGENERATE_PROTO").is_some() {
        std::fs::write(&committed_path, &fresh).expect("write generated code");
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        committed == fresh,
        "{GENERATED} is stale: run `DEPIN_REGENERATE_PROTO=1 cargo test -p depin-proto --test generated`"
    );
}

#[test]
fn generation_is_deterministic() {
    let (a, b) = (scratch_dir("a"), scratch_dir("b"));
    let first = std::fs::read(generate(&a)).expect("first");
    let second = std::fs::read(generate(&b)).expect("second");
    let _ = (std::fs::remove_dir_all(&a), std::fs::remove_dir_all(&b));
    assert_eq!(first, second);
}
