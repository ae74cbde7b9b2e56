"""Type stubs for the riskgate extension module (``riskgate._riskgate``)."""

import os
from datetime import date, datetime
from decimal import Decimal
from typing import (
    Any,
    ClassVar,
    Dict,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    SupportsIndex,
    Tuple,
    Union,
    final,
)

from ._arrow import ArrowArrayExportable, ArrowStreamExportable

__version__: str
__all__ = [
    "AccountMetrics",
    "CheckResult",
    "ConfigError",
    "EventError",
    "InvalidInput",
    "RiskEngine",
    "RiskgateError",
    "TierLadder",
    "_MetricsAccumulator",
    "__version__",
    "metrics_to_arrow",
    "risk_report_arrow",
    "trade_metrics_arrow",
    "trade_metrics_buffers",
]

_DecimalLike = Union[Decimal, str, int, float, SupportsIndex]
"""A decimal input. ``float`` is converted from its shortest repr, integer-likes through
``__index__``; ``bool`` is refused."""

_Decision = Literal["APPROVED", "REJECTED", "FLAGGED"]
_Side = Literal["BUY", "SELL"]
_ApplyOutcome = Literal["applied", "duplicate", "stale"]

class RiskgateError(Exception):
    """Base class of every error raised by riskgate."""

class ConfigError(RiskgateError):
    """An engine config, config file or margin-tier ladder was refused."""

class InvalidInput(RiskgateError):
    """A value could not be converted (wrong type, not a decimal, naive datetime, unknown key)."""

class EventError(RiskgateError):
    """The engine refused an event (unknown account or symbol, fill mismatch); nothing changed."""

