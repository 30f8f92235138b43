//! The demo fleet (examples/demo-fleet.yaml and its simulators, examples/demo-sims.yaml):
//! bring it up, watch proofs and reward epochs, check the books, take it down. Shared by
//! the `fleet` binary behind `e2e/fleet.sh` and the full-loop end-to-end test.

use crate::{apply_documents, deploy, repo_root, yaml_documents};
use depin_cli::NodeRow;
use depin_crds::{RewardEpoch, RewardEpochSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};
use std::collections::BTreeMap;

/// Namespace of the demo fleet.
pub const NAMESPACE: &str = "fleet";
/// Its RewardPolicy.
pub const POLICY: &str = "demo";
/// The node kinds, in table order.
pub const KINDS: [&str; 4] = ["HotspotGateway", "StorageNode", "GpuWorker", "MeterBridge"];

/// Installs the CRDs and the operator, then applies the simulators and the fleet.
pub async fn start(client: &Client) -> anyhow::Result<usize> {
    // A fleet removed a moment ago may still be terminating: objects applied into it
    // would be deleted with it.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    crate::eventually(
        "the previous demo namespace gone",
        std::time::Duration::from_secs(180),
        || async {
            let ns = namespaces.get_opt(NAMESPACE).await?;
            Ok(ns
                .is_none_or(|n| n.metadata.deletion_timestamp.is_none())
                .then_some(()))
        },
    )
    .await?;
    deploy::install_crds(client).await?;
    deploy::deploy_operator(client).await?;
    let mut docs = Vec::new();
    for file in ["examples/demo-fleet.yaml", "examples/demo-sims.yaml"] {
        docs.extend(yaml_documents(&std::fs::read_to_string(
            repo_root().join(file),
        )?)?);
    }
    if let Ok(image) = std::env::var("DEPIN_SIM_IMAGE") {
        docs.iter_mut().for_each(|d| set_sim_image(d, &image));
    }
    apply_documents(client, &docs).await?;
    Ok(docs.len())
}

/// Points the simulator pods at `image` (clusters other than the local one).
fn set_sim_image(doc: &mut serde_json::Value, image: &str) {
    if let Some(containers) = doc
        .pointer_mut("/spec/template/spec/containers")
        .and_then(|c| c.as_array_mut())
    {
        for c in containers {
            if c["image"].as_str() == Some("localhost/depin-sim:dev") {
                c["image"] = image.into();
            }
        }
    }
}

/// Deletes the fleet namespace and the demo policy with its records (a demo's epochs are
/// not worth keeping, and a later `demo` policy would otherwise meet their names).
pub async fn remove(client: &Client) {
    let ns: Api<Namespace> = Api::all(client.clone());
    let _ = ns.delete(NAMESPACE, &DeleteParams::background()).await;
    delete_policy(client, POLICY).await;
}

/// Deletes a policy, its RewardEpochs, their manifest shards and its burn records (test and demo cleanup;
/// a real fleet keeps them as the record of what was paid).
pub async fn delete_policy(client: &Client, policy: &str) {
    let policies: Api<depin_crds::RewardPolicy> = Api::all(client.clone());
    let _ = policies.delete(policy, &DeleteParams::default()).await;
    let epochs: Api<RewardEpoch> = Api::all(client.clone());
    if let Ok(list) = closed_epochs(client, policy).await {
        for e in list {
            let name = e.metadata.name.unwrap_or_default();
            let _ = epochs.delete(&name, &DeleteParams::default()).await;
        }
    }
    let shards: Api<ConfigMap> = Api::namespaced(client.clone(), deploy::OPERATOR_NAMESPACE);
    let _ = shards
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&format!("depin.dev/reward-policy={policy}")),
        )
        .await;
    let _ = shards
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&format!("depin.dev/burn-policy={policy}")),
        )
        .await;
}

/// The policy's closed epochs, oldest first.
pub async fn closed_epochs(client: &Client, policy: &str) -> anyhow::Result<Vec<RewardEpoch>> {
    let api: Api<RewardEpoch> = Api::all(client.clone());
    let mut epochs: Vec<RewardEpoch> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.spec.policy == policy)
        .collect();
    epochs.sort_by_key(|e| e.spec.epoch);
    Ok(epochs)
}

