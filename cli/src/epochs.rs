//! Reading RewardPolicy and RewardEpoch objects: which policy, which closed epoch.

use depin_crds::{RewardEpoch, RewardEpochSpec, RewardPolicy};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use thiserror::Error;

/// Why no RewardEpoch could be chosen.
#[derive(Debug, Error)]
pub enum EpochLookupError {
    /// `--policy` was not given and the cluster has no RewardPolicy.
    #[error("no RewardPolicy in the cluster")]
    NoPolicies,
    /// `--policy` was not given and there is more than one to choose from.
    #[error("several RewardPolicies ({}): choose one with --policy", .0.join(", "))]
    AmbiguousPolicy(Vec<String>),
    /// The policy has not closed any epoch yet.
    #[error("policy {0} has no closed epoch (no RewardEpoch with spec.policy={0})")]
    NoEpochs(String),
    /// The epoch asked for is not closed (or belongs to another policy).
    #[error(
        "RewardEpoch {policy}-{epoch} not found: epoch {epoch} of policy {policy} is not closed"
    )]
    NotClosed {
        /// The policy.
        policy: String,
        /// The epoch asked for.
        epoch: u64,
    },
    /// The apiserver refused or could not be reached.
    #[error("reading {what}")]
    Kube {
        /// What was being read.
        what: &'static str,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// `policy` if given, else the cluster's only RewardPolicy.
pub async fn resolve_policy(
    client: &Client,
    policy: Option<&str>,
) -> Result<String, EpochLookupError> {
    if let Some(policy) = policy {
        return Ok(policy.to_owned());
    }
    let api: Api<RewardPolicy> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|source| EpochLookupError::Kube {
            what: "RewardPolicies",
            source,
        })?;
    let mut names: Vec<String> = list.items.iter().map(|p| p.name_any()).collect();
    names.sort();
    match names.len() {
        0 => Err(EpochLookupError::NoPolicies),
        1 => Ok(names.remove(0)),
        _ => Err(EpochLookupError::AmbiguousPolicy(names)),
    }
}

/// The RewardEpoch of `policy` for `epoch`, or its latest when `epoch` is `None`.
pub async fn reward_epoch(
    client: &Client,
    policy: &str,
    epoch: Option<u64>,
) -> Result<RewardEpochSpec, EpochLookupError> {
    let api: Api<RewardEpoch> = Api::all(client.clone());
    let kube_err = |source| EpochLookupError::Kube {
        what: "RewardEpochs",
        source,
    };
    let Some(epoch) = epoch else {
        // RewardEpochs carry no labels, so filter on the spec; one object per epoch is small.
        let list = api.list(&ListParams::default()).await.map_err(kube_err)?;
        return latest_of(list.items.into_iter().map(|e| e.spec), policy)
            .ok_or_else(|| EpochLookupError::NoEpochs(policy.into()));
    };
    let not_closed = || EpochLookupError::NotClosed {
        policy: policy.into(),
        epoch,
    };
    let record = api
        .get_opt(&epoch_name(policy, epoch))
        .await
        .map_err(kube_err)?
        .ok_or_else(not_closed)?;
    // Names join with '-', which policy names may contain too; the spec is authoritative.
    if record.spec.policy != policy || record.spec.epoch != epoch {
        return Err(not_closed());
    }
    Ok(record.spec)
}

/// The RewardEpoch object name the reward controller uses.
pub fn epoch_name(policy: &str, epoch: u64) -> String {
    format!("{policy}-{epoch}")
}

/// The highest epoch of `policy` among `records`.
fn latest_of(
    records: impl IntoIterator<Item = RewardEpochSpec>,
    policy: &str,
) -> Option<RewardEpochSpec> {
    records
        .into_iter()
        .filter(|r| r.policy == policy)
        .max_by_key(|r| r.epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(policy: &str, epoch: u64) -> RewardEpochSpec {
        RewardEpochSpec {
            policy: policy.into(),
            epoch,
            window_start: 0,
            window_end: 0,
            emission: "0".into(),
            data_credits_burned: "0".into(),
            burn: "0".into(),
            remint: "0".into(),
            pools: vec![],
            unallocated: "0".into(),
            node_count: 0,
            merkle_root: String::new(),
        }
    }

    #[test]
    fn latest_is_the_highest_epoch_of_that_policy() {
        let records = [
            record("a", 2),
            record("a", 10),
            record("b", 99),
            record("a", 9),
        ];
        assert_eq!(latest_of(records.clone(), "a").map(|r| r.epoch), Some(10));
        assert_eq!(latest_of(records, "c"), None);
    }

    #[test]
    fn ambiguity_lists_the_policies() {
        let err = EpochLookupError::AmbiguousPolicy(vec!["a".into(), "b".into()]);
        assert_eq!(
            err.to_string(),
            "several RewardPolicies (a, b): choose one with --policy"
        );
    }
}
