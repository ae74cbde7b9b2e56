//! Ingestion throughput of the risk-signal service: generated closed trades posted to
//! `POST /v1/trades` in CSV batches of 1,000 into a fresh SQLite file, through the real
//! HTTP server (in process, on a loopback port), one batch at a time as a firm's export
//! job would send them. Prints trades per second.
//!
//! ```text
//! cargo bench -p risk-adapters --features http,cli --bench signal_ingest            # 100,000 trades
//! cargo bench -p risk-adapters --features http,cli --bench signal_ingest -- --trades 200000
//! ```
//!
//! Without `--bench` on its command line (as `cargo test` runs it) it posts 3,000 trades
//! and checks the answers: a quick test of the path.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use risk_adapters::config_file::ConfigFile;
use risk_adapters::grpc::service::now;
use risk_adapters::http::auth::{AdminAccess, Tokens};
use risk_adapters::http::metrics::Metrics;
use risk_adapters::http::{self, AppState};
use risk_adapters::report_config::ReportConfig;
use risk_adapters::sample::{generate, SampleConfig};
use risk_adapters::signal::{self, SignalService, SignalSettings};
use risk_adapters::store::live::LiveConfig;
use risk_adapters::store::{self, Seed};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/config/demo.toml");
const TOKEN: &str = "0123456789abcdef0123";
const BATCH: usize = 1_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let trades: u64 = args
        .iter()
        .position(|a| a == "--trades")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if bench { 100_000 } else { 3_000 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(trades, bench));
}

async fn run(trades: u64, bench: bool) {
    let mut csv = Vec::new();
    let mut accounts = Vec::new();
    let summary = generate(
        &SampleConfig {
            trades,
            defects: false,
            ..SampleConfig::default()
        },
        &mut csv,
        &mut accounts,
    )
    .unwrap();
    let text = String::from_utf8(csv).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let batches: Vec<String> = rows
        .chunks(BATCH)
        .map(|c| format!("{header}\n{}\n", c.join("\n")))
        .collect();

    let db = std::env::temp_dir().join(format!("riskgate-ingest-{}.db", std::process::id()));
    let url = format!("sqlite://{}", db.display());
    let file = ConfigFile::load(Path::new(DEMO)).unwrap();
    let base = file.engine.clone();
    let seed = Seed::from_file(&file);
    let engine = Arc::new(file.into_engine(now(), "demo.toml").unwrap());
    let live = LiveConfig::start(store::open(&url).await.unwrap(), engine, base, Some(&seed))
        .await
        .unwrap();
    let config = ReportConfig::from_toml(&std::fs::read_to_string(DEMO).unwrap(), "demo").unwrap();
    let signals = SignalService::start(
        signal::store::open(&url).await.unwrap(),
        SignalSettings {
            metrics: config.metrics,
            score: config.score,
        },
        config.rules,
    )
    .await
    .unwrap();
    let state = AppState {
        live,
        admin: AdminAccess::Tokens(Arc::new(
            Tokens::parse(&format!("bench:{TOKEN}\n"), "tokens").unwrap(),
        )),
        metrics: Arc::new(Metrics::new()),
        readiness: None,
        signal: Some(signals),
        #[cfg(feature = "webhooks")]
        webhooks: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(http::serve(listener, state, std::future::pending()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let post = |path: &str, body: Vec<u8>| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .header("content-type", "text/csv")
            .body(body)
            .send()
    };
    let r = post("/v1/accounts", accounts).await.unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);

    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let mut accepted = 0;
    let mut slowest = Duration::ZERO;
    for batch in batches {
        let t = Instant::now();
        let r = post("/v1/trades", batch.into_bytes()).await.unwrap();
        assert!(r.status().is_success(), "{:?}", r.text().await);
        let out: serde_json::Value = r.json().await.unwrap();
        accepted += out["accepted"].as_u64().unwrap();
        slowest = slowest.max(t.elapsed());
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_started;
    server.abort();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    assert_eq!(accepted, summary.trades, "every generated trade stored");
    let rate = accepted as f64 / elapsed.as_secs_f64();
    println!(
        "signal_ingest: {accepted} trades ({} accounts) in batches of {BATCH} via POST /v1/trades into SQLite: {:.2} s, {rate:.0} trades/s, slowest batch {} ms; process CPU {cpu:.2} s (server and client), {:.0} trades per CPU second{}",
        summary.accounts,
        elapsed.as_secs_f64(),
        slowest.as_millis(),
        accepted as f64 / cpu,
        if bench { "" } else { " (test mode)" }
    );
}

/// CPU time used by the whole process so far (every thread, user and system), in
/// seconds: on a shared machine the wall clock also counts waiting for a core.
#[cfg(unix)]
fn cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// No process CPU-time clock is read on this platform (NaN).
#[cfg(not(unix))]
fn cpu_seconds() -> f64 {
    f64::NAN
}
