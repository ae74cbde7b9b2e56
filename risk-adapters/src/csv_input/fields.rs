//! From header and cells to values: finding columns, reading a cell as text, number, side
//! or time with a [`RowError`] naming its line and column, and parsing export timestamps.

use std::io::Read;

use chrono::{DateTime, NaiveDate, Utc};
use risk_core::metrics::epoch_nanos;
use risk_core::model::Side;
use risk_core::num::parse_decimal;
use risk_core::Decimal;

use risk_core::hash::FxHashMap as FastMap;

use super::bounded::{BoundedRows, RowInfo};
use super::error::{CsvInputError, RowError};
use super::CsvLimits;

/// [`CsvInputError::HeaderTooLong`] when the header row (row 0) was cut.
pub(super) fn check_header<R: Read>(
    reader: &mut csv::Reader<BoundedRows<R>>,
    file: &str,
    limits: CsvLimits,
) -> Result<(), CsvInputError> {
    match reader.get_mut().next_row() {
        Some(RowInfo { cut: Some(_), .. }) => Err(CsvInputError::HeaderTooLong {
            file: file.to_owned(),
            limit: limits.max_row_bytes.max(1),
        }),
        _ => Ok(()),
    }
}

pub(super) fn trim_header(h: &[u8]) -> &[u8] {
    let h = h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h);
    h.trim_ascii()
}

pub(super) fn find_columns<const N: usize>(
    header: &csv::ByteRecord,
    names: &[&'static str; N],
    file: &str,
) -> Result<[usize; N], CsvInputError> {
    let mut out = [0; N];
    for (slot, &name) in out.iter_mut().zip(names) {
        *slot = header
            .iter()
            .position(|h| trim_header(h) == name.as_bytes())
            .ok_or_else(|| CsvInputError::MissingColumn {
                file: file.to_owned(),
                column: name,
            })?;
    }
    Ok(out)
}

pub(super) fn intern<T: Clone>(
    table: &mut FastMap<Box<str>, T>,
    key: &str,
    make: fn(&str) -> T,
) -> T {
    if let Some(v) = table.get(key) {
        return v.clone();
    }
    let v = make(key);
    table.insert(key.into(), v.clone());
    v
}

/// The row of the record just read: its line, and whether it was cut.
pub(super) fn row_info<R: Read>(
    reader: &mut csv::Reader<BoundedRows<R>>,
    record: &csv::ByteRecord,
) -> RowInfo {
    reader.get_mut().next_row().unwrap_or_else(|| RowInfo {
        // Unreachable (the adapter follows every record); the reader's own line then.
        line: record.position().map_or(0, csv::Position::line),
        cut: None,
    })
}

/// The error for a row that [`BoundedRows`] cut, at `line`, naming the column (`field`)
/// in which the row crossed the limit.
pub(super) fn row_too_long(
    header: &csv::ByteRecord,
    file: &str,
    line: u64,
    field: usize,
    limits: CsvLimits,
) -> RowError {
    let column = match header.get(field) {
        Some(name) => String::from_utf8_lossy(trim_header(name)).into_owned(),
        None => format!("#{}", field + 1),
    };
    RowError {
        file: file.to_owned(),
        line,
        column,
        message: format!(
            "the row is longer than the limit of {} bytes",
            limits.max_row_bytes.max(1)
        ),
    }
}

/// One record with what is needed to report its errors.
pub(super) struct Row<'a> {
    pub(super) record: &'a csv::ByteRecord,
    /// All the record's fields as one text, when they are valid UTF-8 together.
    pub(super) text: Option<&'a str>,
    pub(super) header: &'a csv::ByteRecord,
    pub(super) file: &'a str,
    pub(super) line: u64,
    /// Longest field accepted ([`CsvLimits::max_field_bytes`]).
    pub(super) max_field: usize,
}

