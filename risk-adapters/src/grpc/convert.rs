//! Wire <-> core conversions for `risk.v1`. All the parsing of wire values lives here.
//!
//! Decimals are parsed strictly with [`parse_decimal`] (no padding, no `NaN`/`inf`, at most
//! 64 characters); every range rule (price > 0, leverage >= 1, multiplier > 0, min <= max
//! quantity, seq >= 1...) is the core's, applied by its validated constructors, never
//! repeated here. A conversion error names the field's path in the message, so a client
//! can fix its request from the message.

use chrono::{DateTime, Utc};
use risk_core::account::{
    AccountSnapshot, AccountView, OpenOrder, Position, Reservation, RiskProfile,
};
use risk_core::engine::{AccountEvent, Applied, EngineEvent, MarketEvent, Seq};
use risk_core::ids::{AccountId, OrderId, Symbol, TraceId, UserId};
use risk_core::market::{Instrument, InstrumentSpec};
use risk_core::model::{self, InstrumentStatus, KycLevel, OrderType, Side, TradingState};
use risk_core::num::{
    parse_decimal, FieldError, Leverage, Money, Notional, NumberError, Price, Quantity, RiskScore,
    SignedQuantity,
};
use risk_core::pretrade::{CheckRequest, CheckResponse};
use risk_core::Decimal;

use super::proto::v1 as pb;
use pb::account_event::Change;
use pb::account_or_market_event::Event;

/// A wire value could not be converted: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct WireError {
    /// The field's path in the message, e.g. `quantity` or `account.profile_upsert.profile.kyc_level`.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

/// A core constructor's refusal, with its field placed under `prefix` in the message.
fn core(prefix: &str, e: FieldError) -> WireError {
    err(&format!("{prefix}.{}", e.field), e.problem.to_string())
}

