"""Times riskgate.trade_metrics over N trades given as NumPy arrays.

Usage: risk-py/.venv/bin/python risk-py/bench/metrics_bench.py [N]   (default 1,000,000)

The trades mirror the Rust batch benchmark's shape (about 13,000 accounts of about 77
trades each, money with two decimals), so compare with
`cargo bench -p riskgate-benches --bench metrics -- batch_all_accounts/1000000`.

Two account columns are timed: int64 logins (the export's `trading_account_login`) and
the same logins as a NumPy string array (`<U21`, what `.astype(str)` gives; the Python
layer narrows it to the 8 ASCII bytes the logins use). The time is the whole call:
packing the columns, converting, grouping, computing and building the result list, once on one thread (`threads=1`, the Rust batch's conditions) and once with
the default (`threads=None`: the available cores, here 2). Reading the results' fields is extra (`to_pandas()` is timed separately).
"""

import sys
import time

import numpy as np

import riskgate

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
rng = np.random.default_rng(7)
logins = rng.integers(10_400_000, 10_413_000, n)
opened = np.datetime64("2025-05-05T00:00:00", "ns") + rng.integers(0, 30 * 86_400, n).astype("timedelta64[s]")
closed = opened + rng.choice([5, 30, 90, 600, 3_600], n).astype("timedelta64[s]")
profit = np.round(rng.normal(0, 40, n), 2)
commission = -np.round(rng.uniform(0, 3, n), 2)
swap = np.zeros(n)
sl = np.where(rng.random(n) < 0.4, 1.2345, np.nan)
tp = np.where(rng.random(n) < 0.3, 2.5, np.nan)


def best_of(runs, call):
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - t0)
    return best, result


for label, accounts in (("int64 accounts", logins), ("str accounts (<U21)", logins.astype(str))):
    for threads in (1, None):
        seconds, result = best_of(
            5,
            lambda: riskgate.trade_metrics(
                accounts=accounts, opened_at=opened, closed_at=closed, profit=profit,
                commission=commission, swap=swap, stop_loss=sl, take_profit=tp, threads=threads,
            ),
        )
        print(
            f"trade_metrics, {label}, threads={threads}: {n:,} trades, {len(result):,} accounts: "
            f"best of 5 {seconds * 1000:.0f} ms"
        )

seconds, frame = best_of(3, result.to_pandas)
print(f"to_pandas() of {len(frame):,} accounts x {len(frame.columns)} fields: best of 3 {seconds * 1000:.0f} ms")
