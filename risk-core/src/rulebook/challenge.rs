//! The challenge rules over one account's closed trades.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::num::{add, div, mul, sub, ArithmeticError};

use super::config::{MaxLossMode, Rulebook};
use super::{RuleKind, RuleSignal, RuleTrade, RulebookError};

/// Where an account stands in its challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "SCREAMING_SNAKE_CASE"))]
pub enum ChallengeStatus {
    /// Every pass condition held at some close before any failing breach.
    Passed,
    /// A failing rule was broken first ([`Outcome::first_breach`]).
    Failed,
    /// Neither yet.
    Active,
}

impl ChallengeStatus {
    /// The upper-case name used in reports.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "PASSED",
            Self::Failed => "FAILED",
            Self::Active => "ACTIVE",
        }
    }
}

/// The rulebook's verdict on one account.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Outcome {
    /// `PASSED`, `FAILED` or `ACTIVE`.
    pub status: ChallengeStatus,
    /// The earliest failing breach, set when the status is `FAILED`.
    pub first_breach: Option<RuleSignal>,
    /// When every pass condition first held, set when the status is `PASSED`.
    pub passed_at: Option<DateTime<Utc>>,
    /// Every rule's first breach or event, by time then kind.
    pub signals: Vec<RuleSignal>,
}

const NANOS_PER_SECOND: i64 = 1_000_000_000;
/// Friday 1970-01-02 22:00 UTC: the first weekend start after the epoch, in seconds.
const WEEKEND_ANCHOR: i64 = 165_600;
const WEEK: i64 = 604_800;
const WEEKEND_LENGTH: i64 = 172_800;

fn trading_day(at_ns: i64, offset_minutes: i32) -> i64 {
    at_ns
        .div_euclid(NANOS_PER_SECOND)
        .saturating_add(i64::from(offset_minutes).saturating_mul(60))
        .div_euclid(86_400)
}

/// The first instant of `[open, close)` inside a weekend window (Friday 22:00 to Sunday
/// 22:00 UTC), in nanoseconds; `None` when the trade is never open over a weekend.
fn weekend_entry(open_ns: i64, close_ns: i64) -> Option<i64> {
    if close_ns <= open_ns {
        return None;
    }
    let open_s = open_ns.div_euclid(NANOS_PER_SECOND);
    let into_week = open_s.saturating_sub(WEEKEND_ANCHOR).rem_euclid(WEEK);
    let entry = if into_week < WEEKEND_LENGTH {
        open_ns
    } else {
        // The next weekend starts `WEEK - into_week` seconds after `open_s`.
        open_s
            .saturating_add(WEEK.saturating_sub(into_week))
            .saturating_mul(NANOS_PER_SECOND)
    };
    (entry < close_ns).then_some(entry)
}

/// True when `at_ns` lies in one of the sorted, merged `windows` (ends included).
fn in_blackout(windows: &[(i64, i64)], at_ns: i64) -> bool {
    let after = windows.partition_point(|&(start, _)| start <= at_ns);
    after
        .checked_sub(1)
        .and_then(|i| windows.get(i))
        .is_some_and(|&(_, end)| at_ns <= end)
}

/// Keeps the earlier of two candidate signals of one rule.
fn earliest(slot: &mut Option<(i64, RuleSignal)>, at_ns: i64, make: impl FnOnce() -> RuleSignal) {
    if slot.as_ref().is_none_or(|(t, _)| at_ns < *t) {
        *slot = Some((at_ns, make()));
    }
}

