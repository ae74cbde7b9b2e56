//! Dynamic rules: a comparison of one check metric with a threshold, scoped by KYC level
//! and symbol, that rejects (`REJECT`) or flags (`WARN`) an order.
//!
//! A [`RuleSet`] holds its rules sorted by id, so evaluation order (and the order of the
//! reported hits) is deterministic whatever order the rules were loaded in.

use crate::ids::{RuleId, Symbol};
use crate::model::{wire_enum, KycLevel, RuleAction, Severity};
use crate::pretrade::{CheckMetric, CheckMetrics};
use crate::Decimal;

wire_enum!(
    /// A comparison operator, named by its symbol (also in config files).
    Operator {
        /// `>`
        #[cfg_attr(feature = "serde", serde(rename = ">"))]
        Gt = ">",
        /// `>=`
        #[cfg_attr(feature = "serde", serde(rename = ">="))]
        Ge = ">=",
        /// `<`
        #[cfg_attr(feature = "serde", serde(rename = "<"))]
        Lt = "<",
        /// `<=`
        #[cfg_attr(feature = "serde", serde(rename = "<="))]
        Le = "<=",
        /// `==` (numeric equality: 1.0 == 1.00)
        #[cfg_attr(feature = "serde", serde(rename = "=="))]
        Eq = "==",
        /// `!=`
        #[cfg_attr(feature = "serde", serde(rename = "!="))]
        Ne = "!=",
    }
);

impl Operator {
    /// `value <op> threshold`.
    #[inline]
    #[must_use]
    pub fn holds(self, value: Decimal, threshold: Decimal) -> bool {
        self.holds_for(crate::num::cmp_decimal(value, threshold))
    }

    /// Whether the operator holds for `value` ordered `order` against its threshold.
    #[inline(always)]
    #[must_use]
    pub fn holds_for(self, order: std::cmp::Ordering) -> bool {
        match self {
            Self::Gt => order.is_gt(),
            Self::Ge => order.is_ge(),
            Self::Lt => order.is_lt(),
            Self::Le => order.is_le(),
            Self::Eq => order.is_eq(),
            Self::Ne => order.is_ne(),
        }
    }
}

/// One rule. It fires when `metric <operator> threshold` holds for a check in its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Rule {
    /// Unique id, reported in hits.
    pub id: RuleId,
    /// What it tests.
    pub metric: CheckMetric,
    /// How it compares.
    pub operator: Operator,
    /// What it compares with.
    pub threshold: Decimal,
    /// How serious a hit is.
    pub severity: Severity,
    /// Reject or flag.
    pub action: RuleAction,
    /// When set, the rule applies only to accounts at exactly this KYC level.
    #[cfg_attr(feature = "serde", serde(default))]
    pub kyc_level: Option<KycLevel>,
    /// When set, the rule applies only to orders in this symbol.
    #[cfg_attr(feature = "serde", serde(default))]
    pub symbol: Option<Symbol>,
    /// Inactive rules are kept but never evaluated.
    #[cfg_attr(feature = "serde", serde(default = "crate::num::default_true"))]
    pub active: bool,
}

/// A rule that fired on a check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RuleHit {
    /// The rule's id.
    pub rule_id: RuleId,
    /// The metric it tested.
    pub metric: CheckMetric,
    /// The metric's value on this check.
    pub value: Decimal,
    /// The comparison.
    pub operator: Operator,
    /// The threshold.
    pub threshold: Decimal,
    /// The rule's severity.
    pub severity: Severity,
    /// The rule's action.
    pub action: RuleAction,
}

/// How many rule hits a response holds without a heap allocation.
const INLINE_HITS: usize = 4;

/// The rules that fired on a check, in rule-id order.
///
/// The first [`RuleHits::INLINE`] hits live inside the value itself, so a check that
/// fires a few rules (a reject by a rule included) allocates nothing; more spill to the
/// heap. It reads as a slice of [`RuleHit`] (`iter`, `len`, `is_empty`, indexing).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RuleHits(smallvec::SmallVec<[RuleHit; INLINE_HITS]>);

impl RuleHits {
    /// How many hits are held inline.
    pub const INLINE: usize = INLINE_HITS;

