//! Margin-tier ladders: progressive maintenance margin, tier caps on leverage, initial
//! margin and the isolated liquidation price.
//!
//! A [`TierLadder`] is a per-symbol schedule of [`Tier`]s keyed by position notional. Each
//! tier carries a maintenance margin rate (MMR) and a maximum leverage; the larger the
//! position, the higher the rate and the lower the leverage.
//!
//! # Maintenance margin is progressive
//! Like an income-tax schedule, the rate of tier `k` applies only to the slice of notional
//! that lies inside tier `k`. For a notional `N` that falls in tier `k` this sum has the
//! closed form
//!
//! ```text
//! MM(N) = N * MMR_k - cum_k
//! cum_0 = 0
//! cum_k = floor_k * (MMR_k - MMR_{k-1}) + cum_{k-1}
//! ```
//!
//! where `cum_k` is the tier's *maintenance amount* (Binance's term). Because `cum_k` is
//! exactly the correction that makes tier `k`'s formula agree with tier `k-1`'s at
//! `floor_k`, maintenance margin is continuous at every boundary, and because rates do not
//! decrease it is non-decreasing (and convex) in `N`.
//!
//! # Conventions
//! * Tier indices are 0-based everywhere, in the API and in error messages.
//! * A notional `N` belongs to the tier with `floor <= N < cap`: a notional exactly at a
//!   boundary belongs to the *upper* tier. (Binance publishes brackets as
//!   `floor < N <= cap`; maintenance margin is the same either way because it is
//!   continuous, only the leverage cap at the exact boundary differs, and this ladder takes
//!   the stricter one.)
//! * A notional at or beyond the cap of a bounded last tier is treated as lying in the last
//!   tier for maintenance margin and liquidation (the position can drift there through
//!   price moves alone), but it is not open for new exposure: see [`TierLadder::is_open_at`].
//! * Inactive tiers (`active: false`) may appear only as a suffix, at the top of the
//!   ladder; an inactive tier below an active one is a validation error. Inactive tiers
//!   still count for maintenance margin, maintenance amounts and liquidation, so that a
//!   position carried into them by the market is margined continuously; they are closed to
//!   new exposure. The largest notional open to new exposure is [`TierLadder::open_limit`].
//!
//! All arithmetic is exact decimal arithmetic with checked operations; nothing here rounds,
//! performs I/O or panics except where a `# Panics` section says so.

use rust_decimal::Decimal;

use crate::fixed::Fx;
use crate::model::Side;
use crate::num::{self, ArithmeticError, Leverage, Money, Notional, Price, Quantity, Ratio};

/// One bracket of a margin-tier ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Tier {
    /// The smallest position notional in this tier (inclusive). The first tier's is 0;
    /// every other tier's equals the previous tier's cap.
    pub floor: Notional,
    /// The notional where this tier ends (exclusive); `None` for an unbounded last tier.
    pub cap: Option<Notional>,
    /// Maintenance margin rate applied to the slice of notional inside this tier; strictly
    /// between 0 and 1.
    pub maintenance_rate: Ratio,
    /// The highest leverage allowed for a position whose notional lies in this tier.
    pub max_leverage: Leverage,
    /// Whether the tier is open for new exposure. Inactive tiers may only form the top of
    /// the ladder (see the [module docs](self)). Defaults to true in config files.
    #[cfg_attr(feature = "serde", serde(default = "crate::num::default_true"))]
    pub active: bool,
}

/// Why a list of tiers was refused as a ladder. Tier indices are 0-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LadderError {
    /// The ladder has no tiers.
    #[error("a margin-tier ladder needs at least one tier")]
    Empty,
    /// The first tier does not start at a notional of zero.
    #[error("tier 0 must start at notional 0, but its floor is {floor}")]
    FirstFloorNotZero {
        /// The first tier's floor.
        floor: Notional,
    },
    /// A tier starts above the previous tier's cap, leaving notionals uncovered.
    #[error("gap before tier {index}: tier {prev} ends at {previous_cap} but tier {index} starts at {floor}", prev = index.saturating_sub(1))]
    Gap {
        /// The tier whose floor is too high.
        index: usize,
        /// The previous tier's cap.
        previous_cap: Notional,
        /// This tier's floor.
        floor: Notional,
    },
    /// A tier starts below the previous tier's cap, so two tiers cover the same notionals.
    #[error("tier {index} overlaps tier {prev}: tier {prev} ends at {previous_cap} but tier {index} starts at {floor}", prev = index.saturating_sub(1))]
    Overlap {
        /// The tier whose floor is too low.
        index: usize,
        /// The previous tier's cap.
        previous_cap: Notional,
        /// This tier's floor.
        floor: Notional,
    },
    /// A tier's cap is not above its floor.
    #[error("tier {index} is not ascending: its cap {cap} must be greater than its floor {floor}")]
    NotAscending {
        /// The offending tier.
        index: usize,
        /// Its floor.
        floor: Notional,
        /// Its cap.
        cap: Notional,
    },
    /// A tier other than the last has no cap.
    #[error("tier {index} is unbounded (no cap) but is not the last tier")]
    UnboundedNotLast {
        /// The offending tier.
        index: usize,
    },
    /// A maintenance margin rate is not strictly between 0 and 1.
    #[error("tier {index} has maintenance margin rate {rate}, which must be greater than 0 and less than 1")]
    RateOutOfRange {
        /// The offending tier.
        index: usize,
        /// Its rate.
        rate: Ratio,
    },
    /// A maintenance margin rate is lower than the previous tier's.
    #[error("tier {index} has maintenance margin rate {rate}, below tier {prev}'s {previous_rate}; rates must not decrease", prev = index.saturating_sub(1))]
    RateDecreasing {
        /// The offending tier.
        index: usize,
        /// The previous tier's rate.
        previous_rate: Ratio,
        /// This tier's rate.
        rate: Ratio,
    },
    /// A maximum leverage is higher than the previous tier's.
    #[error("tier {index} allows leverage {leverage}, above tier {prev}'s {previous_leverage}; max leverage must not increase", prev = index.saturating_sub(1))]
    LeverageIncreasing {
        /// The offending tier.
        index: usize,
        /// The previous tier's maximum leverage.
        previous_leverage: Leverage,
        /// This tier's maximum leverage.
        leverage: Leverage,
    },
    /// The tier's initial margin rate at max leverage (`1 / max_leverage`) is not above its
    /// maintenance margin rate, so a position opened at that leverage would be liquidatable
    /// the moment it opens.
    #[error("tier {index} allows leverage {leverage}, whose initial margin rate 1/{leverage} does not exceed its maintenance margin rate {rate}")]
    LeverageTooHighForRate {
        /// The offending tier.
        index: usize,
        /// Its maximum leverage.
        leverage: Leverage,
        /// Its maintenance margin rate.
        rate: Ratio,
    },
    /// An inactive tier lies below an active one; inactive tiers may only top the ladder.
    #[error("tier {index} is inactive but tier {next} above it is active; inactive tiers may only form the top of the ladder", next = index.saturating_add(1))]
    InactiveBelowActive {
        /// The inactive tier.
        index: usize,
    },
    /// Every tier is inactive.
    #[error("no tier of the ladder is active")]
    NoActiveTier,
}