/// Checks one account's trades against `book`, from `initial_balance`.
///
/// The rules, each reported once, at the time it first broke (see [`RuleKind`] for which
/// ones fail the account):
/// - **Balance rules** run over the closes in close-time order (the order of
///   [`crate::metrics`]: same-instant closes losses first). A day is the calendar day of
///   the close shifted by `day_offset_minutes`; a trade closing exactly at midnight
///   belongs to the new day.
///   - `DAILY_LOSS_LIMIT_BREACHED` when `day_open - balance > limit × initial`; value and
///     limit are fractions of the initial balance.
///   - `MAX_LOSS_LIMIT_BREACHED` when the balance is strictly below the floor:
///     `initial × (1 - limit)` (static) or `mark × (1 - limit)` (trailing; the mark is the
///     highest balance so far, starting at the initial balance; with
///     `trailing_lock_at_initial` the floor never exceeds the initial balance). Value is
///     `(reference - balance) / reference` and limit `(reference - floor) / reference`,
///     with the initial balance (static) or the mark (trailing) as reference.
///   - `PROFIT_TARGET_REACHED` when `balance >= initial × (1 + target)`; value and limit
///     are fractions of the initial balance.
/// - **Pass conditions.** The account passes at the first close where the profit target
///   is met, the trading days so far (days with a close) reach `min_trading_days` and the
///   best day's net profit is at most `consistency_limit` × the total net profit (always
///   true when the total is not positive). When the target is met but a condition is not,
///   and the account never passes, `MIN_TRADING_DAYS_NOT_MET` (value: days) or
///   `CONSISTENCY_RULE_BREACHED` (value: best day / total) is reported at the first such
///   close. Without a profit target the account cannot pass, and the two conditions are
///   checked once, at the last close.
/// - **Per-trade rules** (time of the first offending trade):
///   `MAX_LOT_SIZE_EXCEEDED` (at its open; value: its lots), `MAX_OPEN_TRADES_EXCEEDED`
///   (at the open that made one too many, trades occupying `[open, close)`; value: trades
///   open), `WEEKEND_HOLDING` (at the first instant held inside Friday 22:00 to Sunday
///   22:00 UTC; value: how many trades did it), `NEWS_TRADING` (at the first open or close
///   inside a blackout window, ends included; value: how many trades did it). Their
///   limits are the configured maximum, or 0 for the two forbidden behaviours.
///
/// The status is `FAILED` when a failing breach comes no later than the pass, `PASSED`
/// when the pass comes first, `ACTIVE` otherwise.
///
/// # Errors
/// [`RulebookError::Arithmetic`] when a balance or ratio overflows.
pub fn evaluate(
    book: &Rulebook,
    trades: &[RuleTrade],
    initial_balance: Decimal,
) -> Result<Outcome, RulebookError> {
    let spec = book.spec();
    let mut found: Vec<(i64, RuleSignal)> = Vec::new();

    let curve = balance_rules(book, trades, initial_balance)?;
    found.extend(curve.signals);

    if let Some(max) = spec.max_lot_size {
        let mut first = None;
        for t in trades.iter().filter(|t| t.lots > max) {
            earliest(&mut first, t.opened_at_ns, || {
                RuleSignal::new(RuleKind::MaxLotSizeExceeded, t.opened_at_ns, t.lots, max)
            });
        }
        found.extend(first);
    }
    if let Some(max) = spec.max_open_trades {
        found.extend(open_trades_breach(trades, max));
    }
    if spec.weekend_holding == Some(false) {
        let mut first: Option<i64> = None;
        let mut count = 0_u64;
        for t in trades {
            if let Some(at) = weekend_entry(t.opened_at_ns, t.closed_at_ns) {
                count = count.saturating_add(1);
                first = Some(first.map_or(at, |f| f.min(at)));
            }
        }
        found.extend(first.map(|at| {
            let s = RuleSignal::new(
                RuleKind::WeekendHolding,
                at,
                Decimal::from(count),
                Decimal::ZERO,
            );
            (at, s)
        }));
    }
    let windows = book.blackout();
    if !windows.is_empty() {
        let mut first: Option<i64> = None;
        let mut count = 0_u64;
        for t in trades {
            let hits = [t.opened_at_ns, t.closed_at_ns]
                .into_iter()
                .filter(|&at| in_blackout(windows, at))
                .min();
            if let Some(at) = hits {
                count = count.saturating_add(1);
                first = Some(first.map_or(at, |f| f.min(at)));
            }
        }
        found.extend(first.map(|at| {
            let s = RuleSignal::new(
                RuleKind::NewsTrading,
                at,
                Decimal::from(count),
                Decimal::ZERO,
            );
            (at, s)
        }));
    }

    found.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.kind.cmp(&b.1.kind)));
    let first_breach = found.iter().find(|(_, s)| s.kind.fails_account());
    let (status, first_breach, passed_at) = match (first_breach, curve.passed_at) {
        (Some((b, s)), p) if p.is_none_or(|p| *b <= p) => {
            (ChallengeStatus::Failed, Some(s.clone()), None)
        }
        (_, Some(p)) => (
            ChallengeStatus::Passed,
            None,
            Some(DateTime::from_timestamp_nanos(p)),
        ),
        _ => (ChallengeStatus::Active, None, None),
    };
    Ok(Outcome {
        status,
        first_breach,
        passed_at,
        signals: found.into_iter().map(|(_, s)| s).collect(),
    })
}