    /// No hits.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a hit.
    pub fn push(&mut self, hit: RuleHit) {
        self.0.push(hit);
    }

    /// Removes every hit.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The hits as a `Vec`.
    #[must_use]
    pub fn into_vec(self) -> Vec<RuleHit> {
        self.0.into_vec()
    }
}

impl std::ops::Deref for RuleHits {
    type Target = [RuleHit];
    fn deref(&self) -> &[RuleHit] {
        &self.0
    }
}

/// As a list, the way a `Vec<RuleHit>` shows.
impl std::fmt::Debug for RuleHits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a RuleHits {
    type Item = &'a RuleHit;
    type IntoIter = std::slice::Iter<'a, RuleHit>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<RuleHit> for RuleHits {
    fn from_iter<I: IntoIterator<Item = RuleHit>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl From<Vec<RuleHit>> for RuleHits {
    fn from(hits: Vec<RuleHit>) -> Self {
        Self(smallvec::SmallVec::from_vec(hits))
    }
}

impl PartialEq<Vec<RuleHit>> for RuleHits {
    fn eq(&self, other: &Vec<RuleHit>) -> bool {
        self.0.as_slice() == other.as_slice()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for RuleHits {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for RuleHits {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<RuleHit>::deserialize(deserializer).map(Self::from)
    }
}

/// A rule set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// Two rules share an id.
    #[error("rule id `{0}` is used more than once")]
    DuplicateId(RuleId),
    /// A rule has an empty id.
    #[error("rule #{0} has an empty id")]
    EmptyId(usize),
}

/// A validated set of rules, sorted by id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "Vec<Rule>", into = "Vec<Rule>"))]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// What a check needs of each rule, prepared once when the set is built (same order).
    prepared: Vec<Prepared>,
    /// The active rules with no symbol scope.
    general: Group,
    /// The active rules scoped to each symbol.
    by_symbol: crate::hash::HashMap<Symbol, Group>,
}

/// Active rules of one symbol scope: their positions (ascending) and, per metric they
/// test, a screen that tells when none of them can fire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Group {
    rules: Vec<u32>,
    screens: Vec<Screen>,
}

/// The loosest thresholds of a group's rules on one metric, whatever their KYC scope:
/// no `>`/`>=` rule fires below `above`, no `<`/`<=` rule above `below`. `exact`: an
/// `==`/`!=` rule tests the metric, so it is never screened out.
///
/// Each bound is also kept at every scale a decimal can have (`above_at`, `below_at`), so
/// a check compares the metric's own mantissa with one integer and never rescales: at
/// scale `k`, `above_at[k]` is the smallest mantissa whose value reaches `above`
/// (`ceil(above x 10^k)`) and `below_at[k]` the largest whose value stays within
/// `below` (`floor(below x 10^k)`), so that for a metric `m / 10^k`,
/// `m / 10^k >= above` exactly when `m >= above_at[k]`, and likewise for `below`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Screen {
    metric: CheckMetric,
    above: Option<(i128, u32)>,
    below: Option<(i128, u32)>,
    exact: bool,
    /// `above` at each scale; `i128::MAX` (beyond any mantissa) when there is none.
    above_at: [i128; SCALES],
    /// `below` at each scale; `i128::MIN` when there is none.
    below_at: [i128; SCALES],
    /// The same bounds for a mantissa that fits an `i64` (every metric the fixed-point
    /// check computes), indexed by the scale's five bits: `m >= above_at[k]` exactly
    /// when `m > above_64[k]` (`above_at[k] - 1` clamped to `i64`: a mantissa is above
    /// `i64::MIN`) and `m <= below_at[k]` exactly when `m <= below_64[k]` (`below_at[k]`
    /// clamped). An `exact` screen, and the scales no decimal has, always pass.
    above_64: [i64; 32],
    below_64: [i64; 32],
}

/// The scales a `Decimal` can have: 0 to 28.
const SCALES: usize = 29;

