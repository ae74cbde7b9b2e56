#!/usr/bin/env python3
"""The risk-signal service end to end, as issue 14's "done when" states it.

    python3 scripts/signal_e2e.py --server target/debug/risk-server --risk target/debug/risk \
        --receiver examples/webhook_receiver.py --trades examples/data/trades.csv \
        --accounts examples/data/accounts.csv

Against a real `risk-server` (fresh SQLite store, demo config, admin token file,
`--allow-private-webhooks` for the loopback receiver):

1. a webhook subscription with `min_level` HIGH for `account.risk_level_raised`, received by
   `examples/webhook_receiver.py`, which verifies every signature with the secret;
2. `POST /v1/accounts` and `POST /v1/trades` of the export (CSV bodies);
3. `GET /risk-report/{login}` of every account carries every field of that account's object
   in `risk report --format json` of the same files, with the same value;
4. `kill -9` of the server, a restart on the same store, and step 3 again;
5. the receiver has verified exactly one `account.risk_level_raised` event (one distinct
   `webhook-id`) for each account that ends HIGH or CRITICAL, and none for any other.

Exits non-zero, naming what differs, on any failure. Uses only the standard library;
the receiver runs under the interpreter given by --receiver-python (with the
`standardwebhooks` package when installed there).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HIGH_LEVELS = {"HIGH", "CRITICAL"}
VERIFIED = re.compile(r"^verified (msg_\S+) (\S+) at .*: account (\S+) ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method: str, url: str, token: str | None = None, body: bytes | None = None,
            content_type: str = "application/json") -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("content-type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ready(base: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"risk-server exited with {proc.returncode} before it was ready")
        try:
            if request("GET", f"{base}/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("risk-server was not ready within 60 s")


def received(log: Path) -> dict[str, list[str]]:
    """The receiver's verified `account.risk_level_raised` events: login -> webhook-ids."""
    events: dict[str, list[str]] = {}
    for line in log.read_text().splitlines():
        m = VERIFIED.match(line)
        if m and m.group(2) == "account.risk_level_raised":
            events.setdefault(m.group(3), []).append(m.group(1))
    return events


def parity(base: str, report: dict, when: str) -> None:
    """Every account object of the CLI report is contained, value for value, in the service's."""
    for expected in report["accounts"]:
        login = expected["account_login"]
        status, body = request("GET", f"{base}/risk-report/{login}")
        if status != 200:
            sys.exit(f"{when}: GET /risk-report/{login} answered {status}: {body[:300]!r}")
        served = json.loads(body)
        differing = {k: (v, served.get(k, "<absent>")) for k, v in expected.items()
                     if served.get(k, "<absent>") != v}
        if differing:
            sys.exit(f"{when}: account {login} differs from risk report (cli, service): {differing}")
    print(f"{when}: GET /risk-report/{{login}} agrees with risk report --format json "
          f"for all {len(report['accounts'])} accounts", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", required=True, help="the risk-server binary (features webhooks)")
    p.add_argument("--risk", required=True, help="the risk binary")
    p.add_argument("--receiver", required=True, help="examples/webhook_receiver.py")
    p.add_argument("--receiver-python", default=sys.executable)
    p.add_argument("--config", default="examples/config/demo.toml")
    p.add_argument("--trades", required=True)
    p.add_argument("--accounts")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="signal-e2e-"))
    token = os.urandom(24).hex()
    (work / "tokens").write_text(f"ops:{token}\n")
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    grpc, http, rx = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{http}"
    server_cmd = [args.server, "--config", args.config, "--listen", f"127.0.0.1:{grpc}",
                  "--http-listen", f"127.0.0.1:{http}", "--database",
                  f"sqlite://{work / 'service.db'}", "--admin-token-file", str(work / "tokens"),
                  "--allow-private-webhooks", "--log", "warn"]
    rx_log = open(work / "receiver.log", "w")
    receiver = subprocess.Popen([args.receiver_python, args.receiver, "--port", str(rx),
                                 "--secret", secret], stdout=rx_log, stderr=subprocess.STDOUT)
    server = subprocess.Popen(server_cmd)
    try:
        wait_ready(base, server)
        sub = {"url": f"http://127.0.0.1:{rx}/riskgate", "secret": secret, "min_level": "HIGH",
               "event_types": ["account.risk_level_raised"]}
        status, body = request("POST", f"{base}/v1/webhooks", token, json.dumps(sub).encode())
        if status != 201:
            sys.exit(f"POST /v1/webhooks answered {status}: {body!r}")
        subscription = json.loads(body)["id"]
        print(f"subscribed {subscription}: min_level HIGH, account.risk_level_raised", flush=True)

        if args.accounts:
            status, body = request("POST", f"{base}/v1/accounts", token,
                                   Path(args.accounts).read_bytes(), "text/csv")
            print(f"POST /v1/accounts: {status} {body.decode()}", flush=True)
            if status != 200:
                return 1
        status, body = request("POST", f"{base}/v1/trades", token,
                               Path(args.trades).read_bytes(), "text/csv")
        print(f"POST /v1/trades: {status} {body.decode()[:400]}", flush=True)
        if status != 200:
            return 1

        cli = [args.risk, "report", "--format", "json", "--config", args.config,
               "--trades", args.trades]
        if args.accounts:
            cli += ["--accounts", args.accounts]
        report = json.loads(subprocess.run(cli, check=True, capture_output=True).stdout)
        parity(base, report, "before kill -9")

        server.send_signal(signal.SIGKILL)
        server.wait()
        print("risk-server killed with SIGKILL; restarting on the same store", flush=True)
        server = subprocess.Popen(server_cmd)
        wait_ready(base, server)
        parity(base, report, "after restart")

        expected = {a["account_login"] for a in report["accounts"]
                    if a["risk_level"] in HIGH_LEVELS}
        log = work / "receiver.log"
        deadline = time.monotonic() + 90
        while set(received(log)) < expected and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(1.0)  # let anything extra that is still in flight arrive
        events = received(log)
        if set(events) != expected:
            sys.exit(f"events for {sorted(events)}, expected {sorted(expected)}; "
                     f"receiver log:\n{log.read_text()[-2000:]}")
        twice = {login: ids for login, ids in events.items() if len(ids) != 1}
        if twice:
            sys.exit(f"more than one event for an account: {twice}")
        refused = [line for line in log.read_text().splitlines()
                   if line.startswith("REFUSED")]
        if refused:
            sys.exit(f"the receiver refused requests: {refused}")
        print(f"the receiver verified one signed account.risk_level_raised event for each of the "
              f"{len(expected)} accounts that end HIGH or CRITICAL "
              f"(of {len(report['accounts'])}), and none for any other", flush=True)
        return 0
    finally:
        for proc in (server, receiver):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        rx_log.close()


if __name__ == "__main__":
    sys.exit(main())
