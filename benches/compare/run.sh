#!/usr/bin/env bash
# Peer comparison in one run: the same generated export through `risk report`, a vectorized
# polars script and a pandas script, then a check that the three agree on every account's
# metrics (benches/compare/agree.py).
# Usage: benches/compare/run.sh [TRADES]   (default 1000000)
# Creates a virtualenv with pandas and polars (from PyPI, once; kept for later runs) under
# ${COMPARE_VENV:-target/compare-venv}. SKIP_PANDAS=1 leaves pandas out (it takes minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000000}
target=${CARGO_TARGET_DIR:-target}
venv=${COMPARE_VENV:-$target/compare-venv}
data=$target/compare-data-$n
if ! "$venv/bin/python" -c 'import pandas, numpy, polars' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pandas numpy polars
fi
cargo build --quiet --release -p risk-adapters --features cli --bin risk
risk=$target/release/risk
if [ ! -f "$data/trades.csv" ]; then
  "$risk" generate-sample --trades "$n" --out-dir "$data" >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
now() { date +%s.%N; }
t0=$(now); "$risk" report --trades "$data/trades.csv" --accounts "$data/accounts.csv" --format json >"$out/risk.json" 2>"$out/risk.err"; t1=$(now)
rust=$(python3 -c "print($t1 - $t0)")
t1=$(now)
polars_json=$("$venv/bin/python" benches/compare/polars_metrics.py "$data/trades.csv" "$data/accounts.csv" --out "$out/polars.json")
t2=$(now)
polars=$(python3 -c "print($t2 - $t1)")
echo "trades: $n ($(du -h "$data/trades.csv" | cut -f1) CSV), machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-36s %8.2f s   %s\n' "risk report (read + metrics + JSON)" "$rust" "$(grep '^risk: read' "$out/risk.err" || true)"
printf '%-36s %8.2f s   %s\n' "polars (python start + read + metrics)" "$polars" "$polars_json"
peers=(polars="$out/polars.json")
if [ -z "${SKIP_PANDAS:-}" ]; then
  t2=$(now)
  pandas_json=$("$venv/bin/python" benches/compare/pandas_metrics.py "$data/trades.csv" "$data/accounts.csv" --out "$out/pandas.json")
  t3=$(now)
  pandas=$(python3 -c "print($t3 - $t2)")
  printf '%-36s %8.2f s   %s\n' "pandas (python start + read + metrics)" "$pandas" "$pandas_json"
  peers+=(pandas="$out/pandas.json")
fi
printf 'ratio polars / risk report: %.2fx\n' "$(python3 -c "print($polars / $rust)")"
if [ -z "${SKIP_PANDAS:-}" ]; then
  printf 'ratio pandas / risk report: %.1fx\n' "$(python3 -c "print($pandas / $rust)")"
fi
"$venv/bin/python" benches/compare/agree.py "$out/risk.json" "${peers[@]}"
