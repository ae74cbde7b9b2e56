//! Trade metrics from Python: a columnar batch function and a streaming accumulator.
//!
//! Both hand the work to [`risk_core::metrics`]; this module converts columns and results.
//! The batch function takes one list per column (the Python layer in
//! `riskgate/_metrics.py` turns DataFrames and NumPy arrays into them), converts money
//! columns exactly (a float by its shortest round-trip text, the same rule as everywhere
//! in the bindings), groups by account and computes with the GIL released.

use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use risk_core::hash::FxHashMap;
use risk_core::metrics::{MetricsAccumulator, MetricsConfig, TradeFacts, TradeMetrics};
use risk_core::num::parse_decimal;
use risk_core::Decimal;

use crate::convert::{py_decimal, py_opt_decimal, to_datetime, to_decimal};
use crate::error::{arithmetic, invalid};

/// The metric settings, validated.
fn config(
    initial_balance: Option<&Bound<'_, PyAny>>,
    hft_seconds: u32,
    day_offset_minutes: i32,
) -> PyResult<MetricsConfig> {
    let mut config = MetricsConfig::default();
    if let Some(balance) = initial_balance {
        config.initial_balance = to_decimal(balance, "initial_balance")?;
    }
    config.hft_threshold_seconds = hft_seconds;
    config.day_offset_minutes = day_offset_minutes;
    config.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(config)
}

/// A float as the decimal its shortest round-trip text names (`0.1` is 0.1 exactly),
/// formatted on the stack (no allocation per value).
fn float_decimal(value: f64, field: &str, row: usize) -> PyResult<Decimal> {
    use std::io::Write;
    if value == 0.0 {
        return Ok(Decimal::ZERO);
    }
    if !value.is_finite() {
        return Err(invalid(format!(
            "{field}[{row}]: {value} is not a finite number"
        )));
    }
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let len = match write!(cursor, "{value}") {
        Ok(()) => usize::try_from(cursor.position()).unwrap_or(0),
        Err(_) => {
            return Err(invalid(format!(
                "{field}[{row}]: {value} has no short decimal form"
            )))
        }
    };
    let text = std::str::from_utf8(&buf[..len]).map_err(|e| invalid(e.to_string()))?;
    parse_decimal(text).map_err(|e| invalid(format!("{field}[{row}]: {e}")))
}

/// Nanoseconds since the epoch; pandas' missing time (NaT, `i64::MIN`) is refused.
fn timestamp(ns: i64, field: &str, row: usize) -> PyResult<DateTime<Utc>> {
    if ns == i64::MIN {
        return Err(invalid(format!("{field}[{row}]: missing time (NaT)")));
    }
    Ok(DateTime::from_timestamp_nanos(ns))
}

/// The metrics as a dict of Python values (ints, `Decimal`, `None`, `datetime.date`).
fn metrics_dict<'py>(py: Python<'py>, m: &TradeMetrics) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in [
        ("trades", m.trades),
        ("wins", m.wins),
        ("losses", m.losses),
        ("break_even", m.break_even),
        ("max_consecutive_losses", m.max_consecutive_losses),
        ("hft_trades", m.hft_trades),
        ("stop_loss_trades", m.stop_loss_trades),
        ("take_profit_trades", m.take_profit_trades),
        ("max_concurrent_trades", m.max_concurrent_trades),
    ] {
        d.set_item(k, v)?;
    }
    for (k, v) in [
        ("win_ratio", m.win_ratio),
        ("gross_profit", m.gross_profit),
        ("gross_loss", m.gross_loss),
        ("net_profit", m.net_profit),
        ("hft_ratio", m.hft_ratio),
        ("stop_loss_ratio", m.stop_loss_ratio),
        ("take_profit_ratio", m.take_profit_ratio),
        ("max_relative_drawdown", m.max_relative_drawdown),
        ("max_drawdown", m.max_drawdown),
        ("final_balance", m.final_balance),
        ("max_daily_loss", m.max_daily_loss),
        ("max_daily_loss_ratio", m.max_daily_loss_ratio),
    ] {
        d.set_item(k, py_decimal(py, v)?)?;
    }
    for (k, v) in [
        ("profit_factor", m.profit_factor),
        ("average_win", m.average_win),
        ("average_loss", m.average_loss),
        ("expectancy", m.expectancy),
        ("largest_win", m.largest_win),
        ("largest_loss", m.largest_loss),
        ("average_holding_seconds", m.average_holding_seconds),
    ] {
        d.set_item(k, py_opt_decimal(py, v)?)?;
    }
    d.set_item("max_daily_loss_day", m.max_daily_loss_day)?;
    Ok(d)
}