/// A validated margin-tier ladder with its maintenance amounts precomputed.
///
/// Built with [`TierLadder::new`]; every ladder that exists satisfies:
/// * at least one tier; the first floor is 0;
/// * contiguous and ascending: each floor equals the previous cap and each cap is above its
///   floor; only the last tier may be unbounded (a bounded last tier's cap is the largest
///   position the symbol accepts);
/// * maintenance margin rates strictly between 0 and 1 and non-decreasing (as exchanges
///   publish them; it is what makes maintenance margin convex and the liquidation price
///   unique);
/// * maximum leverage non-increasing, and in every tier `1 / max_leverage` above the
///   maintenance margin rate;
/// * at least one active tier, and inactive tiers only at the top.
///
/// With the `serde` feature it (de)serializes as its list of tiers, and deserializing
/// validates.
///
/// Two ladders are equal when their tiers are (`Decimal` equality: `0.02103` equals
/// `0.021030`); everything else in it is derived from the tiers.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "Vec<Tier>", into = "Vec<Tier>"))]
pub struct TierLadder {
    tiers: Vec<Tier>,
    /// `cum_k` for each tier, same length as `tiers`.
    maintenance_amounts: Vec<Money>,
    /// Largest notional open to new exposure; `None` when unbounded.
    open_limit: Option<Notional>,
    /// The floors as integers at one scale, for tier lookups without decimal
    /// comparisons; `None` when some floor does not fit (lookups then compare decimals).
    floors: Option<IntegerFloors>,
    /// Each tier's maintenance rate, maintenance amount and maximum leverage taken apart
    /// for the fixed-point pricing step once, when the ladder is built; `None` when one
    /// does not fit [`Fx`] (the check then prices with `Decimal`).
    fixed_terms: Option<Vec<(Fx, Fx, Fx)>>,
}

// By the tiers alone: the fixed-point terms keep each rate's scale, which `Decimal`
// equality ignores.
impl PartialEq for TierLadder {
    fn eq(&self, other: &Self) -> bool {
        self.tiers == other.tiers
    }
}

impl Eq for TierLadder {}

/// How many of a ladder's lowest floors a tier lookup scans one by one before it
/// searches the rest by halves.
const LOW_TIERS: usize = 4;

/// A ladder's floors as `units x 10^-scale`, ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IntegerFloors {
    units: Vec<u128>,
    scale: u32,
}

impl IntegerFloors {
    /// The floors at the largest of their scales, or `None` when one does not fit a `u128`.
    fn new(tiers: &[Tier]) -> Option<Self> {
        let scale = tiers.iter().map(|t| t.floor.get().scale()).max()?;
        let units = tiers
            .iter()
            .map(|t| {
                let floor = t.floor.get();
                num::pow10_u128(scale.abs_diff(floor.scale()))
                    .and_then(|p| floor.mantissa().unsigned_abs().checked_mul(p))
            })
            .collect::<Option<Vec<u128>>>()?;
        Some(Self { units, scale })
    }

    /// The number of floors at or below `notional` (never negative): with `F` a floor's
    /// units and `x` the notional in units of the floors' scale, `F <= x` exactly when
    /// `F <= floor(x)`, so the notional is truncated to that scale (or lifted to it; a
    /// lift that overflows is above every floor).
    #[inline]
    fn count_at_or_below(&self, notional: Decimal) -> usize {
        self.count_units_at_or_below(notional.mantissa().unsigned_abs(), notional.scale())
    }

    /// [`IntegerFloors::count_at_or_below`] of the non-negative `units x 10^-scale`.
    #[inline(always)]
    fn count_units_at_or_below(&self, units: u128, scale: u32) -> usize {
        let at_scale = match scale.cmp(&self.scale) {
            std::cmp::Ordering::Equal => Some(units),
            std::cmp::Ordering::Greater => {
                num::pow10_u128(scale.abs_diff(self.scale)).and_then(|p| units.checked_div(p))
            }
            std::cmp::Ordering::Less => {
                num::pow10_u128(self.scale.abs_diff(scale)).and_then(|p| units.checked_mul(p))
            }
        };
        match at_scale {
            // Most positions sit in the first tiers: those floors are scanned from the
            // bottom (one comparison each), the rest searched by halves.
            Some(x) => {
                let (low, high) = self.units.split_at(self.units.len().min(LOW_TIERS));
                let below = low.iter().take_while(|f| **f <= x).count();
                if below < low.len() {
                    below
                } else {
                    below.saturating_add(high.partition_point(|f| *f <= x))
                }
            }
            None => self.units.len(),
        }
    }
}

impl TierLadder {
    /// Validates `tiers` (in ascending order) and precomputes their maintenance amounts.
    ///
    /// # Errors
    /// A [`LadderError`] naming the first rule broken and the tier that broke it; the
    /// rules are listed on [`TierLadder`]. Tiers are checked in order, and within a tier the
    /// range is checked before the rate and the rate before the leverage.
    pub fn new(tiers: Vec<Tier>) -> Result<Self, LadderError> {
        let first = tiers.first().ok_or(LadderError::Empty)?;
        if first.floor != Notional::ZERO {
            return Err(LadderError::FirstFloorNotZero { floor: first.floor });
        }
        let last = tiers.len().saturating_sub(1);
        let mut maintenance_amounts = Vec::with_capacity(tiers.len());
        let mut previous: Option<&Tier> = None;
        let mut cum = Decimal::ZERO;
        for (index, tier) in tiers.iter().enumerate() {
            Self::check_range(index, last, tier, previous)?;
            Self::check_rate_and_leverage(index, tier, previous)?;
            if let Some(prev) = previous {
                if !prev.active && tier.active {
                    return Err(LadderError::InactiveBelowActive {
                        index: index.saturating_sub(1),
                    });
                }
                // cum_k = floor_k * (MMR_k - MMR_{k-1}) + cum_{k-1}. Operator forms are safe
                // here: rates are validated in (0, 1) and non-decreasing, so every step is
                // in [0, floor_k) and cum_k <= floor_k * (MMR_k - MMR_0) < floor_k, which
                // is itself a valid decimal.
                #[allow(clippy::arithmetic_side_effects)] // in range: see above
                let step =
                    tier.floor.get() * (tier.maintenance_rate.get() - prev.maintenance_rate.get());
                #[allow(clippy::arithmetic_side_effects)] // in range: see above
                let next = cum + step;
                cum = next;
            }
            maintenance_amounts.push(Money::from_decimal(cum));
            previous = Some(tier);
        }
        let last_active = tiers
            .iter()
            .rposition(|t| t.active)
            .ok_or(LadderError::NoActiveTier)?;
        let open_limit = tiers[last_active].cap;
        Ok(Self {
            floors: IntegerFloors::new(&tiers),
            fixed_terms: tiers
                .iter()
                .zip(&maintenance_amounts)
                .map(|(t, a)| {
                    Some((
                        Fx::new(t.maintenance_rate.get())?,
                        Fx::new(a.get())?,
                        Fx::new(t.max_leverage.get())?,
                    ))
                })
                .collect(),
            tiers,
            maintenance_amounts,
            open_limit,
        })
    }

