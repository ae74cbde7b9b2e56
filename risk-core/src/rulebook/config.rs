//! The rulebook's settings: which challenge rules apply (per challenge), the cross-account
//! detector thresholds and the score weight of every signal.
//!
//! A [`Rulebook`] is valid by construction: it is built from a [`RulebookSpec`] (the plain
//! form a config table deserializes into) through [`Rulebook::new`] / `TryFrom`, which
//! checks every range and names the field it refuses.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::ids::ChallengeId;
use crate::model::Severity;

use super::RuleKind;

/// A rulebook setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{field}`: {rule}")]
pub struct RulebookConfigError {
    /// The setting's name as written in a config file (`news_blackout[2].end`, ...).
    pub field: String,
    /// What it must be, in words.
    pub rule: &'static str,
}

fn bad(field: impl Into<String>, rule: &'static str) -> RulebookConfigError {
    RulebookConfigError {
        field: field.into(),
        rule,
    }
}

/// How [`RulebookSpec::max_loss_limit`] is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum MaxLossMode {
    /// The balance must stay at or above `initial × (1 - limit)`.
    #[default]
    Static,
    /// The balance must stay at or above `high-water mark × (1 - limit)`.
    Trailing,
}

/// A news blackout window: trades opened or closed at `start <= t <= end` break the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct NewsWindow {
    /// First instant of the window (RFC 3339 in a config file).
    pub start: DateTime<Utc>,
    /// Last instant of the window; after `start`.
    pub end: DateTime<Utc>,
}

/// The plain, unchecked form of a [`Rulebook`]: what a `[rulebook]` table holds. Every
/// rule is optional and a rule left out is not checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RulebookSpec {
    /// The largest fall within one day from the day's opening balance, as a fraction of
    /// the initial balance, in `(0, 1)`. A fall strictly greater breaks the rule.
    pub daily_loss_limit: Option<Decimal>,
    /// Minutes added to a close time before taking its calendar day (daily loss, trading
    /// days, consistency). 0 = UTC days; within ±1439.
    pub day_offset_minutes: i32,
    /// The largest loss allowed, as a fraction (see [`MaxLossMode`]), in `(0, 1)`. A balance
    /// strictly below the floor breaks the rule.
    pub max_loss_limit: Option<Decimal>,
    /// `static` (default) or `trailing`.
    pub max_loss_mode: MaxLossMode,
    /// Trailing mode only: the trailing floor stops rising once it reaches the initial
    /// balance (`floor = min(mark × (1 - limit), initial)`).
    pub trailing_lock_at_initial: bool,
    /// The profit that passes the challenge, as a fraction of the initial balance, > 0.
    pub profit_target: Option<Decimal>,
    /// Trading days (days with a trade closing) needed to pass, >= 1.
    pub min_trading_days: Option<u32>,
    /// The best day's profit may be at most this fraction of the total profit to pass,
    /// in `(0, 1)`.
    pub consistency_limit: Option<Decimal>,
    /// Largest lot size of one trade, > 0. A larger trade breaks the rule.
    pub max_lot_size: Option<Decimal>,
    /// Most trades open at one instant, >= 1. One more breaks the rule.
    pub max_open_trades: Option<u32>,
    /// `false` forbids holding a trade across Friday 22:00 to Sunday 22:00 UTC; `true` or
    /// absent allows it.
    pub weekend_holding: Option<bool>,
    /// Windows in which no trade may open or close.
    pub news_blackout: Vec<NewsWindow>,
}

/// A checked set of challenge rules. Build it with [`Rulebook::new`] (or `TryFrom`, or by
/// deserializing, which runs the same checks); [`Rulebook::default`] is the
/// [standard](Rulebook::standard) one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(try_from = "RulebookSpec", into = "RulebookSpec")
)]
pub struct Rulebook {
    spec: RulebookSpec,
    /// The blackout windows in nanoseconds, sorted and merged where they overlap.
    blackout: Vec<(i64, i64)>,
}

fn fraction(field: &str, v: Option<Decimal>) -> Result<(), RulebookConfigError> {
    match v {
        Some(v) if v <= Decimal::ZERO || v >= Decimal::ONE => {
            Err(bad(field, "must be within 0 and 1, both excluded"))
        }
        _ => Ok(()),
    }
}

