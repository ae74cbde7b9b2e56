//! The detectors' sorts of `(group, time, payload)` keys by their digits.
//!
//! Both sweeps sort one key per trade: hedging's opens by (symbol, open time, account and
//! side), copy trading's by (symbol and direction, open time, account). A comparison sort
//! of a million such keys makes about 20 comparisons a key; here the three fields are
//! packed into one `u64` of as few bits as their ranges need (the time as an offset from
//! the earliest, in the coarsest of seconds, milliseconds, microseconds or nanoseconds
//! that holds every offset exactly) and sorted by a least-significant-digit radix sort
//! of at most 11 bits a digit: a counting pass, then one stable scatter per digit. Keys
//! whose fields need more than 64 bits together are sorted by comparison instead. The
//! order is the tuple order either way, so callers see the same sorted sequence (ties on
//! all three fields keep no particular order, as with an unstable sort).

use std::mem;

/// The widest digit: 2,048 counters a digit stay in the first-level cache.
const DIGIT_BITS: u32 = 11;

/// Time units tried for the offsets, coarsest first, as divisors of nanoseconds.
const UNITS: [u64; 4] = [1_000_000_000, 1_000_000, 1_000, 1];

/// `x` is a whole number of `UNITS[unit]` (constant divisors: a multiply, not a division).
fn whole(x: u64, unit: usize) -> bool {
    match unit {
        0 => x.is_multiple_of(1_000_000_000),
        1 => x.is_multiple_of(1_000_000),
        2 => x.is_multiple_of(1_000),
        _ => true,
    }
}

/// `x` in `UNITS[unit]`.
fn scaled(x: u64, unit: usize) -> u64 {
    match unit {
        0 => x / 1_000_000_000,
        1 => x / 1_000_000,
        2 => x / 1_000,
        _ => x,
    }
}

/// Bits needed to write `x` (0 for 0).
fn bits(x: u64) -> u32 {
    u64::BITS.saturating_sub(x.leading_zeros())
}

/// How `(group, time, payload)` keys pack into a `u64` that sorts as the tuple: the
/// group in the top bits, the time offset in its unit next, the payload lowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packing {
    /// The earliest time.
    from: i64,
    /// Index of the time unit in [`UNITS`].
    unit: usize,
    /// Bits of the time offset.
    time_bits: u32,
    /// Bits of the payload.
    payload_bits: u32,
    /// Bits of all three fields.
    total_bits: u32,
}

impl Packing {
    /// The packing of `keys`, `None` when they need more than 64 bits.
    fn of<V>(keys: &[(u32, i64, u32, V)]) -> Option<Self> {
        let first = keys.first()?;
        let (mut from, mut to) = (first.1, first.1);
        let (mut groups, mut payloads) = (0_u32, 0_u32);
        for k in keys {
            from = from.min(k.1);
            to = to.max(k.1);
            groups |= k.0;
            payloads |= k.2;
        }
        let mut unit = 0;
        for k in keys {
            while !whole(offset(k.1, from), unit) {
                unit = unit.saturating_add(1);
            }
        }
        let time_bits = bits(scaled(offset(to, from), unit));
        let payload_bits = bits(u64::from(payloads));
        let total_bits = bits(u64::from(groups))
            .saturating_add(time_bits)
            .saturating_add(payload_bits);
        (total_bits <= u64::BITS).then_some(Self {
            from,
            unit,
            time_bits,
            payload_bits,
            total_bits,
        })
    }

    fn pack(&self, group: u32, time: i64, payload: u32) -> u64 {
        let time = scaled(offset(time, self.from), self.unit);
        // `checked_shl` is `None` only for a shift of 64, where the field is empty (0).
        let high = u64::from(group)
            .checked_shl(self.time_bits.saturating_add(self.payload_bits))
            .unwrap_or(0);
        high | time.checked_shl(self.payload_bits).unwrap_or(0) | u64::from(payload)
    }

