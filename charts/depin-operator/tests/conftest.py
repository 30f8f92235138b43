"""Shared helpers of the chart tests: paths, real-Helm rendering (charts/render.py), promtool."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

TESTS = Path(__file__).resolve().parent
CHART = TESTS.parent
CHARTS = CHART.parent
REPO = CHARTS.parent
sys.path.insert(0, str(CHARTS))

import render as render_script  # noqa: E402  (charts/render.py, the same code the e2e tests use)

NAMESPACE = "depin-system"
RELEASE = "depin-operator"

# Every optional feature on.
ALL_FEATURES = {
    "replicas": 2,
    "networkPolicy": {"enabled": True},
    "demo": {"enabled": True, "simulators": {"enabled": True}},
    "monitoring": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True, "ruleLabels": {"team": "depin"}},
    },
    "dashboards": {"enabled": True, "annotations": {"grafana_folder": "DePIN"}},
    "kubeVersionOverride": "1.20.2",
    "operator": {"beaconTick": 30, "rustLog": "info,depin_operator=debug", "extraEnv": [{"name": "EXTRA", "value": "1"}]},
}


class Rendered(list):
    """Rendered documents with lookups by kind and name."""

    def of(self, kind: str) -> list[dict]:
        return [obj for _, _, obj in self if obj["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict:
        found = [o for o in self.of(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def kinds(self) -> list[str]:
        return [obj["kind"] for _, _, obj in self]


def render(values: dict | None = None, namespace: str = NAMESPACE, name: str = RELEASE) -> Rendered:
    return Rendered(render_script.render(values or {}, namespace=namespace, name=name))


@pytest.fixture(scope="session")
def default_render() -> Rendered:
    return render({})


@pytest.fixture(scope="session")
def full_render() -> Rendered:
    return render(ALL_FEATURES)


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        pytest.fail("promtool not found: run charts/setup.sh (Debian package prometheus)")
    return path


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())
