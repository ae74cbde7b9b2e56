//! Conversions at the boundary: decimals, datetimes, enumerations and JSON-shaped values.
//!
//! * Decimals enter as `decimal.Decimal`, `str` or `int`, or as `float` converted from its
//!   shortest `repr` (so `0.1` is `Decimal("0.1")`, never `0.1000000000000000055...`).
//!   `bool`, NaN and infinities are refused. They leave as `decimal.Decimal`, built from
//!   the exact decimal text.
//! * Datetimes must be timezone-aware; any tzinfo works (it is normalized to UTC).

use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use risk_core::account::ViewValue;
use risk_core::num::{decimal_from_f64, parse_decimal, NumberError};
use risk_core::Decimal;
use serde_json::Value;

use crate::error::invalid;

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static EPOCH: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The `decimal.Decimal` class.
pub fn decimal_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DECIMAL.import(py, "decimal", "Decimal")
}

/// The text of a decimal-like Python value, or why it is not one.
fn decimal_text(value: &Bound<'_, PyAny>, field: &str) -> PyResult<DecimalText> {
    if let Ok(s) = value.cast::<PyString>() {
        // Borrowed UTF-8 (abi3 for 3.10+): parsed in place, no copy.
        return parse_decimal(s.to_str()?)
            .map(DecimalText::Exact)
            .map_err(|e| invalid(format!("{field}: {e}")));
    }
    if value.is_instance_of::<PyBool>() {
        return Err(invalid(format!(
            "{field}: expected a decimal (Decimal, str or int), got a bool"
        )));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(v) = value.extract::<i64>() {
            return Ok(DecimalText::Exact(Decimal::from(v)));
        }
        return Ok(DecimalText::Text(value.str()?.to_cow()?.into_owned()));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        // The shortest round-trip digits, as Python's repr has them (also for float
        // subclasses such as numpy.float64), without asking Python for the text.
        let v = f.value();
        return decimal_from_f64(v)
            .map(DecimalText::Exact)
            .map_err(|e| invalid(format!("{field}: {e}")));
    }
    if value.is_instance(decimal_type(value.py())?)? {
        return Ok(DecimalText::Text(value.str()?.to_cow()?.into_owned()));
    }
    // Integer-like objects (numpy.int64 and friends) through `__index__`.
    if value.hasattr(pyo3::intern!(value.py(), "__index__"))? {
        let int = value.call_method0(pyo3::intern!(value.py(), "__index__"))?;
        return decimal_text(&int, field);
    }
    Err(invalid(format!(
        "{field}: expected a decimal (Decimal, str, int or float), got {}",
        type_name(value)
    )))
}

enum DecimalText {
    Exact(Decimal),
    Text(String),
}

