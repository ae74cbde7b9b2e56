//! The report's compact form of a trades export: what the metrics, the scores and the
//! rulebook need of each kept trade, with logins and symbols numbered, read without
//! building [`ClosedTrade`](risk_core::metrics::ClosedTrade)s (no string per row; a
//! quarter of the memory).
//!
//! The rows, errors and counts are those of [`read_trades`](super::read_trades) on the
//! same text: the same row parse, the same de-duplication and the same merge of parallel
//! parts, only the form of a kept row differs ([`BatchSink`]).

use std::io::Read;
use std::path::Path;

use rayon::prelude::*;
use risk_core::hash::HashMap as FastMap;
use risk_core::ids::{AccountId, Symbol, TradeId};
use risk_core::metrics::PnlBasis;
use risk_core::model::Side;
use risk_core::num::add_exact;
use risk_core::Decimal;

use super::error::{CsvInputError, RowError};
use super::parallel::{read_file, read_parallel, PARALLEL_MIN_BYTES};
use super::trades::{read_sequential, IdKey, Parsed, ReadOut, RowId, Sink};
use super::CsvLimits;

/// One kept trade as the report needs it: 64 bytes instead of a
/// [`ClosedTrade`](risk_core::metrics::ClosedTrade)'s 216 and its id string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeRow {
    /// When the position was opened, in nanoseconds since the epoch.
    pub opened_at_ns: i64,
    /// When the position was closed, in nanoseconds since the epoch.
    pub closed_at_ns: i64,
    /// The P&L on the batch's [`PnlBasis`]; `None` when the net P&L
    /// (`profit + commission + swap`) overflows or would round
    /// ([`ClosedTrade::net_pnl`](risk_core::metrics::ClosedTrade::net_pnl)'s error).
    pub pnl: Option<Decimal>,
    /// Volume in lots.
    pub lots: Decimal,
    /// The login's handle: an index into [`TradeBatch::accounts`].
    pub account: u32,
    /// The symbol's handle: an index into [`TradeBatch::symbols`].
    pub symbol: u32,
    /// [`SELL`], [`STOP_LOSS`], [`TAKE_PROFIT`], and (inside a read only) [`TEXT_ID`].
    flags: u8,
}

/// The trade opened with a sell.
const SELL: u8 = 1;
/// A non-zero stop-loss price was set.
const STOP_LOSS: u8 = 2;
/// A non-zero take-profit price was set.
const TAKE_PROFIT: u8 = 4;
/// While reading: the row's id is text (its slot in [`BatchSink::ids`] indexes
/// [`BatchSink::text_ids`]), not a canonical number.
const TEXT_ID: u8 = 8;

impl TradeRow {
    /// A row from its parts.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        opened_at_ns: i64,
        closed_at_ns: i64,
        pnl: Option<Decimal>,
        lots: Decimal,
        side: Side,
        account: u32,
        symbol: u32,
        stop_loss_set: bool,
        take_profit_set: bool,
    ) -> Self {
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        Self {
            opened_at_ns,
            closed_at_ns,
            pnl,
            lots,
            account,
            symbol,
            flags: flag(side == Side::Sell, SELL)
                | flag(stop_loss_set, STOP_LOSS)
                | flag(take_profit_set, TAKE_PROFIT),
        }
    }

    /// The opening side.
    #[must_use]
    pub fn side(&self) -> Side {
        if self.flags & SELL == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    /// A non-zero stop-loss price was set.
    #[must_use]
    pub fn stop_loss_set(&self) -> bool {
        self.flags & STOP_LOSS != 0
    }

    /// A non-zero take-profit price was set.
    #[must_use]
    pub fn take_profit_set(&self) -> bool {
        self.flags & TAKE_PROFIT != 0
    }
}

/// The kept trades of an export in compact form, in file order, with the logins and
/// symbols they name (each once, in first-seen order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeBatch {
    /// The trades, in file order, in consecutive parts (a parallel read keeps the part of
    /// each byte range as it is instead of copying them into one vector).
    pub parts: Vec<Vec<TradeRow>>,
    /// Logins by handle ([`TradeRow::account`]), each once.
    pub accounts: Vec<AccountId>,
    /// Symbols by handle ([`TradeRow::symbol`]), each once.
    pub symbols: Vec<Symbol>,
    /// The basis of the rows' [`TradeRow::pnl`].
    pub basis: PnlBasis,
}

impl TradeBatch {
    /// An empty batch on `basis`.
    #[must_use]
    pub fn new(basis: PnlBasis) -> Self {
        Self {
            parts: Vec::new(),
            accounts: Vec::new(),
            symbols: Vec::new(),
            basis,
        }
    }

    /// The trades, in file order.
    pub fn rows(&self) -> impl Iterator<Item = &TradeRow> {
        self.parts.iter().flatten()
    }

    /// The number of trades.
    #[must_use]
    pub fn len(&self) -> usize {
        self.parts.iter().map(Vec::len).sum()
    }

    /// True when there is no trade.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(Vec::is_empty)
    }
}

