"""Grafana dashboards: current with their generator, well-formed, every query valid PromQL
(checked by promtool), variables keyed by labels, every metric known."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml
from conftest import CHART, CHARTS, REPO, load_yaml
from dashboard_queries import all_queries, dashboards, label_values_selector, panels, queries, substitute

sys.path.insert(0, str(CHARTS))
import gen_dashboards  # noqa: E402

DS = {"type": "prometheus", "uid": "${datasource}"}
DASHBOARDS = dashboards()


def test_dashboards_are_the_generators_output():
    assert set(DASHBOARDS) == set(gen_dashboards.render_all())
    for name, text in gen_dashboards.render_all().items():
        assert (CHART / "dashboards" / name).read_text() == text, f"{name} is stale: run python3 charts/gen_dashboards.py"


def test_expected_dashboards_exist():
    assert set(DASHBOARDS) == {"fleet-overview.json", "rewards.json", "hotspot.json", "storage.json", "gpu.json",
                               "meter.json"}
    assert len({d["uid"] for d in DASHBOARDS.values()}) == len(DASHBOARDS)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_structure(name):
    dash = DASHBOARDS[name]
    assert dash["schemaVersion"] >= 39
    assert dash["uid"] and dash["title"] and "depin" in dash["tags"]
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {name}"
    for p in panels(dash):
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, (name, p["title"])
        if p["type"] == "row":
            continue
        assert p["datasource"] == DS, (name, p["title"])
        assert p["targets"], (name, p["title"])
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), (name, p["title"])
        for t in p["targets"]:
            assert t["datasource"] == DS and t["expr"].strip(), (name, p["title"])


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_variables_are_keyed_by_labels(name):
    dash = DASHBOARDS[name]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    expected = {"namespace", "node"} | ({"kind"} if name in ("fleet-overview.json", "rewards.json") else set())
    assert expected <= set(variables), f"{name} lacks {expected - set(variables)}"
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == DS
            selector, label = label_values_selector(v["query"]["query"])
            assert v["definition"] == v["query"]["query"]
            assert label == v["name"] or v["name"] == "policy" and label == "policy"
            assert "job" not in selector, "select by labels, never by job (several jobs must not hide nodes)"
    # Every variable a query uses is defined.
    for where, expr in queries(dash):
        for var in re.findall(r"\$\{?(\w+)", expr):
            assert var.startswith("__") or var in variables, f"{name} {where}: ${var} is not a variable"
        assert not re.search(r"\bjob\s*=", expr), f"{name} {where}: filter by labels, not job"


def test_every_query_parses_with_promtool(promtool, tmp_path):
    rules = [{"record": f"dashboard:q{i}", "expr": substitute(expr)} for i, (_, _, expr) in enumerate(all_queries())]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    if result.returncode != 0:  # name the panels whose query is broken
        broken = []
        for name, where, expr in all_queries():
            one = tmp_path / "one.yaml"
            one.write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": [{"record": "q", "expr": substitute(expr)}]}]}))
            r = subprocess.run([promtool, "check", "rules", str(one)], capture_output=True, text=True)
            if r.returncode != 0:
                broken.append(f"{name} {where}: {expr}\n  {r.stdout.strip()} {r.stderr.strip()}")
        pytest.fail("queries promtool refuses:\n" + "\n".join(broken or [result.stdout + result.stderr]))
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


# --- metric inventory ------------------------------------------------------------------

# Metrics the dashboards and alerts rely on, with their labels; each must be registered in
# the Rust sources (the live Prometheus check then proves each one has series).
PROPOSED = {
    # operator: node inventory and per-node verifier state
    "depin_operator_nodes": "gauge {namespace,kind,condition,status}: node CRs by condition type and status",
    "depin_operator_node_last_proof_timestamp_seconds": "gauge {namespace,kind,node}: unix time of the last accepted proof",
    "depin_operator_storage_reputation": "gauge {namespace,node}: storage reputation score 0..1",
    # operator: reward controller (last closed epoch per policy; set again from the latest
    # RewardEpoch when a replica becomes leader)
    "depin_operator_reward_epoch": "gauge {policy}: number of the last closed epoch",
    "depin_operator_reward_epoch_close_duration_seconds": "histogram {policy}: time to close an epoch",
    "depin_operator_reward_emission_base_units": "gauge {policy}: scheduled emission of the last closed epoch",
    "depin_operator_reward_burn_base_units": "gauge {policy}: burned value re-minted in the last closed epoch",
    "depin_operator_reward_pool_base_units": "gauge {policy,pool}: paid out per pool in the last closed epoch",
    "depin_operator_reward_unallocated_base_units": "gauge {policy}: dust and empty pools of the last closed epoch",
    "depin_operator_reward_nodes_rewarded": "gauge {policy,pool}: nodes with a non-zero reward in the last closed epoch",
    "depin_operator_reward_node_base_units": "gauge {policy,namespace,kind,node}: a node's reward in the last closed epoch",
    # agent: hotspot role
    "depin_agent_hotspot_beacons_sent_total": "counter: beacons transmitted",
    "depin_agent_hotspot_witnesses_reported_total": "counter: witness reports sent",
    "depin_agent_hotspot_witness_rssi_dbm": "histogram: RSSI of witnessed beacons",
    "depin_agent_hotspot_witness_snr_db": "histogram: SNR of witnessed beacons",
    "depin_agent_hotspot_gwmp_packets_total": "counter {type}: GWMP datagrams by type (PUSH_DATA, PULL_DATA, PULL_RESP, TX_ACK, ...)",
    # agent: meter role
    "depin_agent_meter_power_watts": "gauge: average power of the last reading",
    "depin_agent_meter_energy_joules": "gauge: the meter's cumulative energy register (J = Wh x 3600, Prometheus base unit)",
    "depin_agent_meter_readings_total": "counter: signed readings sent",
}
# Label values assumed too: depin_agent_proofs_*{proof="meter"} for meter readings.

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def defined_metrics() -> set[str]:
    """Metric names registered in the Rust sources (prefix by crate registry)."""
    names = set()
    for crate, prefix in (("operator", "depin_operator_"), ("node-agent", "depin_agent_")):
        for path in (REPO / crate / "src").rglob("*.rs"):
            text = path.read_text()
            for name in re.findall(r'(?:(?:Opts|HistogramOpts|IntGauge|Gauge|IntCounter|Counter)::new|\bgauge)\(\s*"([a-z0-9_]+)"', text):
                names.add(prefix + name)
    return names


def used_metrics() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    texts = [(n, e) for n, _, e in all_queries()]
    alerts = load_yaml(CHART / "files" / "alerts.yaml")
    texts += [(f"alert {r['alert']}", r["expr"]) for g in alerts["groups"] for r in g["rules"]]
    for where, expr in texts:
        for name in re.findall(r"\b(depin_[a-z0-9_]+)", expr):
            for suffix in HISTOGRAM_SUFFIXES:
                if name.endswith(suffix) and name[: -len(suffix)] in defined_metrics() | set(PROPOSED):
                    name = name[: -len(suffix)]
            used.setdefault(name, set()).add(where)
    return used


def test_every_metric_used_is_defined_or_proposed():
    defined, used = defined_metrics(), used_metrics()
    assert "depin_operator_reconciles_total" in defined and "depin_agent_ready" in defined
    unknown = {m: sorted(w) for m, w in used.items() if m not in defined and m not in PROPOSED}
    assert not unknown, f"metrics neither in the Rust sources nor proposed (typo?): {unknown}"
    unused = set(PROPOSED) - set(used)
    assert not unused, f"proposed metrics no dashboard or alert uses: {unused}"
    missing = sorted(m for m in PROPOSED if m not in defined)
    if missing:
        message = "metrics the dashboards/alerts use that the code does not define yet: " + ", ".join(missing)
        pytest.fail(message)
