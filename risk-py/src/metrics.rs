//! Trade metrics from Python: a columnar batch function, a streaming accumulator and the
//! per-account result class.
//!
//! Both forms hand the work to [`risk_core::metrics`]; this module only converts.
//!
//! * The batch function takes each numeric column as one `bytes` buffer of native-endian
//!   64-bit values (the Python layer in `riskgate/_metrics.py` gets them from NumPy with
//!   one copy per column, or from `array.array` without NumPy), so no Python object is
//!   made per trade. Money is taken exactly from each float's shortest round-trip text,
//!   and a row's net P&L is the exact sum of its money ([`decimal_sum_from_f64`]). Accounts are grouped by their raw values (64-bit integers,
//!   NumPy fixed-width strings, or Python strings) and named once per account. All of it
//!   runs with the GIL released.
//! * Results are [`PyAccountMetrics`] objects holding the core's [`TradeMetrics`]; a field
//!   becomes a Python value (`int`, `Decimal`, `datetime.date`, `None`) when it is read.

use std::collections::hash_map::Entry;
use std::hash::{Hash, Hasher};

use chrono::NaiveDate;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use risk_core::hash::FxHashMap;
use risk_core::metrics::{
    epoch_nanos, MetricsAccumulator, MetricsConfig, TradeFacts, TradeMetrics,
};
use risk_core::num::{add_exact, decimal_from_f64, decimal_sum_from_f64, SumError};
use risk_core::Decimal;

use crate::convert::{py_decimal, to_datetime, to_decimal};
use crate::error::{arithmetic, invalid};

/// The metric settings, validated.
fn config(
    initial_balance: Option<&Bound<'_, PyAny>>,
    hft_seconds: u32,
    day_offset_minutes: i32,
) -> PyResult<MetricsConfig> {
    let mut config = MetricsConfig::default();
    if let Some(balance) = initial_balance {
        config.initial_balance = to_decimal(balance, "initial_balance")?;
    }
    config.hft_threshold_seconds = hft_seconds;
    config.day_offset_minutes = day_offset_minutes;
    config.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(config)
}

/// The account column as the Python layer hands it over.
enum Accounts<'a> {
    /// One Python string per row.
    Text(Vec<String>),
    /// A native-endian `i64` per row (NumPy integer arrays), named by its decimal text.
    Int(Words<'a>),
    /// NumPy fixed-width unicode (`<U`): `width` bytes of UCS-4 per row, NUL-padded.
    Ucs4 { data: &'a [u8], width: usize },
    /// NumPy fixed-width bytes (`S`): `width` bytes per row, NUL-padded, UTF-8.
    Utf8 { data: &'a [u8], width: usize },
}

impl<'a> Accounts<'a> {
    /// A packed NumPy column: `kind` is `"int64"`, `"ucs4"` or `"utf8"`, `width` the bytes
    /// per value.
    fn packed(kind: &str, data: &'a [u8], width: usize) -> PyResult<Self> {
        let fits = |w: usize| {
            if w == 0 || !data.len().is_multiple_of(w) {
                Err(invalid(format!(
                    "accounts: a {}-byte buffer does not hold {w}-byte values",
                    data.len()
                )))
            } else {
                Ok(())
            }
        };
        match kind {
            "int64" if width == 8 => {
                fits(8)?;
                Ok(Self::Int(Words(data)))
            }
            "ucs4" if width.is_multiple_of(4) => fits(width).map(|()| Self::Ucs4 { data, width }),
            "utf8" => fits(width).map(|()| Self::Utf8 { data, width }),
            other => Err(invalid(format!(
                "accounts: unknown packed column {other:?} of width {width}"
            ))),
        }
    }

    /// The number of rows.
    fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Int(ints) => ints.0.len() / 8,
            Self::Ucs4 { data, width } | Self::Utf8 { data, width } => data.len() / width,
        }
    }

    /// The raw value of fixed-width row `row`.
    fn cell(data: &[u8], width: usize, row: usize) -> &[u8] {
        data.get(row * width..(row + 1) * width).unwrap_or_default()
    }

    /// The account's name as text (once per account, not per row).
    fn name(&self, row: usize) -> PyResult<String> {
        let bad = |what: &str| invalid(format!("accounts[{row}]: not valid {what}"));
        match self {
            Self::Text(text) => Ok(text.get(row).cloned().unwrap_or_default()),
            Self::Int(ints) => Ok(ints.i64(row).to_string()),
            Self::Ucs4 { data, width } => {
                let units: Vec<u32> = Self::cell(data, *width, row)
                    .chunks_exact(4)
                    .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                let len = units.iter().rposition(|&u| u != 0).map_or(0, |i| i + 1);
                units[..len]
                    .iter()
                    .map(|&u| char::from_u32(u).ok_or_else(|| bad("unicode")))
                    .collect()
            }
            Self::Utf8 { data, width } => {
                let cell = Self::cell(data, *width, row);
                let len = cell.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                std::str::from_utf8(&cell[..len])
                    .map(str::to_owned)
                    .map_err(|_| bad("UTF-8"))
            }
        }
    }

    /// Rows grouped by account.
    fn groups(&self) -> Groups {
        let n = self.len();
        match self {
            Self::Text(text) => Groups::by(n, |i| text[i].as_str()),
            Self::Int(ints) => Groups::by(n, |i| ints.i64(i)),
            Self::Ucs4 { data, width } | Self::Utf8 { data, width } => {
                Groups::by(n, |i| Padded(Self::cell(data, *width, i)))
            }
        }
    }
}

