#!/usr/bin/env bash
# issue 19 item 5 / issue 16 target 4, in one run: a polars DataFrame of N trades through
# riskgate.trade_metrics on one thread (bench/arrow_bench.py) beside the Rust batch over the
# same number of generated trades (benches/src/bin/metrics_cpu.rs, the computation of
# `cargo bench --bench metrics -- batch_all_accounts`), alternating ROUNDS times, each
# timed in process CPU time as well as wall time (the machine is shared: CPU time is the
# steadier figure).
#
#   risk-py/bench/vs_rust.sh [N] [ROUNDS]     (defaults 1000000 and 3)
#
# Needs the release wheel installed in risk-py/.venv (risk-py/scripts/test.sh builds it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
rounds=${2:-3}
python=${RISKGATE_VENV:-$here/.venv}/bin/python
cd "$here/.."
cargo build --release --quiet -p riskgate-benches --bin metrics_cpu
rust=${CARGO_TARGET_DIR:-target}/release/metrics_cpu
for round in $(seq "$rounds"); do
  echo "== round $round (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$rust" "$n" 5
  "$python" "$here/bench/arrow_bench.py" "$n" --one-thread
done
