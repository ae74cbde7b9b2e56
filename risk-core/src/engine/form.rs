//! The serde form of [`EngineEvent`]: one flat object tagged by `type` (see the module
//! docs of [`crate::engine`]).
//!
//! Every key that any event type uses is a typed, optional field of one struct, so serde
//! reads each value in place (a refusal is reported at its key, which a path-tracking
//! reader turns into `instruments[0].contract_multiplier`-style paths), and the
//! conversion to [`EngineEvent`] then checks which keys the type needs and allows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AccountEvent, EngineEvent, MarketEvent, Seq};
use crate::account::{OpenOrder, RiskProfile};
use crate::ids::{AccountId, OrderId, Symbol, UserId};
use crate::market::{Instrument, InstrumentSpec};
use crate::model::{InstrumentStatus, KycLevel, Side, TradingState};
use crate::num::{
    FieldError, FieldProblem, Leverage, LotSize, Money, Multiplier, Price, PriceBand, Quantity,
    SignedQuantity,
};

/// The event types, by their serde names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum EventType {
    Mark,
    Instrument,
    GlobalTradingState,
    ProfileUpsert,
    BalanceChange,
    PositionUpdate,
    OrderOpened,
    OrderCancelled,
    OrderFilled,
    TradingState,
    ReservationReleased,
}

impl EventType {
    fn name(self) -> &'static str {
        match self {
            Self::Mark => "mark",
            Self::Instrument => "instrument",
            Self::GlobalTradingState => "global_trading_state",
            Self::ProfileUpsert => "profile_upsert",
            Self::BalanceChange => "balance_change",
            Self::PositionUpdate => "position_update",
            Self::OrderOpened => "order_opened",
            Self::OrderCancelled => "order_cancelled",
            Self::OrderFilled => "order_filled",
            Self::TradingState => "trading_state",
            Self::ReservationReleased => "reservation_released",
        }
    }
}

/// Serde reads a sequence number as an integer and refuses 0 with the rule only (the
/// reader names the key).
impl<'de> Deserialize<'de> for Seq {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u64::deserialize(deserializer)?;
        Self::new(value).map_err(|e| serde::de::Error::custom(e.problem))
    }
}

impl Serialize for Seq {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.get())
    }
}

/// Every key of every event type.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventForm {
    #[serde(rename = "type")]
    kind: Option<EventType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<Seq>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    symbol: Option<Symbol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    price: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<TradingState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile: Option<RiskProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delta: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<SignedQuantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entry_price: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leverage: Option<Leverage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order_id: Option<OrderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    side: Option<Side>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quantity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reduce_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tick_size: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lot_size: Option<LotSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_quantity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_quantity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contract_multiplier: Option<Multiplier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_leverage: Option<Leverage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    required_kyc: Option<KycLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<InstrumentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    price_band: Option<PriceBand>,
}

/// Takes the required keys out of an [`EventForm`] and, at the end, refuses any key the
/// type does not use.
struct Take<'a> {
    form: &'a mut EventForm,
    kind: EventType,
}

fn required<T>(field: &'static str, value: Option<T>) -> Result<T, FieldError> {
    value.ok_or(FieldError {
        field,
        problem: FieldProblem::Missing,
    })
}

impl Take<'_> {
    /// Errors for the first key still set: it does not belong to this type.
    fn finish(self) -> Result<(), FieldError> {
        let f = &*self.form;
        let present: [(&'static str, bool); 25] = [
            ("account_id", f.account_id.is_some()),
            ("seq", f.seq.is_some()),
            ("symbol", f.symbol.is_some()),
            ("price", f.price.is_some()),
            ("at", f.at.is_some()),
            ("state", f.state.is_some()),
            ("user_id", f.user_id.is_some()),
            ("profile", f.profile.is_some()),
            ("delta", f.delta.is_some()),
            ("size", f.size.is_some()),
            ("entry_price", f.entry_price.is_some()),
            ("leverage", f.leverage.is_some()),
            ("order_id", f.order_id.is_some()),
            ("side", f.side.is_some()),
            ("quantity", f.quantity.is_some()),
            ("reduce_only", f.reduce_only.is_some()),
            ("tick_size", f.tick_size.is_some()),
            ("lot_size", f.lot_size.is_some()),
            ("min_quantity", f.min_quantity.is_some()),
            ("max_quantity", f.max_quantity.is_some()),
            ("contract_multiplier", f.contract_multiplier.is_some()),
            ("max_leverage", f.max_leverage.is_some()),
            ("required_kyc", f.required_kyc.is_some()),
            ("status", f.status.is_some()),
            ("price_band", f.price_band.is_some()),
        ];
        match present.iter().find(|(_, set)| *set) {
            Some((field, _)) => Err(FieldError {
                field,
                problem: FieldProblem::NotAllowed {
                    kind: self.kind.name(),
                },
            }),
            None => Ok(()),
        }
    }
}

