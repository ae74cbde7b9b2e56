//! Exact fixed-point figures for the check's pricing step.
//!
//! A [`Fx`] is a decimal held as an `i64` mantissa and its scale
//! (`value = mantissa / 10^scale`), the way `rust_decimal` holds it, so that every figure
//! keeps the scale `Decimal` arithmetic would give it and the check's responses stay the
//! same to the last digit. Addition, subtraction and multiplication give exactly what
//! `Decimal::checked_add`, `checked_sub` and `checked_mul` give (mantissa, scale and sign)
//! or decline with `None`: when a mantissa or a result does not fit 64 bits (the range
//! of every figure of an ordinary check: 18 significant digits), when a product's scale
//! would pass 28 (`Decimal` rounds it), and when `Decimal` would produce a negative zero
//! (negating a zero; a sign this type does not carry). The caller then prices with
//! `Decimal` itself, which stays the reference ([`crate::pretrade::check_reference`]).
//!
//! The gain over `Decimal` is in what is not done: no unpacking of the 96-bit words and
//! flags on every operation, no `Result` through memory; a multiplication is one
//! overflow-checked 64-bit multiplication, an addition at equal scales one
//! overflow-checked 64-bit addition.

use crate::Decimal;

/// The largest scale a `Decimal` can have.
const MAX_SCALE: u32 = 28;

/// `10^n` for `n <= 18` (those that fit an `i64`).
const POW10_I64: [i64; 19] = {
    let mut table = [1_i64; 19];
    let mut i = 1;
    while i < 19 {
        #[allow(clippy::arithmetic_side_effects)] // 10^18 < 2^63: in range
        {
            table[i] = table[i - 1] * 10;
            i += 1;
        }
    }
    table
};

/// The largest quotient that [`Fx::div_long`] lifts by up to nine places on `u64`:
/// `q x 10^9 + (10^9 - 1)` stays within 64 bits (and far below every `LIFT_LIMIT`).
// A positive power of ten, and a constant expression that cannot overflow.
#[allow(clippy::cast_sign_loss, clippy::arithmetic_side_effects)]
const SMALL_QUOTIENT: u64 = (u64::MAX - (POW10_I64[9] as u64 - 1)) / POW10_I64[9] as u64;

/// `floor((2^96 - 1) / 10^p)` for `p <= 9`: the largest 96-bit mantissa that can be
/// multiplied by `10^p` and stay within 96 bits.
const LIFT_LIMIT: [u128; 10] = {
    let mut table = [0_u128; 10];
    let mut i = 0;
    while i < 10 {
        #[allow(clippy::arithmetic_side_effects, clippy::cast_sign_loss)] // in range
        {
            table[i] = ((1_u128 << 96) - 1) / POW10_I64[i] as u128;
            i += 1;
        }
    }
    table
};

/// A decimal as an `i64` mantissa and a scale of at most 28; never a negative zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fx {
    /// The signed mantissa.
    m: i64,
    /// The number of decimal places.
    s: u32,
}

impl Fx {
    /// Zero as `Decimal::ZERO` is: scale 0.
    pub(crate) const ZERO: Self = Self { m: 0, s: 0 };

    /// One, scale 0.
    pub(crate) const ONE: Self = Self { m: 1, s: 0 };

    /// Takes a decimal apart; `None` when its mantissa does not fit an `i64`, and for a
    /// negative zero, which this type cannot carry.
    #[inline(always)]
    pub(crate) fn new(value: Decimal) -> Option<Self> {
        // `serialize` is the documented layout (flags, then the low, middle and high
        // 32-bit words, little-endian): read as words, it is a plain load.
        let [f0, f1, f2, f3, l0, l1, l2, l3, m0, m1, m2, m3, h0, h1, h2, h3] = value.serialize();
        let (flags, lo) = (
            u32::from_le_bytes([f0, f1, f2, f3]),
            u32::from_le_bytes([l0, l1, l2, l3]),
        );
        let (mid, hi) = (
            u32::from_le_bytes([m0, m1, m2, m3]),
            u32::from_le_bytes([h0, h1, h2, h3]),
        );
        if hi != 0 || mid >> 31 != 0 {
            return None;
        }
        // Below 2^63 (checked above): a non-negative `i64`, whose negation is in range.
        #[allow(clippy::cast_possible_wrap)]
        let magnitude = (u64::from(mid) << 32 | u64::from(lo)) as i64;
        let negative = flags >> 31 != 0;
        if negative && magnitude == 0 {
            return None;
        }
        Some(Self {
            m: if negative {
                magnitude.wrapping_neg()
            } else {
                magnitude
            },
            s: (flags >> 16) & 0xff,
        })
    }

