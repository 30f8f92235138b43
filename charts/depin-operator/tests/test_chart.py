"""The chart rendered with real Helm (helm-python-sdk): lint, objects, security, RBAC, ports,
settings, schema, the render script."""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import helm_python as helm
import jsonschema
import pytest
import yaml
from conftest import ALL_FEATURES, CHART, CHARTS, NAMESPACE, RELEASE, REPO, load_yaml, render

RBAC = load_yaml(CHART / "files" / "rbac.yaml")
ALERTS = load_yaml(CHART / "files" / "alerts.yaml")
NODE_KINDS = ["HotspotGateway", "StorageNode", "GpuWorker", "MeterBridge"]


def render_script_merge(base: dict, extra: dict) -> dict:
    import render as render_script  # charts/render.py, on sys.path via conftest

    return render_script.deep_merge(copy.deepcopy(base), extra)


def pod_specs(docs) -> list[tuple[str, dict]]:
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in docs.of("Deployment")]


# --- lint ------------------------------------------------------------------------------

@pytest.mark.parametrize("values", [{}, ALL_FEATURES], ids=["default", "all-features"])
def test_lint_has_no_warnings_or_errors(values):
    # Lint for the version rendered for (its deprecation check would flag policy/v1beta1).
    kube = "v" + values["kubeVersionOverride"] if values.get("kubeVersionOverride") else None
    report = helm.lint(str(CHART), values, namespace=NAMESPACE, strict=True, kube_version=kube)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], problems or report["errors"]


def test_chart_metadata_and_no_crds():
    with helm.Chart.load(str(CHART)) as chart:
        meta = chart.metadata
        assert meta["apiVersion"] == "v2" and meta["appVersion"] == "0.1.0"
        assert chart.crds == [], "CRDs stay in crds/ and are applied with kubectl, not by the chart"


# --- objects ---------------------------------------------------------------------------

def test_default_objects(default_render):
    kinds = sorted(default_render.kinds())
    assert kinds == sorted(
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Deployment",
         "PodDisruptionBudget"] + ["ConfigMap"] * 6
    )
    for obj in default_render.of("Deployment") + default_render.of("Service") + default_render.of("Role"):
        assert obj["metadata"]["namespace"] == NAMESPACE
        assert obj["metadata"]["name"] == RELEASE, "the e2e tests and docs use the name depin-operator"


def test_all_features_objects(full_render):
    kinds = set(full_render.kinds())
    assert {"NetworkPolicy", "ServiceMonitor", "PodMonitor", "PrometheusRule", "RewardPolicy", *NODE_KINDS[:2],
            "MeterBridge"} <= kinds
    assert full_render.one("Deployment", RELEASE)["spec"]["replicas"] == 2
    sims = {d["metadata"]["name"] for d in full_render.of("Deployment")} - {RELEASE}
    assert sims == {f"{RELEASE}-rf-medium", "demo-meter-1-sunspec"}


def test_install_order_puts_custom_resources_last(full_render):
    kinds = full_render.kinds()
    builtin = [i for i, k in enumerate(kinds) if k in ("Deployment", "Service", "ClusterRole")]
    custom = [i for i, k in enumerate(kinds) if k in ("RewardPolicy", *NODE_KINDS, "ServiceMonitor")]
    assert max(builtin) < min(custom)
    assert kinds.index("ServiceAccount") < kinds.index("Deployment")


@pytest.mark.parametrize("fixture", ["default_render", "full_render"])
def test_every_pod_is_locked_down(fixture, request):
    for name, spec in pod_specs(request.getfixturevalue(fixture)):
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532, name
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, (name, c["name"])
            assert sc["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert sc["capabilities"] == {"drop": ["ALL"]}, (name, c["name"])
            assert "requests" in c["resources"] and "limits" in c["resources"], (name, c["name"])


def test_rbac_rules_are_files_rbac_yaml(default_render):
    sa = default_render.one("ServiceAccount")["metadata"]
    assert default_render.one("ClusterRole")["rules"] == RBAC["clusterRules"]
    role = default_render.one("Role")
    assert role["rules"] == RBAC["namespaceRules"] and role["metadata"]["namespace"] == NAMESPACE
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = default_render.one(kind)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": RELEASE}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": NAMESPACE}]
    assert default_render.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == sa["name"]


