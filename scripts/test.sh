#!/usr/bin/env bash
# The one command that runs every check CI runs. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check
step "clippy (all targets, all features, warnings denied)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
step "purity of risk-core"
scripts/check-purity.sh
step "docs (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked --quiet
step "headless Chromium for the HTML report test (risk-adapters/tests/rulebook_cli.rs)"
if ! command -v chromium >/dev/null; then
  { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "chromium could not be installed: the rendering check will be skipped"
fi
step "test Kafka broker: tansu on a free loopback port (installs it once, cached) and fastavro"
. scripts/tansu.sh
tansu_start
trap tansu_stop EXIT
fastavro_venv
step "tests (workspace, all features; the Kafka and Redis-snapshot end-to-end tests use tansu above and Redis at 127.0.0.1:6379)"
cargo test --workspace --all-features --locked
step "schemathesis against the admin API's /openapi.json (no 5xx; responses match their schemas)"
scripts/schemathesis.sh
step "webhook receiver example verifies a signed event from risk-server (standardwebhooks from PyPI)"
scripts/webhook-receiver.sh
step "signal service end to end: the example export posted, parity with risk report before and after kill -9, one verified event per HIGH/CRITICAL account"
scripts/signal-e2e.sh
step "fuzz targets on stable: format, clippy, replay of corpora and regressions"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --manifest-path fuzz/Cargo.toml --all-targets --locked -- -D warnings
cargo test --manifest-path fuzz/Cargo.toml --locked
step "fuzz smoke: every target for 5 s under libFuzzer (installs cargo-fuzz if missing; about 6 min cold)"
fuzz/run.sh 5
step "benches in test mode (each runs once)"
cargo bench -p riskgate-benches --locked -- --test
step "Python bindings: build the wheel in a virtualenv, stubtest, backtest smoke run, pytest"
risk-py/scripts/test.sh
step "FastAPI parity: risk report --pnl gross --window N against a pandas reference (risk-py's virtualenv)"
cargo build --workspace --all-features --locked --bin risk
RISKGATE_RISK_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/risk" \
  "${RISKGATE_VENV:-risk-py/.venv}/bin/python" -m pytest -q risk-adapters/tests/fastapi_parity
