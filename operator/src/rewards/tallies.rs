//! Node CRs → the reward math's [`NodeTally`] for one epoch (pure).
//!
//! What the verifier records today and how it becomes shares:
//! - storage: proven bytes × proven periods. Every accepted proof adds its sector's size to
//!   `workUnits` (so `workUnits` are the epoch's proven byte-periods, whatever the sector
//!   size); `proofs.storage` adds the byte-periods missed and declared faulty, and the
//!   persisted reputation and disqualification as of the epoch's last write. Declared
//!   capacity is never read. A tally without `proofs.storage` (written before it existed)
//!   is read as nothing missed at reputation 1.
//! - gpu: the verifier challenges every GpuWorker of a policy in the same global rounds,
//!   sized for the class it claims, and records each passed round's units under that
//!   class (`workUnitsByPart`); a worker is paid in the class that earned most of its
//!   units (ties: the heavier class), when the policy has that class, else in the
//!   policy's `cpu` class (or its lowest-weighted one). Every held round is recorded once:
//!   passed (accepted) or failed (rejected, including `NoResponse` for a round missed
//!   offline or answered too late), so `availability = accepted / (accepted + rejected)`
//!   is passed rounds / held rounds, and answering 1 of 60 rounds pays 1/60.
//! - hotspot: `workUnitsByPart.beacon` and `.witness` feed the beacon and witness sub-pools
//!   (a tally without parts counts wholly as witness units).
//! - meter: `workUnits` are verified Wh; a consumption meter's earn nothing unless the
//!   policy pays consumption (`spec.meter.payConsumption`, default false).
//!
//! A node without an accepted proof in the epoch has no tally: no verified work, no shares.

use depin_crds::{NodeStatus, ProofTally, RewardSummary};
use depin_proof::reward::{Decimal, NodeKind, NodeTally, RewardPolicy, Work};
use std::collections::BTreeMap;

/// What the reward controller reads from one node CR.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeRecord {
    /// Namespace of the CR.
    pub namespace: String,
    /// Name of the CR.
    pub name: String,
    /// Its kind.
    pub kind: Option<NodeKind>,
    /// MeterBridge only: the meter measures consumption (`spec.direction`).
    pub consumption: bool,
    /// Its status (proofs, previousProofs, rewards).
    pub status: NodeStatus,
}

impl NodeRecord {
    /// The node id in manifests and claims: `<namespace>/<name>`.
    pub fn id(&self) -> String {
        node_id(&self.namespace, &self.name)
    }
}

/// The node id of `namespace/name`.
pub fn node_id(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The frozen tally of wall-clock epoch `epoch`, from `proofs`, `previousProofs` or
/// `unclosedProofs` (epochs the verifier rolled past before they were closed).
pub fn proofs_in(status: &NodeStatus, epoch: u64) -> Option<&ProofTally> {
    [status.proofs.as_ref(), status.previous_proofs.as_ref()]
        .into_iter()
        .flatten()
        .chain(&status.unclosed_proofs)
        .find(|t| t.epoch == epoch)
}

/// The GPU class every worker is paid as until the verifier records one (module docs).
pub fn gpu_class(policy: &RewardPolicy) -> String {
    let classes = policy.gpu_classes();
    if classes.contains_key("cpu") {
        return "cpu".into();
    }
    classes
        .iter()
        .min_by_key(|(_, weight)| **weight)
        .map_or_else(|| "cpu".into(), |(name, _)| name.clone())
}

/// `record`'s tally for wall-clock epoch `epoch`, or None without verified work there.
pub fn tally_for(record: &NodeRecord, epoch: u64, policy: &RewardPolicy) -> Option<NodeTally> {
    tally_with_classes(record, epoch, &gpu_class(policy), policy.gpu_classes())
}

/// Which meters a policy pays (`spec.meter` of the RewardPolicy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeterPay {
    /// Consumption meters' verified Wh earn shares too (`payConsumption`).
    pub consumption: bool,
}

impl MeterPay {
    /// The choice a RewardPolicy spec makes.
    pub fn of(spec: &depin_crds::RewardPolicySpec) -> Self {
        Self {
            consumption: spec.pays_consumption(),
        }
    }
}

/// [`tally_for`] under the policy's meter choice: a consumption meter has no tally (earns
/// nothing) unless the policy pays consumption; production and other kinds as usual.
pub fn tally_paid(
    record: &NodeRecord,
    epoch: u64,
    policy: &RewardPolicy,
    meter: MeterPay,
) -> Option<NodeTally> {
    if record.consumption && !meter.consumption {
        return None;
    }
    tally_for(record, epoch, policy)
}

