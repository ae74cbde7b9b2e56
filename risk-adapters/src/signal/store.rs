//! The signal service's tables (migration `0003_signal.sql`): accounts, trades, account
//! results and the signal config history, behind one [`SignalStore`] trait implemented for
//! the SQLite and PostgreSQL stores of [`crate::store`].
//!
//! A [`Batch`] is written in one transaction: the trades and accounts it adds, the results
//! they change, the outbox events of risen levels and, for a config update, the new
//! settings version. A crash leaves either all of it or none.

use std::fmt;

use chrono::{DateTime, Utc};
use risk_core::ids::{AccountId, ChallengeId, Symbol, TradeId, UserId};
use risk_core::metrics::ClosedTrade;
use risk_core::model::Side;
use risk_core::Decimal;

use crate::csv_input::AccountInfo;
use crate::store::StoreError;

/// One stored account result.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    /// The login.
    pub account_login: String,
    /// The owner.
    pub user_id: String,
    /// The challenge, if known.
    pub challenge_id: Option<String>,
    /// Number of trades.
    pub trades: i64,
    /// The score (exact decimal text).
    pub risk_score: String,
    /// The level (`LOW`..`CRITICAL`).
    pub risk_level: String,
    /// The challenge status (`ACTIVE`, `PASSED`, `FAILED`).
    pub status: String,
    /// The signal kinds, as a JSON array of names.
    pub signals: String,
    /// The account object of the report's JSON contract, as JSON text.
    pub account: String,
    /// The settings version that produced it.
    pub config_version: i64,
}

/// One webhook outbox row (table `webhook_outbox`, migration 0002).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// `msg_` + a unique id: the Standard Webhooks `webhook-id`.
    pub event_id: String,
    /// The event type (`account.risk_level_raised`).
    pub event_type: String,
    /// The account.
    pub account_login: String,
    /// The level the event reports.
    pub level: String,
    /// The JSON `data` object, as text.
    pub payload: String,
}

/// One version of the signal settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRow {
    /// The version (1, 2, ...).
    pub version: i64,
    /// The settings as JSON text (`{"metrics": {...}, "score": {...}}`).
    pub settings: String,
    /// Who wrote it (an admin token's name, or `config file`).
    pub updated_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What one transaction writes.
#[derive(Debug, Default)]
pub struct Batch<'a> {
    /// A new settings version, if any.
    pub config: Option<ConfigRow>,
    /// Accounts to add (login not stored yet).
    pub accounts: &'a [(AccountId, AccountInfo)],
    /// Trades to add (identifier not stored yet).
    pub trades: &'a [ClosedTrade],
    /// Results to insert or replace.
    pub results: &'a [ResultRow],
    /// Outbox events to add.
    pub events: &'a [EventRow],
}

/// Everything stored, as the service loads it at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The newest settings version.
    pub config: Option<ConfigRow>,
    /// Every account, in the order they were stored.
    pub accounts: Vec<(AccountId, AccountInfo)>,
    /// Every trade, in arrival order.
    pub trades: Vec<ClosedTrade>,
    /// Every stored result.
    pub results: Vec<ResultRow>,
}

/// The signal service's storage.
#[async_trait::async_trait]
pub trait SignalStore: Send + Sync + fmt::Debug {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Reads everything the service keeps in memory.
    ///
    /// # Errors
    /// [`StoreError::Database`], or [`StoreError::Invalid`] for a row that does not parse.
    async fn load(&self) -> Result<Loaded, StoreError>;