impl Rulebook {
    /// Checks `spec` and builds the rulebook.
    ///
    /// # Errors
    /// [`RulebookConfigError`] naming the first invalid setting: a limit outside `(0, 1)`,
    /// a non-positive profit target or lot size, a zero day or trade count, a day offset
    /// beyond ±1439 minutes, a window whose end is not after its start, a window outside
    /// the nanosecond time range, or trailing-only settings with the static mode.
    pub fn new(spec: RulebookSpec) -> Result<Self, RulebookConfigError> {
        fraction("daily_loss_limit", spec.daily_loss_limit)?;
        fraction("max_loss_limit", spec.max_loss_limit)?;
        fraction("consistency_limit", spec.consistency_limit)?;
        if spec.day_offset_minutes.abs() >= 1440 {
            return Err(bad("day_offset_minutes", "must be within -1439..=1439"));
        }
        if matches!(spec.profit_target, Some(v) if v <= Decimal::ZERO) {
            return Err(bad("profit_target", "must be greater than 0"));
        }
        if matches!(spec.max_lot_size, Some(v) if v <= Decimal::ZERO) {
            return Err(bad("max_lot_size", "must be greater than 0"));
        }
        if spec.min_trading_days == Some(0) {
            return Err(bad("min_trading_days", "must be at least 1"));
        }
        if spec.max_open_trades == Some(0) {
            return Err(bad("max_open_trades", "must be at least 1"));
        }
        if spec.trailing_lock_at_initial && spec.max_loss_mode != MaxLossMode::Trailing {
            return Err(bad(
                "trailing_lock_at_initial",
                "applies only with max_loss_mode = \"trailing\"",
            ));
        }
        let mut blackout = Vec::with_capacity(spec.news_blackout.len());
        for (i, w) in spec.news_blackout.iter().enumerate() {
            if w.end <= w.start {
                return Err(bad(
                    format!("news_blackout[{i}].end"),
                    "must be after start",
                ));
            }
            let ns = |at: DateTime<Utc>, part: &str| {
                at.timestamp_nanos_opt().ok_or_else(|| {
                    bad(
                        format!("news_blackout[{i}].{part}"),
                        "must lie within 1677-09-21 and 2262-04-11",
                    )
                })
            };
            blackout.push((ns(w.start, "start")?, ns(w.end, "end")?));
        }
        blackout.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(blackout.len());
        for (s, e) in blackout {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        Ok(Self {
            spec,
            blackout: merged,
        })
    }

    /// A rulebook that checks nothing.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            spec: RulebookSpec::default(),
            blackout: Vec::new(),
        }
    }

    /// The usual two-step-challenge rules, used when a config names no `[rulebook]`:
    /// a 5 % daily loss limit, a 10 % static maximum loss, an 8 % profit target and
    /// 4 trading days; nothing else is checked.
    #[must_use]
    pub fn standard() -> Self {
        Self {
            spec: RulebookSpec {
                daily_loss_limit: Some(Decimal::new(5, 2)),
                max_loss_limit: Some(Decimal::new(10, 2)),
                profit_target: Some(Decimal::new(8, 2)),
                min_trading_days: Some(4),
                ..RulebookSpec::default()
            },
            blackout: Vec::new(),
        }
    }

    /// The settings.
    #[must_use]
    pub fn spec(&self) -> &RulebookSpec {
        &self.spec
    }

    /// The blackout windows in nanoseconds since the epoch, sorted and merged.
    pub(crate) fn blackout(&self) -> &[(i64, i64)] {
        &self.blackout
    }
}

impl Default for Rulebook {
    fn default() -> Self {
        Self::standard()
    }
}

impl TryFrom<RulebookSpec> for Rulebook {
    type Error = RulebookConfigError;
    fn try_from(spec: RulebookSpec) -> Result<Self, Self::Error> {
        Self::new(spec)
    }
}

impl From<Rulebook> for RulebookSpec {
    fn from(book: Rulebook) -> Self {
        book.spec
    }
}

/// The default rulebook and the per-challenge ones. A challenge's rulebook replaces the
/// default entirely for that challenge's accounts (no merging of single rules).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rulebooks {
    /// For accounts whose challenge is unknown or has no rulebook of its own.
    pub default: Rulebook,
    /// By challenge id.
    pub per_challenge: BTreeMap<ChallengeId, Rulebook>,
}

impl Rulebooks {
    /// The rulebook of an account in `challenge`.
    #[must_use]
    pub fn for_challenge(&self, challenge: Option<&ChallengeId>) -> &Rulebook {
        challenge
            .and_then(|c| self.per_challenge.get(c))
            .unwrap_or(&self.default)
    }
}

/// Thresholds of the cross-account detectors. Every key has a default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct DetectorConfig {
    /// Run the detectors at all. Default true.
    pub enabled: bool,
    /// `CROSS_ACCOUNT_HEDGING` fires for an account with at least this many trades held
    /// against an opposite trade of a linked account (N). Default 3; >= 1.
    pub hedging_min_trades: u32,
    /// `COPY_TRADING`: two opens count as copies when at most this many seconds apart (S).
    /// Default 10 (trade copiers replicate within a second or two; a wider window mostly
    /// adds coincidences in a busy market).
    pub copy_window_seconds: u32,
    /// `COPY_TRADING` fires when at least this share of an account's trades are copies (P).
    /// Default 0.5; in `(0, 1]`.
    pub copy_min_share: Decimal,
    /// ... and at least this many of them. Default 5; >= 1.
    pub copy_min_trades: u32,
    /// `MARTINGALE` fires on a run of at least this many lot increases, each right after a
    /// loss (K). Default 3; >= 1.
    pub martingale_min_run: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            hedging_min_trades: 3,
            copy_window_seconds: 10,
            copy_min_share: Decimal::new(5, 1),
            copy_min_trades: 5,
            martingale_min_run: 3,
        }
    }
}

