//! The trade-metrics and risk-score report: building it from trades, and rendering it as
//! a terminal table, JSON, CSV, an HTML page or (feature `parquet`) Parquet.
//!
//! # Building
//! The report works on a [`TradeBatch`]: each trade condensed to a 64-byte row with its
//! login and symbol as small numbers, read that way straight from the file
//! ([`crate::csv_input::read_trade_batch_path`], no `ClosedTrade` and no string per
//! row) or condensed from trades ([`build_report`]). One pass numbers the accounts, a
//! counting sort lays each account's rule facts ([`RuleTrade`]) and a flag byte out in
//! one contiguous range, the batch is dropped, and each account's metrics are computed by
//! the batch calculator from those facts in file order and scored (accounts are spread
//! over the machine's cores); the facts are then put in close-time order for the
//! rulebook. The result does not depend on the number of cores.
//! An account's initial balance is the accounts file's `initial_balance` when given, else
//! its `account_size`, else the configured one; its `platform` and `phase` are carried as
//! they are. Without an accounts file every login is its own user
//! (`user_id = login`) and the challenge is unknown. With one, a login the file does not
//! list is treated the same way and counted in [`Report::unlisted_accounts`]; listed
//! accounts without trades are reported with zero trades.
//!
//! # Settings
//! A trade's P&L is on [`MetricsConfig::pnl_basis`] (net by default, `gross` = profit
//! alone) for the metrics, the rulebook and the HTML curves alike. With
//! [`MetricsConfig::window_size`] `N`, each account's metrics and metric score are those
//! of its `N` most recent trades by close time (the balance curve restarting at the
//! initial balance), and a user's or challenge's aggregate is built from those account
//! scores by the usual rule ([`aggregate`]). The challenge rules, the cross-account
//! detectors and the HTML equity curves always take the whole history: a challenge is
//! passed or failed on every trade, not on a window. `last_trade_at` is the latest close
//! of all the account's trades (window or not), and for a user or challenge the latest
//! over its accounts.
//!
//! # Rulebook
//! Every account is checked against its challenge's rulebook (or the default one) and the
//! cross-account detectors run over all accounts ([`risk_core::rulebook`]). The account's
//! [`AccountReport::rules`] holds its status and rulebook signals; its score is the metric
//! score plus the rulebook signals' weights, capped at 100 (the user and challenge scores
//! aggregate that). The private `rulebook` submodule says how the work is spread.
//!
//! # JSON
//! The JSON is a report, not a ledger: ratios and money are JSON numbers converted from the
//! exact decimals through `f64` (about 15 significant digits). Logins, user and challenge
//! ids are strings; undefined values (`profit_factor` with no loss, averages with nothing
//! to average, an unknown challenge, `last_trade_at` without trades, `platform` and
//! `phase` without an accounts file column) are `null`. Times are RFC 3339 in UTC. The
//! top level names the settings the numbers depend on: `pnl_basis` (`net` or `gross`)
//! and `window_size` (`null` for the whole history).
//!
//! # Layout
//! This module builds the report (`rulebook` adds the challenge rules and the detectors);
//! `json`, `csv`, `table` and `html` render it.

mod csv;
mod json;
#[cfg(feature = "parquet")]
mod parquet;
mod table;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use risk_core::ids::{AccountId, ChallengeId, UserId};
use risk_core::metrics::{
    ClosedTrade, MetricsConfig, MetricsError, PnlBasis, TradeFacts, TradeMetrics,
};
use risk_core::num::ArithmeticError;
use risk_core::score::{aggregate, score_account, AccountScore, GroupScore, ScoreConfig};
use risk_core::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::csv_input::{AccountsFile, TradeBatch, TradeRow};
use crate::report_config::RuleSettings;
use risk_core::hash::HashMap as FastMap;
use risk_core::rulebook::{rule_score, sort_close_order, Outcome, RuleTrade, RuleWeights};

mod html;
pub(crate) mod rulebook;

pub use html::{write_html, MAX_CHARTED_ACCOUNTS, MAX_POINTS};

pub use self::csv::write_csv;
#[cfg(feature = "parquet")]
pub use self::parquet::{accounts_batch, write_parquet};
pub use json::{account_object, group_object, write_json};
pub use table::write_table;

