//! The report as JSON: the contract described in the [report module](super) docs.

use std::collections::BTreeMap;
use std::io::{self, Write};

use risk_core::ids::ChallengeId;
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
}

#[derive(Serialize)]
struct JsonAccount<'a> {
    account_login: &'a str,
    user_id: &'a str,
    challenge_id: Option<&'a str>,
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
    account_count: usize,
    flagged_accounts: u64,
    signal_counts: BTreeMap<&'a str, u64>,
    accounts: Vec<JsonMember<'a>>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    accounts: Vec<JsonAccount<'a>>,
    users: Vec<JsonGroup<'a>>,
    challenges: Vec<JsonGroup<'a>>,
    skipped_rows: u64,
    duplicate_rows: u64,
    unlisted_accounts: u64,
}

fn json_account(a: &AccountReport) -> JsonAccount<'_> {
    let m = &a.metrics;
    JsonAccount {
        account_login: a.account.as_str(),
        user_id: a.user.as_str(),
        challenge_id: a.challenge.as_ref().map(ChallengeId::as_str),
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
            })
            .collect(),
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

fn json_group(g: &GroupReport, is_user: bool) -> JsonGroup<'_> {
    let s = &g.score;
    JsonGroup {
        user_id: is_user.then_some(g.id.as_str()),
        challenge_id: (!is_user).then_some(g.id.as_str()),
        risk_score: num(s.score),
        risk_level: s.level.as_str(),
        trades: s.trades,
        account_count: s.accounts.len(),
        flagged_accounts: s.flagged_accounts,
        signal_counts: s
            .signal_counts
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect(),
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

/// Writes the report as the JSON contract (see the [module documentation](crate::report)).
///
/// # Errors
/// Any error of `out`.
pub fn write_json<W: Write>(report: &Report, out: W) -> io::Result<()> {
    let json = JsonReport {
        accounts: report.accounts.iter().map(json_account).collect(),
        users: report.users.iter().map(|g| json_group(g, true)).collect(),
        challenges: report
            .challenges
            .iter()
            .map(|g| json_group(g, false))
            .collect(),
        skipped_rows: report.skipped_rows,
        duplicate_rows: report.duplicate_rows,
        unlisted_accounts: report.unlisted_accounts,
    };
    let mut out = out;
    serde_json::to_writer_pretty(&mut out, &json)?;
    writeln!(out)
}
