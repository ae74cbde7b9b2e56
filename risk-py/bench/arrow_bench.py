"""Times riskgate.trade_metrics over N trades given as a polars DataFrame (Arrow input).

Usage: risk-py/.venv/bin/python risk-py/bench/arrow_bench.py [N] [--one-thread] [--csv=FILE]
(default 1,000,000; --one-thread times only the polars call on one thread, as
bench/vs_rust.sh sets it beside the Rust batch; --csv=FILE reads the trades from an export,
`pl.read_csv(FILE, try_parse_dates=True)`, instead of generating N of them here, so that
the Rust batch's own trades, `risk generate-sample --seed 7 --no-defects`, can be given)

The trades are metrics_bench.py's (about 13,000 accounts of about 77 trades each, money
with two decimals, int64 logins), as a polars DataFrame with microsecond timestamps (what
``pl.read_csv(..., try_parse_dates=True)`` gives). Compare the one-thread figure with the
Rust batch, `cargo bench -p riskgate-benches --bench metrics -- batch_all_accounts/1000000`,
and with the NumPy path (the same columns as NumPy arrays, timed here too). The time is the
whole call: exporting the Arrow stream, converting, grouping, computing and building the
result list. ``to_arrow()`` of the result is timed separately.
"""

import sys
import time

import numpy as np
import polars as pl

import riskgate

args = [a for a in sys.argv[1:] if not a.startswith("--")]
one_thread = "--one-thread" in sys.argv[1:]
n = int(args[0]) if args else 1_000_000
rng = np.random.default_rng(7)
logins = rng.integers(10_400_000, 10_413_000, n)
opened = np.datetime64("2025-05-05T00:00:00", "ns") + rng.integers(0, 30 * 86_400, n).astype("timedelta64[s]")
closed = opened + rng.choice([5, 30, 90, 600, 3_600], n).astype("timedelta64[s]")
profit = np.round(rng.normal(0, 40, n), 2)
commission = -np.round(rng.uniform(0, 3, n), 2)
swap = np.zeros(n)
sl = np.where(rng.random(n) < 0.4, 1.2345, np.nan)
tp = np.where(rng.random(n) < 0.3, 2.5, np.nan)

csv = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--csv=")), None)

frame = pl.read_csv(csv, try_parse_dates=True) if csv else pl.DataFrame(
    {
        "trading_account_login": logins,
        "opened_at": opened.astype("datetime64[us]"),
        "closed_at": closed.astype("datetime64[us]"),
        "profit": profit,
        "commission": commission,
        "swap": swap,
        # Missing prices as nulls, as a CSV read gives them.
        "price_sl": pl.Series(sl).fill_nan(None),
        "price_tp": pl.Series(tp).fill_nan(None),
    }
)


def best_of(runs, call):
    """The best wall time and the best process CPU time of `runs` calls, and a result."""
    best = cpu = float("inf")
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        result = call()
        best = min(best, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return (best, cpu), result


def ms(times):
    wall, cpu = times
    return f"best of 5 {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU"


if one_thread:
    seconds, result = best_of(5, lambda: riskgate.trade_metrics(frame, threads=1))
    source = f"read from {csv}" if csv else "generated here"
    print(f"trade_metrics(polars DataFrame), threads=1: {frame.height:,} trades ({source}), {len(result):,} accounts: {ms(seconds)}")
    sys.exit(0)

for threads in (1, None):
    seconds, result = best_of(5, lambda: riskgate.trade_metrics(frame, threads=threads))
    print(f"trade_metrics(polars DataFrame), threads={threads}: {n:,} trades, {len(result):,} accounts: {ms(seconds)}")
    seconds, numpy_result = best_of(
        5,
        lambda: riskgate.trade_metrics(
            accounts=logins, opened_at=opened, closed_at=closed, profit=profit,
            commission=commission, swap=swap, stop_loss=sl, take_profit=tp, threads=threads,
        ),
    )
    assert numpy_result == result
    print(f"trade_metrics(NumPy arrays), threads={threads}: {ms(seconds)}")

seconds, table = best_of(5, result.to_arrow)
print(f"to_arrow() of {len(result):,} accounts: {ms(seconds)}")
seconds, polars_frame = best_of(5, result.to_polars)
print(f"to_polars() of {len(result):,} accounts: {ms(seconds)}")