/// The mantissa of `(mantissa, scale)` at scale `to`: exact when `to >= scale` (saturated
/// past `i128`, beyond any `Decimal` mantissa, which keeps every comparison with one
/// exact), rounded up (`ceil`) or down otherwise.
fn at_scale((mantissa, scale): (i128, u32), to: u32, ceil: bool) -> i128 {
    let pow10 = |n: u32| crate::num::pow10_u128(n).and_then(|p| i128::try_from(p).ok());
    if to >= scale {
        let lifted = pow10(to.abs_diff(scale)).and_then(|p| mantissa.checked_mul(p));
        return lifted.unwrap_or(if mantissa < 0 { i128::MIN } else { i128::MAX });
    }
    let dropped = pow10(scale.abs_diff(to)).and_then(|p| {
        let floor = mantissa.checked_div_euclid(p)?;
        let exact = mantissa.checked_rem_euclid(p)? == 0;
        Some(if ceil && !exact {
            floor.saturating_add(1)
        } else {
            floor
        })
    });
    // A drop of more than 28 places leaves less than one unit of a `Decimal` mantissa.
    dropped.unwrap_or(match (ceil, mantissa.signum()) {
        (true, 1) => 1,
        (false, -1) => -1,
        _ => 0,
    })
}

impl Screen {
    fn new(metric: CheckMetric) -> Self {
        Self {
            metric,
            above: None,
            below: None,
            exact: false,
            above_at: [i128::MAX; SCALES],
            below_at: [i128::MIN; SCALES],
            above_64: [i64::MIN; 32],
            below_64: [i64::MIN; 32],
        }
    }

    /// Fills the per-scale bounds from `above` and `below`.
    fn prepare(&mut self) {
        for (k, (a, b)) in (0u32..).zip(self.above_at.iter_mut().zip(self.below_at.iter_mut())) {
            *a = self.above.map_or(i128::MAX, |t| at_scale(t, k, true));
            *b = self.below.map_or(i128::MIN, |t| at_scale(t, k, false));
        }
        let clamp = |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
        for (k, (a, b)) in self.above_64.iter_mut().zip(&mut self.below_64).enumerate() {
            match (self.above_at.get(k), self.below_at.get(k)) {
                (Some(&above), Some(&below)) if !self.exact => {
                    *a = clamp(above.saturating_sub(1));
                    *b = clamp(below);
                }
                _ => (*a, *b) = (i64::MIN, i64::MIN),
            }
        }
    }

    /// Whether a rule of the group on this metric might fire at `value`: one `i64`
    /// comparison per bound, at the value's own scale. The mantissa is read as the
    /// check's figures are ([`Fx`](crate::fixed::Fx): two words and a sign, no 96-bit assembly), and
    /// through `Decimal::mantissa` and the `i128` bounds only when it does not fit 64 bits.
    #[inline(always)]
    fn might_fire(&self, value: Decimal) -> bool {
        // `serialize` is the documented layout (flags, then the low, middle and high
        // 32-bit words, little-endian), as `Fx::new` reads it; a negative zero is zero.
        let [f0, f1, f2, f3, l0, l1, l2, l3, m0, m1, m2, m3, h0, h1, h2, h3] = value.serialize();
        let flags = u32::from_le_bytes([f0, f1, f2, f3]);
        let (lo, mid) = (
            u32::from_le_bytes([l0, l1, l2, l3]),
            u32::from_le_bytes([m0, m1, m2, m3]),
        );
        if u32::from_le_bytes([h0, h1, h2, h3]) == 0 && mid >> 31 == 0 {
            // Below 2^63: a non-negative `i64`, whose negation is in range.
            #[allow(clippy::cast_possible_wrap)]
            let magnitude = (u64::from(mid) << 32 | u64::from(lo)) as i64;
            let m = if flags >> 31 != 0 {
                magnitude.wrapping_neg()
            } else {
                magnitude
            };
            // Five bits index 32 entries: no bounds check.
            let k = (flags >> 16 & 0x1f) as usize;
            return match (self.above_64.get(k), self.below_64.get(k)) {
                (Some(&above), Some(&below)) => m > above || m <= below,
                _ => true,
            };
        }
        if self.exact {
            return true;
        }
        let (mantissa, scale) = (value.mantissa(), value.scale());
        match (
            self.above_at.get(scale as usize),
            self.below_at.get(scale as usize),
        ) {
            (Some(&above), Some(&below)) => mantissa >= above || mantissa <= below,
            // Not a `Decimal` scale: the comparison on rescaled integers.
            _ => self.might_fire_rescaled((mantissa, scale)),
        }
    }