/// A NUL-padded fixed-width value. Equality is on every byte; the hash stops at the
/// first all-zero 8-byte word, so the padding of a wide column (`<U21` holding 8
/// characters is 84 bytes, 52 of them zeros) is not hashed. Values that differ only after
/// an inner zero word hash alike and are still told apart by equality.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Padded<'a>(&'a [u8]);

impl Hash for Padded<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for chunk in self.0.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            let word = u64::from_ne_bytes(word);
            if word == 0 {
                break;
            }
            state.write_u64(word);
        }
    }
}

/// Which account each row belongs to.
struct Groups {
    /// The group of each row.
    of_row: Vec<u32>,
    /// The first row of each group (which names it).
    first_row: Vec<usize>,
}

impl Groups {
    /// Groups `n` rows by `key(row)`. Exports are often sorted by account, so a row with
    /// the previous row's key skips the hash table.
    fn by<K: Hash + Eq + Copy>(n: usize, key: impl Fn(usize) -> K) -> Self {
        let mut index: FxHashMap<K, u32> = FxHashMap::default();
        let mut groups = Self {
            of_row: Vec::with_capacity(n),
            first_row: Vec::new(),
        };
        let mut last: Option<(K, u32)> = None;
        for row in 0..n {
            let k = key(row);
            let group = match last {
                Some((previous, group)) if previous == k => group,
                _ => match index.entry(k) {
                    Entry::Occupied(e) => *e.get(),
                    Entry::Vacant(e) => {
                        // n < 2^32 is checked by the caller.
                        let group = u32::try_from(groups.first_row.len()).unwrap_or(u32::MAX);
                        groups.first_row.push(row);
                        *e.insert(group)
                    }
                },
            };
            last = Some((k, group));
            groups.of_row.push(group);
        }
        groups
    }
}

/// A column of `n` 64-bit values, or an error naming it when its length is wrong.
fn column<'a>(name: &str, bytes: &'a [u8], n: usize) -> PyResult<&'a [u8]> {
    if !bytes.len().is_multiple_of(8) {
        return Err(invalid(format!(
            "column {name}: {} bytes is not a whole number of 8-byte values",
            bytes.len()
        )));
    }
    if bytes.len() / 8 != n {
        return Err(invalid(format!(
            "column {name} has {} values, accounts has {n}",
            bytes.len() / 8
        )));
    }
    Ok(bytes)
}

