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
    /// Each rule's threshold as an integer mantissa and scale ([`crate::num::fixed`]),
    /// taken apart once here so that a check compares integers.
    thresholds: Vec<(i128, u32)>,
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
        let thresholds = rules
            .iter()
            .map(|r| crate::num::fixed(r.threshold))
            .collect();
        Ok(Self { rules, thresholds })
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
    /// The metrics are taken apart into integer mantissas once, and each comparison is
    /// one of integers against the threshold prepared when the set was built
    /// ([`crate::num::cmp_fixed`]); [`RuleSet::evaluate_reference`] is the same on
    /// `Decimal`s, and gives the same hits.
    pub fn evaluate(
        &self,
        metrics: &CheckMetrics,
        kyc: KycLevel,
        symbol: &Symbol,
        hits: &mut Vec<RuleHit>,
    ) {
        if self.rules.is_empty() {
            return;
        }
        let values = CheckMetric::fixed_values(metrics);
        for (rule, &threshold) in self.rules.iter().zip(&self.thresholds) {
            if !rule.active
                || rule.kyc_level.is_some_and(|k| k != kyc)
                || rule.symbol.as_ref().is_some_and(|s| s != symbol)
            {
                continue;
            }
            let Some(value) = values.get(rule.metric.index()).copied().flatten() else {
                continue;
            };
            if rule
                .operator
                .holds_for(crate::num::cmp_fixed(value, threshold))
            {
                hits.push(RuleHit {
                    rule_id: rule.id.clone(),
                    metric: rule.metric,
                    value: rule.metric.value(metrics).unwrap_or_default(),
                    operator: rule.operator,
                    threshold: rule.threshold,
                    severity: rule.severity,
                    action: rule.action,
                });
            }
        }
    }

    /// [`RuleSet::evaluate`] by `Decimal`'s own comparison, metric by metric: the
    /// reference the integer comparison is held to.
    pub fn evaluate_reference(
        &self,
        metrics: &CheckMetrics,
        kyc: KycLevel,
        symbol: &Symbol,
        hits: &mut Vec<RuleHit>,
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
        let mut hits = Vec::new();
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
