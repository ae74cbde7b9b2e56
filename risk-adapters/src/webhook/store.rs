//! The webhook tables (`migrations/*/0004_webhooks.sql`) over the config store's pool: the
//! subscriptions, the fan-out of outbox rows into deliveries, the claim (lease) of due
//! deliveries and the record of each attempt. One [`WebhookStore`] trait; its SQL is
//! written once for both backends (`$N` placeholders, `RETURNING`, `ON CONFLICT`) and
//! differs only in how a JSON parameter is typed and in `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Attempt, Delivery, Subscription, ValidSubscription};
use crate::store::{DbPool, StoreError};

/// What one fan-out round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    /// Outbox rows fanned out.
    pub events: u64,
    /// Deliveries created.
    pub deliveries: u64,
    /// The fan-out position after the round: every outbox row up to this id is done.
    pub upto: i64,
}

/// A claimed delivery with what sending it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The delivery.
    pub delivery_id: i64,
    /// Attempts made before this one.
    pub attempts: i32,
    /// The `webhook-id`.
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// The event's `data`, JSON text.
    pub payload: String,
    /// When the event was raised.
    pub created_at: DateTime<Utc>,
    /// The target.
    pub url: String,
    /// The signing secret.
    pub secret: String,
}

/// The outcome of one attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The delivery.
    pub delivery_id: i64,
    /// The attempt's number (1 for the first).
    pub attempt: i32,
    /// The delivery's status after it: `pending`, `delivered`, `failed`, `dead_lettered`.
    pub status: &'static str,
    /// The attempt's outcome: `delivered`, `retry`, `failed` or `dead_lettered`.
    pub outcome: &'static str,
    /// When the next attempt is due (Unix ms; for a retry).
    pub next_attempt_at_ms: i64,
    /// The HTTP status, when answered.
    pub status_code: Option<i32>,
    /// The error, when it failed.
    pub error: Option<String>,
    /// When the attempt started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: i64,
}

/// A page of deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// At most this many.
    pub limit: u32,
    /// Only deliveries with an id below this (the previous page's cursor).
    pub before_id: Option<i64>,
    /// Only this status.
    pub status: Option<String>,
}

/// The webhook tables.
#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync + std::fmt::Debug {
    /// Stores a subscription created by `actor`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn create_subscription(
        &self,
        v: &ValidSubscription,
        actor: &str,
    ) -> Result<Subscription, StoreError>;

    /// Subscriptions by id, after `after_id`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn list_subscriptions(
        &self,
        after_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Subscription>, StoreError>;

    /// One subscription.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    async fn subscription(&self, id: i64) -> Result<Subscription, StoreError>;

    /// Deletes a subscription with its deliveries; pending ones are never sent.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    async fn delete_subscription(&self, id: i64) -> Result<(), StoreError>;

    /// A subscription's deliveries, newest first, with their attempts.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the subscription does not exist.
    async fn deliveries(
        &self,
        subscription_id: i64,
        q: &DeliveryQuery,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Fans out up to `batch` new outbox rows into deliveries (due at `now_ms`) and moves
    /// the fan-out position, skipping a missing id seen for `grace_ms`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn fan_out(&self, now_ms: i64, batch: u32, grace_ms: i64) -> Result<FanOut, StoreError>;

    /// Claims up to `limit` due deliveries for `token` until `lease_until_ms`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn claim(
        &self,
        token: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// Records an attempt and releases the claim, if `token` still holds it; false when
    /// the lease was lost (or the subscription deleted) and nothing was recorded.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn record(&self, token: &str, r: &Recorded) -> Result<bool, StoreError>;
}

/// The webhook tables in the database of `pool`.
#[must_use]
pub fn from_pool(pool: DbPool) -> Arc<dyn WebhookStore> {
    match pool {
        DbPool::Sqlite(pool) => Arc::new(SqliteWebhooks { pool }),
        DbPool::Postgres(pool) => Arc::new(PgWebhooks { pool }),
    }
}