/// Why a row was refused. Small and `Copy`, so the hot loop carries it cheaply; the
/// message (naming the column and row) is built once, for the first bad row.
#[derive(Debug, Clone, Copy)]
enum Bad {
    /// A time column's missing value (NaT).
    MissingTime(&'static str),
    /// Closed before it was opened.
    Order,
    /// A money column's value: a missing (NaN) profit, or a float with no decimal form.
    Money(&'static str, f64),
    /// The net P&L does not fit a decimal exactly.
    Overflow,
}

impl Bad {
    /// The `InvalidInput` for row `row`.
    #[cold]
    fn error(self, row: usize) -> PyErr {
        match self {
            Self::MissingTime(field) => invalid(format!("{field}[{row}]: missing time (NaT)")),
            Self::Order => invalid(format!("row {row}: closed before it was opened")),
            Self::Money(field, value) => match decimal_from_f64(value) {
                _ if value.is_nan() => invalid(format!("{field}[{row}]: missing (NaN)")),
                Err(e) => invalid(format!("{field}[{row}]: {e}")),
                Ok(_) => invalid(format!("{field}[{row}]: {value} was refused")),
            },
            Self::Overflow => invalid(format!(
                "row {row}: net P&L (profit + commission + swap) has no exact decimal"
            )),
        }
    }
}

/// A column of 64-bit values, read in place from its buffer (whose length [`column`]
/// checked); a missing optional column is empty and reads as 0.0 (no fee, no stop-loss,
/// no take-profit).
#[derive(Clone, Copy)]
struct Words<'a>(&'a [u8]);

impl Words<'_> {
    /// The 8 bytes of row `row`, or zeros past the end.
    #[inline]
    fn word(self, row: usize) -> [u8; 8] {
        self.0
            .get(row * 8..row * 8 + 8)
            .and_then(|w| w.try_into().ok())
            .unwrap_or([0; 8])
    }

    #[inline]
    fn i64(self, row: usize) -> i64 {
        i64::from_ne_bytes(self.word(row))
    }

    #[inline]
    fn f64(self, row: usize) -> f64 {
        f64::from_ne_bytes(self.word(row))
    }
}

/// The columns of the batch function, `n` values each.
struct Columns<'a> {
    opened_at: Words<'a>,
    closed_at: Words<'a>,
    profit: Words<'a>,
    commission: Words<'a>,
    swap: Words<'a>,
    stop_loss: Words<'a>,
    take_profit: Words<'a>,
}

