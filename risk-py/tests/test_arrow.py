"""Arrow in and out: every kind of table gives the pandas path's results, exactly."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

import riskgate

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")

SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "prop_trades_sample.csv"
USED = ["trading_account_login", "opened_at", "closed_at", "profit", "commission", "swap", "price_sl", "price_tp"]


def need_sample():
    if not SAMPLE.is_file():
        pytest.skip(f"{SAMPLE} not present")


@pytest.fixture(scope="module")
def by_pandas():
    """The sample through the NumPy-backed pandas path: the reference."""
    need_sample()
    result = riskgate.trade_metrics(pd.read_csv(SAMPLE))
    assert len(result) == 1_064
    return result


def small():
    """A few trades with nulls where the rules allow them, as a pyarrow table."""
    t0 = dt.datetime(2025, 5, 5, 9, 0, tzinfo=dt.timezone.utc)
    opened = [t0 + dt.timedelta(minutes=m) for m in (0, 5, 50, 60, 61)]
    closed = [o + dt.timedelta(seconds=s) for o, s in zip(opened, (30, 3_600, 90, 7_200, 5))]
    return pa.table(
        {
            "trading_account_login": ["b", "a", "b", "a", "a"],
            "opened_at": pa.array(opened, pa.timestamp("us", tz="UTC")),
            "closed_at": pa.array(closed, pa.timestamp("us", tz="UTC")),
            "profit": [10.1, -3.3, 0.2, 7.0, -0.05],
            "commission": [None, -0.1, -0.1, None, 0.0],
            "swap": [0.0, None, 0.01, 0.0, 0.0],
            "price_sl": [None, 1.5, 0.0, 2.0, None],
            "price_tp": [3.0, None, None, 0.0, 4.0],
        }
    )


def as_pandas_numpy(table):
    """The same trades as a NumPy-backed pandas frame (None -> NaN)."""
    return table.to_pandas()


def test_the_issue_line_polars_read_csv_gives_the_pandas_results(by_pandas):
    result = riskgate.trade_metrics(pl.read_csv(SAMPLE, try_parse_dates=True))
    assert len(result) == 1_064
    assert result == by_pandas


def test_polars_without_parsed_dates_parses_the_text(by_pandas):
    assert riskgate.trade_metrics(pl.read_csv(SAMPLE)) == by_pandas


def test_every_input_kind_gives_the_pandas_results(by_pandas):
    frame = pl.read_csv(SAMPLE, try_parse_dates=True)
    table = frame.to_arrow()
    kinds = {
        "pyarrow Table": table,
        "pyarrow Table, many chunks": pa.Table.from_batches(table.to_batches(max_chunksize=100)),
        "RecordBatchReader": pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=333)),
        "RecordBatch": table.combine_chunks().to_batches()[0],
        "pandas, Arrow dtypes": pd.read_csv(SAMPLE, dtype_backend="pyarrow", engine="pyarrow"),
        "pandas, NumPy dtypes": pd.read_csv(SAMPLE),
        "polars, one chunk": frame.rechunk(),
    }
    for name, data in kinds.items():
        assert riskgate.trade_metrics(data) == by_pandas, name


def test_a_duckdb_relation_gives_the_pandas_results(by_pandas):
    duckdb = pytest.importorskip("duckdb")
    relation = duckdb.sql(f"select * from read_csv_auto('{SAMPLE}')")
    assert riskgate.trade_metrics(relation) == by_pandas


def test_account_encodings_group_alike():
    table = small()
    base = riskgate.trade_metrics(table)
    assert [m.account for m in base] == ["a", "b"]
    logins = table.column("trading_account_login")
    for typ in (pa.large_string(), pa.string_view()):
        assert riskgate.trade_metrics(table.set_column(0, "trading_account_login", logins.cast(typ))) == base
    encoded = table.set_column(0, "trading_account_login", logins.dictionary_encode())
    assert riskgate.trade_metrics(encoded) == base
    # Per-chunk dictionaries that differ.
    chunks = pa.Table.from_batches(encoded.to_batches(max_chunksize=2))
    assert riskgate.trade_metrics(chunks) == base
    ints = table.set_column(0, "trading_account_login", pa.array([2, 1, 2, 1, 1], pa.uint16()))
    assert [m.account for m in riskgate.trade_metrics(ints)] == ["1", "2"]


def test_nulls_follow_the_nan_rules_of_the_numpy_path():
    table = small()
    assert riskgate.trade_metrics(table) == riskgate.trade_metrics(as_pandas_numpy(table))


def test_time_units_and_zones_normalize_to_utc():
    table = small()
    base = riskgate.trade_metrics(table)
    for unit in ("s", "ms", "us", "ns"):
        for tz in (None, "UTC", "America/New_York", "+05:30"):
            t = table
            for name in ("opened_at", "closed_at"):
                column = t.column(name).cast(pa.timestamp(unit, tz=tz))
                t = t.set_column(t.schema.get_field_index(name), name, column)
            assert riskgate.trade_metrics(t) == base, (unit, tz)


def test_decimal128_money_is_exact():
    table = small()
    money = {
        "profit": ["10.1", "-3.3", "0.2", "7.0", "-0.05"],
        "commission": [None, "-0.1", "-0.1", None, "0"],
        "swap": ["0", None, "0.01", "0", "0"],
    }
    exact = table
    for name, values in money.items():
        column = pa.array([None if v is None else Decimal(v) for v in values], pa.decimal128(20, 4))
        exact = exact.set_column(exact.schema.get_field_index(name), name, column)
    assert riskgate.trade_metrics(exact) == riskgate.trade_metrics(table)
    # A decimal that float64 cannot hold stays exact.
    fine = exact.set_column(
        exact.schema.get_field_index("profit"),
        "profit",
        pa.array([Decimal("0.1000000000000000000000000001")] * 5, pa.decimal128(38, 28)),
    )
    result = riskgate.trade_metrics(fine, columns={"commission": "none", "swap": "none"})
    assert result[0].net_profit == Decimal("0.3000000000000000000000000003")
    # Integers are money too.
    ints = table.set_column(table.schema.get_field_index("profit"), "profit", pa.array([10, -3, 0, 7, 0], pa.int32()))
    assert riskgate.trade_metrics(ints)[1].gross_profit == Decimal("10")


def test_unreadable_columns_raise_invalid_input_naming_column_and_type():
    table = small()
    bad = table.set_column(1, "opened_at", pa.array([True] * 5))
    with pytest.raises(riskgate.InvalidInput, match=r'column "opened_at" \(opened_at\) of type Boolean'):
        riskgate.trade_metrics(bad)
    bad = table.set_column(table.schema.get_field_index("profit"), "profit", pa.array(["x"] * 5))
    with pytest.raises(riskgate.InvalidInput, match=r'column "profit" \(profit\) of type Utf8'):
        riskgate.trade_metrics(bad)
    bad = table.set_column(0, "trading_account_login", pa.array([1.5] * 5))
    with pytest.raises(riskgate.InvalidInput, match=r"trading_account_login.* of type Float64"):
        riskgate.trade_metrics(bad)
    with pytest.raises(riskgate.InvalidInput, match=r'column "login" \(accounts\): no such column'):
        riskgate.trade_metrics(table, columns={"account": "login"})
    text = table.set_column(1, "opened_at", pa.array(["not a time"] * 5))
    with pytest.raises(riskgate.InvalidInput, match=r'column "opened_at".*Utf8'):
        riskgate.trade_metrics(text)
    too_far = table.set_column(1, "opened_at", pa.array([10**12] * 5, pa.timestamp("s")))
    with pytest.raises(riskgate.InvalidInput, match=r"opened_at\[0\]: out of range"):
        riskgate.trade_metrics(too_far)
    with pytest.raises(riskgate.InvalidInput, match="exporting Arrow"):
        riskgate._riskgate.trade_metrics_arrow(object(), "a", "b", "c", "d")  # type: ignore[arg-type]


def test_null_required_values_name_the_row():
    table = small()
    for name, needle in (
        ("profit", r"profit\[3\]: missing"),
        ("closed_at", r"closed_at\[3\]: missing time"),
        ("trading_account_login", r"accounts\[3\]: missing \(null\)"),
    ):
        i = table.schema.get_field_index(name)
        values = table.column(name).to_pylist()
        values[3] = None
        bad = table.set_column(i, name, pa.array(values, table.schema.field(i).type))
        with pytest.raises(riskgate.InvalidInput, match=needle):
            riskgate.trade_metrics(bad)


def test_the_accumulator_extends_from_any_table():
    table = small()
    one = table.filter(pa.compute.equal(table.column("trading_account_login"), "a"))
    batch = riskgate.trade_metrics(one)[0]
    for data in (one, pl.from_arrow(one), one.to_pandas()):
        acc = riskgate.MetricsAccumulator()
        acc.extend(data)
        assert len(acc) == 3
        streamed = acc.metrics()
        assert streamed.to_dict() | {"account": "a"} == batch.to_dict()
    acc = riskgate.MetricsAccumulator()
    frame = one.to_pandas()
    acc.extend(opened_at=frame["opened_at"], closed_at=frame["closed_at"], profit=frame["profit"])
    assert len(acc) == 3
    bad = one.set_column(one.schema.get_field_index("profit"), "profit", pa.array([1.0, None, 2.0]))
    acc = riskgate.MetricsAccumulator()
    with pytest.raises(riskgate.InvalidInput, match=r"profit\[1\]"):
        acc.extend(bad)
    assert len(acc) == 0, "a bad row adds nothing"


def rows_of(table):
    """A table's rows as dicts of Python values (pyarrow decimals are Decimal)."""
    return pa.table(table).to_pylist()