/// A trades export read into a [`TradeBatch`], with what was skipped: the counterpart of
/// [`TradeFile`](super::TradeFile).
#[derive(Debug, Clone)]
pub struct BatchFile {
    /// Every good, first-seen trade, in file order.
    pub batch: TradeBatch,
    /// The first [`MAX_KEPT_ROW_ERRORS`](super::MAX_KEPT_ROW_ERRORS) bad rows.
    pub errors: Vec<RowError>,
    /// All bad rows.
    pub skipped_rows: u64,
    /// Rows dropped because their identifier was already seen.
    pub duplicate_rows: u64,
}

impl From<ReadOut<BatchSink>> for BatchFile {
    fn from(out: ReadOut<BatchSink>) -> Self {
        Self {
            batch: out.kept.into_batch(),
            errors: out.errors,
            skipped_rows: out.skipped_rows,
            duplicate_rows: out.duplicate_rows,
        }
    }
}

/// [`read_trades_path`](super::read_trades_path) into a [`TradeBatch`] with P&L on
/// `basis`: the same file reading (byte ranges over the cores when it holds no quote),
/// rows, errors and counts.
///
/// # Errors
/// As [`read_trades_path`](super::read_trades_path).
pub fn read_trade_batch_path(
    path: &Path,
    basis: PnlBasis,
    progress: impl Fn(u64) + Sync,
) -> Result<BatchFile, CsvInputError> {
    let name = path.display().to_string();
    let small = std::fs::metadata(path).is_ok_and(|m| m.len() < PARALLEL_MIN_BYTES as u64);
    let workers = if small {
        1
    } else {
        rayon::current_num_threads()
    };
    let sink = BatchSink::new(basis, 0);
    read_file(path, &name, workers, CsvLimits::default(), sink, progress).map(BatchFile::from)
}

/// [`read_trades_with`](super::read_trades_with) into a [`TradeBatch`] with P&L on
/// `basis`.
///
/// # Errors
/// As [`read_trades`](super::read_trades).
pub fn read_trade_batch<R: Read>(
    source: R,
    file: &str,
    basis: PnlBasis,
    limits: CsvLimits,
    progress: impl FnMut(u64),
) -> Result<BatchFile, CsvInputError> {
    read_sequential(source, file, limits, BatchSink::new(basis, 0), progress).map(BatchFile::from)
}

/// [`read_trades_parallel_with`](super::read_trades_parallel_with) into a [`TradeBatch`]
/// with P&L on `basis`.
///
/// # Errors
/// As [`read_trades`](super::read_trades).
pub fn read_trade_batch_parallel(
    bytes: &[u8],
    file: &str,
    workers: usize,
    basis: PnlBasis,
    limits: CsvLimits,
    progress: impl Fn(u64) + Sync,
) -> Result<BatchFile, CsvInputError> {
    let sink = BatchSink::new(basis, 0);
    read_parallel(bytes, file, workers, limits, sink, progress).map(BatchFile::from)
}

/// Names (logins or symbols) numbered in first-seen order. A name of up to 15 bytes (all
/// logins and symbols in practice) is looked up as one integer, its bytes and length,
/// which hashes and compares in a few instructions; the last name is tried first, since
/// some exports list an account's trades together.
#[derive(Default)]
struct Numbering {
    short: FastMap<u128, u32>,
    long: FastMap<Box<str>, u32>,
    names: Vec<Box<str>>,
    /// The last short name looked up, and its number.
    last: Option<(u128, u32)>,
}

/// `name`'s bytes and length as one integer, for names of up to 15 bytes: byte `i` of
/// the name in byte `i` of the integer, the length in the top byte. Read as two
/// overlapping words (no copy through a buffer).
pub(super) fn packed(name: &str) -> Option<u128> {
    let b = name.as_bytes();
    let len = b.len();
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            b[at..at + 4].try_into().unwrap_or([0; 4]),
        ))
    };
    let (lo, hi) = match len {
        16.. => return None,
        // The last word's bytes past the first eight, moved down to bytes 0 to len - 9.
        9..=15 => (word(0), word(len - 8) >> (8 * (16 - len))),
        8 => (word(0), 0),
        4..=7 => (half(0) | (half(len - 4) >> (8 * (8 - len))) << 32, 0),
        _ => (
            b.iter()
                .enumerate()
                .fold(0, |key, (i, &c)| key | u64::from(c) << (8 * i)),
            0,
        ),
    };
    Some(u128::from(lo) | u128::from(hi) << 64 | (len as u128) << 120)
}

impl Numbering {
    fn number(&mut self, name: &str) -> u32 {
        let next = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        let Some(key) = packed(name) else {
            if let Some(&n) = self.long.get(name) {
                return n;
            }
            self.long.insert(name.into(), next);
            self.names.push(name.into());
            return next;
        };
        if let Some((last, n)) = self.last {
            if last == key {
                return n;
            }
        }
        let n = *self.short.entry(key).or_insert(next);
        if n == next {
            self.names.push(name.into());
        }
        self.last = Some((key, n));
        n
    }
}

