//! The meter proof end to end in simulated time: the SunSpec simulator (600× speed) is
//! polled over Modbus TCP by our reader, readings are signed into a hash chain once per
//! 5-minute slot, and the verifier accepts every link with the energy the curve produced.
//! Slots and the verifier's clock follow the simulator's clock, so capacity × Δt holds in
//! simulated time.

use std::collections::BTreeMap;
use std::time::Duration;

use depin_meter::{Direction, SunSpecReader};
use depin_proof::identity::NodeKey;
use depin_proof::meter::{
    ChainHead, Installation, MeterChain, MeterContext, MeterDirection, MeterParams, Site,
    verify_installed,
};
use depin_sim::meter::{PvMeter, PvMeterConfig};

/// 2024-06-21 10:00 UTC: a bright late morning in Amsterdam.
const MORNING: f64 = 1_718_928_000.0 + 10.0 * 3600.0;

#[tokio::test]
async fn simulated_pv_readings_form_a_verified_chain() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let meter = PvMeter::new(PvMeterConfig {
        capacity_w: 5_000.0,
        latitude: 52.37,
        longitude: 4.89,
        serial: "SIM-CHAIN-1".into(),
        seed: 3,
        speed: 600.0,
        start_unix_s: Some(MORNING),
        initial_wh: 50_000,
    });
    tokio::spawn(meter.clone().serve(listener));
    let mut reader =
        SunSpecReader::connect(&address, 1, Direction::Production, Duration::from_secs(3))
            .await
            .expect("connects");

    let key = NodeKey::from_seed([8; 32]);
    let params = MeterParams::default();
    let serials = BTreeMap::from([("SIM-CHAIN-1".to_owned(), key.public())]);
    let mut head = ChainHead::default();
    let mut chain = MeterChain::default();
    let mut samples: Vec<f64> = Vec::new();
    let mut slot = params.slot_at((meter.snapshot().0 * 1000.0) as u64);
    let mut proven_wh = 0;
    let mut links = 0;
    while links < 4 {
        tokio::time::sleep(Duration::from_millis(40)).await; // 24 simulated seconds
        let reading = reader.read().await.expect("reads");
        let now_ms = (meter.snapshot().0 * 1000.0) as u64;
        samples.push(reading.watts);
        let now_slot = params.slot_at(now_ms);
        if now_slot == slot {
            continue;
        }
        slot = now_slot;
        let avg_w = samples.iter().sum::<f64>() / samples.len() as f64;
        let signed = head
            .next(
                &key,
                &reading.serial,
                slot,
                reading.wh_total,
                avg_w.round() as u64,
                samples.len() as u32,
            )
            .expect("a new slot");
        samples.clear();
        let verdict = verify_installed(
            &signed,
            &chain,
            &MeterContext {
                params: &params,
                rated_capacity_w: 5_000,
                now_ms,
                serials: &serials,
                replaced_at_slot: None,
            },
            // The simulator's own site: its clear-sky curve must obey the sun rules.
            &Installation {
                direction: MeterDirection::Production,
                site: Site::new(52.37, 4.89),
            },
        );
        let verified = verdict.clone().expect("every link verifies");
        proven_wh += verified.delta_wh;
        chain.record(&signed, &verdict);
        links += 1;
    }
    // Three full 5-minute intervals near 4 kW: roughly 3 × 330 Wh.
    assert!((600..1_500).contains(&proven_wh), "proved {proven_wh} Wh");
}