    /// [`Screen::might_fire`] by rescaling to the larger scale.
    fn might_fire_rescaled(&self, value: (i128, u32)) -> bool {
        use crate::num::cmp_fixed;
        self.exact
            || self.above.is_some_and(|t| cmp_fixed(value, t).is_ge())
            || self.below.is_some_and(|t| cmp_fixed(value, t).is_le())
    }
}

impl Group {
    fn add(&mut self, index: u32, rule: &Rule) {
        use crate::num::{cmp_fixed, fixed};
        use std::cmp::Ordering;
        self.rules.push(index);
        let at = match self.screens.iter().position(|s| s.metric == rule.metric) {
            Some(at) => at,
            None => {
                self.screens.push(Screen::new(rule.metric));
                self.screens.len().saturating_sub(1)
            }
        };
        let Some(screen) = self.screens.get_mut(at) else {
            return;
        };
        let t = fixed(rule.threshold);
        let keep = |bound: Option<(i128, u32)>, wanted: Ordering| match bound {
            Some(b) if cmp_fixed(t, b) != wanted => Some(b),
            _ => Some(t),
        };
        match rule.operator {
            Operator::Gt | Operator::Ge => screen.above = keep(screen.above, Ordering::Less),
            Operator::Lt | Operator::Le => screen.below = keep(screen.below, Ordering::Greater),
            Operator::Eq | Operator::Ne => screen.exact = true,
        }
        screen.prepare();
    }

    /// Whether any rule of the group might fire on `metrics`.
    #[inline]
    fn might_fire(&self, metrics: &CheckMetrics) -> bool {
        self.screens
            .iter()
            .any(|s| s.metric.value(metrics).is_some_and(|v| s.might_fire(v)))
    }
}

/// A rule as a check reads it: the threshold taken apart into an integer mantissa and
/// scale ([`crate::num::fixed`]), so that evaluation compares integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Prepared {
    metric: CheckMetric,
    operator: Operator,
    kyc_level: Option<KycLevel>,
    threshold: (i128, u32),
}

