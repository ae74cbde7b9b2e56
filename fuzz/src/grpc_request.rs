//! The `grpc_request` target: protobuf frames decoded and converted as the gRPC server
//! does, then applied to or checked on an engine loaded from the demo config.

use chrono::{DateTime, Utc};
use risk_adapters::config_file::{ConfigFile, Format};
use risk_core::engine::{AccountEvent, EngineEvent, MarketEvent};
use risk_core::pretrade::{check, CheckRequest};
use risk_core::Decimal;

use crate::input::now;
use crate::pretrade_check::check_response;
use crate::wire_decimal::plain_decimal_value;

/// The `risk.v1` message descriptors, to check that an error's field path exists.
fn descriptors() -> &'static prost_types::FileDescriptorSet {
    use prost::Message as _;
    static SET: std::sync::OnceLock<prost_types::FileDescriptorSet> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        prost_types::FileDescriptorSet::decode(risk_adapters::grpc::proto::FILE_DESCRIPTOR_SET)
            .expect("the compiled descriptor set decodes")
    })
}

fn message_descriptor(full_name: &str) -> Option<&'static prost_types::DescriptorProto> {
    let name = full_name.strip_prefix(".risk.v1.")?;
    descriptors()
        .file
        .iter()
        .filter(|f| f.package() == "risk.v1")
        .flat_map(|f| &f.message_type)
        .find(|m| m.name() == name)
}

/// Whether `path` (`quantity`, `account.profile_upsert.profile.kyc_level`, or a oneof's
/// name such as `event`) names a field of the message `root` (`.risk.v1.Name`).
fn field_path_exists(root: &str, path: &str) -> bool {
    let Some(mut message) = message_descriptor(root) else {
        return false;
    };
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if let Some(field) = message.field.iter().find(|f| f.name() == *part) {
            if last {
                return true;
            }
            match message_descriptor(field.type_name()) {
                Some(inner) => message = inner,
                None => return false,
            }
        } else {
            return last && message.oneof_decl.iter().any(|o| o.name() == *part);
        }
    }
    false
}

/// The properties of converting one decoded `PreTradeCheckRequest`: a refusal names a
/// field of the request that is at fault and becomes REJECTED / INVALID_REQUEST; a
/// converted request carries the wire's ids, enums and the exact decimal values.
fn check_wire_request(
    wire: &risk_adapters::grpc::proto::v1::PreTradeCheckRequest,
) -> Option<CheckRequest> {
    use risk_adapters::grpc::convert;
    use risk_adapters::grpc::proto::v1 as pb;
    match convert::check_request(wire) {
        Err(e) => {
            assert!(
                field_path_exists(".risk.v1.PreTradeCheckRequest", &e.field),
                "refusal names no field of the request: {e}"
            );
            // The named field really is at fault.
            let at_fault = match e.field.as_str() {
                "side" => !matches!(
                    pb::Side::try_from(wire.side),
                    Ok(pb::Side::Buy | pb::Side::Sell)
                ),
                "order_type" => !matches!(
                    pb::OrderType::try_from(wire.order_type),
                    Ok(pb::OrderType::Market | pb::OrderType::Limit)
                ),
                "quantity" => convert::decimal("quantity", &wire.quantity).is_err(),
                "price" => convert::optional_decimal("price", &wire.price).is_err(),
                "leverage" => convert::decimal("leverage", &wire.leverage).is_err(),
                _ => false,
            };
            assert!(at_fault, "{e} but the field is fine: {wire:?}");
            let answer = convert::invalid_request(&e, &wire.trace_id);
            assert_eq!(answer.decision(), pb::RiskDecision::Rejected);
            assert_eq!(answer.reject_reason(), pb::RejectReason::InvalidRequest);
            assert_eq!(answer.message, e.to_string());
            assert_eq!(answer.trace_id, wire.trace_id);
            assert!(answer.required_initial_margin.is_empty() && answer.rule_hits.is_empty());
            None
        }
        Ok(request) => {
            assert_eq!(request.user_id.as_str(), wire.user_id);
            assert_eq!(request.account_id.as_str(), wire.account_id);
            assert_eq!(request.order_id.as_str(), wire.order_id);
            assert_eq!(request.symbol.as_str(), wire.symbol);
            assert_eq!(request.trace_id.as_str(), wire.trace_id);
            assert_eq!(request.side.as_str(), wire.side().as_str_name());
            assert_eq!(request.order_type.as_str(), wire.order_type().as_str_name());
            assert_eq!(
                (request.reduce_only, request.post_only),
                (wire.reduce_only, wire.post_only)
            );
            let exact = |text: &str| plain_decimal_value(text).ok().flatten();
            assert_eq!(Some(request.quantity), exact(&wire.quantity), "quantity");
            assert_eq!(Some(request.leverage), exact(&wire.leverage), "leverage");
            if wire.price.is_empty() {
                assert_eq!(request.price, None);
            } else {
                assert_eq!(request.price, exact(&wire.price), "price");
            }
            Some(request)
        }
    }
}

