//! The config store: risk profiles, rules and margin tiers in a database, with an admin
//! audit of every change.
//!
//! One [`Store`] trait, two implementations over sqlx with runtime queries:
//! [`sqlite::SqliteStore`] (the embedded default, a file created and migrated at start) and
//! [`postgres::PgStore`]. Each applies its own migrations folder
//! (`risk-adapters/migrations/{sqlite,postgres}`) when it opens.
//!
//! Every write runs in one transaction that bumps the config version (`config_version`,
//! one row), changes its row, rebuilds what the engine would run on from the rows it
//! now holds (through the core's constructors: [`TierLadder::new`], [`RuleSet::new`],
//! [`RiskConfig::validate`], the number newtypes), writes an `admin_audit` row and
//! commits. When the core refuses the result, the transaction rolls back and the write
//! answers [`StoreError::Invalid`]: nothing is stored. The caller swaps the engine's
//! config only after the commit (see [`live`]).
//!
//! Conversions live in this module and only convert: a row's text is parsed into the
//! core's types, and the core decides what is valid. Decimal columns are checked against
//! the scale and precision of their PostgreSQL column (`numeric(30,8)` and
//! `numeric(10,4)`) so that both backends hold exactly what was written.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use risk_core::account::RiskProfile;
use risk_core::config::RiskConfig;
use risk_core::ids::{RuleId, Symbol, UserId};
use risk_core::margin::{LadderError, Tier, TierLadder};
use risk_core::model::{KycLevel, RuleAction, Severity, TradingState};
use risk_core::num::{Leverage, Notional, Ratio, RiskScore};
use risk_core::pretrade::CheckMetric;
use risk_core::rules::{Operator, Rule, RuleError, RuleSet};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::config_file::ConfigFile;

pub mod live;
pub mod postgres;
mod sql;
pub mod sqlite;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The `--database` URL names no supported backend.
    #[error("database URL `{0}`: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// No row has this key.
    #[error("{what} `{key}` not found")]
    NotFound {
        /// The kind of row (`risk profile`, `risk rule`, `margin tier`).
        what: &'static str,
        /// The key asked for.
        key: String,
    },
    /// `If-Match` named another version than the row's.
    #[error("{what} `{key}` is at version {actual}, not {expected}")]
    VersionMismatch {
        /// The kind of row.
        what: &'static str,
        /// Its key.
        key: String,
        /// The version the writer expected.
        expected: i64,
        /// The version stored.
        actual: i64,
    },
    /// A unique key is already taken.
    #[error("{field}: {message}")]
    Conflict {
        /// The field holding the duplicate.
        field: &'static str,
        /// What collides.
        message: String,
    },
    /// The written value, or the config it would produce, is refused.
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault (`threshold`, `maintenance_margin_pct`, ...).
        field: String,
        /// Why, in the core's words.
        message: String,
    },
}

impl StoreError {
    fn invalid(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// A risk profile row: one per user, applied to every account of that user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct ProfileRow {
    /// Row id.
    pub id: i64,
    /// The user the profile belongs to (unique).
    pub user_id: String,
    /// KYC level: `L0`, `L1` or `L2`.
    pub kyc_level: String,
    /// Largest projected exposure, in USDT (a decimal string).
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "http", schema(value_type = String, example = "500000"))]
    pub exposure_limit_usdt: Decimal,
    /// A frozen user may not place any order.
    pub frozen: bool,
    /// Externally computed risk score, 0-100 (a decimal string).
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "http", schema(value_type = String, example = "12"))]
    pub risk_score: Decimal,
    /// The user's leverage cap (a decimal string).
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "http", schema(value_type = String, example = "50"))]
    pub max_leverage: Decimal,
    /// When the last margin call was raised, if ever.
    pub last_margin_call: Option<DateTime<Utc>>,
    /// The id of the last event that changed the profile, if any.
    pub last_event_id: Option<String>,
    /// The time of that event.
    pub last_event_ts: Option<DateTime<Utc>>,
    /// The row's version, for `If-Match`.
    pub version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A risk rule row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct RuleRow {
    /// Row id.
    pub id: i64,
    /// The rule's name (unique); reported in `rule_hits`.
    pub name: String,
    /// The check metric it tests (`order_notional`, `leverage`, ...).
    pub metric: String,
    /// `>`, `>=`, `<`, `<=`, `==` or `!=`.
    pub operator: String,
    /// What the metric is compared with (a decimal string).
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "http", schema(value_type = String, example = "1000"))]
    pub threshold: Decimal,
    /// `INFO`, `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub severity: String,
    /// `REJECT` or `WARN`.
    pub action: String,
    /// When set, the rule applies only at this KYC level.
    pub kyc_level: Option<String>,
    /// When set, the rule applies only to this symbol.
    pub symbol: Option<String>,
    /// Inactive rules are kept but not evaluated.
    pub active: bool,
    /// The row's version, for `If-Match`.
    pub version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A margin tier row: one bracket of a symbol's ladder (or of the default ladder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct TierRow {
    /// Row id.
    pub id: i64,
    /// The symbol; `null` for the default ladder.
    pub symbol: Option<String>,
    /// The tier's number in its ladder, from 1.
    pub tier: i32,
    /// The notional where the tier ends (a decimal string); `null` for an unbounded
    /// last tier. The tier starts at the previous tier's `max_notional` (0 for tier 1).
    #[serde(with = "rust_decimal::serde::str_option")]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>, example = "50000"))]
    pub max_notional: Option<Decimal>,
    /// Maintenance margin as a percentage of notional: `0.4` means 0.4 %.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "http", schema(value_type = String, example = "0.4"))]
    pub maintenance_margin_pct: Decimal,
    /// The highest leverage in this tier (a decimal string).
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "http", schema(value_type = String, example = "125"))]
    pub max_leverage: Decimal,
    /// Whether the tier is open for new exposure (inactive tiers may only top a ladder).
    pub active: bool,
    /// The row's version, for `If-Match`.
    pub version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An `admin_audit` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Row id.
    pub id: i64,
    /// The route, e.g. `PATCH /v1/risk-rules/{id}`.
    pub route: String,
    /// The admin token's name (`seed` for the first-start seed).
    pub token_name: String,
    /// The row before (JSON), `None` for a creation.
    pub before: Option<String>,
    /// The row after (JSON).
    pub after: Option<String>,
    /// The config version the change produced.
    pub config_version: i64,
    /// When.
    pub at: DateTime<Utc>,
}

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A change to a risk profile; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// `L0`, `L1` or `L2`.
    pub kyc_level: Option<String>,
    /// A decimal string.
    pub exposure_limit_usdt: Option<String>,
    /// Freeze or unfreeze the user.
    pub frozen: Option<bool>,
    /// A decimal string, 0-100.
    pub risk_score: Option<String>,
    /// A decimal string, at least 1.
    pub max_leverage: Option<String>,
}

