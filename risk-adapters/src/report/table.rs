//! The report as a table for a terminal.

use std::io::{self, Write};

use risk_core::ids::ChallengeId;
use risk_core::metrics::PnlBasis;
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
/// then the user and challenge sections, then the row counts, and the P&L basis and the
/// window when they are not the defaults (net, whole history).
/// The PLATFORM and PHASE columns appear when the accounts file gave either.
///
/// # Errors
/// Any error of `out`.
pub fn write_table<W: Write>(report: &Report, mut out: W) -> io::Result<()> {
    let attributes = report
        .accounts
        .iter()
        .any(|a| a.platform.is_some() || a.phase.is_some());
    let attribute_cells = |platform: &str, phase: &str| {
        if attributes {
            format!("{:<8} {:<8} ", cut(platform, 8), cut(phase, 8))
        } else {
            String::new()
        }
    };
    writeln!(out, "ACCOUNTS ({})", report.accounts.len())?;
    writeln!(
        out,
        "{:<14} {:<12} {:<10} {}{:>6} {:>6} {:>6} {:>7} {:>6} {:>6} {:>5} {:>4} {:>10} {:>6} {:<8} {:<6}  SIGNALS",
        "LOGIN", "USER", "CHALLENGE", attribute_cells("PLATFORM", "PHASE"), "TRADES", "WIN%", "PF", "MAXDD%", "SL%", "TP%", "HFT", "CONC", "NET", "SCORE", "LEVEL", "STATUS"
    )?;
    for a in &report.accounts {
        let m = &a.metrics;
        let signals: Vec<&str> = a
            .score
            .signals
            .iter()
            .map(|s| s.kind.as_str())
            .chain(a.rules.signals.iter().map(|s| s.kind.as_str()))
            .collect();
        let line = format!(
            "{:<14} {:<12} {:<10} {}{:>6} {:>6} {:>6} {:>7} {:>6} {:>6} {:>5} {:>4} {:>10} {:>6} {:<8} {:<6}  {}",
            cut(a.account.as_str(), 14),
            cut(a.user.as_str(), 12),
            cut(a.challenge.as_ref().map_or("-", ChallengeId::as_str), 10),
            attribute_cells(
                a.platform.as_deref().unwrap_or("-"),
                a.phase.as_deref().unwrap_or("-")
            ),
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
            a.rules.status.as_str(),
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
        "{trades} {}, {} accounts, {} users, {} challenges; skipped rows: {}, duplicate rows: {}",
        if report.metrics.window_size.is_some() {
            "trades in the windows"
        } else {
            "trades"
        },
        report.accounts.len(),
        report.users.len(),
        report.challenges.len(),
        report.skipped_rows,
        report.duplicate_rows
    )?;
    if report.metrics.pnl_basis != PnlBasis::Net || report.metrics.window_size.is_some() {
        writeln!(
            out,
            "P&L basis: {}; metrics over {}",
            report.metrics.pnl_basis,
            report.metrics.window_size.map_or_else(
                || "the whole history".to_owned(),
                |n| format!("the last {n} trades of each account (challenge rules: all trades)")
            )
        )?;
    }
    Ok(())
}
