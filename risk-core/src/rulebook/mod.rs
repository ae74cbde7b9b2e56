//! The prop-firm rulebook: challenge rules per account and abuse detectors across
//! accounts, both over closed trades, both reporting [`RuleSignal`]s.
//!
//! - [`evaluate`] checks one account's trades against a [`Rulebook`] and decides its
//!   [`ChallengeStatus`]: `FAILED` at the first breach of a failing rule, `PASSED` at the
//!   first close where every pass condition holds, `ACTIVE` otherwise.
//! - [`detect`] runs the cross-account detectors (hedging between linked accounts, copy
//!   trading between users, martingale lot raising) over every account at once, by
//!   sweeps over (symbol, time) rather than pair by pair.
//! - [`rule_score`] adds the signals' configured weights ([`RuleWeights`]) to an account's
//!   metric score.
//!
//! Times are nanoseconds since the Unix epoch on input (as [`crate::metrics::TradeFacts`])
//! and [`DateTime<Utc>`] on output. Money is exact; nothing here reads a clock.

mod challenge;
mod config;
mod detect;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::ids::AccountId;
use crate::metrics::{epoch_nanos, ClosedTrade, MetricsError, PnlBasis};
use crate::model::Side;
use crate::num::ArithmeticError;
use crate::score::{AccountScore, RiskLevel, ScoreConfig};

pub use challenge::{evaluate, ChallengeStatus, Outcome};
pub use config::{
    DetectorConfig, MaxLossMode, NewsWindow, RuleWeights, Rulebook, RulebookConfigError,
    RulebookSpec, Rulebooks,
};
pub use detect::{
    copy_trading_of, detect, detect_only, link_clusters, DetectAccount, Detector, OpenIndex,
};

/// Why the rulebook could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RulebookError {
    /// A balance or sum overflowed.
    #[error(transparent)]
    Arithmetic(#[from] ArithmeticError),
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] RulebookConfigError),
}

/// The kinds of rulebook signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "SCREAMING_SNAKE_CASE"))]
pub enum RuleKind {
    /// A day fell more than `daily_loss_limit` × initial balance below its opening balance.
    DailyLossLimitBreached,
    /// The balance fell below the maximum-loss floor.
    MaxLossLimitBreached,
    /// The balance reached the profit target (a pass condition, not a risk).
    ProfitTargetReached,
    /// The profit target was reached with fewer trading days than required.
    MinTradingDaysNotMet,
    /// The profit target was reached with one day holding too much of the profit.
    ConsistencyRuleBreached,
    /// A trade was larger than `max_lot_size`.
    MaxLotSizeExceeded,
    /// More than `max_open_trades` trades were open at once.
    MaxOpenTradesExceeded,
    /// A trade was held over the weekend while that is forbidden.
    WeekendHolding,
    /// A trade opened or closed inside a news blackout window.
    NewsTrading,
    /// Opposite trades in one symbol at the same time in linked accounts.
    CrossAccountHedging,
    /// Trades opened together with another user's, in the same symbol and direction.
    CopyTrading,
    /// Lot size raised after losses, repeatedly.
    Martingale,
}

