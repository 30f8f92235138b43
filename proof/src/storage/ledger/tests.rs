use super::*;

const MIB: u64 = 1 << 20;

fn params() -> StorageParams {
    // 60 s periods of 6 deadlines (10 s each): sector s is due in deadline s mod 6.
    StorageParams {
        proving_period_ms: 60_000,
        deadlines_per_period: 6,
        ..StorageParams::default()
    }
}

fn commitment(sector: u64, bytes: u64, root: u8) -> SectorCommitment {
    SectorCommitment {
        sector: SectorId(sector),
        sector_bytes: bytes,
        leaf_size: 16 * 1024,
        leaf_count: bytes.div_ceil(16 * 1024),
        root: [root; 32],
    }
}

fn limit(capacity: u64, sector: u64) -> CapacityLimit {
    CapacityLimit {
        sector_bytes: sector,
        capacity_bytes: capacity,
    }
}

#[test]
fn commitments_fix_the_root_and_a_new_one_is_a_reset() {
    let rp = ReputationParams::default();
    let lim = limit(4 * MIB, MIB);
    // (commitment, expected outcome); applied in order to one ledger.
    type Row = (SectorCommitment, Result<CommitOutcome, RejectReason>);
    let table: Vec<Row> = vec![
        // Honest: first acceptance, then the same root re-sent on a new session.
        (commitment(0, MIB, 1), Ok(CommitOutcome::New)),
        (commitment(0, MIB, 1), Ok(CommitOutcome::Unchanged)),
        // Lie: a new root for the accepted sector (sparse tree after a challenge).
        (
            commitment(0, MIB, 9),
            Ok(CommitOutcome::Reset {
                previous_root: [1; 32],
            }),
        ),
        // Lie: a sector past what the volume holds (4 MiB / 1 MiB = sectors 0..4).
        (commitment(4, MIB, 1), Err(RejectReason::BeyondCapacity)),
        // Lie: another sector size than the node's.
        (commitment(1, MIB / 2, 1), Err(RejectReason::WrongLeafCount)),
    ];
    let mut ledger = StorageLedger::new(&rp);
    for (i, (c, want)) in table.into_iter().enumerate() {
        assert_eq!(ledger.commit(&c, &lim, 1_000, &rp), want, "row {i}");
    }
    let record = &ledger.sectors[&SectorId(0)];
    assert_eq!(record.commitment.root, [9; 32]);
    assert_eq!((record.resets, record.vetting_left), (1, 1));
    assert!(ledger.reputation.score() < 1.0, "a reset is a failed audit");
    assert_eq!(ledger.sectors.len(), 1);
}

#[test]
fn proofs_against_a_replaced_root_are_refused_and_vetting_pays_nothing() {
    let rp = ReputationParams::default();
    let lim = limit(4 * MIB, MIB);
    let mut ledger = StorageLedger::new(&rp);
    ledger
        .commit(&commitment(0, MIB, 1), &lim, 0, &rp)
        .expect("new");
    // Honest: the proof of period 3 against the accepted root pays the sector's size.
    assert_eq!(ledger.record_proof(SectorId(0), 3, &[1; 32]), Ok(MIB));
    // Lies, each with its reason.
    let rows: [(SectorId, u64, Hash, RejectReason); 3] = [
        (SectorId(0), 3, [1; 32], RejectReason::Replay),
        (SectorId(0), 2, [1; 32], RejectReason::Replay),
        (SectorId(2), 4, [1; 32], RejectReason::UnknownSector),
    ];
    for (i, (sector, period, root, reason)) in rows.into_iter().enumerate() {
        assert_eq!(
            ledger.record_proof(sector, period, &root),
            Err(reason),
            "row {i}"
        );
    }
    ledger
        .commit(&commitment(0, MIB, 7), &lim, 0, &rp)
        .expect("reset");
    assert_eq!(
        ledger.record_proof(SectorId(0), 4, &[1; 32]),
        Err(RejectReason::SectorReset),
        "a challenge issued for the old root"
    );
    assert_eq!(
        ledger.record_proof(SectorId(0), 4, &[7; 32]),
        Ok(0),
        "vetting"
    );
    assert_eq!(ledger.record_proof(SectorId(0), 5, &[7; 32]), Ok(MIB));
}

