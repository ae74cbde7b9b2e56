//! `riskgate.RiskEngine` and `riskgate.CheckResult`: the engine, its requests and events.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use risk_adapters::config_file::{from_json_value, ConfigFile, Format};
use risk_core::account::{AccountView, OpenOrder, Position, Reservation};
use risk_core::engine::{Applied, EngineEvent, RiskEngine};
use risk_core::ids::{AccountId, OrderId, Symbol, TraceId, UserId};
use risk_core::model::{OrderType, Side};
use risk_core::pretrade::{CheckRequest, CheckResponse};

use crate::convert::{
    py_decimal, py_opt_decimal, to_bool, to_decimal, to_enum, to_json, to_now, to_text, type_name,
    view_dict, view_list,
};
use crate::error::{self, invalid};
use crate::ladder::PyTierLadder;

macro_rules! key {
    ($py:expr, $name:literal) => {
        pyo3::intern!($py, $name)
    };
}

/// Reads the keys of a dict one by one and, at the end, refuses any key it did not read.
struct Fields<'a, 'py> {
    dict: &'a Bound<'py, PyDict>,
    what: &'static str,
    seen: usize,
}

impl<'py> Fields<'_, 'py> {
    fn opt(&mut self, key: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.dict.get_item(key)? {
            Some(v) => {
                self.seen += 1;
                Ok((!v.is_none()).then_some(v))
            }
            None => Ok(None),
        }
    }

    fn req(&mut self, key: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
        self.opt(key)?
            .ok_or_else(|| invalid(format!("{}: is required", key.to_cow().unwrap_or_default())))
    }

    fn flag(&mut self, key: &Bound<'py, PyString>, name: &str) -> PyResult<bool> {
        self.opt(key)?.map_or(Ok(false), |v| to_bool(&v, name))
    }

    fn finish(&self, allowed: &[&str]) -> PyResult<()> {
        if self.seen == self.dict.len() {
            return Ok(());
        }
        let mut unknown = Vec::new();
        for key in self.dict.keys() {
            let name = key
                .cast::<PyString>()
                .ok()
                .and_then(|s| s.to_cow().ok().map(std::borrow::Cow::into_owned))
                .unwrap_or_else(|| {
                    key.repr()
                        .map_or_else(|_| "?".to_owned(), |r| r.to_string())
                });
            if !allowed.contains(&name.as_str()) {
                unknown.push(format!("`{name}`"));
            }
        }
        Err(invalid(format!(
            "{}: unknown key {}; allowed: {}",
            self.what,
            unknown.join(", "),
            allowed.join(", ")
        )))
    }
}

const REQUEST_KEYS: &[&str] = &[
    "user_id",
    "account_id",
    "order_id",
    "symbol",
    "side",
    "order_type",
    "quantity",
    "price",
    "leverage",
    "reduce_only",
    "post_only",
    "trace_id",
];

/// The side; string literals (interned by Python) are recognized without decoding.
fn side(value: &Bound<'_, PyAny>) -> PyResult<Side> {
    let py = value.py();
    if value.is(key!(py, "BUY")) {
        Ok(Side::Buy)
    } else if value.is(key!(py, "SELL")) {
        Ok(Side::Sell)
    } else {
        to_enum(value, "side")
    }
}

/// The order type; like [`side`].
fn order_type(value: &Bound<'_, PyAny>) -> PyResult<OrderType> {
    let py = value.py();
    if value.is(key!(py, "LIMIT")) {
        Ok(OrderType::Limit)
    } else if value.is(key!(py, "MARKET")) {
        Ok(OrderType::Market)
    } else {
        to_enum(value, "order_type")
    }
}

