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

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::model::Side;

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
    #[error("{value} is not valid: must be {rule}")]
    OutOfRange {
        /// What kind of number was being built (`price`, `quantity`, ...).
        kind: &'static str,
        /// The rejected value.
        value: Decimal,
        /// The constraint it broke, in words.
        rule: &'static str,
    },
    /// A float that names no `Decimal`: NaN, an infinity, or a value whose shortest text
    /// needs more than 28 decimal places or 96 bits.
    #[error("{text} has no decimal form: {why}")]
    Float {
        /// The float as Rust prints it (`NaN`, `inf`, `1e-300`...).
        text: String,
        /// Why, in words.
        why: &'static str,
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
/// The accepted text is an optional sign (`+` or `-`), digits with an optional decimal
/// point (`1`, `1.5`, `.5`, `5.`), and an optional exponent (`e` or `E`, an optional sign,
/// digits); nothing else, so no digit separators (`1_000`, `1,000`).
///
/// # Errors
/// [`NumberError::Malformed`] when the text is not such a number.
pub fn parse_decimal(text: &str) -> Result<Decimal, NumberError> {
    let malformed = || NumberError::Malformed {
        text: text.chars().take(MAX_DECIMAL_TEXT).collect(),
    };
    // rust_decimal's parsers also take `_` between digits (`1_000`, `1._5`): the grammar
    // is checked here first.
    if text.is_empty() || text.len() > MAX_DECIMAL_TEXT || !is_plain_decimal(text) {
        return Err(malformed());
    }
    let parsed = match text.split_once(['e', 'E']) {
        None => Decimal::from_str_exact(text).ok(),
        Some((significand, exponent)) => scientific(significand, exponent),
    };
    parsed.ok_or_else(malformed)
}

/// `significand x 10^exponent` exactly (both already checked to be digits), or `None`
/// when no `Decimal` holds that value. (rust_decimal's `from_scientific` rounds away the
/// digits it cannot hold: `1.23456789012345678901234567890123e5` would lose four.)
fn scientific(significand: &str, exponent: &str) -> Option<Decimal> {
    let m = Decimal::from_str_exact(significand).ok()?;
    if m.is_zero() {
        return Some(m);
    }
    let magnitude = exponent
        .trim_start_matches(['+', '-'])
        .trim_start_matches('0');
    // Past four digits no non-zero value fits (a Decimal spans 10^-28 to 10^29).
    let magnitude: i64 = if magnitude.len() > 4 {
        100_000
    } else {
        magnitude.parse().unwrap_or(0)
    };
    let shift = if exponent.starts_with('-') {
        magnitude
    } else {
        magnitude.checked_neg()?
    };
    let mut scale = i64::from(m.scale()).checked_add(shift)?;
    let mut mantissa = m.mantissa();
    // Trailing zeros absorb a scale above 28; a negative scale becomes zeros.
    while scale > 28 {
        if mantissa.checked_rem(10)? != 0 {
            return None;
        }
        mantissa = mantissa.checked_div(10)?;
        scale = scale.checked_sub(1)?;
    }
    while scale < 0 {
        mantissa = mantissa.checked_mul(10)?;
        scale = scale.checked_add(1)?;
    }
    Decimal::try_from_i128_with_scale(mantissa, u32::try_from(scale).ok()?).ok()
}

/// Whether `text` is `[+-]digits[.digits][(e|E)[+-]digits]`, with at least one digit
/// before the exponent.
fn is_plain_decimal(text: &str) -> bool {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (significand, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((s, e)) => (s, Some(e)),
        None => (unsigned, None),
    };
    let (int, frac) = significand.split_once('.').unwrap_or((significand, ""));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty()) && exponent_ok
}

// Hand-written rather than ryu: the fast path finds money-sized floats' shortest digits
// without writing text that would then be parsed; the rest uses std's shortest formatting.
/// The decimal that a float's shortest round-trip text names: `0.1_f64` is `0.1` (not
/// `0.1000000000000000055511151231257827`), `1.5` is `1.5` (scale 1) and `100.0` is `100`
/// (scale 0). These are the digits of Rust's `Display` and of Python's `repr`: the fewest
/// that read back as the same float, the closest to it when several do. `-0.0` is zero.
///
/// Floats with at most 15 significant digits and 15 decimal places (prices, money, sizes)
/// take a fast path that never formats text; the others are formatted and parsed.
///
/// # Errors
/// [`NumberError::Float`] for NaN and infinities, and for values whose shortest text is
/// too small or too large for a `Decimal` (such as `1e-300` or `1e300`).
#[inline]
pub fn decimal_from_f64(value: f64) -> Result<Decimal, NumberError> {
    if value == 0.0 {
        return Ok(Decimal::ZERO);
    }
    match short_decimal(value) {
        Some(d) => Ok(d),
        None => decimal_from_f64_text(value),
    }
}

/// The slow path of [`decimal_from_f64`]: formats the shortest text and parses it (and
/// refuses NaN and infinities, which the fast path never takes).
#[cold]
#[inline(never)]
fn decimal_from_f64_text(value: f64) -> Result<Decimal, NumberError> {
    use std::io::Write as _;
    if !value.is_finite() {
        return Err(NumberError::Float {
            text: value.to_string(),
            why: "not a finite number",
        });
    }
    let too_wide = || NumberError::Float {
        text: format!("{value:e}"),
        why: "its shortest text needs more than 28 decimal places or 96 bits",
    };
    let mut buf = [0u8; MAX_DECIMAL_TEXT];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "{value}").map_err(|_| too_wide())?;
    let len = usize::try_from(cursor.position()).map_err(|_| too_wide())?;
    let text = std::str::from_utf8(buf.get(..len).unwrap_or_default()).map_err(|_| too_wide())?;
    Decimal::from_str_exact(text).map_err(|_| too_wide())
}

/// The fast path of [`decimal_from_f64`], which never formats text.
#[inline(always)]
fn short_decimal(value: f64) -> Option<Decimal> {
    let (digits, places) = short_digits(value)?;
    let magnitude = digits.unsigned_abs();
    // `from_parts` inlines (`Decimal::new` is a call across crates, whose 4-byte stores
    // of the result stall the 8-byte loads that read it back); places <= 22 < 28.
    Some(Decimal::from_parts(
        (magnitude & 0xffff_ffff) as u32,
        (magnitude >> 32) as u32,
        0,
        digits < 0,
        places,
    ))
}

/// The shortest decimal of a non-zero `value` as `(digits, places)` (the value is
/// `digits × 10^-places`, `|digits| < 2^50`, `places <= 22`), or `None` when this fast
/// path cannot prove it.
///
/// With `e` the value's binary exponent (`2^e <= |value| < 2^(e+1)`), let K be the largest
/// number of places (at most 22, so `10^K` is exact) that keeps `|value| × 10^K < 2^50`.
/// At any scale `p <= K` a float's rounding interval is narrower than 1/8 and the
/// product's own rounding error is at most 1/16, so if some text with at most `p` decimal
/// places reads back as `value`, it is the only one, and the integer nearest
/// `value × 10^p` is its digits followed by zeros. Stripping the zeros gives the shortest
/// text; one correctly rounded division proves it reads back as `value` (which is how
/// the text `n × 10^-k` parses). Money and prices have few places, so `p = min(K, 4)` is
/// tried first, then `p = K`. When the proof fails, `None` sends the value to the
/// formatter.
///
/// Always inlined, returning plain integers: this runs for every money cell of a
/// million-row column, and a `Decimal` returned from a call comes back through memory in
/// 4-byte stores that the caller's wider loads stall on.
#[inline(always)]
fn short_digits(value: f64) -> Option<(i64, u32)> {
    // The biased exponent is 11 bits.
    let biased = i32::try_from((value.to_bits() >> 52) & 0x7ff).ok()?;
    let room = 49_i32.checked_sub(biased.checked_sub(1023)?)?;
    if room < 0 {
        return None;
    }
    // floor(room × log10(2)) from below (1233 / 4096 < log10(2)): 10^K <= 2^room.
    let most = u32::try_from(room.checked_mul(1233)? >> 12).ok()?.min(22);
    let few = most.min(4);
    if let Some(found) = short_digits_at(value, few) {
        return Some(found);
    }
    if most > few {
        short_digits_at(value, most)
    } else {
        None
    }
}

