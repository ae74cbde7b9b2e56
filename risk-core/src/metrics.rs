//! Trade metrics over closed trades: the prop-firm risk signals of design note 5.
//!
//! Two forms give identical results for the same trades:
//! - [`TradeMetrics::compute`] (also [`TradeMetrics::compute_iter`] and
//!   [`TradeMetrics::compute_facts`]), a batch calculator over a slice of trades: it copies
//!   each trade's open and close into one compact buffer of time-line events, sorts it once,
//!   then makes single passes (the balance curve over the closes, the concurrency sweep
//!   over all events). It allocates that buffer and nothing per trade.
//! - [`MetricsAccumulator`], which takes closed trades one at a time, in any order. The
//!   order-free tallies (counts, sums, extremes) are updated on [`MetricsAccumulator::push`];
//!   the order-dependent metrics (balance curve, loss streak, daily loss, concurrency) are
//!   computed on [`MetricsAccumulator::metrics`] from the same event buffer, kept sorted
//!   lazily (a run-adaptive sort: what arrived since the last call is merged in).
//!
//! # Conventions
//! - **P&L basis.** A trade's P&L is net by default, `profit + commission + swap`
//!   ([`ClosedTrade::net_pnl`]), as MetaTrader reports it; with
//!   [`MetricsConfig::pnl_basis`] = [`PnlBasis::Gross`] it is `profit` alone. Commission
//!   and swap are signed as the platform reports them (a cost is negative). The P&L
//!   decides win / loss / break-even, and is what the balance curve, gross profit, gross
//!   loss, net profit and every average use (the names `gross_*` / `net_profit` are sums
//!   of the P&L on the chosen basis, as MetaTrader's are). It is exact: a sum that would
//!   need more digits than a `Decimal` holds is an error, not a rounded value. The
//!   prop-firm rulebook ([`crate::rulebook`]) uses the same basis.
//! - **Window.** With [`MetricsConfig::window_size`] `N`, the metrics are those of the
//!   `N` most recent trades by close time (ties at the window's edge broken by the
//!   close-time order below, [`TradeFacts::close_order`]): every metric, including the
//!   balance curve, which starts at the initial balance at the window's first trade (the
//!   P&L before the window is forgotten). Without it, the whole history. The rulebook
//!   ignores the window: a challenge rule judges the account's whole history.
//! - **Win, loss, break-even.** A win has P&L > 0, a loss < 0, break-even exactly 0.
//!   Break-even trades count in every denominator (`trades`) and break a losing streak.
//! - **Ratios with no trades** (`win_ratio`, `stop_loss_ratio`, `take_profit_ratio`,
//!   `hft_ratio`) are 0. Averages and extremes that have nothing to average are `None`.
//! - **`gross_loss`** is the sum of the losing trades' P&L: zero or negative, with
//!   the same sign in Rust, Python (`AccountMetrics.gross_loss`) and the `risk` CLI.
//!   `profit_factor = gross_profit / |gross_loss|`, `None` when there is no loss.
//! - **Stop-loss / take-profit set** means `Some(price)` with a non-zero price.
//! - **HFT**: holding time (`closed_at - opened_at`) strictly below the threshold.
//! - **Close-time order.** The balance curve, the losing streak and the daily loss apply
//!   trades in ascending `closed_at`; trades closing at the same instant are applied losses
//!   first (ascending P&L, the conservative order), then by `opened_at`. Trades equal in
//!   all three are interchangeable, so the order is total for every metric.
//! - **Balance curve** starts at [`MetricsConfig::initial_balance`]; the start is a peak.
//!   `max_relative_drawdown` is the largest `(peak - balance) / peak` after any trade,
//!   capped at 1 (a balance below zero is a total loss); `max_drawdown` is the same in money.
//! - **Daily loss.** Trades are bucketed by the calendar day of `closed_at` shifted by
//!   [`MetricsConfig::day_offset_minutes`] (0 = UTC days). A day's loss is its opening
//!   balance (the balance after the previous day's last trade) minus the lowest balance
//!   reached by a trade closing that day, floored at 0. `max_daily_loss` is the largest,
//!   `max_daily_loss_ratio` the largest such loss divided by that day's opening balance.
//! - **Concurrency.** A trade occupies `[opened_at, closed_at)`: a close and an open at the
//!   same instant do not overlap, and a trade with `closed_at <= opened_at` is never open.
//! - **Holding time** is averaged over all trades, in seconds (nanosecond exact sum).
//!
//! - **Time range.** The calculators work in nanoseconds since the Unix epoch (an `i64`,
//!   as NumPy, pandas and Arrow hold times), so a trade's times must lie within
//!   1677-09-21 and 2262-04-11; a trade outside is a [`MetricsError::TimeOutOfRange`].
//!
//! Arithmetic is checked: an overflow is a [`MetricsError`], never a panic.
//!
//! # Example
//! ```
//! use chrono::{TimeZone, Utc};
//! use risk_core::ids::{AccountId, Symbol, TradeId};
//! use risk_core::metrics::{ClosedTrade, MetricsAccumulator, MetricsConfig, TradeMetrics};
//! use risk_core::model::Side;
//! use risk_core::Decimal;
//!
//! let at = |s: i64| Utc.timestamp_opt(1_746_403_200 + s, 0).unwrap();
//! let trade = |id: &str, open: i64, close: i64, profit: i64| ClosedTrade {
//!     id: TradeId::new(id),
//!     account: AccountId::new("10452073"),
//!     symbol: Symbol::new("XAUUSD"),
//!     side: Side::Buy,
//!     volume: Decimal::new(1, 2),
//!     opened_at: at(open),
//!     closed_at: at(close),
//!     open_price: Decimal::new(333_290, 2),
//!     close_price: Decimal::new(333_288, 2),
//!     stop_loss: None,
//!     take_profit: None,
//!     profit: Decimal::from(profit),
//!     commission: Decimal::ZERO,
//!     swap: Decimal::ZERO,
//! };
//! let trades = [trade("1", 0, 30, 500), trade("2", 10, 600, -1_000)];
//! let config = MetricsConfig::default(); // 100,000 initial balance, HFT under 60 s
//! let m = TradeMetrics::compute(&trades, &config)?;
//! assert_eq!(m.win_ratio, Decimal::new(5, 1));
//! assert_eq!(m.profit_factor, Some(Decimal::new(5, 1)));
//! assert_eq!((m.hft_trades, m.max_concurrent_trades), (1, 2));
//! // 100,500 peak, then 99,500: 1,000 / 100,500.
//! assert_eq!(m.max_drawdown, Decimal::from(1_000));
//!
//! // The same trades one at a time, in any order.
//! let mut acc = MetricsAccumulator::new(config)?;
//! acc.push(&trades[1])?;
//! acc.push(&trades[0])?;
//! assert_eq!(acc.metrics()?, m);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::num::NonZeroU32;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rust_decimal::Decimal;

