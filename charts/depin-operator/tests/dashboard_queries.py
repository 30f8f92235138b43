"""Every PromQL query of the chart's dashboards, with Grafana variables substituted.

Shared by test_dashboards.py (syntax, via promtool) and prometheus_scrape.py (each query
must return a series from a live fleet)."""

from __future__ import annotations

import json
import re
from pathlib import Path

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboards"

# Values the variables take for the checks ("All" is ".*").
VARIABLE_VALUES = {
    "__rate_interval": "1m", "__interval": "1m", "__range": "1h",
    "namespace": ".*", "kind": ".*", "node": ".*", "policy": ".*", "topn": "10", "decimals": "8",
}


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARD_DIR.glob("*.json"))}


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    values = {**VARIABLE_VALUES, **(values or {})}

    def one(match):
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"unknown dashboard variable ${name} in {expr}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def panels(dash: dict) -> list[dict]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows
    return out


def label_values_selector(query: str) -> tuple[str, str]:
    m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
    if not m:
        raise ValueError(f"variable query is not label_values(selector, label): {query}")
    return m.group(1), m.group(2)


def queries(dash: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable's selector."""
    out = []
    for p in panels(dash):
        for t in p.get("targets", []):
            out.append((f"panel {p['id']} {p['title']!r} {t['refId']}", t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            out.append((f"variable {v['name']}", label_values_selector(v["query"]["query"])[0]))
    return out


def all_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, where, raw PromQL) for every dashboard."""
    return [(name, where, expr) for name, dash in dashboards().items() for where, expr in queries(dash)]
