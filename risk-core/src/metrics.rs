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
//! - **Net P&L.** A trade's P&L is `profit + commission + swap` ([`ClosedTrade::net_pnl`]).
//!   Commission and swap are signed as the platform reports them (a cost is negative).
//!   Net P&L decides win / loss / break-even, and is what the balance curve, gross profit,
//!   gross loss, net profit and every average use. It is exact: a sum that would need
//!   more digits than a `Decimal` holds is an error, not a rounded value.
//! - **Win, loss, break-even.** A win has net P&L > 0, a loss < 0, break-even exactly 0.
//!   Break-even trades count in every denominator (`trades`) and break a losing streak.
//! - **Ratios with no trades** (`win_ratio`, `stop_loss_ratio`, `take_profit_ratio`,
//!   `hft_ratio`) are 0. Averages and extremes that have nothing to average are `None`.
//! - **`gross_loss`** is the sum of the losing trades' net P&L: zero or negative, with
//!   the same sign in Rust, Python (`AccountMetrics.gross_loss`) and the `risk` CLI.
//!   `profit_factor = gross_profit / |gross_loss|`, `None` when there is no loss.
//! - **Stop-loss / take-profit set** means `Some(price)` with a non-zero price.
//! - **HFT**: holding time (`closed_at - opened_at`) strictly below the threshold.
//! - **Close-time order.** The balance curve, the losing streak and the daily loss apply
//!   trades in ascending `closed_at`; trades closing at the same instant are applied losses
//!   first (ascending net P&L, the conservative order), then by `opened_at`. Trades equal in
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
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            initial_balance: Decimal::from(100_000),
            hft_threshold_seconds: 60,
            day_offset_minutes: 0,
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
    /// Trades with net P&L > 0.
    pub wins: u64,
    /// Trades with net P&L < 0.
    pub losses: u64,
    /// Trades with net P&L = 0.
    pub break_even: u64,
    /// `wins / trades` (0 with no trades).
    pub win_ratio: Decimal,
    /// Sum of the winning trades' net P&L (>= 0).
    pub gross_profit: Decimal,
    /// Sum of the losing trades' net P&L (<= 0).
    pub gross_loss: Decimal,
    /// Sum of all net P&L.
    pub net_profit: Decimal,
    /// `gross_profit / |gross_loss|`; `None` when there is no loss.
    pub profit_factor: Option<Decimal>,
    /// `gross_profit / wins`; `None` with no win.
    pub average_win: Option<Decimal>,
    /// `gross_loss / losses` (<= 0); `None` with no loss.
    pub average_loss: Option<Decimal>,
    /// `net_profit / trades`: the average net P&L per trade; `None` with no trades.
    pub expectancy: Option<Decimal>,
    /// The largest winning net P&L; `None` with no win.
    pub largest_win: Option<Decimal>,
    /// The most negative losing net P&L; `None` with no loss.
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
        Self::compute_from(trades.into_iter().map(TradeFacts::of), config)
    }

    /// The batch calculator over precomputed [`TradeFacts`] (a compact form that callers
    /// grouping millions of trades can lay out contiguously). Same results as
    /// [`TradeMetrics::compute`] on the trades the facts come from.
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
        let (len, _) = facts.size_hint();
        let mut tally = Tally::default();
        let mut events = Vec::with_capacity(len.saturating_mul(2));
        for f in facts {
            events.extend(tally.add(&f?, config)?);
        }
        events.sort_unstable();
        finish(&tally, &events, config)
    }
}

/// What the metrics need from one closed trade: its times, net P&L and whether a
/// stop-loss and a take-profit were set. 40 bytes instead of a full [`ClosedTrade`].
///
/// Times are nanoseconds since the Unix epoch (UTC), the columnar form of NumPy's
/// `datetime64[ns]`, pandas and Arrow; [`epoch_nanos`] converts a `DateTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TradeFacts {
    /// When the position was opened, in nanoseconds since the epoch.
    pub opened_at_ns: i64,
    /// When the position was closed, in nanoseconds since the epoch.
    pub closed_at_ns: i64,
    /// `profit + commission + swap`.
    pub net_pnl: Decimal,
    /// A non-zero stop-loss price was set.
    pub stop_loss_set: bool,
    /// A non-zero take-profit price was set.
    pub take_profit_set: bool,
}

impl TradeFacts {
    /// The facts of `trade`.
    ///
    /// # Errors
    /// [`MetricsError::Arithmetic`] when the net P&L overflows,
    /// [`MetricsError::TimeOutOfRange`] for a time outside the nanosecond range.
    pub fn of(trade: &ClosedTrade) -> Result<Self, MetricsError> {
        Ok(Self {
            opened_at_ns: epoch_nanos(trade.opened_at)?,
            closed_at_ns: epoch_nanos(trade.closed_at)?,
            net_pnl: trade.net_pnl()?,
            stop_loss_set: trade.has_stop_loss(),
            take_profit_set: trade.has_take_profit(),
        })
    }
}

/// One of the two events of a trade on the time line: its close (which carries the net
/// P&L for the balance curve) or its open. The derived order (fields compared in order) is
/// the order of the passes: by time; at the same instant closes before opens (intervals
/// are `[open, close)`); closes at the same instant losses first (ascending net P&L), then
/// by open time, as the module docs say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    /// The event's time, in nanoseconds since the epoch.
    at: i64,
    kind: EventKind,
    /// The trade's net P&L on its close; zero on its open.
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
        let net = trade.net_pnl;
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
/// `push` is `O(1)` amortized. `metrics` sorts what arrived since the last call and merges
/// it into the kept order (one run-adaptive sort), then makes the order-dependent passes:
/// `O(n)` plus the sort of the newcomers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsAccumulator {
    config: MetricsConfig,
    tally: Tally,
    events: Vec<Event>,
}

impl MetricsAccumulator {
    /// An empty accumulator.
    ///
    /// # Errors
    /// [`MetricsConfigError`] when `config` is invalid.
    pub fn new(config: MetricsConfig) -> Result<Self, MetricsConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            tally: Tally::default(),
            events: Vec::new(),
        })
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &MetricsConfig {
        &self.config
    }

    /// Number of trades pushed so far.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.tally.trades
    }

    /// True before the first trade.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tally.trades == 0
    }

    /// Adds one closed trade. On error the accumulator is unchanged.
    ///
    /// # Errors
    /// As [`TradeFacts::of`], or [`MetricsError::Arithmetic`] when a running sum overflows.
    pub fn push(&mut self, trade: &ClosedTrade) -> Result<(), MetricsError> {
        self.push_facts(&TradeFacts::of(trade)?)?;
        Ok(())
    }

    /// Adds one trade given by its [`TradeFacts`]. On error the accumulator is unchanged.
    ///
    /// # Errors
    /// [`ArithmeticError`] when a running sum overflows.
    pub fn push_facts(&mut self, trade: &TradeFacts) -> Result<(), ArithmeticError> {
        let events = self.tally.add(trade, &self.config)?;
        self.events.extend(events);
        Ok(())
    }

    /// The metric set of every trade pushed so far.
    ///
    /// # Errors
    /// [`MetricsError::Arithmetic`] on overflow.
    pub fn metrics(&mut self) -> Result<TradeMetrics, MetricsError> {
        // `sort` (stable, run-adaptive) is linear on an already sorted buffer and merges
        // an appended tail; the keys are total so stability does not matter.
        self.events.sort();
        finish(&self.tally, &self.events, &self.config)
    }
}

#[cfg(test)]
// Test arithmetic runs on small literals and generated values kept in range.
#[allow(clippy::arithmetic_side_effects)]
mod tests;