/// A new rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    /// Unique name, reported in `rule_hits`.
    pub name: String,
    /// The check metric (`order_notional`, `leverage`, `exposure_utilization`, ...).
    pub metric: String,
    /// `>`, `>=`, `<`, `<=`, `==` or `!=`.
    pub operator: String,
    /// A decimal string.
    #[cfg_attr(feature = "http", schema(example = "1000"))]
    pub threshold: String,
    /// `INFO`, `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub severity: String,
    /// `REJECT` or `WARN`.
    pub action: String,
    /// Only at this KYC level (`L0`, `L1`, `L2`).
    #[serde(default)]
    pub kyc_level: Option<String>,
    /// Only for this symbol.
    #[serde(default)]
    pub symbol: Option<String>,
    /// Default true.
    #[serde(default = "default_true")]
    pub active: bool,
}

fn default_true() -> bool {
    true
}

/// A change to a rule; absent fields keep their value, `null` clears a scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    /// The check metric.
    pub metric: Option<String>,
    /// The operator.
    pub operator: Option<String>,
    /// A decimal string.
    pub threshold: Option<String>,
    /// The severity.
    pub severity: Option<String>,
    /// `REJECT` or `WARN`.
    pub action: Option<String>,
    /// KYC scope; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>))]
    pub kyc_level: Option<Option<String>>,
    /// Symbol scope; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>))]
    pub symbol: Option<Option<String>>,
    /// Activate or deactivate.
    pub active: Option<bool>,
}

/// A new margin tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTier {
    /// The symbol; absent or `null` for the default ladder.
    #[serde(default)]
    pub symbol: Option<String>,
    /// The tier's number, from 1.
    pub tier: i32,
    /// A decimal string; absent or `null` for an unbounded last tier.
    #[serde(default)]
    pub max_notional: Option<String>,
    /// A percentage as a decimal string: `0.4` means 0.4 %.
    pub maintenance_margin_pct: String,
    /// A decimal string.
    pub max_leverage: String,
    /// Default true.
    #[serde(default = "default_true")]
    pub active: bool,
}

/// A change to a margin tier; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TierPatch {
    /// A decimal string; `null` makes the tier unbounded.
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "http", schema(value_type = Option<String>))]
    pub max_notional: Option<Option<String>>,
    /// A percentage as a decimal string.
    pub maintenance_margin_pct: Option<String>,
    /// A decimal string.
    pub max_leverage: Option<String>,
    /// Activate or deactivate.
    pub active: Option<bool>,
}

/// Which page of a list, and which rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// At most this many rows.
    pub limit: u32,
    /// Rows with an id above this (the previous page's `next_cursor`).
    pub after_id: Option<i64>,
    /// Only this symbol; `Some("*")` selects the default ladder's tiers.
    pub symbol: Option<String>,
    /// Only active (or inactive) rows.
    pub active: Option<bool>,
}

/// Who writes, through which route, and what they expect.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    /// The route, for the audit.
    pub route: String,
    /// The admin token's name, for the audit.
    pub actor: String,
    /// `If-Match`: the version the writer last read; `None` writes unconditionally.
    pub if_match: Option<i64>,
    /// The config the rows complete: its limits, metrics and score settings are kept, its
    /// ladders and rules replaced by the store's.
    pub base: std::sync::Arc<RiskConfig>,
}

