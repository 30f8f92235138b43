//! Meter cheats settled in rewards, on a simulated clock: one day (2026-12-03, one epoch of
//! 86 400 s) of 5-minute readings from 5 kW PV bridges in Amsterdam. The honest meters
//! replay the simulator's clear-sky curve (`depin_sim::solar`); each cheat plays one lie.
//! Every reading goes through the real rule table (`depin_proof::meter::verify_reading`,
//! the serial book, the chain record), the verified Wh become CR tallies, and the epoch is
//! closed by the operator's own mapping (`rewards::tallies::tally_paid`) and reward math.

use std::collections::BTreeMap;

use depin_crds::{NodeStatus, ProofTally};
use depin_operator::rewards::tallies::{MeterPay, NodeRecord, tally_paid};
use depin_proof::RejectReason;
use depin_proof::identity::NodeKey;
use depin_proof::meter::{
    ChainHead, ClaimOutcome, Installation, MeterChain, MeterContext, MeterDirection, MeterParams,
    SerialBook, SerialClaim, Site, verify_installed,
};
use depin_proof::reward::{CumulativeTotals, EpochResult, RewardPolicy, close_epoch};

/// 2026-12-03 00:00 UTC, unix ms; the epoch is that day.
const DAY_MS: u64 = 1_796_256_000_000;
const SLOT_MS: u64 = 300_000;
const SLOTS: u64 = 288;
const CAPACITY_W: u64 = 5_000;
const EPOCH: u64 = DAY_MS / 86_400_000;

fn policy() -> RewardPolicy {
    let spec: depin_crds::RewardPolicySpec = serde_yaml::from_str(
        "epochSeconds: 86400\n\
         token: {symbol: DPN, decimals: 8}\n\
         emission: {initialPerEpoch: \"100000000000\", halvingEveryEpochs: 730}\n\
         pools: {hotspot: \"0.4\", storage: \"0.3\", gpu: \"0.2\", meter: \"0.1\"}\n",
    )
    .expect("policy YAML");
    depin_operator::rewards::policy::validate(&spec).expect("valid policy")
}

/// The simulator's PV output in slot `i` of the day, Wh (trapezoid, 10 s steps).
fn honest_wh(i: u64) -> u64 {
    let start_s = (DAY_MS + i * SLOT_MS) as f64 / 1000.0;
    let power = |t: f64| depin_sim::solar::pv_watts(CAPACITY_W as f64, t, 52.37, 4.89, 7);
    let wh: f64 = (0..30)
        .map(|k| {
            let t = start_s + f64::from(k) * 10.0;
            (power(t) + power(t + 10.0)) / 2.0 * 10.0 / 3_600.0
        })
        .sum();
    wh.floor() as u64
}

/// One MeterBridge as the verifier sees it, and its tally.
struct Bridge {
    name: &'static str,
    key: NodeKey,
    serial: &'static str,
    direction: MeterDirection,
    head: ChainHead,
    chain: MeterChain,
    register: u64,
    last_slot: Option<u64>,
    tally: ProofTally,
    reasons: BTreeMap<RejectReason, u64>,
}

impl Bridge {
    fn new(name: &'static str, seed: u8, serial: &'static str) -> Self {
        Self {
            name,
            key: NodeKey::from_seed([seed; 32]),
            serial,
            direction: MeterDirection::Production,
            head: ChainHead::default(),
            chain: MeterChain::default(),
            register: 1_000_000,
            last_slot: None,
            tally: ProofTally {
                epoch: EPOCH,
                ..ProofTally::default()
            },
            reasons: BTreeMap::new(),
        }
    }