/// One attempt of [`short_digits`] at `places` (at most K, see there).
#[inline(always)]
fn short_digits_at(value: f64, places: u32) -> Option<(i64, u32)> {
    /// Strips trailing zeros 16, 8, 4, 2 and 1 at a time.
    const STRIP: [(u32, i64); 5] = [
        (16, 10_000_000_000_000_000),
        (8, 100_000_000),
        (4, 10_000),
        (2, 100),
        (1, 10),
    ];
    let power = *POW10_F64.get(usize::try_from(places).ok()?)?;
    let scaled = value * power;
    // |scaled| < 2^50: the truncation is exact in an i64 and `scaled - t` is exact.
    #[allow(clippy::cast_possible_truncation)]
    let t = scaled as i64;
    #[allow(clippy::cast_precision_loss)]
    let fraction = scaled - t as f64;
    let mut digits = if fraction > 0.5 {
        t.checked_add(1)?
    } else if fraction < -0.5 {
        t.checked_sub(1)?
    } else if fraction.abs() == 0.5 {
        return None;
    } else {
        t
    };
    if digits == 0 {
        return None;
    }
    // `digits / 10^places` is the same rational as the stripped digits over their power,
    // so it reads back alike; checking before the strip keeps the division off the
    // strip's chain of dependent steps. Both operands are exact: |digits| < 2^50.
    #[allow(clippy::cast_precision_loss)]
    if digits as f64 / power != value {
        return None;
    }
    let mut places = places;
    for (step, power) in STRIP {
        if places >= step && digits.checked_rem(power)? == 0 {
            digits = digits.checked_div(power)?;
            places = places.checked_sub(step)?;
        }
    }
    Some((digits, places))
}

