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


def columns_of(rows):
    return dict(
        opened_at=[r["opened_at"] for r in rows],
        closed_at=[r["closed_at"] for r in rows],
        profit=[float(r["profit"]) for r in rows],
        commission=[float(r["commission"]) for r in rows],
        swap=[float(r["swap"]) for r in rows],
        stop_loss=[r["stop_loss"] for r in rows],
        take_profit=[r["take_profit"] for r in rows],
    )


def test_batch_from_sequences_matches_the_reference():
    rows = generated(2_000)
    result = riskgate.trade_metrics(accounts=[r["account"] for r in rows], **columns_of(rows))
    assert [m.account for m in result] == ["A0", "A1", "A2", "A3"]
    for m in result:
        expected = reference([r for r in rows if r["account"] == m.account])
        for key, value in expected.items():
            assert close(getattr(m, key), value), (m.account, key, getattr(m, key), value)
    assert isinstance(result[0].net_profit, Decimal)


def test_the_accumulator_equals_the_batch_in_any_order():
    rows = [r for r in generated(500) if r["account"] == "A1"]
    batch = riskgate.trade_metrics(accounts=["A1"] * len(rows), **columns_of(rows))[0]
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
    by_rows = pd.DataFrame([m.to_dict() for m in result], columns=list(riskgate.AccountMetrics.FIELDS))
    assert frame.equals(by_rows)
    columns = riskgate.AccountMetrics.columns(result[:3])
    assert list(columns) == list(riskgate.AccountMetrics.FIELDS)
    assert columns["net_profit"] == [m.net_profit for m in result[:3]]
    assert riskgate.AccountMetrics.columns([]) == {f: [] for f in riskgate.AccountMetrics.FIELDS}
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
    with pytest.raises(riskgate.InvalidInput, match=r"row 0: net P&L .* has no exact decimal"):
        # 1e10 - 1e-22 needs 33 significant digits: refused rather than rounded.
        riskgate.trade_metrics(accounts=["A"], opened_at=[t], closed_at=[t], profit=[1e10], commission=[-1e-22])
    with pytest.raises(riskgate.InvalidInput, match=r"net P&L .* has no exact decimal"):
        riskgate.MetricsAccumulator().push(t, t, 1e10, commission=-1e-22)
    with pytest.raises(riskgate.InvalidInput, match="initial_balance"):
        riskgate.trade_metrics(accounts=["A"], opened_at=[t], closed_at=[t], profit=[1.0], initial_balance=0)
    acc = riskgate.MetricsAccumulator()
    with pytest.raises(riskgate.InvalidInput):
        acc.push(t, t, "abc")
    with pytest.raises(riskgate.InvalidInput):
        acc.push(dt.datetime(2025, 1, 1), dt.datetime(2025, 1, 1), 1)
    late = dt.datetime(2300, 1, 1, tzinfo=UTC)
    with pytest.raises(riskgate.InvalidInput, match=r"closed_at: time 2300-01-01 .* outside .* 2262-04-11"):
        acc.push(t, late, 1)
    assert len(acc) == 0


def test_times_beyond_epoch_nanoseconds_are_refused_not_wrapped():
    np = pytest.importorskip("numpy")
    t = T0
    late = dt.datetime(2300, 1, 1, tzinfo=UTC)
    with pytest.raises(riskgate.InvalidInput, match=r"closed_at\[1\]: 2300-01-01 .* out of range .*2262-04-11"):
        riskgate.trade_metrics(accounts=["A", "A"], opened_at=[t, t], closed_at=[t, late], profit=[1.0, 1.0])
    seconds = np.array(["2025-05-05", "3000-01-01"], dtype="datetime64[s]")
    with pytest.raises(riskgate.InvalidInput, match=r"opened_at\[1\]: 3000-01-01T00:00:00 is out of range"):
        riskgate.trade_metrics(accounts=["A", "A"], opened_at=seconds, closed_at=seconds, profit=[1.0, 1.0])
    in_range = np.array(["2025-05-05", "NaT"], dtype="datetime64[s]")
    with pytest.raises(riskgate.InvalidInput, match=r"opened_at\[1\]: missing time \(NaT\)"):
        riskgate.trade_metrics(accounts=["A", "A"], opened_at=in_range, closed_at=in_range, profit=[1.0, 1.0])
    huge = np.array([0, 2**64 - 1], dtype=np.uint64)
    with pytest.raises(riskgate.InvalidInput, match=r"closed_at\[1\]: 18446744073709551615 ns is out of range"):
        riskgate.trade_metrics(accounts=["A", "A"], opened_at=[0, 0], closed_at=huge, profit=[1.0, 1.0])
    with pytest.raises(riskgate.InvalidInput, match=r"opened_at\[0\]: .* naive"):
        riskgate.trade_metrics(accounts=["A"], opened_at=[dt.datetime(2025, 1, 1)], closed_at=[t], profit=[1.0])


