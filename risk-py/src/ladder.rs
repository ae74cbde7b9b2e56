//! `riskgate.TierLadder`: a validated margin-tier ladder.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use risk_core::margin::{Tier, TierLadder};
use risk_core::model::Side;
use risk_core::num::{Leverage, Money, Notional, Price, Quantity};
use risk_core::Decimal;

use crate::convert::{py_decimal, py_opt_decimal, to_decimal, to_enum, to_json, to_number};
use crate::error::{self, invalid};

/// A margin-tier ladder: progressive maintenance margin, tier leverage caps, initial margin
/// and the isolated liquidation price. Immutable.
#[pyclass(name = "TierLadder", module = "riskgate", frozen)]
pub struct PyTierLadder {
    inner: TierLadder,
}

impl PyTierLadder {
    /// Wraps a ladder already validated by the core.
    pub fn from_ladder(inner: TierLadder) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl PyTierLadder {
    /// Validates `tiers`: a list of dicts with `floor`, `cap` (None or absent for an
    /// unbounded last tier), `maintenance_rate`, `max_leverage` and optional `active`.
    #[new]
    fn new(tiers: &Bound<'_, PyAny>) -> PyResult<Self> {
        let json = to_json(tiers, "tiers")?;
        let tiers: Vec<Tier> =
            serde_json::from_value(json).map_err(|e| invalid(format!("tiers: {e}")))?;
        let inner = TierLadder::new(tiers).map_err(|e| error::ladder(&e))?;
        Ok(Self { inner })
    }

    /// Progressive maintenance margin of a position of `notional`.
    fn maintenance_margin<'py>(
        &self,
        py: Python<'py>,
        notional: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let notional = to_number(notional, "notional", Notional::new)?;
        let mm = self
            .inner
            .maintenance_margin(notional)
            .map_err(|e| error::arithmetic(&e))?;
        py_decimal(py, mm.get())
    }

    /// Initial margin: `notional / leverage`.
    fn initial_margin<'py>(
        &self,
        py: Python<'py>,
        notional: &Bound<'py, PyAny>,
        leverage: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let notional = to_number(notional, "notional", Notional::new)?;
        let leverage = to_number(leverage, "leverage", Leverage::new)?;
        let im =
            TierLadder::initial_margin(notional, leverage).map_err(|e| error::arithmetic(&e))?;
        py_decimal(py, im.get())
    }

    /// The maximum leverage of the tier `notional` falls in.
    fn max_leverage<'py>(
        &self,
        py: Python<'py>,
        notional: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let notional = to_number(notional, "notional", Notional::new)?;
        py_decimal(py, self.inner.max_leverage_at(notional).get())
    }

    /// The 0-based index of the tier `notional` falls in.
    fn tier_index(&self, notional: &Bound<'_, PyAny>) -> PyResult<usize> {
        let notional = to_number(notional, "notional", Notional::new)?;
        Ok(self.inner.tier_index(notional))
    }

    /// Whether a position may grow to `notional` (not beyond the highest active tier).
    fn is_open_at(&self, notional: &Bound<'_, PyAny>) -> PyResult<bool> {
        let notional = to_number(notional, "notional", Notional::new)?;
        Ok(self.inner.is_open_at(notional))
    }

    /// The isolated liquidation price of a position, or None when no positive price
    /// liquidates it.
    #[pyo3(
        signature = (side, quantity, entry, margin, multiplier = None),
        text_signature = "(self, side, quantity, entry, margin, multiplier=1)"
    )]
    fn liquidation_price<'py>(
        &self,
        py: Python<'py>,
        side: &Bound<'py, PyAny>,
        quantity: &Bound<'py, PyAny>,
        entry: &Bound<'py, PyAny>,
        margin: &Bound<'py, PyAny>,
        multiplier: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let side: Side = to_enum(side, "side")?;
        let quantity = to_number(quantity, "quantity", Quantity::new)?;
        let entry = to_number(entry, "entry", Price::new)?;
        let margin = to_number(margin, "margin", Money::new)?;
        let multiplier = match multiplier {
            Some(m) => to_decimal(m, "multiplier")?,
            None => Decimal::ONE,
        };
        let price = self
            .inner
            .liquidation_price_isolated(side, quantity, entry, margin, multiplier)
            .map_err(|e| error::arithmetic(&e))?;
        py_opt_decimal(py, price.map(Price::get))
    }

    /// The maintenance amount `cum_k` of each tier.
    #[getter]
    fn maintenance_amounts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for k in 0..self.inner.tiers().len() {
            list.append(py_decimal(py, self.inner.maintenance_amount(k).get())?)?;
        }
        Ok(list)
    }

    /// The tiers as dicts (the same shape the constructor takes).
    #[getter]
    fn tiers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for t in self.inner.tiers() {
            let d = PyDict::new(py);
            d.set_item("floor", py_decimal(py, t.floor.get())?)?;
            d.set_item("cap", py_opt_decimal(py, t.cap.map(Notional::get))?)?;
            d.set_item(
                "maintenance_rate",
                py_decimal(py, t.maintenance_rate.get())?,
            )?;
            d.set_item("max_leverage", py_decimal(py, t.max_leverage.get())?)?;
            d.set_item("active", t.active)?;
            list.append(d)?;
        }
        Ok(list)
    }

    fn __len__(&self) -> usize {
        self.inner.tiers().len()
    }

    fn __repr__(&self) -> String {
        format!("TierLadder(<{} tiers>)", self.inner.tiers().len())
    }
}