/// What a committed write changed, for the engine.
#[derive(Debug, Clone)]
pub enum Change {
    /// Ladders or rules changed: the whole config built from the store.
    Config(Box<RiskConfig>),
    /// One user's profile changed.
    Profile(UserId, StoredProfile),
}

/// A committed write: the stored row, the config version it produced and the change.
#[derive(Debug, Clone)]
pub struct Committed<T> {
    /// The row as stored.
    pub row: T,
    /// The config version after the write.
    pub version: i64,
    /// What the engine must apply.
    pub change: Change,
}

/// The profile settings a store owns; the account-level kill switch is not among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProfile {
    /// The settings, with `trading_state` at its default (the engine keeps its own).
    pub profile: RiskProfile,
}

impl StoredProfile {
    /// Writes these settings into `target`, keeping its trading state. True when changed.
    pub fn apply_to(&self, target: &mut RiskProfile) -> bool {
        let next = RiskProfile {
            trading_state: target.trading_state,
            ..self.profile.clone()
        };
        if *target == next {
            false
        } else {
            *target = next;
            true
        }
    }
}

/// Everything the store holds for the engine, read in one transaction.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The config version.
    pub version: i64,
    /// Whether any tier, rule or profile is stored.
    pub holds_config: bool,
    /// The config built from the rows.
    pub config: RiskConfig,
    /// Every user's profile.
    pub profiles: HashMap<UserId, StoredProfile>,
}

/// What the first start copies from the config file into an empty store.
#[derive(Debug, Clone, Default)]
pub struct Seed {
    /// Tiers, in ladder order (symbol `None` for the default ladder).
    pub tiers: Vec<NewTier>,
    /// Rules.
    pub rules: Vec<NewRule>,
    /// One profile per user (the first account of a user gives it).
    pub profiles: Vec<(String, RiskProfile)>,
}

impl Seed {
    /// The file's ladders, rules and accounts' profiles as rows.
    #[must_use]
    pub fn from_file(file: &ConfigFile) -> Self {
        let mut tiers = ladder_rows(None, &file.engine.default_ladder);
        let mut symbols: Vec<&Symbol> = file.engine.ladders.keys().collect();
        symbols.sort();
        for s in symbols {
            tiers.extend(ladder_rows(Some(s), &file.engine.ladders[s]));
        }
        let rules = file
            .engine
            .rules
            .rules()
            .iter()
            .map(|r| NewRule {
                name: r.id.as_str().to_owned(),
                metric: r.metric.as_str().to_owned(),
                operator: r.operator.as_str().to_owned(),
                threshold: r.threshold.normalize().to_string(),
                severity: r.severity.as_str().to_owned(),
                action: r.action.as_str().to_owned(),
                kyc_level: r.kyc_level.map(|k| k.as_str().to_owned()),
                symbol: r.symbol.as_ref().map(|s| s.as_str().to_owned()),
                active: r.active,
            })
            .collect();
        let mut profiles: Vec<(String, RiskProfile)> = Vec::new();
        for a in &file.accounts {
            if !profiles.iter().any(|(u, _)| u == a.user_id.as_str()) {
                profiles.push((a.user_id.as_str().to_owned(), a.profile.clone()));
            }
        }
        Self {
            tiers,
            rules,
            profiles,
        }
    }
}

/// A ladder as tier rows: numbered from 1, `max_notional` the cap, the rate as a percentage.
fn ladder_rows(symbol: Option<&Symbol>, ladder: &TierLadder) -> Vec<NewTier> {
    ladder
        .tiers()
        .iter()
        .enumerate()
        .map(|(i, t)| NewTier {
            symbol: symbol.map(|s| s.as_str().to_owned()),
            tier: i32::try_from(i).map_or(i32::MAX, |i| i.saturating_add(1)),
            max_notional: t.cap.map(|c| c.get().normalize().to_string()),
            maintenance_margin_pct: t
                .maintenance_rate
                .get()
                .checked_mul(Decimal::ONE_HUNDRED)
                .unwrap_or(Decimal::MAX)
                .normalize()
                .to_string(),
            max_leverage: t.max_leverage.get().normalize().to_string(),
            active: t.active,
        })
        .collect()
}

// ---- conversions: text to the core's types ------------------------------------------

/// The scale and integer digits of a PostgreSQL `numeric(p, s)` column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    precision: u32,
    scale: u32,
}

/// The range a decimal field's value must fall in, for its OpenAPI `pattern`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// Any sign.
    Signed,
    /// Zero or more.
    NonNegative,
    /// One or more (leverage).
    AtLeastOne,
    /// From 0 to 100 (a score).
    UpToHundred,
}

