//! Trade metrics from Python: a columnar batch function, a streaming accumulator and the
//! per-account result class.
//!
//! Both forms hand the work to [`risk_core::metrics`]; this module only converts.
//!
//! * The batch function takes each numeric column as one `bytes` buffer of native-endian
//!   64-bit values (the Python layer in `riskgate/_metrics.py` gets them from NumPy with
//!   one copy per column, or from `array.array` without NumPy), so no Python object is
//!   made per trade. Money is taken exactly from each float's shortest round-trip text,
//!   and a row's net P&L is the exact sum of its money
//!   ([`decimal_sum_from_f64`](risk_core::num::decimal_sum_from_f64)). Accounts are
//!   grouped by their raw values (64-bit integers, NumPy fixed-width strings, or Python
//!   strings) and named once per account. All of it runs with the GIL released.
//! * Results are [`PyAccountMetrics`] objects holding the core's
//!   [`TradeMetrics`](risk_core::metrics::TradeMetrics); a field becomes a Python value
//!   (`int`, `Decimal`, `datetime.date`, `None`) when it is read.
//!
//! `batch` holds the batch function, `accounts` the account column and its grouping,
//! `result` the result class and `accumulator` the streaming form.

mod accounts;
mod accumulator;
mod arrow_in;
mod arrow_out;
mod batch;
mod columns;
mod result;

pub use accumulator::PyMetricsAccumulator;
pub use arrow_in::trade_metrics_arrow;
pub use arrow_out::metrics_to_arrow;
pub use batch::trade_metrics_buffers;
pub use result::PyAccountMetrics;

use pyo3::prelude::*;
use risk_core::metrics::MetricsConfig;

use crate::convert::to_decimal;
use crate::error::invalid;

/// The metric settings, validated: `pnl_basis` is `net` or `gross`, `window_size` `None`
/// (the whole history) or at least 1.
fn config(
    initial_balance: Option<&Bound<'_, PyAny>>,
    hft_seconds: u32,
    day_offset_minutes: i32,
    pnl_basis: &str,
    window_size: Option<u32>,
) -> PyResult<MetricsConfig> {
    let mut config = MetricsConfig::default();
    if let Some(balance) = initial_balance {
        config.initial_balance = to_decimal(balance, "initial_balance")?;
    }
    config.hft_threshold_seconds = hft_seconds;
    config.day_offset_minutes = day_offset_minutes;
    config.pnl_basis = pnl_basis
        .parse()
        .map_err(|e| invalid(format!("pnl_basis: {e}")))?;
    config.window_size = match window_size {
        None => None,
        Some(n) => Some(
            std::num::NonZeroU32::new(n)
                .ok_or_else(|| invalid("window_size: must be at least 1 (None: whole history)"))?,
        ),
    };
    config.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(config)
}
