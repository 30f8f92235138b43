use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::entropy::{Beacon, EntropyConfig};
use crate::identity::{NodeKey, PublicKey};
use crate::reject::RejectReason;
use crate::reward::Decimal;

const TICK: u64 = 1_000; // issued at 60_000_000 ms
const ISSUED_MS: u64 = TICK * 60_000;
const BEACON_AT: u64 = ISSUED_MS + 10_000;

/// Amsterdam, and a point about 2 km north of it.
const HOME: (f64, f64) = (52.3700, 4.8900);
const TWO_KM_NORTH: (f64, f64) = (52.3880, 4.8900);

#[derive(Default)]
struct History {
    last_beacon: BTreeMap<PublicKey, u64>,
    valid_beacon: BTreeMap<PublicKey, u64>,
    valid_witness: BTreeMap<PublicKey, u64>,
}

impl PocHistory for History {
    fn last_beacon_ms(&self, node: &PublicKey) -> Option<u64> {
        self.last_beacon.get(node).copied()
    }
    fn last_valid_beacon_ms(&self, node: &PublicKey) -> Option<u64> {
        self.valid_beacon.get(node).copied()
    }
    fn last_valid_witness_ms(&self, node: &PublicKey) -> Option<u64> {
        self.valid_witness.get(node).copied()
    }
}

type Deny = (BTreeSet<PublicKey>, BTreeSet<(PublicKey, PublicKey)>);

struct World {
    params: PocParams,
    beacon: Beacon,
    hotspots: BTreeMap<PublicKey, HotspotInfo>,
    deny: Deny,
    history: History,
    beaconer: NodeKey,
    witnesses: Vec<NodeKey>,
}

fn key(n: u8) -> NodeKey {
    NodeKey::from_seed([n; 32])
}

fn info(at: (f64, f64), owner: &str) -> HotspotInfo {
    HotspotInfo {
        location: Some(cell_at(at.0, at.1, LOCATION_RESOLUTION).expect("valid")),
        region: Region::EU868,
        gain_dbi_x10: 0,
        owner: owner.to_owned(),
    }
}

impl World {
    fn new() -> Self {
        let beaconer = key(1);
        let witnesses = vec![key(2), key(3)];
        let mut hotspots = BTreeMap::new();
        hotspots.insert(beaconer.public(), info(HOME, "alice"));
        hotspots.insert(witnesses[0].public(), info(TWO_KM_NORTH, "bob"));
        hotspots.insert(witnesses[1].public(), info((52.3700, 4.9200), "carol"));
        let mut history = History::default();
        for w in &witnesses {
            history
                .valid_beacon
                .insert(w.public(), BEACON_AT - 3_600_000);
        }
        history
            .valid_witness
            .insert(beaconer.public(), BEACON_AT - 3_600_000);
        Self {
            params: PocParams::default(),
            beacon: Beacon::new([7; 32], EntropyConfig::default()),
            hotspots,
            deny: Deny::default(),
            history,
            beaconer,
            witnesses,
        }
    }

    fn ctx(&self) -> BeaconContext<'_> {
        BeaconContext {
            params: &self.params,
            beacon: &self.beacon,
            hotspots: &self.hotspots,
            denylist: &self.deny,
            history: &self.history,
        }
    }

    fn beacon_report(&self) -> BeaconReport {
        let entropy = self.beacon.entropy(TICK);
        let derived = derive_beacon(&entropy, 42, &self.beaconer.public(), Region::EU868);
        BeaconReport::sign(&self.beaconer, entropy, 42, derived, 160, BEACON_AT - 50)
    }

    fn beacon(&self) -> BeaconSubmission {
        BeaconSubmission {
            report: self.beacon_report(),
            received_ms: BEACON_AT,
        }
    }

    fn witness_report(&self, by: &NodeKey) -> WitnessReport {
        let beacon = self.beacon_report();
        WitnessReport::sign(
            by,
            WitnessReport {
                witness: by.public(),
                data: beacon.data,
                timestamp_ms: BEACON_AT - 40,
                tmst: 1_234,
                signal_ddbm: -1_000,
                snr_ddb: 55,
                frequency_hz: beacon.frequency_hz,
                datarate: beacon.datarate,
                signature: [0; 64],
            },
        )
    }

    fn witness(&self, by: &NodeKey, received_ms: u64) -> WitnessSubmission {
        WitnessSubmission {
            report: self.witness_report(by),
            received_ms,
        }
    }

    fn settle(&self, witnesses: &[WitnessSubmission]) -> PocOutcome {
        settle_poc(&self.beacon(), witnesses, &self.ctx())
    }
}

