//! The report as JSON: the contract described in the [report module](super) docs.

use std::collections::BTreeMap;
use std::io::{self, Write};

use rayon::prelude::*;
use risk_core::hash::HashMap as FastMap;
use risk_core::ids::{AccountId, ChallengeId};
use risk_core::rulebook::{RuleSignal, RuleWeights};
use risk_core::Decimal;
use serde::Serialize;

use super::{num, AccountReport, GroupReport, Report};

fn opt(d: Option<Decimal>) -> Option<f64> {
    d.map(num)
}

#[derive(Serialize)]
struct JsonSignal<'a> {
    kind: &'a str,
    severity: &'a str,
    contribution: f64,
    observed: f64,
    threshold: f64,
    /// Rulebook signals only: when it first happened (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<String>,
    /// Rulebook signals only: the value (= `observed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
    /// Rulebook signals only: the limit (= `threshold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<f64>,
    /// Rulebook signals only: the other accounts involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    related_accounts: Option<Vec<&'a str>>,
}

fn json_rule_signal<'a>(s: &'a RuleSignal, weights: &RuleWeights) -> JsonSignal<'a> {
    JsonSignal {
        kind: s.kind.as_str(),
        severity: weights.severity(s.kind).as_str(),
        contribution: num(weights.of(s.kind)),
        observed: num(s.value),
        threshold: num(s.limit),
        at: Some(rfc3339(s.at)),
        value: Some(num(s.value)),
        limit: Some(num(s.limit)),
        related_accounts: Some(s.related.iter().map(AccountId::as_str).collect()),
    }
}

/// A time as RFC 3339 in UTC (`Z`), fractional seconds only when there are any.
pub(super) fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[derive(Serialize)]
struct JsonAccount<'a> {
    account_login: &'a str,
    user_id: &'a str,
    challenge_id: Option<&'a str>,
    platform: Option<&'a str>,
    phase: Option<&'a str>,
    last_trade_at: Option<String>,
    trades: u64,
    win_ratio: f64,
    profit_factor: Option<f64>,
    max_relative_drawdown: f64,
    stop_loss_ratio: f64,
    take_profit_ratio: f64,
    hft_trades: u64,
    max_concurrent_trades: u64,
    risk_score: f64,
    risk_level: &'a str,
    signals: Vec<JsonSignal<'a>>,
    status: &'a str,
    first_breach: Option<JsonSignal<'a>>,
    passed_at: Option<String>,
    wins: u64,
    losses: u64,
    break_even: u64,
    gross_profit: f64,
    gross_loss: f64,
    net_profit: f64,
    average_win: Option<f64>,
    average_loss: Option<f64>,
    expectancy: Option<f64>,
    largest_win: Option<f64>,
    largest_loss: Option<f64>,
    max_consecutive_losses: u64,
    average_holding_seconds: Option<f64>,
    hft_ratio: f64,
    stop_loss_trades: u64,
    take_profit_trades: u64,
    initial_balance: f64,
    final_balance: f64,
    max_drawdown: f64,
    max_daily_loss: f64,
    max_daily_loss_ratio: f64,
    max_daily_loss_day: Option<String>,
}

#[derive(Serialize)]
struct JsonMember<'a> {
    account_login: &'a str,
    trades: u64,
    risk_score: f64,
    risk_level: &'a str,
}

#[derive(Serialize)]
struct JsonGroup<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    challenge_id: Option<&'a str>,
    risk_score: f64,
    risk_level: &'a str,
    trades: u64,
    last_trade_at: Option<String>,
    account_count: usize,
    flagged_accounts: u64,
    signal_counts: BTreeMap<&'a str, u64>,
    status_counts: BTreeMap<&'a str, u64>,
    accounts: Vec<JsonMember<'a>>,
}

