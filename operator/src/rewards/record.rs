//! What the reward controller writes, built purely: the RewardEpoch record, a node's
//! `status.rewards`, and the policy's `Valid` condition.

use depin_crds::{PoolTotal, RewardEpochSpec, RewardPolicyStatus, RewardSummary};
use depin_proof::reward::{EpochResult, NodeTotal};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::schedule::Schedule;

/// The RewardEpoch of `result` (which burned `data_credits` DC): totals only, never
/// per-node data, so it stays a few KiB at any fleet size (per-node amounts are in the
/// manifest shards and node status).
pub fn epoch_record(
    policy: &str,
    schedule: &Schedule,
    result: &EpochResult,
    data_credits: u64,
) -> RewardEpochSpec {
    let (window_start, window_end) = schedule.window(result.epoch);
    RewardEpochSpec {
        policy: policy.to_string(),
        epoch: result.epoch,
        window_start,
        window_end,
        emission: result.emission.to_string(),
        data_credits_burned: data_credits.to_string(),
        burn: result.burn.to_string(),
        remint: result.remint.to_string(),
        pools: result
            .pools
            .iter()
            .map(|p| PoolTotal {
                pool: p.pool.as_str().to_string(),
                amount: p.amount.to_string(),
                paid: p.paid.to_string(),
                total_shares: p.total_shares.to_string(),
                reward_per_share: p.reward_per_share.clone(),
            })
            .collect(),
        unallocated: result.unallocated.to_string(),
        node_count: result.node_count,
        merkle_root: hex::encode(result.merkle_root),
    }
}

/// A node's `status.rewards` after being paid `total.reward` in epoch `n`.
pub fn reward_summary(n: u64, total: &NodeTotal) -> RewardSummary {
    RewardSummary {
        last_epoch: n,
        last_epoch_reward: total.reward.to_string(),
        cumulative: total.cumulative.to_string(),
    }
}

/// The policy status the controller wants: `Valid` from validation, `lastClosedEpoch`.
/// `lastTransitionTime` moves only when `Valid` flips, so an unchanged outcome compares
/// equal to the stored status and costs no write.
pub fn policy_status(
    current: Option<&RewardPolicyStatus>,
    generation: Option<i64>,
    valid: Result<(), (&str, String)>,
    last_closed_epoch: Option<u64>,
    now: Timestamp,
) -> RewardPolicyStatus {
    let (status, reason, message) = match valid {
        Ok(()) => ("True", "Valid".to_string(), "policy is valid".to_string()),
        Err((reason, message)) => ("False", reason.to_string(), message),
    };
    let existing = current.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Valid"));
    let last_transition_time = match existing {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    RewardPolicyStatus {
        observed_generation: generation,
        conditions: vec![Condition {
            type_: "Valid".into(),
            status: status.into(),
            reason,
            message,
            last_transition_time,
            observed_generation: generation,
        }],
        last_closed_epoch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_has_no_per_node_data() {
        use depin_proof::reward::{
            CumulativeTotals, Decimal, KindWeightsSpec, NodeTally, PolicySpec, RewardPolicy, Work,
            close_epoch,
        };
        let policy = RewardPolicy::validate(&PolicySpec {
            epoch_seconds: 86_400,
            token_decimals: 8,
            initial_per_epoch: "100000000000".into(),
            halving_every_epochs: 730,
            max_supply: None,
            pools: KindWeightsSpec {
                hotspot: "0".into(),
                storage: "1".into(),
                gpu: "0".into(),
                meter: "0".into(),
            },
            hotspot_split: None,
            gpu_classes: vec![],
            burn_and_mint: None,
        })
        .expect("policy");
        let tallies: Vec<NodeTally> = (0..100_000u64)
            .map(|i| {
                NodeTally::new(
                    format!("fleet-{}/storage-node-{i:06}", i % 100),
                    Work::proven_storage((u128::from(1 + i % 7) * 48) << 30, Decimal::ONE),
                )
            })
            .collect();
        let result =
            close_epoch(&policy, 3, &tallies, &CumulativeTotals::new(), &[]).expect("closes");
        let schedule = Schedule::new(86_400, 30, 0);
        let bytes =
            serde_json::to_vec(&epoch_record("default", &schedule, &result, 0)).expect("json");
        // etcd's limit is 1.5 MiB; the record stays a few hundred bytes at 100 000 nodes.
        assert!(bytes.len() < 2048, "{} bytes", bytes.len());
        assert_eq!(result.node_count, 100_000);
    }

    #[test]
    fn valid_condition_keeps_its_transition_time() {
        let t = |s| Timestamp::from_second(s).expect("time");
        let first = policy_status(None, Some(1), Ok(()), None, t(100));
        let again = policy_status(Some(&first), Some(1), Ok(()), None, t(200));
        assert_eq!(first, again, "no change, no write");
        let closed = policy_status(Some(&first), Some(1), Ok(()), Some(0), t(300));
        assert_eq!(closed.conditions, first.conditions);
        assert_eq!(closed.last_closed_epoch, Some(0));
        let invalid = policy_status(
            Some(&closed),
            Some(2),
            Err(("WeightsDoNotSumToOne", "pools: weights sum to 1.1".into())),
            Some(0),
            t(400),
        );
        let c = &invalid.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "WeightsDoNotSumToOne")
        );
        assert_eq!(c.message, "pools: weights sum to 1.1");
        assert_eq!(c.last_transition_time, Time(t(400)));
        assert_eq!(invalid.last_closed_epoch, Some(0), "history is kept");
    }
}
