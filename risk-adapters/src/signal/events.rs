//! The outbox events beside [`super::LEVEL_RAISED`], found after every batch by comparing
//! the new results with the stored ones (they go into the outbox in the batch's
//! transaction, as `account.risk_level_raised` does):
//!
//! | Type | When | Outbox `account_login` / `level` |
//! |---|---|---|
//! | [`SCORE_EXCEEDED`] | an account's score goes above `score.risk_threshold`: it is above now and was not above the threshold in force at its stored result (or had none) | the login / its level |
//! | [`SIGNAL_FIRED`] | an account has a signal its stored result did not have (every signal of a first result) | the login / its level |
//! | [`USER_LEVEL_RAISED`], [`CHALLENGE_LEVEL_RAISED`] | a user's or challenge's level rises above its stored level (a first result counts from LOW) | the user or challenge id / its level |
//!
//! A lower threshold (`POST /admin/update-config {"risk_threshold": 70}`) therefore raises
//! [`SCORE_EXCEEDED`] for every account between the new and the old threshold, in the
//! transaction of the new settings version. The stored state these comparisons start
//! from is rebuilt from the stored results at start.

use std::collections::{HashMap, HashSet};
use std::str::FromStr as _;

use risk_core::ids::AccountId;
use risk_core::score::{aggregate, AccountScore, RiskLevel, ScoreConfig};
use risk_core::Decimal;
use serde::Serialize;

use super::fastapi::{group_signal_names, signal_names};
use super::store::{EventRow, ResultRow};
use super::{Changes, State};
use crate::report::{group_reports, num, AccountReport, GroupReport};

/// An account's score went above `risk_threshold` (the FastAPI service's webhook).
pub const SCORE_EXCEEDED: &str = "account.risk_score_exceeded";
/// An account has a signal it did not have.
pub const SIGNAL_FIRED: &str = "account.signal_fired";
/// A user's level rose.
pub const USER_LEVEL_RAISED: &str = "user.risk_level_raised";
/// A challenge's level rose.
pub const CHALLENGE_LEVEL_RAISED: &str = "challenge.risk_level_raised";

/// The stored level and score of each user (or challenge), by id.
pub(super) type GroupLevels = HashMap<String, (RiskLevel, Decimal)>;

/// A group level change to record: `None` when the group has no account any more.
pub(super) type GroupChange = (String, Option<(RiskLevel, Decimal)>);

/// The body of [`SCORE_EXCEEDED`] and [`SIGNAL_FIRED`]: the FastAPI webhook's four fields
/// first, then the account, its new and previous level and score.
#[derive(Clone, Serialize)]
struct AccountEvent<'a> {
    trading_account_login: &'a str,
    risk_signals: &'a [&'a str],
    risk_score: f64,
    last_trade_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signals_fired: Option<Vec<&'a str>>,
    account_login: &'a str,
    user_id: &'a str,
    challenge_id: Option<&'a str>,
    risk_level: &'a str,
    previous_level: Option<&'a str>,
    previous_score: Option<f64>,
}

/// The body of [`USER_LEVEL_RAISED`] and [`CHALLENGE_LEVEL_RAISED`].
#[derive(Serialize)]
struct GroupEvent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    challenge_id: Option<&'a str>,
    risk_level: &'a str,
    previous_level: Option<&'a str>,
    risk_score: f64,
    previous_score: Option<f64>,
    risk_signals: Vec<&'a str>,
    trading_account_login: Option<&'a str>,
    accounts: Vec<&'a str>,
    last_trade_at: Option<String>,
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn event(event_type: &str, entity: &str, level: RiskLevel, payload: &impl Serialize) -> EventRow {
    EventRow {
        event_id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        event_type: event_type.to_owned(),
        account_login: entity.to_owned(),
        level: level.as_str().to_owned(),
        payload: serde_json::to_string(payload).unwrap_or_else(|_| "{}".into()),
    }
}

