#!/usr/bin/env bash
# issue 19 item 5 / issue 16 target 4, in one run: the Rust batch
# (benches/src/bin/metrics_cpu.rs, the computation of `cargo bench --bench metrics --
# batch_all_accounts`) beside riskgate.trade_metrics on one thread over a polars DataFrame
# of the SAME trades (the sample generator's, seed 7, written by `risk generate-sample` and
# read with `pl.read_csv(..., try_parse_dates=True)`; bench/arrow_bench.py --csv), and over
# arrow_bench.py's own random trades; alternating ROUNDS times, each timed in process CPU
# time as well as wall time (the machine is shared: CPU time is the steadier figure).
#
#   risk-py/bench/vs_rust.sh [N] [ROUNDS]     (defaults 1000000 and 3)
#
# With RISKGATE_BEFORE set to a directory holding another build of the package (a wheel
# unpacked there), each round also times that build on the same trades ("before"), so a
# change is measured before and after in the same run.
#
# Needs the release wheel installed in risk-py/.venv (risk-py/scripts/test.sh builds it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
rounds=${2:-3}
python=${RISKGATE_VENV:-$here/.venv}/bin/python
cd "$here/.."
cargo build --release --quiet -p riskgate-benches --bin metrics_cpu -p risk-adapters --bin risk --features risk-adapters/cli
rust=${CARGO_TARGET_DIR:-target}/release/metrics_cpu
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
"${CARGO_TARGET_DIR:-target}/release/risk" generate-sample --trades "$n" --seed 7 --no-defects --out-dir "$data"
for round in $(seq "$rounds"); do
  echo "== round $round (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$rust" "$n" 5
  if [ -n "${RISKGATE_BEFORE:-}" ]; then
    printf 'before: '
    PYTHONPATH="$RISKGATE_BEFORE" "$python" "$here/bench/arrow_bench.py" "$n" --one-thread --csv="$data/trades.csv"
    printf 'after:  '
  fi
  "$python" "$here/bench/arrow_bench.py" "$n" --one-thread --csv="$data/trades.csv"
  "$python" "$here/bench/arrow_bench.py" "$n" --one-thread
done
