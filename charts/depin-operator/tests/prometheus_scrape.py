#!/usr/bin/env python3
"""Live check of the dashboards and alerts against a running fleet with real Prometheus.

Starts Debian's `prometheus` on 127.0.0.1, scraping the operator and every agent pod the way
the chart's ServiceMonitor and PodMonitor select them (found with kubectl and handed to
Prometheus as file_sd targets: Debian builds Prometheus without Kubernetes discovery), or
fixed targets. Once the targets are up and scraped twice it

  1. runs every dashboard query (variables as "All") and reports those with no series,
  2. checks that the alert rules (files/alerts.yaml, loaded as rule_files) evaluate cleanly,
  3. with --check-metrics, runs `promtool check metrics` on each target's /metrics.

    # discovery through the cluster (the host must reach pod IPs, as on the local harness)
    charts/depin-operator/tests/prometheus_scrape.py --kubeconfig $(bash e2e/cluster.sh kubeconfig) --check-metrics
    # fixed targets
    charts/depin-operator/tests/prometheus_scrape.py --target operator=10.244.0.32:8080 --target agent=10.244.0.40:8080

Exit status 0 when every query returned a series (and the other checks passed), 1 otherwise;
--allow-empty REGEX accepts queries (matched against "<dashboard> <where>") that may be
empty in a short run, e.g. rejections in an honest fleet. --json FILE writes the report.
Prometheus is stopped (by its PID) before exiting unless --keep-running is given.

--serve runs no checks: it keeps Prometheus (with the alert rules) scraping, re-discovering
the pods every interval, until SIGINT/SIGTERM; `e2e/fleet.sh` uses it for the demo.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dashboard_queries import all_queries, substitute  # noqa: E402

ALERTS = Path(__file__).resolve().parent.parent / "files" / "alerts.yaml"


def discover(args) -> list[dict]:
    """file_sd target groups chosen like the chart's monitors: the operator Service's ready
    endpoints on port http (ServiceMonitor) and every running agent pod's port http
    (PodMonitor: label app.kubernetes.io/name=depin-agent, any namespace). Debian's
    prometheus is built without Kubernetes service discovery, so this asks kubectl."""
    def get(*what):
        out = subprocess.run([args.kubectl, "--kubeconfig", args.kubeconfig, "get", *what, "-o", "json"],
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip())
        return json.loads(out.stdout)["items"]

    groups = []
    selector = f"app.kubernetes.io/name=depin-operator,app.kubernetes.io/instance={args.release}"
    for ep in get("endpoints", "-n", args.namespace, "-l", selector):
        for subset in ep.get("subsets", []):
            port = next((p["port"] for p in subset.get("ports", []) if p.get("name") == "http"), None)
            for address in subset.get("addresses", []) if port else []:
                pod = (address.get("targetRef") or {}).get("name", "")
                groups.append({"targets": [f"{address['ip']}:{port}"],
                               "labels": {"role": "operator", "namespace": args.namespace, "pod": pod}})
    for pod in get("pods", "-A", "-l", "app.kubernetes.io/name=depin-agent"):
        ip = pod.get("status", {}).get("podIP")
        if pod.get("status", {}).get("phase") != "Running" or not ip:
            continue
        for container in pod["spec"]["containers"]:
            for port in container.get("ports", []):
                if port.get("name") == "http":
                    groups.append({"targets": [f"{ip}:{port['containerPort']}"],
                                   "labels": {"role": "agent", "namespace": pod["metadata"]["namespace"],
                                              "pod": pod["metadata"]["name"]}})
    return groups


def write_targets(args, path: Path) -> int:
    groups = []
    if args.kubeconfig:
        groups += discover(args)
    for spec in args.target:
        role, _, address = spec.partition("=")
        if role not in ("operator", "agent") or not address:
            raise SystemExit(f"--target {spec}: want operator=HOST:PORT or agent=HOST:PORT")
        labels = {"role": role, **({"namespace": args.namespace} if role == "operator" else {})}
        groups.append({"targets": [address], "labels": labels})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups))
    tmp.replace(path)  # Prometheus reads a whole file, never a half-written one
    return len(groups)


def scrape_config(args, targets: Path) -> dict:
    """One job per role over the file_sd targets; honor_labels keeps the namespace label of
    per-node series (as the chart's monitors do)."""
    interval = f"{args.interval}s"
    jobs = [{
        "job_name": f"depin-{role}", "scrape_interval": interval, "scrape_timeout": interval,
        "metrics_path": "/metrics", "honor_labels": True,
        "file_sd_configs": [{"files": [str(targets)], "refresh_interval": interval}],
        "relabel_configs": [{"source_labels": ["role"], "regex": role, "action": "keep"}],
    } for role in ("operator", "agent")]
    return {"global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(ALERTS)], "scrape_configs": jobs}


def api(base: str, path: str, **params) -> dict:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise RuntimeError(f"{path}: {body}")
    return body["data"]


def wait_for(what: str, timeout: float, check):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (urllib.error.URLError, ConnectionError, RuntimeError) as err:
            last = err
        time.sleep(1)
    raise SystemExit(f"timed out waiting for {what}" + (f" ({last})" if last else ""))


def serve(args, targets: Path, base: str) -> None:
    """Keeps the target list current until SIGINT/SIGTERM."""
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))
    print(f"prometheus serving at {base} (scraping every {args.interval} s)", file=sys.stderr, flush=True)
    while not stop:
        if args.kubeconfig:
            try:
                write_targets(args, targets)
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                print(f"target discovery failed (retrying): {err}", file=sys.stderr, flush=True)
        for _ in range(args.interval * 10):
            if stop:
                break
            time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", help="discover targets in this cluster (like the chart's monitors)")
    parser.add_argument("--kubectl", default=os.environ.get("DEPIN_KUBECTL") or shutil.which("kubectl") or "kubectl")
    parser.add_argument("--target", action="append", default=[], help="operator=HOST:PORT or agent=HOST:PORT")
    parser.add_argument("--namespace", default="depin-system", help="operator namespace")
    parser.add_argument("--release", default="depin-operator", help="operator release (app.kubernetes.io/instance)")
    parser.add_argument("--port", type=int, default=19090, help="Prometheus listen port on 127.0.0.1")
    parser.add_argument("--interval", type=int, default=5, help="scrape and rule interval, seconds")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for targets")
    parser.add_argument("--min-agents", type=int, default=0, help="wait until this many agent targets are up")
    parser.add_argument("--allow-empty", action="append", default=[], help="regex of queries that may be empty")
    parser.add_argument("--check-metrics", action="store_true", help="promtool check metrics on every target")
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--keep-running", action="store_true", help="leave Prometheus running (prints its PID)")
    parser.add_argument("--serve", action="store_true", help="no checks: scrape until SIGINT/SIGTERM")
    args = parser.parse_args()

    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        raise SystemExit("prometheus/promtool not found: run charts/setup.sh")
    work = Path(tempfile.mkdtemp(prefix="depin-prometheus-"))
    if not args.kubeconfig and not args.target:
        raise SystemExit("nothing to scrape: give --kubeconfig or --target")
    targets = work / "targets.json"
    write_targets(args, targets)
    config = work / "prometheus.yml"
    config.write_text(json.dumps(scrape_config(args, targets), indent=2))  # JSON is YAML
    check = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise SystemExit(f"promtool check config: {check.stdout}{check.stderr}")
    base = f"http://127.0.0.1:{args.port}"
    log = (work / "prometheus.log").open("w")
    proc = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
                             f"--web.listen-address=127.0.0.1:{args.port}"], stdout=log, stderr=subprocess.STDOUT)
    report: dict = {"prometheus": base, "workdir": str(work)}
    try:
        wait_for("Prometheus ready", 30, lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200)
        if args.serve:
            serve(args, targets, base)
            return 0

        def targets_up():
            if args.kubeconfig:
                write_targets(args, targets)  # pods come and go while we wait
            active = api(base, "/api/v1/targets")["activeTargets"]
            up = [t for t in active if t["health"] == "up"]
            agents = [t for t in up if t["labels"]["job"] == "depin-agent"]
            operator = [t for t in up if t["labels"]["job"] == "depin-operator"]
            return active if operator and len(agents) >= args.min_agents and len(up) == len(active) else None

        try:
            active = wait_for("every target up", args.timeout, targets_up)
        except SystemExit:
            for t in api(base, "/api/v1/targets")["activeTargets"]:
                if t["health"] != "up":
                    print(f"  target {t['scrapeUrl']} ({t['labels'].get('pod', '?')}): {t['health']} {t.get('lastError', '')}",
                          file=sys.stderr)
            raise
        report["targets"] = [{"job": t["labels"]["job"], "url": t["scrapeUrl"], "health": t["health"]} for t in active]
        time.sleep(3 * args.interval)  # two more scrapes, so rate() has samples
        allow = [re.compile(r) for r in args.allow_empty]
        results, empty = [], []
        for dashboard, where, expr in all_queries():
            query = substitute(expr)
            try:
                n = len(api(base, "/api/v1/query", query=query)["result"])
                error = None
            except (RuntimeError, urllib.error.HTTPError) as err:
                n, error = 0, str(err)
            results.append({"dashboard": dashboard, "where": where, "query": query, "series": n, "error": error})
            label = f"{dashboard} {where}"
            if (n == 0 or error) and not any(a.search(label) for a in allow):
                empty.append(f"{label}: {query}" + (f" ({error})" if error else ""))
        report["queries"] = results
        rules = api(base, "/api/v1/rules")["groups"]
        bad_rules = [f"{r['name']}: {r.get('lastError')}" for g in rules for r in g["rules"] if r.get("health") != "ok"]
        report["rule_errors"] = bad_rules
        metric_problems = []
        if args.check_metrics:
            for t in active:
                text = urllib.request.urlopen(t["scrapeUrl"], timeout=10).read()
                r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
                if r.returncode != 0:
                    metric_problems.append(f"{t['scrapeUrl']}: {(r.stdout + r.stderr).decode().strip()}")
        report["metric_problems"] = metric_problems
        print(f"{len(results) - len(empty)}/{len(results)} dashboard queries returned series", file=sys.stderr)
        for line in empty:
            print(f"  EMPTY {line}", file=sys.stderr)
        for line in bad_rules + metric_problems:
            print(f"  PROBLEM {line}", file=sys.stderr)
        ok = not empty and not bad_rules and not metric_problems
    finally:
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2))
        if args.keep_running:
            print(f"prometheus pid {proc.pid} at {base} (data in {work})", file=sys.stderr)
        else:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
