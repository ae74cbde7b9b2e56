//! `_MetricsAccumulator`: one account's closed trades streamed in, giving the same
//! metrics as the batch function.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use risk_core::metrics::{epoch_nanos, MetricsAccumulator, PnlBasis, TradeFacts};
use risk_core::num::add_exact;
use risk_core::Decimal;

use super::arrow_in::{prepare, trade_names};
use super::batch::{on_basis, packed_chunk};
use super::columns::all_facts;
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

    /// Adds every trade of `data` (any object exporting Arrow), reading the columns of the
    /// given names as `trade_metrics_arrow` does. Every row is converted before any is
    /// added, so a bad row adds nothing; a running sum that overflows stops at that row
    /// (the rows before it stay added).
    #[pyo3(signature = (data, opened_at, closed_at, profit, commission=None, swap=None, stop_loss=None, take_profit=None))]
    #[allow(clippy::too_many_arguments)]
    fn extend_arrow(
        &mut self,
        data: &Bound<'_, PyAny>,
        opened_at: String,
        closed_at: String,
        profit: String,
        commission: Option<String>,
        swap: Option<String>,
        stop_loss: Option<String>,
        take_profit: Option<String>,
    ) -> PyResult<()> {
        let names = trade_names(
            opened_at,
            closed_at,
            profit,
            [commission, swap, stop_loss, take_profit],
        );
        let prepared = prepare(data, &names)?;
        let facts = all_facts(&on_basis(&prepared.chunks()?, self.inner.config()))?;
        self.push_all(&facts)
    }

    /// Adds trades given as packed native-endian 64-bit buffers, as
    /// `trade_metrics_buffers` takes them (without accounts); all or nothing as
    /// `extend_arrow`.
    #[pyo3(signature = (opened_at_ns, closed_at_ns, profit, commission=None, swap=None, stop_loss=None, take_profit=None))]
    #[allow(clippy::too_many_arguments)]
    fn extend_buffers(
        &mut self,
        opened_at_ns: &Bound<'_, PyBytes>,
        closed_at_ns: &Bound<'_, PyBytes>,
        profit: &Bound<'_, PyBytes>,
        commission: Option<&Bound<'_, PyBytes>>,
        swap: Option<&Bound<'_, PyBytes>>,
        stop_loss: Option<&Bound<'_, PyBytes>>,
        take_profit: Option<&Bound<'_, PyBytes>>,
    ) -> PyResult<()> {
        let n = profit.as_bytes().len() / 8;
        let chunk = packed_chunk(
            n,
            [opened_at_ns, closed_at_ns],
            profit,
            [commission, swap, stop_loss, take_profit],
        )?;
        let facts = all_facts(&on_basis(&[chunk], self.inner.config()))?;
        self.push_all(&facts)
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

impl PyMetricsAccumulator {
    /// Pushes `facts` in order; an overflow names the row (`facts` index) it stopped at.
    fn push_all(&mut self, facts: &[TradeFacts]) -> PyResult<()> {
        for (row, f) in facts.iter().enumerate() {
            self.inner
                .push_facts(f)
                .map_err(|e| invalid(format!("row {row}: {e}")))?;
        }
        Ok(())
    }
}