    /// Sends one reading for day slot `i` claiming `delta_wh` since the previous one, as
    /// the session would: serial book, rule table, chain record, tally.
    fn read(&mut self, i: u64, delta_wh: u64, serials: &mut SerialBook) {
        let slot = (DAY_MS + i * SLOT_MS) / SLOT_MS;
        let elapsed_ms = self
            .last_slot
            .map_or(SLOT_MS, |last| (slot - last) * SLOT_MS);
        self.register += delta_wh;
        let avg_w = delta_wh * 3_600_000 / elapsed_ms;
        let signed = self
            .head
            .next(&self.key, self.serial, slot, self.register, avg_w, 30)
            .expect("slot advances");
        self.last_slot = Some(slot);
        let params = MeterParams {
            slot_ms: SLOT_MS,
            ..MeterParams::default()
        };
        let now_ms = slot * SLOT_MS + 1_000;
        let verdict = verify_installed(
            &signed,
            &self.chain,
            &MeterContext {
                params: &params,
                rated_capacity_w: CAPACITY_W,
                now_ms,
                serials: &*serials,
                replaced_at_slot: None,
            },
            &Installation {
                direction: self.direction,
                site: Site::new(52.37, 4.89),
            },
        );
        self.chain.record(&signed, &verdict);
        match verdict {
            Ok(verified) => {
                if let ClaimOutcome::Lost(_) = serials.claim(self.serial, self.key.public(), now_ms)
                {
                    unreachable!("a lost serial is refused before acceptance");
                }
                self.tally.accepted += 1;
                let wh: u64 = self
                    .tally
                    .work_units
                    .as_deref()
                    .map_or(0, |w| w.parse().expect("decimal"));
                self.tally.work_units = Some((wh + verified.delta_wh).to_string());
            }
            Err(reason) => {
                self.tally.rejected += 1;
                *self.reasons.entry(reason).or_default() += 1;
            }
        }
    }

    fn verified_wh(&self) -> u64 {
        self.tally
            .work_units
            .as_deref()
            .map_or(0, |w| w.parse().expect("decimal"))
    }

    fn record(&self) -> NodeRecord {
        NodeRecord {
            namespace: "fleet".into(),
            name: self.name.into(),
            kind: Some(depin_proof::reward::NodeKind::Meter),
            consumption: self.direction == MeterDirection::Consumption,
            status: NodeStatus {
                proofs: Some(self.tally.clone()),
                ..NodeStatus::default()
            },
        }
    }
}

fn close(bridges: &[&Bridge], meter: MeterPay) -> EpochResult {
    let policy = policy();
    let tallies: Vec<_> = bridges
        .iter()
        .filter_map(|b| tally_paid(&b.record(), EPOCH, &policy, meter))
        .collect();
    close_epoch(&policy, EPOCH, &tallies, &CumulativeTotals::new(), &[]).expect("closes")
}

fn paid(result: &EpochResult, name: &str) -> u128 {
    let id = format!("fleet/{name}");
    result
        .nodes
        .iter()
        .find(|n| n.node == id)
        .map_or(0, |n| n.reward)
}