/// The SQLite implementation.
#[derive(Debug, Clone)]
pub struct SqliteWebhooks {
    pool: sqlx::Pool<sqlx::Sqlite>,
}

/// The PostgreSQL implementation.
#[derive(Debug, Clone)]
pub struct PgWebhooks {
    pool: sqlx::Pool<sqlx::Postgres>,
}

/// Moves the fan-out position `upto` over the ids fanned out above it (`done`, ascending):
/// through consecutive ids, and over a missing id once it has been missing for `grace_ms`
/// (`gap_since`: when it was first seen missing). Returns the new position and when its
/// missing successor was first seen (`None`: nothing missing).
#[must_use]
pub fn advance(
    upto: i64,
    gap_since: Option<i64>,
    done: &[i64],
    now_ms: i64,
    grace_ms: i64,
) -> (i64, Option<i64>) {
    let mut position = upto;
    let mut since = gap_since;
    for &id in done {
        if id <= position {
            continue;
        }
        if id == position.saturating_add(1) {
            position = id;
            since = None;
            continue;
        }
        let first_seen = since.unwrap_or(now_ms);
        if now_ms.saturating_sub(first_seen) >= grace_ms {
            tracing::warn!(
                missing_from = position.saturating_add(1),
                missing_to = id.saturating_sub(1),
                grace_ms,
                "webhook outbox ids missing for the grace period: taken as rolled back"
            );
            position = id;
            since = None;
        } else {
            return (position, Some(first_seen));
        }
    }
    (position, None)
}

#[derive(sqlx::FromRow)]
struct RawSubscription {
    id: i64,
    url: String,
    min_level: String,
    event_types: String,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<RawSubscription> for Subscription {
    type Error = StoreError;
    fn try_from(r: RawSubscription) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.id,
            url: r.url,
            min_level: r.min_level,
            event_types: event_types(&r.event_types)?,
            created_by: r.created_by,
            created_at: r.created_at,
        })
    }
}

fn event_types(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Invalid {
        field: "webhook_subscriptions.event_types".to_owned(),
        message: format!("stored value: {e}"),
    })
}

#[derive(sqlx::FromRow)]
struct RawDelivery {
    id: i64,
    subscription_id: i64,
    event_id: String,
    event_type: String,
    account_login: String,
    level: String,
    status: String,
    attempts: i32,
    next_attempt_at: i64,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RawAttempt {
    delivery_id: i64,
    attempt: i32,
    started_at: DateTime<Utc>,
    duration_ms: i64,
    status_code: Option<i32>,
    error: Option<String>,
    outcome: String,
}

#[derive(sqlx::FromRow)]
struct RawClaimed {
    id: i64,
    attempts: i32,
    event_id: String,
    event_type: String,
    payload: String,
    created_at: DateTime<Utc>,
    url: String,
    secret: String,
}

fn deliveries_with_attempts(raw: Vec<RawDelivery>, attempts: Vec<RawAttempt>) -> Vec<Delivery> {
    let mut log: HashMap<i64, Vec<Attempt>> = HashMap::new();
    for a in attempts {
        log.entry(a.delivery_id).or_default().push(Attempt {
            attempt: a.attempt,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error,
            outcome: a.outcome,
        });
    }
    raw.into_iter()
        .map(|d| Delivery {
            id: d.id,
            subscription_id: d.subscription_id,
            event_id: d.event_id,
            event_type: d.event_type,
            account_login: d.account_login,
            level: d.level,
            next_attempt_at: (d.status == "pending")
                .then(|| DateTime::from_timestamp_millis(d.next_attempt_at))
                .flatten(),
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            updated_at: d.updated_at,
            attempt_log: log.remove(&d.id).unwrap_or_default(),
        })
        .collect()
}

const SUBSCRIPTION_COLUMNS: &str =
    "id, url, min_level, CAST(event_types AS TEXT) AS event_types, created_by, created_at";

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound {
        what: "webhook subscription",
        key: id.to_string(),
    }
}