impl Columns<'_> {
    /// The metrics of every account, in account-group order.
    ///
    /// Rows are converted in row order (so an error names the first bad row) and pushed
    /// straight into buckets of up to 64 consecutive accounts (at most 256 buckets, each
    /// allocated to its exact size). Each bucket (a few hundred KiB) is then sorted by
    /// account in a buffer that stays in cache and computed account by account. Writing
    /// each row straight to its account's place among thousands of accounts, or sorting
    /// all rows by account in passes over memory, measured about as costly as converting
    /// the rows themselves. Written here rather than taken from a crate: two counting
    /// sorts over one record type.
    ///
    /// With `threads > 1`, the buckets are split into that many runs of about equal rows;
    /// each thread converts the rows of its buckets (reading every row's account, which
    /// is cheap), then computes its accounts. The results and the error reported are the
    /// same as with one thread.
    fn metrics(
        &self,
        accounts: &Accounts<'_>,
        groups: &Groups,
        config: &MetricsConfig,
        threads: usize,
    ) -> PyResult<Vec<PyAccountMetrics>> {
        let count = groups.first_row.len();
        let bits = usize::BITS - count.saturating_sub(1).leading_zeros();
        let shift = bits.saturating_sub(8);
        let mut sizes = vec![0usize; (count.saturating_sub(1) >> shift) + 1];
        for &group in &groups.of_row {
            sizes[(group >> shift) as usize] += 1;
        }
        let runs = runs(&sizes, threads);
        let mut buckets: Vec<Vec<Row>> = sizes.iter().map(|&n| Vec::with_capacity(n)).collect();
        let mut parts = Vec::with_capacity(runs.len());
        let mut rest = buckets.as_mut_slice();
        for run in &runs {
            let (part, others) = rest.split_at_mut(run.len());
            parts.push((run.start, part));
            rest = others;
        }
        let converted: Vec<Result<(), (usize, Bad)>> = in_parallel(parts, |(first, part)| {
            self.convert(groups, shift, first, part)
        });
        if let Some((row, bad)) = converted
            .into_iter()
            .filter_map(Result::err)
            .min_by_key(|e| e.0)
        {
            return Err(bad.error(row));
        }
        let buckets = &buckets;
        let computed = in_parallel(runs, |run| {
            compute(shift, run, buckets, accounts, groups, config)
        });
        let mut out = Vec::with_capacity(count);
        for part in computed {
            out.extend(part?);
        }
        Ok(out)
    }

    /// Converts the rows of the buckets `first..first + part.len()` into them, in row
    /// order; the first bad row is the error.
    fn convert(
        &self,
        groups: &Groups,
        shift: u32,
        first: usize,
        part: &mut [Vec<Row>],
    ) -> Result<(), (usize, Bad)> {
        for (row, &group) in groups.of_row.iter().enumerate() {
            let b = (group >> shift) as usize;
            if let Some(bucket) = b.checked_sub(first).and_then(|b| part.get_mut(b)) {
                bucket.push(self.row(row, group).map_err(|bad| (row, bad))?);
            }
        }
        Ok(())
    }

    /// The record of one row.
    #[inline]
    fn row(&self, row: usize, group: u32) -> Result<Row, Bad> {
        // pandas' missing time (NaT) is the smallest i64.
        let time = |field, column: Words<'_>| match column.i64(row) {
            i64::MIN => Err(Bad::MissingTime(field)),
            ns => Ok(ns),
        };
        let opened_at_ns = time("opened_at", self.opened_at)?;
        let closed_at_ns = time("closed_at", self.closed_at)?;
        if closed_at_ns < opened_at_ns {
            return Err(Bad::Order);
        }
        // A missing (NaN) fee is no fee; a missing profit is refused (NaN has no decimal).
        let fee = |column: Words<'_>| {
            let fee = column.f64(row);
            if fee.is_nan() {
                0.0
            } else {
                fee
            }
        };
        let money = [self.profit.f64(row), fee(self.commission), fee(self.swap)];
        let net_pnl = decimal_sum_from_f64(&money).map_err(|e| match e {
            // index < 3: the term of `money` that has no decimal.
            SumError::Term { index, .. } => Bad::Money(MONEY[index % 3], money[index % 3]),
            SumError::Overflow => Bad::Overflow,
        })?;
        // Missing (NaN) and 0 both mean "not set".
        let set = |column: Words<'_>| {
            let price = column.f64(row);
            !price.is_nan() && price != 0.0
        };
        Ok(Row {
            opened_at_ns,
            closed_at_ns,
            net_pnl,
            group,
            stop_loss_set: set(self.stop_loss),
            take_profit_set: set(self.take_profit),
        })
    }
}

/// One converted row in its bucket: the [`TradeFacts`] and the row's account group,
/// 40 bytes (a `(u32, TradeFacts)` pair would be 48).
#[derive(Clone, Copy)]
struct Row {
    opened_at_ns: i64,
    closed_at_ns: i64,
    net_pnl: Decimal,
    group: u32,
    stop_loss_set: bool,
    take_profit_set: bool,
}

impl Row {
    fn facts(self) -> TradeFacts {
        TradeFacts {
            opened_at_ns: self.opened_at_ns,
            closed_at_ns: self.closed_at_ns,
            net_pnl: self.net_pnl,
            stop_loss_set: self.stop_loss_set,
            take_profit_set: self.take_profit_set,
        }
    }
}

/// The money columns summed into the net P&L, in order.
const MONEY: [&str; 3] = ["profit", "commission", "swap"];

/// The fewest rows for which `threads=None` uses more than one thread.
const PARALLEL_ROWS: usize = 100_000;

