//! The prop-firm risk-signal service's core: closed trades and accounts in, every
//! account's result (the account object of `risk report --format json`) kept up to date
//! and stored, webhook outbox events when an account's level rises.
//!
//! # Design
//! [`SignalService`] holds every account in memory: who it is (the accounts table), its
//! trades' [`TradeFacts`] and [`RuleTrade`]s, a [`MetricsAccumulator`] and its current
//! result. At start it loads everything from the store ([`store::SignalStore::load`]) and
//! rebuilds that state from the stored trades, so a restart (even after `kill -9`) serves
//! exactly what was committed.
//!
//! One batch (a `POST /v1/trades` body, a `risk ingest` chunk, or a future Kafka
//! `trade.closed.v1` poll through [`SignalService::ingest_trades`]) is applied under one
//! writer lock:
//!
//! 1. trades whose identifier is already stored (or earlier in the batch) are duplicates
//!    and change nothing; a trade the metrics cannot take (an overflowing P&L) is
//!    rejected with its reason; every other trade is pushed into its account's
//!    accumulator. The accumulator merges trades by close time whatever their arrival
//!    order, so a trade that arrives out of close-time order gives the same metrics as a
//!    recomputation over the account's stored trades (tested).
//! 2. the metric part (metrics and metric score) is recomputed for the accounts that got
//!    trades only. The rulebook part is kept in pieces per account and each piece is
//!    rerun only for the accounts whose piece the batch can have changed: the challenge
//!    rules and the martingale detector for the accounts that got trades, the hedging
//!    detector for their whole link clusters (one owner's or one group's accounts), the
//!    copy-trading detector for them and every account with an open near a new trade's
//!    (`rules` has the argument; listing accounts and config updates rerun everything).
//!    The cost of a batch thus follows the accounts it touches, not the store's size, and
//!    every account's result is the one `risk report` computes over all stored trades.
//!    Each recomputed account's object is then built by the report's own builder
//!    ([`crate::report::account_report`], [`crate::report::account_object`]), which is
//!    what makes the service and `risk report --format json` agree.
//! 3. every account whose object changed gets its result row, and every account whose
//!    level rose above its stored level an `account.risk_level_raised` outbox row, in the
//!    same transaction as the batch's trades ([`store::Batch`]). Only after the commit are
//!    the new results served. If the commit (or a computation) fails, the in-memory state
//!    is reloaded from the store: nothing of the batch is kept.
//!
//! Config updates ([`SignalService::update_config`]) work the same way: validate, rebuild
//! every account's accumulator when a metric setting changed (from the trades held, which
//! are the stored trades), rescore, store the new settings version with the results and
//! events in one transaction, then swap.
//!
//! One service writes one database: a second writer's trades are only seen after a
//! restart.
//!
//! Users and challenges are aggregated on read from the current account results with the
//! report's own grouping ([`crate::report::group_reports`]).

pub mod events;
pub mod fastapi;
pub mod input;
mod rules;
pub mod store;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr as _;
use std::sync::{Arc, RwLock};

use risk_core::ids::{AccountId, UserId};
use risk_core::metrics::{
    ClosedTrade, MetricsAccumulator, MetricsConfig, TradeFacts, TradeMetrics,
};
use risk_core::rulebook::RuleTrade;
use risk_core::score::{score_account, AccountScore, RiskLevel, ScoreConfig};
use serde::{Deserialize, Serialize};

use crate::csv_input::AccountInfo;
use crate::report::{
    account_object, account_report, group_object, group_reports, rank_order, AccountReport,
    AccountWho,
};
use crate::report_config::RuleSettings;
use crate::store::StoreError;
use rules::{RuleParts, RuleTracker};
use store::{Batch, ConfigRow, EventRow, ResultRow, SignalStore};

/// The event type written when an account's level rises.
pub const LEVEL_RAISED: &str = "account.risk_level_raised";

pub use events::{CHALLENGE_LEVEL_RAISED, SCORE_EXCEEDED, SIGNAL_FIRED, USER_LEVEL_RAISED};

/// The signal settings that `POST /admin/update-config` changes: the config file's
/// `[engine.metrics]` and `[engine.score]` tables under the keys `metrics` and `score`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalSettings {
    /// `[engine.metrics]`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[engine.score]`.
    #[serde(default)]
    pub score: ScoreConfig,
}

impl SignalSettings {
    /// Checks both tables.
    ///
    /// # Errors
    /// [`SignalError::Invalid`] naming the setting (`metrics.initial_balance`).
    pub fn validate(&self) -> Result<(), SignalError> {
        self.metrics.validate().map_err(|e| SignalError::Invalid {
            field: format!("metrics.{}", e.field),
            message: e.to_string(),
        })?;
        self.score.validate().map_err(|e| SignalError::Invalid {
            field: format!("score.{}", e.field),
            message: e.to_string(),
        })
    }

    /// These settings with the keys of `patch` (`{"metrics": {...}, "score": {...}}`, every
    /// key optional) replaced; unknown keys and wrong types are refused. The FastAPI
    /// service's flat keys (`window_size`, `risk_threshold`, ...: [`fastapi::FLAT_KEYS`])
    /// are accepted beside the tables and set the settings they map onto; a key with no
    /// counterpart, or a flat key given together with its setting, is refused.
    ///
    /// # Errors
    /// [`SignalError::Invalid`] naming the key, or a value out of range.
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Self, SignalError> {
        let nested = fastapi::nest(patch)?;
        self.patched_tables(&nested.patch)
            .map_err(|e| fastapi::rename(e, &nested.renamed))
    }

