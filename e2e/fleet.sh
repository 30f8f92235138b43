#!/usr/bin/env bash
# The demo fleet in one command: local cluster (cached build), images, CRDs, the operator
# (rendered from the Helm chart), 9 nodes of every kind with their simulators (SunSpec
# meters, RF medium), a local Prometheus scraping them all, progress and reward summaries
# until Ctrl-C; then everything it started is stopped.
#   bash e2e/fleet.sh           run it
#   bash e2e/fleet.sh down      clean up after a crash (stops Prometheus and the local cluster)
#   bash e2e/fleet.sh check     CI form: run until 2 epochs closed with every kind proving,
#                               check the books and every dashboard panel against the live
#                               Prometheus (promtool check metrics too), then remove the fleet
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
mode=${1:-run}
PROM_PORT=${DEPIN_PROMETHEUS_PORT:-19090}
PROM_PID=${DEPIN_CACHE:-$HOME/.cache/depin-operator}/fleet-prometheus.pid
stop_prometheus() {
  if [[ -f $PROM_PID ]]; then
    kill "$(cat "$PROM_PID")" 2>/dev/null || true
    rm -f "$PROM_PID"
  fi
}
case $mode in
  down) stop_prometheus; exec bash e2e/cluster.sh down ;;
  run|check) ;;
  *) echo "usage: $0 [run|check|down]" >&2; exit 2 ;;
esac

bash charts/setup.sh >/dev/null  # the chart renderer's venv and Debian's prometheus
VENV=${DEPIN_CHART_VENV:-$HOME/.cache/depin-operator/venv}
cargo build -p depin-operator -p depin-agent -p depin-e2e -p depin-sim -p depin-cli --bins
mkdir -p target/image
for b in depin-operator depin-agent sunspec-meter rf-medium; do strip -o "target/image/$b" "target/debug/$b"; done
started=0
if [[ -z ${KUBECONFIG:-} ]]; then
  bash e2e/cluster.sh status >/dev/null 2>&1 || { bash e2e/cluster.sh up; started=1; }
  KUBECONFIG=$(bash e2e/cluster.sh kubeconfig)
  export KUBECONFIG
  bash e2e/cluster.sh gpu 8 >/dev/null
  for b in depin-operator depin-agent; do bash e2e/cluster.sh load-image "$b:dev" "target/image/$b"; done
  bash e2e/cluster.sh load-image depin-sim:dev target/image/sunspec-meter target/image/rf-medium
fi
# kubectl for the Prometheus target discovery: the harness's own when it runs the cluster.
if [[ -z ${DEPIN_KUBECTL:-} ]]; then
  if [[ $started == 1 ]] || bash e2e/cluster.sh status >/dev/null 2>&1; then
    DEPIN_KUBECTL=$(bash e2e/cluster.sh kubectl-path)
  else
    DEPIN_KUBECTL=kubectl
  fi
fi
SCRAPE=charts/depin-operator/tests/prometheus_scrape.py

if [[ $mode == check ]]; then
  cleanup() { target/debug/fleet --remove || true; if [[ $started == 1 ]]; then bash e2e/cluster.sh down; fi; }
  trap cleanup EXIT
  target/debug/fleet --epochs 2
  # Every panel of every dashboard must return a series from this live fleet.
  "$VENV/bin/python" "$SCRAPE" --kubeconfig "$KUBECONFIG" --kubectl "$DEPIN_KUBECTL" \
    --port "$PROM_PORT" --min-agents 9 --check-metrics --json target/fleet-prometheus.json
  exit 0
fi

cleanup() {
  stop_prometheus
  [[ $started == 1 ]] && bash e2e/cluster.sh down
  return 0
}
trap cleanup EXIT
stop_prometheus
mkdir -p "$(dirname "$PROM_PID")"
"$VENV/bin/python" "$SCRAPE" --serve --kubeconfig "$KUBECONFIG" --kubectl "$DEPIN_KUBECTL" \
  --port "$PROM_PORT" >target/fleet-prometheus.log 2>&1 &
echo $! >"$PROM_PID"
cat <<MSG

  kubeconfig: $KUBECONFIG
  in another terminal:  export KUBECONFIG=$KUBECONFIG; kubectl get depin -A
  (kubectl 1.20 matching the cluster: bash e2e/cluster.sh kubectl get depin -A)
  the fleet CLI:        target/debug/kubectl-depin status | rewards | claim-proof NODE -n fleet
  Prometheus:           http://127.0.0.1:$PROM_PORT  (scraping the operator and every agent;
                        alert rules loaded; log in target/fleet-prometheus.log)

MSG
target/debug/fleet
