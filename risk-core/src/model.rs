//! The small enumerations shared by every part of the core.

use std::fmt;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        #[cfg_attr(feature = "serde", serde(rename_all = "SCREAMING_SNAKE_CASE"))]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        /// Reads the name as [`FromStr`](std::str::FromStr) does (ASCII case ignored), so
        /// every surface refuses an unknown name with the same [`UnknownName`] message.
        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The canonical upper-case name used on the wire and in config files.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;
            fn from_str(text: &str) -> Result<Self, UnknownName> {
                find_by_name(Self::ALL, Self::as_str, stringify!($name), text)
            }
        }
    };
}

/// The value of `all` whose name is `text`, ignoring ASCII case.
pub(crate) fn find_by_name<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    kind: &'static str,
    text: &str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|v| name(*v).eq_ignore_ascii_case(text))
        .ok_or_else(|| UnknownName {
            kind,
            text: text.chars().take(64).collect(),
        })
}

/// A name that does not match any value of an enumeration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a valid {kind}")]
pub struct UnknownName {
    /// The enumeration's name.
    pub kind: &'static str,
    /// The text received.
    pub text: String,
}

wire_enum!(
    /// Order side.
    Side { /// Buy: increases a long, reduces a short.
        Buy = "BUY", /// Sell: increases a short, reduces a long.
        Sell = "SELL" }
);

impl Side {
    /// +1 for a buy, -1 for a sell.
    #[must_use]
    pub fn sign(self) -> rust_decimal::Decimal {
        match self {
            Self::Buy => rust_decimal::Decimal::ONE,
            Self::Sell => rust_decimal::Decimal::NEGATIVE_ONE,
        }
    }
}

wire_enum!(
    /// Order type.
    OrderType { /// Executes at the market; valued at the mark widened by the slippage buffer.
        Market = "MARKET", /// Executes at the limit price or better; valued at the limit price.
        Limit = "LIMIT" }
);

wire_enum!(
    /// The outcome of a pre-trade check.
    Decision { /// The order may go to the market.
        Approved = "APPROVED", /// The order must not go to the market; see the reject reason.
        Rejected = "REJECTED", /// The order may go, but a WARN rule fired.
        Flagged = "FLAGGED" }
);

wire_enum!(
    /// Why a check rejected an order. The first failing phase decides it.
    RejectReason {
        /// Malformed or impossible request (missing field, bad number, arithmetic overflow).
        InvalidRequest = "INVALID_REQUEST",
        /// The account is not known to the engine.
        UnknownAccount = "UNKNOWN_ACCOUNT",
        /// The symbol is not a known instrument.
        UnknownSymbol = "UNKNOWN_SYMBOL",
        /// The instrument is halted or reduce-only for this order.
        InstrumentNotTrading = "INSTRUMENT_NOT_TRADING",
        /// The kill switch (global or account level) blocks this order.
        TradingHalted = "TRADING_HALTED",
        /// The account's profile is frozen.
        UserFrozen = "USER_FROZEN",
        /// The account's KYC level is below the instrument's requirement.
        KycInsufficient = "KYC_INSUFFICIENT",
        /// A mark price needed by the check is missing or too old.
        StaleData = "STALE_DATA",
        /// The order id was already seen within the duplicate horizon.
        DuplicateOrder = "DUPLICATE_ORDER",
        /// The account exceeded its order-rate limit.
        RateLimited = "RATE_LIMITED",
        /// A reduce-only order would open or flip a position.
        ReduceOnlyViolation = "REDUCE_ONLY_VIOLATION",
        /// The limit price is too far from the mark.
        PriceOutOfBand = "PRICE_OUT_OF_BAND",
        /// The order is larger than the instrument allows.
        MaxOrderSizeExceeded = "MAX_ORDER_SIZE_EXCEEDED",
        /// The requested leverage exceeds the profile, instrument or tier cap.
        MaxLeverageExceeded = "MAX_LEVERAGE_EXCEEDED",
        /// The projected exposure exceeds the profile's limit.
        ExposureLimitExceeded = "EXPOSURE_LIMIT_EXCEEDED",
        /// The order's initial margin exceeds the available margin.
        InsufficientMargin = "INSUFFICIENT_MARGIN",
        /// The projected margin ratio reaches the liquidation threshold.
        LiquidationRisk = "LIQUIDATION_RISK",
        /// A REJECT rule fired.
        RiskRuleViolation = "RISK_RULE_VIOLATION",
    }
);

wire_enum!(
    /// Know-your-customer level; higher levels unlock more instruments.
    KycLevel { /// Unverified.
        L0 = "L0", /// Basic verification.
        L1 = "L1", /// Full verification.
        L2 = "L2" }
);

wire_enum!(
    /// A kill-switch state. At global, account and symbol level; the strictest wins.
    TradingState {
        /// Orders flow normally.
        Active = "ACTIVE",
        /// Only orders that reduce an existing position pass.
        Reducing = "REDUCING",
        /// Nothing passes, except verified position-reducing exits when configured.
        Halted = "HALTED",
    }
);

wire_enum!(
    /// An instrument's listing status, as published by the venue.
    InstrumentStatus { /// Open for trading.
        Trading = "TRADING", /// Halted: no orders.
        Halted = "HALTED", /// Only position-reducing orders.
        ReduceOnly = "REDUCE_ONLY" }
);

impl InstrumentStatus {
    /// The symbol-level kill-switch state this status implies.
    #[must_use]
    pub const fn trading_state(self) -> TradingState {
        match self {
            Self::Trading => TradingState::Active,
            Self::Halted => TradingState::Halted,
            Self::ReduceOnly => TradingState::Reducing,
        }
    }
}

wire_enum!(
    /// How serious a rule hit or a risk signal is.
    Severity { /// Informational.
        Info = "INFO", /// Low.
        Low = "LOW", /// Medium.
        Medium = "MEDIUM", /// High.
        High = "HIGH", /// Critical.
        Critical = "CRITICAL" }
);

wire_enum!(
    /// What a rule does when it fires.
    RuleAction { /// Reject the order with `RISK_RULE_VIOLATION`.
        Reject = "REJECT", /// Let it through as `FLAGGED`.
        Warn = "WARN" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_parse_case_insensitively() {
        for r in RejectReason::ALL {
            assert_eq!(r.as_str().parse::<RejectReason>(), Ok(*r));
        }
        assert_eq!("buy".parse::<Side>(), Ok(Side::Buy));
        assert!("HOLD".parse::<Side>().is_err());
        assert_eq!(RejectReason::ALL.len(), 18);
    }

    #[test]
    fn states_order_from_loose_to_strict() {
        assert!(TradingState::Active < TradingState::Reducing);
        assert!(TradingState::Reducing < TradingState::Halted);
        assert!(KycLevel::L0 < KycLevel::L2);
    }
}