#[test]
fn every_meter_cheat_earns_at_most_its_honest_work_and_the_honest_are_paid_for_theirs() {
    let mut serials = SerialBook::default();
    let mut honest = Bridge::new("honest", 1, "SN-HONEST");
    let mut night = Bridge::new("night-inflator", 2, "SN-NIGHT");
    let mut gap = Bridge::new("gap-filler", 3, "SN-GAP");
    let mut nameplate = Bridge::new("nameplate-24h", 4, "SN-24H");
    let mut consumer = Bridge::new("consumption", 5, "SN-LOAD");
    consumer.direction = MeterDirection::Consumption;
    let mut squatter = Bridge::new("squatter", 6, "SN-HONEST");
    // 1.35 × nameplate for one 5-minute slot: what the capacity rule alone allowed.
    let nameplate_slot = CAPACITY_W * 135 / 100 * SLOT_MS / 3_600_000;
    let mut recorded: Vec<SerialClaim> = Vec::new();

    for i in 0..SLOTS {
        let real = honest_wh(i);
        honest.read(i, real, &mut serials);
        // Night: real output plus 300 Wh (3.6 kW) per slot while the sun is down.
        let inflated = if real == 0 { 300 } else { real };
        night.read(i, inflated, &mut serials);
        // Offline 08:00–12:00, then the 4 hours claimed at 1.3 × nameplate.
        match i {
            96..144 => {}
            144 => gap.read(i, 26_000, &mut serials),
            _ => gap.read(i, real, &mut serials),
        }
        nameplate.read(i, nameplate_slot, &mut serials);
        // A household load, 400 W around the clock.
        consumer.read(i, 33, &mut serials);
        if i == 0 {
            // The verifier records the honest bridge's claim in its status, then restarts
            // at 10:00; the squatter reading the same serial speaks first after it.
            recorded.extend(serials.winner("SN-HONEST").cloned());
        }
        if i == 120 {
            serials = SerialBook::default();
            recorded.iter().cloned().for_each(|c| serials.restore(c));
        }
        if i >= 120 {
            squatter.read(i, real, &mut serials);
        }
    }

    let day_real: u64 = (0..SLOTS).map(honest_wh).sum();
    let result = close(
        &[&honest, &night, &gap, &nameplate, &consumer, &squatter],
        MeterPay::default(),
    );
    let honest_paid = paid(&result, "honest");
    let report = |b: &Bridge| {
        println!(
            "{:>15}: verified {:>6} Wh (honest work {day_real} Wh), paid {:>11} (honest {honest_paid}), refused {:?}",
            b.name,
            b.verified_wh(),
            paid(&result, b.name),
            b.reasons
        );
    };
    for b in [&honest, &night, &gap, &nameplate, &consumer, &squatter] {
        report(b);
    }

    // The honest meter is credited every Wh it produced and refused nothing.
    assert_eq!(honest.verified_wh(), day_real);
    assert!(honest.reasons.is_empty(), "{:?}", honest.reasons);
    assert!(
        day_real > 2_000,
        "a clear December day on 5 kW: {day_real} Wh"
    );
    // Night inflation earns nothing for the night: only the real daytime work is paid.
    assert_eq!(night.verified_wh(), day_real);
    assert!(night.reasons[&RejectReason::ProductionAtNight] > 150);
    assert_eq!(paid(&result, "night-inflator"), honest_paid);
    // The gap reading is refused whole; the cheat loses even the real energy of the gap.
    assert_eq!(gap.reasons.get(&RejectReason::AboveClearSky), Some(&1));
    assert!(gap.verified_wh() < day_real);
    assert!(paid(&result, "gap-filler") < honest_paid);
    // 1.35 × nameplate around the clock (162 kWh claimed) earns at most the clear-sky day.
    let clear_sky_day = Site::new(52.37, 4.89)
        .and_then(|s| {
            let start = s.solar_day_start_ms(s.solar_day(DAY_MS + 43_200_000));
            s.energy_bound_wh(CAPACITY_W, start, start + 86_400_000, 0, 135)
        })
        .expect("in range");
    assert!(
        (nameplate.verified_wh() as f64) <= clear_sky_day * 1.1,
        "{} Wh vs the clear-sky day {clear_sky_day:.0} Wh",
        nameplate.verified_wh()
    );
    assert!(nameplate.reasons[&RejectReason::ProductionAtNight] > 150);
    // A consumption meter is verified but unpaid by default ...
    assert_eq!(consumer.verified_wh(), 33 * (SLOTS - 1));
    assert_eq!(paid(&result, "consumption"), 0);
    // ... and paid when the policy chooses to (with the same verified work).
    let paying = close(&[&honest, &consumer], MeterPay { consumption: true });
    assert!(paid(&paying, "consumption") > 0);
    // The squatter never gets the serial, even speaking first after the restart.
    assert_eq!(squatter.tally.accepted, 0);
    assert_eq!(
        squatter.reasons.get(&RejectReason::DuplicateMeterSerial),
        Some(&(SLOTS - 120))
    );
    assert_eq!(paid(&result, "squatter"), 0);
    // Pool shares are verified Wh: every cheat's pay is proportional to what it proved.
    let pool: u128 = result.nodes.iter().map(|n| n.reward).sum();
    let total_wh =
        honest.verified_wh() + night.verified_wh() + gap.verified_wh() + nameplate.verified_wh();
    let expected = u128::from(honest.verified_wh()) * pool / u128::from(total_wh);
    assert!(
        honest_paid.abs_diff(expected) <= 5,
        "{honest_paid} vs {expected}"
    );
}
