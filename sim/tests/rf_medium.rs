//! The RF medium in process: GWMP endpoints stand in for hotspot agents (the same
//! endpoint the agent serves), the medium plays their packet forwarders (semtech-udp's
//! client runtime), and the PoC verifier judges what was heard.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use depin_gwmp::codec::{self, immediate_txpk, parse_datarate};
use depin_gwmp::semtech_udp::tx_ack;
use depin_gwmp::{DownlinkError, Endpoint, EndpointConfig, Event};
use depin_proof::entropy::{Beacon, EntropyConfig};
use depin_proof::identity::{NodeKey, PublicKey};
use depin_proof::poc::{
    self, BeaconContext, BeaconReport, BeaconSubmission, HotspotInfo, NoDenylist, PocHistory,
    PocParams, Region, WitnessReport, WitnessSubmission, settle_poc,
};
use depin_proof::reject::RejectReason;
use depin_sim::medium::{HotspotRadio, Location, Medium, MediumConfig};
use tokio::sync::mpsc::Receiver;

/// (name, true latitude, true longitude, region).
const RADIOS: [(&str, f64, f64, &str); 5] = [
    ("beaconer", 52.3700, 4.8900, "EU868"),
    ("north-2km", 52.3880, 4.8900, "EU868"),
    ("east-2km", 52.3700, 4.9200, "EU868"),
    ("far-80km", 53.0900, 4.8900, "EU868"),
    ("us-plan", 52.3710, 4.8910, "US915"),
];

struct Agents {
    endpoints: Vec<Endpoint>,
    events: Vec<Receiver<Event>>,
    _medium: Medium,
}

async fn start(seed: u64) -> Agents {
    let mut endpoints = Vec::new();
    let mut events = Vec::new();
    let mut hotspots = Vec::new();
    for (name, lat, lon, region) in RADIOS {
        let (endpoint, rx) = Endpoint::bind(
            "127.0.0.1:0",
            EndpointConfig {
                admission: depin_gwmp::Admission::Any,
                ..EndpointConfig::default()
            },
        )
        .await
        .expect("binds");
        hotspots.push(HotspotRadio {
            name: name.into(),
            agent: endpoint.local_addr().expect("addr").to_string(),
            gateway_eui: None,
            region: region.into(),
            location: Location {
                latitude: lat,
                longitude: lon,
            },
            antenna_gain_dbi: 0.0,
        });
        endpoints.push(endpoint);
        events.push(rx);
    }
    let config = MediumConfig {
        seed,
        path_loss_exponent: 2.9,
        shadowing_sigma_db: 6.0,
        hotspots,
    };
    let radios = config.validate().expect("valid config");
    let medium = Medium::start(&config, radios).await.expect("medium starts");
    // Every forwarder announces itself with PULL_DATA on start.
    for rx in &mut events {
        let event = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert!(
            matches!(event, Ok(Some(Event::GatewayConnected { .. }))),
            "{event:?}"
        );
    }
    Agents {
        endpoints,
        events,
        _medium: medium,
    }
}

/// What each agent heard within `wait`: (rssi dBm, the frame).
async fn heard(agents: &mut Agents, wait: Duration) -> Vec<Option<codec::Received>> {
    tokio::time::sleep(wait).await;
    agents
        .events
        .iter_mut()
        .map(|rx| match rx.try_recv() {
            Ok(Event::Rxpk { rxpk, .. }) => Some(codec::received(&rxpk)),
            _ => None,
        })
        .collect()
}

fn beacon_txpk(data: Vec<u8>, frequency_hz: u64) -> depin_gwmp::semtech_udp::pull_resp::TxPk {
    immediate_txpk(
        data,
        frequency_hz,
        parse_datarate("SF9BW125").expect("datarate"),
        16,
    )
}

#[tokio::test]
async fn beacons_reach_near_radios_of_the_same_plan_deterministically() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut agents = start(42).await;
        let accepted = agents.endpoints[0]
            .send_downlink(None, beacon_txpk(vec![5; 51], 868_100_000))
            .await
            .expect("TX_ACK");
        assert_eq!(accepted.adjusted_power_dbm, None);
        let heard = heard(&mut agents, Duration::from_millis(300)).await;
        assert!(heard[0].is_none(), "no self-reception");
        assert!(heard[3].is_none(), "80 km is below sensitivity");
        assert!(heard[4].is_none(), "other regional plan");
        for near in [&heard[1], &heard[2]] {
            let frame = near.as_ref().expect("2 km away is heard");
            assert_eq!(frame.data, vec![5; 51]);
            assert_eq!(frame.frequency_hz, 868_100_000);
            // Never louder than free space: 16 dBm − FSPL(2 km, 868 MHz) ≈ −81 dBm.
            assert!(frame.rssi_dbm <= -81 && frame.rssi_dbm >= -130, "{frame:?}");
        }
        runs.push(
            heard
                .iter()
                .map(|h| h.as_ref().map(|f| f.rssi_dbm))
                .collect::<Vec<_>>(),
        );
        // A channel outside the plan is refused by the "concentrator".
        let refused = agents.endpoints[0]
            .send_downlink(None, beacon_txpk(vec![6; 51], 869_999_000))
            .await;
        assert!(matches!(
            refused,
            Err(DownlinkError::Rejected(
                tx_ack::Error::InvalidTransmitFrequency
            ))
        ));
    }
    assert_eq!(runs[0], runs[1], "same seed, same receptions");
}