impl RuleKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [Self] = &[
        Self::DailyLossLimitBreached,
        Self::MaxLossLimitBreached,
        Self::ProfitTargetReached,
        Self::MinTradingDaysNotMet,
        Self::ConsistencyRuleBreached,
        Self::MaxLotSizeExceeded,
        Self::MaxOpenTradesExceeded,
        Self::WeekendHolding,
        Self::NewsTrading,
        Self::CrossAccountHedging,
        Self::CopyTrading,
        Self::Martingale,
    ];

    /// The upper-case name used in reports.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DailyLossLimitBreached => "DAILY_LOSS_LIMIT_BREACHED",
            Self::MaxLossLimitBreached => "MAX_LOSS_LIMIT_BREACHED",
            Self::ProfitTargetReached => "PROFIT_TARGET_REACHED",
            Self::MinTradingDaysNotMet => "MIN_TRADING_DAYS_NOT_MET",
            Self::ConsistencyRuleBreached => "CONSISTENCY_RULE_BREACHED",
            Self::MaxLotSizeExceeded => "MAX_LOT_SIZE_EXCEEDED",
            Self::MaxOpenTradesExceeded => "MAX_OPEN_TRADES_EXCEEDED",
            Self::WeekendHolding => "WEEKEND_HOLDING",
            Self::NewsTrading => "NEWS_TRADING",
            Self::CrossAccountHedging => "CROSS_ACCOUNT_HEDGING",
            Self::CopyTrading => "COPY_TRADING",
            Self::Martingale => "MARTINGALE",
        }
    }

    /// The kind's key in [`RuleWeights`] (its name in lower case).
    #[must_use]
    pub const fn config_key(self) -> &'static str {
        match self {
            Self::DailyLossLimitBreached => "daily_loss_limit_breached",
            Self::MaxLossLimitBreached => "max_loss_limit_breached",
            Self::ProfitTargetReached => "profit_target_reached",
            Self::MinTradingDaysNotMet => "min_trading_days_not_met",
            Self::ConsistencyRuleBreached => "consistency_rule_breached",
            Self::MaxLotSizeExceeded => "max_lot_size_exceeded",
            Self::MaxOpenTradesExceeded => "max_open_trades_exceeded",
            Self::WeekendHolding => "weekend_holding",
            Self::NewsTrading => "news_trading",
            Self::CrossAccountHedging => "cross_account_hedging",
            Self::CopyTrading => "copy_trading",
            Self::Martingale => "martingale",
        }
    }

    /// True for the challenge rules whose breach fails the account (daily loss, maximum
    /// loss, lot size, open trades, weekend holding, news trading).
    #[must_use]
    pub const fn fails_account(self) -> bool {
        matches!(
            self,
            Self::DailyLossLimitBreached
                | Self::MaxLossLimitBreached
                | Self::MaxLotSizeExceeded
                | Self::MaxOpenTradesExceeded
                | Self::WeekendHolding
                | Self::NewsTrading
        )
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What the rules and detectors need from one closed trade (compare
/// [`crate::metrics::TradeFacts`]): times, P&L, lot size, direction and symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleTrade {
    /// When the position was opened, in nanoseconds since the epoch.
    pub opened_at_ns: i64,
    /// When the position was closed, in nanoseconds since the epoch.
    pub closed_at_ns: i64,
    /// The P&L on the report's [`PnlBasis`] (net: `profit + commission + swap`).
    pub pnl: Decimal,
    /// Volume in lots.
    pub lots: Decimal,
    /// The opening side (the export's `action`: 0 buy, 1 sell).
    pub side: Side,
    /// The symbol as a small handle the caller assigns (equal symbols, equal handles).
    pub symbol: u32,
}

impl RuleTrade {
    /// The rule facts of `trade`, with `symbol` its interned handle and its P&L on
    /// `basis` (the metrics' [`crate::metrics::MetricsConfig::pnl_basis`]).
    ///
    /// # Errors
    /// [`MetricsError::Arithmetic`] when the P&L overflows,
    /// [`MetricsError::TimeOutOfRange`] for a time outside the nanosecond range.
    pub fn of(trade: &ClosedTrade, symbol: u32, basis: PnlBasis) -> Result<Self, MetricsError> {
        Ok(Self {
            opened_at_ns: epoch_nanos(trade.opened_at)?,
            closed_at_ns: epoch_nanos(trade.closed_at)?,
            pnl: trade.pnl(basis)?,
            lots: trade.volume,
            side: trade.side,
            symbol,
        })
    }
}

/// The close-time order the rules apply trades in (that of [`crate::metrics`]): by close
/// time, at the same instant losses first (ascending P&L), then by open time.
#[must_use]
pub fn close_order(a: &RuleTrade, b: &RuleTrade) -> Ordering {
    a.closed_at_ns
        .cmp(&b.closed_at_ns)
        .then_with(|| a.pnl.cmp(&b.pnl))
        .then_with(|| a.opened_at_ns.cmp(&b.opened_at_ns))
}

/// Sorts `trades` into [`close_order`]. Callers that evaluate the same trades more than
/// once (rules and detectors) sort once; the evaluators then read them as they are.
pub fn sort_close_order(trades: &mut [RuleTrade]) {
    trades.sort_unstable_by(close_order);
}

/// `trades` in [`close_order`]: borrowed when already sorted, else a sorted copy.
fn in_close_order(trades: &[RuleTrade]) -> Cow<'_, [RuleTrade]> {
    if trades.is_sorted_by(|a, b| close_order(a, b) != Ordering::Greater) {
        Cow::Borrowed(trades)
    } else {
        let mut sorted = trades.to_vec();
        sort_close_order(&mut sorted);
        Cow::Owned(sorted)
    }
}

