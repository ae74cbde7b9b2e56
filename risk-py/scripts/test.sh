#!/usr/bin/env bash
# Builds the riskgate wheel with maturin, installs it into a virtualenv, runs pytest, checks
# the stubs against the extension (mypy.stubtest) and smoke-runs examples/backtest.py.
#
#   risk-py/scripts/test.sh [pytest args...]
#
# Needs only python3 (3.10+, with venv), a Rust toolchain and the package registries (PyPI
# for maturin, pytest, mypy and the dataframe libraries, crates.io for the crates).
# Respects CARGO_TARGET_DIR. The virtualenv is kept in risk-py/.venv (override with
# RISKGATE_VENV) so reruns are quick; PYTHON picks the interpreter that creates it. Exits non-zero when anything fails.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${RISKGATE_VENV:-$here/.venv}
python=${PYTHON:-python3}
step() { printf '\n== %s\n' "$*"; }

step "virtualenv ($venv)"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
# polars, pyarrow and duckdb: the Arrow input kinds of tests/test_arrow.py (the package itself
# needs none of them).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "maturin>=1.9.4,<2" "pytest>=7" "mypy>=1.18" \
  numpy pandas polars pyarrow duckdb

step "wheel (maturin build --release)"
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
"$venv/bin/maturin" build --release --locked --quiet \
  --manifest-path "$here/Cargo.toml" --interpreter "$venv/bin/python" --out "$wheels"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --force-reinstall --no-deps "$wheels"/riskgate-*.whl

cd "$here"
step "stubs match the extension (mypy.stubtest) and type-check the backtest example"
"$venv/bin/python" -m mypy.stubtest --ignore-disjoint-bases riskgate
"$venv/bin/python" -m mypy --strict --cache-dir /dev/null "$here/../examples/backtest.py"

step "backtest example (smoke run)"
"$venv/bin/python" "$here/../examples/backtest.py" --steps 300

step "pytest"
"$venv/bin/python" -m pytest -q tests "$@"