    /// [`SignalSettings::patched`] once the FastAPI keys are in their tables.
    fn patched_tables(&self, patch: &serde_json::Value) -> Result<Self, SignalError> {
        let invalid = |field: &str, message: String| SignalError::Invalid {
            field: field.to_owned(),
            message,
        };
        let serde_json::Value::Object(tables) = patch else {
            return Err(invalid(
                "body",
                "expected an object with `metrics` and/or `score`".into(),
            ));
        };
        let mut merged = serde_json::to_value(self).map_err(|e| invalid("body", e.to_string()))?;
        for (table, keys) in tables {
            let Some(target) = merged.get_mut(table) else {
                let flat: Vec<&str> = fastapi::FLAT_KEYS.iter().map(|(k, _)| *k).collect();
                return Err(invalid(
                    table,
                    format!(
                        "unknown key `{table}`: expected the tables `metrics` and `score` or \
                         the keys {}",
                        flat.join(", ")
                    ),
                ));
            };
            let serde_json::Value::Object(keys) = keys else {
                return Err(invalid(table, format!("`{table}` must be an object")));
            };
            for (key, value) in keys {
                if let Some(slot) = target.as_object_mut() {
                    slot.insert(key.clone(), value.clone());
                }
            }
        }
        let settings: Self = serde_path_to_error::deserialize(merged).map_err(|e| {
            let path = e.path().to_string();
            invalid(&path, e.inner().to_string())
        })?;
        settings.validate()?;
        Ok(settings)
    }
}

/// Why a signal operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A setting or request value is refused; nothing was changed.
    #[error("{field}: {message}")]
    Invalid {
        /// The key at fault.
        field: String,
        /// Why.
        message: String,
    },
    /// A computation overflowed; nothing was changed.
    #[error("{0}")]
    Compute(String),
}

/// A row or element that was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct Rejection {
    /// 1-based line of a CSV body or file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 0-based index in a JSON array body (or in the batch handed to
    /// [`SignalService::ingest_trades`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The field at fault, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Why.
    pub reason: String,
}

/// What one ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct IngestOutcome {
    /// Rows stored.
    pub accepted: u64,
    /// Rows whose identifier (login, for accounts) was already stored or seen earlier in
    /// the same body: no-ops.
    pub duplicates: u64,
    /// Rows refused.
    pub rejected: u64,
    /// Why, row by row (the first 1,000).
    pub rejections: Vec<Rejection>,
    /// Accounts whose stored result changed.
    pub accounts_changed: u64,
    /// Accounts whose level rose (one `account.risk_level_raised` event each).
    pub levels_raised: u64,
    /// Outbox events written, of every type.
    pub events: u64,
}

/// What a config update did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct ConfigOutcome {
    /// The new settings version.
    pub version: i64,
    /// Who wrote it.
    pub updated_by: String,
    /// Whether a metric setting changed (every account's metrics were recomputed).
    pub metrics_recomputed: bool,
    /// Accounts rescored.
    pub accounts: u64,
    /// Accounts whose level changed.
    pub level_changes: u64,
    /// Accounts whose level rose (one `account.risk_level_raised` event each).
    pub levels_raised: u64,
    /// Outbox events written, of every type.
    pub events: u64,
}

/// A page of the ranked account list.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedPage {
    /// Account answers (JSON text, as `GET /risk-report/{login}` answers them), riskiest
    /// first (ties by login).
    pub items: Vec<String>,
    /// Pass as `cursor` for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// A cursor that is not one this service gave out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`cursor` is not a cursor this service gave out")]
pub struct BadCursor;

/// Counts for `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct SignalCounts {
    /// Accounts with a result.
    pub accounts: u64,
    /// Trades stored.
    pub trades: u64,
    /// The settings version in force.
    pub config_version: i64,
}

/// One account in memory.
#[derive(Debug, Clone)]
struct AccountState {
    who: AccountWho,
    group: Option<String>,
    listed: bool,
    /// The accounts table's initial balance, `None` for the configured default.
    own_balance: Option<risk_core::Decimal>,
    facts: Vec<TradeFacts>,
    rules: Vec<RuleTrade>,
    acc: MetricsAccumulator,
    /// The metric part, `None` when trades or settings changed since it was computed.
    base: Option<(TradeMetrics, AccountScore)>,
    /// The rulebook part, in pieces that are recomputed apart ([`rules`]).
    parts: RuleParts,
}

/// A served result.
#[derive(Debug, Clone)]
struct Current {
    report: AccountReport,
    /// The account object as the report writes it (keys in its order): what is served and
    /// what its result row stores.
    text: Arc<str>,
}

/// An account's stored result, which the next results are compared with.
#[derive(Debug, Clone)]
enum Stored {
    /// Committed by this service: the result it served, whose text is the stored text.
    Committed(Arc<Current>),
    /// Read from the store at start (possibly written by another build, whose text may
    /// differ in form but not in content): the stored text and the object it holds.
    Loaded {
        text: String,
        object: serde_json::Value,
    },
}

impl Stored {
    /// Whether `c`'s account object is the stored one. A committed result is compared as
    /// text: the report's writer is deterministic, so equal objects have equal text. A
    /// loaded one is compared as an object unless the texts are equal.
    fn holds(&self, c: &Current) -> bool {
        match self {
            Self::Committed(stored) => stored.text == c.text,
            Self::Loaded { text, object } => {
                **text == *c.text
                    || serde_json::from_str::<serde_json::Value>(&c.text)
                        .is_ok_and(|o| o == *object)
            }
        }
    }