/// A check request from its dict form (see the `RiskEngine.check` docs).
fn parse_request(dict: &Bound<'_, PyDict>) -> PyResult<CheckRequest> {
    let py = dict.py();
    let mut f = Fields {
        dict,
        what: "request",
        seen: 0,
    };
    // Identifiers are built straight from the borrowed UTF-8 (one allocation each).
    let user_id = UserId::new(to_text(&f.req(key!(py, "user_id"))?, "user_id")?);
    let account_id = AccountId::new(to_text(&f.req(key!(py, "account_id"))?, "account_id")?);
    let order_id = OrderId::new(to_text(&f.req(key!(py, "order_id"))?, "order_id")?);
    let symbol = Symbol::new(to_text(&f.req(key!(py, "symbol"))?, "symbol")?);
    let side = side(&f.req(key!(py, "side"))?)?;
    let quantity = to_decimal(&f.req(key!(py, "quantity"))?, "quantity")?;
    let price = match f.opt(key!(py, "price"))? {
        Some(p) => Some(to_decimal(&p, "price")?),
        None => None,
    };
    // Required, as on every surface: a risk gate does not guess the type or the leverage.
    let order_type = order_type(&f.req(key!(py, "order_type"))?)?;
    let leverage = to_decimal(&f.req(key!(py, "leverage"))?, "leverage")?;
    let reduce_only = f.flag(key!(py, "reduce_only"), "reduce_only")?;
    let post_only = f.flag(key!(py, "post_only"), "post_only")?;
    let trace_id = match f.opt(key!(py, "trace_id"))? {
        Some(t) => TraceId::new(to_text(&t, "trace_id")?),
        None => TraceId::new(""),
    };
    f.finish(REQUEST_KEYS)?;
    Ok(CheckRequest {
        user_id,
        account_id,
        order_id,
        symbol,
        side,
        order_type,
        quantity,
        price,
        leverage,
        reduce_only,
        post_only,
        trace_id,
    })
}

/// An engine event from its dict form: the core's serde form of [`EngineEvent`] (see the
/// `RiskEngine.apply` docs), read by the same constructors as a config file. A mark
/// without `at` is stamped with the current time.
fn parse_event(dict: &Bound<'_, PyDict>) -> PyResult<EngineEvent> {
    let mut json = to_json(dict.as_any(), "")?;
    if let Some(map) = json.as_object_mut() {
        if map.get("type").and_then(serde_json::Value::as_str) == Some("mark")
            && map.get("at").is_none_or(serde_json::Value::is_null)
        {
            map.insert(
                "at".to_owned(),
                serde_json::Value::String(crate::convert::utc_now().to_rfc3339()),
            );
        }
    }
    from_json_value(json).map_err(|e| invalid(e.message))
}

/// The pre-trade risk engine.
///
/// Build it from a config dict, or from the path of a TOML/JSON config file in the
/// risk-server format. Feed it state with `apply(event)` and gate orders with
/// `check(request)`. Thread-safe; all decimals are exact.
#[pyclass(name = "RiskEngine", module = "riskgate", frozen)]
pub struct PyRiskEngine {
    inner: RiskEngine,
}

#[pymethods]
impl PyRiskEngine {
    #[new]
    #[pyo3(signature = (config, *, now = None))]
    fn new(config: &Bound<'_, PyAny>, now: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let now = to_now(now, "now")?;
        let (file, origin) = if config.is_instance_of::<PyDict>() {
            let json = to_json(config, "config")?;
            let text = serde_json::to_string(&json).map_err(|e| invalid(format!("config: {e}")))?;
            let origin = "<dict>".to_owned();
            let file = ConfigFile::parse(&text, Format::Json, &origin)
                .map_err(|e| error::config_file(&e))?;
            (file, origin)
        } else if let Ok(path) = config.extract::<PathBuf>() {
            let file = ConfigFile::load(&path).map_err(|e| error::config_file(&e))?;
            (file, path.display().to_string())
        } else {
            return Err(invalid(format!(
                "config: expected a dict or a path (str or os.PathLike), got {}",
                type_name(config)
            )));
        };
        let inner = file
            .into_engine(now, &origin)
            .map_err(|e| error::config_file(&e))?;
        Ok(Self { inner })
    }

