//! The prop-firm risk-signal service end to end, on SQLite files and PostgreSQL schemas:
//! exports posted to `/v1/trades` and `/v1/accounts` (CSV and JSON, in order and out of
//! order), every account's `GET /risk-report/{login}` compared with the account object of
//! the real `risk report --format json` on the same files, users and challenges likewise;
//! duplicates, rejected rows, config updates (422 changes nothing), webhook outbox rows,
//! and the real `risk-server` binary killed with SIGKILL mid-ingest and restarted.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use risk_adapters::config_file::ConfigFile;
use risk_adapters::grpc::service::now;
use risk_adapters::http::auth::{AdminAccess, Tokens};
use risk_adapters::http::metrics::Metrics;
use risk_adapters::http::{self, AppState};
use risk_adapters::report_config::ReportConfig;
use risk_adapters::signal::{self, SignalService, SignalSettings};
use risk_adapters::store::live::LiveConfig;
use risk_adapters::store::{self, Seed};
use serde_json::{json, Value};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/config/demo.toml");
const SAMPLE: &str = "/work/shared/data/prop_trades_sample.csv";
const SAMPLE_ACCOUNTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/signal_accounts.csv"
);
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/trades.csv");
const EXAMPLE_ACCOUNTS: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/accounts.csv");
const TOKEN: &str = "0123456789abcdef0123";

/// The real sample when this machine has it, else the checked-in example export.
fn sample() -> &'static str {
    if Path::new(SAMPLE).exists() {
        SAMPLE
    } else {
        EXAMPLE
    }
}

