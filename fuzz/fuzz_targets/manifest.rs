//! The reward manifest as the operator reads it back from its ConfigMap shards: shard
//! reassembly (`shards`), the parser (`Published::parse`) on any text, and on manifests
//! whose stated root is right for the nodes they list, so the fuzzer gets past the root
//! check. A parsed manifest must serve, for every node it lists, a claim that verifies
//! under its root for exactly that node's amount.
//!
//! The code is the operator's own file, compiled in by path: depending on depin-operator
//! would build kube, k8s-openapi and tonic under the fuzzer for two pure functions.
#![no_main]

use std::fmt::Write;

use depin_proof::merkle::MerkleTree;
use depin_proof::reward::{reward_leaf, verify_claim};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../operator/src/rewards/manifest.rs"]
mod manifest;

use manifest::{Published, shards};

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any text, split at `limit` and parsed.
    Text { limit: u16, text: String },
    /// A manifest whose merkle-root line is right for its node lines.
    Rooted {
        epoch: u64,
        nodes: Vec<(String, u128, u128)>,
        extra: String,
    },
}

/// Every node the manifest lists gets a claim for its own amount under the root.
fn check_claims(published: &Published) {
    for n in &published.nodes {
        let claim = published.claim(&n.node).expect("a listed node has a claim");
        assert_eq!(
            (claim.epoch, claim.cumulative),
            (published.epoch, n.cumulative)
        );
        assert!(verify_claim(&published.root, &claim), "{}", n.node);
        assert_eq!(published.total(&n.node), Some(n));
    }
}

fn check_shards(text: &str, limit: usize) {
    let parts = shards(text, limit);
    assert_eq!(parts.concat(), text);
    for part in &parts {
        assert!(!part.is_empty());
        // A line longer than the limit (or an unterminated last one) is kept whole, as
        // its own shard.
        let whole_line = !part.as_bytes()[..part.len() - 1].contains(&b'\n');
        assert!(
            part.len() <= limit || whole_line,
            "{} > {limit}",
            part.len()
        );
        if text.ends_with('\n') {
            assert!(part.ends_with('\n'));
        }
    }
}

fuzz_target!(|input: Input| match input {
    Input::Text { limit, text } => {
        check_shards(&text, usize::from(limit).max(1));
        if let Ok(published) = Published::parse(text.as_str().into()) {
            check_claims(&published);
        }
    }
    Input::Rooted {
        epoch,
        nodes,
        extra,
    } => {
        let root = MerkleTree::new(
            nodes
                .iter()
                .map(|(node, _, cumulative)| reward_leaf(epoch, node, *cumulative))
                .collect(),
        )
        .root();
        let mut text = format!("depin-reward-manifest v1\nepoch {epoch}\n{extra}\n");
        let _ = writeln!(text, "merkle-root {}", hex::encode(root));
        for (node, reward, cumulative) in &nodes {
            let _ = writeln!(text, "node {node} reward={reward} cumulative={cumulative}");
        }
        check_shards(&text, 64);
        if let Ok(published) = Published::parse(text.as_str().into()) {
            check_claims(&published);
        }
    }
});
