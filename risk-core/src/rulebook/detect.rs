//! The cross-account detectors: sweeps over (symbol, time) across every account at once.

use rust_decimal::Decimal;

use crate::hash::HashMap;
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

/// Runs the detectors over every account; the result has one list of signals per input
/// account, in input order.
///
/// - `CROSS_ACCOUNT_HEDGING`: accounts are linked when they belong to the same user or to
///   users sharing a group (transitively). A trade is hedged when a trade of another,
///   linked account in the same symbol and the opposite direction is open at the same
///   time (intervals `[open, close)` overlap). An account with at least
///   `hedging_min_trades` hedged trades is flagged; value: its hedged trades; time: the
///   moment its N-th hedged trade was first held against an opposite one; related: the
///   linked accounts it hedged with. One sweep per symbol over the opens (a trade leaves
///   the open lists once its close time has passed).
/// - `COPY_TRADING`: two accounts of different users copy each other when one of them
///   opened the same symbol in the same direction at most `copy_window_seconds` before or
///   after the other. An account is flagged when, for one such partner, at least
///   `copy_min_trades` of its trades and at least `copy_min_share` of them have a copy
///   (by that same partner: coincidences with many strangers in a busy market do not add
///   up); value: the largest such share; time: the open from which the trades copied by
///   its flagged partners first reach both thresholds, in open-time order; related: those
///   partners. One sweep per (symbol, direction) over the opens yields the matched
///   (account, partner) pairs, counted after one sort.
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
    let mut out = detect_only(accounts, config, Detector::Hedging)?;
    for which in [Detector::CopyTrading, Detector::Martingale] {
        for (signals, more) in out.iter_mut().zip(detect_only(accounts, config, which)?) {
            signals.extend(more);
        }
    }
    for signals in &mut out {
        signals.sort_by(|a, b| a.at.cmp(&b.at).then(a.kind.cmp(&b.kind)));
    }
    Ok(out)
}

/// One of the detectors of [`detect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detector {
    /// `CROSS_ACCOUNT_HEDGING`.
    Hedging,
    /// `COPY_TRADING`.
    CopyTrading,
    /// `MARTINGALE`.
    Martingale,
}