/// A decimal from a `Decimal`, `str`, `int` or `float` (from its repr).
///
/// # Errors
/// `InvalidInput` naming `field` when the value is of another type or not a finite decimal
/// that fits in 96 bits with at most 28 decimal places.
pub fn to_decimal(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Decimal> {
    match decimal_text(value, field)? {
        DecimalText::Exact(d) => Ok(d),
        DecimalText::Text(text) => {
            parse_decimal(&text).map_err(|e| invalid(format!("{field}: {e}")))
        }
    }
}

/// A checked core number (price, quantity, leverage...) from a decimal-like value.
///
/// # Errors
/// `InvalidInput` naming `field` when the value is not a decimal or out of range.
pub fn to_number<T>(
    value: &Bound<'_, PyAny>,
    field: &str,
    build: fn(Decimal) -> Result<T, NumberError>,
) -> PyResult<T> {
    build(to_decimal(value, field)?).map_err(|e| invalid(format!("{field}: {e}")))
}

/// A `decimal.Decimal` with exactly the value and scale of `value`.
pub fn py_decimal(py: Python<'_>, value: Decimal) -> PyResult<Bound<'_, PyAny>> {
    decimal_type(py)?.call1((value.to_string(),))
}

/// An account-view item ([`risk_core::account`]'s `fields()`) as a dict: names as keys,
/// decimals as `Decimal`, flags as `bool`, identifiers and enumeration names as `str`.
pub fn view_dict<'py, 'a>(
    py: Python<'py>,
    fields: impl IntoIterator<Item = (&'static str, ViewValue<'a>)>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, value) in fields {
        match value {
            ViewValue::Text(text) => d.set_item(name, text)?,
            ViewValue::Decimal(v) => d.set_item(name, py_decimal(py, v)?)?,
            ViewValue::Flag(flag) => d.set_item(name, flag)?,
        }
    }
    Ok(d)
}

/// Account-view items as a list of [`view_dict`]s.
pub fn view_list<'py, 'a, F>(
    py: Python<'py>,
    items: impl IntoIterator<Item = F>,
) -> PyResult<Bound<'py, PyList>>
where
    F: IntoIterator<Item = (&'static str, ViewValue<'a>)>,
{
    let list = PyList::empty(py);
    for fields in items {
        list.append(view_dict(py, fields)?)?;
    }
    Ok(list)
}

/// An optional decimal as `Decimal | None`.
pub fn py_opt_decimal(py: Python<'_>, value: Option<Decimal>) -> PyResult<Bound<'_, PyAny>> {
    match value {
        Some(v) => py_decimal(py, v),
        None => Ok(py.None().into_bound(py)),
    }
}

/// The current UTC time, read here in the bindings (the core never reads the clock).
pub fn utc_now() -> DateTime<Utc> {
    #[allow(clippy::disallowed_methods)] // the bindings are the place that reads the clock
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    elapsed
        .ok()
        .and_then(|d| TimeDelta::from_std(d).ok())
        .and_then(|d| DateTime::UNIX_EPOCH.checked_add_signed(d))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// A timezone-aware `datetime` as UTC, exact to the microsecond.
///
/// The instant is `value - 1970-01-01T00:00Z`, a `timedelta` computed by Python itself
/// (exact for any tzinfo: fixed offsets, zoneinfo, pytz, pandas; a naive datetime fails
/// the aware subtraction, which is reported as such), read from its `days`, `seconds`
/// and `microseconds` (a floor division by one microsecond, on Python integers, cost
/// about three times as much).
///
/// # Errors
/// `InvalidInput` for a naive datetime or a value that is not a datetime.
pub fn to_datetime(value: &Bound<'_, PyAny>, field: &str) -> PyResult<DateTime<Utc>> {
    let py = value.py();
    if !value.is_instance_of::<PyDateTime>() {
        return Err(invalid(format!(
            "{field}: expected a timezone-aware datetime, got {}",
            type_name(value)
        )));
    }
    let naive_or_far = || {
        invalid(format!(
            "{field}: the datetime is naive or out of range; pass a timezone-aware one (e.g. tzinfo=timezone.utc)"
        ))
    };
    let delta = value.sub(epoch(py)?).map_err(|_| naive_or_far())?;
    let part = |name: &Bound<'_, PyString>| -> PyResult<i64> {
        delta
            .getattr(name)
            .and_then(|v| v.extract::<i64>())
            .map_err(|_| naive_or_far())
    };
    let days = part(pyo3::intern!(py, "days"))?;
    let seconds = part(pyo3::intern!(py, "seconds"))?;
    let micros = part(pyo3::intern!(py, "microseconds"))?;
    // Datetimes span the years 1 to 9999: |days| < 3,000,000 and the sum fits an i64.
    let micros = (days * 86_400 + seconds) * 1_000_000 + micros;
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| invalid(format!("{field}: datetime out of range")))
}

/// The aware Unix epoch, built once.
fn epoch(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    let epoch = EPOCH.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        let datetime = py.import("datetime")?;
        let utc = datetime.getattr("timezone")?.getattr("utc")?;
        let epoch = datetime
            .getattr("datetime")?
            .call1((1970, 1, 1, 0, 0, 0, 0, utc))?;
        Ok(epoch.unbind())
    })?;
    Ok(epoch.bind(py))
}