use crate::ids::{AccountId, Symbol, TradeId};
use crate::model::Side;
use crate::num::{add, add_exact, div, sub, ArithmeticError};

/// One closed trade as a prop-trading platform exports it.
///
/// Plain data: the fields are public and nothing is validated here (the adapters refuse
/// rows that close before they open). `stop_loss` / `take_profit` are `None` when not set.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClosedTrade {
    /// The platform's ticket id, as text.
    pub id: TradeId,
    /// The trading account's login.
    pub account: AccountId,
    /// The instrument.
    pub symbol: Symbol,
    /// Buy or sell (the opening side).
    pub side: Side,
    /// Volume in lots.
    pub volume: Decimal,
    /// When the position was opened.
    pub opened_at: DateTime<Utc>,
    /// When the position was closed.
    pub closed_at: DateTime<Utc>,
    /// Opening price.
    pub open_price: Decimal,
    /// Closing price.
    pub close_price: Decimal,
    /// Stop-loss price, `None` when not set.
    pub stop_loss: Option<Decimal>,
    /// Take-profit price, `None` when not set.
    pub take_profit: Option<Decimal>,
    /// Gross profit of the trade in the account currency (before commission and swap).
    pub profit: Decimal,
    /// Commission, signed as reported (a cost is negative).
    pub commission: Decimal,
    /// Swap (financing), signed as reported.
    pub swap: Decimal,
}

impl ClosedTrade {
    /// Net P&L: `profit + commission + swap`, exactly.
    ///
    /// # Errors
    /// [`ArithmeticError`] on overflow, and where the exact sum needs more digits than a
    /// `Decimal` holds (it is refused rather than rounded, see [`add_exact`]).
    pub fn net_pnl(&self) -> Result<Decimal, ArithmeticError> {
        add_exact(self.profit, self.commission)
            .and_then(|sum| add_exact(sum, self.swap))
            .ok_or(ArithmeticError { what: "net P&L" })
    }

    /// The trade's P&L on `basis`: [`ClosedTrade::net_pnl`] for [`PnlBasis::Net`],
    /// `profit` for [`PnlBasis::Gross`].
    ///
    /// # Errors
    /// As [`ClosedTrade::net_pnl`] (a gross P&L cannot fail).
    pub fn pnl(&self, basis: PnlBasis) -> Result<Decimal, ArithmeticError> {
        match basis {
            PnlBasis::Net => self.net_pnl(),
            PnlBasis::Gross => Ok(self.profit),
        }
    }

    /// `closed_at - opened_at` (negative when the trade closes before it opens).
    #[must_use]
    pub fn holding_time(&self) -> TimeDelta {
        self.closed_at.signed_duration_since(self.opened_at)
    }

    /// True when a non-zero stop-loss price is set.
    #[must_use]
    pub fn has_stop_loss(&self) -> bool {
        matches!(self.stop_loss, Some(p) if !p.is_zero())
    }

    /// True when a non-zero take-profit price is set.
    #[must_use]
    pub fn has_take_profit(&self) -> bool {
        matches!(self.take_profit, Some(p) if !p.is_zero())
    }
}

/// Which money a trade's P&L counts: the one switch between MetaTrader's figures and a
/// `profit`-only service's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum PnlBasis {
    /// `profit + commission + swap`, as MetaTrader reports it (its Gross Profit, Gross
    /// Loss and Profit Factor are sums of this). The default.
    #[default]
    Net,
    /// `profit` alone (commission and swap ignored), as services that read only the
    /// export's `profit` column compute.
    Gross,
}

impl PnlBasis {
    /// Both values, in declaration order.
    pub const ALL: &'static [Self] = &[Self::Net, Self::Gross];

    /// The name in config files and on the command line: `net` or `gross`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Net => "net",
            Self::Gross => "gross",
        }
    }
}

impl std::fmt::Display for PnlBasis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for PnlBasis {
    type Err = crate::model::UnknownName;
    /// `net` or `gross`, ASCII case ignored.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        crate::model::find_by_name(Self::ALL, Self::as_str, "PnlBasis (net or gross)", text)
    }
}

