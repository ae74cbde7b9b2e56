//! Risk scores from trade metrics: per account, then per user and per challenge.
//!
//! # Account score
//! Each threshold in [`ScoreConfig`] is a named [`SignalKind`]. A signal fires when the
//! account's metric is strictly past its threshold (above it for "max" settings, below it
//! for "min" settings). How far past decides the [`Severity`], from the relative excess
//! `e = |observed - threshold| / threshold` (infinite when the threshold is 0):
//!
//! | excess `e`      | severity | share of the signal's weight |
//! |-----------------|----------|------------------------------|
//! | `e < 0.25`      | LOW      | 0.25                         |
//! | `0.25 <= e < 0.5` | MEDIUM | 0.50                         |
//! | `0.5 <= e < 1`  | HIGH     | 0.75                         |
//! | `e >= 1`        | CRITICAL | 1.00                         |
//!
//! The signal's contribution is its weight times that share; the account score is the sum
//! of the contributions, capped at 100, and its [`RiskLevel`] follows from
//! [`ScoreConfig::medium_from`], [`ScoreConfig::high_from`] and [`ScoreConfig::critical_from`].
//!
//! The ratio signals (HFT share, stop-loss usage, profit factor) need a sample: they are
//! evaluated only for accounts with at least [`ScoreConfig::min_trades`] trades. The others
//! (layering, drawdown, daily loss, loss streak) are absolute and always evaluated. The
//! profit-factor signal is not evaluated when the profit factor is undefined (no loss).
//!
//! # User and challenge scores
//! [`aggregate`] combines accounts: the group's score is its riskiest account's score
//! (clean accounts never dilute a bad one), plus [`ScoreConfig::breadth_points`] for each
//! *other* account at HIGH or above, capped at 100. The group keeps the per-account
//! breakdown, sorted by score descending, then by login.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::ids::AccountId;
use crate::metrics::TradeMetrics;
use crate::model::{wire_enum, Severity};

/// An invalid [`ScoreConfig`] setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid score setting `{field}`: {rule}")]
pub struct ScoreConfigError {
    /// The setting's name as written in a config file.
    pub field: &'static str,
    /// What it must be, in words.
    pub rule: &'static str,
}

/// Thresholds and weights of the risk score. Every field has a default (see
/// [`ScoreConfig::default`]), so a partial config table works.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct ScoreConfig {
    /// Ratio signals need at least this many trades. Default 5.
    pub min_trades: u64,
    /// [`SignalKind::HftTrading`] fires when the HFT share is above this. Default 0.30.
    pub hft_ratio_max: Decimal,
    /// Weight of [`SignalKind::HftTrading`]. Default 25.
    pub hft_weight: Decimal,
    /// [`SignalKind::Layering`] fires above this many concurrent trades. Default 5.
    pub max_concurrent_max: u64,
    /// Weight of [`SignalKind::Layering`]. Default 20.
    pub layering_weight: Decimal,
    /// [`SignalKind::LowStopLossUsage`] fires when the stop-loss ratio is below this.
    /// Default 0.50.
    pub stop_loss_ratio_min: Decimal,
    /// Weight of [`SignalKind::LowStopLossUsage`]. Default 15.
    pub stop_loss_weight: Decimal,
    /// [`SignalKind::Drawdown`] fires when the max relative drawdown is above this.
    /// Default 0.10 (the usual prop-firm maximum loss).
    pub drawdown_max: Decimal,
    /// Weight of [`SignalKind::Drawdown`]. Default 25.
    pub drawdown_weight: Decimal,
    /// [`SignalKind::DailyLoss`] fires when the max daily loss ratio is above this.
    /// Default 0.05 (the usual prop-firm daily loss limit).
    pub daily_loss_max: Decimal,
    /// Weight of [`SignalKind::DailyLoss`]. Default 20.
    pub daily_loss_weight: Decimal,
    /// [`SignalKind::LowProfitFactor`] fires when the profit factor is below this.
    /// Default 1.0.
    pub profit_factor_min: Decimal,
    /// Weight of [`SignalKind::LowProfitFactor`]. Default 10.
    pub profit_factor_weight: Decimal,
    /// [`SignalKind::LossStreak`] fires above this many consecutive losses. Default 8.
    pub consecutive_losses_max: u64,
    /// Weight of [`SignalKind::LossStreak`]. Default 10.
    pub loss_streak_weight: Decimal,
    /// Scores from here are MEDIUM. Default 25.
    pub medium_from: Decimal,
    /// Scores from here are HIGH. Default 50.
    pub high_from: Decimal,
    /// Scores from here are CRITICAL. Default 75.
    pub critical_from: Decimal,
    /// Points a user or challenge score adds for each account at HIGH or above beyond the
    /// riskiest one. Default 5.
    pub breadth_points: Decimal,
    /// An account whose score goes above this (from at or below it, or first seen above
    /// it) raises the signal service's `account.risk_score_exceeded` event: the trigger of
    /// the FastAPI risk-signal service riskgate replaces. Scoring and levels do not use it.
    /// Default 80; within `0..=100`.
    pub risk_threshold: Decimal,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            min_trades: 5,
            hft_ratio_max: Decimal::new(30, 2),
            hft_weight: Decimal::from(25),
            max_concurrent_max: 5,
            layering_weight: Decimal::from(20),
            stop_loss_ratio_min: Decimal::new(50, 2),
            stop_loss_weight: Decimal::from(15),
            drawdown_max: Decimal::new(10, 2),
            drawdown_weight: Decimal::from(25),
            daily_loss_max: Decimal::new(5, 2),
            daily_loss_weight: Decimal::from(20),
            profit_factor_min: Decimal::ONE,
            profit_factor_weight: Decimal::from(10),
            consecutive_losses_max: 8,
            loss_streak_weight: Decimal::from(10),
            medium_from: Decimal::from(25),
            high_from: Decimal::from(50),
            critical_from: Decimal::from(75),
            breadth_points: Decimal::from(5),
            risk_threshold: Decimal::from(80),
        }
    }
}

