//! Results as an Arrow table: one row per account, one column per `AccountMetrics` field,
//! exported through the PyCapsule interface (`__arrow_c_stream__`) by `pyo3-arrow`, so
//! polars, pyarrow, DuckDB or pandas read it without pyarrow being needed here.
//!
//! `account` is `utf8`; the metric columns are those of [`risk_adapters::arrow`] (counts
//! `uint64`, days `date32`, decimals exactly as `decimal128(38, s)` or, where some value
//! would need more than 38 digits, exact text), each field's type taken from its Rust
//! type.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use risk_adapters::arrow::metrics_columns;

use super::result::PyAccountMetrics;
use crate::error::invalid;

/// The results as one record batch, columns in `AccountMetrics.FIELDS` order.
fn record_batch(results: &[&PyAccountMetrics]) -> PyResult<RecordBatch> {
    let accounts: StringArray = results.iter().map(|r| Some(r.account.as_str())).collect();
    let mut fields = vec![Field::new("account", DataType::Utf8, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(accounts)];
    let metrics: Vec<_> = results.iter().map(|r| &r.metrics).collect();
    for (name, ty, column) in metrics_columns(&metrics, PyAccountMetrics::kind) {
        fields.push(Field::new(name, ty, true));
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| invalid(format!("the Arrow table could not be built: {e}")))
}

/// `results` (a list of `AccountMetrics`) as an Arrow table: an object with
/// `__arrow_c_stream__`, one row per result and one column per field (see the module
/// docs for the types). `pl.from_arrow(t)`, `pa.table(t)` and DuckDB read it.
#[pyfunction]
pub fn metrics_to_arrow<'py>(
    py: Python<'py>,
    results: Vec<PyRef<'py, PyAccountMetrics>>,
) -> PyResult<Bound<'py, PyAny>> {
    let refs: Vec<&PyAccountMetrics> = results.iter().map(|r| &**r).collect();
    let batch = record_batch(&refs)?;
    let table = PyTable::try_new(vec![batch.clone()], batch.schema())?;
    Ok(Bound::new(py, table)?.into_any())
}
