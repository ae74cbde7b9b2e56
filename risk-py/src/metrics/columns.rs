//! The trade columns of one chunk of rows, read in place: either the NumPy path's packed
//! 64-bit buffers or Arrow arrays (already narrowed to a few physical types by
//! [`arrow_in`](super::arrow_in)), and their conversion into [`TradeFacts`]: a block of
//! rows at a time, column by column ([`Block`], the batch call's), or one row at a time
//! ([`Chunk::facts`], the reference, which the block falls back to for the rows it cannot
//! take and which the accumulator uses).
//!
//! A chunk is a run of consecutive rows: the NumPy path is one chunk, an Arrow stream one
//! chunk per record batch. Rows are converted in place; nothing is copied per column
//! except where `arrow_in` had to cast a type first.

use arrow_buffer::bit_iterator::BitIterator;
use arrow_buffer::NullBuffer;
use risk_core::metrics::TradeFacts;
use risk_core::num::{
    add_exact, decimal_from_f64, decimal_sum_from_f64, fixed4_decimal, fixed4_from_f64,
    fixed4_places, SumError,
};
use risk_core::Decimal;

use crate::error::invalid;
use pyo3::PyErr;

/// A column of native-endian 64-bit values in a byte buffer (the NumPy path); rows past
/// the end read as zeros, which is how a missing optional column reads.
#[derive(Clone, Copy)]
pub(super) struct Words<'a>(pub(super) &'a [u8]);

impl Words<'_> {
    /// The 8 bytes of row `row`, or zeros past the end.
    #[inline]
    fn word(self, row: usize) -> [u8; 8] {
        self.0
            .get(row * 8..row * 8 + 8)
            .and_then(|w| w.try_into().ok())
            .unwrap_or([0; 8])
    }

    /// Row `row` as an `i64`.
    #[inline]
    pub(super) fn i64(self, row: usize) -> i64 {
        i64::from_ne_bytes(self.word(row))
    }

    /// Row `row` as an `f64`.
    #[inline]
    fn f64(self, row: usize) -> f64 {
        f64::from_ne_bytes(self.word(row))
    }
}

/// Whether row `row` is null in `nulls`.
#[inline]
fn null(nulls: Option<&NullBuffer>, row: usize) -> bool {
    nulls.is_some_and(|n| n.is_null(row))
}

/// A time column.
#[derive(Clone, Copy)]
pub(super) enum Times<'a> {
    /// Epoch nanoseconds (NumPy `datetime64[ns]`); NaT (the smallest `i64`) is missing.
    Words(Words<'a>),
    /// Arrow timestamps: each value times `per` is epoch nanoseconds; null is missing.
    Arrow {
        /// The values, in the column's unit.
        values: &'a [i64],
        /// Nanoseconds per unit (1, 1,000, 1,000,000 or 1,000,000,000).
        per: i64,
        /// Which rows are null.
        nulls: Option<&'a NullBuffer>,
    },
}

impl Times<'_> {
    /// Epoch nanoseconds of row `row`.
    #[inline]
    fn at(self, row: usize, field: &'static str) -> Result<i64, Bad> {
        match self {
            Self::Words(words) => match words.i64(row) {
                i64::MIN => Err(Bad::MissingTime(field, "NaT")),
                ns => Ok(ns),
            },
            Self::Arrow { values, per, nulls } => {
                if null(nulls, row) {
                    return Err(Bad::MissingTime(field, "null"));
                }
                let value = values.get(row).copied().unwrap_or_default();
                value.checked_mul(per).ok_or(Bad::TimeRange(field))
            }
        }
    }
}

