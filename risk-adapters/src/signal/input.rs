//! Request bodies into trades and accounts, through the export reader of
//! [`crate::csv_input`] and its row errors: a `text/csv` body is read as an export file; a
//! JSON array of objects with the same field names is written out as CSV (values as
//! their text: strings as they are, numbers as JSON wrote them, `null` as empty) and read
//! by the same reader, so both formats accept and refuse exactly the same values. Send
//! decimals as JSON strings to keep every digit (a JSON number is read as its text, which
//! is exact only as far as the sender wrote it).

use risk_core::ids::AccountId;
use risk_core::metrics::ClosedTrade;

use super::Rejection;
use crate::csv_input::{read_accounts, read_trades, AccountInfo, CsvInputError, RowError};

/// What a body held.
#[derive(Debug, Clone, Default)]
pub struct Parsed<T> {
    /// The good rows, in body order.
    pub items: Vec<T>,
    /// Rows refused (all of them counted).
    pub rejected: u64,
    /// Why (the first [`crate::csv_input::MAX_KEPT_ROW_ERRORS`]).
    pub rejections: Vec<Rejection>,
    /// Rows repeating an identifier seen earlier in the body.
    pub duplicates: u64,
}

/// A body that cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Not a JSON array.
    #[error("the body is not a JSON array of objects: {0}")]
    Json(String),
    /// The CSV reader refused the whole body (no header, a required column missing).
    #[error(transparent)]
    Csv(#[from] CsvInputError),
}

/// The format of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/csv`: an export file.
    Csv,
    /// `application/json`: an array of objects.
    Json,
}

/// The name row errors give the body.
const BODY: &str = "body";

/// A JSON array rewritten as CSV: the text, the element index of every written row, and
/// the elements refused before the reader.
type AsCsv = (Vec<u8>, Vec<u64>, Vec<Rejection>);

/// The JSON array as CSV text, the element index of every written row, and the elements
/// refused before the reader (not objects, or holding a nested value or a line break).
fn json_to_csv(body: &[u8]) -> Result<AsCsv, InputError> {
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| InputError::Json(e.to_string()))?;
    let mut header: Vec<String> = Vec::new();
    for row in &rows {
        if let serde_json::Value::Object(map) = row {
            for key in map.keys() {
                if !header.iter().any(|h| h == key) {
                    header.push(key.clone());
                }
            }
        }
    }
    let mut out = csv::WriterBuilder::new().from_writer(Vec::new());
    let fail = |e: csv::Error| InputError::Json(e.to_string());
    out.write_record(&header).map_err(fail)?;
    let mut index = Vec::with_capacity(rows.len());
    let mut refused = Vec::new();
    'rows: for (i, row) in rows.iter().enumerate() {
        let i = i as u64;
        let serde_json::Value::Object(map) = row else {
            refused.push(Rejection {
                line: None,
                index: Some(i),
                column: None,
                reason: "not an object".into(),
            });
            continue;
        };
        let mut record = Vec::with_capacity(header.len());
        for key in &header {
            let text = match map.get(key) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                Some(serde_json::Value::Bool(b)) => b.to_string(),
                Some(_) => {
                    refused.push(Rejection {
                        line: None,
                        index: Some(i),
                        column: Some(key.clone()),
                        reason: "expected a string, a number or null".into(),
                    });
                    continue 'rows;
                }
            };
            if text.contains(['\n', '\r']) {
                refused.push(Rejection {
                    line: None,
                    index: Some(i),
                    column: Some(key.clone()),
                    reason: "a line break is not allowed in a value".into(),
                });
                continue 'rows;
            }
            record.push(text);
        }
        out.write_record(&record).map_err(fail)?;
        index.push(i);
    }
    let text = out
        .into_inner()
        .map_err(|e| InputError::Json(e.to_string()))?;
    Ok((text, index, refused))
}

/// A row error as a rejection: its line for CSV, its element index for JSON.
fn rejection(e: &RowError, index: Option<&[u64]>) -> Rejection {
    match index {
        None => Rejection {
            line: Some(e.line),
            index: None,
            column: Some(e.column.clone()),
            reason: e.message.clone(),
        },
        Some(index) => Rejection {
            line: None,
            // The header is line 1 and no written row spans lines.
            index: usize::try_from(e.line.saturating_sub(2))
                .ok()
                .and_then(|row| index.get(row).copied()),
            column: Some(e.column.clone()),
            reason: e.message.clone(),
        },
    }
}

fn merge<T>(
    items: Vec<T>,
    errors: &[RowError],
    skipped: u64,
    duplicates: u64,
    index: Option<&[u64]>,
    refused: Vec<Rejection>,
) -> Parsed<T> {
    let rejected = skipped + refused.len() as u64;
    let mut rejections: Vec<Rejection> = refused;
    rejections.extend(errors.iter().map(|e| rejection(e, index)));
    rejections.sort_by_key(|r| (r.line, r.index));
    rejections.truncate(crate::csv_input::MAX_KEPT_ROW_ERRORS);
    Parsed {
        items,
        rejected,
        rejections,
        duplicates,
    }
}

/// The trades of a body.
///
/// # Errors
/// [`InputError`] when the body is not an export (or not a JSON array) at all; bad rows
/// are rejections.
pub fn trades(body: &[u8], format: Format) -> Result<Parsed<ClosedTrade>, InputError> {
    let (text, index, refused) = match format {
        Format::Csv => (None, None, Vec::new()),
        Format::Json => {
            let (text, index, refused) = json_to_csv(body)?;
            (Some(text), Some(index), refused)
        }
    };
    let file = read_trades(text.as_deref().unwrap_or(body), BODY, |_| {})?;
    Ok(merge(
        file.trades,
        &file.errors,
        file.skipped_rows,
        file.duplicate_rows,
        index.as_deref(),
        refused,
    ))
}

/// The accounts of a body (`login,user_id,challenge_id[,initial_balance][,group_id]`).
///
/// # Errors
/// As [`trades`].
pub fn accounts(
    body: &[u8],
    format: Format,
) -> Result<Parsed<(AccountId, AccountInfo)>, InputError> {
    let (text, index, refused) = match format {
        Format::Csv => (None, None, Vec::new()),
        Format::Json => {
            let (text, index, refused) = json_to_csv(body)?;
            (Some(text), Some(index), refused)
        }
    };
    let mut file = read_accounts(text.as_deref().unwrap_or(body), BODY)?;
    let items = file
        .order
        .iter()
        .filter_map(|login| {
            file.accounts
                .remove(login)
                .map(|info| (login.clone(), info))
        })
        .collect();
    Ok(merge(
        items,
        &file.errors,
        file.skipped_rows,
        0,
        index.as_deref(),
        refused,
    ))
}