fn json_account<'a>(a: &'a AccountReport, weights: &RuleWeights) -> JsonAccount<'a> {
    let m = &a.metrics;
    JsonAccount {
        account_login: a.account.as_str(),
        user_id: a.user.as_str(),
        challenge_id: a.challenge.as_ref().map(ChallengeId::as_str),
        platform: a.platform.as_deref(),
        phase: a.phase.as_deref(),
        last_trade_at: a.last_trade_at.map(rfc3339),
        trades: m.trades,
        win_ratio: num(m.win_ratio),
        profit_factor: opt(m.profit_factor),
        max_relative_drawdown: num(m.max_relative_drawdown),
        stop_loss_ratio: num(m.stop_loss_ratio),
        take_profit_ratio: num(m.take_profit_ratio),
        hft_trades: m.hft_trades,
        max_concurrent_trades: m.max_concurrent_trades,
        risk_score: num(a.score.score),
        risk_level: a.score.level.as_str(),
        signals: a
            .score
            .signals
            .iter()
            .map(|s| JsonSignal {
                kind: s.kind.as_str(),
                severity: s.severity.as_str(),
                contribution: num(s.contribution),
                observed: num(s.observed),
                threshold: num(s.threshold),
                at: None,
                value: None,
                limit: None,
                related_accounts: None,
            })
            .chain(a.rules.signals.iter().map(|s| json_rule_signal(s, weights)))
            .collect(),
        status: a.rules.status.as_str(),
        first_breach: a
            .rules
            .first_breach
            .as_ref()
            .map(|s| json_rule_signal(s, weights)),
        passed_at: a.rules.passed_at.map(rfc3339),
        wins: m.wins,
        losses: m.losses,
        break_even: m.break_even,
        gross_profit: num(m.gross_profit),
        gross_loss: num(m.gross_loss),
        net_profit: num(m.net_profit),
        average_win: opt(m.average_win),
        average_loss: opt(m.average_loss),
        expectancy: opt(m.expectancy),
        largest_win: opt(m.largest_win),
        largest_loss: opt(m.largest_loss),
        max_consecutive_losses: m.max_consecutive_losses,
        average_holding_seconds: opt(m.average_holding_seconds),
        hft_ratio: num(m.hft_ratio),
        stop_loss_trades: m.stop_loss_trades,
        take_profit_trades: m.take_profit_trades,
        initial_balance: num(a.initial_balance),
        final_balance: num(m.final_balance),
        max_drawdown: num(m.max_drawdown),
        max_daily_loss: num(m.max_daily_loss),
        max_daily_loss_ratio: num(m.max_daily_loss_ratio),
        max_daily_loss_day: m.max_daily_loss_day.map(|d| d.to_string()),
    }
}

fn json_group<'a>(
    g: &'a GroupReport,
    is_user: bool,
    by_login: &FastMap<&str, &'a AccountReport>,
) -> JsonGroup<'a> {
    let s = &g.score;
    let mut signal_counts: BTreeMap<&str, u64> = s
        .signal_counts
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    let mut status_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for member in &s.accounts {
        if let Some(a) = by_login.get(member.account.as_str()) {
            *status_counts.entry(a.rules.status.as_str()).or_default() += 1;
            let mut kinds: Vec<&str> = a.rules.signals.iter().map(|x| x.kind.as_str()).collect();
            kinds.dedup();
            for k in kinds {
                *signal_counts.entry(k).or_default() += 1;
            }
        }
    }
    JsonGroup {
        user_id: is_user.then_some(g.id.as_str()),
        challenge_id: (!is_user).then_some(g.id.as_str()),
        risk_score: num(s.score),
        risk_level: s.level.as_str(),
        trades: s.trades,
        last_trade_at: g.last_trade_at.map(rfc3339),
        account_count: s.accounts.len(),
        flagged_accounts: s.flagged_accounts,
        signal_counts,
        status_counts,
        accounts: s
            .accounts
            .iter()
            .map(|a| JsonMember {
                account_login: a.account.as_str(),
                trades: a.trades,
                risk_score: num(a.score),
                risk_level: a.level.as_str(),
            })
            .collect(),
    }
}

/// One account object of the JSON contract (an element of `accounts`) as compact JSON
/// text, keys in the report's order; `weights` are the rulebook signals' weights (their
/// `contribution`).
#[must_use]
pub fn account_object(account: &AccountReport, weights: &RuleWeights) -> String {
    serde_json::to_string(&json_account(account, weights)).unwrap_or_default()
}

/// One user object (`user: true`, an element of `users`) or challenge object (an element
/// of `challenges`) of the JSON contract as compact JSON text, keys in the report's order.
/// `member` lists its accounts (their rule status and rulebook signals are counted).
#[must_use]
pub fn group_object<'a>(
    group: &'a GroupReport,
    user: bool,
    member: impl IntoIterator<Item = &'a AccountReport>,
) -> String {
    let by_login: FastMap<&str, &AccountReport> = member
        .into_iter()
        .map(|a| (a.account.as_str(), a))
        .collect();
    serde_json::to_string(&json_group(group, user, &by_login)).unwrap_or_default()
}

/// The scalar fields that close the report object, after its three arrays.
#[derive(Serialize)]
struct JsonTail {
    skipped_rows: u64,
    duplicate_rows: u64,
    unlisted_accounts: u64,
    pnl_basis: &'static str,
    window_size: Option<u32>,
}

