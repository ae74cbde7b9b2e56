"""The prop-firm risk report from DataFrames: what ``risk report --format json`` prints.

:func:`risk_report` hands the tables to the Rust report builder behind the ``risk``
command (and the risk-signal service), so the accounts' metrics, scores, levels and
signals, the rulebook's status and signals, and the users' and challenges' aggregates are
the command's, computed by the same code. Nothing is scored in Python.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ._riskgate import ConfigError, risk_report_arrow

ConfigLike = Union[str, "os.PathLike[str]", Mapping[str, Any]]


class RiskReport:
    """The report: the JSON contract of ``risk report --format json`` as Python values.

    ``accounts`` (by score descending, then login), ``users`` and ``challenges`` are
    lists of the contract's objects (dicts with the same keys and values as the JSON:
    ratios and money are floats, as in the JSON, which is a report and not a ledger; use
    :func:`riskgate.trade_metrics` for exact ``Decimal`` metrics). ``row_errors`` names
    the rows that were skipped (at most 100 of them, each with its table, row and column)."""

    def __init__(self, text: str, row_errors: List[str]) -> None:
        self._text = text
        self._data: Dict[str, Any] = json.loads(text)
        self.row_errors: List[str] = row_errors

    @property
    def accounts(self) -> List[Dict[str, Any]]:
        """The account objects, by score descending, then login."""
        accounts: List[Dict[str, Any]] = self._data["accounts"]
        return accounts

    @property
    def users(self) -> List[Dict[str, Any]]:
        """The user objects, by score descending, then id."""
        users: List[Dict[str, Any]] = self._data["users"]
        return users

    @property
    def challenges(self) -> List[Dict[str, Any]]:
        """The challenge objects (known challenges only), by score descending, then id."""
        challenges: List[Dict[str, Any]] = self._data["challenges"]
        return challenges

    @property
    def skipped_rows(self) -> int:
        """Bad trade rows skipped (counted, as ``risk report`` counts them)."""
        return int(self._data["skipped_rows"])

    @property
    def duplicate_rows(self) -> int:
        """Trade rows dropped because their ``identifier`` was already seen."""
        return int(self._data["duplicate_rows"])

    def account(self, login: Union[str, int]) -> Dict[str, Any]:
        """The account object of ``login`` (what ``GET /risk-report/{login}`` serves).

        Raises ``KeyError`` for a login the report does not have."""
        wanted = str(login)
        for a in self.accounts:
            if a["account_login"] == wanted:
                return a
        raise KeyError(wanted)

    def to_dict(self) -> Dict[str, Any]:
        """The whole report as ``json.loads`` of ``risk report --format json`` gives it."""
        return json.loads(self._text)  # type: ignore[no-any-return]

    def to_json(self) -> str:
        """The report's JSON text, as ``risk report --format json`` prints it."""
        return self._text

    def __repr__(self) -> str:
        return (
            f"RiskReport(accounts={len(self.accounts)}, users={len(self.users)}, "
            f"challenges={len(self.challenges)}, skipped_rows={self.skipped_rows}, "
            f"duplicate_rows={self.duplicate_rows})"
        )


def _looks_like_toml(text: str) -> bool:
    return "\n" in text or "=" in text or text.lstrip().startswith("[")


def _config(config: Optional[ConfigLike]) -> Optional[Tuple[str, str]]:
    """The config as ``(text, name)``: the name ends in ``.json`` for JSON text."""
    if config is None:
        return None
    if isinstance(config, Mapping):
        return (json.dumps(dict(config), default=str), "config (dict).json")
    if isinstance(config, os.PathLike) or (isinstance(config, str) and not _looks_like_toml(config)):
        path = os.fspath(config)
        try:
            with open(path, encoding="utf-8") as f:
                return (f.read(), str(path))
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from e
    if isinstance(config, str):
        return (config, "config (TOML text)")
    raise TypeError(f"config: expected a path, a dict or TOML text, got {type(config).__name__}")


def _table(data: Any, what: str) -> Any:
    """``data`` as the extension reads it: any object exporting Arrow; a pandas frame
    through its own Arrow export (needs pyarrow), or as a pyarrow table built from it; a
    mapping of columns as a pyarrow table or pandas frame."""
    if isinstance(data, Mapping):
        try:
            import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

            return pa.table(dict(data))
        except ImportError:
            import pandas as pd  # type: ignore[import-untyped,unused-ignore]

            data = pd.DataFrame(dict(data))
    top = type(data).__module__.split(".")[0]
    exports = hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__")
    if top == "pandas":
        # pandas exports Arrow through pyarrow; without pyarrow, or before pandas 2.2, the
        # frame is not an Arrow exporter.
        if not _has_pyarrow():
            raise TypeError(f"{what}: a pandas DataFrame is read through Arrow: install pyarrow")
        if exports:
            return data
        import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

        return pa.Table.from_pandas(data, preserve_index=False)
    if not exports:
        raise TypeError(
            f"{what}: expected a DataFrame, a mapping of columns or an object exporting Arrow "
            f"(__arrow_c_stream__), got {type(data).__name__}"
        )
    return data


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def risk_report(
    trades: Any,
    accounts: Any = None,
    config: Optional[ConfigLike] = None,
) -> RiskReport:
    """The risk report of closed trades: ``risk report --format json`` from DataFrames.

    ``trades`` is a table in a prop firm's export format (the columns of ``shared/data``:
    ``identifier``, ``action``, ``open_price``, ``close_price``, ``commission``,
    ``lot_size``, ``opened_at``, ``closed_at``, ``price_sl``, ``price_tp``, ``profit``,
    ``swap``, ``symbol``, ``trading_account_login``; others are ignored) and ``accounts``
    optionally the accounts file's (``login``, ``user_id``, ``challenge_id``, optionally
    ``initial_balance``, ``account_size``, ``platform``, ``phase``, ``group_id``): a
    polars or pandas DataFrame, a pyarrow Table, RecordBatch or RecordBatchReader, a
    DuckDB relation, any object exporting Arrow, or a mapping of column name to values
    (NumPy arrays or lists). pandas frames are read through Arrow (needs pyarrow).

    Every row is read by the export reader of ``risk report``, with its rules: a bad row
    (a value that does not parse, ``closed_at`` before ``opened_at``, an empty login...)
    is skipped and named in ``row_errors``; a repeated ``identifier`` is dropped (the
    first row wins). Floats are taken by their shortest repr, a NaN or null as an empty
    cell (a missing ``price_sl``/``price_tp`` means not set; a missing money value skips
    the row); timestamps of any unit and time zone are converted to UTC, a naive one is
    taken as UTC; text times as in the file.

    ``config`` holds the settings of ``risk report --config``: the ``[engine.metrics]``,
    ``[engine.score]``, ``[rulebook]``, ``[rulebooks."<challenge_id>"]``, ``[detectors]``
    and ``[rule_weights]`` tables. Give it as a path (``str`` or ``os.PathLike``; a
    ``.json`` file is JSON, any other TOML), as TOML text (a ``str`` with a newline, an
    ``=`` or starting with ``[``), or as a dict of those tables (``{"engine": {"metrics":
    {"hft_threshold_seconds": 30}}}``; decimals may be strings or ``Decimal``).

    Raises :class:`riskgate.ConfigError` for a config that ``risk report`` refuses,
    :class:`riskgate.InvalidInput` for a table that cannot be read (a missing column, a
    column of a type with no text form) and ``TypeError`` for an object that is not a
    table.
    """
    return RiskReport(
        *risk_report_arrow(
            _table(trades, "trades"),
            None if accounts is None else _table(accounts, "accounts"),
            _config(config),
        )
    )