    /// The decimal this is, scale included.
    #[inline(always)]
    #[must_use]
    pub(crate) fn get(self) -> Decimal {
        let u = self.m.unsigned_abs();
        // The truncations take the two 32-bit words of a 64-bit magnitude.
        #[allow(clippy::cast_possible_truncation)]
        Decimal::from_parts(u as u32, (u >> 32) as u32, 0, self.m < 0, self.s)
    }

    /// The value of [`Fx::parts`] `(m, s)` again; `s` is a scale an `Fx` had (at most 28).
    #[inline(always)]
    pub(crate) fn from_parts(m: i64, s: u32) -> Self {
        Self { m, s }
    }

    /// The mantissa and the scale.
    #[inline(always)]
    pub(crate) fn parts(self) -> (i64, u32) {
        (self.m, self.s)
    }

    /// True for zero.
    #[inline(always)]
    pub(crate) fn is_zero(self) -> bool {
        self.m == 0
    }

    /// True above zero.
    #[inline(always)]
    pub(crate) fn is_positive(self) -> bool {
        self.m > 0
    }

    /// The magnitude, scale kept (as `Decimal::abs`); `None` for the one `i64` whose
    /// magnitude does not fit.
    #[inline(always)]
    pub(crate) fn abs(self) -> Option<Self> {
        Some(Self {
            m: self.m.checked_abs()?,
            s: self.s,
        })
    }

    /// The negation (as `Decimal`'s `-`); `None` for zero, whose negation is a negative
    /// zero.
    #[inline(always)]
    pub(crate) fn neg(self) -> Option<Self> {
        if self.m == 0 {
            return None;
        }
        Some(Self {
            m: self.m.checked_neg()?,
            s: self.s,
        })
    }

    /// `self x other` as `Decimal::checked_mul` gives it: a zero factor gives
    /// `Decimal::ZERO` (scale 0); otherwise the product of the mantissas at the sum of
    /// the scales. `None` when the product does not fit 64 bits or its scale would pass
    /// 28 (where `Decimal` rounds).
    #[inline(always)]
    pub(crate) fn mul(self, other: Self) -> Option<Self> {
        if self.m == 0 || other.m == 0 {
            return Some(Self::ZERO);
        }
        // Two scales of at most 28 each: the sum cannot overflow.
        #[allow(clippy::arithmetic_side_effects)]
        let s = self.s + other.s;
        if s > MAX_SCALE {
            return None;
        }
        Some(Self {
            m: self.m.checked_mul(other.m)?,
            s,
        })
    }

    /// `self + other` as `Decimal::checked_add` gives it.
    #[inline(always)]
    pub(crate) fn add(self, other: Self) -> Option<Self> {
        self.add_sub(other, false)
    }

    /// `self - other` as `Decimal::checked_sub` gives it.
    #[inline(always)]
    pub(crate) fn sub(self, other: Self) -> Option<Self> {
        self.add_sub(other, true)
    }

    /// The order of the two values, as `Decimal`'s `cmp` gives it (`1.0 == 1.00`): equal
    /// scales compare mantissas; otherwise the mantissa at the smaller scale is lifted to
    /// the larger in 128 bits (a 64-bit mantissa times at most `10^18` cannot overflow),
    /// and a lift of more than 18 places is decided by its sign (`|m| x 10^19` is beyond
    /// every 64-bit mantissa). No division, no rescaling of `Decimal` words.
    #[inline(always)]
    pub(crate) fn cmp_value(self, other: Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match self.s.cmp(&other.s) {
            Ordering::Equal => self.m.cmp(&other.m),
            Ordering::Less => cmp_lifted(self.m, other.s.abs_diff(self.s), other.m),
            Ordering::Greater => cmp_lifted(other.m, self.s.abs_diff(other.s), self.m).reverse(),
        }
    }

