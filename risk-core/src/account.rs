//! The account snapshot a check reads: risk profile, balance, positions, open orders,
//! margin reservations and the recent-order history used by the erroneous-order controls.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::ids::{AccountId, OrderId, Symbol, UserId};
use crate::model::{KycLevel, Side, TradingState};
use crate::num::{Leverage, Money, Notional, Price, Quantity, RiskScore, SignedQuantity};

/// The per-account limits and flags a risk team sets. Every field's type holds only
/// valid values, so a profile that exists is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RiskProfile {
    /// The account's verified KYC level.
    pub kyc_level: KycLevel,
    /// Largest allowed projected exposure (gross notional of positions and open orders).
    pub exposure_limit: Notional,
    /// A frozen account may not place any order.
    pub frozen: bool,
    /// The account's own leverage cap.
    pub max_leverage: Leverage,
    /// Externally computed risk score (0-100), exposed to rules as `risk_score`.
    pub risk_score: RiskScore,
    /// The account-level kill switch.
    pub trading_state: TradingState,
}

impl Default for RiskProfile {
    /// A conservative profile: KYC L0, no exposure allowed, 1x leverage, active.
    fn default() -> Self {
        Self {
            kyc_level: KycLevel::L0,
            exposure_limit: Notional::ZERO,
            frozen: false,
            max_leverage: Leverage::ONE,
            risk_score: RiskScore::ZERO,
            trading_state: TradingState::Active,
        }
    }
}

/// An open position in one symbol (one-way mode: at most one per symbol). Entry price
/// and leverage are valid by type; the engine refuses a position whose symbol is not an
/// instrument ([`crate::engine::EventError::UnknownSymbol`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Position {
    /// The instrument.
    pub symbol: Symbol,
    /// Signed size in instrument units: long is positive.
    pub size: SignedQuantity,
    /// Average entry price.
    pub entry_price: Price,
    /// The leverage the position was opened with; its initial margin is notional / leverage.
    pub leverage: Leverage,
}

/// A resting order that has not fully filled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OpenOrder {
    /// The client order id.
    pub order_id: OrderId,
    /// The instrument.
    pub symbol: Symbol,
    /// Buy or sell.
    pub side: Side,
    /// Unfilled quantity.
    pub quantity: Quantity,
    /// Limit price (resting orders are limit orders).
    pub price: Price,
    /// Requested leverage; the order's initial margin is notional / leverage.
    pub leverage: Leverage,
    /// Reduce-only orders hold no initial margin and add no exposure.
    pub reduce_only: bool,
}

/// Initial margin held for an approved order that the order service has not yet
/// confirmed as open (see [`crate::engine::RiskEngine`] reservations).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Reservation {
    /// The approved order.
    pub order_id: OrderId,
    /// The initial margin held for it.
    pub amount: Money,
    /// The exposure (order notional) held for it.
    pub notional: Notional,
}

/// A recently approved order, remembered for duplicate-id and rate-limit checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RecentOrder {
    /// The client order id.
    pub order_id: OrderId,
    /// When it was approved (the `now` of that check).
    pub at: DateTime<Utc>,
}

/// Approved orders within the duplicate and rate-limit horizons: a time-ordered queue
/// for expiry and rate counting, and an id index so a duplicate lookup costs one hash
/// probe however many orders the horizon holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(from = "Vec<RecentOrder>", into = "Vec<RecentOrder>")
)]
pub struct RecentOrders {
    by_time: VecDeque<RecentOrder>,
    latest: crate::hash::FxHashMap<OrderId, DateTime<Utc>>,
}

impl RecentOrders {
    /// Remembers an approval. Times are expected in non-decreasing order; an earlier
    /// time is clamped to the latest held so the queue stays ordered.
    pub fn push(&mut self, order_id: OrderId, at: DateTime<Utc>) {
        let at = self.by_time.back().map_or(at, |last| at.max(last.at));
        self.latest.insert(order_id.clone(), at);
        self.by_time.push_back(RecentOrder { order_id, at });
    }

    /// Forgets approvals at or before `cutoff`.
    pub fn prune(&mut self, cutoff: DateTime<Utc>) {
        while let Some(front) = self.by_time.front() {
            if front.at > cutoff {
                break;
            }
            if self.latest.get(&front.order_id) == Some(&front.at) {
                self.latest.remove(&front.order_id);
            }
            self.by_time.pop_front();
        }
    }

    /// Whether `order_id` was approved after `cutoff`.
    #[must_use]
    pub fn seen_after(&self, order_id: &OrderId, cutoff: DateTime<Utc>) -> bool {
        self.latest.get(order_id).is_some_and(|at| *at > cutoff)
    }

    /// How many approvals came after `cutoff`, counting at most `limit` (the rate check
    /// needs no more, so the cost is bounded by the limit).
    #[must_use]
    pub fn count_after(&self, cutoff: DateTime<Utc>, limit: usize) -> usize {
        self.by_time
            .iter()
            .rev()
            .take(limit)
            .take_while(|o| o.at > cutoff)
            .count()
    }

    /// The number of approvals held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_time.len()
    }

    /// True when none are held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }

    /// The approvals held, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &RecentOrder> {
        self.by_time.iter()
    }
}

impl From<Vec<RecentOrder>> for RecentOrders {
    fn from(orders: Vec<RecentOrder>) -> Self {
        let mut recent = Self::default();
        for o in orders {
            recent.push(o.order_id, o.at);
        }
        recent
    }
}

impl From<RecentOrders> for Vec<RecentOrder> {
    fn from(recent: RecentOrders) -> Self {
        recent.by_time.into()
    }
}

/// Everything the pre-trade check needs to know about one account.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AccountSnapshot {
    /// The account.
    pub account_id: AccountId,
    /// Its owner; a request naming another user is refused.
    pub user_id: UserId,
    /// Limits and flags.
    pub profile: RiskProfile,
    /// Wallet balance (collateral) in the settlement currency, before unrealized PnL.
    pub wallet_balance: Money,
    /// Open positions, at most one per symbol.
    pub positions: Vec<Position>,
    /// Resting orders.
    pub open_orders: Vec<OpenOrder>,
    /// Margin held for approved orders not yet confirmed open.
    pub reservations: Vec<Reservation>,
    /// Approved orders within the duplicate and rate-limit horizons.
    pub recent_orders: RecentOrders,
}

impl AccountSnapshot {
    /// A new, empty account with the given profile.
    #[must_use]
    pub fn new(account_id: AccountId, user_id: UserId, profile: RiskProfile) -> Self {
        Self {
            account_id,
            user_id,
            profile,
            wallet_balance: Money::ZERO,
            positions: Vec::new(),
            open_orders: Vec::new(),
            reservations: Vec::new(),
            recent_orders: RecentOrders::default(),
        }
    }

    /// The position in `symbol`, if any.
    #[must_use]
    pub fn position(&self, symbol: &Symbol) -> Option<&Position> {
        self.positions.iter().find(|p| &p.symbol == symbol)
    }

    /// The signed position size in `symbol` (zero when flat).
    #[must_use]
    pub fn position_size(&self, symbol: &Symbol) -> SignedQuantity {
        self.position(symbol)
            .map_or(SignedQuantity::ZERO, |p| p.size)
    }
}
