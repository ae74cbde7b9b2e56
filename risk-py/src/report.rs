//! The risk report from DataFrames: `risk_report_arrow`, what `riskgate.risk_report` calls.
//!
//! The report is built by [`risk_adapters::report::build_report`], the code behind
//! `risk report`, and rendered by its JSON writer, so a notebook gets exactly the contract
//! of `risk report --format json` (accounts with metrics, score, level and signals, the
//! rulebook's status and signals, users, challenges). Nothing is scored here.
//!
//! The tables come in through the Arrow PyCapsule interface (`pyo3-arrow`). Each row is
//! written as a CSV record of the export format and read by the export reader itself
//! ([`risk_adapters::csv_input`]), so a table and the same data as a file give the same
//! trades, the same row errors (an unparsable value, `closed_at` before `opened_at`, an
//! empty login) and the same duplicate rule (the first row of an `identifier` wins). Cells
//! are written as:
//!
//! * floats by their shortest round-trip text, NaN as an empty cell (so a NaN `price_sl`
//!   is "not set", as an empty cell in the file is);
//! * timestamps of any unit and time zone as UTC `YYYY-MM-DD HH:MM:SS.fffffffff` (a
//!   naive timestamp is taken as UTC);
//! * everything else (integers, `decimal128` exactly, strings, dictionaries, text times)
//!   as Arrow displays it; a null as an empty cell.
//!
//! Only the columns the reader uses are written; the others are ignored, as in a file.

use std::fmt::Write as _;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use chrono::DateTime;
use pyo3::prelude::*;
use pyo3_arrow::input::AnyRecordBatch;
use risk_adapters::csv_input::{read_accounts, read_trades, RowError, TRADE_COLUMNS};
use risk_adapters::report::{build_report, write_json, ReportInput};
use risk_adapters::report_config::ReportConfig;

use crate::error::{invalid, ConfigError};

/// The accounts columns the accounts reader uses.
const ACCOUNT_COLUMNS: [&str; 8] = [
    "login",
    "user_id",
    "challenge_id",
    "initial_balance",
    "account_size",
    "platform",
    "phase",
    "group_id",
];

/// A table: its schema and its record batches.
type Table = (SchemaRef, Vec<RecordBatch>);

/// Reads `data` (anything exporting Arrow) into record batches; `what` names it in errors.
fn batches(data: &Bound<'_, PyAny>, what: &str) -> PyResult<Table> {
    let input: AnyRecordBatch = data.extract().map_err(|e| {
        invalid(format!(
            "{what}: expected a DataFrame or an object exporting Arrow (__arrow_c_stream__ or __arrow_c_array__), got {}: {e}",
            data.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string())
        ))
    })?;
    let reader = input
        .into_reader()
        .map_err(|e| invalid(format!("{what}: the Arrow stream could not be read: {e}")))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("{what}: the Arrow stream failed: {e}")))?;
    Ok((schema, batches))
}

/// How one column's cells are written.
enum Cells<'a> {
    /// `float64`: shortest round-trip text, NaN and null empty.
    F64(&'a arrow_array::Float64Array),
    /// `float32`: shortest round-trip text of the `f32`, NaN and null empty.
    F32(&'a arrow_array::Float32Array),
    /// A timestamp: the value in `per` nanoseconds a unit, written in UTC.
    Time {
        values: &'a [i64],
        per: i64,
        array: &'a dyn Array,
    },
    /// Anything else, as Arrow displays it (null empty).
    Display(ArrayFormatter<'a>),
}

impl<'a> Cells<'a> {
    /// The writer of `array`'s cells; `label` names the column in errors.
    fn of(array: &'a ArrayRef, options: &'a FormatOptions<'a>, label: &str) -> PyResult<Self> {
        let time = |values: &'a [i64], per: i64| Cells::Time {
            values,
            per,
            array: array.as_ref(),
        };
        Ok(match array.data_type() {
            DataType::Float64 => Cells::F64(array.as_primitive::<Float64Type>()),
            DataType::Float32 => Cells::F32(array.as_primitive::<Float32Type>()),
            DataType::Timestamp(TimeUnit::Second, _) => time(
                array.as_primitive::<TimestampSecondType>().values(),
                1_000_000_000,
            ),
            DataType::Timestamp(TimeUnit::Millisecond, _) => time(
                array.as_primitive::<TimestampMillisecondType>().values(),
                1_000_000,
            ),
            DataType::Timestamp(TimeUnit::Microsecond, _) => time(
                array.as_primitive::<TimestampMicrosecondType>().values(),
                1_000,
            ),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                time(array.as_primitive::<TimestampNanosecondType>().values(), 1)
            }
            _ => Cells::Display(
                ArrayFormatter::try_new(array.as_ref(), options).map_err(|e| {
                    invalid(format!(
                        "{label} of type {}: cannot be read as text: {e}",
                        array.data_type()
                    ))
                })?,
            ),
        })
    }

    /// Writes row `i`'s cell to `out` (cleared first).
    fn write(&self, i: usize, out: &mut String) {
        out.clear();
        match self {
            Cells::F64(a) => {
                let v = a.value(i);
                if a.is_valid(i) && !v.is_nan() {
                    let _ = write!(out, "{v}");
                }
            }
            Cells::F32(a) => {
                let v = a.value(i);
                if a.is_valid(i) && !v.is_nan() {
                    let _ = write!(out, "{v}");
                }
            }
            Cells::Time { values, per, array } => {
                if array.is_valid(i) {
                    let v = values[i];
                    match v.checked_mul(*per) {
                        Some(ns) => {
                            let at = DateTime::from_timestamp_nanos(ns);
                            let _ = write!(out, "{}", at.format("%Y-%m-%d %H:%M:%S%.f"));
                        }
                        // Beyond what epoch nanoseconds hold: the reader refuses the text
                        // as it refuses an out-of-range time in a file.
                        None => {
                            let _ = write!(out, "{v} x {per} ns after 1970-01-01 (out of range)");
                        }
                    }
                }
            }
            Cells::Display(f) => {
                if let Err(e) = write!(out, "{}", f.value(i)) {
                    out.clear();
                    let _ = write!(out, "(unreadable: {e})");
                }
            }
        }
    }
}

