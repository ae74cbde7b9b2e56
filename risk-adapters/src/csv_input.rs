//! CSV ingestion: prop-firm closed-trade exports and accounts files.
//!
//! # Trades export
//! Columns are found by header name, in any order; unnamed columns (the index column a
//! dataframe export leaves first) and columns not listed here are ignored. Required:
//! `identifier`, `action`, `open_price`, `close_price`, `commission`, `lot_size`,
//! `opened_at`, `closed_at`, `price_sl`, `price_tp`, `profit`, `swap`, `symbol`,
//! `trading_account_login`.
//!
//! - `identifier` and `trading_account_login` stay text (ids can exceed 2^53).
//! - `action`: `0` / `1` (also `0.0` / `1.0`, `buy` / `sell`).
//! - Money and prices are parsed straight to `Decimal`, exactly as written
//!   (`4.899999999999999` stays that number).
//! - `price_sl` / `price_tp`: empty or zero means not set.
//! - Times are UTC: `YYYY-MM-DD HH:MM:SS` with or without a fraction of up to 9 digits,
//!   `T` accepted for the space and a trailing `Z` or `+00:00` accepted; other RFC 3339
//!   offsets are converted to UTC.
//!
//! A bad row (a number or time that does not parse, a time outside the metrics' range of
//! 1677-09-21 to 2262-04-11, an unknown action, an empty identifier, symbol or login,
//! `closed_at` before `opened_at`, a short row) is reported
//! as a [`RowError`] with file, line and column, skipped and counted; the good rows are
//! kept. A row whose `identifier` was already seen in the file is dropped and counted as a
//! duplicate (the first one wins). Only an unreadable file or a missing required column
//! stops the read.
//!
//! # Accounts file
//! Header `login,user_id,challenge_id[,initial_balance][,group_id]`; an empty
//! `challenge_id` means unknown, an empty `initial_balance` means the configured default.
//! `group_id` links users (the cross-account hedging detector treats the accounts of
//! users in one group as one owner's); empty means no group. A bad row or a login
//! listed twice is a [`RowError`] (the first listing wins).
//!
//! # Limits
//! A hostile or broken file costs a bounded amount of memory per row: a row (from its
//! first byte to its line end, quotes and delimiters included) longer than
//! [`CsvLimits::max_row_bytes`] ([`MAX_ROW_BYTES`], 64 KiB, by default) is cut before the
//! csv reader buffers it and reported as a [`RowError`] ("the row is longer than the limit
//! of 65536 bytes"), naming the column where it crossed the limit; the rows around it are
//! read as usual. An unterminated quote therefore costs one row error, not the whole file
//! in memory. A field that the reader uses (the columns listed above) longer than
//! [`CsvLimits::max_field_bytes`] ([`MAX_FIELD_BYTES`], 1 KiB) makes its row a
//! [`RowError`] too, so that no kept trade carries a huge id, login or symbol. A header
//! longer than the row limit stops the read ([`CsvInputError::HeaderTooLong`]).

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use risk_core::ids::{AccountId, ChallengeId, Symbol, TradeId, UserId};
use risk_core::metrics::{epoch_nanos, ClosedTrade};
use risk_core::model::Side;
use risk_core::num::parse_decimal;
use risk_core::Decimal;

use risk_core::hash::{FxHashMap as FastMap, FxHashSet as FastSet};

mod bounded;
use bounded::{BoundedRows, RowInfo};

/// At most this many [`RowError`]s are kept per file; all of them are counted.
pub const MAX_KEPT_ROW_ERRORS: usize = 1_000;

/// Default for [`CsvLimits::max_row_bytes`]: 64 KiB, some 300 times the longest row of a
/// real export.
pub const MAX_ROW_BYTES: usize = 64 * 1024;

/// Default for [`CsvLimits::max_field_bytes`]: 1 KiB, far above any id, login, symbol,
/// number or time (decimals are refused above 64 characters anyway).
pub const MAX_FIELD_BYTES: usize = 1024;

/// Bounds on what one row of a CSV file may cost; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvLimits {
    /// Longest row, in bytes, from its first byte to its line end (not included).
    /// Values below 1 count as 1.
    pub max_row_bytes: usize,
    /// Longest field, in bytes, in a column the reader uses.
    pub max_field_bytes: usize,
}

impl Default for CsvLimits {
    /// [`MAX_ROW_BYTES`] and [`MAX_FIELD_BYTES`].
    fn default() -> Self {
        Self {
            max_row_bytes: MAX_ROW_BYTES,
            max_field_bytes: MAX_FIELD_BYTES,
        }
    }
}

/// A row that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The file, as named by the caller.
    pub file: String,
    /// 1-based line of the row in the file.
    pub line: u64,
    /// The column at fault (its header name).
    pub column: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: column `{}`: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// A file that could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsvInputError {
    /// The file could not be opened.
    #[error("cannot open {file}: {source}")]
    Open {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CSV reader failed (I/O error or an unreadable header).
    #[error("cannot read {file}: {source}")]
    Csv {
        /// The file.
        file: String,
        /// The reader's error.
        source: csv::Error,
    },
    /// The header row is longer than [`CsvLimits::max_row_bytes`].
    #[error("{file}: the header row is longer than the limit of {limit} bytes")]
    HeaderTooLong {
        /// The file.
        file: String,
        /// The limit.
        limit: usize,
    },
    /// A required column is not in the header.
    #[error("{file}: the header has no `{column}` column")]
    MissingColumn {
        /// The file.
        file: String,
        /// The missing column.
        column: &'static str,
    },
}

/// The good trades of an export, with what was skipped.
#[derive(Debug, Clone, Default)]
pub struct TradeFile {
    /// Every good, first-seen trade, in file order.
    pub trades: Vec<ClosedTrade>,
    /// The first [`MAX_KEPT_ROW_ERRORS`] bad rows.
    pub errors: Vec<RowError>,
    /// All bad rows.
    pub skipped_rows: u64,
    /// Rows dropped because their identifier was already seen.
    pub duplicate_rows: u64,
}

/// What the accounts file says about one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// The owner.
    pub user: UserId,
    /// The challenge, `None` when unknown.
    pub challenge: Option<ChallengeId>,
    /// The account's starting balance, `None` for the configured default.
    pub initial_balance: Option<Decimal>,
    /// The group linking its user to others, `None` when not given.
    pub group: Option<String>,
}