def test_every_kind_of_account_column_groups_alike():
    np = pytest.importorskip("numpy")
    rows = generated(600, seed=5)
    logins = [10_400_000 + int(r["account"][1:]) for r in rows]
    cols = columns_of(rows)
    expected = riskgate.trade_metrics(accounts=[str(x) for x in logins], **cols)
    assert [m.account for m in expected] == ["10400000", "10400001", "10400002", "10400003"]
    for accounts in (
        np.array(logins, dtype=np.int64),
        np.array(logins, dtype=np.uint32),
        np.array(logins).astype(str),  # '<U8'
        np.array(logins).astype("U21"),  # padded wider than the values
        np.array(logins).astype(">U8"),  # big-endian code units
        np.array(logins).astype("S"),
        np.array(logins, dtype=object),
        logins,
    ):
        assert riskgate.trade_metrics(accounts=accounts, **cols) == expected, type(accounts)


def test_unsigned_accounts_beyond_int64_are_compared_as_text():
    np = pytest.importorskip("numpy")
    t = T0
    logins = np.array([2**64 - 1, 7, 2**64 - 1], dtype=np.uint64)
    result = riskgate.trade_metrics(accounts=logins, opened_at=[t] * 3, closed_at=[t] * 3, profit=[1.0, 2.0, 3.0])
    assert [(m.account, m.trades) for m in result] == [("18446744073709551615", 2), ("7", 1)]


def test_unicode_account_names_survive_the_packed_column():
    np = pytest.importorskip("numpy")
    t = T0
    names = np.array(["Zürich-7", "東京", "Zürich-7", ""])
    result = riskgate.trade_metrics(
        accounts=names, opened_at=[t] * 4, closed_at=[t] * 4, profit=[1.0, 2.0, 3.0, 4.0]
    )
    assert [(m.account, m.trades, m.net_profit) for m in result] == [
        ("", 1, Decimal("4")),
        ("Zürich-7", 2, Decimal("4")),
        ("東京", 1, Decimal("2")),
    ]


def test_narrowed_unicode_columns_keep_every_character():
    np = pytest.importorskip("numpy")
    t = T0
    # ASCII (one byte a character), Latin-1 (four), wider than Latin-1, and values that
    # differ only in a character past the shorter ones' end.
    for names in (["ab", "abc", "ab", "b"], ["Zürich", "Zug", "Zürich", "Zü"], ["€1", "€", "€1", "1"]):
        column = np.array(names, dtype="U12")
        result = riskgate.trade_metrics(
            accounts=column, opened_at=[t] * 4, closed_at=[t] * 4, profit=[1.0, 2.0, 3.0, 4.0]
        )
        expected = riskgate.trade_metrics(
            accounts=list(names), opened_at=[t] * 4, closed_at=[t] * 4, profit=[1.0, 2.0, 3.0, 4.0]
        )
        assert result == expected
        assert [(m.account, m.trades) for m in result] == sorted(
            (n, names.count(n)) for n in set(names)
        )


def test_money_floats_keep_their_shortest_text_exactly():
    t = T0
    result = riskgate.trade_metrics(
        accounts=["A"] * 3,
        opened_at=[t] * 3,
        closed_at=[t] * 3,
        profit=[0.1, 0.2, 0.1 + 0.2],
        commission=[-0.25, 0.0, float("nan")],
    )
    (m,) = result
    # 0.1 + 0.2 - 0.25 + 0.30000000000000004: each float exactly as its repr names it.
    assert m.net_profit == Decimal("0.35000000000000004")
    assert str(m.net_profit) == "0.35000000000000004"


def test_missing_values_are_named_or_defaulted_as_documented():
    np = pytest.importorskip("numpy")
    t = np.datetime64("2025-05-05T00:00:00", "ns")
    base = dict(accounts=["A", "A"], opened_at=np.array([t, t]), closed_at=np.array([t, t]))
    with pytest.raises(riskgate.InvalidInput, match=r"profit\[1\]: missing \(NaN\)"):
        riskgate.trade_metrics(**base, profit=[1.0, float("nan")])
    with pytest.raises(riskgate.InvalidInput, match=r"profit\[0\]: missing"):
        riskgate.trade_metrics(**base, profit=[None, 1.0])
    with pytest.raises(riskgate.InvalidInput, match=r"closed_at\[1\]: missing time \(NaT\)"):
        riskgate.trade_metrics(
            accounts=["A", "A"], opened_at=np.array([t, t]), closed_at=np.array([t, "NaT"], dtype="datetime64[ns]"),
            profit=[1.0, 1.0],
        )
    (m,) = riskgate.trade_metrics(
        **base, profit=[1.0, 2.0], commission=[float("nan"), -0.5], swap=[None, None],
        stop_loss=[float("nan"), 0.0], take_profit=[1.5, None],
    )
    assert (m.net_profit, m.stop_loss_trades, m.take_profit_trades) == (Decimal("2.5"), 0, 1)


