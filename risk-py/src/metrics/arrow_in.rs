//! Trades from any object that exports Arrow through the PyCapsule interface
//! (`__arrow_c_stream__` or `__arrow_c_array__`: a polars DataFrame, a pyarrow Table,
//! RecordBatch or RecordBatchReader, a DuckDB relation, pandas...), read by `pyo3-arrow`.
//!
//! Each record batch is one [`Chunk`]; its columns are read in place from the Arrow
//! buffers. A column is cast first (one copy of that column) only when its type is not
//! one the chunk reads directly:
//!
//! | role | read in place | cast first |
//! | --- | --- | --- |
//! | times | `timestamp` of any unit and time zone | `date32`, `date64`, strings (parsed) |
//! | money, prices | `float64`, `int64`, `decimal128` | other floats, integers and decimals |
//! | accounts | `utf8`, `large_utf8`, `utf8_view`, dictionaries of those, `int64` | other integers |
//!
//! Arrow timestamps count from the epoch in UTC whatever their time zone, so a naive
//! timestamp (no time zone) is taken as UTC. Anything else is refused with
//! [`InvalidInput`](crate::error::InvalidInput) naming the column and its type.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader};
use arrow_cast::cast::{cast_with_options, CastOptions};
use arrow_schema::{DataType, TimeUnit};
use pyo3::prelude::*;
use pyo3::types::PyList;
use pyo3_arrow::input::AnyRecordBatch;

use super::accounts::{Accounts, Strings, Text};
use super::batch::metrics_by_account;
use super::columns::{Chunk, Money, Times};
use super::config;
use crate::error::invalid;

/// What a column is read as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Account names.
    Account,
    /// Times.
    Time,
    /// Money or prices.
    Money,
}

/// The columns, in this order: accounts, opened_at, closed_at, profit, commission, swap,
/// stop_loss, take_profit.
const ROLES: [(&str, Role, bool); 8] = [
    ("accounts", Role::Account, true),
    ("opened_at", Role::Time, true),
    ("closed_at", Role::Time, true),
    ("profit", Role::Money, true),
    ("commission", Role::Money, false),
    ("swap", Role::Money, false),
    ("stop_loss", Role::Money, false),
    ("take_profit", Role::Money, false),
];

/// The column names to read, in [`ROLES`] order (`None`: not read).
pub(super) type Names = [Option<String>; 8];

/// The Arrow input with each used column cast to a type the chunks read in place.
pub(super) struct Prepared {
    /// Per record batch, the column of each role (`None`: absent).
    batches: Vec<[Option<ArrayRef>; 8]>,
    /// The rows of each record batch.
    lens: Vec<usize>,
}

/// Casts `array` to `to`, failing on any value that does not convert.
fn cast(array: &ArrayRef, to: &DataType, label: &str) -> PyResult<ArrayRef> {
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(array, to, &options).map_err(|e| {
        invalid(format!(
            "{label} of type {}: cannot read it as {to}: {e}",
            array.data_type()
        ))
    })
}

/// `array` as one of the types a chunk reads for `role`, cast if need be.
fn normalize(array: &ArrayRef, role: Role, label: &str) -> PyResult<ArrayRef> {
    use DataType as T;
    let refused = || {
        let what = match role {
            Role::Account => "an account (strings or integers)",
            Role::Time => "a time (timestamp, date or text)",
            Role::Money => "a number (float, integer or decimal)",
        };
        Err(invalid(format!(
            "{label} of type {} cannot be read as {what}",
            array.data_type()
        )))
    };
    let ty = array.data_type();
    match role {
        Role::Time => match ty {
            T::Timestamp(_, _) => Ok(Arc::clone(array)),
            T::Date32 | T::Date64 => cast(array, &T::Timestamp(TimeUnit::Millisecond, None), label),
            T::Utf8 | T::LargeUtf8 | T::Utf8View => {
                cast(array, &T::Timestamp(TimeUnit::Nanosecond, None), label)
            }
            T::Dictionary(_, v) if matches!(**v, T::Utf8 | T::LargeUtf8 | T::Utf8View) => {
                cast(array, &T::Timestamp(TimeUnit::Nanosecond, None), label)
            }
            _ => refused(),
        },
        Role::Money => match ty {
            T::Float64 | T::Int64 | T::Decimal128(_, _) => Ok(Arc::clone(array)),
            T::Float16 | T::Float32 | T::Null => cast(array, &T::Float64, label),
            T::Int8 | T::Int16 | T::Int32 | T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64 => {
                cast(array, &T::Int64, label)
            }
            T::Decimal32(_, s) | T::Decimal64(_, s) | T::Decimal256(_, s) => {
                cast(array, &T::Decimal128(38, *s), label)
            }
            T::Dictionary(_, v) if v.is_numeric() => {
                normalize(&cast(array, v, label)?, role, label)
            }
            _ => refused(),
        },
        Role::Account => match ty {
            T::Utf8 | T::LargeUtf8 | T::Utf8View | T::Int64 => Ok(Arc::clone(array)),
            T::Dictionary(_, v) if matches!(**v, T::Utf8 | T::LargeUtf8 | T::Utf8View) => {
                Ok(Arc::clone(array))
            }
            T::Int8 | T::Int16 | T::Int32 | T::UInt8 | T::UInt16 | T::UInt32 => {
                cast(array, &T::Int64, label)
            }
            // Beyond int64 they are compared as text, as on the NumPy path.
            T::UInt64 => match cast(array, &T::Int64, label) {
                Ok(ints) => Ok(ints),
                Err(_) => cast(array, &T::Utf8, label),
            },
            T::Dictionary(_, v) if v.is_integer() => {
                normalize(&cast(array, v, label)?, role, label)
            }
            _ => refused(),
        },
    }
}