impl Column {
    /// The plain decimal text that fits this column and `bound`, as a regular expression
    /// for the OpenAPI document (a `pattern` in the dialect JSON Schema and Rust's `regex`
    /// share): at most `scale` places, and as many digits before the point as the column
    /// takes and a `Decimal` holds beside those places (28 digits in all always fit).
    /// [`decimal`] also takes a `+`, scientific notation, leading zeros, trailing zeros
    /// past the scale and a few longer values; the pattern gives the form clients should
    /// send.
    pub(crate) fn pattern(self, bound: Bound) -> String {
        let digits = self
            .precision
            .saturating_sub(self.scale)
            .min(28_u32.saturating_sub(self.scale));
        let places = format!("(\\.[0-9]{{1,{}}})?", self.scale);
        match bound {
            Bound::Signed => format!(
                "^-?(0|[1-9][0-9]{{0,{}}}){places}$",
                digits.saturating_sub(1)
            ),
            Bound::NonNegative => {
                format!("^(0|[1-9][0-9]{{0,{}}}){places}$", digits.saturating_sub(1))
            }
            Bound::AtLeastOne => format!("^[1-9][0-9]{{0,{}}}{places}$", digits.saturating_sub(1)),
            Bound::UpToHundred => {
                format!("^(100(\\.0{{1,{}}})?|(0|[1-9][0-9]?){places})$", self.scale)
            }
        }
    }
}

/// `numeric(30, 8)`: money, notionals, leverage, thresholds.
pub(crate) const N30_8: Column = Column {
    precision: 30,
    scale: 8,
};
/// `numeric(10, 4)`: risk score, maintenance margin percentage.
pub(crate) const N10_4: Column = Column {
    precision: 10,
    scale: 4,
};

/// Parses a decimal field and checks it fits its column exactly.
pub(crate) fn decimal(field: &str, text: &str, column: Column) -> Result<Decimal, StoreError> {
    let value = risk_core::num::parse_decimal(text.trim())
        .map_err(|e| StoreError::invalid(field, e))?
        .normalize();
    if value.scale() > column.scale {
        return Err(StoreError::invalid(
            field,
            format!("{value} has more than {} decimal places", column.scale),
        ));
    }
    let limit = Decimal::from(10_u64.pow(column.precision.saturating_sub(column.scale).min(19)));
    let int_digits = column.precision.saturating_sub(column.scale);
    if int_digits <= 19 && value.abs() >= limit {
        return Err(StoreError::invalid(
            field,
            format!("{value} has more than {int_digits} digits before the decimal point"),
        ));
    }
    Ok(value)
}

/// Parses an enumeration name into its canonical spelling.
pub(crate) fn canonical<T: std::str::FromStr>(
    field: &str,
    text: &str,
    name: fn(T) -> &'static str,
) -> Result<String, StoreError>
where
    T::Err: fmt::Display,
{
    text.parse::<T>()
        .map(|v| name(v).to_owned())
        .map_err(|e| StoreError::invalid(field, e))
}

fn parse<T: std::str::FromStr>(field: &str, text: &str) -> Result<T, StoreError>
where
    T::Err: fmt::Display,
{
    text.parse::<T>().map_err(|e| StoreError::invalid(field, e))
}

/// The canonical form of an identifier for the OpenAPI document: 1 to 128 printable
/// ASCII characters, no space at either end. [`ident`] also takes other characters that
/// are not control characters (at most 128 bytes) and trims spaces.
pub(crate) const IDENT_PATTERN: &str = "^[!-~]([ -~]{0,126}[!-~])?$";

/// A non-empty identifier (user id, rule name, symbol).
pub(crate) fn ident(field: &str, text: &str) -> Result<String, StoreError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(StoreError::invalid(field, "must not be empty"));
    }
    if t.len() > 128 || t.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            field,
            "must be at most 128 characters, none of them control characters",
        ));
    }
    Ok(t.to_owned())
}

/// The values a rule row holds, canonical and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleValues {
    pub name: String,
    pub metric: String,
    pub operator: String,
    pub threshold: Decimal,
    pub severity: String,
    pub action: String,
    pub kyc_level: Option<String>,
    pub symbol: Option<String>,
    pub active: bool,
}

impl RuleValues {
    pub(crate) fn from_new(new: &NewRule) -> Result<Self, StoreError> {
        Ok(Self {
            name: ident("name", &new.name)?,
            metric: canonical::<CheckMetric>("metric", &new.metric, CheckMetric::as_str)?,
            operator: canonical::<Operator>("operator", &new.operator, Operator::as_str)?,
            threshold: decimal("threshold", &new.threshold, N30_8)?,
            severity: canonical::<Severity>("severity", &new.severity, Severity::as_str)?,
            action: canonical::<RuleAction>("action", &new.action, RuleAction::as_str)?,
            kyc_level: new
                .kyc_level
                .as_deref()
                .map(|k| canonical::<KycLevel>("kyc_level", k, KycLevel::as_str))
                .transpose()?,
            symbol: new
                .symbol
                .as_deref()
                .map(|s| ident("symbol", s))
                .transpose()?,
            active: new.active,
        })
    }

    pub(crate) fn from_row(row: &RuleRow) -> Self {
        Self {
            name: row.name.clone(),
            metric: row.metric.clone(),
            operator: row.operator.clone(),
            threshold: row.threshold,
            severity: row.severity.clone(),
            action: row.action.clone(),
            kyc_level: row.kyc_level.clone(),
            symbol: row.symbol.clone(),
            active: row.active,
        }
    }