    fn check_range(
        index: usize,
        last: usize,
        tier: &Tier,
        previous: Option<&Tier>,
    ) -> Result<(), LadderError> {
        if let Some(prev) = previous {
            // Every tier before this one has a cap: checked when it was validated.
            let previous_cap = prev.cap.ok_or(LadderError::UnboundedNotLast {
                index: index.saturating_sub(1),
            })?;
            if tier.floor > previous_cap {
                return Err(LadderError::Gap {
                    index,
                    previous_cap,
                    floor: tier.floor,
                });
            }
            if tier.floor < previous_cap {
                return Err(LadderError::Overlap {
                    index,
                    previous_cap,
                    floor: tier.floor,
                });
            }
        }
        match tier.cap {
            None if index != last => Err(LadderError::UnboundedNotLast { index }),
            Some(cap) if cap <= tier.floor => Err(LadderError::NotAscending {
                index,
                floor: tier.floor,
                cap,
            }),
            _ => Ok(()),
        }
    }

    fn check_rate_and_leverage(
        index: usize,
        tier: &Tier,
        previous: Option<&Tier>,
    ) -> Result<(), LadderError> {
        let rate = tier.maintenance_rate;
        if rate.get() <= Decimal::ZERO || rate.get() >= Decimal::ONE {
            return Err(LadderError::RateOutOfRange { index, rate });
        }
        let leverage = tier.max_leverage;
        if let Some(prev) = previous {
            if rate < prev.maintenance_rate {
                return Err(LadderError::RateDecreasing {
                    index,
                    previous_rate: prev.maintenance_rate,
                    rate,
                });
            }
            if leverage > prev.max_leverage {
                return Err(LadderError::LeverageIncreasing {
                    index,
                    previous_leverage: prev.max_leverage,
                    leverage,
                });
            }
        }
        // 1 / L > MMR  <=>  L * MMR < 1 (L >= 1 > 0). On overflow L * MMR is huge: refuse.
        let too_high = leverage
            .get()
            .checked_mul(rate.get())
            .is_none_or(|imr_check| imr_check >= Decimal::ONE);
        if too_high {
            return Err(LadderError::LeverageTooHighForRate {
                index,
                leverage,
                rate,
            });
        }
        Ok(())
    }

    /// The tiers, in ascending order of notional.
    #[must_use]
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// The index of the tier that `notional` falls in: the tier with
    /// `floor <= notional < cap`. A notional at or beyond the cap of a bounded last tier
    /// maps to the last tier.
    #[must_use]
    pub fn tier_index(&self, notional: Notional) -> usize {
        // Floors ascend and the first is 0, so at least one floor is <= notional.
        match &self.floors {
            Some(floors) => floors.count_at_or_below(notional.get()),
            None => self.tiers.partition_point(|t| t.floor <= notional),
        }
        .saturating_sub(1)
    }

    /// The tier that `notional` falls in (see [`TierLadder::tier_index`]).
    #[must_use]
    pub fn tier(&self, notional: Notional) -> &Tier {
        &self.tiers[self.tier_index(notional)]
    }

    /// The maintenance amount `cum_k` of tier `index`: what is subtracted from
    /// `N * MMR_k` to get the progressive maintenance margin (see the
    /// [module docs](self)). It is 0 for the first tier.
    ///
    /// # Panics
    /// When `index` is not below `self.tiers().len()`.
    #[must_use]
    pub fn maintenance_amount(&self, index: usize) -> Money {
        self.maintenance_amounts[index]
    }

    /// The progressive maintenance margin of a position of `notional`:
    /// `N * MMR_k - cum_k` for the tier `k` that `N` falls in. Continuous and
    /// non-decreasing in `notional`, and 0 at 0.
    ///
    /// # Errors
    /// [`ArithmeticError`] when the product overflows.
    pub fn maintenance_margin(&self, notional: Notional) -> Result<Money, ArithmeticError> {
        let index = self.tier_index(notional);
        self.maintenance_margin_in(index, notional.get())
            .and_then(|d| money(d, "maintenance margin"))
    }

    /// [`TierLadder::maintenance_margin`] and [`TierLadder::max_leverage_at`] of the same
    /// notional from one tier lookup (the check needs both for the projected position).
    ///
    /// # Errors
    /// [`ArithmeticError`] when the product overflows.
    pub fn maintenance_margin_and_max_leverage(
        &self,
        notional: Notional,
    ) -> Result<(Money, Leverage), ArithmeticError> {
        let index = self.tier_index(notional);
        let margin = self
            .maintenance_margin_in(index, notional.get())
            .and_then(|d| money(d, "maintenance margin"))?;
        Ok((margin, self.tiers[index].max_leverage))
    }

    /// [`TierLadder::maintenance_margin_and_max_leverage`] on exact fixed point: the same
    /// margin to the last digit (scale included), or `None` where the fixed-point
    /// arithmetic declines (the caller then uses the `Decimal` path). `notional` is not
    /// negative (a notional). The tier's leverage cap comes with its [`Fx`] form.
    #[inline(always)]
    pub(crate) fn maintenance_margin_fx(&self, notional: Fx) -> Option<(Fx, (Leverage, Fx))> {
        let (units, scale) = notional.parts();
        let index = match &self.floors {
            Some(floors) => floors.count_units_at_or_below(u128::from(units.unsigned_abs()), scale),
            None => self.tiers.partition_point(|t| {
                num::cmp_fixed(num::fixed(t.floor.get()), (i128::from(units), scale)).is_le()
            }),
        }
        .saturating_sub(1);
        let (rate, amount, leverage) = *self.fixed_terms.as_ref()?.get(index)?;
        let margin = notional.mul(rate)?.sub(amount)?;
        Some((margin, (self.tiers.get(index)?.max_leverage, leverage)))
    }

    /// Tier `index`'s formula `N * MMR_k - cum_k`, evaluated at any `notional`.
    fn maintenance_margin_in(
        &self,
        index: usize,
        notional: Decimal,
    ) -> Result<Decimal, ArithmeticError> {
        let tier = &self.tiers[index];
        let gross = num::mul(notional, tier.maintenance_rate.get(), "maintenance margin")?;
        num::sub(
            gross,
            self.maintenance_amounts[index].get(),
            "maintenance margin",
        )
    }

    /// The maximum leverage of the tier that `notional` falls in.
    ///
    /// This is a plain lookup: it does not say whether `notional` is open to new exposure
    /// at all. A pre-trade check must also require [`TierLadder::is_open_at`] for the
    /// projected notional (it is false in inactive tiers and beyond a bounded last cap).
    #[must_use]
    pub fn max_leverage_at(&self, notional: Notional) -> Leverage {
        self.tier(notional).max_leverage
    }

    /// The largest notional open to new exposure: the cap of the highest active tier, or
    /// `None` when that tier is unbounded.
    #[must_use]
    pub fn open_limit(&self) -> Option<Notional> {
        self.open_limit
    }

    /// Whether a position may grow to `notional`: true when `notional` does not exceed
    /// [`TierLadder::open_limit`]. A notional exactly at the limit is open (the cap is the
    /// largest position allowed), even though [`TierLadder::tier_index`] places it in the
    /// next tier.
    #[must_use]
    pub fn is_open_at(&self, notional: Notional) -> bool {
        self.open_limit.is_none_or(|limit| notional <= limit)
    }

