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
//!
//! # Layout
//! `trades` reads an export on one thread (the csv reader, any CSV; or rows split in
//! place when the text has no quote), `parallel` splits a quote-free one over threads,
//! `batch` keeps the rows in the report's compact form instead of as `ClosedTrade`s,
//! `fast` parses a split row of the usual shape in one pass (any other row goes to the
//! general row parse), `accounts` reads the accounts file; `fields` turns cells into
//! values with row errors, `error` holds the errors, and `bounded` bounds each row
//! before the csv reader buffers it.

mod accounts;
mod batch;
mod bounded;
mod error;
mod fast;
mod fields;
mod parallel;
mod trades;

#[cfg(test)]
mod tests;

pub use accounts::{
    read_accounts, read_accounts_path, read_accounts_with, AccountInfo, AccountsFile,
};
pub use batch::{
    read_trade_batch, read_trade_batch_parallel, read_trade_batch_path, BatchFile, TradeBatch,
    TradeRow,
};
pub use error::{CsvInputError, RowError};
pub use fields::parse_timestamp;
pub use parallel::{read_trades_parallel, read_trades_parallel_with};
pub use trades::{read_trades, read_trades_path, read_trades_with, TradeFile, TRADE_COLUMNS};

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