def test_account_metrics_is_a_read_only_record():
    (m,) = riskgate.trade_metrics(accounts=["A"], opened_at=[T0], closed_at=[T0 + dt.timedelta(hours=1)], profit=[-5.5])
    d = m.to_dict()
    assert tuple(d) == riskgate.AccountMetrics.FIELDS
    assert d["account"] == "A" and d["net_profit"] == Decimal("-5.5") and d["max_daily_loss_day"] == T0.date()
    assert all(getattr(m, f) == d[f] for f in riskgate.AccountMetrics.FIELDS)
    assert repr(m).startswith("AccountMetrics(account='A', trades=1, wins=0, losses=1,")
    assert "net_profit=Decimal('-5.5')" in repr(m)
    assert m == riskgate.trade_metrics(accounts=["A"], opened_at=[T0], closed_at=[T0 + dt.timedelta(hours=1)], profit=[-5.5])[0]
    assert m != object()
    with pytest.raises(AttributeError):
        m.trades = 2  # type: ignore[misc]


def test_any_number_of_threads_gives_the_same_result_and_error():
    np = pytest.importorskip("numpy")
    rows = generated(3_000, seed=9)
    cols = columns_of(rows)
    accounts = np.array([f"{r['account']}-{i % 700}" for i, r in enumerate(rows)])
    one = riskgate.trade_metrics(accounts=accounts, threads=1, **cols)
    assert len(one) > 1_000  # hundreds of buckets to split
    for threads in (2, 3, 8, 64, None):
        assert riskgate.trade_metrics(accounts=accounts, threads=threads, **cols) == one, threads
    # The first bad row is reported whichever thread converts it.
    cols["profit"][2_900] = float("nan")
    cols["profit"][2_950] = float("nan")
    for threads in (1, 2, 5):
        with pytest.raises(riskgate.InvalidInput, match=r"profit\[2900\]"):
            riskgate.trade_metrics(accounts=accounts, threads=threads, **cols)
    with pytest.raises(riskgate.InvalidInput, match="threads"):
        riskgate.trade_metrics(accounts=accounts, threads=0, **cols)


def _fields(m):
    """Every metric (not the account name, which an accumulator leaves empty)."""
    return {f: getattr(m, f) for f in riskgate.AccountMetrics.FIELDS if f != "account"}


def test_gross_basis_and_window_in_batch_and_accumulator():
    rows = [r for r in generated(600, seed=18) if r["account"] == "A2"]
    n = len(rows)
    gross = riskgate.trade_metrics(accounts=["A2"] * n, **columns_of(rows), pnl_basis="gross")[0]
    profit_only = riskgate.trade_metrics(
        accounts=["A2"] * n, **{**columns_of(rows), "commission": None, "swap": None}
    )[0]
    assert _fields(gross) == _fields(profit_only)
    net = riskgate.trade_metrics(accounts=["A2"] * n, **columns_of(rows))[0]
    assert net.net_profit == sum(r["profit"] + r["commission"] + r["swap"] for r in rows)
    assert gross.net_profit == sum(r["profit"] for r in rows)

    # The window: the 25 latest trades in the core's close-time order.
    window = 25
    net_of = {id(r): r["profit"] + r["commission"] + r["swap"] for r in rows}
    latest = sorted(
        rows,
        key=lambda r: (r["closed_at"], net_of[id(r)], r["opened_at"], bool(r["stop_loss"]), bool(r["take_profit"])),
    )[-window:]
    windowed = riskgate.trade_metrics(accounts=["A2"] * n, **columns_of(rows), window_size=window)[0]
    assert windowed.trades == window
    expected = riskgate.trade_metrics(accounts=["A2"] * window, **columns_of(latest))[0]
    assert _fields(windowed) == _fields(expected)

    shuffled = list(rows)
    random.Random(5).shuffle(shuffled)
    acc = riskgate.MetricsAccumulator(window_size=window, pnl_basis="gross")
    for r in shuffled:
        acc.push(r["opened_at"], r["closed_at"], r["profit"], r["commission"], r["swap"], r["stop_loss"], r["take_profit"])
    assert len(acc) == n
    both = riskgate.trade_metrics(accounts=["A2"] * n, **columns_of(rows), window_size=window, pnl_basis="gross")[0]
    assert _fields(acc.metrics()) == _fields(both)


def test_bad_pnl_basis_and_window_size_are_refused():
    rows = generated(10)
    with pytest.raises(riskgate.InvalidInput, match="net or gross"):
        riskgate.trade_metrics(accounts=[r["account"] for r in rows], **columns_of(rows), pnl_basis="profit")
    with pytest.raises(riskgate.InvalidInput, match="window_size"):
        riskgate.trade_metrics(accounts=[r["account"] for r in rows], **columns_of(rows), window_size=0)
    with pytest.raises(riskgate.InvalidInput, match="window_size"):
        riskgate.MetricsAccumulator(window_size=0)