/// The table `batches` as CSV text of its `wanted` columns (those it has, header first):
/// what the export readers read. `what` names the table in errors.
fn to_csv((schema, batches): &Table, wanted: &[&str], what: &str) -> PyResult<Vec<u8>> {
    let options = FormatOptions::default().with_null("");
    let present: Vec<(usize, &str)> = wanted
        .iter()
        .filter_map(|name| schema.index_of(name).ok().map(|i| (i, *name)))
        .collect();
    let mut out = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| invalid(format!("{what}: {e}"));
    out.write_record(present.iter().map(|(_, name)| *name))
        .map_err(fail)?;
    let mut cell = String::new();
    for batch in batches {
        let columns: Vec<Cells<'_>> = present
            .iter()
            .map(|(i, name)| {
                Cells::of(
                    batch.column(*i),
                    &options,
                    &format!("{what}: column {name:?}"),
                )
            })
            .collect::<PyResult<_>>()?;
        for row in 0..batch.num_rows() {
            for column in &columns {
                column.write(row, &mut cell);
                out.write_field(&cell).map_err(fail)?;
            }
            out.write_record(None::<&[u8]>).map_err(fail)?;
        }
    }
    out.into_inner()
        .map_err(|e| invalid(format!("{what}: {}", e.error())))
}

/// A row error of a table: the CSV line `line` is the table's row `line - 2` (line 1 is
/// the header; a text cell holding a line break would shift the count, and no column the
/// reader uses is valid with one).
fn row_error(e: &RowError) -> String {
    format!(
        "{} row {}: column `{}`: {}",
        e.file,
        e.line.saturating_sub(2),
        e.column,
        e.message
    )
}

/// The report of the `trades` table (and the `accounts` table when given) as the JSON
/// text of `risk report --format json`, with the row errors (the first 100 of the skipped
/// rows, each naming its table, row and column). `config` is a config file's text and its
/// name (JSON when the name ends in `.json`, TOML otherwise), read as `risk report
/// --config` reads it. See `riskgate.risk_report` for the friendly form.
#[pyfunction]
#[pyo3(signature = (trades, accounts=None, config=None))]
pub fn risk_report_arrow(
    py: Python<'_>,
    trades: &Bound<'_, PyAny>,
    accounts: Option<&Bound<'_, PyAny>>,
    config: Option<(String, String)>,
) -> PyResult<(String, Vec<String>)> {
    let config = match &config {
        Some((text, name)) => ReportConfig::from_file_text(text, Path::new(name))
            .map_err(|e| ConfigError::new_err(e.to_string()))?,
        None => ReportConfig::default(),
    };
    let trade_batches = batches(trades, "trades")?;
    let account_batches = accounts.map(|a| batches(a, "accounts")).transpose()?;
    py.detach(|| -> PyResult<(String, Vec<String>)> {
        let mut errors = Vec::new();
        let accounts = match &account_batches {
            Some(b) => {
                let text = to_csv(b, &ACCOUNT_COLUMNS, "accounts")?;
                let file = read_accounts(text.as_slice(), "accounts")
                    .map_err(|e| invalid(e.to_string()))?;
                errors.extend(file.errors.iter().map(row_error));
                Some(file)
            }
            None => None,
        };
        let text = to_csv(&trade_batches, &TRADE_COLUMNS, "trades")?;
        let file =
            read_trades(text.as_slice(), "trades", |_| {}).map_err(|e| invalid(e.to_string()))?;
        drop(text);
        errors.extend(file.errors.iter().map(row_error));
        let input = ReportInput {
            accounts: accounts.as_ref(),
            metrics: config.metrics,
            score: config.score,
            skipped_rows: file.skipped_rows,
            duplicate_rows: file.duplicate_rows,
            rules: config.rules,
        };
        let report = build_report(&file.trades, &input).map_err(|e| invalid(e.to_string()))?;
        let mut json = Vec::new();
        write_json(&report, &mut json)
            .map_err(|e| invalid(format!("the report could not be written: {e}")))?;
        let json = String::from_utf8(json)
            .map_err(|e| invalid(format!("the report is not UTF-8: {e}")))?;
        Ok((json, errors))
    })
}
