#!/usr/bin/env bash
# Runs schemathesis (PyPI) against a live risk-server's /openapi.json: every operation with
# generated valid and invalid requests; fails on any 5xx, on a response that does not match
# its declared schema, status code, content type or headers.
#
#   scripts/schemathesis.sh [schemathesis run args...]
#
# The virtualenv is kept in target/schemathesis-venv (override with RISKGATE_ST_VENV) so
# reruns are quick. The server runs on a fresh SQLite file (or --database from
# RISKGATE_ST_DATABASE) with a throwaway admin token, and is stopped on exit. One worker:
# with two, CPython 3.11's ast.parse (reached through hypothesis) can fail in threads.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
venv=${RISKGATE_ST_VENV:-$target/schemathesis-venv}
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/schemathesis" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis>=4.32,<5"

cargo build --locked --quiet -p risk-adapters --features http,webhooks --bin risk-server

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'schemathesis:%s\n' "$token" > "$work/tokens"
port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
grpc_port=$(port)
http_port=$(port)
"$target/debug/risk-server" --config "$here/examples/config/demo.toml" \
  --listen "127.0.0.1:$grpc_port" --http-listen "127.0.0.1:$http_port" \
  --database "${RISKGATE_ST_DATABASE:-sqlite://$work/st.db}" \
  --admin-token-file "$work/tokens" --log warn &
server_pid=$!

base="http://127.0.0.1:$http_port"
for _ in $(seq 1 100); do
  if curl -fsS "$base/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null

# Run from the scratch directory: schemathesis keeps its example database there.
cd "$work"
"$venv/bin/schemathesis" run "$base/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance \
  --max-examples "${RISKGATE_ST_EXAMPLES:-50}" \
  --seed 1 \
  --workers 1 \
  "$@"
