//! The rulebook part of the report: every account's challenge outcome and the
//! cross-account detections.
//!
//! Trades are condensed to [`RuleTrade`]s (symbols interned to small numbers) and grouped
//! per account by a counting sort, in the report's account order. The challenge rules of
//! each account run on the cores in contiguous chunks while one more thread runs the
//! detectors over all accounts; the detections are then merged into each account's
//! signals (they do not change the challenge status).

use risk_core::hash::FxHashMap as FastMap;
use risk_core::ids::{AccountId, ChallengeId, UserId};
use risk_core::metrics::ClosedTrade;
use risk_core::rulebook::{detect, evaluate, sort_close_order, DetectAccount, Outcome, RuleTrade};
use risk_core::Decimal;

use super::ReportError;
use crate::report_config::RuleSettings;

/// Who an account is, as the rulebook needs it.
pub(crate) struct RuleAccount<'a> {
    pub(crate) account: &'a AccountId,
    pub(crate) user: &'a UserId,
    pub(crate) challenge: Option<&'a ChallengeId>,
    pub(crate) group: Option<&'a str>,
    pub(crate) initial_balance: Decimal,
}

/// The outcome of every account of `accounts` (same order), detections merged.
pub(crate) fn outcomes(
    trades: &[ClosedTrade],
    accounts: &[RuleAccount<'_>],
    settings: &RuleSettings,
) -> Result<Vec<Outcome>, ReportError> {
    let (grouped, starts) = group(trades, accounts)?;
    let slice = |i: usize| {
        let (from, to) = (starts[i], starts[i + 1]);
        &grouped[from..to]
    };
    let view: Vec<DetectAccount<'_>> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| DetectAccount {
            account: a.account,
            user: a.user.as_str(),
            group: a.group,
            trades: slice(i),
        })
        .collect();
    let one = |i: usize| {
        let a = &accounts[i];
        let book = settings.rulebooks.for_challenge(a.challenge);
        evaluate(book, slice(i), a.initial_balance).map_err(|source| ReportError::Rulebook {
            account: Some(a.account.clone()),
            source,
        })
    };
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let (detected, mut out) = std::thread::scope(|s| {
        let detector = s.spawn(|| detect(&view, &settings.detectors));
        let out: Result<Vec<Outcome>, ReportError> = if workers < 3 || accounts.len() < 256 {
            (0..accounts.len()).map(one).collect()
        } else {
            // The detector holds one core; the rules split the others by trade count.
            let parts = workers - 1;
            let target = grouped.len().div_ceil(parts).max(1);
            let mut bounds = vec![0];
            for i in 0..accounts.len() {
                if starts[i + 1] >= target * bounds.len() && bounds.len() < parts {
                    bounds.push(i + 1);
                }
            }
            bounds.push(accounts.len());
            bounds.dedup();
            let handles: Vec<_> = bounds
                .windows(2)
                .map(|w| {
                    let (from, to) = (w[0], w[1]);
                    s.spawn(move || (from..to).map(one).collect::<Result<Vec<_>, _>>())
                })
                .collect();
            let mut all = Vec::with_capacity(accounts.len());
            let mut failed = None;
            for h in handles {
                match h.join() {
                    Ok(Ok(part)) => all.extend(part),
                    Ok(Err(e)) => failed = failed.or(Some(e)),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            failed.map_or(Ok(all), Err)
        };
        let detected = detector
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (detected, out)
    });
    let detected = detected.map_err(|source| ReportError::Rulebook {
        account: None,
        source,
    })?;
    if let Ok(out) = &mut out {
        for (o, found) in out.iter_mut().zip(detected) {
            if !found.is_empty() {
                o.signals.extend(found);
                o.signals
                    .sort_by(|a, b| a.at.cmp(&b.at).then(a.kind.cmp(&b.kind)));
            }
        }
    }
    out
}

/// The trades' rule facts grouped per account (account `i`'s are
/// `grouped[starts[i]..starts[i + 1]]`), file order kept within an account. Trades of
/// logins not in `accounts` are left out.
fn group(
    trades: &[ClosedTrade],
    accounts: &[RuleAccount<'_>],
) -> Result<(Vec<RuleTrade>, Vec<usize>), ReportError> {
    let index: FastMap<&str, u32> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.account.as_str(), u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    // The CSV reader shares one string per login and per symbol: a lookup by the string's
    // address skips hashing and comparing its text (the text is the fallback).
    let mut by_address: FastMap<usize, u32> = FastMap::default();
    let mut symbols: FastMap<&str, u32> = FastMap::default();
    let mut symbol_by_address: FastMap<usize, u32> = FastMap::default();
    // Pass 1: each trade's account and symbol numbers, and the accounts' sizes.
    let mut owner: Vec<(u32, u32)> = Vec::with_capacity(trades.len());
    let mut starts = vec![0_usize; accounts.len() + 1];
    for t in trades {
        let login = t.account.as_str();
        let i = match by_address.get(&(login.as_ptr() as usize)) {
            Some(&i) => i,
            None => {
                let i = index.get(login).copied().unwrap_or(u32::MAX);
                by_address.insert(login.as_ptr() as usize, i);
                i
            }
        };
        if i == u32::MAX {
            owner.push((i, 0));
            continue;
        }
        let name = t.symbol.as_str();
        let symbol = match symbol_by_address.get(&(name.as_ptr() as usize)) {
            Some(&s) => s,
            None => {
                let next = u32::try_from(symbols.len()).unwrap_or(u32::MAX);
                let s = *symbols.entry(name).or_insert(next);
                symbol_by_address.insert(name.as_ptr() as usize, s);
                s
            }
        };
        owner.push((i, symbol));
        starts[i as usize + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    // Pass 2: each trade's facts straight into its account's range (file order kept).
    let blank = RuleTrade {
        opened_at_ns: 0,
        closed_at_ns: 0,
        net_pnl: Decimal::ZERO,
        lots: Decimal::ZERO,
        side: risk_core::model::Side::Buy,
        symbol: 0,
    };
    let mut grouped = vec![blank; starts[accounts.len()]];
    let mut next = starts.clone();
    for (t, &(i, symbol)) in trades.iter().zip(&owner) {
        if i == u32::MAX {
            continue;
        }
        grouped[next[i as usize]] =
            RuleTrade::of(t, symbol).map_err(|source| ReportError::Metrics {
                account: t.account.clone(),
                source,
            })?;
        next[i as usize] += 1;
    }
    drop(owner);
    // Each account in close-time order once: the rules and the martingale detector then
    // read the trades as they are.
    for w in starts.windows(2) {
        sort_close_order(&mut grouped[w[0]..w[1]]);
    }
    Ok((grouped, starts))
}
