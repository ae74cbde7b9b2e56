//! The report as CSV: one row per account, decimals written exactly.

use std::io::{self, Write};

use risk_core::metrics::{TradeMetrics, TradeValue};

use super::Report;

/// The `TradeMetrics` fields the CSV carries, in column order (a fixed contract: a subset
/// of [`TradeMetrics::fields`], whose values fill them).
const METRIC_COLUMNS: [&str; 20] = [
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
];

/// A metric cell: counts as integers, decimals written exactly, empty where undefined.
fn cell(value: Option<TradeValue>) -> String {
    match value {
        Some(TradeValue::Count(n)) => n.to_string(),
        Some(TradeValue::Decimal(d)) => d.normalize().to_string(),
        Some(TradeValue::Day(day)) => day.to_string(),
        None => String::new(),
    }
}

/// Writes one CSV row per account: the flat metrics, score, level and the fired signals
/// as `KIND:SEVERITY` joined by `;`, the challenge status and first breach, then the
/// accounts file's `platform` and `phase` and `last_trade_at` (RFC 3339; empty cells
/// where unknown). Decimals are written exactly.
///
/// # Errors
/// Any error of `out`.
pub fn write_csv<W: Write>(report: &Report, out: W) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let head = ["account_login", "user_id", "challenge_id"];
    let tail = [
        "risk_score",
        "risk_level",
        "signals",
        "status",
        "first_breach",
        "first_breach_at",
        "platform",
        "phase",
        "last_trade_at",
    ];
    w.write_record(head.iter().chain(&METRIC_COLUMNS).chain(&tail))?;
    // Where each metric column sits in `TradeMetrics::fields`, found once.
    let names = TradeMetrics::field_names();
    let at: Vec<Option<usize>> = METRIC_COLUMNS
        .iter()
        .map(|c| names.iter().position(|n| n == c))
        .collect();
    for a in &report.accounts {
        let signals: Vec<String> = a
            .score
            .signals
            .iter()
            .map(|x| format!("{}:{}", x.kind, x.severity))
            .chain(
                a.rules
                    .signals
                    .iter()
                    .map(|x| format!("{}:{}", x.kind, report.rule_weights.severity(x.kind))),
            )
            .collect();
        let breach = a.rules.first_breach.as_ref();
        let fields = a.metrics.fields();
        let metrics = at
            .iter()
            .map(|i| cell(i.and_then(|i| fields.get(i)).and_then(|(_, v)| *v)));
        let head = [
            a.account.as_str().to_owned(),
            a.user.as_str().to_owned(),
            a.challenge
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
        ];
        let tail = [
            a.score.score.normalize().to_string(),
            a.score.level.as_str().to_owned(),
            signals.join(";"),
            a.rules.status.as_str().to_owned(),
            breach
                .map(|b| b.kind.as_str().to_owned())
                .unwrap_or_default(),
            breach
                .map(|b| super::json::rfc3339(b.at))
                .unwrap_or_default(),
            a.platform.clone().unwrap_or_default(),
            a.phase.clone().unwrap_or_default(),
            a.last_trade_at
                .map(super::json::rfc3339)
                .unwrap_or_default(),
        ];
        w.write_record(head.into_iter().chain(metrics).chain(tail))?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_column_is_a_trade_metrics_field() {
        let names = TradeMetrics::field_names();
        for column in METRIC_COLUMNS {
            assert!(names.contains(&column), "{column}");
        }
    }
}
