//! The errors of CSV ingestion: a skipped row ([`RowError`], reported and counted) and a
//! file that cannot be read at all ([`CsvInputError`]).

use std::fmt;

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
    /// The header row is longer than [`CsvLimits::max_row_bytes`](super::CsvLimits::max_row_bytes).
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