    /// Whether `self` is a whole multiple of `step` (a zero step allows anything), as
    /// [`crate::num::is_multiple`] decides: the mantissa at the smaller scale lifted to
    /// the larger, then one 64-bit remainder. `None` when the lifted mantissa does not fit
    /// an `i64` (the caller then asks `is_multiple`).
    #[inline(always)]
    pub(crate) fn is_multiple_of(self, step: Self) -> Option<bool> {
        if step.m == 0 {
            return Some(true);
        }
        let lift = |m: i64, by: u32| m.checked_mul(*POW10_I64.get(by as usize)?);
        let (value, step) = match self.s.cmp(&step.s) {
            std::cmp::Ordering::Equal => (self.m, step.m),
            std::cmp::Ordering::Less => (lift(self.m, step.s.abs_diff(self.s))?, step.m),
            std::cmp::Ordering::Greater => (self.m, lift(step.m, self.s.abs_diff(step.s))?),
        };
        Some(value.unsigned_abs().checked_rem(step.unsigned_abs())? == 0)
    }

    /// `self / other` as `Decimal::checked_div` gives it when the division is exact at
    /// the dividend's scale: a zero dividend gives `Decimal::ZERO`; a quotient with no
    /// remainder, its scale the difference of the scales, is returned as it is (the
    /// fast path of `rust_decimal`'s division). `None` for everything else (a zero
    /// divisor, a remainder, a divisor with the larger scale), which [`Fx::quotient`]
    /// leaves to `Decimal`.
    #[inline(always)]
    pub(crate) fn div_exact(self, other: Self) -> Option<Self> {
        if other.m == 0 {
            return None;
        }
        if self.m == 0 {
            return Some(Self::ZERO);
        }
        let s = self.s.checked_sub(other.s)?;
        if self.m.checked_rem(other.m)? != 0 {
            return None;
        }
        Some(Self {
            m: self.m.checked_div(other.m)?,
            s,
        })
    }

    /// `self / other` as `Decimal::checked_div` gives it (`None` where it fails): on
    /// integers when the division is exact ([`Fx::div_exact`]) or has a divisor below
    /// 2^32 ([`Fx::div_long`]), by `Decimal` otherwise.
    #[inline(always)]
    pub(crate) fn quotient(self, other: Self) -> Option<Decimal> {
        if let Some(q) = self.div_exact(other) {
            return Some(q.get());
        }
        match self.div_long(other) {
            Some(q) => Some(q),
            None => self.get().checked_div(other.get()),
        }
    }

