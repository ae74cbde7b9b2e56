//! The cross-account detectors: sweeps over (symbol, time) across every account at once.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use crate::hash::FxHashMap;
use crate::ids::AccountId;
use crate::model::Side;
use crate::num::{div, mul};

use super::config::DetectorConfig;
use super::{RuleKind, RuleSignal, RuleTrade, RulebookError};

/// One account as the detectors see it.
#[derive(Debug, Clone, Copy)]
pub struct DetectAccount<'a> {
    /// The login, named in other accounts' detections.
    pub account: &'a AccountId,
    /// The owner: accounts of one user are linked (hedging) and never copy each other.
    pub user: &'a str,
    /// A group that links users (the accounts file's `group_id`), if any.
    pub group: Option<&'a str>,
    /// The account's trades, in any order.
    pub trades: &'a [RuleTrade],
}

/// At most this many other trades of a copy window are looked at to name the accounts
/// involved (counting copies does not depend on it).
const RELATED_SCAN: usize = 16;

/// Runs the detectors over every account; the result has one list of signals per input
/// account, in input order.
///
/// - `CROSS_ACCOUNT_HEDGING`: accounts are linked when they belong to the same user or to
///   users sharing a group (transitively). A trade is hedged when a trade of another,
///   linked account in the same symbol and the opposite direction is open at the same
///   time (intervals `[open, close)` overlap). An account with at least
///   `hedging_min_trades` hedged trades is flagged; value: its hedged trades; time: the
///   moment its N-th hedged trade was first held against an opposite one; related: the
///   linked accounts it hedged with. One sweep per symbol over opens and closes.
/// - `COPY_TRADING`: a trade is a copy when an account of another user opened the same
///   symbol in the same direction at most `copy_window_seconds` before or after it. An
///   account with at least `copy_min_trades` copies making at least `copy_min_share` of
///   its trades is flagged; value: the share; time: the open at which both held first, in
///   open-time order; related: the accounts whose opens matched (the first
///   16 of each window). One two-pointer sweep per (symbol, direction) over the opens.
/// - `MARTINGALE`: in close-time order, a step is a trade opened after a losing trade
///   closed, with a larger lot size than it. A run of at least `martingale_min_run`
///   consecutive steps flags the account; value: the longest run; time: the open of the
///   trade that first completed K steps.
///
/// # Errors
/// [`RulebookError::Config`] for an invalid `config`, [`RulebookError::Arithmetic`] on an
/// overflowing share.
pub fn detect(
    accounts: &[DetectAccount<'_>],
    config: &DetectorConfig,
) -> Result<Vec<Vec<RuleSignal>>, RulebookError> {
    config.validate()?;
    let mut out: Vec<Vec<RuleSignal>> = vec![Vec::new(); accounts.len()];
    if !config.enabled {
        return Ok(out);
    }
    let mut starts = Vec::with_capacity(accounts.len().saturating_add(1));
    let mut total = 0_usize;
    starts.push(0);
    for a in accounts {
        total = total.saturating_add(a.trades.len());
        starts.push(total);
    }
    let all: Vec<(u32, &RuleTrade)> = accounts
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            a.trades.iter().map(move |t| (i, t))
        })
        .collect();
    hedging(accounts, &all, config, &mut out);
    copy_trading(accounts, &all, &starts, config, &mut out)?;
    for (a, signals) in accounts.iter().zip(&mut out) {
        signals.extend(martingale(a.trades, config.martingale_min_run));
    }
    for signals in &mut out {
        signals.sort_by(|a, b| a.at.cmp(&b.at).then(a.kind.cmp(&b.kind)));
    }
    Ok(out)
}

/// Union-find root with path halving.
fn root(parent: &mut [usize], mut i: usize) -> usize {
    while let Some(&p) = parent.get(i) {
        if p == i {
            break;
        }
        let grand = parent.get(p).copied().unwrap_or(p);
        if let Some(slot) = parent.get_mut(i) {
            *slot = grand;
        }
        i = grand;
    }
    i
}