/// An empty slot of the sort buffer (every slot is overwritten).
const PLACEHOLDER: TradeFacts = TradeFacts {
    opened_at_ns: 0,
    closed_at_ns: 0,
    net_pnl: Decimal::ZERO,
    stop_loss_set: false,
    take_profit_set: false,
};

/// Sorts each bucket of `run` by account in a cached buffer and computes its accounts,
/// in group order (bucket `b` holds the groups `b << shift ..`).
fn compute(
    shift: u32,
    run: std::ops::Range<usize>,
    buckets: &[Vec<Row>],
    accounts: &Accounts<'_>,
    groups: &Groups,
    config: &MetricsConfig,
) -> PyResult<Vec<PyAccountMetrics>> {
    let mut out = Vec::new();
    let mut sorted: Vec<TradeFacts> = Vec::new();
    for b in run {
        let rows = buckets.get(b).map_or(&[][..], Vec::as_slice);
        let first = b << shift;
        let span = (1usize << shift).min(groups.first_row.len().saturating_sub(first));
        // Where each account of the bucket starts in `sorted`.
        let mut start = vec![0usize; span + 1];
        for row in rows {
            start[row.group as usize - first + 1] += 1;
        }
        for k in 0..span {
            start[k + 1] += start[k];
        }
        let mut at = start.clone();
        sorted.clear();
        sorted.resize(rows.len(), PLACEHOLDER);
        for row in rows {
            let slot = &mut at[row.group as usize - first];
            sorted[*slot] = row.facts();
            *slot += 1;
        }
        for k in 0..span {
            let account = accounts.name(groups.first_row[first + k])?;
            let metrics = TradeMetrics::compute_facts(&sorted[start[k]..start[k + 1]], config)
                .map_err(|e| invalid(format!("account {account}: {e}")))?;
            out.push(PyAccountMetrics { account, metrics });
        }
    }
    Ok(out)
}

/// Splits the buckets (of `sizes[b]` rows each) into at most `threads` runs of
/// consecutive buckets with about equal rows; every bucket is in one run.
fn runs(sizes: &[usize], threads: usize) -> Vec<std::ops::Range<usize>> {
    let buckets = sizes.len();
    let rows: usize = sizes.iter().sum();
    let threads = threads.clamp(1, buckets.max(1));
    let mut runs = Vec::with_capacity(threads);
    let (mut start, mut end, mut through) = (0, 0, 0);
    for t in 1..=threads {
        let target = rows * t / threads;
        // At least one bucket a run, then as many as keep the rows so far within target.
        while end < buckets && (end == start || through + sizes[end] <= target) {
            through += sizes[end];
            end += 1;
        }
        if t == threads {
            end = buckets;
        }
        if end > start {
            runs.push(start..end);
        }
        start = end;
    }
    runs
}

