//! The engine's configuration: margin ladders, rules, the check's limits, and the
//! trade-metric and risk-score settings (so all of it swaps atomically together).
//!
//! A [`RiskConfig`] is immutable once built; the engine swaps whole configs atomically.
//! Ladders, rule sets and check limits validate themselves when built, so a `RiskConfig` whose
//! [`RiskConfig::validate`] passes is fully valid.

use chrono::TimeDelta;

use crate::hash::HashMap;
use crate::ids::Symbol;
use crate::margin::{LadderError, TierLadder};
use crate::metrics::{MetricsConfig, MetricsConfigError};
use crate::num::{FieldError, Ratio};
use crate::rules::{RuleError, RuleSet};
use crate::score::{ScoreConfig, ScoreConfigError};
use crate::Decimal;

/// A configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A margin ladder is invalid.
    #[error("margin ladder for `{symbol}`: {source}")]
    Ladder {
        /// The symbol (`*` for the default ladder).
        symbol: String,
        /// What is wrong with it.
        source: LadderError,
    },
    /// The rule set is invalid.
    #[error("rules: {0}")]
    Rules(#[from] RuleError),
    /// A trade-metric setting is out of range.
    #[error("metrics: {0}")]
    Metrics(#[from] MetricsConfigError),
    /// A risk-score setting is out of range.
    #[error("score: {0}")]
    Score(#[from] ScoreConfigError),
}

/// An order-rate limit: at most `max_orders` approved orders per `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct RateLimit {
    /// Orders allowed in one window.
    pub max_orders: u32,
    /// The sliding window, in milliseconds.
    pub window_ms: u64,
}

impl RateLimit {
    /// The window as a duration.
    #[must_use]
    pub fn window(&self) -> TimeDelta {
        millis(self.window_ms)
    }
}

/// The pre-trade check's thresholds and erroneous-order controls, valid by construction:
/// built by [`CheckLimits::new`] from a [`CheckLimitsSpec`] (serde reads it the same way).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(try_from = "CheckLimitsSpec", into = "CheckLimitsSpec")
)]
pub struct CheckLimits {
    spec: CheckLimitsSpec,
}

/// The fields of [`CheckLimits`] before validation; its serde form (every key optional,
/// defaulting as documented).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct CheckLimitsSpec {
    /// A mark older than this (milliseconds) is `STALE_DATA`. Default 5,000; from 1 ms to
    /// 10 years.
    pub max_mark_age_ms: u64,
    /// Projected margin ratio at or above which a margin-call event is emitted. Default
    /// 0.8; at most `liquidation_ratio`.
    pub margin_call_ratio: Ratio,
    /// Projected margin ratio at or above which an order is `LIQUIDATION_RISK`. Default 1;
    /// greater than zero.
    pub liquidation_ratio: Ratio,
    /// A market order is valued at the mark widened by this fraction against the taker
    /// (buy: mark x (1 + s), sell: mark x (1 - s)). Default 0.01; must be below 1.
    pub market_slippage: Ratio,
    /// Per-account order-rate limit; `None` disables it. Default 50 per 1,000 ms.
    pub rate_limit: Option<RateLimit>,
    /// An order id seen within this many milliseconds is `DUPLICATE_ORDER`. Default
    /// 600,000; at most 10 years.
    pub duplicate_horizon_ms: u64,
    /// Whether a `HALTED` state still lets verified position-reducing exits through.
    /// Default false.
    pub halted_allows_exits: bool,
}

impl Default for CheckLimitsSpec {
    fn default() -> Self {
        Self {
            max_mark_age_ms: 5_000,
            margin_call_ratio: Ratio::from_scaled(8, 1),
            liquidation_ratio: Ratio::ONE,
            market_slippage: Ratio::from_scaled(1, 2),
            rate_limit: Some(RateLimit {
                max_orders: 50,
                window_ms: 1_000,
            }),
            duplicate_horizon_ms: 600_000,
            halted_allows_exits: false,
        }
    }
}

impl CheckLimits {
    /// Builds the limits from their fields.
    ///
    /// # Errors
    /// [`FieldError`] naming the first field that breaks its rule.
    pub fn new(spec: CheckLimitsSpec) -> Result<Self, FieldError> {
        if spec.liquidation_ratio.get() <= Decimal::ZERO {
            return Err(FieldError::rule(
                "liquidation_ratio",
                spec.liquidation_ratio,
                "greater than zero",
            ));
        }
        if spec.margin_call_ratio > spec.liquidation_ratio {
            return Err(FieldError::rule(
                "margin_call_ratio",
                spec.margin_call_ratio,
                format!("at most liquidation_ratio ({})", spec.liquidation_ratio),
            ));
        }
        if spec.market_slippage.get() >= Decimal::ONE {
            return Err(FieldError::rule(
                "market_slippage",
                spec.market_slippage,
                "below 1",
            ));
        }
        let ten_years = "at most 10 years (315,187,200,000 ms)";
        if spec.max_mark_age_ms == 0 {
            return Err(FieldError::rule("max_mark_age_ms", 0, "greater than zero"));
        }
        if spec.max_mark_age_ms > MAX_MILLIS {
            return Err(FieldError::rule(
                "max_mark_age_ms",
                spec.max_mark_age_ms,
                ten_years,
            ));
        }
        if spec.duplicate_horizon_ms > MAX_MILLIS {
            return Err(FieldError::rule(
                "duplicate_horizon_ms",
                spec.duplicate_horizon_ms,
                ten_years,
            ));
        }
        if let Some(r) = spec.rate_limit {
            if r.max_orders == 0 {
                return Err(FieldError::rule(
                    "rate_limit.max_orders",
                    0,
                    "greater than zero",
                ));
            }
            if r.window_ms == 0 {
                return Err(FieldError::rule(
                    "rate_limit.window_ms",
                    0,
                    "greater than zero",
                ));
            }
            if r.window_ms > MAX_MILLIS {
                return Err(FieldError::rule(
                    "rate_limit.window_ms",
                    r.window_ms,
                    ten_years,
                ));
            }
        }
        Ok(Self { spec })
    }