/// One account's line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountReport {
    /// The login.
    pub account: AccountId,
    /// The owner.
    pub user: UserId,
    /// The challenge, `None` when unknown.
    pub challenge: Option<ChallengeId>,
    /// The balance the curve started from.
    pub initial_balance: Decimal,
    /// The accounts file's `platform`, `None` when not given.
    pub platform: Option<String>,
    /// The accounts file's `phase`, `None` when not given.
    pub phase: Option<String>,
    /// The latest close time of the account's trades (of all of them, window or not);
    /// `None` without trades.
    pub last_trade_at: Option<DateTime<Utc>>,
    /// The full metric set (of the window's trades, with a window).
    pub metrics: TradeMetrics,
    /// The score (metric signals plus rulebook weights) and the metric signals.
    pub score: AccountScore,
    /// The challenge status and the rulebook and detector signals.
    pub rules: Outcome,
}

/// A user's or challenge's line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReport {
    /// The user or challenge id.
    pub id: String,
    /// The aggregated score with the per-account breakdown.
    pub score: GroupScore,
    /// The latest `last_trade_at` of its accounts; `None` when none has a trade.
    pub last_trade_at: Option<DateTime<Utc>>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// Accounts, by score descending, then login.
    pub accounts: Vec<AccountReport>,
    /// Users, by score descending, then id.
    pub users: Vec<GroupReport>,
    /// Challenges (known ones only), by score descending, then id.
    pub challenges: Vec<GroupReport>,
    /// Bad rows skipped while reading.
    pub skipped_rows: u64,
    /// Rows dropped for a repeated identifier.
    pub duplicate_rows: u64,
    /// Traded logins that the accounts file does not list.
    pub unlisted_accounts: u64,
    /// The weights the rulebook signals were scored with (their JSON `contribution`).
    pub rule_weights: RuleWeights,
    /// The metric settings used (the initial balance is the default for accounts without
    /// one).
    pub metrics: MetricsConfig,
}

/// What [`build_report`] needs besides the trades.
#[derive(Debug, Clone, Default)]
pub struct ReportInput<'a> {
    /// The accounts file, if any.
    pub accounts: Option<&'a AccountsFile>,
    /// Metric settings (the initial balance is the default for accounts without one).
    pub metrics: MetricsConfig,
    /// Score settings.
    pub score: ScoreConfig,
    /// Bad rows skipped while reading, carried into the report.
    pub skipped_rows: u64,
    /// Duplicate rows dropped while reading, carried into the report.
    pub duplicate_rows: u64,
    /// Rulebooks, detector thresholds and rulebook score weights.
    pub rules: RuleSettings,
}

/// Why the report could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// An account's metrics could not be computed.
    #[error("account {account}: {source}")]
    Metrics {
        /// The account.
        account: AccountId,
        /// Why.
        source: MetricsError,
    },
    /// The score settings are invalid.
    #[error(transparent)]
    Score(#[from] risk_core::score::ScoreConfigError),
    /// A batch's P&L is on another basis than the report's.
    #[error("the trades' P&L is on the {batch} basis, the report's on the {report} basis")]
    Basis {
        /// The batch's basis.
        batch: PnlBasis,
        /// The report's basis.
        report: PnlBasis,
    },
    /// A batch row names a login or symbol handle that the batch does not hold.
    #[error("a trade names a login or symbol that its batch does not hold")]
    Handle,
    /// The detector settings are invalid, or an account's rulebook arithmetic overflowed.
    #[error("rulebook{}: {source}", account.as_ref().map(|a| format!(" (account {a})")).unwrap_or_default())]
    Rulebook {
        /// The account, `None` for the detectors over all accounts.
        account: Option<AccountId>,
        /// Why.
        source: risk_core::rulebook::RulebookError,
    },
}

/// Builds the report: groups `trades` per account, computes and scores each account, then
/// aggregates users and challenges. The trades are first condensed to a [`TradeBatch`]
/// on the configured P&L basis; [`build_report_batch`] gives the same report for a batch
/// read straight from a file ([`crate::csv_input::read_trade_batch_path`]).
///
/// # Errors
/// [`ReportError`] on invalid settings or an arithmetic overflow in an account's metrics.
pub fn build_report(
    trades: &[ClosedTrade],
    input: &ReportInput<'_>,
) -> Result<Report, ReportError> {
    input.score.validate()?;
    let batch = batch_of(trades, input.metrics.pnl_basis)?;
    build_report_batch(batch, input)
}