impl RuleSet {
    /// Validates and sorts `rules`.
    ///
    /// # Errors
    /// [`RuleError`] when an id is empty or repeated.
    pub fn new(mut rules: Vec<Rule>) -> Result<Self, RuleError> {
        if let Some(i) = rules.iter().position(|r| r.id.is_empty()) {
            return Err(RuleError::EmptyId(i));
        }
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(w) = rules.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(RuleError::DuplicateId(w[0].id.clone()));
        }
        let prepared = rules
            .iter()
            .map(|r| Prepared {
                metric: r.metric,
                operator: r.operator,
                kyc_level: r.kyc_level,
                threshold: crate::num::fixed(r.threshold),
            })
            .collect();
        let mut general = Group::default();
        let mut by_symbol = crate::hash::HashMap::<Symbol, Group>::default();
        for (i, rule) in rules.iter().enumerate().filter(|(_, r)| r.active) {
            let Ok(i) = u32::try_from(i) else { break };
            match &rule.symbol {
                None => general.add(i, rule),
                Some(symbol) => by_symbol.entry(symbol.clone()).or_default().add(i, rule),
            }
        }
        Ok(Self {
            rules,
            prepared,
            general,
            by_symbol,
        })
    }

    /// The rules, sorted by id.
    #[must_use]
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Evaluates every active rule in scope against `metrics`, appending hits in id order.
    /// A rule whose metric is undefined for this check (see [`CheckMetric::value`]) does
    /// not fire.
    ///
    /// The set is prepared when built: its active rules grouped by symbol scope, their
    /// thresholds taken apart into integer mantissas ([`crate::num::fixed`]), and per
    /// group and metric the loosest threshold any rule fires at. A check first compares
    /// each metric once against those (no rule can fire: done, the common case), and
    /// only then visits the rules in scope, comparing integers ([`crate::num::cmp_fixed`]);
    /// [`RuleSet::evaluate_reference`] visits every rule and compares `Decimal`s, and gives
    /// the same hits.
    pub fn evaluate(
        &self,
        metrics: &CheckMetrics,
        kyc: KycLevel,
        symbol: &Symbol,
        hits: &mut RuleHits,
    ) {
        let scoped = match self.by_symbol.is_empty() {
            true => None,
            false => self.by_symbol.get(symbol),
        };
        // Most checks fire no rule: the screens tell so with one comparison per metric.
        if !self.general.might_fire(metrics) && !scoped.is_some_and(|g| g.might_fire(metrics)) {
            return;
        }
        let scoped = scoped.map_or(&[][..], |g| g.rules.as_slice());
        // The rules without a symbol and those of this symbol, merged in id order.
        let (mut a, mut b) = (
            self.general.rules.iter().peekable(),
            scoped.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            let Some(&i) = next else { break };
            self.evaluate_one(i as usize, metrics, kyc, hits);
        }
    }

    /// Evaluates rule `i` (active and in symbol scope) on integers.
    #[inline(always)]
    fn evaluate_one(&self, i: usize, metrics: &CheckMetrics, kyc: KycLevel, hits: &mut RuleHits) {
        let (Some(p), Some(rule)) = (self.prepared.get(i), self.rules.get(i)) else {
            return;
        };
        if p.kyc_level.is_some_and(|k| k != kyc) {
            return;
        }
        let Some(value) = p.metric.value(metrics) else {
            return;
        };
        if p.operator
            .holds_for(crate::num::cmp_fixed(crate::num::fixed(value), p.threshold))
        {
            hits.push(RuleHit {
                rule_id: rule.id.clone(),
                metric: rule.metric,
                value,
                operator: rule.operator,
                threshold: rule.threshold,
                severity: rule.severity,
                action: rule.action,
            });
        }
    }

    /// [`RuleSet::evaluate`] by `Decimal`'s own comparison, metric by metric: the
    /// reference the integer comparison is held to.
    pub fn evaluate_reference(
        &self,
        metrics: &CheckMetrics,
        kyc: KycLevel,
        symbol: &Symbol,
        hits: &mut RuleHits,
    ) {
        for rule in &self.rules {
            if !rule.active
                || rule.kyc_level.is_some_and(|k| k != kyc)
                || rule.symbol.as_ref().is_some_and(|s| s != symbol)
            {
                continue;
            }
            let Some(value) = rule.metric.value(metrics) else {
                continue;
            };
            if rule.operator.holds_for(value.cmp(&rule.threshold)) {
                hits.push(RuleHit {
                    rule_id: rule.id.clone(),
                    metric: rule.metric,
                    value,
                    operator: rule.operator,
                    threshold: rule.threshold,
                    severity: rule.severity,
                    action: rule.action,
                });
            }
        }
    }
}

impl TryFrom<Vec<Rule>> for RuleSet {
    type Error = RuleError;
    fn try_from(rules: Vec<Rule>) -> Result<Self, RuleError> {
        Self::new(rules)
    }
}

impl From<RuleSet> for Vec<Rule> {
    fn from(set: RuleSet) -> Self {
        set.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        id: &str,
        metric: CheckMetric,
        op: Operator,
        threshold: i64,
        action: RuleAction,
    ) -> Rule {
        Rule {
            id: RuleId::new(id),
            metric,
            operator: op,
            threshold: Decimal::from(threshold),
            severity: Severity::High,
            action,
            kyc_level: None,
            symbol: None,
            active: true,
        }
    }

    #[test]
    fn operators_compare_numerically() {
        let one = Decimal::ONE;
        let one_00 = Decimal::new(100, 2);
        assert!(Operator::Eq.holds(one, one_00));
        assert!(!Operator::Ne.holds(one, one_00));
        assert!(Operator::Ge.holds(one, one_00) && Operator::Le.holds(one, one_00));
        assert!(!Operator::Gt.holds(one, one_00) && !Operator::Lt.holds(one, one_00));
        for op in Operator::ALL {
            assert_eq!(op.as_str().parse::<Operator>(), Ok(*op));
        }
    }