def test_to_arrow_round_trips_every_field_exactly(by_pandas):
    exported = by_pandas.to_arrow()
    table = pa.table(exported)
    assert table.column_names == list(riskgate.AccountMetrics.FIELDS)
    assert table.schema.field("trades").type == pa.uint64()
    assert pa.types.is_decimal128(table.schema.field("net_profit").type)
    assert table.schema.field("max_daily_loss_day").type == pa.date32()
    rows = table.to_pylist()
    assert len(rows) == len(by_pandas)
    for row, m in zip(rows, by_pandas):
        assert row == m.to_dict()
    frame = pl.DataFrame(by_pandas.to_arrow())
    assert frame.height == 1_064
    assert frame.rows(named=True) == [m.to_dict() for m in by_pandas]
    assert by_pandas.to_polars().equals(frame)
    # The issue's line: pl.from_arrow gives the DataFrame itself, no .struct.unnest().
    read = pl.from_arrow(by_pandas.to_arrow())
    assert isinstance(read, pl.DataFrame)
    assert read.equals(frame)
    assert read.rows(named=True) == [m.to_dict() for m in by_pandas]
    # The pyarrow-free table object is a stream of record batches that both read as tables.
    own = riskgate._riskgate.metrics_to_arrow(by_pandas)
    assert not isinstance(own, pa.Table)
    assert pl.DataFrame(own).equals(frame)
    assert pa.table(own).equals(table)
    # The result itself exports the stream (list-first readers take it as rows).
    assert pa.RecordBatchReader.from_stream(by_pandas).read_all().equals(table)


