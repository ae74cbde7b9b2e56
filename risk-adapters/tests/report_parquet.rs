//! `risk report --format parquet`: the file read back by the parquet crate's Arrow reader
//! holds the JSON report's accounts, value for value.
#![cfg(feature = "parquet")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, TimestampMicrosecondType, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `risk report` on the example data with `extra` arguments; the standard output.
fn report(extra: &[&str]) -> Vec<u8> {
    let root = repo_root();
    let trades = root.join("examples/data/trades.csv");
    let accounts = root.join("examples/data/accounts.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_risk"))
        .args([
            "report",
            "--trades",
            trades.to_str().unwrap(),
            "--accounts",
            accounts.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .expect("the risk binary runs");
    assert!(
        out.status.success(),
        "risk report {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Cell `row` of `column` as JSON, the way the JSON report writes it (decimals as numbers
/// through `f64`, days and times as text), for comparison.
fn cell(batch: &RecordBatch, column: &str, row: usize) -> Value {
    let array = batch.column_by_name(column).expect(column);
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Utf8 => Value::from(array.as_string::<i32>().value(row)),
        DataType::UInt64 => Value::from(array.as_primitive::<UInt64Type>().value(row)),
        DataType::Decimal128(_, scale) => {
            // The exact decimal's nearest f64 (a decimal128 may exceed a Decimal's 96 bits).
            let raw = array.as_primitive::<Decimal128Type>().value(row);
            Value::from(format!("{raw}e-{scale}").parse::<f64>().unwrap())
        }
        DataType::Date32 => Value::from(
            Date32Type::to_naive_date_opt(array.as_primitive::<Date32Type>().value(row))
                .unwrap()
                .to_string(),
        ),
        DataType::Timestamp(_, _) => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
            Value::from(micros)
        }
        other => panic!("{column}: unexpected type {other}"),
    }
}

/// Two JSON numbers equal to the precision the JSON report keeps (its numbers go through
/// `f64`; the Parquet decimal is exact).
fn same(parquet: &Value, json: &Value) -> bool {
    match (parquet.as_f64(), json.as_f64()) {
        (Some(a), Some(b)) if parquet.is_f64() || json.is_f64() => {
            (a - b).abs() <= 1e-12 * b.abs().max(1.0)
        }
        _ => parquet == json,
    }
}

#[test]
fn parquet_report_holds_the_json_reports_accounts() {
    let dir = std::env::temp_dir().join(format!("risk-parquet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("report.parquet");
    report(&["--format", "parquet", "--out", path.to_str().unwrap()]);
    let json: Value = serde_json::from_slice(&report(&["--format", "json"])).unwrap();
    let accounts = json["accounts"].as_array().unwrap();

    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
    let batch = arrow_select_concat(&batches);
    assert_eq!(batch.num_rows(), accounts.len());
    assert_eq!(batch.num_rows(), 32);
    let schema = batch.schema();
    assert!(matches!(
        schema.field_with_name("net_profit").unwrap().data_type(),
        DataType::Decimal128(38, _)
    ));
    assert_eq!(
        schema.field_with_name("trades").unwrap().data_type(),
        &DataType::UInt64
    );

    let mut compared = 0;
    for (row, a) in accounts.iter().enumerate() {
        for (key, expected) in a.as_object().unwrap() {
            let got = match key.as_str() {
                // Objects in the JSON; the Parquet row keeps their kinds and times.
                "signals" => {
                    let list = batch.column_by_name("signals").unwrap().as_list::<i32>();
                    let kinds: Vec<String> = list
                        .value(row)
                        .as_string::<i32>()
                        .iter()
                        .map(|s| s.unwrap().split(':').next().unwrap().to_owned())
                        .collect();
                    let want: Vec<&str> = expected
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s["kind"].as_str().unwrap())
                        .collect();
                    assert_eq!(kinds, want, "row {row} signals");
                    continue;
                }
                "first_breach" => {
                    assert_eq!(cell(&batch, "first_breach", row), expected["kind"].clone());
                    if let Some(at) = expected["at"].as_str() {
                        let at = chrono::DateTime::<chrono::Utc>::from_str(at).unwrap();
                        assert_eq!(
                            cell(&batch, "first_breach_at", row),
                            Value::from(at.timestamp_micros())
                        );
                    }
                    continue;
                }
                "passed_at" | "last_trade_at" => {
                    let want = expected.as_str().map(|t| {
                        Value::from(
                            chrono::DateTime::<chrono::Utc>::from_str(t)
                                .unwrap()
                                .timestamp_micros(),
                        )
                    });
                    assert_eq!(cell(&batch, key, row), want.unwrap_or(Value::Null));
                    continue;
                }
                _ => cell(&batch, key, row),
            };
            assert!(
                same(&got, expected),
                "row {row} {key}: parquet {got}, json {expected}"
            );
            compared += 1;
        }
    }
    assert!(compared > 32 * 30, "{compared} values compared");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parquet_needs_an_output_file() {
    let root = repo_root();
    let out = Command::new(env!("CARGO_BIN_EXE_risk"))
        .args([
            "report",
            "--trades",
            root.join("examples/data/trades.csv").to_str().unwrap(),
            "--format",
            "parquet",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));
}

/// The batches as one (the report is small: one batch in practice).
fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
    assert_eq!(batches.len(), 1, "one row group of 32 accounts");
    batches[0].clone()
}
