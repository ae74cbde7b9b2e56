//! Primitive inputs shared by the structured targets: a decimal drawn as mantissa and
//! scale, enum selectors, the three test symbols and a fixed clock.

use arbitrary::Arbitrary;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use risk_core::ids::Symbol;
use risk_core::Decimal;

/// A decimal as an `i64` mantissa and a scale. Scales 0..=28 are used as they are; a few
/// selectors above give the extremes (`Decimal::MAX`, `Decimal::MIN`, the smallest step)
/// so that overflow paths are reached.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct Dec {
    mantissa: i64,
    scale: u8,
}

impl Dec {
    pub(crate) fn get(self) -> Decimal {
        match self.scale % 36 {
            s @ 0..=28 => Decimal::new(self.mantissa, u32::from(s)),
            29 => Decimal::MAX,
            30 => Decimal::MIN,
            31 => Decimal::new(1, 28),
            // Small, "realistic" values: mantissa folded to 0..100_000 at scale 2.
            _ => Decimal::new(self.mantissa.rem_euclid(10_000_000), 2),
        }
    }
}

pub(crate) fn pick<T: Copy>(all: &[T], selector: u8) -> T {
    all[usize::from(selector) % all.len()]
}

pub(crate) fn symbol(selector: u8) -> Symbol {
    // Three symbols: two listed instruments and one that may be unknown.
    Symbol::new(["S0", "S1", "S2"][usize::from(selector % 3)])
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

pub(crate) fn ms(millis: u32) -> TimeDelta {
    TimeDelta::milliseconds(i64::from(millis))
}

/// `at - age`, or `at` when that is not representable.
pub(crate) fn before(at: DateTime<Utc>, age: u32) -> DateTime<Utc> {
    at.checked_sub_signed(ms(age % 20_000)).unwrap_or(at)
}