/// The label of role `i`'s column in messages: `column "login" (accounts)`.
fn label(i: usize, name: &str) -> String {
    format!("column {name:?} ({})", ROLES[i].0)
}

/// Reads `data` (anything exporting Arrow) and casts the columns named in `names`.
/// A required column that is missing, or any column of a type that cannot be read, is an
/// `InvalidInput`; a missing optional column is absent.
pub(super) fn prepare(data: &Bound<'_, PyAny>, names: &Names) -> PyResult<Prepared> {
    let input: AnyRecordBatch = data.extract().map_err(|e| {
        invalid(format!(
            "data: expected a DataFrame or an object exporting Arrow (__arrow_c_stream__ or __arrow_c_array__), got {}: {e}",
            data.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string())
        ))
    })?;
    let reader = input
        .into_reader()
        .map_err(|e| invalid(format!("data: the Arrow stream could not be read: {e}")))?;
    let schema = reader.schema();
    let mut at: [Option<usize>; 8] = [None; 8];
    for (i, name) in names.iter().enumerate() {
        let Some(name) = name else { continue };
        match schema.index_of(name) {
            Ok(index) => at[i] = Some(index),
            Err(_) if !ROLES[i].2 => {}
            Err(_) => {
                let have: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(invalid(format!(
                    "{}: no such column; the data has {have:?}",
                    label(i, name)
                )));
            }
        }
    }
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("data: the Arrow stream failed: {e}")))?;
    let mut prepared = Prepared {
        batches: Vec::with_capacity(batches.len()),
        lens: Vec::with_capacity(batches.len()),
    };
    for batch in &batches {
        let mut columns: [Option<ArrayRef>; 8] = Default::default();
        for (i, index) in at.iter().enumerate() {
            if let (Some(index), Some(name)) = (index, &names[i]) {
                columns[i] = Some(normalize(
                    batch.column(*index),
                    ROLES[i].1,
                    &label(i, name),
                )?);
            }
        }
        prepared.batches.push(columns);
        prepared.lens.push(batch.num_rows());
    }
    Ok(prepared)
}

/// A time column read in place.
fn times(array: &ArrayRef) -> Option<Times<'_>> {
    let nulls = array.nulls();
    let (values, per): (&[i64], i64) = match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => (
            &array.as_primitive_opt::<TimestampSecondType>()?.values()[..],
            1_000_000_000,
        ),
        DataType::Timestamp(TimeUnit::Millisecond, _) => (
            &array
                .as_primitive_opt::<TimestampMillisecondType>()?
                .values()[..],
            1_000_000,
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => (
            &array
                .as_primitive_opt::<TimestampMicrosecondType>()?
                .values()[..],
            1_000,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => (
            &array
                .as_primitive_opt::<TimestampNanosecondType>()?
                .values()[..],
            1,
        ),
        _ => return None,
    };
    Some(Times::Arrow { values, per, nulls })
}

/// A money column read in place (absent when `array` is `None`).
fn money(array: Option<&ArrayRef>) -> Option<Money<'_>> {
    let Some(array) = array else {
        return Some(Money::Absent);
    };
    let nulls = array.nulls();
    Some(match array.data_type() {
        DataType::Float64 => Money::Float {
            values: &array.as_primitive_opt::<Float64Type>()?.values()[..],
            nulls,
        },
        DataType::Int64 => Money::Int {
            values: &array.as_primitive_opt::<Int64Type>()?.values()[..],
            nulls,
        },
        DataType::Decimal128(_, scale) => Money::Decimal {
            values: &array.as_primitive_opt::<Decimal128Type>()?.values()[..],
            scale: *scale,
            nulls,
        },
        _ => return None,
    })
}

/// The strings of a string array.
fn strings(array: &dyn Array) -> Option<Strings<'_>> {
    match array.data_type() {
        DataType::Utf8 => array.as_string_opt::<i32>().map(Strings::Plain),
        DataType::LargeUtf8 => array.as_string_opt::<i64>().map(Strings::Large),
        DataType::Utf8View => array.as_string_view_opt().map(Strings::View),
        _ => None,
    }
}