    pub(crate) fn patched(mut self, p: &RulePatch) -> Result<Self, StoreError> {
        if let Some(m) = &p.metric {
            self.metric = canonical::<CheckMetric>("metric", m, CheckMetric::as_str)?;
        }
        if let Some(o) = &p.operator {
            self.operator = canonical::<Operator>("operator", o, Operator::as_str)?;
        }
        if let Some(t) = &p.threshold {
            self.threshold = decimal("threshold", t, N30_8)?;
        }
        if let Some(s) = &p.severity {
            self.severity = canonical::<Severity>("severity", s, Severity::as_str)?;
        }
        if let Some(a) = &p.action {
            self.action = canonical::<RuleAction>("action", a, RuleAction::as_str)?;
        }
        if let Some(k) = &p.kyc_level {
            self.kyc_level = k
                .as_deref()
                .map(|k| canonical::<KycLevel>("kyc_level", k, KycLevel::as_str))
                .transpose()?;
        }
        if let Some(s) = &p.symbol {
            self.symbol = s.as_deref().map(|s| ident("symbol", s)).transpose()?;
        }
        if let Some(a) = p.active {
            self.active = a;
        }
        Ok(self)
    }
}

/// The values a tier row holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TierValues {
    pub symbol: Option<String>,
    pub tier: i32,
    pub max_notional: Option<Decimal>,
    pub maintenance_margin_pct: Decimal,
    pub max_leverage: Decimal,
    pub active: bool,
}

impl TierValues {
    pub(crate) fn from_new(new: &NewTier) -> Result<Self, StoreError> {
        if new.tier < 1 {
            return Err(StoreError::invalid("tier", "tiers are numbered from 1"));
        }
        Ok(Self {
            symbol: new
                .symbol
                .as_deref()
                .map(|s| ident("symbol", s))
                .transpose()?,
            tier: new.tier,
            max_notional: new
                .max_notional
                .as_deref()
                .map(|m| decimal("max_notional", m, N30_8))
                .transpose()?,
            maintenance_margin_pct: decimal(
                "maintenance_margin_pct",
                &new.maintenance_margin_pct,
                N10_4,
            )?,
            max_leverage: decimal("max_leverage", &new.max_leverage, N30_8)?,
            active: new.active,
        })
    }

    pub(crate) fn from_row(row: &TierRow) -> Self {
        Self {
            symbol: row.symbol.clone(),
            tier: row.tier,
            max_notional: row.max_notional,
            maintenance_margin_pct: row.maintenance_margin_pct,
            max_leverage: row.max_leverage,
            active: row.active,
        }
    }

    pub(crate) fn patched(mut self, p: &TierPatch) -> Result<Self, StoreError> {
        if let Some(m) = &p.max_notional {
            self.max_notional = m
                .as_deref()
                .map(|m| decimal("max_notional", m, N30_8))
                .transpose()?;
        }
        if let Some(m) = &p.maintenance_margin_pct {
            self.maintenance_margin_pct = decimal("maintenance_margin_pct", m, N10_4)?;
        }
        if let Some(l) = &p.max_leverage {
            self.max_leverage = decimal("max_leverage", l, N30_8)?;
        }
        if let Some(a) = p.active {
            self.active = a;
        }
        Ok(self)
    }
}

/// The values a profile row holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProfileValues {
    pub kyc_level: String,
    pub exposure_limit_usdt: Decimal,
    pub frozen: bool,
    pub risk_score: Decimal,
    pub max_leverage: Decimal,
}

impl ProfileValues {
    pub(crate) fn from_core(p: &RiskProfile) -> Self {
        Self {
            kyc_level: p.kyc_level.as_str().to_owned(),
            exposure_limit_usdt: p.exposure_limit.get().normalize(),
            frozen: p.frozen,
            risk_score: p.risk_score.get().normalize(),
            max_leverage: p.max_leverage.get().normalize(),
        }
    }

    pub(crate) fn from_row(row: &ProfileRow) -> Self {
        Self {
            kyc_level: row.kyc_level.clone(),
            exposure_limit_usdt: row.exposure_limit_usdt,
            frozen: row.frozen,
            risk_score: row.risk_score,
            max_leverage: row.max_leverage,
        }
    }

    pub(crate) fn patched(mut self, p: &ProfilePatch) -> Result<Self, StoreError> {
        if let Some(k) = &p.kyc_level {
            self.kyc_level = canonical::<KycLevel>("kyc_level", k, KycLevel::as_str)?;
        }
        if let Some(e) = &p.exposure_limit_usdt {
            self.exposure_limit_usdt = decimal("exposure_limit_usdt", e, N30_8)?;
        }
        if let Some(f) = p.frozen {
            self.frozen = f;
        }
        if let Some(r) = &p.risk_score {
            self.risk_score = decimal("risk_score", r, N10_4)?;
        }
        if let Some(l) = &p.max_leverage {
            self.max_leverage = decimal("max_leverage", l, N30_8)?;
        }
        Ok(self)
    }

