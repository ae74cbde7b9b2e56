//! Reading a large in-memory trades export on several threads: split at line boundaries,
//! each chunk read as a sequential read would, merged in file order.

use super::bounded::BoundedRows;
use super::error::CsvInputError;
use super::fields::{check_header, find_columns};
use super::trades::{read_trades_with, IdKey, Ingest, TradeFile, TRADE_COLUMNS};
use super::{CsvLimits, MAX_KEPT_ROW_ERRORS};

/// Files smaller than this are read on one core.
pub(super) const PARALLEL_MIN_BYTES: usize = 4 << 20;

/// [`read_trades`](super::read_trades) over an in-memory export split across `workers` threads (sequential
/// when there is one worker, or when the text has a quote, since a quoted field may hold a
/// line break and line boundaries are then not row boundaries).
///
/// # Errors
/// As [`read_trades`](super::read_trades).
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
/// As [`read_trades`](super::read_trades).
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
