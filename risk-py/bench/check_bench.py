"""Times one RiskEngine.check call from Python.

    python risk-py/bench/check_bench.py [calls]

Uses the test fixture's engine (risk-py/tests/conftest.py: the BTCUSDT bracket ladder, one
account with 10,000 USDT) and the plain limit order, which is approved, so every phase of
the check runs. Each call gets its own `now`, 2 ms after the previous one (pre-built, as a
backtest's clock would be), so that the duplicate-order control, whose horizon is set to
1 ms here, never rejects the repeated order id; the rate limit is off and the mark may be
an hour old. Reports the best and median of 5 repeats of N calls (default 100,000),
timed with `timeit` (wall clock), the process CPU time per call of the best repeat
(`time.process_time`, which time slices lost to other processes on a shared machine do
not inflate), and the cost of the same loop with an empty call for reference.
"""

import sys
import time
import timeit
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import riskgate  # noqa: E402
from conftest import NOW, config, request  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    cfg = config(limits={"rate_limit": None, "duplicate_horizon_ms": 1, "max_mark_age_ms": 3_600_000})
    req = request()
    clock = [NOW + timedelta(milliseconds=2 * i) for i in range(n)]
    per_call = []
    cpu = []
    for _ in range(5):
        engine = riskgate.RiskEngine(cfg, now=NOW)
        ticks = iter(clock)
        cpu0 = time.process_time()
        t = timeit.timeit(lambda: engine.check(req, now=next(ticks)), number=n)
        cpu.append((time.process_time() - cpu0) / n)
        per_call.append(t / n)
        last = engine.check(req, now=clock[-1] + timedelta(milliseconds=2))
        assert last.decision == "APPROVED", last.message
    per_call.sort()
    cpu.sort()
    ticks = iter(clock)
    base = min(timeit.repeat(lambda: next(ticks) and None, number=n, repeat=1)) / n
    print(f"RiskEngine.check (approved limit order, dict request, aware datetime now): "
          f"best {per_call[0] * 1e6:.2f} us/call, median {per_call[2] * 1e6:.2f} us/call "
          f"over 5 x {n:,} calls; CPU time best {cpu[0] * 1e6:.2f} us/call")
    print(f"reference: the same loop with an empty call: {base * 1e6:.3f} us/call")


if __name__ == "__main__":
    main()