/// One detector of [`detect`] alone (so that a caller with threads can run them side by
/// side); one list of signals per input account, in input order, unsorted.
///
/// # Errors
/// As [`detect`].
pub fn detect_only(
    accounts: &[DetectAccount<'_>],
    config: &DetectorConfig,
    which: Detector,
) -> Result<Vec<Vec<RuleSignal>>, RulebookError> {
    config.validate()?;
    let mut out: Vec<Vec<RuleSignal>> = vec![Vec::new(); accounts.len()];
    if !config.enabled {
        return Ok(out);
    }
    if which == Detector::Martingale {
        for (a, signals) in accounts.iter().zip(&mut out) {
            signals.extend(martingale(a.trades, config.martingale_min_run));
        }
        return Ok(out);
    }
    if which == Detector::Hedging {
        hedging(accounts, config, &mut out);
    } else {
        copy_trading(accounts, config, &mut out)?;
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

/// The link cluster of every account of `accounts` as the `CROSS_ACCOUNT_HEDGING`
/// detector links them (same user, or users sharing a group, transitively): two accounts
/// are linked when their numbers are equal. Hedging is only found between linked accounts,
/// so [`detect_only`] run on whole clusters gives their accounts what it gives them run on
/// every account.
#[must_use]
pub fn link_clusters(accounts: &[DetectAccount<'_>]) -> Vec<usize> {
    clusters(accounts)
}

/// The link cluster of every account: same user or shared group, transitively.
fn clusters(accounts: &[DetectAccount<'_>]) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..accounts.len()).collect();
    let mut first_of: HashMap<(bool, &str), usize> = HashMap::default();
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

/// (cluster, sells) -> the trades open now: (close time, position in the sweep, account).
type OpenLists = HashMap<(usize, bool), Vec<(i64, usize, u32)>>;

/// Every trade of `accounts` with its account's position, in order (walked, not
/// collected: a million trades would be 16 MB).
fn all_trades<'a>(
    accounts: &'a [DetectAccount<'_>],
) -> impl Iterator<Item = (u32, &'a RuleTrade)> + 'a {
    accounts.iter().enumerate().flat_map(|(i, a)| {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        a.trades.iter().map(move |t| (i, t))
    })
}

fn hedging(accounts: &[DetectAccount<'_>], config: &DetectorConfig, out: &mut [Vec<RuleSignal>]) {
    let cluster = clusters(accounts);
    let mut size: HashMap<usize, usize> = HashMap::default();
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
    // The opens of linked accounts' trades of positive length, keyed by (symbol, open
    // time, account << 1 | sell) and carrying the close time: one radix sort, and the
    // sweep reads nothing else. A trade leaves the open lists lazily once its close time has
    // passed (intervals are `[open, close)`).
    let mut opens: Vec<(u32, i64, u32, i64)> = Vec::new();
    for (a, t) in all_trades(accounts) {
        if t.closed_at_ns > t.opened_at_ns && linked(a) {
            let who = a.saturating_mul(2) | u32::from(t.side == Side::Sell);
            opens.push((t.symbol, t.opened_at_ns, who, t.closed_at_ns));
        }
    }
    if opens.is_empty() {
        return;
    }
    let opens = radix::sort_keys(opens);
    // Per open, in sweep order: when it was first held against an opposite trade.
    let mut hedged_at: Vec<Option<i64>> = vec![None; opens.len()];
    // The linked accounts each account hedged with (a handful: one owner's accounts).
    let mut partners: Vec<Vec<u32>> = vec![Vec::new(); accounts.len()];
    // (cluster, side) -> open trades (close time, position in `opens`, account), for the
    // current symbol.
    let mut open: OpenLists = HashMap::default();
    let mut symbol = None;
    for (k, &(sym, at, who, close)) in opens.iter().enumerate() {
        let (a, sell) = (who >> 1, who & 1 == 1);
        if symbol != Some(sym) {
            open.clear();
            symbol = Some(sym);
        }
        let c = cluster.get(a as usize).copied().unwrap_or(usize::MAX);
        if let Some(list) = open.get_mut(&(c, !sell)) {
            list.retain(|&(ends, _, _)| ends > at);
            for &(_, y, b) in list.iter() {
                if b == a {
                    continue;
                }
                for z in [k, y] {
                    if let Some(slot) = hedged_at.get_mut(z) {
                        slot.get_or_insert(at);
                    }
                }
                for (p, q) in [(a, b), (b, a)] {
                    if let Some(list) = partners.get_mut(p as usize) {
                        if !list.contains(&q) {
                            list.push(q);
                        }
                    }
                }
            }
        }
        let own = open.entry((c, sell)).or_default();
        own.retain(|&(ends, _, _)| ends > at);
        own.push((close, k, a));
    }
    let mut times: Vec<Vec<i64>> = vec![Vec::new(); accounts.len()];
    for (&(_, _, who, _), at) in opens.iter().zip(&hedged_at) {
        let a = (who >> 1) as usize;
        if let (Some(at), Some(list)) = (at, times.get_mut(a)) {
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
        let related = ids_of(accounts, partners.get(a).map_or(&[][..], Vec::as_slice));
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

fn ids_of(accounts: &[DetectAccount<'_>], list: &[u32]) -> Vec<AccountId> {
    let mut ids: Vec<AccountId> = list
        .iter()
        .filter_map(|&b| accounts.get(b as usize).map(|x| x.account.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Every trade's open as the copy-trading detector sweeps them: `(lane, open time,
/// account)`, the lane being the symbol and the direction, sorted; so the opens of one
/// symbol and direction within a time window are one contiguous run.
///
/// [`detect`] builds one per call. A caller that keeps its accounts between calls (the
/// risk-signal service) can keep the index too: add each new trade with
/// [`OpenIndex::insert`], find the accounts the new trades can change with
/// [`OpenIndex::near`], and rerun the detector for those alone with [`copy_trading_of`],
/// instead of sorting every trade again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenIndex {
    /// `(lane, open time in ns, account)`, ascending.
    opens: Vec<(u32, i64, u32)>,
}

/// The lane of a (symbol, direction): each is one run of the sorted opens.
fn lane(symbol: u32, side: Side) -> u32 {
    symbol.saturating_mul(2) | u32::from(side == Side::Sell)
}

/// The copy window in nanoseconds.
fn window_ns(config: &DetectorConfig) -> i64 {
    i64::from(config.copy_window_seconds).saturating_mul(1_000_000_000)
}

impl OpenIndex {
    /// The opens of every trade of `accounts`; an account is its position in `accounts`.
    #[must_use]
    pub fn new(accounts: &[DetectAccount<'_>]) -> Self {
        let mut index = Self::default();
        index.insert(accounts.iter().enumerate().flat_map(|(i, a)| {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            a.trades.iter().map(move |t| (i, t))
        }));
        index
    }

    /// Adds the opens of `(account, trade)` pairs: a sort of the new ones, then one linear
    /// merge with those held.
    pub fn insert<'t>(&mut self, trades: impl IntoIterator<Item = (u32, &'t RuleTrade)>) {
        let new: Vec<(u32, i64, u32, ())> = trades
            .into_iter()
            .map(|(a, t)| (lane(t.symbol, t.side), t.opened_at_ns, a, ()))
            .collect();
        if new.is_empty() {
            return;
        }
        let sorted = self.opens.len();
        self.opens.extend(
            radix::sort_keys(new)
                .into_iter()
                .map(|(l, at, a, ())| (l, at, a)),
        );
        if sorted > 0 {
            // Two ascending runs: the stable sort finds them and merges them in linear time.
            self.opens.sort();
        }
    }

    /// Number of opens held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.opens.len()
    }

    /// True when no open is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.opens.is_empty()
    }

    /// The accounts with an open in `trade`'s symbol and direction at most
    /// `copy_window_seconds` (of `config`) before or after `trade`'s open, `trade`'s own
    /// account included, once per such open: the accounts whose `COPY_TRADING` result
    /// adding `trade` can change (the window is symmetric).
    pub fn near<'s>(
        &'s self,
        trade: &RuleTrade,
        config: &DetectorConfig,
    ) -> impl Iterator<Item = u32> + 's {
        self.run(
            lane(trade.symbol, trade.side),
            trade.opened_at_ns,
            window_ns(config),
        )
        .iter()
        .map(|o| o.2)
    }

    /// The opens in `lane` within `window` ns of `at` (both ends included).
    fn run(&self, lane: u32, at: i64, window: i64) -> &[(u32, i64, u32)] {
        let (from, to) = (at.saturating_sub(window), at.saturating_add(window));
        let first = self.opens.partition_point(|o| (o.0, o.1) < (lane, from));
        let rest = self.opens.get(first..).unwrap_or_default();
        let n = rest.partition_point(|o| o.0 == lane && o.1 <= to);
        rest.get(..n).unwrap_or_default()
    }
}

/// Users as small numbers, per account.
fn user_numbers(accounts: &[DetectAccount<'_>]) -> Vec<u32> {
    let mut user_ids: HashMap<&str, u32> = HashMap::default();
    accounts
        .iter()
        .map(|a| {
            let next = u32::try_from(user_ids.len()).unwrap_or(u32::MAX);
            *user_ids.entry(a.user).or_insert(next)
        })
        .collect()
}

/// The smallest matched count that reaches both copy thresholds for an account of `n`
/// trades.
fn copies_needed(n: usize, config: &DetectorConfig) -> Result<usize, RulebookError> {
    let share = mul(config.copy_min_share, Decimal::from(n), "copy share")?.ceil();
    let share =
        u64::try_from(share).map_or(usize::MAX, |v| usize::try_from(v).unwrap_or(usize::MAX));
    Ok(share.max(config.copy_min_trades as usize))
}

fn copy_trading(
    accounts: &[DetectAccount<'_>],
    config: &DetectorConfig,
    out: &mut [Vec<RuleSignal>],
) -> Result<(), RulebookError> {
    let user_of = user_numbers(accounts);
    let user = |a: u32| user_of.get(a as usize).copied().unwrap_or(u32::MAX);
    let min_trades = config.copy_min_trades as usize;
    let needed: Vec<usize> = accounts
        .iter()
        .map(|a| copies_needed(a.trades.len(), config))
        .collect::<Result<_, RulebookError>>()?;

    let enough: Vec<bool> = accounts
        .iter()
        .map(|x| x.trades.len() >= min_trades)
        .collect();
    let mut index = OpenIndex::default();
    index.insert(all_trades(accounts));
    let opens = &index.opens;
    let window = window_ns(config);
    let near = |k: usize, l: u32, lo: i64, hi: i64| {
        opens
            .get(k)
            .is_some_and(|o| o.0 == l && o.1 >= lo && o.1 <= hi)
    };

    // One pass: for every open, the accounts of other users that opened the same symbol
    // in the same direction within the window, each once, into the account's list.
    let mut matches: Vec<Vec<u32>> = vec![Vec::new(); accounts.len()];
    // Per open of such an account: its time and where its partners end in the account's
    // list, so that the signal finds each trade's partners without searching the index.
    let mut marks: Vec<Vec<(i64, usize)>> = vec![Vec::new(); accounts.len()];
    let mut seen: Vec<u32> = Vec::new();
    let mut lo = 0_usize;
    for i in 0..opens.len() {
        let Some(&(l, at, a)) = opens.get(i) else {
            break;
        };
        let (from, to) = (at.saturating_sub(window), at.saturating_add(window));
        while lo < i && !near(lo, l, from, to) {
            lo = lo.saturating_add(1);
        }
        if !enough.get(a as usize).copied().unwrap_or(false) {
            continue;
        }
        let me = user(a);
        seen.clear();
        let mut k = lo;
        while near(k, l, from, to) {
            if let Some(&(_, _, b)) = opens.get(k) {
                if user(b) != me && !seen.contains(&b) {
                    seen.push(b);
                    if let Some(list) = matches.get_mut(a as usize) {
                        list.push(b);
                    }
                }
            }
            k = k.saturating_add(1);
        }
        if let (Some(m), Some(list)) = (marks.get_mut(a as usize), matches.get(a as usize)) {
            m.push((at, list.len()));
        }
    }
    let mut counts = Vec::new();
    for (a, (list, marks)) in matches.into_iter().zip(marks).enumerate() {
        let need = needed.get(a).copied().unwrap_or(usize::MAX);
        let Some(account) = accounts.get(a) else {
            continue;
        };
        let Some(partners) = partners_of(&list, need, &mut counts) else {
            continue;
        };
        // Per open, its partners are the list from the previous open's end to its own.
        let mut from = 0;
        let order = marks.iter().map(|&(at, to)| {
            let mine = list.get(from..to).unwrap_or_default();
            from = to;
            (at, mine.iter().any(|b| partners.iter().any(|p| p.0 == *b)))
        });
        if let Some(s) = copy_signal_of(accounts, account, &partners, order.collect(), config)? {
            if let Some(signals) = out.get_mut(a) {
                signals.push(s);
            }
        }
    }
    Ok(())
}

/// `COPY_TRADING` as [`detect`] finds it, for the accounts of `targets` (positions in
/// `accounts`) alone: one list of signals per target, in `targets` order. `index` must
/// hold the opens of exactly the trades of `accounts` (as [`OpenIndex::new`] builds it);
/// when its size says otherwise it is rebuilt here, so the answer is always that of
/// [`detect`]. Cost: the targets' trades times a binary search, not a sort of every trade.
///
/// # Errors
/// As [`detect`].
pub fn copy_trading_of(
    accounts: &[DetectAccount<'_>],
    index: &OpenIndex,
    config: &DetectorConfig,
    targets: &[usize],
) -> Result<Vec<Vec<RuleSignal>>, RulebookError> {
    config.validate()?;
    let mut out: Vec<Vec<RuleSignal>> = vec![Vec::new(); targets.len()];
    if !config.enabled {
        return Ok(out);
    }
    let held: usize = accounts.iter().map(|a| a.trades.len()).sum();
    let rebuilt;
    let index = if index.len() == held {
        index
    } else {
        rebuilt = OpenIndex::new(accounts);
        &rebuilt
    };
    let user_of = user_numbers(accounts);
    let user = |a: u32| user_of.get(a as usize).copied().unwrap_or(u32::MAX);
    let window = window_ns(config);
    let mut seen: Vec<u32> = Vec::new();
    let mut counts = Vec::new();
    for (&a, signals) in targets.iter().zip(&mut out) {
        let Some(account) = accounts.get(a) else {
            continue;
        };
        let need = copies_needed(account.trades.len(), config)?;
        let mut list = Vec::new();
        if account.trades.len() >= config.copy_min_trades as usize {
            // Per open of the account, as the sweep of [`detect`] does it: every other
            // user's account with an open nearby, each once.
            let me = user(u32::try_from(a).unwrap_or(u32::MAX));
            for t in account.trades {
                seen.clear();
                for o in index.run(lane(t.symbol, t.side), t.opened_at_ns, window) {
                    let b = o.2;
                    if user(b) != me && !seen.contains(&b) {
                        seen.push(b);
                        list.push(b);
                    }
                }
            }
        }
        signals.extend(copy_signal(
            accounts,
            account,
            list,
            need,
            index,
            config,
            &mut counts,
        )?);
    }
    Ok(out)
}

/// An account's `COPY_TRADING` signal from `list`, the partner of each of its matched
/// opens (see [`detect`]), when a partner matched at least `need` of its trades.
fn copy_signal(
    accounts: &[DetectAccount<'_>],
    account: &DetectAccount<'_>,
    list: Vec<u32>,
    need: usize,
    index: &OpenIndex,
    config: &DetectorConfig,
    counts: &mut Vec<usize>,
) -> Result<Option<RuleSignal>, RulebookError> {
    let Some(partners) = partners_of(&list, need, counts) else {
        return Ok(None);
    };
    let window = window_ns(config);
    // Per trade, whether a qualifying partner opened nearby.
    let order: Vec<(i64, bool)> = account
        .trades
        .iter()
        .map(|t| {
            let hit = index
                .run(lane(t.symbol, t.side), t.opened_at_ns, window)
                .iter()
                .any(|o| partners.iter().any(|p| p.0 == o.2));
            (t.opened_at_ns, hit)
        })
        .collect();
    copy_signal_of(accounts, account, &partners, order, config)
}

/// The partners of `list` (see [`copy_signal`]) that matched at least `need` of the
/// account's trades, with their counts, by account number; `None` when there are none.
/// `counts` is scratch space, all zeros before and after (one counter per account number,
/// grown as needed): one pass counts, instead of a sort of the whole list.
fn partners_of(list: &[u32], need: usize, counts: &mut Vec<usize>) -> Option<Vec<(u32, usize)>> {
    if list.len() < need {
        return None;
    }
    // A partner in the list matched at least once.
    let need = need.max(1);
    let mut partners: Vec<u32> = Vec::new();
    for &b in list {
        let i = b as usize;
        if counts.len() <= i {
            counts.resize(i.saturating_add(1), 0);
        }
        if let Some(n) = counts.get_mut(i) {
            *n = n.saturating_add(1);
            if *n == need {
                partners.push(b);
            }
        }
    }
    partners.sort_unstable();
    let out: Vec<(u32, usize)> = partners
        .iter()
        .map(|&b| (b, counts.get(b as usize).copied().unwrap_or(0)))
        .collect();
    for &b in list {
        if let Some(n) = counts.get_mut(b as usize) {
            *n = 0;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The signal of an account with qualifying `partners`, from `order`: per trade, its open
/// time and whether one of `partners` opened nearby.
fn copy_signal_of(
    accounts: &[DetectAccount<'_>],
    account: &DetectAccount<'_>,
    partners: &[(u32, usize)],
    mut order: Vec<(i64, bool)>,
    config: &DetectorConfig,
) -> Result<Option<RuleSignal>, RulebookError> {
    let min_trades = config.copy_min_trades as usize;
    let n = account.trades.len();
    let best = partners.iter().map(|p| p.1).max().unwrap_or(0);
    let share = div(Decimal::from(best), Decimal::from(n), "copy share")?;
    // The first open, in open-time order, from which the account's trades matched by a
    // qualifying partner reach both thresholds.
    order.sort_unstable();
    let (mut seen_n, mut hits) = (0_u64, 0_usize);
    let mut at = order.last().map_or(0, |o| o.0);
    for (t, hit) in order {
        seen_n = seen_n.saturating_add(1);
        hits = hits.saturating_add(usize::from(hit));
        if hits >= min_trades
            && Decimal::from(hits)
                >= mul(config.copy_min_share, Decimal::from(seen_n), "copy share")?
        {
            at = t;
            break;
        }
    }
    let ids: Vec<u32> = partners.iter().map(|p| p.0).collect();
    let mut s = RuleSignal::new(RuleKind::CopyTrading, at, share, config.copy_min_share);
    s.related = ids_of(accounts, &ids);
    Ok(Some(s))
}

/// The martingale run of one account (see [`detect`]).
fn martingale(trades: &[RuleTrade], min_run: u32) -> Option<RuleSignal> {
    let order = super::in_close_order(trades);
    let (mut run, mut longest) = (0_u32, 0_u32);
    let mut first = None;
    for pair in order.windows(2) {
        let [prev, next] = pair else { continue };
        let step = prev.pnl < Decimal::ZERO
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

mod radix;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests;
