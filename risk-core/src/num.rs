//! Exact decimal newtypes for money and sizes.
//!
//! Each quantity the risk arithmetic handles has its own type so that a price cannot be
//! passed where a quantity is expected. Every type has the same small constructor set:
//! [`Price::new`] (checked, returns `Result`), [`Price::from_str`](std::str::FromStr)
//! (checked parse), [`Price::get`] (the inner [`Decimal`]) and, for literals in tests and
//! examples, a panicking `lit` constructor.
//!
//! Arithmetic that can overflow is done with checked operations and reports
//! [`ArithmeticError`]; nothing here panics except the documented `lit` constructors.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// Why a number was refused by a checked constructor or parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumberError {
    /// The text is not a decimal number.
    #[error("`{text}` is not a decimal number")]
    Malformed {
        /// The text as received (truncated to 64 characters).
        text: String,
    },
    /// The value is outside the range allowed for this kind of number.
    #[error("{value} is not a valid {kind}: must be {rule}")]
    OutOfRange {
        /// What kind of number was being built (`price`, `quantity`, ...).
        kind: &'static str,
        /// The rejected value.
        value: Decimal,
        /// The constraint it broke, in words.
        rule: &'static str,
    },
}

/// A checked decimal operation overflowed or divided by zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("decimal overflow or division by zero while computing {what}")]
pub struct ArithmeticError {
    /// The quantity being computed when the operation failed.
    pub what: &'static str,
}

/// Longest decimal text accepted by the parsers; anything longer is malformed by definition
/// (a `Decimal` holds at most 28-29 significant digits).
pub const MAX_DECIMAL_TEXT: usize = 64;

/// Parses a decimal strictly: plain or scientific notation, no surrounding spaces, no
/// `NaN`/`inf`, at most [`MAX_DECIMAL_TEXT`] characters.
///
/// # Errors
/// [`NumberError::Malformed`] when the text is not such a number.
pub fn parse_decimal(text: &str) -> Result<Decimal, NumberError> {
    let malformed = || NumberError::Malformed {
        text: text.chars().take(MAX_DECIMAL_TEXT).collect(),
    };
    if text.is_empty() || text.len() > MAX_DECIMAL_TEXT || text.trim() != text {
        return Err(malformed());
    }
    let parsed = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str_exact(text)
    };
    parsed.map_err(|_| malformed())
}