/// The powers of ten that are exact in an `f64`.
const POW10_F64: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The exact sum of the decimals that [`decimal_from_f64`] gives for `values` (a trade's
/// profit, commission and swap, say): `[0.1, 0.2]` sums to `0.3`, not to the float sum
/// `0.30000000000000004`. The scale is the largest of the terms' (`1.5 + 0.25` is
/// `1.75`, `1.5 + 1.5` is `3.0`).
///
/// Built for columns of floats: terms with at most 15 significant digits are added as
/// integers and one `Decimal` is built at the end.
///
/// The sum is exact or refused, never rounded: `1e10 + 1e-22` needs 33 digits and is an
/// overflow (where `Decimal` addition would round it to 28).
///
/// # Errors
/// [`SumError::Term`] with the index and reason of the first value that has no decimal
/// form (see [`decimal_from_f64`]); [`SumError::Overflow`] when the exact sum does not
/// fit a `Decimal`.
#[inline]
pub fn decimal_sum_from_f64(values: &[f64]) -> Result<Decimal, SumError> {
    let mut sum = 0_i128;
    let mut scale = 0_u32;
    for &value in values {
        if value == 0.0 {
            continue;
        }
        let Some((digits, places)) = short_digits(value) else {
            return decimal_sum_from_f64_slow(values);
        };
        // |digits| < 2^50 and 10^22 < 2^74, so each term fits an i128; the sum is checked.
        let term = if places >= scale {
            let lift = pow10_i128(places.saturating_sub(scale));
            sum = sum.checked_mul(lift).ok_or(SumError::Overflow)?;
            scale = places;
            i128::from(digits)
        } else {
            i128::from(digits)
                .checked_mul(pow10_i128(scale.saturating_sub(places)))
                .ok_or(SumError::Overflow)?
        };
        sum = sum.checked_add(term).ok_or(SumError::Overflow)?;
    }
    // `from_parts` inlines and keeps the result in registers (a `Decimal` returned from a
    // call is read back from memory, wider than it was written, and stalls); scale <= 22.
    let magnitude = sum.unsigned_abs();
    if magnitude >> 96 != 0 {
        return Err(SumError::Overflow);
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(Decimal::from_parts(
        magnitude as u32,
        (magnitude >> 32) as u32,
        (magnitude >> 64) as u32,
        sum < 0,
        scale,
    ))
}

/// `10^n` for `n <= 22`.
#[inline(always)]
fn pow10_i128(n: u32) -> i128 {
    10_i128.pow(n.min(22))
}

/// [`decimal_sum_from_f64`] for terms the fast path cannot take: each converted with
/// [`decimal_from_f64`] and added with checked `Decimal` arithmetic.
#[cold]
#[inline(never)]
fn decimal_sum_from_f64_slow(values: &[f64]) -> Result<Decimal, SumError> {
    let mut sum = Decimal::ZERO;
    for (index, &value) in values.iter().enumerate() {
        let term = decimal_from_f64(value).map_err(|source| SumError::Term { index, source })?;
        sum = add_exact(sum, term).ok_or(SumError::Overflow)?;
    }
    Ok(sum)
}

/// Why [`decimal_sum_from_f64`] has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SumError {
    /// A term has no decimal form.
    #[error("term {index}: {source}")]
    Term {
        /// The term's index in the values.
        index: usize,
        /// Why [`decimal_from_f64`] refused it.
        source: NumberError,
    },
    /// The sum does not fit a `Decimal`.
    #[error("the sum overflows a decimal")]
    Overflow,
}

/// The largest magnitude, exclusive, that [`fixed4_from_f64`] converts: `2^36`. Below it
/// `|value| × 10^4 < 2^50`, the bound under which [`short_digits`] proves that at most one
/// text with four or fewer decimal places reads back as a float.
const FIXED4_LIMIT: f64 = 68_719_476_736.0;

/// A float's shortest decimal (see [`decimal_from_f64`]) as digits at a fixed four decimal
/// places, with whether the conversion holds: `1.5` is `(15_000, true)`, `-0.05` is
/// `(-500, true)`, `0.0` and `-0.0` are `(0, true)`. `false` (the digits then mean
/// nothing) when the shortest decimal needs more than four places, when `|value| >= 2^36`,
/// and for NaN and infinities; the caller then takes [`decimal_from_f64`].
///
/// Built for columns of money, where most values have two decimals: one multiplication,
/// one addition that rounds, and one division, and no branch, so that a loop over a column stays
/// tight. The rounding only picks a candidate; the division proves it: `digits / 10^4`
/// (both exact in an `f64`, correctly rounded) is how the text `digits × 10^-4` parses,
/// so equality means that text reads back as `value`, and below `2^36` no other text of
/// four or fewer places does (as the private `short_digits` argues), so it is the shortest text's digits
/// followed by zeros. [`fixed4_places`] tells the shortest text's places and
/// [`fixed4_decimal`] makes the `Decimal`; digits at one scale add as integers, so a
/// trade's net P&L is one `i64` sum of its terms' digits.
#[inline(always)]
#[must_use]
pub fn fixed4_from_f64(value: f64) -> (i64, bool) {
    /// `1.5 × 2^52`: added to `|x| < 2^51`, the sum lies in `[2^52, 2^53)`, where floats
    /// are the integers, so it is `x` rounded (to even) plus this, and the difference of
    /// the two bit patterns is that integer.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let scaled = value * 1e4;
    // Rounded without a saturating float-to-integer conversion. Outside |scaled| < 2^51
    // (and for NaN) the digits mean nothing, and the range check refuses the value.
    #[allow(clippy::cast_possible_wrap)]
    let digits = ((scaled + ROUND).to_bits() as i64).wrapping_sub(ROUND.to_bits() as i64);
    // Exact for every value the range check accepts: |digits| < 2^50.
    #[allow(clippy::cast_precision_loss)]
    let proven = (value.abs() < FIXED4_LIMIT) & (digits as f64 / 1e4 == value);
    (digits, proven)
}

/// The decimal places of `digits × 10^-4` written shortest: 0 for a multiple of `10^4`
/// (zero included), otherwise 4 less its trailing zeros (`15_000` is `1.5`: 1 place).
#[inline(always)]
#[must_use]
pub fn fixed4_places(digits: i64) -> u32 {
    // The remainder is below 10^4, the table's length.
    let rest = (digits.unsigned_abs() % 10_000) as usize;
    u32::from(FIXED4_PLACES.get(rest).copied().unwrap_or(4))
}

/// [`fixed4_places`] of each remainder `0..10^4`.
static FIXED4_PLACES: [u8; 10_000] = {
    let mut table = [0_u8; 10_000];
    let mut rest = 1;
    while rest < 10_000 {
        table[rest] = if rest % 1_000 == 0 {
            1
        } else if rest % 100 == 0 {
            2
        } else if rest % 10 == 0 {
            3
        } else {
            4
        };
        rest += 1;
    }
    table
};

/// The decimal `sum × 10^-4` written with `places` decimal places (at most 4), where
/// `sum` is a multiple of `10^(4 - places)`: the sum of terms from [`fixed4_from_f64`] at
/// the largest of their [`fixed4_places`] is exactly what [`decimal_sum_from_f64`] gives
/// for those terms, value and scale (`1.5 + 1.5` is `3.0`).
#[inline(always)]
#[must_use]
pub fn fixed4_decimal(sum: i64, places: u32) -> Decimal {
    // Division by constants: multiplications, not a divide instruction.
    let digits = match places {
        0 => sum / 10_000,
        1 => sum / 1_000,
        2 => sum / 100,
        3 => sum / 10,
        _ => sum,
    };
    let magnitude = digits.unsigned_abs();
    // `from_parts` inlines and keeps the result in registers (see `short_decimal`).
    #[allow(clippy::cast_possible_truncation)]
    Decimal::from_parts(
        magnitude as u32,
        (magnitude >> 32) as u32,
        0,
        digits < 0,
        places.min(4),
    )
}

/// `10^n` for `n <= 28` (the scales a `Decimal` can have): exact in an `i128`.
const POW10_I128: [i128; 29] = {
    let mut table = [1_i128; 29];
    let mut i = 1;
    while i < 29 {
        #[allow(clippy::arithmetic_side_effects)] // 10^28 < 2^94: in range
        {
            table[i] = table[i - 1] * 10;
            i += 1;
        }
    }
    table
};

/// `10^n` as a `u128`, for `n <= 28` (the scales a `Decimal` can have).
#[inline(always)]
#[must_use]
pub(crate) fn pow10_u128(n: u32) -> Option<u128> {
    POW10_I128.get(n as usize).map(|p| p.unsigned_abs())
}

/// Numeric comparison of two decimals (`1.0 == 1.00`), exactly as `Decimal`'s `Ord`,
/// on `i128` mantissas: at equal scales one integer comparison; otherwise the magnitude
/// with the smaller scale is lifted by a power of ten in one widening multiplication
/// instead of `Decimal`'s word-by-word rescaling loop. Every comparison of the check
/// (rule thresholds, tier floors, limits) goes through here.
#[inline(always)]
#[must_use]
pub fn cmp_decimal(a: Decimal, b: Decimal) -> Ordering {
    cmp_fixed(fixed(a), fixed(b))
}

/// A decimal as its integer mantissa and scale: `value = mantissa / 10^scale`.
#[inline(always)]
#[must_use]
pub fn fixed(value: Decimal) -> (i128, u32) {
    (value.mantissa(), value.scale())
}

/// [`cmp_decimal`] on decimals already taken apart by [`fixed`] (mantissas below 2^96,
/// scales at most 28): rule thresholds are taken apart once, when the rule set is built.
#[inline(always)]
#[must_use]
pub fn cmp_fixed((ma, sa): (i128, u32), (mb, sb): (i128, u32)) -> Ordering {
    if sa == sb {
        return ma.cmp(&mb);
    }
    // Different signs (or a zero) decide without rescaling.
    let signs = ma.signum().cmp(&mb.signum());
    if signs.is_ne() || ma == 0 {
        return signs;
    }
    let (ua, ub) = (ma.unsigned_abs(), mb.unsigned_abs());
    let magnitude = if sa < sb {
        cmp_lifted(ua, sb.abs_diff(sa), ub)
    } else {
        cmp_lifted(ub, sa.abs_diff(sb), ua).reverse()
    };
    if ma < 0 {
        magnitude.reverse()
    } else {
        magnitude
    }
}

/// `x x 10^by` against `y`, for magnitudes below 2^96 and `by <= 28`.
#[inline(always)]
fn cmp_lifted(x: u128, by: u32, y: u128) -> Ordering {
    let by = by as usize;
    // Both factors below 2^64: the widening product is exact (no wrap can happen).
    if let (Ok(small), Some(&power)) = (u64::try_from(x), POW10_U64.get(by)) {
        return u128::from(small).wrapping_mul(u128::from(power)).cmp(&y);
    }
    match POW10_I128
        .get(by)
        .and_then(|p| x.checked_mul(p.unsigned_abs()))
    {
        Some(lifted) => lifted.cmp(&y),
        // At least 2^128: beyond any magnitude (< 2^96).
        None => Ordering::Greater,
    }
}

/// `10^n` for `n <= 19` (those that fit a `u64`).
const POW10_U64: [u64; 20] = {
    let mut table = [1_u64; 20];
    let mut i = 1;
    while i < 20 {
        #[allow(clippy::arithmetic_side_effects)] // 10^19 < 2^64: in range
        {
            table[i] = table[i - 1] * 10;
            i += 1;
        }
    }
    table
};

/// Whether `value` is a whole multiple of `step` (a zero step allows anything), as
/// `value.checked_rem(step)` is zero. When both mantissas fit 96 bits at the larger of
/// the two scales the remainder is taken on `i128`s; otherwise `Decimal`'s own.
#[inline]
#[must_use]
pub fn is_multiple(value: Decimal, step: Decimal) -> bool {
    if step.is_zero() {
        return true;
    }
    let scale = value.scale().max(step.scale());
    let lift = |d: Decimal| match scale.abs_diff(d.scale()) {
        0 => Some(d.mantissa()),
        by => POW10_I128
            .get(by as usize)
            .and_then(|p| d.mantissa().checked_mul(*p))
            .filter(|m| m.unsigned_abs() >> 96 == 0),
    };
    match (lift(value), lift(step)) {
        // The signs do not matter to divisibility; magnitudes below 2^64 take the
        // machine's 64-bit remainder rather than a 128-bit library call.
        (Some(v), Some(s)) => match (
            u64::try_from(v.unsigned_abs()),
            u64::try_from(s.unsigned_abs()),
        ) {
            (Ok(v), Ok(s)) => v.checked_rem(s) == Some(0),
            _ => v.checked_rem(s) == Some(0),
        },
        _ => value.checked_rem(step).is_some_and(|r| r.is_zero()),
    }
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

/// Addition that is exact or refused: `None` on overflow and where `Decimal` addition
/// would round, that is when the sum needs more than 96 bits at the larger of the two
/// scales (`1e10 + 1e-22` needs 33 digits; [`add`] would round it to 28).
#[inline]
#[must_use]
pub fn add_exact(a: Decimal, b: Decimal) -> Option<Decimal> {
    // Adding zero is exact (and `Decimal` returns the other operand as it is, scale and
    // all). Otherwise `Decimal` addition drops places (rounding) only when the digits
    // outgrow 96 bits at the larger scale.
    if a.is_zero() || b.is_zero() {
        return a.checked_add(b);
    }
    let scale = a.scale().max(b.scale());
    a.checked_add(b).filter(|sum| sum.scale() >= scale)
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

/// A value broke the rule of the field that holds it. Every refusal of a validated
/// constructor names the field and the rule, e.g.
/// `contract_multiplier: 0 is not valid: must be greater than zero`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The field's name (or dotted path, `rate_limit.window_ms`).
    pub field: &'static str,
    /// What is wrong with its value.
    pub problem: FieldProblem,
}

/// What is wrong with a field's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldProblem {
    /// A number broke its kind's range or did not parse.
    #[error(transparent)]
    Number(#[from] NumberError),
    /// A required field is absent.
    #[error("is required")]
    Missing,
    /// The field does not belong to this kind of record (an event type's keys).
    #[error("is not a key of a `{kind}` event")]
    NotAllowed {
        /// The record's kind.
        kind: &'static str,
    },
    /// A value broke a rule that involves another field or a limit.
    #[error("{value} is not valid: must be {rule}")]
    Rule {
        /// The value, as text.
        value: String,
        /// The rule, in words.
        rule: String,
    },
}

impl FieldError {
    /// `field`'s `value` breaks `rule`.
    #[must_use]
    pub fn rule(field: &'static str, value: impl fmt::Display, rule: impl Into<String>) -> Self {
        Self {
            field,
            problem: FieldProblem::Rule {
                value: value.to_string(),
                rule: rule.into(),
            },
        }
    }

    /// `field`'s number was refused by its newtype.
    #[must_use]
    pub fn number(field: &'static str, error: NumberError) -> Self {
        Self {
            field,
            problem: FieldProblem::Number(error),
        }
    }
}

/// Builds the newtype `T` for `field` from a decimal, naming the field on refusal.
///
/// # Errors
/// [`FieldError`] when `value` breaks `T`'s range.
pub fn field<T: TryFrom<Decimal, Error = NumberError>>(
    field: &'static str,
    value: Decimal,
) -> Result<T, FieldError> {
    T::try_from(value).map_err(|e| FieldError::number(field, e))
}

/// The strict serde form of decimals: a string read by [`parse_decimal`] (so no `NaN`,
/// `inf`, `1_000` or padding), an integer, or a float converted by its shortest text
/// ([`decimal_from_f64`]). The newtypes of this module deserialize through it, so a
/// config file, a JSON event and a Python dict read numbers alike.
#[cfg(feature = "serde")]
pub mod strict {
    use std::fmt;

    use rust_decimal::Decimal;
    use serde::de::{self, Visitor};

    use super::{decimal_from_f64, parse_decimal};

    /// Reads one decimal strictly.
    ///
    /// # Errors
    /// The deserializer's error, with the [`super::NumberError`] text, for anything that
    /// is not a decimal.
    pub fn deserialize<'de, D: de::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Decimal, D::Error> {
        deserializer.deserialize_any(Strict)
    }

    struct Strict;

    impl Visitor<'_> for Strict {
        type Value = Decimal;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal as a string (\"1.5\") or a number")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Decimal, E> {
            parse_decimal(text).map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_i128<E: de::Error>(self, v: i128) -> Result<Decimal, E> {
            Decimal::try_from_i128_with_scale(v, 0)
                .map_err(|_| E::custom(format!("{v} is too large for a decimal")))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            decimal_from_f64(v).map_err(E::custom)
        }
    }
}

/// `true`, for serde defaults of `active`-style flags.
#[cfg(feature = "serde")]
#[must_use]
pub(crate) const fn default_true() -> bool {
    true
}

macro_rules! decimal_newtype {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $rule:literal, |$v:ident| $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        #[cfg_attr(feature = "serde", serde(into = "Decimal"))]
        pub struct $name(Decimal);

        /// Numeric order, as `Decimal`'s (see [`cmp_decimal`]).
        impl Ord for $name {
            #[inline(always)]
            fn cmp(&self, other: &Self) -> Ordering {
                cmp_decimal(self.0, other.0)
            }
        }

        impl PartialOrd for $name {
            #[inline(always)]
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        /// Reads a decimal strictly (see [`parse_decimal`]) and checks its range.
        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Self::new(strict::deserialize(deserializer)?).map_err(serde::de::Error::custom)
            }
        }

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
decimal_newtype!(
    /// An instrument's contract multiplier: the value of one unit of quantity per unit of
    /// price (1 for linear USDT contracts). Strictly positive: a zero multiplier would
    /// value every position of the symbol at nothing.
    Multiplier, "contract multiplier", "greater than zero", |v| v > Decimal::ZERO
);
decimal_newtype!(
    /// An instrument's lot size (quantity step): strictly positive.
    LotSize, "lot size", "greater than zero", |v| v > Decimal::ZERO
);
decimal_newtype!(
    /// A price band: the largest relative distance of a limit price from the mark,
    /// strictly between 0 and 1 (0.05 = 5%).
    PriceBand, "price band", "greater than zero and below 1", |v| v > Decimal::ZERO && v < Decimal::ONE
);
decimal_newtype!(
    /// An externally computed risk score, from 0 to 100.
    RiskScore, "risk score", "from 0 to 100", |v| v >= Decimal::ZERO && v <= Decimal::ONE_HUNDRED
);

/// A crate-private constructor for values already known to be in range.
macro_rules! in_range {
    ($($name:ident),+) => {$(
        impl $name {
            /// Wraps a value the caller knows to be in this type's range, without checking
            /// it again: the fixed-point pricing step computes the very value `Decimal`
            /// arithmetic gives the typed operations, in range for the same reason theirs is.
            #[inline(always)]
            #[must_use]
            pub(crate) const fn in_range(value: Decimal) -> Self {
                Self(value)
            }
        }
    )+};
}
in_range!(Price, Notional, Money, Ratio, Quantity, Leverage);

// Typed operations. Each says what it computes and returns a value of the right type;
// those that can overflow are checked and return `ArithmeticError`, the others are plain
// because their result is in range by construction (noted on each).

impl Price {
    /// The notional of `quantity` units at this price with a contract `multiplier`:
    /// `price x quantity x multiplier` (all three positive by construction).
    ///
    /// # Errors
    /// [`ArithmeticError`] on overflow.
    #[inline(always)]
    pub fn notional(
        self,
        quantity: Quantity,
        multiplier: Multiplier,
    ) -> Result<Notional, ArithmeticError> {
        let value = mul(
            mul(self.0, quantity.0, "notional")?,
            multiplier.0,
            "notional",
        )?;
        Ok(Notional(value))
    }

    /// This price widened against a taker on `side` by `slippage`: `price x (1 + s)` for
    /// a buy, `price x (1 - s)` for a sell (how a market order is valued at the mark).
    ///
    /// # Errors
    /// [`ArithmeticError`] on overflow, and for a sell when `slippage` is 1 or more, which
    /// leaves no positive price (a validated config's slippage is below 1).
    #[inline(always)]
    pub fn widened(self, side: Side, slippage: Ratio) -> Result<Self, ArithmeticError> {
        const WHAT: &str = "market order price";
        let factor = add(Decimal::ONE, mul(side.sign(), slippage.0, WHAT)?, WHAT)?;
        let value = mul(self.0, factor, WHAT)?;
        if value > Decimal::ZERO {
            Ok(Self(value))
        } else {
            Err(ArithmeticError { what: WHAT })
        }
    }

    /// The relative distance of this price from `reference`: `|price - reference| /
    /// reference`.
    ///
    /// # Errors
    /// [`ArithmeticError`] when the quotient overflows (a tiny reference).
    #[inline(always)]
    pub fn deviation_from(self, reference: Self) -> Result<Ratio, ArithmeticError> {
        const WHAT: &str = "price deviation";
        let gap = sub(self.0, reference.0, WHAT)?.abs();
        Ok(Ratio(div(gap, reference.0, WHAT)?))
    }
}

impl SignedQuantity {
    /// Zero: no position.
    pub const ZERO: Self = Self(Decimal::ZERO);

    /// Wraps any decimal: every value is a valid signed quantity.
    #[inline]
    #[must_use]
    pub const fn from_decimal(value: Decimal) -> Self {
        Self(value)
    }

    /// The unsigned size.
    #[inline]
    #[must_use]
    pub fn abs(self) -> Quantity {
        Quantity(self.0.abs())
    }

    /// True when there is no position.
    #[inline]
    #[must_use]
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// True when the size is negative: a short position.
    #[inline]
    #[must_use]
    pub fn is_short(self) -> bool {
        self.0.is_sign_negative()
    }

    /// The size after adding `change`.
    ///
    /// # Errors
    /// [`ArithmeticError`] on overflow.
    #[inline(always)]
    pub fn checked_add(self, change: Self) -> Result<Self, ArithmeticError> {
        Ok(Self(add(self.0, change.0, "position size")?))
    }

    /// The unrealized profit of this size bought or sold at `entry` and valued at `mark`:
    /// `size x (mark - entry) x multiplier`.
    ///
    /// # Errors
    /// [`ArithmeticError`] on overflow.
    #[inline(always)]
    pub fn pnl(
        self,
        entry: Price,
        mark: Price,
        multiplier: Multiplier,
    ) -> Result<Money, ArithmeticError> {
        const WHAT: &str = "pnl";
        let per_unit = sub(mark.0, entry.0, WHAT)?;
        Ok(Money(mul(
            mul(self.0, per_unit, WHAT)?,
            multiplier.0,
            WHAT,
        )?))
    }
}

impl Quantity {
    /// Zero.
    pub const ZERO: Self = Self(Decimal::ZERO);

    /// True for zero.
    #[inline]
    #[must_use]
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// This quantity as a signed size on `side`: positive for a buy, negative for a sell.
    /// Negation cannot overflow.
    #[inline]
    #[must_use]
    pub fn signed(self, side: Side) -> SignedQuantity {
        match side {
            Side::Buy => SignedQuantity(self.0),
            // Negating a decimal flips its sign bit: it cannot overflow.
            #[allow(clippy::arithmetic_side_effects)]
            Side::Sell => SignedQuantity(-self.0),
        }
    }

    /// What is left of this quantity after taking `other` from it, and zero when `other`
    /// is as large: `self - min(other, self)`, which lies in `[0, self]` and so cannot
    /// overflow.
    #[inline]
    #[must_use]
    pub fn saturating_sub(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0.min(self.0)))
    }
}