/// Reads `net` or `gross` (ASCII case ignored) with the same message as
/// [`FromStr`](std::str::FromStr).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for PnlBasis {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Settings of the metric calculators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct MetricsConfig {
    /// Starting balance of the closed-trade balance curve. Default 100,000; must be > 0.
    pub initial_balance: Decimal,
    /// A trade held strictly less than this many seconds is an HFT trade. Default 60; > 0.
    pub hft_threshold_seconds: u32,
    /// Minutes added to `closed_at` before taking its calendar day for the daily loss
    /// (e.g. 120 for a platform whose trading day starts at 00:00 UTC+2). Default 0 (UTC
    /// days); within ±1439.
    pub day_offset_minutes: i32,
    /// What a trade's P&L is: `net` (profit + commission + swap, the default) or `gross`
    /// (profit alone). See [`PnlBasis`].
    pub pnl_basis: PnlBasis,
    /// Score only the most recent N closed trades (by close time, see the
    /// [module documentation](self)); `None` (the default) is the whole history. Zero is
    /// refused when read (`NonZeroU32`).
    pub window_size: Option<NonZeroU32>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            initial_balance: Decimal::from(100_000),
            hft_threshold_seconds: 60,
            day_offset_minutes: 0,
            pnl_basis: PnlBasis::Net,
            window_size: None,
        }
    }
}

/// A [`MetricsConfig`] setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{field}`: {rule}")]
pub struct MetricsConfigError {
    /// The setting's name as written in a config file.
    pub field: &'static str,
    /// What it must be, in words.
    pub rule: &'static str,
}

impl MetricsConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`MetricsConfigError`] naming the first invalid setting.
    pub fn validate(&self) -> Result<(), MetricsConfigError> {
        if self.initial_balance <= Decimal::ZERO {
            return Err(MetricsConfigError {
                field: "initial_balance",
                rule: "must be greater than zero",
            });
        }
        if self.hft_threshold_seconds == 0 {
            return Err(MetricsConfigError {
                field: "hft_threshold_seconds",
                rule: "must be at least 1",
            });
        }
        if self.day_offset_minutes.abs() >= 1440 {
            return Err(MetricsConfigError {
                field: "day_offset_minutes",
                rule: "must be within -1439..=1439",
            });
        }
        Ok(())
    }

    fn hft_threshold_ns(&self) -> i128 {
        i128::from(self.hft_threshold_seconds).saturating_mul(i128::from(NANOS_PER_SECOND))
    }

    /// The trading day of `at_ns` (nanoseconds since the epoch) as a day number since
    /// 1970-01-01 (integer arithmetic: this runs once per trade).
    fn trading_day(&self, at_ns: i64) -> i64 {
        at_ns
            .div_euclid(NANOS_PER_SECOND)
            .saturating_add(i64::from(self.day_offset_minutes).saturating_mul(60))
            .div_euclid(86_400)
    }
}

/// Why metrics could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A sum, product or quotient overflowed.
    #[error(transparent)]
    Arithmetic(#[from] ArithmeticError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] MetricsConfigError),
    /// A trade's time lies outside the nanosecond range (1677-09-21 to 2262-04-11).
    #[error("time {at} is outside the range of nanosecond timestamps (1677-09-21 to 2262-04-11)")]
    TimeOutOfRange {
        /// The time.
        at: DateTime<Utc>,
    },
}

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// `at` as nanoseconds since the Unix epoch, the time form of [`TradeFacts`].
///
/// # Errors
/// [`MetricsError::TimeOutOfRange`] outside 1677-09-21 to 2262-04-11.
pub fn epoch_nanos(at: DateTime<Utc>) -> Result<i64, MetricsError> {
    at.timestamp_nanos_opt()
        .ok_or(MetricsError::TimeOutOfRange { at })
}

/// The full metric set of one group of closed trades (usually one account).
///
/// See the [module documentation](self) for every convention.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TradeMetrics {
    /// Number of trades.
    pub trades: u64,
    /// Trades with P&L > 0.
    pub wins: u64,
    /// Trades with P&L < 0.
    pub losses: u64,
    /// Trades with P&L = 0.
    pub break_even: u64,
    /// `wins / trades` (0 with no trades).
    pub win_ratio: Decimal,
    /// Sum of the winning trades' P&L (>= 0).
    pub gross_profit: Decimal,
    /// Sum of the losing trades' P&L (<= 0).
    pub gross_loss: Decimal,
    /// Sum of all P&L.
    pub net_profit: Decimal,
    /// `gross_profit / |gross_loss|`; `None` when there is no loss.
    pub profit_factor: Option<Decimal>,
    /// `gross_profit / wins`; `None` with no win.
    pub average_win: Option<Decimal>,
    /// `gross_loss / losses` (<= 0); `None` with no loss.
    pub average_loss: Option<Decimal>,
    /// `net_profit / trades`: the average P&L per trade; `None` with no trades.
    pub expectancy: Option<Decimal>,
    /// The largest winning P&L; `None` with no win.
    pub largest_win: Option<Decimal>,
    /// The most negative losing P&L; `None` with no loss.
    pub largest_loss: Option<Decimal>,
    /// The longest run of consecutive losses in close-time order.
    pub max_consecutive_losses: u64,
    /// Mean holding time in seconds; `None` with no trades.
    pub average_holding_seconds: Option<Decimal>,
    /// Trades held strictly less than the HFT threshold.
    pub hft_trades: u64,
    /// `hft_trades / trades` (0 with no trades).
    pub hft_ratio: Decimal,
    /// Trades with a stop-loss set.
    pub stop_loss_trades: u64,
    /// `stop_loss_trades / trades` (0 with no trades).
    pub stop_loss_ratio: Decimal,
    /// Trades with a take-profit set.
    pub take_profit_trades: u64,
    /// `take_profit_trades / trades` (0 with no trades).
    pub take_profit_ratio: Decimal,
    /// The largest number of trades open at one instant.
    pub max_concurrent_trades: u64,
    /// Largest `(peak - balance) / peak` on the balance curve, in `[0, 1]`.
    pub max_relative_drawdown: Decimal,
    /// Largest `peak - balance` on the balance curve, in money.
    pub max_drawdown: Decimal,
    /// Balance after the last trade.
    pub final_balance: Decimal,
    /// Largest single-day loss on the balance curve, in money (>= 0).
    pub max_daily_loss: Decimal,
    /// Largest single-day loss divided by that day's opening balance (>= 0).
    pub max_daily_loss_ratio: Decimal,
    /// The day of `max_daily_loss` (shifted by the day offset); `None` when no day lost.
    pub max_daily_loss_day: Option<NaiveDate>,
}