    /// Writes `batch` in one transaction. Trades and accounts whose key is already stored
    /// are skipped (the caller has filtered them; this is the guard).
    ///
    /// # Errors
    /// [`StoreError::Database`]; nothing is written then.
    async fn commit(&self, batch: &Batch<'_>) -> Result<(), StoreError>;
}

/// Opens the store a `--database` URL names (as [`crate::store::open`]) for the signal
/// service, applying the migrations.
///
/// # Errors
/// [`StoreError::UnsupportedUrl`], [`StoreError::Database`], [`StoreError::Migrate`].
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn SignalStore>, StoreError> {
    use crate::store::{postgres::PgStore, sqlite::SqliteStore};
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(std::sync::Arc::new(PgStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// A trade row as read back (decimals as text).
#[derive(sqlx::FromRow)]
pub(crate) struct RawTrade {
    identifier: String,
    account_login: String,
    symbol: String,
    side: String,
    volume: String,
    opened_at_ns: i64,
    closed_at_ns: i64,
    open_price: String,
    close_price: String,
    stop_loss: Option<String>,
    take_profit: Option<String>,
    profit: String,
    commission: String,
    swap: String,
}

fn dec(field: &str, key: &str, text: &str) -> Result<Decimal, StoreError> {
    text.parse::<Decimal>().map_err(|e| StoreError::Invalid {
        field: format!("trades[{key}].{field}"),
        message: format!("`{text}` is not a decimal: {e}"),
    })
}

impl TryFrom<RawTrade> for ClosedTrade {
    type Error = StoreError;

    fn try_from(r: RawTrade) -> Result<Self, StoreError> {
        let key = r.identifier.clone();
        let side = match r.side.as_str() {
            "BUY" => Side::Buy,
            "SELL" => Side::Sell,
            other => {
                return Err(StoreError::Invalid {
                    field: format!("trades[{key}].side"),
                    message: format!("`{other}` is not BUY or SELL"),
                })
            }
        };
        let opt = |field: &str, t: Option<String>| t.map(|t| dec(field, &key, &t)).transpose();
        Ok(ClosedTrade {
            id: TradeId::new(&r.identifier),
            account: AccountId::new(&r.account_login),
            symbol: Symbol::new(&r.symbol),
            side,
            volume: dec("volume", &key, &r.volume)?,
            opened_at: DateTime::from_timestamp_nanos(r.opened_at_ns),
            closed_at: DateTime::from_timestamp_nanos(r.closed_at_ns),
            open_price: dec("open_price", &key, &r.open_price)?,
            close_price: dec("close_price", &key, &r.close_price)?,
            stop_loss: opt("stop_loss", r.stop_loss)?,
            take_profit: opt("take_profit", r.take_profit)?,
            profit: dec("profit", &key, &r.profit)?,
            commission: dec("commission", &key, &r.commission)?,
            swap: dec("swap", &key, &r.swap)?,
        })
    }
}

/// An account row as read back.
#[derive(sqlx::FromRow)]
pub(crate) struct RawAccount {
    login: String,
    user_id: String,
    challenge_id: Option<String>,
    initial_balance: Option<String>,
    group_id: Option<String>,
    platform: Option<String>,
    phase: Option<String>,
}

impl TryFrom<RawAccount> for (AccountId, AccountInfo) {
    type Error = StoreError;

    fn try_from(r: RawAccount) -> Result<Self, StoreError> {
        let initial_balance = r
            .initial_balance
            .map(|t| {
                t.parse::<Decimal>().map_err(|e| StoreError::Invalid {
                    field: format!("accounts[{}].initial_balance", r.login),
                    message: format!("`{t}` is not a decimal: {e}"),
                })
            })
            .transpose()?;
        Ok((
            AccountId::new(&r.login),
            AccountInfo {
                user: UserId::new(&r.user_id),
                challenge: r.challenge_id.as_deref().map(ChallengeId::new),
                initial_balance,
                // The stored initial balance already holds `account_size` when that decided it.
                account_size: None,
                platform: r.platform,
                phase: r.phase,
                group: r.group_id,
            },
        ))
    }
}

/// A result row as read back.
#[derive(sqlx::FromRow)]
pub(crate) struct RawResult {
    account_login: String,
    user_id: String,
    challenge_id: Option<String>,
    trades: i64,
    risk_score: String,
    risk_level: String,
    status: String,
    signals: String,
    account: String,
    config_version: i64,
}

impl From<RawResult> for ResultRow {
    fn from(r: RawResult) -> Self {
        Self {
            account_login: r.account_login,
            user_id: r.user_id,
            challenge_id: r.challenge_id,
            trades: r.trades,
            risk_score: r.risk_score,
            risk_level: r.risk_level,
            status: r.status,
            signals: r.signals,
            account: r.account,
            config_version: r.config_version,
        }
    }
}

/// A config row as read back.
#[derive(sqlx::FromRow)]
pub(crate) struct RawConfig {
    version: i64,
    settings: String,
    updated_by: String,
    created_at: DateTime<Utc>,
}

impl From<RawConfig> for ConfigRow {
    fn from(r: RawConfig) -> Self {
        Self {
            version: r.version,
            settings: r.settings,
            updated_by: r.updated_by,
            created_at: r.created_at,
        }
    }
}

pub(crate) fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

/// Rows per multi-row `INSERT` (SQLite allows 32,766 parameters; 15 a trade row).
pub(crate) const ROWS_PER_INSERT: usize = 500;

/// Implements [`SignalStore`] for `$store` (with a `pool()` getter). `$num` and `$json`
/// follow a decimal or JSON parameter (`"::numeric"`, `"::jsonb"` or `""`).
macro_rules! impl_signal_store {
    ($store:ty, $db:ty, $backend:literal, num = $num:literal, json = $json:literal) => {
        #[async_trait::async_trait]
        impl $crate::signal::store::SignalStore for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn load(
                &self,
            ) -> Result<$crate::signal::store::Loaded, $crate::store::StoreError> {
                use $crate::signal::store::{RawAccount, RawConfig, RawResult, RawTrade};
                let pool = self.pool();
                let config: Option<RawConfig> = sqlx::query_as(
                    "SELECT version, CAST(settings AS TEXT) AS settings, updated_by, created_at \
                     FROM signal_config ORDER BY version DESC LIMIT 1",
                )
                .fetch_optional(pool)
                .await?;
                let accounts: Vec<RawAccount> = sqlx::query_as(
                    "SELECT login, user_id, challenge_id, \
                     CAST(initial_balance AS TEXT) AS initial_balance, group_id, platform, phase \
                     FROM accounts ORDER BY seq",
                )
                .fetch_all(pool)
                .await?;
                let trades: Vec<RawTrade> = sqlx::query_as(
                    "SELECT identifier, account_login, symbol, side, \
                     CAST(volume AS TEXT) AS volume, opened_at_ns, closed_at_ns, \
                     CAST(open_price AS TEXT) AS open_price, \
                     CAST(close_price AS TEXT) AS close_price, \
                     CAST(stop_loss AS TEXT) AS stop_loss, \
                     CAST(take_profit AS TEXT) AS take_profit, \
                     CAST(profit AS TEXT) AS profit, CAST(commission AS TEXT) AS commission, \
                     CAST(swap AS TEXT) AS swap FROM trades ORDER BY seq",
                )
                .fetch_all(pool)
                .await?;
                let results: Vec<RawResult> = sqlx::query_as(
                    "SELECT account_login, user_id, challenge_id, trades, \
                     CAST(risk_score AS TEXT) AS risk_score, risk_level, status, \
                     CAST(signals AS TEXT) AS signals, account, config_version \
                     FROM account_results",
                )
                .fetch_all(pool)
                .await?;
                Ok($crate::signal::store::Loaded {
                    config: config.map(Into::into),
                    accounts: accounts
                        .into_iter()
                        .map(TryInto::try_into)
                        .collect::<Result<_, _>>()?,
                    trades: trades
                        .into_iter()
                        .map(TryInto::try_into)
                        .collect::<Result<_, _>>()?,
                    results: results.into_iter().map(Into::into).collect(),
                })
            }

            async fn commit(
                &self,
                batch: &$crate::signal::store::Batch<'_>,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::signal::store::{side_name, ROWS_PER_INSERT};
                let now = chrono::Utc::now();
                let mut tx = self.pool().begin().await?;
                if let Some(c) = &batch.config {
                    sqlx::query(concat!(
                        "INSERT INTO signal_config (version, settings, updated_by, created_at) \
                         VALUES ($1, $2",
                        $json,
                        ", $3, $4)"
                    ))
                    .bind(c.version)
                    .bind(&c.settings)
                    .bind(&c.updated_by)
                    .bind(c.created_at)
                    .execute(&mut *tx)
                    .await?;
                }
                for chunk in batch.accounts.chunks(ROWS_PER_INSERT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO accounts (login, user_id, challenge_id, initial_balance, \
                         group_id, platform, phase, created_at) ",
                    );
                    q.push_values(chunk, |mut b, (login, info)| {
                        b.push_bind(login.as_str().to_owned())
                            .push_bind(info.user.as_str().to_owned())
                            .push_bind(info.challenge.as_ref().map(|c| c.as_str().to_owned()))
                            .push_bind(info.initial_balance.map(|d| d.to_string()))
                            .push_unseparated($num)
                            .push_bind(info.group.clone())
                            .push_bind(info.platform.clone())
                            .push_bind(info.phase.clone())
                            .push_bind(now);
                    });
                    q.push(" ON CONFLICT (login) DO NOTHING");
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in batch.trades.chunks(ROWS_PER_INSERT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO trades (identifier, account_login, symbol, side, volume, \
                         opened_at_ns, closed_at_ns, open_price, close_price, stop_loss, \
                         take_profit, profit, commission, swap, ingested_at) ",
                    );
                    q.push_values(chunk, |mut b, t| {
                        let nanos = |at: chrono::DateTime<chrono::Utc>| {
                            at.timestamp_nanos_opt().unwrap_or_default()
                        };
                        b.push_bind(t.id.as_str().to_owned())
                            .push_bind(t.account.as_str().to_owned())
                            .push_bind(t.symbol.as_str().to_owned())
                            .push_bind(side_name(t.side))
                            .push_bind(t.volume.to_string())
                            .push_unseparated($num)
                            .push_bind(nanos(t.opened_at))
                            .push_bind(nanos(t.closed_at))
                            .push_bind(t.open_price.to_string())
                            .push_unseparated($num)
                            .push_bind(t.close_price.to_string())
                            .push_unseparated($num)
                            .push_bind(t.stop_loss.map(|d| d.to_string()))
                            .push_unseparated($num)
                            .push_bind(t.take_profit.map(|d| d.to_string()))
                            .push_unseparated($num)
                            .push_bind(t.profit.to_string())
                            .push_unseparated($num)
                            .push_bind(t.commission.to_string())
                            .push_unseparated($num)
                            .push_bind(t.swap.to_string())
                            .push_unseparated($num)
                            .push_bind(now);
                    });
                    q.push(" ON CONFLICT (identifier) DO NOTHING");
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in batch.results.chunks(ROWS_PER_INSERT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO account_results (account_login, user_id, challenge_id, \
                         trades, risk_score, risk_level, status, signals, account, \
                         config_version, updated_at) ",
                    );
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(r.account_login.as_str())
                            .push_bind(r.user_id.as_str())
                            .push_bind(r.challenge_id.as_deref())
                            .push_bind(r.trades)
                            .push_bind(r.risk_score.as_str())
                            .push_unseparated($num)
                            .push_bind(r.risk_level.as_str())
                            .push_bind(r.status.as_str())
                            .push_bind(r.signals.as_str())
                            .push_unseparated($json)
                            .push_bind(r.account.as_str())
                            .push_bind(r.config_version)
                            .push_bind(now);
                    });
                    q.push(
                        " ON CONFLICT (account_login) DO UPDATE SET \
                         user_id = excluded.user_id, challenge_id = excluded.challenge_id, \
                         trades = excluded.trades, risk_score = excluded.risk_score, \
                         risk_level = excluded.risk_level, status = excluded.status, \
                         signals = excluded.signals, account = excluded.account, \
                         config_version = excluded.config_version, \
                         updated_at = excluded.updated_at",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in batch.events.chunks(ROWS_PER_INSERT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO webhook_outbox (event_id, event_type, account_login, \
                         level, payload, created_at) ",
                    );
                    q.push_values(chunk, |mut b, e| {
                        b.push_bind(e.event_id.clone())
                            .push_bind(e.event_type.clone())
                            .push_bind(e.account_login.clone())
                            .push_bind(e.level.clone())
                            .push_bind(e.payload.clone())
                            .push_unseparated($json)
                            .push_bind(now);
                    });
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

impl_signal_store!(
    crate::store::sqlite::SqliteStore,
    sqlx::Sqlite,
    "sqlite",
    num = "",
    json = ""
);
impl_signal_store!(
    crate::store::postgres::PgStore,
    sqlx::Postgres,
    "postgres",
    num = "::numeric",
    json = "::jsonb"
);