/// The GPU class that earned most of the epoch's work units (ties: the heavier class),
/// when the policy pays it; the verifier records units by the class passed.
fn passed_class(proofs: &ProofTally, policy_classes: &BTreeMap<String, Decimal>) -> Option<String> {
    policy_classes
        .iter()
        .filter_map(|(class, weight)| {
            let units = proofs.work_units_by_part.get(class)?.parse::<u128>().ok()?;
            Some(((units, *weight), class))
        })
        .max_by_key(|(key, _)| *key)
        .map(|(_, c)| c.clone())
}

/// [`tally_for`] with the classes the policy pays: a GPU is paid in the class it passed
/// when the policy has it, else in `gpu_class`.
fn tally_with_classes(
    record: &NodeRecord,
    epoch: u64,
    gpu_class: &str,
    policy_classes: &BTreeMap<String, Decimal>,
) -> Option<NodeTally> {
    let proofs = proofs_in(&record.status, epoch)?;
    if proofs.accepted == 0 {
        return None;
    }
    let units = || -> u128 {
        proofs
            .work_units
            .as_deref()
            .and_then(|w| w.parse().ok())
            .unwrap_or(0)
    };
    // accepted ≥ 1, so the denominator is never zero and the ratio is in (0, 1].
    let success = Decimal::from_ratio(
        u128::from(proofs.accepted),
        u128::from(proofs.accepted) + u128::from(proofs.rejected),
    )?;
    let work = match record.kind? {
        NodeKind::Storage => storage_work(proofs, units()),
        NodeKind::Gpu => Work::Gpu {
            class: passed_class(proofs, policy_classes).unwrap_or_else(|| gpu_class.to_string()),
            availability: success,
        },
        NodeKind::Hotspot => {
            let part = |name: &str| {
                proofs
                    .work_units_by_part
                    .get(name)
                    .and_then(|w| w.parse::<u128>().ok())
            };
            // Tallies written before parts were recorded count as witness units.
            let (beacon, witness) = match (part("beacon"), part("witness")) {
                (None, None) => (0, units()),
                (b, w) => (b.unwrap_or(0), w.unwrap_or(0)),
            };
            let int = |u: u128| Decimal::from_int(u64::try_from(u).unwrap_or(u64::MAX));
            Work::Hotspot {
                beacon_units: int(beacon),
                witness_units: int(witness),
            }
        }
        NodeKind::Meter => Work::Meter {
            verified_wh: u64::try_from(units()).unwrap_or(u64::MAX),
        },
    };
    Some(NodeTally::new(record.id(), work))
}

/// A storage tally as work: proven byte-periods from `workUnits`, the rest from
/// `proofs.storage`. An unreadable number (hand-edited status) reads as the worst case for
/// the node: misses as all proven bytes, reputation as 0.
fn storage_work(proofs: &ProofTally, proven: u128) -> Work {
    let Some(storage) = &proofs.storage else {
        return Work::proven_storage(proven, Decimal::ONE);
    };
    let bytes = |text: &str| text.parse::<u128>().unwrap_or(proven);
    let reputation = Decimal::parse(&storage.reputation)
        .ok()
        .filter(|r| *r <= Decimal::ONE)
        .unwrap_or(Decimal::ZERO);
    Work::Storage {
        proven_byte_periods: proven,
        missed_byte_periods: bytes(&storage.missed_byte_periods),
        faulted_byte_periods: bytes(&storage.faulted_byte_periods),
        reputation,
        disqualified: storage.disqualified,
    }
}