/// A money or price column.
#[derive(Clone, Copy)]
pub(super) enum Money<'a> {
    /// Not given: no fee, no stop-loss, no take-profit.
    Absent,
    /// `f64` values in a byte buffer (the NumPy path); NaN is missing.
    Words(Words<'a>),
    /// Arrow `float64`; null and NaN are missing. Taken by the shortest repr.
    Float {
        /// The values.
        values: &'a [f64],
        /// Which rows are null.
        nulls: Option<&'a NullBuffer>,
    },
    /// Arrow integers (as `int64`); null is missing.
    Int {
        /// The values.
        values: &'a [i64],
        /// Which rows are null.
        nulls: Option<&'a NullBuffer>,
    },
    /// Arrow `decimal128(p, scale)`, exactly; null is missing.
    Decimal {
        /// The unscaled values.
        values: &'a [i128],
        /// The scale (digits after the point; negative: zeros before it).
        scale: i8,
        /// Which rows are null.
        nulls: Option<&'a NullBuffer>,
    },
}

/// One value of a money column.
#[derive(Clone, Copy)]
enum Term {
    /// Missing: `"NaN"`, `"null"` or `"absent"` (the column is not given).
    Missing(&'static str),
    /// A float, taken by its shortest repr.
    Float(f64),
    /// An exact decimal.
    Exact(Decimal),
}

/// `value * 10^-scale` as a decimal, exactly, or `None` when it does not fit one.
fn decimal128(value: i128, scale: i8) -> Option<Decimal> {
    if scale >= 0 {
        Decimal::try_from_i128_with_scale(value, u32::from(scale.unsigned_abs())).ok()
    } else {
        let lifted = 10_i128
            .checked_pow(u32::from(scale.unsigned_abs()))
            .and_then(|p| value.checked_mul(p))?;
        Decimal::try_from_i128_with_scale(lifted, 0).ok()
    }
}

impl Money<'_> {
    /// Row `row`'s value.
    #[inline]
    fn term(self, row: usize, field: &'static str) -> Result<Term, Bad> {
        Ok(match self {
            Self::Absent => Term::Missing("absent"),
            Self::Words(words) => match words.f64(row) {
                v if v.is_nan() => Term::Missing("NaN"),
                v => Term::Float(v),
            },
            Self::Float { values, nulls } => match values.get(row).copied() {
                _ if null(nulls, row) => Term::Missing("null"),
                Some(v) if !v.is_nan() => Term::Float(v),
                _ => Term::Missing("NaN"),
            },
            Self::Int { values, nulls } => match values.get(row).copied() {
                _ if null(nulls, row) => Term::Missing("null"),
                Some(v) => Term::Exact(Decimal::from(v)),
                None => Term::Missing("absent"),
            },
            Self::Decimal {
                values,
                scale,
                nulls,
            } => match values.get(row).copied() {
                _ if null(nulls, row) => Term::Missing("null"),
                Some(v) => Term::Exact(decimal128(v, scale).ok_or(Bad::DecimalRange(field))?),
                None => Term::Missing("absent"),
            },
        })
    }

    /// Whether a stop-loss or take-profit is set on row `row`: present, not NaN, not 0.
    #[inline]
    fn is_set(self, row: usize) -> bool {
        match self {
            Self::Absent => false,
            Self::Words(words) => {
                let v = words.f64(row);
                !v.is_nan() && v != 0.0
            }
            Self::Float { values, nulls } => {
                !null(nulls, row) && values.get(row).is_some_and(|&v| !v.is_nan() && v != 0.0)
            }
            Self::Int { values, nulls } => {
                !null(nulls, row) && values.get(row).is_some_and(|&v| v != 0)
            }
            Self::Decimal { values, nulls, .. } => {
                !null(nulls, row) && values.get(row).is_some_and(|&v| v != 0)
            }
        }
    }
}

