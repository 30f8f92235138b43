use std::collections::BTreeMap;

use super::*;
use crate::identity::{NodeKey, PublicKey};
use crate::reject::RejectReason;

const SERIAL: &str = "SN-0001";
const NOW_SLOT: u64 = 1_000;
const CAPACITY_W: u64 = 5_000; // 5 kW: at most 562 Wh per 5-minute slot with the 1.35 buffer

fn key() -> NodeKey {
    NodeKey::from_seed([4; 32])
}

struct Fixture {
    params: MeterParams,
    serials: BTreeMap<String, PublicKey>,
    replaced_at_slot: Option<u64>,
    chain: MeterChain,
    head: ChainHead,
}

impl Fixture {
    /// A chain with two accepted readings: slot 990 at 10 000 Wh, slot 991 at 10 250 Wh
    /// (3 kW for 5 minutes).
    fn new() -> Self {
        let mut fixture = Self {
            params: MeterParams::default(),
            serials: [(SERIAL.to_owned(), key().public())].into_iter().collect(),
            replaced_at_slot: None,
            chain: MeterChain::default(),
            head: ChainHead::default(),
        };
        for (slot, wh, w) in [(990, 10_000, 0), (991, 10_250, 3_000)] {
            let signed = fixture.next(slot, wh, w);
            let verdict = fixture.verify(&signed);
            assert!(verdict.is_ok(), "setup: {verdict:?}");
            fixture.chain.record(&signed, &verdict);
        }
        fixture
    }

    fn next(&mut self, slot: u64, cumulative_wh: u64, avg_w: u64) -> SignedReading {
        self.head
            .next(&key(), SERIAL, slot, cumulative_wh, avg_w, 30)
            .expect("slot advances")
    }

    /// The next reading as the honest agent would send it, for a lie to edit and re-sign.
    fn unsigned_next(&self, slot: u64, cumulative_wh: u64, avg_w: u64) -> Reading {
        Reading {
            meter_serial: SERIAL.to_owned(),
            seq: self.head.next_seq,
            slot,
            cumulative_wh,
            avg_w,
            samples: 30,
            prev_hash: self.head.prev_hash,
        }
    }

    fn verify(&self, signed: &SignedReading) -> Result<VerifiedReading, RejectReason> {
        verify_installed(
            signed,
            &self.chain,
            &MeterContext {
                params: &self.params,
                rated_capacity_w: CAPACITY_W,
                now_ms: self.params.slot_start_ms(NOW_SLOT) + 1_000,
                serials: &self.serials,
                replaced_at_slot: self.replaced_at_slot,
            },
            &Installation {
                direction: MeterDirection::Production,
                // On the equator at 10:30 solar time (slot 990 is 1970-01-04 10:30 UTC):
                // the sun is high, so only the capacity rules bind in these rows.
                site: Site::new(0.0, 0.0),
            },
        )
    }
}

fn signed(reading: Reading) -> SignedReading {
    SignedReading::sign(&key(), reading)
}

#[test]
fn honest_chain_proves_its_energy() {
    let mut f = Fixture::new();
    let third = f.next(992, 10_500, 3_000);
    let verdict = f.verify(&third).expect("honest");
    assert_eq!(verdict.delta_wh, 250);
    assert_eq!(f.chain.record(&third, &Ok(verdict)), 0);
    let fourth = f.next(995, 11_200, 2_800); // a 3-slot gap in time is fine: seq is dense
    assert_eq!(f.verify(&fourth).map(|v| v.delta_wh), Ok(700));
}

type Lie = fn(&mut Fixture) -> SignedReading;

