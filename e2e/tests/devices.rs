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
    // Midsummer noon in Amsterdam, real-time speed: the energy per slot stays within the
    // verifier's capacity bound (it would not at a faster simulated speed).
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
                             "--start-unix", "1782039600", "--initial-wh", "1000000"],
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

/// (name, true latitude, true longitude, asserted latitude, asserted longitude).
const HOTSPOTS: [(&str, f64, f64, f64, f64); 4] = [
    ("hs-a", 52.3700, 4.8900, 52.3700, 4.8900),
    ("hs-north", 52.3880, 4.8900, 52.3880, 4.8900),
    ("hs-east", 52.3700, 4.9200, 52.3700, 4.9200),
    // 500 m from hs-a in truth, asserting a spot ~59 km north.
    ("hs-liar", 52.3745, 4.8900, 52.9000, 4.8900),
];

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
        apply(&api, &hs).await?;
    }
    // The medium plays every radio: one packet-forwarder client per hotspot, aimed at the
    // hotspot's UDP Service, placed where the antenna really is.
    let radios: Vec<serde_json::Value> = HOTSPOTS
        .iter()
        .map(|(name, lat, lon, _, _)| {
            serde_json::json!({
                "name": name, "agent": format!("{name}-pf.{}.svc.cluster.local:1680", ns.name),
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
