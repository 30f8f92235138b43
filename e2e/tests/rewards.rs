//! Reward epochs on a real cluster: a 20 s policy with a StorageNode and a GpuWorker
//! proving work; epochs close once each, in order, with rewards that add up, node status
//! rises, and a claim served by the operator verifies against the RewardEpoch's root.

use depin_crds::{GpuWorker, RewardEpoch, RewardPolicy, StorageNode};
use depin_e2e::deploy::OPERATOR_NAMESPACE;
use depin_e2e::testbed::{example, setup, wait_ready};
use depin_e2e::{TestNamespace, apply, eventually, operator_get};
use depin_proof::reward::{Claim, verify_claim};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use std::time::Duration;

/// Nodes need a minute to become Ready and a few epochs to earn.
const REWARD_TIMEOUT: Duration = Duration::from_secs(300);

/// Σ `reward=` over the manifest's node lines, and its `header` value.
fn manifest_sums(manifest: &str) -> (u128, impl Fn(&str) -> u128 + '_) {
    let rewards = manifest
        .lines()
        .filter(|l| l.starts_with("node "))
        .filter_map(|l| {
            l.split(' ')
                .nth(2)?
                .strip_prefix("reward=")?
                .parse::<u128>()
                .ok()
        })
        .sum();
    let header = move |key: &str| {
        manifest
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    };
    (rewards, header)
}

#[tokio::test]
async fn epochs_close_once_and_claims_verify() -> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "rewards").await?;
    let policy_name = format!("{}-policy", ns.name);
    let result = run(&client, &ns, &policy_name).await;
    // Cluster-scoped leftovers: the policy, its epochs and their manifest shards.
    depin_e2e::fleet::delete_policy(&client, &policy_name).await;
    ns.cleanup().await;
    result
}

