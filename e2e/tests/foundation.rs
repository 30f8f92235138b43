//! The foundation on a real cluster: CRDs, the operator as a least-privilege pod, and each
//! node kind reconciled into ready agent pods. Run by the test command with
//! `cargo test -p depin-e2e --features cluster -- --test-threads=1`.

use depin_crds::{GpuWorker, HotspotGateway, MeterBridge, StorageNode};
use depin_e2e::deploy::{OPERATOR, OPERATOR_NAMESPACE};
use depin_e2e::testbed::{READY_TIMEOUT, example, secret_pub, setup, wait_ready};
use depin_e2e::{TestNamespace, apply, condition, eventually, repo_root, yaml_documents};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::{Api, ResourceExt};

#[tokio::test]
async fn documented_examples_are_accepted_exactly_as_written() -> anyhow::Result<()> {
    let client = setup().await?;
    let text = std::fs::read_to_string(repo_root().join("examples/minimal-fleet.yaml"))?;
    let mut accepted = Vec::new();
    for doc in yaml_documents(&text)? {
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let gvk = GroupVersionKind::gvk("depin.dev", "v1alpha1", &kind);
        let (resource, caps) = kube::discovery::pinned_kind(&client, &gvk).await?;
        let api: Api<DynamicObject> = match caps.scope {
            // The examples name namespace `fleet`; a server-side dry run needs it to exist.
            kube::discovery::Scope::Namespaced => {
                let ns = doc["metadata"]["namespace"].as_str().unwrap_or("default");
                let namespaces: Api<k8s_openapi::api::core::v1::Namespace> =
                    Api::all(client.clone());
                let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                namespaces
                    .patch(ns, &PatchParams::apply("depin-e2e"), &Patch::Apply(body))
                    .await?;
                Api::namespaced_with(client.clone(), ns, &resource)
            }
            kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let obj: DynamicObject = serde_json::from_value(doc)?;
        // A server-side dry run validates against the installed schema without storing
        // anything (apply rather than create: "default" may already exist).
        let name = obj.metadata.name.clone().unwrap_or_default();
        let params = PatchParams::apply("depin-e2e-examples").force().dry_run();
        api.patch(&name, &params, &Patch::Apply(&obj))
            .await
            .map_err(|e| anyhow::anyhow!("{kind} example refused: {e}"))?;
        accepted.push(kind);
    }
    assert_eq!(
        accepted,
        [
            "RewardPolicy",
            "HotspotGateway",
            "StorageNode",
            "GpuWorker",
            "MeterBridge"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn an_imported_identity_secret_is_used_as_is() -> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "import").await?;
    let key = depin_proof::identity::NodeKey::from_seed([42; 32]);
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("my-hotspot-key".into()),
            ..Default::default()
        },
        string_data: Some([("ed25519.key".to_string(), key.seed_hex())].into()),
        ..Default::default()
    };
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let api = ns.api::<HotspotGateway>();
    let mut hs: HotspotGateway = example(&ns.name)?;
    hs.spec.identity = Some(depin_crds::IdentitySpec {
        secret_name: Some("my-hotspot-key".into()),
        retain_on_delete: None,
    });
    apply(&api, &hs).await?;
    let status = wait_ready(&api, "hs-amsterdam-1", |n| n.status.as_ref()).await?;
    assert_eq!(status.public_key, Some(key.public().to_hex()));
    assert_eq!(status.identity_secret.as_deref(), Some("my-hotspot-key"));
    assert!(
        ns.api::<Secret>()
            .get_opt("hs-amsterdam-1-identity")
            .await?
            .is_none(),
        "no key generated"
    );
    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels("depin.dev/node=hs-amsterdam-1"))
        .await?;
    let volumes = pods.items[0]
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    assert!(volumes.iter().any(
        |v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("my-hotspot-key")
    ));
    ns.cleanup().await;
    Ok(())
}

