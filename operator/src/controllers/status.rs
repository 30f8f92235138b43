//! Pure status computation: conditions from what was applied, transitions only when real.

use super::Workload;
use crate::error::{Error, InvalidSpec};
use depin_crds::NodeStatus;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::Serialize;

/// Condition types the node controllers own.
pub const READY: &str = "Ready";
/// Rolling out a new spec.
pub const PROGRESSING: &str = "Progressing";
/// Applying failed.
pub const DEGRADED: &str = "Degraded";
/// The spec was refused.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// StorageNode: the volume holds less than `spec.capacity`; only what fits is proven.
pub const CAPACITY_LIMITED: &str = super::storage_node::volume::CAPACITY_LIMITED;
/// StorageNode: the audit reputation fell below the disqualification threshold; the node
/// earns nothing (read from the verifier's `status.storage`).
pub const DISQUALIFIED: &str = "Disqualified";

/// The node's `spec.rewardPolicy` exists; without it proofs are recorded but nothing pays.
pub const POLICY_RESOLVED: &str = "PolicyResolved";

/// Readiness read off an applied workload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rollout {
    /// Replicas asked for.
    pub desired: i32,
    /// Replicas ready.
    pub ready: i32,
    /// Replicas running the current template.
    pub updated: i32,
    /// The workload controller has seen the latest generation.
    pub observed: bool,
}

impl Rollout {
    /// Reads the rollout state of an applied Deployment or StatefulSet.
    pub fn of(workload: &Workload) -> Self {
        let (generation, desired, status) = match workload {
            Workload::Deployment(d) => (
                d.metadata.generation,
                d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                d.status
                    .as_ref()
                    .map(|s| (s.observed_generation, s.ready_replicas, s.updated_replicas)),
            ),
            Workload::StatefulSet(s) => (
                s.metadata.generation,
                s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                s.status
                    .as_ref()
                    .map(|s| (s.observed_generation, s.ready_replicas, s.updated_replicas)),
            ),
        };
        let (observed_gen, ready, updated) = status.unwrap_or_default();
        Self {
            desired,
            ready: ready.unwrap_or(0),
            updated: updated.unwrap_or(0),
            observed: observed_gen.is_some() && observed_gen >= generation,
        }
    }
}

/// What the reconcile achieved, for status.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// Children applied; the workload reports this rollout.
    Applied(Rollout),
    /// The spec was refused.
    Invalid(&'a InvalidSpec),
    /// Applying failed.
    Failed(&'a Error),
}

/// The status fields the node controller owns (the verifier and reward controller own
/// `proofs` and `rewards` under their own field managers).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedStatus {
    /// Spec generation this status describes.
    pub observed_generation: Option<i64>,
    /// Ready, Progressing, Degraded, InvalidSpec.
    pub conditions: Vec<Condition>,
    /// Hex public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Short key prefix for `kubectl get`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Identity Secret name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_secret: Option<String>,
    /// Ready agent replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// StorageNode: what the volume holds and how much of it is proven.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<depin_crds::CapacityStatus>,
}

impl OwnedStatus {
    /// The owned part of a status read from the API, to compare against.
    pub fn from_current(status: Option<&NodeStatus>) -> Self {
        let Some(s) = status else {
            return Self::default();
        };
        let mut conditions: Vec<Condition> = s
            .conditions
            .iter()
            .filter(|c| OWNED.contains(&c.type_.as_str()))
            .cloned()
            .collect();
        conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
        Self {
            observed_generation: s.observed_generation,
            conditions,
            public_key: s.public_key.clone(),
            key_prefix: s.key_prefix.clone(),
            identity_secret: s.identity_secret.clone(),
            ready_replicas: s.ready_replicas,
            capacity: s.capacity.clone(),
        }
    }
}

const OWNED: [&str; 6] = [
    CAPACITY_LIMITED,
    DEGRADED,
    DISQUALIFIED,
    INVALID_SPEC,
    PROGRESSING,
    READY,
];

/// A wanted condition: (is true, reason, message).
pub type Wanted = (bool, String, String);

