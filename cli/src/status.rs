//! `kubectl depin status`: the fleet as a table (the demo fleet prints the same).

use depin_crds::{GpuWorker, HotspotGateway, MeterBridge, NodeSpec, NodeStatus, StorageNode};
use k8s_openapi::NamespaceResourceScope;
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// One node of the fleet.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRow {
    /// CR namespace.
    pub namespace: String,
    /// CR kind.
    pub kind: String,
    /// CR name.
    pub name: String,
    /// The RewardPolicy that pays it (`spec.rewardPolicy`).
    pub policy: String,
    /// Status as the operator wrote it.
    pub status: Option<NodeStatus>,
}

impl NodeRow {
    /// Whether the Ready condition is True.
    pub fn ready(&self) -> bool {
        self.condition("Ready").as_deref() == Some("True")
    }

    fn condition(&self, type_: &str) -> Option<String> {
        let status = self.status.as_ref()?;
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.status.clone())
    }

    /// Conditions that need attention (Degraded/InvalidSpec True), with their reasons.
    pub fn problems(&self) -> String {
        let Some(status) = &self.status else {
            return "-".into();
        };
        let bad: Vec<String> = status
            .conditions
            .iter()
            .filter(|c| {
                let bad_when = match c.type_.as_str() {
                    "Degraded" | "InvalidSpec" | "Disqualified" | "CapacityLimited" => "True",
                    // Nothing pays a node whose RewardPolicy is missing.
                    "PolicyResolved" => "False",
                    _ => return false,
                };
                c.status == bad_when
            })
            .map(|c| format!("{}:{}", c.type_, c.reason))
            .collect();
        if bad.is_empty() {
            "-".into()
        } else {
            bad.join(",")
        }
    }
}

async fn rows_of<K>(
    client: &Client,
    namespace: Option<&str>,
    status: fn(&K) -> (Option<&NodeStatus>, &str),
) -> anyhow::Result<Vec<NodeRow>>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|n| {
            let (status, policy) = status(n);
            NodeRow {
                namespace: n.namespace().unwrap_or_default(),
                kind: K::kind(&()).into(),
                name: n.name_any(),
                policy: policy.to_string(),
                status: status.cloned(),
            }
        })
        .collect())
}

/// Every node of the four kinds, in `namespace` or everywhere, grouped by kind.
pub async fn fleet(client: &Client, namespace: Option<&str>) -> anyhow::Result<Vec<NodeRow>> {
    let mut rows = rows_of::<HotspotGateway>(client, namespace, |n| {
        (n.status.as_ref(), n.spec.reward_policy())
    })
    .await?;
    rows.extend(
        rows_of::<StorageNode>(client, namespace, |n| {
            (n.status.as_ref(), n.spec.reward_policy())
        })
        .await?,
    );
    rows.extend(
        rows_of::<GpuWorker>(client, namespace, |n| {
            (n.status.as_ref(), n.spec.reward_policy())
        })
        .await?,
    );
    rows.extend(
        rows_of::<MeterBridge>(client, namespace, |n| {
            (n.status.as_ref(), n.spec.reward_policy())
        })
        .await?,
    );
    Ok(rows)
}

/// Renders the fleet table: node, kind, readiness, problems, key, proofs, last proof, rewards.
pub fn render(rows: &[NodeRow], now: jiff::Timestamp) -> String {
    let line = |cols: [&str; 11]| {
        format!(
            "{:<14} {:<15} {:<16} {:<6} {:<22} {:<13} {:>8} {:>8} {:>10} {:>14} {:>14}\n",
            cols[0],
            cols[1],
            cols[2],
            cols[3],
            cols[4],
            cols[5],
            cols[6],
            cols[7],
            cols[8],
            cols[9],
            cols[10]
        )
    };
    let mut out = line([
        "NAMESPACE",
        "KIND",
        "NODE",
        "READY",
        "PROBLEMS",
        "KEY",
        "PROOF OK",
        "REJECTED",
        "LAST PROOF",
        "REWARD LAST",
        "CUMULATIVE",
    ]);
    for row in rows {
        let s = row.status.as_ref();
        let proofs = s.and_then(|s| s.proofs.as_ref());
        let rewards = s.and_then(|s| s.rewards.as_ref());
        let last = proofs
            .and_then(|p| p.last_accepted_time.as_deref())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or("-".into(), |t| {
                format!("{}s ago", now.as_second().saturating_sub(t.as_second()))
            });
        out.push_str(&line([
            &row.namespace,
            &row.kind,
            &row.name,
            if row.ready() { "True" } else { "False" },
            &row.problems(),
            s.and_then(|s| s.key_prefix.as_deref()).unwrap_or("-"),
            &proofs.map_or(0, |p| p.accepted).to_string(),
            &proofs.map_or(0, |p| p.rejected).to_string(),
            &last,
            rewards.map_or("-", |r| r.last_epoch_reward.as_str()),
            rewards.map_or("-", |r| r.cumulative.as_str()),
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use depin_crds::{ProofTally, RewardSummary};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn cond(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
            observed_generation: None,
        }
    }

    #[test]
    fn table_shows_readiness_problems_proofs_and_rewards() {
        let now: jiff::Timestamp = "2026-11-21T10:00:00Z".parse().expect("time");
        let rows = vec![
            NodeRow {
                namespace: "fleet".into(),
                kind: "StorageNode".into(),
                name: "sn-1".into(),
                policy: "default".into(),
                status: Some(NodeStatus {
                    conditions: vec![
                        cond("Ready", "True", "AgentReady"),
                        cond("PolicyResolved", "True", "PolicyFound"),
                    ],
                    key_prefix: Some("abcdef012345".into()),
                    proofs: Some(ProofTally {
                        accepted: 7,
                        rejected: 1,
                        last_accepted_time: Some("2026-11-21T09:59:30Z".into()),
                        ..ProofTally::default()
                    }),
                    rewards: Some(RewardSummary {
                        last_epoch: 3,
                        last_epoch_reward: "120".into(),
                        cumulative: "480".into(),
                    }),
                    ..NodeStatus::default()
                }),
            },
            NodeRow {
                namespace: "fleet".into(),
                kind: "GpuWorker".into(),
                name: "gpu-1".into(),
                policy: "default".into(),
                status: Some(NodeStatus {
                    conditions: vec![
                        cond("Ready", "False", "AgentNotReady"),
                        cond("Degraded", "True", "IdentityError"),
                        cond("PolicyResolved", "False", "PolicyNotFound"),
                    ],
                    ..NodeStatus::default()
                }),
            },
        ];
        let text = render(&rows, now);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].contains("sn-1") && lines[1].contains("True") && lines[1].contains("30s ago"),
            "{text}"
        );
        assert!(
            lines[1].contains(" 7 ") && lines[1].contains("480"),
            "{text}"
        );
        assert!(
            lines[2].contains("Degraded:IdentityError,PolicyResolved:PolicyNotFound")
                && lines[2].contains("False"),
            "{text}"
        );
        assert!(
            !lines[1].contains("PolicyResolved"),
            "a found policy is no problem: {text}"
        );
    }
}
