"""Trade metrics over closed trades: the friendly layer over the Rust calculators.

``trade_metrics`` takes a pandas DataFrame in a prop firm's export format (the columns of
``shared/data``: ``trading_account_login``, ``opened_at``, ``closed_at``, ``profit``,
``commission``, ``swap``, ``price_sl``, ``price_tp``; rename any with ``columns=``), or
the same columns as NumPy arrays or Python sequences. It returns one
:class:`AccountMetrics` per account in a :class:`MetricsResult` list, with ``to_pandas()``.

Conventions are the core's: net P&L = profit + commission + swap decides wins and drives
the balance curve; a stop-loss or take-profit that is missing, NaN or 0 is "not set";
money floats are taken exactly from their shortest repr.
"""

from __future__ import annotations

import datetime as _dt
import decimal
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._riskgate import _MetricsAccumulator, trade_metrics_columns

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


@dataclass(frozen=True)
class AccountMetrics:
    """The trade metrics of one account (``account`` is empty from an accumulator)."""

    account: str
    trades: int
    wins: int
    losses: int
    break_even: int
    win_ratio: decimal.Decimal
    gross_profit: decimal.Decimal
    gross_loss: decimal.Decimal
    net_profit: decimal.Decimal
    profit_factor: Optional[decimal.Decimal]
    average_win: Optional[decimal.Decimal]
    average_loss: Optional[decimal.Decimal]
    expectancy: Optional[decimal.Decimal]
    largest_win: Optional[decimal.Decimal]
    largest_loss: Optional[decimal.Decimal]
    max_consecutive_losses: int
    average_holding_seconds: Optional[decimal.Decimal]
    hft_trades: int
    hft_ratio: decimal.Decimal
    stop_loss_trades: int
    stop_loss_ratio: decimal.Decimal
    take_profit_trades: int
    take_profit_ratio: decimal.Decimal
    max_concurrent_trades: int
    max_relative_drawdown: decimal.Decimal
    max_drawdown: decimal.Decimal
    final_balance: decimal.Decimal
    max_daily_loss: decimal.Decimal
    max_daily_loss_ratio: decimal.Decimal
    max_daily_loss_day: Optional[_dt.date]

    @classmethod
    def _of(cls, account: str, values: Mapping[str, Any]) -> "AccountMetrics":
        return cls(account=account, **values)


class MetricsResult(List[AccountMetrics]):
    """A list of :class:`AccountMetrics`, sorted by account."""

    def to_pandas(self) -> Any:
        """A DataFrame with one row per account (needs pandas)."""
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]

        return pd.DataFrame([asdict(m) for m in self], columns=[f.name for f in fields(AccountMetrics)])


def _ns(values: Any) -> List[int]:
    """Epoch nanoseconds from datetime64 arrays/Series, ints, or aware datetimes."""
    if getattr(getattr(values, "dtype", None), "tz", None) is not None:  # tz-aware pandas
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    dtype = getattr(values, "dtype", None)
    if dtype is not None and str(dtype).startswith("datetime64"):
        return list(values.astype("datetime64[ns]").astype("int64").tolist())
    out: List[int] = []
    for v in list(values):
        if isinstance(v, _dt.datetime):
            if v.tzinfo is None:
                raise ValueError("datetimes must be timezone-aware")
            delta = v - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
            out.append((delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000)
        else:
            out.append(int(v))
    return out


def _numeric_array(values: Any) -> Any:
    """A float64 NumPy array of ``values`` when NumPy is there and they are numeric."""
    dtype = getattr(values, "dtype", None)
    if dtype is None or getattr(dtype, "kind", "O") not in "fiub":
        return None
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - arrays with a dtype come from NumPy
        return None
    return np.asarray(values, dtype=np.float64)


def _floats(values: Any, default: float = 0.0) -> List[float]:
    if values is None:
        return []
    array = _numeric_array(values)
    if array is not None:
        import numpy as np

        return list(np.where(np.isnan(array), default, array).tolist())
    tolist = getattr(values, "tolist", None)
    raw = tolist() if tolist is not None else list(values)
    return [default if v is None or v != v else float(v) for v in raw]


def _is_set(values: Any, n: int) -> List[bool]:
    if values is None:
        return [False] * n
    array = _numeric_array(values)
    if array is not None:
        return list(((array == array) & (array != 0)).tolist())
    return [x == x and x != 0 for x in _floats(values, default=0.0)]


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
) -> MetricsResult:
    """Per-account trade metrics.

    Pass a DataFrame as ``data`` (export column names, or map them with ``columns``, e.g.
    ``{"account": "login"}``), or the columns as keyword arguments: ``accounts`` (any
    values, compared as ``str``), ``opened_at``/``closed_at`` (``datetime64`` arrays, epoch
    nanoseconds, or timezone-aware datetimes), ``profit`` and optionally ``commission``,
    ``swap``, ``stop_loss``, ``take_profit`` (numbers; missing/NaN/0 stop-loss or
    take-profit means not set). The computation runs in Rust with the GIL released.

    Raises :class:`riskgate.InvalidInput` on a bad value (naming the column and row).
    """
    if data is not None:
        names = dict(EXPORT_COLUMNS)
        names.update(columns or {})
        pd = __import__("pandas")
        accounts = data[names["account"]].astype(str).tolist()
        opened_at = pd.to_datetime(data[names["opened_at"]], utc=True)
        closed_at = pd.to_datetime(data[names["closed_at"]], utc=True)
        profit = data[names["profit"]]
        commission = data[names["commission"]] if names["commission"] in data else None
        swap = data[names["swap"]] if names["swap"] in data else None
        stop_loss = data[names["stop_loss"]] if names["stop_loss"] in data else None
        take_profit = data[names["take_profit"]] if names["take_profit"] in data else None
    if accounts is None or opened_at is None or closed_at is None or profit is None:
        raise TypeError("trade_metrics needs a DataFrame or accounts, opened_at, closed_at and profit")
    astype = getattr(accounts, "astype", None)
    if astype is not None:  # NumPy / pandas: one vectorized conversion
        account_ids = list(astype(str).tolist())
    else:
        account_ids = [str(a) for a in accounts]
    n = len(account_ids)
    rows = trade_metrics_columns(
        account_ids,
        _ns(opened_at),
        _ns(closed_at),
        _floats(profit),
        _floats(commission) or [0.0] * n,
        _floats(swap) or [0.0] * n,
        _is_set(stop_loss, n),
        _is_set(take_profit, n),
        initial_balance=initial_balance,
        hft_seconds=hft_seconds,
        day_offset_minutes=day_offset_minutes,
    )
    return MetricsResult(AccountMetrics._of(account, values) for account, values in rows)


class MetricsAccumulator:
    """Closed trades of one account, one at a time (the real-time stream case).

    Gives the same metrics as :func:`trade_metrics` for the same trades, in any order.
    """

    def __init__(
        self,
        *,
        initial_balance: Optional[DecimalLike] = None,
        hft_seconds: int = 60,
        day_offset_minutes: int = 0,
    ) -> None:
        self._inner = _MetricsAccumulator(
            initial_balance=initial_balance, hft_seconds=hft_seconds, day_offset_minutes=day_offset_minutes
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

    def metrics(self) -> AccountMetrics:
        """The metrics of every trade pushed so far."""
        return AccountMetrics._of("", self._inner.metrics())

    def __len__(self) -> int:
        return len(self._inner)
