"""Trade metrics from Python, against a plain-Python reference on generated trades."""

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import pytest

import riskgate

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 5, 5, tzinfo=UTC)
SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "prop_trades_sample.csv"


def generated(n, seed=11):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        opened = T0 + dt.timedelta(seconds=rng.randrange(0, 5 * 86_400))
        closed = opened + dt.timedelta(seconds=rng.choice([5, 30, 59, 60, 61, 600, 7_200]))
        rows.append(
            {
                "account": f"A{rng.randrange(4)}",
                "opened_at": opened,
                "closed_at": closed,
                "profit": Decimal(rng.randrange(-50_000, 50_000)) / 100,
                "commission": Decimal(-rng.randrange(0, 300)) / 100,
                "swap": Decimal(rng.choice([0, 0, -12, 7])) / 100,
                "stop_loss": rng.choice([None, 0, 1.2345]),
                "take_profit": rng.choice([None, 2.5]),
            }
        )
    return rows


def reference(rows, initial=Decimal(100_000)):
    """The design notes' definitions, written plainly."""
    net = [r["profit"] + r["commission"] + r["swap"] for r in rows]
    wins = [x for x in net if x > 0]
    losses = [x for x in net if x < 0]
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["closed_at"], net[i], rows[i]["opened_at"]))
    balance = peak = initial
    drawdown = Decimal(0)
    for i in order:
        balance += net[i]
        peak = max(peak, balance)
        drawdown = max(drawdown, (peak - balance) / peak)
    events = sorted([(r["closed_at"], 0) for r in rows] + [(r["opened_at"], 1) for r in rows])
    live = most = 0
    for _, kind in events:
        live += 1 if kind else -1
        most = max(most, live)
    return {
        "trades": len(rows),
        "wins": len(wins),
        "losses": len(losses),
        "win_ratio": Decimal(len(wins)) / len(rows),
        "profit_factor": (sum(wins) / -sum(losses)) if losses else None,
        "net_profit": sum(net),
        "max_relative_drawdown": min(drawdown, Decimal(1)),
        "hft_trades": sum((r["closed_at"] - r["opened_at"]).total_seconds() < 60 for r in rows),
        "stop_loss_ratio": Decimal(sum(bool(r["stop_loss"]) for r in rows)) / len(rows),
        "take_profit_ratio": Decimal(sum(bool(r["take_profit"]) for r in rows)) / len(rows),
        "max_concurrent_trades": most,
    }


def close(a, b):
    if a is None or b is None:
        return a is b
    return abs(Decimal(a) - Decimal(b)) <= Decimal("1e-20")


def test_batch_from_sequences_matches_the_reference():
    rows = generated(2_000)
    result = riskgate.trade_metrics(
        accounts=[r["account"] for r in rows],
        opened_at=[r["opened_at"] for r in rows],
        closed_at=[r["closed_at"] for r in rows],
        profit=[float(r["profit"]) for r in rows],
        commission=[float(r["commission"]) for r in rows],
        swap=[float(r["swap"]) for r in rows],
        stop_loss=[r["stop_loss"] for r in rows],
        take_profit=[r["take_profit"] for r in rows],
    )
    assert [m.account for m in result] == ["A0", "A1", "A2", "A3"]
    for m in result:
        expected = reference([r for r in rows if r["account"] == m.account])
        for key, value in expected.items():
            assert close(getattr(m, key), value), (m.account, key, getattr(m, key), value)
    assert isinstance(result[0].net_profit, Decimal)


def test_the_accumulator_equals_the_batch_in_any_order():
    rows = [r for r in generated(500) if r["account"] == "A1"]
    batch = riskgate.trade_metrics(
        accounts=["A1"] * len(rows),
        opened_at=[r["opened_at"] for r in rows],
        closed_at=[r["closed_at"] for r in rows],
        profit=[float(r["profit"]) for r in rows],
        commission=[float(r["commission"]) for r in rows],
        swap=[float(r["swap"]) for r in rows],
        stop_loss=[r["stop_loss"] for r in rows],
        take_profit=[r["take_profit"] for r in rows],
    )[0]
    shuffled = list(rows)
    random.Random(3).shuffle(shuffled)
    acc = riskgate.MetricsAccumulator()
    for r in shuffled:
        acc.push(r["opened_at"], r["closed_at"], r["profit"], r["commission"], r["swap"], r["stop_loss"], r["take_profit"])
    assert len(acc) == len(rows)
    streamed = acc.metrics()
    assert streamed.account == ""
    for f in ("trades", "win_ratio", "net_profit", "max_relative_drawdown", "max_concurrent_trades", "profit_factor"):
        assert getattr(streamed, f) == getattr(batch, f), f


def test_numpy_arrays_and_the_real_export_through_pandas():
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    if not SAMPLE.is_file():
        pytest.skip(f"{SAMPLE} not present")
    df = pd.read_csv(SAMPLE, dtype={"identifier": str})
    result = riskgate.trade_metrics(df)
    assert len(result) == 1_064
    assert sum(m.trades for m in result) == 1_084
    frame = result.to_pandas()
    assert list(frame["account"])[:1] == [result[0].account]
    # The same columns as NumPy arrays give the same answer.
    again = riskgate.trade_metrics(
        accounts=df["trading_account_login"].to_numpy(),
        opened_at=pd.to_datetime(df["opened_at"]).to_numpy(),
        closed_at=pd.to_datetime(df["closed_at"]).to_numpy(),
        profit=df["profit"].to_numpy(dtype=np.float64),
        commission=df["commission"].to_numpy(),
        swap=df["swap"].to_numpy(),
        stop_loss=df["price_sl"].to_numpy(),
        take_profit=df["price_tp"].to_numpy(),
    )
    assert again == result


def test_bad_input_raises_invalid_input():
    t = T0
    with pytest.raises(riskgate.InvalidInput, match="closed before"):
        riskgate.trade_metrics(accounts=["A"], opened_at=[t], closed_at=[t - dt.timedelta(1)], profit=[1.0])
    with pytest.raises(riskgate.InvalidInput, match="finite"):
        riskgate.trade_metrics(accounts=["A"], opened_at=[t], closed_at=[t], profit=[float("inf")])
    with pytest.raises(riskgate.InvalidInput, match="has 2 values"):
        riskgate.trade_metrics(accounts=["A"], opened_at=[t, t], closed_at=[t], profit=[1.0])
    with pytest.raises(riskgate.InvalidInput, match="initial_balance"):
        riskgate.trade_metrics(accounts=["A"], opened_at=[t], closed_at=[t], profit=[1.0], initial_balance=0)
    acc = riskgate.MetricsAccumulator()
    with pytest.raises(riskgate.InvalidInput):
        acc.push(t, t, "abc")
    with pytest.raises(riskgate.InvalidInput):
        acc.push(dt.datetime(2025, 1, 1), dt.datetime(2025, 1, 1), 1)