    /// The initial margin of a position or order: `notional / leverage`.
    ///
    /// # Errors
    /// [`ArithmeticError`] on overflow (leverage is at least 1, so never on division by
    /// zero).
    pub fn initial_margin(
        notional: Notional,
        leverage: Leverage,
    ) -> Result<Money, ArithmeticError> {
        let value = num::div(notional.get(), leverage.get(), "initial margin")?;
        money(value, "initial margin")
    }

    /// The mark price at which an isolated, one-way position in a linear contract is
    /// liquidated, or `None` when no positive price liquidates it.
    ///
    /// `side` is the position's direction ([`Side::Buy`] for a long, [`Side::Sell`] for a
    /// short), `quantity` its unsigned size, `entry` its entry price, `isolated_margin` the
    /// margin (wallet balance) isolated to it and `multiplier` the contract multiplier
    /// (its sign is ignored, as in [`Price::notional`]). Fees, funding and the liquidation
    /// fee are ignored.
    ///
    /// # Formula
    /// With `s = +1` for a long and `-1` for a short, `N0 = q * m * entry` the entry
    /// notional and `N = q * m * P` the notional at mark `P`, the position is liquidated
    /// where its equity meets its maintenance margin:
    ///
    /// ```text
    /// margin + s * (N - N0) = N * MMR_k - cum_k        (k: the tier N falls in)
    ///   =>  N = (s * N0 - margin - cum_k) / (s - MMR_k)
    ///   long:  N = (N0 - margin - cum_k) / (1 - MMR_k)
    ///   short: N = (N0 + margin + cum_k) / (1 + MMR_k)
    ///   P = N / (q * m)
    /// ```
    ///
    /// This is Binance's published isolated-mode formula
    /// `LP = (WB + cum - side * q * EP) / (q * MMR - side * q)` with `m = 1`.
    ///
    /// The tier is the one whose range contains the solution, not the tier at entry. The
    /// gap `g(N) = margin + s * (N - N0) - MM(N)` is strictly monotonic (increasing for a
    /// long, decreasing for a short, because every rate is below 1), so there is at most
    /// one root; the tiers are scanned in order, evaluating `g` at each cap, until the one
    /// whose range brackets the root (at most `len()` steps, no division needed to choose),
    /// and the equation is then solved with that tier's rate and amount. As elsewhere, the
    /// last tier extends beyond a bounded last cap.
    ///
    /// The result is exact to the decimal precision and not rounded to a tick; round a
    /// long's price up and a short's down to stay conservative.
    ///
    /// `None` means there is no positive root: for a long, `margin >= N0` (the position is
    /// fully collateralised and survives a fall to zero); for a short, `margin <= -N0`
    /// (the position is below maintenance at every price); and for a zero quantity or
    /// multiplier (no position).
    ///
    /// # Errors
    /// [`ArithmeticError`] on overflow.
    pub fn liquidation_price_isolated(
        &self,
        side: Side,
        quantity: Quantity,
        entry: Price,
        isolated_margin: Money,
        multiplier: Decimal,
    ) -> Result<Option<Price>, ArithmeticError> {
        const WHAT: &str = "liquidation price";
        let size = num::mul(quantity.get(), multiplier.abs(), WHAT)?;
        if size.is_zero() {
            return Ok(None);
        }
        let s = side.sign();
        let margin = isolated_margin.get();
        let entry_notional = num::mul(size, entry.get(), WHAT)?;
        // g(N) = margin + s * (N - N0) - MM(N), with MM evaluated by tier k's formula.
        let gap = |k: usize, n: Decimal| -> Result<Decimal, ArithmeticError> {
            let pnl = num::mul(s, num::sub(n, entry_notional, WHAT)?, WHAT)?;
            num::sub(
                num::add(margin, pnl, WHAT)?,
                self.maintenance_margin_in(k, n)?,
                WHAT,
            )
        };
        // g is increasing for a long and decreasing for a short: `past_root(g)` says the
        // root lies at or below the point where g was evaluated.
        let past_root = |g: Decimal| match side {
            Side::Buy => g >= Decimal::ZERO,
            Side::Sell => g <= Decimal::ZERO,
        };
        if past_root(gap(0, Decimal::ZERO)?) {
            return Ok(None);
        }
        let last = self.tiers.len().saturating_sub(1);
        let mut index = last;
        for (k, tier) in self.tiers.iter().enumerate().take(last) {
            if let Some(cap) = tier.cap {
                if past_root(gap(k, cap.get())?) {
                    index = k;
                    break;
                }
            }
        }
        let rate = self.tiers[index].maintenance_rate.get();
        let cum = self.maintenance_amounts[index].get();
        // N = (s * N0 - margin - cum_k) / (s - MMR_k)
        let numerator = num::sub(
            num::sub(num::mul(s, entry_notional, WHAT)?, margin, WHAT)?,
            cum,
            WHAT,
        )?;
        let notional = num::div(numerator, num::sub(s, rate, WHAT)?, WHAT)?;
        let price = num::div(notional, size, WHAT)?;
        Ok(Price::new(price).ok())
    }
}

/// Wraps a computed amount as [`Money`] (which accepts every value).
fn money(value: Decimal, what: &'static str) -> Result<Money, ArithmeticError> {
    Money::new(value).map_err(|_| ArithmeticError { what })
}

impl TryFrom<Vec<Tier>> for TierLadder {
    type Error = LadderError;

    fn try_from(tiers: Vec<Tier>) -> Result<Self, LadderError> {
        Self::new(tiers)
    }
}

impl From<TierLadder> for Vec<Tier> {
    fn from(ladder: TierLadder) -> Self {
        ladder.tiers
    }
}

#[cfg(test)]
mod tests {
    // Test arithmetic runs on small literals and generated values kept in range.
    #![allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]

    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    use super::*;

    fn tier(floor: &str, cap: Option<&str>, rate: &str, leverage: &str) -> Tier {
        Tier {
            floor: Notional::lit(floor),
            cap: cap.map(Notional::lit),
            maintenance_rate: Ratio::lit(rate),
            max_leverage: Leverage::lit(leverage),
            active: true,
        }
    }

    fn n(text: &str) -> Notional {
        Notional::lit(text)
    }

    // Source: Binance announcement "Updates to Leverage and Margin Tiers of Binance Futures
    // Contracts (2021-03-18)", table "BTCUSDT 125x perpetual contract" (position in USDT
    // notional, max leverage, maintenance margin rate). The announcement publishes
    // brackets and rates but not the maintenance amounts; those are checked below
    // against Binance's FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures
    // Contracts" (binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93), which
    // states a 500,000 USDT BTCUSDT position has maintenance amount 1,300 USDT
    // ("Level 3 = 250,000 * (1% - 0.5%) + 50 USDT = 1,300 USDT") and a 264,000 USDT
    // position has rate 1%. The other amounts are computed by hand with the same
    // published formula, cum_k = floor_k * (MMR_k - MMR_{k-1}) + cum_{k-1}:
    //   tier 0:           0                                   =           0
    //   tier 1:      50,000 * (0.005 - 0.004) + 0             =          50
    //   tier 2:     250,000 * (0.010 - 0.005) + 50            =       1,300
    //   tier 3:   1,000,000 * (0.025 - 0.010) + 1,300         =      16,300
    //   tier 4:  10,000,000 * (0.050 - 0.025) + 16,300        =     266,300
    //   tier 5:  20,000,000 * (0.100 - 0.050) + 266,300       =   1,266,300
    //   tier 6:  50,000,000 * (0.125 - 0.100) + 1,266,300     =   2,516,300
    //   tier 7: 100,000,000 * (0.150 - 0.125) + 2,516,300     =   5,016,300
    //   tier 8: 200,000,000 * (0.250 - 0.150) + 5,016,300     =  25,016,300
    //   tier 9: 300,000,000 * (0.500 - 0.250) + 25,016,300    = 100,016,300
    fn binance_btcusdt_2021() -> TierLadder {
        TierLadder::new(vec![
            tier("0", Some("50000"), "0.004", "125"),
            tier("50000", Some("250000"), "0.005", "100"),
            tier("250000", Some("1000000"), "0.01", "50"),
            tier("1000000", Some("10000000"), "0.025", "20"),
            tier("10000000", Some("20000000"), "0.05", "10"),
            tier("20000000", Some("50000000"), "0.10", "5"),
            tier("50000000", Some("100000000"), "0.125", "4"),
            tier("100000000", Some("200000000"), "0.15", "3"),
            tier("200000000", Some("300000000"), "0.25", "2"),
            tier("300000000", Some("500000000"), "0.50", "1"),
        ])
        .unwrap()
    }