fn amount(field: &str, text: &str) -> anyhow::Result<u128> {
    text.parse()
        .map_err(|_| anyhow::anyhow!("{field} is not a base-unit integer: {text:?}"))
}

/// Checks one epoch's books: the pools split exactly emission + re-mint, and what they paid
/// plus `unallocated` adds up to the same. Returns that total.
pub fn check_books(epoch: &RewardEpochSpec) -> anyhow::Result<u128> {
    let minted = amount("emission", &epoch.emission)? + amount("remint", &epoch.remint)?;
    let (mut pools, mut paid) = (0u128, 0u128);
    for pool in &epoch.pools {
        pools += amount("pools[].amount", &pool.amount)?;
        paid += amount("pools[].paid", &pool.paid)?;
    }
    let unallocated = amount("unallocated", &epoch.unallocated)?;
    anyhow::ensure!(
        pools == minted,
        "epoch {}: pools hold {pools}, emission + remint is {minted}",
        epoch.epoch
    );
    anyhow::ensure!(
        paid + unallocated == minted,
        "epoch {}: paid {paid} + unallocated {unallocated} != emission + remint {minted}",
        epoch.epoch
    );
    Ok(minted)
}

/// Checks that the nodes' `status.rewards` for the latest epoch add up to what it paid.
pub fn check_node_rewards(latest: &RewardEpochSpec, rows: &[NodeRow]) -> anyhow::Result<u128> {
    let mut sum = 0u128;
    for row in rows {
        let Some(rewards) = row.status.as_ref().and_then(|s| s.rewards.as_ref()) else {
            continue;
        };
        if rewards.last_epoch == latest.epoch {
            sum += amount("status.rewards.lastEpochReward", &rewards.last_epoch_reward)?;
        }
    }
    let paid = latest
        .pools
        .iter()
        .map(|p| amount("pools[].paid", &p.paid))
        .sum::<anyhow::Result<u128>>()?;
    anyhow::ensure!(
        sum == paid,
        "epoch {}: nodes' lastEpochReward add up to {sum}, the epoch paid {paid}",
        latest.epoch
    );
    Ok(sum)
}

/// Checks the published record end to end, as a user would with `kubectl depin`: every
/// closed epoch's manifest recomputes to its RewardEpoch's root, and every paid node's
/// claim verifies against the latest root while a tampered copy does not. Returns the
/// number of claims checked.
pub async fn check_published(
    client: &Client,
    epochs: &[RewardEpoch],
    rows: &[NodeRow],
) -> anyhow::Result<usize> {
    use depin_cli::claim::{fetch_verified_claim, verify_claim_file};
    let access = depin_cli::operator::OperatorAccess::default();
    for epoch in epochs {
        let report =
            depin_cli::rewards::epoch_report(client, &access, POLICY, Some(epoch.spec.epoch))
                .await?;
        anyhow::ensure!(
            report.verified(),
            "epoch {}: manifest problems {:?}",
            epoch.spec.epoch,
            report
                .problems
                .iter()
                .map(|p| p.reason())
                .collect::<Vec<_>>()
        );
    }
    let mut claims = 0;
    for row in rows {
        if row
            .status
            .as_ref()
            .and_then(|s| s.rewards.as_ref())
            .is_none()
        {
            continue;
        }
        let (file, verified) =
            fetch_verified_claim(client, &access, POLICY, &row.namespace, &row.name).await?;
        let mut tampered = file.clone();
        tampered.cumulative = (verified.claim.cumulative + 1).to_string();
        anyhow::ensure!(
            verify_claim_file(&tampered, Some(verified.root)).is_err(),
            "a tampered claim of {} verified",
            file.node
        );
        claims += 1;
    }
    Ok(claims)
}

