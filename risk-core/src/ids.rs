//! Identifiers: accounts, users, orders, symbols, rules, traces.
//!
//! Each is a distinct type over a shared, immutable string, so cloning one (as every
//! check response and event does) is a reference-count bump, not an allocation, and an
//! account id can never be passed where a symbol is expected.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(transparent))]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a string as this identifier.
            #[must_use]
            pub fn new(value: &str) -> Self {
                Self(Arc::from(value))
            }

            /// The identifier's text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// True when the identifier is empty (requests refuse empty ids).
            #[must_use]
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(Arc::from(value))
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

string_id!(
    /// A trading account (the unit that holds balance, positions and orders).
    AccountId
);
string_id!(
    /// The person or firm that owns one or more accounts.
    UserId
);
string_id!(
    /// A client order id, unique per account within the duplicate horizon.
    OrderId
);
string_id!(
    /// An instrument symbol such as `BTCUSDT`.
    Symbol
);
string_id!(
    /// A dynamic rule's id.
    RuleId
);
string_id!(
    /// A caller-supplied trace id, echoed in the response and events.
    TraceId
);
string_id!(
    /// A closed trade's ticket id as the platform wrote it (never a float: some exceed 2^53).
    TradeId
);
string_id!(
    /// A prop-firm challenge (evaluation program) that groups accounts.
    ChallengeId
);
