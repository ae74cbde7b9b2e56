//! From header and cells to values: finding columns, reading a cell as text, number, side
//! or time with a [`RowError`] naming its line and column, and parsing export timestamps.

use std::io::Read;

use chrono::{DateTime, NaiveDate, Utc};
use risk_core::metrics::epoch_nanos;
use risk_core::model::Side;
use risk_core::num::parse_decimal;
use risk_core::Decimal;

use risk_core::hash::HashMap as FastMap;

use super::bounded::{BoundedRows, RowInfo};
use super::error::{CsvInputError, RowError};
use super::CsvLimits;

/// [`CsvInputError::HeaderTooLong`] when the header row (row 0) was cut.
fn check_header<R: Read>(
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

/// A bounded csv reader over `source` (see [`BoundedRows`]) and its header row.
///
/// # Errors
/// [`CsvInputError::Csv`] when the header cannot be read, [`CsvInputError::HeaderTooLong`]
/// when it is longer than the row limit.
pub(super) fn open_reader<R: Read>(
    source: R,
    file: &str,
    limits: CsvLimits,
) -> Result<(csv::Reader<BoundedRows<R>>, csv::ByteRecord), CsvInputError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(BoundedRows::new(source, limits.max_row_bytes));
    let header = reader
        .byte_headers()
        .map_err(|e| csv_error(file, e))?
        .clone();
    check_header(&mut reader, file, limits)?;
    Ok((reader, header))
}

/// The csv reader's error, naming the file.
pub(super) fn csv_error(file: &str, source: csv::Error) -> CsvInputError {
    CsvInputError::Csv {
        file: file.to_owned(),
        source,
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

/// Ids of one kind (logins, symbols) shared by the rows that name them: one allocation
/// per distinct text. The last one is tried first, since exports list an account's
/// trades together.
pub(super) struct Interner<T> {
    table: FastMap<Box<str>, T>,
    last: Option<T>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Self {
            table: FastMap::default(),
            last: None,
        }
    }
}

impl<T: Clone + std::borrow::Borrow<str>> Interner<T> {
    /// The id for `key`, made by `make` the first time.
    pub(super) fn get(&mut self, key: &str, make: fn(&str) -> T) -> T {
        if let Some(last) = &self.last {
            if last.borrow() == key {
                return last.clone();
            }
        }
        let v = match self.table.get(key) {
            Some(v) => v.clone(),
            None => {
                let v = make(key);
                self.table.insert(key.into(), v.clone());
                v
            }
        };
        self.last = Some(v.clone());
        v
    }
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

/// A row's cells: a csv record (the general reader), or the fields of a quote-free row
/// split in place (the fast reader, `Ingest::run_split`).
#[derive(Clone, Copy)]
pub(super) enum Cells<'a> {
    /// A record of the csv reader.
    Record {
        /// The record.
        record: &'a csv::ByteRecord,
        /// All the record's fields as one text, when they are valid UTF-8 together.
        text: Option<&'a str>,
    },
    /// A row split in place.
    Split {
        /// The row's first fields, as many as the reader uses (fewer when the row is
        /// short).
        fields: &'a [&'a [u8]],
        /// The text the fields were cut from, when it is valid UTF-8 as a whole: a cell
        /// read as text is then sliced from it, not validated again.
        text: Option<&'a str>,
    },
}

