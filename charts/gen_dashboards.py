#!/usr/bin/env python3
"""Generates the Grafana dashboards of the depin-operator chart.

    python3 charts/gen_dashboards.py            # rewrite charts/depin-operator/dashboards/*.json
    python3 charts/gen_dashboards.py --check    # exit 1 when a committed file is stale

The JSON files are committed (the chart ships them via .Files); a chart test fails when
they differ from this generator's output. Dashboards use a `datasource` variable of type
prometheus, and namespace/kind/node variables taken from metric labels (label_values),
never from `job`, so several scrape jobs cannot hide nodes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "depin-operator" / "dashboards"
SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
KINDS = ["HotspotGateway", "StorageNode", "GpuWorker", "MeterBridge"]

# Selector fragments. Agent series carry kind, node, namespace and role labels of their
# own; the operator's verifier series are fleet-wide and labelled by kind only.
AGENT = 'namespace=~"$namespace", node=~"$node"'


# --- variables -------------------------------------------------------------------------

def datasource_var() -> dict:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
    }


def query_var(name: str, label: str, query: str, *, multi: bool = True) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "current": {},
        "hide": 0,
        "includeAll": multi,
        "multi": multi,
        "allValue": ".*" if multi else None,
        "options": [],
        "refresh": 2,
        "regex": "",
        "sort": 1,
    }


def custom_var(name: str, label: str, values: list[str], default: str) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "custom",
        "query": ",".join(values),
        "current": {"selected": True, "text": default, "value": default},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [{"selected": v == default, "text": v, "value": v} for v in values],
    }


# --- panels ----------------------------------------------------------------------------

def target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False) -> dict:
    t = {"refId": ref, "datasource": DS, "expr": expr, "legendFormat": legend or "__auto", "range": not instant}
    if instant:
        t["instant"] = True
        t["format"] = "table"
    return t


def panel(kind: str, title: str, description: str, targets: list[dict], *, unit: str = "short",
          w: int = 12, h: int = 8, options: dict | None = None, field: dict | None = None) -> dict:
    defaults = {"unit": unit, **(field or {})}
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
        "_w": w,
        "_h": h,
    }


def timeseries(title, description, targets, *, unit="short", w=12, h=8, stack=False, bars=False):
    custom = {"drawStyle": "bars" if bars else "line", "lineWidth": 1, "fillOpacity": 20 if stack or bars else 10,
              "showPoints": "never", "spanNulls": True,
              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    return panel("timeseries", title, description, targets, unit=unit, w=w, h=h,
                 options={"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"],
                                     "showLegend": True},
                          "tooltip": {"mode": "multi", "sort": "desc"}},
                 field={"custom": custom})


def stat(title, description, expr, *, unit="short", w=6, h=4, legend="", thresholds=None):
    steps = thresholds or [{"color": "green", "value": None}]
    return panel("stat", title, description, [target(expr, legend)], unit=unit, w=w, h=h,
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "colorMode": "value", "graphMode": "area", "textMode": "auto", "justifyMode": "auto",
                          "orientation": "auto"},
                 field={"thresholds": {"mode": "absolute", "steps": steps}})


def bargauge(title, description, expr, legend, *, unit="short", w=12, h=8):
    return panel("bargauge", title, description, [target(expr, legend, instant=True)], unit=unit, w=w, h=h,
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
                          "orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True,
                          "minVizHeight": 10, "minVizWidth": 0, "valueMode": "color"},
                 field={"thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]}})


def table(title, description, expr, *, unit="short", w=24, h=8):
    return panel("table", title, description, [target(expr, instant=True)], unit=unit, w=w, h=h,
                 options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"]}})


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_w": 24, "_h": 1}


RED_ABOVE_0 = [{"color": "green", "value": None}, {"color": "red", "value": 1}]


def layout(items: list[dict]) -> list[dict]:
    """Assigns ids and grid positions, left to right, wrapping at 24 columns."""
    out, x, y, row_h = [], 0, 0, 0
    for pid, item in enumerate(items, start=1):
        w, h = item.pop("_w"), item.pop("_h")
        if item["type"] == "row" or x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        item["id"] = pid
        item["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        out.append(item)
        x, row_h = x + w, max(row_h, h)
        if item["type"] == "row":
            x, y, row_h = 0, y + h, 0
    return out


def dashboard(uid: str, title: str, description: str, variables: list[dict], items: list[dict],
              tags: list[str]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["depin", *tags],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [{"asDropdown": True, "icon": "external link", "includeVars": False, "keepTime": True,
                   "tags": ["depin"], "targetBlank": False, "title": "DePIN dashboards", "type": "dashboards"}],
        "templating": {"list": [datasource_var(), *variables]},
        "panels": layout(items),
    }


# --- dashboards ------------------------------------------------------------------------

def fleet_overview() -> dict:
    nodes = 'namespace=~"$namespace", kind=~"$kind"'
    variables = [
        query_var("namespace", "Namespace", "label_values(depin_operator_nodes, namespace)"),
        query_var("kind", "Kind", 'label_values(depin_operator_nodes{namespace=~"$namespace"}, kind)'),
        query_var("node", "Node", 'label_values(depin_agent_ready{namespace=~"$namespace", kind=~"$kind"}, node)'),
    ]
    items = [
        row("Nodes"),
        stat("Nodes", "Node CRs (every node has one Ready condition).",
             f'sum(depin_operator_nodes{{{nodes}, condition="Ready"}})'),
        stat("Ready", "Nodes whose Ready condition is True (their agent pods are ready).",
             f'sum(depin_operator_nodes{{{nodes}, condition="Ready", status="True"}})'),
        stat("Degraded", "Nodes with Degraded=True: an apply failed or the identity is missing.",
             f'sum(depin_operator_nodes{{{nodes}, condition="Degraded", status="True"}}) or on() vector(0)',
             thresholds=RED_ABOVE_0),
        stat("Leader replicas", "Operator replicas holding the leader lease: 1 is healthy, 0 means nothing reconciles.",
             "sum(depin_operator_leader)",
             thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}, {"color": "red", "value": 2}]),
        timeseries("Nodes by kind and condition", "Nodes per kind whose condition is True.",
                   [target(f'sum by (kind, condition) (depin_operator_nodes{{{nodes}, status="True"}})',
                           "{{kind}} {{condition}}")]),
        timeseries("Agents ready", "Agent pods reporting ready, per kind.",
                   [target(f'sum by (kind) (depin_agent_ready{{{AGENT}, kind=~"$kind"}})', "{{kind}}")]),
        row("Proofs"),
        timeseries("Proofs accepted", "Proofs the verifier accepted per second, by kind (fleet-wide).",
                   [target('sum by (kind) (rate(depin_operator_proofs_accepted_total{kind=~"$kind"}[$__rate_interval]))',
                           "{{kind}}")], unit="ops"),
        timeseries("Proofs rejected by reason", "Rejections per second by kind and RejectReason (fleet-wide; top 10).",
                   [target('topk(10, sum by (kind, reason) (rate(depin_operator_proofs_rejected_total{kind=~"$kind"}[$__rate_interval])))',
                           "{{kind}} {{reason}}")], unit="ops"),
        timeseries("Rejected share", "Rejected / (accepted + rejected) per kind.",
                   [target('sum by (kind) (rate(depin_operator_proofs_rejected_total{kind=~"$kind"}[$__rate_interval]))'
                           ' / clamp_min(sum by (kind) (rate(depin_operator_proofs_rejected_total{kind=~"$kind"}[$__rate_interval]))'
                           ' + sum by (kind) (rate(depin_operator_proofs_accepted_total{kind=~"$kind"}[$__rate_interval])), 1e-9)',
                           "{{kind}}")], unit="percentunit"),
        timeseries("Verification latency p99", "Time to decode and verify one agent message.",
                   [target('histogram_quantile(0.99, sum by (kind, le) (rate(depin_operator_verification_duration_seconds_bucket{kind=~"$kind"}[$__rate_interval])))',
                           "{{kind}}")], unit="s"),
        timeseries("Challenges issued", "Challenges sent to agents per second, by kind.",
                   [target('sum by (kind) (rate(depin_operator_challenges_issued_total{kind=~"$kind"}[$__rate_interval]))',
                           "{{kind}}")], unit="ops"),
        timeseries("Deadlines missed", "Challenge windows that closed without an answer, by kind.",
                   [target('sum by (kind) (increase(depin_operator_deadlines_missed_total{kind=~"$kind"}[$__rate_interval]))',
                           "{{kind}}")], bars=True),
        row("Sessions"),
        timeseries("Verifier sessions", "Authenticated agent sessions open on the verifier, by kind.",
                   [target('sum by (kind) (depin_operator_verifier_sessions_active{kind=~"$kind"})', "{{kind}}")]),
        timeseries("Sessions refused", "Sessions refused or cut by the verifier, by reason.",
                   [target("sum by (reason) (rate(depin_operator_verifier_sessions_refused_total[$__rate_interval]))",
                           "{{reason}}")], unit="ops"),
        timeseries("Agents by session state", "Agents established (2) versus not (disconnected, connecting, refused).",
                   [target(f'sum by (kind) (depin_agent_session_state{{{AGENT}, kind=~"$kind"}} == bool 2)',
                           "{{kind}} established", "A"),
                    target(f'sum by (kind) (depin_agent_session_state{{{AGENT}, kind=~"$kind"}} != bool 2)',
                           "{{kind}} not established", "B")]),
        timeseries("Agent outbox", "Proof messages waiting for a receipt, per agent (top 10).",
                   [target(f'topk(10, depin_agent_outbox_messages{{{AGENT}, kind=~"$kind"}})', "{{namespace}}/{{node}}")]),
        row("Reconcile"),
        timeseries("Reconcile errors", "Reconcile failures per second by kind and reason.",
                   [target('sum by (kind, reason) (rate(depin_operator_reconcile_errors_total{kind=~"$kind"}[$__rate_interval])) or on() vector(0)',
                           "{{kind}} {{reason}}")], unit="ops"),
        timeseries("Objects in backoff", "Objects waiting to retry after errors.",
                   [target('sum by (kind) (depin_operator_objects_in_backoff{kind=~"$kind"})', "{{kind}}")]),
        timeseries("Reconciles", "Reconcile runs per second by kind.",
                   [target('sum by (kind) (rate(depin_operator_reconciles_total{kind=~"$kind"}[$__rate_interval]))', "{{kind}}")],
                   unit="ops"),
        timeseries("Reconcile duration p95", "Reconcile wall time.",
                   [target('histogram_quantile(0.95, sum by (kind, le) (rate(depin_operator_reconcile_duration_seconds_bucket{kind=~"$kind"}[$__rate_interval])))',
                           "{{kind}}")], unit="s"),
        timeseries("Status writes", "Durable status.proofs writes by result (ok, retry, failed).",
                   [target("sum by (result) (rate(depin_operator_tally_writes_total[$__rate_interval]))", "{{result}}")],
                   unit="ops"),
        timeseries("Operator peak memory", "Peak resident memory (VmHWM) per operator replica.",
                   [target("max by (instance) (depin_operator_peak_rss_bytes)", "{{instance}}")], unit="bytes"),
    ]
    return dashboard("depin-fleet-overview", "DePIN / Fleet overview",
                     "Nodes by kind and condition, proofs, verifier sessions and reconcile health.",
                     variables, items, ["fleet"])


def rewards() -> dict:
    pol = 'policy=~"$policy"'
    tokens = " / 10 ^ $decimals"
    variables = [
        query_var("policy", "Reward policy", "label_values(depin_operator_reward_epoch, policy)"),
        query_var("namespace", "Namespace", 'label_values(depin_operator_reward_node_base_units{policy=~"$policy"}, namespace)'),
        query_var("kind", "Kind", 'label_values(depin_operator_reward_node_base_units{policy=~"$policy", namespace=~"$namespace"}, kind)'),
        query_var("node", "Node", 'label_values(depin_operator_reward_node_base_units{policy=~"$policy", namespace=~"$namespace", kind=~"$kind"}, node)'),
        custom_var("topn", "Top N nodes", ["5", "10", "20", "50"], "10"),
        custom_var("decimals", "Token decimals", ["0", "6", "8", "9", "18"], "8"),
    ]
    node_sel = f'{pol}, namespace=~"$namespace", kind=~"$kind", node=~"$node"'
    items = [
        row("Last closed epoch"),
        stat("Epoch", "Number of the last closed epoch.", f"max by (policy) (depin_operator_reward_epoch{{{pol}}})",
             legend="{{policy}}"),
        stat("Nodes rewarded", "Nodes with a non-zero reward in the last closed epoch.",
             f"sum by (policy) (depin_operator_reward_nodes_rewarded{{{pol}}})", legend="{{policy}}"),
        stat("Emission", "Tokens minted by the schedule in the last closed epoch.",
             f"sum by (policy) (depin_operator_reward_emission_base_units{{{pol}}}){tokens}", legend="{{policy}}"),
        stat("Epoch close time", "Mean time to close an epoch (compute rewards, write the RewardEpoch).",
             f"sum by (policy) (depin_operator_reward_epoch_close_duration_seconds_sum{{{pol}}})"
             f" / clamp_min(sum by (policy) (depin_operator_reward_epoch_close_duration_seconds_count{{{pol}}}), 1)",
             unit="s", legend="{{policy}}"),
        row("Supply"),
        timeseries("Emission and burn per epoch", "Scheduled emission and burned value re-minted (burn-and-mint), tokens.",
                   [target(f"sum by (policy) (depin_operator_reward_emission_base_units{{{pol}}}){tokens}", "{{policy}} emission", "A"),
                    target(f"sum by (policy) (depin_operator_reward_burn_base_units{{{pol}}}){tokens}", "{{policy}} burn", "B")]),
        timeseries("Rewards per pool", "Tokens paid out per pool in the last closed epoch.",
                   [target(f"sum by (policy, pool) (depin_operator_reward_pool_base_units{{{pol}}}){tokens}",
                           "{{policy}} {{pool}}")], stack=True),
        timeseries("Unallocated", "Rounding dust and empty pools of the last closed epoch, tokens.",
                   [target(f"sum by (policy) (depin_operator_reward_unallocated_base_units{{{pol}}}){tokens}", "{{policy}}")]),
        timeseries("Nodes rewarded per pool", "Nodes paid per pool in the last closed epoch.",
                   [target(f"sum by (policy, pool) (depin_operator_reward_nodes_rewarded{{{pol}}})", "{{policy}} {{pool}}")]),
        row("Nodes"),
        bargauge("Top nodes, last epoch", "The nodes with the largest reward in the last closed epoch, tokens.",
                 f"topk($topn, sum by (namespace, kind, node) (depin_operator_reward_node_base_units{{{node_sel}}})){tokens}",
                 "{{namespace}}/{{node}} ({{kind}})"),
        timeseries("Node rewards over time", "Reward of the last closed epoch per node (top N), tokens.",
                   [target(f"topk($topn, sum by (namespace, node) (depin_operator_reward_node_base_units{{{node_sel}}})){tokens}",
                           "{{namespace}}/{{node}}")]),
    ]
    return dashboard("depin-rewards", "DePIN / Rewards",
                     "Per-epoch emission, burn-and-mint, pools, unallocated dust and the best-paid nodes. "
                     "Amounts are in tokens: base units / 10^decimals (set the variable to the policy's token.decimals).",
                     variables, items, ["rewards"])


def kind_variables(kind: str) -> list[dict]:
    return [
        query_var("namespace", "Namespace", f'label_values(depin_agent_ready{{kind="{kind}"}}, namespace)'),
        query_var("node", "Node", f'label_values(depin_agent_ready{{kind="{kind}", namespace=~"$namespace"}}, node)'),
        custom_var("decimals", "Token decimals", ["0", "6", "8", "9", "18"], "8"),
    ]


def kind_common(kind: str) -> list[dict]:
    sel = f'kind="{kind}", {AGENT}'
    return [
        row("Agents"),
        stat("Agents ready", "Agent pods reporting ready.", f"sum(depin_agent_ready{{{sel}}})"),
        stat("Agents not ready", "Agent pods not ready.", f"sum(1 - depin_agent_ready{{{sel}}})", thresholds=RED_ABOVE_0),
        stat("Sessions established", "Agents with an authenticated verifier session.",
             f"sum(depin_agent_session_state{{{sel}}} == bool 2)"),
        stat("Verifier rejections (1h)", "Proofs of this kind the verifier rejected in the last hour (fleet-wide).",
             f'sum(increase(depin_operator_proofs_rejected_total{{kind="{kind}"}}[1h]))', thresholds=RED_ABOVE_0),
    ]


def kind_tail(kind: str) -> list[dict]:
    return [
        row("Verifier"),
        timeseries("Accepted and rejected", f"{kind} proofs decided by the verifier per second (fleet-wide).",
                   [target(f'sum(rate(depin_operator_proofs_accepted_total{{kind="{kind}"}}[$__rate_interval]))', "accepted", "A"),
                    target(f'sum(rate(depin_operator_proofs_rejected_total{{kind="{kind}"}}[$__rate_interval]))', "rejected", "B")],
                   unit="ops"),
        timeseries("Rejections by reason", "Verifier rejections per second by RejectReason (top 10).",
                   [target(f'topk(10, sum by (reason) (rate(depin_operator_proofs_rejected_total{{kind="{kind}"}}[$__rate_interval])))',
                           "{{reason}}")], unit="ops"),
        bargauge("Reward last epoch", "Tokens each node earned in the last closed epoch (base units / 10^decimals).",
                 f'sum by (namespace, node) (depin_operator_reward_node_base_units{{kind="{kind}", {AGENT}}}) / 10 ^ $decimals',
                 "{{namespace}}/{{node}}", w=24),
    ]


def hotspot() -> dict:
    kind = "HotspotGateway"
    sel = f'kind="{kind}", {AGENT}'
    items = kind_common(kind) + [
        row("Proof of coverage"),
        timeseries("Beacons sent", "Beacons each hotspot transmitted through its packet forwarder, per minute.",
                   [target(f"sum by (namespace, node) (rate(depin_agent_hotspot_beacons_sent_total{{{sel}}}[$__rate_interval])) * 60",
                           "{{namespace}}/{{node}}")], unit="short"),
        timeseries("Witnesses reported", "Beacons of other hotspots each hotspot heard and reported, per minute.",
                   [target(f"sum by (namespace, node) (rate(depin_agent_hotspot_witnesses_reported_total{{{sel}}}[$__rate_interval])) * 60",
                           "{{namespace}}/{{node}}")], unit="short"),
        timeseries("Witness RSSI (median)", "Median received signal strength of witnessed beacons.",
                   [target(f"histogram_quantile(0.5, sum by (namespace, node, le) (rate(depin_agent_hotspot_witness_rssi_dbm_bucket{{{sel}}}[$__rate_interval])))",
                           "{{namespace}}/{{node}}")], unit="dBm"),
        timeseries("Witness SNR (median)", "Median signal-to-noise ratio of witnessed beacons.",
                   [target(f"histogram_quantile(0.5, sum by (namespace, node, le) (rate(depin_agent_hotspot_witness_snr_db_bucket{{{sel}}}[$__rate_interval])))",
                           "{{namespace}}/{{node}}")], unit="dB"),
        timeseries("Packet forwarder traffic", "Semtech UDP (GWMP) datagrams by type, all selected hotspots.",
                   [target(f"sum by (type) (rate(depin_agent_hotspot_gwmp_packets_total{{{sel}}}[$__rate_interval]))", "{{type}}")],
                   unit="pps", w=24),
    ] + kind_tail(kind)
    return dashboard("depin-hotspot", "DePIN / Hotspots",
                     "LoRaWAN hotspots: beacons, witnesses, RSSI/SNR, packet forwarder traffic and PoC verdicts.",
                     kind_variables(kind), items, ["hotspot"])


def storage() -> dict:
    kind = "StorageNode"
    sel = f'kind="{kind}", {AGENT}'
    items = kind_common(kind) + [
        row("Sectors and deadlines"),
        timeseries("Committed bytes", "Bytes of sectors under a Merkle commitment, per node.",
                   [target(f"sum by (namespace, node) (depin_agent_storage_committed_bytes{{{sel}}})", "{{namespace}}/{{node}}")],
                   unit="bytes"),
        timeseries("Reputation", "Verifier reputation score per storage node (1 = perfect); scales storage rewards.",
                   [target('min by (namespace, node) (depin_operator_storage_reputation{namespace=~"$namespace", node=~"$node"})',
                           "{{namespace}}/{{node}}")], unit="percentunit"),
        timeseries("Deadlines passed", "Storage proofs accepted per node (one per sector and deadline).",
                   [target(f'sum by (namespace, node) (increase(depin_agent_proofs_accepted_total{{{sel}, proof="storage"}}[$__rate_interval]))',
                           "{{namespace}}/{{node}}")], bars=True),
        timeseries("Deadlines missed", "Verifier: storage windows that closed without an answer (fleet-wide); "
                   "agents: answers rejected as AfterWindow.",
                   [target(f'sum(increase(depin_operator_deadlines_missed_total{{kind="{kind}"}}[$__rate_interval]))', "missed (verifier)", "A"),
                    target(f'sum by (namespace, node) (increase(depin_agent_proofs_rejected_total{{{sel}, proof="storage", reason="AfterWindow"}}[$__rate_interval]))',
                           "{{namespace}}/{{node}} late", "B")], bars=True),
        timeseries("Challenge latency p95", "Challenge arrival to receipt, per node.",
                   [target(f'histogram_quantile(0.95, sum by (namespace, node, le) (rate(depin_agent_challenge_latency_seconds_bucket{{{sel}, proof="storage"}}[$__rate_interval])))',
                           "{{namespace}}/{{node}}")], unit="s"),
        timeseries("Sector commit time", "Seconds the last sector fill and commit took.",
                   [target(f"max by (namespace, node) (depin_agent_storage_commit_seconds{{{sel}}})", "{{namespace}}/{{node}}")],
                   unit="s"),
        timeseries("Sector commitments", "Sector commitments by result (Accepted or a reject reason), fleet-wide.",
                   [target("sum by (result) (increase(depin_operator_sector_commitments_total[$__rate_interval]))", "{{result}}")],
                   bars=True),
        timeseries("Agent rejections by reason", "Storage proofs rejected per node and reason.",
                   [target(f'sum by (namespace, node, reason) (increase(depin_agent_proofs_rejected_total{{{sel}, proof="storage"}}[$__rate_interval])) > 0 or on() vector(0)',
                           "{{namespace}}/{{node}} {{reason}}")], bars=True),
    ] + kind_tail(kind)
    return dashboard("depin-storage", "DePIN / Storage nodes",
                     "Storage nodes: committed bytes, deadlines passed and missed, reputation, proof latency.",
                     kind_variables(kind), items, ["storage"])


def gpu() -> dict:
    kind = "GpuWorker"
    sel = f'kind="{kind}", {AGENT}'
    items = kind_common(kind) + [
        row("Throughput"),
        timeseries("Measured TOPS", "int8 TOPS measured on the last GPU challenge, per node and backend.",
                   [target(f"max by (namespace, node, backend) (depin_agent_gpu_tops{{{sel}}})", "{{namespace}}/{{node}} {{backend}}")]),
        timeseries("Challenge latency", "Challenge arrival to receipt (median and p95), per node.",
                   [target(f'histogram_quantile(0.5, sum by (namespace, node, le) (rate(depin_agent_challenge_latency_seconds_bucket{{{sel}, proof="gpu"}}[$__rate_interval])))',
                           "{{namespace}}/{{node}} p50", "A"),
                    target(f'histogram_quantile(0.95, sum by (namespace, node, le) (rate(depin_agent_challenge_latency_seconds_bucket{{{sel}, proof="gpu"}}[$__rate_interval])))',
                           "{{namespace}}/{{node}} p95", "B")], unit="s"),
        table("Backend in use", "1 for the GPU backend each worker uses (cpu means no GPU was found).",
              f"max by (namespace, node, backend) (depin_agent_gpu_backend{{{sel}}}) == 1"),
        timeseries("Proofs accepted and rejected", "GPU proofs per node.",
                   [target(f'sum by (namespace, node) (increase(depin_agent_proofs_accepted_total{{{sel}, proof="gpu"}}[$__rate_interval]))',
                           "{{namespace}}/{{node}} accepted", "A"),
                    target(f'sum by (namespace, node) (increase(depin_agent_proofs_rejected_total{{{sel}, proof="gpu"}}[$__rate_interval]))',
                           "{{namespace}}/{{node}} rejected", "B")], bars=True, w=24),
    ] + kind_tail(kind)
    return dashboard("depin-gpu", "DePIN / GPU workers",
                     "GPU workers: measured TOPS, challenge latency, backend, proofs.",
                     kind_variables(kind), items, ["gpu"])


def meter() -> dict:
    kind = "MeterBridge"
    sel = f'kind="{kind}", {AGENT}'
    items = kind_common(kind) + [
        row("Energy"),
        timeseries("Power", "Average power of the last reading, per meter.",
                   [target(f"sum by (namespace, node) (depin_agent_meter_power_watts{{{sel}}})", "{{namespace}}/{{node}}")],
                   unit="watt"),
        timeseries("Energy register", "The meter's cumulative energy register, per meter.",
                   [target(f"max by (namespace, node) (depin_agent_meter_energy_joules{{{sel}}}) / 3600", "{{namespace}}/{{node}}")],
                   unit="watth"),
        timeseries("Energy per interval", "Energy measured per graph interval, per meter.",
                   [target(f"sum by (namespace, node) (delta(depin_agent_meter_energy_joules{{{sel}}}[$__rate_interval])) / 3600",
                           "{{namespace}}/{{node}}")], unit="watth", bars=True),
        timeseries("Readings", "Signed readings sent and rejected per meter.",
                   [target(f"sum by (namespace, node) (increase(depin_agent_meter_readings_total{{{sel}}}[$__rate_interval]))",
                           "{{namespace}}/{{node}} sent", "A"),
                    target(f'sum by (namespace, node) (increase(depin_agent_proofs_rejected_total{{{sel}, proof="meter"}}[$__rate_interval]))',
                           "{{namespace}}/{{node}} rejected", "B")], bars=True),
        timeseries("Readings rejected by reason", "Meter readings the verifier rejected, per meter and reason.",
                   [target(f'sum by (namespace, node, reason) (increase(depin_agent_proofs_rejected_total{{{sel}, proof="meter"}}[$__rate_interval])) > 0 or on() vector(0)',
                           "{{namespace}}/{{node}} {{reason}}")], bars=True, w=24),
    ] + kind_tail(kind)
    return dashboard("depin-meter", "DePIN / Meters",
                     "Energy meters: power, energy, signed readings and the readings the verifier rejected.",
                     kind_variables(kind), items, ["meter"])


DASHBOARDS = {
    "fleet-overview": fleet_overview,
    "rewards": rewards,
    "hotspot": hotspot,
    "storage": storage,
    "gpu": gpu,
    "meter": meter,
}


def render_all() -> dict[str, str]:
    return {f"{name}.json": json.dumps(build(), indent=2, sort_keys=False) + "\n" for name, build in DASHBOARDS.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed dashboard is stale")
    args = parser.parse_args()
    stale = []
    for name, text in render_all().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale dashboards (run python3 charts/gen_dashboards.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
