//! An agent killed with SIGKILL mid-work comes back with the same identity, keeps its
//! sealed sectors (state on the volume), and nothing it proved counts twice.
#![allow(clippy::unwrap_used)]

use depin_crds::StorageNode;
use depin_e2e::testbed::{example, secret_pub, setup, wait_ready};
use depin_e2e::{TestNamespace, apply, eventually};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{DeleteParams, LogParams};
use std::time::{Duration, Instant};

/// Storage proving period of the test values (`storageProvingPeriod`): each sector is
/// proven once per period.
const PERIOD_S: u64 = 60;
const SECTORS: u64 = 2;

#[tokio::test]
async fn a_killed_agent_resumes_with_its_identity_and_counts_nothing_twice() -> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "agent-kill").await?;
    let api = ns.api::<StorageNode>();
    let mut sn: StorageNode = example(&ns.name)?;
    sn.spec.capacity.0 = format!("{SECTORS}Gi");
    apply(&api, &sn).await?;
    let ready = wait_ready(&api, "sn-1", |n| n.status.as_ref()).await?;
    let key = ready.public_key.clone().unwrap();
    let accepted = || async {
        let status = api.get("sn-1").await?.status.unwrap_or_default();
        anyhow::Ok(status.proofs.map_or(0, |t| t.accepted))
    };
    eventually("sn-1 proving", Duration::from_secs(240), || async {
        Ok((accepted().await? >= 1).then_some(()))
    })
    .await?;
    let (start, before) = (Instant::now(), accepted().await?);

    let pods = ns.api::<Pod>();
    let pids = depin_e2e::chaos::pids_of("depin-agent", "sn-1-0");
    if pids.is_empty() {
        // Not on the harness node: the closest thing is a pod delete without grace.
        pods.delete("sn-1-0", &DeleteParams::default().grace_period(0))
            .await?;
    } else {
        depin_e2e::chaos::kill_9(&pids)?;
    }
    // Back up: restarted in place (SIGKILL) or re-created (delete), Ready again.
    eventually(
        "sn-1-0 back and ready",
        Duration::from_secs(180),
        || async {
            let pod = pods.get_opt("sn-1-0").await?;
            let Some(status) = pod.and_then(|p| p.status) else {
                return Ok(None);
            };
            let restarted = status
                .container_statuses
                .as_ref()
                .is_some_and(|cs| cs.iter().any(|c| c.restart_count >= 1))
                || pids.is_empty();
            let ready = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            Ok((restarted && ready).then_some(()))
        },
    )
    .await?;
    // Same identity: the Secret and the status key did not change.
    let secret = ns.api::<Secret>().get("sn-1-identity").await?;
    assert_eq!(secret_pub(&secret), key);
    // It proves again, with the sectors sealed before the kill (no re-seal on restart).
    let after_restart = accepted().await?;
    eventually(
        "sn-1 proving after the restart",
        Duration::from_secs(240),
        || async { Ok((accepted().await? > after_restart).then_some(())) },
    )
    .await?;
    let status = api.get("sn-1").await?.status.unwrap_or_default();
    assert_eq!(status.public_key.as_deref(), Some(key.as_str()));
    let logs = pods.logs("sn-1-0", &LogParams::default()).await?;
    let reloaded = |n: u64| {
        logs.contains(&format!("reloaded={n}")) || logs.contains(&format!("\"reloaded\":{n}"))
    };
    let filled_none = logs.contains("filled=0") || logs.contains("\"filled\":0");
    assert!(
        pids.is_empty() || (reloaded(SECTORS) && filled_none),
        "the restarted agent did not reuse its {SECTORS} sealed sectors:\n{logs}"
    );
    // Nothing counted twice: at most one accepted proof per sector per proving period.
    let elapsed = start.elapsed().as_secs();
    let gained = accepted().await? - before;
    let most = SECTORS * (elapsed / PERIOD_S + 2);
    assert!(
        gained <= most,
        "{gained} proofs accepted in {elapsed} s; at most {most} deadlines were due"
    );
    println!("after SIGKILL: same key, {gained} proofs in {elapsed} s (at most {most} due)");
    ns.cleanup().await;
    Ok(())
}
