#!/usr/bin/env bash
# Installs what the chart tools need, idempotently (a no-op when all is there):
#   - a Python venv at ~/.cache/depin-operator/venv (override: DEPIN_CHART_VENV) with
#     helm-python-sdk (real Helm v4 SDK, no helm binary), pytest, jsonschema, pyyaml;
#   - Debian's prometheus package, for promtool (and the prometheus binary the live
#     scrape check uses). Needs root for apt-get, like e2e/cluster.sh.
# Prints nothing on success unless it installed something.
set -euo pipefail
VENV=${DEPIN_CHART_VENV:-$HOME/.cache/depin-operator/venv}
PYTHON=${PYTHON:-python3}

if ! "$VENV/bin/python" -c 'import helm_python, pytest, jsonschema, yaml' >/dev/null 2>&1; then
  echo "charts/setup.sh: installing helm-python-sdk, pytest, jsonschema, pyyaml into $VENV" >&2
  [[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    'helm-python-sdk==0.2.2' pytest jsonschema pyyaml >&2
fi

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  echo "charts/setup.sh: installing Debian prometheus (promtool)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Finish an install a killed run interrupted, or dpkg refuses this one.
  dpkg --configure -a >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  }
fi