    /// The fields, to inspect or to change and rebuild with [`CheckLimits::new`].
    #[must_use]
    pub fn spec(&self) -> &CheckLimitsSpec {
        &self.spec
    }

    /// The maximum mark age as a duration.
    #[must_use]
    pub fn max_mark_age(&self) -> TimeDelta {
        millis(self.spec.max_mark_age_ms)
    }

    /// The duplicate horizon as a duration.
    #[must_use]
    pub fn duplicate_horizon(&self) -> TimeDelta {
        millis(self.spec.duplicate_horizon_ms)
    }

    /// How long approved orders must be remembered for both the duplicate and rate checks.
    #[must_use]
    pub fn history_horizon(&self) -> TimeDelta {
        let rate = self.spec.rate_limit.map_or(0, |r| r.window_ms);
        millis(self.spec.duplicate_horizon_ms.max(rate))
    }

    /// The margin-call threshold.
    #[must_use]
    pub fn margin_call_ratio(&self) -> Ratio {
        self.spec.margin_call_ratio
    }

    /// The liquidation threshold.
    #[must_use]
    pub fn liquidation_ratio(&self) -> Ratio {
        self.spec.liquidation_ratio
    }

    /// The market-order slippage buffer.
    #[must_use]
    pub fn market_slippage(&self) -> Ratio {
        self.spec.market_slippage
    }

    /// The order-rate limit, if any.
    #[must_use]
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.spec.rate_limit
    }

    /// Whether `HALTED` lets verified exits through.
    #[must_use]
    pub fn halted_allows_exits(&self) -> bool {
        self.spec.halted_allows_exits
    }
}

impl TryFrom<CheckLimitsSpec> for CheckLimits {
    type Error = FieldError;
    fn try_from(spec: CheckLimitsSpec) -> Result<Self, FieldError> {
        Self::new(spec)
    }
}

impl From<CheckLimits> for CheckLimitsSpec {
    fn from(limits: CheckLimits) -> Self {
        limits.spec
    }
}

/// Ten years in milliseconds: the longest duration a limit may name.
const MAX_MILLIS: u64 = 10 * 366 * 24 * 3_600 * 1_000;

fn millis(ms: u64) -> TimeDelta {
    TimeDelta::milliseconds(i64::try_from(ms.min(MAX_MILLIS)).unwrap_or(i64::MAX))
}

/// The whole engine configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct RiskConfig {
    /// The ladder for symbols without their own.
    pub default_ladder: TierLadder,
    /// Per-symbol ladders (foldhash, randomly seeded: every check looks its symbol up here).
    #[cfg_attr(feature = "serde", serde(default))]
    pub ladders: HashMap<Symbol, TierLadder>,
    /// Dynamic rules.
    #[cfg_attr(feature = "serde", serde(default))]
    pub rules: RuleSet,
    /// Thresholds and erroneous-order controls.
    #[cfg_attr(feature = "serde", serde(default))]
    pub limits: CheckLimits,
    /// Trade-metric settings (initial balance, HFT threshold, day boundary, P&L basis,
    /// window).
    #[cfg_attr(feature = "serde", serde(default))]
    pub metrics: MetricsConfig,
    /// Risk-score thresholds, weights and aggregation.
    #[cfg_attr(feature = "serde", serde(default))]
    pub score: ScoreConfig,
}

impl RiskConfig {
    /// A config with the given default ladder, no symbol ladders, no rules and default limits.
    #[must_use]
    pub fn new(default_ladder: TierLadder) -> Self {
        Self {
            default_ladder,
            ladders: HashMap::default(),
            rules: RuleSet::default(),
            limits: CheckLimits::default(),
            metrics: MetricsConfig::default(),
            score: ScoreConfig::default(),
        }
    }

    /// The ladder for `symbol`.
    #[must_use]
    pub fn ladder(&self, symbol: &Symbol) -> &TierLadder {
        self.ladders.get(symbol).unwrap_or(&self.default_ladder)
    }

    /// Checks what the component constructors do not: the trade-metric and score
    /// settings (ladders, rules and limits are valid by construction).
    ///
    /// # Errors
    /// [`ConfigError`] naming the field and the problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.metrics.validate()?;
        self.score.validate()?;
        Ok(())
    }
}
