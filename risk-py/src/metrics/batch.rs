//! The batch function `trade_metrics_buffers`: columns of native-endian 64-bit values
//! converted to trade facts a block of rows at a time, bucketed by account and computed per
//! account.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use rayon::prelude::*;
use risk_core::metrics::{MetricsConfig, PnlBasis, TradeFacts, TradeMetrics};
use risk_core::Decimal;

use super::accounts::{Accounts, Groups};
use super::columns::{Bad, Block, Chunk, Money, Times, Words, BLOCK};
use super::config;
use super::result::PyAccountMetrics;
use crate::error::invalid;

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

/// The NumPy path's packed columns as one chunk of `n` rows: the times, the profit and the
/// optional commission, swap, stop-loss and take-profit. A column of another length is an
/// error naming it.
pub(super) fn packed_chunk<'b>(
    n: usize,
    [opened_at, closed_at]: [&'b Bound<'_, PyBytes>; 2],
    profit: &'b Bound<'_, PyBytes>,
    optional: [Option<&'b Bound<'_, PyBytes>>; 4],
) -> PyResult<Chunk<'b>> {
    fn money<'b>(name: &str, c: Option<&'b Bound<'_, PyBytes>>, n: usize) -> PyResult<Money<'b>> {
        Ok(match c {
            Some(c) => Money::Words(Words(column(name, c.as_bytes(), n)?)),
            None => Money::Absent,
        })
    }
    let [commission, swap, stop_loss, take_profit] = optional;
    Ok(Chunk {
        offset: 0,
        len: n,
        opened_at: Times::Words(Words(column("opened_at", opened_at.as_bytes(), n)?)),
        closed_at: Times::Words(Words(column("closed_at", closed_at.as_bytes(), n)?)),
        profit: Money::Words(Words(column("profit", profit.as_bytes(), n)?)),
        commission: money("commission", commission, n)?,
        swap: money("swap", swap, n)?,
        stop_loss: money("stop_loss", stop_loss, n)?,
        take_profit: money("take_profit", take_profit, n)?,
    })
}

/// `chunks` as `config`'s P&L basis reads them: on the gross basis a trade's P&L is its
/// profit, so the commission and swap columns are read as absent.
pub(super) fn on_basis<'a>(chunks: &[Chunk<'a>], config: &MetricsConfig) -> Vec<Chunk<'a>> {
    let gross = config.pnl_basis == PnlBasis::Gross;
    chunks
        .iter()
        .map(|c| {
            if gross {
                Chunk {
                    commission: Money::Absent,
                    swap: Money::Absent,
                    ..*c
                }
            } else {
                *c
            }
        })
        .collect()
}

/// The trade columns, chunk by chunk.
struct Columns<'a, 'c>(&'c [Chunk<'a>]);

impl Columns<'_, '_> {
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
    /// With `threads > 1`, the buckets are split into that many runs of about equal rows,
    /// run on rayon's pool; each converts the rows of its buckets (reading every row's
    /// account, which is cheap), then computes its accounts. The results and the error reported are the
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
        let mut block = Block::default();
        // One part with every bucket (one thread): every row, in runs.
        let every =
            first == 0 && part.len() == (groups.first_row.len().saturating_sub(1) >> shift) + 1;
        for chunk in self.0 {
            let of_row = groups
                .of_row
                .get(chunk.offset..chunk.offset + chunk.len)
                .unwrap_or_default();
            for (start, block_groups) in (0..).step_by(BLOCK).zip(of_row.chunks(BLOCK)) {
                if every {
                    block.run(start, block_groups.len());
                } else {
                    // The block's rows of this part's buckets.
                    block.clear();
                    for (i, &group) in block_groups.iter().enumerate() {
                        let b = (group >> shift) as usize;
                        if b.wrapping_sub(first) < part.len() {
                            block.push(start + i);
                        }
                    }
                }
                block.convert(chunk);
                block.each(chunk, |row, facts| {
                    let group = of_row.get(row).copied().unwrap_or_default();
                    let bucket = ((group >> shift) as usize).wrapping_sub(first);
                    if let Some(bucket) = part.get_mut(bucket) {
                        bucket.push(Row::new(facts, group));
                    }
                })?;
            }
        }
        Ok(())
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
    fn new(facts: TradeFacts, group: u32) -> Self {
        Self {
            opened_at_ns: facts.opened_at_ns,
            closed_at_ns: facts.closed_at_ns,
            net_pnl: facts.pnl,
            group,
            stop_loss_set: facts.stop_loss_set,
            take_profit_set: facts.take_profit_set,
        }
    }

