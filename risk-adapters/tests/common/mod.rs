//! Test databases: a fresh SQLite file, or a fresh PostgreSQL schema in the machine's
//! `test` database (127.0.0.1:5432, user root, trust auth).

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

/// The machine's PostgreSQL `test` database.
pub const PG_URL: &str = "postgres://root@127.0.0.1:5432/test";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A `sqlite://` URL of a new file under the target's temp dir.
pub fn sqlite_url() -> String {
    let path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.db", unique("cfg")));
    format!("sqlite://{}", path.display())
}

/// A `postgres://` URL whose search_path is a new, empty schema.
pub async fn postgres_url() -> String {
    use sqlx::Connection as _;
    let schema = unique("t");
    let mut conn = sqlx::PgConnection::connect(PG_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (user root, database test)");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("create schema");
    // The application name lets a test find this store's connections in pg_stat_activity.
    format!("{PG_URL}?application_name={schema}&options=-csearch_path%3D{schema}")
}

/// Drops the schema a [`postgres_url`] made (after a passing test; a failing one keeps it
/// for inspection).
pub async fn drop_postgres(url: &str) {
    use sqlx::Connection as _;
    let Some((_, schema)) = url.rsplit_once("search_path%3D") else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(PG_URL).await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut conn)
            .await;
    }
}

/// A free loopback TCP port, chosen by the kernel.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The `risk-server` binary at `exe` (the test's `CARGO_BIN_EXE_risk-server`, which this
/// module cannot name: not every test crate builds it) on `config`, gRPC on `grpc_port`,
/// HTTP on `http_port`, over the store at `url` with the admin tokens in `tokens`, plus
/// `extra` flags; killed when dropped. The restart tests start it, `kill -9` it and start
/// it again on the same ports and database.
pub fn spawn_server(
    exe: &str,
    config: &str,
    (grpc_port, http_port): (u16, u16),
    url: &str,
    tokens: &std::path::Path,
    extra: &[&str],
) -> tokio::process::Child {
    tokio::process::Command::new(exe)
        .args(["--config", config])
        .args(["--listen", &format!("127.0.0.1:{grpc_port}")])
        .args(["--http-listen", &format!("127.0.0.1:{http_port}")])
        .args(["--database", url, "--admin-token-file"])
        .arg(tokens)
        .args(extra)
        .kill_on_drop(true)
        .spawn()
        .expect("risk-server starts")
}