/// `work` over each item, on its own scoped thread when there is more than one item.
fn in_parallel<I: Send, T: Send>(items: Vec<I>, work: impl Fn(I) -> T + Sync) -> Vec<T> {
    if items.len() <= 1 {
        return items.into_iter().map(work).collect();
    }
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || work(item)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Per-account metrics over columns of closed trades, as a list of [`PyAccountMetrics`]
/// sorted by account. See `riskgate.trade_metrics` for the friendly form.
///
/// `accounts` is a list of `str`, or `(kind, buffer, width)` for a NumPy column (kind
/// `"int64"`, `"ucs4"` or `"utf8"`). The other columns are `bytes` of native-endian values:
/// `i64` epoch nanoseconds for the times, `f64` for the money and the stop-loss and
/// take-profit prices. `profit` must be present; NaN `commission`/`swap` is 0; a NaN or 0
/// stop-loss or take-profit is "not set"; a missing optional column is all zeros.
/// `threads` splits the accounts over that many threads (`None`: one below
/// 100,000 rows, else the available cores, at most 8).
#[pyfunction]
#[pyo3(signature = (accounts, opened_at_ns, closed_at_ns, profit, commission=None, swap=None, stop_loss=None, take_profit=None, *, initial_balance=None, hft_seconds=60, day_offset_minutes=0, threads=None))]
#[allow(clippy::too_many_arguments)]
pub fn trade_metrics_buffers<'py>(
    py: Python<'py>,
    accounts: &Bound<'py, PyAny>,
    opened_at_ns: &Bound<'py, PyBytes>,
    closed_at_ns: &Bound<'py, PyBytes>,
    profit: &Bound<'py, PyBytes>,
    commission: Option<&Bound<'py, PyBytes>>,
    swap: Option<&Bound<'py, PyBytes>>,
    stop_loss: Option<&Bound<'py, PyBytes>>,
    take_profit: Option<&Bound<'py, PyBytes>>,
    initial_balance: Option<&Bound<'py, PyAny>>,
    hft_seconds: u32,
    day_offset_minutes: i32,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyList>> {
    let config = config(initial_balance, hft_seconds, day_offset_minutes)?;
    let packed: Option<(String, Bound<'py, PyBytes>, usize)> =
        if accounts.is_instance_of::<PyTuple>() {
            Some(accounts.extract().map_err(|_| {
                invalid("accounts: a packed column is (kind: str, data: bytes, width: int)")
            })?)
        } else {
            None
        };
    let accounts = match &packed {
        Some((kind, data, width)) => Accounts::packed(kind, data.as_bytes(), *width)?,
        None => Accounts::Text(
            accounts
                .extract()
                .map_err(|_| invalid("accounts: expected a list of str or a packed column"))?,
        ),
    };
    let n = accounts.len();
    if u32::try_from(n).is_err() {
        return Err(invalid(format!("{n} trades: at most 2^32 - 1 per call")));
    }
    let threads = match threads {
        Some(0) => return Err(invalid("threads: must be at least 1")),
        Some(t) => t,
        // Below this many rows a thread costs more than it saves.
        None if n < PARALLEL_ROWS => 1,
        None => std::thread::available_parallelism().map_or(1, |p| p.get().min(8)),
    };
    fn required<'b>(name: &str, c: &'b Bound<'_, PyBytes>, n: usize) -> PyResult<Words<'b>> {
        column(name, c.as_bytes(), n).map(Words)
    }
    fn optional<'b>(
        name: &str,
        c: Option<&'b Bound<'_, PyBytes>>,
        n: usize,
    ) -> PyResult<Words<'b>> {
        c.map_or(Ok(Words(&[])), |c| required(name, c, n))
    }
    let columns = Columns {
        opened_at: required("opened_at", opened_at_ns, n)?,
        closed_at: required("closed_at", closed_at_ns, n)?,
        profit: required("profit", profit, n)?,
        commission: optional("commission", commission, n)?,
        swap: optional("swap", swap, n)?,
        stop_loss: optional("stop_loss", stop_loss, n)?,
        take_profit: optional("take_profit", take_profit, n)?,
    };
    let results = py.detach(|| -> PyResult<Vec<PyAccountMetrics>> {
        let groups = accounts.groups();
        let mut out = columns.metrics(&accounts, &groups, &config, threads)?;
        out.sort_unstable_by(|a, b| a.account.cmp(&b.account));
        Ok(out)
    })?;
    PyList::new(py, results)
}

/// A metric field's Python value.
trait Field {
    /// `int`, `Decimal`, `datetime.date` or `None`.
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;
}

impl Field for u64 {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.into_pyobject(py)?.into_any())
    }
}

impl Field for Decimal {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_decimal(py, *self)
    }
}

impl<T: Field> Field for Option<T> {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Some(v) => v.to_py(py),
            None => Ok(py.None().into_bound(py)),
        }
    }
}

impl Field for NaiveDate {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.into_pyobject(py)?.into_any())
    }
}

/// The trade metrics of one account; `account` is empty from an accumulator.
#[pyclass(name = "AccountMetrics", module = "riskgate", frozen, eq)]
#[derive(Debug, Clone, PartialEq)]
pub struct PyAccountMetrics {
    account: String,
    metrics: TradeMetrics,
}