impl Notional {
    /// Zero.
    pub const ZERO: Self = Self(Decimal::ZERO);

    /// True for zero.
    #[inline]
    #[must_use]
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// The sum of two notionals.
    ///
    /// # Errors
    /// [`ArithmeticError`] on overflow.
    #[inline(always)]
    pub fn checked_add(self, other: Self) -> Result<Self, ArithmeticError> {
        Ok(Self(add(self.0, other.0, "notional")?))
    }

    /// The initial margin of this notional at `leverage`: `notional / leverage`.
    ///
    /// # Errors
    /// [`ArithmeticError`] when the division fails; with a leverage of at least 1 the
    /// quotient is no larger than the notional, so this is not expected.
    #[inline(always)]
    pub fn margin_at(self, leverage: Leverage) -> Result<Money, ArithmeticError> {
        Ok(Money(div(self.0, leverage.0, "initial margin")?))
    }

    /// This notional as a share of `whole`, or `None` when `whole` is zero.
    ///
    /// # Errors
    /// [`ArithmeticError`] when the quotient overflows (a tiny whole).
    #[inline(always)]
    pub fn share_of(self, whole: Self) -> Result<Option<Ratio>, ArithmeticError> {
        if whole.0.is_zero() {
            return Ok(None);
        }
        Ok(Some(Ratio(div(self.0, whole.0, "share of notional")?)))
    }
}

