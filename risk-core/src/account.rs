//! The account snapshot a check reads: risk profile, balance, positions, open orders,
//! margin reservations and the recent-order history used by the erroneous-order controls.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::ids::{AccountId, OrderId, Symbol, UserId};
use crate::model::{KycLevel, Side, TradingState};
use crate::num::{Leverage, Money, Notional, Price, Quantity, SignedQuantity};
use crate::Decimal;

/// The per-account limits and flags a risk team sets.
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
    pub risk_score: Decimal,
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
            risk_score: Decimal::ZERO,
            trading_state: TradingState::Active,
        }
    }
}

/// An open position in one symbol (one-way mode: at most one per symbol).
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
    /// Approved orders, oldest first, within the duplicate and rate-limit horizons.
    pub recent_orders: VecDeque<RecentOrder>,
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
            recent_orders: VecDeque::new(),
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

    /// Forgets recent orders approved at or before `cutoff`.
    pub fn prune_recent_orders(&mut self, cutoff: DateTime<Utc>) {
        while self.recent_orders.front().is_some_and(|o| o.at <= cutoff) {
            self.recent_orders.pop_front();
        }
    }
}
