//! The SQL the two backends share, written once and instantiated for each by
//! [`impl_store!`]: both take `$N` placeholders, `RETURNING` and `CAST(x AS TEXT)`; they
//! differ in how a decimal or JSON parameter is typed (`$N::numeric` on PostgreSQL, plain
//! text on SQLite), in how a consistent read begins, and in the change notification.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{ProfileRow, RuleRow, StoreError, TierRow};

/// Parses a decimal read back from a column (`CAST(x AS TEXT)`).
pub(crate) fn column_decimal(column: &str, text: &str) -> Result<Decimal, StoreError> {
    risk_core::num::parse_decimal(text.trim())
        .map(|d| d.normalize())
        .map_err(|e| StoreError::Invalid {
            field: column.to_owned(),
            message: format!("stored value: {e}"),
        })
}

/// A profile row as read, decimals as text.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RawProfile {
    id: i64,
    user_id: String,
    kyc_level: String,
    exposure_limit_usdt: String,
    frozen: bool,
    risk_score: String,
    max_leverage: String,
    last_margin_call: Option<DateTime<Utc>>,
    last_event_id: Option<String>,
    last_event_ts: Option<DateTime<Utc>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RawProfile> for ProfileRow {
    type Error = StoreError;
    fn try_from(r: RawProfile) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.id,
            user_id: r.user_id,
            kyc_level: r.kyc_level,
            exposure_limit_usdt: column_decimal("exposure_limit_usdt", &r.exposure_limit_usdt)?,
            frozen: r.frozen,
            risk_score: column_decimal("risk_score", &r.risk_score)?,
            max_leverage: column_decimal("max_leverage", &r.max_leverage)?,
            last_margin_call: r.last_margin_call,
            last_event_id: r.last_event_id,
            last_event_ts: r.last_event_ts,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A rule row as read.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RawRule {
    id: i64,
    name: String,
    metric: String,
    operator: String,
    threshold: String,
    severity: String,
    action: String,
    kyc_level: Option<String>,
    symbol: Option<String>,
    active: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RawRule> for RuleRow {
    type Error = StoreError;
    fn try_from(r: RawRule) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.id,
            name: r.name,
            metric: r.metric,
            operator: r.operator,
            threshold: column_decimal("threshold", &r.threshold)?,
            severity: r.severity,
            action: r.action,
            kyc_level: r.kyc_level,
            symbol: r.symbol,
            active: r.active,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A tier row as read.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RawTier {
    id: i64,
    symbol: Option<String>,
    tier: i32,
    max_notional: Option<String>,
    maintenance_margin_pct: String,
    max_leverage: String,
    active: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RawTier> for TierRow {
    type Error = StoreError;
    fn try_from(r: RawTier) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.id,
            symbol: r.symbol,
            tier: r.tier,
            max_notional: r
                .max_notional
                .as_deref()
                .map(|m| column_decimal("max_notional", m))
                .transpose()?,
            maintenance_margin_pct: column_decimal(
                "maintenance_margin_pct",
                &r.maintenance_margin_pct,
            )?,
            max_leverage: column_decimal("max_leverage", &r.max_leverage)?,
            active: r.active,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// An audit row as read.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RawAudit {
    pub id: i64,
    pub route: String,
    pub token_name: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub config_version: i64,
    pub at: DateTime<Utc>,
}

/// Maps a unique-key violation to [`StoreError::Conflict`] on `field`.
pub(crate) fn conflict(
    field: &'static str,
    message: String,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { field, message }
        }
        _ => StoreError::Database(e),
    }
}

/// JSON text of a row, for the audit.
pub(crate) fn json<T: serde::Serialize>(row: &T) -> Option<String> {
    serde_json::to_string(row).ok()
}

pub(crate) const PROFILE_COLUMNS: &str = "id, user_id, kyc_level, \
    CAST(exposure_limit_usdt AS TEXT) AS exposure_limit_usdt, frozen, \
    CAST(risk_score AS TEXT) AS risk_score, CAST(max_leverage AS TEXT) AS max_leverage, \
    last_margin_call, last_event_id, last_event_ts, version, created_at, updated_at";

pub(crate) const RULE_COLUMNS: &str = "id, name, metric, operator, \
    CAST(threshold AS TEXT) AS threshold, severity, action, kyc_level, symbol, active, \
    version, created_at, updated_at";

pub(crate) const TIER_COLUMNS: &str = "id, symbol, tier, \
    CAST(max_notional AS TEXT) AS max_notional, \
    CAST(maintenance_margin_pct AS TEXT) AS maintenance_margin_pct, \
    CAST(max_leverage AS TEXT) AS max_leverage, active, version, created_at, updated_at";

/// Implements [`super::Store`] for `$store` (a struct with a `pool: Pool<$db>` field and
/// an inherent `async fn watch_changes(&self, Sender<Option<i64>>)`). `$num` and `$json`
/// follow a decimal or JSON parameter (`"::numeric"`, `"::jsonb"` or `""`); `$repeatable`
/// begins a consistent read (or is empty); `$notify` says whether a write announces its
/// version with `pg_notify`.
macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:literal, num = $num:literal, json = $json:literal,
     repeatable = $repeatable:literal, notify = $notify:literal) => {
        use $crate::store::sql::{
            conflict, json, RawAudit, RawProfile, RawRule, RawTier, PROFILE_COLUMNS,
            RULE_COLUMNS, TIER_COLUMNS,
        };
        use $crate::store::{
            build_config, check_version, AuditRow, Change, Committed, ListQuery, NewRule,
            NewTier, ProfilePatch, ProfileRow, ProfileValues, RulePatch, RuleRow, RuleValues,
            Seed, Snapshot, Store, StoreError, TierPatch, TierRow, TierValues, WriteCtx,
        };
        use risk_core::config::RiskConfig;
        use risk_core::ids::UserId;

        type Tx<'a> = sqlx::Transaction<'a, $db>;

        impl $store {
            /// Starts a write: bumps the config version, which also takes the write lock
            /// that orders every writer (the row lock on PostgreSQL, the database's
            /// reserved lock on SQLite).
            async fn begin_write(&self) -> Result<(Tx<'_>, i64), StoreError> {
                let mut tx = self.pool.begin().await?;
                let version: i64 = sqlx::query_scalar(
                    "UPDATE config_version SET version = version + 1 WHERE id = 1 RETURNING version",
                )
                .fetch_one(&mut *tx)
                .await?;
                Ok((tx, version))
            }

            /// Audits and commits a write (announcing its version on PostgreSQL).
            async fn finish_write(
                mut tx: Tx<'_>,
                version: i64,
                w: &WriteCtx,
                before: Option<String>,
                after: Option<String>,
            ) -> Result<(), StoreError> {
                sqlx::query(concat!(
                    "INSERT INTO admin_audit (route, token_name, before, after, config_version, at) VALUES ($1, $2, $3",
                    $json,
                    ", $4",
                    $json,
                    ", $5, $6)"
                ))
                .bind(&w.route)
                .bind(&w.actor)
                .bind(before)
                .bind(after)
                .bind(version)
                .bind(chrono::Utc::now())
                .execute(&mut *tx)
                .await?;
                if $notify {
                    sqlx::query("SELECT pg_notify('riskgate_config', $1)")
                        .bind(version.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn all_tiers(tx: &mut Tx<'_>) -> Result<Vec<TierRow>, StoreError> {
                let raw: Vec<RawTier> =
                    sqlx::query_as(&format!("SELECT {TIER_COLUMNS} FROM margin_tiers ORDER BY id"))
                        .fetch_all(&mut **tx)
                        .await?;
                raw.into_iter().map(TierRow::try_from).collect()
            }

            async fn all_rules(tx: &mut Tx<'_>) -> Result<Vec<RuleRow>, StoreError> {
                let raw: Vec<RawRule> =
                    sqlx::query_as(&format!("SELECT {RULE_COLUMNS} FROM risk_rules ORDER BY id"))
                        .fetch_all(&mut **tx)
                        .await?;
                raw.into_iter().map(RuleRow::try_from).collect()
            }

            async fn all_profiles(tx: &mut Tx<'_>) -> Result<Vec<ProfileRow>, StoreError> {
                let raw: Vec<RawProfile> = sqlx::query_as(&format!(
                    "SELECT {PROFILE_COLUMNS} FROM risk_profiles ORDER BY id"
                ))
                .fetch_all(&mut **tx)
                .await?;
                raw.into_iter().map(ProfileRow::try_from).collect()
            }

            /// The config the rows in `tx` build, validated by the core.
            async fn config_in(tx: &mut Tx<'_>, base: &RiskConfig) -> Result<RiskConfig, StoreError> {
                let tiers: Vec<TierValues> =
                    Self::all_tiers(tx).await?.iter().map(TierValues::from_row).collect();
                let rules: Vec<RuleValues> =
                    Self::all_rules(tx).await?.iter().map(RuleValues::from_row).collect();
                build_config(base, &tiers, &rules)
            }

            async fn tier_in(tx: &mut Tx<'_>, id: i64) -> Result<TierRow, StoreError> {
                let raw: Option<RawTier> = sqlx::query_as(&format!(
                    "SELECT {TIER_COLUMNS} FROM margin_tiers WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
                raw.map(TierRow::try_from).transpose()?.ok_or(StoreError::NotFound {
                    what: "margin tier",
                    key: id.to_string(),
                })
            }

            async fn rule_in(tx: &mut Tx<'_>, id: i64) -> Result<RuleRow, StoreError> {
                let raw: Option<RawRule> = sqlx::query_as(&format!(
                    "SELECT {RULE_COLUMNS} FROM risk_rules WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
                raw.map(RuleRow::try_from).transpose()?.ok_or(StoreError::NotFound {
                    what: "risk rule",
                    key: id.to_string(),
                })
            }

            async fn profile_in(tx: &mut Tx<'_>, user_id: &str) -> Result<ProfileRow, StoreError> {
                let raw: Option<RawProfile> = sqlx::query_as(&format!(
                    "SELECT {PROFILE_COLUMNS} FROM risk_profiles WHERE user_id = $1"
                ))
                .bind(user_id)
                .fetch_optional(&mut **tx)
                .await?;
                raw.map(ProfileRow::try_from).transpose()?.ok_or(StoreError::NotFound {
                    what: "risk profile",
                    key: user_id.to_owned(),
                })
            }

            async fn insert_tier(tx: &mut Tx<'_>, v: &TierValues) -> Result<i64, StoreError> {
                let now = chrono::Utc::now();
                sqlx::query_scalar(concat!(
                    "INSERT INTO margin_tiers (symbol, tier, max_notional, maintenance_margin_pct, max_leverage, active, version, created_at, updated_at) VALUES ($1, $2, $3",
                    $num, ", $4", $num, ", $5", $num, ", $6, 1, $7, $7) RETURNING id"
                ))
                .bind(&v.symbol)
                .bind(v.tier)
                .bind(v.max_notional.map(|d| d.to_string()))
                .bind(v.maintenance_margin_pct.to_string())
                .bind(v.max_leverage.to_string())
                .bind(v.active)
                .bind(now)
                .fetch_one(&mut **tx)
                .await
                .map_err(conflict(
                    "tier",
                    format!(
                        "the {} ladder already has a tier {}",
                        v.symbol.as_deref().unwrap_or("default"),
                        v.tier
                    ),
                ))
            }

            async fn insert_rule(tx: &mut Tx<'_>, v: &RuleValues) -> Result<i64, StoreError> {
                let now = chrono::Utc::now();
                sqlx::query_scalar(concat!(
                    "INSERT INTO risk_rules (name, metric, operator, threshold, severity, action, kyc_level, symbol, active, version, created_at, updated_at) VALUES ($1, $2, $3, $4",
                    $num, ", $5, $6, $7, $8, $9, 1, $10, $10) RETURNING id"
                ))
                .bind(&v.name)
                .bind(&v.metric)
                .bind(&v.operator)
                .bind(v.threshold.to_string())
                .bind(&v.severity)
                .bind(&v.action)
                .bind(&v.kyc_level)
                .bind(&v.symbol)
                .bind(v.active)
                .bind(now)
                .fetch_one(&mut **tx)
                .await
                .map_err(conflict("name", format!("a rule named `{}` exists", v.name)))
            }

            async fn insert_profile(
                tx: &mut Tx<'_>,
                user_id: &str,
                v: &ProfileValues,
            ) -> Result<i64, StoreError> {
                let now = chrono::Utc::now();
                sqlx::query_scalar(concat!(
                    "INSERT INTO risk_profiles (user_id, kyc_level, exposure_limit_usdt, frozen, risk_score, max_leverage, version, created_at, updated_at) VALUES ($1, $2, $3",
                    $num, ", $4, $5", $num, ", $6", $num, ", 1, $7, $7) RETURNING id"
                ))
                .bind(user_id)
                .bind(&v.kyc_level)
                .bind(v.exposure_limit_usdt.to_string())
                .bind(v.frozen)
                .bind(v.risk_score.to_string())
                .bind(v.max_leverage.to_string())
                .bind(now)
                .fetch_one(&mut **tx)
                .await
                .map_err(conflict("user_id", format!("user `{user_id}` has a profile")))
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn db_pool(&self) -> $crate::store::DbPool {
                $crate::store::DbPool::from(self.pool.clone())
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn version(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT version FROM config_version WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn seed_if_empty(&self, seed: &Seed, base: &RiskConfig) -> Result<bool, StoreError> {
                let (mut tx, version) = self.begin_write().await?;
                let held: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM margin_tiers) + (SELECT COUNT(*) FROM risk_rules) + (SELECT COUNT(*) FROM risk_profiles)",
                )
                .fetch_one(&mut *tx)
                .await?;
                if held > 0 {
                    return Ok(false); // dropped: rolls back the version bump
                }
                for t in &seed.tiers {
                    Self::insert_tier(&mut tx, &TierValues::from_new(t)?).await?;
                }
                for r in &seed.rules {
                    Self::insert_rule(&mut tx, &RuleValues::from_new(r)?).await?;
                }
                for (user, p) in &seed.profiles {
                    Self::insert_profile(&mut tx, user, &ProfileValues::from_core(p)).await?;
                }
                Self::config_in(&mut tx, base).await?;
                let w = WriteCtx {
                    route: "seed from the config file".to_owned(),
                    actor: "seed".to_owned(),
                    if_match: None,
                    base: std::sync::Arc::new(base.clone()),
                };
                let after = serde_json::json!({
                    "margin_tiers": seed.tiers.len(),
                    "risk_rules": seed.rules.len(),
                    "risk_profiles": seed.profiles.len(),
                });
                Self::finish_write(tx, version, &w, None, Some(after.to_string())).await?;
                Ok(true)
            }

            async fn snapshot(&self, base: &RiskConfig) -> Result<Snapshot, StoreError> {
                let mut tx = self.pool.begin().await?;
                if !$repeatable.is_empty() {
                    sqlx::query($repeatable).execute(&mut *tx).await?;
                }
                let version: i64 = sqlx::query_scalar("SELECT version FROM config_version WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
                let tiers = Self::all_tiers(&mut tx).await?;
                let rules = Self::all_rules(&mut tx).await?;
                let profiles = Self::all_profiles(&mut tx).await?;
                tx.commit().await?;
                let holds_config = !(tiers.is_empty() && rules.is_empty() && profiles.is_empty());
                let tiers: Vec<TierValues> = tiers.iter().map(TierValues::from_row).collect();
                let rules: Vec<RuleValues> = rules.iter().map(RuleValues::from_row).collect();
                let config = build_config(base, &tiers, &rules)?;
                let profiles = profiles
                    .iter()
                    .map(|p| {
                        Ok((
                            UserId::new(&p.user_id),
                            ProfileValues::from_row(p).to_core()?,
                        ))
                    })
                    .collect::<Result<_, StoreError>>()?;
                Ok(Snapshot {
                    version,
                    holds_config,
                    config,
                    profiles,
                })
            }

            async fn list_profiles(&self, q: &ListQuery) -> Result<Vec<ProfileRow>, StoreError> {
                let raw: Vec<RawProfile> = sqlx::query_as(&format!(
                    "SELECT {PROFILE_COLUMNS} FROM risk_profiles WHERE id > $1 ORDER BY id LIMIT $2"
                ))
                .bind(q.after_id.unwrap_or(0))
                .bind(i64::from(q.limit))
                .fetch_all(&self.pool)
                .await?;
                raw.into_iter().map(ProfileRow::try_from).collect()
            }

            async fn profile(&self, user_id: &str) -> Result<ProfileRow, StoreError> {
                let mut tx = self.pool.begin().await?;
                let row = Self::profile_in(&mut tx, user_id).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn patch_profile(
                &self,
                user_id: &str,
                patch: &ProfilePatch,
                w: &WriteCtx,
            ) -> Result<Committed<ProfileRow>, StoreError> {
                let (mut tx, version) = self.begin_write().await?;
                let before = Self::profile_in(&mut tx, user_id).await?;
                check_version("risk profile", user_id, w.if_match, before.version)?;
                let next = ProfileValues::from_row(&before).patched(patch)?;
                let stored = next.to_core()?;
                sqlx::query(concat!(
                    "UPDATE risk_profiles SET kyc_level = $1, exposure_limit_usdt = $2",
                    $num, ", frozen = $3, risk_score = $4", $num, ", max_leverage = $5", $num,
                    ", version = version + 1, updated_at = $6 WHERE id = $7"
                ))
                .bind(&next.kyc_level)
                .bind(next.exposure_limit_usdt.to_string())
                .bind(next.frozen)
                .bind(next.risk_score.to_string())
                .bind(next.max_leverage.to_string())
                .bind(chrono::Utc::now())
                .bind(before.id)
                .execute(&mut *tx)
                .await?;
                let row = Self::profile_in(&mut tx, user_id).await?;
                Self::finish_write(tx, version, w, json(&before), json(&row)).await?;
                Ok(Committed {
                    row,
                    version,
                    change: Change::Profile(UserId::new(user_id), stored),
                })
            }

            async fn list_rules(&self, q: &ListQuery) -> Result<Vec<RuleRow>, StoreError> {
                let raw: Vec<RawRule> = sqlx::query_as(&format!(
                    "SELECT {RULE_COLUMNS} FROM risk_rules WHERE id > $1 \
                     AND ($2 IS NULL OR symbol = $2) AND ($3 IS NULL OR active = $3) \
                     ORDER BY id LIMIT $4"
                ))
                .bind(q.after_id.unwrap_or(0))
                .bind(&q.symbol)
                .bind(q.active)
                .bind(i64::from(q.limit))
                .fetch_all(&self.pool)
                .await?;
                raw.into_iter().map(RuleRow::try_from).collect()
            }

            async fn rule(&self, id: i64) -> Result<RuleRow, StoreError> {
                let mut tx = self.pool.begin().await?;
                let row = Self::rule_in(&mut tx, id).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn create_rule(
                &self,
                new: &NewRule,
                w: &WriteCtx,
            ) -> Result<Committed<RuleRow>, StoreError> {
                let values = RuleValues::from_new(new)?;
                let (mut tx, version) = self.begin_write().await?;
                let id = Self::insert_rule(&mut tx, &values).await?;
                let config = Self::config_in(&mut tx, &w.base).await?;
                let row = Self::rule_in(&mut tx, id).await?;
                Self::finish_write(tx, version, w, None, json(&row)).await?;
                Ok(Committed {
                    row,
                    version,
                    change: Change::Config(Box::new(config)),
                })
            }

            async fn patch_rule(
                &self,
                id: i64,
                patch: &RulePatch,
                w: &WriteCtx,
            ) -> Result<Committed<RuleRow>, StoreError> {
                let (mut tx, version) = self.begin_write().await?;
                let before = Self::rule_in(&mut tx, id).await?;
                check_version("risk rule", &id.to_string(), w.if_match, before.version)?;
                let v = RuleValues::from_row(&before).patched(patch)?;
                sqlx::query(concat!(
                    "UPDATE risk_rules SET metric = $1, operator = $2, threshold = $3",
                    $num,
                    ", severity = $4, action = $5, kyc_level = $6, symbol = $7, active = $8, \
                     version = version + 1, updated_at = $9 WHERE id = $10"
                ))
                .bind(&v.metric)
                .bind(&v.operator)
                .bind(v.threshold.to_string())
                .bind(&v.severity)
                .bind(&v.action)
                .bind(&v.kyc_level)
                .bind(&v.symbol)
                .bind(v.active)
                .bind(chrono::Utc::now())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let config = Self::config_in(&mut tx, &w.base).await?;
                let row = Self::rule_in(&mut tx, id).await?;
                Self::finish_write(tx, version, w, json(&before), json(&row)).await?;
                Ok(Committed {
                    row,
                    version,
                    change: Change::Config(Box::new(config)),
                })
            }

            async fn list_tiers(&self, q: &ListQuery) -> Result<Vec<TierRow>, StoreError> {
                let raw: Vec<RawTier> = sqlx::query_as(&format!(
                    "SELECT {TIER_COLUMNS} FROM margin_tiers WHERE id > $1 \
                     AND ($2 IS NULL OR ($2 = '*' AND symbol IS NULL) OR symbol = $2) \
                     AND ($3 IS NULL OR active = $3) ORDER BY id LIMIT $4"
                ))
                .bind(q.after_id.unwrap_or(0))
                .bind(&q.symbol)
                .bind(q.active)
                .bind(i64::from(q.limit))
                .fetch_all(&self.pool)
                .await?;
                raw.into_iter().map(TierRow::try_from).collect()
            }

            async fn tier(&self, id: i64) -> Result<TierRow, StoreError> {
                let mut tx = self.pool.begin().await?;
                let row = Self::tier_in(&mut tx, id).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn create_tier(
                &self,
                new: &NewTier,
                w: &WriteCtx,
            ) -> Result<Committed<TierRow>, StoreError> {
                let values = TierValues::from_new(new)?;
                let (mut tx, version) = self.begin_write().await?;
                let id = Self::insert_tier(&mut tx, &values).await?;
                let config = Self::config_in(&mut tx, &w.base).await?;
                let row = Self::tier_in(&mut tx, id).await?;
                Self::finish_write(tx, version, w, None, json(&row)).await?;
                Ok(Committed {
                    row,
                    version,
                    change: Change::Config(Box::new(config)),
                })
            }

            async fn patch_tier(
                &self,
                id: i64,
                patch: &TierPatch,
                w: &WriteCtx,
            ) -> Result<Committed<TierRow>, StoreError> {
                let (mut tx, version) = self.begin_write().await?;
                let before = Self::tier_in(&mut tx, id).await?;
                check_version("margin tier", &id.to_string(), w.if_match, before.version)?;
                let v = TierValues::from_row(&before).patched(patch)?;
                sqlx::query(concat!(
                    "UPDATE margin_tiers SET max_notional = $1",
                    $num,
                    ", maintenance_margin_pct = $2",
                    $num,
                    ", max_leverage = $3",
                    $num,
                    ", active = $4, version = version + 1, updated_at = $5 WHERE id = $6"
                ))
                .bind(v.max_notional.map(|d| d.to_string()))
                .bind(v.maintenance_margin_pct.to_string())
                .bind(v.max_leverage.to_string())
                .bind(v.active)
                .bind(chrono::Utc::now())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let config = Self::config_in(&mut tx, &w.base).await?;
                let row = Self::tier_in(&mut tx, id).await?;
                Self::finish_write(tx, version, w, json(&before), json(&row)).await?;
                Ok(Committed {
                    row,
                    version,
                    change: Change::Config(Box::new(config)),
                })
            }

            async fn audit(&self, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
                let raw: Vec<RawAudit> = sqlx::query_as(
                    "SELECT id, route, token_name, CAST(before AS TEXT) AS before, \
                     CAST(after AS TEXT) AS after, config_version, at \
                     FROM admin_audit ORDER BY id DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(raw
                    .into_iter()
                    .map(|r| AuditRow {
                        id: r.id,
                        route: r.route,
                        token_name: r.token_name,
                        before: r.before,
                        after: r.after,
                        config_version: r.config_version,
                        at: r.at,
                    })
                    .collect())
            }

            async fn watch(&self, changes: tokio::sync::mpsc::Sender<Option<i64>>) {
                self.watch_changes(changes).await;
            }
        }
    };
}

pub(crate) use impl_store;
