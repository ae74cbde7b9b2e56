"""Trade metrics over closed trades: the friendly layer over the Rust calculators.

``trade_metrics`` takes a table in a prop firm's export format (the columns of
``shared/data``: ``trading_account_login``, ``opened_at``, ``closed_at``, ``profit``,
``commission``, ``swap``, ``price_sl``, ``price_tp``; rename any with ``columns=``): a
pandas DataFrame, or anything that exports Arrow through the PyCapsule interface (a polars
DataFrame, a pyarrow Table, RecordBatch or RecordBatchReader, a DuckDB relation), or the
same columns as NumPy arrays or Python sequences. It returns one :class:`AccountMetrics`
per account in a :class:`MetricsResult` list, with ``to_arrow()``, ``to_polars()`` and
``to_pandas()``.

Conventions are the core's: net P&L = profit + commission + swap decides wins and drives
the balance curve; a missing (NaN/None) commission or swap is 0; a stop-loss or
take-profit that is missing, NaN or 0 is "not set"; a missing profit is an error; money
floats are taken exactly from their shortest repr.

Arrow input is read in place from its buffers by the Rust side: timestamps of any unit and
time zone (a naive timestamp is taken as UTC; text is parsed), ``float64`` money by its
shortest repr, integers and ``decimal128`` exactly, accounts as strings (plain, large,
views or dictionary-encoded) or integers; a null counts as NaN/NaT does above, and a null
account is refused. A column of another type raises :class:`InvalidInput` naming the column
and its type. A pandas DataFrame goes the Arrow way when one of its columns has an Arrow
dtype (``pd.ArrowDtype``), else the NumPy way: each column crosses into Rust as one buffer
of 64-bit values (one copy per column with NumPy, ``array.array`` without it). Either way
no Python object is made per trade, and the results become Python values only when a field
is read.
"""

from __future__ import annotations

import datetime as _dt
import decimal
from array import array
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._arrow import ArrowStreamExportable
from ._riskgate import (
    AccountMetrics,
    InvalidInput,
    _MetricsAccumulator,
    metrics_to_arrow,
    trade_metrics_arrow,
    trade_metrics_buffers,
)

DecimalLike = Union[decimal.Decimal, str, int, float]

EXPORT_COLUMNS: Dict[str, str] = {
    "account": "trading_account_login",
    "opened_at": "opened_at",
    "closed_at": "closed_at",
    "profit": "profit",
    "commission": "commission",
    "swap": "swap",
    "stop_loss": "price_sl",
    "take_profit": "price_tp",
}

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_INT64_MAX = 2**63 - 1


class MetricsResult(List[AccountMetrics]):
    """A list of :class:`AccountMetrics`, sorted by account.

    It exports the Arrow stream of :meth:`to_arrow` itself (``__arrow_c_stream__``), for
    readers that take any stream (``pa.RecordBatchReader.from_stream(result)``);
    ``pl.DataFrame`` and ``pa.table`` take a list as rows, so give them
    ``result.to_arrow()``."""

    def to_arrow(self) -> ArrowStreamExportable:
        """An Arrow table, one row per account and one column per field in
        ``AccountMetrics.FIELDS`` order. ``account`` is a string, counts are ``uint64``,
        days ``date32``, and decimals exact: ``decimal128(38, s)`` with ``s`` the largest
        scale in the column, or the exact text where a value would need more than 38
        digits. Undefined values are null.

        With pyarrow installed it is a ``pyarrow.Table`` (imported from the stream
        without a copy), so ``pl.from_arrow(t)`` gives a DataFrame: polars reads any
        other Arrow exporter in ``from_arrow`` as one struct Series. Without pyarrow it is
        riskgate's own table object exporting ``__arrow_c_stream__`` (a stream of record
        batches), which ``pl.DataFrame(t)``, ``pa.table(t)`` and DuckDB read as a table."""
        table = metrics_to_arrow(self)
        try:
            import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            return table
        return pa.table(table)  # type: ignore[no-any-return,unused-ignore]

    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> Any:
        """The Arrow C stream of :meth:`to_arrow` (the Arrow PyCapsule interface)."""
        return metrics_to_arrow(self).__arrow_c_stream__(requested_schema)

    def to_polars(self) -> Any:
        """A polars DataFrame of :meth:`to_arrow` (needs polars); decimals stay exact."""
        import polars as pl

        # pl.DataFrame reads any Arrow stream as a frame, with or without pyarrow.
        return pl.DataFrame(metrics_to_arrow(self))

    def to_pandas(self) -> Any:
        """A DataFrame with one row per account (needs pandas)."""
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]

        return pd.DataFrame(AccountMetrics.columns(self), columns=list(AccountMetrics.FIELDS))