/// [`build_report`] over trades in the reader's compact form. The batch is dropped as
/// soon as its rows are grouped, before the metrics are computed.
///
/// # Errors
/// As [`build_report`], and [`ReportError::Basis`] when the batch's P&L is not on
/// [`ReportInput::metrics`]' basis.
pub fn build_report_batch(
    batch: TradeBatch,
    input: &ReportInput<'_>,
) -> Result<Report, ReportError> {
    input.score.validate()?;
    if batch.basis != input.metrics.pnl_basis {
        return Err(ReportError::Basis {
            batch: batch.basis,
            report: input.metrics.pnl_basis,
        });
    }
    let slices = if batch.len() >= 100_000 {
        rayon::current_num_threads()
    } else {
        1
    };
    let listed = input
        .accounts
        .map(|f| f.order.as_slice())
        .unwrap_or_default();
    let Grouped {
        logins,
        starts,
        flags,
        rules: mut rule_trades,
    } = group(&batch, listed)?;
    drop(batch);
    let mut unlisted = 0_u64;
    let mut plan = Vec::with_capacity(logins.len());
    for (g, account) in logins.into_iter().enumerate() {
        let info = input.accounts.and_then(|f| f.accounts.get(&account));
        if input.accounts.is_some() && info.is_none() {
            unlisted += 1;
        }
        let mut config = input.metrics;
        if let Some(b) = info.and_then(|i| i.initial_balance) {
            config.initial_balance = b;
        }
        let trades = &rule_trades[starts[g]..starts[g + 1]];
        plan.push(Plan {
            user: info.map_or_else(|| UserId::new(account.as_str()), |i| i.user.clone()),
            account,
            challenge: info.and_then(|i| i.challenge.clone()),
            platform: info.and_then(|i| i.platform.clone()),
            phase: info.and_then(|i| i.phase.clone()),
            last_trade_at: trades
                .iter()
                .map(|t| t.closed_at_ns)
                .max()
                .map(DateTime::from_timestamp_nanos),
            config,
        });
    }

    let computed = compute_parallel(&plan, &rule_trades, &flags, &starts, &input.score)?;
    drop(flags);
    sort_accounts(&mut rule_trades, &starts, slices);
    let rule_accounts: Vec<rulebook::RuleAccount<'_>> = plan
        .iter()
        .map(|p| rulebook::RuleAccount {
            account: &p.account,
            user: &p.user,
            challenge: p.challenge.as_ref(),
            group: input
                .accounts
                .and_then(|f| f.accounts.get(&p.account))
                .and_then(|i| i.group.as_deref()),
            initial_balance: p.config.initial_balance,
        })
        .collect();
    let outcomes = rulebook::outcomes(&rule_trades, &starts, &rule_accounts, &input.rules)?;
    drop(rule_trades);
    drop(rule_accounts);
    let mut accounts: Vec<AccountReport> = plan
        .into_iter()
        .zip(computed)
        .zip(outcomes)
        .map(|((p, (metrics, score)), rules)| {
            account_report(
                AccountWho {
                    account: p.account,
                    user: p.user,
                    challenge: p.challenge,
                    initial_balance: p.config.initial_balance,
                    platform: p.platform,
                    phase: p.phase,
                    last_trade_at: p.last_trade_at,
                },
                metrics,
                score,
                rules,
                &input.rules.weights,
                &input.score,
            )
        })
        .collect();
    accounts.sort_by(rank_order);
    let (users, challenges) = group_reports(&accounts, &input.score);
    Ok(Report {
        accounts,
        users,
        challenges,
        skipped_rows: input.skipped_rows,
        duplicate_rows: input.duplicate_rows,
        unlisted_accounts: unlisted,
        rule_weights: input.rules.weights.clone(),
        metrics: input.metrics,
    })
}

/// Who an account is: the identity part of an [`AccountReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct AccountWho {
    /// The login.
    pub account: AccountId,
    /// The owner.
    pub user: UserId,
    /// The challenge, `None` when unknown.
    pub challenge: Option<ChallengeId>,
    /// The balance the curve started from.
    pub initial_balance: Decimal,
    /// The accounts file's `platform`, when given.
    pub platform: Option<String>,
    /// The accounts file's `phase`, when given.
    pub phase: Option<String>,
    /// The latest close time of the account's trades, `None` without trades.
    pub last_trade_at: Option<DateTime<Utc>>,
}