/// One [`TradeMetrics`] value, as [`TradeMetrics::fields`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeValue {
    /// A count of trades (or of consecutive losses).
    Count(u64),
    /// Money, a ratio or seconds.
    Decimal(Decimal),
    /// A calendar day.
    Day(NaiveDate),
}

impl TradeMetrics {
    /// The number of fields [`TradeMetrics::fields`] lists.
    pub const FIELD_COUNT: usize = 29;

    /// Every metric by its field name, in declaration order (`None` where undefined): the
    /// one list that the bindings and reports render, so none of them names the fields by
    /// hand. The exhaustive destructuring makes a new field fail to compile until listed.
    #[must_use]
    pub fn fields(&self) -> [(&'static str, Option<TradeValue>); Self::FIELD_COUNT] {
        let Self {
            trades,
            wins,
            losses,
            break_even,
            win_ratio,
            gross_profit,
            gross_loss,
            net_profit,
            profit_factor,
            average_win,
            average_loss,
            expectancy,
            largest_win,
            largest_loss,
            max_consecutive_losses,
            average_holding_seconds,
            hft_trades,
            hft_ratio,
            stop_loss_trades,
            stop_loss_ratio,
            take_profit_trades,
            take_profit_ratio,
            max_concurrent_trades,
            max_relative_drawdown,
            max_drawdown,
            final_balance,
            max_daily_loss,
            max_daily_loss_ratio,
            max_daily_loss_day,
        } = self;
        [
            ("trades", Some(TradeValue::Count(*trades))),
            ("wins", Some(TradeValue::Count(*wins))),
            ("losses", Some(TradeValue::Count(*losses))),
            ("break_even", Some(TradeValue::Count(*break_even))),
            ("win_ratio", Some(TradeValue::Decimal(*win_ratio))),
            ("gross_profit", Some(TradeValue::Decimal(*gross_profit))),
            ("gross_loss", Some(TradeValue::Decimal(*gross_loss))),
            ("net_profit", Some(TradeValue::Decimal(*net_profit))),
            ("profit_factor", profit_factor.map(TradeValue::Decimal)),
            ("average_win", average_win.map(TradeValue::Decimal)),
            ("average_loss", average_loss.map(TradeValue::Decimal)),
            ("expectancy", expectancy.map(TradeValue::Decimal)),
            ("largest_win", largest_win.map(TradeValue::Decimal)),
            ("largest_loss", largest_loss.map(TradeValue::Decimal)),
            (
                "max_consecutive_losses",
                Some(TradeValue::Count(*max_consecutive_losses)),
            ),
            (
                "average_holding_seconds",
                average_holding_seconds.map(TradeValue::Decimal),
            ),
            ("hft_trades", Some(TradeValue::Count(*hft_trades))),
            ("hft_ratio", Some(TradeValue::Decimal(*hft_ratio))),
            (
                "stop_loss_trades",
                Some(TradeValue::Count(*stop_loss_trades)),
            ),
            (
                "stop_loss_ratio",
                Some(TradeValue::Decimal(*stop_loss_ratio)),
            ),
            (
                "take_profit_trades",
                Some(TradeValue::Count(*take_profit_trades)),
            ),
            (
                "take_profit_ratio",
                Some(TradeValue::Decimal(*take_profit_ratio)),
            ),
            (
                "max_concurrent_trades",
                Some(TradeValue::Count(*max_concurrent_trades)),
            ),
            (
                "max_relative_drawdown",
                Some(TradeValue::Decimal(*max_relative_drawdown)),
            ),
            ("max_drawdown", Some(TradeValue::Decimal(*max_drawdown))),
            ("final_balance", Some(TradeValue::Decimal(*final_balance))),
            ("max_daily_loss", Some(TradeValue::Decimal(*max_daily_loss))),
            (
                "max_daily_loss_ratio",
                Some(TradeValue::Decimal(*max_daily_loss_ratio)),
            ),
            (
                "max_daily_loss_day",
                max_daily_loss_day.map(TradeValue::Day),
            ),
        ]
    }

    /// The field names of [`TradeMetrics::fields`], in order.
    #[must_use]
    pub fn field_names() -> [&'static str; Self::FIELD_COUNT] {
        Self::default().fields().map(|(name, _)| name)
    }
}

impl TradeMetrics {
    /// The batch calculator: the full metric set of `trades`.
    ///
    /// `O(n log n)`: one sort of a compact buffer of the trades' opens and closes, then
    /// single passes.
    ///
    /// # Errors
    /// [`MetricsError::Config`] for an invalid `config`, [`MetricsError::Arithmetic`] on
    /// overflow.
    pub fn compute(trades: &[ClosedTrade], config: &MetricsConfig) -> Result<Self, MetricsError> {
        Self::compute_iter(trades, config)
    }

