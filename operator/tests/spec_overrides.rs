//! What the real verifier does with two spec fields, driven by scripted agents: a
//! RewardPolicy's `spec.poc` (the beaconer's policy decides a round's rules) and a
//! MeterBridge's `spec.replacement` (a recorded meter swap excuses the new meter's first
//! link).

mod support;

use depin_operator::verifier::now_ms;
use depin_operator::verifier::persist::sink::MemorySink;
use depin_operator::verifier::persist::watch::{policy_denylist, policy_rules};
use depin_operator::verifier::state::index::{Declared, NodeIndex, PolicyEntry};
use depin_operator::verifier::state::meter::Replacement;
use depin_proof::RejectReason;
use depin_proof::identity::NodeKey;
use depin_proof::meter::ChainHead;
use depin_proof::poc::{
    BeaconReport, HotspotInfo, LOCATION_RESOLUTION, Region, WitnessReport, cell_at, derive_beacon,
};
use depin_proto::config::Role;
use depin_proto::v1::{agent_message::Body as Out, verifier_message::Body as In};
use depin_proto::wire;
use std::sync::Arc;
use support::*;

/// Two beaconers ~2 km apart and a witness ~2 km north of the first (~2.9 km from the
/// second): every witness is inside Helium's 100 km, outside a 1 km override.
const WIDE: (f64, f64) = (52.3700, 4.8900);
const NARROW: (f64, f64) = (52.3700, 4.9200);
const WITNESS: (f64, f64) = (52.3880, 4.8900);

fn hotspot(at: (f64, f64), owner: &str) -> Declared {
    Declared::Hotspot(HotspotInfo {
        location: Some(cell_at(at.0, at.1, LOCATION_RESOLUTION).expect("cell")),
        region: Region::EU868,
        gain_dbi_x10: 0,
        owner: owner.into(),
    })
}

/// A policy's `spec.poc` as an operator writes it, through the watch's own mapping.
fn policy(index: &NodeIndex, name: &str, poc_yaml: &str, base: &depin_proof::poc::PocParams) {
    let rules: depin_crds::PocRules = serde_yaml::from_str(poc_yaml).expect("spec.poc parses");
    let poc = policy_rules(name, Some(&rules), base);
    assert!(poc.is_some(), "{name}: spec.poc is valid");
    let entry = PolicyEntry {
        epoch_seconds: 86_400,
        grace_seconds: 30,
        poc,
        denylist: Arc::new(policy_denylist(name, Some(&rules))),
        last_closed_epoch: None,
        gpu_classes: None,
    };
    index.set_policy(name, entry);
}

/// Waits for the verifier's beacon challenge on `beaconer`'s session and answers it.
async fn beacon(beaconer: &mut Scripted) -> BeaconReport {
    let challenge = beaconer
        .next_where(|m| match m {
            In::BeaconChallenge(c) => Some(c),
            _ => None,
        })
        .await;
    let entropy = wire::beacon_challenge_from_wire(&challenge).expect("entropy");
    let key = &beaconer.node;
    let derived = derive_beacon(&entropy, 7, &key.public(), Region::EU868);
    let report = BeaconReport::sign(key, entropy, 7, derived, 160, now_ms());
    beaconer
        .send(Out::BeaconReport(wire::beacon_report_to_wire(&report)))
        .await;
    report
}

