//! The SQLite store: the embedded default. The file is created when missing and migrated
//! at open (`migrations/sqlite`); WAL journal, so readers never wait for the writer.
//! Other processes' writes are found by polling the config version row.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};

/// How often another process's writes are looked for.
pub const POLL_EVERY: Duration = Duration::from_millis(200);

/// The SQLite implementation of [`super::Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: Pool<Sqlite>,
}

impl SqliteStore {
    /// Opens (creating when missing) and migrates the database `url` names
    /// (`sqlite://PATH`, `sqlite::memory:`).
    ///
    /// # Errors
    /// [`super::StoreError::Database`] or [`super::StoreError::Migrate`].
    pub async fn open(url: &str) -> Result<Self, super::StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a committed write survives the process being killed.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The pool, for tests and tools.
    #[must_use]
    pub fn pool(&self) -> &Pool<Sqlite> {
        &self.pool
    }

    async fn watch_changes(&self, changes: tokio::sync::mpsc::Sender<Option<i64>>) {
        let mut last: Option<i64> = None;
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sqlx::query_scalar::<_, i64>("SELECT version FROM config_version WHERE id = 1")
                .fetch_one(&self.pool)
                .await
            {
                Ok(v) if last != Some(v) => {
                    last = Some(v);
                    if changes.send(Some(v)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "config version poll failed"),
            }
        }
    }
}

super::sql::impl_store!(
    SqliteStore,
    Sqlite,
    "sqlite",
    num = "",
    json = "",
    repeatable = "",
    notify = false
);