impl DetectorConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`RulebookConfigError`] naming the first invalid setting.
    pub fn validate(&self) -> Result<(), RulebookConfigError> {
        if self.hedging_min_trades == 0 {
            return Err(bad("hedging_min_trades", "must be at least 1"));
        }
        if self.copy_min_share <= Decimal::ZERO || self.copy_min_share > Decimal::ONE {
            return Err(bad("copy_min_share", "must be within 0 (excluded) and 1"));
        }
        if self.copy_min_trades == 0 {
            return Err(bad("copy_min_trades", "must be at least 1"));
        }
        if self.martingale_min_run == 0 {
            return Err(bad("martingale_min_run", "must be at least 1"));
        }
        Ok(())
    }
}

/// Points each rulebook signal adds to the account's risk score (the total stays capped
/// at 100). Every key has a default; each within `0..=100`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RuleWeights {
    /// Points for `DAILY_LOSS_LIMIT_BREACHED`. Default 40.
    pub daily_loss_limit_breached: Decimal,
    /// Points for `MAX_LOSS_LIMIT_BREACHED`. Default 50.
    pub max_loss_limit_breached: Decimal,
    /// Points for `PROFIT_TARGET_REACHED`. Default 0 (a pass event, not a risk).
    pub profit_target_reached: Decimal,
    /// Points for `MIN_TRADING_DAYS_NOT_MET`. Default 0.
    pub min_trading_days_not_met: Decimal,
    /// Points for `CONSISTENCY_RULE_BREACHED`. Default 10.
    pub consistency_rule_breached: Decimal,
    /// Points for `MAX_LOT_SIZE_EXCEEDED`. Default 15.
    pub max_lot_size_exceeded: Decimal,
    /// Points for `MAX_OPEN_TRADES_EXCEEDED`. Default 15.
    pub max_open_trades_exceeded: Decimal,
    /// Points for `WEEKEND_HOLDING`. Default 10.
    pub weekend_holding: Decimal,
    /// Points for `NEWS_TRADING`. Default 15.
    pub news_trading: Decimal,
    /// Points for `CROSS_ACCOUNT_HEDGING`. Default 50.
    pub cross_account_hedging: Decimal,
    /// Points for `COPY_TRADING`. Default 50.
    pub copy_trading: Decimal,
    /// Points for `MARTINGALE`. Default 30.
    pub martingale: Decimal,
}

impl Default for RuleWeights {
    /// Failing breaches 40 (max loss 50), abuse detectors 50 (martingale 30), the softer
    /// rules 10-15, pass conditions 0.
    fn default() -> Self {
        let d = Decimal::from;
        Self {
            daily_loss_limit_breached: d(40),
            max_loss_limit_breached: d(50),
            profit_target_reached: d(0),
            min_trading_days_not_met: d(0),
            consistency_rule_breached: d(10),
            max_lot_size_exceeded: d(15),
            max_open_trades_exceeded: d(15),
            weekend_holding: d(10),
            news_trading: d(15),
            cross_account_hedging: d(50),
            copy_trading: d(50),
            martingale: d(30),
        }
    }
}

impl RuleWeights {
    /// The weight of `kind`.
    #[must_use]
    pub fn of(&self, kind: RuleKind) -> Decimal {
        match kind {
            RuleKind::DailyLossLimitBreached => self.daily_loss_limit_breached,
            RuleKind::MaxLossLimitBreached => self.max_loss_limit_breached,
            RuleKind::ProfitTargetReached => self.profit_target_reached,
            RuleKind::MinTradingDaysNotMet => self.min_trading_days_not_met,
            RuleKind::ConsistencyRuleBreached => self.consistency_rule_breached,
            RuleKind::MaxLotSizeExceeded => self.max_lot_size_exceeded,
            RuleKind::MaxOpenTradesExceeded => self.max_open_trades_exceeded,
            RuleKind::WeekendHolding => self.weekend_holding,
            RuleKind::NewsTrading => self.news_trading,
            RuleKind::CrossAccountHedging => self.cross_account_hedging,
            RuleKind::CopyTrading => self.copy_trading,
            RuleKind::Martingale => self.martingale,
        }
    }

    /// Checks every weight is within `0..=100`.
    ///
    /// # Errors
    /// [`RulebookConfigError`] naming the first weight out of range.
    pub fn validate(&self) -> Result<(), RulebookConfigError> {
        for &kind in RuleKind::ALL {
            let w = self.of(kind);
            if w < Decimal::ZERO || w > Decimal::ONE_HUNDRED {
                return Err(bad(kind.config_key(), "must be within 0..=100"));
            }
        }
        Ok(())
    }

    /// The severity shown for a signal of `kind` with this weight: by weight, CRITICAL
    /// from 40, HIGH from 25, MEDIUM from 10, LOW above 0, INFO at 0.
    #[must_use]
    pub fn severity(&self, kind: RuleKind) -> Severity {
        let w = self.of(kind);
        if w >= Decimal::from(40) {
            Severity::Critical
        } else if w >= Decimal::from(25) {
            Severity::High
        } else if w >= Decimal::TEN {
            Severity::Medium
        } else if w > Decimal::ZERO {
            Severity::Low
        } else {
            Severity::Info
        }
    }
}