/// Declares the metric fields once: a getter each, [`FIELDS`] in order, and the value of a
/// field by name (for `to_dict` and `__repr__`).
macro_rules! metric_fields {
    ($( $(#[doc = $doc:literal])+ $name:ident ),+ $(,)?) => {
        /// The field names of `AccountMetrics`, in order.
        pub const FIELDS: &[&str] = &["account", $(stringify!($name)),+];

        impl PyAccountMetrics {
            /// Every field as `(name, Python value)`, in [`FIELDS`] order.
            fn items<'py>(&self, py: Python<'py>) -> PyResult<Vec<(&'static str, Bound<'py, PyAny>)>> {
                Ok(vec![
                    ("account", self.account.clone().into_pyobject(py)?.into_any()),
                    $((stringify!($name), self.metrics.$name.to_py(py)?)),+
                ])
            }
        }

        #[pymethods]
        impl PyAccountMetrics {
    /// The account (empty from an accumulator).
            #[getter]
            fn account(&self) -> &str {
                &self.account
            }

            /// The field names, in order (the columns of `MetricsResult.to_pandas()`).
            #[classattr]
            #[allow(non_snake_case)]
            fn FIELDS<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
                PyTuple::new(py, FIELDS)
            }

            /// Every field as a dict, in [`FIELDS`] order.
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                for (name, value) in self.items(py)? {
                    d.set_item(name, value)?;
                }
                Ok(d)
            }

            /// The fields of `results` column by column, `{name: [value of each result]}`
            /// in [`FIELDS`] order: what `MetricsResult.to_pandas()` builds its frame
            /// from, without a dict per account.
            #[staticmethod]
            fn columns<'py>(
                py: Python<'py>,
                results: Vec<PyRef<'py, Self>>,
            ) -> PyResult<Bound<'py, PyDict>> {
                let mut columns: Vec<Vec<Bound<'py, PyAny>>> =
                    FIELDS.iter().map(|_| Vec::with_capacity(results.len())).collect();
                for result in &results {
                    for (column, (_, value)) in columns.iter_mut().zip(result.items(py)?) {
                        column.push(value);
                    }
                }
                let d = PyDict::new(py);
                for (name, column) in FIELDS.iter().zip(columns) {
                    d.set_item(name, PyList::new(py, column)?)?;
                }
                Ok(d)
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let fields = self
                    .items(py)?
                    .into_iter()
                    .map(|(name, value)| Ok(format!("{name}={}", value.repr()?)))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(format!("AccountMetrics({})", fields.join(", ")))
            }

            $(
                $(#[doc = $doc])+
                #[getter]
                fn $name<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                    self.metrics.$name.to_py(py)
                }
            )+
        }
    };
}

metric_fields! {
    /// Closed trades.
    trades,
    /// Trades with net P&L > 0.
    wins,
    /// Trades with net P&L < 0.
    losses,
    /// Trades with net P&L = 0.
    break_even,
    /// `wins / trades`.
    win_ratio,
    /// Sum of winning net P&L.
    gross_profit,
    /// Sum of losing net P&L (a positive number).
    gross_loss,
    /// Sum of net P&L.
    net_profit,
    /// `gross_profit / gross_loss`; None without losses.
    profit_factor,
    /// Mean winning net P&L; None without wins.
    average_win,
    /// Mean losing net P&L (a positive number); None without losses.
    average_loss,
    /// Mean net P&L per trade.
    expectancy,
    /// The largest winning net P&L.
    largest_win,
    /// The largest loss (a positive number).
    largest_loss,
    /// The longest run of losing trades, in closing order.
    max_consecutive_losses,
    /// Mean holding time in seconds.
    average_holding_seconds,
    /// Trades held less than the HFT threshold.
    hft_trades,
    /// `hft_trades / trades`.
    hft_ratio,
    /// Trades with a stop-loss set.
    stop_loss_trades,
    /// `stop_loss_trades / trades`.
    stop_loss_ratio,
    /// Trades with a take-profit set.
    take_profit_trades,
    /// `take_profit_trades / trades`.
    take_profit_ratio,
    /// The most trades open at one instant.
    max_concurrent_trades,
    /// The deepest fall of the balance from its peak, relative to the peak (at most 1).
    max_relative_drawdown,
    /// The deepest fall of the balance from its peak, in money.
    max_drawdown,
    /// Initial balance plus net profit.
    final_balance,
    /// The worst day's loss from the day's opening balance (a positive number, 0 if none).
    max_daily_loss,
    /// `max_daily_loss` relative to that day's opening balance.
    max_daily_loss_ratio,
    /// The day of `max_daily_loss`; None without a losing day.
    max_daily_loss_day,
}

