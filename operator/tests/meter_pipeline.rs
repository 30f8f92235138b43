//! The meter proof in process: the sim's SunSpec PV inverter over Modbus TCP, a real
//! depin-agent meter role signing one reading per slot, the real verifier crediting the
//! proven Wh into the (in-memory) tally; and a scripted agent that lies.

mod support;

use depin_operator::verifier::persist::sink::MemorySink;
use depin_operator::verifier::state::index::Declared;
use depin_operator::verifier::{now_ms, state::index::NodeIndex};
use depin_proof::RejectReason;
use depin_proof::identity::NodeKey;
use depin_proof::meter::ChainHead;
use depin_proto::config::{MeterConfig, Role};
use depin_proto::v1::agent_message::Body as Out;
use depin_proto::wire;
use depin_sim::meter::{PvMeter, PvMeterConfig};
use std::sync::Arc;
use support::*;

/// 2024-06-21 10:00 UTC: a bright late morning in Amsterdam (the sim replays the PV curve
/// from there at real speed, so the agent's wall-clock slots and the register agree).
const MORNING: f64 = 1_718_928_000.0 + 10.0 * 3600.0;
/// Slot length in the tests, s.
const SLOT_S: u32 = 2;
const CAPACITY_W: u64 = 10_000;

fn declared() -> Declared {
    Declared::Meter {
        rated_capacity_w: CAPACITY_W,
        slot_ms: u64::from(SLOT_S) * 1000,
        replacement: None,
        direction: depin_proof::meter::MeterDirection::Production,
        site: Some(noon_site()),
    }
}

/// A site on the equator where it is local noon now, so the sun rules pass whenever the
/// suite runs (the sim's PV curve stays far below a noon clear-sky bound).
fn noon_site() -> depin_proof::meter::Site {
    let hours_utc = (now_ms() % 86_400_000) as f64 / 3_600_000.0;
    let longitude = (12.0 - hours_utc) * 15.0;
    depin_proof::meter::Site::new(0.0, longitude.clamp(-180.0, 180.0)).expect("valid site")
}

async fn sim_meter(serial: &str) -> (u16, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let meter = PvMeter::new(PvMeterConfig {
        capacity_w: CAPACITY_W as f64,
        latitude: 52.37,
        longitude: 4.89,
        serial: serial.into(),
        seed: 11,
        speed: 1.0,
        start_unix_s: Some(MORNING),
        initial_wh: 1_000_000,
    });
    (port, tokio::spawn(meter.serve(listener)))
}