#[test]
fn each_lie_gets_its_reason() {
    let table: &[(&str, Lie, RejectReason)] = &[
        (
            "bad signature",
            |f| {
                let mut s = f.next(992, 10_500, 3_000);
                s.reading.cumulative_wh += 1;
                s
            },
            RejectReason::BadSignature,
        ),
        (
            "serial of another node",
            |f| {
                f.serials
                    .insert(SERIAL.into(), NodeKey::from_seed([9; 32]).public());
                f.next(992, 10_500, 3_000)
            },
            RejectReason::DuplicateMeterSerial,
        ),
        (
            "slot too old",
            |f| signed(f.unsigned_next(NOW_SLOT - 433, 10_500, 3_000)),
            RejectReason::SlotOutsideWindow,
        ),
        (
            "slot in the future",
            |f| signed(f.unsigned_next(NOW_SLOT + 2, 10_500, 3_000)),
            RejectReason::SlotOutsideWindow,
        ),
        (
            "conflicting second report",
            |f| {
                let mut r = f.unsigned_next(991, 10_260, 3_000);
                r.seq -= 1;
                signed(r)
            },
            RejectReason::DuplicateSlot,
        ),
        (
            "sequence gap",
            |f| {
                let mut r = f.unsigned_next(992, 10_500, 3_000);
                r.seq += 1;
                signed(r)
            },
            RejectReason::SequenceGap,
        ),
        (
            "replayed sequence number",
            |f| {
                let mut r = f.unsigned_next(992, 10_500, 3_000);
                r.seq -= 1;
                signed(r)
            },
            RejectReason::SequenceGap,
        ),
        (
            "broken chain",
            |f| {
                let mut r = f.unsigned_next(992, 10_500, 3_000);
                r.prev_hash[0] ^= 1;
                signed(r)
            },
            RejectReason::ChainBroken,
        ),
        (
            "slot before the tip",
            |f| signed(f.unsigned_next(989, 10_500, 3_000)),
            RejectReason::SlotOutOfOrder,
        ),
        (
            "swapped meter",
            |f| {
                let mut r = f.unsigned_next(992, 10_500, 3_000);
                r.meter_serial = "SN-0002".into();
                signed(r)
            },
            RejectReason::MeterSerialChanged,
        ),
        (
            "register rollback",
            |f| f.next(992, 10_100, 0),
            RejectReason::RegisterRollback,
        ),
        (
            "night-time production above capacity",
            |f| f.next(992, 10_850, 0),
            RejectReason::ExceedsCapacity,
        ),
        (
            "energy disagrees with average power",
            |f| f.next(992, 10_500, 1_000),
            RejectReason::EnergyMismatch,
        ),
    ];
    for (name, lie, want) in table {
        let mut f = Fixture::new();
        let reading = lie(&mut f);
        assert_eq!(f.verify(&reading).map(|v| v.delta_wh), Err(*want), "{name}");
    }
}

#[test]
fn duplicates_and_banned_slots() {
    let mut f = Fixture::new();
    let third = f.next(992, 10_500, 3_000);
    let verdict = f.verify(&third);
    f.chain.record(&third, &verdict);
    assert_eq!(f.verify(&third).map(|_| ()), Err(RejectReason::Duplicate));

    // A conflicting report for slot 992 bans it and revokes its 250 Wh, once.
    let mut conflicting = third.reading.clone();
    conflicting.avg_w += 1;
    let conflicting = signed(conflicting);
    let verdict = f.verify(&conflicting);
    assert_eq!(
        verdict.as_ref().map(|_| ()).map_err(|r| *r),
        Err(RejectReason::DuplicateSlot)
    );
    assert_eq!(f.chain.record(&conflicting, &verdict), 250);
    assert_eq!(f.chain.record(&conflicting, &verdict), 0);
    assert_eq!(
        f.verify(&third).map(|_| ()),
        Err(RejectReason::DuplicateSlot)
    );

    // The chain itself continues from the banned slot's reading.
    let fourth = f.next(993, 10_750, 3_000);
    assert_eq!(f.verify(&fourth).map(|v| v.delta_wh), Ok(250));

    f.chain.prune(
        &f.params,
        f.params.slot_start_ms(992 + f.params.window_slots + 1),
    );
    assert!(f.chain.banned.is_empty() && f.chain.slots.is_empty());
}

