//! The `tier_ladder` target: arbitrary tier definitions through `TierLadder::new`, and
//! every lookup of a ladder that exists checked against the ladder's documented shape.

use arbitrary::{Arbitrary, Unstructured};
use risk_core::margin::{Tier, TierLadder};
use risk_core::model::Side;
use risk_core::num::{Leverage, Money, Notional, Price, Quantity, Ratio};
use risk_core::Decimal;

use crate::input::Dec;

/// One tier: floors are chained from the previous cap unless `raw_floor` is set.
#[derive(Debug, Clone, Arbitrary)]
pub struct TierIn {
    raw_floor: Option<Dec>,
    cap: Option<Dec>,
    rate: Dec,
    leverage: Dec,
    inactive: bool,
}

/// A ladder definition.
#[derive(Debug, Clone, Arbitrary)]
pub struct LadderIn {
    tiers: Vec<TierIn>,
}

impl LadderIn {
    /// The tiers, or `None` when a field is outside its newtype's range (that is the
    /// newtype's check, not the ladder's).
    fn tiers(&self) -> Option<Vec<Tier>> {
        let mut out = Vec::new();
        let mut floor = Decimal::ZERO;
        for t in self.tiers.iter().take(8) {
            let f = t.raw_floor.map_or(floor, Dec::get);
            let cap = match t.cap {
                Some(c) => Some(Notional::new(c.get().abs()).ok()?),
                None => None,
            };
            out.push(Tier {
                floor: Notional::new(f).ok()?,
                cap,
                maintenance_rate: Ratio::new(t.rate.get().abs()).ok()?,
                max_leverage: Leverage::new(t.leverage.get().abs()).ok()?,
                active: !t.inactive,
            });
            floor = cap.map_or(f, Notional::get);
        }
        Some(out)
    }

    pub(crate) fn ladder(&self) -> Option<TierLadder> {
        TierLadder::new(self.tiers()?).ok()
    }
}

/// Notionals to probe a ladder at: every boundary, a step either side, and extremes.
fn probe_points(ladder: &TierLadder, extra: &[Dec]) -> Vec<Decimal> {
    let step = Decimal::new(1, 8);
    let mut points = vec![Decimal::ZERO, step, Decimal::ONE, Decimal::MAX];
    for t in ladder.tiers() {
        for b in [Some(t.floor), t.cap].into_iter().flatten() {
            let b = b.get();
            points.push(b);
            points.extend(b.checked_sub(step).filter(|v| *v >= Decimal::ZERO));
            points.extend(b.checked_add(step));
        }
    }
    points.extend(extra.iter().map(|d| d.get().abs()));
    points.sort();
    points.dedup();
    points
}

/// Checks every lookup of a valid ladder.
fn check_ladder(ladder: &TierLadder, extra: &[Dec], liq: &[LiqIn]) {
    let tiers = ladder.tiers();
    assert!(!tiers.is_empty());
    assert_eq!(tiers[0].floor, Notional::ZERO);
    assert_eq!(ladder.maintenance_amount(0), Money::ZERO);
    let points = probe_points(ladder, extra);
    let mut previous: Option<Decimal> = None;
    for &p in &points {
        let n = Notional::new(p).unwrap_or(Notional::ZERO);
        let k = ladder.tier_index(n);
        assert!(k < tiers.len());
        assert!(tiers[k].floor <= n, "tier {k} floor above {n}");
        if k + 1 < tiers.len() {
            assert!(tiers[k].cap.is_some_and(|c| n < c), "{n} beyond tier {k}");
        }
        assert_eq!(ladder.max_leverage_at(n), tiers[k].max_leverage);
        assert_eq!(
            ladder.is_open_at(n),
            ladder.open_limit().is_none_or(|l| n <= l)
        );
        let Ok(mm) = ladder.maintenance_margin(n) else {
            // Overflow is an error, and then it stays an error further up (monotone).
            previous = None;
            continue;
        };
        let mm = mm.get();
        // Decimal keeps 28 significant digits: where `N * MMR_k` and `cum_k` need more
        // (huge notionals, rates with many decimals) the result is rounded at the scale
        // of the notional's last kept digit. Within that the shape must hold; realistic
        // ladders compute exactly, so this is no looser for them.
        // At tiny notionals the rounding is one unit of Decimal's last place (1e-28),
        // which `p * 1e-27` cannot express: the slack is at least that unit.
        let slack = (p * Decimal::new(1, 27)).max(Decimal::new(1, 28));
        assert!(mm >= -slack, "negative maintenance {mm} at {n}");
        assert!(
            p.checked_add(slack).is_none_or(|top| mm <= top),
            "maintenance {mm} above notional {n}"
        );
        if let (Some(prev), Some(top)) = (previous, mm.checked_add(slack)) {
            assert!(
                prev <= top,
                "maintenance decreases before {n}: {prev} > {mm}"
            );
        }
        previous = Some(mm);
    }
    // Continuity: at each boundary the lower tier's formula gives the ladder's value.
    for (k, t) in tiers.iter().enumerate() {
        let Some(cap) = t.cap else { continue };
        if k + 1 == tiers.len() {
            continue;
        }
        let Ok(at_cap) = ladder.maintenance_margin(cap) else {
            continue;
        };
        let from_below = cap
            .get()
            .checked_mul(t.maintenance_rate.get())
            .and_then(|g| g.checked_sub(ladder.maintenance_amount(k).get()));
        if let Some(from_below) = from_below {
            // Exact unless the product needed more than 28 digits and was rounded.
            let tolerance = Decimal::new(1, 20).max(cap.get() * Decimal::new(1, 26));
            assert!(
                (from_below - at_cap.get()).abs() <= tolerance,
                "discontinuous at {cap}: {from_below} from below, {at_cap} above"
            );
        }
    }
    for l in liq.iter().take(4) {
        check_liquidation(ladder, l);
    }
}