/// One account's line from its parts: the metric score `score` gets the rulebook
/// signals' weights added (capped at 100) and the level of the sum. The report and the
/// signal service ([`crate::signal`]) both build their accounts here.
#[must_use]
pub fn account_report(
    who: AccountWho,
    metrics: TradeMetrics,
    mut score: AccountScore,
    rules: Outcome,
    weights: &RuleWeights,
    config: &ScoreConfig,
) -> AccountReport {
    let (total, level) = rule_score(&score, &rules.signals, weights, config);
    score.score = total;
    score.level = level;
    AccountReport {
        account: who.account,
        user: who.user,
        challenge: who.challenge,
        initial_balance: who.initial_balance,
        platform: who.platform,
        phase: who.phase,
        last_trade_at: who.last_trade_at,
        metrics,
        score,
        rules,
    }
}

/// The report's account order: score descending, then login.
#[must_use]
pub fn rank_order(a: &AccountReport, b: &AccountReport) -> std::cmp::Ordering {
    b.score
        .score
        .cmp(&a.score.score)
        .then_with(|| a.account.cmp(&b.account))
}

/// The users and the (known) challenges of `accounts`, each by score descending, then
/// id: the report's `users` and `challenges`.
#[must_use]
pub fn group_reports<'a>(
    accounts: impl IntoIterator<Item = &'a AccountReport>,
    config: &ScoreConfig,
) -> (Vec<GroupReport>, Vec<GroupReport>) {
    let mut by_user: BTreeMap<&str, Vec<&AccountReport>> = BTreeMap::new();
    let mut by_challenge: BTreeMap<&str, Vec<&AccountReport>> = BTreeMap::new();
    for a in accounts {
        by_user.entry(a.user.as_str()).or_default().push(a);
        if let Some(c) = &a.challenge {
            by_challenge.entry(c.as_str()).or_default().push(a);
        }
    }
    let groups_of = |map: BTreeMap<&str, Vec<&AccountReport>>| {
        let mut out: Vec<GroupReport> = map
            .into_iter()
            .map(|(id, members)| GroupReport {
                id: id.to_owned(),
                score: aggregate(
                    members
                        .iter()
                        .map(|a| (&a.account, &a.score, a.metrics.trades)),
                    config,
                ),
                last_trade_at: members.iter().filter_map(|a| a.last_trade_at).max(),
            })
            .collect();
        out.sort_by(|a, b| {
            b.score
                .score
                .cmp(&a.score.score)
                .then_with(|| a.id.cmp(&b.id))
        });
        out
    };
    (groups_of(by_user), groups_of(by_challenge))
}

/// Trades grouped per account: account `g`'s rule facts are
/// `rules[starts[g]..starts[g + 1]]`, in file order, and `flags` the same trades'
/// stop-loss ([`STOP_LOSS_SET`]) and take-profit ([`TAKE_PROFIT_SET`]) flags, which the
/// metrics need besides.
struct Grouped {
    logins: Vec<AccountId>,
    starts: Vec<usize>,
    flags: Vec<u8>,
    rules: Vec<RuleTrade>,
}

/// A trade of [`Grouped`] has a non-zero stop-loss price.
const STOP_LOSS_SET: u8 = 1;
/// A trade of [`Grouped`] has a non-zero take-profit price.
const TAKE_PROFIT_SET: u8 = 2;

