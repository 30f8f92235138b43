//! Node CRs → the reward math's [`NodeTally`] for one epoch (pure).
//!
//! What the verifier records today and how it becomes shares:
//! - storage: every accepted proof is one passed proving round over the node's whole
//!   declared capacity, so `proven_gib = spec.capacity in GiB`, `periods_proven = accepted`
//!   and `reputation = accepted / (accepted + rejected)` (a failed round lowers the whole
//!   epoch's shares, Storj-style).
//! - gpu: the verifier records each accepted proof's units under the throughput class it
//!   measured (`workUnitsByPart`); a worker is paid in the class that earned most of its
//!   units, when the policy has that class, else in the policy's `cpu` class (or its
//!   lowest-weighted one): an unmeasured class is never paid as a fast one. `availability = accepted / (accepted +
//!   rejected)`.
//! - hotspot: `workUnitsByPart.beacon` and `.witness` feed the beacon and witness sub-pools
//!   (a tally without parts counts wholly as witness units).
//! - meter: `workUnits` are verified Wh; a consumption meter's earn nothing unless the
//!   policy pays consumption (`spec.meter.payConsumption`, default false).
//!
//! A node without an accepted proof in the epoch has no tally: no verified work, no shares.

use depin_crds::{NodeStatus, ProofTally, RewardSummary};
use depin_proof::reward::{Decimal, NodeKind, NodeTally, RewardPolicy, Work};

/// Bytes per GiB.
const GIB: u128 = 1 << 30;

/// What the reward controller reads from one node CR.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeRecord {
    /// Namespace of the CR.
    pub namespace: String,
    /// Name of the CR.
    pub name: String,
    /// Its kind.
    pub kind: Option<NodeKind>,
    /// Declared capacity in bytes (StorageNode only).
    pub capacity_bytes: Option<u64>,
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

/// The frozen tally of wall-clock epoch `epoch`, from `proofs` or `previousProofs`.
pub fn proofs_in(status: &NodeStatus, epoch: u64) -> Option<&ProofTally> {
    [status.proofs.as_ref(), status.previous_proofs.as_ref()]
        .into_iter()
        .flatten()
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
    let classes: Vec<&str> = policy.gpu_classes().keys().map(String::as_str).collect();
    tally_with_classes(record, epoch, &gpu_class(policy), &classes)
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

/// The GPU class that earned most of the epoch's work units (ties: the faster class),
/// when the policy pays it; the verifier records units by measured class.
fn measured_class(proofs: &ProofTally, policy_classes: &[&str]) -> Option<String> {
    const FASTEST_FIRST: [&str; 5] = ["flagship", "high-end", "mainstream", "entry", "cpu"];
    FASTEST_FIRST
        .iter()
        .filter(|c| policy_classes.contains(c))
        .filter_map(|c| {
            let units = proofs.work_units_by_part.get(*c)?.parse::<u128>().ok()?;
            Some((units, *c))
        })
        // max_by_key keeps the last maximum: iterate slowest-first for ties to the faster.
        .rev()
        .max_by_key(|(units, _)| *units)
        .map(|(_, c)| c.to_string())
}

/// [`tally_for`] with the classes the policy pays: a GPU is paid in the class it was
/// measured in when the policy has it, else in `gpu_class`.
fn tally_with_classes(
    record: &NodeRecord,
    epoch: u64,
    gpu_class: &str,
    policy_classes: &[&str],
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
        NodeKind::Storage => Work::Storage {
            proven_gib: Decimal::from_ratio(u128::from(record.capacity_bytes?), GIB)?,
            periods_proven: proofs.accepted,
            reputation: success,
        },
        NodeKind::Gpu => Work::Gpu {
            class: measured_class(proofs, policy_classes).unwrap_or_else(|| gpu_class.to_string()),
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
            capacity_bytes: Some(2 << 30),
            consumption: false,
            status: NodeStatus {
                proofs,
                previous_proofs: prev,
                ..NodeStatus::default()
            },
        }
    }

    #[test]
    fn tallies_map_to_work() {
        let d = |s: &str| Decimal::parse(s).expect("decimal");
        // (record, wall epoch) → expected work (None: no tally)
        let table: Vec<(NodeRecord, u64, Option<Work>)> = vec![
            (
                record(NodeKind::Storage, Some(tally(7, 3, 1, "99")), None),
                7,
                Some(Work::Storage {
                    proven_gib: d("2"),
                    periods_proven: 3,
                    reputation: d("0.75"),
                }),
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
            // Paid in the class that earned most units (ties go to the faster class).
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
            let got = tally_with_classes(rec, *epoch, "cpu", &["cpu", "entry", "flagship"]);
            assert_eq!(got.as_ref().map(|t| &t.work), want.as_ref(), "row {i}");
            if let Some(t) = got {
                assert_eq!(t.node, "fleet/n1");
                assert_eq!(t.multiplier, Decimal::ONE);
            }
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