/// An isolated position for the liquidation-price check.
#[derive(Debug, Clone, Arbitrary)]
pub struct LiqIn {
    short: bool,
    quantity: Dec,
    entry: Dec,
    margin: Dec,
    multiplier: Dec,
}

fn check_liquidation(ladder: &TierLadder, l: &LiqIn) {
    let side = if l.short { Side::Sell } else { Side::Buy };
    let (Ok(quantity), Ok(entry)) = (
        Quantity::new(l.quantity.get().abs()),
        Price::new(l.entry.get().abs()),
    ) else {
        return;
    };
    let margin = l.margin.get();
    let multiplier = l.multiplier.get();
    let Ok(result) = ladder.liquidation_price_isolated(
        side,
        quantity,
        entry,
        Money::new(margin).unwrap_or_default(),
        multiplier,
    ) else {
        return;
    };
    let Some(price) = result else { return };
    assert!(price.get() > Decimal::ZERO);
    // Equity meets maintenance at the price: margin + s * size * (P - entry) = MM(size * P),
    // up to the rounding of the final divisions (relative to the entry notional).
    let size = quantity.get() * multiplier.abs();
    let check = || -> Option<(Decimal, Decimal, Decimal)> {
        let notional = size.checked_mul(price.get())?;
        let entry_notional = size.checked_mul(entry.get())?;
        let pnl = side
            .sign()
            .checked_mul(notional.checked_sub(entry_notional)?)?;
        let equity = margin.checked_add(pnl)?;
        let mm = ladder
            .maintenance_margin(Notional::new(notional).ok()?)
            .ok()?
            .get();
        let scale = entry_notional
            .abs()
            .max(margin.abs())
            .max(notional)
            .max(Decimal::ONE);
        Some((equity, mm, scale))
    };
    if let Some((equity, mm, scale)) = check() {
        // Values near 1e28 lose digits in every operation: only check where they fit.
        if scale < Decimal::from(10_i64.pow(15)) && size >= Decimal::new(1, 6) {
            // The price is rounded to its last decimal place: at the position's size that
            // moves equity and maintenance by up to size * (1 + rate) * one unit of it.
            let price_step = Decimal::new(1, price.get().scale());
            let rounding = size.checked_mul(price_step * Decimal::TWO);
            let Some(rounding) = rounding else { return };
            let tolerance = scale * Decimal::new(1, 12) / size.min(Decimal::ONE) + rounding;
            assert!(
                (equity - mm).abs() <= tolerance,
                "liquidation price {price}: equity {equity} vs maintenance {mm}"
            );
        }
    }
}

/// Input of the `tier_ladder` target.
#[derive(Debug, Clone, Arbitrary)]
pub struct TierLadderInput {
    ladder: LadderIn,
    probes: Vec<Dec>,
    positions: Vec<LiqIn>,
}

/// `tier_ladder`: arbitrary tiers through [`TierLadder::new`]; a valid ladder is probed
/// everywhere (tier lookup, leverage, maintenance margin non-negative, non-decreasing,
/// continuous at boundaries, liquidation price balancing equity and maintenance).
///
/// # Panics
/// When a property fails.
pub fn tier_ladder(data: &[u8]) {
    let Ok(input) = TierLadderInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let Some(tiers) = input.ladder.tiers() else {
        return;
    };
    match TierLadder::new(tiers.clone()) {
        Ok(ladder) => {
            assert_eq!(ladder.tiers(), tiers.as_slice());
            // The documented invariants hold for every ladder that exists.
            for (k, t) in tiers.iter().enumerate() {
                assert!(t.maintenance_rate.get() > Decimal::ZERO);
                assert!(t.maintenance_rate.get() < Decimal::ONE);
                if k > 0 {
                    let p = &tiers[k - 1];
                    assert_eq!(p.cap, Some(t.floor));
                    assert!(p.maintenance_rate <= t.maintenance_rate);
                    assert!(p.max_leverage >= t.max_leverage);
                    assert!(p.active || !t.active);
                }
            }
            check_ladder(&ladder, &input.probes, &input.positions);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