/// Why a row was refused. Small and `Copy`, so the hot loop carries it cheaply; the
/// message (naming the column and row) is built once, for the first bad row.
#[derive(Debug, Clone, Copy)]
pub(super) enum Bad {
    /// A time column's missing value, and how it was missing (`"NaT"` or `"null"`).
    MissingTime(&'static str, &'static str),
    /// A time that epoch nanoseconds cannot hold.
    TimeRange(&'static str),
    /// Closed before it was opened.
    Order,
    /// A missing profit, and how it was missing (`"NaN"`, `"null"`).
    MissingProfit(&'static str),
    /// A money column's float that has no decimal form.
    Money(&'static str, f64),
    /// A money column's decimal that a 96-bit decimal with at most 28 places cannot hold.
    DecimalRange(&'static str),
    /// The net P&L does not fit a decimal exactly.
    Overflow,
}

impl Bad {
    /// The `InvalidInput` for row `row`.
    #[cold]
    pub(super) fn error(self, row: usize) -> PyErr {
        match self {
            Self::MissingTime(field, how) => {
                invalid(format!("{field}[{row}]: missing time ({how})"))
            }
            Self::TimeRange(field) => invalid(format!(
                "{field}[{row}]: out of range (nanosecond timestamps span 1677-09-21 to 2262-04-11)"
            )),
            Self::Order => invalid(format!("row {row}: closed before it was opened")),
            Self::MissingProfit(how) => invalid(format!("profit[{row}]: missing ({how})")),
            Self::Money(field, value) => match decimal_from_f64(value) {
                Err(e) => invalid(format!("{field}[{row}]: {e}")),
                Ok(_) => invalid(format!("{field}[{row}]: {value} was refused")),
            },
            Self::DecimalRange(field) => invalid(format!(
                "{field}[{row}]: the decimal does not fit 96 bits with at most 28 decimal places"
            )),
            Self::Overflow => invalid(format!(
                "row {row}: net P&L (profit + commission + swap) has no exact decimal"
            )),
        }
    }
}

/// The money columns summed into the net P&L, in order.
const MONEY: [&str; 3] = ["profit", "commission", "swap"];

/// The trade columns of one chunk: rows `offset..offset + len` of the whole input.
#[derive(Clone, Copy)]
pub(super) struct Chunk<'a> {
    /// The first row's index in the whole input.
    pub(super) offset: usize,
    /// The number of rows.
    pub(super) len: usize,
    /// When each trade was opened.
    pub(super) opened_at: Times<'a>,
    /// When each trade was closed.
    pub(super) closed_at: Times<'a>,
    /// The profit (required; missing is an error).
    pub(super) profit: Money<'a>,
    /// The commission (missing is 0).
    pub(super) commission: Money<'a>,
    /// The swap (missing is 0).
    pub(super) swap: Money<'a>,
    /// The stop-loss price (missing or 0 is "not set").
    pub(super) stop_loss: Money<'a>,
    /// The take-profit price (missing or 0 is "not set").
    pub(super) take_profit: Money<'a>,
}

impl Chunk<'_> {
    /// The facts of the chunk's row `row` (counted from the chunk's start).
    #[inline]
    pub(super) fn facts(&self, row: usize) -> Result<TradeFacts, Bad> {
        let opened_at_ns = self.opened_at.at(row, "opened_at")?;
        let closed_at_ns = self.closed_at.at(row, "closed_at")?;
        if closed_at_ns < opened_at_ns {
            return Err(Bad::Order);
        }
        let terms = [
            self.profit.term(row, MONEY[0])?,
            self.commission.term(row, MONEY[1])?,
            self.swap.term(row, MONEY[2])?,
        ];
        let pnl = match terms {
            [Term::Missing(how), _, _] => return Err(Bad::MissingProfit(how)),
            // The common case, floats throughout: summed exactly without a Decimal per term.
            [Term::Float(p), c, s]
                if !matches!(c, Term::Exact(_)) && !matches!(s, Term::Exact(_)) =>
            {
                let fee = |t: Term| match t {
                    Term::Float(v) => v,
                    _ => 0.0,
                };
                let money = [p, fee(c), fee(s)];
                decimal_sum_from_f64(&money).map_err(|e| match e {
                    // index < 3: the term of `money` that has no decimal.
                    SumError::Term { index, .. } => Bad::Money(MONEY[index % 3], money[index % 3]),
                    SumError::Overflow => Bad::Overflow,
                })?
            }
            _ => {
                let mut net = Decimal::ZERO;
                for (term, field) in terms.into_iter().zip(MONEY) {
                    let d = match term {
                        Term::Missing(_) => continue,
                        Term::Exact(d) => d,
                        Term::Float(v) => decimal_from_f64(v).map_err(|_| Bad::Money(field, v))?,
                    };
                    net = add_exact(net, d).ok_or(Bad::Overflow)?;
                }
                net
            }
        };
        Ok(TradeFacts {
            opened_at_ns,
            closed_at_ns,
            pnl,
            stop_loss_set: self.stop_loss.is_set(row),
            take_profit_set: self.take_profit.is_set(row),
        })
    }
}

/// The most rows [`Block`] converts at a time: its columns (about 16 KiB) stay in the
/// first-level cache between the passes.
pub(super) const BLOCK: usize = 512;

/// A block of up to [`BLOCK`] rows of one chunk, converted column by column: each pass
/// runs one column's loop, chosen once per block by the column's kind, over every row of
/// the block, so no row branches on the kinds of eight columns. Money is summed as `i64`
/// digits at four places ([`fixed4_from_f64`]); a row that any pass cannot take (a
/// missing or out-of-range value, a float with more than four places, a column of exact
/// integers or decimals) is marked and converted by [`Chunk::facts`], the reference,
/// which also words the error. Unmarked rows give what [`Chunk::facts`] would, exactly.
///
/// The rows are either a run of consecutive rows (one thread: every row is converted) or
/// a list (several threads: each converts the rows of its own accounts).
pub(super) struct Block {
    /// The first row of a run, counted from the chunk's start.
    start: usize,
    /// The number of rows.
    len: usize,
    /// The rows, counted from the chunk's start, when they are a list (else empty).
    list: Vec<u32>,
    /// Opened times, epoch nanoseconds.
    opened: Vec<i64>,
    /// Closed times, epoch nanoseconds.
    closed: Vec<i64>,
    /// The net P&L's digits at four places.
    sum: Vec<i64>,
    /// The decimal places of the net P&L's terms' shortest decimals, the largest.
    places: Vec<u8>,
    /// Stop-loss set.
    stop_loss: Vec<bool>,
    /// Take-profit set.
    take_profit: Vec<bool>,
    /// Rows for the reference path.
    slow: Vec<bool>,
}

impl Default for Block {
    fn default() -> Self {
        Self {
            start: 0,
            len: 0,
            list: Vec::with_capacity(BLOCK),
            opened: vec![0; BLOCK],
            closed: vec![0; BLOCK],
            sum: vec![0; BLOCK],
            places: vec![0; BLOCK],
            stop_loss: vec![false; BLOCK],
            take_profit: vec![false; BLOCK],
            slow: vec![false; BLOCK],
        }
    }
}

/// Which rows of a chunk a block reads: a run ([`Run`]) or a list (`&[u32]`), each read
/// in order.
trait Rows: Copy {
    /// The number of rows.
    fn count(self) -> usize;
    /// The rows' values of `values` (the default past its end).
    fn of<T: Copy + Default>(self, values: &[T]) -> impl Iterator<Item = T>;
    /// The rows' 64-bit values of `words` (zeros past its end).
    fn words(self, words: Words<'_>) -> impl Iterator<Item = [u8; 8]>;
    /// Whether each row is null.
    fn nulls(self, nulls: &NullBuffer) -> impl Iterator<Item = bool>;
}

/// `len` consecutive rows from `start`.
#[derive(Clone, Copy)]
struct Run {
    /// The first row.
    start: usize,
    /// The number of rows.
    len: usize,
}

impl Rows for Run {
    fn count(self) -> usize {
        self.len
    }

    #[inline(always)]
    fn of<T: Copy + Default>(self, values: &[T]) -> impl Iterator<Item = T> {
        // In range: `Block::convert` checked the columns' lengths.
        let run = values
            .get(self.start..self.start + self.len)
            .unwrap_or_default();
        run.iter().copied()
    }

    #[inline(always)]
    fn words(self, words: Words<'_>) -> impl Iterator<Item = [u8; 8]> {
        let run = words
            .0
            .get(self.start * 8..(self.start + self.len) * 8)
            .unwrap_or_default();
        run.chunks_exact(8).map(|w| w.try_into().unwrap_or([0; 8]))
    }

    #[inline(always)]
    fn nulls(self, nulls: &NullBuffer) -> impl Iterator<Item = bool> {
        let valid = nulls.inner();
        // In range, or no rows (`BitIterator::new` asserts the range).
        let len = if self.start + self.len <= valid.len() {
            self.len
        } else {
            0
        };
        BitIterator::new(valid.values(), valid.offset() + self.start, len).map(|v| !v)
    }
}

impl Rows for &[u32] {
    fn count(self) -> usize {
        self.len()
    }

    #[inline(always)]
    fn of<T: Copy + Default>(self, values: &[T]) -> impl Iterator<Item = T> {
        self.iter()
            .map(move |&r| values.get(r as usize).copied().unwrap_or_default())
    }

    #[inline(always)]
    fn words(self, words: Words<'_>) -> impl Iterator<Item = [u8; 8]> {
        self.iter().map(move |&r| words.word(r as usize))
    }

    #[inline(always)]
    fn nulls(self, nulls: &NullBuffer) -> impl Iterator<Item = bool> {
        let len = nulls.len();
        self.iter()
            .map(move |&r| (r as usize) < len && nulls.is_null(r as usize))
    }
}

impl Block {
    /// Sets the block to the run of `len` rows from `start` (at most [`BLOCK`]).
    pub(super) fn run(&mut self, start: usize, len: usize) {
        self.list.clear();
        self.start = start;
        self.len = len.min(BLOCK);
    }

    /// Empties the block, for a list of rows.
    pub(super) fn clear(&mut self) {
        self.list.clear();
        self.len = 0;
    }

    /// Adds row `row` (counted from the chunk's start) to the block's list; rows past
    /// [`BLOCK`] are not taken (the caller gives at most that many).
    #[inline]
    pub(super) fn push(&mut self, row: usize) {
        if let Ok(row) = u32::try_from(row) {
            if self.list.len() < BLOCK {
                self.list.push(row);
                self.len = self.list.len();
            }
        }
    }

    /// Converts the block's rows of `chunk`, column by column.
    pub(super) fn convert(&mut self, chunk: &Chunk<'_>) {
        let list = std::mem::take(&mut self.list);
        if list.is_empty() {
            let run = Run {
                start: self.start,
                len: self.len,
            };
            if run.start + run.len <= chunk.len && chunk.columns_hold(chunk.len) {
                self.passes(chunk, run);
            } else {
                self.slow.fill(true);
            }
        } else {
            self.passes(chunk, &list[..]);
        }
        self.list = list;
    }

    /// The passes of [`Block::convert`] over `rows`.
    #[inline(always)]
    fn passes(&mut self, chunk: &Chunk<'_>, rows: impl Rows) {
        let n = rows.count().min(BLOCK);
        let slow = &mut self.slow[..n];
        slow.fill(false);
        chunk.opened_at.fill(rows, &mut self.opened[..n], slow);
        chunk.closed_at.fill(rows, &mut self.closed[..n], slow);
        for ((s, o), c) in slow
            .iter_mut()
            .zip(&self.opened[..n])
            .zip(&self.closed[..n])
        {
            *s |= c < o;
        }
        let (sum, places) = (&mut self.sum[..n], &mut self.places[..n]);
        sum.fill(0);
        places.fill(0);
        chunk.profit.add(rows, true, sum, places, slow);
        chunk.commission.add(rows, false, sum, places, slow);
        chunk.swap.add(rows, false, sum, places, slow);
        chunk.stop_loss.fill_set(rows, &mut self.stop_loss[..n]);
        chunk.take_profit.fill_set(rows, &mut self.take_profit[..n]);
    }

    /// Each row of the block in order, with its facts or the reference path's error:
    /// `sink(row, facts)`, the row counted from the chunk's start.
    #[inline]
    pub(super) fn each(
        &self,
        chunk: &Chunk<'_>,
        mut sink: impl FnMut(usize, TradeFacts),
    ) -> Result<(), (usize, Bad)> {
        let n = self.len.min(BLOCK);
        let rows = (0..n).map(|k| {
            if self.list.is_empty() {
                self.start + k
            } else {
                self.list.get(k).map_or(usize::MAX, |&r| r as usize)
            }
        });
        let fast = self.opened[..n]
            .iter()
            .zip(&self.closed[..n])
            .zip(self.sum[..n].iter().zip(&self.places[..n]))
            .zip(self.stop_loss[..n].iter().zip(&self.take_profit[..n]))
            .zip(&self.slow[..n]);
        for (row, ((((&opened, &closed), (&sum, &places)), (&sl, &tp)), &slow)) in rows.zip(fast) {
            let facts = if slow {
                chunk.facts(row).map_err(|bad| (chunk.offset + row, bad))?
            } else {
                TradeFacts {
                    opened_at_ns: opened,
                    closed_at_ns: closed,
                    pnl: fixed4_decimal(sum, u32::from(places)),
                    stop_loss_set: sl,
                    take_profit_set: tp,
                }
            };
            sink(row, facts);
        }
        Ok(())
    }
}

/// Adds each of `values` (with whether it is missing) into the fixed-point sums (a
/// missing value is 0, or marks the row when `required`); marks rows whose value does
/// not convert.
#[inline(always)]
fn add_terms(
    values: impl Iterator<Item = (f64, bool)>,
    required: bool,
    sum: &mut [i64],
    places: &mut [u8],
    slow: &mut [bool],
) {
    for (((v, missing), s), (p, slow)) in values.zip(sum).zip(places.iter_mut().zip(slow)) {
        let (digits, proven) = fixed4_from_f64(if missing { 0.0 } else { v });
        *s = s.wrapping_add(digits);
        // fixed4_places is at most 4.
        *p = (*p).max(fixed4_places(digits) as u8);
        *slow |= !proven | (missing & required);
    }
}

impl Times<'_> {
    /// The number of values (rows past it read as missing).
    fn len(self) -> usize {
        match self {
            Self::Words(words) => words.0.len() / 8,
            Self::Arrow { values, .. } => values.len(),
        }
    }

    /// Epoch nanoseconds of `rows` into `out`; marks rows that are missing or out of range.
    #[inline(always)]
    fn fill(self, rows: impl Rows, out: &mut [i64], slow: &mut [bool]) {
        match self {
            Self::Words(words) => {
                for ((w, o), s) in rows.words(words).zip(out).zip(slow) {
                    *o = i64::from_ne_bytes(w);
                    *s |= *o == i64::MIN;
                }
            }
            Self::Arrow { values, per, nulls } => {
                for ((v, o), s) in rows.of(values).zip(out).zip(slow.iter_mut()) {
                    let (ns, overflow) = v.overflowing_mul(per);
                    *o = ns;
                    *s |= overflow;
                }
                if let Some(nulls) = nulls {
                    for (null, s) in rows.nulls(nulls).zip(slow) {
                        *s |= null;
                    }
                }
            }
        }
    }
}

impl Money<'_> {
    /// The number of values (rows past it read as missing), or `None` when absent.
    fn len(self) -> Option<usize> {
        match self {
            Self::Absent => None,
            Self::Words(words) => Some(words.0.len() / 8),
            Self::Float { values, .. } => Some(values.len()),
            Self::Int { values, .. } => Some(values.len()),
            Self::Decimal { values, .. } => Some(values.len()),
        }
    }

    /// Adds the column's values for `rows` into the fixed-point sums (see [`Block`]).
    #[inline(always)]
    fn add(
        self,
        rows: impl Rows,
        required: bool,
        sum: &mut [i64],
        places: &mut [u8],
        slow: &mut [bool],
    ) {
        match self {
            Self::Absent => {
                if required {
                    slow.fill(true);
                }
            }
            Self::Words(words) => {
                let values = rows.words(words).map(|w| {
                    let v = f64::from_ne_bytes(w);
                    (v, v.is_nan())
                });
                add_terms(values, required, sum, places, slow);
            }
            Self::Float { values, nulls } => {
                let values = rows.of(values).map(|v| (v, v.is_nan()));
                match nulls {
                    None => add_terms(values, required, sum, places, slow),
                    Some(nulls) => {
                        let values = values
                            .zip(rows.nulls(nulls))
                            .map(|((v, nan), null)| (v, nan | null));
                        add_terms(values, required, sum, places, slow);
                    }
                }
            }
            // Exact columns: the reference path's `Decimal` arithmetic.
            Self::Int { .. } | Self::Decimal { .. } => slow.fill(true),
        }
    }

    /// Whether a stop-loss or take-profit is set on each of `rows` (see [`Money::is_set`]).
    #[inline(always)]
    fn fill_set(self, rows: impl Rows, out: &mut [bool]) {
        let set = |v: f64| !v.is_nan() && v != 0.0;
        match self {
            Self::Absent => out.fill(false),
            Self::Words(words) => {
                for (w, o) in rows.words(words).zip(out) {
                    *o = set(f64::from_ne_bytes(w));
                }
            }
            Self::Float { values, nulls } => {
                for (v, o) in rows.of(values).zip(out.iter_mut()) {
                    *o = set(v);
                }
                if let Some(nulls) = nulls {
                    for (null, o) in rows.nulls(nulls).zip(out) {
                        *o &= !null;
                    }
                }
            }
            Self::Int { values, nulls } => {
                for (v, o) in rows.of(values).zip(out.iter_mut()) {
                    *o = v != 0;
                }
                if let Some(nulls) = nulls {
                    for (null, o) in rows.nulls(nulls).zip(out) {
                        *o &= !null;
                    }
                }
            }
            Self::Decimal { values, nulls, .. } => {
                for (v, o) in rows.of(values).zip(out.iter_mut()) {
                    *o = v != 0;
                }
                if let Some(nulls) = nulls {
                    for (null, o) in rows.nulls(nulls).zip(out) {
                        *o &= !null;
                    }
                }
            }
        }
    }
}

impl Chunk<'_> {
    /// Whether every given column holds at least `len` values (always so for the chunks
    /// that `arrow_in` and `packed_chunk` build; checked so that a short column can never
    /// be read as another row's values).
    fn columns_hold(&self, len: usize) -> bool {
        let times = self.opened_at.len().min(self.closed_at.len());
        let money = [
            self.profit,
            self.commission,
            self.swap,
            self.stop_loss,
            self.take_profit,
        ]
        .iter()
        .filter_map(|m| m.len())
        .min()
        .unwrap_or(usize::MAX);
        times.min(money) >= len
    }
}

/// Every row of `chunks` as facts, in order, or the first bad row (numbered in the whole
/// input) with the reason.
pub(super) fn all_facts(chunks: &[Chunk<'_>]) -> Result<Vec<TradeFacts>, PyErr> {
    let mut out = Vec::with_capacity(chunks.iter().map(|c| c.len).sum());
    for chunk in chunks {
        for row in 0..chunk.len {
            out.push(
                chunk
                    .facts(row)
                    .map_err(|bad| bad.error(chunk.offset + row))?,
            );
        }
    }
    Ok(out)
}
