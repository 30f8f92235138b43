//! Proof-of-Coverage attacks in process, each asserted on what the attackers earn: the
//! real verifier on 127.0.0.1, honest hotspots as real depin-agents whose packet
//! forwarders the sim's RF medium plays, and attackers that speak the real protocols
//! (GWMP on UDP, the agent session on gRPC).
//!
//! - Witness injection: a rogue forwarder relays its own hotspot's beacons into an honest
//!   hotspot's GWMP port. The victim serves only its pinned forwarder, so the frames are
//!   dropped (counted `source`/`gateway_eui`) and neither the rogue hotspot nor the
//!   victim earns anything for them; with the pin opened up the same relay is paid.
//! - A ring of fake hotspots (scripted sessions, no radio, fake owners) witnessing each
//!   other: paid like honest hotspots. Only owner verification, which the network does not
//!   have yet, limits it (docs/r2/poc.md).
//! - In the ring, a beaconer that never witnesses fails HIP-106 reciprocity: its whole
//!   PoC is void, so its witnesses earn 0 too.
//! - A pair either side of an H3 pentagon: the distance cannot be computed, the witness is
//!   rejected `UncomputableDistance`.
//! - Every first beacon of a hotspot, missing from the density map, is paid at 0.2.

mod support;

use depin_gwmp::codec::{self, Received, decode_downlink, encode, mhz_to_hz};
use depin_gwmp::semtech_udp::{Down, MacAddress, pull_data, tx_ack};
use depin_operator::verifier::persist::sink::MemorySink;
use depin_operator::verifier::state::index::{Declared, NodeEntry, NodeIndex};
use depin_proof::RejectReason;
use depin_proof::identity::NodeKey;
use depin_proof::poc::{
    BeaconReport, HotspotInfo, LOCATION_RESOLUTION, Region, WitnessReport, cell_at, derive_beacon,
    free_space_path_loss_db, great_circle_m,
};
use depin_proof::reward::NodeKind;
use depin_proto::config::{HotspotConfig, Role};
use depin_proto::v1::{agent_message::Body as Out, verifier_message::Body as In};
use depin_proto::wire;
use depin_sim::medium::{HotspotRadio, Location, Medium, MediumConfig};
use h3o::CellIndex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use support::epoch;
use support::*;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, watch};

/// Honest hotspots: (name, latitude, longitude), within radio range of each other.
const HONEST: [(&str, f64, f64); 3] = [
    ("hs-a", 52.3700, 4.8900),
    ("hs-north", 52.3880, 4.8900),
    ("hs-east", 52.3700, 4.9200),
];

/// Epoch length of the test policy: about five 3 s beacon intervals.
const EPOCH_SECONDS: u64 = 15;
/// After an epoch ends: its last rounds settle (lag windows plus slack) and are recorded.
const SETTLE: Duration = Duration::from_secs(7);

fn eui(name: &str) -> String {
    let hash = blake3::hash(name.as_bytes());
    hex::encode_upper(&hash.as_bytes()[..8])
}

fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").port()
}

fn hotspot_info(cell: CellIndex, owner: &str) -> HotspotInfo {
    HotspotInfo {
        location: Some(cell),
        region: Region::EU868,
        gain_dbi_x10: 0,
        owner: owner.into(),
    }
}

fn cell(lat: f64, lon: f64) -> CellIndex {
    cell_at(lat, lon, LOCATION_RESOLUTION).expect("cell")
}

/// Sum of a node's recorded work units by part (`beacon`, `witness`).
fn units(sink: &MemorySink, name: &str) -> BTreeMap<String, u128> {
    sink.tally("fleet", name)
        .map(|t| {
            t.work_units_by_part
                .into_iter()
                .map(|(part, v)| (part, v.parse::<u128>().expect("decimal")))
                .collect()
        })
        .unwrap_or_default()
}

fn total_units(sink: &MemorySink, name: &str) -> u128 {
    units(sink, name).values().sum()
}

