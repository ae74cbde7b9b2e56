//! The report as Parquet: the accounts table, one row per account in report order, with
//! every value exact and typed, for a data lake (`risk report --format parquet --out F`).
//!
//! Columns: `account_login`, `user_id`, `challenge_id` (null when unknown), `platform`,
//! `phase`, `last_trade_at` (null when unknown), `initial_balance`; every [`TradeMetrics`](risk_core::metrics::TradeMetrics) field in
//! [`TradeMetrics::fields`](risk_core::metrics::TradeMetrics::fields) order (types as in
//! [`crate::arrow`]: counts `uint64`, days `date32`, decimals `decimal128(38, s)` exactly);
//! `risk_score` (decimal), `risk_level`; `signals`, a list of `KIND:SEVERITY` texts (the
//! metric signals, then the rulebook's, as in the CSV); `status`, `first_breach` (the
//! breached rule's kind), `first_breach_at` and `passed_at` (UTC microseconds). The users'
//! and challenges' aggregates are not in it (they are in the JSON report).

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

use super::Report;
use crate::arrow::{decimal_column, metrics_columns};

/// A UTC time column in microseconds.
fn times(values: impl Iterator<Item = Option<DateTime<Utc>>>) -> (DataType, ArrayRef) {
    let array = TimestampMicrosecondArray::from(
        values
            .map(|t| t.map(|t| t.timestamp_micros()))
            .collect::<Vec<_>>(),
    )
    .with_timezone("UTC");
    (
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Arc::new(array),
    )
}

/// A text column.
fn text<'a>(values: impl Iterator<Item = Option<&'a str>>) -> (DataType, ArrayRef) {
    (
        DataType::Utf8,
        Arc::new(values.collect::<StringArray>()) as ArrayRef,
    )
}

/// The accounts of `report` as one record batch (the columns of the module docs).
///
/// # Errors
/// [`ArrowError`] if the batch cannot be assembled (it always can for a built report).
pub fn accounts_batch(report: &Report) -> Result<RecordBatch, ArrowError> {
    let accounts = &report.accounts;
    let mut columns: Vec<(String, DataType, ArrayRef, bool)> = Vec::new();
    let mut push = |name: &str, (ty, column): (DataType, ArrayRef), nullable: bool| {
        columns.push((name.to_owned(), ty, column, nullable));
    };
    push(
        "account_login",
        text(accounts.iter().map(|a| Some(a.account.as_str()))),
        false,
    );
    push(
        "user_id",
        text(accounts.iter().map(|a| Some(a.user.as_str()))),
        false,
    );
    push(
        "challenge_id",
        text(
            accounts
                .iter()
                .map(|a| a.challenge.as_ref().map(|c| c.as_str())),
        ),
        true,
    );
    push(
        "platform",
        text(accounts.iter().map(|a| a.platform.as_deref())),
        true,
    );
    push(
        "phase",
        text(accounts.iter().map(|a| a.phase.as_deref())),
        true,
    );
    push(
        "last_trade_at",
        times(accounts.iter().map(|a| a.last_trade_at)),
        true,
    );
    let balances: Vec<_> = accounts.iter().map(|a| Some(a.initial_balance)).collect();
    push("initial_balance", decimal_column(&balances), false);
    let metrics: Vec<_> = accounts.iter().map(|a| &a.metrics).collect();
    for (name, ty, column) in metrics_columns(&metrics, |_| None) {
        push(name, (ty, column), true);
    }
    let scores: Vec<_> = accounts.iter().map(|a| Some(a.score.score)).collect();
    push("risk_score", decimal_column(&scores), false);
    push(
        "risk_level",
        text(accounts.iter().map(|a| Some(a.score.level.as_str()))),
        false,
    );
    let mut signals = ListBuilder::new(StringBuilder::new());
    for a in accounts {
        for s in &a.score.signals {
            signals
                .values()
                .append_value(format!("{}:{}", s.kind, s.severity));
        }
        for s in &a.rules.signals {
            signals.values().append_value(format!(
                "{}:{}",
                s.kind,
                report.rule_weights.severity(s.kind)
            ));
        }
        signals.append(true);
    }
    let signals = signals.finish();
    push(
        "signals",
        (signals.data_type().clone(), Arc::new(signals)),
        false,
    );
    push(
        "status",
        text(accounts.iter().map(|a| Some(a.rules.status.as_str()))),
        false,
    );
    push(
        "first_breach",
        text(
            accounts
                .iter()
                .map(|a| a.rules.first_breach.as_ref().map(|b| b.kind.as_str())),
        ),
        true,
    );
    push(
        "first_breach_at",
        times(
            accounts
                .iter()
                .map(|a| a.rules.first_breach.as_ref().map(|b| b.at)),
        ),
        true,
    );
    push(
        "passed_at",
        times(accounts.iter().map(|a| a.rules.passed_at)),
        true,
    );
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, ty, _, nullable)| Field::new(name, ty.clone(), *nullable))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|c| c.2).collect(),
    )
}

/// Writes the accounts of `report` to `out` as one Parquet file (snappy-compressed).
///
/// # Errors
/// Any error of `out`, or of building the batch.
pub fn write_parquet<W: Write + Send>(report: &Report, out: W) -> Result<(), ParquetError> {
    let batch = accounts_batch(report)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(out, batch.schema(), Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}