    /// The `kind` of each element of the object's `signals`, in order.
    fn signal_kinds(&self) -> Vec<&str> {
        match self {
            Self::Committed(stored) => {
                let r = &stored.report;
                r.score
                    .signals
                    .iter()
                    .map(|s| s.kind.as_str())
                    .chain(r.rules.signals.iter().map(|s| s.kind.as_str()))
                    .collect()
            }
            Self::Loaded { object, .. } => object
                .get("signals")
                .and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.get("kind").and_then(serde_json::Value::as_str))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The object's `risk_score`.
    fn risk_score(&self) -> Option<f64> {
        match self {
            Self::Committed(stored) => Some(crate::report::num(stored.report.score.score)),
            Self::Loaded { object, .. } => {
                object.get("risk_score").and_then(serde_json::Value::as_f64)
            }
        }
    }

    /// The object's `user_id`.
    fn user_id(&self) -> Option<&str> {
        match self {
            Self::Committed(stored) => Some(stored.report.user.as_str()),
            Self::Loaded { object, .. } => {
                object.get("user_id").and_then(serde_json::Value::as_str)
            }
        }
    }

    /// The object's `challenge_id`, if any.
    fn challenge_id(&self) -> Option<&str> {
        match self {
            Self::Committed(stored) => stored.report.challenge.as_ref().map(|c| c.as_str()),
            Self::Loaded { object, .. } => object
                .get("challenge_id")
                .and_then(serde_json::Value::as_str),
        }
    }
}

/// The writer's state.
#[derive(Debug)]
struct State {
    version: i64,
    settings: SignalSettings,
    accounts: Vec<AccountState>,
    index: HashMap<AccountId, usize>,
    ids: HashSet<String>,
    symbols: HashMap<String, u32>,
    /// The stored level of every account with a result.
    levels: HashMap<AccountId, RiskLevel>,
    /// The stored result of every account with one.
    objects: HashMap<AccountId, Stored>,
    /// The served result of every account (its object is only rebuilt when its report
    /// changes).
    current: HashMap<AccountId, Arc<Current>>,
    /// Accounts whose stored score is above the risk threshold in force
    /// ([`SCORE_EXCEEDED`] fires when one joins).
    exceeded: HashSet<AccountId>,
    /// Every user's stored level and score (aggregated from the stored results).
    user_levels: events::GroupLevels,
    /// Every challenge's stored level and score.
    challenge_levels: events::GroupLevels,
    /// Which rulebook pieces the next [`State::compute`] reruns.
    tracker: RuleTracker,
}

/// What readers see: the committed results.
#[derive(Debug, Default)]
struct Published {
    version: i64,
    trades: u64,
    score: ScoreConfig,
    accounts: HashMap<AccountId, Arc<Current>>,
}

/// The risk-signal service: see the [module documentation](self).
#[derive(Debug)]
pub struct SignalService {
    store: Arc<dyn SignalStore>,
    rules: RuleSettings,
    state: tokio::sync::Mutex<State>,
    published: RwLock<Published>,
}

fn account_config(settings: &MetricsConfig, who: &AccountWho) -> MetricsConfig {
    let mut config = *settings;
    config.initial_balance = who.initial_balance;
    config
}

impl State {
    fn empty(version: i64, settings: SignalSettings) -> Self {
        Self {
            version,
            settings,
            accounts: Vec::new(),
            index: HashMap::new(),
            ids: HashSet::new(),
            symbols: HashMap::new(),
            levels: HashMap::new(),
            objects: HashMap::new(),
            current: HashMap::new(),
            exceeded: HashSet::new(),
            user_levels: HashMap::new(),
            challenge_levels: HashMap::new(),
            tracker: RuleTracker::new(),
        }
    }

    fn who(&self, login: &AccountId, info: Option<&AccountInfo>) -> AccountWho {
        AccountWho {
            account: login.clone(),
            user: info.map_or_else(|| UserId::new(login.as_str()), |i| i.user.clone()),
            challenge: info.and_then(|i| i.challenge.clone()),
            initial_balance: info
                .and_then(|i| i.initial_balance)
                .unwrap_or(self.settings.metrics.initial_balance),
            platform: info.and_then(|i| i.platform.clone()),
            phase: info.and_then(|i| i.phase.clone()),
            last_trade_at: None,
        }
    }

    /// The account's index, creating an unlisted one.
    fn account(&mut self, login: &AccountId) -> Result<usize, SignalError> {
        if let Some(&i) = self.index.get(login) {
            return Ok(i);
        }
        let who = self.who(login, None);
        let acc = MetricsAccumulator::new(account_config(&self.settings.metrics, &who))
            .map_err(|e| SignalError::Compute(e.to_string()))?;
        self.accounts.push(AccountState {
            who,
            group: None,
            listed: false,
            own_balance: None,
            facts: Vec::new(),
            rules: Vec::new(),
            acc,
            base: None,
            parts: RuleParts::default(),
        });
        self.index.insert(login.clone(), self.accounts.len() - 1);
        Ok(self.accounts.len() - 1)
    }