    /// The batch calculator over trades that are not contiguous (for example a group of
    /// indices into a larger slice). Same results and cost as [`TradeMetrics::compute`].
    ///
    /// # Errors
    /// As [`TradeMetrics::compute`].
    pub fn compute_iter<'a, I>(trades: I, config: &MetricsConfig) -> Result<Self, MetricsError>
    where
        I: IntoIterator<Item = &'a ClosedTrade>,
    {
        let basis = config.pnl_basis;
        Self::compute_from(trades.into_iter().map(|t| TradeFacts::of(t, basis)), config)
    }

    /// The batch calculator over precomputed [`TradeFacts`] (a compact form that callers
    /// grouping millions of trades can lay out contiguously). Same results as
    /// [`TradeMetrics::compute`] on the trades the facts come from, with their P&L as the
    /// facts carry it; [`MetricsConfig::window_size`] applies.
    ///
    /// # Errors
    /// As [`TradeMetrics::compute`].
    pub fn compute_facts(
        facts: &[TradeFacts],
        config: &MetricsConfig,
    ) -> Result<Self, MetricsError> {
        Self::compute_from(facts.iter().copied().map(Ok), config)
    }

    fn compute_from<I>(facts: I, config: &MetricsConfig) -> Result<Self, MetricsError>
    where
        I: Iterator<Item = Result<TradeFacts, MetricsError>>,
    {
        config.validate()?;
        if config.window_size.is_some() {
            let mut all = facts.collect::<Result<Vec<_>, _>>()?;
            return Self::compute_all(latest(&mut all, config.window_size), config);
        }
        Self::compute_sorted(facts, config)
    }

    /// The metrics of exactly `facts` (the window already applied).
    fn compute_all(facts: &[TradeFacts], config: &MetricsConfig) -> Result<Self, MetricsError> {
        Self::compute_sorted(facts.iter().copied().map(Ok), config)
    }

    /// Tallies `facts` and sorts their events once: the closes, then the opens, each half
    /// in the caller's order. Exports list an account's trades by time, so each half is
    /// mostly ascending runs, which the run-adaptive stable sort finds and merges in about
    /// linear time (an unstable sort of the interleaved events makes `n log n`
    /// comparisons whatever the order); in any other order it costs about the same.
    fn compute_sorted<I>(facts: I, config: &MetricsConfig) -> Result<Self, MetricsError>
    where
        I: Iterator<Item = Result<TradeFacts, MetricsError>>,
    {
        let (len, _) = facts.size_hint();
        let mut tally = Tally::default();
        let mut events = Vec::with_capacity(len.saturating_mul(2));
        let mut opens = Vec::with_capacity(len);
        for f in facts {
            let [close, open] = tally.add(&f?, config)?;
            events.push(close);
            opens.push(open);
        }
        events.append(&mut opens);
        events.sort();
        finish(&tally, &events, config)
    }
}

/// What the metrics need from one closed trade: its times, P&L and whether a stop-loss
/// and a take-profit were set. 40 bytes instead of a full [`ClosedTrade`].
///
/// Times are nanoseconds since the Unix epoch (UTC), the columnar form of NumPy's
/// `datetime64[ns]`, pandas and Arrow; [`epoch_nanos`] converts a `DateTime`. The P&L is
/// on the basis the facts were made with ([`TradeFacts::of`]): the calculators that take
/// facts use it as it is, whatever [`MetricsConfig::pnl_basis`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TradeFacts {
    /// When the position was opened, in nanoseconds since the epoch.
    pub opened_at_ns: i64,
    /// When the position was closed, in nanoseconds since the epoch.
    pub closed_at_ns: i64,
    /// The trade's P&L on the chosen [`PnlBasis`] (net: `profit + commission + swap`).
    pub pnl: Decimal,
    /// A non-zero stop-loss price was set.
    pub stop_loss_set: bool,
    /// A non-zero take-profit price was set.
    pub take_profit_set: bool,
}

impl TradeFacts {
    /// The facts of `trade`, its P&L on `basis`.
    ///
    /// # Errors
    /// [`MetricsError::Arithmetic`] when the net P&L overflows,
    /// [`MetricsError::TimeOutOfRange`] for a time outside the nanosecond range.
    pub fn of(trade: &ClosedTrade, basis: PnlBasis) -> Result<Self, MetricsError> {
        Ok(Self {
            opened_at_ns: epoch_nanos(trade.opened_at)?,
            closed_at_ns: epoch_nanos(trade.closed_at)?,
            pnl: trade.pnl(basis)?,
            stop_loss_set: trade.has_stop_loss(),
            take_profit_set: trade.has_take_profit(),
        })
    }

    /// The close-time order of the [module documentation](self), over every field: by
    /// close time, at the same instant losses first (ascending P&L), then by open time,
    /// then by the stop-loss and take-profit flags. Facts that compare equal give equal
    /// metrics wherever they sit, so the order decides the balance curve and which
    /// trades a window keeps without ambiguity.
    #[must_use]
    pub fn close_order(&self, other: &Self) -> Ordering {
        self.closed_at_ns
            .cmp(&other.closed_at_ns)
            .then_with(|| self.pnl.cmp(&other.pnl))
            .then_with(|| self.opened_at_ns.cmp(&other.opened_at_ns))
            .then_with(|| self.stop_loss_set.cmp(&other.stop_loss_set))
            .then_with(|| self.take_profit_set.cmp(&other.take_profit_set))
    }
}