/// Checks that a converted core value equals the exact value of its wire text.
#[track_caller]
fn assert_wire_value(value: Decimal, text: &str, what: &str) {
    assert_eq!(
        Some(value),
        plain_decimal_value(text).ok().flatten(),
        "{what}: {text:?} converted to {value}"
    );
}

/// The properties of converting one decoded `AccountOrMarketEvent`: a refusal names a
/// field path of the event; a converted event carries the wire's values exactly.
fn check_wire_event(
    wire: &risk_adapters::grpc::proto::v1::AccountOrMarketEvent,
    now: DateTime<Utc>,
) -> Option<EngineEvent> {
    use risk_adapters::grpc::convert;
    use risk_adapters::grpc::proto::v1::account_event::Change;
    use risk_adapters::grpc::proto::v1::account_or_market_event::Event;
    let event = match convert::event(wire, now) {
        Err(e) => {
            assert!(
                field_path_exists(".risk.v1.AccountOrMarketEvent", &e.field),
                "refusal names no field of the event: {e}"
            );
            assert!(e.to_string().len() < 240, "message too long: {e}");
            return None;
        }
        Ok(event) => event,
    };
    match (wire.event.as_ref(), &event) {
        (Some(Event::Mark(m)), EngineEvent::Market(MarketEvent::Mark { symbol, price, at })) => {
            assert_eq!(symbol.as_str(), m.symbol);
            assert_wire_value(price.get(), &m.price, "mark.price");
            if m.at_unix_ms == 0 {
                assert_eq!(*at, now);
            } else {
                assert_eq!(at.timestamp_millis(), m.at_unix_ms);
            }
        }
        (Some(Event::Instrument(w)), EngineEvent::Market(MarketEvent::Instrument(i))) => {
            assert_eq!(i.symbol().as_str(), w.symbol);
            assert_wire_value(i.tick_size().get(), &w.tick_size, "tick_size");
            assert_wire_value(i.lot_size().get(), &w.lot_size, "lot_size");
            assert_wire_value(i.min_quantity().get(), &w.min_quantity, "min_quantity");
            assert_wire_value(i.max_quantity().get(), &w.max_quantity, "max_quantity");
            assert_wire_value(
                i.contract_multiplier().get(),
                &w.contract_multiplier,
                "multiplier",
            );
            assert_wire_value(i.max_leverage().get(), &w.max_leverage, "max_leverage");
            match i.price_band() {
                None => assert!(w.price_band.is_empty()),
                Some(b) => assert_wire_value(b.get(), &w.price_band, "price_band"),
            }
        }
        (
            Some(Event::GlobalTradingState(_)),
            EngineEvent::Market(MarketEvent::GlobalTradingState(_)),
        ) => {}
        (
            Some(Event::Account(a)),
            EngineEvent::Account {
                account_id,
                seq,
                event,
            },
        ) => {
            assert_eq!(
                (account_id.as_str(), seq.get()),
                (a.account_id.as_str(), a.seq)
            );
            match (a.change.as_ref(), event) {
                (
                    Some(Change::ProfileUpsert(w)),
                    AccountEvent::ProfileUpsert { user_id, profile },
                ) => {
                    assert_eq!(user_id.as_str(), w.user_id);
                    let p = w.profile.as_ref().expect("converted without a profile");
                    assert_wire_value(
                        profile.exposure_limit.get(),
                        &p.exposure_limit,
                        "exposure_limit",
                    );
                    assert_wire_value(profile.max_leverage.get(), &p.max_leverage, "max_leverage");
                    if p.risk_score.is_empty() {
                        assert_eq!(profile.risk_score.get(), Decimal::ZERO);
                    } else {
                        assert_wire_value(profile.risk_score.get(), &p.risk_score, "risk_score");
                    }
                    assert_eq!(profile.frozen, p.frozen);
                }
                (Some(Change::BalanceChange(w)), AccountEvent::BalanceChange { delta }) => {
                    assert_wire_value(delta.get(), &w.delta, "delta");
                }
                (
                    Some(Change::PositionUpdate(w)),
                    AccountEvent::PositionUpdate {
                        symbol,
                        size,
                        entry_price,
                        leverage,
                    },
                ) => {
                    assert_eq!(symbol.as_str(), w.symbol);
                    assert_wire_value(size.get(), &w.size, "size");
                    assert_wire_value(entry_price.get(), &w.entry_price, "entry_price");
                    assert_wire_value(leverage.get(), &w.leverage, "leverage");
                }
                (Some(Change::OrderOpened(w)), AccountEvent::OrderOpened(o)) => {
                    assert_eq!(
                        (o.order_id.as_str(), o.symbol.as_str()),
                        (w.order_id.as_str(), w.symbol.as_str())
                    );
                    assert_wire_value(o.quantity.get(), &w.quantity, "quantity");
                    assert_wire_value(o.price.get(), &w.price, "price");
                    assert_wire_value(o.leverage.get(), &w.leverage, "leverage");
                    assert_eq!(o.reduce_only, w.reduce_only);
                }
                (
                    Some(Change::OrderFilled(w)),
                    AccountEvent::OrderFilled {
                        order_id,
                        symbol,
                        quantity,
                        price,
                        leverage,
                        ..
                    },
                ) => {
                    assert_eq!(
                        (order_id.as_str(), symbol.as_str()),
                        (w.order_id.as_str(), w.symbol.as_str())
                    );
                    assert_wire_value(quantity.get(), &w.quantity, "quantity");
                    assert_wire_value(price.get(), &w.price, "price");
                    assert_wire_value(leverage.get(), &w.leverage, "leverage");
                }
                (Some(Change::OrderCancelled(w)), AccountEvent::OrderCancelled { order_id })
                | (
                    Some(Change::ReservationReleased(w)),
                    AccountEvent::ReservationReleased { order_id },
                ) => {
                    assert_eq!(order_id.as_str(), w.order_id);
                }
                (Some(Change::TradingState(_)), AccountEvent::TradingState(_)) => {}
                (w, c) => panic!("account change {w:?} converted to {c:?}"),
            }
        }
        (w, c) => panic!("event {w:?} converted to {c:?}"),
    }
    Some(event)
}

