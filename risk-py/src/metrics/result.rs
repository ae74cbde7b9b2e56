//! `AccountMetrics`, the per-account result: the core's `TradeMetrics` with a Python
//! getter per field, declared once.

use chrono::NaiveDate;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use risk_adapters::arrow::MetricKind;
use risk_core::metrics::{TradeMetrics, TradeValue};
use risk_core::Decimal;

use crate::convert::py_decimal;

/// A metric value as Python: `int`, `Decimal`, `datetime.date` or `None`.
fn to_py<'py>(py: Python<'py>, value: Option<TradeValue>) -> PyResult<Bound<'py, PyAny>> {
    match value {
        Some(TradeValue::Count(n)) => Ok(n.into_pyobject(py)?.into_any()),
        Some(TradeValue::Decimal(d)) => py_decimal(py, d),
        Some(TradeValue::Day(day)) => Ok(day.into_pyobject(py)?.into_any()),
        None => Ok(py.None().into_bound(py)),
    }
}

/// A `TradeMetrics` field's type as the value [`TradeMetrics::fields`] gives it (for the
/// typed getters).
trait Metric {
    /// The kind of value.
    const KIND: MetricKind;
    /// The value, `None` where undefined.
    fn value(self) -> Option<TradeValue>;
}

/// The kind of the field that `field` reads.
fn kind_of<T: Metric>(_field: impl Fn(&TradeMetrics) -> &T) -> MetricKind {
    T::KIND
}

impl Metric for u64 {
    const KIND: MetricKind = MetricKind::Count;
    fn value(self) -> Option<TradeValue> {
        Some(TradeValue::Count(self))
    }
}

impl Metric for Decimal {
    const KIND: MetricKind = MetricKind::Decimal;
    fn value(self) -> Option<TradeValue> {
        Some(TradeValue::Decimal(self))
    }
}

impl Metric for Option<Decimal> {
    const KIND: MetricKind = MetricKind::Decimal;
    fn value(self) -> Option<TradeValue> {
        self.map(TradeValue::Decimal)
    }
}

impl Metric for Option<NaiveDate> {
    const KIND: MetricKind = MetricKind::Day;
    fn value(self) -> Option<TradeValue> {
        self.map(TradeValue::Day)
    }
}

/// The field names of `AccountMetrics`, in order: `account`, then the core's
/// [`TradeMetrics::field_names`].
pub(super) fn field_names() -> impl Iterator<Item = &'static str> {
    std::iter::once("account").chain(TradeMetrics::field_names())
}

/// The trade metrics of one account; `account` is empty from an accumulator.
#[pyclass(name = "AccountMetrics", module = "riskgate", frozen, eq)]
#[derive(Debug, Clone, PartialEq)]
pub struct PyAccountMetrics {
    pub(super) account: String,
    pub(super) metrics: TradeMetrics,
}