impl TryFrom<EventForm> for EngineEvent {
    type Error = FieldError;

    fn try_from(mut form: EventForm) -> Result<Self, FieldError> {
        let kind = required("type", form.kind)?;
        let f = &mut form;
        let event = match kind {
            EventType::Mark => EngineEvent::Market(MarketEvent::Mark {
                symbol: required("symbol", f.symbol.take())?,
                price: required("price", f.price.take())?,
                at: required("at", f.at.take())?,
            }),
            EventType::Instrument => {
                let spec = InstrumentSpec {
                    symbol: required("symbol", f.symbol.take())?,
                    tick_size: required("tick_size", f.tick_size.take())?,
                    lot_size: required("lot_size", f.lot_size.take())?,
                    min_quantity: required("min_quantity", f.min_quantity.take())?,
                    max_quantity: required("max_quantity", f.max_quantity.take())?,
                    contract_multiplier: required(
                        "contract_multiplier",
                        f.contract_multiplier.take(),
                    )?,
                    max_leverage: required("max_leverage", f.max_leverage.take())?,
                    required_kyc: required("required_kyc", f.required_kyc.take())?,
                    status: required("status", f.status.take())?,
                    price_band: f.price_band.take(),
                };
                EngineEvent::Market(MarketEvent::Instrument(Instrument::new(spec)?))
            }
            EventType::GlobalTradingState => EngineEvent::Market(MarketEvent::GlobalTradingState(
                required("state", f.state.take())?,
            )),
            EventType::ProfileUpsert => {
                let event = AccountEvent::ProfileUpsert {
                    user_id: required("user_id", f.user_id.take())?,
                    profile: required("profile", f.profile.take())?,
                };
                account(f, event)?
            }
            EventType::BalanceChange => {
                let event = AccountEvent::BalanceChange {
                    delta: required("delta", f.delta.take())?,
                };
                account(f, event)?
            }
            EventType::PositionUpdate => {
                let event = AccountEvent::PositionUpdate {
                    symbol: required("symbol", f.symbol.take())?,
                    size: required("size", f.size.take())?,
                    entry_price: required("entry_price", f.entry_price.take())?,
                    leverage: required("leverage", f.leverage.take())?,
                };
                account(f, event)?
            }
            EventType::OrderOpened => {
                let event = AccountEvent::OrderOpened(OpenOrder {
                    order_id: required("order_id", f.order_id.take())?,
                    symbol: required("symbol", f.symbol.take())?,
                    side: required("side", f.side.take())?,
                    quantity: required("quantity", f.quantity.take())?,
                    price: required("price", f.price.take())?,
                    leverage: required("leverage", f.leverage.take())?,
                    reduce_only: f.reduce_only.take().unwrap_or(false),
                });
                account(f, event)?
            }
            EventType::OrderCancelled => {
                let event = AccountEvent::OrderCancelled {
                    order_id: required("order_id", f.order_id.take())?,
                };
                account(f, event)?
            }
            EventType::OrderFilled => {
                let event = AccountEvent::OrderFilled {
                    order_id: required("order_id", f.order_id.take())?,
                    symbol: required("symbol", f.symbol.take())?,
                    side: required("side", f.side.take())?,
                    quantity: required("quantity", f.quantity.take())?,
                    price: required("price", f.price.take())?,
                    leverage: required("leverage", f.leverage.take())?,
                };
                account(f, event)?
            }
            EventType::TradingState => {
                let event = AccountEvent::TradingState(required("state", f.state.take())?);
                account(f, event)?
            }
            EventType::ReservationReleased => {
                let event = AccountEvent::ReservationReleased {
                    order_id: required("order_id", f.order_id.take())?,
                };
                account(f, event)?
            }
        };
        Take { form: f, kind }.finish()?;
        Ok(event)
    }
}