    fn unpack(&self, key: u64) -> (u32, i64, u32) {
        let low = |x: u64, n: u32| {
            x & u64::MAX
                .checked_shr(u64::BITS.saturating_sub(n))
                .unwrap_or(0)
        };
        let payload = low(key, self.payload_bits);
        let rest = key.checked_shr(self.payload_bits).unwrap_or(0);
        let time = low(rest, self.time_bits);
        let group = rest.checked_shr(self.time_bits).unwrap_or(0);
        let nanos = time.wrapping_mul(UNITS.get(self.unit).copied().unwrap_or(1));
        (
            u32::try_from(group).unwrap_or(u32::MAX),
            self.from.wrapping_add_unsigned(nanos),
            u32::try_from(payload).unwrap_or(u32::MAX),
        )
    }
}

/// `time - from` for `time >= from`, exact as an unsigned number.
fn offset(time: i64, from: i64) -> u64 {
    time.wrapping_sub(from).cast_unsigned()
}

/// `keys` sorted by `(group, time, payload)`; each key's value travels with it.
pub(super) fn sort_keys<V: Copy>(keys: Vec<(u32, i64, u32, V)>) -> Vec<(u32, i64, u32, V)> {
    let Some(packing) = Packing::of(&keys) else {
        let mut keys = keys;
        keys.sort_unstable_by_key(|k| (k.0, k.1, k.2));
        return keys;
    };
    let packed: Vec<(u64, V)> = keys
        .iter()
        .map(|k| (packing.pack(k.0, k.1, k.2), k.3))
        .collect();
    drop(keys);
    radix_sort(packed, packing.total_bits)
        .into_iter()
        .map(|(key, v)| {
            let (g, t, p) = packing.unpack(key);
            (g, t, p, v)
        })
        .collect()
}

