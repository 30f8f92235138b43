//! The simulated SunSpec meter read by our own SunSpec reader, in process.

use std::time::Duration;

use depin_meter::{Direction, SunSpecReader};
use depin_sim::meter::{PvMeter, PvMeterConfig};

/// 2024-06-21 11:42 UTC: solar noon in Amsterdam.
const NOON: f64 = 1_718_928_000.0 + 11.7 * 3600.0;

async fn start(config: PvMeterConfig) -> (String, PvMeter) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let meter = PvMeter::new(config);
    tokio::spawn(meter.clone().serve(listener));
    (address, meter)
}

fn config(start: f64, speed: f64) -> PvMeterConfig {
    PvMeterConfig {
        capacity_w: 5_000.0,
        latitude: 52.37,
        longitude: 4.89,
        serial: "SIM-AMS-1".into(),
        seed: 7,
        speed,
        start_unix_s: Some(start),
        initial_wh: 1_000,
    }
}

#[tokio::test]
async fn noon_output_integrates_into_the_register() {
    // 600× speed: one real second is ten simulated minutes.
    let (address, _meter) = start(config(NOON, 600.0)).await;
    let mut reader =
        SunSpecReader::connect(&address, 1, Direction::Production, Duration::from_secs(3))
            .await
            .expect("connects");
    let first = reader.read().await.expect("reads");
    assert_eq!(first.serial, "SIM-AMS-1");
    assert_eq!(first.manufacturer, "DePIN-Sim");
    assert!((3_800.0..5_200.0).contains(&first.watts), "{first:?}");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let second = reader.read().await.expect("reads");
    let gained = second.wh_total - first.wh_total;
    // ~4.5 kW for ~10 simulated minutes ≈ 750 Wh; allow for scheduling slack.
    assert!((500..1_300).contains(&gained), "gained {gained} Wh");
}

#[tokio::test]
async fn night_produces_nothing() {
    let (address, meter) = start(config(1_718_928_000.0, 60.0)).await;
    let mut reader =
        SunSpecReader::connect(&address, 7, Direction::Production, Duration::from_secs(3))
            .await
            .expect("connects");
    let reading = reader.read().await.expect("reads");
    assert_eq!(reading.watts, 0.0);
    assert_eq!(reading.wh_total, 1_000);
    let (_, watts, wh) = meter.snapshot();
    assert_eq!((watts, wh), (0.0, 1_000));
}