    /// Checks an order; see the stub for the request's keys.
    #[pyo3(signature = (request, now = None, reserve = false))]
    fn check(
        &self,
        request: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
        reserve: bool,
    ) -> PyResult<PyCheckResult> {
        let Ok(dict) = request.cast::<PyDict>() else {
            return Err(invalid(format!(
                "request: expected a dict, got {}",
                type_name(request)
            )));
        };
        let request = parse_request(dict)?;
        let now = to_now(now, "now")?;
        let response = if reserve {
            self.inner.check_and_reserve(&request, now)
        } else {
            self.inner.check(&request, now)
        };
        Ok(PyCheckResult { inner: response })
    }

    /// Applies one event; returns "applied", "duplicate" or "stale".
    fn apply(&self, event: &Bound<'_, PyAny>) -> PyResult<&'static str> {
        let Ok(dict) = event.cast::<PyDict>() else {
            return Err(invalid(format!(
                "event: expected a dict, got {}",
                type_name(event)
            )));
        };
        let event = parse_event(dict)?;
        match self.inner.apply(&event) {
            Ok(Applied::Applied) => Ok("applied"),
            Ok(Applied::Duplicate { .. }) => Ok("duplicate"),
            Ok(_) => Ok("stale"),
            Err(e) => Err(error::event(&e)),
        }
    }

    /// The margin-tier ladder in force for `symbol` (the default ladder when it has none).
    fn ladder(&self, symbol: &str) -> PyTierLadder {
        PyTierLadder::from_ladder(self.inner.config().ladder(&Symbol::new(symbol)).clone())
    }

    /// A copy of an account's state as a dict, or None when the engine does not know it:
    /// the core's `AccountView`, items rendered from their `fields()`.
    fn account<'py>(
        &self,
        py: Python<'py>,
        account_id: &str,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some((a, last_seq)) = self.inner.account(&AccountId::new(account_id)) else {
            return Ok(None);
        };
        let AccountView {
            account_id,
            user_id,
            profile,
            wallet_balance,
            positions,
            open_orders,
            reservations,
            last_seq,
        } = a.view(last_seq);
        let d = PyDict::new(py);
        d.set_item("account_id", account_id.as_str())?;
        d.set_item("user_id", user_id.as_str())?;
        d.set_item("last_seq", last_seq)?;
        d.set_item("profile", view_dict(py, profile.fields())?)?;
        d.set_item("wallet_balance", py_decimal(py, wallet_balance.get())?)?;
        d.set_item(
            "positions",
            view_list(py, positions.iter().map(Position::fields))?,
        )?;
        d.set_item(
            "open_orders",
            view_list(py, open_orders.iter().map(OpenOrder::fields))?,
        )?;
        d.set_item(
            "reservations",
            view_list(py, reservations.iter().map(Reservation::fields))?,
        )?;
        Ok(Some(d))
    }

    /// The number of accounts the engine holds.
    #[getter]
    fn account_count(&self) -> usize {
        self.inner.account_count()
    }

    fn __repr__(&self) -> String {
        format!("RiskEngine(accounts={})", self.inner.account_count())
    }
}

/// The answer to a pre-trade check. Fields are converted to Python on access.
#[pyclass(name = "CheckResult", module = "riskgate", frozen)]
pub struct PyCheckResult {
    inner: CheckResponse,
}