/// What the comparisons start from after a load: the accounts whose stored score is above
/// `score.risk_threshold`, and every user's and challenge's level and score aggregated
/// from the stored results (`score`: the settings they were stored under).
pub(super) fn baseline(
    results: &[ResultRow],
    score: &ScoreConfig,
) -> (HashSet<AccountId>, GroupLevels, GroupLevels) {
    let mut exceeded = HashSet::new();
    let mut rows: Vec<StoredRow<'_>> = Vec::with_capacity(results.len());
    for r in results {
        let (Ok(value), Ok(level)) = (
            Decimal::from_str(&r.risk_score),
            RiskLevel::from_str(&r.risk_level),
        ) else {
            continue;
        };
        let login = AccountId::new(&r.account_login);
        if value > score.risk_threshold {
            exceeded.insert(login.clone());
        }
        let account_score = AccountScore {
            score: value,
            level,
            signals: Vec::new(),
        };
        let trades = u64::try_from(r.trades).unwrap_or(0);
        rows.push((login, account_score, trades, r));
    }
    let users = group_levels(&rows, |r| Some(r.user_id.as_str()), score);
    let challenges = group_levels(&rows, |r| r.challenge_id.as_deref(), score);
    (exceeded, users, challenges)
}

/// One stored result: the login, its score, its trade count and the row.
type StoredRow<'r> = (AccountId, AccountScore, u64, &'r ResultRow);

/// The level and score of each group of `rows` (`key`: a row's group, if any).
fn group_levels<'r>(
    rows: &[StoredRow<'r>],
    key: impl Fn(&'r ResultRow) -> Option<&'r str>,
    score: &ScoreConfig,
) -> GroupLevels {
    let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        if let Some(id) = key(row.3) {
            members.entry(id).or_default().push(i);
        }
    }
    members
        .into_iter()
        .map(|(id, list)| {
            let g = aggregate(
                list.iter().map(|&i| (&rows[i].0, &rows[i].1, rows[i].2)),
                score,
            );
            (id.to_owned(), (g.level, g.score))
        })
        .collect()
}

/// Adds to `changes` the events of its results against the stored state in `state`
/// (see the [module documentation](self)) and the group levels to record. `all_groups`:
/// every user and challenge is re-aggregated (the score settings changed), not only those
/// of accounts whose result changed.
pub(super) fn add(state: &State, all_groups: bool, changes: &mut Changes) {
    let threshold = state.settings.score.risk_threshold;
    let mut users: HashSet<&str> = HashSet::new();
    let mut challenges: HashSet<&str> = HashSet::new();
    let mut events = Vec::new();
    for (c, &changed) in changes.current.iter().zip(&changes.changed) {
        let r = &c.report;
        let login = &r.account;
        let stored = state.objects.get(login);
        let exceeds = r.score.score > threshold && !state.exceeded.contains(login);
        if all_groups {
            users.insert(r.user.as_str());
            if let Some(ch) = &r.challenge {
                challenges.insert(ch.as_str());
            }
        }
        if !exceeds && !changed {
            continue;
        }
        let names = signal_names(r);
        let previous_level = state.levels.get(login).map(|l| l.as_str());
        let previous_score = stored.and_then(super::Stored::risk_score);
        let body = AccountEvent {
            trading_account_login: login.as_str(),
            risk_signals: &names,
            risk_score: num(r.score.score),
            last_trade_at: r.last_trade_at.map(rfc3339),
            risk_threshold: None,
            signals_fired: None,
            account_login: login.as_str(),
            user_id: r.user.as_str(),
            challenge_id: r.challenge.as_ref().map(|ch| ch.as_str()),
            risk_level: r.score.level.as_str(),
            previous_level,
            previous_score,
        };
        if exceeds {
            events.push(event(
                SCORE_EXCEEDED,
                login.as_str(),
                r.score.level,
                &AccountEvent {
                    risk_threshold: Some(num(threshold)),
                    ..body.clone()
                },
            ));
        }
        if changed {
            let before = stored.map(super::Stored::signal_kinds).unwrap_or_default();
            let fired: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !before.contains(n))
                .collect();
            if !fired.is_empty() {
                events.push(event(
                    SIGNAL_FIRED,
                    login.as_str(),
                    r.score.level,
                    &AccountEvent {
                        signals_fired: Some(fired),
                        ..body.clone()
                    },
                ));
            }
            users.insert(r.user.as_str());
            if let Some(ch) = &r.challenge {
                challenges.insert(ch.as_str());
            }
            // An account that moved to another owner or challenge changes its old group.
            if let Some(s) = stored {
                users.extend(s.user_id());
                challenges.extend(s.challenge_id());
            }
        }
    }
    if all_groups {
        users.extend(state.user_levels.keys().map(String::as_str));
        challenges.extend(state.challenge_levels.keys().map(String::as_str));
    }
    if !users.is_empty() || !challenges.is_empty() {
        // Every account's result: this batch's, and the served one of any account the batch
        // did not recompute.
        let fresh: HashSet<&AccountId> =
            changes.current.iter().map(|c| &c.report.account).collect();
        let reports: Vec<&AccountReport> = changes
            .current
            .iter()
            .map(|c| &c.report)
            .chain(
                state
                    .current
                    .iter()
                    .filter(|(login, _)| !fresh.contains(login))
                    .map(|(_, c)| &c.report),
            )
            .collect();
        let score = &state.settings.score;
        let user_members: Vec<&AccountReport> = reports
            .iter()
            .copied()
            .filter(|r| users.contains(r.user.as_str()))
            .collect();
        let challenge_members: Vec<&AccountReport> = reports
            .iter()
            .copied()
            .filter(|r| {
                r.challenge
                    .as_ref()
                    .is_some_and(|ch| challenges.contains(ch.as_str()))
            })
            .collect();
        let (user_groups, _) = group_reports(user_members.iter().copied(), score);
        let (_, challenge_groups) = group_reports(challenge_members.iter().copied(), score);
        changes.user_levels = group_events(
            true,
            &user_groups,
            &user_members,
            &state.user_levels,
            &users,
            &mut events,
        );
        changes.challenge_levels = group_events(
            false,
            &challenge_groups,
            &challenge_members,
            &state.challenge_levels,
            &challenges,
            &mut events,
        );
    }
    changes.events.extend(events);
}