impl ScoreConfig {
    /// Checks every setting: ratio thresholds in `[0, 1]`, the profit factor threshold
    /// `>= 0`, weights, breadth points and the risk threshold in `[0, 100]`, and
    /// `0 < medium_from < high_from < critical_from <= 100`.
    ///
    /// # Errors
    /// [`ScoreConfigError`] naming the first invalid setting.
    pub fn validate(&self) -> Result<(), ScoreConfigError> {
        let hundred = Decimal::ONE_HUNDRED;
        for (field, v) in [
            ("hft_ratio_max", self.hft_ratio_max),
            ("stop_loss_ratio_min", self.stop_loss_ratio_min),
            ("drawdown_max", self.drawdown_max),
            ("daily_loss_max", self.daily_loss_max),
        ] {
            if v < Decimal::ZERO || v > Decimal::ONE {
                return Err(ScoreConfigError {
                    field,
                    rule: "must be within 0..=1",
                });
            }
        }
        if self.profit_factor_min < Decimal::ZERO {
            return Err(ScoreConfigError {
                field: "profit_factor_min",
                rule: "must be 0 or more",
            });
        }
        for (field, v) in [
            ("hft_weight", self.hft_weight),
            ("layering_weight", self.layering_weight),
            ("stop_loss_weight", self.stop_loss_weight),
            ("drawdown_weight", self.drawdown_weight),
            ("daily_loss_weight", self.daily_loss_weight),
            ("profit_factor_weight", self.profit_factor_weight),
            ("loss_streak_weight", self.loss_streak_weight),
            ("breadth_points", self.breadth_points),
            ("risk_threshold", self.risk_threshold),
        ] {
            if v < Decimal::ZERO || v > hundred {
                return Err(ScoreConfigError {
                    field,
                    rule: "must be within 0..=100",
                });
            }
        }
        if self.medium_from <= Decimal::ZERO {
            return Err(ScoreConfigError {
                field: "medium_from",
                rule: "must be greater than 0",
            });
        }
        if self.high_from <= self.medium_from {
            return Err(ScoreConfigError {
                field: "high_from",
                rule: "must be greater than medium_from",
            });
        }
        if self.critical_from <= self.high_from || self.critical_from > hundred {
            return Err(ScoreConfigError {
                field: "critical_from",
                rule: "must be greater than high_from and at most 100",
            });
        }
        Ok(())
    }

    /// The level of a score under these thresholds.
    #[must_use]
    pub fn level(&self, score: Decimal) -> RiskLevel {
        if score >= self.critical_from {
            RiskLevel::Critical
        } else if score >= self.high_from {
            RiskLevel::High
        } else if score >= self.medium_from {
            RiskLevel::Medium
        } else {
            RiskLevel::Low
        }
    }
}

wire_enum!(
    /// The overall risk level of a score.
    RiskLevel {
        /// Below `medium_from`.
        Low = "LOW",
        /// From `medium_from`.
        Medium = "MEDIUM",
        /// From `high_from`.
        High = "HIGH",
        /// From `critical_from`.
        Critical = "CRITICAL",
    }
);