impl Money {
    /// Zero.
    pub const ZERO: Self = Self(Decimal::ZERO);

    /// Wraps any decimal: every value is a valid amount of money.
    #[inline]
    #[must_use]
    pub const fn from_decimal(value: Decimal) -> Self {
        Self(value)
    }

    /// True for zero.
    #[inline]
    #[must_use]
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// The sum of two amounts.
    ///
    /// # Errors
    /// [`ArithmeticError`] on overflow.
    #[inline(always)]
    pub fn checked_add(self, other: Self) -> Result<Self, ArithmeticError> {
        Ok(Self(add(self.0, other.0, "money amount")?))
    }

    /// This amount less `other`.
    ///
    /// # Errors
    /// [`ArithmeticError`] on overflow.
    #[inline(always)]
    pub fn checked_sub(self, other: Self) -> Result<Self, ArithmeticError> {
        Ok(Self(sub(self.0, other.0, "money amount")?))
    }

    /// This amount divided by `other`: a dimensionless quotient, signed as the operands
    /// are (a margin ratio is maintenance margin / margin balance).
    ///
    /// # Errors
    /// [`ArithmeticError`] on overflow or when `other` is zero.
    #[inline(always)]
    pub fn checked_div(self, other: Self) -> Result<Decimal, ArithmeticError> {
        div(self.0, other.0, "ratio of money amounts")
    }
}

impl Leverage {
    /// No leverage: 1x.
    pub const ONE: Self = Self(Decimal::ONE);
}

/// Zero is the default of the kinds that allow it (never of a price, a leverage, a
/// multiplier, a lot size or a band, which cannot be zero).
macro_rules! zero_default {
    ($($name:ident),+) => {$(
        impl Default for $name {
            fn default() -> Self {
                Self(Decimal::ZERO)
            }
        }
    )+};
}
zero_default!(Quantity, SignedQuantity, Notional, Ratio, Money, RiskScore);

impl Multiplier {
    /// 1: a linear contract.
    pub const ONE: Self = Self(Decimal::ONE);
}

impl RiskScore {
    /// Zero: no risk signal.
    pub const ZERO: Self = Self(Decimal::ZERO);
}

impl Ratio {
    /// Zero.
    pub const ZERO: Self = Self(Decimal::ZERO);

    /// One.
    pub const ONE: Self = Self(Decimal::ONE);

