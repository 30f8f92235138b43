"""Opt-in: the rendered chart against a real apiserver, as a server-side dry run (nothing is
persisted). Runs only with DEPIN_CHART_CLUSTER_TESTS=1 and KUBECONFIG set; kubectl is
DEPIN_KUBECTL or the one on PATH.

    DEPIN_CHART_CLUSTER_TESTS=1 KUBECONFIG=$(bash e2e/cluster.sh kubeconfig) bash charts/test.sh -k cluster
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import ALL_FEATURES

import render as render_script

pytestmark = pytest.mark.skipif(
    os.environ.get("DEPIN_CHART_CLUSTER_TESTS") != "1" or not os.environ.get("KUBECONFIG"),
    reason="cluster tests are opt-in: DEPIN_CHART_CLUSTER_TESTS=1 and KUBECONFIG",
)

# A release name no real install uses, in a namespace that always exists.
RELEASE = "chart-dryrun"
NAMESPACE = "default"


def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    binary = os.environ.get("DEPIN_KUBECTL") or shutil.which("kubectl")
    assert binary, "kubectl not found (set DEPIN_KUBECTL)"
    return subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, timeout=120)


def server_version() -> str:
    out = kubectl("version", "-o", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["serverVersion"]["gitVersion"].lstrip("v").split("+")[0]


def dry_run_apply(values: dict) -> str:
    values = render_script.deep_merge(values, {"kubeVersionOverride": server_version()})
    docs = render_script.render(values, namespace=NAMESPACE, name=RELEASE)
    text = "\n---\n".join(t for _, t, _ in docs)
    out = kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts", "--field-manager=chart-test",
                  "-f", "-", stdin=text)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_default_render_applies_server_side():
    out = dry_run_apply({})
    assert f"deployment.apps/{RELEASE}-depin-operator serverside-applied (server dry run)" in out
    assert "poddisruptionbudget.policy" in out


def test_all_features_apply_server_side():
    served = kubectl("api-versions").stdout.split()
    values = render_script.deep_merge(ALL_FEATURES, {})
    if "monitoring.coreos.com/v1" not in served:
        values["monitoring"] = {k: {"enabled": False} for k in ("serviceMonitor", "podMonitor", "prometheusRule")}
    crds = kubectl("get", "crd", "-o", "name").stdout
    if "rewardpolicies.depin.dev" not in crds:
        pytest.skip("depin.dev CRDs are not installed (kubectl apply --server-side -f crds/)")
    out = dry_run_apply(values)
    for obj in ("networkpolicy.networking.k8s.io", "rewardpolicy.depin.dev/demo", "meterbridge.depin.dev/demo-meter-1"):
        assert obj in out, out
