#!/usr/bin/env bash
# The demo fleet in one command: local cluster (cached build), images, CRDs, the operator
# and a fleet of every node kind, shown live until Ctrl-C, then everything is stopped.
#   bash e2e/fleet.sh          run it
#   bash e2e/fleet.sh down     clean up after a crash (stops the local cluster)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == down ]]; then
  exec bash e2e/cluster.sh down
fi
cargo build -p depin-operator -p depin-agent -p depin-e2e --bins
mkdir -p target/image
for b in depin-operator depin-agent; do strip -o "target/image/$b" "target/debug/$b"; done
started=0
if [[ -z ${KUBECONFIG:-} ]]; then
  bash e2e/cluster.sh status >/dev/null 2>&1 || { bash e2e/cluster.sh up; started=1; }
  KUBECONFIG=$(bash e2e/cluster.sh kubeconfig)
  export KUBECONFIG
  bash e2e/cluster.sh gpu 8 >/dev/null
  for b in depin-operator depin-agent; do bash e2e/cluster.sh load-image "$b:dev" "target/image/$b"; done
  cleanup() { [[ $started == 1 ]] && bash e2e/cluster.sh down; }
  trap cleanup EXIT
fi
cat <<MSG

  kubeconfig: $KUBECONFIG
  in another terminal:  export KUBECONFIG=$KUBECONFIG; kubectl get depin -A
  (kubectl 1.20 matching the cluster: bash e2e/cluster.sh kubectl get depin -A)

MSG
target/debug/fleet
