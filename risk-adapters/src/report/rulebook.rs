//! The rulebook part of the report: every account's challenge outcome and the
//! cross-account detections.
//!
//! The report's grouping condenses every trade to a [`RuleTrade`] too (symbols numbered)
//! and sorts each account's into close-time order. Three strands run side by side: the
//! hedging sweep, the copy-trading sweep, and the challenge rules of every account followed
//! by the martingale detector; the detections are then merged into each account's signals
//! (they do not change the challenge status).

use rayon::prelude::*;
use risk_core::ids::{AccountId, ChallengeId, UserId};
use risk_core::rulebook::{
    detect_only, evaluate, DetectAccount, Detector, Outcome, RuleSignal, RuleTrade,
};
use risk_core::Decimal;

use super::ReportError;
use crate::report_config::RuleSettings;

/// Who an account is, as the rulebook needs it.
pub(crate) struct RuleAccount<'a> {
    pub(crate) account: &'a AccountId,
    pub(crate) user: &'a UserId,
    pub(crate) challenge: Option<&'a ChallengeId>,
    pub(crate) group: Option<&'a str>,
    pub(crate) initial_balance: Decimal,
}

/// The outcome of every account of `accounts` (same order), detections merged. Account
/// `i`'s trades are `grouped[starts[i]..starts[i + 1]]`, in close-time order.
pub(crate) fn outcomes(
    grouped: &[RuleTrade],
    starts: &[usize],
    accounts: &[RuleAccount<'_>],
    settings: &RuleSettings,
) -> Result<Vec<Outcome>, ReportError> {
    let slice = |i: usize| {
        let (from, to) = (starts[i], starts[i + 1]);
        &grouped[from..to]
    };
    let view: Vec<DetectAccount<'_>> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| DetectAccount {
            account: a.account,
            user: a.user.as_str(),
            group: a.group,
            trades: slice(i),
        })
        .collect();
    let one = |i: usize| {
        let a = &accounts[i];
        let book = settings.rulebooks.for_challenge(a.challenge);
        evaluate(book, slice(i), a.initial_balance).map_err(|source| ReportError::Rulebook {
            account: Some(a.account.clone()),
            source,
        })
    };
    // Four strands on rayon's pool: the hedging sweep, the copy-trading sweep, the
    // martingale detector, and the challenge rules of every account (split further, so
    // that the cores stay busy until the last strand ends). The rules' results are
    // collected in order first, so the error is the first account's, as one thread finds.
    let detect = |which| detect_only(&view, &settings.detectors, which);
    let ((hedging, copying), (out, martingale)) = rayon::join(
        || {
            rayon::join(
                || detect(Detector::Hedging),
                || detect(Detector::CopyTrading),
            )
        },
        || {
            rayon::join(
                || {
                    (0..accounts.len())
                        .into_par_iter()
                        .map(one)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .collect::<Result<Vec<Outcome>, ReportError>>()
                },
                || detect(Detector::Martingale),
            )
        },
    );
    let detected = [hedging, copying, martingale];
    let mut lists = Vec::with_capacity(3);
    for d in detected {
        lists.push(d.map_err(|source| ReportError::Rulebook {
            account: None,
            source,
        })?);
    }
    let mut detected: Vec<Vec<_>> = vec![Vec::new(); accounts.len()];
    for list in lists {
        for (all, more) in detected.iter_mut().zip(list) {
            all.extend(more);
        }
    }
    out.map(|out| {
        out.into_iter()
            .zip(detected)
            .map(|(o, found)| with_detections(o, found))
            .collect()
    })
}

/// `outcome` with an account's detections (hedging, copy trading, martingale, in that
/// order) merged into its signals, by time then kind: how [`outcomes`] merges them, shared
/// with the signal service, which keeps the pieces apart.
pub(crate) fn with_detections(mut outcome: Outcome, found: Vec<RuleSignal>) -> Outcome {
    if !found.is_empty() {
        outcome.signals.extend(found);
        outcome
            .signals
            .sort_by(|a, b| a.at.cmp(&b.at).then(a.kind.cmp(&b.kind)));
    }
    outcome
}