    /// `self / other` with a remainder, exactly as `rust_decimal` 1.43 divides by a
    /// divisor whose mantissa fits 32 bits: the integer quotient at the difference of the
    /// scales, then while a remainder is left, the quotient extended by as many places
    /// as fit (at most 9 a step, not past scale 28, the quotient within 96 bits) with the
    /// next digits of the long division; when no place fits, rounded half to even on the
    /// remainder; then trailing zeros stripped the way its `unscale` strips them (eight
    /// at a time only while the low 32 bits are zero, then four, two and one). `None`
    /// where that path would overflow or take another route (a zero operand, a divisor
    /// of 32 bits or more, a divisor with the larger scale).
    #[inline]
    pub(crate) fn div_long(self, other: Self) -> Option<Decimal> {
        if self.m == 0 || other.m == 0 {
            return None;
        }
        let d = u64::from(u32::try_from(other.m.unsigned_abs()).ok()?);
        let mut scale = self.s.checked_sub(other.s)?;
        let n = self.m.unsigned_abs();
        // `d` is not zero: the divisions below cannot fail; every product stays in range
        // (noted on each).
        let mut q = n.checked_div(d)?;
        let mut r = n.checked_rem(d)?;
        let strip = r != 0;
        // The first steps on `u64`: while `q <= SMALL_QUOTIENT`, `q x 10^p` plus digits
        // below `10^p` fits 64 bits for every `p <= 9`, and `q` is below every
        // `LIFT_LIMIT[p]`, so the step below takes `min(9, 28 - scale)` places, as the
        // `u128` loop after it would.
        while r != 0 && q <= SMALL_QUOTIENT {
            let p = 9.min(MAX_SCALE.saturating_sub(scale)) as usize;
            if p == 0 {
                // No place left: round half to even on the remainder (`r < 2^32`).
                let twice = r << 1;
                if twice > d || (twice == d && q & 1 == 1) {
                    q = q.checked_add(1)?;
                }
                r = 0;
                break;
            }
            #[allow(clippy::cast_sign_loss)] // a power of ten is positive
            let power = POW10_I64[p] as u64;
            // `p <= 28 - scale`: the scale stays at most 28.
            scale = scale.checked_add(p as u32)?;
            // `r < d < 2^32` and `power <= 10^9`: the product is below 2^62.
            let scaled = r.checked_mul(power)?;
            let digits = scaled.checked_div(d)?;
            // `q <= SMALL_QUOTIENT` and `digits < power`: within 64 bits.
            q = q.wrapping_mul(power).wrapping_add(digits);
            r = scaled.wrapping_sub(digits.wrapping_mul(d));
        }
        let mut q = u128::from(q);
        while r != 0 {
            let mut p = 9.min(MAX_SCALE.saturating_sub(scale)) as usize;
            while p > 0 && q > LIFT_LIMIT[p] {
                p = p.saturating_sub(1);
            }
            if p == 0 {
                // No place left: round half to even on the remainder (`r < 2^32`).
                let twice = r << 1;
                if twice > d || (twice == d && q & 1 == 1) {
                    q = q.checked_add(1).filter(|q| q >> 96 == 0)?;
                }
                break;
            }
            #[allow(clippy::cast_sign_loss)] // a power of ten is positive
            let power = POW10_I64[p] as u64;
            // `p <= 28 - scale`: the scale stays at most 28.
            scale = scale.checked_add(p as u32)?;
            // `r < d < 2^32` and `power <= 10^9`: the product is below 2^62.
            let scaled = r.checked_mul(power)?;
            let digits = scaled.checked_div(d)?;
            // `q <= LIFT_LIMIT[p]`: `q x 10^p` is within 96 bits, and the digits are below
            // `10^p`, so neither operation wraps (a sum past 96 bits is caught below).
            q = q
                .wrapping_mul(u128::from(power))
                .wrapping_add(u128::from(digits));
            r = scaled.wrapping_sub(digits.wrapping_mul(d));
            if q >> 96 != 0 {
                // `rust_decimal` rescales from the overflow here: left to it.
                return None;
            }
        }
        if strip {
            (q, scale) = strip_zeros(q, scale);
        }
        // The truncations take the three 32-bit words of a 96-bit mantissa.
        #[allow(clippy::cast_possible_truncation)]
        Some(Decimal::from_parts(
            q as u32,
            (q >> 32) as u32,
            (q >> 64) as u32,
            (self.m < 0) != (other.m < 0),
            scale,
        ))
    }

    /// Addition or subtraction with `Decimal`'s rules: a zero operand gives the other
    /// operand as it is (its own scale; negated when it is subtracted); otherwise the
    /// exact result at the larger scale (a zero result is a positive zero, as `Decimal`
    /// normalizes it). `None` when the operand with the smaller scale, lifted to the
    /// larger, or the result does not fit 64 bits.
    #[inline(always)]
    fn add_sub(self, other: Self, subtract: bool) -> Option<Self> {
        if self.m == 0 {
            return if subtract {
                // `0 - 0` is `other` itself (a positive zero here).
                Some(Self {
                    m: other.m.checked_neg()?,
                    s: other.s,
                })
            } else {
                Some(other)
            };
        }
        if other.m == 0 {
            return Some(self);
        }
        let (a, b, s) = if self.s == other.s {
            (self.m, other.m, self.s)
        } else if self.s < other.s {
            (lift(self.m, other.s.abs_diff(self.s))?, other.m, other.s)
        } else {
            (self.m, lift(other.m, self.s.abs_diff(other.s))?, self.s)
        };
        let m = if subtract {
            a.checked_sub(b)?
        } else {
            a.checked_add(b)?
        };
        Some(Self { m, s })
    }
}

/// Trailing zeros stripped from `q / 10^scale` as `rust_decimal`'s `unscale` strips them
/// after a division with a remainder: eight at a time only while the low 32 bits of the
/// mantissa are zero, then at most four, two and one, each only when the scale allows.
// Each subtraction is guarded by the scale test beside it; the divisors are constants.
#[allow(clippy::arithmetic_side_effects)]
#[inline]
fn strip_zeros(mut q: u128, mut scale: u32) -> (u128, u32) {
    // The truncation reads the low 32-bit word.
    #[allow(clippy::cast_possible_truncation)]
    while q as u32 == 0 && scale >= 8 && divides::<100_000_000>(q) {
        q /= 100_000_000;
        scale -= 8;
    }
    if q & 0xF == 0 && scale >= 4 && divides::<10_000>(q) {
        q /= 10_000;
        scale -= 4;
    }
    if q & 0x3 == 0 && scale >= 2 && divides::<100>(q) {
        q /= 100;
        scale -= 2;
    }
    if q & 0x1 == 0 && scale >= 1 && divides::<10>(q) {
        q /= 10;
        scale -= 1;
    }
    (q, scale)
}