/// `trades` condensed to a batch with P&L on `basis`, logins and symbols numbered in
/// first-seen order; the first trade whose P&L or times the metrics cannot take is the
/// error.
fn batch_of(trades: &[ClosedTrade], basis: PnlBasis) -> Result<TradeBatch, ReportError> {
    let mut batch = TradeBatch::new(basis);
    let mut rows = Vec::with_capacity(trades.len());
    let mut accounts: FastMap<&str, u32> = FastMap::default();
    let mut symbols: FastMap<&str, u32> = FastMap::default();
    fn number<'a>(map: &mut FastMap<&'a str, u32>, name: &'a str) -> (u32, bool) {
        let next = u32::try_from(map.len()).unwrap_or(u32::MAX);
        let n = *map.entry(name).or_insert(next);
        (n, n == next)
    }
    let mut last: Option<(&str, u32)> = None;
    for trade in trades {
        let facts = TradeFacts::of(trade, basis).map_err(|source| ReportError::Metrics {
            account: trade.account.clone(),
            source,
        })?;
        let account = match last {
            Some((name, n)) if name == trade.account.as_str() => n,
            _ => {
                let (n, new) = number(&mut accounts, trade.account.as_str());
                if new {
                    batch.accounts.push(trade.account.clone());
                }
                last = Some((trade.account.as_str(), n));
                n
            }
        };
        let (symbol, new) = number(&mut symbols, trade.symbol.as_str());
        if new {
            batch.symbols.push(trade.symbol.clone());
        }
        rows.push(TradeRow::new(
            facts.opened_at_ns,
            facts.closed_at_ns,
            Some(facts.pnl),
            trade.volume,
            trade.side,
            account,
            symbol,
            facts.stop_loss_set,
            facts.take_profit_set,
        ));
    }
    batch.parts.push(rows);
    Ok(batch)
}

/// Groups the batch's trades per account, in file order within an account.
fn group(batch: &TradeBatch, listed: &[AccountId]) -> Result<Grouped, ReportError> {
    // 1. Group numbers: listed accounts first, then logins in the order the kept trades
    //    first name them (a handle whose trades were all dropped gets none); symbol
    //    numbers in first-seen order too. One pass over the rows, no hashing per row.
    const NONE: u32 = u32::MAX;
    let mut index: FastMap<&str, u32> = FastMap::default();
    let mut logins: Vec<AccountId> = Vec::new();
    for login in listed {
        index.entry(login.as_str()).or_insert_with(|| {
            logins.push(login.clone());
            u32::try_from(logins.len() - 1).unwrap_or(NONE)
        });
    }
    let mut group_of = vec![NONE; batch.accounts.len()];
    let mut symbol_of = vec![NONE; batch.symbols.len()];
    let mut symbols = 0_u32;
    let mut counts = vec![0_usize; logins.len()];
    for row in batch.rows() {
        if row.pnl.is_none() {
            let account = batch.accounts.get(row.account as usize).cloned();
            return Err(ReportError::Metrics {
                account: account.unwrap_or_else(|| AccountId::new("")),
                source: ArithmeticError { what: "net P&L" }.into(),
            });
        }
        let (Some(g), Some(s)) = (
            group_of.get_mut(row.account as usize),
            symbol_of.get_mut(row.symbol as usize),
        ) else {
            return Err(ReportError::Handle);
        };
        if *g == NONE {
            let login = &batch.accounts[row.account as usize];
            *g = *index.entry(login.as_str()).or_insert_with(|| {
                logins.push(login.clone());
                counts.push(0);
                u32::try_from(logins.len() - 1).unwrap_or(NONE)
            });
        }
        if *s == NONE {
            *s = symbols;
            symbols += 1;
        }
        counts[*g as usize] += 1;
    }
    drop(index);

    // 2. Counting sort of the rule facts and flags into each account's contiguous range,
    //    file order kept within an account.
    let mut starts = vec![0_usize; logins.len() + 1];
    for (g, n) in counts.iter().enumerate() {
        starts[g + 1] = starts[g] + n;
    }
    drop(counts);
    let blank_rule = RuleTrade {
        opened_at_ns: 0,
        closed_at_ns: 0,
        pnl: Decimal::ZERO,
        lots: Decimal::ZERO,
        side: risk_core::model::Side::Buy,
        symbol: 0,
    };
    let mut flags = vec![0_u8; batch.len()];
    let mut rules = vec![blank_rule; batch.len()];
    let mut next = starts.clone();
    for row in batch.rows() {
        let g = group_of[row.account as usize] as usize;
        let pnl = row.pnl.unwrap_or_default();
        flags[next[g]] = (u8::from(row.stop_loss_set()) * STOP_LOSS_SET)
            | (u8::from(row.take_profit_set()) * TAKE_PROFIT_SET);
        rules[next[g]] = RuleTrade {
            opened_at_ns: row.opened_at_ns,
            closed_at_ns: row.closed_at_ns,
            pnl,
            lots: row.lots,
            side: row.side(),
            symbol: symbol_of[row.symbol as usize],
        };
        next[g] += 1;
    }
    Ok(Grouped {
        logins,
        starts,
        flags,
        rules,
    })
}