async fn run(client: &Client, ns: &TestNamespace, policy_name: &str) -> anyhow::Result<()> {
    let policies: Api<RewardPolicy> = Api::all(client.clone());
    let mut policy: RewardPolicy = example(&ns.name)?;
    policy.metadata.namespace = None;
    policy.metadata.name = Some(policy_name.to_string());
    policy.spec.epoch_seconds = 20;
    policy.spec.grace_seconds = 5;
    // Burn-and-mint: 1 000 DC buy one token; burns are re-minted over the next epoch.
    policy.spec.burn_and_mint = Some(depin_crds::BurnAndMint {
        dc_per_token: "1000".into(),
        smoothing_epochs: 1,
        max_remint_per_epoch: "100000000000000".into(),
    });
    apply(&policies, &policy).await?;
    // Usage billed in epochs 1 and 2 (a network server's burn records).
    for (epoch, dc) in [(1u64, 2_500u64), (2, 500)] {
        let record = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("{policy_name}-burn-{epoch}"), "namespace": OPERATOR_NAMESPACE,
                         "labels": {"depin.dev/burn-policy": policy_name, "depin.dev/burn-epoch": epoch.to_string()}},
            "data": {"dataCredits": dc.to_string()}
        });
        depin_e2e::apply_documents(client, &[record]).await?;
    }

    let mut sn: StorageNode = example(&ns.name)?;
    sn.spec.capacity.0 = "2Gi".into();
    sn.spec.reward_policy = policy_name.to_string();
    let mut gw: GpuWorker = example(&ns.name)?;
    gw.spec.reward_policy = policy_name.to_string();
    apply(&ns.api::<StorageNode>(), &sn).await?;
    apply(&ns.api::<GpuWorker>(), &gw).await?;
    wait_ready(&ns.api::<GpuWorker>(), "gpu-1", |n| n.status.as_ref()).await?;

    // The GPU worker is paid for some epoch, then paid again: its cumulative total rises.
    let gpus = ns.api::<GpuWorker>();
    let first = eventually("gpu-1 status.rewards", REWARD_TIMEOUT, || async {
        Ok(gpus.get("gpu-1").await?.status.and_then(|s| s.rewards))
    })
    .await?;
    let second = eventually("gpu-1 paid in a later epoch", REWARD_TIMEOUT, || async {
        Ok(gpus
            .get("gpu-1")
            .await?
            .status
            .and_then(|s| s.rewards)
            .filter(|r| r.last_epoch > first.last_epoch))
    })
    .await?;
    let cumulative = |s: &str| s.parse::<u128>().unwrap_or(0);
    assert!(cumulative(&second.cumulative) > cumulative(&first.cumulative));
    assert_eq!(
        cumulative(&second.cumulative) - cumulative(&second.last_epoch_reward),
        cumulative(&first.cumulative),
        "no payment lost or doubled in between ({first:?} then {second:?})"
    );

    // Every epoch from genesis to the latest: one record each, created once, adding up.
    let epochs: Api<RewardEpoch> = Api::all(client.clone());
    for n in 0..=second.last_epoch {
        let record = epochs.get(&format!("{policy_name}-{n}")).await?;
        assert_eq!(record.spec.epoch, n);
        let managers = record.metadata.managed_fields.unwrap_or_default();
        // Created once by the reward controller and never updated.
        assert_eq!(managers.len(), 1, "{managers:?}");
        assert_eq!(managers[0].manager.as_deref(), Some("depin-rewards"));
        assert_eq!(record.metadata.generation, Some(1));
        let manifest = operator_get(
            client,
            &format!("/rewards/{policy_name}/epochs/{n}/manifest"),
        )
        .await?;
        let (rewards, header) = manifest_sums(&manifest);
        assert_eq!(
            rewards + header("unallocated"),
            header("emission") + header("remint"),
            "epoch {n}:\n{manifest}"
        );
        assert_eq!(header("emission").to_string(), record.spec.emission);
        assert!(
            manifest.contains(&format!("merkle-root {}", record.spec.merkle_root)),
            "{manifest}"
        );
    }
    // The burns: epoch 1 burned 2 500 DC = 2.5 tokens (8 decimals), re-minted in epoch 2;
    // epoch 2's 500 DC re-minted in epoch 3.
    eventually("epoch 3 closed", REWARD_TIMEOUT, || async {
        Ok(epochs.get_opt(&format!("{policy_name}-3")).await?)
    })
    .await?;
    let mut specs = Vec::new();
    for n in 1..=3 {
        specs.push(epochs.get(&format!("{policy_name}-{n}")).await?.spec);
    }
    let (one, two, three) = (&specs[0], &specs[1], &specs[2]);
    assert_eq!(
        (one.data_credits_burned.as_str(), one.burn.as_str()),
        ("2500", "250000000")
    );
    assert_eq!(
        (two.data_credits_burned.as_str(), two.remint.as_str()),
        ("500", "250000000")
    );
    assert_eq!(
        (three.burn.as_str(), three.remint.as_str()),
        ("0", "50000000")
    );
    let status = policies.get(policy_name).await?.status.unwrap_or_default();
    assert!(status.last_closed_epoch >= Some(second.last_epoch));
    assert_eq!(
        status.conditions.first().map(|c| c.status.as_str()),
        Some("True")
    );

    // The dashboards' series exist for this policy.
    let metrics = operator_get(client, "/metrics").await?;
    for name in [
        "depin_operator_reward_epoch{",
        "depin_operator_reward_epoch_close_duration_seconds_count{",
        "depin_operator_reward_emission_base_units{",
        "depin_operator_reward_burn_base_units{",
        "depin_operator_reward_pool_base_units{",
        "depin_operator_reward_unallocated_base_units{",
        "depin_operator_reward_nodes_rewarded{",
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(name) && l.contains(policy_name)),
            "{name} for {policy_name} missing"
        );
    }

    // A claim from the operator verifies against its epoch's root; a tampered one fails.
    let body = operator_get(
        client,
        &format!("/rewards/{policy_name}/claims/{}/gpu-1", ns.name),
    )
    .await?;
    let json: serde_json::Value = serde_json::from_str(&body)?;
    let bytes = hex::decode(json["claim"].as_str().unwrap_or_default())?;
    let claim = Claim::from_bytes(&bytes).map_err(|r| anyhow::anyhow!("claim: {r:?}"))?;
    assert_eq!(claim.node, format!("{}/gpu-1", ns.name));
    let record = epochs
        .get(&format!("{policy_name}-{}", claim.epoch))
        .await?;
    let mut root = [0u8; 32];
    root.copy_from_slice(&hex::decode(&record.spec.merkle_root)?);
    assert!(verify_claim(&root, &claim), "{body}");
    let mut tampered = claim.clone();
    tampered.cumulative += 1;
    assert!(!verify_claim(&root, &tampered));

    // Retention: keep only the latest epoch's shards. The next close deletes the rest;
    // every RewardEpoch keeps its root, and claims are still served.
    let closed_before = policies
        .get(policy_name)
        .await?
        .status
        .and_then(|s| s.last_closed_epoch)
        .unwrap_or_default();
    let patch = serde_json::json!({"spec": {"manifestRetentionEpochs": 1}});
    policies
        .patch(policy_name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    let shards: Api<ConfigMap> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let selector = format!("depin.dev/reward-policy={policy_name}");
    let (latest, kept) = eventually("old shards deleted", REWARD_TIMEOUT, || async {
        let latest = policies
            .get(policy_name)
            .await?
            .status
            .and_then(|s| s.last_closed_epoch)
            .unwrap_or_default();
        let epochs_held: std::collections::BTreeSet<String> = shards
            .list(&ListParams::default().labels(&selector))
            .await?
            .items
            .iter()
            .filter_map(|c| c.labels().get("depin.dev/reward-epoch").cloned())
            .collect();
        Ok((latest > closed_before && epochs_held.len() == 1).then_some((latest, epochs_held)))
    })
    .await?;
    assert!(
        kept.iter()
            .all(|e| e.parse::<u64>().is_ok_and(|e| e >= latest)),
        "only the latest epoch {latest} keeps shards: {kept:?}"
    );
    for n in 0..=latest {
        let record = epochs.get(&format!("{policy_name}-{n}")).await?;
        assert_eq!(
            record.spec.merkle_root.len(),
            64,
            "epoch {n} keeps its root"
        );
    }
    let body = operator_get(
        client,
        &format!("/rewards/{policy_name}/claims/{}/gpu-1", ns.name),
    )
    .await?;
    assert!(body.contains("claim"), "claims still served: {body}");
    Ok(())
}
