//! Device proof work on a real cluster: a MeterBridge's agent pod reads a simulated SunSpec
//! PV meter (the simulator runs as a pod behind a Service) over Modbus TCP, signs a reading
//! chain, and the verifier's tallies rise in the CR status.

use depin_crds::MeterBridge;
use depin_e2e::testbed::{example, setup, wait_ready};
use depin_e2e::{TestNamespace, apply, apply_documents, eventually};
use std::time::Duration;

/// Simulator image (`cluster.sh load-image depin-sim:dev target/image/sunspec-meter ...`).
fn sim_image() -> String {
    std::env::var("DEPIN_SIM_IMAGE").unwrap_or_else(|_| "localhost/depin-sim:dev".into())
}

#[tokio::test]
async fn a_meter_bridge_proves_readings_from_a_simulated_sunspec_meter() -> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "meter").await?;
    let labels = serde_json::json!({"app.kubernetes.io/name": "sunspec-meter"});
    // The verifier checks PV against the sun at the declared site and the simulator
    // follows the real sun there, so both sit where the sun is overhead as the test runs
    // (it moves 15° an hour: for the test's minutes it stays high).
    let site = under_the_sun(jiff::Timestamp::now().as_millisecond());
    let (lat, lon) = (site.latitude.to_string(), site.longitude.to_string());
    let meter = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "sunspec-1", "namespace": ns.name},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {
                "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "meter", "image": sim_image(), "imagePullPolicy": "IfNotPresent",
                    "command": ["/usr/local/bin/sunspec-meter"],
                    "args": ["--listen", "0.0.0.0:5020", "--capacity-kw", "5", "--serial", "SIM-E2E-1",
                             "--latitude", lat, "--longitude", lon, "--initial-wh", "1000000"],
                    "ports": [{"name": "modbus", "containerPort": 5020, "protocol": "TCP"}],
                    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}
                }]
            }}}
    });
    let service = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "sunspec-1", "namespace": ns.name},
        "spec": {"selector": labels, "ports": [{"name": "modbus", "port": 502, "targetPort": "modbus", "protocol": "TCP"}]}
    });
    apply_documents(&client, &[meter, service]).await?;

    let api = ns.api::<MeterBridge>();
    let mut bridge: MeterBridge = example(&ns.name)?;
    bridge.spec.meter.modbus.host = format!("sunspec-1.{}.svc.cluster.local", ns.name);
    bridge.spec.interval_seconds = 10;
    bridge.spec.location = Some(depin_crds::Location {
        latitude: site.latitude,
        longitude: site.longitude,
    });
    apply(&api, &bridge).await?;
    wait_ready(&api, "meter-roof-1", |n| n.status.as_ref()).await?;
    let tally = eventually(
        "meter readings accepted in status",
        Duration::from_secs(180),
        || async {
            let tally = api.get("meter-roof-1").await?.status.and_then(|s| s.proofs);
            Ok(tally.filter(|t| t.accepted >= 2))
        },
    )
    .await?;
    assert_eq!(
        tally.rejected, 0,
        "an honest meter chain has no rejections: {tally:?}"
    );
    let wh: f64 = tally.work_units.as_deref().unwrap_or("0").parse()?;
    assert!(wh > 0.0, "midday PV produced energy: {tally:?}");
    ns.cleanup().await;
    Ok(())
}

/// The whole-degree point nearest the subsolar point at `unix_ms` (the sun's elevation
/// found by SPA over a 1° grid of the tropics).
fn under_the_sun(unix_ms: i64) -> depin_proof::meter::Site {
    let at = u64::try_from(unix_ms).unwrap_or(0);
    let grid = (-23..=23).flat_map(|lat| (-180..=180).map(move |lon| (lat, lon)));
    grid.filter_map(|(lat, lon)| depin_proof::meter::Site::new(f64::from(lat), f64::from(lon)))
        .max_by(|a, b| {
            let e = |s: &depin_proof::meter::Site| s.sun_elevation_deg(at).unwrap_or(-90.0);
            e(a).total_cmp(&e(b))
        })
        .unwrap_or(depin_proof::meter::Site {
            latitude: 0.0,
            longitude: 0.0,
        })
}

/// (name, true latitude, true longitude, asserted latitude, asserted longitude).
const HOTSPOTS: [(&str, f64, f64, f64, f64); 4] = [
    ("hs-a", 52.3700, 4.8900, 52.3700, 4.8900),
    ("hs-north", 52.3880, 4.8900, 52.3880, 4.8900),
    ("hs-east", 52.3700, 4.9200, 52.3700, 4.9200),
    // 500 m from hs-a in truth, asserting a spot ~59 km north.
    ("hs-liar", 52.3745, 4.8900, 52.9000, 4.8900),
];