fn reasons(outcome: &PocOutcome) -> Vec<Result<(), RejectReason>> {
    outcome
        .witnesses
        .iter()
        .map(|w| w.result.as_ref().map(|_| ()).map_err(|r| *r))
        .collect()
}

#[test]
fn honest_poc_is_accepted_and_priced() {
    let world = World::new();
    let outcome = world.settle(&[
        world.witness(&world.witnesses[0], BEACON_AT + 300),
        world.witness(&world.witnesses[1], BEACON_AT + 600),
    ]);
    assert!(outcome.beacon.is_ok(), "{:?}", outcome.beacon);
    assert_eq!(reasons(&outcome), vec![Ok(()), Ok(())]);
    assert_eq!(outcome.beacon_units, Decimal::parse("0.5").expect("dec"));
    assert!(outcome.witnesses.iter().all(|w| w.units == Decimal::ONE));
    assert!(outcome.records_valid_beacon());
    assert_eq!(outcome.valid_witnesses().count(), 2);
    let verified = outcome.witnesses[0].result.as_ref().expect("ok");
    assert!((1_900..2_100).contains(&verified.distance_m));
}

type Lie = fn(&mut World) -> Vec<WitnessSubmission>;

fn honest(world: &World) -> WitnessSubmission {
    world.witness(&world.witnesses[0], BEACON_AT + 300)
}