/// Implements [`WebhookStore`] for `$store` (a struct with a `pool: Pool<$db>`); `$json`
/// follows a JSON parameter (`"::jsonb"` or `""`), `$lock` ends the claim's row selection
/// (`" FOR UPDATE SKIP LOCKED"` or `""`).
macro_rules! impl_webhook_store {
    ($store:ty, json = $json:literal, lock = $lock:literal) => {
        #[async_trait::async_trait]
        impl WebhookStore for $store {
            async fn create_subscription(
                &self,
                v: &ValidSubscription,
                actor: &str,
            ) -> Result<Subscription, StoreError> {
                let types = serde_json::to_string(&v.event_types).map_err(|e| {
                    StoreError::Invalid {
                        field: "event_types".to_owned(),
                        message: e.to_string(),
                    }
                })?;
                let raw: RawSubscription = sqlx::query_as(&format!(
                    concat!(
                        "INSERT INTO webhook_subscriptions (url, secret, min_level, event_types, created_by, created_at) \
                         VALUES ($1, $2, $3, $4",
                        $json,
                        ", $5, $6) RETURNING {}"
                    ),
                    SUBSCRIPTION_COLUMNS
                ))
                .bind(&v.url)
                .bind(&v.secret)
                .bind(&v.min_level)
                .bind(types)
                .bind(actor)
                .bind(Utc::now())
                .fetch_one(&self.pool)
                .await?;
                Subscription::try_from(raw)
            }

            async fn list_subscriptions(
                &self,
                after_id: Option<i64>,
                limit: u32,
            ) -> Result<Vec<Subscription>, StoreError> {
                let raw: Vec<RawSubscription> = sqlx::query_as(&format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions \
                     WHERE id > $1 ORDER BY id LIMIT $2"
                ))
                .bind(after_id.unwrap_or(0))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                raw.into_iter().map(Subscription::try_from).collect()
            }

            async fn subscription(&self, id: i64) -> Result<Subscription, StoreError> {
                let raw: Option<RawSubscription> = sqlx::query_as(&format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                raw.map(Subscription::try_from)
                    .transpose()?
                    .ok_or_else(|| not_found(id))
            }

            async fn delete_subscription(&self, id: i64) -> Result<(), StoreError> {
                let done = sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(not_found(id));
                }
                Ok(())
            }

            async fn deliveries(
                &self,
                subscription_id: i64,
                q: &DeliveryQuery,
            ) -> Result<Vec<Delivery>, StoreError> {
                let mut tx = self.pool.begin().await?;
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM webhook_subscriptions WHERE id = $1")
                        .bind(subscription_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_none() {
                    return Err(not_found(subscription_id));
                }
                let raw: Vec<RawDelivery> = sqlx::query_as(
                    "SELECT d.id, d.subscription_id, o.event_id, o.event_type, o.account_login, \
                     o.level, d.status, d.attempts, d.next_attempt_at, d.last_status_code, \
                     d.last_error, d.created_at, d.updated_at \
                     FROM webhook_deliveries d JOIN webhook_outbox o ON o.id = d.outbox_id \
                     WHERE d.subscription_id = $1 AND d.id < $2 \
                     AND ($3 = '' OR d.status = $3) \
                     ORDER BY d.id DESC LIMIT $4",
                )
                .bind(subscription_id)
                .bind(q.before_id.unwrap_or(i64::MAX))
                .bind(q.status.clone().unwrap_or_default())
                .bind(i64::from(q.limit))
                .fetch_all(&mut *tx)
                .await?;
                let (Some(low), Some(high)) = (raw.last().map(|d| d.id), raw.first().map(|d| d.id))
                else {
                    return Ok(Vec::new());
                };
                let attempts: Vec<RawAttempt> = sqlx::query_as(
                    "SELECT a.delivery_id, a.attempt, a.started_at, a.duration_ms, a.status_code, \
                     a.error, a.outcome \
                     FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id \
                     WHERE d.subscription_id = $1 AND a.delivery_id >= $2 AND a.delivery_id <= $3 \
                     ORDER BY a.delivery_id, a.attempt",
                )
                .bind(subscription_id)
                .bind(low)
                .bind(high)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(deliveries_with_attempts(raw, attempts))
            }

            async fn fan_out(
                &self,
                now_ms: i64,
                batch: u32,
                grace_ms: i64,
            ) -> Result<FanOut, StoreError> {
                // A read first, so an idle poll never takes the write lock.
                let new: Option<i64> = sqlx::query_scalar(
                    "SELECT o.id FROM webhook_outbox o, webhook_fanout c \
                     WHERE c.id = 1 AND o.id > c.upto AND NOT EXISTS \
                     (SELECT 1 FROM webhook_fanned_out f WHERE f.outbox_id = o.id) LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await?;
                let waiting: Option<i64> =
                    sqlx::query_scalar("SELECT outbox_id FROM webhook_fanned_out LIMIT 1")
                        .fetch_optional(&self.pool)
                        .await?;
                if new.is_none() && waiting.is_none() {
                    return Ok(FanOut::default());
                }
                let mut tx = self.pool.begin().await?;
                // Locks the position: one fan-out at a time, across processes.
                let (upto, gap_since): (i64, Option<i64>) = sqlx::query_as(
                    "UPDATE webhook_fanout SET upto = upto WHERE id = 1 RETURNING upto, gap_since",
                )
                .fetch_one(&mut *tx)
                .await?;
                let rows: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT o.id, o.event_type, o.level FROM webhook_outbox o \
                     WHERE o.id > $1 AND NOT EXISTS \
                     (SELECT 1 FROM webhook_fanned_out f WHERE f.outbox_id = o.id) \
                     ORDER BY o.id LIMIT $2",
                )
                .bind(upto)
                .bind(i64::from(batch))
                .fetch_all(&mut *tx)
                .await?;
                let subscriptions: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT id, min_level, CAST(event_types AS TEXT) FROM webhook_subscriptions ORDER BY id",
                )
                .fetch_all(&mut *tx)
                .await?;
                let subscriptions: Vec<(i64, String, Vec<String>)> = subscriptions
                    .into_iter()
                    .map(|(id, level, types)| Ok((id, level, event_types(&types)?)))
                    .collect::<Result<_, StoreError>>()?;
                let now = Utc::now();
                let mut out = FanOut::default();
                for (outbox_id, event_type, level) in &rows {
                    for (subscription_id, min_level, types) in &subscriptions {
                        if !super::wants(min_level, types, event_type, level) {
                            continue;
                        }
                        let created = sqlx::query(
                            "INSERT INTO webhook_deliveries (subscription_id, outbox_id, status, attempts, \
                             next_attempt_at, created_at, updated_at) VALUES ($1, $2, 'pending', 0, $3, $4, $4) \
                             ON CONFLICT (outbox_id, subscription_id) DO NOTHING",
                        )
                        .bind(*subscription_id)
                        .bind(*outbox_id)
                        .bind(now_ms)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        out.deliveries += created.rows_affected();
                    }
                    sqlx::query(
                        "INSERT INTO webhook_fanned_out (outbox_id) VALUES ($1) ON CONFLICT DO NOTHING",
                    )
                    .bind(*outbox_id)
                    .execute(&mut *tx)
                    .await?;
                    out.events += 1;
                }
                let done: Vec<i64> = sqlx::query_scalar(
                    "SELECT outbox_id FROM webhook_fanned_out WHERE outbox_id > $1 \
                     ORDER BY outbox_id LIMIT 100000",
                )
                .bind(upto)
                .fetch_all(&mut *tx)
                .await?;
                let (position, since) = advance(upto, gap_since, &done, now_ms, grace_ms);
                sqlx::query("DELETE FROM webhook_fanned_out WHERE outbox_id <= $1")
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE webhook_fanout SET upto = $1, gap_since = $2 WHERE id = 1")
                    .bind(position)
                    .bind(since)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                out.upto = position;
                Ok(out)
            }

            async fn claim(
                &self,
                token: &str,
                now_ms: i64,
                lease_until_ms: i64,
                limit: u32,
            ) -> Result<Vec<Claimed>, StoreError> {
                let due: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM webhook_deliveries WHERE status = 'pending' \
                     AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) LIMIT 1",
                )
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?;
                if due.is_none() {
                    return Ok(Vec::new());
                }
                let claimed = sqlx::query(concat!(
                    "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 \
                     WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' \
                     AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
                     ORDER BY next_attempt_at, id LIMIT $4",
                    $lock,
                    ")"
                ))
                .bind(token)
                .bind(lease_until_ms)
                .bind(now_ms)
                .bind(i64::from(limit))
                .execute(&self.pool)
                .await?;
                if claimed.rows_affected() == 0 {
                    return Ok(Vec::new());
                }
                let raw: Vec<RawClaimed> = sqlx::query_as(
                    "SELECT d.id, d.attempts, o.event_id, o.event_type, \
                     CAST(o.payload AS TEXT) AS payload, o.created_at, s.url, s.secret \
                     FROM webhook_deliveries d \
                     JOIN webhook_outbox o ON o.id = d.outbox_id \
                     JOIN webhook_subscriptions s ON s.id = d.subscription_id \
                     WHERE d.lease_owner = $1 AND d.status = 'pending' ORDER BY d.next_attempt_at, d.id",
                )
                .bind(token)
                .fetch_all(&self.pool)
                .await?;
                Ok(raw
                    .into_iter()
                    .map(|r| Claimed {
                        delivery_id: r.id,
                        attempts: r.attempts,
                        event_id: r.event_id,
                        event_type: r.event_type,
                        payload: r.payload,
                        created_at: r.created_at,
                        url: r.url,
                        secret: r.secret,
                    })
                    .collect())
            }

            async fn record(&self, token: &str, r: &Recorded) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                let now = Utc::now();
                let updated = sqlx::query(
                    "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, \
                     lease_owner = NULL, lease_until = NULL, last_status_code = $4, last_error = $5, \
                     updated_at = $6 WHERE id = $7 AND lease_owner = $8",
                )
                .bind(r.status)
                .bind(r.attempt)
                .bind(r.next_attempt_at_ms)
                .bind(r.status_code)
                .bind(r.error.as_deref())
                .bind(now)
                .bind(r.delivery_id)
                .bind(token)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, \
                     status_code, error, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(r.delivery_id)
                .bind(r.attempt)
                .bind(r.started_at)
                .bind(r.duration_ms)
                .bind(r.status_code)
                .bind(r.error.as_deref())
                .bind(r.outcome)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