/// An account event with the form's `account_id` and `seq`.
fn account(f: &mut EventForm, event: AccountEvent) -> Result<EngineEvent, FieldError> {
    Ok(EngineEvent::Account {
        account_id: required("account_id", f.account_id.take())?,
        seq: required("seq", f.seq.take())?,
        event,
    })
}

impl From<EngineEvent> for EventForm {
    fn from(event: EngineEvent) -> Self {
        let mut f = EventForm::default();
        match event {
            EngineEvent::Market(MarketEvent::Mark { symbol, price, at }) => {
                f.kind = Some(EventType::Mark);
                f.symbol = Some(symbol);
                f.price = Some(price);
                f.at = Some(at);
            }
            EngineEvent::Market(MarketEvent::Instrument(instrument)) => {
                let s = InstrumentSpec::from(instrument);
                f.kind = Some(EventType::Instrument);
                f.symbol = Some(s.symbol);
                f.tick_size = Some(s.tick_size);
                f.lot_size = Some(s.lot_size);
                f.min_quantity = Some(s.min_quantity);
                f.max_quantity = Some(s.max_quantity);
                f.contract_multiplier = Some(s.contract_multiplier);
                f.max_leverage = Some(s.max_leverage);
                f.required_kyc = Some(s.required_kyc);
                f.status = Some(s.status);
                f.price_band = s.price_band;
            }
            EngineEvent::Market(MarketEvent::GlobalTradingState(state)) => {
                f.kind = Some(EventType::GlobalTradingState);
                f.state = Some(state);
            }
            EngineEvent::Account {
                account_id,
                seq,
                event,
            } => {
                f.account_id = Some(account_id);
                f.seq = Some(seq);
                let kind = match event {
                    AccountEvent::ProfileUpsert { user_id, profile } => {
                        f.user_id = Some(user_id);
                        f.profile = Some(profile);
                        EventType::ProfileUpsert
                    }
                    AccountEvent::BalanceChange { delta } => {
                        f.delta = Some(delta);
                        EventType::BalanceChange
                    }
                    AccountEvent::PositionUpdate {
                        symbol,
                        size,
                        entry_price,
                        leverage,
                    } => {
                        f.symbol = Some(symbol);
                        f.size = Some(size);
                        f.entry_price = Some(entry_price);
                        f.leverage = Some(leverage);
                        EventType::PositionUpdate
                    }
                    AccountEvent::OrderOpened(o) => {
                        f.order_id = Some(o.order_id);
                        f.symbol = Some(o.symbol);
                        f.side = Some(o.side);
                        f.quantity = Some(o.quantity);
                        f.price = Some(o.price);
                        f.leverage = Some(o.leverage);
                        f.reduce_only = Some(o.reduce_only);
                        EventType::OrderOpened
                    }
                    AccountEvent::OrderCancelled { order_id } => {
                        f.order_id = Some(order_id);
                        EventType::OrderCancelled
                    }
                    AccountEvent::OrderFilled {
                        order_id,
                        symbol,
                        side,
                        quantity,
                        price,
                        leverage,
                    } => {
                        f.order_id = Some(order_id);
                        f.symbol = Some(symbol);
                        f.side = Some(side);
                        f.quantity = Some(quantity);
                        f.price = Some(price);
                        f.leverage = Some(leverage);
                        EventType::OrderFilled
                    }
                    AccountEvent::TradingState(state) => {
                        f.state = Some(state);
                        EventType::TradingState
                    }
                    AccountEvent::ReservationReleased { order_id } => {
                        f.order_id = Some(order_id);
                        EventType::ReservationReleased
                    }
                };
                f.kind = Some(kind);
            }
        }
        f
    }
}