@final
class CheckResult:
    """The answer to a pre-trade check. Fields are converted to Python on access."""

    @property
    def decision(self) -> _Decision:
        """``"APPROVED"``, ``"REJECTED"`` or ``"FLAGGED"`` (a WARN rule fired)."""
    @property
    def accepted(self) -> bool:
        """True when the order may go to the market (approved or flagged)."""
    @property
    def reject_reason(self) -> Optional[str]:
        """The first failing phase when rejected (e.g. ``"INSUFFICIENT_MARGIN"``), else None."""
    @property
    def message(self) -> str:
        """A human-readable explanation naming the figures that decided."""
    @property
    def projected_margin_ratio(self) -> Optional[Decimal]:
        """Maintenance margin / margin balance after the fill; None when not computed or unbounded."""
    @property
    def required_initial_margin(self) -> Optional[Decimal]:
        """Initial margin the order needs; None when the check stopped before pricing it."""
    @property
    def liquidation_risk(self) -> bool:
        """The projected margin ratio reaches the liquidation threshold (or is unbounded)."""
    @property
    def margin_call(self) -> bool:
        """The projected margin ratio reaches the margin-call threshold."""
    @property
    def rule_hits(self) -> List[str]:
        """Ids of the rules that fired, in rule-id order (even when an earlier phase rejected)."""
    @property
    def rule_hit_details(self) -> List[Dict[str, Any]]:
        """Each hit as ``{rule_id, metric, value, operator, threshold, severity, action}``."""
    @property
    def trace_id(self) -> str:
        """The request's trace id."""
    @property
    def account_id(self) -> str: ...
    @property
    def order_id(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def checked_at(self) -> datetime:
        """The ``now`` the check ran at, in UTC."""
    @property
    def metrics(self) -> Dict[str, Optional[Decimal]]:
        """Every figure the check computed, by name (empty when it stopped before pricing).

        Keys: mark_price, order_price, order_quantity, order_notional, opening_quantity,
        opening_notional, leverage, max_leverage_allowed, required_initial_margin,
        margin_balance, available_margin, projected_position_notional, projected_exposure,
        exposure_utilization (None when the exposure limit is 0),
        projected_maintenance_margin, projected_margin_balance, projected_margin_ratio
        (None when unbounded), open_orders, open_positions, price_deviation, risk_score.
        """
    def to_dict(self) -> Dict[str, Any]:
        """The result as a plain dict (for logs and DataFrames)."""

@final
class RiskEngine:
    """The pre-trade risk engine: exact, fail-closed, thread-safe.

    ``config`` is a dict or the path (``str`` / ``os.PathLike``) of a TOML or JSON file
    (``.json`` is JSON, anything else TOML) in the risk-server config format: an ``engine``
    table (``default_ladder``, ``ladders``, ``rules``, ``limits``) and optional initial
    ``instruments``, ``marks`` and ``accounts``. A dict takes the same keys, with decimals
    as ``Decimal``, ``str``, ``int`` or ``float`` (converted from its repr) and times as
    aware datetimes or RFC 3339 strings. Initial marks without ``at`` are stamped ``now``
    (default: the current UTC time), which a backtest sets to its simulated start.

    Raises :class:`ConfigError` for an invalid config or unreadable file.
    """

    def __new__(
        cls,
        config: Union[Mapping[str, Any], str, "os.PathLike[str]"],
        *,
        now: Optional[datetime] = None,
    ) -> "RiskEngine": ...
    def check(
        self,
        request: Mapping[str, Any],
        now: Optional[datetime] = None,
        reserve: bool = False,
    ) -> CheckResult:
        """Checks an order at ``now`` (an aware datetime; None = current UTC time).

        ``request`` keys (the ``risk.v1.PreTradeCheckRequest`` contract):

        * ``user_id``, ``account_id``, ``order_id``, ``symbol``: str, required;
        * ``side``: ``"BUY"`` or ``"SELL"`` (any case), required;
        * ``quantity``: _DecimalLike, required;
        * ``order_type``: ``"LIMIT"`` or ``"MARKET"`` (any case), required;
        * ``price``: _DecimalLike, the limit price: required for LIMIT, omit or None for
          MARKET;
        * ``leverage``: _DecimalLike (at least 1), required: a risk gate does not guess it;
        * ``reduce_only``, ``post_only``: bool, default False;
        * ``trace_id``: str, default "".

        Domain problems (a zero quantity, a limit price off the tick, too much leverage) are
        decisions: a ``REJECTED`` result with its reason. Only values that cannot be
        converted at all (a missing key, wrong type, ``"abc"`` as a quantity, an unknown
        key) raise :class:`InvalidInput`, whose message names the key
        (``leverage: is required``).

        An accepted order is remembered for the duplicate-id and rate-limit controls. With
        ``reserve=True`` its initial margin and exposure are also reserved until an
        ``order_opened``, ``order_filled``, ``order_cancelled`` or ``reservation_released``
        event for the same order id.
        """
    def apply(self, event: Mapping[str, Any]) -> _ApplyOutcome:
        """Applies one state change; returns ``"applied"``, ``"duplicate"`` or ``"stale"``.

        ``event`` is the engine's one serde form of an event (the same JSON that the
        service adapters take; see the ``risk_core::engine`` docs), read by the same
        validated constructors as a config file: a refused value raises
        :class:`InvalidInput` naming the key and the rule, e.g.
        ``contract_multiplier: 0 is not valid: must be greater than zero``.

        Market events:

        * ``{"type": "mark", "symbol", "price", "at"}``: ``at`` an aware datetime
          (default: now); a mark not newer than the one held is ``"stale"``;
        * ``{"type": "instrument", ...}``: the instrument's keys as in the config file's
          ``[[instruments]]`` (symbol, tick_size, lot_size, min_quantity, max_quantity,
          contract_multiplier, max_leverage, required_kyc, status, price_band);
        * ``{"type": "global_trading_state", "state": "ACTIVE" | "REDUCING" | "HALTED"}``.

        Account events all carry ``account_id`` (str) and ``seq`` (int from 1, strictly
        increasing per account; a repeated or older one is ``"duplicate"``; 0 raises
        :class:`InvalidInput`):

        * ``profile_upsert``: ``user_id``, ``profile`` (dict as in ``[[accounts]].profile``:
          kyc_level, exposure_limit, frozen, max_leverage, risk_score, trading_state);
          the only event accepted for an unknown account;
        * ``balance_change``: ``delta`` (signed);
        * ``position_update``: ``symbol`` (a listed instrument), ``size`` (signed, long >
          0; 0 removes), ``entry_price``, ``leverage``;
        * ``order_opened``: ``order_id``, ``symbol``, ``side``, ``quantity``, ``price``,
          ``leverage``, optional ``reduce_only``;
        * ``order_cancelled``: ``order_id``;
        * ``order_filled``: ``order_id``, ``symbol``, ``side``, ``quantity``, ``price``,
          ``leverage``;
        * ``trading_state``: ``state``;
        * ``reservation_released``: ``order_id``.

        Unknown keys raise :class:`InvalidInput`; an event the engine cannot apply raises
        :class:`EventError` and changes nothing.
        """
    def ladder(self, symbol: str) -> TierLadder:
        """The margin-tier ladder in force for ``symbol`` (the default ladder when it has none)."""
    def account(self, account_id: str) -> Optional[Dict[str, Any]]:
        """A copy of an account's state, or None when the engine does not know it: the
        core's account view (account_id, user_id, last_seq, profile, wallet_balance,
        positions, open_orders, reservations), items as dicts of their fields."""
    @property
    def account_count(self) -> int:
        """The number of accounts the engine holds."""

@final
class TierLadder:
    """A validated margin-tier ladder (progressive, "tax bracket" maintenance margin).

    ``tiers`` is a list of dicts, ascending: ``floor`` (the first is 0), ``cap`` (the next
    floor; None or absent for an unbounded last tier), ``maintenance_rate`` (in (0, 1),
    non-decreasing), ``max_leverage`` (non-increasing) and optional ``active`` (default
    True; inactive tiers only at the top). Raises :class:`ConfigError` naming the first
    broken rule.
    """

    def __new__(cls, tiers: Sequence[Mapping[str, Any]]) -> "TierLadder": ...
    def maintenance_margin(self, notional: _DecimalLike) -> Decimal:
        """``N * MMR_k - cum_k`` for the tier ``k`` that ``notional`` falls in."""
    def initial_margin(self, notional: _DecimalLike, leverage: _DecimalLike) -> Decimal:
        """``notional / leverage``."""
    def max_leverage(self, notional: _DecimalLike) -> Decimal:
        """The max leverage of the tier ``notional`` falls in (``floor <= N < cap``)."""
    def tier_index(self, notional: _DecimalLike) -> int:
        """The 0-based index of the tier ``notional`` falls in."""
    def is_open_at(self, notional: _DecimalLike) -> bool:
        """Whether a position may grow to ``notional`` (not beyond the highest active tier)."""
    def liquidation_price(
        self,
        side: _Side,
        quantity: _DecimalLike,
        entry: _DecimalLike,
        margin: _DecimalLike,
        multiplier: _DecimalLike = 1,
    ) -> Optional[Decimal]:
        """The mark at which an isolated one-way position is liquidated, or None when no
        positive price liquidates it. ``side`` is the position's direction (BUY = long);
        ``multiplier`` is the contract multiplier. Exact, not rounded to a tick."""
    @property
    def maintenance_amounts(self) -> List[Decimal]:
        """The maintenance amount ``cum_k`` of each tier."""
    @property
    def tiers(self) -> List[Dict[str, Any]]:
        """The tiers as dicts, in the constructor's shape."""
    def __len__(self) -> int: ...

def trade_metrics_buffers(
    accounts: Union[List[str], Tuple[str, bytes, int]],
    opened_at_ns: bytes,
    closed_at_ns: bytes,
    profit: bytes,
    commission: Optional[bytes] = None,
    swap: Optional[bytes] = None,
    stop_loss: Optional[bytes] = None,
    take_profit: Optional[bytes] = None,
    *,
    initial_balance: Optional[_DecimalLike] = None,
    hft_seconds: int = 60,
    day_offset_minutes: int = 0,
    pnl_basis: str = "net",
    window_size: Optional[int] = None,
    threads: Optional[int] = None,
) -> List["AccountMetrics"]:
    """Per-account metrics over columns packed as native-endian 64-bit buffers (``accounts``
    as ``str`` per row or ``(kind, bytes, width)``); ``riskgate.trade_metrics`` is the
    friendly form."""

def trade_metrics_arrow(
    data: Union[ArrowStreamExportable, ArrowArrayExportable],
    accounts: str,
    opened_at: str,
    closed_at: str,
    profit: str,
    commission: Optional[str] = None,
    swap: Optional[str] = None,
    stop_loss: Optional[str] = None,
    take_profit: Optional[str] = None,
    *,
    initial_balance: Optional[_DecimalLike] = None,
    hft_seconds: int = 60,
    day_offset_minutes: int = 0,
    pnl_basis: str = "net",
    window_size: Optional[int] = None,
    threads: Optional[int] = None,
) -> List["AccountMetrics"]:
    """Per-account metrics over ``data`` (any object exporting Arrow), reading the columns
    of the given names in place; ``riskgate.trade_metrics`` is the friendly form. A
    missing required column or an unreadable column type raises ``InvalidInput`` naming
    the column and the type."""

def metrics_to_arrow(results: Sequence["AccountMetrics"]) -> ArrowStreamExportable:
    """``results`` as an Arrow table (``__arrow_c_stream__``), one row per result; money
    as ``decimal128(38, s)``, or exact text where it would need more than 38 digits."""

def risk_report_arrow(
    trades: Union[ArrowStreamExportable, ArrowArrayExportable],
    accounts: Optional[Union[ArrowStreamExportable, ArrowArrayExportable]] = None,
    config: Optional[Tuple[str, str]] = None,
) -> Tuple[str, List[str]]:
    """The report of ``trades`` (and ``accounts``) as the JSON text of ``risk report
    --format json`` and the skipped rows' errors; ``config`` is ``(text, name)`` of a
    config file (JSON when ``name`` ends in ``.json``, else TOML)."""

@final
class AccountMetrics:
    """The trade metrics of one account, computed by the Rust core. Fields become Python
    values (``int``, ``Decimal``, ``datetime.date``, ``None``) when read."""

    FIELDS: ClassVar[Tuple[str, ...]]
    """The field names, in order (the columns of ``MetricsResult.to_pandas()``)."""
    @property
    def account(self) -> str:
        """The account (empty from an accumulator)."""
    @property
    def trades(self) -> int:
        """Closed trades."""
    @property
    def wins(self) -> int:
        """Trades with net P&L > 0."""
    @property
    def losses(self) -> int:
        """Trades with net P&L < 0."""
    @property
    def break_even(self) -> int:
        """Trades with net P&L = 0."""
    @property
    def win_ratio(self) -> Decimal:
        """``wins / trades``."""
    @property
    def gross_profit(self) -> Decimal:
        """Sum of winning net P&L."""
    @property
    def gross_loss(self) -> Decimal:
        """Sum of losing net P&L: zero or negative, as in Rust and the ``risk`` CLI."""
    @property
    def net_profit(self) -> Decimal:
        """Sum of net P&L."""
    @property
    def profit_factor(self) -> Optional[Decimal]:
        """``gross_profit / |gross_loss|``; None without losses."""
    @property
    def average_win(self) -> Optional[Decimal]:
        """Mean winning net P&L; None without wins."""
    @property
    def average_loss(self) -> Optional[Decimal]:
        """Mean losing net P&L (<= 0, the sign of gross_loss); None without losses."""
    @property
    def expectancy(self) -> Optional[Decimal]:
        """Mean net P&L per trade."""
    @property
    def largest_win(self) -> Optional[Decimal]:
        """The largest winning net P&L."""
    @property
    def largest_loss(self) -> Optional[Decimal]:
        """The most negative losing net P&L (<= 0); None without losses."""
    @property
    def max_consecutive_losses(self) -> int:
        """The longest run of losing trades, in closing order."""
    @property
    def average_holding_seconds(self) -> Optional[Decimal]:
        """Mean holding time in seconds."""
    @property
    def hft_trades(self) -> int:
        """Trades held less than the HFT threshold."""
    @property
    def hft_ratio(self) -> Decimal:
        """``hft_trades / trades``."""
    @property
    def stop_loss_trades(self) -> int:
        """Trades with a stop-loss set."""
    @property
    def stop_loss_ratio(self) -> Decimal:
        """``stop_loss_trades / trades``."""
    @property
    def take_profit_trades(self) -> int:
        """Trades with a take-profit set."""
    @property
    def take_profit_ratio(self) -> Decimal:
        """``take_profit_trades / trades``."""
    @property
    def max_concurrent_trades(self) -> int:
        """The most trades open at one instant."""
    @property
    def max_relative_drawdown(self) -> Decimal:
        """The deepest fall of the balance from its peak, relative to the peak (at most 1)."""
    @property
    def max_drawdown(self) -> Decimal:
        """The deepest fall of the balance from its peak, in money."""
    @property
    def final_balance(self) -> Decimal:
        """Initial balance plus net profit."""
    @property
    def max_daily_loss(self) -> Decimal:
        """The worst day's loss from the day's opening balance (a positive number, 0 if none)."""
    @property
    def max_daily_loss_ratio(self) -> Decimal:
        """``max_daily_loss`` relative to that day's opening balance."""
    @property
    def max_daily_loss_day(self) -> Optional[date]:
        """The day of ``max_daily_loss``; None without a losing day."""
    def to_dict(self) -> Dict[str, Any]:
        """Every field as a dict, in ``FIELDS`` order."""
    @staticmethod
    def columns(results: Sequence[AccountMetrics]) -> Dict[str, List[Any]]:
        """The fields of ``results`` column by column, ``{name: [value of each result]}``
        in ``FIELDS`` order (what ``MetricsResult.to_pandas()`` builds its frame from)."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class _MetricsAccumulator:
    """The Rust accumulator behind ``riskgate.MetricsAccumulator``."""
    def __new__(
        cls,
        *,
        initial_balance: Optional[_DecimalLike] = None,
        hft_seconds: int = 60,
        day_offset_minutes: int = 0,
        pnl_basis: str = "net",
        window_size: Optional[int] = None,
    ) -> "_MetricsAccumulator": ...
    def push(
        self,
        opened_at: datetime,
        closed_at: datetime,
        profit: _DecimalLike,
        commission: Optional[_DecimalLike] = None,
        swap: Optional[_DecimalLike] = None,
        stop_loss: Optional[_DecimalLike] = None,
        take_profit: Optional[_DecimalLike] = None,
    ) -> None: ...
    def extend_arrow(
        self,
        data: Union[ArrowStreamExportable, ArrowArrayExportable],
        opened_at: str,
        closed_at: str,
        profit: str,
        commission: Optional[str] = None,
        swap: Optional[str] = None,
        stop_loss: Optional[str] = None,
        take_profit: Optional[str] = None,
    ) -> None:
        """Adds every trade of ``data`` (any object exporting Arrow); a bad row adds nothing."""
    def extend_buffers(
        self,
        opened_at_ns: bytes,
        closed_at_ns: bytes,
        profit: bytes,
        commission: Optional[bytes] = None,
        swap: Optional[bytes] = None,
        stop_loss: Optional[bytes] = None,
        take_profit: Optional[bytes] = None,
    ) -> None:
        """Adds trades from packed native-endian 64-bit buffers; a bad row adds nothing."""
    def metrics(self) -> AccountMetrics: ...
    def __len__(self) -> int: ...