fn err(field: &str, problem: impl Into<String>) -> WireError {
    WireError {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// Parses a required decimal string.
///
/// # Errors
/// [`WireError`] when empty or not a strict decimal.
pub fn decimal(field: &str, text: &str) -> Result<Decimal, WireError> {
    if text.is_empty() {
        return Err(err(field, "is required"));
    }
    parse_decimal(text).map_err(|e| err(field, e.to_string()))
}

/// Parses an optional decimal string: empty is `None`.
///
/// # Errors
/// [`WireError`] when not empty and not a strict decimal.
pub fn optional_decimal(field: &str, text: &str) -> Result<Option<Decimal>, WireError> {
    if text.is_empty() {
        Ok(None)
    } else {
        decimal(field, text).map(Some)
    }
}

/// Parses a required decimal string into a core newtype (which checks its range).
fn typed<T>(field: &str, text: &str) -> Result<T, WireError>
where
    T: TryFrom<Decimal, Error = NumberError>,
{
    T::try_from(decimal(field, text)?).map_err(|e| err(field, e.to_string()))
}

fn side(field: &str, value: i32) -> Result<Side, WireError> {
    match pb::Side::try_from(value) {
        Ok(pb::Side::Buy) => Ok(Side::Buy),
        Ok(pb::Side::Sell) => Ok(Side::Sell),
        Ok(pb::Side::Unspecified) => Err(err(field, "is required (BUY or SELL)")),
        Err(_) => Err(err(field, format!("{value} is not a valid Side"))),
    }
}

fn order_type(field: &str, value: i32) -> Result<OrderType, WireError> {
    match pb::OrderType::try_from(value) {
        Ok(pb::OrderType::Market) => Ok(OrderType::Market),
        Ok(pb::OrderType::Limit) => Ok(OrderType::Limit),
        Ok(pb::OrderType::Unspecified) => Err(err(field, "is required (MARKET or LIMIT)")),
        Err(_) => Err(err(field, format!("{value} is not a valid OrderType"))),
    }
}

fn trading_state(
    field: &str,
    value: i32,
    default: Option<TradingState>,
) -> Result<TradingState, WireError> {
    match pb::TradingState::try_from(value) {
        Ok(pb::TradingState::Active) => Ok(TradingState::Active),
        Ok(pb::TradingState::Reducing) => Ok(TradingState::Reducing),
        Ok(pb::TradingState::Halted) => Ok(TradingState::Halted),
        Ok(pb::TradingState::Unspecified) => {
            default.ok_or_else(|| err(field, "is required (ACTIVE, REDUCING or HALTED)"))
        }
        Err(_) => Err(err(field, format!("{value} is not a valid TradingState"))),
    }
}

fn kyc_level(field: &str, value: i32) -> Result<KycLevel, WireError> {
    match pb::KycLevel::try_from(value) {
        Ok(pb::KycLevel::L0) => Ok(KycLevel::L0),
        Ok(pb::KycLevel::L1) => Ok(KycLevel::L1),
        Ok(pb::KycLevel::L2) => Ok(KycLevel::L2),
        Ok(pb::KycLevel::Unspecified) => Err(err(field, "is required (L0, L1 or L2)")),
        Err(_) => Err(err(field, format!("{value} is not a valid KycLevel"))),
    }
}

fn instrument_status(field: &str, value: i32) -> Result<InstrumentStatus, WireError> {
    match pb::InstrumentStatus::try_from(value) {
        Ok(pb::InstrumentStatus::Trading) => Ok(InstrumentStatus::Trading),
        Ok(pb::InstrumentStatus::Halted) => Ok(InstrumentStatus::Halted),
        Ok(pb::InstrumentStatus::ReduceOnly) => Ok(InstrumentStatus::ReduceOnly),
        Ok(pb::InstrumentStatus::Unspecified) => {
            Err(err(field, "is required (TRADING, HALTED or REDUCE_ONLY)"))
        }
        Err(_) => Err(err(
            field,
            format!("{value} is not a valid InstrumentStatus"),
        )),
    }
}

fn id_field(field: &str, text: &str) -> Result<(), WireError> {
    if text.is_empty() {
        Err(err(field, "is required"))
    } else {
        Ok(())
    }
}

/// The core request for a wire request. Range checks (quantity > 0, leverage >= 1, price
/// present exactly for LIMIT) are the core's first phase, not repeated here.
///
/// # Errors
/// [`WireError`] for an unset or unknown enum, or a decimal that does not parse.
pub fn check_request(request: &pb::PreTradeCheckRequest) -> Result<CheckRequest, WireError> {
    Ok(CheckRequest {
        user_id: UserId::new(&request.user_id),
        account_id: AccountId::new(&request.account_id),
        order_id: OrderId::new(&request.order_id),
        symbol: Symbol::new(&request.symbol),
        side: side("side", request.side)?,
        order_type: order_type("order_type", request.order_type)?,
        quantity: decimal("quantity", &request.quantity)?,
        price: optional_decimal("price", &request.price)?,
        leverage: decimal("leverage", &request.leverage)?,
        reduce_only: request.reduce_only,
        post_only: request.post_only,
        trace_id: TraceId::new(&request.trace_id),
    })
}

fn decimal_text(value: Decimal) -> String {
    value.normalize().to_string()
}

/// The wire decision for a core decision (the names are the contract's).
#[must_use]
pub fn decision(value: model::Decision) -> pb::RiskDecision {
    pb::RiskDecision::from_str_name(value.as_str()).unwrap_or(pb::RiskDecision::Unspecified)
}

/// The wire reject reason for a core one (the names are the contract's).
#[must_use]
pub fn reject_reason(value: Option<model::RejectReason>) -> pb::RejectReason {
    value
        .and_then(|r| pb::RejectReason::from_str_name(r.as_str()))
        .unwrap_or(pb::RejectReason::Unspecified)
}

/// The wire response for a core response.
#[must_use]
pub fn check_response(response: &CheckResponse) -> pb::PreTradeCheckResponse {
    pb::PreTradeCheckResponse {
        decision: decision(response.decision) as i32,
        reject_reason: reject_reason(response.reject_reason) as i32,
        message: response.message.to_string(),
        projected_margin_ratio: response
            .projected_margin_ratio()
            .map(decimal_text)
            .unwrap_or_default(),
        required_initial_margin: response
            .required_initial_margin()
            .map(decimal_text)
            .unwrap_or_default(),
        liquidation_risk: response.liquidation_risk,
        rule_hits: response
            .rule_hits
            .iter()
            .map(|h| h.rule_id.as_str().to_owned())
            .collect(),
        trace_id: response.trace_id.as_str().to_owned(),
        margin_call: response.margin_call,
    }
}

/// The answer to a request that could not be converted: REJECTED, INVALID_REQUEST, with
/// the error as the message.
#[must_use]
pub fn invalid_request(error: &WireError, trace_id: &str) -> pb::PreTradeCheckResponse {
    pb::PreTradeCheckResponse {
        decision: pb::RiskDecision::Rejected as i32,
        reject_reason: pb::RejectReason::InvalidRequest as i32,
        message: error.to_string(),
        trace_id: trace_id.to_owned(),
        ..Default::default()
    }
}

/// The core event for a wire event. `now` stamps a mark sent without a time.
///
/// # Errors
/// [`WireError`] naming the field that is missing or malformed.
pub fn event(
    event: &pb::AccountOrMarketEvent,
    now: DateTime<Utc>,
) -> Result<EngineEvent, WireError> {
    match event.event.as_ref() {
        None => Err(err(
            "event",
            "is required (mark, instrument, global_trading_state or account)",
        )),
        Some(Event::Mark(m)) => {
            id_field("mark.symbol", &m.symbol)?;
            let at = match m.at_unix_ms {
                0 => now,
                ms if ms < 0 => return Err(err("mark.at_unix_ms", "must not be negative")),
                ms => DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| err("mark.at_unix_ms", "is out of range"))?,
            };
            Ok(EngineEvent::Market(MarketEvent::Mark {
                symbol: Symbol::new(&m.symbol),
                price: typed("mark.price", &m.price)?,
                at,
            }))
        }
        Some(Event::Instrument(i)) => {
            Ok(EngineEvent::Market(MarketEvent::Instrument(instrument(i)?)))
        }
        Some(Event::GlobalTradingState(g)) => {
            Ok(EngineEvent::Market(MarketEvent::GlobalTradingState(
                trading_state("global_trading_state.state", g.state, None)?,
            )))
        }
        Some(Event::Account(a)) => account_event(a),
    }
}

fn instrument(i: &pb::Instrument) -> Result<Instrument, WireError> {
    let spec = InstrumentSpec {
        symbol: Symbol::new(&i.symbol),
        tick_size: typed("instrument.tick_size", &i.tick_size)?,
        lot_size: typed("instrument.lot_size", &i.lot_size)?,
        min_quantity: typed("instrument.min_quantity", &i.min_quantity)?,
        max_quantity: typed("instrument.max_quantity", &i.max_quantity)?,
        contract_multiplier: typed("instrument.contract_multiplier", &i.contract_multiplier)?,
        max_leverage: typed("instrument.max_leverage", &i.max_leverage)?,
        required_kyc: kyc_level("instrument.required_kyc", i.required_kyc)?,
        status: instrument_status("instrument.status", i.status)?,
        price_band: optional_typed("instrument.price_band", &i.price_band)?,
    };
    Instrument::new(spec).map_err(|e| core("instrument", e))
}

/// Like [`typed`] for an optional field: empty is `None`.
fn optional_typed<T>(field: &str, text: &str) -> Result<Option<T>, WireError>
where
    T: TryFrom<Decimal, Error = NumberError>,
{
    if text.is_empty() {
        Ok(None)
    } else {
        typed(field, text).map(Some)
    }
}

fn profile(field: &str, p: Option<&pb::RiskProfile>) -> Result<RiskProfile, WireError> {
    let p = p.ok_or_else(|| err(field, "is required"))?;
    let f = |name: &str| format!("{field}.{name}");
    Ok(RiskProfile {
        kyc_level: kyc_level(&f("kyc_level"), p.kyc_level)?,
        exposure_limit: typed(&f("exposure_limit"), &p.exposure_limit)?,
        frozen: p.frozen,
        max_leverage: typed(&f("max_leverage"), &p.max_leverage)?,
        risk_score: optional_typed(&f("risk_score"), &p.risk_score)?.unwrap_or(RiskScore::ZERO),
        trading_state: trading_state(
            &f("trading_state"),
            p.trading_state,
            Some(TradingState::Active),
        )?,
    })
}

fn account_event(a: &pb::AccountEvent) -> Result<EngineEvent, WireError> {
    id_field("account.account_id", &a.account_id)?;
    let seq = Seq::new(a.seq).map_err(|e| core("account", e))?;
    let event = match a.change.as_ref() {
        None => return Err(err("account.change", "is required")),
        Some(Change::ProfileUpsert(p)) => {
            id_field("account.profile_upsert.user_id", &p.user_id)?;
            AccountEvent::ProfileUpsert {
                user_id: UserId::new(&p.user_id),
                profile: profile("account.profile_upsert.profile", p.profile.as_ref())?,
            }
        }
        Some(Change::BalanceChange(b)) => AccountEvent::BalanceChange {
            delta: typed::<Money>("account.balance_change.delta", &b.delta)?,
        },
        Some(Change::PositionUpdate(p)) => {
            id_field("account.position_update.symbol", &p.symbol)?;
            AccountEvent::PositionUpdate {
                symbol: Symbol::new(&p.symbol),
                size: typed::<SignedQuantity>("account.position_update.size", &p.size)?,
                entry_price: typed("account.position_update.entry_price", &p.entry_price)?,
                leverage: typed("account.position_update.leverage", &p.leverage)?,
            }
        }
        Some(Change::OrderOpened(o)) => {
            id_field("account.order_opened.order_id", &o.order_id)?;
            id_field("account.order_opened.symbol", &o.symbol)?;
            AccountEvent::OrderOpened(OpenOrder {
                order_id: OrderId::new(&o.order_id),
                symbol: Symbol::new(&o.symbol),
                side: side("account.order_opened.side", o.side)?,
                quantity: typed("account.order_opened.quantity", &o.quantity)?,
                price: typed("account.order_opened.price", &o.price)?,
                leverage: typed("account.order_opened.leverage", &o.leverage)?,
                reduce_only: o.reduce_only,
            })
        }
        Some(Change::OrderCancelled(o)) => {
            id_field("account.order_cancelled.order_id", &o.order_id)?;
            AccountEvent::OrderCancelled {
                order_id: OrderId::new(&o.order_id),
            }
        }
        Some(Change::OrderFilled(o)) => {
            id_field("account.order_filled.order_id", &o.order_id)?;
            id_field("account.order_filled.symbol", &o.symbol)?;
            AccountEvent::OrderFilled {
                order_id: OrderId::new(&o.order_id),
                symbol: Symbol::new(&o.symbol),
                side: side("account.order_filled.side", o.side)?,
                quantity: typed::<Quantity>("account.order_filled.quantity", &o.quantity)?,
                price: typed::<Price>("account.order_filled.price", &o.price)?,
                leverage: typed::<Leverage>("account.order_filled.leverage", &o.leverage)?,
            }
        }
        Some(Change::TradingState(s)) => {
            AccountEvent::TradingState(trading_state("account.trading_state", *s, None)?)
        }
        Some(Change::ReservationReleased(o)) => {
            id_field("account.reservation_released.order_id", &o.order_id)?;
            AccountEvent::ReservationReleased {
                order_id: OrderId::new(&o.order_id),
            }
        }
    };
    Ok(EngineEvent::Account {
        account_id: AccountId::new(&a.account_id),
        seq,
        event,
    })
}

/// The wire result of applying one event. `last_seq` is the account's sequence after it
/// (0 for market events).
#[must_use]
pub fn applied(outcome: Applied, last_seq: u64) -> pb::ApplyEventResult {
    let (outcome, last_seq) = match outcome {
        Applied::Applied => (pb::EventOutcome::Applied, last_seq),
        Applied::Duplicate { last_seq } => (pb::EventOutcome::Duplicate, last_seq),
        Applied::Stale => (pb::EventOutcome::Stale, last_seq),
    };
    pb::ApplyEventResult {
        outcome: outcome as i32,
        last_seq,
    }
}

fn wire_trading_state(s: TradingState) -> pb::TradingState {
    match s {
        TradingState::Active => pb::TradingState::Active,
        TradingState::Reducing => pb::TradingState::Reducing,
        TradingState::Halted => pb::TradingState::Halted,
    }
}

fn wire_kyc(k: KycLevel) -> pb::KycLevel {
    match k {
        KycLevel::L0 => pb::KycLevel::L0,
        KycLevel::L1 => pb::KycLevel::L1,
        KycLevel::L2 => pb::KycLevel::L2,
    }
}

fn wire_side(s: Side) -> pb::Side {
    match s {
        Side::Buy => pb::Side::Buy,
        Side::Sell => pb::Side::Sell,
    }
}

/// The wire view of an account snapshot and its last applied sequence: the core's
/// [`AccountView`], each part taken apart by an exhaustive pattern so a field added in the
/// core fails to compile here until the wire carries it.
#[must_use]
pub fn account(snapshot: &AccountSnapshot, last_seq: u64) -> pb::GetAccountResponse {
    let AccountView {
        account_id,
        user_id,
        profile,
        wallet_balance,
        positions,
        open_orders,
        reservations,
        last_seq,
    } = snapshot.view(last_seq);
    let RiskProfile {
        kyc_level,
        exposure_limit,
        frozen,
        max_leverage,
        risk_score,
        trading_state,
    } = profile;
    pb::GetAccountResponse {
        account_id: account_id.as_str().to_owned(),
        user_id: user_id.as_str().to_owned(),
        profile: Some(pb::RiskProfile {
            kyc_level: wire_kyc(*kyc_level) as i32,
            exposure_limit: decimal_text(exposure_limit.get()),
            frozen: *frozen,
            max_leverage: decimal_text(max_leverage.get()),
            risk_score: decimal_text(risk_score.get()),
            trading_state: wire_trading_state(*trading_state) as i32,
        }),
        wallet_balance: decimal_text(wallet_balance.get()),
        positions: positions.iter().map(wire_position).collect(),
        open_orders: open_orders.iter().map(wire_order).collect(),
        reservations: reservations.iter().map(wire_reservation).collect(),
        last_seq,
    }
}

fn wire_position(p: &Position) -> pb::Position {
    let Position {
        symbol,
        size,
        entry_price,
        leverage,
    } = p;
    pb::Position {
        symbol: symbol.as_str().to_owned(),
        size: decimal_text(size.get()),
        entry_price: decimal_text(entry_price.get()),
        leverage: decimal_text(leverage.get()),
    }
}

fn wire_order(o: &OpenOrder) -> pb::Order {
    let OpenOrder {
        order_id,
        symbol,
        side,
        quantity,
        price,
        leverage,
        reduce_only,
    } = o;
    pb::Order {
        order_id: order_id.as_str().to_owned(),
        symbol: symbol.as_str().to_owned(),
        side: wire_side(*side) as i32,
        quantity: decimal_text(quantity.get()),
        price: decimal_text(price.get()),
        leverage: decimal_text(leverage.get()),
        reduce_only: *reduce_only,
    }
}

fn wire_reservation(r: &Reservation) -> pb::Reservation {
    let Reservation {
        order_id,
        amount,
        notional,
    } = r;
    pb::Reservation {
        order_id: order_id.as_str().to_owned(),
        amount: decimal_text(amount.get()),
        notional: decimal_text(Notional::get(*notional)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use risk_core::model::{Decision, RejectReason};

    #[test]
    fn every_core_decision_and_reason_has_a_wire_value() {
        for d in Decision::ALL {
            assert_ne!(decision(*d), pb::RiskDecision::Unspecified, "{d}");
        }
        for r in RejectReason::ALL {
            assert_eq!(reject_reason(Some(*r)).as_str_name(), r.as_str());
        }
        assert_eq!(reject_reason(None), pb::RejectReason::Unspecified);
    }

    #[test]
    fn malformed_decimals_name_the_field() {
        for bad in ["abc", " 1", "NaN", "inf", "1,5", "--1", "1.2.3"] {
            let e = decimal("quantity", bad).expect_err(bad);
            assert_eq!(e.field, "quantity");
        }
        let long = "9".repeat(100);
        assert!(decimal("price", &long)
            .expect_err("long")
            .to_string()
            .starts_with("price: "));
        assert_eq!(decimal("x", "1e3"), Ok(Decimal::from(1000)));
        assert_eq!(optional_decimal("price", ""), Ok(None));
    }

    #[test]
    fn unset_enums_are_refused_by_name() {
        let request = pb::PreTradeCheckRequest {
            quantity: "1".into(),
            leverage: "1".into(),
            order_type: pb::OrderType::Market as i32,
            ..Default::default()
        };
        assert_eq!(check_request(&request).expect_err("side").field, "side");
        let request = pb::PreTradeCheckRequest {
            side: pb::Side::Buy as i32,
            ..request
        };
        let _ = request.clone();
        let no_type = pb::PreTradeCheckRequest {
            order_type: 0,
            ..request
        };
        assert_eq!(
            check_request(&no_type).expect_err("type").field,
            "order_type"
        );
    }
}
