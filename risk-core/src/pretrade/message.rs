//! The check's explanation, held as the figures that decided and written out only when
//! it is displayed, so that a reject costs no allocation on the check path.

use std::fmt;

use crate::ids::{AccountId, OrderId, Symbol, UserId};
use crate::model::{KycLevel, Side, TradingState};
use crate::num::{ArithmeticError, NumberError};
use crate::rules::RuleHit;
use crate::Decimal;

/// A check response's human-readable explanation naming the figures that decided.
///
/// It keeps the reason's figures (decimals, ids, levels) rather than text: the words are
/// written only when the message is displayed ([`fmt::Display`], `to_string()`), which is
/// what every transport does once per response. The text is the same whatever built it;
/// equality and `Debug` go by the text, and serde writes and reads it as a string.
#[derive(Clone)]
pub struct CheckMessage(Detail);

/// The figures of one kind of explanation; the `Display` impl holds the words. The check
/// builds a message as `CheckMessage::from(Detail::..)`.
#[derive(Clone)]
pub(crate) enum Detail {
    /// Fixed text.
    Static(&'static str),
    /// Text built elsewhere (an adapter, or a message read back from serde).
    Text(String),
    /// A required field is empty.
    Required(&'static str),
    /// The quantity is zero or negative.
    QuantityNotPositive(Decimal),
    /// A field's value was refused by its checked constructor.
    Field(&'static str, NumberError),
    /// The account is not held.
    UnknownAccount(AccountId),
    /// The account belongs to another user.
    NotOwner(AccountId, UserId),
    /// The order's symbol is not listed.
    UnknownSymbol(Symbol),
    /// The account holds a symbol that is not listed.
    UnlistedHolding(Symbol),
    /// A kill switch at `level` allows only position-reducing orders, or none.
    TradingState(&'static str, TradingState),
    /// The account is frozen.
    Frozen(AccountId),
    /// The instrument needs a higher KYC level.
    Kyc {
        symbol: Symbol,
        required: KycLevel,
        held: KycLevel,
    },
    /// The order id was already used.
    Duplicate(OrderId),
    /// Too many orders in the rate window.
    RateLimited {
        recent: usize,
        window_ms: u64,
        max_orders: u32,
    },
    /// No mark for a symbol.
    NoMark(Symbol),
    /// A mark older than the limit.
    StaleMark {
        symbol: Symbol,
        age_ms: i64,
        max_ms: i64,
    },
    /// A checked operation overflowed.
    Arithmetic(ArithmeticError),
    /// A reduce-only order would open or flip the position.
    ReduceOnly {
        side: Side,
        quantity: Decimal,
        position: Decimal,
    },
    /// Quantity below the instrument's minimum.
    BelowMinQuantity {
        quantity: Decimal,
        min: Decimal,
        symbol: Symbol,
    },
    /// Quantity not a multiple of the lot size.
    NotLotMultiple { quantity: Decimal, lot: Decimal },
    /// Price not a multiple of the tick size.
    NotTickMultiple { price: Decimal, tick: Decimal },
    /// Quantity above the instrument's maximum.
    AboveMaxQuantity {
        quantity: Decimal,
        max: Decimal,
        symbol: Symbol,
    },
    /// A limit price outside the band around the mark.
    OutOfBand {
        price: Decimal,
        deviation: Decimal,
        mark: Decimal,
        band: Decimal,
    },
    /// Leverage above the cap in force.
    Leverage {
        leverage: Decimal,
        cap: Decimal,
        profile: Decimal,
        instrument: Decimal,
        projected: Decimal,
    },
    /// The projected notional is beyond the ladder's last open tier.
    BeyondLadder {
        projected: Decimal,
        open_limit: Option<Decimal>,
    },
    /// Projected exposure above the limit.
    Exposure { projected: Decimal, limit: Decimal },
    /// Required initial margin above available margin.
    Margin {
        required: Decimal,
        available: Decimal,
    },
    /// The projected margin ratio reaches the liquidation threshold.
    MarginRatio { ratio: Decimal, threshold: Decimal },
    /// A REJECT rule fired.
    RuleFired(RuleHit),
}

impl From<Detail> for CheckMessage {
    fn from(detail: Detail) -> Self {
        Self(detail)
    }
}

impl From<ArithmeticError> for CheckMessage {
    fn from(error: ArithmeticError) -> Self {
        Self(Detail::Arithmetic(error))
    }
}

impl From<&'static str> for CheckMessage {
    fn from(text: &'static str) -> Self {
        Self::from_static(text)
    }
}

impl From<String> for CheckMessage {
    fn from(text: String) -> Self {
        Self(Detail::Text(text))
    }
}

impl fmt::Display for CheckMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Detail::Static(text) => f.write_str(text),
            Detail::Text(text) => f.write_str(text),
            Detail::Required(field) => write!(f, "{field} is required"),
            Detail::QuantityNotPositive(q) => {
                write!(f, "quantity must be greater than zero, got {q}")
            }
            Detail::Field(field, e) => write!(f, "{field}: {e}"),
            Detail::UnknownAccount(a) => write!(f, "account {a} is not known"),
            Detail::NotOwner(a, u) => write!(f, "account {a} does not belong to user {u}"),
            Detail::UnknownSymbol(s) => write!(f, "symbol {s} is not a known instrument"),
            Detail::UnlistedHolding(s) => {
                write!(f, "account holds {s}, which is not a known instrument")
            }
            Detail::TradingState(level, state) => write!(
                f,
                "{level} trading state is {state}: only position-reducing orders may pass"
            ),
            Detail::Frozen(a) => write!(f, "account {a} is frozen"),
            Detail::Kyc {
                symbol,
                required,
                held,
            } => write!(f, "{symbol} requires KYC {required}, account has {held}"),
            Detail::Duplicate(id) => write!(f, "order id {id} was already used"),
            Detail::RateLimited {
                recent,
                window_ms,
                max_orders,
            } => write!(
                f,
                "{recent} orders in the last {window_ms} ms (limit {max_orders})"
            ),
            Detail::NoMark(s) => write!(f, "no mark price for {s}"),
            Detail::StaleMark {
                symbol,
                age_ms,
                max_ms,
            } => write!(f, "mark for {symbol} is {age_ms} ms old (max {max_ms} ms)"),
            Detail::Arithmetic(e) => write!(f, "{e}"),
            Detail::ReduceOnly {
                side,
                quantity,
                position,
            } => write!(
                f,
                "reduce-only {side} {quantity} would open or flip the position of {position}"
            ),
            Detail::BelowMinQuantity {
                quantity,
                min,
                symbol,
            } => write!(
                f,
                "quantity {quantity} is below the minimum {min} for {symbol}"
            ),
            Detail::NotLotMultiple { quantity, lot } => write!(
                f,
                "quantity {quantity} is not a multiple of the lot size {lot}"
            ),
            Detail::NotTickMultiple { price, tick } => write!(
                f,
                "price {price} is not a multiple of the tick size {tick}"
            ),
            Detail::AboveMaxQuantity {
                quantity,
                max,
                symbol,
            } => write!(
                f,
                "quantity {quantity} exceeds the maximum {max} for {symbol}"
            ),
            Detail::OutOfBand {
                price,
                deviation,
                mark,
                band,
            } => write!(
                f,
                "price {price} deviates {} from the mark {mark}, band is {band}",
                deviation.round_dp(6)
            ),
            Detail::Leverage {
                leverage,
                cap,
                profile,
                instrument,
                projected,
            } => write!(
                f,
                "leverage {leverage} exceeds the cap {cap} (profile {profile}, instrument {instrument}, tier at notional {})",
                projected.round_dp(2)
            ),
            Detail::BeyondLadder {
                projected,
                open_limit,
            } => {
                write!(
                    f,
                    "projected position notional {} is beyond the largest the margin ladder allows (",
                    projected.round_dp(2)
                )?;
                match open_limit {
                    Some(limit) => write!(f, "{limit})"),
                    None => f.write_str("unbounded)"),
                }
            }
            Detail::Exposure { projected, limit } => write!(
                f,
                "projected exposure {} exceeds the limit {limit}",
                projected.round_dp(2)
            ),
            Detail::Margin {
                required,
                available,
            } => write!(
                f,
                "required initial margin {} exceeds available margin {}",
                required.round_dp(2),
                available.round_dp(2)
            ),
            Detail::MarginRatio { ratio, threshold } => write!(
                f,
                "projected margin ratio {} reaches the liquidation threshold {threshold}",
                ratio.round_dp(4)
            ),
            Detail::RuleFired(hit) => write!(
                f,
                "rule {} fired: {} = {} {} {}",
                hit.rule_id, hit.metric, hit.value, hit.operator, hit.threshold
            ),
        }
    }
}