/// One record with what is needed to report its errors.
pub(super) struct Row<'a> {
    pub(super) cells: Cells<'a>,
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

    /// The cell's bytes, possibly empty: an error when the row is too short or the cell
    /// longer than the field limit.
    pub(super) fn bytes(&self, column: usize) -> Result<&[u8], RowError> {
        let cell = match self.cells {
            Cells::Record { record, .. } => record.get(column),
            Cells::Split { fields, .. } => fields.get(column).copied(),
        };
        let cell =
            cell.ok_or_else(|| self.error(column, "missing: the row is too short".to_owned()))?;
        if cell.len() > self.max_field {
            return Err(self.error(
                column,
                format!(
                    "the field is {} bytes, longer than the limit of {}",
                    cell.len(),
                    self.max_field
                ),
            ));
        }
        Ok(cell)
    }

    /// The cell as text, possibly empty.
    pub(super) fn str(&self, column: usize) -> Result<&str, RowError> {
        let cell = self.bytes(column)?;
        let text = match self.cells {
            // The row was validated once: slicing it is free (and still checks that the
            // field starts and ends on character boundaries).
            Cells::Record {
                record,
                text: Some(whole),
            } => record.range(column).and_then(|range| whole.get(range)),
            // The cell's place in the text, from its address (a field is a subslice).
            Cells::Split {
                text: Some(whole), ..
            } => (cell.as_ptr() as usize)
                .checked_sub(whole.as_ptr() as usize)
                .and_then(|from| whole.get(from..from + cell.len())),
            _ => std::str::from_utf8(cell).ok(),
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

    /// The cell as a decimal number. The common shape (`-?digits[.digits]`, at most 19
    /// digits) is read straight from the bytes; anything else goes through
    /// [`parse_decimal`], which decides (and words the error).
    pub(super) fn number(&self, column: usize) -> Result<Decimal, RowError> {
        if let Some(d) = plain_decimal(self.bytes(column)?) {
            return Ok(d);
        }
        let s = self.text(column)?;
        parse_decimal(s).map_err(|e| self.error(column, e.to_string()))
    }

    /// An optional price: empty or zero means not set.
    pub(super) fn optional_price(&self, column: usize) -> Result<Option<Decimal>, RowError> {
        let cell = self.bytes(column)?;
        if cell.is_empty() {
            return Ok(None);
        }
        if let Some(p) = plain_decimal(cell) {
            return Ok((!p.is_zero()).then_some(p));
        }
        let s = self.str(column)?.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let p = parse_decimal(s).map_err(|e| self.error(column, e.to_string()))?;
        Ok((!p.is_zero()).then_some(p))
    }

    pub(super) fn side(&self, column: usize) -> Result<Side, RowError> {
        match self.bytes(column)? {
            b"0" => return Ok(Side::Buy),
            b"1" => return Ok(Side::Sell),
            _ => {}
        }
        let s = self.text(column)?;
        match s {
            "0" | "0.0" => Ok(Side::Buy),
            "1" | "1.0" => Ok(Side::Sell),
            _ => s
                .parse::<Side>()
                .map_err(|_| self.error(column, format!("`{s}` is not 0 (buy) or 1 (sell)"))),
        }
    }

    /// The cell as a UTC time ([`parse_timestamp`]) in the metrics' range, with its
    /// nanoseconds since the epoch. `dates` holds the last date read: a run of times on
    /// one day parses the date once.
    pub(super) fn time(
        &self,
        column: usize,
        dates: &mut DateCache,
    ) -> Result<(DateTime<Utc>, i64), RowError> {
        // The common case, straight from the bytes; anything else (spaces to trim, an
        // offset, a time out of range or not a time) is decided below.
        if let Some(at) = dates.parse(self.bytes(column)?) {
            if let Ok(ns) = epoch_nanos(at) {
                return Ok((at, ns));
            }
        }
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
        let ns = epoch_nanos(at).map_err(|_| {
            self.error(
                column,
                format!(
                    "`{}` is outside the supported range 1677-09-21 to 2262-04-11",
                    shown()
                ),
            )
        })?;
        Ok((at, ns))
    }
}

/// The last date part (`YYYY-MM-DD`, as two words) of a time read, and its date.
#[derive(Debug, Default)]
pub(super) struct DateCache(Option<(u64, u16, NaiveDate)>);

impl DateCache {
    /// `YYYY-MM-DD HH:MM:SS` (or `T` for the space) with an optional fraction of 1 to 9
    /// digits and an optional `Z` or `+00:00`, as [`parse_timestamp`] reads it; `None` for
    /// any other text, which the caller hands to [`parse_timestamp`].
    pub(super) fn parse(&mut self, cell: &[u8]) -> Option<DateTime<Utc>> {
        let shaped = cell.len() >= 19
            && cell[4] == b'-'
            && cell[7] == b'-'
            && (cell[10] == b' ' || cell[10] == b'T')
            && cell[13] == b':'
            && cell[16] == b':';
        if !shaped {
            return None;
        }
        let digits = |from: usize, to: usize| -> Option<u32> {
            cell[from..to].iter().try_fold(0_u32, |acc, &c| {
                c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
            })
        };
        // Two digits at `at`, tested together.
        let two = |at: usize| -> Option<u32> {
            let (tens, ones) = (cell[at].wrapping_sub(b'0'), cell[at + 1].wrapping_sub(b'0'));
            (tens < 10 && ones < 10).then(|| u32::from(tens) * 10 + u32::from(ones))
        };
        let head = u64::from_le_bytes(cell[..8].try_into().ok()?);
        let tail = u16::from_le_bytes(cell[8..10].try_into().ok()?);
        let date = match self.0 {
            Some((h, t, date)) if h == head && t == tail => date,
            _ => {
                let year = i32::try_from(digits(0, 4)?).ok()?;
                let date = NaiveDate::from_ymd_opt(year, two(5)?, two(8)?)?;
                self.0 = Some((head, tail, date));
                date
            }
        };
        let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
        let mut rest = &cell[19..];
        let mut nanos = 0_u32;
        if let Some(frac) = rest.strip_prefix(b".") {
            // 1 to 9 digits, scaled to nanoseconds in the same pass.
            let mut n = 0;
            let mut scale = 1_000_000_000_u32;
            while let Some(d) = frac
                .get(n)
                .map(|c| c.wrapping_sub(b'0'))
                .filter(|&d| d < 10)
            {
                if n == 9 {
                    return None;
                }
                scale /= 10;
                nanos += u32::from(d) * scale;
                n += 1;
            }
            if n == 0 {
                return None;
            }
            rest = &frac[n..];
        }
        if !matches!(rest, b"" | b"Z" | b"+00:00") {
            return None;
        }
        date.and_hms_nano_opt(hour, minute, second, nanos)
            .map(|t| t.and_utc())
    }
}

/// `-?digits[.digits]` with at most 19 digits, as [`parse_decimal`] reads it (the same
/// mantissa and scale), straight from the bytes; `None` for anything else (a `+`, an
/// exponent, spaces, a lone `.`, a negative zero, more digits), which the caller hands to
/// [`parse_decimal`].
pub(super) fn plain_decimal(cell: &[u8]) -> Option<Decimal> {
    match decimal_prefix(cell) {
        (value, n) if n == cell.len() => value,
        _ => None,
    }
}

/// The longest prefix of `bytes` made of an optional `-` and then digits and at most one
/// point, with its length, and its value as [`plain_decimal`] reads that prefix alone
/// (`None` when it reads none). The fast row parse reads a cell with it and checks that
/// the byte after the prefix ends the cell.
#[inline]
pub(super) fn decimal_prefix(bytes: &[u8]) -> (Option<Decimal>, usize) {
    let start = usize::from(bytes.first() == Some(&b'-'));
    // The digits before the point, then (after a point) those after it; each loop only
    // reads a byte, tests it and adds it.
    let (mut mantissa, mut end) = (0_u64, start);
    while end < bytes.len() {
        let d = bytes[end].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        // Wraps only past 19 digits, refused below.
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
        end += 1;
    }
    let whole = end - start;
    let mut scale = 0;
    if end < bytes.len() && bytes[end] == b'.' {
        end += 1;
        let from = end;
        while end < bytes.len() {
            let d = bytes[end].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
            end += 1;
        }
        scale = end - from;
        // Digits on both sides of the point.
        if whole == 0 || scale == 0 {
            return (None, end);
        }
    }
    // 1 to 19 digits (10^19 - 1 fits a u64), and no negative zero.
    let negative = start == 1;
    if whole + scale == 0 || whole + scale > 19 || (negative && mantissa == 0) {
        return (None, end);
    }
    // Split the u64 into the low and middle 32-bit words of the 96-bit mantissa; the
    // scale is at most 19.
    let (lo, mid) = (mantissa as u32, (mantissa >> 32) as u32);
    (
        Some(Decimal::from_parts(lo, mid, 0, negative, scale as u32)),
        end,
    )
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