/// Elements rendered at a time by [`write_array`]: enough to keep every core busy, few
/// enough that the rendered text of a block stays small beside the report.
const BLOCK: usize = 1024;

/// Writes `items` as the pretty-printed JSON array of a top-level field (two spaces in),
/// as `serde_json::to_writer_pretty` writes it: each element pretty-printed on its own
/// (`render`), a block at a time on all cores, then indented to its depth (a JSON string
/// holds no raw line break, so every line break in an element's text is the printer's).
fn write_array<T: Sync>(
    out: &mut impl Write,
    items: &[T],
    render: impl Fn(&T) -> serde_json::Result<Vec<u8>> + Sync,
) -> io::Result<()> {
    if items.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    for (k, block) in items.chunks(BLOCK).enumerate() {
        let texts: Vec<Vec<u8>> = block.par_iter().map(&render).collect::<Result<_, _>>()?;
        for (i, text) in texts.iter().enumerate() {
            out.write_all(if k == 0 && i == 0 {
                b"\n    "
            } else {
                b",\n    "
            })?;
            let mut at = 0;
            for nl in memchr::memchr_iter(b'\n', text) {
                out.write_all(&text[at..=nl])?;
                out.write_all(b"    ")?;
                at = nl + 1;
            }
            out.write_all(&text[at..])?;
        }
    }
    out.write_all(b"\n  ]")
}

/// Writes the report as the JSON contract (see the [module documentation](crate::report)).
///
/// # Errors
/// Any error of `out`.
pub fn write_json<W: Write>(report: &Report, out: W) -> io::Result<()> {
    let by_login: FastMap<&str, &AccountReport> = report
        .accounts
        .iter()
        .map(|a| (a.account.as_str(), a))
        .collect();
    let weights = &report.rule_weights;
    let mut out = out;
    out.write_all(b"{\n  \"accounts\": ")?;
    write_array(&mut out, &report.accounts, |a| {
        serde_json::to_vec_pretty(&json_account(a, weights))
    })?;
    out.write_all(b",\n  \"users\": ")?;
    write_array(&mut out, &report.users, |g| {
        serde_json::to_vec_pretty(&json_group(g, true, &by_login))
    })?;
    out.write_all(b",\n  \"challenges\": ")?;
    write_array(&mut out, &report.challenges, |g| {
        serde_json::to_vec_pretty(&json_group(g, false, &by_login))
    })?;
    let tail = serde_json::to_vec_pretty(&JsonTail {
        skipped_rows: report.skipped_rows,
        duplicate_rows: report.duplicate_rows,
        unlisted_accounts: report.unlisted_accounts,
        pnl_basis: report.metrics.pnl_basis.as_str(),
        window_size: report.metrics.window_size.map(std::num::NonZeroU32::get),
    })?;
    // The tail object's fields, after its opening brace, close the report object.
    out.write_all(b",")?;
    out.write_all(tail.get(1..).unwrap_or_default())?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Serialize)]
    struct Item {
        name: String,
        values: Vec<f64>,
        nested: Vec<BTreeMap<String, u64>>,
        text: Option<String>,
    }

    fn item(i: usize) -> Item {
        Item {
            name: format!("item \"{i}\"\nwith a line break"),
            values: (0..i % 3).map(|v| v as f64 / 3.0).collect(),
            nested: (0..i % 2)
                .map(|k| BTreeMap::from([(format!("k{k}"), i as u64)]))
                .collect(),
            text: i.is_multiple_of(2).then(|| "x".to_owned()),
        }
    }

    /// A top-level array written by `write_array` is the text serde_json's pretty printer
    /// writes for the whole object, for no element, one, several, and more than a block.
    #[test]
    fn arrays_print_as_the_pretty_printer_does() {
        #[derive(Serialize)]
        struct Whole {
            first: Vec<Item>,
            second: Vec<Item>,
        }
        for n in [0, 1, 2, 5, BLOCK + 3] {
            let items: Vec<Item> = (0..n).map(item).collect();
            let expected = serde_json::to_string_pretty(&Whole {
                first: (0..n).map(item).collect(),
                second: (0..n.min(2)).map(item).collect(),
            })
            .unwrap();
            let mut out = b"{\n  \"first\": ".to_vec();
            write_array(&mut out, &items, serde_json::to_vec_pretty).unwrap();
            out.extend_from_slice(b",\n  \"second\": ");
            write_array(&mut out, &items[..n.min(2)], serde_json::to_vec_pretty).unwrap();
            out.extend_from_slice(b"\n}");
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{n} elements");
        }
    }
}
