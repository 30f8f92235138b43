//! Rogue nodes on a real cluster, judged by what they are PAID: each test runs an honest
//! node and a cheating one of the same kind under one short-epoch RewardPolicy, waits for
//! a closed epoch in which the honest node was paid, and asserts on that epoch's manifest
//! (the cheat earns nothing for work it did not do) and on the cheat's rejection reasons.
//! The in-process suites (operator/tests/adversarial_*.rs) play every attack; these prove
//! the same defences hold with the agents running as pods.

use depin_crds::{GpuWorker, RewardPolicy};
use depin_e2e::testbed::{example, setup, wait_ready};
use depin_e2e::{TestNamespace, apply, eventually, operator_get};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;

/// Nodes need a minute to become Ready and a few epochs to earn.
const REWARD_TIMEOUT: Duration = Duration::from_secs(300);

/// Node id → reward of epoch `n`'s manifest (`node <id> reward=<r> cumulative=<c>` lines).
async fn epoch_rewards(
    client: &Client,
    policy: &str,
    n: u64,
) -> anyhow::Result<BTreeMap<String, u128>> {
    let manifest = operator_get(client, &format!("/rewards/{policy}/epochs/{n}/manifest")).await?;
    Ok(manifest
        .lines()
        .filter_map(|l| {
            let mut parts = l.strip_prefix("node ")?.split(' ');
            let id = parts.next()?.to_string();
            let reward = parts.next()?.strip_prefix("reward=")?.parse().ok()?;
            Some((id, reward))
        })
        .collect())
}

/// A cluster-scoped policy named `name`: `epoch_seconds` epochs, 5 s grace, the example's
/// pools.
async fn short_policy(
    client: &Client,
    ns: &str,
    name: &str,
    epoch_seconds: u64,
) -> anyhow::Result<()> {
    let policies: Api<RewardPolicy> = Api::all(client.clone());
    let mut policy: RewardPolicy = example(ns)?;
    policy.metadata.namespace = None;
    policy.metadata.name = Some(name.to_string());
    policy.spec.epoch_seconds = epoch_seconds;
    policy.spec.grace_seconds = 5;
    apply(&policies, &policy).await?;
    Ok(())
}

/// The first closed epoch of `policy` whose manifest pays `honest` (node id), and its
/// rewards.
async fn first_epoch_paying(
    client: &Client,
    policy: &str,
    honest: &str,
) -> anyhow::Result<(u64, BTreeMap<String, u128>)> {
    let policies: Api<RewardPolicy> = Api::all(client.clone());
    eventually(
        &format!("an epoch of {policy} that pays {honest}"),
        REWARD_TIMEOUT,
        || async {
            let closed = policies
                .get(policy)
                .await?
                .status
                .and_then(|s| s.last_closed_epoch);
            let Some(last) = closed else { return Ok(None) };
            for n in 0..=last {
                let rewards = epoch_rewards(client, policy, n).await?;
                if rewards.get(honest).is_some_and(|r| *r > 0) {
                    return Ok(Some((n, rewards)));
                }
            }
            Ok(None)
        },
    )
    .await
}

/// A CPU claiming a datacenter GPU class: the agent runs the real CPU backend but its
/// GpuWorker declares an H100's throughput. Every challenge of that class is TooSlow, so
/// it earns nothing, while an honest CPU-class worker in the same epoch is paid.
#[tokio::test]
async fn a_cpu_claiming_a_gpu_class_is_paid_nothing() -> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "rogue-gpu").await?;
    let policy = format!("{}-policy", ns.name);
    let result = gpu_class_liar(&client, &ns, &policy).await;
    depin_e2e::fleet::delete_policy(&client, &policy).await;
    ns.cleanup().await;
    result
}

async fn gpu_class_liar(client: &Client, ns: &TestNamespace, policy: &str) -> anyhow::Result<()> {
    short_policy(client, &ns.name, policy, 20).await?;
    let mut honest: GpuWorker = example(&ns.name)?;
    honest.metadata.name = Some("gpu-honest".into());
    honest.spec.model = "cpu".into();
    honest.spec.declared_tops = CPU_CLASS_TOPS;
    honest.spec.reward_policy = policy.to_string();
    let mut liar = honest.clone();
    liar.metadata.name = Some("gpu-liar".into());
    liar.spec.model = "H100".into();
    liar.spec.declared_tops = 1000.0;
    let api = ns.api::<GpuWorker>();
    apply(&api, &honest).await?;
    apply(&api, &liar).await?;
    wait_ready(&api, "gpu-honest", |n| n.status.as_ref()).await?;
    wait_ready(&api, "gpu-liar", |n| n.status.as_ref()).await?;

    let honest_id = format!("{}/gpu-honest", ns.name);
    let liar_id = format!("{}/gpu-liar", ns.name);
    let (n, rewards) = first_epoch_paying(client, policy, &honest_id).await?;
    assert_eq!(
        rewards.get(&liar_id).copied().unwrap_or(0),
        0,
        "epoch {n}: the CPU claiming an H100 was paid: {rewards:?}"
    );
    // The current and the frozen previous epoch's tallies, whichever holds the refusals.
    let status = api.get("gpu-liar").await?.status.unwrap_or_default();
    let too_slow: u64 = [status.proofs.as_ref(), status.previous_proofs.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|p| p.rejected_by_reason.get("TooSlow").copied())
        .sum();
    assert!(
        too_slow > 0,
        "the liar's challenges are refused TooSlow: {status:?}"
    );
    Ok(())
}

/// Declared throughput of the CPU class (int8 TOPS): what the CPU backend sustains here.
const CPU_CLASS_TOPS: f64 = 0.001;