/// Honest hotspots: a real agent each, pinned to the medium's EUI for it and to loopback
/// sources; `victim_sources` overrides the sources of `hs-north`, the injection victim.
struct Honest {
    agents: Vec<RealAgent>,
    ports: Vec<u16>,
    entries: Vec<NodeEntry>,
    medium: Medium,
}

async fn honest_fleet(index: &NodeIndex, endpoint: &str, victim_sources: &[&str]) -> Honest {
    let mut agents = Vec::new();
    let mut ports = Vec::new();
    let mut entries = Vec::new();
    for (i, (name, lat, lon)) in HONEST.iter().enumerate() {
        let key = NodeKey::from_seed([60 + u8::try_from(i).expect("few"); 32]);
        let e = entry(
            Role::Hotspot,
            name,
            &key.public(),
            Declared::Hotspot(hotspot_info(cell(*lat, *lon), &format!("owner-{name}"))),
        );
        index.upsert(e.clone());
        entries.push(e);
        let port = free_udp_port();
        let sources = if *name == "hs-north" {
            victim_sources.iter().map(|s| s.to_string()).collect()
        } else {
            vec!["127.0.0.1/32".to_string()]
        };
        let mut config = agent_config(Role::Hotspot, name, endpoint);
        config.hotspot = Some(HotspotConfig {
            region: "EU868".into(),
            latitude: *lat,
            longitude: *lon,
            antenna_gain_dbi: 0.0,
            elevation_meters: 0.0,
            packet_forwarder_port: port,
            gateway_eui: Some(eui(name)),
            source_cidrs: sources,
        });
        agents.push(spawn_agent(config, key));
        ports.push(port);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let config = MediumConfig {
        seed: 11,
        path_loss_exponent: 2.9,
        shadowing_sigma_db: 0.0,
        hotspots: HONEST
            .iter()
            .zip(&ports)
            .map(|((name, lat, lon), port)| HotspotRadio {
                name: (*name).into(),
                agent: format!("127.0.0.1:{port}"),
                gateway_eui: Some(eui(name)),
                region: "EU868".into(),
                location: Location {
                    latitude: *lat,
                    longitude: *lon,
                },
                antenna_gain_dbi: 0.0,
            })
            .collect(),
    };
    let radios = config.validate().expect("valid medium");
    let medium = Medium::start(&config, radios).await.expect("medium");
    Honest {
        agents,
        ports,
        entries,
        medium,
    }
}

/// What a rogue forwarder did.
#[derive(Default)]
struct RelayStats {
    beacons_relayed: AtomicU64,
}

/// A rogue packet forwarder on `bind`: it is the forwarder of the attacker's own hotspot
/// (port `own_port`, EUI `own_eui`), acknowledges each beacon that hotspot transmits, and
/// relays it as a received frame into the victim's GWMP port with the victim's EUI (the
/// EUI is no secret: forwarders print it, and the medium's config holds it).
async fn rogue_forwarder(
    bind: &str,
    own_port: u16,
    own_eui: MacAddress,
    victim_port: u16,
    victim_eui: MacAddress,
    stats: Arc<RelayStats>,
    mut stop: watch::Receiver<bool>,
) {
    let socket = UdpSocket::bind(bind).await.expect("bind rogue forwarder");
    let own = ("127.0.0.1", own_port);
    let victim = ("127.0.0.1", victim_port);
    let mut keepalive = tokio::time::interval(Duration::from_millis(500));
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            _ = keepalive.tick() => {
                let pull = pull_data::Packet { random_token: 1, gateway_mac: own_eui };
                let _ = socket.send_to(&encode(&pull).expect("encodes"), own).await;
            }
            received = socket.recv_from(&mut buf) => {
                let Ok((n, _)) = received else { continue };
                let Ok(Down::PullResp(resp)) = decode_downlink(&buf[..n]) else { continue };
                let ack = tx_ack::Packet {
                    random_token: resp.random_token,
                    gateway_mac: own_eui,
                    data: tx_ack::Data::default(),
                };
                let _ = socket.send_to(&encode(&ack).expect("encodes"), own).await;
                let txpk = &resp.data.txpk;
                let frame = Received {
                    data: txpk.data.data().to_vec(),
                    frequency_hz: mhz_to_hz(txpk.freq),
                    datarate: txpk.datr,
                    rssi_dbm: -110,
                    snr_db: 2.0,
                    tmst: 7,
                };
                let push = codec::push_data(9, victim_eui, vec![codec::rxpk(&frame)]);
                let _ = socket.send_to(&encode(&push).expect("encodes"), victim).await;
                stats.beacons_relayed.fetch_add(1, Ordering::Relaxed);
            }
            _ = stop.changed() => return,
        }
    }
}

