//! Manifest parsing, root recomputation, and one lie per row.

use super::*;
use crate::manifest::{ManifestError, check_manifest, parse_manifest};

/// `text` with its lines rewritten by `f`.
fn edit(text: &str, f: impl FnOnce(&mut Vec<String>)) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    f(&mut lines);
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Index of the node line for `node`.
fn node_line(lines: &[String], node: &str) -> usize {
    let prefix = format!("node {node} ");
    lines
        .iter()
        .position(|l| l.starts_with(&prefix))
        .expect("node line")
}

/// Replaces `key=<old>` by `key=<new>` in line `i`.
fn set_field(lines: &mut [String], i: usize, key: &str, new: &str) {
    let line = lines[i]
        .split(' ')
        .map(|part| match part.split_once('=') {
            Some((k, _)) if k == key => format!("{k}={new}"),
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ");
    lines[i] = line;
}

#[test]
fn parses_every_field_of_a_real_manifest() {
    let result = closed();
    let m = parse_manifest(&result.manifest()).expect("parses");
    assert_eq!(
        (m.epoch, m.emission, m.burn, m.remint, m.unallocated),
        (3, result.emission, 0, 0, result.unallocated)
    );
    assert_eq!(
        (m.node_count, m.leaf_count),
        (5, 6),
        "idle node is a leaf, not paid"
    );
    assert_eq!(m.merkle_root, result.merkle_root);
    let nodes: Vec<_> = m
        .nodes
        .iter()
        .map(|n| (n.node.as_str(), n.reward, n.cumulative))
        .collect();
    let expected: Vec<_> = result
        .nodes
        .iter()
        .map(|n| (n.node.as_str(), n.reward, n.cumulative))
        .collect();
    assert_eq!(nodes, expected);
    let pools: Vec<_> = m
        .pools
        .iter()
        .map(|p| (p.pool.as_str(), p.amount, p.paid))
        .collect();
    let expected: Vec<_> = result
        .pools
        .iter()
        .map(|p| (p.pool.as_str(), p.amount, p.paid))
        .collect();
    assert_eq!(pools, expected);
    assert_eq!(
        m.pools[0].total_shares,
        result.pools[0].total_shares.to_string()
    );
}

#[test]
fn recomputed_root_matches_and_everything_checks_out() {
    let result = closed();
    let m = parse_manifest(&result.manifest()).expect("parses");
    assert_eq!(m.recomputed_root(), result.merkle_root);
    assert_eq!(check_manifest(&m, &record_of(&result)), vec![]);
}

#[test]
fn each_lie_in_a_manifest_is_caught() {
    let result = closed();
    let honest = result.manifest();
    let record = record_of(&result);
    let other_root = hex::encode([7u8; 32]);
    type Lie = fn(&mut Vec<String>);
    let lies: Vec<(&str, Lie, &[&str])> = vec![
        (
            "cumulative + 1",
            |l| {
                let i = node_line(l, "fleet/sn-1");
                let cumulative = l[i]
                    .rsplit('=')
                    .next()
                    .expect("value")
                    .parse::<u128>()
                    .expect("int");
                set_field(l, i, "cumulative", &(cumulative + 1).to_string());
            },
            &["RecomputedRootDiffers"],
        ),
        (
            "node renamed",
            |l| {
                let i = node_line(l, "fleet/gpu-1");
                l[i] = l[i].replace("fleet/gpu-1", "fleet/gpu-9");
            },
            &["RecomputedRootDiffers"],
        ),
        (
            "node line dropped",
            |l| {
                let i = node_line(l, "fleet/idle");
                l.remove(i);
            },
            &["RecomputedRootDiffers", "LeafCountDiffers"],
        ),
        (
            "two node lines swapped",
            |l| {
                let (a, b) = (node_line(l, "fleet/hs-1"), node_line(l, "fleet/idle"));
                l.swap(a, b);
            },
            &["RecomputedRootDiffers", "NodesOutOfOrder"],
        ),
        // The leaf commits to the cumulative total only: the sums catch a moved reward.
        (
            "reward + 1",
            |l| {
                let i = node_line(l, "fleet/m-1");
                let reward = l[i]
                    .split(' ')
                    .nth(2)
                    .and_then(|f| f.strip_prefix("reward="))
                    .expect("reward")
                    .parse::<u128>()
                    .expect("int");
                set_field(l, i, "reward", &(reward + 1).to_string());
            },
            &["PayoutsDoNotAddUp"],
        ),
        (
            "unallocated + 1",
            |l| {
                let i = l
                    .iter()
                    .position(|x| x.starts_with("unallocated "))
                    .expect("line");
                let value = l[i][12..].parse::<u128>().expect("int");
                l[i] = format!("unallocated {}", value + 1);
            },
            &["TotalDiffers", "SupplyDoesNotAddUp"],
        ),
        (
            "pool paid changed",
            |l| {
                let i = l
                    .iter()
                    .position(|x| x.starts_with("pool storage "))
                    .expect("pool");
                set_field(l, i, "paid", "1");
            },
            &["PoolsDiffer", "PayoutsDoNotAddUp", "SupplyDoesNotAddUp"],
        ),
    ];
    for (lie, f, reasons) in lies {
        let m = parse_manifest(&edit(&honest, f)).unwrap_or_else(|e| panic!("{lie}: {e}"));
        let got: Vec<_> = check_manifest(&m, &record)
            .iter()
            .map(|p| p.reason())
            .collect();
        assert_eq!(got, reasons.to_vec(), "{lie}");
    }
    // A forger who also rewrites the root line is caught by the RewardEpoch alone.
    let forged = edit(&honest, |l| {
        let i = node_line(l, "fleet/sn-2");
        set_field(l, i, "cumulative", "999999999999");
    });
    let mut m = parse_manifest(&forged).expect("parses");
    m.merkle_root = m.recomputed_root();
    let got: Vec<_> = check_manifest(&m, &record)
        .iter()
        .map(|p| p.reason())
        .collect();
    assert_eq!(got, ["RootLineDiffers"]);
    let mut other = record.clone();
    other.merkle_root = other_root;
    let m = parse_manifest(&honest).expect("parses");
    let got: Vec<_> = check_manifest(&m, &other)
        .iter()
        .map(|p| p.reason())
        .collect();
    assert_eq!(got, ["RootLineDiffers"]);
}

#[test]
fn malformed_manifests_name_the_line() {
    let honest = closed().manifest();
    let cases: Vec<(&str, String, usize)> = vec![
        (
            "other version",
            honest.replace("manifest v1", "manifest v2"),
            1,
        ),
        ("empty", String::new(), 1),
        (
            "header key missing",
            edit(&honest, |l| {
                l.remove(3);
            }),
            4,
        ),
        (
            "amount not a number",
            honest.replace("\nemission ", "\nemission x"),
            3,
        ),
        (
            "bad root hex",
            edit(&honest, |l| l[8] = "merkle-root zz".into()),
            9,
        ),
        (
            "node line with an extra field",
            edit(&honest, |l| {
                let last = l.len() - 1;
                l[last].push_str(" extra=1");
            }),
            honest.lines().count(),
        ),
        (
            "pool after nodes",
            edit(&honest, |l| {
                let pool = l.iter().position(|x| x.starts_with("pool ")).expect("pool");
                let line = l.remove(pool);
                l.push(line);
            }),
            honest.lines().count(),
        ),
        (
            "unknown record",
            format!("{honest}bogus line\n"),
            honest.lines().count() + 1,
        ),
    ];
    for (case, text, line) in cases {
        match parse_manifest(&text) {
            Err(ManifestError { line: got, .. }) => assert_eq!(got, line, "{case}"),
            Ok(_) => panic!("{case}: parsed"),
        }
    }
}