/// The demo config the server ships with (`examples/config/demo.toml`): three accounts,
/// BTCUSDT, ETHUSDT and SOLUSDT with marks, ladders, limits and rules.
fn demo_config() -> &'static ConfigFile {
    static DEMO: std::sync::OnceLock<ConfigFile> = std::sync::OnceLock::new();
    DEMO.get_or_init(|| {
        ConfigFile::parse(
            include_str!("../../examples/config/demo.toml"),
            Format::Toml,
            "demo.toml",
        )
        .expect("the demo config parses")
    })
}

/// What one frame of a `grpc_request` input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A `PreTradeCheckRequest`, checked with `RiskEngine::check`.
    Check,
    /// A `PreTradeCheckRequest`, checked with `RiskEngine::check_and_reserve`.
    CheckAndReserve,
    /// An `AccountOrMarketEvent`, applied to the engine.
    Event,
}

impl FrameKind {
    fn of(tag: u8) -> Self {
        match tag % 3 {
            0 => Self::Check,
            1 => Self::CheckAndReserve,
            _ => Self::Event,
        }
    }

    fn tag(self) -> u8 {
        match self {
            Self::Check => 0,
            Self::CheckAndReserve => 1,
            Self::Event => 2,
        }
    }
}

/// Encodes frames the way `grpc_request` reads them: per frame a kind byte, the payload's
/// length as two little-endian bytes, and the payload (protobuf bytes).
///
/// # Panics
/// When a payload is longer than 65,535 bytes.
#[must_use]
pub fn grpc_frames(frames: &[(FrameKind, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, payload) in frames {
        let len = u16::try_from(payload.len()).expect("a frame holds at most 65,535 bytes");
        out.push(kind.tag());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// Runs a `grpc_request` input and returns the wire answer to each check frame (`None`
/// for a frame that does not decode as a request). See [`grpc_request`].
///
/// # Panics
/// When a property fails.
#[must_use]
pub fn grpc_answers(
    data: &[u8],
) -> Vec<Option<risk_adapters::grpc::proto::v1::PreTradeCheckResponse>> {
    use prost::Message as _;
    use risk_adapters::grpc::convert;
    use risk_adapters::grpc::proto::v1 as pb;

    let now = now();
    let engine = demo_config()
        .clone()
        .into_engine(now, "demo.toml")
        .expect("the demo config loads");
    let mut answers = Vec::new();
    let mut rest = data;
    for _ in 0..16 {
        let [tag, lo, hi, tail @ ..] = rest else {
            break;
        };
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (payload, after) = tail.split_at(len);
        rest = after;
        let kind = FrameKind::of(*tag);

        // Every payload is decoded as both messages; what decodes re-encodes to itself.
        let request = pb::PreTradeCheckRequest::decode(payload).ok();
        let event = pb::AccountOrMarketEvent::decode(payload).ok();
        if let Some(r) = &request {
            let again = pb::PreTradeCheckRequest::decode(r.encode_to_vec().as_slice());
            assert_eq!(again.as_ref(), Ok(r), "request does not re-encode");
        }
        if let Some(e) = &event {
            let again = pb::AccountOrMarketEvent::decode(e.encode_to_vec().as_slice());
            assert_eq!(again.as_ref(), Ok(e), "event does not re-encode");
        }
        let converted_request = request.as_ref().map(|r| (r, check_wire_request(r)));
        let converted_event = event.as_ref().and_then(|e| check_wire_event(e, now));

        match kind {
            FrameKind::Event => {
                if let Some(e) = converted_event {
                    // Refused events change nothing; either way no panic.
                    if let Err(err) = engine.apply(&e) {
                        assert!(!err.to_string().trim().is_empty());
                    }
                }
            }
            FrameKind::Check | FrameKind::CheckAndReserve => {
                let Some((wire, converted)) = converted_request else {
                    answers.push(None);
                    continue;
                };
                let answer = match converted {
                    None => {
                        let e = convert::check_request(wire).expect_err("refused above");
                        convert::invalid_request(&e, &wire.trace_id)
                    }
                    Some(request) => {
                        let snapshot = engine.account(&request.account_id).map(|(a, _)| a);
                        let reference = check(
                            &engine.config(),
                            snapshot.as_ref(),
                            engine.market(),
                            &request,
                            now,
                        );
                        let response = if kind == FrameKind::CheckAndReserve {
                            engine.check_and_reserve(&request, now)
                        } else {
                            engine.check(&request, now)
                        };
                        assert_eq!(response, reference, "engine and pure check disagree");
                        check_response(&response, snapshot.as_ref(), &request);
                        let answer = convert::check_response(&response);
                        assert_ne!(answer.decision(), pb::RiskDecision::Unspecified);
                        assert_eq!(
                            answer.decision() == pb::RiskDecision::Rejected,
                            answer.reject_reason() != pb::RejectReason::Unspecified,
                            "{answer:?}"
                        );
                        assert_eq!(answer.trace_id, wire.trace_id);
                        if let Some(im) = response.required_initial_margin() {
                            assert_eq!(
                                convert::decimal(
                                    "required_initial_margin",
                                    &answer.required_initial_margin
                                ),
                                Ok(im)
                            );
                        }
                        if let Some(ratio) = response.projected_margin_ratio() {
                            assert_eq!(
                                convert::decimal(
                                    "projected_margin_ratio",
                                    &answer.projected_margin_ratio
                                ),
                                Ok(ratio)
                            );
                        }
                        answer
                    }
                };
                answers.push(Some(answer));
            }
        }
    }
    answers
}

/// `grpc_request`: arbitrary bytes as frames of protobuf messages, each decoded as a
/// `PreTradeCheckRequest` and as an `AccountOrMarketEvent` with prost (as the server's
/// codec does) and converted by the gRPC adapter; a frame's kind decides whether the
/// request is checked (plain or reserving) or the event applied, on an engine loaded from
/// the demo config. Properties: decoded messages re-encode to themselves; a conversion
/// error names a real field (per the compiled descriptor) that is at fault, and a refused
/// request is answered REJECTED / INVALID_REQUEST with the error and the trace id; a
/// converted request or event carries the exact values of its wire decimals; the engine
/// answers as the pure check on its snapshot, approves only within margin, exposure and
/// leverage limits and rejects only with a reason and message; the wire answer's decimals
/// parse back to the core's values.
///
/// # Panics
/// When a property fails.
pub fn grpc_request(data: &[u8]) {
    let _ = grpc_answers(data);
}