/// Each account's rule facts (account `g`'s are `rules[starts[g]..starts[g + 1]]`) put
/// in close-time order once (the rules and the martingale detector read them as they
/// are), the accounts split over `slices` threads (the result does not depend on it).
fn sort_accounts(rules: &mut [RuleTrade], starts: &[usize], slices: usize) {
    let accounts = starts.len().saturating_sub(1);
    let per = rules.len().div_ceil(slices.max(1)).max(1);
    let mut rest: &mut [RuleTrade] = rules;
    let mut chunks: Vec<(&mut [RuleTrade], &[usize])> = Vec::new();
    let (mut from, mut taken) = (0_usize, 0_usize);
    for g in 0..accounts {
        let end = starts[g + 1];
        if end - taken >= per || g + 1 == accounts {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(end - taken);
            chunks.push((head, &starts[from..=g + 1]));
            rest = tail;
            (from, taken) = (g + 1, end);
        }
    }
    std::thread::scope(|s| {
        for (slice, bounds) in chunks {
            s.spawn(move || {
                let base = bounds[0];
                for w in bounds.windows(2) {
                    sort_close_order(&mut slice[w[0] - base..w[1] - base]);
                }
            });
        }
    });
}

/// One account's work: who it is and its settings.
struct Plan {
    account: AccountId,
    user: UserId,
    challenge: Option<ChallengeId>,
    platform: Option<String>,
    phase: Option<String>,
    last_trade_at: Option<DateTime<Utc>>,
    config: MetricsConfig,
}

/// Batch metrics and score of every account (account `g`'s trades are
/// `rules[starts[g]..starts[g + 1]]` with `flags`, in file order), spread over the cores.
fn compute_parallel(
    plan: &[Plan],
    rules: &[RuleTrade],
    flags: &[u8],
    starts: &[usize],
    score: &ScoreConfig,
) -> Result<Vec<(TradeMetrics, AccountScore)>, ReportError> {
    // The account's facts, in file order, are laid out in a buffer that each worker
    // reuses from one account to the next.
    let one = |facts: &mut Vec<TradeFacts>, (g, p): (usize, &Plan)| {
        let (from, to) = (starts[g], starts[g + 1]);
        facts.clear();
        facts.extend(
            rules[from..to]
                .iter()
                .zip(&flags[from..to])
                .map(|(t, &f)| TradeFacts {
                    opened_at_ns: t.opened_at_ns,
                    closed_at_ns: t.closed_at_ns,
                    pnl: t.pnl,
                    stop_loss_set: f & STOP_LOSS_SET != 0,
                    take_profit_set: f & TAKE_PROFIT_SET != 0,
                }),
        );
        let metrics = TradeMetrics::compute_facts(facts, &p.config).map_err(|source| {
            ReportError::Metrics {
                account: p.account.clone(),
                source,
            }
        })?;
        let scored = score_account(&metrics, score);
        Ok((metrics, scored))
    };
    if plan.len() < 256 {
        let mut facts = Vec::new();
        return plan
            .iter()
            .enumerate()
            .map(|p| one(&mut facts, p))
            .collect();
    }
    // On rayon's pool, which balances accounts of unequal size by work stealing. The
    // results are collected in plan order and the first error in that order is returned,
    // as a sequential pass would.
    let computed: Vec<Result<_, ReportError>> = plan
        .par_iter()
        .enumerate()
        .map_init(Vec::new, one)
        .collect();
    computed.into_iter().collect()
}