/// The accounts file: login to owner, challenge and initial balance.
#[derive(Debug, Clone, Default)]
pub struct AccountsFile {
    /// Every good row, by login.
    pub accounts: HashMap<AccountId, AccountInfo>,
    /// Logins in file order.
    pub order: Vec<AccountId>,
    /// The first [`MAX_KEPT_ROW_ERRORS`] bad rows.
    pub errors: Vec<RowError>,
    /// All bad rows.
    pub skipped_rows: u64,
}

const TRADE_COLUMNS: [&str; 14] = [
    "identifier",
    "action",
    "open_price",
    "close_price",
    "commission",
    "lot_size",
    "opened_at",
    "closed_at",
    "price_sl",
    "price_tp",
    "profit",
    "swap",
    "symbol",
    "trading_account_login",
];

const ACCOUNT_COLUMNS: [&str; 3] = ["login", "user_id", "challenge_id"];

fn open(path: &Path) -> Result<std::fs::File, CsvInputError> {
    std::fs::File::open(path).map_err(|source| CsvInputError::Open {
        file: path.display().to_string(),
        source,
    })
}

/// Files smaller than this are read on one core.
const PARALLEL_MIN_BYTES: usize = 4 << 20;

/// Reads a trades export from a file; see [`read_trades`]. `progress` is called with the
/// number of bytes parsed so far, possibly from several threads.
///
/// A large file without quoted fields (exports from dataframes have none) is split at line
/// boundaries and parsed on every core; the result is the same as a sequential read:
/// trades in file order, the first occurrence of an id kept, the same counts.
///
/// # Errors
/// [`CsvInputError`] when the file cannot be opened or read, or lacks a required column.
pub fn read_trades_path(
    path: &Path,
    progress: impl Fn(u64) + Sync,
) -> Result<TradeFile, CsvInputError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| CsvInputError::Open {
        file: name.clone(),
        source,
    })?;
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if bytes.len() < PARALLEL_MIN_BYTES {
        return read_trades(bytes.as_slice(), &name, progress);
    }
    read_trades_parallel(&bytes, &name, workers, progress)
}

/// Reads a trades export. `file` names the source in row errors; `progress` is called
/// now and then with the number of bytes read so far.
///
/// # Errors
/// [`CsvInputError`] when the source cannot be read or lacks a required column; bad rows
/// are not errors (see [`TradeFile`]).
pub fn read_trades<R: Read>(
    source: R,
    file: &str,
    progress: impl FnMut(u64),
) -> Result<TradeFile, CsvInputError> {
    read_trades_with(source, file, CsvLimits::default(), progress)
}

