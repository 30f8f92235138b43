use super::*;
use depin_crds::RewardPolicy;
use kube::CustomResourceExt;

/// A section from its CRD spelling, as `kubectl apply` would hand it over.
fn rules(json: serde_json::Value) -> PocRules {
    serde_json::from_value(json).expect("section parses")
}

fn err(json: serde_json::Value) -> PocRuleError {
    poc_params(&rules(json), &PocParams::default()).expect_err("rejected")
}

#[test]
fn every_field_maps_with_its_unit() {
    let section = rules(serde_json::json!({
        "entropyLifespanSeconds": 90,
        "beaconIntervalSeconds": 3600,
        "maxBeaconToWitnessLagMilliseconds": 3000,
        "maxWitnessLagMilliseconds": 1000,
        "maxFrequencyDeltaHz": 50000,
        "minDistanceCells": 4,
        "distanceH3Resolution": 10,
        "maxDistanceMeters": 50000,
        "rssiMarginDb": 3,
        "reciprocityWindowSeconds": 7200,
        "maxWitnessesPerBeacon": 10,
        "witnessRedundancy": 5,
        "densityActivitySeconds": 86400,
    }));
    let params = poc_params(&section, &PocParams::default()).expect("valid");
    assert_eq!(
        params,
        PocParams {
            entropy_lifespan_ms: 90_000,
            beacon_interval_ms: 3_600_000,
            max_beacon_to_witness_lag_ms: 3_000,
            max_witness_lag_ms: 1_000,
            max_frequency_delta_hz: 50_000,
            min_distance_cells: 4,
            distance_resolution: 10,
            max_distance_m: 50_000,
            rssi_margin_ddb: 30,
            reciprocity_window_ms: 7_200_000,
            max_witnesses_per_beacon: 10,
            witness_redundancy: 5,
            density_activity_ms: 86_400_000,
        }
    );
}

#[test]
fn unset_fields_keep_the_verifiers_params() {
    // The verifier's base carries the --poc-beacon-interval flag (3 s in tests).
    let base = PocParams {
        beacon_interval_ms: 3_000,
        ..PocParams::default()
    };
    assert_eq!(poc_params(&PocRules::default(), &base), Ok(base));
    let one = poc_params(
        &rules(serde_json::json!({"maxDistanceMeters": 2000})),
        &base,
    )
    .expect("valid");
    assert_eq!(
        one,
        PocParams {
            max_distance_m: 2_000,
            ..base
        }
    );
    assert_eq!(
        poc_params(&PocRules::default(), &PocParams::default()),
        Ok(PocParams::default()),
        "an empty section is Helium's rule table"
    );
}

#[test]
fn every_out_of_range_value_is_rejected_naming_its_field() {
    for b in BOUNDS {
        let name = b.field.strip_prefix("poc.").expect("poc field");
        let mut outside = vec![b.max + 1];
        if b.min > 0 {
            outside.push(b.min - 1);
        }
        for value in outside {
            let json =
                serde_json::Value::Object([(name.to_string(), value.into())].into_iter().collect());
            let e = err(json);
            assert_eq!(e.field, b.field, "{name} = {value}: {e}");
            assert_eq!(e.reason(), "OutOfRange", "{e}");
            assert!(e.to_string().starts_with(b.field), "{e}");
        }
    }
}

#[test]
fn the_crd_schema_states_the_same_ranges() {
    let crd = serde_json::to_value(RewardPolicy::crd()).expect("json");
    let poc = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["poc"]["properties"];
    let fields = poc.as_object().expect("poc properties");
    // Every numeric field has a bound; the denylist lists are the only others.
    let lists = ["deniedHotspots", "deniedEdges"];
    assert_eq!(
        fields.len(),
        BOUNDS.len() + lists.len(),
        "every field has a bound"
    );
    for list in lists {
        assert_eq!(fields[list]["type"], "array", "{list}");
    }
    for b in BOUNDS {
        let name = b.field.strip_prefix("poc.").expect("poc field");
        let schema = &fields[name];
        assert_eq!(schema["minimum"].as_f64(), Some(b.min as f64), "{name}");
        assert_eq!(schema["maximum"].as_f64(), Some(b.max as f64), "{name}");
        assert!(
            schema["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{name} is documented"
        );
    }
}

#[test]
fn bad_combinations_name_the_field_to_fix() {
    let cases = [
        (
            serde_json::json!({"beaconIntervalSeconds": 7}),
            "poc.beaconIntervalSeconds",
            "IntervalSplitsDay",
        ),
        // Unset interval reads as Helium's 6 h, whatever the operator flag says.
        (
            serde_json::json!({"reciprocityWindowSeconds": 3600}),
            "poc.reciprocityWindowSeconds",
            "ShorterThanTwoIntervals",
        ),
        (
            serde_json::json!({"beaconIntervalSeconds": 60, "densityActivitySeconds": 119}),
            "poc.densityActivitySeconds",
            "ShorterThanTwoIntervals",
        ),
        // Helium's 8 res-11 cells span ~400 m: a 300 m maximum leaves no room.
        (
            serde_json::json!({"maxDistanceMeters": 300}),
            "poc.minDistanceCells",
            "EmptyDistanceBand",
        ),
        (
            serde_json::json!({"distanceH3Resolution": 5}),
            "poc.minDistanceCells",
            "EmptyDistanceBand",
        ),
    ];
    for (json, field, reason) in cases {
        let e = err(json.clone());
        assert_eq!((e.field, e.reason()), (field, reason), "{json}: {e}");
    }
}

#[test]
fn combinations_at_their_limits_are_accepted() {
    for json in [
        serde_json::json!({"beaconIntervalSeconds": 60, "reciprocityWindowSeconds": 120,
                           "densityActivitySeconds": 120}),
        serde_json::json!({"beaconIntervalSeconds": 60, "reciprocityWindowSeconds": 0,
                           "densityActivitySeconds": 120}),
        serde_json::json!({"minDistanceCells": 0, "maxDistanceMeters": 1}),
        serde_json::json!({"maxDistanceMeters": 500}),
    ] {
        let section = rules(json.clone());
        assert!(check(&section).is_ok(), "{json}: {:?}", check(&section));
    }
}