#[test]
fn recorded_replacement_allows_new_serial_and_register() {
    let mut f = Fixture::new();
    f.replaced_at_slot = Some(992);
    let mut r = f.unsigned_next(992, 3, 0);
    r.meter_serial = "SN-0002".into();
    assert_eq!(f.verify(&signed(r)).map(|v| v.delta_wh), Ok(0));
    // A replacement recorded for an earlier interval does not excuse a later rollback.
    f.replaced_at_slot = Some(991);
    let rollback = signed(f.unsigned_next(992, 3, 0));
    assert_eq!(
        f.verify(&rollback).map(|_| ()),
        Err(RejectReason::RegisterRollback)
    );
}

#[test]
fn first_reading_must_start_the_chain() {
    let f = Fixture {
        chain: MeterChain::default(),
        ..Fixture::new()
    };
    let mut r = f.unsigned_next(992, 10_500, 0);
    r.seq = 0;
    r.prev_hash = [1; 32];
    assert_eq!(
        f.verify(&signed(r.clone())).map(|_| ()),
        Err(RejectReason::ChainBroken)
    );
    r.prev_hash = GENESIS_HASH;
    r.seq = 7;
    assert_eq!(
        f.verify(&signed(r.clone())).map(|_| ()),
        Err(RejectReason::SequenceGap)
    );
    r.seq = 0;
    assert_eq!(f.verify(&signed(r)).map(|v| v.delta_wh), Ok(0));
}

#[test]
fn chain_head_persists_and_refuses_a_used_slot() {
    let mut head = ChainHead::default();
    let first = head.next(&key(), SERIAL, 5, 0, 0, 1).expect("first");
    assert_eq!(first.reading.prev_hash, GENESIS_HASH);
    assert!(head.next(&key(), SERIAL, 5, 0, 0, 1).is_none());
    let restored = ChainHead::decode(&head.encode()).expect("round trip");
    assert_eq!(restored, head);
    assert_eq!(restored.prev_hash, first.hash());
    assert!(ChainHead::decode(&[0; 3]).is_err());
}

/// The solar rules on a real calendar: a 5 kW production meter in Amsterdam on
/// 2026-12-03 (sunrise 07:35 UTC, solar noon 11:40 UTC at 15.5°, sunset 15:45 UTC),
/// 5-minute slots.
mod physics {
    use super::*;

    /// 2026-12-03 00:00 UTC.
    const DAY_MS: u64 = 1_796_256_000_000;
    const SLOT_MS: u64 = 300_000;
    const HOUR_SLOTS: u64 = 12;

    fn slot_at(hour: u64, minute: u64) -> u64 {
        (DAY_MS + hour * 3_600_000 + minute * 60_000) / SLOT_MS
    }

    struct Meter {
        params: MeterParams,
        serials: BTreeMap<String, PublicKey>,
        chain: MeterChain,
        head: ChainHead,
        wh: u64,
        slot: u64,
        direction: MeterDirection,
        site: Option<Site>,
    }

    impl Meter {
        /// A chain whose tip is a reading at `slot` (register 1 000 000 Wh).
        fn at(slot: u64) -> Self {
            let mut meter = Self {
                params: MeterParams::default(),
                serials: [(SERIAL.to_owned(), key().public())].into_iter().collect(),
                chain: MeterChain::default(),
                head: ChainHead::default(),
                wh: 1_000_000,
                slot,
                direction: MeterDirection::Production,
                site: Site::new(52.37, 4.89),
            };
            let first = meter.reading(slot, 0);
            let verdict = meter.verify(&first);
            assert_eq!(verdict.as_ref().map(|v| v.delta_wh), Ok(0), "baseline");
            meter.chain.record(&first, &verdict);
            meter
        }