fn meter_agent(endpoint: &str, name: &str, key: NodeKey, port: u16, state: &str) -> RealAgent {
    let mut config = agent_config(Role::Meter, name, endpoint);
    config.meter = Some(MeterConfig {
        host: "127.0.0.1".into(),
        port,
        unit_id: 1,
        profile: "sunspec".into(),
        direction: "production".into(),
        rated_capacity_kw: CAPACITY_W as f64 / 1000.0,
        interval_seconds: SLOT_S,
        state_dir: state.into(),
    });
    spawn_agent(config, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_meter_chain_is_credited_and_survives_an_agent_restart() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    let key = NodeKey::from_seed([21; 32]);
    index.upsert(entry(Role::Meter, "mb", &key.public(), declared()));
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let (port, device) = sim_meter("SIM-PIPE-1").await;
    let state = scratch_dir("meter-mb");
    let state = state.display().to_string();

    let agent = meter_agent(&verifier.endpoint, "mb", key.clone(), port, &state);
    let accepted = || sink.tally("fleet", "mb").map_or(0, |t| t.accepted);
    eventually(30, "three readings credited", || accepted() >= 3).await;
    eventually(5, "the agent saw its receipts", || {
        agent.accepted("meter") >= 3
    })
    .await;
    assert!(agent.metrics.meter_readings.get() >= 3);
    assert!(agent.metrics.meter_power_watts.get() > 0.0, "the sun is up");
    assert!(agent.metrics.meter_energy_joules.get() >= 1_000_000.0 * 3600.0);
    let text = agent.metrics.render();
    for name in [
        "depin_agent_meter_power_watts",
        "depin_agent_meter_energy_joules",
        "depin_agent_meter_readings_total",
    ] {
        assert!(text.contains(name), "{name} exported");
    }
    agent.stop().await;

    // Same key, same state dir: the chain continues where it stopped.
    let before = accepted();
    let agent = meter_agent(&verifier.endpoint, "mb", key.clone(), port, &state);
    eventually(30, "the restarted agent's readings credited", || {
        accepted() >= before + 3
    })
    .await;
    let tally = sink.tally("fleet", "mb").expect("tally");
    assert_eq!(tally.rejected, 0, "{tally:?}");
    let wh: u128 = tally
        .work_units
        .as_deref()
        .unwrap_or("0")
        .parse()
        .expect("decimal");
    // ~7 kW for several 2 s slots: a few Wh each, all of it proven.
    assert!(wh > 0, "{tally:?}");
    let tip = verifier.verifier.meters.tip(&key.public()).expect("chain");
    assert!(tip.seq >= 5, "one chain across the restart: {tip:?}");
    let m = &verifier.verifier.metrics;
    assert!(m.accepted("MeterBridge") >= 6);
    assert_eq!(m.rejected("MeterBridge", RejectReason::SequenceGap), 0);

    agent.stop().await;
    device.abort();
    verifier.stop().await;
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_register_is_rejected_and_counted() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    let key = NodeKey::from_seed([22; 32]);
    index.upsert(entry(Role::Meter, "liar", &key.public(), declared()));
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let mut agent = Scripted::open(&verifier.endpoint, key.clone())
        .await
        .expect("hello accepted");
    let slot = now_ms() / (u64::from(SLOT_S) * 1000);
    let mut head = ChainHead::default();

    let first = head
        .next(&key, "SIM-LIAR", slot, 5_000, 0, 1)
        .expect("signed");
    agent
        .send(Out::MeterReading(wire::meter_reading_to_wire(&first)))
        .await;
    let (receipt, _) = agent.receipt().await;
    assert_eq!(receipt.verdict, Ok(()));
    assert_eq!(receipt.challenge.0, first.hash());

    let rollback = head
        .next(&key, "SIM-LIAR", slot + 1, 4_000, 0, 1)
        .expect("signed");
    agent
        .send(Out::MeterReading(wire::meter_reading_to_wire(&rollback)))
        .await;
    let (receipt, _) = agent.receipt().await;
    assert_eq!(receipt.verdict, Err(RejectReason::RegisterRollback));
    assert!(receipt.recorded, "a lie counts against the node");
    assert_eq!(receipt.tally.map(|t| t.rejected), Some(1));

    // Resending the accepted reading settles it without counting it twice.
    agent
        .send(Out::MeterReading(wire::meter_reading_to_wire(&first)))
        .await;
    let (receipt, _) = agent.receipt().await;
    assert_eq!(receipt.verdict, Err(RejectReason::Duplicate));
    assert!(!receipt.recorded);

    let tally = sink.tally("fleet", "liar").expect("tally");
    assert_eq!((tally.accepted, tally.rejected), (1, 1), "{tally:?}");
    assert_eq!(
        verifier
            .verifier
            .metrics
            .rejected("MeterBridge", RejectReason::RegisterRollback),
        1
    );
    verifier.stop().await;
}

/// A TCP relay to the verifier that the test can cut (a network partition): dropping it
/// closes the listener and every relayed connection.
struct Relay(
    Vec<tokio::task::JoinHandle<()>>,
    Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
);

impl Relay {
    async fn open(listen: std::net::SocketAddr, to: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .expect("relay port");
        let conns = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let conns = conns.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
                        continue;
                    };
                    let conn = tokio::spawn(async move {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    });
                    conns.lock().expect("relay lock").push(conn);
                }
            }
        });
        Self(vec![accept], conns)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
        if let Ok(conns) = self.1.lock() {
            conns.iter().for_each(tokio::task::JoinHandle::abort);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_signed_during_a_partition_survive_an_agent_crash() {
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    let key = NodeKey::from_seed([23; 32]);
    index.upsert(entry(Role::Meter, "mb-part", &key.public(), declared()));
    let verifier = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let (port, device) = sim_meter("SIM-PART-1").await;
    let state = scratch_dir("meter-partition").display().to_string();
    let relay_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let endpoint = format!("http://{relay_addr}");

    let relay = Relay::open(relay_addr, verifier.addr).await;
    let agent = meter_agent(&endpoint, "mb-part", key.clone(), port, &state);
    let accepted = || sink.tally("fleet", "mb-part").map_or(0, |t| t.accepted);
    eventually(30, "two readings credited", || accepted() >= 2).await;
    // Partition: the agent keeps signing readings nobody acknowledges...
    drop(relay);
    let signed = agent.metrics.meter_readings.get();
    eventually(30, "two readings signed during the partition", || {
        agent.metrics.meter_readings.get() >= signed + 2
    })
    .await;
    // ...then crashes and comes back (same key and state dir) before the network heals.
    agent.stop().await;
    let before = accepted();
    let agent = meter_agent(&endpoint, "mb-part", key.clone(), port, &state);
    let _relay = Relay::open(relay_addr, verifier.addr).await;
    eventually(40, "the partition's readings and new ones credited", || {
        accepted() >= before + 4
    })
    .await;
    let m = &verifier.verifier.metrics;
    assert_eq!(
        m.rejected("MeterBridge", RejectReason::SequenceGap),
        0,
        "no reading was lost: the chain has no gap"
    );
    let tally = sink.tally("fleet", "mb-part").expect("tally");
    assert_eq!(tally.rejected, 0, "{tally:?}");
    agent.stop().await;
    device.abort();
    verifier.stop().await;
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_verifier_continues_the_chain_and_keeps_the_serial_claim() {
    // The chain tip and serial claim live in status.meter (here: the sink both verifier
    // instances share, as two leaders share the CRs), not in the leader's memory.
    let (index, sink) = (NodeIndex::new(), Arc::new(MemorySink::default()));
    let (roof, squatter) = (NodeKey::from_seed([31; 32]), NodeKey::from_seed([32; 32]));
    index.upsert(entry(Role::Meter, "roof", &roof.public(), declared()));
    index.upsert(entry(
        Role::Meter,
        "squatter",
        &squatter.public(),
        declared(),
    ));
    let slot = now_ms() / (u64::from(SLOT_S) * 1000);
    let mut head = ChainHead::default();
    // 2 Wh per 2 s slot: 3.6 kW on a 10 kW array at noon, inside every bound.
    let send = async |agent: &mut Scripted, reading: depin_proof::meter::SignedReading| {
        agent
            .send(Out::MeterReading(wire::meter_reading_to_wire(&reading)))
            .await;
        agent.receipt().await.0
    };
    let first = start(settings(), index.clone(), sink.clone(), "127.0.0.1:0").await;
    let mut agent = Scripted::open(&first.endpoint, roof.clone())
        .await
        .expect("hello");
    for (at, wh) in [(slot - 2, 5_000), (slot - 1, 5_002)] {
        let reading = head
            .next(&roof, "SN-ROOF", at, wh, 3_600, 1)
            .expect("signed");
        assert_eq!(send(&mut agent, reading).await.verdict, Ok(()));
    }
    let before: u128 = sink
        .tally("fleet", "roof")
        .and_then(|t| t.work_units)
        .expect("credited")
        .parse()
        .expect("units");
    assert!(before > 0, "the second link credits energy");
    drop(agent);
    first.stop().await;

    // A new leader: nothing in memory, everything in the CRs.
    let second = start(settings(), index, sink.clone(), "127.0.0.1:0").await;
    let mut thief = Scripted::open(&second.endpoint, squatter.clone())
        .await
        .expect("hello");
    let mut thief_head = ChainHead::default();
    let stolen = thief_head
        .next(&squatter, "SN-ROOF", slot, 9_000, 0, 1)
        .expect("signed");
    assert_eq!(
        send(&mut thief, stolen).await.verdict,
        Err(RejectReason::DuplicateMeterSerial),
        "the squatter spoke first after the restart, but the recorded claim is older"
    );
    let mut agent = Scripted::open(&second.endpoint, roof.clone())
        .await
        .expect("hello");
    let rollback = head
        .next(&roof, "SN-ROOF", slot, 4_000, 0, 1)
        .expect("signed");
    assert_eq!(
        send(&mut agent, rollback).await.verdict,
        Err(RejectReason::RegisterRollback),
        "a rollback across the restart is caught, not taken as a new baseline"
    );
    let mut honest_head = ChainHead::default();
    // The honest continuation of the recorded chain (the rolled-back link was refused, so
    // the verifier's tip is still slot − 1's link: re-sign from there).
    for (at, wh) in [(slot - 2, 5_000), (slot - 1, 5_002)] {
        honest_head.next(&roof, "SN-ROOF", at, wh, 3_600, 1);
    }
    let next = honest_head
        .next(&roof, "SN-ROOF", slot + 1, 5_004, 1_800, 1)
        .expect("signed");
    assert_eq!(send(&mut agent, next).await.verdict, Ok(()));
    let after: u128 = sink
        .tally("fleet", "roof")
        .and_then(|t| t.work_units)
        .expect("credited")
        .parse()
        .expect("units");
    assert_eq!(
        after - before,
        before,
        "the first link after the restart is credited like any other (not a 0 Wh baseline)"
    );
    let thief_tally = sink.tally("fleet", "squatter").expect("tally");
    assert_eq!(
        (thief_tally.accepted, thief_tally.work_units.as_deref()),
        (0, None),
        "{thief_tally:?}"
    );
    second.stop().await;
}