/// [`read_trades`] with explicit [`CsvLimits`].
///
/// # Errors
/// As [`read_trades`].
pub fn read_trades_with<R: Read>(
    source: R,
    file: &str,
    limits: CsvLimits,
    mut progress: impl FnMut(u64),
) -> Result<TradeFile, CsvInputError> {
    let csv_err = |source| CsvInputError::Csv {
        file: file.to_owned(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(BoundedRows::new(source, limits.max_row_bytes));
    let header = reader.byte_headers().map_err(csv_err)?.clone();
    check_header(&mut reader, file, limits)?;
    let cols = find_columns(&header, &TRADE_COLUMNS, file)?;
    let mut ingest = Ingest::new(&header, cols, file, limits, 0, 0);
    ingest.run(&mut reader, &mut progress).map_err(csv_err)?;
    Ok(ingest.out)
}

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

/// [`read_trades`] over an in-memory export split across `workers` threads (sequential
/// when there is one worker, or when the text has a quote, since a quoted field may hold a
/// line break and line boundaries are then not row boundaries).
///
/// # Errors
/// As [`read_trades`].
pub fn read_trades_parallel(
    bytes: &[u8],
    file: &str,
    workers: usize,
    progress: impl Fn(u64) + Sync,
) -> Result<TradeFile, CsvInputError> {
    read_trades_parallel_with(bytes, file, workers, CsvLimits::default(), progress)
}

/// [`read_trades_parallel`] with explicit [`CsvLimits`]; each chunk is bounded as a
/// sequential read is, so the result is still the same.
///
/// # Errors
/// As [`read_trades`].
pub fn read_trades_parallel_with(
    bytes: &[u8],
    file: &str,
    workers: usize,
    limits: CsvLimits,
    progress: impl Fn(u64) + Sync,
) -> Result<TradeFile, CsvInputError> {
    // The csv reader ends a record at `\n`, `\r\n` or a lone `\r`: so does the header.
    let header_end =
        bytes
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .map_or(bytes.len(), |i| {
                if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    i + 2
                } else {
                    i + 1
                }
            });
    if workers < 2 || bytes.contains(&b'"') || bytes.len() - header_end < workers {
        return read_trades_with(bytes, file, limits, progress);
    }
    let csv_err = |source| CsvInputError::Csv {
        file: file.to_owned(),
        source,
    };
    let mut header_reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(BoundedRows::new(&bytes[..header_end], limits.max_row_bytes));
    let header = header_reader.byte_headers().map_err(csv_err)?.clone();
    check_header(&mut header_reader, file, limits)?;
    let cols = find_columns(&header, &TRADE_COLUMNS, file)?;

    // Chunk boundaries just after a line break, and the line number each chunk starts on.
    let body = &bytes[header_end..];
    let mut bounds = vec![0_usize];
    for k in 1..workers {
        let target = (body.len() * k / workers).max(bounds[bounds.len() - 1]);
        let cut = body[target..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| target + i + 1);
        bounds.push(cut);
    }
    bounds.push(body.len());
    bounds.dedup();
    // Each chunk gets its own csv reader, and a csv reader drops a UTF-8 byte-order mark
    // at the start of its input: a row that starts with one must be read in place.
    let chunk_starts = &bounds[..bounds.len() - 1];
    if chunk_starts
        .iter()
        .any(|&start| body[start..].starts_with(b"\xEF\xBB\xBF"))
    {
        return read_trades_with(bytes, file, limits, progress);
    }
    let mut first_lines = vec![1_u64 + count_lines(&bytes[..header_end])];
    for w in bounds.windows(2).take(bounds.len().saturating_sub(2)) {
        let last = first_lines[first_lines.len() - 1];
        first_lines.push(last + count_lines(&body[w[0]..w[1]]));
    }

    let done = std::sync::atomic::AtomicU64::new(header_end as u64);
    let parts: Vec<Result<Ingest<'_>, csv::Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = bounds
            .windows(2)
            .zip(&first_lines)
            .enumerate()
            .map(|(k, (w, &first_line))| {
                let chunk = &body[w[0]..w[1]];
                // The first chunk's vector receives every chunk's trades at the merge:
                // reserve for the whole file there (untouched capacity costs no memory).
                let capacity = if k == 0 { body.len() } else { chunk.len() } / 100;
                let (header, done, progress) = (&header, &done, &progress);
                s.spawn(move || {
                    let mut reader = csv::ReaderBuilder::new()
                        .flexible(true)
                        .has_headers(false)
                        .buffer_capacity(1 << 16)
                        .from_reader(BoundedRows::new(chunk, limits.max_row_bytes));
                    let mut ingest =
                        Ingest::new(header, cols, file, limits, first_line - 1, capacity);
                    let mut reported = 0;
                    ingest.run(&mut reader, |bytes| {
                        let delta = bytes - reported;
                        reported = bytes;
                        let before = done.fetch_add(delta, std::sync::atomic::Ordering::Relaxed);
                        progress(before + delta);
                    })?;
                    Ok(ingest)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    progress(bytes.len() as u64);

    // Merge in file order, as a sequential read would have decided: an id claimed by an
    // earlier chunk makes a later chunk's row a duplicate, good or bad.
    let mut merged: Option<Ingest<'_>> = None;
    for part in parts {
        let part = part.map_err(csv_err)?;
        let Some(first) = merged.as_mut() else {
            merged = Some(part);
            continue;
        };
        for bad in part.bad_rows {
            let repeated = bad.id.as_ref().is_some_and(|id| first.claimed(id));
            if repeated {
                first.out.duplicate_rows += 1;
            } else {
                first.out.skipped_rows += 1;
                if let Some(e) = bad.error {
                    if first.out.errors.len() < MAX_KEPT_ROW_ERRORS {
                        first.out.errors.push(e);
                    }
                }
            }
        }
        first.out.duplicate_rows += part.out.duplicate_rows;
        first.out.trades.reserve(part.out.trades.len());
        for trade in part.out.trades {
            let key = IdKey::of(trade.id.as_str());
            if first.claim(key, &trade.id) {
                first.out.trades.push(trade);
            } else {
                first.out.duplicate_rows += 1;
            }
        }
    }
    Ok(merged.map(|m| m.out).unwrap_or_default())
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// A trade id as de-duplicated: canonical decimal ids that fit a u64 as integers (cheaper
/// to hash and compare), any other id as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdKey {
    Numeric(u64),
    Text,
}

impl IdKey {
    fn of(id: &str) -> Self {
        numeric_id(id).map_or(Self::Text, Self::Numeric)
    }
}

/// A skipped row, with its id when it had one (a parallel merge may find it repeated).
struct BadRow {
    id: Option<TradeId>,
    error: Option<RowError>,
}

/// The state of one sequential pass over rows.
struct Ingest<'a> {
    header: &'a csv::ByteRecord,
    cols: [usize; 14],
    file: &'a str,
    limits: CsvLimits,
    /// Added to the rows' line numbers (for a chunk that starts mid-file).
    line_offset: u64,
    out: TradeFile,
    seen_numeric: FastSet<u64>,
    seen_text: FastSet<TradeId>,
    logins: FastMap<Box<str>, AccountId>,
    symbols: FastMap<Box<str>, Symbol>,
    bad_rows: Vec<BadRow>,
}

impl<'a> Ingest<'a> {
    fn new(
        header: &'a csv::ByteRecord,
        cols: [usize; 14],
        file: &'a str,
        limits: CsvLimits,
        line_offset: u64,
        capacity: usize,
    ) -> Self {
        Self {
            header,
            cols,
            file,
            limits,
            line_offset,
            out: TradeFile {
                trades: Vec::with_capacity(capacity),
                ..TradeFile::default()
            },
            seen_numeric: FastSet::with_capacity_and_hasher(capacity, Default::default()),
            seen_text: FastSet::default(),
            logins: FastMap::default(),
            symbols: FastMap::default(),
            bad_rows: Vec::new(),
        }
    }

    fn claimed(&self, id: &TradeId) -> bool {
        match IdKey::of(id.as_str()) {
            IdKey::Numeric(n) => self.seen_numeric.contains(&n),
            IdKey::Text => self.seen_text.contains(id.as_str()),
        }
    }

    /// Claims an id; false when it was already claimed.
    fn claim(&mut self, key: IdKey, id: &TradeId) -> bool {
        match key {
            IdKey::Numeric(n) => self.seen_numeric.insert(n),
            IdKey::Text => {
                !self.seen_text.contains(id.as_str()) && self.seen_text.insert(id.clone())
            }
        }
    }

    fn skip(&mut self, id: Option<TradeId>, error: RowError) {
        self.out.skipped_rows += 1;
        let kept = (self.out.errors.len() < MAX_KEPT_ROW_ERRORS).then_some(error);
        if let Some(e) = &kept {
            self.out.errors.push(e.clone());
        }
        self.bad_rows.push(BadRow { id, error: kept });
    }

    /// Reads every record (after the header, if the reader has one).
    fn run<R: Read>(
        &mut self,
        reader: &mut csv::Reader<BoundedRows<R>>,
        mut progress: impl FnMut(u64),
    ) -> Result<(), csv::Error> {
        let mut record = csv::ByteRecord::new();
        let mut rows = 0_u64;
        while reader.read_byte_record(&mut record)? {
            rows += 1;
            if rows.is_multiple_of(65_536) {
                progress(reader.get_ref().consumed());
            }
            let info = row_info(reader, &record);
            let line = info.line + self.line_offset;
            match info.cut {
                Some(field) => {
                    let error = row_too_long(self.header, self.file, line, field, self.limits);
                    self.skip(None, error);
                }
                None => self.row(&record, line),
            }
        }
        progress(reader.get_ref().consumed());
        Ok(())
    }

    fn row(&mut self, record: &csv::ByteRecord, line: u64) {
        let [c_id, c_action, c_open, c_close, c_comm, c_lots, c_opened, c_closed, c_sl, c_tp, c_profit, c_swap, c_symbol, c_login] =
            self.cols;
        let row = Row {
            record,
            text: std::str::from_utf8(record.as_slice()).ok(),
            header: self.header,
            file: self.file,
            line,
            max_field: self.limits.max_field_bytes,
        };
        let id = match row.text(c_id) {
            Ok(id) => TradeId::new(id),
            Err(e) => return self.skip(None, e),
        };
        // Claim the id now (one hash operation for the common numeric case); a row that
        // turns out bad gives it back, so a corrected re-send of the row is still kept.
        let key = IdKey::of(id.as_str());
        if !self.claim(key.clone(), &id) {
            self.out.duplicate_rows += 1;
            return;
        }
        let (logins, symbols) = (&mut self.logins, &mut self.symbols);
        let parsed = (|| -> Result<ClosedTrade, RowError> {
            let login = row.text(c_login)?;
            let symbol = row.text(c_symbol)?;
            let side = row.side(c_action)?;
            let opened_at = row.time(c_opened)?;
            let closed_at = row.time(c_closed)?;
            if closed_at < opened_at {
                return Err(row.error(c_closed, "closed before it was opened".to_owned()));
            }
            Ok(ClosedTrade {
                id: id.clone(),
                account: intern(logins, login, AccountId::new),
                symbol: intern(symbols, symbol, Symbol::new),
                side,
                volume: row.number(c_lots)?,
                opened_at,
                closed_at,
                open_price: row.number(c_open)?,
                close_price: row.number(c_close)?,
                stop_loss: row.optional_price(c_sl)?,
                take_profit: row.optional_price(c_tp)?,
                profit: row.number(c_profit)?,
                commission: row.number(c_comm)?,
                swap: row.number(c_swap)?,
            })
        })();
        match parsed {
            Ok(trade) => self.out.trades.push(trade),
            Err(e) => {
                match key {
                    IdKey::Numeric(n) => self.seen_numeric.remove(&n),
                    IdKey::Text => self.seen_text.remove(id.as_str()),
                };
                self.skip(Some(id), e);
            }
        }
    }
}

/// Reads an accounts file from a path; see [`read_accounts`].
///
/// # Errors
/// [`CsvInputError`] when the file cannot be opened or read, or lacks a required column.
pub fn read_accounts_path(path: &Path) -> Result<AccountsFile, CsvInputError> {
    read_accounts(open(path)?, &path.display().to_string())
}

/// Reads an accounts file (`login,user_id,challenge_id[,initial_balance]`).
///
/// # Errors
/// [`CsvInputError`] when the source cannot be read or lacks a required column.
pub fn read_accounts<R: Read>(source: R, file: &str) -> Result<AccountsFile, CsvInputError> {
    read_accounts_with(source, file, CsvLimits::default())
}

/// [`read_accounts`] with explicit [`CsvLimits`].
///
/// # Errors
/// As [`read_accounts`].
pub fn read_accounts_with<R: Read>(
    source: R,
    file: &str,
    limits: CsvLimits,
) -> Result<AccountsFile, CsvInputError> {
    let csv_err = |source| CsvInputError::Csv {
        file: file.to_owned(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(BoundedRows::new(source, limits.max_row_bytes));
    let header = reader.byte_headers().map_err(csv_err)?.clone();
    check_header(&mut reader, file, limits)?;
    let [c_login, c_user, c_challenge] = find_columns(&header, &ACCOUNT_COLUMNS, file)?;
    let c_balance = header
        .iter()
        .position(|h| trim_header(h) == b"initial_balance");
    let c_group = header.iter().position(|h| trim_header(h) == b"group_id");
    let mut out = AccountsFile::default();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_err(e)),
        }
        let RowInfo { line, cut } = row_info(&mut reader, &record);
        if let Some(field) = cut {
            out.skipped_rows += 1;
            if out.errors.len() < MAX_KEPT_ROW_ERRORS {
                out.errors
                    .push(row_too_long(&header, file, line, field, limits));
            }
            continue;
        }
        let row = Row {
            record: &record,
            text: std::str::from_utf8(record.as_slice()).ok(),
            header: &header,
            file,
            line,
            max_field: limits.max_field_bytes,
        };
        let parsed = (|| -> Result<(AccountId, AccountInfo), RowError> {
            let login = AccountId::new(row.text(c_login)?);
            if out.accounts.contains_key(&login) {
                return Err(row.error(c_login, format!("login {login} is listed twice")));
            }
            let user = UserId::new(row.text(c_user)?);
            let challenge = row.str(c_challenge)?;
            let challenge = (!challenge.is_empty()).then(|| ChallengeId::new(challenge));
            let initial_balance = match c_balance {
                Some(c) if !row.str(c)?.is_empty() => {
                    let b = row.number(c)?;
                    if b <= Decimal::ZERO {
                        return Err(row.error(c, format!("initial balance {b} is not positive")));
                    }
                    Some(b)
                }
                _ => None,
            };
            let group = match c_group {
                Some(c) => Some(row.str(c)?)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned),
                None => None,
            };
            Ok((
                login,
                AccountInfo {
                    user,
                    challenge,
                    initial_balance,
                    group,
                },
            ))
        })();
        match parsed {
            Ok((login, info)) => {
                out.order.push(login.clone());
                out.accounts.insert(login, info);
            }
            Err(e) => {
                out.skipped_rows += 1;
                if out.errors.len() < MAX_KEPT_ROW_ERRORS {
                    out.errors.push(e);
                }
            }
        }
    }
    Ok(out)
}

/// The id as an integer when it is written canonically (digits, no leading zero) and fits
/// a u64, so that two ids are equal as integers exactly when they are equal as text.
fn numeric_id(id: &str) -> Option<u64> {
    let b = id.as_bytes();
    if b.is_empty()
        || b.len() > 19
        || (b[0] == b'0' && b.len() > 1)
        || !b.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    id.parse().ok()
}

fn trim_header(h: &[u8]) -> &[u8] {
    let h = h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h);
    h.trim_ascii()
}

fn find_columns<const N: usize>(
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

fn intern<T: Clone>(table: &mut FastMap<Box<str>, T>, key: &str, make: fn(&str) -> T) -> T {
    if let Some(v) = table.get(key) {
        return v.clone();
    }
    let v = make(key);
    table.insert(key.into(), v.clone());
    v
}

/// The row of the record just read: its line, and whether it was cut.
fn row_info<R: Read>(
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
fn row_too_long(
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
struct Row<'a> {
    record: &'a csv::ByteRecord,
    /// All the record's fields as one text, when they are valid UTF-8 together.
    text: Option<&'a str>,
    header: &'a csv::ByteRecord,
    file: &'a str,
    line: u64,
    /// Longest field accepted ([`CsvLimits::max_field_bytes`]).
    max_field: usize,
}

impl Row<'_> {
    fn error(&self, column: usize, message: String) -> RowError {
        let name = self.header.get(column).map(trim_header).unwrap_or_default();
        RowError {
            file: self.file.to_owned(),
            line: self.line,
            column: String::from_utf8_lossy(name).into_owned(),
            message,
        }
    }

    /// The cell as text, possibly empty.
    fn str(&self, column: usize) -> Result<&str, RowError> {
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
    fn text(&self, column: usize) -> Result<&str, RowError> {
        let s = self.str(column)?.trim();
        if s.is_empty() {
            return Err(self.error(column, "empty".to_owned()));
        }
        Ok(s)
    }

    fn number(&self, column: usize) -> Result<Decimal, RowError> {
        let s = self.text(column)?;
        parse_decimal(s).map_err(|e| self.error(column, e.to_string()))
    }

    fn optional_price(&self, column: usize) -> Result<Option<Decimal>, RowError> {
        let s = self.str(column)?.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let p = parse_decimal(s).map_err(|e| self.error(column, e.to_string()))?;
        Ok((!p.is_zero()).then_some(p))
    }

    fn side(&self, column: usize) -> Result<Side, RowError> {
        let s = self.text(column)?;
        match s {
            "0" | "0.0" => Ok(Side::Buy),
            "1" | "1.0" => Ok(Side::Sell),
            _ => s
                .parse::<Side>()
                .map_err(|_| self.error(column, format!("`{s}` is not 0 (buy) or 1 (sell)"))),
        }
    }

    fn time(&self, column: usize) -> Result<DateTime<Utc>, RowError> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HEADER: &str = ",identifier,action,reason,open_price,close_price,commission,lot_size,opened_at,closed_at,pips,price_sl,price_tp,profit,swap,symbol,contract_size,profit_rate,platform,trading_account_login\n";

    fn read(body: &str) -> TradeFile {
        read_trades(format!("{HEADER}{body}").as_bytes(), "t.csv", |_| {}).unwrap()
    }

    #[test]
    fn parses_the_export_format_exactly() {
        let f = read(
            "0,1742642088741327865,1,16.0,3332.9,3332.88,-0.07,0.01,2025-05-05 23:41:50.000000,2025-05-06 00:00:10.5,0.2,0,3300.5,4.899999999999999,0.0,XAUUSD,100.0,1.0,0,10452073\n",
        );
        assert_eq!(f.skipped_rows, 0, "{:?}", f.errors);
        let t = &f.trades[0];
        assert_eq!(t.id.as_str(), "1742642088741327865");
        assert_eq!(t.account.as_str(), "10452073");
        assert_eq!(t.side, Side::Sell);
        assert_eq!(t.profit.to_string(), "4.899999999999999");
        assert_eq!(t.stop_loss, None, "0 means not set");
        assert_eq!(t.take_profit, Some("3300.5".parse().unwrap()));
        assert_eq!(t.closed_at.to_rfc3339(), "2025-05-06T00:00:10.500+00:00");
        assert_eq!(
            t.opened_at,
            parse_timestamp("2025-05-05T23:41:50Z").unwrap()
        );
    }

    #[test]
    fn times_beyond_the_metrics_range_are_row_errors() {
        let row = |id: u32, opened: &str, closed: &str| {
            format!("{id},{id},0,,1.1,1.2,0,0.1,{opened},{closed},1,,,10,0,EURUSD,1,1,0,7\n")
        };
        let body = [
            row(1, "2262-04-11 23:47:16", "2262-04-11 23:47:16.854775807"),
            row(2, "2262-04-11 23:47:16", "2262-04-11 23:47:16.854775808"),
            row(3, "1677-09-21 00:12:43", "2025-05-05 10:00:00"),
            row(4, "2025-05-05 10:00:00", "2025-05-05 10:01:00"),
        ]
        .concat();
        let f = read(&body);
        let kept: Vec<_> = f.trades.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(kept, ["1", "4"], "the last nanosecond is in range");
        let where_: Vec<_> = f
            .errors
            .iter()
            .map(|e| (e.line, e.column.as_str()))
            .collect();
        assert_eq!(where_, [(3, "closed_at"), (4, "opened_at")]);
        assert!(
            f.errors[0]
                .to_string()
                .ends_with("`2262-04-11 23:47:16.854775808` is outside the supported range 1677-09-21 to 2262-04-11"),
            "{}",
            f.errors[0]
        );
    }

    #[test]
    fn bad_rows_are_reported_with_line_and_column_and_skipped() {
        let good = "1,1,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n";
        let body = [
            good,
            "2,2,0,,abc,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n",
            "3,3,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 09:01:00,1,,,10,0,EURUSD,1,1,0,7\n",
            "4,4,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,\n",
            "5,5,0,,1.1,1.2,0,0.1,2025-13-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n",
            "6,1,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n",
            "7,7,2,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n",
            "8,8,0,,1.1\n",
            good.replace("1,1,0", "9,9,1").as_str(),
        ]
        .concat();
        let f = read(&body);
        assert_eq!(f.trades.len(), 2);
        assert_eq!(f.duplicate_rows, 1);
        assert_eq!(f.skipped_rows, 6);
        let where_: Vec<_> = f
            .errors
            .iter()
            .map(|e| (e.line, e.column.as_str()))
            .collect();
        assert_eq!(
            where_,
            [
                (3, "open_price"),
                (4, "closed_at"),
                (5, "trading_account_login"),
                (6, "opened_at"),
                (8, "action"),
                (9, "trading_account_login"),
            ]
        );
        assert!(f.errors[0]
            .to_string()
            .starts_with("t.csv:3: column `open_price`:"));
    }

    #[test]
    fn numeric_and_text_ids_deduplicate_as_text() {
        assert_eq!(
            numeric_id("1742642088741327865"),
            Some(1_742_642_088_741_327_865)
        );
        assert_eq!(numeric_id("007"), None);
        assert_eq!(numeric_id("0"), Some(0));
        assert_eq!(numeric_id("18446744073709551616"), None);
        assert_eq!(numeric_id("12a"), None);
        let row = |id: &str| {
            format!("0,{id},0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n")
        };
        let f = read(
            &[
                row("7"),
                row("007"),
                row("7"),
                row("007"),
                row("A-1"),
                row("A-1"),
            ]
            .concat(),
        );
        assert_eq!(f.trades.len(), 3);
        assert_eq!(f.duplicate_rows, 3);
        // A bad row does not claim its id: the corrected re-send is kept.
        let bad = |id: &str| row(id).replace("1.1,1.2", "x,1.2");
        let f = read(&[bad("8"), row("8"), bad("B"), row("B"), row("8")].concat());
        assert_eq!(
            (f.trades.len(), f.skipped_rows, f.duplicate_rows),
            (2, 2, 1)
        );
    }

    #[test]
    fn parallel_read_equals_sequential_read() {
        let mut text = Vec::new();
        let mut accounts = Vec::new();
        let config = crate::sample::SampleConfig {
            trades: 2_000,
            ..Default::default()
        };
        crate::sample::generate(&config, &mut text, &mut accounts).unwrap();
        let text = String::from_utf8(text).unwrap();
        let first_id = text
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .nth(1)
            .unwrap()
            .to_owned();
        let row = |id: &str, price: &str| {
            format!("0,{id},0,,{price},1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n")
        };
        let mut lines: Vec<String> = text.lines().map(|l| format!("{l}\n")).collect();
        // Early: a bad row whose id is re-sent correctly in a later chunk.
        lines.insert(5, row("777000111", "bad"));
        lines.insert(1500, row("777000111", "1.1"));
        // Late: a good repeat and a bad repeat of the very first id, and a text id twice.
        lines.push(row(&first_id, "1.1"));
        lines.push(row(&first_id, "bad"));
        lines.insert(300, row("T-1", "1.1"));
        lines.push(row("T-1", "1.1"));
        // Rows over the limit, early and late (one repeating an id kept elsewhere): each is
        // one skipped row in every chunking.
        let long = "9".repeat(MAX_ROW_BYTES);
        lines.insert(40, row("777000222", &long));
        lines.insert(1800, row(&first_id, &long));
        let text = lines.concat();
        let sequential = read_trades(text.as_bytes(), "s.csv", |_| {}).unwrap();
        assert_eq!(sequential.trades.len(), 2_002);
        assert_eq!(sequential.duplicate_rows, 2 + 3);
        assert_eq!(sequential.skipped_rows, 3 + 1 + 2);
        let too_long: Vec<_> = sequential
            .errors
            .iter()
            .filter(|e| e.message.contains("longer than the limit"))
            .map(|e| (e.line, e.column.as_str()))
            .collect();
        assert_eq!(too_long, [(41, "open_price"), (1801, "open_price")]);
        for workers in 1..=5 {
            let parallel = read_trades_parallel(text.as_bytes(), "s.csv", workers, |_| {}).unwrap();
            assert!(
                parallel.trades == sequential.trades,
                "{workers} workers: trades differ"
            );
            assert_eq!(parallel.errors, sequential.errors, "{workers} workers");
            assert_eq!(
                (parallel.skipped_rows, parallel.duplicate_rows),
                (sequential.skipped_rows, sequential.duplicate_rows),
                "{workers} workers"
            );
        }
    }

    /// Found by the `trades_csv` fuzz target: a header ended by a lone `\r` (which the
    /// csv reader takes as a line end) made the parallel reader treat the first data row
    /// as part of the header and drop it.
    #[test]
    fn parallel_read_ends_the_header_where_the_csv_reader_does() {
        let row = |id: &str| {
            format!("0,{id},0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7")
        };
        let header = HEADER.trim_end();
        for (after_header, between) in [("\r", "\n"), ("\r", "\r"), ("\r\n", "\r\n")] {
            let text = format!(
                "{header}{after_header}{}{between}{}{between}{}\n",
                row("1"),
                row("2"),
                row("3")
            );
            let sequential = read_trades(text.as_bytes(), "s.csv", |_| {}).unwrap();
            assert_eq!(sequential.trades.len(), 3, "{after_header:?}");
            let parallel = read_trades_parallel(text.as_bytes(), "s.csv", 2, |_| {}).unwrap();
            assert!(parallel.trades == sequential.trades, "{after_header:?}");
            assert_eq!(parallel.skipped_rows, sequential.skipped_rows);
        }
    }

    /// Found by the `trades_csv` fuzz target: a row starting with a UTF-8 byte-order mark
    /// at a chunk boundary lost the mark in the parallel reader (each chunk's csv reader
    /// strips one at its start), so the two readers disagreed.
    #[test]
    fn parallel_read_keeps_a_byte_order_mark_at_a_chunk_start() {
        let row = |id: &str| {
            format!("0,{id},0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n")
        };
        for tail in ["\u{feff}".to_owned(), format!("\u{feff}{}", row("3"))] {
            let text = format!("{HEADER}{}{}{tail}", row("1"), row("2"));
            let sequential = read_trades(text.as_bytes(), "s.csv", |_| {}).unwrap();
            for workers in 2..=4 {
                let parallel =
                    read_trades_parallel(text.as_bytes(), "s.csv", workers, |_| {}).unwrap();
                assert!(parallel.trades == sequential.trades, "{workers} workers");
                assert_eq!(
                    (parallel.skipped_rows, parallel.duplicate_rows),
                    (sequential.skipped_rows, sequential.duplicate_rows),
                    "{workers} workers"
                );
            }
        }
    }

    fn trade_row(id: &str) -> String {
        format!("0,{id},0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n")
    }

    /// Sequential and parallel (2 to 4 workers) reads of `text` agree on everything; the
    /// sequential result.
    fn read_both_ways(text: &[u8], limits: CsvLimits) -> TradeFile {
        let sequential = read_trades_with(text, "b.csv", limits, |_| {}).unwrap();
        for workers in 2..=4 {
            let parallel =
                read_trades_parallel_with(text, "b.csv", workers, limits, |_| {}).unwrap();
            assert!(parallel.trades == sequential.trades, "{workers} workers");
            assert_eq!(parallel.errors, sequential.errors, "{workers} workers");
            assert_eq!(
                (parallel.skipped_rows, parallel.duplicate_rows),
                (sequential.skipped_rows, sequential.duplicate_rows),
                "{workers} workers"
            );
        }
        sequential
    }

    /// The real export (`shared/data`) ends its lines with CRLF: the csv reader's record
    /// positions put each row on the line before (the `\n` of the previous line end is
    /// read with the next record), and the parallel reader disagreed with the sequential
    /// one. Blank lines moved the reported line back as well.
    #[test]
    fn row_errors_name_the_rows_own_line_with_crlf_and_blank_lines() {
        let row = |id: &str, price: &str| trade_row(id).replace("1.1,1.2", &format!("{price},1.2"));
        let crlf = |r: String| r.replace('\n', "\r\n");
        let text = [
            crlf(HEADER.to_owned()),
            crlf(row("1", "x")),
            crlf(row("2", "1.1")),
            "\r\n\n".to_owned(),
            crlf(row("3", "y")),
            row("4", "z"),
            row("5", "1.1").replace('\n', "\r"),
            row("6", "w"),
        ]
        .concat();
        let f = read_both_ways(text.as_bytes(), CsvLimits::default());
        let lines: Vec<_> = f.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 6, 7, 8]);
        assert_eq!(f.trades.len(), 2);
    }

    #[test]
    fn a_10_mb_field_between_good_rows_is_one_row_error() {
        let huge = "X".repeat(10 << 20);
        let bad = trade_row("2").replace("EURUSD", &huge);
        let text = format!("{HEADER}{}{bad}{}", trade_row("1"), trade_row("3"));
        let f = read_both_ways(text.as_bytes(), CsvLimits::default());
        let ids: Vec<_> = f.trades.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["1", "3"]);
        assert_eq!((f.skipped_rows, f.duplicate_rows), (1, 0));
        assert_eq!(
            f.errors[0].to_string(),
            "b.csv:3: column `symbol`: the row is longer than the limit of 65536 bytes"
        );
    }

    #[test]
    fn a_long_quoted_field_with_line_breaks_is_cut_and_later_lines_stay_right() {
        // 200,000 lines inside one quoted field, then a bad row: its line is still exact.
        let quoted = format!("\"{}\"", "ab\n".repeat(200_000));
        let long = trade_row("2").replace("EURUSD", &quoted);
        let late_bad = trade_row("4").replace("1.1,1.2", "x,1.2");
        let text = format!(
            "{HEADER}{}{long}{}{late_bad}",
            trade_row("1"),
            trade_row("3")
        );
        let f = read_trades(text.as_bytes(), "q.csv", |_| {}).unwrap();
        let ids: Vec<_> = f.trades.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["1", "3"]);
        let where_: Vec<_> = f
            .errors
            .iter()
            .map(|e| (e.line, e.column.as_str()))
            .collect();
        assert_eq!(where_, [(3, "symbol"), (200_005, "open_price")]);
    }

    #[test]
    fn an_unterminated_quote_costs_one_row_error() {
        // The csv reader would read the rest of the file into the quoted field: it is one
        // row, cut at the limit, and the rows before it are kept.
        let body = format!("{}0,2,0,,\"{}\n", trade_row("1"), "1.1,".repeat(40_000));
        let f = read_both_ways(format!("{HEADER}{body}").as_bytes(), CsvLimits::default());
        assert_eq!((f.trades.len(), f.skipped_rows), (1, 1));
        assert_eq!(
            (f.errors[0].line, f.errors[0].column.as_str()),
            (3, "open_price")
        );
    }

    #[test]
    fn the_row_limit_is_exact_and_counts_quotes_and_delimiters() {
        let header = HEADER.trim_end();
        let limit = header.len();
        // A row padded to `len` bytes through its unused `reason` column, quoted.
        let padded = |id: &str, len: usize| {
            let row = trade_row(id);
            let pad = len - (row.trim_end().len() + 2);
            row.replacen(",0,,", &format!(",0,\"{}\",", "r".repeat(pad)), 1)
        };
        let text = format!(
            "{header}\r\n{}{}{}",
            padded("1", limit),
            padded("2", limit + 1),
            trade_row("3")
        );
        let limits = CsvLimits {
            max_row_bytes: limit,
            ..CsvLimits::default()
        };
        let f = read_both_ways(text.as_bytes(), limits);
        let ids: Vec<_> = f.trades.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["1", "3"], "{:?}", f.errors);
        assert_eq!(f.errors.len(), 1);
        assert_eq!(
            (f.errors[0].line, f.errors[0].column.as_str()),
            (3, "trading_account_login")
        );
        assert_eq!(
            f.errors[0].message,
            format!("the row is longer than the limit of {limit} bytes")
        );
        // One byte less and the header itself is too long.
        let limits = CsvLimits {
            max_row_bytes: limit - 1,
            ..limits
        };
        let e = read_trades_with(text.as_bytes(), "e.csv", limits, |_| {}).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "e.csv: the header row is longer than the limit of {} bytes",
                limit - 1
            )
        );
    }

    #[test]
    fn fields_the_reader_uses_are_bounded() {
        let id = "7".repeat(MAX_FIELD_BYTES + 1);
        let ok_id = "8".repeat(MAX_FIELD_BYTES);
        let comment = "c".repeat(10 * MAX_FIELD_BYTES);
        let text = format!(
            "{HEADER}{}{}{}",
            trade_row(&id),
            trade_row(&ok_id),
            // An unused column (`reason`) may be longer than the field limit.
            trade_row("9").replacen(",0,,", &format!(",0,{comment},"), 1)
        );
        let f = read_both_ways(text.as_bytes(), CsvLimits::default());
        let ids: Vec<_> = f.trades.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, [ok_id.as_str(), "9"]);
        assert_eq!(
            f.errors[0].to_string(),
            "b.csv:2: column `identifier`: the field is 1025 bytes, longer than the limit of 1024"
        );
    }

    #[test]
    fn a_10_mb_field_in_the_accounts_file_is_one_row_error() {
        let huge = "u".repeat(10 << 20);
        let text = format!("login,user_id,challenge_id\n1,u1,c1\n2,{huge},c1\n3,u3,\n");
        let a = read_accounts(text.as_bytes(), "a.csv").unwrap();
        assert_eq!(a.order, [AccountId::new("1"), AccountId::new("3")]);
        assert_eq!(a.skipped_rows, 1);
        assert_eq!(
            a.errors[0].to_string(),
            "a.csv:3: column `user_id`: the row is longer than the limit of 65536 bytes"
        );
        let long_user = "u".repeat(MAX_FIELD_BYTES + 1);
        let text = format!("login,user_id,challenge_id\n1,{long_user},c1\n2,u2,\n");
        let a = read_accounts(text.as_bytes(), "a.csv").unwrap();
        assert_eq!(a.order, [AccountId::new("2")]);
        assert_eq!(a.errors[0].column, "user_id");
        let header = format!("login,user_id,challenge_id,{}\n", "x".repeat(MAX_ROW_BYTES));
        assert!(matches!(
            read_accounts(header.as_bytes(), "a.csv"),
            Err(CsvInputError::HeaderTooLong {
                limit: MAX_ROW_BYTES,
                ..
            })
        ));
    }

    #[test]
    fn invalid_utf8_names_its_column() {
        let mut text = HEADER.as_bytes().to_vec();
        text.extend_from_slice(b"0,1,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EUR\xC3,1,1,0,7\n");
        // Two fields that are only valid UTF-8 when glued together.
        text.extend_from_slice(b"0,2,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,\xC3,\xA91,1,0,7\n");
        let f = read_trades(text.as_slice(), "u.csv", |_| {}).unwrap();
        assert_eq!(f.trades.len(), 0);
        let cols: Vec<_> = f.errors.iter().map(|e| e.column.as_str()).collect();
        assert_eq!(cols, ["symbol", "symbol"]);
    }

    proptest::proptest! {
        /// Arbitrary rows never stop the read nor panic, and every record is accounted
        /// for exactly once, sequentially or split across workers.
        #[test]
        fn arbitrary_rows_are_counted_once(
            rows in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        proptest::string::string_regex("[0-9]{1,3}").unwrap(),
                        proptest::string::string_regex("-?[0-9]{1,4}\\.[0-9]{0,3}").unwrap(),
                        proptest::string::string_regex("2025-05-0[1-3] 1[0-2]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?").unwrap(),
                        proptest::string::string_regex("[ -~]{0,8}").unwrap(),
                    ],
                    0..24,
                ),
                0..40,
            ),
            workers in 1_usize..4,
        ) {
            let body: String = rows
                .iter()
                .map(|r| format!("{}\n", r.join(",").replace('"', "")))
                .collect();
            let text = format!("{HEADER}{body}");
            let records = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(text.as_bytes())
                .byte_records()
                .count() as u64;
            let f = read_trades(text.as_bytes(), "p.csv", |_| {}).unwrap();
            proptest::prop_assert_eq!(f.trades.len() as u64 + f.skipped_rows + f.duplicate_rows, records);
            let p = read_trades_parallel(text.as_bytes(), "p.csv", workers, |_| {}).unwrap();
            proptest::prop_assert!(p.trades == f.trades);
            proptest::prop_assert_eq!((p.skipped_rows, p.duplicate_rows), (f.skipped_rows, f.duplicate_rows));
        }
    }

    #[test]
    fn missing_column_is_fatal() {
        let e = read_trades("identifier,action\n1,0\n".as_bytes(), "x.csv", |_| {});
        assert!(matches!(
            e,
            Err(CsvInputError::MissingColumn {
                column: "open_price",
                ..
            })
        ));
    }

    #[test]
    fn accounts_file() {
        let text = "login,user_id,challenge_id,initial_balance\n1,u1,c1,50000\n2,u1,,\n3,u2,c1,-5\n1,u3,c2,\n4,,c1,\n";
        let a = read_accounts(text.as_bytes(), "a.csv").unwrap();
        assert_eq!(a.order.len(), 2);
        assert_eq!(a.skipped_rows, 3);
        let one = &a.accounts[&AccountId::new("1")];
        assert_eq!(one.initial_balance, Some(Decimal::from(50_000)));
        assert_eq!(one.challenge, Some(ChallengeId::new("c1")));
        assert_eq!(a.accounts[&AccountId::new("2")].challenge, None);
        let b = read_accounts("login,user_id,challenge_id\n9,u9,c9\n".as_bytes(), "b.csv").unwrap();
        assert_eq!(b.accounts[&AccountId::new("9")].initial_balance, None);
        assert_eq!(b.accounts[&AccountId::new("9")].group, None);
        let g = read_accounts(
            "login,user_id,challenge_id,group_id\n1,u1,c1,g7\n2,u2,c1,\n".as_bytes(),
            "g.csv",
        )
        .unwrap();
        assert_eq!(
            g.accounts[&AccountId::new("1")].group.as_deref(),
            Some("g7")
        );
        assert_eq!(g.accounts[&AccountId::new("2")].group, None);
    }

    #[test]
    fn timestamps() {
        for ok in [
            "2025-05-05 23:41:50",
            "2025-05-05 23:41:50.1",
            "2025-05-05 23:41:50.123456789",
            "2025-05-05T23:41:50Z",
            "2025-05-06T01:41:50+02:00",
        ] {
            assert!(parse_timestamp(ok).is_some(), "{ok}");
        }
        assert_eq!(
            parse_timestamp("2025-05-06T01:41:50+02:00"),
            parse_timestamp("2025-05-05 23:41:50")
        );
        for bad in [
            "",
            "2025-05-05",
            "2025-02-30 00:00:00",
            "2025-05-05 24:00:00",
            "2025-05-05 10:00:00.",
            "2025-05-05 10:00:00.1234567890",
            "2025-05-05 10:00:00 junk",
            "x025-05-05 10:00:00",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }
}
