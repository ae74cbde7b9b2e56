//! The pre-trade check request, as received, and its validated form.

use crate::ids::{AccountId, OrderId, Symbol, TraceId, UserId};
use crate::model::{OrderType, Side};
use crate::num::{cmp_decimal, Leverage, Price, Quantity};
use crate::pretrade::message::Detail;
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
                return Err(CheckMessage::from(Detail::Required(field)));
            }
        }
        // The ranges by sign and one exact comparison (`cmp_decimal`), which is what the
        // checked constructors decide; they still build the error when a value is refused.
        let positive = |v: Decimal| !v.is_zero() && v.is_sign_positive();
        if !positive(self.quantity) {
            return Err(CheckMessage::from(Detail::QuantityNotPositive(
                self.quantity,
            )));
        }
        let quantity = Quantity::in_range(self.quantity);
        let leverage = if cmp_decimal(self.leverage, Decimal::ONE).is_ge() {
            Leverage::in_range(self.leverage)
        } else {
            Leverage::new(self.leverage)
                .map_err(|e| CheckMessage::from(Detail::Field("leverage", e)))?
        };
        let limit_price = match (self.order_type, self.price) {
            (OrderType::Limit, None) => {
                return Err(CheckMessage::from_static(
                    "price is required for a LIMIT order",
                ))
            }
            (OrderType::Limit, Some(p)) if positive(p) => Some(Price::in_range(p)),
            (OrderType::Limit, Some(p)) => {
                Some(Price::new(p).map_err(|e| CheckMessage::from(Detail::Field("price", e)))?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, OrderId, Symbol, TraceId, UserId};

    /// A valid limit buy of one lot at 1, leverage 1: each case changes one field.
    fn limit_buy() -> CheckRequest {
        CheckRequest {
            user_id: UserId::new("u"),
            account_id: AccountId::new("a"),
            order_id: OrderId::new("o"),
            symbol: Symbol::new("S"),
            side: crate::model::Side::Buy,
            order_type: OrderType::Limit,
            quantity: Decimal::ONE,
            price: Some(Decimal::ONE),
            leverage: Decimal::ONE,
            reduce_only: false,
            post_only: false,
            trace_id: TraceId::new("t"),
        }
    }

    /// Validation accepts exactly what the checked constructors accept, and refuses with
    /// their words: signed zeros, values just either side of the bounds, other scales.
    #[test]
    fn validation_ranges_are_the_checked_constructors() {
        let values = [
            Decimal::ZERO,
            -Decimal::ZERO,
            Decimal::new(-0, 5),
            Decimal::from_parts(0, 0, 0, true, 3),
            Decimal::ONE,
            Decimal::new(1000, 3),
            Decimal::new(999_999, 6),
            Decimal::new(1_000_001, 6),
            Decimal::new(1, 28),
            Decimal::new(-1, 28),
            Decimal::from(-5),
            Decimal::from(60),
            Decimal::MAX,
            Decimal::MIN,
        ];
        for v in values {
            let request = limit_buy();
            let cases = [
                (
                    CheckRequest {
                        quantity: v,
                        ..request.clone()
                    },
                    v > Decimal::ZERO && Quantity::new(v).is_ok(),
                ),
                (
                    CheckRequest {
                        leverage: v,
                        ..request.clone()
                    },
                    Leverage::new(v).is_ok(),
                ),
                (
                    CheckRequest {
                        price: Some(v),
                        ..request.clone()
                    },
                    Price::new(v).is_ok(),
                ),
            ];
            for (i, (r, valid)) in cases.into_iter().enumerate() {
                let got = r.validate();
                assert_eq!(got.is_ok(), valid, "case {i} at {v:?}");
                if let Ok(order) = got {
                    assert_eq!(
                        (
                            order.quantity.get(),
                            order.leverage.get(),
                            order.limit_price.map(Price::get)
                        ),
                        (r.quantity, r.leverage, r.price),
                        "case {i} at {v:?}: values kept as given"
                    );
                }
            }
        }
        // The refusals keep their words.
        let refused = CheckRequest {
            price: Some(Decimal::from(-2)),
            leverage: Decimal::new(5, 1),
            ..limit_buy()
        };
        assert_eq!(
            refused.validate().err().map(|m| m.to_string()),
            Some("leverage: 0.5 is not valid: must be at least 1".to_owned())
        );
        let refused = CheckRequest {
            leverage: Decimal::ONE,
            ..refused
        };
        assert_eq!(
            refused.validate().err().map(|m| m.to_string()),
            Some("price: -2 is not valid: must be greater than zero".to_owned())
        );
    }
}