_TRADE_ROLES = ("opened_at", "closed_at", "profit", "commission", "swap", "stop_loss", "take_profit")


def _exports_arrow(data: Any) -> bool:
    return hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__")


def _is_pandas(data: Any) -> bool:
    return type(data).__module__.split(".")[0] == "pandas"


def _arrow_way(data: Any, used: Sequence[str]) -> bool:
    """Whether ``data`` is read through Arrow: a pandas frame when one of the ``used``
    columns has an Arrow dtype, any other object exporting Arrow always."""
    if not _is_pandas(data):
        return _exports_arrow(data)
    arrow_dtype = getattr(sys.modules.get("pandas"), "ArrowDtype", None)
    if arrow_dtype is None or not _exports_arrow(data):
        return False
    return any(isinstance(data[c].dtype, arrow_dtype) for c in used if c in data.columns)


def _select(data: Any, wanted: Sequence[str]) -> Any:
    """``data`` cut to the ``wanted`` columns it has, where that is cheap and certain
    (pandas, polars, pyarrow), so unused columns are not exported; else ``data``."""
    top = type(data).__module__.split(".")[0]
    if top not in ("pandas", "polars", "pyarrow"):
        return data
    have = getattr(data, "columns", None)
    if have is None or top == "pyarrow":
        have = getattr(data, "column_names", None)
    if have is None:
        return data
    have = list(have)
    keep = [c for c in wanted if c in have]
    if top == "pandas":
        return data[keep]
    return data.select(keep)


def _arrow_names(names: Mapping[str, str], roles: Sequence[str]) -> List[str]:
    return [names[r] for r in roles]


def _numpy() -> Any:
    try:
        import numpy as np
    except ImportError:
        return None
    return np


def _is_array(values: Any) -> bool:
    """A NumPy array or a pandas Series/Index (anything with a dtype)."""
    return getattr(values, "dtype", None) is not None


def _beyond_int64(np: Any, a: Any) -> Optional[int]:
    """The first row of an unsigned integer array whose value an int64 cannot hold."""
    if a.dtype.kind == "u" and a.size and int(a.max()) > _INT64_MAX:
        return int(np.argmax(a))
    return None


def _accounts(values: Any) -> Union[List[str], Tuple[str, bytes, int]]:
    """The account column: packed when it is a NumPy-like array, else ``str`` per value."""
    np = _numpy()
    if np is not None and _is_array(values):
        a = np.asarray(values)
        kind = a.dtype.kind
        if kind == "u" and _beyond_int64(np, a) is not None:
            kind = "O"  # beyond int64: compare as text
        if kind in "iu":
            return ("int64", np.ascontiguousarray(a, dtype=np.int64).tobytes(), 8)
        if kind == "S":
            return ("utf8", np.ascontiguousarray(a).tobytes(), a.dtype.itemsize)
        if kind != "U":
            a = a.astype(str)
        if not a.dtype.isnative:  # '>U': Rust reads native-endian code units
            a = a.astype(a.dtype.newbyteorder("="))
        return _narrow_unicode(np, np.ascontiguousarray(a))
    return [str(a) for a in values]


def _narrow_unicode(np: Any, a: Any) -> Tuple[str, bytes, int]:
    """A NumPy unicode column (UCS-4, padded to its widest value: ``.astype(str)`` of
    integers gives 21 characters a row) cut to the longest value it holds, and to one
    byte a character when all are ASCII. The values are unchanged; ten times fewer bytes
    cross into Rust and are compared there."""
    chars = a.dtype.itemsize // 4
    if a.size == 0 or chars <= 1:
        return ("ucs4", a.tobytes(), a.dtype.itemsize)
    strings = getattr(np, "strings", None) or np.char  # np.strings from NumPy 2
    used = max(int(strings.str_len(a).max()), 1)
    units = a.view(np.uint32).reshape(a.size, chars)[:, :used]
    if int(units.max()) < 128:
        return ("utf8", units.astype(np.uint8).tobytes(), used)
    return ("ucs4", np.ascontiguousarray(units).tobytes(), used * 4)


_NS_RANGE = "nanosecond timestamps span 1677-09-21 to 2262-04-11"