    // Source: the same Binance announcement (2021-03-18), table "XEM, COTI, CHR, MANA,
    // HBAR, and ALICE 50X USDT-margined perpetual contracts"; its last bracket is
    // "Position > 1,000,000", i.e. unbounded. Maintenance amounts are not published
    // there; computed by hand from the published brackets:
    //   tier 1:     5,000 * (0.025 - 0.010) + 0        =      75
    //   tier 2:    25,000 * (0.050 - 0.025) + 75       =     700
    //   tier 3:   100,000 * (0.100 - 0.050) + 700      =   5,700
    //   tier 4:   250,000 * (0.125 - 0.100) + 5,700    =  11,950
    //   tier 5: 1,000,000 * (0.500 - 0.125) + 11,950   = 386,950
    fn binance_alt_50x_2021() -> TierLadder {
        TierLadder::new(vec![
            tier("0", Some("5000"), "0.01", "50"),
            tier("5000", Some("25000"), "0.025", "20"),
            tier("25000", Some("100000"), "0.05", "10"),
            tier("100000", Some("250000"), "0.10", "5"),
            tier("250000", Some("1000000"), "0.125", "2"),
            tier("1000000", None, "0.50", "1"),
        ])
        .unwrap()
    }

    fn amounts(ladder: &TierLadder) -> Vec<Decimal> {
        (0..ladder.tiers().len())
            .map(|k| ladder.maintenance_amount(k).get())
            .collect()
    }

    #[test]
    fn binance_btcusdt_maintenance_amounts_to_the_cent() {
        let ladder = binance_btcusdt_2021();
        assert_eq!(
            amounts(&ladder),
            vec![
                dec!(0),
                dec!(50),
                dec!(1300),
                dec!(16300),
                dec!(266300),
                dec!(1266300),
                dec!(2516300),
                dec!(5016300),
                dec!(25016300),
                dec!(100016300),
            ]
        );
        // Published: a 500,000 USDT position has maintenance amount 1,300 USDT.
        let k = ladder.tier_index(n("500000"));
        assert_eq!(ladder.maintenance_amount(k).get(), dec!(1300));
        // Published: a 264,000 USDT position has maintenance margin rate 1%.
        assert_eq!(ladder.tier(n("264000")).maintenance_rate.get(), dec!(0.01));
    }

    #[test]
    fn binance_alt_ladder_maintenance_amounts_to_the_cent() {
        let ladder = binance_alt_50x_2021();
        assert_eq!(
            amounts(&ladder),
            vec![
                dec!(0),
                dec!(75),
                dec!(700),
                dec!(5700),
                dec!(11950),
                dec!(386950)
            ]
        );
        assert_eq!(ladder.open_limit(), None);
        assert!(ladder.is_open_at(n("1000000000")));
    }

    #[test]
    fn maintenance_margin_worked_example() {
        let ladder = binance_btcusdt_2021();
        // 264,000 USDT in tier 2: 264,000 * 1% - 1,300 = 1,340; bracket by bracket:
        // 50,000 * 0.4% + 200,000 * 0.5% + 14,000 * 1% = 200 + 1,000 + 140 = 1,340.
        assert_eq!(
            ladder.maintenance_margin(n("264000")).unwrap().get(),
            dec!(1340)
        );
        assert_eq!(ladder.maintenance_margin(n("0")).unwrap().get(), dec!(0));
        // Tier 0 only: 10,000 * 0.4% = 40.
        assert_eq!(
            ladder.maintenance_margin(n("10000")).unwrap().get(),
            dec!(40)
        );
        // Exactly at a boundary both tiers' formulas agree: 50,000 * 0.4% = 50,000 * 0.5% - 50.
        assert_eq!(
            ladder.maintenance_margin(n("50000")).unwrap().get(),
            dec!(200)
        );
        // Beyond the bounded last cap the last tier extends:
        // 600,000,000 * 50% - 100,016,300 = 199,983,700.
        assert_eq!(
            ladder.maintenance_margin(n("600000000")).unwrap().get(),
            dec!(199983700)
        );
    }

    #[test]
    fn tier_lookup_uses_floor_inclusive_cap_exclusive() {
        let ladder = binance_btcusdt_2021();
        assert_eq!(ladder.tier_index(n("0")), 0);
        assert_eq!(ladder.tier_index(n("49999.99")), 0);
        assert_eq!(ladder.tier_index(n("50000")), 1);
        assert_eq!(ladder.tier_index(n("264000")), 2);
        assert_eq!(ladder.tier_index(n("499999999.99")), 9);
        assert_eq!(ladder.tier_index(n("500000000")), 9);
        assert_eq!(ladder.tier_index(n("1e12")), 9);
        assert_eq!(ladder.tier(n("12000000")).max_leverage.get(), dec!(10));
        assert_eq!(ladder.max_leverage_at(n("49999")).get(), dec!(125));
        assert_eq!(ladder.max_leverage_at(n("50000")).get(), dec!(100));
        assert_eq!(ladder.max_leverage_at(n("1e12")).get(), dec!(1));
        // The combined lookup is the two lookups, at every boundary and between them.
        for text in [
            "0",
            "49999.99",
            "50000",
            "50000.000",
            "264000",
            "1000000.5",
            "499999999.99",
            "500000000",
            "1e12",
        ] {
            let notional = n(text);
            assert_eq!(
                ladder.maintenance_margin_and_max_leverage(notional),
                ladder
                    .maintenance_margin(notional)
                    .map(|m| (m, ladder.max_leverage_at(notional))),
                "{text}"
            );
        }
    }

    #[test]
    fn bounded_last_cap_is_the_open_limit() {
        let ladder = binance_btcusdt_2021();
        assert_eq!(ladder.open_limit(), Some(n("500000000")));
        assert!(ladder.is_open_at(n("500000000")));
        assert!(!ladder.is_open_at(n("500000000.01")));
    }