#[test]
fn each_witness_lie_gets_its_reason() {
    let table: &[(&str, Lie, RejectReason)] = &[
        (
            "self witness",
            |world| vec![world.witness(&world.beaconer, BEACON_AT + 300)],
            RejectReason::SelfWitness,
        ),
        (
            "unregistered",
            |world| vec![world.witness(&key(9), BEACON_AT + 300)],
            RejectReason::UnknownNode,
        ),
        (
            "no location",
            |world| {
                let k = world.witnesses[0].public();
                world.hotspots.get_mut(&k).expect("registered").location = None;
                vec![honest(world)]
            },
            RejectReason::NotAsserted,
        ),
        (
            "denied node",
            |world| {
                world.deny.0.insert(world.witnesses[0].public());
                vec![honest(world)]
            },
            RejectReason::Denied,
        ),
        (
            "denied edge",
            |world| {
                let (a, b) = (world.beaconer.public(), world.witnesses[0].public());
                world.deny.1.insert(if a <= b { (a, b) } else { (b, a) });
                vec![honest(world)]
            },
            RejectReason::DeniedEdge,
        ),
        (
            "same owner",
            |world| {
                let k = world.witnesses[0].public();
                world.hotspots.get_mut(&k).expect("registered").owner = "alice".into();
                vec![honest(world)]
            },
            RejectReason::SameOwner,
        ),
        (
            "tampered signal",
            |world| {
                let mut s = honest(world);
                s.report.signal_ddbm += 10;
                vec![s]
            },
            RejectReason::BadSignature,
        ),
        (
            "invented payload",
            |world| {
                let mut r = world.witness_report(&world.witnesses[0]);
                r.data[0] ^= 1;
                vec![WitnessSubmission {
                    report: WitnessReport::sign(&world.witnesses[0], r),
                    received_ms: BEACON_AT + 300,
                }]
            },
            RejectReason::PayloadMismatch,
        ),
        (
            "after entropy expiry",
            |world| {
                world.params.max_beacon_to_witness_lag_ms = u64::MAX;
                vec![world.witness(&world.witnesses[0], ISSUED_MS + 180_001)]
            },
            RejectReason::ExpiredEntropy,
        ),
        (
            "late after beacon",
            |world| vec![world.witness(&world.witnesses[0], BEACON_AT + 4_001)],
            RejectReason::TooLate,
        ),
        (
            "other region",
            |world| {
                let k = world.witnesses[0].public();
                world.hotspots.get_mut(&k).expect("registered").region = Region::US915;
                vec![honest(world)]
            },
            RejectReason::InvalidRegion,
        ),
        (
            "off frequency",
            |world| {
                let mut r = world.witness_report(&world.witnesses[0]);
                r.frequency_hz += 100_001;
                vec![WitnessSubmission {
                    report: WitnessReport::sign(&world.witnesses[0], r),
                    received_ms: BEACON_AT + 300,
                }]
            },
            RejectReason::InvalidFrequency,
        ),
        (
            "across the room",
            |world| {
                let k = world.witnesses[0].public();
                *world.hotspots.get_mut(&k).expect("registered") = info((52.3703, 4.8900), "bob");
                vec![honest(world)]
            },
            RejectReason::BelowMinDistance,
        ),
        (
            "either side of a pentagon",
            |world| {
                let (a, b) = pentagon_straddling_pair();
                let (beaconer, witness) = (world.beaconer.public(), world.witnesses[0].public());
                world
                    .hotspots
                    .get_mut(&beaconer)
                    .expect("registered")
                    .location = Some(a);
                world
                    .hotspots
                    .get_mut(&witness)
                    .expect("registered")
                    .location = Some(b);
                vec![honest(world)]
            },
            RejectReason::UncomputableDistance,
        ),
        (
            "150 km away",
            |world| {
                let k = world.witnesses[0].public();
                *world.hotspots.get_mut(&k).expect("registered") = info((53.7200, 4.8900), "bob");
                vec![honest(world)]
            },
            RejectReason::AboveMaxDistance,
        ),
        (
            "louder than free space",
            |world| {
                let mut r = world.witness_report(&world.witnesses[0]);
                r.signal_ddbm = -500; // bound at 2 km, 868 MHz, 16 dBm: about -81 dBm
                vec![WitnessSubmission {
                    report: WitnessReport::sign(&world.witnesses[0], r),
                    received_ms: BEACON_AT + 300,
                }]
            },
            RejectReason::BadRssi,
        ),
        (
            "never beaconed",
            |world| {
                world.history.valid_beacon.clear();
                vec![honest(world)]
            },
            RejectReason::NoRecentBeacon,
        ),
    ];
    for (name, lie, want) in table {
        let mut world = World::new();
        let witnesses = lie(&mut world);
        let outcome = world.settle(&witnesses);
        assert_eq!(reasons(&outcome), vec![Err(*want)], "{name}");
        assert_eq!(outcome.beacon, Err(RejectReason::NoWitnesses), "{name}");
        assert!(
            outcome.witnesses.iter().all(|o| o.units.is_zero()),
            "{name}"
        );
    }
}

#[test]
fn second_report_and_cap_and_witness_first_lag() {
    let mut world = World::new();
    let first = world.witness(&world.witnesses[0], BEACON_AT + 300);
    let outcome = world.settle(&[first.clone(), first.clone()]);
    assert_eq!(
        reasons(&outcome),
        vec![Ok(()), Err(RejectReason::Duplicate)]
    );

    world.params.max_witnesses_per_beacon = 1;
    let outcome = world.settle(&[first, world.witness(&world.witnesses[1], BEACON_AT + 400)]);
    assert_eq!(
        reasons(&outcome),
        vec![Ok(()), Err(RejectReason::WitnessCapReached)]
    );
    assert_eq!(
        outcome.valid_witnesses().count(),
        2,
        "unselected still valid"
    );

    // Witnesses before their beacon: 1.5 s after the first witness is the limit.
    world.params.max_witnesses_per_beacon = 14;
    let outcome = world.settle(&[
        world.witness(&world.witnesses[0], BEACON_AT - 1_000),
        world.witness(&world.witnesses[1], BEACON_AT + 501),
    ]);
    assert_eq!(reasons(&outcome), vec![Ok(()), Err(RejectReason::TooLate)]);
}

type BeaconLie = fn(&mut World) -> BeaconSubmission;