/// `witness` reports hearing `beacon` at -110 dBm, well under the free-space bound.
async fn witness(witness: &Scripted, beacon: &BeaconReport) -> depin_proof::entropy::ChallengeId {
    let unsigned = WitnessReport {
        witness: witness.node.public(),
        data: beacon.data.clone(),
        timestamp_ms: now_ms(),
        tmst: 1,
        signal_ddbm: -1_100,
        snr_ddb: 55,
        frequency_hz: beacon.frequency_hz,
        datarate: beacon.datarate.clone(),
        signature: [0; 64],
    };
    let report = WitnessReport::sign(&witness.node, unsigned);
    witness
        .send(Out::WitnessReport(wire::witness_report_to_wire(&report)))
        .await;
    wire::report_id(&report.signing_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_beaconers_policy_decides_its_witnesses_max_distance() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    let settings = settings();
    // Reciprocity off in both: a fresh verifier has no history to be reciprocal with.
    policy(&index, "wide", "reciprocityWindowSeconds: 0", &settings.poc);
    let narrow = "reciprocityWindowSeconds: 0\nmaxDistanceMeters: 1000";
    policy(&index, "narrow", narrow, &settings.poc);
    let keys = [60, 61, 62].map(|seed| NodeKey::from_seed([seed; 32]));
    let nodes = [
        ("hs-wide", WIDE, "wide"),
        ("hs-narrow", NARROW, "narrow"),
        // The witness's own policy ("default", absent) plays no part in the rounds.
        ("hs-witness", WITNESS, "default"),
    ];
    for ((name, at, paid_by), key) in nodes.iter().zip(&keys) {
        let mut node = entry(Role::Hotspot, name, &key.public(), hotspot(*at, name));
        node.reward_policy = (*paid_by).into();
        index.upsert(node);
    }
    let verifier = start(settings, index, sink.clone(), "127.0.0.1:0").await;
    let [wide, narrow, heard] = keys;
    let mut wide = Scripted::open(&verifier.endpoint, wide)
        .await
        .expect("hello");
    let mut narrow = Scripted::open(&verifier.endpoint, narrow)
        .await
        .expect("hello");
    let mut heard = Scripted::open(&verifier.endpoint, heard)
        .await
        .expect("hello");

    let wide_beacon = beacon(&mut wide).await;
    let of_wide = witness(&heard, &wide_beacon).await;
    let narrow_beacon = beacon(&mut narrow).await;
    let of_narrow = witness(&heard, &narrow_beacon).await;

    let mut verdicts = std::collections::HashMap::new();
    while verdicts.len() < 2 {
        let (receipt, _) = heard.receipt().await;
        verdicts.insert(receipt.challenge, receipt.verdict);
    }
    assert_eq!(verdicts[&of_wide], Ok(()), "2 km is inside Helium's 100 km");
    assert_eq!(
        verdicts[&of_narrow],
        Err(RejectReason::AboveMaxDistance),
        "2.9 km is beyond the narrow policy's 1 km"
    );
    let (receipt, _) = wide.receipt().await;
    assert_eq!(receipt.verdict, Ok(()), "the wide beacon was witnessed");
    let m = &verifier.verifier.metrics;
    assert_eq!(
        m.rejected("HotspotGateway", RejectReason::AboveMaxDistance),
        1
    );
    verifier.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policys_denylist_refuses_a_denied_edge_and_a_denied_hotspot() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    let settings = settings();
    let keys = [70, 71, 72].map(|seed| NodeKey::from_seed([seed; 32]));
    let heard_hex = keys[2].public().to_hex();
    let edge = format!(
        "reciprocityWindowSeconds: 0\ndeniedEdges: [{{a: {heard_hex}, b: {}}}]",
        keys[0].public().to_hex()
    );
    policy(&index, "edge", &edge, &settings.poc);
    let node = format!("reciprocityWindowSeconds: 0\ndeniedHotspots: [{heard_hex}]");
    policy(&index, "node", &node, &settings.poc);
    let nodes = [
        ("hs-a", WIDE, "edge"),
        ("hs-b", NARROW, "node"),
        ("hs-heard", WITNESS, "default"),
    ];
    for ((name, at, paid_by), key) in nodes.iter().zip(&keys) {
        let mut node = entry(Role::Hotspot, name, &key.public(), hotspot(*at, name));
        node.reward_policy = (*paid_by).into();
        index.upsert(node);
    }
    let verifier = start(settings, index, sink.clone(), "127.0.0.1:0").await;
    let [a, b, heard] = keys;
    let mut a = Scripted::open(&verifier.endpoint, a).await.expect("hello");
    let mut b = Scripted::open(&verifier.endpoint, b).await.expect("hello");
    let mut heard = Scripted::open(&verifier.endpoint, heard)
        .await
        .expect("hello");
    let of_a = witness(&heard, &beacon(&mut a).await).await;
    let of_b = witness(&heard, &beacon(&mut b).await).await;
    let mut verdicts = std::collections::HashMap::new();
    while verdicts.len() < 2 {
        let (receipt, _) = heard.receipt().await;
        verdicts.insert(receipt.challenge, receipt.verdict);
    }
    assert_eq!(verdicts[&of_a], Err(RejectReason::DeniedEdge));
    assert_eq!(verdicts[&of_b], Err(RejectReason::Denied));
    let m = &verifier.verifier.metrics;
    assert_eq!(m.rejected("HotspotGateway", RejectReason::DeniedEdge), 1);
    assert_eq!(m.rejected("HotspotGateway", RejectReason::Denied), 1);
    verifier.stop().await;
}

/// Slot length of the meter tests, ms.
const SLOT_MS: u64 = 2_000;

/// A meter node whose CR records a swap (`Some(new serial or none)`) just before the
/// current slot, or none (`None`).
fn meter(record: Option<Option<String>>, slot: u64) -> Declared {
    Declared::Meter {
        rated_capacity_w: 10_000,
        slot_ms: SLOT_MS,
        replacement: record.map(|new_serial| Replacement {
            at_ms: slot * SLOT_MS - 500,
            new_serial,
        }),
        // The swap rules, not the sun's, are under test here.
        direction: depin_proof::meter::MeterDirection::Consumption,
        site: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_meter_swap_accepts_the_new_meter_and_without_one_it_is_rejected() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    let verifier = start(settings(), index.clone(), sink, "127.0.0.1:0").await;
    let cases = [
        ("swapped", Some(Some("NEW")), "NEW", Ok(())),
        ("reset", Some(None), "OLD", Ok(())),
        (
            "unrecorded",
            None,
            "NEW",
            Err(RejectReason::MeterSerialChanged),
        ),
        (
            "other-serial",
            Some(Some("NEW")),
            "OTHER",
            Err(RejectReason::MeterSerialChanged),
        ),
        (
            "unrecorded-reset",
            None,
            "OLD",
            Err(RejectReason::RegisterRollback),
        ),
    ];
    for (seed, (name, record, serial, expected)) in (80..).zip(cases) {
        // Serials are unique fleet-wide (DuplicateMeterSerial), so each node has its own.
        let serial_of = |tag: &str| format!("{name}-{tag}");
        let record = record.map(|new: Option<&str>| new.map(serial_of));
        let (old, serial) = (serial_of("OLD"), serial_of(serial));
        // The old meter read the previous slot; the new one reads this slot from 0 Wh.
        let slot = now_ms() / SLOT_MS;
        let key = NodeKey::from_seed([seed; 32]);
        index.upsert(entry(Role::Meter, name, &key.public(), meter(record, slot)));
        let mut agent = Scripted::open(&verifier.endpoint, key.clone())
            .await
            .expect("hello");
        let mut head = ChainHead::default();
        let mut verdicts = Vec::new();
        for (serial, slot, wh) in [(&old, slot - 1, 5_000), (&serial, slot, 0)] {
            let signed = head.next(&key, serial, slot, wh, 0, 1).expect("signed");
            agent
                .send(Out::MeterReading(wire::meter_reading_to_wire(&signed)))
                .await;
            verdicts.push(agent.receipt().await.0.verdict);
        }
        assert_eq!(verdicts, [Ok(()), expected], "{name}");
    }
    verifier.stop().await;
}
