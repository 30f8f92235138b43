#!/usr/bin/env bash
# Chart, dashboard and alert tests; no cluster needed. Called from e2e/test.sh.
#   bash charts/test.sh              all of them
#   bash charts/test.sh -k schema    pytest arguments pass through
# Installs its tools on first use (charts/setup.sh: a venv under ~/.cache/depin-operator
# and Debian's prometheus for promtool).
set -euo pipefail
cd "$(dirname "$0")"
bash setup.sh
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
VENV=${DEPIN_CHART_VENV:-$HOME/.cache/depin-operator/venv}
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider depin-operator/tests "$@"
