//! Reading a trades export on one thread: the columns, the per-row parse into
//! [`ClosedTrade`]s and the de-duplication of identifiers.

use std::io::Read;
use std::path::Path;

use chrono::DateTime;
use risk_core::hash::HashSet as FastSet;
use risk_core::ids::{AccountId, Symbol, TradeId};
use risk_core::metrics::ClosedTrade;
use risk_core::model::Side;
use risk_core::Decimal;

use super::bounded::delimiters;
use super::bounded::BoundedRows;
use super::error::{CsvInputError, RowError};
use super::fast::{DayCache, Fields, RowPlan};
use super::fields::{
    csv_error, find_columns, open_reader, row_info, row_too_long, Cells, DateCache, Interner, Row,
};
use super::parallel::{read_file, PARALLEL_MIN_BYTES};
use super::{CsvLimits, MAX_KEPT_ROW_ERRORS};

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

/// The columns of a trades export that the reader uses, by header name; any others are
/// ignored.
pub const TRADE_COLUMNS: [&str; 14] = [
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

/// Reads a trades export from a file; see [`read_trades`]. `progress` is called with the
/// number of bytes parsed so far, possibly from several threads.
///
/// Without a quote in it (exports from dataframes and trading platforms have none) the
/// file is split at line boundaries into byte ranges (four per core), each range read
/// block by block (the file is never held whole in memory) and its rows split in place
/// and parsed straight from the bytes; the result is the same as a sequential read: trades in
/// file order, the first occurrence of an id kept, the same counts and row errors. A file
/// with a quote (a quoted field may hold a line break, so line ends are not row ends
/// there) is read by the csv reader, as a stream on one thread.
///
/// # Errors
/// [`CsvInputError`] when the file cannot be opened or read, or lacks a required column.
pub fn read_trades_path(
    path: &Path,
    progress: impl Fn(u64) + Sync,
) -> Result<TradeFile, CsvInputError> {
    let name = path.display().to_string();
    let small = std::fs::metadata(path).is_ok_and(|m| m.len() < PARALLEL_MIN_BYTES as u64);
    let workers = if small {
        1
    } else {
        rayon::current_num_threads()
    };
    read_file(
        path,
        &name,
        workers,
        CsvLimits::default(),
        TradeSink::default(),
        progress,
    )
    .map(TradeFile::from)
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
    read_sequential(source, file, limits, TradeSink::default(), &mut progress).map(TradeFile::from)
}

/// A sequential read into `sink` (an empty one): the csv reader, any CSV.
pub(super) fn read_sequential<R: Read, S: Sink>(
    source: R,
    file: &str,
    limits: CsvLimits,
    sink: S,
    progress: impl FnMut(u64),
) -> Result<ReadOut<S>, CsvInputError> {
    let (mut reader, header) = open_reader(source, file, limits)?;
    let cols = find_columns(&header, &TRADE_COLUMNS, file)?;
    let mut ingest = Ingest::new(&header, cols, file, limits, sink);
    ingest
        .run(&mut reader, progress)
        .map_err(|e| csv_error(file, e))?;
    Ok(ingest.out)
}

/// What a read gives: the kept rows in a [`Sink`], with what was skipped.
#[derive(Debug, Clone, Default)]
pub(super) struct ReadOut<S> {
    /// Every good, first-seen row, in file order.
    pub(super) kept: S,
    /// The first [`MAX_KEPT_ROW_ERRORS`] bad rows.
    pub(super) errors: Vec<RowError>,
    /// All bad rows.
    pub(super) skipped_rows: u64,
    /// Rows dropped because their identifier was already seen.
    pub(super) duplicate_rows: u64,
}

impl<S> ReadOut<S> {
    /// `kept`, nothing skipped.
    pub(super) fn from_kept(kept: S) -> Self {
        Self {
            kept,
            errors: Vec::new(),
            skipped_rows: 0,
            duplicate_rows: 0,
        }
    }
}

impl From<ReadOut<TradeSink>> for TradeFile {
    fn from(out: ReadOut<TradeSink>) -> Self {
        Self {
            trades: out.kept.trades,
            errors: out.errors,
            skipped_rows: out.skipped_rows,
            duplicate_rows: out.duplicate_rows,
        }
    }
}

/// A good row's values as parsed, before a [`Sink`] keeps them in its own form.
pub(super) struct Parsed<'r> {
    pub(super) login: &'r str,
    pub(super) symbol: &'r str,
    pub(super) side: Side,
    pub(super) volume: Decimal,
    /// `opened_at` in nanoseconds since the epoch (in range: the row parse checked).
    pub(super) opened_at_ns: i64,
    /// `closed_at` in nanoseconds since the epoch.
    pub(super) closed_at_ns: i64,
    pub(super) open_price: Decimal,
    pub(super) close_price: Decimal,
    pub(super) stop_loss: Option<Decimal>,
    pub(super) take_profit: Option<Decimal>,
    pub(super) profit: Decimal,
    pub(super) commission: Decimal,
    pub(super) swap: Decimal,
}