impl_webhook_store!(SqliteWebhooks, json = "", lock = "");
impl_webhook_store!(
    PgWebhooks,
    json = "::jsonb",
    lock = " FOR UPDATE SKIP LOCKED"
);

#[cfg(test)]
mod tests {
    use super::advance;

    #[test]
    fn the_position_moves_over_consecutive_ids_and_waits_at_a_gap() {
        // Consecutive: all the way.
        assert_eq!(advance(0, None, &[1, 2, 3], 1_000, 500), (3, None));
        // 4 missing, 5 and 6 done: wait, remembering when the gap was first seen.
        assert_eq!(advance(3, None, &[5, 6], 1_000, 500), (3, Some(1_000)));
        assert_eq!(
            advance(3, Some(1_000), &[5, 6], 1_400, 500),
            (3, Some(1_000))
        );
        // 4 arrived and was fanned out: the gap closes.
        assert_eq!(advance(3, Some(1_000), &[4, 5, 6], 1_450, 500), (6, None));
        // Still missing after the grace period: skipped as rolled back.
        assert_eq!(advance(3, Some(1_000), &[5, 6], 1_500, 500), (6, None));
        // Past one gap, a second one starts its own wait.
        assert_eq!(advance(3, None, &[4, 6], 2_000, 500), (4, Some(2_000)));
        // Ids at or below the position are ignored; nothing above means nothing missing.
        assert_eq!(advance(5, Some(10), &[2, 5], 2_000, 500), (5, None));
    }
}
