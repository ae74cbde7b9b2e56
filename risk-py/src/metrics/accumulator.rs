//! `_MetricsAccumulator`: one account's closed trades streamed in, giving the same
//! metrics as the batch function.

use pyo3::prelude::*;
use risk_core::metrics::{epoch_nanos, MetricsAccumulator, PnlBasis, TradeFacts};
use risk_core::num::add_exact;
use risk_core::Decimal;

use super::config;
use super::result::PyAccountMetrics;
use crate::convert::{to_datetime, to_decimal};
use crate::error::{arithmetic, invalid};

/// Streams closed trades of one account and gives the same metrics as the batch form for
/// the same trades, whatever order they arrive in.
#[pyclass(name = "_MetricsAccumulator", module = "riskgate._riskgate")]
pub struct PyMetricsAccumulator {
    inner: MetricsAccumulator,
}

#[pymethods]
impl PyMetricsAccumulator {
    #[new]
    #[pyo3(signature = (*, initial_balance=None, hft_seconds=60, day_offset_minutes=0, pnl_basis="net", window_size=None))]
    fn new(
        initial_balance: Option<&Bound<'_, PyAny>>,
        hft_seconds: u32,
        day_offset_minutes: i32,
        pnl_basis: &str,
        window_size: Option<u32>,
    ) -> PyResult<Self> {
        let config = config(
            initial_balance,
            hft_seconds,
            day_offset_minutes,
            pnl_basis,
            window_size,
        )?;
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
        let gross = self.inner.config().pnl_basis == PnlBasis::Gross;
        for (v, f) in [(commission, "commission"), (swap, "swap")] {
            // Checked either way; added to the P&L on the net basis only.
            if let Some(d) = opt(v, f)?.filter(|_| !gross) {
                // Exact or refused, as in the batch form.
                net = add_exact(net, d).ok_or_else(|| {
                    invalid("net P&L (profit + commission + swap) has no exact decimal")
                })?;
            }
        }
        let set = |d: Option<Decimal>| d.is_some_and(|d| !d.is_zero());
        let nanos = |at, field| epoch_nanos(at).map_err(|e| invalid(format!("{field}: {e}")));
        let facts = TradeFacts {
            opened_at_ns: nanos(opened_at, "opened_at")?,
            closed_at_ns: nanos(closed_at, "closed_at")?,
            pnl: net,
            stop_loss_set: set(opt(stop_loss, "stop_loss")?),
            take_profit_set: set(opt(take_profit, "take_profit")?),
        };
        self.inner.push_facts(&facts).map_err(|e| arithmetic(&e))
    }

    /// The metrics of every trade pushed so far, or of the window's (`account` is empty).
    fn metrics(&mut self) -> PyResult<PyAccountMetrics> {
        let metrics = self.inner.metrics().map_err(|e| invalid(e.to_string()))?;
        Ok(PyAccountMetrics {
            account: String::new(),
            metrics,
        })
    }

    fn __len__(&self) -> usize {
        usize::try_from(self.inner.len()).unwrap_or(usize::MAX)
    }
}