def _times(values: Any, name: str) -> bytes:
    """Epoch nanoseconds from datetime64 arrays/Series, integers, or aware datetimes.

    Raises InvalidInput (naming ``name`` and the row) for a naive datetime or a time that
    epoch nanoseconds cannot hold, rather than letting it wrap around."""
    if getattr(getattr(values, "dtype", None), "tz", None) is not None:  # tz-aware pandas
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    np = _numpy()
    if np is not None and _is_array(values):
        a = np.asarray(values)
        if a.dtype.kind == "M":
            ns = a.astype("datetime64[ns]")
            if a.dtype != ns.dtype:  # a coarser unit wraps silently beyond the range
                wrapped = np.flatnonzero((ns.astype(a.dtype) != a) & ~np.isnat(a))
                if wrapped.size:
                    row = int(wrapped[0])
                    raise InvalidInput(f"{name}[{row}]: {a[row]} is out of range ({_NS_RANGE})")
            return np.ascontiguousarray(ns.view(np.int64)).tobytes()
        if a.dtype.kind in "iu":
            beyond = _beyond_int64(np, a)
            if beyond is not None:
                raise InvalidInput(f"{name}[{beyond}]: {a[beyond]} ns is out of range ({_NS_RANGE})")
            return np.ascontiguousarray(a, dtype=np.int64).tobytes()
        values = a.tolist()
    out = array("q")
    for row, v in enumerate(values):
        if isinstance(v, _dt.datetime):
            if v.tzinfo is None:
                raise InvalidInput(f"{name}[{row}]: {v} is naive; datetimes must be timezone-aware")
            delta = v - _EPOCH
            ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
        else:
            ns = int(v)
        if not -_INT64_MAX - 1 <= ns <= _INT64_MAX:
            raise InvalidInput(f"{name}[{row}]: {v} is out of range ({_NS_RANGE})")
        out.append(ns)
    return out.tobytes()


def _floats(values: Any) -> bytes:
    """Float64 values; None and NaN stay NaN ("missing")."""
    np = _numpy()
    if np is not None:
        return np.ascontiguousarray(np.asarray(values, dtype=np.float64)).tobytes()
    tolist = getattr(values, "tolist", None)
    raw = tolist() if tolist is not None else values
    return array("d", (float("nan") if v is None else float(v) for v in raw)).tobytes()


def _optional_floats(values: Any) -> Optional[bytes]:
    """Float64 values of an optional column, or None when it is missing."""
    return None if values is None else _floats(values)


def trade_metrics(
    data: Any = None,
    *,
    columns: Optional[Mapping[str, str]] = None,
    accounts: Optional[Sequence[Any]] = None,
    opened_at: Any = None,
    closed_at: Any = None,
    profit: Any = None,
    commission: Any = None,
    swap: Any = None,
    stop_loss: Any = None,
    take_profit: Any = None,
    initial_balance: Optional[DecimalLike] = None,
    hft_seconds: int = 60,
    day_offset_minutes: int = 0,
    pnl_basis: str = "net",
    window_size: Optional[int] = None,
    threads: Optional[int] = None,
) -> MetricsResult:
    """Per-account trade metrics.

    Pass a table as ``data``: a pandas DataFrame or any object exporting Arrow (polars
    DataFrame, pyarrow Table/RecordBatch/RecordBatchReader, DuckDB relation), with the
    export's column names or others mapped with ``columns``, e.g. ``{"account":
    "login"}``. Or pass the columns as keyword arguments: ``accounts`` (any
    values, compared as ``str``), ``opened_at``/``closed_at`` (``datetime64`` arrays, epoch
    nanoseconds, or timezone-aware datetimes), ``profit`` and optionally ``commission``,
    ``swap``, ``stop_loss``, ``take_profit`` (numbers; a missing/NaN commission or swap is
    0; a missing/NaN/0 stop-loss or take-profit means not set). The computation runs in
    Rust with the GIL released.

    ``pnl_basis`` is ``"net"`` (a trade's P&L is profit + commission + swap, as MetaTrader
    reports it) or ``"gross"`` (profit alone). ``window_size`` N scores each account on its
    N most recent trades by close time (the balance curve starting at ``initial_balance``);
    ``None`` is the whole history.

    ``threads`` splits the accounts into that many parts, run in parallel on a pool of one
    thread per core (``None``: one part below 100,000 trades, else one per core, at most
    8); the result is the same for any value.

    Raises :class:`riskgate.InvalidInput` on a bad value (naming the column and row),
    including a missing (NaN) profit or time.
    """
    settings: Dict[str, Any] = dict(
        initial_balance=initial_balance,
        hft_seconds=hft_seconds,
        day_offset_minutes=day_offset_minutes,
        pnl_basis=pnl_basis,
        window_size=window_size,
        threads=threads,
    )
    if data is not None:
        names = dict(EXPORT_COLUMNS)
        names.update(columns or {})
        roles = ("account",) + _TRADE_ROLES
        if _arrow_way(data, [names[r] for r in roles]):
            rows = trade_metrics_arrow(
                _select(data, [names[r] for r in roles]), *_arrow_names(names, roles), **settings
            )
            return MetricsResult(rows)
        pd = __import__("pandas")
        accounts = data[names["account"]]
        opened_at = pd.to_datetime(data[names["opened_at"]], utc=True)
        closed_at = pd.to_datetime(data[names["closed_at"]], utc=True)
        profit = data[names["profit"]]
        commission = data[names["commission"]] if names["commission"] in data else None
        swap = data[names["swap"]] if names["swap"] in data else None
        stop_loss = data[names["stop_loss"]] if names["stop_loss"] in data else None
        take_profit = data[names["take_profit"]] if names["take_profit"] in data else None
    if accounts is None or opened_at is None or closed_at is None or profit is None:
        raise TypeError("trade_metrics needs a DataFrame or accounts, opened_at, closed_at and profit")
    rows = trade_metrics_buffers(
        _accounts(accounts),
        _times(opened_at, "opened_at"),
        _times(closed_at, "closed_at"),
        _floats(profit),
        _optional_floats(commission),
        _optional_floats(swap),
        _optional_floats(stop_loss),
        _optional_floats(take_profit),
        **settings,
    )
    return MetricsResult(rows)