/// Streams closed trades of one account and gives the same metrics as the batch form for
/// the same trades, whatever order they arrive in.
#[pyclass(name = "_MetricsAccumulator", module = "riskgate._riskgate")]
pub struct PyMetricsAccumulator {
    inner: MetricsAccumulator,
}

#[pymethods]
impl PyMetricsAccumulator {
    #[new]
    #[pyo3(signature = (*, initial_balance=None, hft_seconds=60, day_offset_minutes=0))]
    fn new(
        initial_balance: Option<&Bound<'_, PyAny>>,
        hft_seconds: u32,
        day_offset_minutes: i32,
    ) -> PyResult<Self> {
        let config = config(initial_balance, hft_seconds, day_offset_minutes)?;
        let inner = MetricsAccumulator::new(config).map_err(|e| invalid(e.to_string()))?;
        Ok(Self { inner })
    }

    /// Adds one closed trade.
    #[pyo3(signature = (opened_at, closed_at, profit, commission=None, swap=None, stop_loss=None, take_profit=None))]
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        opened_at: &Bound<'_, PyAny>,
        closed_at: &Bound<'_, PyAny>,
        profit: &Bound<'_, PyAny>,
        commission: Option<&Bound<'_, PyAny>>,
        swap: Option<&Bound<'_, PyAny>>,
        stop_loss: Option<&Bound<'_, PyAny>>,
        take_profit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let opened_at = to_datetime(opened_at, "opened_at")?;
        let closed_at = to_datetime(closed_at, "closed_at")?;
        if closed_at < opened_at {
            return Err(invalid("closed_at is before opened_at"));
        }
        let opt = |v: Option<&Bound<'_, PyAny>>, f: &str| v.map(|v| to_decimal(v, f)).transpose();
        let mut net = to_decimal(profit, "profit")?;
        for (v, f) in [(commission, "commission"), (swap, "swap")] {
            if let Some(d) = opt(v, f)? {
                // Exact or refused, as in the batch form.
                net = add_exact(net, d).ok_or_else(|| {
                    invalid("net P&L (profit + commission + swap) has no exact decimal")
                })?;
            }
        }
        let set = |d: Option<Decimal>| d.is_some_and(|d| !d.is_zero());
        let nanos = |at, field| epoch_nanos(at).map_err(|e| invalid(format!("{field}: {e}")));
        let facts = TradeFacts {
            opened_at_ns: nanos(opened_at, "opened_at")?,
            closed_at_ns: nanos(closed_at, "closed_at")?,
            net_pnl: net,
            stop_loss_set: set(opt(stop_loss, "stop_loss")?),
            take_profit_set: set(opt(take_profit, "take_profit")?),
        };
        self.inner.push_facts(&facts).map_err(|e| arithmetic(&e))
    }

    /// The metrics of every trade pushed so far (`account` is empty).
    fn metrics(&mut self) -> PyResult<PyAccountMetrics> {
        let metrics = self.inner.metrics().map_err(|e| invalid(e.to_string()))?;
        Ok(PyAccountMetrics {
            account: String::new(),
            metrics,
        })
    }

    fn __len__(&self) -> usize {
        usize::try_from(self.inner.len()).unwrap_or(usize::MAX)
    }
}