/// The attacker's own hotspot: a real agent that asserts a spot 2 km from the victim but
/// whose only "radio" is the rogue forwarder, so no honest hotspot can hear it.
fn rogue_hotspot(index: &NodeIndex, endpoint: &str, port: u16) -> (RealAgent, NodeEntry) {
    let key = NodeKey::from_seed([70; 32]);
    let (lat, lon) = (52.4060, 4.8900);
    let e = entry(
        Role::Hotspot,
        "hs-rogue",
        &key.public(),
        Declared::Hotspot(hotspot_info(cell(lat, lon), "owner-rogue")),
    );
    index.upsert(e.clone());
    let mut config = agent_config(Role::Hotspot, "hs-rogue", endpoint);
    config.hotspot = Some(HotspotConfig {
        region: "EU868".into(),
        latitude: lat,
        longitude: lon,
        antenna_gain_dbi: 0.0,
        elevation_meters: 0.0,
        packet_forwarder_port: port,
        gateway_eui: Some(eui("hs-rogue")),
        source_cidrs: vec!["127.0.0.0/8".into()],
    });
    (spawn_agent(config, key), e)
}

/// What one closed epoch paid in the injection runs.
struct InjectionEpoch {
    closed: epoch::ClosedEpoch,
    honest: Vec<NodeEntry>,
    rogue: NodeEntry,
    relayed: u64,
    dropped_source: u64,
}