struct CurveRules {
    signals: Vec<(i64, RuleSignal)>,
    passed_at: Option<i64>,
}

/// The daily loss, maximum loss, profit target and pass conditions: one pass over the
/// closes in close-time order.
fn balance_rules(
    book: &Rulebook,
    trades: &[RuleTrade],
    initial: Decimal,
) -> Result<CurveRules, ArithmeticError> {
    let spec = book.spec();
    let mut out = CurveRules {
        signals: Vec::new(),
        passed_at: None,
    };
    if trades.is_empty() {
        return Ok(out);
    }
    let order = super::in_close_order(trades);
    let daily_allowance = spec
        .daily_loss_limit
        .map(|l| mul(l, initial, "daily loss allowance"))
        .transpose()?;
    let target = spec
        .profit_target
        .map(|t| {
            mul(
                initial,
                add(Decimal::ONE, t, "profit target")?,
                "profit target",
            )
        })
        .transpose()?;
    let keep = spec.max_loss_limit.map(|l| Decimal::ONE.saturating_sub(l));

    let mut balance = initial;
    let mut mark = initial;
    let mut floor_of: Option<(Decimal, Decimal)> = None;
    // (day, opening balance, net of the day so far)
    let mut day: Option<(i64, Decimal, Decimal)> = None;
    let mut days = 0_u32;
    let mut best_day = Decimal::MIN;
    let (mut daily, mut max_loss, mut reached) = (None, None, None);
    let (mut short_days, mut inconsistent) = (None, None);
    let consistent = |best: Decimal, total: Decimal| -> Result<bool, ArithmeticError> {
        match spec.consistency_limit {
            Some(limit) if total > Decimal::ZERO => Ok(best <= mul(limit, total, "consistency")?),
            _ => Ok(true),
        }
    };
    let consistency_value = |best: Decimal, total: Decimal| div(best, total, "consistency ratio");

    // Only what the rulebook checks is computed per trade: a day's net only for the
    // consistency rule, the daily floor once a day.
    let track_days = spec.consistency_limit.is_some();
    // The balance below which the current day breaks the daily loss limit.
    let mut daily_floor = None;
    for t in order.iter() {
        let at = t.closed_at_ns;
        let d = trading_day(at, spec.day_offset_minutes);
        let (open, net) = match day {
            Some((current, open, net)) if current == d => (open, net),
            _ => {
                days = days.saturating_add(1);
                daily_floor = daily_allowance
                    .map(|a| sub(balance, a, "daily loss floor"))
                    .transpose()?;
                (balance, Decimal::ZERO)
            }
        };
        balance = add(balance, t.pnl, "balance")?;
        let net = if track_days {
            let net = add(net, t.pnl, "daily net")?;
            best_day = best_day.max(net);
            net
        } else {
            net
        };
        day = Some((d, open, net));

        if let (Some(floor), None) = (daily_floor, &daily) {
            if balance < floor {
                let fall = sub(open, balance, "daily loss")?;
                let value = div(fall, initial, "daily loss ratio")?;
                let limit = spec.daily_loss_limit.unwrap_or_default();
                daily = Some((
                    at,
                    RuleSignal::new(RuleKind::DailyLossLimitBreached, at, value, limit),
                ));
            }
        }
        if let (Some(keep), None) = (keep, &max_loss) {
            let reference = match spec.max_loss_mode {
                MaxLossMode::Static => initial,
                MaxLossMode::Trailing => mark,
            };
            // The floor changes only with the mark: computed again only then.
            let floor = match floor_of {
                Some((r, f)) if r == reference => f,
                _ => {
                    let mut f = mul(reference, keep, "max loss floor")?;
                    if spec.trailing_lock_at_initial {
                        f = f.min(initial);
                    }
                    floor_of = Some((reference, f));
                    f
                }
            };
            if balance < floor {
                let value = div(
                    sub(reference, balance, "max loss")?,
                    reference,
                    "max loss ratio",
                )?;
                let limit = div(
                    sub(reference, floor, "max loss")?,
                    reference,
                    "max loss ratio",
                )?;
                max_loss = Some((
                    at,
                    RuleSignal::new(RuleKind::MaxLossLimitBreached, at, value, limit),
                ));
            }
        }
        mark = mark.max(balance);

        if let Some(level) = target {
            if balance >= level {
                let total = sub(balance, initial, "total profit")?;
                if reached.is_none() {
                    let value = div(total, initial, "profit ratio")?;
                    let limit = spec.profit_target.unwrap_or_default();
                    reached = Some((
                        at,
                        RuleSignal::new(RuleKind::ProfitTargetReached, at, value, limit),
                    ));
                }
                if out.passed_at.is_none() {
                    let enough_days = spec.min_trading_days.is_none_or(|min| days >= min);
                    let even = consistent(best_day, total)?;
                    if enough_days && even {
                        out.passed_at = Some(at);
                    }
                    if let (false, None, Some(min)) =
                        (enough_days, &short_days, spec.min_trading_days)
                    {
                        short_days = Some((
                            at,
                            RuleSignal::new(
                                RuleKind::MinTradingDaysNotMet,
                                at,
                                Decimal::from(days),
                                Decimal::from(min),
                            ),
                        ));
                    }
                    if let (false, None) = (even, &inconsistent) {
                        let value = consistency_value(best_day, total)?;
                        let limit = spec.consistency_limit.unwrap_or_default();
                        inconsistent = Some((
                            at,
                            RuleSignal::new(RuleKind::ConsistencyRuleBreached, at, value, limit),
                        ));
                    }
                }
            }
        }
    }
    if target.is_none() {
        // No target: the pass conditions are checked once, at the last close.
        let at = order.last().map_or(0, |t| t.closed_at_ns);
        let total = sub(balance, initial, "total profit")?;
        if let Some(min) = spec.min_trading_days.filter(|&min| days < min) {
            short_days = Some((
                at,
                RuleSignal::new(
                    RuleKind::MinTradingDaysNotMet,
                    at,
                    Decimal::from(days),
                    Decimal::from(min),
                ),
            ));
        }
        if !consistent(best_day, total)? {
            let value = consistency_value(best_day, total)?;
            let limit = spec.consistency_limit.unwrap_or_default();
            inconsistent = Some((
                at,
                RuleSignal::new(RuleKind::ConsistencyRuleBreached, at, value, limit),
            ));
        }
    }
    out.signals.extend(daily);
    out.signals.extend(max_loss);
    out.signals.extend(reached);
    if out.passed_at.is_none() {
        out.signals.extend(short_days);
        out.signals.extend(inconsistent);
    }
    Ok(out)
}

/// The open that first makes more than `max` trades open at once (`[open, close)`
/// intervals; a trade of zero length is never open).
fn open_trades_breach(trades: &[RuleTrade], max: u32) -> Option<(i64, RuleSignal)> {
    // (time, 0 = close / 1 = open): closes first at the same instant.
    let mut events: Vec<(i64, u8)> = trades
        .iter()
        .filter(|t| t.closed_at_ns > t.opened_at_ns)
        .flat_map(|t| [(t.opened_at_ns, 1), (t.closed_at_ns, 0)])
        .collect();
    events.sort_unstable();
    let mut open_now = 0_u32;
    for (at, kind) in events {
        if kind == 0 {
            open_now = open_now.saturating_sub(1);
        } else {
            open_now = open_now.saturating_add(1);
            if open_now > max {
                let s = RuleSignal::new(
                    RuleKind::MaxOpenTradesExceeded,
                    at,
                    Decimal::from(open_now),
                    Decimal::from(max),
                );
                return Some((at, s));
            }
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests;