/// An optional datetime; `None` is the current UTC time.
pub fn to_now(value: Option<&Bound<'_, PyAny>>, field: &str) -> PyResult<DateTime<Utc>> {
    match value {
        Some(v) if !v.is_none() => to_datetime(v, field),
        _ => Ok(utc_now()),
    }
}

/// A wire enumeration (`BUY`, `LIMIT`, `HALTED`...) from a string, case-insensitively.
pub fn to_enum<T>(value: &Bound<'_, PyAny>, field: &str) -> PyResult<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let Ok(text) = value.cast::<PyString>() else {
        return Err(invalid(format!(
            "{field}: expected a str, got {}",
            type_name(value)
        )));
    };
    T::from_str(&text.to_cow()?).map_err(|e| invalid(format!("{field}: {e}")))
}

/// A string, borrowed from the Python `str` (its UTF-8, which abi3 for 3.10+ lends
/// without a copy).
pub fn to_text<'a>(value: &'a Bound<'_, PyAny>, field: &str) -> PyResult<&'a str> {
    match value.cast::<PyString>() {
        Ok(s) => s.to_str(),
        Err(_) => Err(invalid(format!(
            "{field}: expected a str, got {}",
            type_name(value)
        ))),
    }
}

/// A bool (exactly `True` or `False`).
pub fn to_bool(value: &Bound<'_, PyAny>, field: &str) -> PyResult<bool> {
    match value.cast::<PyBool>() {
        Ok(b) => Ok(b.is_true()),
        Err(_) => Err(invalid(format!(
            "{field}: expected a bool, got {}",
            type_name(value)
        ))),
    }
}

/// A non-negative integer (sequence numbers).
pub fn to_u64(value: &Bound<'_, PyAny>, field: &str) -> PyResult<u64> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(invalid(format!(
            "{field}: expected a non-negative int, got {}",
            type_name(value)
        )));
    }
    value
        .extract::<u64>()
        .map_err(|_| invalid(format!("{field}: must be an int from 0 to 2**64-1")))
}

/// The Python type name of `value`, for messages.
pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// A JSON-shaped value for the serde-based config formats.
///
/// `dict` (str keys), `list`/`tuple`, `str`, `bool`, `int`, `None` map as in JSON; a
/// `Decimal` becomes its exact text, a `float` the text of its repr, and an aware
/// `datetime` its RFC 3339 text in UTC.
///
/// # Errors
/// `InvalidInput` naming the key path of the first value that has no JSON form.
pub fn to_json(value: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(v) = value.extract::<i64>() {
            return Ok(Value::from(v));
        }
        if let Ok(v) = value.extract::<u64>() {
            return Ok(Value::from(v));
        }
        return Ok(Value::String(value.str()?.to_cow()?.into_owned()));
    }
    if value.is_instance_of::<PyFloat>() || value.is_instance(decimal_type(value.py())?)? {
        return Ok(Value::String(to_decimal(value, path)?.to_string()));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = serde_json::Map::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(invalid(format!(
                    "{path}: dict keys must be str, got {}",
                    type_name(&k)
                )));
            };
            let key = key.to_cow()?.into_owned();
            let child = to_json(&v, &join(path, &key))?;
            map.insert(key, child);
        }
        return Ok(Value::Object(map));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in value.try_iter()?.enumerate() {
            items.push(to_json(&item?, &format!("{path}[{i}]"))?);
        }
        return Ok(Value::Array(items));
    }
    if value.is_instance_of::<PyDateTime>() {
        return Ok(Value::String(to_datetime(value, path)?.to_rfc3339()));
    }
    Err(invalid(format!(
        "{path}: {} has no config form (use dict, list, str, int, bool, Decimal, float, datetime or None)",
        type_name(value)
    )))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}