/// Whether a node's `status.rewards` still needs epoch `n`'s payment written: not when it
/// already records `n` or a later epoch (a resumed close must not pay twice).
pub fn needs_reward_write(rewards: Option<&RewardSummary>, n: u64) -> bool {
    rewards.is_none_or(|r| r.last_epoch < n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_proof::reward::{KindWeightsSpec, PolicySpec};

    fn policy(classes: &[(&str, &str)]) -> RewardPolicy {
        RewardPolicy::validate(&PolicySpec {
            epoch_seconds: 20,
            token_decimals: 6,
            initial_per_epoch: "1000000".into(),
            halving_every_epochs: 10,
            max_supply: None,
            pools: KindWeightsSpec {
                hotspot: "0.25".into(),
                storage: "0.25".into(),
                gpu: "0.25".into(),
                meter: "0.25".into(),
            },
            hotspot_split: None,
            gpu_classes: classes
                .iter()
                .map(|(n, w)| depin_proof::reward::GpuClassSpec {
                    name: (*n).into(),
                    weight: (*w).into(),
                })
                .collect(),
            burn_and_mint: None,
        })
        .expect("valid policy")
    }

    fn tally(epoch: u64, accepted: u64, rejected: u64, units: &str) -> ProofTally {
        ProofTally {
            epoch,
            accepted,
            rejected,
            work_units: Some(units.into()),
            ..ProofTally::default()
        }
    }

    fn record(kind: NodeKind, proofs: Option<ProofTally>, prev: Option<ProofTally>) -> NodeRecord {
        NodeRecord {
            namespace: "fleet".into(),
            name: "n1".into(),
            kind: Some(kind),
            consumption: false,
            status: NodeStatus {
                proofs,
                previous_proofs: prev,
                ..NodeStatus::default()
            },
        }
    }

    #[test]
    fn an_epoch_rolled_past_before_its_close_is_still_found() {
        let mut r = record(
            NodeKind::Gpu,
            Some(tally(9, 1, 0, "1")),
            Some(tally(8, 1, 0, "2")),
        );
        r.status.unclosed_proofs = vec![tally(6, 4, 0, "40"), tally(7, 5, 0, "50")];
        let found = |epoch| proofs_in(&r.status, epoch).map(|t| t.accepted);
        assert_eq!(
            [found(6), found(7), found(8), found(9), found(5)],
            [Some(4), Some(5), Some(1), Some(1), None]
        );
    }

    #[test]
    fn tallies_map_to_work() {
        let d = |s: &str| Decimal::parse(s).expect("decimal");
        let classes = policy(&[("cpu", "0.1"), ("entry", "1"), ("flagship", "8")]);
        // (record, wall epoch) → expected work (None: no tally)
        let table: Vec<(NodeRecord, u64, Option<Work>)> = vec![
            (
                // A tally from before proofs.storage: nothing missed, reputation 1.
                record(NodeKind::Storage, Some(tally(7, 3, 1, "99")), None),
                7,
                Some(Work::proven_storage(99, Decimal::ONE)),
            ),
            // The closing epoch already rolled into previousProofs.
            (
                record(
                    NodeKind::Gpu,
                    Some(tally(8, 1, 0, "5")),
                    Some(tally(7, 4, 0, "8")),
                ),
                7,
                Some(Work::Gpu {
                    class: "cpu".into(),
                    availability: d("1"),
                }),
            ),
            (
                record(NodeKind::Meter, Some(tally(7, 2, 0, "1500")), None),
                7,
                Some(Work::Meter { verified_wh: 1500 }),
            ),
            (
                record(NodeKind::Hotspot, Some(tally(7, 2, 0, "12")), None),
                7,
                Some(Work::Hotspot {
                    beacon_units: Decimal::ZERO,
                    witness_units: d("12"),
                }),
            ),
            // Beacon and witness units recorded apart feed their sub-pools.
            (
                record(
                    NodeKind::Hotspot,
                    Some(ProofTally {
                        work_units_by_part: [("beacon", "4"), ("witness", "8")]
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        ..tally(7, 3, 0, "12")
                    }),
                    None,
                ),
                7,
                Some(Work::Hotspot {
                    beacon_units: d("4"),
                    witness_units: d("8"),
                }),
            ),
            // Paid in the class that earned most units (ties go to the heavier class).
            (
                record(
                    NodeKind::Gpu,
                    Some(ProofTally {
                        work_units_by_part: [("cpu", "9"), ("entry", "9"), ("flagship", "1")]
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        ..tally(7, 3, 1, "19")
                    }),
                    None,
                ),
                7,
                Some(Work::Gpu {
                    class: "entry".into(),
                    availability: d("0.75"),
                }),
            ),
            // 1 of 60 rounds passed, 59 missed (NoResponse) or failed: availability 1/60.
            (
                record(
                    NodeKind::Gpu,
                    Some(ProofTally {
                        work_units_by_part: [("flagship".to_string(), "5".to_string())].into(),
                        ..tally(7, 1, 59, "5")
                    }),
                    None,
                ),
                7,
                Some(Work::Gpu {
                    class: "flagship".into(),
                    availability: Decimal::from_ratio(1, 60).expect("ratio"),
                }),
            ),
            // Units in a class the policy does not pay: paid as its cpu class.
            (
                record(
                    NodeKind::Gpu,
                    Some(ProofTally {
                        work_units_by_part: [("mine".to_string(), "5".to_string())].into(),
                        ..tally(7, 2, 0, "5")
                    }),
                    None,
                ),
                7,
                Some(Work::Gpu {
                    class: "cpu".into(),
                    availability: d("1"),
                }),
            ),
            // Only rejections: no verified work.
            (
                record(NodeKind::Storage, Some(tally(7, 0, 5, "0")), None),
                7,
                None,
            ),
            // The epoch is gone from both fields (operator was down two epochs).
            (
                record(
                    NodeKind::Storage,
                    Some(tally(9, 1, 0, "1")),
                    Some(tally(8, 1, 0, "1")),
                ),
                7,
                None,
            ),
            // No status at all.
            (record(NodeKind::Gpu, None, None), 7, None),
        ];
        for (i, (rec, epoch, want)) in table.iter().enumerate() {
            let got = tally_with_classes(rec, *epoch, "cpu", classes.gpu_classes());
            assert_eq!(got.as_ref().map(|t| &t.work), want.as_ref(), "row {i}");
            if let Some(t) = got {
                assert_eq!(t.node, "fleet/n1");
                assert_eq!(t.multiplier, Decimal::ONE);
            }
        }
    }

    /// A GPU record that passed `passed` of `held` rounds in `class`, the rest failed
    /// with `reason` (NoResponse: missed; TooSlow: answered late for the class).
    fn gpu_rounds(name: &str, class: &str, passed: u64, held: u64, reason: &str) -> NodeRecord {
        let mut tally = tally(7, passed, held - passed, &passed.to_string());
        tally.work_units_by_part = [(class.to_string(), passed.to_string())].into();
        tally.rejected_by_reason = [(reason.to_string(), held - passed)].into();
        NodeRecord {
            name: name.into(),
            ..record(NodeKind::Gpu, Some(tally), None)
        }
    }

    #[test]
    fn closed_epoch_pays_gpu_workers_by_passed_rounds() {
        let policy = policy(&[("cpu", "0.1"), ("flagship", "8")]);
        let reward = |records: &[NodeRecord], name: &str| -> u128 {
            let tallies: Vec<NodeTally> = records
                .iter()
                .filter_map(|r| tally_for(r, 7, &policy))
                .collect();
            let closed =
                depin_proof::reward::close_epoch(&policy, 7, &tallies, &Default::default(), &[])
                    .expect("closes");
            closed
                .nodes
                .iter()
                .find(|n| n.node == format!("fleet/{name}"))
                .map_or(0, |n| n.reward)
        };
        let honest = gpu_rounds("honest", "flagship", 60, 60, "NoResponse");
        let alone = reward(std::slice::from_ref(&honest), "honest");
        let fleet = [
            honest.clone(),
            // Answers 1 of 60 rounds: availability 1/60.
            gpu_rounds("one-in-sixty", "flagship", 1, 60, "NoResponse"),
            // A CPU claiming flagship: every round TooSlow, nothing passed.
            gpu_rounds("cpu-claims-flagship", "flagship", 0, 60, "TooSlow"),
            // One device behind three identities: each passes a third of the rounds.
            gpu_rounds("sybil-a", "flagship", 20, 60, "NoResponse"),
            gpu_rounds("sybil-b", "flagship", 20, 60, "NoResponse"),
            gpu_rounds("sybil-c", "flagship", 20, 60, "NoResponse"),
        ];
        let honest_paid = reward(&fleet, "honest");
        let cheat = reward(&fleet, "one-in-sixty");
        // 1/60 of an honest share, within a base unit of rounding.
        assert!(
            cheat * 60 <= honest_paid + 60 && cheat * 60 + 60 >= honest_paid,
            "{cheat} vs {honest_paid}"
        );
        assert_eq!(reward(&fleet, "cpu-claims-flagship"), 0);
        let sybil: u128 = ["sybil-a", "sybil-b", "sybil-c"]
            .iter()
            .map(|n| reward(&fleet, n))
            .sum();
        // Three identities on one device earn what one honest device does.
        assert!(
            sybil <= honest_paid + 3 && sybil + 3 >= honest_paid,
            "{sybil} vs {honest_paid}"
        );
        // The honest worker keeps its share of the pool: 1 of (1 + 1/60 + 1) shares.
        assert!(
            honest_paid * 121 >= alone * 60 - 121,
            "{honest_paid} vs {alone}"
        );
    }

    #[test]
    fn storage_tallies_pay_proven_byte_periods_not_declared_capacity() {
        const GIB: u128 = 1 << 30;
        let storage = |missed: &str, faulted: &str, reputation: &str, disqualified| {
            Some(depin_crds::StorageTally {
                missed: 1,
                faulted: 1,
                missed_byte_periods: missed.into(),
                faulted_byte_periods: faulted.into(),
                reputation: reputation.into(),
                disqualified,
                ..depin_crds::StorageTally::default()
            })
        };
        let with = |units: u128, s: Option<depin_crds::StorageTally>| ProofTally {
            storage: s,
            ..tally(7, 4, 0, &units.to_string())
        };
        let policy = policy(&[("cpu", "1")]);
        // (tally, expected storage shares of the closed epoch)
        let table: Vec<(ProofTally, &str)> = vec![
            // Honest: 2 GiB proven for 2 periods, as 4 × 1 GiB proofs or 64 × 64 MiB ones:
            // the same work units, the same shares.
            (with(4 * GIB, storage("0", "0", "1", false)), "4"),
            (
                with(
                    (0..64).map(|_| 64u128 << 20).sum(),
                    storage("0", "0", "1", false),
                ),
                "4",
            ),
            // Half a GiB-period missed costs one, declared faulty costs half of one.
            (
                with(4 * GIB, storage(&(GIB / 2).to_string(), "0", "1", false)),
                "3",
            ),
            (
                with(4 * GIB, storage("0", &(GIB / 2).to_string(), "1", false)),
                "3.5",
            ),
            // The persisted reputation scales the share.
            (with(4 * GIB, storage("0", "0", "0.5", false)), "2"),
            // Disqualified: nothing.
            (with(4 * GIB, storage("0", "0", "1", true)), "0"),
            // Unreadable numbers read as the worst case for the node.
            (with(4 * GIB, storage("lots", "0", "1", false)), "0"),
            (with(4 * GIB, storage("0", "0", "high", false)), "0"),
        ];
        for (i, (proofs, want)) in table.into_iter().enumerate() {
            let rec = record(NodeKind::Storage, Some(proofs), None);
            let tally = tally_for(&rec, 7, &policy).expect("a tally");
            let closed =
                depin_proof::reward::close_epoch(&policy, 7, &[tally], &Default::default(), &[])
                    .expect("closes");
            let storage_pool = closed
                .pools
                .iter()
                .find(|p| p.pool == depin_proof::reward::Pool::Storage)
                .expect("storage pool");
            assert_eq!(
                storage_pool.total_shares,
                Decimal::parse(want).expect("decimal"),
                "row {i}"
            );
        }
    }

    #[test]
    fn consumption_meters_are_paid_only_by_choice() {
        let p = policy(&[("cpu", "1")]);
        let production = record(NodeKind::Meter, Some(tally(7, 2, 0, "1500")), None);
        let consumption = NodeRecord {
            consumption: true,
            ..production.clone()
        };
        let paid = Some(Work::Meter { verified_wh: 1500 });
        // (record, policy pays consumption) → work
        let table = [
            (&production, false, paid.clone()),
            (&production, true, paid.clone()),
            (&consumption, false, None),
            (&consumption, true, paid),
        ];
        for (i, (rec, pays, want)) in table.into_iter().enumerate() {
            let got = tally_paid(rec, 7, &p, MeterPay { consumption: pays });
            assert_eq!(got.map(|t| t.work), want, "row {i}");
        }
        let spec = |yaml: &str| {
            let text = include_str!("../../../examples/minimal-fleet.yaml");
            let doc = text.split("\n---\n").next().expect("policy document");
            let mut crd: depin_crds::RewardPolicy = serde_yaml::from_str(doc).expect("parses");
            crd.spec.meter = serde_yaml::from_str(yaml).expect("meter rules");
            MeterPay::of(&crd.spec)
        };
        assert_eq!(spec("null"), MeterPay { consumption: false });
        assert_eq!(spec("{}"), MeterPay { consumption: false });
        assert_eq!(
            spec("{payConsumption: true}"),
            MeterPay { consumption: true }
        );
    }

    #[test]
    fn gpu_class_falls_back_to_the_cheapest() {
        assert_eq!(gpu_class(&policy(&[("cpu", "0.1"), ("t4", "1")])), "cpu");
        assert_eq!(gpu_class(&policy(&[("a100", "4"), ("t4", "1")])), "t4");
    }

    #[test]
    fn a_paid_epoch_is_not_written_twice() {
        let paid = |last_epoch| RewardSummary {
            last_epoch,
            last_epoch_reward: "5".into(),
            cumulative: "9".into(),
        };
        // (stored summary, epoch being written) → write?
        let table = [
            (None, 0, true),
            (Some(paid(0)), 0, false),
            (Some(paid(2)), 3, true),
            (Some(paid(3)), 3, false),
            (Some(paid(4)), 3, false),
        ];
        for (i, (stored, n, want)) in table.into_iter().enumerate() {
            assert_eq!(needs_reward_write(stored.as_ref(), n), want, "row {i}");
        }
    }
}
