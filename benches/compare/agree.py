"""Checks that the peers' metrics agree with riskgate's, account by account.

Usage: python agree.py RISK_REPORT.json PEER_NAME=PEER_METRICS.json ...
`RISK_REPORT.json` is `risk report --format json`; each peer file maps a login to the
metrics `pandas_metrics.py --out` / `polars_metrics.py --out` write. riskgate's figures are
exact decimals shown as f64, the peers' are f64 sums: values agree when they differ by at
most 1e-9 relative (1e-9 absolute near zero). Prints one line per peer; exits 1 on any
disagreement, listing the first few.
"""
import json
import math
import sys

FIELDS = [
    "trades", "win_ratio", "profit_factor", "max_relative_drawdown", "stop_loss_ratio",
    "take_profit_ratio", "hft_trades", "max_concurrent_trades", "net_profit", "max_daily_loss",
]


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(b, float) and math.isnan(b):
        return False
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))


def main() -> None:
    with open(sys.argv[1]) as f:
        report = json.load(f)
    ours = {a["account_login"]: a for a in report["accounts"] if a["trades"] > 0}
    failed = False
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        with open(path) as f:
            theirs = json.load(f)
        bad = []
        if set(theirs) != set(ours):
            bad.append(f"accounts differ: {len(set(theirs) ^ set(ours))} logins in one only")
        for login in sorted(set(theirs) & set(ours)):
            for field in FIELDS:
                if not close(ours[login][field], theirs[login].get(field)):
                    bad.append(f"{login} {field}: riskgate {ours[login][field]} {name} {theirs[login].get(field)}")
        checked = len(set(theirs) & set(ours))
        if bad:
            failed = True
            print(f"{name}: {len(bad)} disagreements over {checked} accounts, e.g.: " + "; ".join(bad[:5]))
        else:
            print(f"{name}: agrees with riskgate on {checked} accounts x {len(FIELDS)} metrics")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
