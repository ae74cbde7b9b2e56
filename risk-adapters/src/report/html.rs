//! The report as one self-contained HTML page: inline CSS and SVG, no script, no font or
//! image from anywhere, so it opens offline.
//!
//! The page holds the ranked account table coloured by risk level, the user and challenge
//! summaries, and for each charted account an equity curve (the closed-trade balance, with
//! the initial balance, the maximum-loss floor and the profit target drawn as lines and
//! the rulebook signals as markers) and a drawdown curve (`(peak - balance) / peak`, with
//! the maximum-loss limit and the score's drawdown threshold as lines). Charts are drawn
//! for the [`MAX_CHARTED_ACCOUNTS`] riskiest accounts; a curve longer than
//! [`MAX_POINTS`] closes keeps the first, lowest and highest balance of each stretch.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use chrono::{DateTime, Utc};
use risk_core::hash::HashMap as FastMap;
use risk_core::metrics::{ClosedTrade, PnlBasis};
use risk_core::rulebook::{ChallengeStatus, MaxLossMode, RuleKind, RuleSignal, Rulebook};
use risk_core::score::RiskLevel;
use risk_core::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::{AccountReport, GroupReport, Report};
use crate::report_config::RuleSettings;

/// Accounts that get charts (the riskiest first).
pub const MAX_CHARTED_ACCOUNTS: usize = 200;
/// Points kept per curve.
pub const MAX_POINTS: usize = 600;

const WIDTH: f64 = 520.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 24.0;