/// One in-process service (HTTP only) on `url`.
struct Service {
    http: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(url: &str) -> Service {
    let file = ConfigFile::load(Path::new(DEMO)).expect("demo config");
    let base = file.engine.clone();
    let seed = Seed::from_file(&file);
    let engine = Arc::new(file.into_engine(now(), "demo.toml").expect("engine"));
    let store = store::open(url).await.expect("store");
    let live = LiveConfig::start(store, engine, base, Some(&seed))
        .await
        .expect("live config");
    let text = std::fs::read_to_string(DEMO).unwrap();
    let config = ReportConfig::from_toml(&text, "demo.toml").unwrap();
    let signals = SignalService::start(
        signal::store::open(url).await.expect("signal store"),
        SignalSettings {
            metrics: config.metrics,
            score: config.score,
        },
        config.rules,
    )
    .await
    .expect("signal service");
    let tokens = Tokens::parse(&format!("ops:{TOKEN}\n"), "tokens").expect("tokens");
    let state = AppState {
        live,
        admin: AdminAccess::Tokens(Arc::new(tokens)),
        metrics: Arc::new(Metrics::new()),
        readiness: None,
        signal: Some(signals),
        #[cfg(feature = "webhooks")]
        webhooks: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        http::serve(listener, state, std::future::pending())
            .await
            .expect("http");
    });
    Service { http, task }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// POSTs `body` with `content_type` and the admin token; the status and JSON answer.
async fn post(
    url: String,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let r = client()
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(url: String) -> (StatusCode, Value) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `risk report --format json` of the files (the real binary).
fn report(trades: &str, accounts: Option<&str>, config: &Path) -> Value {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_risk"));
    cmd.args(["report", "--format", "json", "--trades", trades, "--config"])
        .arg(config);
    if let Some(a) = accounts {
        cmd.args(["--accounts", a]);
    }
    let out = cmd.output().expect("risk report runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The names of an account object's signals, each once, in their order: the FastAPI
/// `risk_signals`.
fn signal_names(account: &Value) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for s in account["signals"].as_array().unwrap() {
        let kind = s["kind"].as_str().unwrap().to_owned();
        if !names.contains(&kind) {
            names.push(kind);
        }
    }
    names
}

/// A service answer with its two FastAPI fields checked against `expected` (the report
/// contract's object) and removed; `accounts` are the report's account objects (for a
/// group's `risk_signals`).
fn without_fastapi_fields(mut got: Value, expected: &Value, accounts: &[Value]) -> Value {
    let object = got.as_object_mut().unwrap();
    let login = object.remove("trading_account_login").unwrap();
    let names = object.remove("risk_signals").unwrap();
    if let Some(own) = expected.get("account_login") {
        assert_eq!(&login, own, "{expected}");
        assert_eq!(names, json!(signal_names(expected)), "{expected}");
    } else {
        let members = expected["accounts"].as_array().unwrap();
        assert_eq!(login, members[0]["account_login"], "{expected}");
        let mut union = std::collections::BTreeSet::new();
        for m in members {
            let a = accounts
                .iter()
                .find(|a| a["account_login"] == m["account_login"])
                .unwrap();
            union.extend(signal_names(a));
        }
        assert_eq!(
            names,
            json!(union.into_iter().collect::<Vec<_>>()),
            "{expected}"
        );
    }
    got
}

/// Every account, user and challenge of `expected` as the service serves it: the report
/// contract's object plus the FastAPI fields `trading_account_login` and `risk_signals`
/// (`risk_score` and `last_trade_at` are the contract's own).
async fn assert_parity(http: &str, expected: &Value) {
    let accounts = expected["accounts"].as_array().unwrap();
    assert!(!accounts.is_empty());
    for a in accounts {
        let login = a["account_login"].as_str().unwrap();
        let (status, got) = get(format!("{http}/risk-report/{login}")).await;
        assert_eq!(status, StatusCode::OK, "{login}");
        let got = without_fastapi_fields(got, a, accounts);
        assert_eq!(&got, a, "account {login}");
    }
    for (list, route, key) in [
        ("users", "user", "user_id"),
        ("challenges", "challenge", "challenge_id"),
    ] {
        for g in expected[list].as_array().unwrap() {
            let id = g[key].as_str().unwrap();
            let (status, got) = get(format!("{http}/risk/{route}/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{route} {id}");
            let got = without_fastapi_fields(got, g, accounts);
            assert_eq!(&got, g, "{route} {id}");
        }
    }
    let (_, health) = get(format!("{http}/health")).await;
    assert_eq!(health["accounts"].as_u64(), Some(accounts.len() as u64));
    // The keys come in the report's order.
    let login = accounts[0]["account_login"].as_str().unwrap();
    let text = client()
        .get(format!("{http}/risk-report/{login}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("{\"account_login\":"), "{text}");
    // The FastAPI fields come last, after the contract's own.
    let tail = format!(
        ",\"trading_account_login\":\"{login}\",\"risk_signals\":{}}}",
        json!(signal_names(&accounts[0]))
    );
    assert!(text.ends_with(&tail), "{text}");
}

/// The header and data lines of an export.
fn lines(path: &str) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut it = text.lines().map(str::to_owned);
    let header = it.next().unwrap();
    (header, it.collect())
}

/// CSV rows as the JSON array of objects with the same field names.
fn as_json(header: &str, rows: &[String]) -> Value {
    let mut reader =
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(std::io::Cursor::new(format!(
                "{header}\n{}\n",
                rows.join("\n")
            )));
    let mut records = reader.records();
    let names: Vec<String> = records
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    Value::Array(
        records
            .map(|r| {
                let r = r.unwrap();
                let map: serde_json::Map<String, Value> = names
                    .iter()
                    .zip(r.iter())
                    .filter(|(n, _)| !n.is_empty())
                    .map(|(n, v)| (n.clone(), Value::from(v)))
                    .collect();
                Value::Object(map)
            })
            .collect(),
    )
}

/// The real sample, with a few of its logins listed: one POST of each file.
async fn sample_parity(url: &str) {
    let service = start(url).await;
    let http = &service.http;
    let (status, out) = post(
        format!("{http}/v1/accounts"),
        "text/csv",
        std::fs::read(SAMPLE_ACCOUNTS).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["accepted"], 5, "{out}");
    let (status, out) = post(
        format!("{http}/v1/trades"),
        "text/csv; charset=utf-8",
        std::fs::read(sample()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let expected = report(sample(), Some(SAMPLE_ACCOUNTS), Path::new(DEMO));
    let good = expected["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["trades"].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(out["accepted"].as_u64(), Some(good), "{out}");
    assert_parity(http, &expected).await;

    // The same export again: every row a duplicate, nothing changes.
    let (status, again) = post(
        format!("{http}/v1/trades"),
        "text/csv",
        std::fs::read(sample()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["accepted"], 0, "{again}");
    assert_eq!(
        again["duplicates"].as_u64(),
        Some(good + expected["duplicate_rows"].as_u64().unwrap())
    );
    assert_eq!(again["accounts_changed"], 0);
    assert_parity(http, &expected).await;

    // Unknown ids answer 404 problem+json.
    for route in [
        "risk-report/nobody",
        "risk/user/nobody",
        "risk/challenge/nobody",
    ] {
        let r = client()
            .get(format!("{http}/{route}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{route}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}

/// The example export posted out of order (its chunks in reverse, CSV and JSON in turn)
/// before its accounts file, then the bad rows: the same objects as `risk report`.
async fn out_of_order_parity(url: &str) {
    let service = start(url).await;
    let http = &service.http;
    let (header, rows) = lines(EXAMPLE);
    // The first 3,000 rows are good; the rest are the bad and repeated rows.
    let (good, bad) = rows.split_at(3_000);
    for (k, chunk) in good.chunks(700).rev().enumerate() {
        let (status, out) = if k % 2 == 0 {
            post(
                format!("{http}/v1/trades"),
                "text/csv",
                format!("{header}\n{}\n", chunk.join("\n")),
            )
            .await
        } else {
            post(
                format!("{http}/v1/trades"),
                "application/json",
                as_json(&header, chunk).to_string(),
            )
            .await
        };
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(out["accepted"].as_u64(), Some(chunk.len() as u64), "{out}");
    }
    let (status, out) = post(
        format!("{http}/v1/trades"),
        "application/json",
        as_json(&header, bad).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    // Three bad rows rejected with their index and reason, two repeats of a stored id.
    assert_eq!(out["accepted"], 0, "{out}");
    assert_eq!(out["rejected"], 3, "{out}");
    assert_eq!(out["duplicates"], 2, "{out}");
    let reasons: Vec<(u64, String)> = out["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 3, "{out}");
    assert!(
        reasons
            .iter()
            .any(|(i, r)| *i == 0 && r.contains("not a decimal")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(_, r)| r.contains("closed before it was opened")),
        "{reasons:?}"
    );

    let (status, out) = post(
        format!("{http}/v1/accounts"),
        "text/csv",
        std::fs::read(EXAMPLE_ACCOUNTS).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let expected = report(EXAMPLE, Some(EXAMPLE_ACCOUNTS), Path::new(DEMO));
    assert_parity(http, &expected).await;

    // The ranked list: HIGH and above, riskiest first, paged by an opaque cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{http}/risk/accounts?min_level=high&limit=7");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get(url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let all = expected["accounts"].as_array().unwrap();
        seen.extend(page["items"].as_array().unwrap().iter().map(|item| {
            let own = all
                .iter()
                .find(|a| a["account_login"] == item["account_login"])
                .unwrap();
            without_fastapi_fields(item.clone(), own, all)
        }));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let wanted: Vec<&Value> = expected["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| matches!(a["risk_level"].as_str(), Some("HIGH" | "CRITICAL")))
        .collect();
    assert!(!wanted.is_empty());
    assert_eq!(seen.iter().collect::<Vec<_>>(), wanted);
    let (status, _) = get(format!("{http}/risk/accounts?min_level=extreme")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(format!("{http}/risk/accounts?cursor=zz")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    outbox_matches(url, &expected).await;
    config_updates(http, &expected).await;
}

/// One outbox row: id, event id, type, entity (`account_login` column), level, payload.
type OutboxRow = (i64, String, String, String, String, Value);

/// The outbox rows after `after` (an outbox id), in order.
async fn outbox(url: &str, after: i64) -> Vec<OutboxRow> {
    let rows: Vec<(i64, String, String, String, String, String)> = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query_as(
            "SELECT id, event_id, event_type, account_login, level, payload FROM webhook_outbox WHERE id > $1 ORDER BY id",
        )
        .bind(after)
        .fetch_all(&pool)
        .await
        .unwrap()
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query_as(
            "SELECT id, event_id, event_type, account_login, level, CAST(payload AS TEXT) FROM webhook_outbox WHERE id > $1 ORDER BY id",
        )
        .bind(after)
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    rows.into_iter()
        .map(|(id, event_id, kind, entity, level, payload)| {
            (
                id,
                event_id,
                kind,
                entity,
                level,
                serde_json::from_str(&payload).unwrap(),
            )
        })
        .collect()
}

fn rank(level: &str) -> Option<usize> {
    ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
        .iter()
        .position(|x| *x == level)
}

/// The keys of an object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// The outbox after ingesting `expected`'s files (risk threshold 80): every account that
/// ends above LOW has a level-raised event, each event a rise; every signal an account
/// ends with was fired; every account that ends above 80 has a score-exceeded event, each
/// from at or below 80; every user and challenge that ends above LOW has a level-raised
/// event, each a rise. Every body has its exact fields.
async fn outbox_matches(url: &str, expected: &Value) {
    let rows = outbox(url, 0).await;
    let mut raised: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut fired: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut exceeded: BTreeMap<String, u32> = BTreeMap::new();
    let account_keys = [
        "account_login",
        "challenge_id",
        "last_trade_at",
        "previous_level",
        "previous_score",
        "risk_level",
        "risk_score",
        "risk_signals",
        "trading_account_login",
        "user_id",
    ];
    for (_, id, kind, entity, level, payload) in &rows {
        assert!(id.starts_with("msg_"), "{id}");
        let previous = payload["previous_level"].as_str().unwrap_or("LOW");
        assert_eq!(payload["risk_level"], level.as_str(), "{kind} {payload}");
        match kind.as_str() {
            "account.risk_level_raised" => {
                assert_eq!(payload["account_login"], entity.as_str());
                assert!(rank(previous) < rank(level), "{payload}");
                raised
                    .entry(("account".into(), entity.clone()))
                    .or_default()
                    .push(level.clone());
            }
            "account.signal_fired" => {
                let mut want = account_keys.to_vec();
                want.push("signals_fired");
                want.sort_unstable();
                assert_eq!(keys(payload), want, "{payload}");
                assert_eq!(payload["trading_account_login"], entity.as_str());
                assert_eq!(payload["account_login"], entity.as_str());
                let names = payload["risk_signals"].as_array().unwrap();
                let new = payload["signals_fired"].as_array().unwrap();
                assert!(!new.is_empty(), "{payload}");
                assert!(new.iter().all(|n| names.contains(n)), "{payload}");
                fired
                    .entry(entity.clone())
                    .or_default()
                    .extend(new.iter().map(|n| n.as_str().unwrap().to_owned()));
            }
            "account.risk_score_exceeded" => {
                let mut want = account_keys.to_vec();
                want.push("risk_threshold");
                want.sort_unstable();
                assert_eq!(keys(payload), want, "{payload}");
                assert_eq!(payload["trading_account_login"], entity.as_str());
                assert_eq!(payload["risk_threshold"], json!(80.0));
                assert!(payload["risk_score"].as_f64().unwrap() > 80.0, "{payload}");
                if let Some(p) = payload["previous_score"].as_f64() {
                    assert!(p <= 80.0, "{payload}");
                }
                *exceeded.entry(entity.clone()).or_default() += 1;
            }
            "user.risk_level_raised" | "challenge.risk_level_raised" => {
                let group = kind.split('.').next().unwrap();
                let key = format!("{group}_id");
                assert_eq!(
                    keys(payload),
                    [
                        "accounts",
                        key.as_str(),
                        "last_trade_at",
                        "previous_level",
                        "previous_score",
                        "risk_level",
                        "risk_score",
                        "risk_signals",
                        "trading_account_login",
                    ]
                    .into_iter()
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>(),
                    "{payload}"
                );
                assert_eq!(payload[&key], entity.as_str());
                assert_eq!(payload["trading_account_login"], payload["accounts"][0]);
                assert!(rank(previous) < rank(level), "{payload}");
                raised
                    .entry((group.to_owned(), entity.clone()))
                    .or_default()
                    .push(level.clone());
            }
            other => panic!("unexpected event type {other}"),
        }
    }
    let ends_above_low = |kind: &str, id: &str, level: &str| {
        if level != "LOW" {
            let levels = raised
                .get(&(kind.to_owned(), id.to_owned()))
                .unwrap_or_else(|| panic!("no level event for {kind} {id}"));
            let top = levels.iter().filter_map(|l| rank(l)).max();
            assert!(top >= rank(level), "{kind} {id}: {levels:?}");
        }
    };
    for a in expected["accounts"].as_array().unwrap() {
        let login = a["account_login"].as_str().unwrap();
        ends_above_low("account", login, a["risk_level"].as_str().unwrap());
        let names = signal_names(a);
        let got = fired.get(login).cloned().unwrap_or_default();
        assert!(
            names.iter().all(|n| got.contains(n)),
            "{login}: {names:?} not all in {got:?}"
        );
        if a["risk_score"].as_f64().unwrap() > 80.0 {
            assert!(exceeded.contains_key(login), "no score event for {login}");
        }
    }
    assert!(!exceeded.is_empty());
    for (list, kind) in [("users", "user"), ("challenges", "challenge")] {
        let key = format!("{kind}_id");
        for g in expected[list].as_array().unwrap() {
            ends_above_low(
                kind,
                g[&key].as_str().unwrap(),
                g["risk_level"].as_str().unwrap(),
            );
        }
    }
}

/// Update-config: a refused patch changes nothing; a score change re-levels accounts as
/// `risk report` with the same `[engine.score]` does; a metric change recomputes metrics.
async fn config_updates(http: &str, before: &Value) {
    let (_, health) = get(format!("{http}/health")).await;
    let version = health["config_version"].as_i64().unwrap();
    for bad in [
        json!({"score": {"high_from": "150"}}),
        json!({"score": {"no_such_key": 1}}),
        json!({"metrics": {"hft_threshold_seconds": 0}}),
        json!({"engine": {}}),
    ] {
        let (status, problem) = post(
            format!("{http}/admin/update-config"),
            "application/json",
            bad.to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {problem}");
        assert!(problem["field"].is_string(), "{problem}");
    }
    let (_, health) = get(format!("{http}/health")).await;
    assert_eq!(health["config_version"].as_i64(), Some(version));
    assert_parity(http, before).await;

    let r = client()
        .post(format!("{http}/admin/update-config"))
        .json(&json!({"score": {"high_from": "20"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let (status, out) = post(
        format!("{http}/admin/update-config"),
        "application/json",
        json!({"score": {"medium_from": "10", "high_from": "20", "critical_from": "90"}})
            .to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["version"].as_i64(), Some(version + 1));
    assert_eq!(out["updated_by"], "ops");
    assert_eq!(out["metrics_recomputed"], false);
    let config = dir.join(format!("{}.toml", common::unique("score")));
    std::fs::write(
        &config,
        format!(
            "{}\n[engine.score]\nmedium_from = \"10\"\nhigh_from = \"20\"\ncritical_from = \"90\"\n",
            std::fs::read_to_string(DEMO).unwrap()
        ),
    )
    .unwrap();
    let expected = report(EXAMPLE, Some(EXAMPLE_ACCOUNTS), &config);
    let changed = before["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected["accounts"].as_array().unwrap())
        .filter(|(a, b)| a["risk_level"] != b["risk_level"])
        .count();
    let mut by_login = BTreeMap::new();
    for a in before["accounts"].as_array().unwrap() {
        by_login.insert(
            a["account_login"].as_str().unwrap(),
            a["risk_level"].clone(),
        );
    }
    let changed_by_login = expected["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| by_login[a["account_login"].as_str().unwrap()] != a["risk_level"])
        .count();
    let _ = changed;
    assert!(changed_by_login > 0);
    assert_eq!(
        out["level_changes"].as_u64(),
        Some(changed_by_login as u64),
        "{out}"
    );
    assert_parity(http, &expected).await;

    // A metric setting: every account's metrics recomputed from the stored trades.
    let (status, out) = post(
        format!("{http}/admin/update-config"),
        "application/json",
        json!({"metrics": {"hft_threshold_seconds": 3600}}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["metrics_recomputed"], true);
    let config2 = dir.join(format!("{}.toml", common::unique("metrics")));
    std::fs::write(
        &config2,
        format!(
            "{}\n[engine.metrics]\nhft_threshold_seconds = 3600\n",
            std::fs::read_to_string(&config).unwrap()
        ),
    )
    .unwrap();
    let expected = report(EXAMPLE, Some(EXAMPLE_ACCOUNTS), &config2);
    assert_ne!(expected, *before);
    assert_parity(http, &expected).await;

    // The P&L basis and the window: every trade's P&L re-read from the stored trades.
    let (status, out) = post(
        format!("{http}/admin/update-config"),
        "application/json",
        json!({"metrics": {"pnl_basis": "gross", "window_size": 20}}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["metrics_recomputed"], true);
    let config3 = dir.join(format!("{}.toml", common::unique("basis")));
    std::fs::write(
        &config3,
        format!(
            "{}\n[engine.metrics]\nhft_threshold_seconds = 3600\npnl_basis = \"gross\"\nwindow_size = 20\n",
            std::fs::read_to_string(&config).unwrap()
        ),
    )
    .unwrap();
    let gross = report(EXAMPLE, Some(EXAMPLE_ACCOUNTS), &config3);
    assert_ne!(gross["accounts"], expected["accounts"]);
    assert_parity(http, &gross).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_parity_sqlite() {
    sample_parity(&common::sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_parity_postgres() {
    let url = common::postgres_url().await;
    sample_parity(&url).await;
    common::drop_postgres(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_parity_sqlite() {
    out_of_order_parity(&common::sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_parity_postgres() {
    let url = common::postgres_url().await;
    out_of_order_parity(&url).await;
    common::drop_postgres(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_refuses_what_it_cannot_read() {
    let service = start(&common::sqlite_url()).await;
    let http = &service.http;
    let (status, problem) = post(format!("{http}/v1/trades"), "text/plain", "x").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{problem}");
    let (status, problem) = post(format!("{http}/v1/trades"), "text/csv", "a,b\n1,2\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("identifier"),
        "{problem}"
    );
    let (status, problem) = post(format!("{http}/v1/trades"), "application/json", "{}").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let r = client()
        .post(format!("{http}/v1/trades"))
        .header("content-type", "text/csv")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A JSON element that is not an object, and one with a nested value: rejected by
    // index; the good element between them is stored.
    let (header, rows) = lines(EXAMPLE);
    let mut body = as_json(&header, &rows[..1]).as_array().unwrap().clone();
    body.insert(0, json!(7));
    let mut nested = body[1].clone();
    nested["profit"] = json!({"x": 1});
    nested["identifier"] = json!("other");
    body.push(nested);
    let (status, out) = post(
        format!("{http}/v1/trades"),
        "application/json",
        Value::Array(body).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(
        (out["accepted"].as_u64(), out["rejected"].as_u64()),
        (Some(1), Some(2)),
        "{out}"
    );
    let indexes: Vec<u64> = out["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 2], "{out}");
    // The service's routes are in the OpenAPI document.
    let (_, api) = get(format!("{http}/openapi.json")).await;
    for path in [
        "/health",
        "/risk-report/{account_login}",
        "/risk/user/{user_id}",
        "/risk/challenge/{challenge_id}",
        "/risk/accounts",
        "/v1/trades",
        "/v1/accounts",
        "/admin/update-config",
    ] {
        assert!(
            api["paths"][path].is_object(),
            "{path} missing from /openapi.json"
        );
    }
}

/// `config` (the demo config) with `extra` TOML appended, as a file.
fn config_with(extra: &str) -> std::path::PathBuf {
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.toml", common::unique("fastapi")));
    std::fs::write(
        &path,
        format!("{}\n{extra}", std::fs::read_to_string(DEMO).unwrap()),
    )
    .unwrap();
    path
}

/// The largest outbox id, 0 when empty.
async fn last_event(url: &str) -> i64 {
    outbox(url, 0).await.last().map_or(0, |r| r.0)
}

/// The FastAPI service's clients and settings (issue 18): the four fields it answers on
/// the three GET routes, with their values; its flat update-config keys (refused ones
/// change nothing, a mixed body sets both); and `{"window_size": 50, "risk_threshold": 70}`
/// changing the window and the webhook trigger at once: the rescoring emits
/// `account.risk_score_exceeded` for exactly the accounts now above 70 that were not above
/// 80, with the FastAPI body.
async fn fastapi_compat(url: &str) {
    let service = start(url).await;
    let http = &service.http;
    for (route, file) in [("accounts", EXAMPLE_ACCOUNTS), ("trades", EXAMPLE)] {
        let (status, out) = post(
            format!("{http}/v1/{route}"),
            "text/csv",
            std::fs::read(file).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{out}");
    }
    let before = report(EXAMPLE, Some(EXAMPLE_ACCOUNTS), Path::new(DEMO));
    let accounts = before["accounts"].as_array().unwrap();
    for a in accounts {
        let login = a["account_login"].as_str().unwrap();
        let (status, got) = get(format!("{http}/risk-report/{login}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got["trading_account_login"], login);
        assert_eq!(got["risk_score"], a["risk_score"]);
        assert_eq!(got["risk_signals"], json!(signal_names(a)));
        // An account without trades has none.
        assert_eq!(a["last_trade_at"].is_string(), a["trades"] != 0, "{a}");
        assert_eq!(got["last_trade_at"], a["last_trade_at"]);
    }
    for (list, route, key) in [
        ("users", "user", "user_id"),
        ("challenges", "challenge", "challenge_id"),
    ] {
        for g in before[list].as_array().unwrap() {
            let id = g[key].as_str().unwrap();
            let (status, got) = get(format!("{http}/risk/{route}/{id}")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                got["trading_account_login"],
                g["accounts"][0]["account_login"]
            );
            assert_eq!(got["risk_score"], g["risk_score"]);
            assert_eq!(got["last_trade_at"], g["last_trade_at"]);
            let mut union = std::collections::BTreeSet::new();
            for m in g["accounts"].as_array().unwrap() {
                let a = accounts
                    .iter()
                    .find(|a| a["account_login"] == m["account_login"])
                    .unwrap();
                union.extend(signal_names(a));
            }
            assert_eq!(
                got["risk_signals"],
                json!(union.into_iter().collect::<Vec<_>>())
            );
        }
    }

    // Refused flat keys: a 422 naming the key the client sent; nothing changes.
    let (_, health) = get(format!("{http}/health")).await;
    let version = health["config_version"].as_i64().unwrap();
    let events = last_event(url).await;
    for (bad, field) in [
        (json!({"win_ratio_threshold": 0.6}), "win_ratio_threshold"),
        (
            json!({"take_profit_threshold": 0.5, "window_size": 50}),
            "take_profit_threshold",
        ),
        (json!({"hft_duration": 0.5}), "hft_duration"),
        (json!({"window_size": 0}), "window_size"),
        (
            json!({"window_size": 50, "drawdown_threshold": 1.5}),
            "drawdown_threshold",
        ),
        (json!({"risk_threshold": 101}), "risk_threshold"),
        (json!({"initial_balance": -5}), "initial_balance"),
        (
            json!({"drawdown_threshold": 0.2, "score": {"drawdown_max": "0.2"}}),
            "drawdown_threshold",
        ),
        (json!({"max_lots": 3}), "max_lots"),
    ] {
        let (status, problem) = post(
            format!("{http}/admin/update-config"),
            "application/json",
            bad.to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {problem}");
        assert_eq!(problem["field"], field, "{bad}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().starts_with(field),
            "{problem}"
        );
    }
    let (_, health) = get(format!("{http}/health")).await;
    assert_eq!(health["config_version"].as_i64(), Some(version));
    assert_eq!(last_event(url).await, events);
    assert_parity(http, &before).await;

    // The window and the trigger at once.
    let (status, out) = post(
        format!("{http}/admin/update-config"),
        "application/json",
        json!({"window_size": 50, "risk_threshold": 70}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["version"].as_i64(), Some(version + 1));
    assert_eq!(out["metrics_recomputed"], true);
    let after = report(
        EXAMPLE,
        Some(EXAMPLE_ACCOUNTS),
        &config_with(
            "[engine.metrics]\nwindow_size = 50\n[engine.score]\nrisk_threshold = \"70\"\n",
        ),
    );
    assert_parity(http, &after).await;
    let score_of = |report: &Value, login: &str| {
        report["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account_login"] == login)
            .unwrap()["risk_score"]
            .as_f64()
            .unwrap()
    };
    let mut want: Vec<&str> = after["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account_login"].as_str().unwrap())
        .filter(|login| score_of(&after, login) > 70.0 && score_of(&before, login) <= 80.0)
        .collect();
    want.sort_unstable();
    assert!(
        !want.is_empty(),
        "no account between 70 and 80 in this export"
    );
    let rows = outbox(url, events).await;
    assert_eq!(out["events"].as_u64(), Some(rows.len() as u64), "{out}");
    let exceeded: Vec<&OutboxRow> = rows
        .iter()
        .filter(|r| r.2 == "account.risk_score_exceeded")
        .collect();
    let mut got: Vec<&str> = exceeded.iter().map(|r| r.3.as_str()).collect();
    got.sort_unstable();
    assert_eq!(got, want);
    for (_, _, _, login, level, payload) in exceeded {
        let a = after["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account_login"] == login.as_str())
            .unwrap();
        assert_eq!(payload["trading_account_login"], login.as_str());
        assert_eq!(payload["risk_signals"], json!(signal_names(a)));
        assert_eq!(payload["risk_score"], a["risk_score"]);
        assert_eq!(payload["last_trade_at"], a["last_trade_at"]);
        assert_eq!(payload["risk_threshold"], json!(70.0));
        assert_eq!(
            payload["previous_score"].as_f64(),
            Some(score_of(&before, login))
        );
        assert_eq!(payload["risk_level"], a["risk_level"]);
        assert_eq!(level, a["risk_level"].as_str().unwrap());
    }

    // A mixed body: the tables' keys and the flat keys together.
    let (status, out) = post(
        format!("{http}/admin/update-config"),
        "application/json",
        json!({"score": {"high_from": "60"}, "stop_loss_threshold": 0.4, "hft_duration": 120.0})
            .to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let mixed = report(
        EXAMPLE,
        Some(EXAMPLE_ACCOUNTS),
        &config_with(
            "[engine.metrics]\nwindow_size = 50\nhft_threshold_seconds = 120\n\
             [engine.score]\nrisk_threshold = \"70\"\nhigh_from = \"60\"\nstop_loss_ratio_min = \"0.4\"\n",
        ),
    );
    assert_parity(http, &mixed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastapi_compat_sqlite() {
    fastapi_compat(&common::sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastapi_compat_postgres() {
    let url = common::postgres_url().await;
    fastapi_compat(&url).await;
    common::drop_postgres(&url).await;
}

/// The real binary: trades posted in batches, `kill -9` while a batch is in flight; the
/// database holds every committed batch whole (each stored result counts exactly its
/// account's stored trades); after a restart every result is served again and, once the
/// rest is posted, agrees with `risk report`.
async fn binary_survives_kill(url: String) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let tokens = dir.join(common::unique("tokens"));
    std::fs::write(&tokens, format!("ops:{TOKEN}\n")).unwrap();
    let (grpc_port, http_port) = (common::free_port(), common::free_port());
    let spawn = || {
        common::spawn_server(
            env!("CARGO_BIN_EXE_risk-server"),
            DEMO,
            (grpc_port, http_port),
            &url,
            &tokens,
            &["--log", "warn"],
        )
    };
    let http = format!("http://127.0.0.1:{http_port}");
    let ready = |http: String| async move {
        for _ in 0..400 {
            if let Ok(r) = reqwest::get(format!("{http}/health")).await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("risk-server not ready in 20 s");
    };

    let (header, rows) = lines(EXAMPLE);
    let chunks: Vec<String> = rows
        .chunks(500)
        .map(|c| format!("{header}\n{}\n", c.join("\n")))
        .collect();
    let mut child = spawn();
    ready(http.clone()).await;
    let (status, _) = post(
        format!("{http}/v1/accounts"),
        "text/csv",
        std::fs::read(EXAMPLE_ACCOUNTS).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for c in &chunks[..3] {
        let (status, out) = post(format!("{http}/v1/trades"), "text/csv", c.clone()).await;
        assert_eq!(status, StatusCode::OK, "{out}");
    }
    let mut before = BTreeMap::new();
    for a in report(EXAMPLE, Some(EXAMPLE_ACCOUNTS), Path::new(DEMO))["accounts"]
        .as_array()
        .unwrap()
    {
        let login = a["account_login"].as_str().unwrap().to_owned();
        let (_, got) = get(format!("{http}/risk-report/{login}")).await;
        before.insert(login, got);
    }
    // A batch in flight when the process is killed.
    let inflight = tokio::spawn(post(
        format!("{http}/v1/trades"),
        "text/csv",
        chunks[3].clone(),
    ));
    tokio::time::sleep(Duration::from_millis(20)).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");
    let _ = inflight.await;

    // Each stored result counts exactly its account's stored trades.
    let counts: Vec<(String, i64, i64)> = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_as(
            "SELECT r.account_login, r.trades, (SELECT COUNT(*) FROM trades t WHERE t.account_login = r.account_login) FROM account_results r",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query_as(
            "SELECT r.account_login, r.trades, (SELECT COUNT(*) FROM trades t WHERE t.account_login = r.account_login) FROM account_results r",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    assert!(!counts.is_empty());
    for (login, stored, trades) in &counts {
        assert_eq!(stored, trades, "{login}");
    }
    let stored_trades: i64 = counts.iter().map(|c| c.2).sum();
    assert!(
        stored_trades == 1_500 || stored_trades == 2_000,
        "{stored_trades}"
    );

    let mut child = spawn();
    ready(http.clone()).await;
    if stored_trades == 1_500 {
        for (login, object) in &before {
            let (status, got) = get(format!("{http}/risk-report/{login}")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(&got, object, "{login} after the restart");
        }
    }
    for c in &chunks[3..] {
        let (status, out) = post(format!("{http}/v1/trades"), "text/csv", c.clone()).await;
        assert_eq!(status, StatusCode::OK, "{out}");
    }
    let expected = report(EXAMPLE, Some(EXAMPLE_ACCOUNTS), Path::new(DEMO));
    assert_parity(&http, &expected).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");
    let _child = spawn();
    ready(http.clone()).await;
    assert_parity(&http, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_survives_kill_sqlite() {
    binary_survives_kill(common::sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_survives_kill_postgres() {
    let url = common::postgres_url().await;
    binary_survives_kill(url.clone()).await;
    common::drop_postgres(&url).await;
}

/// Trades posted a few at a time in a scrambled order (the incremental path: after each
/// batch only the accounts it can have changed are recomputed) give the account objects
/// that `risk report` gives over all of them, and that a restart (every account
/// recomputed from the store, the full path) serves. On the planted export, whose
/// hedging and copy-trading patterns make one account's trades change other accounts'
/// signals, so the test fails if a batch misses an account it changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_equals_full_recompute() {
    use risk_adapters::sample::{generate_planted, SampleConfig};
    let dir = std::env::temp_dir().join(format!("riskgate-incremental-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut trades, mut accounts, mut planted) = (Vec::new(), Vec::new(), Vec::new());
    generate_planted(
        &SampleConfig {
            trades: 1_500,
            defects: false,
            ..SampleConfig::default()
        },
        &mut trades,
        &mut accounts,
        &mut planted,
    )
    .unwrap();
    let trades_path = dir.join("trades.csv");
    let accounts_path = dir.join("accounts.csv");
    std::fs::write(&trades_path, &trades).unwrap();
    std::fs::write(&accounts_path, &accounts).unwrap();
    let expected = report(
        trades_path.to_str().unwrap(),
        Some(accounts_path.to_str().unwrap()),
        Path::new(DEMO),
    );
    // Cross-account signals are among the expected ones, or this test would prove little.
    let kinds: Vec<&str> = expected["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["signals"].as_array().unwrap())
        .filter_map(|s| s["kind"].as_str())
        .collect();
    for kind in ["CROSS_ACCOUNT_HEDGING", "COPY_TRADING", "MARTINGALE"] {
        assert!(kinds.contains(&kind), "no {kind} in the planted export");
    }

    let url = format!("sqlite://{}", dir.join("s.db").display());
    let service = start(&url).await;
    let http = service.http.clone();
    let (status, out) = post(format!("{http}/v1/accounts"), "text/csv", accounts).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    // Every 7th row of the export first, then every 7th from the second row, and so on,
    // in batches of 40: accounts get trades in many batches, out of close-time order.
    let (header, rows) = lines(trades_path.to_str().unwrap());
    let scrambled: Vec<String> = (0..7)
        .flat_map(|k| rows.iter().skip(k).step_by(7).cloned())
        .collect();
    assert_eq!(scrambled.len(), rows.len());
    let mut changed = 0;
    for chunk in scrambled.chunks(40) {
        let (status, out) = post(
            format!("{http}/v1/trades"),
            "text/csv",
            format!("{header}\n{}\n", chunk.join("\n")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(out["accepted"].as_u64(), Some(chunk.len() as u64), "{out}");
        changed += out["accounts_changed"].as_u64().unwrap();
    }
    assert!(changed > 0);
    assert_parity(&http, &expected).await;

    // A restart recomputes every account from the stored trades: the same objects.
    drop(service);
    let service = start(&url).await;
    assert_parity(&service.http, &expected).await;
    drop(service);
    let _ = std::fs::remove_dir_all(&dir);
}