/// `facts` cut to the `window` latest in [`TradeFacts::close_order`] (all of them when
/// there are no more, or no window): a linear-time selection that reorders `facts`.
pub fn latest(facts: &mut [TradeFacts], window: Option<NonZeroU32>) -> &[TradeFacts] {
    let Some(n) = window.and_then(|n| usize::try_from(n.get()).ok()) else {
        return facts;
    };
    let Some(cut) = facts.len().checked_sub(n).filter(|c| *c > 0) else {
        return facts;
    };
    facts.select_nth_unstable_by(cut, TradeFacts::close_order);
    &facts[cut..]
}

/// One of the two events of a trade on the time line: its close (which carries the net
/// P&L for the balance curve) or its open. The derived order (fields compared in order) is
/// the order of the passes: by time; at the same instant closes before opens (intervals
/// are `[open, close)`); closes at the same instant losses first (ascending P&L), then
/// by open time, as the module docs say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    /// The event's time, in nanoseconds since the epoch.
    at: i64,
    kind: EventKind,
    /// The trade's P&L on its close; zero on its open.
    net: Decimal,
    /// The trade's open time, in nanoseconds since the epoch.
    opened: i64,
    /// The trade is open for a positive time (only those count as concurrent).
    spans: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EventKind {
    Close,
    Open,
}

/// The order-free tallies, updated one trade at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tally {
    trades: u64,
    wins: u64,
    losses: u64,
    break_even: u64,
    hft: u64,
    stop_loss: u64,
    take_profit: u64,
    gross_profit: Decimal,
    gross_loss: Decimal,
    largest_win: Option<Decimal>,
    largest_loss: Option<Decimal>,
    holding_nanos: i128,
}

impl Tally {
    /// Adds one trade; on error the tally is unchanged.
    fn add(
        &mut self,
        trade: &TradeFacts,
        config: &MetricsConfig,
    ) -> Result<[Event; 2], ArithmeticError> {
        let net = trade.pnl;
        // Two i64s differ by less than 2^64: exact in an i128.
        let holding = i128::from(trade.closed_at_ns).saturating_sub(i128::from(trade.opened_at_ns));
        // Work on a copy so that an overflow leaves the tally unchanged (a plain copy of
        // a few words; no allocation).
        let mut next = self.clone();
        next.trades = next.trades.saturating_add(1);
        if net > Decimal::ZERO {
            next.wins = next.wins.saturating_add(1);
            next.gross_profit = add(next.gross_profit, net, "gross profit")?;
            next.largest_win = Some(next.largest_win.map_or(net, |w| w.max(net)));
        } else if net < Decimal::ZERO {
            next.losses = next.losses.saturating_add(1);
            next.gross_loss = add(next.gross_loss, net, "gross loss")?;
            next.largest_loss = Some(next.largest_loss.map_or(net, |l| l.min(net)));
        } else {
            next.break_even = next.break_even.saturating_add(1);
        }
        if holding < config.hft_threshold_ns() {
            next.hft = next.hft.saturating_add(1);
        }
        next.stop_loss = next
            .stop_loss
            .saturating_add(u64::from(trade.stop_loss_set));
        next.take_profit = next
            .take_profit
            .saturating_add(u64::from(trade.take_profit_set));
        next.holding_nanos = next
            .holding_nanos
            .checked_add(holding)
            .ok_or(ArithmeticError {
                what: "total holding time",
            })?;
        *self = next;
        let spans = trade.closed_at_ns > trade.opened_at_ns;
        let close = Event {
            at: trade.closed_at_ns,
            kind: EventKind::Close,
            net,
            opened: trade.opened_at_ns,
            spans,
        };
        let open = Event {
            at: trade.opened_at_ns,
            kind: EventKind::Open,
            net: Decimal::ZERO,
            opened: trade.opened_at_ns,
            spans,
        };
        Ok([close, open])
    }
}

fn ratio(count: u64, total: u64, what: &'static str) -> Result<Decimal, ArithmeticError> {
    if total == 0 {
        return Ok(Decimal::ZERO);
    }
    div(Decimal::from(count), Decimal::from(total), what)
}

/// Combines the tallies with the passes over the sorted buffers.
fn finish(
    tally: &Tally,
    events: &[Event],
    config: &MetricsConfig,
) -> Result<TradeMetrics, MetricsError> {
    let curve = balance_curve(events, config)?;
    let n = tally.trades;
    let net_profit = add(tally.gross_profit, tally.gross_loss, "net profit")?;
    let profit_factor = if tally.gross_loss.is_zero() {
        None
    } else {
        Some(div(
            tally.gross_profit,
            tally.gross_loss.abs(),
            "profit factor",
        )?)
    };
    let average = |sum: Decimal, count: u64, what| -> Result<Option<Decimal>, ArithmeticError> {
        if count == 0 {
            Ok(None)
        } else {
            div(sum, Decimal::from(count), what).map(Some)
        }
    };
    let average_holding_seconds = if n == 0 {
        None
    } else {
        let total = Decimal::try_from_i128_with_scale(tally.holding_nanos, 9).map_err(|_| {
            ArithmeticError {
                what: "average holding time",
            }
        })?;
        Some(div(total, Decimal::from(n), "average holding time")?.normalize())
    };
    Ok(TradeMetrics {
        trades: n,
        wins: tally.wins,
        losses: tally.losses,
        break_even: tally.break_even,
        win_ratio: ratio(tally.wins, n, "win ratio")?,
        gross_profit: tally.gross_profit,
        gross_loss: tally.gross_loss,
        net_profit,
        profit_factor,
        average_win: average(tally.gross_profit, tally.wins, "average win")?,
        average_loss: average(tally.gross_loss, tally.losses, "average loss")?,
        expectancy: average(net_profit, n, "expectancy")?,
        largest_win: tally.largest_win,
        largest_loss: tally.largest_loss,
        max_consecutive_losses: curve.max_consecutive_losses,
        average_holding_seconds,
        hft_trades: tally.hft,
        hft_ratio: ratio(tally.hft, n, "HFT ratio")?,
        stop_loss_trades: tally.stop_loss,
        stop_loss_ratio: ratio(tally.stop_loss, n, "stop-loss ratio")?,
        take_profit_trades: tally.take_profit,
        take_profit_ratio: ratio(tally.take_profit, n, "take-profit ratio")?,
        max_concurrent_trades: max_concurrent(events),
        max_relative_drawdown: curve.max_relative_drawdown,
        max_drawdown: curve.max_drawdown,
        final_balance: curve.final_balance,
        max_daily_loss: curve.max_daily_loss,
        max_daily_loss_ratio: curve.max_daily_loss_ratio,
        max_daily_loss_day: curve.max_daily_loss_day,
    })
}