#[test]
fn closed_deadlines_sort_due_sectors_into_passed_faulted_and_missed() {
    let (sp, rp) = (params(), ReputationParams::default());
    let lim = limit(64 * MIB, MIB);
    let mut ledger = StorageLedger::new(&rp);
    // Sectors 0, 6, 12 are due in deadline 0; sector 1 in deadline 1; sector 18 is
    // committed only after period 1's deadline 0 opened (not due there).
    for s in [0, 6, 12, 1] {
        ledger
            .commit(&commitment(s, MIB, 1), &lim, 0, &rp)
            .expect("commit");
    }
    ledger
        .commit(&commitment(18, MIB, 1), &lim, 61_000, &rp)
        .expect("commit");
    ledger
        .record_proof(SectorId(0), 1, &[1; 32])
        .expect("proof");
    ledger.record_fault(SectorId(6), 1).expect("fault");
    let d0 = sp.deadline(1, 0).expect("deadline");
    let account = account_deadline(&ledger, &d0, &sp, 0);
    assert_eq!(
        account.sectors,
        vec![
            (SectorId(0), MIB, DeadlineOutcome::Passed),
            (SectorId(6), MIB, DeadlineOutcome::Faulted),
            (SectorId(12), MIB, DeadlineOutcome::Missed),
        ]
    );
    // The verifier started after the deadline opened: only its passes count.
    let unobserved = account_deadline(&ledger, &d0, &sp, d0.opens_at_ms + 1);
    assert_eq!(
        unobserved.sectors,
        vec![(SectorId(0), MIB, DeadlineOutcome::Passed)]
    );
    // Accounting up to the close of period 1's deadline 1.
    ledger.accounted_through_ms = 60_000;
    let totals = ledger.close_deadlines(&sp, &rp, 0, 80_000);
    assert_eq!(
        totals,
        AccountTotals {
            deadlines: 2,
            passed: 1,
            missed: 2, // sector 12 in deadline 0, sector 1 in deadline 1
            faulted: 1,
            missed_byte_periods: 2 * u128::from(MIB),
            faulted_byte_periods: u128::from(MIB),
            terminated: 0,
        }
    );
    assert_eq!(ledger.accounted_through_ms, 80_000);
    assert_eq!(
        ledger.close_deadlines(&sp, &rp, 0, 80_500),
        AccountTotals::default(),
        "each deadline is accounted once"
    );
    // Two misses are two failed audits; the declared fault is not one.
    let expected = Reputation::new(&rp)
        .after_audit(true, &rp)
        .after_audit(false, &rp)
        .after_audit(false, &rp);
    assert!((ledger.reputation.score() - expected.score()).abs() < 1e-12);
    let counts = ledger.counts();
    assert_eq!((counts.active, counts.faulty), (2, 3));
}

#[test]
fn a_sector_faulty_for_the_fault_limit_is_terminated_and_no_longer_due() {
    let (sp, rp) = (
        params(),
        ReputationParams {
            fault_max_age_periods: 3,
            ..ReputationParams::default()
        },
    );
    let mut ledger = StorageLedger::new(&rp);
    ledger
        .commit(&commitment(0, MIB, 1), &limit(MIB, MIB), 0, &rp)
        .expect("commit");
    let mut terminated = 0;
    for period in 0..3 {
        ledger.record_fault(SectorId(0), period).expect("declared");
        terminated += ledger
            .close_deadlines(&sp, &rp, 0, period * 60_000 + 10_000)
            .terminated;
    }
    assert_eq!(terminated, 1);
    assert_eq!(ledger.counts().terminated, 1);
    assert!(ledger.live_commitments().is_empty());
    assert_eq!(
        ledger.record_proof(SectorId(0), 3, &[1; 32]),
        Err(RejectReason::UnknownSector)
    );
    let later = ledger.close_deadlines(&sp, &rp, 0, 10 * 60_000);
    assert_eq!(
        (later.missed, later.faulted),
        (0, 0),
        "terminated is not due"
    );
    assert_eq!(
        ledger.reputation,
        Reputation::new(&rp),
        "declared: no audit"
    );
    // Re-committing a terminated sector is a fresh start under vetting, not a penalty.
    let outcome = ledger
        .commit(&commitment(0, MIB, 2), &limit(MIB, MIB), 0, &rp)
        .expect("recommit");
    assert!(matches!(outcome, CommitOutcome::Reset { .. }));
    assert_eq!(ledger.reputation, Reputation::new(&rp));
}