/// The [`Sink`] of the batch reads: compact rows, logins and symbols numbered per part
/// (renumbered when parts are appended), and each row's id until the merge is done.
pub(super) struct BatchSink {
    basis: PnlBasis,
    /// The first part's rows (numbered by this sink).
    rows: Vec<TradeRow>,
    /// The parts appended since, each with the handles of its logins and symbols here
    /// (applied to its rows once, on all cores, by `into_batch`).
    appended: Vec<(Vec<TradeRow>, Vec<u32>, Vec<u32>)>,
    /// Each row's id: the number of a canonical numeric id, else (flag [`TEXT_ID`]) the
    /// index of its text in `text_ids`.
    ids: Vec<u64>,
    text_ids: Vec<TradeId>,
    accounts: Numbering,
    symbols: Numbering,
}

impl BatchSink {
    fn new(basis: PnlBasis, capacity: usize) -> Self {
        Self {
            basis,
            rows: Vec::with_capacity(capacity),
            appended: Vec::new(),
            ids: Vec::with_capacity(capacity),
            text_ids: Vec::new(),
            accounts: Numbering::default(),
            symbols: Numbering::default(),
        }
    }

    fn into_batch(self) -> TradeBatch {
        let mut first = self.rows;
        for row in &mut first {
            row.flags &= !TEXT_ID;
        }
        let mut parts = vec![first];
        parts.extend(
            self.appended
                .into_par_iter()
                .map(|(mut rows, accounts, symbols)| {
                    for row in &mut rows {
                        // The maps hold a handle for every login and symbol of the part.
                        row.account = accounts
                            .get(row.account as usize)
                            .copied()
                            .unwrap_or(u32::MAX);
                        row.symbol = symbols
                            .get(row.symbol as usize)
                            .copied()
                            .unwrap_or(u32::MAX);
                        row.flags &= !TEXT_ID;
                    }
                    rows
                })
                .collect::<Vec<_>>(),
        );
        TradeBatch {
            parts,
            accounts: self
                .accounts
                .names
                .iter()
                .map(|n| AccountId::new(n))
                .collect(),
            symbols: self.symbols.names.iter().map(|n| Symbol::new(n)).collect(),
            basis: self.basis,
        }
    }
}

impl Sink for BatchSink {
    fn fresh(&self, capacity: usize) -> Self {
        Self::new(self.basis, capacity)
    }

    fn len(&self) -> usize {
        self.rows.len() + self.appended.iter().map(|a| a.0.len()).sum::<usize>()
    }

    fn keep(&mut self, id: &str, key: &IdKey, row: Parsed<'_>) {
        // As `ClosedTrade::pnl` computes it.
        let pnl = match self.basis {
            PnlBasis::Net => {
                add_exact(row.profit, row.commission).and_then(|sum| add_exact(sum, row.swap))
            }
            PnlBasis::Gross => Some(row.profit),
        };
        let set = |p: Option<Decimal>| matches!(p, Some(p) if !p.is_zero());
        let mut trade = TradeRow::new(
            row.opened_at_ns,
            row.closed_at_ns,
            pnl,
            row.volume,
            row.side,
            self.accounts.number(row.login),
            self.symbols.number(row.symbol),
            set(row.stop_loss),
            set(row.take_profit),
        );
        match key {
            IdKey::Numeric(n) => self.ids.push(*n),
            IdKey::Text => {
                trade.flags |= TEXT_ID;
                self.ids.push(self.text_ids.len() as u64);
                self.text_ids.push(TradeId::new(id));
            }
        }
        self.rows.push(trade);
    }

    fn retain_ids(&mut self, mut keep: impl FnMut(RowId<'_>) -> bool) {
        let mut kept = 0;
        for i in 0..self.rows.len() {
            let (row, id) = (self.rows[i], self.ids[i]);
            let row_id = if row.flags & TEXT_ID == 0 {
                RowId::Numeric(id)
            } else {
                match usize::try_from(id).ok().and_then(|k| self.text_ids.get(k)) {
                    Some(text) => RowId::Text(text),
                    // Unreachable: every text flag comes with its text's index.
                    None => RowId::Numeric(id),
                }
            };
            if keep(row_id) {
                if kept != i {
                    self.rows[kept] = row;
                    self.ids[kept] = id;
                }
                kept += 1;
            }
        }
        self.rows.truncate(kept);
        self.ids.truncate(kept);
    }

    /// The other part's rows are renumbered later, in `into_batch`; its ids are dropped
    /// (the merge retains rows before it appends them).
    fn append(&mut self, other: Self) {
        let accounts: Vec<u32> = other
            .accounts
            .names
            .iter()
            .map(|n| self.accounts.number(n))
            .collect();
        let symbols: Vec<u32> = other
            .symbols
            .names
            .iter()
            .map(|n| self.symbols.number(n))
            .collect();
        self.appended.push((other.rows, accounts, symbols));
        self.appended.extend(other.appended);
    }
}