/// A kind-specific condition beside the four every kind has; None keeps the current one.
pub type Extra = (&'static str, Option<Wanted>);

/// The condition per type the outcome calls for; `None` keeps the current condition.
fn wanted(outcome: &Outcome<'_>) -> [(&'static str, Option<Wanted>); 4] {
    match outcome {
        Outcome::Applied(r) => {
            let ready = r.desired > 0 && r.ready >= r.desired;
            let rolling = !r.observed || r.updated < r.desired || r.ready < r.desired;
            let counts = format!("{}/{} agent pods ready", r.ready, r.desired);
            [
                (
                    DEGRADED,
                    Some((false, "Applied".into(), "all children applied".into())),
                ),
                (
                    INVALID_SPEC,
                    Some((false, "Valid".into(), "spec passed validation".into())),
                ),
                (
                    PROGRESSING,
                    Some(if rolling {
                        (true, "RollingOut".into(), counts.clone())
                    } else {
                        (false, "Stable".into(), "workload matches the spec".into())
                    }),
                ),
                (
                    READY,
                    Some(match (r.desired, ready) {
                        (0, _) => (false, "Parked".into(), "spec.agent.replicas is 0".into()),
                        (_, true) => (true, "AgentReady".into(), counts),
                        (_, false) => (false, "AgentNotReady".into(), counts),
                    }),
                ),
            ]
        }
        Outcome::Invalid(invalid) => [
            (
                DEGRADED,
                Some((
                    false,
                    "InvalidSpec".into(),
                    "nothing applied while the spec is invalid".into(),
                )),
            ),
            (
                INVALID_SPEC,
                Some((true, "InvalidField".into(), invalid.to_string())),
            ),
            (
                PROGRESSING,
                Some((
                    false,
                    "InvalidSpec".into(),
                    "waiting for a valid spec".into(),
                )),
            ),
            (READY, None),
        ],
        Outcome::Failed(err) => [
            (DEGRADED, Some((true, err.reason().into(), err.to_string()))),
            (INVALID_SPEC, None),
            (PROGRESSING, None),
            (READY, None),
        ],
    }
}

/// Computes the owned status. `lastTransitionTime` moves only when a condition's status
/// flips, so re-running with the same outcome yields identical bytes and no write.
pub fn compute(
    current: &OwnedStatus,
    outcome: &Outcome<'_>,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut out = Vec::new();
    for (type_, want) in wanted(outcome) {
        out.extend(condition(current, type_, want, generation, now));
    }
    out
}

/// [`compute`] for kind-specific conditions (same transition rule).
pub fn compute_extra(
    current: &OwnedStatus,
    extra: Vec<Extra>,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    extra
        .into_iter()
        .filter_map(|(type_, want)| condition(current, type_, want, generation, now))
        .collect()
}

