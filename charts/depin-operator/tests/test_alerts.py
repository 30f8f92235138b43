"""Alert rules (files/alerts.yaml): promtool check, runbooks, and promtool unit tests for
every alert (tests/alerts_test.yaml)."""

from __future__ import annotations

import copy
import re
import subprocess

import yaml
from conftest import CHART, TESTS, load_yaml

ALERTS_FILE = CHART / "files" / "alerts.yaml"
UNIT_TESTS = TESTS / "alerts_test.yaml"
LABEL_TEMPLATE = re.compile(r"\{\{ \$labels\.(\w+) \}\}")


def rules() -> dict[str, dict]:
    return {r["alert"]: r for g in load_yaml(ALERTS_FILE)["groups"] for r in g["rules"]}


def test_promtool_check_rules(promtool):
    result = subprocess.run([promtool, "check", "rules", str(ALERTS_FILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_expected_alerts_exist():
    assert {"DepinOperatorNoLeader", "DepinReconcileErrors", "DepinProofRejectionSpike", "DepinStorageDeadlinesMissed",
            "DepinStorageReputationLow", "DepinNodeNotProving"} <= set(rules())


def test_every_alert_has_severity_summary_description_and_runbook():
    for name, rule in rules().items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        notes = rule["annotations"]
        assert {"summary", "description", "runbook"} <= set(notes), name
        runbook = notes["runbook"]
        assert "Meaning:" in runbook and "Check:" in runbook and "kubectl" in runbook, name


def test_annotations_use_only_label_templates():
    """Keeps the unit tests' annotation expansion exact (no $value, no functions)."""
    for name, rule in rules().items():
        for key, text in rule["annotations"].items():
            leftover = LABEL_TEMPLATE.sub("", text)
            assert "{{" not in leftover and "}}" not in leftover, f"{name}.{key}: only {{{{ $labels.NAME }}}} allowed"


def test_every_alert_fires_and_stays_quiet_in_unit_tests():
    cases: dict[str, set[str]] = {}
    for test in load_yaml(UNIT_TESTS)["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], set()).add("fires" if case.get("exp_alerts") else "quiet")
    for name in rules():
        assert cases.get(name) == {"fires", "quiet"}, f"{name}: unit tests cover {cases.get(name)}"


def expand(text: str, labels: dict) -> str:
    return LABEL_TEMPLATE.sub(lambda m: str(labels[m.group(1)]), text)


def test_promtool_unit_tests(promtool, tmp_path):
    """Runs alerts_test.yaml with exp_annotations filled in from the rules themselves."""
    spec = load_yaml(UNIT_TESTS)
    by_name = rules()
    filled = copy.deepcopy(spec)
    filled["rule_files"] = [str(ALERTS_FILE)]
    for test in filled["tests"]:
        for case in test.get("alert_rule_test", []):
            for alert in case.get("exp_alerts") or []:
                if "exp_annotations" not in alert:
                    notes = by_name[case["alertname"]]["annotations"]
                    alert["exp_annotations"] = {k: expand(v, alert["exp_labels"]) for k, v in notes.items()}
    path = tmp_path / "alerts_test.filled.yaml"
    path.write_text(yaml.safe_dump(filled, sort_keys=False, width=1000))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