struct History;

impl PocHistory for History {
    fn last_beacon_ms(&self, _: &PublicKey) -> Option<u64> {
        None
    }
    fn last_valid_beacon_ms(&self, _: &PublicKey) -> Option<u64> {
        None
    }
    fn last_valid_witness_ms(&self, _: &PublicKey) -> Option<u64> {
        None
    }
}

/// Honest witnesses on the medium pass the rule table; a hotspot that asserts a location
/// 40 km from where its antenna is hears the beacon far louder than free space allows
/// from the asserted spot, and is rejected for it.
#[tokio::test]
async fn poc_over_the_medium_accepts_honest_witnesses_and_catches_a_location_liar() {
    let mut agents = start(7).await;
    let keys: Vec<NodeKey> = (1..=RADIOS.len() as u8)
        .map(|i| NodeKey::from_seed([i; 32]))
        .collect();
    let asserted = |i: usize| match i {
        2 => (52.7300, 4.9200), // east-2km claims to be 40 km north
        _ => (RADIOS[i].1, RADIOS[i].2),
    };
    let hotspots: BTreeMap<PublicKey, HotspotInfo> = (0..RADIOS.len())
        .map(|i| {
            let (lat, lon) = asserted(i);
            (
                keys[i].public(),
                HotspotInfo {
                    location: Some(poc::cell_at(lat, lon, poc::LOCATION_RESOLUTION).expect("cell")),
                    region: RADIOS[i].3.parse::<Region>().expect("region"),
                    gain_dbi_x10: 0,
                    owner: format!("owner-{i}"),
                },
            )
        })
        .collect();
    let params = PocParams {
        reciprocity_window_ms: 0,
        ..PocParams::default()
    };
    let beacon_source = Beacon::new([9; 32], EntropyConfig::default());
    let now_ms = 1_800_000_000_000u64;
    let entropy = beacon_source.current(now_ms);
    let derived = poc::derive_beacon(&entropy, 77, &keys[0].public(), Region::EU868);
    let report = BeaconReport::sign(&keys[0], entropy, 77, derived.clone(), 160, now_ms);
    agents.endpoints[0]
        .send_downlink(
            None,
            beacon_txpk(derived.data.clone(), derived.frequency_hz),
        )
        .await
        .expect("TX_ACK");
    let heard = heard(&mut agents, Duration::from_millis(300)).await;
    let witnesses: Vec<WitnessSubmission> = heard
        .iter()
        .enumerate()
        .filter_map(|(i, frame)| frame.as_ref().map(|f| (i, f)))
        .map(|(i, frame)| WitnessSubmission {
            report: WitnessReport::sign(
                &keys[i],
                WitnessReport {
                    witness: keys[i].public(),
                    data: frame.data.clone(),
                    timestamp_ms: now_ms + 1,
                    tmst: frame.tmst,
                    signal_ddbm: frame.rssi_dbm * 10,
                    snr_ddb: (frame.snr_db * 10.0).round() as i32,
                    frequency_hz: frame.frequency_hz,
                    datarate: poc::BEACON_DATARATE.into(),
                    signature: [0; 64],
                },
            ),
            received_ms: now_ms + 200,
        })
        .collect();
    assert_eq!(witnesses.len(), 2, "the two 2 km radios heard it");
    let outcome = settle_poc(
        &BeaconSubmission {
            report,
            received_ms: now_ms + 100,
        },
        &witnesses,
        &BeaconContext {
            params: &params,
            beacon: &beacon_source,
            hotspots: &hotspots,
            denylist: &NoDenylist,
            history: &History,
        },
    );
    assert!(outcome.beacon.is_ok(), "{:?}", outcome.beacon);
    let verdicts: BTreeSet<_> = outcome
        .witnesses
        .iter()
        .map(|w| (w.witness, w.result.as_ref().map(|_| ()).map_err(|r| *r)))
        .collect();
    assert!(
        verdicts.contains(&(keys[1].public(), Ok(()))),
        "{verdicts:?}"
    );
    assert!(
        verdicts.contains(&(keys[2].public(), Err(RejectReason::BadRssi))),
        "{verdicts:?}"
    );
}
