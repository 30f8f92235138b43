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
        verify_reading(
            signed,
            &self.chain,
            &MeterContext {
                params: &self.params,
                rated_capacity_w: CAPACITY_W,
                now_ms: self.params.slot_start_ms(NOW_SLOT) + 1_000,
                serials: &self.serials,
                replaced_at_slot: self.replaced_at_slot,
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