/// Declares a getter per metric field; `FIELDS`, `to_dict`, `columns` and `__repr__`
/// render the core's one list ([`TradeMetrics::fields`]). The getters name every field of
/// `TradeMetrics` (checked by an exhaustive pattern), so a new core field fails to compile
/// here until it has a getter.
macro_rules! metric_fields {
    ($( $(#[doc = $doc:literal])+ $name:ident ),+ $(,)?) => {
        impl PyAccountMetrics {
            /// The kind of the metric field `name` (`None` for `account` or an unknown name).
            pub(super) fn kind(name: &str) -> Option<MetricKind> {
                match name {
                    $(stringify!($name) => Some(kind_of(|m: &TradeMetrics| &m.$name)),)+
                    _ => None,
                }
            }

            /// Every field as `(name, Python value)`, in `FIELDS` order.
            fn items<'py>(&self, py: Python<'py>) -> PyResult<Vec<(&'static str, Bound<'py, PyAny>)>> {
                let TradeMetrics { $($name: _),+ } = &self.metrics;
                let mut items = Vec::with_capacity(TradeMetrics::FIELD_COUNT + 1);
                items.push(("account", self.account.clone().into_pyobject(py)?.into_any()));
                for (name, value) in self.metrics.fields() {
                    items.push((name, to_py(py, value)?));
                }
                Ok(items)
            }
        }

        #[pymethods]
        impl PyAccountMetrics {
    /// The account (empty from an accumulator).
            #[getter]
            fn account(&self) -> &str {
                &self.account
            }

            /// The field names, in order (the columns of `MetricsResult.to_pandas()`).
            #[classattr]
            #[allow(non_snake_case)]
            fn FIELDS<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
                PyTuple::new(py, field_names().collect::<Vec<_>>())
            }

            /// Every field as a dict, in `FIELDS` order.
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                for (name, value) in self.items(py)? {
                    d.set_item(name, value)?;
                }
                Ok(d)
            }

            /// The fields of `results` column by column, `{name: [value of each result]}`
            /// in `FIELDS` order: what `MetricsResult.to_pandas()` builds its frame
            /// from, without a dict per account.
            #[staticmethod]
            fn columns<'py>(
                py: Python<'py>,
                results: Vec<PyRef<'py, Self>>,
            ) -> PyResult<Bound<'py, PyDict>> {
                let mut columns: Vec<Vec<Bound<'py, PyAny>>> =
                    field_names().map(|_| Vec::with_capacity(results.len())).collect();
                for result in &results {
                    for (column, (_, value)) in columns.iter_mut().zip(result.items(py)?) {
                        column.push(value);
                    }
                }
                let d = PyDict::new(py);
                for (name, column) in field_names().zip(columns) {
                    d.set_item(name, PyList::new(py, column)?)?;
                }
                Ok(d)
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let fields = self
                    .items(py)?
                    .into_iter()
                    .map(|(name, value)| Ok(format!("{name}={}", value.repr()?)))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(format!("AccountMetrics({})", fields.join(", ")))
            }

            $(
                $(#[doc = $doc])+
                #[getter]
                fn $name<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                    to_py(py, Metric::value(self.metrics.$name))
                }
            )+
        }
    };
}

metric_fields! {
    /// Closed trades.
    trades,
    /// Trades with net P&L > 0.
    wins,
    /// Trades with net P&L < 0.
    losses,
    /// Trades with net P&L = 0.
    break_even,
    /// `wins / trades`.
    win_ratio,
    /// Sum of winning net P&L.
    gross_profit,
    /// Sum of losing net P&L (<= 0: losses keep their sign).
    gross_loss,
    /// Sum of net P&L.
    net_profit,
    /// `gross_profit / gross_loss`; None without losses.
    profit_factor,
    /// Mean winning net P&L; None without wins.
    average_win,
    /// Mean losing net P&L (<= 0, the sign of gross_loss); None without losses.
    average_loss,
    /// Mean net P&L per trade.
    expectancy,
    /// The largest winning net P&L.
    largest_win,
    /// The most negative losing net P&L (<= 0); None without losses.
    largest_loss,
    /// The longest run of losing trades, in closing order.
    max_consecutive_losses,
    /// Mean holding time in seconds.
    average_holding_seconds,
    /// Trades held less than the HFT threshold.
    hft_trades,
    /// `hft_trades / trades`.
    hft_ratio,
    /// Trades with a stop-loss set.
    stop_loss_trades,
    /// `stop_loss_trades / trades`.
    stop_loss_ratio,
    /// Trades with a take-profit set.
    take_profit_trades,
    /// `take_profit_trades / trades`.
    take_profit_ratio,
    /// The most trades open at one instant.
    max_concurrent_trades,
    /// The deepest fall of the balance from its peak, relative to the peak (at most 1).
    max_relative_drawdown,
    /// The deepest fall of the balance from its peak, in money.
    max_drawdown,
    /// Initial balance plus net profit.
    final_balance,
    /// The worst day's loss from the day's opening balance (a positive number, 0 if none).
    max_daily_loss,
    /// `max_daily_loss` relative to that day's opening balance.
    max_daily_loss_ratio,
    /// The day of `max_daily_loss`; None without a losing day.
    max_daily_loss_day,
}