        /// The next reading: `delta_wh` more on the register at `slot`, with the average
        /// power that matches it (so only the energy rules can object).
        fn reading(&mut self, slot: u64, delta_wh: u64) -> SignedReading {
            let elapsed_ms = (slot - self.slot).max(1) * SLOT_MS;
            let avg_w = delta_wh * 3_600_000 / elapsed_ms;
            self.wh += delta_wh;
            self.slot = slot;
            self.head
                .next(&key(), SERIAL, slot, self.wh, avg_w, 30)
                .expect("slot advances")
        }

        fn verify(&self, signed: &SignedReading) -> Result<VerifiedReading, RejectReason> {
            verify_installed(
                signed,
                &self.chain,
                &MeterContext {
                    params: &self.params,
                    rated_capacity_w: CAPACITY_W,
                    now_ms: self.params.slot_start_ms(signed.reading.slot) + 1_000,
                    serials: &self.serials,
                    replaced_at_slot: None,
                },
                &Installation {
                    direction: self.direction,
                    site: self.site,
                },
            )
        }

        /// Reads `delta_wh` at `slot` and records the verdict; the energy credited.
        fn read(&mut self, slot: u64, delta_wh: u64) -> Result<u64, RejectReason> {
            let signed = self.reading(slot, delta_wh);
            let verdict = self.verify(&signed);
            self.chain.record(&signed, &verdict);
            verdict.map(|v| v.delta_wh)
        }

        /// The clear-sky bound of the interval [`from`, `to`) the verifier integrates.
        fn bound(&self, from: u64, to: u64) -> u64 {
            Site::new(52.37, 4.89)
                .and_then(|site| {
                    site.energy_bound_wh(
                        CAPACITY_W,
                        from * SLOT_MS,
                        to * SLOT_MS,
                        self.params.clear_sky_margin_percent,
                        self.params.capacity_buffer_percent,
                    )
                })
                .expect("in range")
                .ceil() as u64
        }
    }

    type Setup = fn() -> (Meter, u64, u64);

    #[test]
    fn honest_production_then_one_lie_per_row() {
        fn noon() -> u64 {
            slot_at(11, 40)
        }
        // (name, setup → (meter, slot of the next reading, its ΔWh), verdict)
        let table: &[(&str, Setup, Result<u64, RejectReason>)] = &[
            (
                "honest: a south roof at December noon, 3 kW for 5 min",
                || (Meter::at(noon()), noon() + 1, 250),
                Ok(250),
            ),
            (
                "honest: twilight trickle 5 min after sunset",
                || (Meter::at(slot_at(15, 35)), slot_at(15, 40), 5),
                Ok(5),
            ),
            (
                "honest: register rounding ticks over at night",
                || (Meter::at(slot_at(2, 0)), slot_at(2, 5), 1),
                Ok(1),
            ),
            (
                "honest: a consumption meter draws at night",
                || {
                    let mut m = Meter::at(slot_at(2, 0));
                    m.direction = MeterDirection::Consumption;
                    (m, slot_at(2, 5), 400)
                },
                Ok(400),
            ),
            (
                "honest: a 4-hour outage read back after it",
                || (Meter::at(slot_at(8, 0)), slot_at(12, 0), 6_000),
                Ok(6_000),
            ),
            (
                "night-time production (under the capacity bound)",
                || (Meter::at(slot_at(2, 0)), slot_at(2, 5), 400),
                Err(RejectReason::ProductionAtNight),
            ),
            (
                "a night-long gap filled with energy",
                || (Meter::at(slot_at(0, 0)), slot_at(6, 0), 20_000),
                Err(RejectReason::ProductionAtNight),
            ),
            (
                "above clear sky at noon (6 kW of 5 kW, inside 135 %)",
                || (Meter::at(noon()), noon() + 1, 500),
                Err(RejectReason::AboveClearSky),
            ),
            (
                "gap filled at 1.3 × nameplate over 4 daylight hours",
                || (Meter::at(slot_at(8, 0)), slot_at(12, 0), 26_000),
                Err(RejectReason::AboveClearSky),
            ),
            (
                "1.35 × nameplate × 24 h in one link",
                || (Meter::at(noon() - 24 * HOUR_SLOTS), noon(), 162_000),
                Err(RejectReason::AboveClearSky),
            ),
            (
                "a production meter without a location",
                || {
                    let mut m = Meter::at(noon());
                    m.site = None;
                    (m, noon() + 1, 250)
                },
                Err(RejectReason::MissingLocation),
            ),
        ];
        for (name, setup, want) in table {
            let (mut meter, slot, delta) = setup();
            let signed = meter.reading(slot, delta);
            assert_eq!(meter.verify(&signed).map(|v| v.delta_wh), *want, "{name}");
        }
    }

