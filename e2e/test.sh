#!/usr/bin/env bash
# The whole test suite: lint, pure tests, then everything that needs a real cluster.
#
# By default it brings up the local single-node cluster (e2e/cluster.sh; cached after the
# first run), packages the operator and agent as images, runs the harness and end-to-end
# tests, and takes the cluster down again (then checks nothing was left behind).
# With KUBECONFIG set it targets that cluster instead and skips the harness; the images
# must then be pullable there (DEPIN_OPERATOR_IMAGE, DEPIN_AGENT_IMAGE; see README).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
step() { echo; echo "=== $* ($(date +%T))"; }
t_start=$SECONDS

# A one-shot CI build gains nothing from incremental state; it was a third of target/.
if [[ ${CI:-} == true ]]; then export CARGO_INCREMENTAL=0; fi
# A full disk shows up as a linker "Bus error" (signal 7) deep in the build; say it first.
# A cold run writes about 8 GiB (target/, the fuzz build, the cluster cache).
disk_check() {
  local free_kib
  free_kib=$(df -Pk . | awk 'NR == 2 {print $4}')
  echo "disk: $((free_kib / 1024 / 1024)) GiB free under $ROOT ($1)"
  if ((free_kib < ${DEPIN_MIN_FREE_GIB:-4} * 1024 * 1024)); then
    echo "error: less than ${DEPIN_MIN_FREE_GIB:-4} GiB free; the build would fail in the linker" >&2
    echo "       (free space, or set DEPIN_MIN_FREE_GIB lower)" >&2
    exit 1
  fi
}
disk_check start

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features depin-e2e/cluster -- -D warnings

step "pure tests (no cluster; interop peers: pymodbus, npm packet-forwarder)"
# The interop tests install their peers (sim/setup.sh) and must not skip silently here.
DEPIN_REQUIRE_INTEROP=1 cargo test --workspace

step "fuzz targets, a short bounded run each (nightly, cargo-fuzz; FUZZING.md)"
bash e2e/fuzz.sh

step "Helm chart, dashboards and alert rules (real Helm, promtool)"
bash charts/test.sh

step "build binaries for the cluster tests"
disk_check "before the cluster build"
cargo build -p depin-operator -p depin-agent -p depin-e2e -p depin-sim --bins
mkdir -p target/image
for b in depin-operator depin-agent incluster-probe sunspec-meter rf-medium; do
  # Debug symbols stay on the build machine; images get the stripped binary.
  strip -o "target/image/$b" "target/debug/$b"
done

local_cluster=0
was_up=0
if [[ -z ${KUBECONFIG:-} ]]; then
  local_cluster=1
  bash e2e/cluster.sh status >/dev/null 2>&1 && was_up=1
  step "local cluster up"
  bash e2e/cluster.sh up
  export KUBECONFIG
  KUBECONFIG=$(bash e2e/cluster.sh kubeconfig)
  bash e2e/cluster.sh gpu 8
  for b in depin-operator depin-agent incluster-probe; do
    bash e2e/cluster.sh load-image "$b:dev" "target/image/$b"
  done
  # The simulators (SunSpec meter, RF medium) run as pods in the device tests.
  bash e2e/cluster.sh load-image depin-sim:dev target/image/sunspec-meter target/image/rf-medium
  step "harness tests"
  bash e2e/cluster.sh test
  export DEPIN_KUBECTL
  DEPIN_KUBECTL=$(bash e2e/cluster.sh kubectl-path)
else
  echo "using the cluster in KUBECONFIG=$KUBECONFIG; skipping the local harness"
fi

step "Helm chart against the cluster's apiserver (every optional feature; server dry run)"
DEPIN_CHART_CLUSTER_TESTS=1 bash charts/test.sh -k cluster

step "end-to-end tests on the cluster"
cargo test -p depin-e2e --features cluster -- --test-threads=1

step "demo fleet: 2 epochs, books, claims; every dashboard panel on a live Prometheus"
bash e2e/fleet.sh check

if [[ $local_cluster == 1 && $was_up == 0 ]]; then
  step "local cluster down"
  bash e2e/cluster.sh down
  bash e2e/harness-test.sh after-down
elif [[ $local_cluster == 1 ]]; then
  echo "the cluster was already up before the tests; leaving it up (e2e/cluster.sh down stops it)"
fi
echo
echo "all tests passed in $((SECONDS - t_start)) s"