fn condition(
    current: &OwnedStatus,
    type_: &str,
    want: Option<Wanted>,
    generation: Option<i64>,
    now: Timestamp,
) -> Option<Condition> {
    let existing = current.conditions.iter().find(|c| c.type_ == type_);
    let Some((status, reason, message)) = want else {
        return existing.cloned();
    };
    let status = if status { "True" } else { "False" }.to_string();
    let last_transition_time = match existing {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    Some(Condition {
        type_: type_.into(),
        status,
        reason,
        message,
        last_transition_time,
        observed_generation: generation,
    })
}

/// Pure: `PolicyResolved` from whether RewardPolicy `policy` was found (`None`: the
/// lookup failed, keep the condition as it is).
pub fn policy_resolved(policy: &str, found: Option<bool>) -> Option<Wanted> {
    Some(if found? {
        (
            true,
            "PolicyFound".into(),
            format!("paid by RewardPolicy {policy}"),
        )
    } else {
        (
            false,
            "PolicyNotFound".into(),
            format!(
                "RewardPolicy {policy} does not exist: proofs are recorded but nothing pays them; create it or fix spec.rewardPolicy"
            ),
        )
    })
}

/// The `Disqualified` condition of a node whose status has the verifier's storage ledger;
/// None for nodes without one. `threshold` is the score below which a node is disqualified.
pub fn disqualified(status: Option<&NodeStatus>, threshold: f64) -> Option<Wanted> {
    let ledger = status?.storage.as_ref()?;
    let score = &ledger.reputation.score;
    Some(if ledger.disqualified {
        (
            true,
            "ReputationBelowThreshold".into(),
            format!("reputation {score} fell below {threshold}; the node earns nothing"),
        )
    } else {
        (
            false,
            "ReputationAboveThreshold".into(),
            format!("reputation {score} (disqualified below {threshold})"),
        )
    })
}

/// True when the condition of `type_` is newly True (for Events on transitions only).
pub fn became_true(before: &OwnedStatus, after: &[Condition], type_: &str) -> bool {
    let is_true = |cs: &[Condition]| cs.iter().any(|c| c.type_ == type_ && c.status == "True");
    !is_true(&before.conditions) && is_true(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).expect("valid")
    }

    fn status_of(conds: &[Condition], type_: &str) -> (String, String) {
        let c = conds.iter().find(|c| c.type_ == type_).expect(type_);
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn ready_follows_the_workload_and_transition_time_only_moves_on_flips() {
        let rolling = Rollout {
            desired: 1,
            ready: 0,
            updated: 1,
            observed: true,
        };
        let first = compute(
            &OwnedStatus::default(),
            &Outcome::Applied(rolling),
            Some(1),
            t(100),
        );
        assert_eq!(
            status_of(&first, READY),
            ("False".into(), "AgentNotReady".into())
        );
        assert_eq!(
            status_of(&first, PROGRESSING),
            ("True".into(), "RollingOut".into())
        );

        let current = OwnedStatus {
            conditions: first.clone(),
            ..OwnedStatus::default()
        };
        let same = compute(&current, &Outcome::Applied(rolling), Some(1), t(200));
        assert_eq!(same, first, "same outcome later must be byte-identical");

        let ready = Rollout {
            ready: 1,
            ..rolling
        };
        let next = compute(&current, &Outcome::Applied(ready), Some(1), t(300));
        assert_eq!(
            status_of(&next, READY),
            ("True".into(), "AgentReady".into())
        );
        let ready_c = next.iter().find(|c| c.type_ == READY).expect("ready");
        assert_eq!(ready_c.last_transition_time, Time(t(300)));
        let degraded = next.iter().find(|c| c.type_ == DEGRADED).expect("degraded");
        assert_eq!(
            degraded.last_transition_time,
            Time(t(100)),
            "unchanged Degraded keeps its time"
        );
    }

    #[test]
    fn invalid_spec_names_the_field_and_failures_keep_ready() {
        let invalid = InvalidSpec::new("spec.capacity", "too small");
        let conds = compute(
            &OwnedStatus::default(),
            &Outcome::Invalid(&invalid),
            Some(2),
            t(1),
        );
        let c = conds
            .iter()
            .find(|c| c.type_ == INVALID_SPEC)
            .expect("invalid");
        assert_eq!(
            (c.status.as_str(), c.message.as_str()),
            ("True", "spec.capacity: too small")
        );

        let ready = compute(
            &OwnedStatus::default(),
            &Outcome::Applied(Rollout {
                desired: 1,
                ready: 1,
                updated: 1,
                observed: true,
            }),
            Some(2),
            t(1),
        );
        let current = OwnedStatus {
            conditions: ready,
            ..OwnedStatus::default()
        };
        let err = Error::InvalidObject("boom".into());
        let failed = compute(&current, &Outcome::Failed(&err), Some(2), t(5));
        assert_eq!(
            status_of(&failed, READY),
            ("True".into(), "AgentReady".into())
        );
        assert_eq!(
            status_of(&failed, DEGRADED),
            ("True".into(), "InvalidObject".into())
        );
        assert!(became_true(&current, &failed, DEGRADED));
        assert!(!became_true(&current, &failed, READY));
    }

    #[test]
    fn disqualification_is_read_from_the_verifiers_ledger() {
        let status = |disqualified, score: &str| NodeStatus {
            storage: Some(depin_crds::StorageLedgerStatus {
                disqualified,
                reputation: depin_crds::ReputationStatus {
                    score: score.into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..NodeStatus::default()
        };
        assert_eq!(disqualified(Some(&NodeStatus::default()), 0.96), None);
        let (is_true, reason, message) =
            disqualified(Some(&status(true, "0.959833")), 0.96).expect("condition");
        assert!(is_true);
        assert_eq!(reason, "ReputationBelowThreshold");
        assert!(message.contains("0.959833"), "{message}");
        let fine = disqualified(Some(&status(false, "1")), 0.96).expect("condition");
        assert!(!fine.0);
        // Kept when unknown (None), set when wanted.
        let current = OwnedStatus {
            conditions: compute_extra(
                &OwnedStatus::default(),
                vec![(DISQUALIFIED, Some(fine))],
                Some(1),
                t(1),
            ),
            ..OwnedStatus::default()
        };
        let kept = compute_extra(&current, vec![(DISQUALIFIED, None)], Some(1), t(9));
        assert_eq!(kept, current.conditions);
    }

    #[test]
    fn parked_node_is_not_ready() {
        let conds = compute(
            &OwnedStatus::default(),
            &Outcome::Applied(Rollout {
                observed: true,
                ..Rollout::default()
            }),
            None,
            t(1),
        );
        assert_eq!(status_of(&conds, READY), ("False".into(), "Parked".into()));
    }

    #[test]
    fn a_missing_policy_is_reported_and_a_failed_lookup_changes_nothing() {
        let found = policy_resolved("default", Some(true)).expect("known");
        assert_eq!((found.0, found.1.as_str()), (true, "PolicyFound"));
        let missing = policy_resolved("nope", Some(false)).expect("known");
        assert_eq!((missing.0, missing.1.as_str()), (false, "PolicyNotFound"));
        assert!(missing.2.contains("RewardPolicy nope") && missing.2.contains("spec.rewardPolicy"));
        assert_eq!(policy_resolved("default", None), None);
    }
}
