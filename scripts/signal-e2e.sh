#!/usr/bin/env bash
# Issue 14's "done when", end to end against the real binaries: the export of examples/data
# posted to a fresh risk-server (SQLite), every account's GET /risk-report/{login} equal to
# `risk report --format json` before and after kill -9, and one verified signed
# account.risk_level_raised event per account that ends HIGH or CRITICAL
# (scripts/signal_e2e.py says exactly what is checked).
#
#   scripts/signal-e2e.sh [TRADES ACCOUNTS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
venv=${RISKGATE_WEBHOOK_VENV:-$target/webhook-venv}
python=${PYTHON:-python3}
trades=${1:-$here/examples/data/trades.csv}
accounts=${2:-$here/examples/data/accounts.csv}

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "standardwebhooks==1.1.0"
cargo build --locked --quiet --workspace --all-features --bin risk-server --bin risk

cd "$here"
exec "$python" scripts/signal_e2e.py --server "$target/debug/risk-server" --risk "$target/debug/risk" \
  --receiver examples/webhook_receiver.py --receiver-python "$venv/bin/python" \
  --trades "$trades" --accounts "$accounts"