/// `items` sorted by their `u64` keys, of which only the low `bits` may be set: one pass
/// counts every digit, then one stable scatter per digit, least significant first (a
/// digit with one value throughout is skipped).
fn radix_sort<V: Copy>(items: Vec<(u64, V)>, bits: u32) -> Vec<(u64, V)> {
    let len = items.len();
    let passes = bits.div_ceil(DIGIT_BITS).max(1);
    let width = bits.div_ceil(passes);
    let buckets = 1_usize << width;
    let mask = (1_u64 << width).wrapping_sub(1);
    // Digits are `width <= 11` bits: a masked digit always fits a `usize`.
    let digit = |key: u64, shift: u32| (key.wrapping_shr(shift) & mask) as usize;
    let shifts: Vec<u32> = (0..passes).map(|p| p.wrapping_mul(width)).collect();
    let mut counts = vec![0_usize; buckets.wrapping_mul(shifts.len())];
    for &(key, _) in &items {
        let mut base = 0_usize;
        for &shift in &shifts {
            if let Some(n) = counts.get_mut(base.wrapping_add(digit(key, shift))) {
                *n = n.wrapping_add(1);
            }
            base = base.wrapping_add(buckets);
        }
    }
    let mut from = items;
    let mut to = from.clone();
    for (&shift, count) in shifts.iter().zip(counts.chunks_exact_mut(buckets)) {
        if count.contains(&len) {
            continue;
        }
        // Exclusive prefix sums: where each digit's items start.
        let mut sum = 0_usize;
        for n in count.iter_mut() {
            let here = *n;
            *n = sum;
            sum = sum.wrapping_add(here);
        }
        for &(key, v) in &from {
            if let Some(next) = count.get_mut(digit(key, shift)) {
                if let Some(slot) = to.get_mut(*next) {
                    *slot = (key, v);
                }
                *next = next.wrapping_add(1);
            }
        }
        mem::swap(&mut from, &mut to);
    }
    from
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(mut keys: Vec<(u32, i64, u32, u16)>) -> Vec<(u32, i64, u32, u16)> {
        // Full order (the value last) so that ties compare equal as sequences too.
        keys.sort_unstable();
        keys
    }

    /// Times of one kind per list: whole seconds, milliseconds (negative too),
    /// microseconds or nanoseconds near each other (the radix sort), or any `i64` mixed in
    /// (the packing does not fit and the comparison sort takes over).
    fn arb_time(kind: u8) -> BoxedStrategy<i64> {
        const FROM: i64 = 1_746_403_200_000_000_000;
        match kind {
            0 => (0_i64..100_000)
                .prop_map(|s| FROM + s * 1_000_000_000)
                .boxed(),
            1 => (-100_000_i64..100_000).prop_map(|s| s * 1_000_000).boxed(),
            2 => (0_i64..1_000_000_000)
                .prop_map(|s| FROM + s * 1_000)
                .boxed(),
            3 => (0_i64..1_000_000).prop_map(|s| FROM + s).boxed(),
            _ => prop_oneof![(0_i64..100_000).prop_map(|s| FROM + s), any::<i64>()].boxed(),
        }
    }

    /// Lists of keys whose times are of one kind ([`arb_time`]), groups and payloads of
    /// a small or the full range.
    fn arb_keys(len: usize) -> impl Strategy<Value = Vec<(u32, i64, u32, u16)>> {
        (0_u8..5, any::<bool>(), any::<bool>()).prop_flat_map(
            move |(kind, wide_group, wide_payload)| {
                let group = if wide_group {
                    any::<u32>().boxed()
                } else {
                    (0_u32..40).boxed()
                };
                let payload = if wide_payload {
                    any::<u32>().boxed()
                } else {
                    (0_u32..30_000).boxed()
                };
                prop::collection::vec((group, arb_time(kind), payload, any::<u16>()), 0..len)
            },
        )
    }

    proptest! {
        /// The radix sort gives the tuple order of a comparison sort, with every key's
        /// value beside it.
        #[test]
        fn sort_keys_equals_a_comparison_sort(keys in arb_keys(400)) {
            let expected = reference(keys.clone());
            let out = sort_keys(keys);
            // The same keys in the same tuple order; ties on the three fields may hold
            // their values in any order, so those are compared as a multiset.
            let fields = |v: &[(u32, i64, u32, u16)]| v.iter().map(|k| (k.0, k.1, k.2)).collect::<Vec<_>>();
            prop_assert_eq!(fields(&out), fields(&expected));
            prop_assert_eq!(reference(out), expected);
        }

        /// Packing keeps the three fields and their order.
        #[test]
        fn packing_round_trips_and_keeps_the_order(keys in arb_keys(40)) {
            if let Some(p) = Packing::of(&keys) {
                for a in &keys {
                    prop_assert_eq!(p.unpack(p.pack(a.0, a.1, a.2)), (a.0, a.1, a.2));
                    for b in &keys {
                        prop_assert_eq!(
                            p.pack(a.0, a.1, a.2).cmp(&p.pack(b.0, b.1, b.2)),
                            (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2))
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn units_and_widths() {
        let s = 1_000_000_000_i64;
        let keys = [
            (3_u32, 10 * s, 5_u32, ()),
            (0, 12 * s, 0, ()),
            (1, 11 * s, 7, ()),
        ];
        let p = Packing::of(&keys).unwrap();
        assert_eq!(
            (p.from, p.unit, p.time_bits, p.payload_bits),
            (10 * s, 0, 2, 3)
        );
        assert_eq!(p.total_bits, 7);
        // Kinds 0 to 3 of `arb_time` with small groups and payloads fit: the proptest
        // runs the radix sort on them.
        for t in [
            100_000 * s,
            200_000 * 1_000_000,
            1_000_000_000 * 1_000,
            1_000_000,
        ] {
            let keys = [
                (39_u32, 1_746_403_200 * s, 29_999_u32, ()),
                (0, 1_746_403_200 * s + t, 0, ()),
            ];
            assert!(Packing::of(&keys).is_some());
        }
        let keys = [(0_u32, 1_i64, 0_u32, ()), (0, 1_001, 0, ())];
        assert_eq!(Packing::of(&keys).unwrap().unit, 2);
        let keys = [(u32::MAX, i64::MIN, u32::MAX, ()), (0, i64::MAX, 0, ())];
        assert_eq!(Packing::of(&keys), None);
        assert_eq!(sort_keys::<()>(Vec::new()), Vec::new());
        let one = vec![(7_u32, -5_i64, 9_u32, 'x')];
        assert_eq!(sort_keys(one.clone()), one);
    }
}