/// The level changes of `groups` (the re-aggregated users or challenges `affected`)
/// against `stored`, with an event for each rise.
fn group_events(
    user: bool,
    groups: &[GroupReport],
    members: &[&AccountReport],
    stored: &GroupLevels,
    affected: &HashSet<&str>,
    events: &mut Vec<EventRow>,
) -> Vec<GroupChange> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for g in groups {
        seen.insert(g.id.as_str());
        let now = (g.score.level, g.score.score);
        let before = stored.get(&g.id).copied();
        if before == Some(now) {
            continue;
        }
        out.push((g.id.clone(), Some(now)));
        if now.0 <= before.map_or(RiskLevel::Low, |b| b.0) {
            continue;
        }
        let mine = members.iter().copied().filter(|r| {
            if user {
                r.user.as_str() == g.id
            } else {
                r.challenge.as_ref().is_some_and(|ch| ch.as_str() == g.id)
            }
        });
        let body = GroupEvent {
            user_id: user.then_some(g.id.as_str()),
            challenge_id: (!user).then_some(g.id.as_str()),
            risk_level: now.0.as_str(),
            previous_level: before.map(|b| b.0.as_str()),
            risk_score: num(now.1),
            previous_score: before.map(|b| num(b.1)),
            risk_signals: group_signal_names(mine),
            trading_account_login: g.score.accounts.first().map(|a| a.account.as_str()),
            accounts: g
                .score
                .accounts
                .iter()
                .map(|a| a.account.as_str())
                .collect(),
            last_trade_at: g.last_trade_at.map(rfc3339),
        };
        let kind = if user {
            USER_LEVEL_RAISED
        } else {
            CHALLENGE_LEVEL_RAISED
        };
        events.push(event(kind, &g.id, now.0, &body));
    }
    for id in affected {
        if !seen.contains(id) && stored.contains_key(*id) {
            out.push(((*id).to_owned(), None));
        }
    }
    out
}