/// Proofs accepted so far per kind (this epoch's tally and the one before).
pub fn accepted_by_kind(rows: &[NodeRow]) -> BTreeMap<&'static str, u64> {
    let mut by_kind: BTreeMap<&'static str, u64> = KINDS.iter().map(|k| (*k, 0)).collect();
    for row in rows {
        let Some(kind) = KINDS.iter().find(|k| **k == row.kind) else {
            continue;
        };
        let status = row.status.as_ref();
        let count = |t: Option<&depin_crds::ProofTally>| t.map_or(0, |t| t.accepted);
        *by_kind.entry(kind).or_default() += count(status.and_then(|s| s.proofs.as_ref()))
            + count(status.and_then(|s| s.previous_proofs.as_ref()));
    }
    by_kind
}

/// Pools the epoch paid nothing from (e.g. `meter` before the meters' second reading).
pub fn unpaid_pools(epoch: &RewardEpochSpec) -> Vec<String> {
    epoch
        .pools
        .iter()
        .filter(|p| p.paid.trim_start_matches('0').is_empty())
        .map(|p| p.pool.clone())
        .collect()
}

/// Sun elevation, degrees, below which the demo's PV simulators (Haurwitz clear sky, 5 kW)
/// register less than about 1 Wh a minute, so an epoch may pay its meter pool nothing.
const PAYABLE_SUN_DEG: f64 = 5.0;

/// The production meters' declared sites in examples/demo-fleet.yaml.
pub fn demo_production_sites() -> anyhow::Result<Vec<depin_proof::meter::Site>> {
    let text = std::fs::read_to_string(repo_root().join("examples/demo-fleet.yaml"))?;
    Ok(production_sites(&yaml_documents(&text)?))
}

/// The declared sites of the production MeterBridges among `docs`.
pub fn production_sites(docs: &[serde_json::Value]) -> Vec<depin_proof::meter::Site> {
    docs.iter()
        .filter(|d| d["kind"] == "MeterBridge" && d["spec"]["direction"] == "production")
        .filter_map(|d| {
            let location = &d["spec"]["location"];
            depin_proof::meter::Site::new(
                location["latitude"].as_f64()?,
                location["longitude"].as_f64()?,
            )
        })
        .collect()
}

/// [`unpaid_pools`] less the ones physics explains, and why: the `meter` pool pays nothing
/// when the sun stays below [`PAYABLE_SUN_DEG`] at every production meter for the whole
/// epoch window (the verifier refuses PV production at night, and the simulators follow
/// the real sun), so the demo check passes at any hour and says why the pool is empty.
pub fn unexplained_unpaid(
    epoch: &RewardEpochSpec,
    sites: &[depin_proof::meter::Site],
) -> (Vec<String>, Vec<String>) {
    let (mut unexplained, mut reasons) = (Vec::new(), Vec::new());
    for pool in unpaid_pools(epoch) {
        if pool == "meter" && !sites.is_empty() && sun_low_throughout(epoch, sites) {
            reasons.push(format!(
                "meter pool paid 0 in epoch {}: the sun stayed below {PAYABLE_SUN_DEG}° at every production meter (no PV yield; night-time production is refused as ProductionAtNight)",
                epoch.epoch
            ));
        } else {
            unexplained.push(pool);
        }
    }
    (unexplained, reasons)
}

/// Whether the sun stays below [`PAYABLE_SUN_DEG`] at every site over the epoch window
/// (sampled each minute, ends included).
fn sun_low_throughout(epoch: &RewardEpochSpec, sites: &[depin_proof::meter::Site]) -> bool {
    let (start_ms, end_ms) = (epoch.window_start * 1000, epoch.window_end * 1000);
    let minutes = (start_ms..=end_ms).step_by(60_000).chain([end_ms]);
    let times: Vec<u64> = minutes.collect();
    sites.iter().all(|site| {
        times.iter().all(|t| {
            site.sun_elevation_deg(*t)
                .is_some_and(|e| e < PAYABLE_SUN_DEG)
        })
    })
}

