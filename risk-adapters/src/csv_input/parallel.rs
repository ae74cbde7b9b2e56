//! Reading a trades export (in memory, or a file read by byte ranges) on several threads:
//! a text without quotes is split at line boundaries (row boundaries there), each chunk's
//! rows split in place and parsed straight from the bytes ([`Ingest::run_split`]), and
//! the chunks merged in file order. A text with a quote anywhere is read by the csv
//! reader on one thread: a quoted field may hold a line break, so line ends are no longer
//! row ends (the exports of dataframes and trading platforms quote nothing).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use risk_core::hash::HashSet as FastSet;
use risk_core::ids::TradeId;

use super::error::CsvInputError;
use super::fields::{csv_error, find_columns, open_reader};
use super::trades::{
    numeric_id, read_sequential, BadRow, Ingest, ReadOut, RowId, Sink, TradeFile, TradeSink,
    TRADE_COLUMNS,
};
use super::{CsvLimits, MAX_KEPT_ROW_ERRORS};

/// Files smaller than this are read on one core.
pub(super) const PARALLEL_MIN_BYTES: usize = 4 << 20;

/// [`read_trades`](super::read_trades) over an in-memory export split into chunks (four
/// per worker when there are several) read on rayon's thread pool, with the same result.
/// A text with a quote anywhere (a quoted field may hold a line break, and line
/// boundaries are then not row boundaries), or that starts with a blank line, is read by
/// the csv reader on one thread instead.
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
    read_parallel(bytes, file, workers, limits, TradeSink::default(), progress).map(TradeFile::from)
}

/// [`read_trades_parallel_with`] into any [`Sink`] (`sink` is empty).
pub(super) fn read_parallel<S: Sink>(
    bytes: &[u8],
    file: &str,
    workers: usize,
    limits: CsvLimits,
    sink: S,
    progress: impl Fn(u64) + Sync,
) -> Result<ReadOut<S>, CsvInputError> {
    let Some(header_end) = split_header(bytes) else {
        return read_sequential(bytes, file, limits, sink, progress);
    };
    if memchr::memchr(b'"', bytes).is_some() {
        return read_sequential(bytes, file, limits, sink, progress);
    }
    let (_, header) = open_reader(&bytes[..header_end], file, limits)?;
    let cols = find_columns(&header, &TRADE_COLUMNS, file)?;

    // Chunk boundaries just after a line break (a row boundary in text without quotes).
    let body = &bytes[header_end..];
    let chunks = chunks_for(workers);
    let mut bounds = vec![0_usize];
    for k in 1..chunks {
        let target = (body.len() * k / chunks).max(bounds[bounds.len() - 1]);
        let cut = memchr::memchr(b'\n', &body[target..]).map_or(body.len(), |i| target + i + 1);
        bounds.push(cut);
    }
    bounds.push(body.len());
    bounds.dedup();
    let body_line = 1_u64 + count_lines(&bytes[..header_end]);

    let done = AtomicU64::new(header_end as u64);
    let chunks: Vec<(usize, &[u8])> = bounds
        .windows(2)
        .enumerate()
        .map(|(k, w)| (k, &body[w[0]..w[1]]))
        .collect();
    // Each chunk on rayon's pool; `collect` keeps them in file order.
    let parts: Vec<(Ingest<'_, S>, u64)> = chunks
        .into_par_iter()
        .map(|(k, chunk)| {
            let capacity = if k == 0 { body.len() } else { chunk.len() } / 100;
            let first_line = if k == 0 { body_line } else { 1 };
            let mut ingest =
                Ingest::deferred(&header, cols, file, limits, sink.fresh(capacity), capacity);
            let newlines = ingest.run_split(chunk, first_line, reporter(&done, &progress));
            (ingest, newlines)
        })
        .collect();
    progress(bytes.len() as u64);
    match merge(parts, body_line, sink.fresh(0)) {
        Some(out) => Ok(out),
        None => read_sequential(bytes, file, limits, sink, |_| {}),
    }
}

/// Chunks for `workers` threads: one for one, else [`CHUNKS_PER_WORKER`] each.
fn chunks_for(workers: usize) -> usize {
    if workers > 1 {
        workers * CHUNKS_PER_WORKER
    } else {
        1
    }
}

/// Chunks per worker thread: more chunks than threads balance the threads when one is
/// slowed (a shared machine), and lower the peak memory of the merge, which appends each
/// chunk's trades to the first chunk's vector and frees them, one chunk at a time.
const CHUNKS_PER_WORKER: usize = 4;

/// Where the header row ends (after its line end) in a text whose first row is the
/// header; `None` when the text starts with a blank line (the csv reader skips it and
/// takes the next line for the header), which the split reader leaves to it.
fn split_header(bytes: &[u8]) -> Option<usize> {
    let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if matches!(start.first(), Some(b'\r' | b'\n')) {
        return None;
    }
    // The csv reader ends a record at `\n`, `\r\n` or a lone `\r`: so does the header.
    Some(
        memchr::memchr2(b'\n', b'\r', bytes).map_or(bytes.len(), |i| {
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i + 2
            } else {
                i + 1
            }
        }),
    )
}