    #[test]
    fn inactive_top_tiers_are_margined_but_closed() {
        let mut tiers = binance_alt_50x_2021().tiers().to_vec();
        tiers[4].active = false;
        tiers[5].active = false;
        let ladder = TierLadder::new(tiers).unwrap();
        assert_eq!(ladder.open_limit(), Some(n("250000")));
        assert!(ladder.is_open_at(n("250000")));
        assert!(!ladder.is_open_at(n("250000.01")));
        // Still margined by the inactive tiers: 2,000,000 * 50% - 386,950.
        assert_eq!(
            ladder.maintenance_margin(n("2000000")).unwrap().get(),
            dec!(613050)
        );
        assert_eq!(ladder.max_leverage_at(n("300000")).get(), dec!(2));
    }

    #[test]
    fn initial_margin_is_notional_over_leverage() {
        let im = TierLadder::initial_margin(n("60000"), Leverage::lit("125")).unwrap();
        assert_eq!(im.get(), dec!(480));
        let im = TierLadder::initial_margin(n("1000"), Leverage::lit("3")).unwrap();
        assert_eq!(im.get() * dec!(3), dec!(1000));
    }

    fn liq(
        ladder: &TierLadder,
        side: Side,
        qty: &str,
        entry: &str,
        margin: &str,
        multiplier: Decimal,
    ) -> Option<Decimal> {
        ladder
            .liquidation_price_isolated(
                side,
                Quantity::lit(qty),
                Price::lit(entry),
                Money::lit(margin),
                multiplier,
            )
            .unwrap()
            .map(Price::get)
    }

    // Liquidation vectors: Binance's FAQ "How to Calculate Liquidation Price of USDⓈ-M
    // Futures Contracts" publishes the formula, not a worked BTCUSDT isolated example, so
    // these are computed by hand with its isolated-mode form (TMM = UPNL = 0)
    //   LP = (WB + cum - side * q * EP) / (q * MMR - side * q)
    // on the BTCUSDT 2021 brackets above, re-solving with the bracket the result falls in
    // as the FAQ instructs.
    #[test]
    fn liquidation_long_tier_1() {
        // Long 1 BTC at 60,000 with 6,000 isolated (10x); notional 60,000 is tier 1
        // (0.5%, cum 50): LP = (6,000 + 50 - 60,000) / (0.005 - 1) = 53,950 / 0.995
        //                    = 54,221.1055...; its notional 54,221 is still tier 1.
        let p = liq(
            &binance_btcusdt_2021(),
            Side::Buy,
            "1",
            "60000",
            "6000",
            Decimal::ONE,
        )
        .unwrap();
        assert_eq!(p, dec!(53950) / dec!(0.995));
        assert_eq!(p.round_dp(2), dec!(54221.11));
    }

    #[test]
    fn liquidation_short_tier_1() {
        // Short 1 BTC at 60,000 with 6,000: LP = (6,000 + 50 + 60,000) / (0.005 + 1)
        //                                      = 66,050 / 1.005 = 65,721.3930...
        let p = liq(
            &binance_btcusdt_2021(),
            Side::Sell,
            "1",
            "60000",
            "6000",
            Decimal::ONE,
        )
        .unwrap();
        assert_eq!(p, dec!(66050) / dec!(1.005));
        assert_eq!(p.round_dp(2), dec!(65721.39));
    }

    #[test]
    fn liquidation_long_crossing_down_a_tier() {
        // Long 5 BTC at 52,000 (notional 260,000, tier 2) with 26,000.
        // Tier 2 (1%, cum 1,300): (26,000 + 1,300 - 260,000) / (5 * 0.01 - 5)
        //   = 47,010.10..., notional 235,050.5: tier 1, so re-solve with tier 1.
        // Tier 1 (0.5%, cum 50): (26,000 + 50 - 260,000) / (5 * 0.005 - 5)
        //   = 233,950 / 4.975 = 47,025.1256..., notional 235,125.6: tier 1. Done.
        let ladder = binance_btcusdt_2021();
        let p = liq(&ladder, Side::Buy, "5", "52000", "26000", Decimal::ONE).unwrap();
        assert_eq!(p, dec!(233950) / dec!(4.975));
        assert_eq!(p.round_dp(2), dec!(47025.13));
        assert_eq!(ladder.tier_index(Notional::new(p * dec!(5)).unwrap()), 1);
    }

    #[test]
    fn liquidation_short_crossing_up_a_tier() {
        // Short 5 BTC at 48,000 (notional 240,000, tier 1) with 24,000.
        // Tier 1: (24,000 + 50 + 240,000) / (5 * 0.005 + 5) = 52,547.26...,
        //   notional 262,736.3: tier 2, so re-solve with tier 2.
        // Tier 2: (24,000 + 1,300 + 240,000) / (5 * 0.01 + 5) = 265,300 / 5.05
        //   = 52,534.6534..., notional 262,673.3: tier 2. Done.
        let ladder = binance_btcusdt_2021();
        let p = liq(&ladder, Side::Sell, "5", "48000", "24000", Decimal::ONE).unwrap();
        // Equal up to the last of 28 digits (the code divides by 1.01, then by 5).
        assert!((p - dec!(265300) / dec!(5.05)).abs() <= Decimal::new(1, 20));
        assert_eq!(p.round_dp(2), dec!(52534.65));
    }

    #[test]
    fn liquidation_with_contract_multiplier() {
        // 0.01 contracts of multiplier 100 are 1 unit: same as the tier-1 long.
        let p = liq(
            &binance_btcusdt_2021(),
            Side::Buy,
            "0.01",
            "60000",
            "6000",
            dec!(100),
        );
        assert_eq!(p, Some(dec!(53950) / dec!(0.995)));
    }

    #[test]
    fn no_positive_liquidation_price() {
        let ladder = binance_btcusdt_2021();
        // Fully collateralised long: margin equals or exceeds the entry notional.
        assert_eq!(
            liq(&ladder, Side::Buy, "1", "60000", "60000", Decimal::ONE),
            None
        );
        assert_eq!(
            liq(&ladder, Side::Buy, "1", "60000", "70000", Decimal::ONE),
            None
        );
        // A long just short of full collateral liquidates at a tiny positive price:
        // (59,999 - 60,000) / (0.004 - 1) = 1 / 0.996.
        assert_eq!(
            liq(&ladder, Side::Buy, "1", "60000", "59999", Decimal::ONE),
            Some(dec!(1) / dec!(0.996))
        );
        // A short whose margin is below minus its notional is under water at every price.
        assert_eq!(
            liq(&ladder, Side::Sell, "1", "60000", "-60000", Decimal::ONE),
            None
        );
        // No position.
        assert_eq!(
            liq(&ladder, Side::Buy, "0", "60000", "10", Decimal::ONE),
            None
        );
        assert_eq!(
            liq(&ladder, Side::Sell, "1", "60000", "10", Decimal::ZERO),
            None
        );
    }

    #[test]
    fn liquidation_beyond_the_last_cap_uses_the_last_tier() {
        // Short 10,000 BTC at 60,000 (600,000,000 notional, past the 500,000,000 cap) with
        // 600,000,000: tier 9 (50%, cum 100,016,300):
        // (600,000,000 + 600,000,000 + 100,016,300) / (10,000 * 1.5) = 86,667.7533...
        let p = liq(
            &binance_btcusdt_2021(),
            Side::Sell,
            "10000",
            "60000",
            "600000000",
            Decimal::ONE,
        );
        assert_eq!(p, Some(dec!(1300016300) / dec!(15000)));
    }

