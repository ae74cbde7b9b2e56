#!/usr/bin/env bash
# Builds the riskgate wheel with maturin, installs it into a virtualenv and runs pytest.
#
#   risk-py/scripts/test.sh [pytest args...]
#
# Needs only python3 (3.9+, with venv), a Rust toolchain and the package registries (PyPI
# for maturin and pytest, crates.io for the crates). Respects CARGO_TARGET_DIR. The
# virtualenv is kept in risk-py/.venv (override with RISKGATE_VENV) so reruns are quick;
# PYTHON picks the interpreter that creates it. Exits non-zero when anything fails.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${RISKGATE_VENV:-$here/.venv}
python=${PYTHON:-python3}
step() { printf '\n== %s\n' "$*"; }

step "virtualenv ($venv)"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "maturin>=1.9.4,<2" "pytest>=7"

step "wheel (maturin build --release)"
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
"$venv/bin/maturin" build --release --locked --quiet \
  --manifest-path "$here/Cargo.toml" --interpreter "$venv/bin/python" --out "$wheels"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --force-reinstall --no-deps "$wheels"/riskgate-*.whl

step "pytest"
cd "$here"
"$venv/bin/python" -m pytest -q tests "$@"
