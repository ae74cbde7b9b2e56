"""Times riskgate.trade_metrics over N trades given as NumPy arrays.

Usage: risk-py/.venv/bin/python risk-py/bench/metrics_bench.py [N]   (default 1,000,000)
Compare with the Rust batch calculator: `cargo bench -p riskgate-benches --bench metrics`.
"""
import sys
import time

import numpy as np

import riskgate

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
rng = np.random.default_rng(7)
accounts = rng.integers(10_400_000, 10_413_000, n).astype(str)
opened = np.datetime64("2025-05-05T00:00:00", "ns") + rng.integers(0, 30 * 86_400, n).astype("timedelta64[s]")
closed = opened + rng.choice([5, 30, 90, 600, 3_600], n).astype("timedelta64[s]")
profit = np.round(rng.normal(0, 40, n), 2)
commission = -np.round(rng.uniform(0, 3, n), 2)
swap = np.zeros(n)
sl = np.where(rng.random(n) < 0.4, 1.2345, np.nan)
tp = np.where(rng.random(n) < 0.3, 2.5, np.nan)

best = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    result = riskgate.trade_metrics(
        accounts=accounts, opened_at=opened, closed_at=closed, profit=profit,
        commission=commission, swap=swap, stop_loss=sl, take_profit=tp,
    )
    best = min(best, time.perf_counter() - t0)
print(f"trade_metrics: {n:,} trades from NumPy arrays, {len(result):,} accounts: best of 3 {best * 1000:.0f} ms")
