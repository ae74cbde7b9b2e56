//! A [`Read`] adapter that bounds the size of each CSV row before the csv reader sees it.
//!
//! The csv crate buffers a whole record, so one huge field (or an unterminated quote)
//! grows its buffer without limit. [`BoundedRows`] follows the rows with the same state
//! machine as `csv_core` (delimiter `,`, quote `"` doubled to escape, records ended by
//! `\r`, `\n` or `\r\n`, blank lines skipped, a UTF-8 byte-order mark dropped at the very
//! start) and passes at most `max_row_bytes` bytes of any row through. A longer row is cut
//! there: the adapter drops the rest of the row up to its real end, then ends the row
//! with a closing quote when the cut was inside one and a `\r`, and records a [`Cut`] so
//! that the caller reports the row instead of parsing its truncated text. What the csv
//! reader then holds for one row is at most `max_row_bytes + 2` bytes, whatever the input.

use std::collections::VecDeque;
use std::io::{self, Read};

/// A row that was longer than the bound and was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cut {
    /// The row's index among the rows of the input (the header, when read, is row 0).
    pub record: u64,
    /// The field (0-based) in which the bound was crossed.
    pub field: usize,
    /// Line feeds dropped with the rest of the row: the csv reader's line count falls
    /// behind the input's by this much after the row.
    pub newlines: u64,
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
    /// Rows started so far; the current row's index is `rows - 1`.
    rows: u64,
    row_len: usize,
    field: usize,
    /// Dropping the rest of a row that was cut.
    skipping: bool,
    /// The cut fell inside a quoted field.
    quoted_at_cut: bool,
    /// Closing bytes of a cut row not yet handed out.
    closer: VecDeque<u8>,
    cuts: VecDeque<Cut>,
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
            rows: 0,
            row_len: 0,
            field: 0,
            skipping: false,
            quoted_at_cut: false,
            closer: VecDeque::new(),
            cuts: VecDeque::new(),
        }
    }

    /// Bytes read from the wrapped reader so far (ahead of what the csv reader parsed by
    /// at most its buffer).
    pub(super) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The cut of row `record`, if that row was cut. Rows must be asked for in order.
    pub(super) fn take_cut(&mut self, record: u64) -> Option<Cut> {
        while self.cuts.front().is_some_and(|c| c.record < record) {
            self.cuts.pop_front();
        }
        if self.cuts.front().is_some_and(|c| c.record == record) {
            self.cuts.pop_front()
        } else {
            None
        }
    }

    /// Runs one byte through the state machine; returns whether it is passed on.
    #[inline]
    fn step(&mut self, b: u8) -> bool {
        if self.bom_left > 0 {
            self.bom_left -= 1;
            return true;
        }
        let c = class(b);
        if self.state == State::StartRecord {
            if c == Class::LineEnd {
                return true;
            }
            self.rows += 1;
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
            if b == b'\n' {
                if let Some(cut) = self.cuts.back_mut() {
                    cut.newlines += 1;
                }
            }
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
        self.cuts.push_back(Cut {
            record: self.rows - 1,
            field: self.field,
            newlines: u64::from(b == b'\n'),
        });
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
            while self.chunk_start < self.chunk_end && written < out.len() {
                let b = self.chunk[self.chunk_start];
                self.chunk_start += 1;
                if self.step(b) {
                    out[written] = b;
                    written += 1;
                } else if !self.closer.is_empty() {
                    break;
                }
            }
        }
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

    /// Each record's fields and line, as the csv reader reports them.
    fn records(input: impl Read) -> Vec<(Vec<Vec<u8>>, u64)> {
        reader(input)
            .byte_records()
            .map(|r| {
                let r = r.unwrap();
                let line = r.position().unwrap().line();
                (r.iter().map(<[u8]>::to_vec).collect(), line)
            })
            .collect()
    }

    #[test]
    fn a_cut_row_is_closed_and_its_line_feeds_are_accounted_for() {
        let input = b"a,b\n\"x\ny\nz\",c\nd,e\n";
        let mut r = reader(BoundedRows::new(&input[..], 4));
        let mut record = csv::ByteRecord::new();
        let mut seen = Vec::new();
        let mut shift = 0;
        let mut index = 0;
        while r.read_byte_record(&mut record).unwrap() {
            let line = record.position().unwrap().line() + shift;
            let cut = r.get_mut().take_cut(index);
            if let Some(c) = cut {
                shift += c.newlines;
            }
            seen.push((line, cut.map(|c| c.field), record.get(0).unwrap().to_vec()));
            index += 1;
        }
        assert_eq!(
            seen,
            [
                (1, None, b"a".to_vec()),
                (2, Some(0), b"x\ny".to_vec()),
                (5, None, b"d".to_vec()),
            ]
        );
    }

    proptest::proptest! {
        /// The rows the adapter counts are the csv reader's records, in any chunking:
        /// unbounded it changes nothing; bounded, each row is still one record, the rows
        /// it does not cut are read unchanged at their own lines, and a cut row holds at
        /// most the limit.
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
            let raw = records(Trickle(&bytes, step));
            let mut wide = BoundedRows::new(Trickle(&bytes, step), usize::MAX);
            let mut out = Vec::new();
            wide.read_to_end(&mut out).unwrap();
            proptest::prop_assert_eq!(&out, &bytes);
            proptest::prop_assert_eq!(wide.rows, raw.len() as u64);
            proptest::prop_assert!(wide.cuts.is_empty());

            let mut r = reader(BoundedRows::new(Trickle(&bytes, step), limit));
            let mut record = csv::ByteRecord::new();
            let (mut index, mut shift) = (0, 0);
            while r.read_byte_record(&mut record).unwrap() {
                let line = record.position().unwrap().line() + shift;
                let i = usize::try_from(index).unwrap();
                proptest::prop_assert!(i < raw.len(), "more records than the input has");
                match r.get_mut().take_cut(index) {
                    None => {
                        let fields: Vec<Vec<u8>> = record.iter().map(<[u8]>::to_vec).collect();
                        proptest::prop_assert_eq!(&fields, &raw[i].0);
                        proptest::prop_assert_eq!(line, raw[i].1);
                    }
                    Some(cut) => {
                        proptest::prop_assert!(record.as_slice().len() <= limit);
                        proptest::prop_assert_eq!(line, raw[i].1);
                        shift += cut.newlines;
                    }
                }
                index += 1;
            }
            proptest::prop_assert_eq!(index, raw.len() as u64);
        }
    }
}
