//! The trade columns of one chunk of rows, read in place: either the NumPy path's packed
//! 64-bit buffers or Arrow arrays (already narrowed to a few physical types by
//! [`arrow_in`](super::arrow_in)), and the conversion of one row into [`TradeFacts`].
//!
//! A chunk is a run of consecutive rows: the NumPy path is one chunk, an Arrow stream one
//! chunk per record batch. Rows are converted in place; nothing is copied per column
//! except where `arrow_in` had to cast a type first.

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
pub(super) struct Block {
    /// The block's rows, counted from the chunk's start.
    rows: Vec<u32>,
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
            rows: Vec::with_capacity(BLOCK),
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

impl Block {
    /// Clears the block for the next rows.
    pub(super) fn clear(&mut self) {
        self.rows.clear();
    }

    /// Adds row `row` (counted from the chunk's start) unless the block is full; whether
    /// it was added.
    #[inline]
    pub(super) fn push(&mut self, row: usize) -> bool {
        match u32::try_from(row) {
            Ok(row) if self.rows.len() < BLOCK => {
                self.rows.push(row);
                true
            }
            _ => false,
        }
    }

    /// The number of rows.
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Converts the block's rows of `chunk`, column by column.
    pub(super) fn convert(&mut self, chunk: &Chunk<'_>) {
        let n = self.rows.len();
        let rows = &self.rows[..];
        let slow = &mut self.slow[..n];
        slow.fill(false);
        chunk.opened_at.fill(rows, &mut self.opened[..n], slow);
        chunk.closed_at.fill(rows, &mut self.closed[..n], slow);
        for ((s, o), c) in slow.iter_mut().zip(&self.opened[..n]).zip(&self.closed[..n]) {
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

    /// Row `k` of the block: its row in the chunk, and its facts, or `None` when the
    /// reference path must convert it.
    #[inline]
    pub(super) fn facts(&self, k: usize) -> (usize, Option<TradeFacts>) {
        let row = self.rows.get(k).map_or(usize::MAX, |&r| r as usize);
        if self.slow.get(k).copied().unwrap_or(true) {
            return (row, None);
        }
        let facts = TradeFacts {
            opened_at_ns: self.opened.get(k).copied().unwrap_or_default(),
            closed_at_ns: self.closed.get(k).copied().unwrap_or_default(),
            pnl: fixed4_decimal(
                self.sum.get(k).copied().unwrap_or_default(),
                u32::from(self.places.get(k).copied().unwrap_or_default()),
            ),
            stop_loss_set: self.stop_loss.get(k).copied().unwrap_or_default(),
            take_profit_set: self.take_profit.get(k).copied().unwrap_or_default(),
        };
        (row, Some(facts))
    }
}

/// Adds each value of `value(row)` for `rows` into the fixed-point sums (a missing value
/// is 0, or marks the row when `required`); marks rows whose value does not convert.
#[inline(always)]
fn add_terms(
    rows: &[u32],
    required: bool,
    value: impl Fn(usize) -> (f64, bool),
    sum: &mut [i64],
    places: &mut [u8],
    slow: &mut [bool],
) {
    for (((&row, s), p), slow) in rows.iter().zip(sum).zip(places).zip(slow) {
        let (v, missing) = value(row as usize);
        let (digits, proven) = fixed4_from_f64(if missing { 0.0 } else { v });
        *s = s.wrapping_add(digits);
        // fixed4_places is at most 4.
        *p = (*p).max(fixed4_places(digits) as u8);
        *slow |= !proven | (missing & required);
    }
}

impl Times<'_> {
    /// Epoch nanoseconds of `rows` into `out`; marks rows that are missing or out of range.
    fn fill(self, rows: &[u32], out: &mut [i64], slow: &mut [bool]) {
        match self {
            Self::Words(words) => {
                for ((&row, o), s) in rows.iter().zip(out).zip(slow) {
                    *o = words.i64(row as usize);
                    *s |= *o == i64::MIN;
                }
            }
            Self::Arrow { values, per, nulls } => {
                for ((&row, o), s) in rows.iter().zip(out).zip(slow.iter_mut()) {
                    let (ns, overflow) = values
                        .get(row as usize)
                        .copied()
                        .unwrap_or_default()
                        .overflowing_mul(per);
                    *o = ns;
                    *s |= overflow;
                }
                if let Some(nulls) = nulls {
                    for (&row, s) in rows.iter().zip(slow) {
                        *s |= nulls.is_null(row as usize);
                    }
                }
            }
        }
    }
}

impl Money<'_> {
    /// Adds the column's values for `rows` into the fixed-point sums (see [`Block`]).
    fn add(self, rows: &[u32], required: bool, sum: &mut [i64], places: &mut [u8], slow: &mut [bool]) {
        match self {
            Self::Absent => {
                if required {
                    slow.fill(true);
                }
            }
            Self::Words(words) => add_terms(
                rows,
                required,
                |row| {
                    let v = words.f64(row);
                    (v, v.is_nan())
                },
                sum,
                places,
                slow,
            ),
            Self::Float { values, nulls: None } => add_terms(
                rows,
                required,
                |row| {
                    let v = values.get(row).copied().unwrap_or(f64::NAN);
                    (v, v.is_nan())
                },
                sum,
                places,
                slow,
            ),
            Self::Float {
                values,
                nulls: Some(nulls),
            } => add_terms(
                rows,
                required,
                |row| {
                    let v = values.get(row).copied().unwrap_or(f64::NAN);
                    (v, v.is_nan() | nulls.is_null(row))
                },
                sum,
                places,
                slow,
            ),
            // Exact columns: the reference path's `Decimal` arithmetic.
            Self::Int { .. } | Self::Decimal { .. } => slow.fill(true),
        }
    }

    /// Whether a stop-loss or take-profit is set on each of `rows` (see [`Money::is_set`]).
    fn fill_set(self, rows: &[u32], out: &mut [bool]) {
        let set = |v: f64| !v.is_nan() && v != 0.0;
        match self {
            Self::Absent => out.fill(false),
            Self::Words(words) => {
                for (&row, o) in rows.iter().zip(out) {
                    *o = set(words.f64(row as usize));
                }
            }
            Self::Float { values, nulls } => {
                for (&row, o) in rows.iter().zip(out.iter_mut()) {
                    *o = values.get(row as usize).is_some_and(|&v| set(v));
                }
                if let Some(nulls) = nulls {
                    for (&row, o) in rows.iter().zip(out) {
                        *o &= nulls.is_valid(row as usize);
                    }
                }
            }
            Self::Int { .. } | Self::Decimal { .. } => {
                for (&row, o) in rows.iter().zip(out) {
                    *o = self.is_set(row as usize);
                }
            }
        }
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
