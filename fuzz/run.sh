#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each, one after the other, and prints the number of
# executions per target.
#
#   fuzz/run.sh 300            # five minutes per target
#   fuzz/run.sh 60 trades_csv  # only the named targets
#
# Installs cargo-fuzz from crates.io when it is missing. Uses the installed nightly
# toolchain, or RUSTC_BOOTSTRAP=1 on the default toolchain when there is no nightly.
# Respects CARGO_TARGET_DIR. The committed seeds in fuzz/corpus/<target>/ are read; what
# the fuzzer adds goes to fuzz/work/<target>/ (ignored by git; copy only small, meaningful
# inputs into the corpus). Crashes go to fuzz/artifacts/<target>/: copy them to
# fuzz/regressions/<target>/ once fixed so that `cargo test` replays them.
set -euo pipefail

seconds="${1:?usage: fuzz/run.sh SECONDS [TARGET...]}"
shift
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

target_dir=()
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    target_dir=(--target-dir "$CARGO_TARGET_DIR")
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list --fuzz-dir fuzz)
fi

logs="$(mktemp -d)"
status=0
for target in "${targets[@]}"; do
    echo "== $target: ${seconds}s"
    mkdir -p "fuzz/work/$target" "fuzz/corpus/$target"
    log="$logs/$target.log"
    # -print_final_stats=1 makes libFuzzer print stat::number_of_executed_units at exit.
    if ! cargo "${toolchain[@]}" fuzz run "${target_dir[@]}" --fuzz-dir fuzz --features libfuzzer \
        "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 \
        >"$log" 2>&1; then
        status=1
        echo "!! $target failed; the end of its log:"
        tail -n 40 "$log"
    fi
done

echo
printf '%-16s %14s\n' target executions
for target in "${targets[@]}"; do
    log="$logs/$target.log"
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)"
    if [[ -z "$execs" ]]; then
        execs="$(grep -o '^#[0-9]*[[:space:]]*DONE' "$log" | tail -n 1 | grep -o '[0-9]*' | head -n 1 || true)"
    fi
    printf '%-16s %14s\n' "$target" "${execs:-?}"
done
echo "logs: $logs"
exit "$status"