#[test]
fn each_beacon_lie_gets_its_reason() {
    let table: &[(&str, BeaconLie, RejectReason)] = &[
        (
            "unregistered",
            |world| {
                world.hotspots.remove(&world.beaconer.public());
                world.beacon()
            },
            RejectReason::UnknownNode,
        ),
        (
            "no location",
            |world| {
                let k = world.beaconer.public();
                world.hotspots.get_mut(&k).expect("registered").location = None;
                world.beacon()
            },
            RejectReason::NotAsserted,
        ),
        (
            "denied",
            |world| {
                world.deny.0.insert(world.beaconer.public());
                world.beacon()
            },
            RejectReason::Denied,
        ),
        (
            "tampered power",
            |world| {
                let mut b = world.beacon();
                b.report.tx_power_ddbm = 300;
                b
            },
            RejectReason::BadSignature,
        ),
        (
            "forged entropy",
            |world| {
                let mut r = world.beacon_report();
                r.entropy.value = [0; 32];
                let derived =
                    derive_beacon(&r.entropy, 42, &world.beaconer.public(), Region::EU868);
                let report = BeaconReport::sign(
                    &world.beaconer,
                    r.entropy,
                    42,
                    derived,
                    160,
                    r.timestamp_ms,
                );
                BeaconSubmission {
                    report,
                    received_ms: BEACON_AT,
                }
            },
            RejectReason::UnknownEntropy,
        ),
        (
            "expired entropy",
            |world| BeaconSubmission {
                report: world.beacon_report(),
                received_ms: ISSUED_MS + 180_001,
            },
            RejectReason::ExpiredEntropy,
        ),
        (
            "second in interval",
            |world| {
                world
                    .history
                    .last_beacon
                    .insert(world.beaconer.public(), BEACON_AT - 60_000);
                world.beacon()
            },
            RejectReason::IrregularInterval,
        ),
        (
            "chosen payload",
            |world| {
                let entropy = world.beacon.entropy(TICK);
                let mut derived =
                    derive_beacon(&entropy, 42, &world.beaconer.public(), Region::EU868);
                derived.data[5] ^= 0xff;
                let report =
                    BeaconReport::sign(&world.beaconer, entropy, 42, derived, 160, BEACON_AT);
                BeaconSubmission {
                    report,
                    received_ms: BEACON_AT,
                }
            },
            RejectReason::BadBeaconPayload,
        ),
        (
            "chosen channel",
            |world| {
                let entropy = world.beacon.entropy(TICK);
                let mut derived =
                    derive_beacon(&entropy, 42, &world.beaconer.public(), Region::EU868);
                derived.frequency_hz = if derived.frequency_hz == 868_100_000 {
                    868_300_000
                } else {
                    868_100_000
                };
                let report =
                    BeaconReport::sign(&world.beaconer, entropy, 42, derived, 160, BEACON_AT);
                BeaconSubmission {
                    report,
                    received_ms: BEACON_AT,
                }
            },
            RejectReason::BadBeaconPayload,
        ),
    ];
    for (name, lie, want) in table {
        let mut world = World::new();
        let beacon = lie(&mut world);
        let witnesses = [world.witness(&world.witnesses[0], BEACON_AT + 300)];
        let outcome = settle_poc(&beacon, &witnesses, &world.ctx());
        assert_eq!(outcome.beacon, Err(*want), "{name}");
        assert!(outcome.witnesses.is_empty(), "{name}");
        assert!(!outcome.records_valid_beacon(), "{name}");
    }
}

/// Two res-12 cells a few hundred metres apart whose res-11 parents H3 cannot measure a
/// grid distance between: found around the first res-11 pentagon, as a fleet parked there
/// would be.
fn pentagon_straddling_pair() -> (h3o::CellIndex, h3o::CellIndex) {
    let res11 = h3o::Resolution::Eleven;
    let pentagon = res11
        .pentagons()
        .next()
        .expect("H3 has 12 pentagons per resolution");
    let disk: Vec<h3o::CellIndex> = pentagon.grid_disk_safe(6).collect();
    let (a, b) = disk
        .iter()
        .flat_map(|a| disk.iter().map(move |b| (*a, *b)))
        .find(|(a, b)| a.grid_distance(*b).is_err())
        .expect("some pair around a pentagon is unmeasurable");
    let child = |c: h3o::CellIndex| c.center_child(h3o::Resolution::Twelve).expect("finer");
    let (a, b) = (child(a), child(b));
    assert_eq!(cell_distance(a, b, POC_CELL_PARENT_RES), None);
    assert!(great_circle_m(a, b) < MAX_WITNESS_DISTANCE_M as f64);
    (a, b)
}

