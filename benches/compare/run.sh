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
# Wall and CPU (user + system, every thread) of one command, written to $out/$1.time as
# "wall cpu"; its stdout to $out/$1.out, its stderr to $out/$1.err.
timed() {
  local name=$1
  shift
  python3 - "$out/$name" "$@" <<'PY'
import os, subprocess, sys, time
base, cmd = sys.argv[1], sys.argv[2:]
t0, c0 = time.perf_counter(), os.times()
with open(base + ".out", "wb") as out, open(base + ".err", "wb") as err:
    subprocess.run(cmd, stdout=out, stderr=err, check=True)
t1, c1 = time.perf_counter(), os.times()
cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
open(base + ".time", "w").write(f"{t1 - t0} {cpu}")
PY
}
timed risk "$risk" report --trades "$data/trades.csv" --accounts "$data/accounts.csv" --format json
cp "$out/risk.out" "$out/risk.json"
timed polars "$venv/bin/python" benches/compare/polars_metrics.py "$data/trades.csv" "$data/accounts.csv" --out "$out/polars.json"
peers=(polars="$out/polars.json")
if [ -z "${SKIP_PANDAS:-}" ]; then
  timed pandas "$venv/bin/python" benches/compare/pandas_metrics.py "$data/trades.csv" "$data/accounts.csv" --out "$out/pandas.json"
  peers+=(pandas="$out/pandas.json")
fi
echo "trades: $n ($(du -h "$data/trades.csv" | cut -f1) CSV), machine: $(nproc) cores, load average after the runs $(cut -d' ' -f1-3 /proc/loadavg)"
row() { read -r wall cpu <"$out/$2.time" || true; printf '%-40s %7.2f s wall %7.2f s CPU   %s\n' "$1" "$wall" "$cpu" "$3"; }
row "risk report (read + metrics + JSON)" risk "$(grep '^risk: read' "$out/risk.err" || true)"
row "polars (python start + read + metrics)" polars "$(cat "$out/polars.out")"
if [ -z "${SKIP_PANDAS:-}" ]; then
  row "pandas (python start + read + metrics)" pandas "$(cat "$out/pandas.out")"
fi
ratio() { python3 -c "import sys; a, b = (open(p).read().split() for p in sys.argv[1:]); print(f'ratio $1 / risk report: {float(a[0]) / float(b[0]):.2f}x wall, {float(a[1]) / float(b[1]):.2f}x CPU')" "$out/$1.time" "$out/risk.time"; }
ratio polars
if [ -z "${SKIP_PANDAS:-}" ]; then
  ratio pandas
fi
"$venv/bin/python" benches/compare/agree.py "$out/risk.json" "${peers[@]}"