/// As the text, quoted: what a `String` message showed.
impl fmt::Debug for CheckMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

/// By the text (a message read back from serde equals the one written).
impl PartialEq for CheckMessage {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Detail::Static(a), Detail::Static(b)) => a == b,
            _ => self.writes(&other.to_string()),
        }
    }
}

impl Eq for CheckMessage {}

impl CheckMessage {
    /// A message of fixed text.
    #[must_use]
    pub const fn from_static(text: &'static str) -> Self {
        Self(Detail::Static(text))
    }

    /// Whether the message's text is `text`, compared as it is written out (no copy).
    fn writes(&self, text: &str) -> bool {
        /// Consumes `rest` as the message writes; fails at the first difference.
        struct Expect<'a>(&'a str);
        impl fmt::Write for Expect<'_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0 = self.0.strip_prefix(s).ok_or(fmt::Error)?;
                Ok(())
            }
        }
        let mut expect = Expect(text);
        fmt::write(&mut expect, format_args!("{self}")).is_ok() && expect.0.is_empty()
    }
}

impl PartialEq<str> for CheckMessage {
    fn eq(&self, other: &str) -> bool {
        self.writes(other)
    }
}

impl PartialEq<&str> for CheckMessage {
    fn eq(&self, other: &&str) -> bool {
        self.writes(other)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for CheckMessage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for CheckMessage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RuleId;
    use crate::model::{RuleAction, Severity};
    use crate::pretrade::CheckMetric;
    use crate::rules::Operator;

    /// Each kind of message writes the text the check formatted eagerly before it held
    /// figures (the `format!` calls are the ones it made, with the same figures).
    #[test]
    fn messages_write_the_text_the_check_used_to_format() {
        let d = |m: i64, s: u32| Decimal::new(m, s);
        let (acc, user, sym) = (
            AccountId::new("A-1"),
            UserId::new("U-1"),
            Symbol::new("BTCUSDT"),
        );
        let hit = RuleHit {
            rule_id: RuleId::new("r-1"),
            metric: CheckMetric::OrderNotional,
            value: d(12_345, 2),
            operator: Operator::Ge,
            threshold: d(100, 0),
            severity: Severity::High,
            action: RuleAction::Reject,
        };
        let overflow = ArithmeticError { what: "notional" };
        let range = crate::num::Quantity::new(d(-1, 0)).err();
        let cases: Vec<(CheckMessage, String)> = vec![
            (CheckMessage::from_static("approved"), "approved".to_owned()),
            (CheckMessage::from("text".to_owned()), "text".to_owned()),
            (CheckMessage::from(Detail::Required("user_id")), format!("{} is required", "user_id")),
            (
                CheckMessage::from(Detail::QuantityNotPositive(d(-5, 1))),
                format!("quantity must be greater than zero, got {}", d(-5, 1)),
            ),
            (CheckMessage::from(Detail::UnknownAccount(acc.clone())), format!("account {} is not known", acc)),
            (
                CheckMessage::from(Detail::NotOwner(acc.clone(), user.clone())),
                format!("account {} does not belong to user {}", acc, user),
            ),
            (
                CheckMessage::from(Detail::UnknownSymbol(sym.clone())),
                format!("symbol {} is not a known instrument", sym),
            ),
            (
                CheckMessage::from(Detail::UnlistedHolding(sym.clone())),
                format!("account holds {sym}, which is not a known instrument"),
            ),
            (
                CheckMessage::from(Detail::TradingState("symbol", TradingState::Reducing)),
                format!(
                    "{} trading state is {}: only position-reducing orders may pass",
                    "symbol",
                    TradingState::Reducing
                ),
            ),
            (CheckMessage::from(Detail::Frozen(acc.clone())), format!("account {} is frozen", acc)),
            (
                CheckMessage::from(Detail::Kyc { symbol: sym.clone(), required: KycLevel::L2, held: KycLevel::L0 }),
                format!("{} requires KYC {}, account has {}", sym, KycLevel::L2, KycLevel::L0),
            ),
            (
                CheckMessage::from(Detail::Duplicate(OrderId::new("o-1"))),
                format!("order id {} was already used", OrderId::new("o-1")),
            ),
            (
                CheckMessage::from(Detail::RateLimited { recent: 7, window_ms: 1_000, max_orders: 5 }),
                format!("{} orders in the last {} ms (limit {})", 7, 1_000, 5),
            ),
            (CheckMessage::from(Detail::NoMark(sym.clone())), format!("no mark price for {sym}")),
            (
                CheckMessage::from(Detail::StaleMark { symbol: sym.clone(), age_ms: 7_201, max_ms: 3_600 }),
                format!("mark for {sym} is {} ms old (max {} ms)", 7_201, 3_600),
            ),
            (CheckMessage::from(overflow), overflow.to_string()),
            (
                CheckMessage::from(Detail::ReduceOnly { side: Side::Buy, quantity: d(15, 1), position: d(-25, 1) }),
                format!(
                    "reduce-only {} {} would open or flip the position of {}",
                    Side::Buy,
                    d(15, 1),
                    d(-25, 1)
                ),
            ),
            (
                CheckMessage::from(Detail::BelowMinQuantity { quantity: d(1, 4), min: d(1, 3), symbol: sym.clone() }),
                format!("quantity {} is below the minimum {} for {}", d(1, 4), d(1, 3), sym),
            ),
            (
                CheckMessage::from(Detail::NotLotMultiple { quantity: d(10_005, 4), lot: d(1, 3) }),
                format!(
                    "quantity {} is not a multiple of the lot size {}",
                    d(10_005, 4),
                    d(1, 3)
                ),
            ),
            (
                CheckMessage::from(Detail::NotTickMultiple { price: d(100_005, 2), tick: d(1, 1) }),
                format!(
                    "price {} is not a multiple of the tick size {}",
                    d(100_005, 2),
                    d(1, 1)
                ),
            ),
            (
                CheckMessage::from(Detail::AboveMaxQuantity { quantity: d(2_000, 0), max: d(1_000, 0), symbol: sym.clone() }),
                format!("quantity {} exceeds the maximum {} for {}", d(2_000, 0), d(1_000, 0), sym),
            ),
            (
                CheckMessage::from(Detail::OutOfBand { price: d(1_100, 0), deviation: d(1, 1), mark: d(1_000, 0), band: d(5, 2) }),
                format!(
                    "price {} deviates {} from the mark {}, band is {}",
                    d(1_100, 0),
                    d(1, 1).round_dp(6),
                    d(1_000, 0),
                    d(5, 2)
                ),
            ),
            (
                CheckMessage::from(Detail::OutOfBand { price: d(1_001, 0), deviation: Decimal::ONE / Decimal::from(3), mark: d(1_000, 0), band: d(5, 2) }),
                format!(
                    "price {} deviates {} from the mark {}, band is {}",
                    d(1_001, 0),
                    (Decimal::ONE / Decimal::from(3)).round_dp(6),
                    d(1_000, 0),
                    d(5, 2)
                ),
            ),
            (
                CheckMessage::from(Detail::Leverage { leverage: d(60, 0), cap: d(50, 0), profile: d(50, 0), instrument: d(125, 0), projected: d(1_000_005, 3) }),
                format!(
                    "leverage {} exceeds the cap {} (profile {}, instrument {}, tier at notional {})",
                    d(60, 0),
                    d(50, 0),
                    d(50, 0),
                    d(125, 0),
                    d(1_000_005, 3).round_dp(2)
                ),
            ),
            (
                CheckMessage::from(Detail::BeyondLadder { projected: d(123_456_789, 3), open_limit: Some(d(100_000, 0)) }),
                format!(
                    "projected position notional {} is beyond the largest the margin ladder allows ({})",
                    d(123_456_789, 3).round_dp(2),
                    Some(d(100_000, 0)).map_or_else(|| "unbounded".to_owned(), |l| l.to_string())
                ),
            ),
            (
                CheckMessage::from(Detail::BeyondLadder { projected: d(123_456_789, 3), open_limit: None }),
                format!(
                    "projected position notional {} is beyond the largest the margin ladder allows ({})",
                    d(123_456_789, 3).round_dp(2),
                    None::<Decimal>.map_or_else(|| "unbounded".to_owned(), |l| l.to_string())
                ),
            ),
            (
                CheckMessage::from(Detail::Exposure { projected: d(1_234_567, 3), limit: d(1_000, 0) }),
                format!(
                    "projected exposure {} exceeds the limit {}",
                    d(1_234_567, 3).round_dp(2),
                    d(1_000, 0)
                ),
            ),
            (
                CheckMessage::from(Detail::Margin { required: d(1_234_567, 4), available: d(-98_765, 3) }),
                format!(
                    "required initial margin {} exceeds available margin {}",
                    d(1_234_567, 4).round_dp(2),
                    d(-98_765, 3).round_dp(2)
                ),
            ),
            (
                CheckMessage::from(Detail::MarginRatio { ratio: d(123_456, 5), threshold: d(1, 0) }),
                format!(
                    "projected margin ratio {} reaches the liquidation threshold {}",
                    d(123_456, 5).round_dp(4),
                    d(1, 0)
                ),
            ),
            (
                CheckMessage::from(Detail::RuleFired(hit.clone())),
                format!(
                    "rule {} fired: {} = {} {} {}",
                    hit.rule_id, hit.metric, hit.value, hit.operator, hit.threshold
                ),
            ),
        ];
        for (message, text) in cases {
            assert_eq!(message.to_string(), text);
            assert_eq!(format!("{message:?}"), format!("{text:?}"));
            assert_eq!(message, CheckMessage::from(text.clone()));
            assert!(message == text.as_str());
        }
        assert!(range.is_some(), "a negative quantity is refused");
        if let Some(e) = range {
            let message = CheckMessage::from(Detail::Field("quantity", e.clone()));
            assert_eq!(message.to_string(), format!("quantity: {e}"));
        }
    }
}