    /// Rebuilds account `i`'s accumulator from its trades (after its initial balance or a
    /// metric setting changed).
    fn rebuild(&mut self, i: usize) -> Result<(), SignalError> {
        let a = &mut self.accounts[i];
        let mut acc = MetricsAccumulator::new(account_config(&self.settings.metrics, &a.who))
            .map_err(|e| SignalError::Compute(e.to_string()))?;
        for f in &a.facts {
            acc.push_facts(f)
                .map_err(|e| SignalError::Compute(format!("account {}: {e}", a.who.account)))?;
        }
        a.acc = acc;
        a.base = None;
        a.parts.own = None;
        self.tracker.rerun_all();
        Ok(())
    }

    /// Lists (or re-lists an unlisted, traded) account; false when it was listed already.
    fn list(&mut self, login: &AccountId, info: &AccountInfo) -> Result<bool, SignalError> {
        let i = self.account(login)?;
        if self.accounts[i].listed {
            return Ok(false);
        }
        let mut who = self.who(login, Some(info));
        let a = &mut self.accounts[i];
        who.last_trade_at = a.who.last_trade_at;
        a.listed = true;
        a.own_balance = info.initial_balance;
        a.group.clone_from(&info.group);
        let balance_changed = a.who.initial_balance != who.initial_balance;
        a.who = who;
        a.base = None;
        a.parts.own = None;
        // A new owner or group changes who is linked to whom: every detection is rerun.
        self.tracker.rerun_all();
        if balance_changed {
            self.rebuild(i)?;
        }
        Ok(true)
    }

    /// Adds one trade; `Ok(false)` for a duplicate, `Err(reason)` when refused.
    fn add(&mut self, trade: &ClosedTrade) -> Result<bool, String> {
        if self.ids.contains(trade.id.as_str()) {
            return Ok(false);
        }
        if trade.closed_at < trade.opened_at {
            return Err("closed before it was opened".into());
        }
        let facts =
            TradeFacts::of(trade, self.settings.metrics.pnl_basis).map_err(|e| e.to_string())?;
        let next = u32::try_from(self.symbols.len()).unwrap_or(u32::MAX);
        let symbol = *self
            .symbols
            .entry(trade.symbol.as_str().to_owned())
            .or_insert(next);
        let rule = RuleTrade {
            opened_at_ns: facts.opened_at_ns,
            closed_at_ns: facts.closed_at_ns,
            pnl: facts.pnl,
            lots: trade.volume,
            side: trade.side,
            symbol,
        };
        let i = self.account(&trade.account).map_err(|e| e.to_string())?;
        let a = &mut self.accounts[i];
        a.acc.push_facts(&facts).map_err(|e| e.to_string())?;
        a.facts.push(facts);
        a.rules.push(rule);
        a.who.last_trade_at = a.who.last_trade_at.max(Some(trade.closed_at));
        a.base = None;
        a.parts.own = None;
        self.tracker.added(i, rule);
        self.ids.insert(trade.id.as_str().to_owned());
        Ok(true)
    }

    /// Re-reads every account's trade facts from `trades` (all stored trades) under the
    /// current P&L basis; the accumulators are rebuilt by the caller.
    fn refacts(&mut self, trades: &[ClosedTrade]) -> Result<(), SignalError> {
        self.ids.clear();
        for a in &mut self.accounts {
            a.facts.clear();
            a.rules.clear();
            a.who.last_trade_at = None;
            a.base = None;
            a.parts.own = None;
        }
        self.tracker.rerun_all();
        for t in trades {
            self.add(t).map_err(|reason| {
                SignalError::Compute(format!("trade {}: {reason}", t.id.as_str()))
            })?;
        }
        Ok(())
    }

