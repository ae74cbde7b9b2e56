//! The check's answer and the events a transport may publish from it.

use chrono::{DateTime, Utc};

use crate::ids::{AccountId, OrderId, Symbol, TraceId};
use crate::model::{Decision, RejectReason, RuleAction};
use crate::pretrade::{CheckMessage, CheckMetrics};
use crate::rules::{RuleHit, RuleHits};
use crate::Decimal;

/// The full answer to a pre-trade check.
///
/// The wire response (`risk.v1.PreTradeCheckResponse`) is a subset; the core also carries
/// the computed [`CheckMetrics`] and, through [`CheckResponse::events`], the events a
/// transport may publish.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CheckResponse {
    /// Approved, rejected or flagged.
    pub decision: Decision,
    /// Set exactly when the decision is `REJECTED`: the first failing phase.
    pub reject_reason: Option<RejectReason>,
    /// A human-readable explanation naming the figures that decided (written out when
    /// displayed).
    pub message: CheckMessage,
    /// The projected margin ratio reaches the liquidation threshold (or is unbounded).
    pub liquidation_risk: bool,
    /// The projected margin ratio reaches the margin-call threshold.
    pub margin_call: bool,
    /// Every rule that fired, in rule-id order, even when an earlier phase rejected.
    pub rule_hits: RuleHits,
    /// The request's trace id.
    pub trace_id: TraceId,
    /// The request's account.
    pub account_id: AccountId,
    /// The request's order id.
    pub order_id: OrderId,
    /// The request's symbol.
    pub symbol: Symbol,
    /// The `now` the check ran at.
    pub checked_at: DateTime<Utc>,
    /// The figures computed, when the check got far enough to price the order.
    pub metrics: Option<CheckMetrics>,
}

/// An event derived from a check, for a transport to publish (audit log, Kafka, webhooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskEvent<'a> {
    /// Every check produces one: the decision with everything that explains it.
    DecisionAudit(&'a CheckResponse),
    /// The account's projected exposure, whenever the order was priced.
    ExposureSnapshot {
        /// The account.
        account_id: &'a AccountId,
        /// The figures.
        metrics: &'a CheckMetrics,
    },
    /// A rule that fired with action REJECT or WARN.
    RuleViolation {
        /// The account.
        account_id: &'a AccountId,
        /// The hit.
        hit: &'a RuleHit,
    },
    /// The projected margin ratio reached the margin-call threshold.
    MarginCall {
        /// The account.
        account_id: &'a AccountId,
        /// The projected margin ratio (`None`: unbounded).
        ratio: Option<Decimal>,
    },
    /// The projected margin ratio reached the liquidation threshold.
    LiquidationSignal {
        /// The account.
        account_id: &'a AccountId,
        /// The projected margin ratio (`None`: unbounded).
        ratio: Option<Decimal>,
    },
}

impl CheckResponse {
    /// Projected margin ratio after the order fills, when the order was priced and the
    /// ratio is bounded (from [`CheckResponse::metrics`]).
    #[must_use]
    pub fn projected_margin_ratio(&self) -> Option<Decimal> {
        self.metrics.as_ref().and_then(|m| m.projected_margin_ratio)
    }

    /// Initial margin the order needs, when the order was priced (from
    /// [`CheckResponse::metrics`]).
    #[must_use]
    pub fn required_initial_margin(&self) -> Option<Decimal> {
        self.metrics.as_ref().map(|m| m.required_initial_margin)
    }

    /// True when the order may go to the market (approved or flagged).
    #[must_use]
    pub fn is_accepted(&self) -> bool {
        self.decision != Decision::Rejected
    }

    /// The events this check produced, derived from the response (nothing is stored
    /// twice): the audit record first, then the exposure snapshot, rule violations, margin
    /// call and liquidation signal as they apply.
    pub fn events(&self) -> impl Iterator<Item = RiskEvent<'_>> {
        let account_id = &self.account_id;
        let ratio = self.projected_margin_ratio();
        std::iter::once(RiskEvent::DecisionAudit(self))
            .chain(
                self.metrics
                    .as_ref()
                    .map(|metrics| RiskEvent::ExposureSnapshot {
                        account_id,
                        metrics,
                    }),
            )
            .chain(
                self.rule_hits
                    .iter()
                    .filter(|h| matches!(h.action, RuleAction::Reject | RuleAction::Warn))
                    .map(move |hit| RiskEvent::RuleViolation { account_id, hit }),
            )
            .chain(
                self.margin_call
                    .then_some(RiskEvent::MarginCall { account_id, ratio }),
            )
            .chain(
                self.liquidation_risk
                    .then_some(RiskEvent::LiquidationSignal { account_id, ratio }),
            )
    }
}
