//! # risk-py
//!
//! The `riskgate` Python package's extension module, `riskgate._riskgate`.
//!
//! The bindings only convert: every figure is computed by [`risk_core`], and configs are
//! read by [`risk_adapters::config_file`], in exactly the format `risk-server` reads.
//! pyo3 appears in this crate only; the core types carry no Python attributes.
//!
//! * `RiskEngine` (config, `apply(event)`, `check(request)`) and `CheckResult` live in
//!   [`engine`];
//! * `TierLadder` in [`ladder`];
//! * trade metrics (`trade_metrics_buffers`, `trade_metrics_arrow`, `metrics_to_arrow`,
//!   `AccountMetrics`, `_MetricsAccumulator`) in [`metrics`], with Arrow in and out
//!   through the PyCapsule interface (`pyo3-arrow`);
//! * the risk report from DataFrames (`risk_report_arrow`, the report of `risk report`)
//!   in [`report`];
//! * decimals (`decimal.Decimal` in and out, exactly), datetimes and JSON values in
//!   [`convert`];
//! * `RiskgateError` and its subclasses `ConfigError`, `InvalidInput`, `EventError` in
//!   [`error`].
//!
//! Built with maturin (`risk-py/pyproject.toml`) as an abi3 wheel for CPython 3.10+.

pub mod convert;
pub mod engine;
pub mod error;
pub mod ladder;
pub mod metrics;
pub mod report;

use pyo3::prelude::*;

/// Pre-trade risk checks and margin-tier arithmetic, exact to the decimal.
#[pymodule]
#[pyo3(name = "_riskgate")]
fn riskgate_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<engine::PyRiskEngine>()?;
    m.add_class::<engine::PyCheckResult>()?;
    m.add_class::<ladder::PyTierLadder>()?;
    m.add_class::<metrics::PyMetricsAccumulator>()?;
    m.add_class::<metrics::PyAccountMetrics>()?;
    m.add_function(wrap_pyfunction!(metrics::trade_metrics_buffers, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::trade_metrics_arrow, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::metrics_to_arrow, m)?)?;
    m.add_function(wrap_pyfunction!(report::risk_report_arrow, m)?)?;
    m.add("RiskgateError", py.get_type::<error::RiskgateError>())?;
    m.add("ConfigError", py.get_type::<error::ConfigError>())?;
    m.add("InvalidInput", py.get_type::<error::InvalidInput>())?;
    m.add("EventError", py.get_type::<error::EventError>())?;
    Ok(())
}