#[pymethods]
impl PyCheckResult {
    /// "APPROVED", "REJECTED" or "FLAGGED".
    #[getter]
    fn decision(&self) -> &'static str {
        self.inner.decision.as_str()
    }

    /// True when the order may go to the market (approved or flagged).
    #[getter]
    fn accepted(&self) -> bool {
        self.inner.is_accepted()
    }

    /// The reject reason (e.g. "INSUFFICIENT_MARGIN") when rejected, else None.
    #[getter]
    fn reject_reason(&self) -> Option<&'static str> {
        self.inner.reject_reason.map(|r| r.as_str())
    }

    /// A human-readable explanation naming the figures that decided.
    #[getter]
    fn message(&self) -> String {
        self.inner.message.to_string()
    }

    /// Projected margin ratio after the fill, when computed and bounded.
    #[getter]
    fn projected_margin_ratio<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_opt_decimal(py, self.inner.projected_margin_ratio())
    }

    /// Initial margin the order needs, when computed.
    #[getter]
    fn required_initial_margin<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_opt_decimal(py, self.inner.required_initial_margin())
    }

    /// The projected margin ratio reaches the liquidation threshold (or is unbounded).
    #[getter]
    fn liquidation_risk(&self) -> bool {
        self.inner.liquidation_risk
    }

    /// The projected margin ratio reaches the margin-call threshold.
    #[getter]
    fn margin_call(&self) -> bool {
        self.inner.margin_call
    }

    /// Ids of the rules that fired, in rule-id order.
    #[getter]
    fn rule_hits(&self) -> Vec<&str> {
        self.inner
            .rule_hits
            .iter()
            .map(|h| h.rule_id.as_str())
            .collect()
    }

    /// Every rule hit with its figures, as dicts.
    #[getter]
    fn rule_hit_details<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for h in &self.inner.rule_hits {
            let d = PyDict::new(py);
            d.set_item("rule_id", h.rule_id.as_str())?;
            d.set_item("metric", h.metric.as_str())?;
            d.set_item("value", py_decimal(py, h.value)?)?;
            d.set_item("operator", h.operator.as_str())?;
            d.set_item("threshold", py_decimal(py, h.threshold)?)?;
            d.set_item("severity", h.severity.as_str())?;
            d.set_item("action", h.action.as_str())?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// The request's trace id.
    #[getter]
    fn trace_id(&self) -> &str {
        self.inner.trace_id.as_str()
    }

    /// The request's account id.
    #[getter]
    fn account_id(&self) -> &str {
        self.inner.account_id.as_str()
    }

    /// The request's order id.
    #[getter]
    fn order_id(&self) -> &str {
        self.inner.order_id.as_str()
    }

    /// The request's symbol.
    #[getter]
    fn symbol(&self) -> &str {
        self.inner.symbol.as_str()
    }

    /// The `now` the check ran at (UTC).
    #[getter]
    fn checked_at(&self) -> DateTime<Utc> {
        self.inner.checked_at
    }

    /// The figures the check computed (empty when it stopped before pricing the order).
    #[getter]
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        if let Some(m) = &self.inner.metrics {
            for (name, value) in m.fields() {
                d.set_item(name, py_opt_decimal(py, value)?)?;
            }
        }
        Ok(d)
    }

    /// The result as a plain dict (for logs and DataFrames).
    fn to_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let this = slf.get();
        let d = PyDict::new(py);
        d.set_item("decision", this.decision())?;
        d.set_item("reject_reason", this.reject_reason())?;
        d.set_item("message", this.message())?;
        d.set_item("projected_margin_ratio", this.projected_margin_ratio(py)?)?;
        d.set_item("required_initial_margin", this.required_initial_margin(py)?)?;
        d.set_item("liquidation_risk", this.liquidation_risk())?;
        d.set_item("margin_call", this.margin_call())?;
        d.set_item("rule_hits", this.rule_hits())?;
        d.set_item("trace_id", this.trace_id())?;
        d.set_item("account_id", this.account_id())?;
        d.set_item("order_id", this.order_id())?;
        d.set_item("symbol", this.symbol())?;
        d.set_item("checked_at", this.checked_at())?;
        d.set_item("metrics", this.metrics(py)?)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let reason = self
            .inner
            .reject_reason
            .map_or_else(|| "None".to_owned(), |r| format!("'{r}'"));
        format!(
            "CheckResult(decision='{}', reject_reason={reason}, message={:?})",
            self.inner.decision, self.inner.message
        )
    }
}