    /// `units x 10^-scale` (`Ratio::from_scaled(8, 1)` is 0.8): never negative, so always
    /// valid, and usable in constants.
    ///
    /// # Panics
    /// When `scale` is above 28 (in a constant, that is a compile error).
    #[must_use]
    pub const fn from_scaled(units: u32, scale: u32) -> Self {
        Self(Decimal::from_parts(units, 0, 0, false, scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: Rust's shortest `Display` text, parsed.
    fn by_text(value: f64) -> Option<Decimal> {
        Decimal::from_str_exact(&value.to_string()).ok()
    }

    #[test]
    fn floats_convert_by_their_shortest_text() {
        for (value, text) in [
            (0.1, "0.1"),
            (1.5, "1.5"),
            (100.0, "100"),
            (-0.0, "0"),
            (-2.25, "-2.25"),
            (1.2345, "1.2345"),
            (0.3, "0.3"),
            (1e-7, "0.0000001"),
            (123_456_789.123_456_7, "123456789.1234567"),
            (1e16, "10000000000000000"),
            (9_007_199_254_740_993.0, "9007199254740992"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(
                decimal_from_f64(value).map(|d| d.to_string()),
                Ok(text.to_owned()),
                "{value:e}"
            );
        }
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-300,
            1e300,
            5e-324,
        ] {
            assert!(
                matches!(decimal_from_f64(bad), Err(NumberError::Float { .. })),
                "{bad:e}"
            );
        }
    }

    #[test]
    fn float_sums_are_exact_sums_of_the_decimals() {
        let sum = |values: &[f64]| decimal_sum_from_f64(values).map(|d| d.to_string());
        assert_eq!(sum(&[0.1, 0.2]), Ok("0.3".to_owned()));
        assert_eq!(sum(&[1.5, 0.25]), Ok("1.75".to_owned()));
        assert_eq!(sum(&[1.5, 1.5]), Ok("3.0".to_owned()), "the terms' scale");
        assert_eq!(sum(&[-12.34, -0.56, 0.0]), Ok("-12.90".to_owned()));
        assert_eq!(sum(&[0.0, -0.0]), Ok("0".to_owned()));
        assert_eq!(sum(&[]), Ok("0".to_owned()));
        assert_eq!(
            sum(&[0.1 + 0.2, 1.0]),
            Ok("1.30000000000000004".to_owned()),
            "a 17-digit term takes the slow path"
        );
        assert_eq!(sum(&[1e10, 1e-22]), Err(SumError::Overflow), "33 digits");
        assert_eq!(
            sum(&[1e12, 0.1 + 0.2]),
            Err(SumError::Overflow),
            "slow path: rounding is refused too"
        );
        assert!(matches!(
            decimal_sum_from_f64(&[1.0, f64::NAN]),
            Err(SumError::Term {
                index: 1,
                source: NumberError::Float { .. }
            })
        ));
        assert!(matches!(
            decimal_sum_from_f64(&[f64::INFINITY, f64::NAN]),
            Err(SumError::Term { index: 0, .. })
        ));
    }

    #[test]
    fn exact_addition_refuses_to_round() {
        use rust_decimal_macros::dec;
        assert_eq!(add_exact(dec!(1.5), dec!(0.25)), Some(dec!(1.75)));
        assert_eq!(
            add_exact(dec!(1.5), dec!(1.5)).map(|s| s.to_string()),
            Some("3.0".to_owned())
        );
        let tiny = dec!(0.0000000000000000000000000001); // 1e-28
        assert_eq!(
            add_exact(dec!(1), tiny),
            Some(dec!(1.0000000000000000000000000001))
        );
        assert_eq!(add_exact(dec!(10), tiny), None, "30 digits at scale 28");
        assert_eq!(
            add(dec!(10), tiny, "x"),
            Ok(dec!(10.000000000000000000000000000)),
            "rounds"
        );
        // Zero terms are exact whatever their scale.
        assert_eq!(
            add_exact(dec!(1.5), dec!(0.00)).map(|s| s.to_string()),
            Some("1.5".to_owned())
        );
        assert_eq!(add_exact(dec!(0.00), dec!(0)), Some(Decimal::ZERO));
        assert_eq!(add_exact(Decimal::MAX, Decimal::ONE), None, "overflow");
        assert_eq!(
            add_exact(Decimal::MAX, -Decimal::ONE),
            Some(Decimal::MAX - Decimal::ONE)
        );
    }

    proptest::proptest! {
        #[test]
        fn float_sums_equal_decimal_sums(
            a in -999_999_999_999i64..=999_999_999_999,
            a_places in 0u32..=8,
            b in -999_999_999i64..=999_999_999,
            b_places in 0u32..=8,
            c_bits in proptest::prelude::any::<u64>(),
        ) {
            let float = |n: i64, places: u32| n as f64 / 10f64.powi(i32::try_from(places).unwrap_or(0));
            // Two decimal-looking terms and one arbitrary float (NaN, tiny, 17 digits...).
            let values = [float(a, a_places), float(b, b_places), f64::from_bits(c_bits)];
            let expected = values.iter().try_fold(Decimal::ZERO, |sum, &v| {
                let term = decimal_from_f64(v).ok()?;
                let scale = sum.scale().max(term.scale());
                sum.checked_add(term).filter(|s| s.scale() >= scale)
            });
            proptest::prop_assert_eq!(
                values.iter().try_fold(Decimal::ZERO, |sum, &v| add_exact(sum, decimal_from_f64(v).ok()?)),
                expected
            );
            let got = decimal_sum_from_f64(&values);
            proptest::prop_assert_eq!(got.clone().ok().map(|d| d.to_string()), expected.map(|d| d.to_string()));
            if let Err(SumError::Term { index, .. }) = got {
                proptest::prop_assert!(decimal_from_f64(values[index]).is_err());
            }
        }

        #[test]
        fn any_float_converts_as_its_text_does(bits in proptest::prelude::any::<u64>()) {
            let value = f64::from_bits(bits);
            let expected = if value.is_finite() { by_text(value) } else { None };
            let got = decimal_from_f64(value).ok();
            // Same value and the same scale (so the same text).
            proptest::prop_assert_eq!(got.map(|d| d.to_string()), expected.map(|d| d.to_string()));
        }

        #[test]
        fn decimal_looking_floats_come_back_exactly(
            n in -999_999_999_999_999i64..=999_999_999_999_999,
            places in 0u32..=15,
        ) {
            let exact = Decimal::new(n, places);
            let value = n as f64 / 10f64.powi(i32::try_from(places).unwrap_or(0));
            let got = decimal_from_f64(value);
            // At most 15 significant digits always survive a trip through an f64.
            proptest::prop_assert_eq!(got.map(|d| d == exact), Ok(true));
            // Money-sized values take the fast path.
            if n.unsigned_abs() < 1_000_000_000_000 && places <= 4 && n != 0 {
                proptest::prop_assert!(short_decimal(value).is_some(), "slow path for {value:e}");
            }
            proptest::prop_assert_eq!(decimal_from_f64(value).map(|d| d.to_string()).ok(), by_text(value).map(|d| d.to_string()));
        }

        #[test]
        fn floats_next_to_short_decimals_convert_as_their_text_does(
            n in -4_503_599_627_370_495i64..=4_503_599_627_370_495,
            places in 0u32..=17,
            step in -3i64..=3,
        ) {
            let near = n as f64 / 10f64.powi(i32::try_from(places).unwrap_or(0));
            let value = f64::from_bits(near.to_bits().wrapping_add_signed(step));
            let expected = if value.is_finite() { by_text(value) } else { None };
            proptest::prop_assert_eq!(
                decimal_from_f64(value).ok().map(|d| d.to_string()),
                expected.map(|d| d.to_string())
            );
        }
    }

    /// [`fixed4_from_f64`] of one value as the `Decimal` it stands for, when it holds.
    fn fixed4(value: f64) -> Option<Decimal> {
        let (digits, proven) = fixed4_from_f64(value);
        proven.then(|| fixed4_decimal(digits, fixed4_places(digits)))
    }

    #[test]
    fn fixed4_takes_money_and_refuses_the_rest() {
        for (value, digits, text) in [
            (0.0, 0, "0"),
            (-0.0, 0, "0"),
            (1.5, 15_000, "1.5"),
            (-0.05, -500, "-0.05"),
            (100.0, 1_000_000, "100"),
            (1.2345, 12_345, "1.2345"),
            (0.0001, 1, "0.0001"),
            (-12.34, -123_400, "-12.34"),
            (
                68_719_476_735.999_9,
                687_194_767_359_999,
                "68719476735.9999",
            ),
        ] {
            assert_eq!(fixed4_from_f64(value), (digits, true), "{value:e}");
            assert_eq!(
                fixed4(value).map(|d| d.to_string()),
                Some(text.to_owned()),
                "{value:e}"
            );
        }
        for refused in [
            0.000_05,          // five places
            0.1 + 0.2,         // seventeen digits
            68_719_476_736.0,  // 2^36
            1e16,              // large
            -1e300,            // larger
            5e-324,            // subnormal
            f64::MIN_POSITIVE, // tiny
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert!(!fixed4_from_f64(refused).1, "{refused:e}");
        }
        assert_eq!(fixed4_places(0), 0);
        assert_eq!(fixed4_places(-20_000), 0);
        assert_eq!(fixed4_places(15_000), 1);
        assert_eq!(fixed4_places(-1_200), 2);
        assert_eq!(fixed4_places(10), 3);
        assert_eq!(fixed4_places(i64::MIN), 4, "no panic at the edge");
        // Sums at the terms' largest scale, as `decimal_sum_from_f64` gives them.
        assert_eq!(fixed4_decimal(30_000, 1).to_string(), "3.0");
        assert_eq!(fixed4_decimal(-129_000, 2).to_string(), "-12.90");
        assert_eq!(fixed4_decimal(0, 2).to_string(), "0.00");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        #[test]
        fn fixed4_is_the_shortest_decimal_when_it_holds(bits in proptest::prelude::any::<u64>()) {
            let value = f64::from_bits(bits);
            if let Some(d) = fixed4(value) {
                // Same value and the same scale (so the same text).
                proptest::prop_assert_eq!(Some(d.to_string()), by_text(value).map(|d| d.to_string()));
            }
        }

        #[test]
        fn fixed4_holds_for_every_short_decimal_below_its_limit(
            n in -687_194_767_359_999i64..=687_194_767_359_999,
            places in 0u32..=4,
            step in -2i64..=2,
        ) {
            let near = n as f64 / 10f64.powi(i32::try_from(places).unwrap_or(0));
            // The float itself and its neighbours (which have long texts, mostly).
            let value = f64::from_bits(near.to_bits().wrapping_add_signed(step));
            let expected = by_text(value).filter(|d| d.scale() <= 4 && value.abs() < FIXED4_LIMIT);
            proptest::prop_assert_eq!(fixed4(value).map(|d| d.to_string()), expected.map(|d| d.to_string()));
        }

        #[test]
        fn fixed4_sums_are_decimal_sums(
            terms in proptest::collection::vec((-99_999_999_999i64..=99_999_999_999, 0u32..=6), 0..=3),
            nudge in proptest::prelude::any::<u64>(),
        ) {
            let mut values: Vec<f64> = terms
                .iter()
                .map(|&(n, places)| n as f64 / 10f64.powi(i32::try_from(places).unwrap_or(0)))
                .collect();
            // Sometimes one term is an arbitrary float (NaN, tiny, huge, 17 digits).
            if nudge % 4 == 0 && !values.is_empty() {
                let at = usize::try_from(nudge >> 40).unwrap_or(0).checked_rem(values.len()).unwrap_or(0);
                values[at] = f64::from_bits(nudge.rotate_left(17));
            }
            let (mut sum, mut places, mut proven) = (0_i64, 0_u32, true);
            for &v in &values {
                let (digits, ok) = fixed4_from_f64(v);
                proven &= ok;
                sum = sum.wrapping_add(digits);
                places = places.max(fixed4_places(digits));
            }
            if proven {
                proptest::prop_assert_eq!(
                    Ok(fixed4_decimal(sum, places).to_string()),
                    decimal_sum_from_f64(&values).map(|d| d.to_string())
                );
            } else {
                // Refused only where a term needs more than four places or 2^36 and over.
                let needs_more = |v: f64| {
                    by_text(v).is_none_or(|d| d.scale() > 4) || v.abs() >= FIXED4_LIMIT || !v.is_finite()
                };
                proptest::prop_assert!(values.iter().any(|&v| needs_more(v)), "{:?}", values);
            }
        }
    }

    #[test]
    fn strict_parse_refuses_non_numbers_and_padding() {
        for bad in [
            "", " 1", "1 ", "NaN", "inf", "-inf", "1,5", "0x10", "1e", "--1", "1.2.3",
        ] {
            assert!(parse_decimal(bad).is_err(), "accepted {bad:?}");
        }
        // Found by the `wire_decimal` fuzz target: rust_decimal reads `_` as a separator.
        for bad in [
            "2_1", "1_000", "1._5", "1_", "1_0e1", ".", "+", "-.e1", "1e+", "1e1.5",
        ] {
            assert!(parse_decimal(bad).is_err(), "accepted {bad:?}");
        }
        for (good, value) in [("+1", 1), (".5e1", 5), ("5.", 5), ("-0", 0), ("1E+2", 100)] {
            assert_eq!(parse_decimal(good), Ok(Decimal::from(value)), "{good}");
        }
    }

    /// Found by the `wire_decimal` fuzz target: scientific notation was rounded to what a
    /// `Decimal` holds instead of refused.
    #[test]
    fn scientific_notation_is_exact_or_refused() {
        for bad in [
            "080.000213031026213031026894085395e000",
            "1.23456789012345678901234567890123e5",
            "1e-29",
            "1e29",
            "79228162514264337593543950336e0",
            "1e99999",
            "1e-99999",
        ] {
            assert!(parse_decimal(bad).is_err(), "accepted {bad:?}");
        }
        for (good, value) in [
            ("1e-3", Decimal::new(1, 3)),
            ("1.0e-28", Decimal::new(1, 28)),
            (
                "12345678901234567890123456789e-28",
                Decimal::from_i128_with_scale(12_345_678_901_234_567_890_123_456_789, 28),
            ),
            ("7.9228162514264337593543950335e28", Decimal::MAX),
            ("-1.5E+3", Decimal::from(-1500)),
            ("0e-99999", Decimal::ZERO),
            (
                "1e0000000000000000000000000000000005",
                Decimal::from(100_000),
            ),
        ] {
            assert_eq!(parse_decimal(good), Ok(value), "{good}");
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
        let n = Price::lit("3332.9").notional(Quantity::lit("0.01"), Multiplier::lit("100"));
        assert_eq!(n.map(Notional::get), Ok(Decimal::new(333_290, 2)));
    }

    #[test]
    fn typed_operations_compute_what_they_name() {
        use rust_decimal_macros::dec;
        let mark = Price::lit("50000");
        assert_eq!(
            mark.widened(Side::Buy, Ratio::from_scaled(1, 2)),
            Ok(Price::lit("50500"))
        );
        assert_eq!(
            mark.widened(Side::Sell, Ratio::from_scaled(1, 2)),
            Ok(Price::lit("49500"))
        );
        assert_eq!(
            Price::lit("51000").deviation_from(mark),
            Ok(Ratio::lit("0.02"))
        );
        assert_eq!(
            Price::lit("49000").deviation_from(mark),
            Ok(Ratio::lit("0.02"))
        );
        let long = SignedQuantity::lit("2");
        assert_eq!(
            long.pnl(Price::lit("100"), Price::lit("90"), Multiplier::lit("10")),
            Ok(Money::lit("-200"))
        );
        assert_eq!(
            SignedQuantity::lit("-2").pnl(
                Price::lit("100"),
                Price::lit("90"),
                Multiplier::lit("10")
            ),
            Ok(Money::lit("200"))
        );
        assert_eq!(
            Quantity::lit("3").signed(Side::Sell),
            SignedQuantity::lit("-3")
        );
        assert_eq!(
            long.checked_add(Quantity::lit("3").signed(Side::Sell)),
            Ok(SignedQuantity::lit("-1"))
        );
        assert_eq!(
            Quantity::lit("5").saturating_sub(Quantity::lit("2")),
            Quantity::lit("3")
        );
        assert_eq!(
            Quantity::lit("5").saturating_sub(Quantity::lit("7")),
            Quantity::ZERO
        );
        let n = Notional::lit("1000");
        assert_eq!(n.margin_at(Leverage::lit("20")), Ok(Money::lit("50")));
        assert_eq!(
            n.checked_add(Notional::lit("500")),
            Ok(Notional::lit("1500"))
        );
        assert_eq!(
            n.share_of(Notional::lit("4000")),
            Ok(Some(Ratio::lit("0.25")))
        );
        assert_eq!(n.share_of(Notional::ZERO), Ok(None));
        assert_eq!(
            Money::lit("10").checked_sub(Money::lit("25")),
            Ok(Money::lit("-15"))
        );
        assert_eq!(
            Money::lit("10").checked_add(Money::lit("-25")),
            Ok(Money::lit("-15"))
        );
        assert_eq!(Money::lit("1").checked_div(Money::lit("4")), Ok(dec!(0.25)));
        assert_eq!(Ratio::from_scaled(8, 1), Ratio::lit("0.8"));
        assert_eq!(Ratio::ONE, Ratio::lit("1"));
    }

    #[test]
    fn typed_operations_report_overflow_instead_of_panicking() {
        let huge = Price::new(Decimal::MAX).map_err(|e| e.to_string());
        let Ok(huge) = huge else {
            panic!("Decimal::MAX is a valid price: {huge:?}")
        };
        let tiny = Price::lit("0.0000000000000000000000000001");
        fn over<T>(what: &'static str) -> Result<T, ArithmeticError> {
            Err(ArithmeticError { what })
        }
        assert_eq!(
            huge.widened(Side::Buy, Ratio::lit("0.5")),
            over("market order price")
        );
        assert_eq!(
            Price::lit("10").widened(Side::Sell, Ratio::ONE),
            over("market order price"),
            "a sell slipped by 100% has no price"
        );
        assert_eq!(huge.deviation_from(tiny), over("price deviation"));
        assert_eq!(
            SignedQuantity::from_decimal(Decimal::MAX).pnl(tiny, huge, Multiplier::ONE),
            over("pnl")
        );
        assert_eq!(
            SignedQuantity::from_decimal(Decimal::MAX)
                .checked_add(SignedQuantity::from_decimal(Decimal::MAX)),
            over("position size")
        );
        let big = Notional::new(Decimal::MAX).unwrap_or_default();
        assert_eq!(big.checked_add(big), over("notional"));
        assert_eq!(
            big.share_of(Notional::lit("0.0000000000000000000000000001")),
            over("share of notional")
        );
        let rich = Money::from_decimal(Decimal::MAX);
        assert_eq!(rich.checked_add(rich), over("money amount"));
        assert_eq!(
            Money::from_decimal(Decimal::MIN).checked_sub(rich),
            over("money amount")
        );
        assert_eq!(
            rich.checked_div(Money::ZERO),
            over("ratio of money amounts")
        );
        assert_eq!(
            rich.checked_div(Money::lit("0.5")),
            over("ratio of money amounts")
        );
        // In range by construction: the largest notional at the smallest leverage.
        assert_eq!(
            big.margin_at(Leverage::ONE),
            Ok(Money::from_decimal(Decimal::MAX))
        );
    }

    proptest::proptest! {
        /// `notional / leverage` never fails for a leverage of at least 1 and never
        /// exceeds the notional; the reducing part of an order stays within the order.
        #[test]
        fn margin_and_remaining_quantity_stay_in_range(
            lo in proptest::prelude::any::<u32>(),
            mid in proptest::prelude::any::<u32>(),
            hi in proptest::prelude::any::<u32>(),
            scale in 0u32..=28,
            leverage in 1u64..=1_000_000_000,
            leverage_scale in 0u32..=8,
            other in proptest::prelude::any::<u64>(),
            other_scale in 0u32..=28,
        ) {
            let notional = Notional::new(Decimal::from_parts(lo, mid, hi, false, scale));
            let leverage = Leverage::new(Decimal::from_i128_with_scale(i128::from(leverage), leverage_scale));
            if let (Ok(notional), Ok(leverage)) = (notional, leverage) {
                let margin = notional.margin_at(leverage);
                proptest::prop_assert!(margin.is_ok_and(|m| m.get() <= notional.get()), "{margin:?}");
                let q = Quantity(notional.get());
                let r = Quantity(Decimal::from_i128_with_scale(i128::from(other), other_scale));
                let left = q.saturating_sub(r);
                proptest::prop_assert!(left <= q && left >= Quantity::ZERO);
                proptest::prop_assert_eq!(left.is_zero(), r >= q);
            }
        }
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let n = Price::new(Decimal::MAX).map(|p| p.notional(Quantity::lit("10"), Multiplier::ONE));
        assert!(matches!(n, Ok(Err(ArithmeticError { what: "notional" }))));
    }

    /// A decimal from raw parts: any 96-bit mantissa, either sign, any scale.
    fn raw_decimal() -> impl proptest::strategy::Strategy<Value = Decimal> {
        use proptest::prelude::*;
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
            0u32..=28,
        )
            .prop_map(|(lo, mid, hi, negative, scale)| {
                Decimal::from_parts(lo, mid, hi, negative, scale)
            })
    }

    /// A decimal like the check's figures: a small mantissa (up to 64 bits, often far
    /// fewer) at any scale, so that values of different scales are often close or equal.
    fn figure() -> impl proptest::strategy::Strategy<Value = Decimal> {
        use proptest::prelude::*;
        prop_oneof![
            (any::<i64>(), 0u32..=28).prop_map(|(m, s)| Decimal::new(m, s)),
            (-1000i64..1000, 0u32..=28).prop_map(|(m, s)| Decimal::new(m, s)),
            raw_decimal(),
        ]
    }

    #[test]
    fn fast_comparison_edges() {
        let cases = [
            (Decimal::ZERO, Decimal::new(0, 5)),
            (Decimal::from_parts(0, 0, 0, true, 3), Decimal::ZERO),
            (Decimal::MAX, Decimal::new(1, 28)),
            (Decimal::MIN, Decimal::new(-1, 28)),
            (
                Decimal::MAX,
                Decimal::from_parts(u32::MAX, u32::MAX, u32::MAX, false, 1),
            ),
            (
                Decimal::new(1, 0),
                Decimal::from_i128_with_scale(10_000_000_000_000_000_000, 19),
            ),
            (
                Decimal::new(-1, 0),
                Decimal::from_i128_with_scale(-10_000_000_000_000_000_000, 19),
            ),
            (Decimal::new(5, 1), Decimal::new(-5, 1)),
        ];
        for (a, b) in cases {
            assert_eq!(cmp_decimal(a, b), a.cmp(&b), "{a:?} vs {b:?}");
            assert_eq!(cmp_decimal(b, a), b.cmp(&a), "{b:?} vs {a:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// The fast comparison is `Decimal`'s order, for any pair and for a value against
        /// itself at every wider scale (numerically equal, differently written).
        #[test]
        fn fast_comparison_is_decimal_order(a in figure(), b in figure(), widen in 0u32..=28) {
            proptest::prop_assert_eq!(cmp_decimal(a, b), a.cmp(&b));
            proptest::prop_assert_eq!(cmp_decimal(b, a), b.cmp(&a));
            let mut wide = a;
            wide.rescale(a.scale().saturating_add(widen).min(28));
            if wide == a {
                proptest::prop_assert_eq!(cmp_decimal(a, wide), Ordering::Equal);
                proptest::prop_assert_eq!(cmp_decimal(wide, a), Ordering::Equal);
            }
            let (pa, pb) = (Price::new(a.abs()), Price::new(b.abs()));
            if let (Ok(pa), Ok(pb)) = (pa, pb) {
                proptest::prop_assert_eq!(pa.cmp(&pb), a.abs().cmp(&b.abs()));
                proptest::prop_assert_eq!(pa < pb, a.abs() < b.abs());
            }
        }

        /// The fast multiple test agrees with `Decimal`'s remainder.
        #[test]
        fn fast_multiple_is_decimal_remainder(
            step in figure(),
            times in -100_000i64..100_000,
            value in figure(),
            offset_scale in 0u32..=6,
        ) {
            let reference = |v: Decimal, s: Decimal| s.is_zero() || v.checked_rem(s).is_some_and(|r| r.is_zero());
            proptest::prop_assert_eq!(is_multiple(value, step), reference(value, step));
            if let Some(multiple) = step.checked_mul(Decimal::new(times, offset_scale)) {
                proptest::prop_assert_eq!(is_multiple(multiple, step), reference(multiple, step));
            }
        }
    }
}