#[test]
fn missed_byte_periods_do_not_depend_on_sector_size() {
    // The same 64 MiB missed for one period, as 1 sector of 64 MiB or 64 of 1 MiB.
    let (sp, rp) = (
        StorageParams {
            proving_period_ms: 60_000,
            deadlines_per_period: 1,
            ..StorageParams::default()
        },
        ReputationParams::default(),
    );
    let missed = |sector_bytes: u64| {
        let mut ledger = StorageLedger::new(&rp);
        let lim = limit(64 * MIB, sector_bytes);
        for s in 0..lim.sectors() {
            ledger
                .commit(&commitment(s, sector_bytes, 1), &lim, 0, &rp)
                .expect("commit");
        }
        ledger
            .close_deadlines(&sp, &rp, 0, 60_000)
            .missed_byte_periods
    };
    assert_eq!(missed(64 * MIB), missed(MIB));
    assert_eq!(missed(MIB), u128::from(64 * MIB));
}

#[test]
fn closed_since_walks_period_boundaries_and_is_bounded() {
    let sp = params();
    let got: Vec<(u64, u32)> = closed_since(&sp, 50_000, 75_000)
        .iter()
        .map(|d| (d.period, d.index))
        .collect();
    assert_eq!(got, vec![(0, 5), (1, 0)]);
    assert!(closed_since(&sp, 75_000, 75_000).is_empty());
    assert_eq!(
        closed_since(&sp, 0, 1_000 * 60_000).len() as u64,
        MAX_DEADLINES_PER_CALL
    );
}

#[test]
fn proof_bytes_predicts_record_proof_without_recording() {
    let rp = ReputationParams::default();
    let lim = limit(4 * MIB, MIB);
    let mut ledger = StorageLedger::new(&rp);
    ledger
        .commit(&commitment(0, MIB, 1), &lim, 0, &rp)
        .expect("new");
    ledger
        .commit(&commitment(1, MIB, 1), &lim, 0, &rp)
        .expect("new");
    ledger
        .commit(&commitment(1, MIB, 2), &lim, 0, &rp)
        .expect("reset");
    // (sector, period, root, expected): each checked, then recorded on a clone.
    type Row = (u64, u64, u8, Result<u64, RejectReason>);
    let table: Vec<Row> = vec![
        (0, 5, 1, Ok(MIB)),                          // honest
        (1, 5, 2, Ok(0)),                            // vetting after its reset: unpaid
        (1, 5, 1, Err(RejectReason::SectorReset)),   // against the replaced root
        (3, 5, 1, Err(RejectReason::UnknownSector)), // never committed
    ];
    for (i, (sector, period, root, want)) in table.into_iter().enumerate() {
        let before = ledger.clone();
        let got = ledger.proof_bytes(SectorId(sector), period, &[root; 32]);
        assert_eq!(got, want, "row {i}");
        assert_eq!(ledger, before, "row {i}: proof_bytes records nothing");
        let mut recorded = ledger.clone();
        assert_eq!(
            recorded.record_proof(SectorId(sector), period, &[root; 32]),
            want,
            "row {i}: record_proof agrees"
        );
    }
    ledger
        .record_proof(SectorId(0), 5, &[1; 32])
        .expect("recorded");
    assert_eq!(
        ledger.proof_bytes(SectorId(0), 5, &[1; 32]),
        Err(RejectReason::Replay),
        "a period is paid once (a restarted verifier re-issuing the deadline)"
    );
}

#[test]
fn accounting_that_runs_after_the_next_periods_proof_still_counts_the_pass() {
    // Sector 0 is due in deadline 0 ([0, 10 s) of each 60 s period).
    let rp = ReputationParams::default();
    let sp = params();
    let mut ledger = StorageLedger::new(&rp);
    ledger
        .commit(&commitment(0, MIB, 1), &limit(MIB, MIB), 0, &rp)
        .expect("new");
    // Proven in periods 1 and 2 before any accounting ran (a stalled sweep).
    for period in [1, 2] {
        ledger
            .record_proof(SectorId(0), period, &[1; 32])
            .expect("proven");
    }
    // Honest, then the lie it must not become: period 3 was never proven.
    let totals = ledger.close_deadlines(&sp, &rp, 0, 4 * 60_000);
    assert_eq!(
        (totals.passed, totals.missed),
        (2, 2),
        "periods 1 and 2 passed (proven late-accounted), 0 and 3 missed"
    );
    assert!(
        ledger.sectors[&SectorId(0)].unaccounted_proofs.is_empty(),
        "accounted periods are forgotten"
    );
}
