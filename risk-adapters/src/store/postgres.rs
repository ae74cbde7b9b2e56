//! The PostgreSQL store, for production: migrated at open (`migrations/postgres`). A
//! write announces its config version with `pg_notify('riskgate_config', version)` inside
//! its transaction (delivered on commit); [`PgStore`]'s watcher LISTENs and, after a lost
//! connection, asks for a full reload, since notifications sent meanwhile are lost.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Pool, Postgres};

/// The notification channel.
pub const CHANNEL: &str = "riskgate_config";

/// The PostgreSQL implementation of [`super::Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool<Postgres>,
}

impl PgStore {
    /// Connects to `url` and applies the migrations. A `search_path` given in the URL
    /// (`?options=-csearch_path%3Dname`) selects the schema.
    ///
    /// # Errors
    /// [`super::StoreError::Database`] or [`super::StoreError::Migrate`].
    pub async fn open(url: &str) -> Result<Self, super::StoreError> {
        Self::open_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with `options` and applies the migrations.
    ///
    /// # Errors
    /// [`super::StoreError::Database`] or [`super::StoreError::Migrate`].
    pub async fn open_with(options: PgConnectOptions) -> Result<Self, super::StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The pool, for tests and tools.
    #[must_use]
    pub fn pool(&self) -> &Pool<Postgres> {
        &self.pool
    }

    async fn watch_changes(&self, changes: tokio::sync::mpsc::Sender<Option<i64>>) {
        loop {
            let mut listener = match PgListener::connect_with(&self.pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "LISTEN failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Anything written before LISTEN took effect (at start, or while the connection
            // was down): reload once.
            if changes.send(None).await.is_err() {
                return;
            }
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        if changes.send(n.payload().parse().ok()).await.is_err() {
                            return;
                        }
                    }
                    // The connection was lost and notifications sent meanwhile are gone:
                    // reconnect and LISTEN again, then reload everything (above).
                    Ok(None) => {
                        tracing::warn!("LISTEN connection lost; reconnecting, then reloading");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN failed; reconnecting in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    }
}

super::sql::impl_store!(
    PgStore,
    Postgres,
    "postgres",
    num = "::numeric",
    json = "::jsonb",
    repeatable = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    notify = true
);