    #[test]
    fn overflow_is_an_error() {
        let ladder = binance_btcusdt_2021();
        let huge = Notional::new(Decimal::MAX).unwrap();
        assert!(ladder.maintenance_margin(huge).is_ok());
        let r = ladder.liquidation_price_isolated(
            Side::Buy,
            Quantity::new(Decimal::MAX).unwrap(),
            Price::lit("2"),
            Money::ZERO,
            Decimal::ONE,
        );
        assert!(r.is_err());
    }

    // ---- validation: one test per error ----

    fn err(tiers: Vec<Tier>) -> LadderError {
        TierLadder::new(tiers).unwrap_err()
    }

    #[test]
    fn refuses_empty() {
        assert_eq!(err(vec![]), LadderError::Empty);
        assert_eq!(
            err(vec![]).to_string(),
            "a margin-tier ladder needs at least one tier"
        );
    }

    #[test]
    fn refuses_first_floor_not_zero() {
        let e = err(vec![tier("10", None, "0.01", "10")]);
        assert_eq!(e, LadderError::FirstFloorNotZero { floor: n("10") });
        assert!(e.to_string().contains("10"));
    }

    #[test]
    fn refuses_gap() {
        let e = err(vec![
            tier("0", Some("100"), "0.01", "10"),
            tier("150", None, "0.02", "5"),
        ]);
        assert_eq!(
            e,
            LadderError::Gap {
                index: 1,
                previous_cap: n("100"),
                floor: n("150")
            }
        );
        assert_eq!(
            e.to_string(),
            "gap before tier 1: tier 0 ends at 100 but tier 1 starts at 150"
        );
    }

    #[test]
    fn refuses_overlap() {
        let e = err(vec![
            tier("0", Some("100"), "0.01", "10"),
            tier("50", None, "0.02", "5"),
        ]);
        assert_eq!(
            e,
            LadderError::Overlap {
                index: 1,
                previous_cap: n("100"),
                floor: n("50")
            }
        );
        assert!(e.to_string().contains("tier 1 overlaps tier 0"));
    }

    #[test]
    fn refuses_cap_not_above_floor() {
        let e = err(vec![
            tier("0", Some("100"), "0.01", "10"),
            tier("100", Some("100"), "0.02", "5"),
        ]);
        assert_eq!(
            e,
            LadderError::NotAscending {
                index: 1,
                floor: n("100"),
                cap: n("100")
            }
        );
        let e = err(vec![tier("0", Some("0"), "0.01", "10")]);
        assert!(matches!(e, LadderError::NotAscending { index: 0, .. }));
    }

    #[test]
    fn refuses_unbounded_tier_before_the_last() {
        let e = err(vec![
            tier("0", None, "0.01", "10"),
            tier("100", None, "0.02", "5"),
        ]);
        assert_eq!(e, LadderError::UnboundedNotLast { index: 0 });
        assert!(e.to_string().contains("tier 0"));
    }

    #[test]
    fn refuses_rate_out_of_range() {
        for (rate, index) in [("0", 0), ("1", 1), ("1.5", 1)] {
            let mut tiers = vec![
                tier("0", Some("100"), "0.01", "10"),
                tier("100", None, "0.5", "1"),
            ];
            tiers[index].maintenance_rate = Ratio::lit(rate);
            assert_eq!(
                err(tiers),
                LadderError::RateOutOfRange {
                    index,
                    rate: Ratio::lit(rate)
                },
                "rate {rate}"
            );
        }
    }

    #[test]
    fn refuses_decreasing_rate() {
        let e = err(vec![
            tier("0", Some("100"), "0.02", "10"),
            tier("100", None, "0.01", "10"),
        ]);
        assert_eq!(
            e,
            LadderError::RateDecreasing {
                index: 1,
                previous_rate: Ratio::lit("0.02"),
                rate: Ratio::lit("0.01")
            }
        );
        assert!(e.to_string().contains("0.01") && e.to_string().contains("0.02"));
    }

    #[test]
    fn ladders_equal_by_tier_values_whatever_their_scales() {
        let short = TierLadder::new(vec![
            tier("0", Some("549"), "0.02103", "40"),
            tier("549", None, "0.0315", "20"),
        ])
        .unwrap();
        let long = TierLadder::new(vec![
            tier("0", Some("549.0"), "0.021030", "40"),
            tier("549.00", None, "0.03150", "20"),
        ])
        .unwrap();
        assert_eq!(short, long);
        let other = TierLadder::new(vec![
            tier("0", Some("549"), "0.02104", "40"),
            tier("549", None, "0.0315", "20"),
        ])
        .unwrap();
        assert_ne!(short, other);
    }

    #[test]
    fn equal_rates_are_allowed() {
        assert!(TierLadder::new(vec![
            tier("0", Some("100"), "0.01", "10"),
            tier("100", None, "0.01", "5"),
        ])
        .is_ok());
    }

    #[test]
    fn refuses_increasing_leverage() {
        let e = err(vec![
            tier("0", Some("100"), "0.01", "10"),
            tier("100", None, "0.02", "20"),
        ]);
        assert_eq!(
            e,
            LadderError::LeverageIncreasing {
                index: 1,
                previous_leverage: Leverage::lit("10"),
                leverage: Leverage::lit("20")
            }
        );
    }

    #[test]
    fn refuses_leverage_too_high_for_rate() {
        // 1/125 = 0.8% is not above a 1% maintenance rate.
        let e = err(vec![tier("0", None, "0.01", "125")]);
        assert_eq!(
            e,
            LadderError::LeverageTooHighForRate {
                index: 0,
                leverage: Leverage::lit("125"),
                rate: Ratio::lit("0.01")
            }
        );
        // Equality is refused too: 1/100 == 1%.
        let e = err(vec![tier("0", None, "0.01", "100")]);
        assert!(matches!(e, LadderError::LeverageTooHighForRate { .. }));
    }

    #[test]
    fn refuses_inactive_tier_below_active() {
        let mut tiers = vec![
            tier("0", Some("100"), "0.01", "10"),
            tier("100", Some("200"), "0.02", "5"),
            tier("200", None, "0.05", "2"),
        ];
        tiers[1].active = false;
        assert_eq!(err(tiers), LadderError::InactiveBelowActive { index: 1 });
    }

    #[test]
    fn refuses_no_active_tier() {
        let mut t = tier("0", None, "0.01", "10");
        t.active = false;
        assert_eq!(err(vec![t]), LadderError::NoActiveTier);
    }

    #[test]
    fn maintenance_amounts_stay_in_range_at_extreme_floors() {
        // cum_k < floor_k always, so even a floor near Decimal::MAX cannot overflow:
        // 7e28 * (0.9 - 0.0001) = 6.2993e28.
        let ladder = TierLadder::new(vec![
            tier("0", Some("7e28"), "0.0001", "10"),
            tier("7e28", None, "0.9", "1"),
        ])
        .unwrap();
        assert_eq!(ladder.maintenance_amount(1).get(), dec!(6.2993e28));
    }

    #[test]
    fn converts_to_and_from_its_tier_list() {
        let ladder = binance_alt_50x_2021();
        let tiers: Vec<Tier> = ladder.clone().into();
        assert_eq!(TierLadder::try_from(tiers), Ok(ladder));
        assert_eq!(TierLadder::try_from(Vec::new()), Err(LadderError::Empty));
    }