/// One progress line: readiness, accepted proofs per kind, epochs closed.
pub fn progress(elapsed_s: u64, rows: &[NodeRow], epochs: &[RewardEpoch]) -> String {
    let ready = rows.iter().filter(|r| r.ready()).count();
    let rejected: u64 = rows
        .iter()
        .filter_map(|r| r.status.as_ref()?.proofs.as_ref())
        .map(|t| t.rejected)
        .sum();
    let accepted = accepted_by_kind(rows)
        .iter()
        .map(|(k, n)| format!("{}:{n}", &k[..1]))
        .collect::<Vec<_>>()
        .join(" ");
    let latest = epochs.last().map_or("none yet".to_string(), |e| {
        format!("latest #{}", e.spec.epoch)
    });
    format!(
        "[{elapsed_s:>4} s] ready {ready}/{} · proofs accepted {accepted} · rejected this epoch {rejected} · epochs closed {} ({latest})",
        rows.len(),
        epochs.len()
    )
}

/// A closed epoch in one paragraph.
pub fn epoch_summary(epoch: &RewardEpochSpec) -> String {
    let pools: Vec<String> = epoch
        .pools
        .iter()
        .map(|p| format!("{} {}/{}", p.pool, p.paid, p.amount))
        .collect();
    format!(
        "epoch {} closed: emission {} + remint {} (burn {}); paid/amount per pool: {}; unallocated {}; {} nodes paid; root {}",
        epoch.epoch,
        epoch.emission,
        epoch.remint,
        epoch.burn,
        pools.join(", "),
        epoch.unallocated,
        epoch.node_count,
        &epoch.merkle_root[..16.min(epoch.merkle_root.len())]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use depin_crds::PoolTotal;

    fn pool(name: &str, amount: &str, paid: &str) -> PoolTotal {
        PoolTotal {
            pool: name.into(),
            amount: amount.into(),
            paid: paid.into(),
            total_shares: "1".into(),
            reward_per_share: "1".into(),
        }
    }

    fn epoch(paid: [&str; 2], unallocated: &str) -> RewardEpochSpec {
        RewardEpochSpec {
            policy: "demo".into(),
            epoch: 7,
            emission: "1000".into(),
            remint: "10".into(),
            data_credits_burned: "0".into(),
            burn: "10".into(),
            window_start: 0,
            window_end: 60,
            pools: vec![
                pool("storage", "606", paid[0]),
                pool("meter", "404", paid[1]),
            ],
            unallocated: unallocated.into(),
            node_count: 2,
            merkle_root: "00".repeat(32),
        }
    }

    #[test]
    fn books_balance_only_when_paid_plus_unallocated_is_the_mint() {
        assert_eq!(check_books(&epoch(["600", "0"], "410")).unwrap(), 1010);
        let err = check_books(&epoch(["600", "0"], "409")).unwrap_err();
        assert!(
            err.to_string().contains("paid 600 + unallocated 409"),
            "{err}"
        );
        assert!(check_books(&epoch(["6x0", "0"], "410")).is_err());
        assert_eq!(unpaid_pools(&epoch(["600", "0"], "410")), ["meter"]);
    }

    #[test]
    fn an_empty_meter_pool_is_excused_only_while_the_sun_is_down_at_every_meter() {
        let sites = demo_production_sites().unwrap();
        assert_eq!(
            sites.len(),
            2,
            "both demo meters produce and declare a site"
        );
        // 2026-12-03 in Amsterdam/Utrecht: sunrise ≈ 07:35 UTC, noon 11:40 UTC at 15°.
        let day_s = 1_796_256_000;
        let at = |hour: u64, paid: [&str; 2]| RewardEpochSpec {
            window_start: day_s + hour * 3600,
            window_end: day_s + hour * 3600 + 60,
            ..epoch(paid, "410")
        };
        // (epoch, pools left unexplained, reasons given)
        let table = [
            (at(2, ["600", "0"]), vec![], 1),
            (at(12, ["600", "0"]), vec!["meter".to_string()], 0),
            (at(2, ["0", "0"]), vec!["storage".to_string()], 1),
            (at(12, ["600", "400"]), vec![], 0),
        ];
        for (i, (e, want, reasons)) in table.into_iter().enumerate() {
            let (unexplained, why) = unexplained_unpaid(&e, &sites);
            assert_eq!(unexplained, want, "row {i}");
            assert_eq!(why.len(), reasons, "row {i}: {why:?}");
        }
        // No declared site: nothing is excused.
        assert_eq!(unexplained_unpaid(&at(2, ["600", "0"]), &[]).0, ["meter"]);
    }
}