struct Curve {
    max_relative_drawdown: Decimal,
    max_drawdown: Decimal,
    final_balance: Decimal,
    max_consecutive_losses: u64,
    max_daily_loss: Decimal,
    max_daily_loss_ratio: Decimal,
    max_daily_loss_day: Option<NaiveDate>,
}

/// One pass over the trades in close-time order: drawdown, losing streak, daily loss.
fn balance_curve(events: &[Event], config: &MetricsConfig) -> Result<Curve, ArithmeticError> {
    let mut balance = config.initial_balance;
    let mut peak = balance;
    let mut out = Curve {
        max_relative_drawdown: Decimal::ZERO,
        max_drawdown: Decimal::ZERO,
        final_balance: balance,
        max_consecutive_losses: 0,
        max_daily_loss: Decimal::ZERO,
        max_daily_loss_ratio: Decimal::ZERO,
        max_daily_loss_day: None,
    };
    let mut streak = 0_u64;
    // The (drop, peak) of the largest relative drawdown so far.
    let mut worst = (Decimal::ZERO, peak);
    // (day, opening balance, lowest balance so far that day)
    let mut day: Option<(i64, Decimal, Decimal)> = None;
    // The lowest balance since the last peak: drawdowns can only grow at a new low.
    let mut trough = peak;
    for entry in events.iter().filter(|e| e.kind == EventKind::Close) {
        let trade_day = config.trading_day(entry.at);
        if !matches!(day, Some((d, _, _)) if d == trade_day) {
            if let Some((d, open, low)) = day {
                close_day(&mut out, d, open, low)?;
            }
            day = Some((trade_day, balance, balance));
        }
        balance = add(balance, entry.net, "balance")?;
        if let Some((_, _, low)) = &mut day {
            if balance < *low {
                *low = balance;
            }
        }
        if balance > peak {
            peak = balance;
            trough = balance;
        } else if balance < trough {
            trough = balance;
            let drop = sub(peak, balance, "drawdown")?;
            if drop > out.max_drawdown {
                out.max_drawdown = drop;
            }
            // Keep the (drop, peak) pair of the largest drop / peak and divide once at the
            // end: drop / peak > best_drop / best_peak  <=>  drop * best_peak > best_drop * peak
            // (peaks are > 0: the curve starts at the positive initial balance and a peak
            // never decreases). Cross products of money amounts stay small and exact.
            if drop > Decimal::ZERO {
                let (best_drop, best_peak) = worst;
                let beats = match (drop.checked_mul(best_peak), best_drop.checked_mul(peak)) {
                    (Some(l), Some(r)) => l > r,
                    _ => {
                        div(drop, peak, "relative drawdown")?
                            > div(best_drop, best_peak, "relative drawdown")?
                    }
                };
                if beats {
                    worst = (drop, peak);
                }
            }
        }
        if entry.net < Decimal::ZERO {
            streak = streak.saturating_add(1);
            out.max_consecutive_losses = out.max_consecutive_losses.max(streak);
        } else {
            streak = 0;
        }
    }
    if let Some((d, open, low)) = day {
        close_day(&mut out, d, open, low)?;
    }
    out.final_balance = balance;
    out.max_relative_drawdown = div(worst.0, worst.1, "relative drawdown")?.min(Decimal::ONE);
    Ok(out)
}

fn close_day(
    out: &mut Curve,
    day: i64,
    open: Decimal,
    low: Decimal,
) -> Result<(), ArithmeticError> {
    let loss = sub(open, low, "daily loss")?;
    if loss > out.max_daily_loss {
        out.max_daily_loss = loss;
        out.max_daily_loss_day =
            DateTime::from_timestamp(day.saturating_mul(86_400), 0).map(|d| d.date_naive());
    }
    if loss > Decimal::ZERO && open > Decimal::ZERO {
        let r = div(loss, open, "daily loss ratio")?;
        if r > out.max_daily_loss_ratio {
            out.max_daily_loss_ratio = r;
        }
    }
    Ok(())
}

/// Sweep over the events in order with `[open, close)` intervals (at equal instants
/// closes come first); trades of zero or negative length are never open.
fn max_concurrent(events: &[Event]) -> u64 {
    let mut open_now = 0_u64;
    let mut max = 0_u64;
    for e in events.iter().filter(|e| e.spans) {
        match e.kind {
            EventKind::Close => open_now = open_now.saturating_sub(1),
            EventKind::Open => {
                open_now = open_now.saturating_add(1);
                max = max.max(open_now);
            }
        }
    }
    max
}