def test_to_arrow_of_no_results_and_of_undefined_values():
    empty = riskgate.MetricsResult([])
    table = pa.table(empty.to_arrow())
    assert table.num_rows == 0
    assert table.column_names == list(riskgate.AccountMetrics.FIELDS)
    one_win = riskgate.trade_metrics(small().slice(0, 1))
    row = pa.table(one_win.to_arrow()).to_pylist()[0]
    assert row["profit_factor"] is None and row["max_daily_loss_day"] is None
    assert row == one_win[0].to_dict()


def test_pnl_basis_and_window_settings_apply_to_arrow_input(by_pandas):
    frame = pl.read_csv(SAMPLE, try_parse_dates=True)
    for settings in ({"pnl_basis": "gross"}, {"window_size": 2}):
        assert riskgate.trade_metrics(frame, **settings) == riskgate.trade_metrics(pd.read_csv(SAMPLE), **settings)
    assert riskgate.trade_metrics(frame, pnl_basis="gross") != by_pandas


def awkward_trades(n=3_000, seed=11, specials=True):
    """`n` trades of 7 accounts with money of 0 to 6 decimal places, plus values that the
    fixed-point conversion must hand to the reference path (more than four places, 2^36
    and over, 17 digits) or take as they are (negative zero, 2^36 less 0.0001), nulls and
    NaN fees, and stop-loss/take-profit prices that are null, NaN, 0 or set."""
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(seed)

    def money(digits):
        # n / 10^places: the float nearest the decimal, whose shortest text it is.
        return rng.integers(-(10**digits), 10**digits, n) / 10.0 ** rng.integers(0, 7, n)

    profit, commission, swap = money(8), money(6), money(6)
    wide = [-0.0, 0.0, 1e16, 2.0**36, 68_719_476_735.9999, 0.00005]
    long = [-0.0, 2.0**36, 0.1 + 0.2, 123_456.123_456_7, 1e-7, 0.00005]
    for column, values in ((profit, long), (commission, wide), (swap, wide)) if specials else ():
        at = rng.choice(n, 60, replace=False)
        column[at] = rng.choice(values, 60)
    t0 = np.datetime64("2025-05-05T00:00:00", "us")
    opened = t0 + rng.integers(0, 20 * 86_400_000_000, n).astype("timedelta64[us]")
    closed = opened + rng.integers(0, 7_200_000_000, n).astype("timedelta64[us]")

    def holes(values, null_share, nan_share):
        values = values.copy()
        values[rng.random(n) < nan_share] = np.nan
        return pa.array(values, mask=rng.random(n) < null_share)

    prices = rng.choice([0.0, 1.25, 2.5, np.nan], n)
    return pa.table(
        {
            "trading_account_login": pa.array(rng.choice(["a", "b", "c", "d", "e", "f", "g"], n)),
            "opened_at": pa.array(opened, pa.timestamp("us", tz="UTC")),
            "closed_at": pa.array(closed, pa.timestamp("us", tz="UTC")),
            "profit": pa.array(profit),
            "commission": holes(commission, 0.1, 0.05),
            "swap": holes(swap, 0.1, 0.05),
            "price_sl": holes(prices, 0.2, 0.0),
            "price_tp": pa.array(rng.choice([0.0, 3.75, np.nan], n)),
        }
    )