    /// The screens that skip rule sets with no possible hit are exact at their edges: a
    /// metric equal to the loosest threshold (written at another scale) still fires the
    /// `>=` and `<=` rules, and the hits are those of the `Decimal` reference, in id order
    /// across the general and the symbol's rules, whatever the KYC scopes.
    #[test]
    fn screened_evaluation_equals_the_reference_at_the_edges() {
        let btc = Symbol::new("BTCUSDT");
        let mut rules = Vec::new();
        for (i, (op, threshold)) in [
            (Operator::Ge, 5_000),
            (Operator::Gt, 5_000),
            (Operator::Le, 5_000),
            (Operator::Lt, 5_000),
            (Operator::Ge, 4_000),
            (Operator::Le, 6_000),
            (Operator::Eq, 5_000),
            (Operator::Ne, 5_000),
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = rule(
                &format!("r{i}"),
                CheckMetric::OrderNotional,
                op,
                threshold,
                RuleAction::Warn,
            );
            r.symbol = (i % 2 == 1).then(|| btc.clone());
            r.kyc_level = (i % 3 == 2).then_some(KycLevel::L2);
            rules.push(r);
        }
        let set = RuleSet::new(rules).expect("valid");
        for (notional, scale) in [
            (50_000, 1),
            (5_000_000, 3),
            (4_999_999, 3),
            (5_000_001, 3),
            (3_000, 0),
            (7_000, 0),
        ] {
            let metrics = CheckMetrics {
                order_notional: Decimal::new(notional, scale),
                ..CheckMetrics::default()
            };
            for kyc in [KycLevel::L1, KycLevel::L2] {
                for symbol in [&btc, &Symbol::new("ETHUSDT")] {
                    let (mut fast, mut reference) = (RuleHits::new(), RuleHits::new());
                    set.evaluate(&metrics, kyc, symbol, &mut fast);
                    set.evaluate_reference(&metrics, kyc, symbol, &mut reference);
                    assert_eq!(fast, reference, "{notional}e-{scale} {kyc:?} {symbol}");
                }
            }
            // Each operator alone, its threshold at the metric's value or one unit of the
            // last place away: the screen is the rule's own comparison.
            for op in Operator::ALL {
                for delta in [-1, 0, 1] {
                    let mut r = rule("only", CheckMetric::OrderNotional, *op, 0, RuleAction::Warn);
                    r.threshold = Decimal::new(notional + delta, scale);
                    let single = RuleSet::new(vec![r]).expect("valid");
                    let (mut fast, mut reference) = (RuleHits::new(), RuleHits::new());
                    single.evaluate(&metrics, KycLevel::L1, &btc, &mut fast);
                    single.evaluate_reference(&metrics, KycLevel::L1, &btc, &mut reference);
                    assert_eq!(fast, reference, "{op} {delta}");
                }
            }
        }
    }

    /// A decimal from a mantissa below 2^96 in magnitude and a scale of 0-28.
    fn decimal(lo: u64, hi: u32, negative: bool, scale: u32) -> Decimal {
        let (lo, mid) = (lo as u32, (lo >> 32) as u32);
        Decimal::from_parts(lo, mid, hi, negative, scale)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        /// The per-scale bounds decide as the comparison on rescaled integers does (which
        /// is `Decimal`'s order), for thresholds and values at every scale, small and up
        /// to 96 bits, equal values written at other scales included.
        #[test]
        fn per_scale_screen_bounds_are_the_rescaled_comparison(
            (t_lo, t_hi, t_neg, t_scale) in (proptest::prelude::any::<u64>(), 0u32..4, proptest::prelude::any::<bool>(), 0u32..=28),
            (v_lo, v_hi, v_neg, v_scale) in (proptest::prelude::any::<u64>(), 0u32..4, proptest::prelude::any::<bool>(), 0u32..=28),
            wide in proptest::prelude::any::<bool>(),
            small in proptest::prelude::any::<bool>(),
            rewrite in 0u32..6,
            ops in proptest::collection::vec(0usize..4, 1..3),
        ) {
            let (t_lo, v_lo) = if small { (t_lo % 10_000, v_lo % 10_000) } else { (t_lo, v_lo) };
            let (t_hi, v_hi) = if wide { (t_hi, v_hi) } else { (0, 0) };
            let threshold = decimal(t_lo, t_hi, t_neg, t_scale);
            // Half the time the value is the threshold itself, at another scale.
            let value = match rewrite {
                0 => {
                    let mut v = threshold;
                    v.rescale(t_scale.saturating_add(v_scale).min(28));
                    v
                }
                1 => threshold,
                // The threshold cut to fewer places, and one unit of the last place either
                // side: where rounding the bound up or down decides.
                2..=4 => {
                    let cut = threshold.trunc_with_scale(v_scale.min(t_scale));
                    let unit = Decimal::new(1, cut.scale());
                    match rewrite {
                        2 => cut,
                        3 => cut.checked_add(unit).unwrap_or(cut),
                        _ => cut.checked_sub(unit).unwrap_or(cut),
                    }
                }
                _ => decimal(v_lo, v_hi, v_neg, v_scale),
            };
            let mut screen = Screen::new(CheckMetric::OrderNotional);
            let t = crate::num::fixed(threshold);
            for op in ops {
                match op {
                    0 => screen.above = Some(t),
                    1 => screen.below = Some(t),
                    2 => screen.above = Some(crate::num::fixed(value)),
                    _ => screen.below = Some(crate::num::fixed(value)),
                }
            }
            screen.prepare();
            proptest::prop_assert_eq!(
                screen.might_fire(value),
                screen.might_fire_rescaled(crate::num::fixed(value)),
                "{} against above {:?} below {:?}", value, screen.above, screen.below
            );
        }
    }