    /// The result of every account whose result may have changed since the last call
    /// (every account after a start, an accounts listing or a settings change), in state
    /// order: the metric part of the accounts that got trades, the rulebook part where
    /// [`RuleTracker::update`] finds it may have changed. Every other account's result
    /// is the one served already, which is what a recomputation would give it.
    fn compute(&mut self, rules: &RuleSettings) -> Result<Vec<AccountReport>, SignalError> {
        let redo = self.tracker.update(&mut self.accounts, rules)?;
        let score = &self.settings.score;
        let mut reports = Vec::with_capacity(redo.len());
        for i in redo {
            let Some(a) = self.accounts.get_mut(i) else {
                continue;
            };
            let (metrics, base) = match &a.base {
                Some(base) => base.clone(),
                None => {
                    let metrics = a.acc.metrics().map_err(|e| {
                        SignalError::Compute(format!("account {}: {e}", a.who.account))
                    })?;
                    let scored = score_account(&metrics, score);
                    a.base = Some((metrics.clone(), scored.clone()));
                    (metrics, scored)
                }
            };
            let outcome = a.parts.outcome().ok_or_else(|| {
                SignalError::Compute(format!("account {}: rulebook part missing", a.who.account))
            })?;
            reports.push(account_report(
                a.who.clone(),
                metrics,
                base,
                outcome,
                &rules.weights,
                score,
            ));
        }
        Ok(reports)
    }
}

/// What [`SignalService::apply`] found changed.
struct Changes {
    batch_results: Vec<ResultRow>,
    events: Vec<EventRow>,
    current: Vec<Arc<Current>>,
    /// Whether `current[i]`'s object differs from the stored one (it has a result row).
    changed: Vec<bool>,
    level_changes: u64,
    raised: u64,
    /// Users whose stored level or score changes (`None`: no account any more).
    user_levels: Vec<events::GroupChange>,
    /// Challenges likewise.
    challenge_levels: Vec<events::GroupChange>,
}

fn result_row(c: &Current, version: i64) -> ResultRow {
    let r = &c.report;
    let kinds: Vec<&str> = r
        .score
        .signals
        .iter()
        .map(|s| s.kind.as_str())
        .chain(r.rules.signals.iter().map(|s| s.kind.as_str()))
        .collect();
    ResultRow {
        account_login: r.account.as_str().to_owned(),
        user_id: r.user.as_str().to_owned(),
        challenge_id: r.challenge.as_ref().map(|c| c.as_str().to_owned()),
        trades: i64::try_from(r.metrics.trades).unwrap_or(i64::MAX),
        risk_score: r.score.score.to_string(),
        risk_level: r.score.level.as_str().to_owned(),
        status: r.rules.status.as_str().to_owned(),
        signals: serde_json::to_string(&kinds).unwrap_or_else(|_| "[]".into()),
        account: c.text.to_string(),
        config_version: version,
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

impl SignalService {
    /// Loads the service from `store`: the newest settings version (or `initial`, stored as
    /// version 1 by `config file` when the store has none), the accounts and trades, every
    /// account's result; results that differ from the stored ones (a changed rulebook in
    /// the config file) are stored, with their events.
    ///
    /// # Errors
    /// [`SignalError`] when the store fails or a stored row does not parse.
    pub async fn start(
        store: Arc<dyn SignalStore>,
        initial: SignalSettings,
        rules: RuleSettings,
    ) -> Result<Arc<Self>, SignalError> {
        initial.validate()?;
        let service = Arc::new(Self {
            store,
            rules,
            state: tokio::sync::Mutex::new(State::empty(0, initial.clone())),
            published: RwLock::new(Published::default()),
        });
        {
            let mut state = service.state.lock().await;
            service.reload(&mut state, Some(initial)).await?;
        }
        Ok(service)
    }

    /// Replaces `state` with what the store holds and publishes it; with `initial`, seeds
    /// the settings when the store has none and stores any result that differs.
    async fn reload(
        &self,
        state: &mut State,
        initial: Option<SignalSettings>,
    ) -> Result<(), SignalError> {
        let loaded = self.store.load().await?;
        let (version, settings, seed) = match &loaded.config {
            Some(c) => {
                let settings: SignalSettings = serde_json::from_str(&c.settings).map_err(|e| {
                    SignalError::Store(StoreError::Invalid {
                        field: format!("signal_config[{}].settings", c.version),
                        message: e.to_string(),
                    })
                })?;
                (c.version, settings, None)
            }
            None => {
                let settings = initial.clone().unwrap_or_default();
                let row = ConfigRow {
                    version: 1,
                    settings: serde_json::to_string(&settings)
                        .map_err(|e| SignalError::Compute(e.to_string()))?,
                    updated_by: "config file".into(),
                    created_at: chrono::Utc::now(),
                };
                (1, settings, Some(row))
            }
        };
        let mut fresh = State::empty(version, settings);
        for (login, info) in &loaded.accounts {
            fresh.list(login, info)?;
        }
        for t in &loaded.trades {
            fresh.add(t).map_err(|reason| {
                SignalError::Store(StoreError::Invalid {
                    field: format!("trades[{}]", t.id),
                    message: reason,
                })
            })?;
        }
        for r in &loaded.results {
            let login = AccountId::new(&r.account_login);
            if let Ok(level) = RiskLevel::from_str(&r.risk_level) {
                fresh.levels.insert(login.clone(), level);
            }
            if let Ok(object) = serde_json::from_str(&r.account) {
                let text = r.account.clone();
                fresh.objects.insert(login, Stored::Loaded { text, object });
            }
        }
        (fresh.exceeded, fresh.user_levels, fresh.challenge_levels) =
            events::baseline(&loaded.results, &fresh.settings.score);
        *state = fresh;
        let changes = self.apply(state)?;
        if initial.is_some() && (seed.is_some() || !changes.batch_results.is_empty()) {
            self.store
                .commit(&Batch {
                    config: seed,
                    results: &changes.batch_results,
                    events: &changes.events,
                    ..Batch::default()
                })
                .await?;
        }
        self.publish(state, &changes, true);
        Ok(())
    }

    /// Computes the results that may have changed ([`State::compute`]) and what changed
    /// against the stored ones.
    fn apply(&self, state: &mut State) -> Result<Changes, SignalError> {
        let reports = state.compute(&self.rules)?;
        let mut changes = Changes {
            batch_results: Vec::new(),
            events: Vec::new(),
            current: Vec::with_capacity(reports.len()),
            changed: Vec::with_capacity(reports.len()),
            level_changes: 0,
            raised: 0,
            user_levels: Vec::new(),
            challenge_levels: Vec::new(),
        };
        // The score settings changed since the last commit: every group is re-aggregated.
        let all_groups = self.read().score != state.settings.score;
        for report in reports {
            if let Some(same) = state
                .current
                .get(&report.account)
                .filter(|c| c.report == report)
            {
                changes.current.push(Arc::clone(same));
                changes.changed.push(false);
                continue;
            }
            let text = account_object(&report, &self.rules.weights);
            let login = report.account.clone();
            let level = report.score.level;
            let current = Arc::new(Current {
                report,
                text: text.into(),
            });
            let changed = !state
                .objects
                .get(&login)
                .is_some_and(|stored| stored.holds(&current));
            if changed {
                changes
                    .batch_results
                    .push(result_row(&current, state.version));
                let previous = state.levels.get(&login).copied();
                if previous != Some(level) {
                    changes.level_changes += 1;
                }
                if level > previous.unwrap_or(RiskLevel::Low) {
                    changes.raised += 1;
                    // The account object with `previous_level` added last.
                    let previous_text = previous.map_or("null".to_owned(), |p| format!("\"{p}\""));
                    let body = current.text.strip_suffix('}').unwrap_or(&current.text);
                    let payload = format!("{body},\"previous_level\":{previous_text}}}");
                    changes.events.push(EventRow {
                        event_id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
                        event_type: LEVEL_RAISED.into(),
                        account_login: login.as_str().to_owned(),
                        level: level.as_str().to_owned(),
                        payload,
                    });
                }
            }
            changes.current.push(current);
            changes.changed.push(changed);
        }
        events::add(state, all_groups, &mut changes);
        Ok(changes)
    }

    /// Records a commit in `state` and serves it.
    fn publish(&self, state: &mut State, changes: &Changes, all: bool) {
        let threshold = state.settings.score.risk_threshold;
        for (c, &changed) in changes.current.iter().zip(&changes.changed) {
            let login = &c.report.account;
            state.current.insert(login.clone(), Arc::clone(c));
            if changed {
                state.levels.insert(login.clone(), c.report.score.level);
                state
                    .objects
                    .insert(login.clone(), Stored::Committed(Arc::clone(c)));
            }
            if c.report.score.score > threshold {
                if !state.exceeded.contains(login) {
                    state.exceeded.insert(login.clone());
                }
            } else {
                state.exceeded.remove(login);
            }
        }
        for (levels, changed) in [
            (&mut state.user_levels, &changes.user_levels),
            (&mut state.challenge_levels, &changes.challenge_levels),
        ] {
            for (id, now) in changed {
                match now {
                    Some(now) => levels.insert(id.clone(), *now),
                    None => levels.remove(id),
                };
            }
        }
        let mut published = self
            .published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if all {
            published.accounts.clear();
        }
        published.version = state.version;
        published.trades = state.ids.len() as u64;
        published.score = state.settings.score.clone();
        for c in &changes.current {
            published
                .accounts
                .insert(c.report.account.clone(), Arc::clone(c));
        }
    }

    /// Runs `apply` and commits `batch` with its results; on any failure the state is
    /// reloaded from the store.
    async fn commit(&self, state: &mut State, batch: Batch<'_>) -> Result<Changes, SignalError> {
        let outcome = match self.apply(state) {
            Ok(changes) => {
                let batch = Batch {
                    results: &changes.batch_results,
                    events: &changes.events,
                    ..batch
                };
                match self.store.commit(&batch).await {
                    Ok(()) => Ok(changes),
                    Err(e) => Err(SignalError::Store(e)),
                }
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(changes) => {
                self.publish(state, &changes, false);
                Ok(changes)
            }
            Err(e) => {
                tracing::error!(error = %e, "signal batch failed; reloading the state from the store");
                if let Err(reload) = self.reload(state, None).await {
                    tracing::error!(error = %reload, "reloading the signal state failed");
                }
                Err(e)
            }
        }
    }

    /// Commits an ingest `batch` (trades or accounts) and adds what it changed to `out`.
    async fn commit_ingest(
        &self,
        state: &mut State,
        batch: Batch<'_>,
        mut out: IngestOutcome,
    ) -> Result<IngestOutcome, SignalError> {
        let changes = self.commit(state, batch).await?;
        out.accounts_changed = changes.batch_results.len() as u64;
        out.levels_raised = changes.raised;
        out.events = changes.events.len() as u64;
        Ok(out)
    }

    /// Ingests validated closed trades (the entry point of the CSV and JSON routes, of
    /// `risk ingest`, and of a Kafka `trade.closed.v1` consumer): one batch, one
    /// transaction. A rejection's `index` is the trade's position in `trades`.
    ///
    /// # Errors
    /// [`SignalError`] when the store fails or a computation overflows; nothing of the
    /// batch is stored or served then.
    pub async fn ingest_trades(
        &self,
        trades: &[ClosedTrade],
    ) -> Result<IngestOutcome, SignalError> {
        let mut state = self.state.lock().await;
        let mut out = IngestOutcome::default();
        let mut accepted = Vec::with_capacity(trades.len());
        for (i, t) in trades.iter().enumerate() {
            match state.add(t) {
                Ok(true) => accepted.push(t.clone()),
                Ok(false) => out.duplicates += 1,
                Err(reason) => {
                    out.rejected += 1;
                    if out.rejections.len() < crate::csv_input::MAX_KEPT_ROW_ERRORS {
                        out.rejections.push(Rejection {
                            line: None,
                            index: Some(i as u64),
                            column: None,
                            reason: format!("trade {}: {reason}", t.id),
                        });
                    }
                }
            }
        }
        out.accepted = accepted.len() as u64;
        if accepted.is_empty() {
            return Ok(out);
        }
        let batch = Batch {
            trades: &accepted,
            ..Batch::default()
        };
        self.commit_ingest(&mut state, batch, out).await
    }

    /// Ingests accounts (login, owner, challenge, initial balance, group). A login stored
    /// already is a duplicate; a login that so far only had trades takes the new owner,
    /// challenge and balance (its metrics are recomputed).
    ///
    /// # Errors
    /// As [`SignalService::ingest_trades`].
    pub async fn ingest_accounts(
        &self,
        accounts: &[(AccountId, AccountInfo)],
    ) -> Result<IngestOutcome, SignalError> {
        let mut state = self.state.lock().await;
        let mut out = IngestOutcome::default();
        let mut accepted = Vec::with_capacity(accounts.len());
        let mut seen = BTreeSet::new();
        for (login, info) in accounts {
            if !seen.insert(login.clone()) {
                out.duplicates += 1;
                continue;
            }
            match state.list(login, info) {
                Ok(true) => accepted.push((login.clone(), info.clone())),
                Ok(false) => out.duplicates += 1,
                Err(e) => {
                    self.reload(&mut state, None).await?;
                    return Err(e);
                }
            }
        }
        out.accepted = accepted.len() as u64;
        if accepted.is_empty() {
            return Ok(out);
        }
        let batch = Batch {
            accounts: &accepted,
            ..Batch::default()
        };
        self.commit_ingest(&mut state, batch, out).await
    }

    /// Applies a settings patch (`{"metrics": {...}, "score": {...}}`, the config file's
    /// keys) by `who`: validates it ([`SignalError::Invalid`], nothing changed), recomputes
    /// every account (its metrics too when a metric setting changed), stores the new
    /// version with the changed results and their events in one transaction, then serves
    /// them.
    ///
    /// # Errors
    /// [`SignalError::Invalid`] for a refused patch; [`SignalError::Store`] or
    /// [`SignalError::Compute`] (nothing changed then either).
    pub async fn update_config(
        &self,
        patch: &serde_json::Value,
        who: &str,
    ) -> Result<ConfigOutcome, SignalError> {
        let mut state = self.state.lock().await;
        let settings = state.settings.patched(patch)?;
        let metrics_changed = settings.metrics != state.settings.metrics;
        // A trade's P&L is fixed in its facts when it is added: a new basis re-reads them
        // from the stored trades.
        let basis_changed = settings.metrics.pnl_basis != state.settings.metrics.pnl_basis;
        let stored = if basis_changed {
            Some(self.store.load().await?.trades)
        } else {
            None
        };
        let version = state.version + 1;
        let row = ConfigRow {
            version,
            settings: serde_json::to_string(&settings)
                .map_err(|e| SignalError::Compute(e.to_string()))?,
            updated_by: who.to_owned(),
            created_at: chrono::Utc::now(),
        };
        state.version = version;
        state.settings = settings;
        let mut failed = None;
        if let Some(trades) = &stored {
            if let Err(e) = state.refacts(trades) {
                failed = Some(e);
            }
        }
        for i in 0..state.accounts.len() {
            if failed.is_some() {
                break;
            }
            if metrics_changed {
                // The default balance may have changed: accounts without their own follow it.
                let default = state.settings.metrics.initial_balance;
                let a = &mut state.accounts[i];
                a.who.initial_balance = a.own_balance.unwrap_or(default);
                if let Err(e) = state.rebuild(i) {
                    failed = Some(e);
                    break;
                }
            }
            state.accounts[i].base = None;
            state.accounts[i].parts.own = None;
        }
        state.tracker.rerun_all();
        if let Some(e) = failed {
            self.reload(&mut state, None).await?;
            return Err(e);
        }
        let changes = self
            .commit(
                &mut state,
                Batch {
                    config: Some(row),
                    ..Batch::default()
                },
            )
            .await?;
        Ok(ConfigOutcome {
            version,
            updated_by: who.to_owned(),
            metrics_recomputed: metrics_changed,
            accounts: state.accounts.len() as u64,
            level_changes: changes.level_changes,
            levels_raised: changes.raised,
            events: changes.events.len() as u64,
        })
    }

    /// The settings in force and their version.
    pub async fn settings(&self) -> (i64, SignalSettings) {
        let state = self.state.lock().await;
        (state.version, state.settings.clone())
    }

    /// The answer of `GET /risk-report/{login}` (JSON text): the account object with the
    /// FastAPI fields `trading_account_login` and `risk_signals` added
    /// ([`fastapi::account_answer`]); `None` when unknown.
    #[must_use]
    pub fn account(&self, login: &str) -> Option<String> {
        let published = self.read();
        published
            .accounts
            .get(&AccountId::new(login))
            .map(|c| fastapi::account_answer(&c.report, &c.text))
    }

    /// The user object of `user_id` (the report's `users[]`, JSON text) with the FastAPI
    /// fields ([`fastapi::group_answer`]), `None` when unknown.
    #[must_use]
    pub fn user(&self, user_id: &str) -> Option<String> {
        self.group(true, user_id)
    }

    /// The challenge object of `challenge_id` (the report's `challenges[]`, JSON text)
    /// with the FastAPI fields ([`fastapi::group_answer`]), `None` when unknown.
    #[must_use]
    pub fn challenge(&self, challenge_id: &str) -> Option<String> {
        self.group(false, challenge_id)
    }

    fn group(&self, user: bool, id: &str) -> Option<String> {
        let published = self.read();
        let members: Vec<&AccountReport> = published
            .accounts
            .values()
            .map(|c| &c.report)
            .filter(|r| {
                if user {
                    r.user.as_str() == id
                } else {
                    r.challenge.as_ref().is_some_and(|c| c.as_str() == id)
                }
            })
            .collect();
        if members.is_empty() {
            return None;
        }
        let (users, challenges) = group_reports(members.iter().copied(), &published.score);
        let groups = if user { users } else { challenges };
        let group = groups.into_iter().next()?;
        let text = group_object(&group, user, members.iter().copied());
        Some(fastapi::group_answer(&group, &text, members))
    }

    /// Accounts at `min_level` or above, riskiest first (ties by login), `limit` a page,
    /// after `cursor` (a previous page's `next_cursor`).
    ///
    /// # Errors
    /// [`BadCursor`] for a cursor this service did not give out.
    pub fn ranked(
        &self,
        min_level: RiskLevel,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<RankedPage, BadCursor> {
        let after = cursor
            .map(|c| {
                let text = unhex(c).ok_or(BadCursor)?;
                let (score, login) = text.split_once('\n').ok_or(BadCursor)?;
                let score = score.parse::<risk_core::Decimal>().map_err(|_| BadCursor)?;
                Ok((score, AccountId::new(login)))
            })
            .transpose()?;
        let published = self.read();
        let mut list: Vec<&AccountReport> = published
            .accounts
            .values()
            .map(|c| &c.report)
            .filter(|r| r.score.level >= min_level)
            .filter(|r| match &after {
                Some((score, login)) => {
                    r.score.score < *score || (r.score.score == *score && r.account > *login)
                }
                None => true,
            })
            .collect();
        list.sort_by(|a, b| rank_order(a, b));
        let more = list.len() > limit;
        list.truncate(limit);
        let next_cursor = if more {
            list.last()
                .map(|r| hex(&format!("{}\n{}", r.score.score, r.account)))
        } else {
            None
        };
        let items = list
            .iter()
            .filter_map(|r| {
                published
                    .accounts
                    .get(&r.account)
                    .map(|c| fastapi::account_answer(&c.report, &c.text))
            })
            .collect();
        Ok(RankedPage { items, next_cursor })
    }

    /// Accounts, trades and the settings version served now.
    #[must_use]
    pub fn counts(&self) -> SignalCounts {
        let published = self.read();
        SignalCounts {
            accounts: published.accounts.len() as u64,
            trades: published.trades,
            config_version: published.version,
        }
    }

    /// The store's backend name.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Published> {
        self.published
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::csv_input::{read_accounts, read_trades};
    use crate::report::{build_report, ReportInput};
    use crate::report_config::ReportConfig;

    const DEMO: &str = include_str!("../../../examples/config/demo.toml");
    const TRADES: &str = include_str!("../../../examples/data/trades.csv");
    const ACCOUNTS: &str = include_str!("../../../examples/data/accounts.csv");

    /// Every account of the example export as `risk report` computes it, with the demo
    /// config's rulebook weights.
    fn reports() -> (Vec<AccountReport>, RuleSettings) {
        let config = ReportConfig::from_toml(DEMO, "demo.toml").unwrap();
        let trades = read_trades(TRADES.as_bytes(), "trades.csv", |_| {})
            .unwrap()
            .trades;
        let accounts = read_accounts(ACCOUNTS.as_bytes(), "accounts.csv").unwrap();
        let report = build_report(
            &trades,
            &ReportInput {
                accounts: Some(&accounts),
                metrics: config.metrics,
                score: config.score,
                rules: config.rules.clone(),
                ..ReportInput::default()
            },
        )
        .unwrap();
        (report.accounts, config.rules)
    }

    fn current(report: &AccountReport, rules: &RuleSettings) -> Arc<Current> {
        Arc::new(Current {
            report: report.clone(),
            text: account_object(report, &rules.weights).into(),
        })
    }

    fn loaded(text: &str) -> Stored {
        Stored::Loaded {
            text: text.to_owned(),
            object: serde_json::from_str(text).unwrap(),
        }
    }

    /// A committed result answers from its typed report what a result loaded from the
    /// store answers from its parsed object, and both compare with a new result as the
    /// parsed objects do.
    #[test]
    fn committed_and_loaded_results_agree() {
        let (reports, rules) = reports();
        assert!(reports.len() > 10, "the example export has accounts");
        assert!(
            reports.iter().any(|r| !r.rules.signals.is_empty()),
            "some account has a rulebook signal"
        );
        let all: Vec<Arc<Current>> = reports.iter().map(|r| current(r, &rules)).collect();
        for (i, c) in all.iter().enumerate() {
            let committed = Stored::Committed(Arc::clone(c));
            let from_store = loaded(&c.text);
            // The same object written another way (key order, spacing) by another build.
            let value: serde_json::Value = serde_json::from_str(&c.text).unwrap();
            let reformatted = loaded(&serde_json::to_string_pretty(&value).unwrap());
            assert_eq!(committed.signal_kinds(), from_store.signal_kinds());
            assert_eq!(committed.risk_score(), from_store.risk_score());
            assert_eq!(committed.user_id(), from_store.user_id());
            assert_eq!(committed.challenge_id(), from_store.challenge_id());
            for (j, other) in all.iter().enumerate() {
                let other_value: serde_json::Value = serde_json::from_str(&other.text).unwrap();
                let same = value == other_value;
                assert_eq!(same, i == j, "accounts {i} and {j}");
                assert_eq!(committed.holds(other), same);
                assert_eq!(from_store.holds(other), same);
                assert_eq!(reformatted.holds(other), same);
            }
        }
    }

    /// A changed result (another score, another signal) is not held by the stored one,
    /// committed or loaded.
    #[test]
    fn a_changed_result_is_not_the_stored_one() {
        let (reports, rules) = reports();
        let first = &reports[0];
        let stored = current(first, &rules);
        let mut changed = first.clone();
        changed.score.score += risk_core::Decimal::ONE;
        let changed = current(&changed, &rules);
        assert!(!Stored::Committed(Arc::clone(&stored)).holds(&changed));
        assert!(!loaded(&stored.text).holds(&changed));
        assert!(Stored::Committed(Arc::clone(&stored)).holds(&current(first, &rules)));
    }
}
