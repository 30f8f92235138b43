#!/usr/bin/env bash
# Installs the third-party peers the device-protocol interop tests talk to, idempotently
# (a no-op when all is there; prints nothing on success unless it installed something):
#   - pymodbus<4 (Modbus TCP server) and pysunspec2 (SunSpec register images) into the
#     shared venv ~/.cache/depin-operator/venv (override: DEPIN_SIM_VENV; the chart tools
#     use the same venv, so this only adds packages, never recreates it);
#   - npm packet-forwarder@1.0.8 (a Semtech UDP packet-forwarder client) into
#     ~/.cache/depin-operator/npm (override: DEPIN_SIM_NPM).
# Usage: sim/setup.sh [python|npm]   (default: both)
set -euo pipefail
VENV=${DEPIN_SIM_VENV:-$HOME/.cache/depin-operator/venv}
NPM_DIR=${DEPIN_SIM_NPM:-$HOME/.cache/depin-operator/npm}
PYTHON=${PYTHON:-python3}
what=${1:-all}

if [[ $what == all || $what == python ]]; then
  if ! "$VENV/bin/python" -c 'import pymodbus, sunspec2' >/dev/null 2>&1; then
    echo "sim/setup.sh: installing pymodbus<4 and pysunspec2 into $VENV" >&2
    [[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
    # pymodbus 4 drops the datastore classes the SunSpec server script uses.
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'pymodbus<4' 'pysunspec2>=1.3' >&2
  fi
fi

if [[ $what == all || $what == npm ]]; then
  if [[ ! -f $NPM_DIR/node_modules/packet-forwarder/package.json ]]; then
    echo "sim/setup.sh: installing npm packet-forwarder@1.0.8 into $NPM_DIR" >&2
    mkdir -p "$NPM_DIR"
    [[ -f $NPM_DIR/package.json ]] || echo '{"private":true}' >"$NPM_DIR/package.json"
    npm install --prefix "$NPM_DIR" --no-audit --no-fund --silent packet-forwarder@1.0.8 >&2
  fi
fi
