//! Proof-of-Coverage in process: real depin-agent hotspots serve GWMP on loopback, the
//! sim's RF medium plays their packet forwarders (radios at their true positions), and
//! the real verifier issues beacon challenges, groups witnesses per beacon and settles
//! each round. Honest witnesses end up accepted; a hotspot that asserts a location ~59 km
//! from where its antenna really is hears beacons far louder than free space allows from
//! there, and is rejected `BadRssi`.

mod support;

use depin_operator::verifier::persist::sink::MemorySink;
use depin_operator::verifier::state::index::{Declared, NodeIndex};
use depin_proof::RejectReason;
use depin_proof::identity::NodeKey;
use depin_proof::poc::{HotspotInfo, LOCATION_RESOLUTION, Region, cell_at};
use depin_proto::config::{HotspotConfig, Role};
use depin_sim::medium::{HotspotRadio, Location, Medium, MediumConfig};
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// (name, true latitude, true longitude, asserted latitude, asserted longitude).
const HOTSPOTS: [(&str, f64, f64, f64, f64); 4] = [
    ("hs-a", 52.3700, 4.8900, 52.3700, 4.8900),
    ("hs-north", 52.3880, 4.8900, 52.3880, 4.8900),
    ("hs-east", 52.3700, 4.9200, 52.3700, 4.9200),
    // 500 m from hs-a in truth, asserting a spot ~59 km north.
    ("hs-liar", 52.3745, 4.8900, 52.9000, 4.8900),
];

fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_witnesses_are_accepted_and_a_location_liar_is_rejected_bad_rssi() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    let mut specs = Vec::new();
    for (i, (name, _, _, lat, lon)) in HOTSPOTS.iter().enumerate() {
        let key = NodeKey::from_seed([40 + u8::try_from(i).expect("few"); 32]);
        let info = HotspotInfo {
            location: Some(cell_at(*lat, *lon, LOCATION_RESOLUTION).expect("cell")),
            region: Region::EU868,
            gain_dbi_x10: 0,
            owner: format!("owner-{name}"),
        };
        index.upsert(entry(
            Role::Hotspot,
            name,
            &key.public(),
            Declared::Hotspot(info),
        ));
        specs.push((key, free_udp_port()));
    }
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let mut agents = Vec::new();
    for ((name, _, _, lat, lon), (key, port)) in HOTSPOTS.iter().zip(&specs) {
        let mut config = agent_config(Role::Hotspot, name, &verifier.endpoint);
        config.hotspot = Some(HotspotConfig {
            region: "EU868".into(),
            latitude: *lat,
            longitude: *lon,
            antenna_gain_dbi: 0.0,
            elevation_meters: 0.0,
            packet_forwarder_port: *port,
        });
        agents.push(spawn_agent(config, key.clone()));
    }
    // The agents bind their GWMP ports before the forwarders announce themselves.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let medium = MediumConfig {
        seed: 7,
        path_loss_exponent: 2.9,
        // No shadowing: every run hears the same witnesses.
        shadowing_sigma_db: 0.0,
        hotspots: HOTSPOTS
            .iter()
            .zip(&specs)
            .map(|((name, lat, lon, _, _), (_, port))| HotspotRadio {
                name: (*name).into(),
                agent: format!("127.0.0.1:{port}"),
                gateway_eui: None,
                region: "EU868".into(),
                location: Location {
                    latitude: *lat,
                    longitude: *lon,
                },
                antenna_gain_dbi: 0.0,
            })
            .collect(),
    };
    let radios = medium.validate().expect("valid medium");
    let medium = Medium::start(&medium, radios).await.expect("medium");

    let (honest, liar) = agents.split_at(3);
    let liar = &liar[0];
    let bad_rssi = |agent: &RealAgent| {
        agent
            .metrics
            .proofs_rejected
            .with_label_values(&["hotspot", RejectReason::BadRssi.as_str()])
            .get()
    };
    // Reciprocity needs a round or two of history before anything is rewarded.
    eventually(60, "honest hotspots' reports accepted", || {
        honest.iter().all(|a| a.accepted("hotspot") >= 1)
    })
    .await;
    eventually(30, "the liar's witnesses rejected BadRssi", || {
        bad_rssi(liar) >= 1
    })
    .await;

    for agent in honest {
        assert!(agent.metrics.hotspot_beacons_sent.get() >= 1);
        assert!(agent.metrics.hotspot_witnesses_reported.get() >= 1);
        assert!(
            agent
                .metrics
                .hotspot_gwmp_packets
                .with_label_values(&["rxpk"])
                .get()
                >= 1
        );
    }
    assert_eq!(liar.accepted("hotspot"), 0, "the liar earns nothing");
    let tally = sink.tally("fleet", "hs-liar").expect("liar tally");
    assert!(tally.rejected >= 1, "{tally:?}");
    for (name, ..) in &HOTSPOTS[..3] {
        let tally = sink.tally("fleet", name).expect("tally");
        let units: u128 = tally
            .work_units
            .as_deref()
            .unwrap_or("0")
            .parse()
            .expect("decimal");
        assert!(units > 0, "{name}: {tally:?}");
        // Beacon and witness units are kept apart for the two sub-pools, adding up.
        let parts: u128 = tally
            .work_units_by_part
            .values()
            .map(|v| v.parse::<u128>().expect("decimal"))
            .sum();
        assert_eq!(parts, units, "{name}: {tally:?}");
    }
    let witnessed = HOTSPOTS[..3].iter().any(|(name, ..)| {
        sink.tally("fleet", name)
            .is_some_and(|t| t.work_units_by_part.contains_key("witness"))
    });
    assert!(witnessed, "witness units recorded as such");
    let m = &verifier.verifier.metrics;
    assert!(m.accepted("HotspotGateway") >= 3);
    assert!(m.rejected("HotspotGateway", RejectReason::BadRssi) >= 1);
    assert!(
        m.challenges_issued
            .with_label_values(&["HotspotGateway"])
            .get()
            >= 4
    );
    let text = honest[0].metrics.render();
    for name in [
        "depin_agent_hotspot_beacons_sent_total",
        "depin_agent_hotspot_witnesses_reported_total",
        "depin_agent_hotspot_witness_rssi_dbm",
        "depin_agent_hotspot_witness_snr_db",
        "depin_agent_hotspot_gwmp_packets_total",
    ] {
        assert!(text.contains(name), "{name} exported");
    }

    drop(medium);
    for agent in agents {
        agent.stop().await;
    }
    verifier.stop().await;
}