/// Runs the injection attack against `hs-north` pinned to `victim_sources` through one
/// whole epoch and closes it.
async fn injection(victim_sources: &[&str]) -> InjectionEpoch {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    epoch::register_policy(&index, "default", EPOCH_SECONDS);
    let verifier = start(settings(), index.clone(), sink.clone(), "127.0.0.1:0").await;
    let fleet = honest_fleet(&index, &verifier.endpoint, victim_sources).await;
    let rogue_port = free_udp_port();
    let (rogue, rogue_entry) = rogue_hotspot(&index, &verifier.endpoint, rogue_port);
    let stats = Arc::new(RelayStats::default());
    let (stop, stop_rx) = watch::channel(false);
    let eui_of = |name: &str| codec::parse_eui(&eui(name)).expect("eui");
    let relay = tokio::spawn(rogue_forwarder(
        // Another address than the medium's 127.0.0.1: another pod, in a cluster.
        "127.0.0.9:0",
        rogue_port,
        eui_of("hs-rogue"),
        fleet.ports[1],
        eui_of("hs-north"),
        stats.clone(),
        stop_rx,
    ));
    // Warm up (reciprocity, density history), then one whole epoch.
    eventually(60, "honest hotspots paid", || {
        HONEST.iter().all(|(name, ..)| total_units(&sink, name) > 0)
    })
    .await;
    let n = epoch::start_of_next_epoch(EPOCH_SECONDS).await;
    let before = stats.beacons_relayed.load(Ordering::Relaxed);
    epoch::end_of_epoch(n, EPOCH_SECONDS, SETTLE).await;
    let relayed = stats.beacons_relayed.load(Ordering::Relaxed) - before;
    let dropped_source = fleet.agents[1]
        .metrics
        .hotspot_gwmp_dropped
        .with_label_values(&["source"])
        .get();
    let _ = stop.send(true);
    let _ = relay.await;
    rogue.stop().await;
    drop(fleet.medium);
    for agent in fleet.agents {
        agent.stop().await;
    }
    verifier.stop().await;
    let mut entries: Vec<&NodeEntry> = fleet.entries.iter().collect();
    entries.push(&rogue_entry);
    let policy = epoch::policy(&epoch::policy_yaml(EPOCH_SECONDS));
    let closed = epoch::close(&sink, &entries, &policy, n);
    InjectionEpoch {
        closed,
        honest: fleet.entries,
        rogue: rogue_entry,
        relayed,
        dropped_source,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_witnesses_earn_the_injector_and_the_victim_nothing() {
    let run = injection(&["127.0.0.1/32"]).await;
    let closed = &run.closed;
    assert!(run.relayed >= 2, "the rogue relayed beacons in the epoch");
    assert!(
        run.dropped_source >= run.relayed,
        "the victim dropped every relayed frame"
    );
    assert_eq!(closed.paid_to(&run.rogue), 0, "the rogue earns nothing");
    // The rogue's beacons had no witness, so nothing the victim filed counted for them:
    // the honest hotspots split the whole hotspot pool between them.
    let honest: u128 = run.honest.iter().map(|e| closed.paid_to(e)).sum();
    for e in &run.honest {
        assert!(closed.paid_to(e) > 0, "{} paid as before", e.id.name);
    }
    assert_eq!(closed.pool_paid(NodeKind::Hotspot), honest);
    eprintln!(
        "pinned: rogue {} / honest {:?} base units (relayed {})",
        closed.paid_to(&run.rogue),
        run.honest
            .iter()
            .map(|e| closed.paid_to(e))
            .collect::<Vec<_>>(),
        run.relayed
    );
}

/// The same relay against a victim whose pin admits the rogue's address (a CIDR as wide
/// as the pod network, in a cluster without NetworkPolicy): the victim signs witnesses of
/// a beacon it never heard and the rogue is paid. This is what the pin and the
/// NetworkPolicy prevent; the figures go into docs/r2/poc.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_pin_lets_the_same_injection_earn() {
    let run = injection(&["127.0.0.0/8"]).await;
    let closed = &run.closed;
    assert_eq!(run.dropped_source, 0);
    eprintln!(
        "open pin: rogue {} / honest {:?} base units (relayed {})",
        closed.paid_to(&run.rogue),
        run.honest
            .iter()
            .map(|e| closed.paid_to(e))
            .collect::<Vec<_>>(),
        run.relayed
    );
    assert!(
        closed.paid_to(&run.rogue) > 0,
        "the rogue's beacons are paid through the victim's witnesses"
    );
}

/// A fake hotspot of a ring: asserted where it claims to be, no radio at all.
#[derive(Clone)]
struct Fake {
    name: &'static str,
    key: NodeKey,
    cell: CellIndex,
    /// Indices of ring members whose beacons it "witnesses".
    hears: Vec<usize>,
}

/// A beacon a fake announced to the ring.
#[derive(Clone, Debug)]
struct Announced {
    from: usize,
    data: Vec<u8>,
    frequency_hz: u64,
    datarate: String,
    cell: CellIndex,
}

/// RSSI a colluder claims: 10 dB under the free-space bound for the asserted distance, so
/// the rule table cannot tell it from a real reception.
fn plausible_signal_ddbm(a: CellIndex, b: CellIndex, frequency_hz: u64) -> i32 {
    let tx = Region::EU868.beacon_power_dbm() * 10;
    let loss = 10.0 * free_space_path_loss_db(great_circle_m(a, b), frequency_hz as f64);
    (f64::from(tx) - loss - 100.0) as i32
}

/// One fake hotspot: answers every beacon challenge with a correctly derived, signed
/// report of a beacon it never transmitted, and files a witness report for every ring
/// beacon it is told to "hear".
async fn fake_hotspot(
    endpoint: String,
    me: usize,
    fake: Fake,
    ring: broadcast::Sender<Announced>,
    mut stop: watch::Receiver<bool>,
) {
    let mut session = Scripted::open(&endpoint, fake.key.clone())
        .await
        .expect("session");
    let mut heard = ring.subscribe();
    let mut local = 0u32;
    loop {
        tokio::select! {
            message = session.next() => match message {
                Ok(In::BeaconChallenge(challenge)) => {
                    let entropy = wire::beacon_challenge_from_wire(&challenge).expect("entropy");
                    local += 1;
                    let derived = derive_beacon(&entropy, local, &fake.key.public(), Region::EU868);
                    let announced = Announced {
                        from: me,
                        data: derived.data.clone(),
                        frequency_hz: derived.frequency_hz,
                        datarate: derived.datarate.clone(),
                        cell: fake.cell,
                    };
                    let power = Region::EU868.beacon_power_dbm() * 10;
                    let report = BeaconReport::sign(&fake.key, entropy, local, derived, power, now());
                    session.send(Out::BeaconReport(wire::beacon_report_to_wire(&report))).await;
                    let _ = ring.send(announced);
                }
                Ok(_) => {}
                Err(_) => return,
            },
            beacon = heard.recv() => {
                let Ok(beacon) = beacon else { continue };
                if !fake.hears.contains(&beacon.from) {
                    continue;
                }
                let report = WitnessReport::sign(&fake.key, WitnessReport {
                    witness: fake.key.public(),
                    signal_ddbm: plausible_signal_ddbm(beacon.cell, fake.cell, beacon.frequency_hz),
                    data: beacon.data,
                    timestamp_ms: now(),
                    tmst: 1,
                    snr_ddb: 50,
                    frequency_hz: beacon.frequency_hz,
                    datarate: beacon.datarate,
                    signature: [0; 64],
                });
                session.send(Out::WitnessReport(wire::witness_report_to_wire(&report))).await;
            }
            _ = stop.changed() => return,
        }
    }
}

/// Registers each fake as a HotspotGateway with an owner of its own (no owner verification).
fn register_fakes(index: &NodeIndex, fakes: &[Fake]) -> Vec<NodeEntry> {
    fakes
        .iter()
        .map(|fake| {
            let e = entry(
                Role::Hotspot,
                fake.name,
                &fake.key.public(),
                Declared::Hotspot(hotspot_info(
                    fake.cell,
                    &format!("fake-owner-{}", fake.name),
                )),
            );
            index.upsert(e.clone());
            e
        })
        .collect()
}

fn now() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

/// Two res-12 cells whose res-11 parents straddle the first res-11 pentagon, so H3
/// cannot measure their grid distance.
fn pentagon_pair() -> (CellIndex, CellIndex) {
    let pentagon = h3o::Resolution::Eleven
        .pentagons()
        .next()
        .expect("a pentagon");
    let disk: Vec<CellIndex> = pentagon.grid_disk_safe(6).collect();
    let (a, b) = disk
        .iter()
        .flat_map(|a| disk.iter().map(move |b| (*a, *b)))
        .find(|(a, b)| a.grid_distance(*b).is_err())
        .expect("an unmeasurable pair");
    let child = |c: CellIndex| c.center_child(h3o::Resolution::Twelve).expect("finer");
    (child(a), child(b))
}

/// The ring: four fakes 2 km apart with four fake owners witnessing each other, one more
/// (`ring-mute`) that beacons but never witnesses, and a pair either side of a pentagon.
fn ring() -> Vec<Fake> {
    let (p, q) = pentagon_pair();
    let at = |lat: f64, lon: f64| cell(lat, lon);
    let fake = |i: u8, name, cell, hears: &[usize]| Fake {
        name,
        key: NodeKey::from_seed([80 + i; 32]),
        cell,
        hears: hears.to_vec(),
    };
    vec![
        fake(0, "ring-0", at(52.0000, 5.5000), &[1, 2, 3, 4]),
        fake(1, "ring-1", at(52.0180, 5.5000), &[0, 2, 3, 4]),
        fake(2, "ring-2", at(52.0000, 5.5300), &[0, 1, 3, 4]),
        fake(3, "ring-3", at(52.0180, 5.5300), &[0, 1, 2, 4]),
        // Beacons, is witnessed by all, witnesses nobody: fails HIP-106 once the window
        // since the verifier started has passed.
        fake(4, "ring-mute", at(52.0090, 5.5150), &[]),
        fake(5, "pent-a", p, &[6]),
        fake(6, "pent-b", q, &[5]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_ring_is_paid_but_its_mute_beaconer_voids_its_pocs_and_a_pentagon_pair_is_rejected()
{
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    epoch::register_policy(&index, "default", EPOCH_SECONDS);
    let mut settings = settings();
    // A short HIP-106 window so the benefit of the doubt a fresh verifier gives every
    // hotspot (operator/src/verifier/state/poc.rs) runs out inside the test: two intervals.
    settings.poc.reciprocity_window_ms = 6_000;
    let verifier = start(settings, index.clone(), sink.clone(), "127.0.0.1:0").await;
    let fleet = honest_fleet(&index, &verifier.endpoint, &["127.0.0.1/32"]).await;
    let fakes = ring();
    let fake_entries = register_fakes(&index, &fakes);
    let (announce, _) = broadcast::channel(64);
    let (stop, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = fakes
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, fake)| {
            tokio::spawn(fake_hotspot(
                verifier.endpoint.clone(),
                i,
                fake,
                announce.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    // A first beacon is missing from the density map: 3 witnesses give HIP-15 units
    // 3/4, paid at DEFAULT_TX_SCALE 0.2 = 0.15 (150 000 work units); later ones at 1.
    eventually(30, "ring-0's first beacon paid", || {
        units(&sink, "ring-0").get("beacon").copied().unwrap_or(0) > 0
    })
    .await;
    // On a loaded machine ring-0's first beacon can close before its witnesses arrive
    // (0 units); its next one is then priced with ring-0 in the map, at scale 1 (750 000).
    // The 0.2 default itself is pinned by `poc_is_priced_at_the_beaconers_hex_scale`.
    let first = units(&sink, "ring-0").get("beacon").copied();
    assert!(
        matches!(first, Some(150_000 | 750_000)),
        "first paid beacon at 0.2 × 3/4 (or, after an unwitnessed first, 1 × 3/4): {first:?}"
    );
    let m = &verifier.verifier.metrics;
    eventually(60, "the mute beaconer fails reciprocity", || {
        m.rejected("HotspotGateway", RejectReason::NoRecentWitness) >= 5
    })
    .await;
    let n = epoch::start_of_next_epoch(EPOCH_SECONDS).await;
    epoch::end_of_epoch(n, EPOCH_SECONDS, SETTLE).await;
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    assert!(m.rejected("HotspotGateway", RejectReason::UncomputableDistance) >= 1);
    drop(fleet.medium);
    for agent in fleet.agents {
        agent.stop().await;
    }
    verifier.stop().await;

    let policy = epoch::policy(&epoch::policy_yaml(EPOCH_SECONDS));
    let entries: Vec<&NodeEntry> = fleet.entries.iter().chain(&fake_entries).collect();
    let closed = epoch::close(&sink, &entries, &policy, n);
    let paid = |name: &str| closed.paid("fleet", name);
    for name in ["ring-0", "ring-1", "ring-2", "ring-3"] {
        assert!(
            paid(name) > 0,
            "{name}: the fake ring is paid (no owner verification)"
        );
    }
    // The mute beaconer's PoCs are void: it earns nothing, and its witnesses' reports of
    // them earned nothing either (each ring member's pay is what the other ring beacons
    // gave it; the metric above counted their refusals).
    assert_eq!(paid("ring-mute"), 0, "no reciprocity, no pay");
    assert_eq!(paid("pent-a") + paid("pent-b"), 0, "uncomputable distance");
    for (name, ..) in HONEST {
        assert!(paid(name) > 0, "{name} paid alongside the ring");
    }
    let ring: u128 = ["ring-0", "ring-1", "ring-2", "ring-3"]
        .map(paid)
        .iter()
        .sum();
    let honest: u128 = HONEST.map(|(n, ..)| paid(n)).iter().sum();
    eprintln!(
        "ring of 4 fakes: {ring} base units ({:?}); 3 honest: {honest} ({:?}); pool {}",
        ["ring-0", "ring-1", "ring-2", "ring-3"].map(paid),
        HONEST.map(|(n, ..)| paid(n)),
        closed.pool_paid(NodeKind::Hotspot)
    );
}

/// Reciprocity survives a verifier restart: the ring's mute beaconer, void once its
/// benefit of the doubt ran out, is still void right after a restart (its `status.poc`
/// says when its history began), so the epoch that straddles the restart pays it nothing.
/// Without the record a restarted verifier would give it a fresh window (two beacons at
/// 3 s intervals in a 6 s window) and pay it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_verifier_keeps_the_mute_beaconer_void() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    epoch::register_policy(&index, "default", EPOCH_SECONDS);
    let mut settings = settings();
    settings.poc.reciprocity_window_ms = 6_000;
    let first = start(settings.clone(), index.clone(), sink.clone(), "127.0.0.1:0").await;
    let fakes: Vec<Fake> = ring()
        .into_iter()
        .filter(|f| !f.name.starts_with("pent"))
        .collect();
    let entries = register_fakes(&index, &fakes);
    let play = |endpoint: &str| {
        let (announce, _) = broadcast::channel(64);
        let (stop, stop_rx) = watch::channel(false);
        let tasks: Vec<_> = fakes
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, fake)| {
                tokio::spawn(fake_hotspot(
                    endpoint.to_string(),
                    i,
                    fake,
                    announce.clone(),
                    stop_rx.clone(),
                ))
            })
            .collect();
        (stop, tasks)
    };
    let (stop, tasks) = play(&first.endpoint);
    let m = &first.verifier.metrics;
    eventually(60, "the mute beaconer fails reciprocity", || {
        m.rejected("HotspotGateway", RejectReason::NoRecentWitness) >= 1
    })
    .await;
    // Restart at the very start of an epoch, so the new verifier's first seconds (a
    // fresh benefit-of-the-doubt window, were the record lost) fall inside it.
    let n = epoch::start_of_next_epoch(EPOCH_SECONDS).await;
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    first.stop().await;
    let second = start(settings, index.clone(), sink.clone(), "127.0.0.1:0").await;
    let (stop, tasks) = play(&second.endpoint);
    epoch::end_of_epoch(n, EPOCH_SECONDS, SETTLE).await;
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let refused = second
        .verifier
        .metrics
        .rejected("HotspotGateway", RejectReason::NoRecentWitness);
    second.stop().await;
    assert!(
        refused >= 1,
        "the restarted verifier judged the mute's beacons"
    );
    let policy = epoch::policy(&epoch::policy_yaml(EPOCH_SECONDS));
    let all: Vec<&NodeEntry> = entries.iter().collect();
    let closed = epoch::close(&sink, &all, &policy, n);
    assert_eq!(
        closed.paid("fleet", "ring-mute"),
        0,
        "still void after the restart"
    );
    for name in ["ring-0", "ring-1", "ring-2", "ring-3"] {
        assert!(
            closed.paid("fleet", name) > 0,
            "{name} paid across the restart"
        );
    }
}