    /// The core's profile, built through its constructors.
    pub(crate) fn to_core(&self) -> Result<StoredProfile, StoreError> {
        Ok(StoredProfile {
            profile: RiskProfile {
                kyc_level: parse("kyc_level", &self.kyc_level)?,
                exposure_limit: Notional::new(self.exposure_limit_usdt)
                    .map_err(|e| StoreError::invalid("exposure_limit_usdt", e))?,
                frozen: self.frozen,
                max_leverage: Leverage::new(self.max_leverage)
                    .map_err(|e| StoreError::invalid("max_leverage", e))?,
                risk_score: RiskScore::new(self.risk_score)
                    .map_err(|e| StoreError::invalid("risk_score", e))?,
                trading_state: TradingState::Active,
            },
        })
    }
}

/// Builds the core's rule from a row.
fn rule_to_core(row: &RuleValues) -> Result<Rule, StoreError> {
    let at = |field: &str| format!("risk_rules[{}].{field}", row.name);
    Ok(Rule {
        id: RuleId::new(&row.name),
        metric: parse(&at("metric"), &row.metric)?,
        operator: parse(&at("operator"), &row.operator)?,
        threshold: row.threshold,
        severity: parse(&at("severity"), &row.severity)?,
        action: parse(&at("action"), &row.action)?,
        kyc_level: row
            .kyc_level
            .as_deref()
            .map(|k| parse(&at("kyc_level"), k))
            .transpose()?,
        symbol: row.symbol.as_deref().map(Symbol::new),
        active: row.active,
    })
}

/// The field a ladder error is about, and the 0-based tier index it names.
fn ladder_field(e: &LadderError) -> (&'static str, Option<usize>) {
    match e {
        LadderError::Empty | LadderError::FirstFloorNotZero { .. } => ("tier", None),
        LadderError::Gap { index, .. }
        | LadderError::Overlap { index, .. }
        | LadderError::NotAscending { index, .. }
        | LadderError::UnboundedNotLast { index } => ("max_notional", Some(*index)),
        LadderError::RateOutOfRange { index, .. } | LadderError::RateDecreasing { index, .. } => {
            ("maintenance_margin_pct", Some(*index))
        }
        LadderError::LeverageIncreasing { index, .. }
        | LadderError::LeverageTooHighForRate { index, .. } => ("max_leverage", Some(*index)),
        LadderError::InactiveBelowActive { index } => ("active", Some(*index)),
        _ => ("tier", None),
    }
}

/// Builds one ladder from its rows (sorted by tier number) through [`TierLadder::new`].
fn ladder_to_core(symbol: Option<&str>, rows: &[&TierValues]) -> Result<TierLadder, StoreError> {
    let name = symbol.unwrap_or("default");
    let mut tiers = Vec::with_capacity(rows.len());
    let mut floor = Notional::ZERO;
    for (i, row) in rows.iter().enumerate() {
        let at = |field: &str| format!("margin_tiers[{name} tier {}].{field}", row.tier);
        if usize::try_from(row.tier).ok() != Some(i + 1) {
            return Err(StoreError::invalid(
                at("tier"),
                format!(
                    "the {name} ladder's tiers must be numbered 1, 2, 3... without gaps; found tier {} in position {}",
                    row.tier,
                    i + 1
                ),
            ));
        }
        let rate = row
            .maintenance_margin_pct
            .checked_div(Decimal::ONE_HUNDRED)
            .ok_or_else(|| StoreError::invalid(at("maintenance_margin_pct"), "overflow"))?;
        let cap = row
            .max_notional
            .map(|c| Notional::new(c).map_err(|e| StoreError::invalid(at("max_notional"), e)))
            .transpose()?;
        tiers.push(Tier {
            floor,
            cap,
            maintenance_rate: Ratio::new(rate)
                .map_err(|e| StoreError::invalid(at("maintenance_margin_pct"), e))?,
            max_leverage: Leverage::new(row.max_leverage)
                .map_err(|e| StoreError::invalid(at("max_leverage"), e))?,
            active: row.active,
        });
        floor = cap.unwrap_or(floor);
    }
    TierLadder::new(tiers).map_err(|e| {
        let (field, index) = ladder_field(&e);
        let row = index.and_then(|i| rows.get(i).map(|r| (i, r)));
        let place = row.map_or_else(
            || format!("{name} ladder"),
            |(_, r)| format!("{name} tier {}", r.tier),
        );
        // The core numbers tiers from 0 and speaks of rates; this API numbers them from 1
        // and speaks of percentages.
        let note = row.map_or_else(String::new, |(i, r)| {
            format!(
                " (the core numbers tiers from 0: its tier {i} is tier {}; its rates are \
                 maintenance_margin_pct / 100, so {} % is {})",
                r.tier,
                r.maintenance_margin_pct,
                (r.maintenance_margin_pct / Decimal::ONE_HUNDRED).normalize()
            )
        });
        StoreError::invalid(
            format!("margin_tiers[{place}].{field}"),
            format!("{e}{note}"),
        )
    })
}