impl Row<'_> {
    pub(super) fn error(&self, column: usize, message: String) -> RowError {
        let name = self.header.get(column).map(trim_header).unwrap_or_default();
        RowError {
            file: self.file.to_owned(),
            line: self.line,
            column: String::from_utf8_lossy(name).into_owned(),
            message,
        }
    }

    /// The cell as text, possibly empty.
    pub(super) fn str(&self, column: usize) -> Result<&str, RowError> {
        let range = self
            .record
            .range(column)
            .ok_or_else(|| self.error(column, "missing: the row is too short".to_owned()))?;
        if range.len() > self.max_field {
            return Err(self.error(
                column,
                format!(
                    "the field is {} bytes, longer than the limit of {}",
                    range.len(),
                    self.max_field
                ),
            ));
        }
        let text = match self.text {
            // The row was validated once: slicing it is free (and still checks that the
            // field starts and ends on character boundaries).
            Some(whole) => whole.get(range),
            None => std::str::from_utf8(&self.record.as_slice()[range]).ok(),
        };
        text.ok_or_else(|| self.error(column, "not UTF-8 text".to_owned()))
    }

    /// The cell as non-empty text, trimmed.
    pub(super) fn text(&self, column: usize) -> Result<&str, RowError> {
        let s = self.str(column)?.trim();
        if s.is_empty() {
            return Err(self.error(column, "empty".to_owned()));
        }
        Ok(s)
    }

    pub(super) fn number(&self, column: usize) -> Result<Decimal, RowError> {
        let s = self.text(column)?;
        parse_decimal(s).map_err(|e| self.error(column, e.to_string()))
    }

    pub(super) fn optional_price(&self, column: usize) -> Result<Option<Decimal>, RowError> {
        let s = self.str(column)?.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let p = parse_decimal(s).map_err(|e| self.error(column, e.to_string()))?;
        Ok((!p.is_zero()).then_some(p))
    }

    pub(super) fn side(&self, column: usize) -> Result<Side, RowError> {
        let s = self.text(column)?;
        match s {
            "0" | "0.0" => Ok(Side::Buy),
            "1" | "1.0" => Ok(Side::Sell),
            _ => s
                .parse::<Side>()
                .map_err(|_| self.error(column, format!("`{s}` is not 0 (buy) or 1 (sell)"))),
        }
    }

    pub(super) fn time(&self, column: usize) -> Result<DateTime<Utc>, RowError> {
        let s = self.text(column)?;
        let shown = || s.chars().take(64).collect::<String>();
        let at = parse_timestamp(s).ok_or_else(|| {
            self.error(
                column,
                format!(
                    "`{}` is not a UTC time YYYY-MM-DD HH:MM:SS[.ffffff]",
                    shown()
                ),
            )
        })?;
        // The metrics work in epoch nanoseconds; refuse here what they cannot hold, so
        // that one such row is a row error and not a failed report.
        epoch_nanos(at).map_err(|_| {
            self.error(
                column,
                format!(
                    "`{}` is outside the supported range 1677-09-21 to 2262-04-11",
                    shown()
                ),
            )
        })?;
        Ok(at)
    }
}

/// Parses a UTC timestamp as written in exports: `YYYY-MM-DD HH:MM:SS` with an optional
/// fraction of 1 to 9 digits, `T` allowed for the space, an optional `Z` or `+00:00`;
/// anything else is tried as RFC 3339 and converted to UTC.
#[must_use]
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let shaped = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && b[13] == b':'
        && b[16] == b':';
    if !shaped {
        return DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|d| d.with_timezone(&Utc));
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0_u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0, 4)?).ok()?;
    let (month, day) = (num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut rest = &b[19..];
    let mut nanos = 0_u32;
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let value = num(20, 20 + digits)?;
        nanos = value * 10_u32.pow(9 - u32::try_from(digits).ok()?);
        rest = &frac[digits..];
    }
    match rest {
        b"" | b"Z" | b"+00:00" => {}
        _ => {
            return DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|d| d.with_timezone(&Utc))
        }
    }
    NaiveDate::from_ymd_opt(year, month, day)?
        .and_hms_nano_opt(hour, minute, second, nanos)
        .map(|t| t.and_utc())
}
