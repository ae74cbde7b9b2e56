"""riskgate: exact pre-trade risk checks and margin-tier arithmetic, from Rust.

Every figure is computed by the riskgate Rust core with exact decimal arithmetic; this
package only converts. Decimals cross the boundary as :class:`decimal.Decimal`:

* inputs accept ``Decimal``, ``str`` and ``int`` everywhere a decimal is expected, and
  ``float`` too, converted from its shortest ``repr`` (``0.1`` becomes ``Decimal("0.1")``,
  never ``Decimal("0.1000000000000000055511151231257827")``; float subclasses such as
  ``numpy.float64`` too), and integer-like objects through ``__index__`` (``numpy.int64``);
  ``bool``, NaN and infinities raise :class:`InvalidInput`;
* outputs are always ``Decimal``, with the exact value and scale the core computed.

Datetimes must be timezone-aware (any tzinfo; they are normalized to UTC). ``now=None``
means the current UTC time, read by the bindings.

Errors raise :class:`RiskgateError` subclasses carrying the Rust message:
:class:`ConfigError` (config, config file, margin ladder), :class:`InvalidInput` (a value
that cannot be converted) and :class:`EventError` (an event the engine refused).

Trade metrics: :func:`trade_metrics` (DataFrame, NumPy arrays or sequences, per account)
and :class:`MetricsAccumulator` (one trade at a time), both computed by the Rust core.

The prop-firm risk report: :func:`risk_report` (trades and accounts DataFrames in, the
contract of ``risk report --format json`` out: accounts with scores, levels and signals,
users, challenges), built by the same Rust code as the command.
"""

from ._metrics import AccountMetrics, MetricsAccumulator, MetricsResult, trade_metrics
from ._report import RiskReport, risk_report
from ._riskgate import (
    CheckResult,
    ConfigError,
    EventError,
    InvalidInput,
    RiskEngine,
    RiskgateError,
    TierLadder,
    __version__,
)

__all__ = [
    "AccountMetrics",
    "CheckResult",
    "MetricsAccumulator",
    "MetricsResult",
    "RiskReport",
    "risk_report",
    "trade_metrics",
    "ConfigError",
    "EventError",
    "InvalidInput",
    "RiskEngine",
    "RiskgateError",
    "TierLadder",
    "__version__",
]
