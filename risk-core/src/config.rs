//! The engine's configuration: margin ladders, rules, the check's limits, and the
//! trade-metric and risk-score settings (so all of it swaps atomically together).
//!
//! A [`RiskConfig`] is immutable once built; the engine swaps whole configs atomically.
//! Ladders and rule sets validate themselves when built, so a `RiskConfig` whose
//! [`RiskConfig::validate`] passes is fully valid.

use std::collections::HashMap;

use chrono::TimeDelta;

use crate::ids::Symbol;
use crate::margin::{LadderError, TierLadder};
use crate::metrics::{MetricsConfig, MetricsConfigError};
use crate::num::Ratio;
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
    /// A limit is out of range.
    #[error("limits.{field}: {problem}")]
    Limit {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
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

/// The pre-trade check's thresholds and erroneous-order controls.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct CheckLimits {
    /// A mark older than this (milliseconds) is `STALE_DATA`. Default 5,000.
    pub max_mark_age_ms: u64,
    /// Projected margin ratio at or above which a margin-call event is emitted. Default 0.8.
    pub margin_call_ratio: Ratio,
    /// Projected margin ratio at or above which an order is `LIQUIDATION_RISK`. Default 1.
    pub liquidation_ratio: Ratio,
    /// A market order is valued at the mark widened by this fraction against the taker
    /// (buy: mark x (1 + s), sell: mark x (1 - s)). Default 0.01; must be below 1.
    pub market_slippage: Ratio,
    /// Per-account order-rate limit; `None` disables it. Default 50 per 1,000 ms.
    pub rate_limit: Option<RateLimit>,
    /// An order id seen within this many milliseconds is `DUPLICATE_ORDER`. Default 600,000.
    pub duplicate_horizon_ms: u64,
    /// Whether a `HALTED` state still lets verified position-reducing exits through.
    /// Default false.
    pub halted_allows_exits: bool,
}

impl Default for CheckLimits {
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
    /// The maximum mark age as a duration.
    #[must_use]
    pub fn max_mark_age(&self) -> TimeDelta {
        millis(self.max_mark_age_ms)
    }

    /// The duplicate horizon as a duration.
    #[must_use]
    pub fn duplicate_horizon(&self) -> TimeDelta {
        millis(self.duplicate_horizon_ms)
    }

    /// How long approved orders must be remembered for both the duplicate and rate checks.
    #[must_use]
    pub fn history_horizon(&self) -> TimeDelta {
        let rate = self.rate_limit.map_or(0, |r| r.window_ms);
        millis(self.duplicate_horizon_ms.max(rate))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let limit = |field, problem: &str| {
            Err(ConfigError::Limit {
                field,
                problem: problem.to_owned(),
            })
        };
        if self.liquidation_ratio.get() <= Decimal::ZERO {
            return limit("liquidation_ratio", "must be greater than zero");
        }
        if self.margin_call_ratio > self.liquidation_ratio {
            return limit("margin_call_ratio", "must not exceed liquidation_ratio");
        }
        if self.market_slippage.get() >= Decimal::ONE {
            return limit("market_slippage", "must be below 1");
        }
        if self.max_mark_age_ms == 0 {
            return limit("max_mark_age_ms", "must be greater than zero");
        }
        if let Some(r) = self.rate_limit {
            if r.max_orders == 0 || r.window_ms == 0 {
                return limit(
                    "rate_limit",
                    "max_orders and window_ms must be greater than zero",
                );
            }
        }
        for (field, ms) in [
            ("max_mark_age_ms", self.max_mark_age_ms),
            ("duplicate_horizon_ms", self.duplicate_horizon_ms),
        ] {
            if ms > MAX_MILLIS {
                return limit(field, "must be at most 10 years");
            }
        }
        if self.rate_limit.is_some_and(|r| r.window_ms > MAX_MILLIS) {
            return limit("rate_limit", "window_ms must be at most 10 years");
        }
        Ok(())
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
    /// Per-symbol ladders.
    #[cfg_attr(feature = "serde", serde(default))]
    pub ladders: HashMap<Symbol, TierLadder>,
    /// Dynamic rules.
    #[cfg_attr(feature = "serde", serde(default))]
    pub rules: RuleSet,
    /// Thresholds and erroneous-order controls.
    #[cfg_attr(feature = "serde", serde(default))]
    pub limits: CheckLimits,
    /// Trade-metric settings (initial balance, HFT threshold, day boundary).
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
            ladders: HashMap::new(),
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

    /// Checks what the component constructors cannot: the limits' ranges.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field and the problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.limits.validate()?;
        self.metrics.validate()?;
        self.score.validate()?;
        Ok(())
    }
}