impl Prepared {
    /// The trade columns of each record batch.
    pub(super) fn chunks(&self) -> PyResult<Vec<Chunk<'_>>> {
        let mut offset = 0;
        let mut chunks = Vec::with_capacity(self.batches.len());
        for (columns, &len) in self.batches.iter().zip(&self.lens) {
            let unread =
                |i: usize| invalid(format!("{}: its Arrow data could not be read", ROLES[i].0));
            let time = |i: usize| columns[i].as_ref().and_then(times).ok_or_else(|| unread(i));
            let cash = |i: usize| money(columns[i].as_ref()).ok_or_else(|| unread(i));
            chunks.push(Chunk {
                offset,
                len,
                opened_at: time(1)?,
                closed_at: time(2)?,
                profit: cash(3)?,
                commission: cash(4)?,
                swap: cash(5)?,
                stop_loss: cash(6)?,
                take_profit: cash(7)?,
            });
            offset += len;
        }
        Ok(chunks)
    }

    /// The account column. A null account is an `InvalidInput` naming its row.
    pub(super) fn accounts(&self) -> PyResult<Accounts<'_>> {
        let mut ints = Vec::new();
        let mut texts = Vec::new();
        let mut offset = 0;
        for (columns, &len) in self.batches.iter().zip(&self.lens) {
            let Some(array) = &columns[0] else {
                return Err(invalid("accounts: no account column"));
            };
            if let Some(nulls) = array.logical_nulls() {
                if let Some(row) = nulls.iter().position(|valid| !valid) {
                    return Err(invalid(format!(
                        "accounts[{}]: missing (null)",
                        offset + row
                    )));
                }
            }
            let unread = || invalid("accounts: its Arrow data could not be read");
            if let Some(values) = array.as_primitive_opt::<Int64Type>() {
                ints.push(&values.values()[..]);
            } else if let Some(dictionary) = array.as_any_dictionary_opt() {
                let values = strings(dictionary.values().as_ref()).ok_or_else(unread)?;
                // normalized_keys needs a dictionary; without one every row is null (refused above).
                let keys = if dictionary.values().is_empty() {
                    vec![0; len]
                } else {
                    dictionary.normalized_keys()
                };
                texts.push(Text::Dictionary { keys, values });
            } else {
                texts.push(Text::Direct(strings(array.as_ref()).ok_or_else(unread)?));
            }
            offset += len;
        }
        Ok(if texts.is_empty() {
            Accounts::ArrowInt(ints)
        } else if ints.is_empty() {
            Accounts::ArrowText(texts)
        } else {
            return Err(invalid(
                "accounts: the record batches mix integer and text accounts",
            ));
        })
    }
}

/// The column names of a call, in [`ROLES`] order.
fn names(
    accounts: Option<String>,
    opened_at: String,
    closed_at: String,
    profit: String,
    optional: [Option<String>; 4],
) -> Names {
    let [commission, swap, stop_loss, take_profit] = optional;
    [
        accounts,
        Some(opened_at),
        Some(closed_at),
        Some(profit),
        commission,
        swap,
        stop_loss,
        take_profit,
    ]
}

/// Per-account metrics over `data`, any object exporting Arrow (`__arrow_c_stream__` or
/// `__arrow_c_array__`), reading the columns of the given names, as a list of
/// `AccountMetrics` sorted by account; see `riskgate.trade_metrics` for the friendly form.
///
/// A required column that is missing, or a column of a type that cannot be read, raises
/// `InvalidInput` naming the column and the type; a missing optional column is absent.
/// Nulls follow the NumPy path's NaN/NaT rules: a null time or profit is refused, a null
/// commission or swap is 0, a null stop-loss or take-profit is "not set"; a null account
/// is refused. `threads` as in `trade_metrics_buffers`.
#[pyfunction]
#[pyo3(signature = (data, accounts, opened_at, closed_at, profit, commission=None, swap=None, stop_loss=None, take_profit=None, *, initial_balance=None, hft_seconds=60, day_offset_minutes=0, pnl_basis="net", window_size=None, threads=None))]
#[allow(clippy::too_many_arguments)]
pub fn trade_metrics_arrow<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    accounts: String,
    opened_at: String,
    closed_at: String,
    profit: String,
    commission: Option<String>,
    swap: Option<String>,
    stop_loss: Option<String>,
    take_profit: Option<String>,
    initial_balance: Option<&Bound<'py, PyAny>>,
    hft_seconds: u32,
    day_offset_minutes: i32,
    pnl_basis: &str,
    window_size: Option<u32>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyList>> {
    let config = config(
        initial_balance,
        hft_seconds,
        day_offset_minutes,
        pnl_basis,
        window_size,
    )?;
    let names = names(
        Some(accounts),
        opened_at,
        closed_at,
        profit,
        [commission, swap, stop_loss, take_profit],
    );
    let prepared = prepare(data, &names)?;
    let chunks = prepared.chunks()?;
    let accounts = prepared.accounts()?;
    let results = metrics_by_account(py, &accounts, &chunks, &config, threads)?;
    PyList::new(py, results)
}

/// The column names of an accumulator's `extend_arrow` (no account column).
pub(super) fn trade_names(
    opened_at: String,
    closed_at: String,
    profit: String,
    optional: [Option<String>; 4],
) -> Names {
    names(None, opened_at, closed_at, profit, optional)
}
