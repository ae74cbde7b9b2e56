//! The pre-trade check request, as received, and its validated form.

use crate::ids::{AccountId, OrderId, Symbol, TraceId, UserId};
use crate::model::{OrderType, Side};
use crate::num::{Leverage, Price, Quantity};
use crate::pretrade::CheckMessage;
use crate::Decimal;

/// An order to check, field for field the `risk.v1.PreTradeCheckRequest` contract.
///
/// Numbers are raw decimals, exactly as received: the check's first phase validates them
/// and rejects an impossible value with `INVALID_REQUEST` naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CheckRequest {
    /// The account's owner.
    pub user_id: UserId,
    /// The account placing the order.
    pub account_id: AccountId,
    /// Client order id.
    pub order_id: OrderId,
    /// Instrument.
    pub symbol: Symbol,
    /// Buy or sell.
    pub side: Side,
    /// Market or limit.
    pub order_type: OrderType,
    /// Order quantity; must be greater than zero.
    pub quantity: Decimal,
    /// Limit price: required for LIMIT, must be absent for MARKET.
    pub price: Option<Decimal>,
    /// Requested leverage; at least 1.
    pub leverage: Decimal,
    /// The order may only reduce a position.
    pub reduce_only: bool,
    /// The order must rest (maker only); LIMIT orders only.
    pub post_only: bool,
    /// Echoed in the response and events.
    pub trace_id: TraceId,
}

/// The numbers of a request that passed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValidOrder {
    pub quantity: Quantity,
    pub limit_price: Option<Price>,
    pub leverage: Leverage,
}

impl CheckRequest {
    /// Phase 1: field presence and ranges. The error is the `INVALID_REQUEST` message.
    pub(crate) fn validate(&self) -> Result<ValidOrder, CheckMessage> {
        for (field, empty) in [
            ("user_id", self.user_id.is_empty()),
            ("account_id", self.account_id.is_empty()),
            ("order_id", self.order_id.is_empty()),
            ("symbol", self.symbol.is_empty()),
        ] {
            if empty {
                return Err(CheckMessage::required(field));
            }
        }
        if self.quantity <= Decimal::ZERO {
            return Err(CheckMessage::quantity_not_positive(self.quantity));
        }
        let quantity =
            Quantity::new(self.quantity).map_err(|e| CheckMessage::field("quantity", e))?;
        let leverage =
            Leverage::new(self.leverage).map_err(|e| CheckMessage::field("leverage", e))?;
        let limit_price = match (self.order_type, self.price) {
            (OrderType::Limit, None) => {
                return Err(CheckMessage::from_static(
                    "price is required for a LIMIT order",
                ))
            }
            (OrderType::Limit, Some(p)) => {
                Some(Price::new(p).map_err(|e| CheckMessage::field("price", e))?)
            }
            (OrderType::Market, Some(_)) => {
                return Err(CheckMessage::from_static(
                    "price must be empty for a MARKET order",
                ))
            }
            (OrderType::Market, None) => None,
        };
        if self.post_only && self.order_type == OrderType::Market {
            return Err(CheckMessage::from_static(
                "post_only is only valid on a LIMIT order",
            ));
        }
        Ok(ValidOrder {
            quantity,
            limit_price,
            leverage,
        })
    }
}