/// Whether `M` divides `q`, on 64-bit remainders by a constant (multiplications, no
/// 128-bit division): `q = hi x 2^64 + lo`, so `q mod M` is
/// `((hi mod M) x (2^64 mod M) + lo mod M) mod M`, every term below `M^2 + M < 2^64`
/// for `M <= 10^8`.
#[inline(always)]
// The constants are non-zero and at most 10^8: the products and sums stay below 2^64.
#[allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]
fn divides<const M: u64>(q: u128) -> bool {
    let two64 = ((1_u128 << 64) % M as u128) as u64;
    let (hi, lo) = ((q >> 64) as u64, q as u64);
    ((hi % M) * two64 + lo % M).is_multiple_of(M)
}

/// `m x 10^by` against `other`, for `by > 0`.
#[inline(always)]
fn cmp_lifted(m: i64, by: u32, other: i64) -> std::cmp::Ordering {
    match POW10_I64.get(by as usize) {
        // `|m| < 2^63` and `10^by <= 10^18 < 2^60`: the product is below 2^123.
        #[allow(clippy::arithmetic_side_effects)]
        Some(&p) => (i128::from(m) * i128::from(p)).cmp(&i128::from(other)),
        // `|m x 10^by| >= 10^19 > |other|` unless `m` is zero.
        None if m == 0 => 0.cmp(&other),
        None => m.cmp(&0),
    }
}

/// `m x 10^by`; `None` when it does not fit an `i64`.
#[inline(always)]
fn lift(m: i64, by: u32) -> Option<i64> {
    m.checked_mul(*POW10_I64.get(by as usize)?)
}