    #[test]
    fn a_gap_earns_at_most_the_integral_of_its_slots() {
        let (from, to) = (slot_at(8, 0), slot_at(12, 0));
        let bound = Meter::at(from).bound(from, to);
        // 4 winter hours on 5 kW: far below the 27 kWh that capacity × time allowed.
        assert!((8_000..20_000).contains(&bound), "{bound}");
        assert_eq!(Meter::at(from).read(to, bound), Ok(bound));
        assert_eq!(
            Meter::at(from).read(to, bound + 3),
            Err(RejectReason::AboveClearSky)
        );
    }

    #[test]
    fn a_refused_night_reading_moves_the_chain_on_but_earns_nothing() {
        let mut meter = Meter::at(slot_at(2, 0));
        assert_eq!(
            meter.read(slot_at(2, 5), 400),
            Err(RejectReason::ProductionAtNight)
        );
        // The inflated register is the new baseline: the next link proves only its own
        // interval, and a resend of the refused reading is a duplicate, not a new lie.
        assert_eq!(
            meter.chain.tip.as_ref().map(|t| t.slot),
            Some(slot_at(2, 5))
        );
        assert_eq!(meter.read(slot_at(2, 10), 0), Ok(0));
        let noon = slot_at(11, 40);
        assert_eq!(meter.read(noon, 200), Ok(200));
    }

    #[test]
    fn every_slot_inside_the_clear_sky_bound_still_cannot_beat_the_day() {
        // A liar claims 95 % of each slot's bound, 1.19 × clear sky: every slot passes
        // its own bound, the day does not.
        let sunrise = slot_at(7, 30);
        let mut meter = Meter::at(sunrise);
        let mut credited = 0;
        let mut refused = None;
        for slot in sunrise + 1..slot_at(16, 0) {
            let claim = meter.bound(slot - 1, slot) * 95 / 100;
            match meter.read(slot, claim) {
                Ok(wh) => credited += wh,
                Err(reason) => {
                    refused = Some(reason);
                    break;
                }
            }
        }
        assert_eq!(refused, Some(RejectReason::AboveDailyYield));
        let day = meter.chain.day.expect("day recorded");
        assert!(credited <= day.bound_wh, "{credited} > {}", day.bound_wh);
        assert_eq!(credited, day.credited_wh);
        // An honest fixed roof on the same day, 60 % of the bound per slot, is paid in
        // full from sunrise to sunset.
        let mut honest = Meter::at(sunrise);
        for slot in sunrise + 1..slot_at(16, 0) {
            let claim = honest.bound(slot - 1, slot) * 60 / 100;
            assert_eq!(honest.read(slot, claim), Ok(claim), "slot {slot}");
        }
    }

    #[test]
    fn the_day_counter_restarts_at_local_midnight() {
        let mut meter = Meter::at(slot_at(11, 0));
        assert_eq!(meter.read(slot_at(11, 5), 200), Ok(200));
        assert_eq!(meter.chain.day.map(|d| d.credited_wh), Some(200));
        // Next morning: a new day, counted from zero.
        let tomorrow = slot_at(11, 0) + 24 * HOUR_SLOTS;
        assert_eq!(meter.read(tomorrow, 5_000), Ok(5_000));
        let day = meter.chain.day.expect("day");
        assert!(day.credited_wh <= 5_000 && day.credited_wh > 0, "{day:?}");
    }
}
