//! What people read: the rewards summary and the claim as text.

use super::claims::file_of;
use super::*;
use crate::claim::render_text;
use crate::manifest::parse_manifest;
use crate::rewards::{EpochReport, render_report};

#[test]
fn rewards_summary_shows_totals_pools_checks_and_optionally_nodes() {
    let result = closed();
    let manifest = parse_manifest(&result.manifest()).expect("parses");
    let report = EpochReport::new(record_of(&result), manifest);
    assert!(report.verified());
    let text = render_report(&report, false);
    let root = hex::encode(result.merkle_root);
    for expected in [
        "RewardEpoch  default-3 (policy default, epoch 3)",
        "window       2027-01-15T08:00:00Z .. 2027-01-15T09:00:00Z",
        &format!("emission     {}", result.emission),
        "nodes paid   5",
        "leaves       6",
        &format!("merkle root  {root}"),
        "manifest merkle-root = RewardEpoch merkleRoot:   ok",
        "root recomputed from 6 node lines:               ok",
        "totals, pools and leaf order:                    ok",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    let storage = result
        .pools
        .iter()
        .find(|p| p.pool.as_str() == "storage")
        .expect("pool");
    let pool_line = text
        .lines()
        .find(|l| l.starts_with("storage "))
        .expect("pool line");
    assert!(pool_line.contains(&storage.paid.to_string()), "{pool_line}");
    assert!(
        !text.contains("fleet/idle"),
        "nodes only with --nodes:\n{text}"
    );

    let with_nodes = render_report(&report, true);
    let idle = with_nodes
        .lines()
        .find(|l| l.starts_with("fleet/idle "))
        .expect("idle line");
    let cols: Vec<&str> = idle.split_whitespace().collect();
    assert_eq!(cols, ["fleet/idle", "0", "77"]);
}

#[test]
fn rewards_summary_flags_a_tampered_manifest() {
    let result = closed();
    let text = result
        .manifest()
        .replace("cumulative=77\n", "cumulative=78\n");
    let report = EpochReport::new(record_of(&result), parse_manifest(&text).expect("parses"));
    assert!(!report.verified());
    let out = render_report(&report, false);
    assert!(
        out.contains("manifest merkle-root = RewardEpoch merkleRoot:   ok"),
        "{out}"
    );
    assert!(
        out.contains("root recomputed from 6 node lines:               MISMATCH"),
        "{out}"
    );
    assert!(
        out.contains("  RecomputedRootDiffers: root recomputed"),
        "{out}"
    );
}

#[test]
fn claim_text_shows_node_epoch_amount_root_and_path() {
    let result = closed();
    let file = file_of(&result, "fleet/sn-2");
    let text = render_text(&file);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "node         fleet/sn-2");
    assert_eq!(lines[2], "epoch        3");
    assert_eq!(lines[3], format!("cumulative   {}", file.cumulative));
    assert_eq!(
        lines[4],
        format!("merkle root  {}", hex::encode(result.merkle_root))
    );
    assert_eq!(lines[5], "leaf         index 5 of 6");
    assert_eq!(lines[6], "path         2 siblings, leaf up");
    assert_eq!(lines[7], format!("    0  {}", file.path[0]));
    // The last of 6 leaves is promoted once without a sibling: 2 siblings, not 3.
    assert_eq!(lines.len(), 9);
}