const CSS: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}h3{font-size:15px;margin:0 0 6px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{padding:4px 8px;border-bottom:1px solid #dde1e7;text-align:left;white-space:nowrap}
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.LOW td.lvl{background:#d9f2df}tr.MEDIUM td.lvl{background:#fff1bf}
tr.HIGH td.lvl{background:#ffd8b0}tr.CRITICAL td.lvl{background:#f8b7b7}
tr.CRITICAL td:first-child{border-left:4px solid #c62828}tr.HIGH td:first-child{border-left:4px solid #ef6c00}
tr.MEDIUM td:first-child{border-left:4px solid #f9a825}tr.LOW td:first-child{border-left:4px solid #2e7d32}
.st-FAILED{color:#c62828;font-weight:600}.st-PASSED{color:#2e7d32;font-weight:600}.st-ACTIVE{color:#555}
.account{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:12px;margin:12px 0}
.charts{display:flex;flex-wrap:wrap;gap:12px}.sig{font-size:12px;color:#444;white-space:normal;min-width:260px}
svg{background:#fff;border:1px solid #eef1f5}svg text{font-size:10px;fill:#555}
.legend span{margin-right:12px;font-size:12px}
";

fn num(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

/// HTML-escapes text for element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A fragment id from a login: ASCII alphanumerics kept, everything else as `_xx`.
fn anchor(login: &str) -> String {
    let mut out = String::from("acc-");
    for b in login.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "_{b:02x}");
        }
    }
    out
}

fn level_class(level: RiskLevel) -> &'static str {
    level.as_str()
}

/// One account's closed-trade balance curve: `(close time ns, balance)`, starting with
/// `(first open, initial)`.
struct Curve {
    points: Vec<(i64, f64)>,
}

fn curves(trades: &[ClosedTrade], charted: &[&AccountReport], basis: PnlBasis) -> Vec<Curve> {
    let index: FastMap<&str, usize> = charted
        .iter()
        .enumerate()
        .map(|(i, a)| (a.account.as_str(), i))
        .collect();
    // (close ns, net, open ns) per charted account.
    let mut per: Vec<Vec<(i64, Decimal, i64)>> = vec![Vec::new(); charted.len()];
    for t in trades {
        if let Some(&i) = index.get(t.account.as_str()) {
            let (Some(close), Some(open), Ok(net)) = (
                t.closed_at.timestamp_nanos_opt(),
                t.opened_at.timestamp_nanos_opt(),
                t.pnl(basis),
            ) else {
                continue;
            };
            per[i].push((close, net, open));
        }
    }
    per.into_iter()
        .zip(charted)
        .map(|(mut list, a)| {
            list.sort_unstable();
            let mut balance = a.initial_balance;
            let start = list.iter().map(|x| x.2).min().unwrap_or(0);
            let mut points = Vec::with_capacity(list.len() + 1);
            points.push((start.min(list.first().map_or(start, |x| x.0)), num(balance)));
            for (close, net, _) in list {
                balance = balance.checked_add(net).unwrap_or(balance);
                points.push((close, num(balance)));
            }
            Curve { points }
        })
        .collect()
}

/// At most `MAX_POINTS` points: per stretch the first, the lowest and the highest.
fn thin(points: &[(i64, f64)]) -> Vec<(i64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let stretch = points.len().div_ceil(MAX_POINTS / 3);
    let mut out = Vec::with_capacity(MAX_POINTS + 3);
    for chunk in points.chunks(stretch) {
        let first = chunk[0];
        let lo = chunk
            .iter()
            .copied()
            .fold(first, |m, p| if p.1 < m.1 { p } else { m });
        let hi = chunk
            .iter()
            .copied()
            .fold(first, |m, p| if p.1 > m.1 { p } else { m });
        let mut three = [first, lo, hi];
        three.sort_by_key(|p| p.0);
        for p in three {
            if out.last() != Some(&p) {
                out.push(p);
            }
        }
    }
    if let Some(&last) = points.last() {
        if out.last() != Some(&last) {
            out.push(last);
        }
    }
    out
}

struct Scale {
    t0: i64,
    t1: i64,
    y0: f64,
    y1: f64,
}

impl Scale {
    fn x(&self, t: i64) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        LEFT + (t - self.t0) as f64 / span * (WIDTH - LEFT - RIGHT)
    }
    fn y(&self, v: f64) -> f64 {
        let span = if self.y1 > self.y0 {
            self.y1 - self.y0
        } else {
            1.0
        };
        TOP + (self.y1 - v) / span * (HEIGHT - TOP - BOTTOM)
    }
}

fn polyline(s: &Scale, points: &[(i64, f64)], style: &str) -> String {
    let mut d = String::with_capacity(points.len() * 14);
    for (t, v) in points {
        let _ = write!(d, "{:.1},{:.1} ", s.x(*t), s.y(*v));
    }
    format!(
        "<polyline fill=\"none\" {style} points=\"{}\"/>",
        d.trim_end()
    )
}

/// A dashed horizontal line with its label at the right end (or the left one, so that
/// two lines at one level keep readable labels).
fn hline(s: &Scale, v: f64, class: &str, color: &str, label: &str, left: bool) -> String {
    let y = s.y(v);
    let (x, anchor) = if left {
        (LEFT + 4.0, "start")
    } else {
        (WIDTH - RIGHT - 2.0, "end")
    };
    format!(
        "<g class=\"{class}\"><line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" stroke-dasharray=\"5 4\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text></g>",
        WIDTH - RIGHT,
        y - 3.0,
        esc(label)
    )
}

fn axes(s: &Scale, fmt_y: &dyn Fn(f64) -> String) -> String {
    let date = |t: i64| {
        DateTime::<Utc>::from_timestamp_nanos(t)
            .format("%Y-%m-%d")
            .to_string()
    };
    format!(
        "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#999\"/><line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
<text x=\"{LEFT}\" y=\"{:.1}\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        HEIGHT - BOTTOM,
        WIDTH - RIGHT,
        HEIGHT - BOTTOM,
        HEIGHT - BOTTOM,
        LEFT - 4.0,
        TOP + 8.0,
        esc(&fmt_y(s.y1)),
        LEFT - 4.0,
        HEIGHT - BOTTOM,
        esc(&fmt_y(s.y0)),
        HEIGHT - 8.0,
        date(s.t0),
        WIDTH - RIGHT,
        HEIGHT - 8.0,
        date(s.t1),
    )
}

/// The balance at `t`: after the last close at or before it.
fn balance_at(points: &[(i64, f64)], t: i64) -> f64 {
    let i = points.partition_point(|p| p.0 <= t);
    points.get(i.saturating_sub(1)).map_or(f64::NAN, |p| p.1)
}

fn marker_color(kind: RuleKind) -> &'static str {
    if kind == RuleKind::ProfitTargetReached {
        "#2e7d32"
    } else if kind.fails_account() {
        "#c62828"
    } else {
        "#ef6c00"
    }
}

fn signal_title(s: &RuleSignal) -> String {
    let mut t = format!(
        "{} at {}: value {}, limit {}",
        s.kind,
        s.at.format("%Y-%m-%d %H:%M:%S"),
        s.value.round_dp(6).normalize(),
        s.limit.round_dp(6).normalize()
    );
    if !s.related.is_empty() {
        let names: Vec<&str> = s.related.iter().map(|a| a.as_str()).collect();
        let _ = write!(t, "; with {}", names.join(", "));
    }
    t
}

fn equity_svg(a: &AccountReport, curve: &Curve, book: &Rulebook) -> String {
    let spec = book.spec();
    let initial = num(a.initial_balance);
    let points = &curve.points;
    let t0 = points.first().map_or(0, |p| p.0);
    let t1 = points.last().map_or(1, |p| p.0).max(t0 + 1);
    // The maximum-loss floor over time (trailing: follows the mark).
    let floor: Option<Vec<(i64, f64)>> = spec.max_loss_limit.map(|l| {
        let keep = 1.0 - num(l);
        let mut mark = initial;
        points
            .iter()
            .map(|&(t, b)| {
                let f = match spec.max_loss_mode {
                    MaxLossMode::Static => initial * keep,
                    MaxLossMode::Trailing => {
                        let f = mark * keep;
                        if spec.trailing_lock_at_initial {
                            f.min(initial)
                        } else {
                            f
                        }
                    }
                };
                mark = mark.max(b);
                (t, f)
            })
            .collect()
    });
    let target = spec.profit_target.map(|t| initial * (1.0 + num(t)));
    let mut lo = points.iter().map(|p| p.1).fold(initial, f64::min);
    let mut hi = points.iter().map(|p| p.1).fold(initial, f64::max);
    for v in floor.iter().flatten().map(|p| p.1).chain(target) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let pad = ((hi - lo) * 0.05).max(1.0);
    let s = Scale {
        t0,
        t1,
        y0: lo - pad,
        y1: hi + pad,
    };
    let mut svg = format!(
        "<svg class=\"equity-chart\" data-account=\"{}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"equity curve of {}\">",
        esc(a.account.as_str()),
        esc(a.account.as_str())
    );
    svg.push_str(&axes(&s, &|v| format!("{v:.0}")));
    svg.push_str(&hline(
        &s,
        initial,
        "initial-line",
        "#888",
        "initial",
        false,
    ));
    if let Some(floor) = &floor {
        let mut f = floor.clone();
        f.push((t1, f.last().map_or(initial, |p| p.1)));
        svg.push_str(&format!(
            "<g class=\"limit-line max-loss\">{}</g>",
            polyline(&s, &thin(&f), "stroke=\"#c62828\" stroke-dasharray=\"5 4\"")
        ));
    }
    if let Some(t) = target {
        svg.push_str(&hline(
            &s,
            t,
            "limit-line profit-target",
            "#2e7d32",
            "profit target",
            false,
        ));
    }
    svg.push_str(&polyline(
        &s,
        &thin(points),
        "class=\"curve\" stroke=\"#1565c0\" stroke-width=\"1.5\"",
    ));
    for sig in &a.rules.signals {
        let Some(t) = sig.at.timestamp_nanos_opt() else {
            continue;
        };
        let t = t.clamp(t0, t1);
        let _ = write!(
            svg,
            "<circle class=\"breach-marker\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4.5\" fill=\"{}\" stroke=\"#fff\"><title>{}</title></circle>",
            s.x(t),
            s.y(balance_at(points, t)),
            marker_color(sig.kind),
            esc(&signal_title(sig))
        );
    }
    svg.push_str("</svg>");
    svg
}

fn drawdown_svg(a: &AccountReport, curve: &Curve, book: &Rulebook, dd_max: f64) -> String {
    let points = &curve.points;
    let mut peak = f64::MIN;
    let dd: Vec<(i64, f64)> = points
        .iter()
        .map(|&(t, b)| {
            peak = peak.max(b);
            let d = if peak > 0.0 {
                (peak - b) / peak * 100.0
            } else {
                0.0
            };
            (t, d.clamp(0.0, 100.0))
        })
        .collect();
    let limit = book.spec().max_loss_limit.map(|l| num(l) * 100.0);
    let hi = dd
        .iter()
        .map(|p| p.1)
        .chain(limit)
        .chain([dd_max * 100.0, 1.0])
        .fold(0.0, f64::max)
        * 1.1;
    let t0 = points.first().map_or(0, |p| p.0);
    let t1 = points.last().map_or(1, |p| p.0).max(t0 + 1);
    // Drawdown grows downwards: the axis runs from 0 at the top to `hi` at the bottom.
    let s = Scale {
        t0,
        t1,
        y0: -hi,
        y1: 0.0,
    };
    let neg: Vec<(i64, f64)> = dd.iter().map(|&(t, d)| (t, -d)).collect();
    let mut svg = format!(
        "<svg class=\"drawdown-chart\" data-account=\"{}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"drawdown curve of {}\">",
        esc(a.account.as_str()),
        esc(a.account.as_str())
    );
    svg.push_str(&axes(&s, &|v| format!("{:.1}%", (-v).max(0.0))));
    if let Some(l) = limit {
        svg.push_str(&hline(
            &s,
            -l,
            "limit-line max-loss",
            "#c62828",
            "max loss limit",
            true,
        ));
    }
    svg.push_str(&hline(
        &s,
        -dd_max * 100.0,
        "limit-line drawdown-threshold",
        "#f9a825",
        "score drawdown threshold",
        false,
    ));
    svg.push_str(&polyline(
        &s,
        &thin(&neg),
        "class=\"curve\" stroke=\"#6a1b9a\" stroke-width=\"1.5\"",
    ));
    for sig in a.rules.signals.iter().filter(|x| {
        x.kind == RuleKind::MaxLossLimitBreached || x.kind == RuleKind::DailyLossLimitBreached
    }) {
        let Some(t) = sig.at.timestamp_nanos_opt() else {
            continue;
        };
        let t = t.clamp(t0, t1);
        let i = dd.partition_point(|p| p.0 <= t);
        let v = dd.get(i.saturating_sub(1)).map_or(0.0, |p| p.1);
        let _ = write!(
            svg,
            "<circle class=\"breach-marker\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4.5\" fill=\"#c62828\" stroke=\"#fff\"><title>{}</title></circle>",
            s.x(t),
            s.y(-v),
            esc(&signal_title(sig))
        );
    }
    svg.push_str("</svg>");
    svg
}

fn signal_names(a: &AccountReport) -> String {
    let mut names: Vec<&str> = a.score.signals.iter().map(|s| s.kind.as_str()).collect();
    names.extend(a.rules.signals.iter().map(|s| s.kind.as_str()));
    names.join(", ")
}

fn group_table(title: &str, groups: &[GroupReport], report: &Report, is_user: bool) -> String {
    let by_login: FastMap<&str, &AccountReport> = report
        .accounts
        .iter()
        .map(|a| (a.account.as_str(), a))
        .collect();
    let mut h = format!(
        "<h2>{title} ({})</h2><table class=\"groups\"><tr><th>{}</th><th>accounts</th><th>flagged</th><th>trades</th><th>score</th><th>level</th><th>passed</th><th>failed</th><th>active</th><th>rulebook signals</th><th>riskiest accounts</th></tr>",
        groups.len(),
        if is_user { "user" } else { "challenge" }
    );
    for g in groups {
        let s = &g.score;
        let mut status = [0_u64; 3];
        let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
        for m in &s.accounts {
            if let Some(a) = by_login.get(m.account.as_str()) {
                status[match a.rules.status {
                    ChallengeStatus::Passed => 0,
                    ChallengeStatus::Failed => 1,
                    ChallengeStatus::Active => 2,
                }] += 1;
                for sig in &a.rules.signals {
                    *kinds.entry(sig.kind.as_str()).or_default() += 1;
                }
            }
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let top: Vec<String> = s
            .accounts
            .iter()
            .take(3)
            .map(|m| {
                format!(
                    "<a href=\"#{}\">{}</a> ({:.1})",
                    anchor(m.account.as_str()),
                    esc(m.account.as_str()),
                    num(m.score)
                )
            })
            .collect();
        let _ = write!(
            h,
            "<tr class=\"{lvl}\"><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}</td><td class=\"lvl\">{lvl}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&g.id),
            s.accounts.len(),
            s.flagged_accounts,
            s.trades,
            num(s.score),
            status[0],
            status[1],
            status[2],
            esc(&kinds.join(", ")),
            top.join(", "),
            lvl = level_class(s.level),
        );
    }
    h.push_str("</table>");
    h
}

/// Writes the report as one self-contained HTML page: inline CSS and SVG, no script and
/// nothing fetched, so it opens offline. It holds the ranked account table coloured by
/// risk level, the user and challenge summaries, and for each of the
/// [`MAX_CHARTED_ACCOUNTS`] riskiest accounts with trades an equity curve (with the initial
/// balance, the maximum-loss floor and the profit target as lines and the rulebook signals
/// as markers) and a drawdown curve (with the maximum-loss limit and the score's drawdown
/// threshold as lines). `trades` are the trades the report was built from (the curves are
/// drawn from them), `rules` the settings it was built with, `score_drawdown_max` the
/// score's drawdown threshold.
///
/// # Errors
/// Any error of `out`.
pub fn write_html<W: Write>(
    report: &Report,
    trades: &[ClosedTrade],
    rules: &RuleSettings,
    score_drawdown_max: Decimal,
    mut out: W,
) -> io::Result<()> {
    let total_trades: u64 = report.accounts.iter().map(|a| a.metrics.trades).sum();
    let mut status = [0_usize; 3];
    for a in &report.accounts {
        status[match a.rules.status {
            ChallengeStatus::Passed => 0,
            ChallengeStatus::Failed => 1,
            ChallengeStatus::Active => 2,
        }] += 1;
    }
    let mut h = String::with_capacity(1 << 20);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Risk report</title><style>{CSS}</style></head><body>"
    );
    let _ = write!(
        h,
        "<h1>Risk report</h1><p>{total_trades} trades, {} accounts, {} users, {} challenges; {} passed, {} failed, {} active; skipped rows: {}, duplicate rows: {}.</p>",
        report.accounts.len(),
        report.users.len(),
        report.challenges.len(),
        status[0],
        status[1],
        status[2],
        report.skipped_rows,
        report.duplicate_rows
    );
    let _ = write!(
        h,
        "<p>P&amp;L basis: {}; metrics over {}; challenge rules over every trade.</p>",
        report.metrics.pnl_basis,
        report.metrics.window_size.map_or_else(
            || "each account's whole history".to_owned(),
            |n| format!("each account's last {n} trades")
        )
    );
    let _ = write!(
        h,
        "<h2>Accounts ({})</h2><table class=\"accounts\"><tr><th>#</th><th>login</th><th>user</th><th>challenge</th><th>platform</th><th>phase</th><th>trades</th><th>last trade</th><th>net</th><th>max DD %</th><th>score</th><th>level</th><th>status</th><th>first breach</th><th>signals</th></tr>",
        report.accounts.len()
    );
    let charted: Vec<&AccountReport> = report
        .accounts
        .iter()
        .filter(|a| a.metrics.trades > 0)
        .take(MAX_CHARTED_ACCOUNTS)
        .collect();
    let charted_ids: risk_core::hash::HashSet<&str> =
        charted.iter().map(|a| a.account.as_str()).collect();
    for (rank, a) in report.accounts.iter().enumerate() {
        let m = &a.metrics;
        let login = if charted_ids.contains(a.account.as_str()) {
            format!(
                "<a href=\"#{}\">{}</a>",
                anchor(a.account.as_str()),
                esc(a.account.as_str())
            )
        } else {
            esc(a.account.as_str())
        };
        let breach = a.rules.first_breach.as_ref().map_or(String::new(), |b| {
            format!("{} {}", b.kind, b.at.format("%Y-%m-%d %H:%M:%S"))
        });
        let _ = write!(
            h,
            "<tr class=\"{lvl}\"><td class=\"n\">{}</td><td>{login}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"lvl\">{lvl}</td><td class=\"st-{st}\">{st}</td><td>{}</td><td class=\"sig\">{}</td></tr>",
            rank + 1,
            esc(a.user.as_str()),
            esc(a.challenge.as_ref().map_or("-", |c| c.as_str())),
            esc(a.platform.as_deref().unwrap_or("-")),
            esc(a.phase.as_deref().unwrap_or("-")),
            m.trades,
            a.last_trade_at
                .map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
            num(m.net_profit),
            num(m.max_relative_drawdown) * 100.0,
            num(a.score.score),
            esc(&breach),
            esc(&signal_names(a)),
            lvl = level_class(a.score.level),
            st = a.rules.status.as_str(),
        );
    }
    h.push_str("</table>");
    h.push_str(&group_table("Users", &report.users, report, true));
    h.push_str(&group_table(
        "Challenges",
        &report.challenges,
        report,
        false,
    ));

    let _ = write!(
        h,
        "<h2>Charts ({} riskiest accounts with trades)</h2><p class=\"legend\"><span style=\"color:#1565c0\">&#9473; balance</span><span style=\"color:#c62828\">&#9476; max loss floor</span><span style=\"color:#2e7d32\">&#9476; profit target</span><span style=\"color:#c62828\">&#9679; failing breach</span><span style=\"color:#ef6c00\">&#9679; other signal</span><span style=\"color:#2e7d32\">&#9679; target reached</span></p>",
        charted.len()
    );
    let dd_max = num(score_drawdown_max);
    for (a, curve) in charted
        .iter()
        .zip(curves(trades, &charted, report.metrics.pnl_basis))
    {
        let book = rules.rulebooks.for_challenge(a.challenge.as_ref());
        let _ = write!(
            h,
            "<section class=\"account\" id=\"{}\"><h3>{} <small>user {}, challenge {}, score {:.1} {}, <span class=\"st-{st}\">{st}</span></small></h3><div class=\"charts\">{}{}</div>",
            anchor(a.account.as_str()),
            esc(a.account.as_str()),
            esc(a.user.as_str()),
            esc(a.challenge.as_ref().map_or("-", |c| c.as_str())),
            num(a.score.score),
            a.score.level,
            equity_svg(a, &curve, book),
            drawdown_svg(a, &curve, book, dd_max),
            st = a.rules.status.as_str(),
        );
        if !a.rules.signals.is_empty() {
            h.push_str("<ul class=\"sig\">");
            for s in &a.rules.signals {
                let _ = write!(h, "<li>{}</li>", esc(&signal_title(s)));
            }
            h.push_str("</ul>");
        }
        h.push_str("</section>");
    }
    h.push_str("</body></html>\n");
    out.write_all(h.as_bytes())?;
    out.flush()
}