/// A chunk's progress callback: adds what the chunk read since its last call to `done`
/// and reports the total.
fn reporter<'a>(done: &'a AtomicU64, progress: &'a (impl Fn(u64) + Sync)) -> impl FnMut(u64) + 'a {
    let mut reported = 0;
    move |bytes| {
        let delta = bytes.saturating_sub(reported);
        reported = bytes;
        let before = done.fetch_add(delta, Ordering::Relaxed);
        progress(before + delta);
    }
}

/// The chunks' results ([`Ingest::deferred`] passes) merged in file order, as a
/// sequential read would have decided: a row whose id an earlier good row claimed is a
/// duplicate, good or bad; a bad row claims nothing. Only the ids that more than one row
/// carries (found by sorting all of them once) are followed through a set. Each part comes
/// with the number of line breaks its text held: the first part's row errors carry their
/// lines already, a later part's count from 1 and are moved to theirs here.
///
/// `None` in the one case the parts cannot answer exactly: a part kept the errors of its
/// first [`MAX_KEPT_ROW_ERRORS`] bad rows only, and some of those turned out duplicates, so
/// that an error the file's first [`MAX_KEPT_ROW_ERRORS`] needs was not kept. The caller
/// then reads the file sequentially.
fn merge<S: Sink>(
    parts: Vec<(Ingest<'_, S>, u64)>,
    body_line: u64,
    empty: S,
) -> Option<ReadOut<S>> {
    let mut numeric: Vec<u64> =
        Vec::with_capacity(parts.iter().map(|(p, _)| p.numeric_ids.len()).sum());
    for (part, _) in &parts {
        numeric.extend_from_slice(&part.numeric_ids);
    }
    numeric.par_sort_unstable();
    let repeated_numeric: FastSet<u64> = numeric
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    drop(numeric);
    let mut text: Vec<TradeId> = parts
        .iter()
        .flat_map(|(p, _)| p.text_ids.iter().cloned())
        .collect();
    text.sort_unstable();
    let repeated_text: FastSet<TradeId> = text
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0].clone())
        .collect();
    drop(text);
    // A filter over the last two bytes of the repeated ids' text rules most trades out
    // before their id is parsed and looked up.
    let mut filter = vec![false; 1 << 16];
    let tail = |id: &str| {
        let b = id.as_bytes();
        let at = |back: usize| usize::from(b.len().checked_sub(back).map_or(0, |i| b[i]));
        at(2) << 8 | at(1)
    };
    for n in &repeated_numeric {
        filter[tail(&n.to_string())] = true;
    }
    for id in &repeated_text {
        filter[tail(id.as_str())] = true;
    }
    // The same for numeric ids, over their low 16 bits.
    let mut numeric_filter = vec![false; 1 << 16];
    for &n in &repeated_numeric {
        numeric_filter[(n & 0xFFFF) as usize] = true;
    }
    // A kept row's id in the form the sets hold, `None` when it is not repeated.
    let repeated = |id: RowId<'_>| -> Option<Claim> {
        let id = match id {
            RowId::Raw(id) => {
                if !filter[tail(id.as_str())] {
                    return None;
                }
                match numeric_id(id.as_str()) {
                    Some(n) => RowId::Numeric(n),
                    None => RowId::Text(id),
                }
            }
            known => known,
        };
        match id {
            RowId::Numeric(n) => (numeric_filter[(n & 0xFFFF) as usize]
                && repeated_numeric.contains(&n))
            .then_some(Claim::Numeric(n)),
            RowId::Text(id) => repeated_text
                .contains(id.as_str())
                .then(|| Claim::Text(id.clone())),
            RowId::Raw(_) => None,
        }
    };
    // The repeated ids claimed so far, by good rows.
    let mut claimed: FastSet<Claim> = FastSet::default();
    let was_claimed = |claimed: &FastSet<Claim>, id: &TradeId| match numeric_id(id.as_str()) {
        Some(n) => claimed.contains(&Claim::Numeric(n)),
        None => claimed.contains(&Claim::Text(id.clone())),
    };

    let mut out = ReadOut::from_kept(empty);
    let (mut errors, mut skipped_rows, mut duplicate_rows) = (Vec::new(), 0_u64, 0_u64);
    let mut next_line = body_line;
    for (k, (part, newlines)) in parts.into_iter().enumerate() {
        let offset = if k == 0 { 0 } else { next_line - 1 };
        next_line += newlines;
        let mut kept = part.out.kept;
        let mut bad_rows = part.bad_rows.into_iter().peekable();
        // A bad row: a duplicate when its id was claimed, else skipped with its error;
        // false when that error was not kept and is needed.
        let mut bad = |row: BadRow, claimed: &FastSet<Claim>| {
            if row.id.as_ref().is_some_and(|id| was_claimed(claimed, id)) {
                duplicate_rows += 1;
                return true;
            }
            skipped_rows += 1;
            if errors.len() < MAX_KEPT_ROW_ERRORS {
                let Some(mut error) = row.error else {
                    return false;
                };
                error.line += offset;
                errors.push(error);
            }
            true
        };
        // The part's rows filtered in place (no copy), its bad rows taken in between;
        // with no id repeated anywhere, all its rows are kept as they are.
        let (mut i, mut exact) = (0, true);
        let mut dropped = 0_u64;
        if !repeated_numeric.is_empty() || !repeated_text.is_empty() {
            kept.retain_ids(|id| {
                while let Some(row) = bad_rows.next_if(|b| b.ordinal <= i) {
                    exact &= bad(row, &claimed);
                }
                i += 1;
                let first = repeated(id).is_none_or(|c| claimed.insert(c));
                if !first {
                    dropped += 1;
                }
                first
            });
        }
        for row in bad_rows {
            exact &= bad(row, &claimed);
        }
        duplicate_rows += dropped;
        if !exact {
            return None;
        }
        if k == 0 {
            // Its rows were reserved for the whole file.
            out.kept = kept;
        } else {
            out.kept.append(kept);
        }
    }
    out.errors = errors;
    out.skipped_rows = skipped_rows;
    out.duplicate_rows = duplicate_rows;
    Some(out)
}