    #[test]
    fn duplicate_and_empty_ids_are_refused() {
        let r = rule(
            "a",
            CheckMetric::Leverage,
            Operator::Gt,
            1,
            RuleAction::Warn,
        );
        assert_eq!(
            RuleSet::new(vec![r.clone(), r.clone()]),
            Err(RuleError::DuplicateId(RuleId::new("a")))
        );
        assert_eq!(
            RuleSet::new(vec![rule(
                "",
                CheckMetric::Leverage,
                Operator::Gt,
                1,
                RuleAction::Warn
            )]),
            Err(RuleError::EmptyId(0))
        );
    }

    #[test]
    fn evaluation_is_sorted_scoped_and_skips_inactive_and_undefined() {
        let mut scoped_kyc = rule(
            "c-kyc",
            CheckMetric::Leverage,
            Operator::Ge,
            1,
            RuleAction::Reject,
        );
        scoped_kyc.kyc_level = Some(KycLevel::L2);
        let mut scoped_symbol = rule(
            "d-sym",
            CheckMetric::Leverage,
            Operator::Ge,
            1,
            RuleAction::Reject,
        );
        scoped_symbol.symbol = Some(Symbol::new("ETHUSDT"));
        let mut inactive = rule(
            "e-off",
            CheckMetric::Leverage,
            Operator::Ge,
            1,
            RuleAction::Reject,
        );
        inactive.active = false;
        let set = RuleSet::new(vec![
            rule(
                "z-last",
                CheckMetric::OrderNotional,
                Operator::Gt,
                100,
                RuleAction::Warn,
            ),
            rule(
                "a-first",
                CheckMetric::Leverage,
                Operator::Ge,
                10,
                RuleAction::Reject,
            ),
            rule(
                "b-undefined",
                CheckMetric::ProjectedMarginRatio,
                Operator::Ge,
                0,
                RuleAction::Reject,
            ),
            rule(
                "f-miss",
                CheckMetric::OpenOrders,
                Operator::Gt,
                5,
                RuleAction::Reject,
            ),
            scoped_kyc,
            scoped_symbol,
            inactive,
        ])
        .unwrap_or_default();
        let metrics = CheckMetrics {
            leverage: Decimal::from(10),
            order_notional: Decimal::from(101),
            open_orders: Decimal::from(5),
            projected_margin_ratio: None,
            ..CheckMetrics::default()
        };
        let mut hits = RuleHits::new();
        set.evaluate(&metrics, KycLevel::L1, &Symbol::new("BTCUSDT"), &mut hits);
        let ids: Vec<&str> = hits.iter().map(|h| h.rule_id.as_str()).collect();
        assert_eq!(ids, ["a-first", "z-last"]);
        assert_eq!(hits[0].value, Decimal::from(10));
        hits.clear();
        set.evaluate(&metrics, KycLevel::L2, &Symbol::new("ETHUSDT"), &mut hits);
        let ids: Vec<&str> = hits.iter().map(|h| h.rule_id.as_str()).collect();
        assert_eq!(ids, ["a-first", "c-kyc", "d-sym", "z-last"]);
    }
}