/// Builds and validates the engine config from the rows: `base`'s limits, metrics and
/// score settings with the rows' ladders and rules.
pub(crate) fn build_config(
    base: &RiskConfig,
    tiers: &[TierValues],
    rules: &[RuleValues],
) -> Result<RiskConfig, StoreError> {
    let mut by_symbol: HashMap<Option<&str>, Vec<&TierValues>> = HashMap::new();
    for t in tiers {
        by_symbol.entry(t.symbol.as_deref()).or_default().push(t);
    }
    for rows in by_symbol.values_mut() {
        rows.sort_by_key(|t| t.tier);
    }
    let default_rows = by_symbol.remove(&None).unwrap_or_default();
    let mut config = base.clone();
    config.default_ladder = ladder_to_core(None, &default_rows)?;
    config.ladders = by_symbol
        .into_iter()
        .map(|(s, rows)| {
            let s = s.unwrap_or_default();
            Ok((Symbol::new(s), ladder_to_core(Some(s), &rows)?))
        })
        .collect::<Result<_, StoreError>>()?;
    let rules = rules
        .iter()
        .map(rule_to_core)
        .collect::<Result<Vec<_>, _>>()?;
    config.rules = RuleSet::new(rules).map_err(|e| {
        let field = match e {
            RuleError::DuplicateId(_) => "name",
            _ => "name",
        };
        StoreError::invalid(format!("risk_rules.{field}"), e)
    })?;
    config
        .validate()
        .map_err(|e| StoreError::invalid("config", e))?;
    Ok(config)
}