/// A rule breach, a pass event or a detection on one account.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RuleSignal {
    /// Which rule or detector.
    pub kind: RuleKind,
    /// When it first happened.
    pub at: DateTime<Utc>,
    /// The observed value (see each kind's rule in [`evaluate`] and [`detect`]).
    pub value: Decimal,
    /// The limit it is compared with.
    pub limit: Decimal,
    /// The other accounts involved (detectors), sorted.
    pub related: Vec<AccountId>,
}

impl RuleSignal {
    fn new(kind: RuleKind, at_ns: i64, value: Decimal, limit: Decimal) -> Self {
        Self {
            kind,
            at: DateTime::from_timestamp_nanos(at_ns),
            value,
            limit,
            related: Vec::new(),
        }
    }
}

/// An account's metric score plus its rulebook signals' weights, capped at 100, with the
/// level of the sum under `config`.
#[must_use]
pub fn rule_score(
    base: &AccountScore,
    signals: &[RuleSignal],
    weights: &RuleWeights,
    config: &ScoreConfig,
) -> (Decimal, RiskLevel) {
    let added = signals.iter().fold(Decimal::ZERO, |sum, s| {
        sum.saturating_add(weights.of(s.kind))
    });
    let score = base
        .score
        .saturating_add(added)
        .min(Decimal::ONE_HUNDRED)
        .normalize();
    (score, config.level(score))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::score_account;
    use rust_decimal_macros::dec;

    #[test]
    fn names_and_keys_agree() {
        for k in RuleKind::ALL {
            assert_eq!(k.as_str().to_ascii_lowercase(), k.config_key());
        }
        assert_eq!(RuleKind::ALL.len(), 12);
    }

    #[test]
    fn weights_add_to_the_score_and_cap_at_100() {
        let config = ScoreConfig::default();
        let base = score_account(&crate::metrics::TradeMetrics::default(), &config);
        let w = RuleWeights::default();
        let s = |kind| RuleSignal::new(kind, 0, Decimal::ONE, Decimal::ONE);
        let (score, level) = rule_score(&base, &[s(RuleKind::Martingale)], &w, &config);
        assert_eq!((score, level), (dec!(30), RiskLevel::Medium));
        let all = [
            s(RuleKind::CopyTrading),
            s(RuleKind::CrossAccountHedging),
            s(RuleKind::Martingale),
        ];
        assert_eq!(rule_score(&base, &all, &w, &config).0, dec!(100));
        let target = [s(RuleKind::ProfitTargetReached)];
        assert_eq!(rule_score(&base, &target, &w, &config).0, dec!(0));
        assert_eq!(w.validate(), Ok(()));
        let wrong = RuleWeights {
            news_trading: dec!(101),
            ..RuleWeights::default()
        };
        assert_eq!(
            wrong.validate().map_err(|e| e.field),
            Err("news_trading".to_owned())
        );
    }
}