/// A kept row's id as the merge of a parallel read looks at it.
pub(super) enum RowId<'a> {
    /// The id as text, not yet classified (see [`IdKey::of`]).
    Raw(&'a TradeId),
    /// A canonical decimal id.
    Numeric(u64),
    /// Any other id.
    Text(&'a TradeId),
}

/// Where a read keeps its good rows: the full [`ClosedTrade`]s ([`TradeSink`]) or the
/// report's compact columns ([`super::batch::BatchSink`]). The row parse, the row errors
/// and the de-duplication are the same for both.
pub(super) trait Sink: Send + Sync + Sized {
    /// An empty sink with the same settings, with room for `capacity` rows.
    fn fresh(&self, capacity: usize) -> Self;
    /// The number of rows kept.
    fn len(&self) -> usize;
    /// Keeps a good row; `id` is its (trimmed, non-empty) identifier, `key` its kind.
    fn keep(&mut self, id: &str, key: &IdKey, row: Parsed<'_>);
    /// Keeps the rows for which `keep` (called on each kept row's id, in order) is true.
    /// Called before the sink is appended to (the merge filters each part, then appends
    /// it).
    fn retain_ids(&mut self, keep: impl FnMut(RowId<'_>) -> bool);
    /// Appends the rows of `other` (a later part of the same file).
    fn append(&mut self, other: Self);
}

/// The [`Sink`] of [`read_trades`]: full trades, logins and symbols shared per text.
#[derive(Default)]
pub(super) struct TradeSink {
    trades: Vec<ClosedTrade>,
    logins: Interner<AccountId>,
    symbols: Interner<Symbol>,
}

impl Sink for TradeSink {
    fn fresh(&self, capacity: usize) -> Self {
        Self {
            trades: Vec::with_capacity(capacity),
            ..Self::default()
        }
    }

    fn len(&self) -> usize {
        self.trades.len()
    }

    fn keep(&mut self, id: &str, _: &IdKey, row: Parsed<'_>) {
        self.trades.push(ClosedTrade {
            id: TradeId::new(id),
            account: self.logins.get(row.login, AccountId::new),
            symbol: self.symbols.get(row.symbol, Symbol::new),
            side: row.side,
            volume: row.volume,
            opened_at: DateTime::from_timestamp_nanos(row.opened_at_ns),
            closed_at: DateTime::from_timestamp_nanos(row.closed_at_ns),
            open_price: row.open_price,
            close_price: row.close_price,
            stop_loss: row.stop_loss,
            take_profit: row.take_profit,
            profit: row.profit,
            commission: row.commission,
            swap: row.swap,
        });
    }

    fn retain_ids(&mut self, mut keep: impl FnMut(RowId<'_>) -> bool) {
        self.trades.retain(|t| keep(RowId::Raw(&t.id)));
    }

    fn append(&mut self, mut other: Self) {
        self.trades.append(&mut other.trades);
    }
}

/// A trade id as de-duplicated: canonical decimal ids that fit a u64 as integers (cheaper
/// to hash and compare), any other id as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum IdKey {
    Numeric(u64),
    Text,
}

impl IdKey {
    pub(super) fn of(id: &str) -> Self {
        numeric_id(id).map_or(Self::Text, Self::Numeric)
    }
}

/// A skipped row, with its id when it had one (a parallel merge may find it repeated).
pub(super) struct BadRow {
    pub(super) id: Option<TradeId>,
    /// The error, for the first [`MAX_KEPT_ROW_ERRORS`] bad rows of the pass.
    pub(super) error: Option<RowError>,
    /// How many good trades the pass had kept before this row (where it falls among
    /// them, in file order).
    pub(super) ordinal: usize,
}

/// The state of one sequential pass over rows.
pub(super) struct Ingest<'a, S> {
    header: &'a csv::ByteRecord,
    cols: [usize; 14],
    file: &'a str,
    limits: CsvLimits,
    pub(super) out: ReadOut<S>,
    seen_numeric: FastSet<u64>,
    seen_text: FastSet<TradeId>,
    dates: DateCache,
    /// The one-pass parse of the usual rows ([`Ingest::run_split`]).
    plan: RowPlan,
    days: DayCache,
    pub(super) bad_rows: Vec<BadRow>,
    /// Whether ids are left to the merge ([`Ingest::deferred`]) instead of claimed here.
    defer: bool,
    /// Deferred: the numeric id of every row that had an id, good or bad.
    pub(super) numeric_ids: Vec<u64>,
    /// Deferred: every other id of a row, good or bad.
    pub(super) text_ids: Vec<TradeId>,
}

impl<'a, S: Sink> Ingest<'a, S> {
    /// A pass that claims ids as it goes, keeping rows in `sink`.
    pub(super) fn new(
        header: &'a csv::ByteRecord,
        cols: [usize; 14],
        file: &'a str,
        limits: CsvLimits,
        sink: S,
    ) -> Self {
        Self {
            header,
            cols,
            file,
            limits,
            out: ReadOut::from_kept(sink),
            seen_numeric: FastSet::default(),
            seen_text: FastSet::default(),
            dates: DateCache::default(),
            plan: RowPlan::new(&cols),
            days: DayCache::default(),
            bad_rows: Vec::new(),
            defer: false,
            numeric_ids: Vec::new(),
            text_ids: Vec::new(),
        }
    }

    /// A pass that claims no id: every row is parsed and kept (good) or skipped (bad),
    /// and the ids of all rows are collected (`numeric_ids`, `text_ids`) for the merge
    /// to find the repeated ones. A hash set of every id costs a cache miss per row;
    /// sorting the ids once costs far less, and repeats are rare. `sink` is empty, with
    /// room for `capacity` rows.
    pub(super) fn deferred(
        header: &'a csv::ByteRecord,
        cols: [usize; 14],
        file: &'a str,
        limits: CsvLimits,
        sink: S,
        capacity: usize,
    ) -> Self {
        let mut ingest = Self::new(header, cols, file, limits, sink);
        ingest.defer = true;
        ingest.numeric_ids = Vec::with_capacity(capacity);
        ingest
    }

    /// Claims an id; false when it was already claimed.
    fn claim(&mut self, key: &IdKey, id: &str) -> bool {
        match key {
            IdKey::Numeric(n) => self.seen_numeric.insert(*n),
            IdKey::Text => !self.seen_text.contains(id) && self.seen_text.insert(TradeId::new(id)),
        }
    }

    fn skip(&mut self, id: Option<TradeId>, error: RowError) {
        self.out.skipped_rows += 1;
        let kept = (self.out.errors.len() < MAX_KEPT_ROW_ERRORS).then_some(error);
        if let Some(e) = &kept {
            self.out.errors.push(e.clone());
        }
        let ordinal = self.out.kept.len();
        self.bad_rows.push(BadRow {
            id,
            error: kept,
            ordinal,
        });
    }

    /// Reads every record (after the header, if the reader has one).
    pub(super) fn run<R: Read>(
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
            let line = info.line;
            match info.cut {
                Some(field) => {
                    let error = row_too_long(self.header, self.file, line, field, self.limits);
                    self.skip(None, error);
                }
                None => {
                    let cells = Cells::Record {
                        record: &record,
                        text: std::str::from_utf8(record.as_slice()).ok(),
                    };
                    self.row(cells, line);
                }
            }
        }
        progress(reader.get_ref().consumed());
        Ok(())
    }

    /// Reads every row of `text`, which holds no quote (so each line end ends a row, and
    /// a field is the bytes between two commas), as the csv reader would read it: rows end
    /// at `\n`, `\r\n` or a lone `\r`, blank lines are skipped, and a row longer than the
    /// limit is the same row error. `first_line` is the line of `text`'s first byte;
    /// `progress` gets the bytes of `text` read so far. Returns the number of `\n` in
    /// `text` (the lines it spans, less one).
    pub(super) fn run_split(
        &mut self,
        text: &[u8],
        first_line: u64,
        mut progress: impl FnMut(u64),
    ) -> u64 {
        let used = self.cols.iter().max().map_or(0, |&c| c + 1);
        let max_row = self.limits.max_row_bytes.max(1);
        let mut fields: Vec<&[u8]> = Vec::with_capacity(used);
        // The text validated once, so that the cells read as text need no check of their
        // own.
        let whole = std::str::from_utf8(text).ok();
        let max_field = self.limits.max_field_bytes;
        let (mut line, mut at, mut rows) = (first_line, 0, 0_u64);
        let mut usual = Fields::default();
        while at < text.len() {
            // The usual row in one pass; any other row as below.
            let fast = whole.and_then(|whole| {
                self.plan
                    .parse_into(&mut usual, text, whole, at, max_field, &mut self.days)
                    .filter(|&end| end - at <= max_row)
            });
            // Where the row ends, and whether it was read (a row, not a blank line or a
            // row too long).
            let (end, read) = if let Some(end) = fast {
                let (id, key, parsed) = usual.parsed();
                self.accept(id, key, parsed);
                (end, true)
            } else {
                let end = memchr::memchr2(b'\n', b'\r', &text[at..]).map_or(text.len(), |i| at + i);
                let record = &text[at..end];
                if record.len() > max_row {
                    // Where the bounded reader cuts it: at the byte that crosses the limit,
                    // in the field that byte is in (a comma there counts).
                    let field = delimiters(&record[..=max_row]);
                    let error = row_too_long(self.header, self.file, line, field, self.limits);
                    self.skip(None, error);
                    (end, false)
                } else if record.is_empty() {
                    (end, false)
                } else {
                    fields.clear();
                    fields.extend(record.split(|&b| b == b',').take(used));
                    let cells = Cells::Split {
                        fields: &fields,
                        text: whole,
                    };
                    self.row(cells, line);
                    (end, true)
                }
            };
            if read {
                rows += 1;
                if rows.is_multiple_of(65_536) {
                    progress(end as u64);
                }
            }
            if text.get(end) == Some(&b'\n') {
                line += 1;
            }
            at = end + 1;
        }
        progress(text.len() as u64);
        line - first_line
    }

    /// Keeps a good row (a row the one-pass parse read), unless its id was claimed: as
    /// [`Ingest::row`] does for a good row.
    fn accept(&mut self, id: &str, key: IdKey, parsed: Parsed<'_>) {
        if self.defer {
            match key {
                IdKey::Numeric(n) => self.numeric_ids.push(n),
                IdKey::Text => self.text_ids.push(TradeId::new(id)),
            }
        } else if !self.claim(&key, id) {
            self.out.duplicate_rows += 1;
            return;
        }
        self.out.kept.keep(id, &key, parsed);
    }

    fn row(&mut self, cells: Cells<'_>, line: u64) {
        let [c_id, c_action, c_open, c_close, c_comm, c_lots, c_opened, c_closed, c_sl, c_tp, c_profit, c_swap, c_symbol, c_login] =
            self.cols;
        let row = Row {
            cells,
            header: self.header,
            file: self.file,
            line,
            max_field: self.limits.max_field_bytes,
        };
        let id = match row.text(c_id) {
            Ok(id) => id,
            Err(e) => return self.skip(None, e),
        };
        // Claim the id now (one hash operation for the common numeric case); a row that
        // turns out bad gives it back, so a corrected re-send of the row is still kept.
        // A deferred pass notes the id for the merge instead.
        let key = IdKey::of(id);
        if self.defer {
            match key {
                IdKey::Numeric(n) => self.numeric_ids.push(n),
                IdKey::Text => self.text_ids.push(TradeId::new(id)),
            }
        } else if !self.claim(&key, id) {
            self.out.duplicate_rows += 1;
            return;
        }
        let dates = &mut self.dates;
        let parsed = (|| -> Result<Parsed<'_>, RowError> {
            let login = row.text(c_login)?;
            let symbol = row.text(c_symbol)?;
            let side = row.side(c_action)?;
            let opened_at_ns = row.time(c_opened, dates)?.1;
            let closed_at_ns = row.time(c_closed, dates)?.1;
            if closed_at_ns < opened_at_ns {
                return Err(row.error(c_closed, "closed before it was opened".to_owned()));
            }
            Ok(Parsed {
                login,
                symbol,
                side,
                volume: row.number(c_lots)?,
                opened_at_ns,
                closed_at_ns,
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
            Ok(parsed) => self.out.kept.keep(id, &key, parsed),
            Err(e) => {
                if !self.defer {
                    match key {
                        IdKey::Numeric(n) => self.seen_numeric.remove(&n),
                        IdKey::Text => self.seen_text.remove(id),
                    };
                }
                self.skip(Some(TradeId::new(id)), e);
            }
        }
    }
}

/// The id as an integer when it is written canonically (digits, no leading zero) and fits
/// a u64, so that two ids are equal as integers exactly when they are equal as text.
pub(super) fn numeric_id(id: &str) -> Option<u64> {
    let b = id.as_bytes();
    if b.is_empty() || b.len() > 19 || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    // One pass; 19 digits cannot overflow.
    b.iter().try_fold(0_u64, |n, &c| {
        let d = c.wrapping_sub(b'0');
        (d < 10).then(|| n * 10 + u64::from(d))
    })
}