/// A distinct gateway EUI per radio, pinned on both sides.
fn medium_eui(name: &str) -> String {
    let index = HOTSPOTS.iter().position(|h| h.0 == name).unwrap_or(0xff);
    format!("AA555A00000001{index:02X}")
}

#[tokio::test]
async fn hotspots_witness_each_other_over_the_rf_medium_and_a_liar_is_rejected()
-> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "poc").await?;
    let api = ns.api::<depin_crds::HotspotGateway>();
    let template: depin_crds::HotspotGateway = example(&ns.name)?;
    for (name, _, _, lat, lon) in HOTSPOTS {
        let mut hs = template.clone();
        hs.metadata.name = Some(name.into());
        hs.spec.location = depin_crds::Location {
            latitude: lat,
            longitude: lon,
        };
        // Witnesses of the same owner's beacons do not count (Helium's same-owner rule).
        hs.spec.payout.wallet = format!("owner-of-{name}");
        // Serve only the medium: its EUI for this radio, from the pod network.
        hs.spec.packet_forwarder.gateway_eui = Some(medium_eui(name));
        hs.spec.packet_forwarder.source_cidrs = vec!["10.244.0.0/16".into()];
        hs.spec.packet_forwarder.source_pod_labels = [(
            "app.kubernetes.io/name".to_string(),
            "rf-medium".to_string(),
        )]
        .into();
        apply(&api, &hs).await?;
    }
    // The medium plays every radio: one packet-forwarder client per hotspot, aimed at the
    // hotspot's UDP Service, placed where the antenna really is.
    let radios: Vec<serde_json::Value> = HOTSPOTS
        .iter()
        .map(|(name, lat, lon, _, _)| {
            serde_json::json!({
                "name": name, "agent": format!("{name}-pf.{}.svc.cluster.local:1680", ns.name),
                "gatewayEui": medium_eui(name),
                "region": "EU868", "location": {"latitude": lat, "longitude": lon}, "antennaGainDbi": 3.0
            })
        })
        .collect();
    let medium = serde_json::json!({"seed": 42, "pathLossExponent": 2.9, "shadowingSigmaDb": 0.0, "hotspots": radios});
    let labels = serde_json::json!({"app.kubernetes.io/name": "rf-medium"});
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "rf-medium", "namespace": ns.name},
        "data": {"medium.yaml": serde_yaml::to_string(&medium)?}
    });
    let deployment = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "rf-medium", "namespace": ns.name},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {
                "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                "volumes": [{"name": "config", "configMap": {"name": "rf-medium"}}],
                "containers": [{
                    "name": "medium", "image": sim_image(), "imagePullPolicy": "IfNotPresent",
                    "command": ["/usr/local/bin/rf-medium"], "args": ["--config", "/etc/medium/medium.yaml"],
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/medium"}],
                    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}
                }]
            }}}
    });
    for (name, ..) in HOTSPOTS {
        wait_ready(&api, name, |n| n.status.as_ref()).await?;
    }
    apply_documents(&client, &[config, deployment]).await?;
    // Honest hotspots earn accepted reports; the liar's witnesses fail the RSSI bound.
    for (name, ..) in &HOTSPOTS[..3] {
        eventually(
            &format!("{name} has accepted PoC reports"),
            Duration::from_secs(240),
            || async {
                let tally = api.get(name).await?.status.and_then(|s| s.proofs);
                Ok(tally.filter(|t| t.accepted >= 1))
            },
        )
        .await?;
    }
    let liar = eventually(
        "the liar's witnesses rejected",
        Duration::from_secs(240),
        || async {
            let tally = api.get("hs-liar").await?.status.and_then(|s| s.proofs);
            Ok(tally.filter(|t| t.rejected >= 1))
        },
    )
    .await?;
    let distance_or_rssi = ["BadRssi", "AboveMaxDistance", "BelowMinDistance"];
    assert!(
        liar.rejected_by_reason
            .keys()
            .any(|r| distance_or_rssi.contains(&r.as_str())),
        "liar rejected for another reason: {liar:?}"
    );
    ns.cleanup().await;
    Ok(())
}

