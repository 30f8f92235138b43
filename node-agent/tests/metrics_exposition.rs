//! The agent's /metrics for every role, configured exactly as the operator configures it
//! (the operator's golden ConfigMaps): every sample parses and no label name repeats
//! (Prometheus drops a whole scrape over one such sample).
#![allow(clippy::unwrap_used)]

use depin_agent::metrics::AgentMetrics;
use depin_proto::config::AgentConfig;
use serde::Deserialize as _;
use std::collections::BTreeSet;

fn golden_config(file: &str) -> AgentConfig {
    let path = format!(
        "{}/../operator/tests/golden/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(doc).unwrap();
        if let Some(agent) = value["data"]["agent.yaml"].as_str() {
            return AgentConfig::from_yaml(agent).unwrap();
        }
    }
    panic!("{path} has no agent.yaml");
}

/// Label names of one exposition sample line, in order.
fn label_names(line: &str) -> Vec<String> {
    let Some((_, rest)) = line.split_once('{') else {
        return Vec::new();
    };
    let body = &rest[..rest.rfind('}').unwrap()];
    let (mut names, mut name) = (Vec::new(), String::new());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '=' => {
                names.push(std::mem::take(&mut name));
                assert_eq!(
                    chars.next(),
                    Some('"'),
                    "value of {:?} unquoted",
                    names.last()
                );
                while let Some(v) = chars.next() {
                    match v {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            ',' => {}
            c => name.push(c),
        }
    }
    names
}

#[test]
fn every_role_exposes_samples_without_repeated_label_names() {
    for file in [
        "hotspot-gateway.yaml",
        "storage-node.yaml",
        "gpu-worker.yaml",
        "meter-bridge.yaml",
    ] {
        let config = golden_config(file);
        let text = AgentMetrics::new(&config).unwrap().render();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(samples.len() > 5, "{file}: only {} samples", samples.len());
        for line in samples {
            let names = label_names(line);
            let unique: BTreeSet<&String> = names.iter().collect();
            assert_eq!(
                unique.len(),
                names.len(),
                "{file}: repeated label in {line}"
            );
            for want in ["kind", "node", "namespace", "role"] {
                assert!(
                    names.iter().any(|n| n == want),
                    "{file}: no {want} in {line}"
                );
            }
        }
    }
}

#[test]
fn the_label_parser_sees_a_repeat() {
    assert_eq!(
        label_names(r#"m{kind="a,b",kind="c\"d"} 1"#),
        ["kind", "kind"]
    );
}
