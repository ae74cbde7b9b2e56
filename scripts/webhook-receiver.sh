#!/usr/bin/env bash
# The webhook receiver example end to end: examples/webhook_receiver.py (verifying with the
# `standardwebhooks` package from PyPI, in target/webhook-venv) receives one signed
# `account.risk_level_raised` event from a real risk-server (--features webhooks, a fresh
# SQLite store, --allow-private-webhooks for the loopback target). The event is written
# into the outbox with Python's sqlite3, as the signal service writes it in the ingest
# transaction. Fails unless the receiver verifies the event and the server records it
# delivered.
#
#   scripts/webhook-receiver.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
venv=${RISKGATE_WEBHOOK_VENV:-$target/webhook-venv}
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "standardwebhooks==1.1.0"

cargo build --locked --quiet -p risk-adapters --features webhooks --bin risk-server

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'ops:%s\n' "$token" > "$work/tokens"
secret="whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
grpc_port=$(port)
http_port=$(port)
rx_port=$(port)

"$venv/bin/python" "$here/examples/webhook_receiver.py" --port "$rx_port" --secret "$secret" --count 1 \
  > "$work/receiver.log" 2>&1 &
rx_pid=$!
pids+=("$rx_pid")
"$target/debug/risk-server" --config "$here/examples/config/demo.toml" \
  --listen "127.0.0.1:$grpc_port" --http-listen "127.0.0.1:$http_port" \
  --database "sqlite://$work/service.db" --admin-token-file "$work/tokens" \
  --allow-private-webhooks --log warn &
pids+=("$!")

base="http://127.0.0.1:$http_port"
for _ in $(seq 1 100); do
  if curl -fsS "$base/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
subscription=$(curl -fsS -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"url\": \"http://127.0.0.1:$rx_port/riskgate\", \"secret\": \"$secret\", \"min_level\": \"HIGH\", \"event_types\": [\"account.risk_level_raised\"]}" \
  "$base/v1/webhooks")
echo "subscribed: $subscription"
id=$("$python" -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$subscription")

"$python" - "$work/service.db" <<'EOF'
import json, sqlite3, sys, uuid
from datetime import datetime, timezone
db = sqlite3.connect(sys.argv[1])
payload = {"account_login": "7001", "user_id": "u-42", "challenge_id": "c-9",
           "level": "HIGH", "previous_level": "MEDIUM", "score": "71.5",
           "signals": ["DRAWDOWN", "LOW_STOP_LOSS_USAGE"]}
with db:
    db.execute(
        "INSERT INTO webhook_outbox (event_id, event_type, account_login, level, payload, created_at)"
        " VALUES (?, 'account.risk_level_raised', '7001', 'HIGH', ?, ?)",
        (f"msg_{uuid.uuid4().hex}", json.dumps(payload), datetime.now(timezone.utc).isoformat()),
    )
EOF

for _ in $(seq 1 300); do
  if ! kill -0 "$rx_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
cat "$work/receiver.log"
grep -q '^verified msg_' "$work/receiver.log"
deliveries=$(curl -fsS -H "Authorization: Bearer $token" "$base/v1/webhooks/$id/deliveries")
echo "deliveries: $deliveries"
grep -q '"status":"delivered"' <<<"$deliveries"
echo "webhook receiver example: the event was verified and recorded delivered"