/// The parsed `If-Match` check.
pub(crate) fn check_version(
    what: &'static str,
    key: &str,
    expected: Option<i64>,
    actual: i64,
) -> Result<(), StoreError> {
    match expected {
        Some(expected) if expected != actual => Err(StoreError::VersionMismatch {
            what,
            key: key.to_owned(),
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

/// The store of risk profiles, rules and margin tiers.
#[async_trait::async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// The connection pool, for modules that keep tables of their own in the same
    /// database (the webhook dispatcher).
    fn db_pool(&self) -> DbPool;

    /// A round trip to the database.
    ///
    /// # Errors
    /// [`StoreError::Database`] when it cannot be reached.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The config version (bumped by every write).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn version(&self) -> Result<i64, StoreError>;

    /// Copies `seed` in when the store holds no tier, rule or profile; true when it did.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the seed does not build a valid config with `base`.
    async fn seed_if_empty(&self, seed: &Seed, base: &RiskConfig) -> Result<bool, StoreError>;

    /// Everything, read in one transaction, with the config built on `base`.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the stored rows do not build a valid config.
    async fn snapshot(&self, base: &RiskConfig) -> Result<Snapshot, StoreError>;

    /// Profiles by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn list_profiles(&self, q: &ListQuery) -> Result<Vec<ProfileRow>, StoreError>;
    /// One user's profile.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    async fn profile(&self, user_id: &str) -> Result<ProfileRow, StoreError>;
    /// Changes one user's profile.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::VersionMismatch`], [`StoreError::Invalid`].
    async fn patch_profile(
        &self,
        user_id: &str,
        patch: &ProfilePatch,
        w: &WriteCtx,
    ) -> Result<Committed<ProfileRow>, StoreError>;

    /// Rules by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn list_rules(&self, q: &ListQuery) -> Result<Vec<RuleRow>, StoreError>;
    /// One rule.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    async fn rule(&self, id: i64) -> Result<RuleRow, StoreError>;
    /// Adds a rule.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for a taken name, [`StoreError::Invalid`].
    async fn create_rule(
        &self,
        new: &NewRule,
        w: &WriteCtx,
    ) -> Result<Committed<RuleRow>, StoreError>;
    /// Changes a rule.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::VersionMismatch`], [`StoreError::Invalid`].
    async fn patch_rule(
        &self,
        id: i64,
        patch: &RulePatch,
        w: &WriteCtx,
    ) -> Result<Committed<RuleRow>, StoreError>;

    /// Tiers by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn list_tiers(&self, q: &ListQuery) -> Result<Vec<TierRow>, StoreError>;
    /// One tier.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    async fn tier(&self, id: i64) -> Result<TierRow, StoreError>;
    /// Adds a tier.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for a taken (symbol, tier), [`StoreError::Invalid`].
    async fn create_tier(
        &self,
        new: &NewTier,
        w: &WriteCtx,
    ) -> Result<Committed<TierRow>, StoreError>;
    /// Changes a tier.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::VersionMismatch`], [`StoreError::Invalid`].
    async fn patch_tier(
        &self,
        id: i64,
        patch: &TierPatch,
        w: &WriteCtx,
    ) -> Result<Committed<TierRow>, StoreError>;

    /// The latest audit rows, newest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn audit(&self, limit: u32) -> Result<Vec<AuditRow>, StoreError>;

    /// Runs until the task is dropped, sending on `changes` after another writer changes
    /// the store: the new version, or `None` after a reconnect (reload everything).
    async fn watch(&self, changes: tokio::sync::mpsc::Sender<Option<i64>>);
}

/// The connection pool under a [`Store`], for modules that keep tables of their own in the
/// same database and migrations folder (the webhook dispatcher), with their own queries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DbPool {
    /// A SQLite pool.
    Sqlite(sqlx::Pool<sqlx::Sqlite>),
    /// A PostgreSQL pool.
    Postgres(sqlx::Pool<sqlx::Postgres>),
}

impl From<sqlx::Pool<sqlx::Sqlite>> for DbPool {
    fn from(pool: sqlx::Pool<sqlx::Sqlite>) -> Self {
        Self::Sqlite(pool)
    }
}

impl From<sqlx::Pool<sqlx::Postgres>> for DbPool {
    fn from(pool: sqlx::Pool<sqlx::Postgres>) -> Self {
        Self::Postgres(pool)
    }
}

/// Opens the store a `--database` URL names (`sqlite://PATH`, `postgres://...`), creating
/// a SQLite file when missing, and applies the backend's migrations.
///
/// # Errors
/// [`StoreError::UnsupportedUrl`], [`StoreError::Database`], [`StoreError::Migrate`].
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(sqlite::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(std::sync::Arc::new(postgres::PgStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_checked_against_their_column() {
        assert_eq!(
            decimal("x", "1000.50", N30_8).ok(),
            Some(Decimal::new(10005, 1))
        );
        assert!(decimal("x", "0.123456789", N30_8)
            .expect_err("9 places")
            .to_string()
            .starts_with("x: "));
        assert!(decimal("risk_score", "1000000", N10_4).is_err());
        assert!(decimal("risk_score", "999999.9999", N10_4).is_ok());
        let e = decimal("threshold", "abc", N30_8).expect_err("not a number");
        assert!(e.to_string().contains("threshold") && e.to_string().contains("abc"));
    }

    #[test]
    fn a_decreasing_rate_names_the_tier_and_field() {
        let base = RiskConfig::new(
            TierLadder::new(vec![Tier {
                floor: Notional::ZERO,
                cap: None,
                maintenance_rate: Ratio::lit("0.01"),
                max_leverage: Leverage::lit("20"),
                active: true,
            }])
            .expect("valid"),
        );
        let t = |tier, max: Option<i64>, pct: i64, lev: i64| TierValues {
            symbol: Some("BTCUSDT".into()),
            tier,
            max_notional: max.map(Decimal::from),
            maintenance_margin_pct: Decimal::new(pct, 1),
            max_leverage: Decimal::from(lev),
            active: true,
        };
        let mut default = t(1, None, 10, 20);
        default.symbol = None;
        let ok = [
            default.clone(),
            t(1, Some(50_000), 4, 125),
            t(2, None, 5, 100),
        ];
        let config = build_config(&base, &ok, &[]).expect("valid");
        assert_eq!(config.ladders.len(), 1);
        let bad = [default, t(1, Some(50_000), 4, 125), t(2, None, 3, 100)];
        match build_config(&base, &bad, &[]) {
            Err(StoreError::Invalid { field, message }) => {
                assert_eq!(field, "margin_tiers[BTCUSDT tier 2].maintenance_margin_pct");
                assert!(message.contains("rates must not decrease"), "{message}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    proptest::proptest! {
        /// A ladder written as rows and read back through the core is the same ladder.
        #[test]
        fn ladders_round_trip_through_rows(
            steps in proptest::collection::vec((1_u32..1_000_000, 0_u32..20_000, 0_u32..30), 1..6),
            first_rate in 1_u32..50_000,
        ) {
            // Rates in 1/10,000 % (the pct column's scale), non-decreasing; leverage
            // non-increasing and below 1 / rate; caps ascending; the last tier unbounded.
            let mut tiers = Vec::new();
            let mut floor = Decimal::ZERO;
            let mut rate = first_rate;
            let mut leverage = 125_u32;
            for (i, (width, rate_step, lev_step)) in steps.iter().enumerate() {
                rate = rate.saturating_add(*rate_step);
                let ratio = Decimal::new(i64::from(rate), 6);
                let max_lev = (Decimal::ONE / ratio).floor().to_string().parse::<u32>().unwrap_or(1);
                leverage = leverage.saturating_sub(*lev_step).min(max_lev.saturating_sub(1)).max(1);
                let cap = (i + 1 < steps.len()).then(|| floor + Decimal::from(*width));
                tiers.push(Tier {
                    floor: Notional::new(floor).expect("floor"),
                    cap: cap.map(|c| Notional::new(c).expect("cap")),
                    maintenance_rate: Ratio::new(ratio).expect("rate"),
                    max_leverage: Leverage::new(Decimal::from(leverage)).expect("leverage"),
                    active: true,
                });
                floor = cap.unwrap_or(floor);
            }
            let ladder = TierLadder::new(tiers).expect("valid by construction");
            let symbol = Symbol::new("BTCUSDT");
            let rows: Vec<TierValues> = ladder_rows(Some(&symbol), &ladder)
                .iter()
                .map(|r| TierValues::from_new(r).expect("rows convert"))
                .collect();
            let refs: Vec<&TierValues> = rows.iter().collect();
            let back = ladder_to_core(Some("BTCUSDT"), &refs).expect("the same ladder");
            proptest::prop_assert_eq!(back, ladder);
        }
    }
}