class MetricsAccumulator:
    """Closed trades of one account, one at a time (the real-time stream case).

    Gives the same metrics as :func:`trade_metrics` for the same trades and settings, in
    any order. With ``window_size`` N it keeps only the N latest trades by close time (a
    late trade older than all of them is dropped); ``len()`` counts every trade pushed.
    """

    def __init__(
        self,
        *,
        initial_balance: Optional[DecimalLike] = None,
        hft_seconds: int = 60,
        day_offset_minutes: int = 0,
        pnl_basis: str = "net",
        window_size: Optional[int] = None,
    ) -> None:
        self._inner = _MetricsAccumulator(
            initial_balance=initial_balance,
            hft_seconds=hft_seconds,
            day_offset_minutes=day_offset_minutes,
            pnl_basis=pnl_basis,
            window_size=window_size,
        )

    def push(
        self,
        opened_at: _dt.datetime,
        closed_at: _dt.datetime,
        profit: DecimalLike,
        commission: Optional[DecimalLike] = None,
        swap: Optional[DecimalLike] = None,
        stop_loss: Optional[DecimalLike] = None,
        take_profit: Optional[DecimalLike] = None,
    ) -> None:
        """Adds one closed trade (timezone-aware datetimes; decimals as elsewhere)."""
        self._inner.push(opened_at, closed_at, profit, commission, swap, stop_loss, take_profit)

    def extend(
        self,
        data: Any = None,
        *,
        columns: Optional[Mapping[str, str]] = None,
        opened_at: Any = None,
        closed_at: Any = None,
        profit: Any = None,
        commission: Any = None,
        swap: Any = None,
        stop_loss: Any = None,
        take_profit: Any = None,
    ) -> None:
        """Adds many closed trades at once, taken as :func:`trade_metrics` takes them (a
        table as ``data``, any account column ignored, or the columns as keyword
        arguments), without a Python object per trade. Every row is converted before any
        is added: a bad row raises :class:`InvalidInput` and adds nothing."""
        if data is not None:
            names = dict(EXPORT_COLUMNS)
            names.update(columns or {})
            if _arrow_way(data, [names[r] for r in _TRADE_ROLES]):
                self._inner.extend_arrow(
                    _select(data, [names[r] for r in _TRADE_ROLES]), *_arrow_names(names, _TRADE_ROLES)
                )
                return
            pd = __import__("pandas")
            opened_at = pd.to_datetime(data[names["opened_at"]], utc=True)
            closed_at = pd.to_datetime(data[names["closed_at"]], utc=True)
            profit = data[names["profit"]]
            commission = data[names["commission"]] if names["commission"] in data else None
            swap = data[names["swap"]] if names["swap"] in data else None
            stop_loss = data[names["stop_loss"]] if names["stop_loss"] in data else None
            take_profit = data[names["take_profit"]] if names["take_profit"] in data else None
        if opened_at is None or closed_at is None or profit is None:
            raise TypeError("extend needs a DataFrame or opened_at, closed_at and profit")
        self._inner.extend_buffers(
            _times(opened_at, "opened_at"),
            _times(closed_at, "closed_at"),
            _floats(profit),
            _optional_floats(commission),
            _optional_floats(swap),
            _optional_floats(stop_loss),
            _optional_floats(take_profit),
        )

    def metrics(self) -> AccountMetrics:
        """The metrics of every trade pushed so far."""
        return self._inner.metrics()

    def __len__(self) -> int:
        return len(self._inner)