#[cfg(test)]
// Test inputs negate and widen decimals in range (scales capped at 28).
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::Fx;
    use crate::Decimal;
    use proptest::prelude::*;

    /// A decimal's exact identity: mantissa, scale and the sign bit (a negative zero
    /// differs from a positive one).
    fn parts(d: Decimal) -> (i128, u32, bool) {
        (d.mantissa(), d.scale(), d.is_sign_negative())
    }

    /// `op` through `Fx`, when it does not decline, gives what `reference` gives.
    fn agrees(
        a: Decimal,
        b: Decimal,
        op: fn(Fx, Fx) -> Option<Fx>,
        reference: fn(Decimal, Decimal) -> Option<Decimal>,
    ) -> Result<(), TestCaseError> {
        let (Some(x), Some(y)) = (Fx::new(a), Fx::new(b)) else {
            return Ok(());
        };
        let Some(got) = op(x, y) else {
            return Ok(());
        };
        let want = reference(a, b);
        prop_assert!(
            want.is_some(),
            "{a} {b}: Fx gave {got:?}, Decimal overflowed"
        );
        let want = want.unwrap_or_default();
        prop_assert_eq!(
            parts(got.get()),
            parts(want),
            "{} and {}: Fx {:?}, Decimal {}",
            a,
            b,
            got,
            want
        );
        Ok(())
    }

    /// Decimals the way the check meets them: small and large mantissas, zeros, signs,
    /// scales 0-28, and equal values so that differences of zero come up.
    fn figure() -> impl Strategy<Value = Decimal> {
        let mantissa = prop_oneof![
            Just(0_i128),
            -1000_i128..1000,
            -(1_i128 << 40)..(1_i128 << 40),
            -(1_i128 << 63)..(1_i128 << 63),
            -(1_i128 << 64)..(1_i128 << 64),
            -(1_i128 << 96) + 1..(1_i128 << 96),
        ];
        (mantissa, 0_u32..=28, any::<bool>()).prop_map(|(m, s, neg_zero)| {
            let d = Decimal::from_i128_with_scale(m, s);
            if m == 0 && neg_zero {
                -d
            } else {
                d
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// The 64-bit multiple test decides as `num::is_multiple` wherever it answers, on
        /// figures of every size and scale and on steps made to divide them.
        #[test]
        fn multiples_on_integers_are_decimal_remainders(
            a in figure(),
            b in figure(),
            k in -1000_i64..1000,
            step_of_a in any::<bool>(),
        ) {
            // Half the cases: `a` is `k` steps of `b`, so that true answers are common.
            let a = match (step_of_a, b.checked_mul(Decimal::from(k))) {
                (true, Some(multiple)) => multiple,
                _ => a,
            };
            if let (Some(x), Some(y)) = (Fx::new(a), Fx::new(b)) {
                if let Some(got) = x.is_multiple_of(y) {
                    prop_assert_eq!(got, crate::num::is_multiple(a, b), "{} of {}", a, b);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn fixed_operations_are_decimal_operations(
            a in figure(),
            b in figure(),
            same in any::<bool>(),
            widen in 0_u32..=3,
        ) {
            // Half the time the second operand is the first, maybe rewritten at a larger
            // scale, so that sums and differences of zero are common.
            let b = if same {
                let mut b = a;
                b.rescale((a.scale() + widen).min(28));
                b
            } else {
                b
            };
            agrees(a, b, Fx::add, |x, y| x.checked_add(y))?;
            agrees(a, b, Fx::sub, |x, y| x.checked_sub(y))?;
            agrees(a, b, Fx::mul, |x, y| x.checked_mul(y))?;
            agrees(a, b, Fx::div_exact, |x, y| x.checked_div(y))?;
            // A product divided by one of its factors is exact: the fast path is taken.
            if let (Some(x), Some(y)) = (Fx::new(a), Fx::new(b)) {
                if let Some(p) = x.mul(y) {
                    agrees(p.get(), b, Fx::div_exact, |x, y| x.checked_div(y))?;
                }
                let q = x.quotient(y).map(parts);
                prop_assert_eq!(q, a.checked_div(b).map(parts));
            }
            agrees(b, a, Fx::sub, |x, y| x.checked_sub(y))?;
            agrees(-a, b, Fx::add, |x, y| x.checked_add(y))?;
            if let Some(x) = Fx::new(a) {
                prop_assert_eq!(parts(x.get()), parts(a));
                if let Some(m) = x.abs() {
                    prop_assert_eq!(parts(m.get()), parts(a.abs()));
                }
                if let Some(n) = x.neg() {
                    prop_assert_eq!(parts(n.get()), parts(-a));
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(50_000))]

        #[test]
        fn long_division_is_decimal_division(
            n in prop_oneof![
                -1000_i64..1000,
                any::<i64>(),
                -(1_i64 << 40)..(1_i64 << 40),
            ],
            d in prop_oneof![1_i64..20, 1_i64..100_000, -(1_i64 << 32) + 1..(1_i64 << 32)],
            scales in (0_u32..=28, 0_u32..=28),
            tie in any::<bool>(),
        ) {
            // Half the time the dividend is an odd multiple of half the divisor, so the
            // last digit is a tie that must round to even.
            let n = if tie && d % 2 == 0 { (n % 1_000_000).saturating_mul(d).saturating_add(d / 2) } else { n };
            let (a, b) = (Decimal::new(n, scales.0), Decimal::new(d, scales.1));
            let (Some(x), Some(y)) = (Fx::new(a), Fx::new(b)) else {
                return Ok(());
            };
            if let Some(q) = x.div_long(y) {
                let want = a.checked_div(b);
                prop_assert_eq!(Some(parts(q)), want.map(parts), "{} / {}", a, b);
            }
            prop_assert_eq!(x.quotient(y).map(parts), a.checked_div(b).map(parts), "{} / {}", a, b);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// The integer comparison orders as `Decimal` does, on figures of every size and
        /// scale, half of them one value written at two scales (equal values), and
        /// through the `Decimal` entry point on every pair (negative zeros included).
        #[test]
        fn comparison_on_integers_is_decimal_order(
            a in figure(),
            b in figure(),
            same in any::<bool>(),
            widen in 0_u32..=20,
        ) {
            let b = if same {
                let mut b = a;
                b.rescale((a.scale() + widen).min(28));
                b
            } else {
                b
            };
            if let (Some(x), Some(y)) = (Fx::new(a), Fx::new(b)) {
                prop_assert_eq!(x.cmp_value(y), a.cmp(&b), "{} against {}", a, b);
                prop_assert_eq!(y.cmp_value(x), b.cmp(&a), "{} against {}", b, a);
            }
            prop_assert_eq!(crate::num::cmp_decimal(a, b), a.cmp(&b), "{} against {}", a, b);
        }
    }

    proptest! {
        #[test]
        fn remainders_by_constants_are_remainders(q in 0_u128..(1 << 96), k in 0_u32..=20) {
            // Multiples of each power of ten come up as often as other values.
            let q = if k < 10 { q / 100_000_000 * 100_000_000 * 10_u128.pow(k) % (1 << 96) } else { q };
            prop_assert_eq!(super::divides::<10>(q), q % 10 == 0);
            prop_assert_eq!(super::divides::<100>(q), q % 100 == 0);
            prop_assert_eq!(super::divides::<10_000>(q), q % 10_000 == 0);
            prop_assert_eq!(super::divides::<100_000_000>(q), q % 100_000_000 == 0);
        }
    }

    #[test]
    fn long_division_covers_ratios_of_a_check() {
        let d = |s: &str| s.parse::<Decimal>().expect("literal");
        let f = |s: &str| Fx::new(d(s)).expect("in range");
        for (a, b) in [
            ("1234.5678", "1000123.45"),
            ("50000.000", "5000000"),
            ("1", "3"),
            ("2", "3"),
            ("1", "4"),
            ("0.5", "8"),
            ("100", "7"),
            ("-1", "6"),
            // Exact quotients (the remainder runs out on the `u64` steps).
            ("10", "4"),
            ("1.000", "8"),
            ("-3.0000", "0.0016"),
            // Ties at the 28th place: half rounds to even, down from 0 and up from 1.
            ("0.0000000000000000000000000001", "2"),
            ("0.0000000000000000000000000003", "2"),
            ("-0.0000000000000000000000000005", "2"),
            // At the largest scale from the start, and with no place left after one step.
            ("0.0000000000000000000000000001", "3"),
            ("0.0000000000000000000000000022", "7"),
            ("0.0000000000000000001", "3"),
            // Large quotients: past the `u64` steps at once, or after one.
            ("9223372036854775807", "7"),
            ("9223372036854775807", "4294967295"),
            ("18446744.073709551", "3"),
            ("1", "4294967295"),
            ("-922337203.6854775807", "0.0000000003"),
        ] {
            let got = f(a)
                .div_long(f(b))
                .unwrap_or_else(|| panic!("{a} / {b} declined the integer path"));
            assert_eq!(
                parts(got),
                parts(d(a).checked_div(d(b)).expect("in range")),
                "{a} / {b}"
            );
        }
    }

    #[test]
    fn the_fast_path_covers_the_figures_of_a_check() {
        // The common shapes must not decline: prices, quantities and balances at
        // different scales, sums that cancel to a positive zero.
        let d = |s: &str| s.parse::<Decimal>().expect("literal");
        let f = |s: &str| Fx::new(d(s)).expect("not a negative zero");
        let cases: [(&str, &str); 6] = [
            ("50000.5", "0.001"),
            ("1000000", "-1234.5678"),
            ("0.1", "0.10"),
            ("1.5", "1.50"),
            ("99999999.99", "123456.789"),
            ("0", "-2.5"),
        ];
        for (a, b) in cases {
            for (got, want) in [
                (f(a).add(f(b)), d(a).checked_add(d(b))),
                (f(a).sub(f(b)), d(a).checked_sub(d(b))),
                (f(a).mul(f(b)), d(a).checked_mul(d(b))),
            ] {
                let got = got.map(Fx::get).expect("on the fast path");
                let want = want.expect("in range");
                assert_eq!(parts(got), parts(want), "{a} {b}");
            }
        }
        // A difference of zero is a positive zero at the larger scale, whatever the signs.
        for (a, b) in [("-1.5", "-1.50"), ("-2", "-2"), ("-0.1", "0.1")] {
            let (got, want) = if a.starts_with('-') && b.starts_with('-') {
                (f(a).sub(f(b)), d(a).checked_sub(d(b)))
            } else {
                (f(a).add(f(b)), d(a).checked_add(d(b)))
            };
            let want = want.expect("in range");
            assert!(!want.is_sign_negative(), "{a} {b}");
            assert_eq!(got.map(|x| parts(x.get())), Some(parts(want)), "{a} {b}");
        }
        // Negating a zero gives `Decimal`'s negative zero: declined.
        assert_eq!(Fx::ZERO.neg(), None);
        // A product needing a scale above 28 is rounded by `Decimal`: declined.
        assert_eq!(f("0.00000000000001").mul(f("0.000000000000001")), None);
        // A negative zero cannot be taken apart.
        assert_eq!(Fx::new(-Decimal::ZERO), None);
    }
}