/// A decimal as a float, for rendering (NaN if it has none).
pub(super) fn num(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::csv_input::{read_accounts, read_trades};

    const HEADER: &str = ",identifier,action,reason,open_price,close_price,commission,lot_size,opened_at,closed_at,pips,price_sl,price_tp,profit,swap,symbol,contract_size,profit_rate,platform,trading_account_login\n";

    fn row(id: u32, login: &str, opened: &str, closed: &str, profit: &str, sl: &str) -> String {
        format!("0,{id},0,,1.1,1.2,0,0.1,2025-05-05 {opened},2025-05-05 {closed},1,{sl},,{profit},0,EURUSD,1,1,0,{login}\n")
    }

    fn sample() -> Vec<ClosedTrade> {
        let rows = [
            row(1, "A", "10:00:00", "10:00:30", "-600", ""),
            row(2, "A", "10:00:10", "11:00:00", "100", ""),
            row(3, "B", "10:00:00", "12:00:00", "50", "1.0"),
            row(4, "C", "10:00:00", "12:00:00", "-5", "1.0"),
        ];
        let text = format!("{HEADER}{}", rows.concat());
        read_trades(text.as_bytes(), "t.csv", |_| {})
            .unwrap()
            .trades
    }

    #[test]
    fn grouping_orders_listed_logins_first_and_sorting_does_not_depend_on_the_slicing() {
        let mut trades = sample();
        for k in 0..40 {
            let mut t = trades[k % 4].clone();
            t.account = AccountId::new(["A", "B", "C", "E", "F"][k % 5]);
            trades.push(t);
        }
        let listed = [AccountId::new("F"), AccountId::new("Z")];
        let batch = batch_of(&trades, PnlBasis::Net).unwrap();
        let mut one = group(&batch, &listed).unwrap();
        let unsorted = one.rules.clone();
        sort_accounts(&mut one.rules, &one.starts, 1);
        for slices in 2..=7 {
            let mut many = unsorted.clone();
            sort_accounts(&mut many, &one.starts, slices);
            assert_eq!(many, one.rules, "{slices} slices");
        }
        let order: Vec<_> = one.logins.iter().map(|l| l.as_str()).collect();
        assert_eq!(order, ["F", "Z", "A", "B", "C", "E"]);
    }

    #[test]
    fn without_accounts_file_each_login_is_its_own_user() {
        let trades = sample();
        let input = ReportInput {
            skipped_rows: 2,
            duplicate_rows: 1,
            ..ReportInput::default()
        };
        let report = build_report(&trades, &input).unwrap();
        assert_eq!(report.accounts.len(), 3);
        assert_eq!(report.users.len(), 3);
        assert!(report.challenges.is_empty());
        let a = report
            .accounts
            .iter()
            .find(|a| a.account.as_str() == "A")
            .unwrap();
        assert_eq!(a.user.as_str(), "A");
        assert_eq!(a.challenge, None);
        assert_eq!(a.metrics.trades, 2);
        assert_eq!(a.metrics.max_concurrent_trades, 2);
        assert_eq!(a.metrics.hft_trades, 1);
        assert_eq!(a.initial_balance, Decimal::from(100_000));
        let mut json = Vec::new();
        write_json(&report, &mut json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            (v["skipped_rows"].as_u64(), v["duplicate_rows"].as_u64()),
            (Some(2), Some(1))
        );
        let b = v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account_login"] == "B")
            .unwrap();
        assert!(b["profit_factor"].is_null());
        assert_eq!(b["stop_loss_ratio"].as_f64(), Some(1.0));
    }

    #[test]
    fn accounts_file_groups_users_and_challenges_and_sets_balances() {
        let trades = sample();
        let accounts = read_accounts(
            "login,user_id,challenge_id,initial_balance\nA,u1,c1,1000\nB,u1,c2,\nD,u2,c1,\n"
                .as_bytes(),
            "a.csv",
        )
        .unwrap();
        let input = ReportInput {
            accounts: Some(&accounts),
            ..ReportInput::default()
        };
        let report = build_report(&trades, &input).unwrap();
        // A, B, D listed (D without trades), C unlisted.
        assert_eq!(report.accounts.len(), 4);
        assert_eq!(report.unlisted_accounts, 1);
        let find = |l: &str| {
            report
                .accounts
                .iter()
                .find(|a| a.account.as_str() == l)
                .unwrap()
        };
        assert_eq!(find("D").metrics.trades, 0);
        assert_eq!(find("C").user.as_str(), "C");
        let a = find("A");
        assert_eq!(a.initial_balance, Decimal::from(1000));
        // 1,000 -> 400: a 60 % drawdown and a 60 % daily loss on a 1,000 balance.
        assert_eq!(a.metrics.max_relative_drawdown, Decimal::new(6, 1));
        assert!(a
            .score
            .signals
            .iter()
            .any(|s| s.kind == risk_core::score::SignalKind::Drawdown));
        assert_eq!(report.accounts[0].account.as_str(), "A", "riskiest first");
        let u1 = report.users.iter().find(|u| u.id == "u1").unwrap();
        assert_eq!(u1.score.accounts.len(), 2);
        assert_eq!(u1.score.score, a.score.score);
        let ids: Vec<_> = report.challenges.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c1", "c2"]);
        let mut table = Vec::new();
        write_table(&report, &mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(table.contains("CHALLENGES (2)"));
        assert!(table.lines().all(|l| l == l.trim_end()));
    }

    /// The report from the batch reader equals the report from the trades, to the byte of
    /// its JSON: the planted sample (rulebook signals of every kind, malformed and repeated
    /// rows), with and without the accounts file, on both P&L bases, with and without a
    /// window, read on one thread and on three.
    #[cfg(feature = "cli")] // the sample generator
    #[test]
    fn the_batch_report_is_the_trades_report() {
        use crate::csv_input::{read_trade_batch_parallel, CsvLimits};
        use crate::report_config::ReportConfig;
        use crate::sample::{generate_planted, SampleConfig, PLANTED_RULEBOOK};
        let (mut text, mut accounts, mut planted) = (Vec::new(), Vec::new(), Vec::new());
        let config = SampleConfig {
            trades: 4_000,
            ..SampleConfig::default()
        };
        generate_planted(&config, &mut text, &mut accounts, &mut planted).unwrap();
        let accounts = read_accounts(accounts.as_slice(), "a.csv").unwrap();
        let file = read_trades(text.as_slice(), "t.csv", |_| {}).unwrap();
        assert!(file.skipped_rows > 0 && file.duplicate_rows > 0);
        let rules = ReportConfig::from_file_text(PLANTED_RULEBOOK, std::path::Path::new("r.toml"))
            .unwrap()
            .rules;
        for basis in [PnlBasis::Net, PnlBasis::Gross] {
            for window in [None, std::num::NonZeroU32::new(7)] {
                for listed in [None, Some(&accounts)] {
                    let input = ReportInput {
                        accounts: listed,
                        metrics: MetricsConfig {
                            pnl_basis: basis,
                            window_size: window,
                            ..MetricsConfig::default()
                        },
                        rules: rules.clone(),
                        ..ReportInput::default()
                    };
                    let expected = build_report(&file.trades, &input).unwrap();
                    assert!(expected
                        .accounts
                        .iter()
                        .any(|a| !a.rules.signals.is_empty()));
                    let mut expected_json = Vec::new();
                    write_json(&expected, &mut expected_json).unwrap();
                    for workers in [1, 3] {
                        let read = read_trade_batch_parallel(
                            &text,
                            "t.csv",
                            workers,
                            basis,
                            CsvLimits::default(),
                            |_| {},
                        )
                        .unwrap();
                        let report = build_report_batch(read.batch, &input).unwrap();
                        assert!(report == expected, "{basis} {window:?} {workers}");
                        let mut json = Vec::new();
                        write_json(&report, &mut json).unwrap();
                        assert!(json == expected_json);
                    }
                }
            }
        }
    }

    /// A batch on another P&L basis than the report's is refused; a net P&L that does
    /// not fit is the same error from the batch as from the trades.
    #[test]
    fn a_batch_on_another_basis_or_with_a_bad_pnl_is_an_error() {
        let trades = sample();
        let gross = batch_of(&trades, PnlBasis::Gross).unwrap();
        let err = build_report_batch(gross, &ReportInput::default()).unwrap_err();
        assert!(matches!(err, ReportError::Basis { .. }), "{err}");

        let mut trades = sample();
        trades[2].profit = Decimal::MAX;
        trades[2].commission = Decimal::ONE;
        let from_trades = build_report(&trades, &ReportInput::default()).unwrap_err();
        let mut batch = batch_of(&sample(), PnlBasis::Net).unwrap();
        batch.parts[0][2].pnl = None;
        let from_batch = build_report_batch(batch, &ReportInput::default()).unwrap_err();
        assert_eq!(from_batch.to_string(), from_trades.to_string());
        assert!(
            from_batch.to_string().starts_with("account B: "),
            "{from_batch}"
        );
    }
}