    // ---- properties ----

    /// Random valid ladders: 1-8 tiers of random widths (0.1 to 500,000.0), maintenance
    /// rates rising from 0.01%-1% in steps of 0-5%, max leverage floor(1 / (2 * rate)).
    fn ladders() -> impl Strategy<Value = TierLadder> {
        (1usize..=8)
            .prop_flat_map(|len| {
                (
                    proptest::collection::vec(1i64..=5_000_000, len),
                    proptest::collection::vec(0i64..=500, len),
                    1i64..=100,
                    any::<bool>(),
                )
            })
            .prop_map(|(widths, steps, first_bp, unbounded)| {
                let mut tiers = Vec::with_capacity(widths.len());
                let mut floor = Decimal::ZERO;
                let mut bp = first_bp;
                for (k, (width, step)) in widths.iter().zip(&steps).enumerate() {
                    if k > 0 {
                        bp = (bp + step).min(9_999);
                    }
                    let cap = floor + Decimal::new(*width, 1);
                    let last = k + 1 == widths.len();
                    tiers.push(Tier {
                        floor: Notional::new(floor).unwrap(),
                        cap: if last && unbounded {
                            None
                        } else {
                            Some(Notional::new(cap).unwrap())
                        },
                        maintenance_rate: Ratio::new(Decimal::new(bp, 4)).unwrap(),
                        max_leverage: Leverage::new(Decimal::from((5_000 / bp).max(1))).unwrap(),
                        active: true,
                    });
                    floor = cap;
                }
                TierLadder::new(tiers).unwrap()
            })
    }

    /// The end of the last tier (its floor if unbounded), for scaling random notionals.
    fn span(ladder: &TierLadder) -> Decimal {
        let last = ladder.tiers().last().unwrap();
        last.cap.unwrap_or(last.floor).get().max(Decimal::ONE)
    }

    /// A notional at `permille`/1000 of 1.5 times the ladder's span.
    fn at(ladder: &TierLadder, permille: u32) -> Notional {
        let value = span(ladder) * Decimal::from(permille) * dec!(0.0015);
        Notional::new(value.round_dp(4)).unwrap()
    }

    fn mm(ladder: &TierLadder, notional: Decimal) -> Decimal {
        ladder
            .maintenance_margin(Notional::new(notional).unwrap())
            .unwrap()
            .get()
    }

    proptest! {
        /// The integer tier lookup is the decimal one: for any notional, and for each
        /// floor itself, just below and just above it, written at any scale.
        #[test]
        fn integer_tier_lookup_is_the_decimal_lookup(
            ladder in ladders(),
            mantissa in any::<u64>(),
            raw in (any::<u32>(), any::<u32>(), any::<u32>()),
            scale in 0u32..=28,
            widen in 0u32..=20,
        ) {
            let reference = |n: Notional| {
                ladder.tiers().partition_point(|t| t.floor <= n).saturating_sub(1)
            };
            let mut probes = vec![
                Decimal::from_i128_with_scale(i128::from(mantissa), scale),
                Decimal::from_parts(raw.0, raw.1, raw.2, false, scale),
            ];
            let tiny = Decimal::new(1, scale);
            for t in ladder.tiers() {
                let f = t.floor.get();
                let mut wide = f;
                wide.rescale(f.scale().saturating_add(widen).min(28));
                probes.extend([f, wide, f.saturating_sub(tiny), f.saturating_add(tiny)]);
            }
            for d in probes {
                if let Ok(n) = Notional::new(d) {
                    prop_assert_eq!(ladder.tier_index(n), reference(n), "{}", d);
                }
            }
        }

        #[test]
        fn maintenance_margin_is_continuous_at_every_boundary(ladder in ladders()) {
            for (k, t) in ladder.tiers().iter().enumerate() {
                let Some(cap) = t.cap else { continue };
                let cap = cap.get();
                // The lower tier's formula at its own cap equals the ladder's value there.
                let from_below = cap * t.maintenance_rate.get() - ladder.maintenance_amount(k).get();
                prop_assert_eq!(from_below, mm(&ladder, cap));
                // And the step just below the boundary is at most that tier's rate.
                let eps = dec!(0.0001);
                let below = mm(&ladder, cap - eps);
                prop_assert!(below <= mm(&ladder, cap));
                prop_assert!(mm(&ladder, cap) - below <= eps * t.maintenance_rate.get());
            }
        }

        #[test]
        fn maintenance_margin_is_non_decreasing(
            ladder in ladders(), a in 0u32..=1000, b in 0u32..=1000,
        ) {
            let (lo, hi) = (at(&ladder, a.min(b)), at(&ladder, a.max(b)));
            let (mm_lo, mm_hi) = (
                ladder.maintenance_margin(lo).unwrap().get(),
                ladder.maintenance_margin(hi).unwrap().get(),
            );
            prop_assert!(mm_lo >= Decimal::ZERO);
            prop_assert!(mm_lo <= mm_hi, "MM({}) = {} > MM({}) = {}", lo, mm_lo, hi, mm_hi);
        }

        #[test]
        fn maintenance_margin_equals_the_bracket_by_bracket_sum(
            ladder in ladders(), p in 0u32..=1000,
        ) {
            let notional = at(&ladder, p).get();
            let last = ladder.tiers().len() - 1;
            let mut sum = Decimal::ZERO;
            for (k, t) in ladder.tiers().iter().enumerate() {
                let top = match t.cap {
                    Some(cap) if k < last => notional.min(cap.get()),
                    _ => notional, // the last tier extends past a bounded cap
                };
                if top > t.floor.get() {
                    sum += (top - t.floor.get()) * t.maintenance_rate.get();
                }
            }
            prop_assert_eq!(sum, mm(&ladder, notional));
        }

        #[test]
        fn liquidation_price_balances_equity_and_maintenance(
            ladder in ladders(),
            long in any::<bool>(),
            qty in 1i64..=100_000,
            entry in 1i64..=10_000_000,
            multiplier in prop::sample::select(vec![dec!(1), dec!(0.001), dec!(10), dec!(100)]),
            margin_permille in -500i64..=2_000,
        ) {
            let side = if long { Side::Buy } else { Side::Sell };
            let quantity = Quantity::new(Decimal::new(qty, 3)).unwrap();
            let entry = Price::new(Decimal::new(entry, 2)).unwrap();
            let size = quantity.get() * multiplier;
            let entry_notional = size * entry.get();
            let margin = (entry_notional * Decimal::new(margin_permille, 3)).round_dp(2);
            let result = ladder
                .liquidation_price_isolated(side, quantity, entry, Money::new(margin).unwrap(), multiplier)
                .unwrap();
            match result {
                Some(price) => {
                    let p = price.get();
                    let equity = margin + side.sign() * size * (p - entry.get());
                    let maintenance = mm(&ladder, size * p);
                    let tolerance = dec!(0.00000001) * entry_notional.max(margin.abs()).max(Decimal::ONE);
                    prop_assert!(
                        (equity - maintenance).abs() <= tolerance,
                        "price {}: equity {} vs maintenance {}", p, equity, maintenance
                    );
                }
                None => {
                    if long {
                        prop_assert!(margin >= entry_notional);
                    } else {
                        prop_assert!(margin <= -entry_notional);
                    }
                }
            }
        }
    }
}