/// A node that names another node's generated identity Secret would share its key and
/// take its proofs: it is refused with a `DuplicateKey` condition and gets no workload,
/// while the holder stays ready with its key.
#[tokio::test]
async fn a_node_naming_another_nodes_identity_is_refused() -> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "squat").await?;
    let api = ns.api::<HotspotGateway>();
    let holder: HotspotGateway = example(&ns.name)?;
    apply(&api, &holder).await?;
    let held = wait_ready(&api, "hs-amsterdam-1", |n| n.status.as_ref()).await?;
    let mut squatter: HotspotGateway = example(&ns.name)?;
    squatter.metadata.name = Some("hs-squatter".into());
    squatter.spec.identity = Some(depin_crds::IdentitySpec {
        secret_name: Some("hs-amsterdam-1-identity".into()),
        retain_on_delete: None,
    });
    apply(&api, &squatter).await?;
    let refused = eventually("squatter refused", READY_TIMEOUT, || async {
        let node = api.get("hs-squatter").await?;
        let status = node.status.unwrap_or_default();
        Ok(status
            .conditions
            .iter()
            .find(|c| c.type_ == "Degraded" && c.status == "True")
            .map(|c| {
                (
                    c.reason.clone(),
                    c.message.clone(),
                    status.public_key.clone(),
                )
            }))
    })
    .await?;
    assert_eq!(refused.0, "DuplicateKey");
    assert!(
        refused.1.contains("HotspotGateway") && refused.1.contains("hs-amsterdam-1"),
        "names the holder: {}",
        refused.1
    );
    assert_eq!(refused.2, None, "the squatter never shows the key");
    assert!(
        ns.api::<Deployment>()
            .get_opt("hs-squatter")
            .await?
            .is_none(),
        "no agent runs for the squatter"
    );
    let still = api.get("hs-amsterdam-1").await?.status.unwrap_or_default();
    assert_eq!(still.public_key, held.public_key);
    assert_eq!(condition(Some(&still), "Ready").as_deref(), Some("True"));
    ns.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn invalid_resources_are_refused_naming_the_field() -> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "invalid").await?;
    let dir = repo_root().join("e2e/fixtures/invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .expect("expect comment")
            .trim()
            .to_string();
        let doc = yaml_documents(&text)?.remove(0);
        let gvk =
            GroupVersionKind::gvk("depin.dev", "v1alpha1", doc["kind"].as_str().expect("kind"));
        let (resource, caps) = kube::discovery::pinned_kind(&client, &gvk).await?;
        let api: Api<DynamicObject> = match caps.scope {
            kube::discovery::Scope::Namespaced => {
                Api::namespaced_with(client.clone(), &ns.name, &resource)
            }
            kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let obj: DynamicObject = serde_json::from_value(doc)?;
        let err = api
            .create(&PostParams::default(), &obj)
            .await
            .expect_err(&format!("{} must be refused", path.display()));
        let kube::Error::Api(status) = err else {
            anyhow::bail!("{}: unexpected error {err}", path.display())
        };
        assert_eq!(status.code, 422, "{}: {}", path.display(), status.message);
        assert!(
            status.message.contains(&expect),
            "{}: message {:?} does not name {expect}",
            path.display(),
            status.message
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} invalid fixtures checked");
    ns.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn operator_runs_as_a_pod_with_least_privilege() -> anyhow::Result<()> {
    let client = setup().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let list = pods
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/name={OPERATOR}")))
        .await?;
    let pod = list.items.first().expect("operator pod");
    let spec = pod.spec.as_ref().expect("spec");
    assert_eq!(spec.service_account_name.as_deref(), Some(OPERATOR));
    let user = format!("system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR}");
    let can = |verb: &str, group: &str, resource: &str, namespace: Option<&str>| {
        let client = client.clone();
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.clone()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    namespace: namespace.map(str::to_string),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        async move {
            let api: Api<SubjectAccessReview> = Api::all(client);
            let result = api.create(&PostParams::default(), &review).await?;
            anyhow::Ok(result.status.map(|s| s.allowed).unwrap_or(false))
        }
    };
    assert!(can("patch", "apps", "deployments", Some("fleet")).await?);
    assert!(can("create", "", "secrets", Some("fleet")).await?);
    assert!(can("patch", "depin.dev", "storagenodes/status", Some("fleet")).await?);
    assert!(
        !can("list", "", "secrets", None).await?,
        "must not list every Secret"
    );
    assert!(
        !can("delete", "", "secrets", Some("fleet")).await?,
        "must not delete identity Secrets"
    );
    assert!(!can("delete", "", "nodes", None).await?);
    assert!(
        !can(
            "create",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            None
        )
        .await?
    );
    assert!(
        !can("update", "depin.dev", "rewardepochs", None).await?,
        "epochs are immutable"
    );
    assert!(
        !can("create", "coordination.k8s.io", "leases", Some("default")).await?,
        "leases only in its own namespace"
    );
    Ok(())
}

#[tokio::test]
async fn every_kind_becomes_ready_with_its_children() -> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "kinds").await?;
    let hs: HotspotGateway = example(&ns.name)?;
    let sn: StorageNode = {
        let mut sn: StorageNode = example(&ns.name)?;
        // 100Gi is the documented example; the local hostPath provisioner does not
        // allocate, but keep the test volume small anyway.
        sn.spec.capacity.0 = "2Gi".into();
        sn
    };
    let gw: GpuWorker = example(&ns.name)?;
    let mb: MeterBridge = example(&ns.name)?;
    apply(&ns.api::<HotspotGateway>(), &hs).await?;
    apply(&ns.api::<StorageNode>(), &sn).await?;
    apply(&ns.api::<GpuWorker>(), &gw).await?;
    apply(&ns.api::<MeterBridge>(), &mb).await?;

    let hs_status = wait_ready(&ns.api::<HotspotGateway>(), "hs-amsterdam-1", |n| {
        n.status.as_ref()
    })
    .await?;
    let sn_status = wait_ready(&ns.api::<StorageNode>(), "sn-1", |n| n.status.as_ref()).await?;
    let gw_status = wait_ready(&ns.api::<GpuWorker>(), "gpu-1", |n| n.status.as_ref()).await?;
    let mb_status = wait_ready(&ns.api::<MeterBridge>(), "meter-roof-1", |n| {
        n.status.as_ref()
    })
    .await?;

    let secrets = ns.api::<Secret>();
    for (name, status) in [
        ("hs-amsterdam-1", &hs_status),
        ("sn-1", &sn_status),
        ("gpu-1", &gw_status),
        ("meter-roof-1", &mb_status),
    ] {
        let secret = secrets.get(&format!("{name}-identity")).await?;
        assert_eq!(
            status.public_key.as_deref(),
            Some(secret_pub(&secret).as_str()),
            "{name} status key"
        );
        assert!(
            secret.owner_references().is_empty(),
            "{name}: retained Secret must not be garbage collected"
        );
        let cm = ns.api::<ConfigMap>().get(&format!("{name}-agent")).await?;
        assert_eq!(cm.owner_references()[0].name, name);
        let config = &cm.data.as_ref().expect("data")["agent.yaml"];
        assert!(config.contains(&format!("name: {name}")), "{config}");
        assert_eq!(status.ready_replicas, Some(1));
        assert!(status.observed_generation.is_some());
    }
    let svc = ns.api::<Service>().get("hs-amsterdam-1-pf").await?;
    let port = &svc
        .spec
        .as_ref()
        .expect("spec")
        .ports
        .as_ref()
        .expect("ports")[0];
    assert_eq!((port.port, port.protocol.as_deref()), (1680, Some("UDP")));
    let sts = ns.api::<StatefulSet>().get("sn-1").await?;
    assert_eq!(sts.owner_references()[0].kind, "StorageNode");
    let pvc = ns
        .api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>()
        .get("data-sn-1-0")
        .await?;
    assert_eq!(
        pvc.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Bound")
    );
    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels("depin.dev/node=gpu-1"))
        .await?;
    let gpu_pod = pods.items.first().expect("gpu pod");
    let limits = gpu_pod.spec.as_ref().expect("spec").containers[0]
        .resources
        .as_ref()
        .and_then(|r| r.limits.clone())
        .expect("limits");
    assert_eq!(limits["nvidia.com/gpu"].0, "1");

    // `kubectl depin status` sees the same fleet, all Ready, with keys.
    let rows = depin_cli::fleet(&client, Some(&ns.name)).await?;
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.ready()), "{rows:?}");
    let table = depin_cli::render(&rows, jiff::Timestamp::now());
    assert!(
        table.contains("hs-amsterdam-1") && table.contains("meter-roof-1"),
        "{table}"
    );

    // `kubectl get depin` lists the fleet: every node kind carries the category.
    let discovery = kube::Discovery::new(client.clone())
        .filter(&["depin.dev"])
        .run()
        .await?;
    let mut kinds: Vec<String> = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .filter(|(r, _): &(ApiResource, _)| r.kind != "RewardEpoch" && r.kind != "RewardPolicy")
        .map(|(r, _)| r.kind)
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["GpuWorker", "HotspotGateway", "MeterBridge", "StorageNode"]
    );
    ns.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn spec_change_rolls_the_workload_and_status_follows() -> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "change").await?;
    let api = ns.api::<MeterBridge>();
    let mb: MeterBridge = example(&ns.name)?;
    apply(&api, &mb).await?;
    wait_ready(&api, "meter-roof-1", |n| n.status.as_ref()).await?;
    let deployments = ns.api::<Deployment>();
    let hash = |d: &Deployment| {
        d.spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default()["depin.dev/config-hash"]
            .clone()
    };
    let before = deployments.get("meter-roof-1").await?;
    let patch = serde_json::json!({"spec": {"ratedCapacityKw": 7.5}});
    api.patch(
        "meter-roof-1",
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await?;
    let after = eventually("deployment template changed", READY_TIMEOUT, || async {
        let d = deployments.get("meter-roof-1").await?;
        Ok((hash(&d) != hash(&before)).then_some(d))
    })
    .await?;
    let cm = ns.api::<ConfigMap>().get("meter-roof-1-agent").await?;
    assert!(cm.data.as_ref().expect("data")["agent.yaml"].contains("ratedCapacityKw: 7.5"));
    assert!(after.metadata.generation > before.metadata.generation);
    let status = eventually(
        "status observes generation 2 and Ready",
        READY_TIMEOUT,
        || async {
            let node = api.get("meter-roof-1").await?;
            let s = node.status.clone().unwrap_or_default();
            let done = s.observed_generation == node.metadata.generation
                && condition(Some(&s), "Ready").as_deref() == Some("True");
            Ok(done.then_some(s))
        },
    )
    .await?;
    assert_eq!(status.observed_generation, Some(2));

    // A spec the schema accepts but the operator cannot honour gets InvalidSpec naming the field.
    let sn_api = ns.api::<StorageNode>();
    let mut sn: StorageNode = example(&ns.name)?;
    sn.spec.capacity.0 = "512Mi".into();
    apply(&sn_api, &sn).await?;
    let message = eventually("InvalidSpec condition", READY_TIMEOUT, || async {
        let node = sn_api.get("sn-1").await?;
        let s = node.status.unwrap_or_default();
        Ok(s.conditions
            .iter()
            .find(|c| c.type_ == "InvalidSpec" && c.status == "True")
            .map(|c| c.message.clone()))
    })
    .await?;
    assert!(message.contains("spec.capacity"), "{message}");
    ns.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn deleting_a_node_collects_children_but_keeps_its_identity() -> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "delete").await?;
    let api = ns.api::<HotspotGateway>();
    let hs: HotspotGateway = example(&ns.name)?;
    apply(&api, &hs).await?;
    let first = wait_ready(&api, "hs-amsterdam-1", |n| n.status.as_ref()).await?;
    api.delete("hs-amsterdam-1", &DeleteParams::foreground())
        .await?;
    eventually("children garbage-collected", READY_TIMEOUT, || async {
        let gone = ns
            .api::<Deployment>()
            .get_opt("hs-amsterdam-1")
            .await?
            .is_none()
            && ns
                .api::<ConfigMap>()
                .get_opt("hs-amsterdam-1-agent")
                .await?
                .is_none()
            && ns
                .api::<Service>()
                .get_opt("hs-amsterdam-1-pf")
                .await?
                .is_none()
            && api.get_opt("hs-amsterdam-1").await?.is_none();
        Ok(gone.then_some(()))
    })
    .await?;
    assert!(
        ns.api::<Secret>()
            .get_opt("hs-amsterdam-1-identity")
            .await?
            .is_some(),
        "identity Secret retained"
    );
    apply(&api, &hs).await?;
    let second = wait_ready(&api, "hs-amsterdam-1", |n| n.status.as_ref()).await?;
    assert_eq!(
        first.public_key, second.public_key,
        "re-created node keeps its identity"
    );

    // A node that had a key never silently gets a new one when its Secret is lost.
    ns.api::<Secret>()
        .delete("hs-amsterdam-1-identity", &DeleteParams::default())
        .await?;
    let touch = serde_json::json!({"metadata": {"annotations": {"e2e/touch": "1"}}});
    api.patch(
        "hs-amsterdam-1",
        &PatchParams::default(),
        &Patch::Merge(touch),
    )
    .await?;
    let message = eventually("Degraded with IdentityError", READY_TIMEOUT, || async {
        let s = api.get("hs-amsterdam-1").await?.status.unwrap_or_default();
        Ok(s.conditions
            .iter()
            .find(|c| c.type_ == "Degraded" && c.status == "True" && c.reason == "IdentityError")
            .map(|c| c.message.clone()))
    })
    .await?;
    assert!(message.contains("already has public key"), "{message}");
    assert!(
        ns.api::<Secret>()
            .get_opt("hs-amsterdam-1-identity")
            .await?
            .is_none(),
        "no key generated behind the user's back"
    );
    let accept =
        serde_json::json!({"metadata": {"annotations": {"depin.dev/accept-new-identity": "true"}}});
    api.patch(
        "hs-amsterdam-1",
        &PatchParams::default(),
        &Patch::Merge(accept),
    )
    .await?;
    let rotated = eventually("new identity accepted", READY_TIMEOUT, || async {
        let s = api.get("hs-amsterdam-1").await?.status.unwrap_or_default();
        Ok((s.public_key.is_some() && s.public_key != first.public_key).then_some(s))
    })
    .await?;
    let secret = ns.api::<Secret>().get("hs-amsterdam-1-identity").await?;
    assert_eq!(
        rotated.public_key.as_deref(),
        Some(secret_pub(&secret).as_str())
    );

    // retainOnDelete: false hands the Secret to garbage collection with the node.
    let mut disposable = hs.clone();
    disposable.metadata.name = Some("hs-disposable".into());
    disposable.spec.identity = Some(depin_crds::IdentitySpec {
        secret_name: None,
        retain_on_delete: Some(false),
    });
    apply(&api, &disposable).await?;
    wait_ready(&api, "hs-disposable", |n| n.status.as_ref()).await?;
    let secret = ns.api::<Secret>().get("hs-disposable-identity").await?;
    assert_eq!(secret.owner_references()[0].name, "hs-disposable");
    api.delete("hs-disposable", &DeleteParams::foreground())
        .await?;
    eventually("non-retained Secret collected", READY_TIMEOUT, || async {
        Ok(ns
            .api::<Secret>()
            .get_opt("hs-disposable-identity")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    ns.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn restarting_the_operator_keeps_every_identity() -> anyhow::Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "restart").await?;
    let api = ns.api::<GpuWorker>();
    let gw: GpuWorker = example(&ns.name)?;
    apply(&api, &gw).await?;
    let before = wait_ready(&api, "gpu-1", |n| n.status.as_ref()).await?;
    // The verifier key: one Secret, pinned in every agent's ConfigMap, the same after a
    // restart (receipts keep their signer; agents keep talking to their verifier).
    let verifier_key = || async {
        let secret = Api::<Secret>::namespaced(client.clone(), OPERATOR_NAMESPACE)
            .get("depin-verifier-key")
            .await?;
        let seed = secret
            .data
            .as_ref()
            .and_then(|d| d.get("ed25519.key"))
            .ok_or_else(|| anyhow::anyhow!("depin-verifier-key has no ed25519.key"))?;
        let key = depin_proof::identity::NodeKey::from_hex(std::str::from_utf8(&seed.0)?, "seed")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::Ok(key.public().to_hex())
    };
    let pinned = || async {
        let cm = ns.api::<ConfigMap>().get("gpu-1-agent").await?;
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.values().next().cloned())
            .unwrap_or_default();
        let config: serde_json::Value = serde_yaml::from_str(&text)?;
        anyhow::Ok(
            config["verifier"]["publicKey"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    };
    let key_before = verifier_key().await?;
    assert_eq!(
        pinned().await?,
        key_before,
        "the agent pins the verifier key"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let selector = format!("app.kubernetes.io/name={OPERATOR}");
    let old: Vec<String> = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    for name in &old {
        pods.delete(name, &DeleteParams::default()).await?;
    }
    eventually("a new operator pod is ready", READY_TIMEOUT, || async {
        let list = pods.list(&ListParams::default().labels(&selector)).await?;
        let ready = list.items.iter().any(|p| {
            !old.contains(&p.name_any())
                && p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        Ok(ready.then_some(()))
    })
    .await?;
    // Force a reconcile by the new operator: a spec change.
    api.patch(
        "gpu-1",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"declaredTops": 1200}})),
    )
    .await?;
    let after = eventually(
        "new operator reconciled generation 2",
        READY_TIMEOUT,
        || async {
            let node = api.get("gpu-1").await?;
            let s = node.status.clone().unwrap_or_default();
            Ok((s.observed_generation == node.metadata.generation).then_some(s))
        },
    )
    .await?;
    assert_eq!(before.public_key, after.public_key);
    assert_eq!(
        verifier_key().await?,
        key_before,
        "one verifier key across restarts"
    );
    assert_eq!(pinned().await?, key_before);
    ns.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_second_replica_waits_and_takes_over_when_the_leader_goes() -> anyhow::Result<()> {
    let client = setup().await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let selector = format!("app.kubernetes.io/name={OPERATOR}");
    let scale = |n: i32| serde_json::json!({"spec": {"replicas": n}});
    deployments
        .patch(OPERATOR, &PatchParams::default(), &Patch::Merge(scale(2)))
        .await?;
    let ready_of = |list: &[Pod]| -> Vec<String> {
        list.iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        })
            })
            .map(|p| p.name_any())
            .collect()
    };
    // Two pods run; only the lease holder is ready (standbys stay out of the Service).
    let (leader, standby) = eventually(
        "one leader and one running standby",
        READY_TIMEOUT,
        || async {
            let list = pods
                .list(&ListParams::default().labels(&selector))
                .await?
                .items;
            let running: Vec<String> = list
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .map(|p| p.name_any())
                .collect();
            let ready = ready_of(&list);
            let holder = leases
                .get("depin-operator-leader")
                .await?
                .spec
                .and_then(|s| s.holder_identity);
            Ok(match (running.len(), ready.as_slice(), holder) {
                (2, [one], Some(h)) if *one == h => {
                    let other = running.into_iter().find(|n| *n != h);
                    other.map(|o| (h, o))
                }
                _ => None,
            })
        },
    )
    .await?;
    // Stable for a while: the standby does not become ready on its own.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    assert_eq!(
        ready_of(&list),
        std::slice::from_ref(&leader),
        "the standby must stay unready"
    );
    // The leader goes (graceful: it releases the lease); another replica (the standby, or
    // the Deployment's replacement pod if it is quicker) leads and is ready soon after.
    let started = std::time::Instant::now();
    pods.delete(&leader, &DeleteParams::default()).await?;
    let successor = eventually(
        "another replica leads and is ready",
        READY_TIMEOUT,
        || async {
            let holder = leases
                .get("depin-operator-leader")
                .await?
                .spec
                .and_then(|s| s.holder_identity);
            let list = pods
                .list(&ListParams::default().labels(&selector))
                .await?
                .items;
            let ready = ready_of(&list);
            Ok(holder.filter(|h| *h != leader && ready.contains(h)))
        },
    )
    .await?;
    println!(
        "{successor} leads {:.1} s after the leader was deleted (the standby was {standby})",
        started.elapsed().as_secs_f64()
    );
    deployments
        .patch(OPERATOR, &PatchParams::default(), &Patch::Merge(scale(1)))
        .await?;
    Ok(())
}
