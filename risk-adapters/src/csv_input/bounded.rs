//! A [`Read`] adapter that bounds the size of each CSV row before the csv reader sees it.
//!
//! The csv crate buffers a whole record, so one huge field (or an unterminated quote)
//! grows its buffer without limit. [`BoundedRows`] follows the rows with the same state
//! machine as `csv_core` (delimiter `,`, quote `"` doubled to escape, records ended by
//! `\r`, `\n` or `\r\n`, blank lines skipped, a UTF-8 byte-order mark dropped at the very
//! start) and passes at most `max_row_bytes` bytes of any row through. A longer row is cut
//! there: the adapter drops the rest of the row up to its real end, then ends the row
//! with a closing quote when the cut was inside one and a `\r`, and marks the row as cut
//! so that the caller reports it instead of parsing its truncated text. What the csv
//! reader then holds for one row is at most `max_row_bytes + 2` bytes, whatever the input.
//!
//! Following the rows, the adapter also knows the line each one starts on (the csv
//! reader's record positions do not: they point where it started reading the record,
//! before the blank lines and the `\n` of a CRLF that precede it): [`RowInfo`].
//!
//! Hand-written rather than a reader rebuilt on csv_core: the ingestion keeps the csv
//! crate's record API, and this adapter only follows quotes and line ends to cut a row.

use std::collections::VecDeque;
use std::io::{self, Read};

/// One row of the input, in the order the csv reader returns them as records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RowInfo {
    /// The 1-based line of the row's first byte (counting `\n`, as the csv reader does).
    pub line: u64,
    /// When the row was longer than the bound and cut: the field (0-based) in which it
    /// crossed the bound.
    pub cut: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between rows; line ends here are blank lines.
    StartRecord,
    /// At the start of a field (after a delimiter).
    StartField,
    /// In an unquoted field: a quote here is data.
    InField,
    /// In a quoted field: delimiters and line ends are data.
    InQuoted,
    /// Just after a quote in a quoted field: it closes the field, or a second quote
    /// makes it a literal quote.
    QuoteInQuoted,
}

/// What a byte is to the row state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Data,
    Delimiter,
    Quote,
    LineEnd,
}