/// The incremental calculator: push closed trades one at a time, in any order, and read
/// the same [`TradeMetrics`] as [`TradeMetrics::compute`] gives for the same trades.
///
/// Without a window, `push` is `O(1)` amortized. `metrics` sorts what arrived since the
/// last call and merges it into the kept order (one run-adaptive sort), then makes the
/// order-dependent passes: `O(n)` plus the sort of the newcomers. Memory: two 48-byte
/// events per trade.
///
/// With [`MetricsConfig::window_size`] `N`, only the `N` latest trades in
/// [`TradeFacts::close_order`] are kept, in a min-heap: `push` is `O(log N)` (a trade
/// older than all `N` kept is dropped at once, so late arrivals are handled), memory is
/// `N` facts of 40 bytes, and `metrics` recomputes the window from scratch, `O(N log N)`.
/// In that mode an arithmetic overflow of the window's sums
/// shows on `metrics`, not on `push`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsAccumulator {
    config: MetricsConfig,
    pushed: u64,
    last_closed_at_ns: Option<i64>,
    state: State,
}

/// What the accumulator keeps.
#[derive(Debug, Clone)]
enum State {
    /// Every trade: the order-free tallies and the time-line events.
    Whole { tally: Tally, events: Vec<Event> },
    /// The `cap` latest trades, the oldest on top.
    Window {
        cap: usize,
        latest: BinaryHeap<std::cmp::Reverse<Latest>>,
    },
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Whole { tally, events },
                Self::Whole {
                    tally: t,
                    events: e,
                },
            ) => tally == t && events == e,
            (Self::Window { cap, latest }, Self::Window { cap: c, latest: l }) => {
                cap == c && latest.clone().into_sorted_vec() == l.clone().into_sorted_vec()
            }
            _ => false,
        }
    }
}

impl Eq for State {}

/// Facts ordered by [`TradeFacts::close_order`] (equal when interchangeable).
#[derive(Debug, Clone, Copy)]
struct Latest(TradeFacts);

impl PartialEq for Latest {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Latest {}

impl PartialOrd for Latest {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Latest {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.close_order(&other.0)
    }
}

impl MetricsAccumulator {
    /// An empty accumulator.
    ///
    /// # Errors
    /// [`MetricsConfigError`] when `config` is invalid.
    pub fn new(config: MetricsConfig) -> Result<Self, MetricsConfigError> {
        config.validate()?;
        let state = match config
            .window_size
            .and_then(|n| usize::try_from(n.get()).ok())
        {
            Some(cap) => State::Window {
                cap,
                latest: BinaryHeap::new(),
            },
            None => State::Whole {
                tally: Tally::default(),
                events: Vec::new(),
            },
        };
        Ok(Self {
            config,
            pushed: 0,
            last_closed_at_ns: None,
            state,
        })
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &MetricsConfig {
        &self.config
    }

    /// Number of trades pushed so far (with a window, also those outside it).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.pushed
    }

    /// True before the first trade.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pushed == 0
    }

    /// The latest close time of every trade pushed so far (`None` before the first): the
    /// report's `last_trade_at`. A window does not change it (its latest trade is the
    /// latest of all).
    #[must_use]
    pub fn last_closed_at(&self) -> Option<DateTime<Utc>> {
        self.last_closed_at_ns.map(DateTime::from_timestamp_nanos)
    }

    /// Adds one closed trade, its P&L on the configured [`MetricsConfig::pnl_basis`]. On
    /// error the accumulator is unchanged.
    ///
    /// # Errors
    /// As [`TradeFacts::of`], or [`MetricsError::Arithmetic`] when a running sum overflows.
    pub fn push(&mut self, trade: &ClosedTrade) -> Result<(), MetricsError> {
        self.push_facts(&TradeFacts::of(trade, self.config.pnl_basis)?)?;
        Ok(())
    }

    /// Adds one trade given by its [`TradeFacts`] (their P&L is used as it is). On error
    /// the accumulator is unchanged.
    ///
    /// # Errors
    /// [`ArithmeticError`] when a running sum overflows (without a window).
    pub fn push_facts(&mut self, trade: &TradeFacts) -> Result<(), ArithmeticError> {
        match &mut self.state {
            State::Whole { tally, events } => {
                let added = tally.add(trade, &self.config)?;
                events.extend(added);
            }
            State::Window { cap, latest } => {
                let new = Latest(*trade);
                if latest.len() < *cap {
                    latest.push(std::cmp::Reverse(new));
                } else if let Some(mut oldest) = latest.peek_mut() {
                    // Replace the oldest kept trade when the new one is later; else the
                    // new one is outside the window.
                    if new > oldest.0 {
                        *oldest = std::cmp::Reverse(new);
                    }
                }
            }
        }
        self.pushed = self.pushed.saturating_add(1);
        self.last_closed_at_ns = Some(
            self.last_closed_at_ns
                .map_or(trade.closed_at_ns, |t| t.max(trade.closed_at_ns)),
        );
        Ok(())
    }

    /// The metric set of every trade pushed so far (of the window's trades, with one).
    ///
    /// # Errors
    /// [`MetricsError::Arithmetic`] on overflow.
    pub fn metrics(&mut self) -> Result<TradeMetrics, MetricsError> {
        match &mut self.state {
            State::Whole { tally, events } => {
                // `sort` (stable, run-adaptive) is linear on an already sorted buffer and
                // merges an appended tail; the keys are total so stability does not matter.
                events.sort();
                finish(tally, events, &self.config)
            }
            State::Window { latest, .. } => {
                let facts: Vec<TradeFacts> = latest.iter().map(|l| l.0 .0).collect();
                TradeMetrics::compute_all(&facts, &self.config)
            }
        }
    }
}

#[cfg(test)]
// Test arithmetic runs on small literals and generated values kept in range.
#[allow(clippy::arithmetic_side_effects)]
mod tests;