/// A repeated id claimed by a good row during the merge.
#[derive(PartialEq, Eq, Hash)]
enum Claim {
    Numeric(u64),
    Text(TradeId),
}

/// Bytes read at a time by each chunk of [`read_file`].
const BLOCK: usize = 4 << 20;

/// Why a chunk of [`read_file`] stopped.
enum Stop {
    /// The file cannot be read.
    Io(std::io::Error),
    /// The chunk holds a quote: the file goes to the csv reader.
    Quote,
}

/// [`read_trades_parallel`] over a file, without holding it in memory: the header read
/// first, then byte ranges (four per worker when there are several), each starting after
/// a line break, read block by block ([`BLOCK`]) on rayon's pool, each block's complete
/// rows parsed in place and the rest carried to the next block. A file with a quote
/// (found in the header or by any chunk), or that starts with a blank line, is read again
/// by the csv reader, as a stream on one thread.
///
/// # Errors
/// As [`read_trades`](super::read_trades), and [`CsvInputError::Open`] when the file
/// cannot be opened.
pub(super) fn read_file<S: Sink>(
    path: &Path,
    file: &str,
    workers: usize,
    limits: CsvLimits,
    sink: S,
    progress: impl Fn(u64) + Sync,
) -> Result<ReadOut<S>, CsvInputError> {
    let open = || {
        File::open(path).map_err(|source| CsvInputError::Open {
            file: file.to_owned(),
            source,
        })
    };
    let io_error = |e: std::io::Error| csv_error(file, e.into());
    let by_csv_reader = || read_sequential(open()?, file, limits, sink.fresh(0), &progress);
    let mut handle = open()?;
    let len = handle.metadata().map_err(io_error)?.len();
    // The header, from the first bytes (a header longer than those is the csv reader's
    // to read, or to refuse).
    let mut head = Vec::new();
    (&mut handle)
        .take(limits.max_row_bytes.max(1) as u64 + 2)
        .read_to_end(&mut head)
        .map_err(io_error)?;
    let header_end = match split_header(&head) {
        Some(end) if end < head.len() || head.len() as u64 == len => end,
        _ => return by_csv_reader(),
    };
    if memchr::memchr(b'"', &head[..header_end]).is_some() {
        return by_csv_reader();
    }
    let (_, header) = open_reader(&head[..header_end], file, limits)?;
    let cols = find_columns(&header, &TRADE_COLUMNS, file)?;
    let body_line = 1_u64 + count_lines(&head[..header_end]);

    // Chunk boundaries just after a line break, found by reading a little at each.
    let header_end = header_end as u64;
    let body = len - header_end;
    let chunks = chunks_for(workers) as u64;
    let mut bounds = vec![header_end];
    let mut window = vec![0_u8; 64 << 10];
    for k in 1..chunks {
        let mut at = (header_end + body * k / chunks).max(bounds[bounds.len() - 1]);
        handle.seek(SeekFrom::Start(at)).map_err(io_error)?;
        let cut = loop {
            let n = handle.read(&mut window).map_err(io_error)?;
            if n == 0 {
                break len;
            }
            if let Some(i) = memchr::memchr(b'\n', &window[..n]) {
                break at + i as u64 + 1;
            }
            at += n as u64;
        };
        bounds.push(cut);
    }
    bounds.push(len);
    bounds.dedup();

    let done = AtomicU64::new(header_end);
    let ranges: Vec<(usize, u64, u64)> = bounds
        .windows(2)
        .enumerate()
        .map(|(k, w)| (k, w[0], w[1]))
        .collect();
    let parts: Result<Vec<(Ingest<'_, S>, u64)>, Stop> = ranges
        .into_par_iter()
        .map(|(k, from, to)| {
            let capacity =
                usize::try_from(if k == 0 { body } else { to - from } / 100).unwrap_or(0);
            let mut ingest =
                Ingest::deferred(&header, cols, file, limits, sink.fresh(capacity), capacity);
            let mut line = if k == 0 { body_line } else { 1 };
            let mut source = File::open(path).map_err(Stop::Io)?;
            source.seek(SeekFrom::Start(from)).map_err(Stop::Io)?;
            let mut source = source.take(to - from);
            let mut report = reporter(&done, &progress);
            let (mut buf, mut read_before) = (Vec::with_capacity(BLOCK), 0_u64);
            loop {
                // Top the buffer up to a block past what was carried (more when one row
                // is longer than a block), then parse up to its last line end.
                let carried = buf.len();
                let want = BLOCK.max(carried * 2) as u64;
                let n = (&mut source)
                    .take(want)
                    .read_to_end(&mut buf)
                    .map_err(Stop::Io)?;
                let end_of_range = n == 0 || source.limit() == 0;
                if memchr::memchr(b'"', &buf[carried..]).is_some() {
                    return Err(Stop::Quote);
                }
                let upto = if end_of_range {
                    buf.len()
                } else {
                    memchr::memrchr2(b'\n', b'\r', &buf).map_or(0, |i| i + 1)
                };
                let base = read_before;
                line += ingest.run_split(&buf[..upto], line, |b| report(base + b));
                read_before += upto as u64;
                buf.drain(..upto);
                if end_of_range {
                    return Ok((ingest, line - if k == 0 { body_line } else { 1 }));
                }
            }
        })
        .collect();
    match parts {
        Ok(parts) => match merge(parts, body_line, sink.fresh(0)) {
            Some(out) => {
                progress(len);
                Ok(out)
            }
            None => by_csv_reader(),
        },
        Err(Stop::Quote) => by_csv_reader(),
        Err(Stop::Io(e)) => Err(io_error(e)),
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}
