//! The report as CSV: one row per account, decimals written exactly.

use std::io::{self, Write};

use risk_core::Decimal;

use super::Report;

/// Writes one CSV row per account: the flat metrics, score, level and the fired signals
/// as `KIND:SEVERITY` joined by `;`. Decimals are written exactly.
///
/// # Errors
/// Any error of `out`.
pub fn write_csv<W: Write>(report: &Report, out: W) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "account_login",
        "user_id",
        "challenge_id",
        "trades",
        "wins",
        "losses",
        "break_even",
        "win_ratio",
        "profit_factor",
        "gross_profit",
        "gross_loss",
        "net_profit",
        "expectancy",
        "max_relative_drawdown",
        "max_drawdown",
        "max_daily_loss",
        "max_daily_loss_ratio",
        "stop_loss_ratio",
        "take_profit_ratio",
        "hft_trades",
        "max_concurrent_trades",
        "max_consecutive_losses",
        "average_holding_seconds",
        "risk_score",
        "risk_level",
        "signals",
    ])?;
    let s = |d: Decimal| d.normalize().to_string();
    let o = |d: Option<Decimal>| d.map(|d| d.normalize().to_string()).unwrap_or_default();
    for a in &report.accounts {
        let m = &a.metrics;
        let signals: Vec<String> = a
            .score
            .signals
            .iter()
            .map(|x| format!("{}:{}", x.kind, x.severity))
            .collect();
        w.write_record([
            a.account.as_str().to_owned(),
            a.user.as_str().to_owned(),
            a.challenge
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            m.trades.to_string(),
            m.wins.to_string(),
            m.losses.to_string(),
            m.break_even.to_string(),
            s(m.win_ratio),
            o(m.profit_factor),
            s(m.gross_profit),
            s(m.gross_loss),
            s(m.net_profit),
            o(m.expectancy),
            s(m.max_relative_drawdown),
            s(m.max_drawdown),
            s(m.max_daily_loss),
            s(m.max_daily_loss_ratio),
            s(m.stop_loss_ratio),
            s(m.take_profit_ratio),
            m.hft_trades.to_string(),
            m.max_concurrent_trades.to_string(),
            m.max_consecutive_losses.to_string(),
            o(m.average_holding_seconds),
            s(a.score.score),
            a.score.level.as_str().to_owned(),
            signals.join(";"),
        ])?;
    }
    w.flush()
}