/// Checked multiplication with the name of what is being computed.
///
/// # Errors
/// [`ArithmeticError`] on overflow.
#[inline]
pub fn mul(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, ArithmeticError> {
    a.checked_mul(b).ok_or(ArithmeticError { what })
}

/// Checked division with the name of what is being computed.
///
/// # Errors
/// [`ArithmeticError`] on overflow or division by zero.
#[inline]
pub fn div(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, ArithmeticError> {
    a.checked_div(b).ok_or(ArithmeticError { what })
}

/// Checked addition with the name of what is being computed.
///
/// # Errors
/// [`ArithmeticError`] on overflow.
#[inline]
pub fn add(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, ArithmeticError> {
    a.checked_add(b).ok_or(ArithmeticError { what })
}

/// Checked subtraction with the name of what is being computed.
///
/// # Errors
/// [`ArithmeticError`] on overflow.
#[inline]
pub fn sub(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, ArithmeticError> {
    a.checked_sub(b).ok_or(ArithmeticError { what })
}

macro_rules! decimal_newtype {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $rule:literal, |$v:ident| $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(try_from = "Decimal", into = "Decimal"))]
        pub struct $name(Decimal);

        impl $name {
            #[doc = concat!("Builds a ", $kind, "; it must be ", $rule, ".")]
            ///
            /// # Errors
            /// [`NumberError::OutOfRange`] when the value breaks that rule.
            pub fn new(value: Decimal) -> Result<Self, NumberError> {
                let $v = value;
                if $valid {
                    Ok(Self(value))
                } else {
                    Err(NumberError::OutOfRange { kind: $kind, value, rule: $rule })
                }
            }

            #[doc = concat!("Builds a ", $kind, " from a literal, for tests and examples.")]
            ///
            /// # Panics
            /// When the text is not a decimal or the value is out of range.
            #[must_use]
            #[allow(clippy::expect_used)]
            pub fn lit(text: &str) -> Self {
                text.parse().expect(concat!("a valid ", $kind, " literal"))
            }

            /// The exact decimal value.
            #[inline]
            #[must_use]
            pub const fn get(self) -> Decimal {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = NumberError;
            fn from_str(text: &str) -> Result<Self, NumberError> {
                Self::new(parse_decimal(text)?)
            }
        }

        impl TryFrom<Decimal> for $name {
            type Error = NumberError;
            fn try_from(value: Decimal) -> Result<Self, NumberError> {
                Self::new(value)
            }
        }

        impl From<$name> for Decimal {
            fn from(value: $name) -> Decimal {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

decimal_newtype!(
    /// A price per unit of an instrument: strictly positive.
    Price, "price", "greater than zero", |v| v > Decimal::ZERO
);
decimal_newtype!(
    /// An unsigned amount of an instrument (order size, lot size): zero or more.
    Quantity, "quantity", "zero or more", |v| v >= Decimal::ZERO
);
decimal_newtype!(
    /// A position size: signed, long is positive, short is negative.
    SignedQuantity, "signed quantity", "any value", |_v| true
);
decimal_newtype!(
    /// The value of a position or order in the settlement currency: zero or more.
    Notional, "notional", "zero or more", |v| v >= Decimal::ZERO
);
decimal_newtype!(
    /// A leverage multiple: at least 1.
    Leverage, "leverage", "at least 1", |v| v >= Decimal::ONE
);
decimal_newtype!(
    /// A dimensionless non-negative ratio or rate (margin rate, price band, margin ratio).
    Ratio, "ratio", "zero or more", |v| v >= Decimal::ZERO
);
decimal_newtype!(
    /// An amount of money in the settlement currency that may be negative (balances, PnL).
    Money, "money amount", "any value", |_v| true
);

impl Price {
    /// The notional of `quantity` units at this price with a contract `multiplier`.
    ///
    /// # Errors
    /// [`ArithmeticError`] on overflow.
    pub fn notional(
        self,
        quantity: Quantity,
        multiplier: Decimal,
    ) -> Result<Notional, ArithmeticError> {
        let value = mul(mul(self.0, quantity.0, "notional")?, multiplier, "notional")?;
        Ok(Notional(value.abs()))
    }
}

impl SignedQuantity {
    /// Zero: no position.
    pub const ZERO: Self = Self(Decimal::ZERO);

    /// The unsigned size.
    #[must_use]
    pub fn abs(self) -> Quantity {
        Quantity(self.0.abs())
    }
}

impl Quantity {
    /// Zero.
    pub const ZERO: Self = Self(Decimal::ZERO);
}

impl Notional {
    /// Zero.
    pub const ZERO: Self = Self(Decimal::ZERO);
}

impl Money {
    /// Zero.
    pub const ZERO: Self = Self(Decimal::ZERO);
}

impl Leverage {
    /// No leverage: 1x.
    pub const ONE: Self = Self(Decimal::ONE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parse_refuses_non_numbers_and_padding() {
        for bad in [
            "", " 1", "1 ", "NaN", "inf", "-inf", "1,5", "0x10", "1e", "--1", "1.2.3",
        ] {
            assert!(parse_decimal(bad).is_err(), "accepted {bad:?}");
        }
        assert!(parse_decimal(&"9".repeat(65)).is_err());
        assert_eq!(
            parse_decimal("1.50").map(|d| d.to_string()),
            Ok("1.50".to_owned())
        );
        assert_eq!(parse_decimal("1e3"), Ok(Decimal::from(1000)));
    }

    #[test]
    fn newtypes_enforce_their_ranges() {
        assert!(Price::from_str("0").is_err());
        assert!(Price::from_str("-1").is_err());
        assert!(Quantity::from_str("-0.1").is_err());
        assert!(Leverage::from_str("0.5").is_err());
        assert_eq!(Leverage::lit("20").get(), Decimal::from(20));
        assert!(Money::from_str("-5").is_ok());
    }

    #[test]
    fn notional_is_exact() {
        let n = Price::lit("3332.9").notional(Quantity::lit("0.01"), Decimal::from(100));
        assert_eq!(n.map(Notional::get), Ok(Decimal::new(333_290, 2)));
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let n = Price::new(Decimal::MAX).map(|p| p.notional(Quantity::lit("10"), Decimal::ONE));
        assert!(matches!(n, Ok(Err(ArithmeticError { what: "notional" }))));
    }
}