def test_operator_never_lists_or_watches_secrets():
    for rule in RBAC["clusterRules"] + RBAC["namespaceRules"]:
        if "secrets" in rule["resources"]:
            assert not {"list", "watch", "*"} & set(rule["verbs"]), rule


@pytest.mark.parametrize("fixture", ["default_render", "full_render"])
def test_every_port_names_its_protocol(fixture, request):
    """A 1.20 apiserver's server-side apply refuses Service/container ports without protocol."""
    docs = request.getfixturevalue(fixture)
    ports = [p for s in docs.of("Service") for p in s["spec"]["ports"]]
    ports += [p for _, spec in pod_specs(docs) for c in spec["containers"] for p in c.get("ports", [])]
    ports += [p for np in docs.of("NetworkPolicy") for rule in np["spec"]["ingress"] for p in rule["ports"]]
    assert ports and all(p.get("protocol") == "TCP" for p in ports), ports


def test_service_ports_for_agents_and_metrics(default_render):
    svc = default_render.one("Service")
    assert {(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {
        ("grpc", 50051, "grpc"), ("http", 8080, "http")}
    dep = default_render.one("Deployment")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_deployment_is_recreated_not_rolled(default_render):
    # Standbys never become Ready, so a rolling update of 2 replicas could never finish.
    dep = default_render.one("Deployment")["spec"]
    assert dep["strategy"] == {"type": "Recreate"}
    container = dep["template"]["spec"]["containers"][0]
    assert container["image"] == "localhost/depin-operator:dev"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_replicas_above_one_need_leader_election():
    with pytest.raises(helm.HelmRenderError, match="leaderElection"):
        render({"replicas": 2, "operator": {"leaderElection": False}})
    render({"replicas": 1, "operator": {"leaderElection": False}})


# --- operator settings: values <-> operator/src/config.rs --------------------------------

def operator_flags() -> dict[str, dict]:
    """Every field of the operator's clap Config: env, default (None when it has none)."""
    text = (REPO / "operator" / "src" / "config.rs").read_text()
    constants = {}
    for path in (REPO / "proof" / "src").rglob("*.rs"):
        for name, value in re.findall(r"pub const (\w+): \w+ = ([^;]+);", path.read_text()):
            constants[name] = value.strip()
    flags = {}
    for args, field, ty in re.findall(r"#\[arg\((.*?)\)\]\s*pub (\w+): ([^,]+),", text, re.S):
        env = re.search(r'env = "(\w+)"', args).group(1)
        default = re.search(r'default_value = "([^"]*)"', args) or re.search(r"default_value_t = ([^,\s]+)", args)
        value = default.group(1) if default else None
        if value is not None and "::" in value:
            value = constants[value.split("::")[-1]]
        flags[field] = {"env": env, "default": value, "type": ty.strip()}
    struct = text[text.index("pub struct Config"):]
    struct = struct[: struct.index("\n}\n")]
    assert len(flags) == len(re.findall(r"^\s+pub \w+:", struct, re.M)), "a Config field was not parsed"
    return flags


def camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(w.capitalize() for w in rest)


FROM_DOWNWARD_API = {"namespace", "pod_name"}  # POD_NAMESPACE, POD_NAME
FROM_AGENT_IMAGE = {"agent_image", "agent_image_pull_policy"}
CHART_ONLY = {"extraEnv", "rustLog"}  # not operator flags: RUST_LOG and pass-through env


def same(a, b) -> bool:
    """Loose equality of a rendered/values setting and a config.rs default."""
    a, b = str(a).lower(), str(b).lower()
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def env_of(docs) -> dict[str, dict]:
    (container,) = [c for d in docs.of("Deployment") for c in d["spec"]["template"]["spec"]["containers"]
                    if c["name"] == "operator"]
    return {e["name"]: e for e in container["env"]}


def test_every_operator_flag_has_one_value_with_the_same_default(default_render):
    flags = operator_flags()
    values = load_yaml(CHART / "values.yaml")
    keys = set(values["operator"]) - CHART_ONLY
    expected = {camel(f) for f in flags} - {camel(f) for f in FROM_DOWNWARD_API | FROM_AGENT_IMAGE}
    assert keys == expected, f"values.operator vs config.rs: missing {expected - keys}, unknown {keys - expected}"
    for field, flag in flags.items():
        if field in FROM_DOWNWARD_API or field in FROM_AGENT_IMAGE or flag["default"] is None:
            continue
        assert same(values["operator"][camel(field)], flag["default"]), (field, flag)
    image = values["agentImage"]
    assert f"{image['repository']}:{image['tag']}" == flags["agent_image"]["default"]
    assert image["pullPolicy"] == flags["agent_image_pull_policy"]["default"]


def test_every_operator_flag_is_rendered_as_its_env_var(default_render):
    flags = operator_flags()
    env = env_of(default_render)
    for field, flag in flags.items():
        if field in FROM_DOWNWARD_API:
            assert env[flag["env"]]["valueFrom"]["fieldRef"]["fieldPath"] == f"metadata.{field.split('_')[-1]}"
        elif flag["default"] is not None:
            assert same(env[flag["env"]]["value"], flag["default"]), (field, env[flag["env"]], flag["default"])
    # Optional flags: the verifier endpoint is this release's Service; beacon tick unset.
    assert env["DEPIN_VERIFIER_ENDPOINT"]["value"] == f"http://{RELEASE}.{NAMESPACE}.svc.cluster.local:50051"
    assert "DEPIN_BEACON_TICK" not in env
    known = {f["env"] for f in flags.values()} | {"RUST_LOG"}
    assert set(env) <= known, set(env) - known


def test_settings_reach_the_env(full_render):
    env = env_of(full_render)
    assert env["DEPIN_BEACON_TICK"]["value"] == "30"
    assert env["RUST_LOG"]["value"] == "info,depin_operator=debug"
    assert env["EXTRA"]["value"] == "1"
    big = env_of(render({"operator": {"maxSessions": 10000000, "storageProvingPeriod": 2592000}}))
    assert big["DEPIN_MAX_SESSIONS"]["value"] == "10000000", "integers must not render as 1e+07"
    assert big["DEPIN_STORAGE_PROVING_PERIOD"]["value"] == "2592000"


def test_names_ports_and_endpoint_follow_the_release():
    docs = render({"operator": {"httpAddr": "0.0.0.0:9090", "grpcAddr": "[::]:7000"}}, namespace="ops", name="fleet")
    env = env_of(docs)
    assert env["DEPIN_VERIFIER_ENDPOINT"]["value"] == "http://fleet-depin-operator.ops.svc.cluster.local:7000"
    svc = docs.one("Service", "fleet-depin-operator")
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"grpc": 7000, "http": 9090}
    ports = docs.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert {p["name"]: p["containerPort"] for p in ports} == {"grpc": 7000, "http": 9090}


# --- PodDisruptionBudget ---------------------------------------------------------------

@pytest.mark.parametrize("version,api", [("", "policy/v1"), ("1.20.2", "policy/v1beta1"), ("v1.20.0", "policy/v1beta1"),
                                         ("1.21.0", "policy/v1"), ("1.30.1", "policy/v1")])
def test_pdb_api_version_follows_kube_version(version, api):
    assert render({"kubeVersionOverride": version}).one("PodDisruptionBudget")["apiVersion"] == api


@pytest.mark.parametrize("replicas,max_unavailable", [(1, 1), (2, 2), (3, 3)])
def test_pdb_counts_standbys_as_unavailable(replicas, max_unavailable):
    """Standbys are never Ready: maxUnavailable 1 with 2 replicas would block every drain."""
    pdb = render({"replicas": replicas}).one("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == max_unavailable


# --- monitoring, network policy, dashboards ----------------------------------------------

MONITORS = {"serviceMonitor": "ServiceMonitor", "podMonitor": "PodMonitor", "prometheusRule": "PrometheusRule"}


@pytest.mark.parametrize("key,kind", MONITORS.items())
def test_monitoring_enabled_true_false_auto(key, kind):
    # Offline rendering sees no monitoring.coreos.com/v1 API, so "auto" renders nothing.
    assert render({"monitoring": {key: {"enabled": "auto"}}}).of(kind) == []
    assert render({"monitoring": {key: {"enabled": False}}}).of(kind) == []
    assert len(render({"monitoring": {key: {"enabled": True}}}).of(kind)) == 1


def test_service_monitor_and_pod_monitor(full_render):
    sm = full_render.one("ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["selector"]["matchLabels"] == full_render.one("Service", RELEASE)["spec"]["selector"]
    assert sm["spec"]["endpoints"][0]["port"] == "http" and sm["spec"]["endpoints"][0]["honorLabels"] is True
    pm = full_render.one("PodMonitor")
    assert pm["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "depin-agent"}
    assert pm["spec"]["namespaceSelector"] == {"any": True}
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    assert pm["spec"]["podMetricsEndpoints"][0]["path"] == "/metrics"


def test_prometheus_rule_is_the_alerts_file(full_render):
    groups = full_render.one("PrometheusRule")["spec"]["groups"]
    expected = copy.deepcopy(ALERTS["groups"])
    for group in expected:
        for rule in group["rules"]:
            rule["labels"] = {**rule.get("labels", {}), "team": "depin"}
    assert groups == expected
    disabled = render({"monitoring": {"prometheusRule": {"enabled": True, "disabled": ["DepinNodeNotProving"]}}})
    names = [r["alert"] for g in disabled.one("PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    assert "DepinNodeNotProving" not in names and len(names) == sum(len(g["rules"]) for g in ALERTS["groups"]) - 1


def test_network_policy_admits_agents_and_prometheus_only(full_render):
    np = full_render.one("NetworkPolicy")["spec"]
    assert np["podSelector"]["matchLabels"] == full_render.one("Service", RELEASE)["spec"]["selector"]
    assert np["policyTypes"] == ["Ingress"]
    grpc, http = np["ingress"]
    assert grpc["from"] == [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "depin-agent"}}}]
    assert grpc["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    assert http["from"][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    assert http["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert render({}).of("NetworkPolicy") == [], "off by default"


def test_dashboards_ship_as_labelled_configmaps(full_render):
    files = {p.name: p.read_text() for p in (CHART / "dashboards").glob("*.json")}
    maps = [cm for cm in full_render.of("ConfigMap") if "-dashboard-" in cm["metadata"]["name"]]
    assert len(maps) == len(files) == 6
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"] == {"grafana_folder": "DePIN"}
        ((key, text),) = cm["data"].items()
        assert text.strip() == files[key].strip()
    assert render({"dashboards": {"enabled": False}}).of("ConfigMap") == []


# --- demo fleet ------------------------------------------------------------------------

def crd_schemas() -> dict[str, dict]:
    out = {}
    for path in (REPO / "crds").glob("*.yaml"):
        crd = load_yaml(path)
        version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
        out[crd["spec"]["names"]["kind"]] = (crd["spec"]["scope"], strict(version["schema"]["openAPIV3Schema"]))
    return out


def strict(schema):
    """Like `kubectl --validate=strict`: unknown fields are errors, not silently pruned."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        if schema.get("x-kubernetes-int-or-string"):
            schema.pop("type", None)
    elif isinstance(schema, list):
        schema = [strict(v) for v in schema]
    return schema


def test_demo_resources_are_valid_for_the_crds(full_render):
    schemas = crd_schemas()
    policy = full_render.one("RewardPolicy")
    nodes = [o for o in (full_render.of(k) for k in NODE_KINDS) for o in o]
    assert len(nodes) == 4
    for obj in [policy, *nodes]:
        scope, schema = schemas[obj["kind"]]
        assert ("namespace" in obj["metadata"]) == (scope == "Namespaced"), obj["metadata"]
        # OpenAPI v3.0 schemas use draft-04 semantics (boolean exclusiveMinimum).
        jsonschema.Draft4Validator(schema).validate({k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")})
        if obj["kind"] != "RewardPolicy":
            assert obj["metadata"]["namespace"] == NAMESPACE
            assert obj["spec"]["rewardPolicy"] == policy["metadata"]["name"]
    meter = full_render.one("MeterBridge")
    assert meter["spec"]["meter"]["modbus"]["host"] == f"demo-meter-1-sunspec.{NAMESPACE}.svc.cluster.local"
    svc = full_render.one("Service", "demo-meter-1-sunspec")
    assert svc["spec"]["ports"][0]["port"] == 502
    medium = yaml.safe_load(full_render.one("ConfigMap", f"{RELEASE}-rf-medium")["data"]["medium.yaml"])
    assert [h["agent"] for h in medium["hotspots"]] == [
        f"demo-hotspot-{i}-pf.{NAMESPACE}.svc.cluster.local:1680" for i in (1, 2)]
    # Only the keys the medium's config accepts (sim/medium.example.yaml documents them all;
    # it refuses unknown ones).
    example = load_yaml(REPO / "sim" / "medium.example.yaml")
    known = {key for radio in example["hotspots"] for key in radio}
    assert all(set(h) <= known for h in medium["hotspots"]), medium["hotspots"]
    # Each demo hotspot serves exactly the medium: the EUI the medium presents for it, from
    # the pod networks, and the medium's pod by label (its NetworkPolicy).
    hotspots = {o["metadata"]["name"]: o["spec"]["packetForwarder"] for o in full_render.of("HotspotGateway")}
    for radio in medium["hotspots"]:
        pinned = hotspots[radio["name"]]
        assert pinned["gatewayEui"] == radio["gatewayEui"]
        assert pinned["sourceCidrs"] and pinned["sourcePodLabels"] == {
            "app.kubernetes.io/instance": f"{RELEASE}-rf-medium"}
    assert len({r["gatewayEui"] for r in medium["hotspots"]}) == len(medium["hotspots"])
    sim = full_render.one("Deployment", f"{RELEASE}-rf-medium")
    assert sim["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] == f"{RELEASE}-rf-medium"


def test_demo_is_off_by_default_and_simulators_need_their_switch(default_render):
    assert not {"RewardPolicy", *NODE_KINDS} & set(default_render.kinds())
    demo_only = render({"demo": {"enabled": True}})
    assert len(demo_only.of("HotspotGateway")) == 2
    assert [d["metadata"]["name"] for d in demo_only.of("Deployment")] == [RELEASE]


# --- values.schema.json -----------------------------------------------------------------

BAD_VALUES = [
    ({"replicas": "two"}, "/replicas"),
    ({"image": {"tag": 5}}, "/image/tag"),
    ({"agentImage": {"pullPolicy": "Sometimes"}}, "/agentImage/pullPolicy"),
    ({"operator": {"resync": "5m"}}, "/operator/resync"),
    ({"operator": {"leaderElection": "yes"}}, "/operator/leaderElection"),
    ({"operator": {"httpAddr": "8080"}}, "/operator/httpAddr"),
    ({"monitoring": {"podMonitor": {"enabled": "sometimes"}}}, "/monitoring/podMonitor/enabled"),
    ({"resources": {"limits": "lots"}}, "/resources/limits"),
    ({"replicaCount": 2}, "replicaCount"),
]


@pytest.mark.parametrize("values,where", BAD_VALUES, ids=[w for _, w in BAD_VALUES])
def test_schema_rejects_bad_values_in_helm(values, where):
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        render(values)
    report = helm.lint(str(CHART), values)
    assert any(m["severity"] == 3 and where in m["error"] for m in report["messages"]), report
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values(values))


def test_schema_is_draft7_and_accepts_the_defaults():
    schema = load_yaml(CHART / "values.schema.json")
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(load_yaml(CHART / "values.yaml"))
    full = render_script_merge(load_yaml(CHART / "values.yaml"), ALL_FEATURES)
    jsonschema.Draft7Validator(schema).validate(full)


# --- render script, docs ----------------------------------------------------------------

def test_render_script_output(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text("replicas: 2\nimage: {tag: e2e}\n")
    out = subprocess.run(
        [sys.executable, str(CHARTS / "render.py"), "--values", str(values), "--set", "operator.resync=60",
         "--namespace", NAMESPACE, "--kube-version", "v1.20.2", "--create-namespace",
         "--agent-image", "registry.local:5000/depin/agent:v9"],
        check=True, capture_output=True, text=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert docs[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    assert out.count("# Source: ") == len(docs)
    by_kind = {d["kind"]: d for d in docs}
    assert by_kind["PodDisruptionBudget"]["apiVersion"] == "policy/v1beta1"
    dep = by_kind["Deployment"]
    assert dep["spec"]["replicas"] == 2
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "localhost/depin-operator:e2e"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DEPIN_RESYNC"] == "60" and env["DEPIN_AGENT_IMAGE"] == "registry.local:5000/depin/agent:v9"
    kinds = [d["kind"] for d in docs]
    assert kinds.index("ServiceAccount") < kinds.index("ClusterRole") < kinds.index("Service") < kinds.index("Deployment")
    bad = subprocess.run([sys.executable, str(CHARTS / "render.py"), "--set", "replicas=two"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "/replicas" in bad.stderr


@pytest.mark.parametrize("ref,repository,tag", [
    ("localhost/depin-operator:dev", "localhost/depin-operator", "dev"),
    ("registry:5000/depin/op:1.2", "registry:5000/depin/op", "1.2"),
    ("registry:5000/depin/op", "registry:5000/depin/op", ""),
    ("depin-operator", "depin-operator", ""),
])
def test_image_references_split_into_repository_and_tag(ref, repository, tag):
    import render as render_script

    assert render_script.image_values(ref) == {"repository": repository, "tag": tag}


def test_notes_and_readme_say_crds_come_first(default_render):
    with helm.Chart.load(str(CHART)) as chart:
        notes = chart.render({}, name=RELEASE, namespace=NAMESPACE)["depin-operator/templates/NOTES.txt"]
    readme = (CHART / "README.md").read_text()
    for text in (notes, readme):
        assert "kubectl apply --server-side -f crds/" in text


@pytest.mark.parametrize("path", sorted((CHART / "ci").glob("*.yaml")), ids=lambda p: p.name)
def test_ci_values_files_lint_and_render(path):
    values = load_yaml(path)
    kube = "v" + values["kubeVersionOverride"] if values.get("kubeVersionOverride") else None
    report = helm.lint(str(CHART), values, namespace=NAMESPACE, strict=True, kube_version=kube)
    assert [m for m in report["messages"] if m["severity"] >= 2] == [] and report["errors"] == []
    docs = render(values)
    if path.name == "local-cluster-values.yaml":
        assert docs.one("PodDisruptionBudget")["apiVersion"] == "policy/v1beta1"
        env = env_of(docs)
        assert env["DEPIN_RESYNC"]["value"] == "60" and env["DEPIN_AGENT_IMAGE"]["value"] == "localhost/depin-agent:dev"


def defaults_with_paths(schema, path="openAPIV3Schema"):
    """Every (path, subschema) that declares a `default`."""
    if not isinstance(schema, dict):
        return
    if "default" in schema:
        yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from defaults_with_paths(sub, f"{path}.properties[{key}]")
    if isinstance(schema.get("items"), dict):
        yield from defaults_with_paths(schema["items"], f"{path}.items")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from defaults_with_paths(schema["additionalProperties"], f"{path}.additionalProperties")


def test_every_crd_default_validates_against_its_own_schema():
    # The apiserver refuses a CRD whose defaults do not validate (an empty-string score
    # against its decimal pattern did, on the real cluster); check it without one.
    checked = 0
    for kind, (_, schema) in crd_schemas().items():
        for path, sub in defaults_with_paths(schema):
            rules = {k: v for k, v in sub.items() if k != "default"}
            errors = [e.message for e in jsonschema.Draft4Validator(rules).iter_errors(sub["default"])]
            assert not errors, f"{kind} {path}: default {sub['default']!r}: {errors}"
            checked += 1
    assert checked > 10, "no defaults found: the walk is broken"
