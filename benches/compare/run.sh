#!/usr/bin/env bash
# Peer comparison in one run: the same generated export through pandas and `risk report`.
# Usage: benches/compare/run.sh [TRADES]   (default 1000000)
# Creates a virtualenv with pandas under ${COMPARE_VENV:-target/compare-venv}.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000000}
target=${CARGO_TARGET_DIR:-target}
venv=${COMPARE_VENV:-$target/compare-venv}
data=$target/compare-data-$n
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pandas numpy
fi
cargo build --quiet --release -p risk-adapters --features cli --bin risk
risk=$target/release/risk
if [ ! -f "$data/trades.csv" ]; then
  "$risk" generate-sample --trades "$n" --out-dir "$data" >/dev/null
fi
now() { date +%s.%N; }
t0=$(now); "$risk" report --trades "$data/trades.csv" --accounts "$data/accounts.csv" --format json >/dev/null 2>&1; t1=$(now)
rust=$(python3 -c "print($t1 - $t0)")
pandas_json=$("$venv/bin/python" benches/compare/pandas_metrics.py "$data/trades.csv" "$data/accounts.csv")
t2=$(now)
pandas=$(python3 -c "print($t2 - $t1)")
echo "trades: $n ($(du -h "$data/trades.csv" | cut -f1) CSV), machine: $(nproc) cores"
printf '%-34s %8.2f s\n' "risk report (read + metrics + JSON)" "$rust"
printf '%-34s %8.2f s   %s\n' "pandas (read + metrics)" "$pandas" "$pandas_json"
printf 'ratio pandas / risk report: %.1fx\n' "$(python3 -c "print($pandas / $rust)")"