/// Per-account metrics over columns of closed trades. Returns `[(account, metrics dict)]`
/// sorted by account. See `riskgate.trade_metrics` for the friendly form.
#[pyfunction]
#[pyo3(signature = (accounts, opened_at_ns, closed_at_ns, profit, commission, swap, stop_loss_set, take_profit_set, *, initial_balance=None, hft_seconds=60, day_offset_minutes=0))]
#[allow(clippy::too_many_arguments)]
pub fn trade_metrics_columns<'py>(
    py: Python<'py>,
    accounts: Vec<String>,
    opened_at_ns: Vec<i64>,
    closed_at_ns: Vec<i64>,
    profit: Vec<f64>,
    commission: Vec<f64>,
    swap: Vec<f64>,
    stop_loss_set: Vec<bool>,
    take_profit_set: Vec<bool>,
    initial_balance: Option<&Bound<'py, PyAny>>,
    hft_seconds: u32,
    day_offset_minutes: i32,
) -> PyResult<Bound<'py, PyList>> {
    let config = config(initial_balance, hft_seconds, day_offset_minutes)?;
    let n = accounts.len();
    for (name, len) in [
        ("opened_at", opened_at_ns.len()),
        ("closed_at", closed_at_ns.len()),
        ("profit", profit.len()),
        ("commission", commission.len()),
        ("swap", swap.len()),
        ("stop_loss", stop_loss_set.len()),
        ("take_profit", take_profit_set.len()),
    ] {
        if len != n {
            return Err(invalid(format!(
                "column {name} has {len} values, accounts has {n}"
            )));
        }
    }
    let results = py.detach(move || -> PyResult<Vec<(String, TradeMetrics)>> {
        let mut groups: FxHashMap<&str, Vec<TradeFacts>> = FxHashMap::default();
        for i in 0..n {
            let opened_at = timestamp(opened_at_ns[i], "opened_at", i)?;
            let closed_at = timestamp(closed_at_ns[i], "closed_at", i)?;
            if closed_at < opened_at {
                return Err(invalid(format!("row {i}: closed before it was opened")));
            }
            let pnl = [
                ("profit", profit[i]),
                ("commission", commission[i]),
                ("swap", swap[i]),
            ]
            .into_iter()
            .try_fold(Decimal::ZERO, |sum, (field, v)| {
                let d = float_decimal(v, field, i)?;
                sum.checked_add(d)
                    .ok_or_else(|| invalid(format!("row {i}: net P&L overflows")))
            })?;
            groups
                .entry(accounts[i].as_str())
                .or_default()
                .push(TradeFacts {
                    opened_at,
                    closed_at,
                    net_pnl: pnl,
                    stop_loss_set: stop_loss_set[i],
                    take_profit_set: take_profit_set[i],
                });
        }
        let mut out = groups
            .into_iter()
            .map(|(account, facts)| {
                TradeMetrics::compute_facts(&facts, &config)
                    .map(|m| (account.to_owned(), m))
                    .map_err(|e| invalid(format!("account {account}: {e}")))
            })
            .collect::<PyResult<Vec<_>>>()?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    })?;
    let list = PyList::empty(py);
    for (account, m) in &results {
        list.append((account, metrics_dict(py, m)?))?;
    }
    Ok(list)
}

/// Streams closed trades of one account and gives the same metrics as the batch form for
/// the same trades, whatever order they arrive in.
#[pyclass(name = "_MetricsAccumulator", module = "riskgate._riskgate")]
pub struct PyMetricsAccumulator {
    inner: MetricsAccumulator,
}

#[pymethods]
impl PyMetricsAccumulator {
    #[new]
    #[pyo3(signature = (*, initial_balance=None, hft_seconds=60, day_offset_minutes=0))]
    fn new(
        initial_balance: Option<&Bound<'_, PyAny>>,
        hft_seconds: u32,
        day_offset_minutes: i32,
    ) -> PyResult<Self> {
        let config = config(initial_balance, hft_seconds, day_offset_minutes)?;
        let inner = MetricsAccumulator::new(config).map_err(|e| invalid(e.to_string()))?;
        Ok(Self { inner })
    }

    /// Adds one closed trade.
    #[pyo3(signature = (opened_at, closed_at, profit, commission=None, swap=None, stop_loss=None, take_profit=None))]
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        opened_at: &Bound<'_, PyAny>,
        closed_at: &Bound<'_, PyAny>,
        profit: &Bound<'_, PyAny>,
        commission: Option<&Bound<'_, PyAny>>,
        swap: Option<&Bound<'_, PyAny>>,
        stop_loss: Option<&Bound<'_, PyAny>>,
        take_profit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let opened_at = to_datetime(opened_at, "opened_at")?;
        let closed_at = to_datetime(closed_at, "closed_at")?;
        if closed_at < opened_at {
            return Err(invalid("closed_at is before opened_at"));
        }
        let opt = |v: Option<&Bound<'_, PyAny>>, f: &str| v.map(|v| to_decimal(v, f)).transpose();
        let mut net = to_decimal(profit, "profit")?;
        for (v, f) in [(commission, "commission"), (swap, "swap")] {
            if let Some(d) = opt(v, f)? {
                net = net
                    .checked_add(d)
                    .ok_or_else(|| invalid("net P&L overflows"))?;
            }
        }
        let set = |d: Option<Decimal>| d.is_some_and(|d| !d.is_zero());
        let facts = TradeFacts {
            opened_at,
            closed_at,
            net_pnl: net,
            stop_loss_set: set(opt(stop_loss, "stop_loss")?),
            take_profit_set: set(opt(take_profit, "take_profit")?),
        };
        self.inner.push_facts(&facts).map_err(|e| arithmetic(&e))
    }

    /// The metrics of every trade pushed so far, as a dict.
    fn metrics<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.inner.metrics().map_err(|e| invalid(e.to_string()))?;
        metrics_dict(py, &m)
    }

    fn __len__(&self) -> usize {
        usize::try_from(self.inner.len()).unwrap_or(usize::MAX)
    }
}
