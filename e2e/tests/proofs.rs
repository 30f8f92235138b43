//! The proof pipeline on a real cluster: agents run as pods (StorageNode with a real PVC,
//! GpuWorker on the advertised test GPU, falling back to the CPU backend), proofs flow and
//! the CR tallies rise; an unknown key, a replayed response and a late response are each
//! rejected with their reason and counted.

use depin_crds::{AgentSpec, GpuWorker, StorageNode};
use depin_e2e::deploy::{OPERATOR, OPERATOR_NAMESPACE};
use depin_e2e::rogue::RogueSession;
use depin_e2e::testbed::{example, secret_seed, setup, wait_ready};
use depin_e2e::{TestNamespace, apply, eventually};
use depin_proof::identity::NodeKey;
use depin_proof::reject::RejectReason;
use depin_proto::v1::agent_message::Body as Out;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};
use std::time::Duration;

const PROOF_TIMEOUT: Duration = Duration::from_secs(240);

/// The operator's /metrics, read through the API server's service proxy (works on any cluster).
async fn operator_metrics(client: &Client) -> anyhow::Result<String> {
    let path =
        format!("/api/v1/namespaces/{OPERATOR_NAMESPACE}/services/{OPERATOR}:http/proxy/metrics");
    let request = http::Request::get(path).body(Vec::new())?;
    Ok(client.request_text(request).await?)
}

/// The value of the series whose name and labels contain every `needle`.
fn metric(text: &str, name: &str, needles: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn proofs_flow_and_lies_are_rejected_with_their_reason() -> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "proofs").await?;
    let mut sn: StorageNode = example(&ns.name)?;
    sn.spec.capacity.0 = "2Gi".into();
    let gw: GpuWorker = example(&ns.name)?;
    // The rogue's node exists (so its key is known) but runs no agent: the test speaks for it.
    let mut rogue_node = gw.clone();
    rogue_node.metadata.name = Some("gpu-rogue".into());
    rogue_node.spec.agent = Some(AgentSpec {
        replicas: Some(0),
        ..AgentSpec::default()
    });
    apply(&ns.api::<StorageNode>(), &sn).await?;
    apply(&ns.api::<GpuWorker>(), &gw).await?;
    apply(&ns.api::<GpuWorker>(), &rogue_node).await?;

    wait_ready(&ns.api::<StorageNode>(), "sn-1", |n| n.status.as_ref()).await?;
    wait_ready(&ns.api::<GpuWorker>(), "gpu-1", |n| n.status.as_ref()).await?;
    for (name, api) in [("sn-1", None), ("gpu-1", Some(ns.api::<GpuWorker>()))] {
        eventually(
            &format!("{name} has accepted proofs in status"),
            PROOF_TIMEOUT,
            || async {
                let tally = match &api {
                    Some(api) => api.get(name).await?.status.and_then(|s| s.proofs),
                    None => ns
                        .api::<StorageNode>()
                        .get(name)
                        .await?
                        .status
                        .and_then(|s| s.proofs),
                };
                Ok(tally
                    .filter(|t| t.accepted >= 1 && t.work_units.is_some())
                    .map(|_| ()))
            },
        )
        .await?;
    }
    // The GPU agent found no GPU here and said so, and still proved work on the CPU.
    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels("depin.dev/node=gpu-1"))
        .await?;
    let pod = pods
        .items
        .first()
        .ok_or_else(|| anyhow::anyhow!("no gpu-1 pod"))?;
    let logs = ns
        .api::<Pod>()
        .logs(
            pod.metadata.name.as_deref().unwrap_or_default(),
            &LogParams::default(),
        )
        .await?;
    assert!(
        logs.contains("no CUDA device found; using the CPU backend"),
        "{logs}"
    );

    let svc = Api::<Service>::namespaced(client.clone(), OPERATOR_NAMESPACE)
        .get(OPERATOR)
        .await?;
    let ip = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .ok_or_else(|| anyhow::anyhow!("operator Service has no IP"))?;
    let endpoint = format!("http://{ip}:50051");

    // 1. A key no node has: refused at hello.
    let refused = RogueSession::open(&endpoint, NodeKey::generate())
        .await?
        .err()
        .expect("unknown key refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(
        refused.message().starts_with("UnknownNode"),
        "{}",
        refused.message()
    );

    // 2. The rogue node's real key: an honest proof, then the same opening again.
    let seed = eventually("gpu-rogue identity", PROOF_TIMEOUT, || async {
        Ok(ns
            .api::<Secret>()
            .get_opt("gpu-rogue-identity")
            .await?
            .map(|s| secret_seed(&s))
            .filter(|s| !s.is_empty()))
    })
    .await?;
    let key = NodeKey::from_hex(&seed, "ed25519.key")?;
    let mut session = RogueSession::open(&endpoint, key)
        .await?
        .map_err(|s| anyhow::anyhow!("refused: {s}"))?;
    let work = session.commit_next_gpu_challenge(Duration::ZERO).await?;
    let opening = session.open_rows(&work).await?;
    assert_eq!(
        session.receipt().await?.verdict,
        Ok(()),
        "honest opening accepted"
    );
    session.send(Out::GpuOpening(opening)).await?;
    assert_eq!(
        session.receipt().await?.verdict,
        Err(RejectReason::Replay),
        "replay rejected"
    );

    // 3. A commitment after the deadline (10 s in the test values).
    let _late = session
        .commit_next_gpu_challenge(Duration::from_secs(12))
        .await?;
    let late = session.receipt().await?.verdict;
    assert!(
        matches!(
            late,
            Err(RejectReason::AfterWindow) | Err(RejectReason::TooSlow)
        ),
        "late commitment: {late:?}"
    );

    // Recorded durably in the CR, and counted in metrics by reason.
    let tally = eventually("rogue tally recorded", PROOF_TIMEOUT, || async {
        let tally = ns
            .api::<GpuWorker>()
            .get("gpu-rogue")
            .await?
            .status
            .and_then(|s| s.proofs);
        Ok(tally.filter(|t| t.accepted >= 1 && t.rejected >= 1))
    })
    .await?;
    let late_reason = late.err().map(|r| r.as_str()).unwrap_or_default();
    assert_eq!(
        tally.rejected_by_reason.get(late_reason),
        Some(&1),
        "{tally:?}"
    );
    let text = operator_metrics(&client).await?;
    for reason in ["UnknownNode", "Replay", late_reason] {
        let count = metric(
            &text,
            "depin_operator_proofs_rejected_total",
            &[&format!("reason=\"{reason}\"")],
        );
        assert!(
            count >= 1.0,
            "{reason} not counted in depin_operator_proofs_rejected_total"
        );
    }
    assert!(
        metric(
            &text,
            "depin_operator_proofs_accepted_total",
            &["kind=\"StorageNode\""]
        ) >= 1.0
    );
    assert!(
        metric(
            &text,
            "depin_operator_proofs_accepted_total",
            &["kind=\"GpuWorker\""]
        ) >= 1.0
    );
    ns.cleanup().await;
    Ok(())
}