#[inline]
fn class(b: u8) -> Class {
    match b {
        b',' => Class::Delimiter,
        b'"' => Class::Quote,
        b'\r' | b'\n' => Class::LineEnd,
        _ => Class::Data,
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The number of `,` in `data` (counted in blocks of 255 with byte-wide sums, which the
/// compiler vectorises; a plain filter-count is several times slower).
pub(super) fn delimiters(data: &[u8]) -> usize {
    data.chunks(255)
        .map(|block| {
            let n = block
                .iter()
                .fold(0_u8, |n, &b| n.wrapping_add(u8::from(b == b',')));
            usize::from(n)
        })
        .sum()
}

/// See the module documentation.
pub(super) struct BoundedRows<R> {
    inner: R,
    max_row: usize,
    chunk: Box<[u8]>,
    chunk_start: usize,
    chunk_end: usize,
    /// Bytes read from `inner` so far.
    consumed: u64,
    /// No output returned yet (a byte-order mark is dropped only at the start of the
    /// first output, as `csv_core` does).
    first_output: bool,
    /// Bytes of a leading byte-order mark still to pass through without counting.
    bom_left: u8,
    state: State,
    /// The line of the next byte.
    line: u64,
    /// Rows started and not yet handed out; the current row is the last.
    rows: VecDeque<RowInfo>,
    row_len: usize,
    field: usize,
    /// Dropping the rest of a row that was cut.
    skipping: bool,
    /// The cut fell inside a quoted field.
    quoted_at_cut: bool,
    /// Closing bytes of a cut row not yet handed out.
    closer: VecDeque<u8>,
}

impl<R: Read> BoundedRows<R> {
    /// Wraps `inner`; rows longer than `max_row` bytes (at least 1) are cut.
    pub(super) fn new(inner: R, max_row: usize) -> Self {
        Self {
            inner,
            max_row: max_row.max(1),
            chunk: vec![0; 1 << 16].into_boxed_slice(),
            chunk_start: 0,
            chunk_end: 0,
            consumed: 0,
            first_output: true,
            bom_left: 0,
            state: State::StartRecord,
            line: 1,
            rows: VecDeque::new(),
            row_len: 0,
            field: 0,
            skipping: false,
            quoted_at_cut: false,
            closer: VecDeque::new(),
        }
    }

    /// Bytes read from the wrapped reader so far (ahead of what the csv reader parsed by
    /// at most its buffer).
    pub(super) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The row of the record the csv reader has just returned (call once per record,
    /// the header included). `None` only if the two disagree on the rows, which the
    /// tests rule out.
    pub(super) fn next_row(&mut self) -> Option<RowInfo> {
        self.rows.pop_front()
    }

    /// Runs one byte through the state machine; returns whether it is passed on.
    #[inline]
    fn step(&mut self, b: u8) -> bool {
        let line = self.line;
        if b == b'\n' {
            self.line += 1;
        }
        if self.bom_left > 0 {
            self.bom_left -= 1;
            return true;
        }
        let c = class(b);
        if self.state == State::StartRecord {
            if c == Class::LineEnd {
                return true;
            }
            self.rows.push_back(RowInfo { line, cut: None });
            self.row_len = 0;
            self.field = 0;
            self.state = State::StartField;
        }
        let before = self.state;
        let (next, ends_row) = match (before, c) {
            (State::StartField | State::InField | State::QuoteInQuoted, Class::LineEnd) => {
                (State::StartRecord, true)
            }
            (State::StartField | State::InField | State::QuoteInQuoted, Class::Delimiter) => {
                self.field += 1;
                (State::StartField, false)
            }
            (State::StartField, Class::Quote) | (State::QuoteInQuoted, Class::Quote) => {
                (State::InQuoted, false)
            }
            (State::InQuoted, Class::Quote) => (State::QuoteInQuoted, false),
            (State::InQuoted, _) => (State::InQuoted, false),
            (_, _) => (State::InField, false),
        };
        self.state = next;
        if self.skipping {
            if ends_row {
                self.end_cut();
            }
            return false;
        }
        if ends_row {
            return true;
        }
        self.row_len += 1;
        if self.row_len <= self.max_row {
            return true;
        }
        // Cut: the row ends for the csv reader as it stands before this byte, once the
        // rest of it has been dropped (so that the cut is complete when the reader
        // returns the row).
        self.quoted_at_cut = before == State::InQuoted;
        if let Some(row) = self.rows.back_mut() {
            row.cut = Some(self.field);
        }
        self.skipping = true;
        false
    }

    /// The cut row's real end (or the input's): hands the csv reader the bytes that end
    /// the row where it was cut.
    fn end_cut(&mut self) {
        self.skipping = false;
        if self.quoted_at_cut {
            self.closer.push_back(b'"');
        }
        self.closer.push_back(b'\r');
    }
}

impl<R: Read> Read for BoundedRows<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut written = 0;
        loop {
            while written < out.len() {
                let Some(b) = self.closer.pop_front() else {
                    break;
                };
                out[written] = b;
                written += 1;
            }
            if written == out.len() {
                return Ok(written);
            }
            if self.chunk_start == self.chunk_end {
                if written > 0 {
                    return Ok(written);
                }
                let n = self.inner.read(&mut self.chunk)?;
                if n == 0 {
                    if self.skipping {
                        self.end_cut();
                        continue;
                    }
                    return Ok(0);
                }
                self.consumed += n as u64;
                self.chunk_start = 0;
                self.chunk_end = n;
                if self.first_output {
                    self.first_output = false;
                    // csv_core drops a mark that starts its first input, if that input
                    // holds all three bytes of it.
                    if out.len() >= BOM.len() && self.chunk[..n].starts_with(BOM) {
                        self.bom_left = 3;
                    }
                }
            }
            // (Taken out of `self` while the state machine runs on it.)
            let chunk = std::mem::take(&mut self.chunk);
            while self.chunk_start < self.chunk_end && written < out.len() {
                let n = self.unquoted(
                    &chunk[self.chunk_start..self.chunk_end],
                    &mut out[written..],
                );
                if n > 0 {
                    self.chunk_start += n;
                    written += n;
                    continue;
                }
                let b = chunk[self.chunk_start];
                self.chunk_start += 1;
                if self.step(b) {
                    out[written] = b;
                    written += 1;
                } else if !self.closer.is_empty() {
                    break;
                }
            }
            self.chunk = chunk;
        }
    }
}

impl<R> BoundedRows<R> {
    /// The fast path, for the common case: outside quotes and not cutting, whole stretches
    /// up to the next quote are copied at once, rows found by their line ends. Returns
    /// how many bytes of `input` it took (and copied to `out`); [`Self::step`] handles the
    /// byte after them (a quote, or where the row would cross the limit).
    fn unquoted(&mut self, input: &[u8], out: &mut [u8]) -> usize {
        if self.skipping
            || self.bom_left > 0
            || !matches!(
                self.state,
                State::StartRecord | State::StartField | State::InField
            )
        {
            return 0;
        }
        let input = &input[..input.len().min(out.len())];
        let mut i = 0;
        while i < input.len() {
            let rest = &input[i..];
            let j = memchr::memchr3(b'\n', b'\r', b'"', rest).unwrap_or(rest.len());
            let data = &rest[..j];
            if let Some(&last) = data.last() {
                if self.state == State::StartRecord {
                    self.rows.push_back(RowInfo {
                        line: self.line,
                        cut: None,
                    });
                    self.row_len = 0;
                    self.field = 0;
                    self.state = State::StartField;
                }
                if self.row_len + data.len() > self.max_row {
                    break;
                }
                self.row_len += data.len();
                self.field += delimiters(data);
                self.state = if last == b',' {
                    State::StartField
                } else {
                    State::InField
                };
                i += j;
            }
            match rest.get(j) {
                Some(b'\n' | b'\r') => {
                    if rest[j] == b'\n' {
                        self.line += 1;
                    }
                    self.state = State::StartRecord;
                    i += 1;
                }
                // A quote (or the end of the input): the byte-wise path takes over.
                _ => break,
            }
        }
        out[..i].copy_from_slice(&input[..i]);
        i
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A reader that hands out at most `step` bytes per call.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn reader<R: Read>(input: R) -> csv::Reader<R> {
        csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .from_reader(input)
    }

    /// Each record's fields and the line of its first byte, from the csv reader alone:
    /// the record's position is where the reader started reading it, so its first byte
    /// is the first one from there that is not a line end (nor the byte-order mark the
    /// reader drops when its first buffer holds all of it).
    fn records(input: &[u8], step: usize) -> Vec<(Vec<Vec<u8>>, u64)> {
        reader(Trickle(input, step))
            .byte_records()
            .map(|r| {
                let r = r.unwrap();
                let mut from = usize::try_from(r.position().unwrap().byte()).unwrap();
                if from == 0 && step >= BOM.len() && input.starts_with(BOM) {
                    from = BOM.len();
                }
                let first = input[from..]
                    .iter()
                    .position(|b| *b != b'\r' && *b != b'\n')
                    .map_or(input.len(), |i| from + i);
                let line = 1 + input[..first].iter().filter(|b| **b == b'\n').count() as u64;
                (r.iter().map(<[u8]>::to_vec).collect(), line)
            })
            .collect()
    }

    #[test]
    fn a_cut_row_is_closed_and_rows_keep_their_lines() {
        let input = b"a,b\r\n\"x\ny\nz\",c\r\n\nd,e\n";
        let mut r = reader(BoundedRows::new(&input[..], 4));
        let mut record = csv::ByteRecord::new();
        let mut seen = Vec::new();
        while r.read_byte_record(&mut record).unwrap() {
            let row = r.get_mut().next_row().unwrap();
            seen.push((row.line, row.cut, record.get(0).unwrap().to_vec()));
        }
        assert_eq!(
            seen,
            [
                (1, None, b"a".to_vec()),
                (2, Some(0), b"x\ny".to_vec()),
                (6, None, b"d".to_vec()),
            ]
        );
    }

    proptest::proptest! {
        /// The rows the adapter follows are the csv reader's records, in any chunking:
        /// unbounded it changes nothing and each row's line is its first byte's; bounded,
        /// each row is still one record, the rows it does not cut are read unchanged, and
        /// a cut row holds at most the limit.
        #[test]
        fn rows_are_the_csv_readers_records(
            bytes in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b',', b'"', b'\r', b'\n', 0xEF, 0xBB, 0xBF]),
                0..160,
            ),
            limit in 1_usize..24,
            step in 1_usize..8,
        ) {
            // csv_core takes a first buffer that is exactly a byte-order mark for the end
            // of the input (it strips the mark and sees nothing left): no records at all.
            proptest::prop_assume!(!(step == 3 && bytes.len() > 3 && bytes.starts_with(BOM)));
            let raw = records(&bytes, step);
            let mut wide = BoundedRows::new(Trickle(&bytes, step), usize::MAX);
            let mut out = Vec::new();
            wide.read_to_end(&mut out).unwrap();
            proptest::prop_assert_eq!(&out, &bytes);
            let rows: Vec<RowInfo> = wide.rows.iter().copied().collect();
            let lines: Vec<u64> = raw.iter().map(|r| r.1).collect();
            proptest::prop_assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), lines);
            proptest::prop_assert!(rows.iter().all(|r| r.cut.is_none()));

            let mut r = reader(BoundedRows::new(Trickle(&bytes, step), limit));
            let mut record = csv::ByteRecord::new();
            let mut i = 0;
            while r.read_byte_record(&mut record).unwrap() {
                proptest::prop_assert!(i < raw.len(), "more records than the input has");
                let row = r.get_mut().next_row().unwrap();
                proptest::prop_assert_eq!(row.line, raw[i].1);
                if row.cut.is_none() {
                    let fields: Vec<Vec<u8>> = record.iter().map(<[u8]>::to_vec).collect();
                    proptest::prop_assert_eq!(&fields, &raw[i].0);
                } else {
                    proptest::prop_assert!(record.as_slice().len() <= limit);
                }
                i += 1;
            }
            proptest::prop_assert_eq!(i, raw.len());
        }
    }
}
