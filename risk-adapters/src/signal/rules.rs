//! The rulebook part of the results, recomputed only where a batch can have changed it.
//!
//! `risk report` runs the challenge rules and the detectors over every trade of every
//! account. The service keeps every account's pieces of that run and, after a batch of
//! trades, reruns each piece only for the accounts whose piece can have changed; every
//! other account keeps its pieces, which are what a run over everything would give it:
//!
//! - the challenge rules and the martingale detector read one account's trades: rerun for
//!   the accounts that got trades;
//! - hedging is only found between linked accounts (one owner's, or a group's): rerun on
//!   the whole link clusters ([`link_clusters`]) of the accounts that got trades;
//! - copy trading pairs an account's opens with other users' opens of the same symbol and
//!   direction within the window: rerun ([`copy_trading_of`], on the kept [`OpenIndex`])
//!   for the accounts that got trades and every account with an open within the window of
//!   a new trade (the window is symmetric, so no other account's pairs changed).
//!
//! Listing accounts (owners, groups and balances change) and config updates rerun
//! everything. The pieces are merged into each account's outcome by the report's own
//! [`crate::report::rulebook::with_detections`]. Tests: `risk_core`'s
//! `partial_reruns_equal_the_whole_sweeps` (the pieces), and `tests/signal.rs`
//! `incremental_equals_full_recompute` (many small batches against one).

use std::collections::BTreeSet;

use risk_core::rulebook::{
    copy_trading_of, detect_only, evaluate, link_clusters, sort_close_order, DetectAccount,
    Detector, OpenIndex, Outcome, RuleSignal, RuleTrade,
};

use super::{AccountState, SignalError};
use crate::report::rulebook::with_detections;
use crate::report::ReportError;
use crate::report_config::RuleSettings;

/// One account's pieces of the rulebook run.
#[derive(Debug, Clone, Default)]
pub(super) struct RuleParts {
    /// Its challenge outcome and martingale detection; `None` when its trades or who it
    /// is changed since they were computed.
    pub(super) own: Option<(Outcome, Vec<RuleSignal>)>,
    /// Its hedging detection.
    hedging: Vec<RuleSignal>,
    /// Its copy-trading detection.
    copying: Vec<RuleSignal>,
}

impl RuleParts {
    /// The account's outcome with its detections merged, as `risk report` gives it;
    /// `None` before its own part was computed.
    pub(super) fn outcome(&self) -> Option<Outcome> {
        let (own, martingale) = self.own.as_ref()?;
        let found: Vec<RuleSignal> = self
            .hedging
            .iter()
            .chain(&self.copying)
            .chain(martingale)
            .cloned()
            .collect();
        Some(with_detections(own.clone(), found))
    }
}

/// What the rulebook pieces of all accounts need between batches.
#[derive(Debug, Default)]
pub(super) struct RuleTracker {
    /// Rerun every piece of every account at the next [`RuleTracker::update`]: set at
    /// start, when accounts are listed, when the settings change and after a failure.
    full: bool,
    /// The trades added since the last update, with their account's position.
    pending: Vec<(u32, RuleTrade)>,
    /// Every held trade's open, for the copy-trading detector.
    opens: OpenIndex,
}

fn rulebook_error(
    account: Option<&super::AccountId>,
    source: risk_core::rulebook::RulebookError,
) -> SignalError {
    SignalError::Compute(
        ReportError::Rulebook {
            account: account.cloned(),
            source,
        }
        .to_string(),
    )
}

impl RuleTracker {
    /// A tracker whose first update reruns everything.
    pub(super) fn new() -> Self {
        Self {
            full: true,
            ..Self::default()
        }
    }

    /// Marks everything for a rerun.
    pub(super) fn rerun_all(&mut self) {
        self.full = true;
    }

    /// Notes a trade added to account `account` (its position).
    pub(super) fn added(&mut self, account: usize, trade: RuleTrade) {
        if !self.full {
            self.pending
                .push((u32::try_from(account).unwrap_or(u32::MAX), trade));
        }
    }

    /// Brings every account's pieces up to date; the positions of the accounts whose
    /// outcome may have changed (every account after a full rerun), ascending.
    ///
    /// # Errors
    /// [`SignalError::Compute`] when a rule overflows or a detector setting is invalid;
    /// everything is rerun at the next update then.
    pub(super) fn update(
        &mut self,
        accounts: &mut [AccountState],
        rules: &RuleSettings,
    ) -> Result<Vec<usize>, SignalError> {
        let result = self.update_inner(accounts, rules);
        self.pending.clear();
        self.full = result.is_err();
        result
    }

