//! Where burn-and-mint's burns come from: usage paid in data credits, reported by whoever
//! bills it (a LoRaWAN network server, a storage-deal or job marketplace) as burn records,
//! ConfigMaps in the operator's namespace:
//!
//! ```sh
//! kubectl -n depin-system create configmap demo-burn-4711 --from-literal=dataCredits=250000
//! kubectl -n depin-system label configmap demo-burn-4711 \
//!     depin.dev/burn-policy=demo depin.dev/burn-epoch=4711
//! ```
//!
//! Closing epoch `n` burns the records labelled with epoch `n` (several add up). The
//! re-mint of `n` averages the data credits of the epochs before it as their RewardEpochs
//! recorded them (`dataCreditsBurned`), so every figure is recomputable from published
//! records. A record for an epoch already closed when it appears is never counted (its
//! epoch is committed) and is reported in a warning; records for future epochs wait.

use std::collections::BTreeMap;

use depin_proof::reward::EpochBurn;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;

/// Label naming the RewardPolicy a burn record belongs to.
pub const POLICY_LABEL: &str = "depin.dev/burn-policy";
/// Label naming the reward epoch (RewardEpoch number) the usage was paid in.
pub const EPOCH_LABEL: &str = "depin.dev/burn-epoch";
/// Data key holding the data credits burned (a non-negative integer).
pub const DATA_CREDITS_KEY: &str = "dataCredits";

/// Why a burn record cannot be read (it is skipped, named in a warning).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadBurn {
    /// The epoch label is missing or not a number.
    #[error("burn record {record}: label {EPOCH_LABEL} must be an epoch number, got {value:?}")]
    Epoch {
        /// The ConfigMap.
        record: String,
        /// What the label held.
        value: Option<String>,
    },
    /// The data credits are missing or not a non-negative integer.
    #[error(
        "burn record {record}: data key {DATA_CREDITS_KEY} must be a whole number of data credits, got {value:?}"
    )]
    DataCredits {
        /// The ConfigMap.
        record: String,
        /// What the key held.
        value: Option<String>,
    },
}

/// One record's (epoch, data credits).
pub fn parse(record: &ConfigMap) -> Result<(u64, u64), BadBurn> {
    let name = record.name_any();
    let label = record.labels().get(EPOCH_LABEL).cloned();
    let epoch = label
        .as_deref()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| BadBurn::Epoch {
            record: name.clone(),
            value: label.clone(),
        })?;
    let data = record
        .data
        .as_ref()
        .and_then(|d| d.get(DATA_CREDITS_KEY))
        .cloned();
    let dc = data
        .as_deref()
        .map(str::trim)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| BadBurn::DataCredits {
            record: name,
            value: data.clone(),
        })?;
    Ok((epoch, dc))
}

/// What closing epoch `n` burns and re-mints from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Burns {
    /// Data credits burned in `n` (its records, added up, saturating).
    pub this_epoch: u64,
    /// Burns of `n` and of the committed epochs before it, for `close_epoch`.
    pub inputs: Vec<EpochBurn>,
    /// Records for epochs already closed: never counted (names, for the warning).
    pub late: Vec<String>,
}

/// Assembles the burns of epoch `n` (pure): `records` are (name, epoch, data credits) of
/// the policy's burn records, `committed` the data credits each earlier RewardEpoch recorded.
pub fn for_epoch(n: u64, records: &[(String, u64, u64)], committed: &BTreeMap<u64, u64>) -> Burns {
    let this_epoch = records
        .iter()
        .filter(|(_, epoch, _)| *epoch == n)
        .fold(0u64, |sum, (_, _, dc)| sum.saturating_add(*dc));
    let late = records
        .iter()
        .filter(|(_, epoch, _)| *epoch < n && committed.contains_key(epoch))
        .map(|(name, ..)| name.clone())
        .collect();
    let mut inputs: Vec<EpochBurn> = committed
        .range(..n)
        .filter(|(_, dc)| **dc > 0)
        .map(|(epoch, dc)| EpochBurn {
            epoch: *epoch,
            dc_burned: *dc,
        })
        .collect();
    if this_epoch > 0 {
        inputs.push(EpochBurn {
            epoch: n,
            dc_burned: this_epoch,
        });
    }
    Burns {
        this_epoch,
        inputs,
        late,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn record(name: &str, epoch: Option<&str>, dc: Option<&str>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    epoch
                        .map(|e| (EPOCH_LABEL.to_string(), e.to_string()))
                        .into_iter()
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            data: dc.map(|d| [(DATA_CREDITS_KEY.to_string(), d.to_string())].into()),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn records_parse_or_name_the_label_or_key() {
        assert_eq!(
            parse(&record("b", Some("12"), Some(" 500 "))),
            Ok((12, 500))
        );
        let bad_epoch = parse(&record("b", Some("twelve"), Some("500"))).unwrap_err();
        assert!(bad_epoch.to_string().contains(EPOCH_LABEL), "{bad_epoch}");
        assert!(matches!(
            parse(&record("b", None, Some("1"))),
            Err(BadBurn::Epoch { .. })
        ));
        let bad_dc = parse(&record("b", Some("1"), Some("-5"))).unwrap_err();
        assert!(bad_dc.to_string().contains("dataCredits"), "{bad_dc}");
        assert!(matches!(
            parse(&record("b", Some("1"), None)),
            Err(BadBurn::DataCredits { .. })
        ));
    }

    #[test]
    fn an_epoch_burns_its_records_and_remints_from_committed_epochs() {
        let records = vec![
            ("a".to_string(), 5, 100),
            ("b".to_string(), 5, 50),
            ("late".to_string(), 3, 999), // epoch 3 is committed: never counted
            ("future".to_string(), 6, 7),
        ];
        let committed: BTreeMap<u64, u64> = [(2, 0), (3, 40), (4, 60)].into();
        let burns = for_epoch(5, &records, &committed);
        assert_eq!(burns.this_epoch, 150);
        assert_eq!(burns.late, ["late"]);
        let inputs: Vec<(u64, u64)> = burns
            .inputs
            .iter()
            .map(|b| (b.epoch, b.dc_burned))
            .collect();
        assert_eq!(inputs, [(3, 40), (4, 60), (5, 150)]);
        // Nothing recorded, nothing burned.
        let none = for_epoch(9, &[], &BTreeMap::new());
        assert_eq!((none.this_epoch, none.inputs.len()), (0, 0));
    }
}