/// The link cluster of every account: same user or shared group, transitively.
fn clusters(accounts: &[DetectAccount<'_>]) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..accounts.len()).collect();
    let mut first_of: FxHashMap<(bool, &str), usize> = FxHashMap::default();
    for (i, a) in accounts.iter().enumerate() {
        let keys = [Some((false, a.user)), a.group.map(|g| (true, g))];
        for key in keys.into_iter().flatten() {
            let j = *first_of.entry(key).or_insert(i);
            let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
            if let Some(slot) = parent.get_mut(ri) {
                *slot = rj;
            }
        }
    }
    (0..accounts.len()).map(|i| root(&mut parent, i)).collect()
}

fn hedging(
    accounts: &[DetectAccount<'_>],
    all: &[(u32, &RuleTrade)],
    config: &DetectorConfig,
    out: &mut [Vec<RuleSignal>],
) {
    let cluster = clusters(accounts);
    let mut size: FxHashMap<usize, usize> = FxHashMap::default();
    for &c in &cluster {
        let n = size.entry(c).or_insert(0);
        *n = n.saturating_add(1);
    }
    let linked = |a: u32| {
        cluster
            .get(a as usize)
            .and_then(|c| size.get(c))
            .is_some_and(|&n| n > 1)
    };
    // (symbol, time, 0 = close / 1 = open, index into `all`); only linked accounts' trades
    // of positive length.
    let mut events: Vec<(u32, i64, u8, u32)> = Vec::new();
    for (x, &(a, t)) in all.iter().enumerate() {
        if t.closed_at_ns > t.opened_at_ns && linked(a) {
            let x = u32::try_from(x).unwrap_or(u32::MAX);
            events.push((t.symbol, t.opened_at_ns, 1, x));
            events.push((t.symbol, t.closed_at_ns, 0, x));
        }
    }
    if events.is_empty() {
        return;
    }
    events.sort_unstable();
    let mut hedged_at: Vec<Option<i64>> = vec![None; all.len()];
    let mut pairs: BTreeSet<(u32, u32)> = BTreeSet::new();
    // (cluster, side) -> open trades (index into `all`), for the current symbol.
    let mut open: FxHashMap<(usize, Side), Vec<u32>> = FxHashMap::default();
    let mut symbol = None;
    for &(sym, at, kind, x) in &events {
        if symbol != Some(sym) {
            open.clear();
            symbol = Some(sym);
        }
        let Some(&(a, t)) = all.get(x as usize) else {
            continue;
        };
        let c = cluster.get(a as usize).copied().unwrap_or(usize::MAX);
        if kind == 0 {
            if let Some(list) = open.get_mut(&(c, t.side)) {
                if let Some(p) = list.iter().position(|&y| y == x) {
                    list.swap_remove(p);
                }
            }
            continue;
        }
        let opposite = match t.side {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        };
        if let Some(list) = open.get(&(c, opposite)) {
            for &y in list {
                let Some(&(b, _)) = all.get(y as usize) else {
                    continue;
                };
                if b == a {
                    continue;
                }
                for z in [x, y] {
                    if let Some(slot) = hedged_at.get_mut(z as usize) {
                        slot.get_or_insert(at);
                    }
                }
                pairs.insert((a, b));
                pairs.insert((b, a));
            }
        }
        open.entry((c, t.side)).or_default().push(x);
    }
    let mut times: Vec<Vec<i64>> = vec![Vec::new(); accounts.len()];
    for (&(a, _), at) in all.iter().zip(&hedged_at) {
        if let (Some(at), Some(list)) = (at, times.get_mut(a as usize)) {
            list.push(*at);
        }
    }
    let n = config.hedging_min_trades as usize;
    for (a, mut list) in times.into_iter().enumerate() {
        if list.len() < n {
            continue;
        }
        list.sort_unstable();
        let at = list.get(n.saturating_sub(1)).copied().unwrap_or_default();
        let a32 = u32::try_from(a).unwrap_or(u32::MAX);
        let related = related_ids(accounts, &pairs, a32);
        let mut s = RuleSignal::new(
            RuleKind::CrossAccountHedging,
            at,
            Decimal::from(list.len()),
            Decimal::from(config.hedging_min_trades),
        );
        s.related = related;
        if let Some(signals) = out.get_mut(a) {
            signals.push(s);
        }
    }
}

fn related_ids(
    accounts: &[DetectAccount<'_>],
    pairs: &BTreeSet<(u32, u32)>,
    a: u32,
) -> Vec<AccountId> {
    let mut ids: Vec<AccountId> = pairs
        .range((a, 0)..=(a, u32::MAX))
        .filter_map(|&(_, b)| accounts.get(b as usize).map(|x| x.account.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn copy_trading(
    accounts: &[DetectAccount<'_>],
    all: &[(u32, &RuleTrade)],
    starts: &[usize],
    config: &DetectorConfig,
    out: &mut [Vec<RuleSignal>],
) -> Result<(), RulebookError> {
    // Users as small numbers.
    let mut user_ids: FxHashMap<&str, u32> = FxHashMap::default();
    let user_of: Vec<u32> = accounts
        .iter()
        .map(|a| {
            let next = u32::try_from(user_ids.len()).unwrap_or(u32::MAX);
            *user_ids.entry(a.user).or_insert(next)
        })
        .collect();
    // (symbol, side, open time, index into `all`)
    let mut opens: Vec<(u32, Side, i64, u32)> = all
        .iter()
        .enumerate()
        .map(|(x, &(_, t))| {
            let x = u32::try_from(x).unwrap_or(u32::MAX);
            (t.symbol, t.side, t.opened_at_ns, x)
        })
        .collect();
    opens.sort_unstable();
    let window = i64::from(config.copy_window_seconds).saturating_mul(1_000_000_000);
    let user_at = |k: usize| -> u32 {
        opens
            .get(k)
            .and_then(|o| all.get(o.3 as usize))
            .and_then(|&(a, _)| user_of.get(a as usize))
            .copied()
            .unwrap_or(u32::MAX)
    };
    let mut copied = vec![false; all.len()];
    let mut pairs: BTreeSet<(u32, u32)> = BTreeSet::new();
    let mut in_window: Vec<u32> = vec![0; user_ids.len()];
    let (mut lo, mut hi) = (0_usize, 0_usize);
    let mut group_start = 0_usize;
    for i in 0..opens.len() {
        let Some(&(sym, side, at, x)) = opens.get(i) else {
            break;
        };
        let same_group = |k: usize| opens.get(k).is_some_and(|o| o.0 == sym && o.1 == side);
        if !same_group(group_start) {
            // A new (symbol, side): empty the window.
            for k in lo..hi {
                if let Some(c) = in_window.get_mut(user_at(k) as usize) {
                    *c = c.saturating_sub(1);
                }
            }
            group_start = i;
            lo = i;
            hi = i;
        }
        while hi < opens.len()
            && same_group(hi)
            && opens
                .get(hi)
                .is_some_and(|o| o.2 <= at.saturating_add(window))
        {
            if let Some(c) = in_window.get_mut(user_at(hi) as usize) {
                *c = c.saturating_add(1);
            }
            hi = hi.saturating_add(1);
        }
        while opens
            .get(lo)
            .is_some_and(|o| o.2 < at.saturating_sub(window))
        {
            if let Some(c) = in_window.get_mut(user_at(lo) as usize) {
                *c = c.saturating_sub(1);
            }
            lo = lo.saturating_add(1);
        }
        let me = user_at(i);
        let mine = in_window.get(me as usize).copied().unwrap_or(0) as usize;
        if hi.saturating_sub(lo) > mine {
            if let Some(flag) = copied.get_mut(x as usize) {
                *flag = true;
            }
            let a = all.get(x as usize).map_or(u32::MAX, |o| o.0);
            let mut named = 0;
            for k in lo..hi {
                if named >= RELATED_SCAN {
                    break;
                }
                if user_at(k) != me {
                    if let Some(&(b, _)) = opens.get(k).and_then(|o| all.get(o.3 as usize)) {
                        pairs.insert((a, b));
                        named = named.saturating_add(1);
                    }
                }
            }
        }
    }

    let min_trades = u64::from(config.copy_min_trades);
    for (a, account) in accounts.iter().enumerate() {
        let (Some(&from), Some(&to)) = (starts.get(a), starts.get(a.saturating_add(1))) else {
            continue;
        };
        let Some(flags) = copied.get(from..to) else {
            continue;
        };
        let matched = flags.iter().filter(|&&f| f).count() as u64;
        let n = flags.len() as u64;
        if matched < min_trades || n == 0 {
            continue;
        }
        let share = div(Decimal::from(matched), Decimal::from(n), "copy share")?;
        if share < config.copy_min_share {
            continue;
        }
        // The first open, in open-time order, at which both conditions held.
        let mut order: Vec<(i64, bool)> = flags
            .iter()
            .zip(account.trades)
            .map(|(&f, t)| (t.opened_at_ns, f))
            .collect();
        order.sort_unstable();
        let (mut seen, mut hits) = (0_u64, 0_u64);
        let mut at = order.last().map_or(0, |o| o.0);
        for (t, f) in order {
            seen = seen.saturating_add(1);
            hits = hits.saturating_add(u64::from(f));
            if hits >= min_trades
                && Decimal::from(hits)
                    >= mul(config.copy_min_share, Decimal::from(seen), "copy share")?
            {
                at = t;
                break;
            }
        }
        let a32 = u32::try_from(a).unwrap_or(u32::MAX);
        let mut s = RuleSignal::new(RuleKind::CopyTrading, at, share, config.copy_min_share);
        s.related = related_ids(accounts, &pairs, a32);
        if let Some(signals) = out.get_mut(a) {
            signals.push(s);
        }
    }
    Ok(())
}

/// The martingale run of one account (see [`detect`]).
fn martingale(trades: &[RuleTrade], min_run: u32) -> Option<RuleSignal> {
    let mut order: Vec<&RuleTrade> = trades.iter().collect();
    order.sort_unstable_by(|a, b| {
        (a.closed_at_ns, a.net_pnl, a.opened_at_ns).cmp(&(
            b.closed_at_ns,
            b.net_pnl,
            b.opened_at_ns,
        ))
    });
    let (mut run, mut longest) = (0_u32, 0_u32);
    let mut first = None;
    for pair in order.windows(2) {
        let [prev, next] = pair else { continue };
        let step = prev.net_pnl < Decimal::ZERO
            && next.opened_at_ns >= prev.closed_at_ns
            && next.lots > prev.lots;
        run = if step { run.saturating_add(1) } else { 0 };
        longest = longest.max(run);
        if run >= min_run && first.is_none() {
            first = Some(next.opened_at_ns);
        }
    }
    first.map(|at| {
        RuleSignal::new(
            RuleKind::Martingale,
            at,
            Decimal::from(longest),
            Decimal::from(min_run),
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests;
