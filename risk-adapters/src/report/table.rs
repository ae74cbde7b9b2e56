//! The report as a table for a terminal.

use std::io::{self, Write};

use risk_core::ids::ChallengeId;
use risk_core::Decimal;

use super::{num, Report};

fn pct(d: Decimal) -> String {
    format!("{:.1}", num(d) * 100.0)
}

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('~');
        t
    }
}

/// Writes the report as a table for a terminal: one row per account (riskiest first),
/// then the user and challenge sections, then the row counts.
///
/// # Errors
/// Any error of `out`.
pub fn write_table<W: Write>(report: &Report, mut out: W) -> io::Result<()> {
    writeln!(out, "ACCOUNTS ({})", report.accounts.len())?;
    writeln!(
        out,
        "{:<14} {:<12} {:<10} {:>6} {:>6} {:>6} {:>7} {:>6} {:>6} {:>5} {:>4} {:>10} {:>6} {:<8}  SIGNALS",
        "LOGIN", "USER", "CHALLENGE", "TRADES", "WIN%", "PF", "MAXDD%", "SL%", "TP%", "HFT", "CONC", "NET", "SCORE", "LEVEL"
    )?;
    for a in &report.accounts {
        let m = &a.metrics;
        let signals: Vec<&str> = a.score.signals.iter().map(|s| s.kind.as_str()).collect();
        let line = format!(
            "{:<14} {:<12} {:<10} {:>6} {:>6} {:>6} {:>7} {:>6} {:>6} {:>5} {:>4} {:>10} {:>6} {:<8}  {}",
            cut(a.account.as_str(), 14),
            cut(a.user.as_str(), 12),
            cut(a.challenge.as_ref().map_or("-", ChallengeId::as_str), 10),
            m.trades,
            pct(m.win_ratio),
            m.profit_factor.map_or_else(|| "-".to_owned(), |p| format!("{:.2}", num(p))),
            pct(m.max_relative_drawdown),
            pct(m.stop_loss_ratio),
            pct(m.take_profit_ratio),
            m.hft_trades,
            m.max_concurrent_trades,
            format!("{:.2}", num(m.net_profit)),
            format!("{:.1}", num(a.score.score)),
            a.score.level.as_str(),
            signals.join(", "),
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    for (title, groups) in [("USERS", &report.users), ("CHALLENGES", &report.challenges)] {
        writeln!(out)?;
        writeln!(out, "{title} ({})", groups.len())?;
        writeln!(
            out,
            "{:<14} {:>8} {:>8} {:>8} {:>6} {:<8}  RISKIEST ACCOUNTS",
            "ID", "ACCOUNTS", "FLAGGED", "TRADES", "SCORE", "LEVEL"
        )?;
        for g in groups {
            let s = &g.score;
            let top: Vec<String> = s
                .accounts
                .iter()
                .take(3)
                .map(|a| format!("{} ({:.1})", a.account, num(a.score)))
                .collect();
            let line = format!(
                "{:<14} {:>8} {:>8} {:>8} {:>6} {:<8}  {}",
                cut(&g.id, 14),
                s.accounts.len(),
                s.flagged_accounts,
                s.trades,
                format!("{:.1}", num(s.score)),
                s.level.as_str(),
                top.join(", "),
            );
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    let trades: u64 = report.accounts.iter().map(|a| a.metrics.trades).sum();
    writeln!(out)?;
    writeln!(
        out,
        "{trades} trades, {} accounts, {} users, {} challenges; skipped rows: {}, duplicate rows: {}",
        report.accounts.len(),
        report.users.len(),
        report.challenges.len(),
        report.skipped_rows,
        report.duplicate_rows
    )
}
