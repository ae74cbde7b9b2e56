#!/usr/bin/env python3
"""A webhook receiver for riskgate's Standard Webhooks events, verifying every signature.

    pip install standardwebhooks          # optional: without it, the HMAC is checked here
    python3 examples/webhook_receiver.py --port 9000 --secret whsec_...

Subscribe it (the server must allow a loopback target):

    risk-server ... --allow-private-webhooks
    curl -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
      -d '{"url": "http://127.0.0.1:9000/riskgate", "secret": "whsec_...",
           "min_level": "HIGH", "event_types": ["account.risk_level_raised"]}' \\
      http://127.0.0.1:8080/v1/webhooks

Each request is verified with the secret: the `webhook-signature` header must be the
HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, and the timestamp within five
minutes of now. A verified event is printed and answered 204; a repeated `webhook-id`
(the dispatcher delivers at least once) is answered 204 and reported as a duplicate; a
request that does not verify is answered 401 (not retried by riskgate).

With the `standardwebhooks` package (PyPI) installed, it verifies; otherwise the same
check is made here with hmac and hashlib (printed at start).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    VERIFIER = "standardwebhooks (PyPI)"
except ImportError:  # pragma: no cover - exercised only without the package
    Webhook = None
    WebhookVerificationError = ValueError
    VERIFIER = "hmac + hashlib (the standardwebhooks package is not installed)"

TOLERANCE_SECONDS = 5 * 60


def verify_by_hand(secret: str, body: bytes, headers: dict[str, str]) -> dict:
    """The Standard Webhooks check without the package."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and timestamp and signatures):
        raise ValueError("missing webhook-id, webhook-timestamp or webhook-signature")
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        raise ValueError("timestamp outside the tolerance")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return json.loads(body)
    raise ValueError("no matching signature")


class Receiver(BaseHTTPRequestHandler):
    secret: str = ""
    seen: set[str] = set()
    wanted: int = 0
    verified: int = 0

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        msg_id = headers.get("webhook-id", "?")
        try:
            if Webhook is not None:
                event = Webhook(self.secret).verify(body, headers)
            else:
                event = verify_by_hand(self.secret, body, headers)
        except (WebhookVerificationError, ValueError) as e:
            print(f"REFUSED {msg_id}: {e}", flush=True)
            self.send_response(401)
            self.end_headers()
            return
        if msg_id in self.seen:
            print(f"duplicate {msg_id} (already processed)", flush=True)
        else:
            self.seen.add(msg_id)
            data = event.get("data", {})
            print(
                f"verified {msg_id} {event.get('type')} at {event.get('timestamp')}: "
                f"account {data.get('account_login')} "
                f"{data.get('previous_level', '?')} -> {data.get('level')}",
                flush=True,
            )
            print(json.dumps(event, indent=2, sort_keys=True), flush=True)
            Receiver.verified += 1
        self.send_response(204)
        self.end_headers()
        if self.wanted and Receiver.verified >= self.wanted:
            # Answer first, then stop serving.
            self.server.shutdown_requested = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument(
        "--secret",
        default=os.environ.get("RISKGATE_WEBHOOK_SECRET", ""),
        help="the subscription's whsec_ secret (default: $RISKGATE_WEBHOOK_SECRET)",
    )
    parser.add_argument(
        "--count", type=int, default=0, help="exit after this many verified events (0: never)"
    )
    args = parser.parse_args()
    if not args.secret.startswith("whsec_"):
        parser.error("--secret must be the subscription's whsec_ secret")
    Receiver.secret = args.secret
    Receiver.wanted = args.count
    # One request at a time: events are printed in the order they arrive.
    server = HTTPServer((args.host, args.port), Receiver)
    server.shutdown_requested = False
    server.timeout = 0.5
    print(
        f"listening on http://{args.host}:{server.server_address[1]}/ (verifier: {VERIFIER})",
        flush=True,
    )
    while not server.shutdown_requested:
        server.handle_request()
    return 0


if __name__ == "__main__":
    sys.exit(main())