#[test]
fn beacon_without_witnesses_earns_nothing() {
    let world = World::new();
    assert_eq!(world.settle(&[]).beacon, Err(RejectReason::NoWitnesses));
}

/// HIP-106 as iot_verifier applies it: a beaconer without a recent valid witness voids
/// the whole PoC, so its witnesses earn nothing either (their own reciprocity is fine);
/// the history still records both sides' rule-valid activity, so the ring can heal.
#[test]
fn beaconer_failing_reciprocity_voids_the_whole_poc() {
    let mut world = World::new();
    world.history.valid_witness.clear();
    let outcome = world.settle(&[
        world.witness(&world.witnesses[0], BEACON_AT + 300),
        world.witness(&world.witnesses[1], BEACON_AT + 600),
    ]);
    assert_eq!(outcome.beacon, Err(RejectReason::NoRecentWitness));
    assert!(outcome.beacon_units.is_zero());
    assert_eq!(
        reasons(&outcome),
        vec![
            Err(RejectReason::NoRecentWitness),
            Err(RejectReason::NoRecentWitness)
        ]
    );
    assert!(outcome.witnesses.iter().all(|w| w.units.is_zero()));
    let shares = price_poc(&outcome, Some(Decimal::ONE));
    assert!(shares.beacon.is_zero() && shares.witnesses.iter().all(|w| w.is_zero()));
    assert!(
        outcome.records_valid_beacon(),
        "rule-valid, so it seeds reciprocity"
    );
    assert_eq!(outcome.valid_witnesses().count(), 2);
    world.params.reciprocity_window_ms = 0;
    assert!(
        world
            .settle(&[world.witness(&world.witnesses[0], BEACON_AT + 300)])
            .beacon
            .is_ok()
    );
}

/// Pricing rows: the honest PoC first, then each way the scale could be chosen wrongly.
/// Every share is HIP-15 units × the beaconer's hex scale (iot_verifier looks the scale up
/// by the beaconer's location for its witnesses too); a beaconer missing from the density
/// map is scaled by `DEFAULT_TX_SCALE`, 0.2.
#[test]
fn poc_is_priced_at_the_beaconers_hex_scale() {
    let d = |s: &str| Decimal::parse(s).expect("decimal");
    let world = World::new();
    let outcome = world.settle(&[
        world.witness(&world.witnesses[0], BEACON_AT + 300),
        world.witness(&world.witnesses[1], BEACON_AT + 600),
    ]);
    // (case, beaconer's scale as looked up, want scale, want beacon share, want per witness)
    let table = [
        (
            "honest, uncrowded beaconer",
            Some(Decimal::ONE),
            "1",
            "0.5",
            "1",
        ),
        (
            "crowded beaconer halves everyone",
            Some(d("0.5")),
            "0.5",
            "0.25",
            "0.5",
        ),
        ("beaconer missing from the map", None, "0.2", "0.1", "0.2"),
    ];
    for (case, scale, want_scale, want_beacon, want_witness) in table {
        let shares = price_poc(&outcome, scale);
        assert_eq!(shares.hex_scale, d(want_scale), "{case}");
        assert_eq!(shares.beacon, d(want_beacon), "{case}");
        assert_eq!(shares.witnesses, vec![d(want_witness); 2], "{case}");
    }
    assert_eq!(DEFAULT_TX_SCALE, d("0.2"));
    // The witnesses' own density plays no part: price_poc is never told it. A witness in
    // an empty hex hearing a crowded beaconer is paid the crowded rate.
    let rejected = world.settle(&[world.witness(&world.witnesses[0], BEACON_AT + 4_001)]);
    let shares = price_poc(&rejected, Some(Decimal::ONE));
    assert_eq!(
        shares.witnesses,
        vec![Decimal::ZERO],
        "a rejected witness earns 0"
    );
}