/// The operator's verifier endpoint as seen from this host (the Service's cluster IP).
async fn verifier_endpoint(client: &kube::Client) -> anyhow::Result<String> {
    use depin_e2e::deploy::{OPERATOR, OPERATOR_NAMESPACE};
    let svc = kube::Api::<k8s_openapi::api::core::v1::Service>::namespaced(
        client.clone(),
        OPERATOR_NAMESPACE,
    )
    .get(OPERATOR)
    .await?;
    let ip = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .ok_or_else(|| anyhow::anyhow!("operator Service has no IP"))?;
    Ok(format!("http://{ip}:50051"))
}

#[tokio::test]
async fn a_meter_rolled_back_is_rejected_in_status_and_metrics() -> anyhow::Result<()> {
    use depin_e2e::rogue::RogueSession;
    use depin_e2e::testbed::secret_seed;
    use depin_proof::identity::NodeKey;
    use depin_proof::meter::ChainHead;
    use depin_proof::reject::RejectReason;
    use depin_proto::v1::agent_message::Body as Out;

    let client = setup().await?;
    let ns = TestNamespace::create(&client, "rollback").await?;
    let api = ns.api::<MeterBridge>();
    // The bridge exists (its key is known) but runs no agent: the test speaks for it.
    let mut bridge: MeterBridge = example(&ns.name)?;
    bridge.metadata.name = Some("meter-rogue".into());
    bridge.spec.interval_seconds = 60;
    bridge.spec.agent = Some(depin_crds::AgentSpec {
        replicas: Some(0),
        ..depin_crds::AgentSpec::default()
    });
    apply(&api, &bridge).await?;
    let secrets = ns.api::<k8s_openapi::api::core::v1::Secret>();
    let seed = eventually("meter-rogue identity", Duration::from_secs(120), || async {
        Ok(secrets
            .get_opt("meter-rogue-identity")
            .await?
            .map(|s| secret_seed(&s))
            .filter(|s| !s.is_empty()))
    })
    .await?;
    let key = NodeKey::from_hex(&seed, "ed25519.key")?;
    eventually(
        "meter-rogue key published",
        Duration::from_secs(60),
        || async {
            let status = api.get("meter-rogue").await?.status;
            Ok(status
                .and_then(|s| s.public_key)
                .filter(|k| *k == key.public().to_hex()))
        },
    )
    .await?;
    let endpoint = verifier_endpoint(&client).await?;
    let mut session = RogueSession::open_as(&endpoint, key.clone(), "meter")
        .await?
        .map_err(|s| anyhow::anyhow!("refused: {s}"))?;
    let slot_ms = 60_000;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let now_slot = now_ms / slot_ms;
    let mut head = ChainHead::default();
    // A baseline, then the same meter reporting less energy a slot later.
    let serial = format!("ROGUE-{}", ns.name);
    let baseline = head
        .next(&key, &serial, now_slot - 1, 1_000_000, 0, 1)
        .ok_or_else(|| anyhow::anyhow!("baseline"))?;
    session
        .send(Out::MeterReading(depin_proto::wire::meter_reading_to_wire(
            &baseline,
        )))
        .await?;
    assert_eq!(
        session.receipt().await?.verdict,
        Ok(()),
        "baseline accepted"
    );
    let rollback = head
        .next(&key, &serial, now_slot, 990_000, 0, 1)
        .ok_or_else(|| anyhow::anyhow!("rollback"))?;
    session
        .send(Out::MeterReading(depin_proto::wire::meter_reading_to_wire(
            &rollback,
        )))
        .await?;
    assert_eq!(
        session.receipt().await?.verdict,
        Err(RejectReason::RegisterRollback)
    );
    // Durable in the CR's status, and counted by reason in the operator's metrics.
    let tally = eventually("rollback in status", Duration::from_secs(30), || async {
        let tally = api.get("meter-rogue").await?.status.and_then(|s| s.proofs);
        Ok(tally.filter(|t| t.rejected_by_reason.contains_key("RegisterRollback")))
    })
    .await?;
    assert_eq!((tally.accepted, tally.rejected), (1, 1), "{tally:?}");
    let metrics = depin_e2e::operator_get(&client, "/metrics").await?;
    let counted = metrics.lines().any(|l| {
        l.starts_with("depin_operator_proofs_rejected_total{")
            && l.contains("kind=\"MeterBridge\"")
            && l.contains("reason=\"RegisterRollback\"")
            && !l.ends_with(" 0")
    });
    assert!(counted, "RegisterRollback not counted in /metrics");
    ns.cleanup().await;
    Ok(())
}