wire_enum!(
    /// The kinds of risk signal, one per threshold of [`ScoreConfig`].
    SignalKind {
        /// Too large a share of trades held under the HFT threshold.
        HftTrading = "HFT_TRADING",
        /// Too many trades open at once (layering / grid building).
        Layering = "LAYERING",
        /// Too few trades protected by a stop-loss.
        LowStopLossUsage = "LOW_STOP_LOSS_USAGE",
        /// The balance curve fell too far from a peak.
        Drawdown = "DRAWDOWN",
        /// One day lost too much of its opening balance.
        DailyLoss = "DAILY_LOSS",
        /// Losses outweigh profits.
        LowProfitFactor = "LOW_PROFIT_FACTOR",
        /// Too many losses in a row.
        LossStreak = "LOSS_STREAK",
    }
);

/// A threshold that an account's metrics breached.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Signal {
    /// Which threshold.
    pub kind: SignalKind,
    /// How far past it, see the [module documentation](self).
    pub severity: Severity,
    /// Points added to the score.
    pub contribution: Decimal,
    /// The account's metric value.
    pub observed: Decimal,
    /// The configured threshold.
    pub threshold: Decimal,
}

/// An account's risk score.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AccountScore {
    /// 0 to 100.
    pub score: Decimal,
    /// The level of `score`.
    pub level: RiskLevel,
    /// The signals that fired, in [`SignalKind`] order.
    pub signals: Vec<Signal>,
}

enum Direction {
    Above,
    Below,
}

fn signal(
    kind: SignalKind,
    direction: Direction,
    observed: Decimal,
    threshold: Decimal,
    weight: Decimal,
) -> Option<Signal> {
    let gap = match direction {
        Direction::Above if observed > threshold => observed.saturating_sub(threshold),
        Direction::Below if observed < threshold => threshold.saturating_sub(observed),
        _ => return None,
    };
    let excess = gap.checked_div(threshold).unwrap_or(Decimal::MAX);
    let (severity, share) = if excess < Decimal::new(25, 2) {
        (Severity::Low, Decimal::new(25, 2))
    } else if excess < Decimal::new(50, 2) {
        (Severity::Medium, Decimal::new(50, 2))
    } else if excess < Decimal::ONE {
        (Severity::High, Decimal::new(75, 2))
    } else {
        (Severity::Critical, Decimal::ONE)
    };
    Some(Signal {
        kind,
        severity,
        contribution: weight.saturating_mul(share),
        observed,
        threshold,
    })
}

/// Scores one account's metrics.
///
/// Assumes a validated `config` (weights within 0..=100, so nothing can overflow).
#[must_use]
pub fn score_account(metrics: &TradeMetrics, config: &ScoreConfig) -> AccountScore {
    let sampled = metrics.trades >= config.min_trades && metrics.trades > 0;
    let mut signals = Vec::new();
    let mut fire = |s: Option<Signal>| signals.extend(s);
    if sampled {
        fire(signal(
            SignalKind::HftTrading,
            Direction::Above,
            metrics.hft_ratio,
            config.hft_ratio_max,
            config.hft_weight,
        ));
    }
    fire(signal(
        SignalKind::Layering,
        Direction::Above,
        Decimal::from(metrics.max_concurrent_trades),
        Decimal::from(config.max_concurrent_max),
        config.layering_weight,
    ));
    if sampled {
        fire(signal(
            SignalKind::LowStopLossUsage,
            Direction::Below,
            metrics.stop_loss_ratio,
            config.stop_loss_ratio_min,
            config.stop_loss_weight,
        ));
    }
    fire(signal(
        SignalKind::Drawdown,
        Direction::Above,
        metrics.max_relative_drawdown,
        config.drawdown_max,
        config.drawdown_weight,
    ));
    fire(signal(
        SignalKind::DailyLoss,
        Direction::Above,
        metrics.max_daily_loss_ratio,
        config.daily_loss_max,
        config.daily_loss_weight,
    ));
    if sampled {
        if let Some(pf) = metrics.profit_factor {
            fire(signal(
                SignalKind::LowProfitFactor,
                Direction::Below,
                pf,
                config.profit_factor_min,
                config.profit_factor_weight,
            ));
        }
    }
    fire(signal(
        SignalKind::LossStreak,
        Direction::Above,
        Decimal::from(metrics.max_consecutive_losses),
        Decimal::from(config.consecutive_losses_max),
        config.loss_streak_weight,
    ));
    let total: Decimal = signals.iter().map(|s| s.contribution).sum();
    let score = total.min(Decimal::ONE_HUNDRED).normalize();
    AccountScore {
        score,
        level: config.level(score),
        signals,
    }
}