    fn update_inner(
        &mut self,
        accounts: &mut [AccountState],
        rules: &RuleSettings,
    ) -> Result<Vec<usize>, SignalError> {
        // The own pieces of every account whose trades or identity changed.
        let stale: Vec<usize> = (0..accounts.len())
            .filter(|&i| accounts.get(i).is_some_and(|a| a.parts.own.is_none()))
            .collect();
        for &i in &stale {
            let Some(a) = accounts.get_mut(i) else {
                continue;
            };
            sort_close_order(&mut a.rules);
            let book = rules.rulebooks.for_challenge(a.who.challenge.as_ref());
            let outcome = evaluate(book, &a.rules, a.who.initial_balance)
                .map_err(|e| rulebook_error(Some(&a.who.account), e))?;
            let view = [DetectAccount {
                account: &a.who.account,
                user: a.who.user.as_str(),
                group: a.group.as_deref(),
                trades: &a.rules,
            }];
            let martingale = detect_only(&view, &rules.detectors, Detector::Martingale)
                .map_err(|e| rulebook_error(None, e))?
                .pop()
                .unwrap_or_default();
            a.parts.own = Some((outcome, martingale));
        }

        let view: Vec<DetectAccount<'_>> = accounts
            .iter()
            .map(|a| DetectAccount {
                account: &a.who.account,
                user: a.who.user.as_str(),
                group: a.group.as_deref(),
                trades: &a.rules,
            })
            .collect();
        let (hedged, copied) = if self.full {
            self.opens = OpenIndex::new(&view);
            let all: Vec<usize> = (0..view.len()).collect();
            let hedging = detect_only(&view, &rules.detectors, Detector::Hedging)
                .map_err(|e| rulebook_error(None, e))?;
            let copying = detect_only(&view, &rules.detectors, Detector::CopyTrading)
                .map_err(|e| rulebook_error(None, e))?;
            (
                all.iter().copied().zip(hedging).collect::<Vec<_>>(),
                all.into_iter().zip(copying).collect::<Vec<_>>(),
            )
        } else {
            self.opens.insert(self.pending.iter().map(|(a, t)| (*a, t)));
            let mut changed: BTreeSet<usize> = stale.iter().copied().collect();
            changed.extend(self.pending.iter().map(|(a, _)| *a as usize));
            // Hedging: the whole link clusters of the accounts that changed.
            let cluster = link_clusters(&view);
            let wanted: BTreeSet<usize> = changed
                .iter()
                .filter_map(|&i| cluster.get(i).copied())
                .collect();
            let members: Vec<usize> = (0..view.len())
                .filter(|&i| cluster.get(i).is_some_and(|c| wanted.contains(c)))
                .collect();
            let sub: Vec<DetectAccount<'_>> = members
                .iter()
                .filter_map(|&i| view.get(i).copied())
                .collect();
            let hedging = detect_only(&sub, &rules.detectors, Detector::Hedging)
                .map_err(|e| rulebook_error(None, e))?;
            // Copy trading: the accounts that changed and those with an open near a new one.
            let mut near = changed.clone();
            for (_, t) in &self.pending {
                near.extend(self.opens.near(t, &rules.detectors).map(|b| b as usize));
            }
            let targets: Vec<usize> = near.into_iter().collect();
            let copying = copy_trading_of(&view, &self.opens, &rules.detectors, &targets)
                .map_err(|e| rulebook_error(None, e))?;
            (
                members.into_iter().zip(hedging).collect(),
                targets.into_iter().zip(copying).collect(),
            )
        };
        drop(view);
        // An account's result is a function of its own parts, its detections, who it is
        // and the settings: besides the stale accounts, only those whose detections
        // changed get a new one (every account after a full rerun).
        let mut redo: BTreeSet<usize> = stale.into_iter().collect();
        for (i, list) in hedged {
            if let Some(a) = accounts.get_mut(i) {
                if self.full || a.parts.hedging != list {
                    a.parts.hedging = list;
                    redo.insert(i);
                }
            }
        }
        for (i, list) in copied {
            if let Some(a) = accounts.get_mut(i) {
                if self.full || a.parts.copying != list {
                    a.parts.copying = list;
                    redo.insert(i);
                }
            }
        }
        Ok(redo.into_iter().collect())
    }
}