    fn facts(self) -> TradeFacts {
        TradeFacts {
            opened_at_ns: self.opened_at_ns,
            closed_at_ns: self.closed_at_ns,
            pnl: self.net_pnl,
            stop_loss_set: self.stop_loss_set,
            take_profit_set: self.take_profit_set,
        }
    }
}

/// The fewest rows for which `threads=None` uses more than one thread.
const PARALLEL_ROWS: usize = 100_000;

/// An empty slot of the sort buffer (every slot is overwritten).
const PLACEHOLDER: TradeFacts = TradeFacts {
    opened_at_ns: 0,
    closed_at_ns: 0,
    pnl: Decimal::ZERO,
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

/// `work` over each item on rayon's pool, results in item order.
fn in_parallel<I: Send, T: Send>(items: Vec<I>, work: impl Fn(I) -> T + Sync + Send) -> Vec<T> {
    if items.len() <= 1 {
        return items.into_iter().map(work).collect();
    }
    items.into_par_iter().map(work).collect()
}

/// Per-account metrics over columns of closed trades, as a list of [`PyAccountMetrics`]
/// sorted by account. See `riskgate.trade_metrics` for the friendly form.
///
/// `accounts` is a list of `str`, or `(kind, buffer, width)` for a NumPy column (kind
/// `"int64"`, `"ucs4"` or `"utf8"`). The other columns are `bytes` of native-endian values:
/// `i64` epoch nanoseconds for the times, `f64` for the money and the stop-loss and
/// take-profit prices. `profit` must be present; NaN `commission`/`swap` is 0; a NaN or 0
/// stop-loss or take-profit is "not set"; a missing optional column is all zeros.
/// `threads` splits the accounts into that many parts, run on rayon's pool (`None`: one
/// part below 100,000 rows, else one per core, at most 8).
#[pyfunction]
#[pyo3(signature = (accounts, opened_at_ns, closed_at_ns, profit, commission=None, swap=None, stop_loss=None, take_profit=None, *, initial_balance=None, hft_seconds=60, day_offset_minutes=0, pnl_basis="net", window_size=None, threads=None))]
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
    pnl_basis: &str,
    window_size: Option<u32>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyList>> {
    let config = config(
        initial_balance,
        hft_seconds,
        day_offset_minutes,
        pnl_basis,
        window_size,
    )?;
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
    let chunk = packed_chunk(
        accounts.len(),
        [opened_at_ns, closed_at_ns],
        profit,
        [commission, swap, stop_loss, take_profit],
    )?;
    let results = metrics_by_account(py, &accounts, &[chunk], &config, threads)?;
    PyList::new(py, results)
}

/// The metrics of each account of `accounts` over the trade columns `chunks` (which hold
/// as many rows), sorted by account, computed with the GIL released. `threads` as in
/// [`trade_metrics_buffers`].
pub(super) fn metrics_by_account(
    py: Python<'_>,
    accounts: &Accounts<'_>,
    chunks: &[Chunk<'_>],
    config: &MetricsConfig,
    threads: Option<usize>,
) -> PyResult<Vec<PyAccountMetrics>> {
    let n = accounts.len();
    if u32::try_from(n).is_err() {
        return Err(invalid(format!("{n} trades: at most 2^32 - 1 per call")));
    }
    let threads = match threads {
        Some(0) => return Err(invalid("threads: must be at least 1")),
        Some(t) => t,
        // Below this many rows a thread costs more than it saves.
        None if n < PARALLEL_ROWS => 1,
        None => rayon::current_num_threads().min(8),
    };
    // On the gross basis a trade's P&L is its profit: the fee columns are read as absent.
    let chunks = on_basis(chunks, config);
    let chunks = &chunks[..];
    py.detach(|| -> PyResult<Vec<PyAccountMetrics>> {
        let groups = accounts.groups();
        let mut out = Columns(chunks).metrics(accounts, &groups, config, threads)?;
        out.sort_unstable_by(|a, b| a.account.cmp(&b.account));
        Ok(out)
    })
}
