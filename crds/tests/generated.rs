//! The committed CRD YAML must be exactly what the types generate, and the documented
//! example resources must parse into the types.

use depin_crds::*;
use pretty_assertions::assert_eq;
use serde::Deserialize;
use std::path::Path;

#[test]
fn committed_crd_yaml_matches_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut expected_files = Vec::new();
    for crd in all_crds() {
        let file = crd_file_name(&crd);
        let committed = std::fs::read_to_string(dir.join(&file))
            .unwrap_or_else(|e| panic!("{file}: {e}; run `cargo run -p depin-crds --bin crdgen`"));
        let generated = crd_yaml(&crd).expect("yaml");
        assert_eq!(
            committed, generated,
            "{file} is stale: run `cargo run -p depin-crds --bin crdgen`"
        );
        expected_files.push(file);
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("crds dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    expected_files.sort();
    assert_eq!(
        on_disk, expected_files,
        "crds/ holds a YAML file no type generates"
    );
}

#[test]
fn every_crd_is_in_the_depin_category_with_status_where_it_has_one() {
    for crd in all_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["depin".to_string()][..]),
            "{name}"
        );
        let version = &crd.spec.versions[0];
        assert!(
            version
                .additional_printer_columns
                .as_ref()
                .is_some_and(|c| c.len() >= 4),
            "{name} printer columns"
        );
        let has_status = version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some();
        assert_eq!(
            has_status,
            name != "rewardepochs.depin.dev",
            "{name} status subresource"
        );
    }
}

#[test]
fn documented_examples_parse_into_the_types() {
    let text = include_str!("../../examples/minimal-fleet.yaml");
    let mut kinds = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(doc).expect("yaml");
        let kind = value["kind"].as_str().expect("kind").to_string();
        let ok = match kind.as_str() {
            "RewardPolicy" => serde_yaml::from_value::<RewardPolicy>(value).map(|_| ()),
            "HotspotGateway" => serde_yaml::from_value::<HotspotGateway>(value).map(|_| ()),
            "StorageNode" => serde_yaml::from_value::<StorageNode>(value).map(|_| ()),
            "GpuWorker" => serde_yaml::from_value::<GpuWorker>(value).map(|_| ()),
            "MeterBridge" => serde_yaml::from_value::<MeterBridge>(value).map(|_| ()),
            other => panic!("unexpected kind {other}"),
        };
        ok.unwrap_or_else(|e| panic!("{kind}: {e}"));
        kinds.push(kind);
    }
    assert_eq!(
        kinds,
        [
            "RewardPolicy",
            "HotspotGateway",
            "StorageNode",
            "GpuWorker",
            "MeterBridge"
        ]
    );
}