/// One account's line in a user or challenge breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AccountBreakdown {
    /// The account's login.
    pub account: AccountId,
    /// Its trade count.
    pub trades: u64,
    /// Its score.
    pub score: Decimal,
    /// Its level.
    pub level: RiskLevel,
}

/// The score of a group of accounts (a user or a challenge).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GroupScore {
    /// 0 to 100, by the rule in the [module documentation](self).
    pub score: Decimal,
    /// The level of `score`.
    pub level: RiskLevel,
    /// Total trades over the accounts.
    pub trades: u64,
    /// Accounts at MEDIUM or above.
    pub flagged_accounts: u64,
    /// How many accounts raised each signal.
    pub signal_counts: BTreeMap<SignalKind, u64>,
    /// Every account, riskiest first (ties by login).
    pub accounts: Vec<AccountBreakdown>,
}

/// Combines account scores into a user or challenge score (rule in the module docs).
#[must_use]
pub fn aggregate<'a, I>(accounts: I, config: &ScoreConfig) -> GroupScore
where
    I: IntoIterator<Item = (&'a AccountId, &'a AccountScore, u64)>,
{
    let mut out = GroupScore {
        score: Decimal::ZERO,
        level: RiskLevel::Low,
        trades: 0,
        flagged_accounts: 0,
        signal_counts: BTreeMap::new(),
        accounts: Vec::new(),
    };
    let mut high_or_above = 0_u32;
    for (account, score, trades) in accounts {
        out.trades = out.trades.saturating_add(trades);
        if score.level >= RiskLevel::Medium {
            out.flagged_accounts = out.flagged_accounts.saturating_add(1);
        }
        if score.level >= RiskLevel::High {
            high_or_above = high_or_above.saturating_add(1);
        }
        for s in &score.signals {
            let count = out.signal_counts.entry(s.kind).or_default();
            *count = count.saturating_add(1);
        }
        out.accounts.push(AccountBreakdown {
            account: account.clone(),
            trades,
            score: score.score,
            level: score.level,
        });
    }
    out.accounts.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| a.account.cmp(&b.account))
    });
    let riskiest = out.accounts.first().map_or(Decimal::ZERO, |a| a.score);
    let extra = Decimal::from(high_or_above.saturating_sub(1));
    let bonus = config
        .breadth_points
        .checked_mul(extra)
        .unwrap_or(Decimal::ONE_HUNDRED);
    let score = riskiest
        .saturating_add(bonus)
        .min(Decimal::ONE_HUNDRED)
        .normalize();
    out.score = score;
    out.level = config.level(score);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn clean(trades: u64) -> TradeMetrics {
        TradeMetrics {
            trades,
            wins: trades,
            win_ratio: Decimal::ONE,
            stop_loss_trades: trades,
            stop_loss_ratio: Decimal::ONE,
            max_concurrent_trades: 1,
            ..TradeMetrics::default()
        }
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = ScoreConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.hft_ratio_max, dec!(0.30));
        assert_eq!(c.drawdown_max, dec!(0.10));
        assert_eq!(c.max_concurrent_max, 5);
    }

    #[test]
    fn clean_account_scores_zero() {
        let s = score_account(&clean(10), &ScoreConfig::default());
        assert_eq!(s.score, Decimal::ZERO);
        assert_eq!(s.level, RiskLevel::Low);
        assert!(s.signals.is_empty());
    }

    #[test]
    fn severity_bands_and_contributions() {
        let c = ScoreConfig::default();
        // Drawdown threshold 0.10, weight 25.
        for (dd, severity, points) in [
            (dec!(0.10), None, dec!(0)),
            (dec!(0.12), Some(Severity::Low), dec!(6.25)),
            (dec!(0.125), Some(Severity::Medium), dec!(12.5)),
            (dec!(0.15), Some(Severity::High), dec!(18.75)),
            (dec!(0.20), Some(Severity::Critical), dec!(25)),
            (dec!(0.90), Some(Severity::Critical), dec!(25)),
        ] {
            let m = TradeMetrics {
                max_relative_drawdown: dd,
                ..clean(10)
            };
            let s = score_account(&m, &c);
            assert_eq!(
                s.signals.first().map(|x| x.severity),
                severity,
                "drawdown {dd}"
            );
            assert_eq!(s.score, points, "drawdown {dd}");
        }
    }

    #[test]
    fn every_signal_can_fire_and_the_score_is_capped() {
        let m = TradeMetrics {
            trades: 20,
            hft_ratio: dec!(0.9),
            max_concurrent_trades: 12,
            stop_loss_ratio: Decimal::ZERO,
            max_relative_drawdown: dec!(0.3),
            max_daily_loss_ratio: dec!(0.2),
            profit_factor: Some(Decimal::ZERO),
            max_consecutive_losses: 20,
            ..TradeMetrics::default()
        };
        let s = score_account(&m, &ScoreConfig::default());
        let kinds: Vec<_> = s.signals.iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                SignalKind::HftTrading,
                SignalKind::Layering,
                SignalKind::LowStopLossUsage,
                SignalKind::Drawdown,
                SignalKind::DailyLoss,
                SignalKind::LowProfitFactor,
                SignalKind::LossStreak
            ]
        );
        assert!(s.signals.iter().all(|x| x.severity == Severity::Critical));
        assert_eq!(s.score, dec!(100), "125 points capped at 100");
        assert_eq!(s.level, RiskLevel::Critical);
    }

    #[test]
    fn ratio_signals_need_min_trades() {
        let m = TradeMetrics {
            trades: 1,
            hft_trades: 1,
            hft_ratio: Decimal::ONE,
            stop_loss_ratio: Decimal::ZERO,
            profit_factor: Some(Decimal::ZERO),
            ..TradeMetrics::default()
        };
        assert!(score_account(&m, &ScoreConfig::default())
            .signals
            .is_empty());
        let one = ScoreConfig {
            min_trades: 1,
            ..ScoreConfig::default()
        };
        let s = score_account(&m, &one);
        assert_eq!(s.signals.len(), 3);
        assert_eq!(s.score, dec!(50), "25 + 15 + 10");
        assert_eq!(s.level, RiskLevel::High);
        // No loss: the profit-factor signal is not evaluated.
        let m = TradeMetrics {
            profit_factor: None,
            ..m
        };
        assert_eq!(score_account(&m, &one).signals.len(), 2);
    }

    #[test]
    fn aggregate_takes_the_riskiest_account_plus_breadth() {
        let c = ScoreConfig::default();
        let s = |score: Decimal| AccountScore {
            score,
            level: c.level(score),
            signals: Vec::new(),
        };
        let (a, b, d) = (
            AccountId::new("a"),
            AccountId::new("b"),
            AccountId::new("d"),
        );
        let (sa, sb, sd) = (s(dec!(60)), s(dec!(55)), s(dec!(10)));
        let g = aggregate([(&d, &sd, 3), (&a, &sa, 5), (&b, &sb, 7)], &c);
        assert_eq!(g.score, dec!(65), "60 + 5 for the second HIGH account");
        assert_eq!(g.level, RiskLevel::High);
        assert_eq!(g.trades, 15);
        assert_eq!(g.flagged_accounts, 2);
        let order: Vec<_> = g.accounts.iter().map(|x| x.account.as_str()).collect();
        assert_eq!(order, ["a", "b", "d"]);
        let empty = aggregate(std::iter::empty(), &c);
        assert_eq!((empty.score, empty.level), (Decimal::ZERO, RiskLevel::Low));
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |c: ScoreConfig| c.validate().map_err(|e| e.field);
        let d = ScoreConfig::default;
        assert_eq!(
            bad(ScoreConfig {
                hft_ratio_max: dec!(1.5),
                ..d()
            }),
            Err("hft_ratio_max")
        );
        assert_eq!(
            bad(ScoreConfig {
                drawdown_weight: dec!(-1),
                ..d()
            }),
            Err("drawdown_weight")
        );
        assert_eq!(
            bad(ScoreConfig {
                high_from: dec!(20),
                ..d()
            }),
            Err("high_from")
        );
        assert_eq!(
            bad(ScoreConfig {
                critical_from: dec!(101),
                ..d()
            }),
            Err("critical_from")
        );
        assert_eq!(
            bad(ScoreConfig {
                profit_factor_min: dec!(-1),
                ..d()
            }),
            Err("profit_factor_min")
        );
        assert_eq!(
            bad(ScoreConfig {
                risk_threshold: dec!(100.5),
                ..d()
            }),
            Err("risk_threshold")
        );
        assert_eq!(
            bad(ScoreConfig {
                risk_threshold: dec!(-0.5),
                ..d()
            }),
            Err("risk_threshold")
        );
        assert!(ScoreConfig {
            risk_threshold: dec!(100),
            ..d()
        }
        .validate()
        .is_ok());
    }
}