def texts(metrics):
    """Every field as text, so that `3.0` and `3` differ (the decimals' scale too)."""
    return {k: str(v) for k, v in metrics.to_dict().items()}


def test_the_column_wise_fast_path_equals_the_row_by_row_reference():
    # The batch call converts money at four fixed places, a block of rows at a time, and
    # hands every row it cannot take to the row-by-row conversion; the accumulator
    # converts every row row by row. Same trades, same texts, scale and all.
    table = awkward_trades()
    for threads in (1, 2):
        for data in (table, pa.Table.from_batches(table.to_batches(max_chunksize=700)), table.to_pandas()):
            batch = riskgate.trade_metrics(data, threads=threads)
            assert [m.account for m in batch] == list("abcdefg")
            for m in batch:
                one = table.filter(pa.compute.equal(table.column("trading_account_login"), m.account))
                acc = riskgate.MetricsAccumulator()
                acc.extend(one)
                assert texts(acc.metrics()) | {"account": m.account} == texts(m), (threads, m.account)
    # The same money as exact decimals (the exact path) gives the same values (without
    # the specials: 1e16 at the profit column's scale of 17 would not fit a decimal).
    table = awkward_trades(specials=False)
    exact = table
    for name in ("profit", "commission", "swap"):
        column = [None if v is None or v != v else Decimal(repr(v)) for v in table.column(name).to_pylist()]
        # decimal128(p, s) at the column's largest scale (pyarrow infers it).
        exact = exact.set_column(exact.schema.get_field_index(name), name, pa.array(column))
        assert pa.types.is_decimal128(exact.schema.field(name).type)
    assert riskgate.trade_metrics(exact) == riskgate.trade_metrics(table)


def test_the_first_bad_row_is_named_whichever_column_and_block_it_is_in():
    table = awkward_trades()
    n = table.num_rows

    def with_value(t, name, row, value):
        values = t.column(name).to_pylist()
        values[row] = value
        return t.set_column(t.schema.get_field_index(name), name, pa.array(values, t.schema.field(name).type))

    late = with_value(table, "commission", 2_900, 1e300)
    with pytest.raises(riskgate.InvalidInput, match=r"commission\[2900\]: .*no decimal form"):
        riskgate.trade_metrics(late)
    # A missing time in an earlier block wins over the unconvertible float.
    early = with_value(late, "closed_at", 1_000, None)
    for threads in (1, 2):
        with pytest.raises(riskgate.InvalidInput, match=r"closed_at\[1000\]: missing time"):
            riskgate.trade_metrics(early, threads=threads)
    # In the same block: the earlier row wins, whatever the columns' order of passes.
    same = with_value(with_value(table, "profit", 1_030, float("nan")), "swap", 1_029, 5e-324)
    with pytest.raises(riskgate.InvalidInput, match=r"swap\[1029\]"):
        riskgate.trade_metrics(same)
    reordered = with_value(with_value(table, "closed_at", 1_030, table.column("opened_at")[1_030].as_py() - dt.timedelta(seconds=1)), "profit", 1_031, None)
    with pytest.raises(riskgate.InvalidInput, match=r"row 1030: closed before it was opened"):
        riskgate.trade_metrics(reordered)
    assert n == 3_000
