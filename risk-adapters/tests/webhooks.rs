//! Standard Webhooks delivery, end to end: a real HTTP receiver on 127.0.0.1 (axum) that
//! fails, stalls, answers 429 with `Retry-After`, refuses (400) and accepts; the admin
//! routes; the SSRF guard; two dispatchers sharing one database; an outbox id committed
//! late; and the real `risk-server` binary killed with SIGKILL between the commit and the
//! delivery. Every suite runs on SQLite and on a fresh PostgreSQL schema. The outbox rows
//! are inserted with plain SQL, as the signal service writes them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::StatusCode as Status;
use risk_adapters::config_file::ConfigFile;
use risk_adapters::grpc::service::now;
use risk_adapters::http::auth::{AdminAccess, Tokens};
use risk_adapters::http::metrics::Metrics;
use risk_adapters::http::{self, AppState};
use risk_adapters::report_config::ReportConfig;
use risk_adapters::signal::{self, SignalService, SignalSettings};
use risk_adapters::store::live::LiveConfig;
use risk_adapters::store::{self, DbPool, Seed, Store};
use risk_adapters::webhook::store::from_pool;
use risk_adapters::webhook::{
    DeliveryCounters, DispatchOptions, Dispatcher, Guard, WebhookMetrics, WebhookStore, Webhooks,
    EVENT_TYPES, SECRET_PATTERN,
};
use serde_json::{json, Value};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/config/demo.toml");
const TOKEN: &str = "0123456789abcdef0123";
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

// ---- the receiver ------------------------------------------------------------------

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Ok,
    Status(u16),
    /// 429 with this `Retry-After`.
    TooMany(&'static str),
    /// Waits this long, then 200 (the dispatcher has given up by then).
    Stall(Duration),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Seen {
    id: String,
    timestamp: String,
    body: String,
    at: Instant,
    /// Whether the signature verified with [`SECRET`].
    verified: bool,
}

#[derive(Debug, Default)]
struct Inbox {
    /// Per path: the replies still to give (then 200).
    script: HashMap<String, VecDeque<Reply>>,
    seen: HashMap<String, Vec<Seen>>,
}

#[derive(Debug, Clone)]
struct Receiver {
    addr: SocketAddr,
    inbox: Arc<Mutex<Inbox>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

async fn hook(
    State(inbox): State<Arc<Mutex<Inbox>>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let text = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let verified = standardwebhooks::Webhook::new(SECRET)
        .expect("secret")
        .verify(body.as_bytes(), &headers)
        .is_ok();
    let reply = {
        let mut inbox = inbox.lock().unwrap();
        inbox.seen.entry(name.clone()).or_default().push(Seen {
            id: text("webhook-id"),
            timestamp: text("webhook-timestamp"),
            body,
            at: Instant::now(),
            verified,
        });
        inbox
            .script
            .get_mut(&name)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Reply::Ok)
    };
    match reply {
        Reply::Ok => StatusCode::NO_CONTENT.into_response(),
        Reply::Status(s) => (StatusCode::from_u16(s).unwrap(), "receiver says no").into_response(),
        Reply::TooMany(after) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", after)],
            "slow down",
        )
            .into_response(),
        Reply::Stall(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
    }
}

impl Receiver {
    async fn start() -> Self {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let app = axum::Router::new()
            .route("/hook/{name}", axum::routing::post(hook))
            .with_state(Arc::clone(&inbox));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            inbox,
            task: Arc::new(task),
        }
    }

    fn url(&self, name: &str) -> String {
        format!("http://{}/hook/{name}", self.addr)
    }

    fn script(&self, name: &str, replies: &[Reply]) {
        self.inbox
            .lock()
            .unwrap()
            .script
            .insert(name.to_owned(), replies.iter().copied().collect());
    }

    fn seen(&self, name: &str) -> Vec<Seen> {
        self.inbox
            .lock()
            .unwrap()
            .seen
            .get(name)
            .cloned()
            .unwrap_or_default()
    }
}

// ---- the service -------------------------------------------------------------------

/// Inserts an outbox row as the signal service does; returns its `event_id`.
async fn raise(pool: &DbPool, login: &str, level: &str, event_type: &str) -> String {
    let event_id = format!("msg_{}", common::unique("e"));
    let payload = json!({"account_login": login, "level": level, "previous_level": "LOW",
                         "score": "80", "signals": ["DRAWDOWN"]})
    .to_string();
    let sql = |json: &str| {
        format!(
            "INSERT INTO webhook_outbox (event_id, event_type, account_login, level, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5{json}, $6)"
        )
    };
    let now = chrono::Utc::now();
    match pool {
        DbPool::Sqlite(p) => {
            sqlx::query(&sql(""))
                .bind(&event_id)
                .bind(event_type)
                .bind(login)
                .bind(level)
                .bind(&payload)
                .bind(now)
                .execute(p)
                .await
                .unwrap();
        }
        DbPool::Postgres(p) => {
            sqlx::query(&sql("::jsonb"))
                .bind(&event_id)
                .bind(event_type)
                .bind(login)
                .bind(level)
                .bind(&payload)
                .bind(now)
                .execute(p)
                .await
                .unwrap();
        }
        _ => unreachable!(),
    }
    event_id
}

/// Quick settings: 300 ms timeout, 50 ms backoff base, 4 attempts, 20 ms polls.
fn quick(allow_private: bool) -> DispatchOptions {
    DispatchOptions {
        timeout: Duration::from_millis(300),
        max_attempts: 4,
        backoff_base: Duration::from_millis(50),
        poll_every: Duration::from_millis(20),
        gap_grace: Duration::from_secs(60),
        guard: Guard::new(allow_private),
        ..DispatchOptions::default()
    }
}

/// The admin HTTP API with the webhook routes (guard `allow_private`), and a dispatcher
/// with `options` when given.
struct Service {
    http: String,
    store: Arc<dyn Store>,
    webhooks: Arc<dyn WebhookStore>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Service {
    async fn start(url: &str, allow_private: bool, options: Option<DispatchOptions>) -> Self {
        Self::start_with(url, allow_private, options, false).await
    }

    /// As [`Service::start`], with the risk-signal service (`signal`) writing the outbox.
    async fn start_with(
        url: &str,
        allow_private: bool,
        options: Option<DispatchOptions>,
        signal: bool,
    ) -> Self {
        let signal = if signal {
            let text = std::fs::read_to_string(DEMO).unwrap();
            let config = ReportConfig::from_toml(&text, "demo.toml").unwrap();
            Some(
                SignalService::start(
                    signal::store::open(url).await.expect("signal store"),
                    SignalSettings {
                        metrics: config.metrics,
                        score: config.score,
                    },
                    config.rules,
                )
                .await
                .expect("signal service"),
            )
        } else {
            None
        };
        let file = ConfigFile::load(Path::new(DEMO)).expect("demo config");
        let base = file.engine.clone();
        let seed = Seed::from_file(&file);
        let engine = Arc::new(file.into_engine(now(), "demo.toml").expect("engine"));
        let store = store::open(url).await.expect("store");
        let live = LiveConfig::start(Arc::clone(&store), engine, base, Some(&seed))
            .await
            .expect("live config");
        let webhooks = from_pool(store.db_pool());
        let counters = Arc::new(DeliveryCounters::default());
        let mut metrics = Metrics::new();
        metrics.register_collector(Box::new(WebhookMetrics(Arc::clone(&counters))));
        let tokens = Tokens::parse(&format!("ops:{TOKEN}\n"), "tokens").expect("tokens");
        let state = AppState {
            live,
            admin: AdminAccess::Tokens(Arc::new(tokens)),
            metrics: Arc::new(metrics),
            readiness: None,
            signal,
            webhooks: Some(Arc::new(Webhooks {
                store: Arc::clone(&webhooks),
                guard: Guard::new(allow_private),
            })),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = format!("http://{}", listener.local_addr().unwrap());
        let mut tasks = vec![tokio::spawn(async move {
            http::serve(listener, state, std::future::pending())
                .await
                .unwrap();
        })];
        if let Some(options) = options {
            tasks.push(
                Dispatcher::new(Arc::clone(&webhooks), options, counters)
                    .expect("client")
                    .spawn(),
            );
        }
        Self {
            http,
            store,
            webhooks,
            tasks,
        }
    }

    fn pool(&self) -> DbPool {
        self.store.db_pool()
    }
}

async fn send(req: reqwest::RequestBuilder, body: Option<Value>) -> (Status, Value) {
    let req = req.bearer_auth(TOKEN);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let resp = req.send().await.expect("http answers");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn subscribe(http: &str, url: &str, min_level: &str) -> i64 {
    let (status, body) = send(
        reqwest::Client::new().post(format!("{http}/v1/webhooks")),
        Some(json!({"url": url, "secret": SECRET, "min_level": min_level,
                    "event_types": ["account.risk_level_raised"]})),
    )
    .await;
    assert_eq!(status, Status::CREATED, "{body}");
    body["id"].as_i64().expect("id")
}

async fn deliveries(http: &str, id: i64) -> Vec<Value> {
    let (status, page) = send(
        reqwest::Client::new().get(format!("{http}/v1/webhooks/{id}/deliveries")),
        None,
    )
    .await;
    assert_eq!(status, Status::OK, "{page}");
    page["items"].as_array().expect("items").clone()
}

/// Polls `f` until it is true or `limit` passes.
async fn until(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !f().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until subscription `id`'s only delivery is no longer pending; returns it.
async fn settled(http: &str, id: i64, limit: Duration) -> Value {
    let mut last = Value::Null;
    until(
        &format!("subscription {id}'s delivery to settle"),
        limit,
        async || {
            let items = deliveries(http, id).await;
            last = items.first().cloned().unwrap_or(Value::Null);
            items.len() == 1 && items[0]["status"] != "pending"
        },
    )
    .await;
    last
}

fn outcomes(delivery: &Value) -> Vec<(Value, String)> {
    delivery["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["status_code"].clone(),
                a["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

// ---- the suites --------------------------------------------------------------------

/// The routes: create (no secret in any answer), list, 422 per field, 401, deliveries of
/// an unknown subscription, delete; the OpenAPI document lists them.
async fn routes(url: String) {
    let s = Service::start(&url, false, None).await;
    let http = &s.http;
    let c = reqwest::Client::new();
    let body = |url: &str| {
        json!({"url": url, "secret": SECRET, "min_level": "high",
               "event_types": ["account.risk_level_raised"]})
    };
    let (status, created) = send(
        c.post(format!("{http}/v1/webhooks")),
        Some(body("https://8.8.8.8/hooks/risk")),
    )
    .await;
    assert_eq!(status, Status::CREATED, "{created}");
    assert_eq!(created["min_level"], "HIGH");
    assert_eq!(created["created_by"], "ops");
    assert_eq!(created["event_types"], json!(["account.risk_level_raised"]));
    assert!(!created.to_string().contains("whsec_"), "{created}");
    let id = created["id"].as_i64().unwrap();

    let (status, page) = send(c.get(format!("{http}/v1/webhooks")), None).await;
    assert_eq!(status, Status::OK);
    assert_eq!(page["items"][0]["url"], "https://8.8.8.8/hooks/risk");
    assert!(!page.to_string().contains("C2FVsBQ"), "{page}");

    let mut cases = vec![
        (body("http://127.0.0.1:8080/x"), "url", "loopback"),
        (body("http://10.1.2.3/x"), "url", "private"),
        (
            body("http://[::ffff:169.254.169.254]/x"),
            "url",
            "IPv4-mapped",
        ),
        (body("http://localhost:9/x"), "url", "loopback"),
        (body("ftp://8.8.8.8/x"), "url", "scheme"),
        (body("not a url"), "url", "absolute URL"),
    ];
    let mut bad = body("https://8.8.8.8/x");
    bad["secret"] = json!("C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
    cases.push((bad, "secret", "whsec_"));
    let mut bad = body("https://8.8.8.8/x");
    bad["secret"] = json!("whsec_MTIzNDU2Nzg5MDEy");
    cases.push((bad, "secret", "24 to 64 bytes"));
    let mut bad = body("https://8.8.8.8/x");
    bad["min_level"] = json!("SEVERE");
    cases.push((bad, "min_level", "SEVERE"));
    let mut bad = body("https://8.8.8.8/x");
    bad["event_types"] = json!(["account.risk_level_raised", "account.colour_changed"]);
    cases.push((bad, "event_types[1]", "account.colour_changed"));
    let mut bad = body("https://8.8.8.8/x");
    bad["event_types"] = json!([]);
    cases.push((bad, "event_types", "at least one"));
    for (request, field, words) in cases {
        let (status, problem) =
            send(c.post(format!("{http}/v1/webhooks")), Some(request.clone())).await;
        assert_eq!(status, Status::UNPROCESSABLE_ENTITY, "{request}: {problem}");
        assert_eq!(problem["field"], field, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(words),
            "{request}: {problem}"
        );
    }
    let (status, _) = send(
        c.post(format!("{http}/v1/webhooks")),
        Some(json!({"url": "https://8.8.8.8/", "secret": SECRET, "min_level": "HIGH"})),
    )
    .await;
    assert_eq!(status, Status::UNPROCESSABLE_ENTITY);
    // Only the first subscription was stored.
    let (_, page) = send(c.get(format!("{http}/v1/webhooks")), None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    let r = c.get(format!("{http}/v1/webhooks")).send().await.unwrap();
    assert_eq!(r.status(), Status::UNAUTHORIZED);
    let r = c
        .post(format!("{http}/v1/webhooks"))
        .json(&body("https://8.8.8.8/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), Status::UNAUTHORIZED);

    let (status, page) = send(c.get(format!("{http}/v1/webhooks/{id}/deliveries")), None).await;
    assert_eq!((status, page["items"].clone()), (Status::OK, json!([])));
    let (status, p) = send(c.get(format!("{http}/v1/webhooks/999999/deliveries")), None).await;
    assert_eq!(status, Status::NOT_FOUND, "{p}");
    let (status, p) = send(
        c.get(format!("{http}/v1/webhooks/{id}/deliveries?status=lost")),
        None,
    )
    .await;
    assert_eq!(
        (status, p["field"].as_str()),
        (Status::BAD_REQUEST, Some("status"))
    );
    let (status, _) = send(c.delete(format!("{http}/v1/webhooks/{id}")), None).await;
    assert_eq!(status, Status::NO_CONTENT);
    let (status, p) = send(c.delete(format!("{http}/v1/webhooks/{id}")), None).await;
    assert_eq!(status, Status::NOT_FOUND);
    assert_eq!(p["type"], "urn:riskgate:problem:not-found");

    let api: Value = c
        .get(format!("{http}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/webhooks",
        "/v1/webhooks/{id}",
        "/v1/webhooks/{id}/deliveries",
    ] {
        assert!(api["paths"][path].is_object(), "{path} not documented");
    }
    let new = &api["components"]["schemas"]["NewSubscription"]["properties"];
    assert_eq!(new["event_types"]["items"]["enum"], json!(EVENT_TYPES));
    assert_eq!(new["event_types"]["minItems"], 1);
    assert_eq!(
        new["min_level"]["enum"],
        json!(["LOW", "MEDIUM", "HIGH", "CRITICAL"])
    );
    assert_eq!(new["secret"]["pattern"], SECRET_PATTERN);
    let status = &api["paths"]["/v1/webhooks/{id}/deliveries"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "status")
        .unwrap()["schema"];
    assert_eq!(
        status["enum"],
        json!(["pending", "delivered", "failed", "dead_lettered"])
    );
}

/// A receiver that fails, stalls, throttles, refuses and accepts: the outcomes, attempts
/// and delays; the same `webhook-id` on every attempt, each signature verified; dead
/// letters after the last attempt; levels and types select the subscriptions.
async fn retries_and_outcomes(url: String) {
    let rx = Receiver::start().await;
    let s = Service::start(&url, true, Some(quick(true))).await;
    let http = &s.http;
    rx.script("flaky", &[Reply::Status(500), Reply::Status(502)]);
    rx.script("stall", &[Reply::Stall(Duration::from_secs(2))]);
    rx.script("limited", &[Reply::TooMany("1")]);
    rx.script("refuses", &[Reply::Status(400)]);
    rx.script("down", &[Reply::Status(503); 10]);
    let mut subs = HashMap::new();
    for name in ["flaky", "stall", "limited", "refuses", "down"] {
        subs.insert(name, subscribe(http, &rx.url(name), "HIGH").await);
    }
    let critical_only = subscribe(http, &rx.url("critical"), "CRITICAL").await;
    let (status, other_type) = send(
        reqwest::Client::new().post(format!("{http}/v1/webhooks")),
        Some(
            json!({"url": rx.url("signals"), "secret": SECRET, "min_level": "LOW",
                    "event_types": ["account.signal_fired"]}),
        ),
    )
    .await;
    assert_eq!(status, Status::CREATED);

    // Below every min_level but LOW: nobody gets it. Then one HIGH event.
    raise(&s.pool(), "1001", "MEDIUM", "account.risk_level_raised").await;
    let event_id = raise(&s.pool(), "1002", "HIGH", "account.risk_level_raised").await;

    let limit = Duration::from_secs(20);
    let flaky = settled(http, subs["flaky"], limit).await;
    assert_eq!(flaky["status"], "delivered", "{flaky}");
    assert_eq!(flaky["attempts"], 3);
    assert_eq!(flaky["event_id"], event_id.as_str());
    assert_eq!(flaky["account_login"], "1002");
    assert_eq!(
        outcomes(&flaky),
        [
            (json!(500), "retry".to_owned()),
            (json!(502), "retry".to_owned()),
            (json!(204), "delivered".to_owned())
        ]
    );
    assert!(flaky["attempt_log"][0]["error"]
        .as_str()
        .unwrap()
        .contains("receiver says no"));
    let seen = rx.seen("flaky");
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|r| r.id == event_id && r.verified),
        "{seen:?}"
    );
    assert!(seen.iter().all(|r| r.timestamp.parse::<i64>().is_ok()));
    assert!(seen.windows(2).all(|w| w[0].body == w[1].body));
    let body: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["type"], "account.risk_level_raised");
    assert_eq!(body["data"]["account_login"], "1002");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));

    let stall = settled(http, subs["stall"], limit).await;
    assert_eq!(stall["status"], "delivered", "{stall}");
    assert_eq!(outcomes(&stall)[0], (Value::Null, "retry".to_owned()));
    let error = stall["attempt_log"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("timeout"), "{error}");
    let duration = stall["attempt_log"][0]["duration_ms"].as_i64().unwrap();
    assert!((250..1_500).contains(&duration), "{duration} ms");

    let limited = settled(http, subs["limited"], limit).await;
    assert_eq!(limited["status"], "delivered");
    assert_eq!(outcomes(&limited)[0], (json!(429), "retry".to_owned()));
    let seen = rx.seen("limited");
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    // Retry-After: 1 beats the 50 ms backoff.
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert_eq!(seen[0].id, seen[1].id);

    let refused = settled(http, subs["refuses"], limit).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["attempts"], 1);
    assert_eq!(refused["last_status_code"], 400);
    assert_eq!(refused["next_attempt_at"], Value::Null);

    let down = settled(http, subs["down"], limit).await;
    assert_eq!(down["status"], "dead_lettered", "{down}");
    assert_eq!(down["attempts"], 4);
    assert_eq!(outcomes(&down).last().unwrap().1, "dead_lettered");

    // Nothing more arrives at the refusing or dead receivers.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rx.seen("refuses").len(), 1);
    assert_eq!(rx.seen("down").len(), 4);
    assert!(rx.seen("critical").is_empty());
    assert!(rx.seen("signals").is_empty());
    assert!(deliveries(http, critical_only).await.is_empty());
    assert!(deliveries(http, other_type["id"].as_i64().unwrap())
        .await
        .is_empty());

    // The counters on /metrics (updated just after each outcome is stored). Retried:
    // flaky 2, stall 1, limited 1, down 3 (its fourth attempt was dead-lettered).
    let lines = [
        "riskgate_webhook_delivered_total 3",
        "riskgate_webhook_retried_total 7",
        "riskgate_webhook_dead_lettered_total 1",
        "riskgate_webhook_failed_total 1",
        "riskgate_webhook_events_total 2",
    ];
    let mut text = String::new();
    until("the counters", limit, async || {
        text = reqwest::get(format!("{http}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        lines.iter().all(|line| text.lines().any(|l| l == *line))
    })
    .await;

    // A CRITICAL event reaches the CRITICAL subscription too.
    let critical = raise(&s.pool(), "1003", "CRITICAL", "account.risk_level_raised").await;
    let d = settled(http, critical_only, limit).await;
    assert_eq!(
        (d["status"].as_str(), d["event_id"].as_str()),
        (Some("delivered"), Some(critical.as_str()))
    );
}

/// The guard at connect time: a name that resolves to loopback (as after DNS rebinding)
/// is never connected to, nor is a literal private address stored before the guard
/// tightened; the receiver sees nothing.
async fn private_targets_are_refused_when_sending(url: String) {
    let rx = Receiver::start().await;
    let s = Service::start(&url, true, Some(quick(false))).await;
    // Subscribed while private targets were allowed (the API's guard here allows them).
    let named = subscribe(
        &s.http,
        &format!("http://localhost:{}/hook/named", rx.addr.port()),
        "LOW",
    )
    .await;
    let literal = subscribe(&s.http, &rx.url("literal"), "LOW").await;
    raise(&s.pool(), "2001", "HIGH", "account.risk_level_raised").await;
    let limit = Duration::from_secs(20);
    let d = settled(&s.http, literal, limit).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert!(
        d["last_error"].as_str().unwrap().contains("loopback"),
        "{d}"
    );
    let d = settled(&s.http, named, limit).await;
    // Refused on every attempt (a resolver error is retried: DNS may change back).
    assert_eq!(d["status"], "dead_lettered", "{d}");
    let error = d["last_error"].as_str().unwrap();
    assert!(
        error.contains("loopback") && error.contains("--allow-private-webhooks"),
        "{error}"
    );
    assert!(rx.seen("named").is_empty() && rx.seen("literal").is_empty());
}

/// Two dispatchers on one database: every event delivered exactly once (leases).
async fn two_dispatchers_share_the_work(url: String) {
    let rx = Receiver::start().await;
    let s = Service::start(&url, true, Some(quick(true))).await;
    let counters = Arc::new(DeliveryCounters::default());
    let second = Dispatcher::new(Arc::clone(&s.webhooks), quick(true), Arc::clone(&counters))
        .unwrap()
        .spawn();
    let id = subscribe(&s.http, &rx.url("shared"), "LOW").await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            raise(
                &s.pool(),
                &format!("30{i:02}"),
                "HIGH",
                "account.risk_level_raised",
            )
            .await,
        );
    }
    until("30 deliveries", Duration::from_secs(20), async || {
        rx.seen("shared").len() >= 30
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut got: Vec<String> = rx.seen("shared").into_iter().map(|r| r.id).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "each event exactly once");
    let (_, page) = send(
        reqwest::Client::new().get(format!(
            "{}/v1/webhooks/{id}/deliveries?status=delivered&limit=1000",
            s.http
        )),
        None,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 30);
    second.abort();
}

/// PostgreSQL allocates outbox ids before commit: an event whose transaction commits
/// after a later id's is still delivered, and a rolled-back id is skipped after the grace
/// period.
async fn late_commits_are_not_lost(url: String) {
    let rx = Receiver::start().await;
    let mut options = quick(true);
    options.gap_grace = Duration::from_secs(3);
    let s = Service::start(&url, true, Some(options)).await;
    let id = subscribe(&s.http, &rx.url("late"), "LOW").await;
    let DbPool::Postgres(pool) = s.pool() else {
        panic!("PostgreSQL only");
    };
    let insert = "INSERT INTO webhook_outbox (event_id, event_type, account_login, level, payload, created_at) \
                  VALUES ($1, 'account.risk_level_raised', $2, 'HIGH', '{}'::jsonb, now())";
    let mut open = pool.begin().await.unwrap();
    sqlx::query(insert)
        .bind("msg_late")
        .bind("4001")
        .execute(&mut *open)
        .await
        .unwrap();
    let mut rolled = pool.begin().await.unwrap();
    sqlx::query(insert)
        .bind("msg_rolled")
        .bind("4002")
        .execute(&mut *rolled)
        .await
        .unwrap();
    let later = raise(&s.pool(), "4003", "HIGH", "account.risk_level_raised").await;
    until("the later event", Duration::from_secs(10), async || {
        rx.seen("late").iter().any(|r| r.id == later)
    })
    .await;
    // Held back by the open transaction's id.
    let upto: i64 = sqlx::query_scalar("SELECT upto FROM webhook_fanout")
        .fetch_one(&pool)
        .await
        .unwrap();
    let late_id: i64 = sqlx::query_scalar("SELECT max(id) FROM webhook_outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    // The open transaction holds id late_id - 2: the position waits just below it.
    assert_eq!(upto, late_id - 3, "the position moved past the open ids");
    open.commit().await.unwrap();
    until("the late event", Duration::from_secs(10), async || {
        rx.seen("late").iter().any(|r| r.id == "msg_late")
    })
    .await;
    rolled.rollback().await.unwrap();
    // The rolled-back id is skipped once the grace period passed.
    until(
        "the position to pass the rolled-back id",
        Duration::from_secs(10),
        async || {
            let upto: i64 = sqlx::query_scalar("SELECT upto FROM webhook_fanout")
                .fetch_one(&pool)
                .await
                .unwrap();
            upto == late_id
        },
    )
    .await;
    assert_eq!(deliveries(&s.http, id).await.len(), 2);
}

/// The real binary: an event committed, the server killed (SIGKILL) while its attempt is
/// in flight, another committed while it is down; after a restart both are delivered, the
/// first with the same `webhook-id` as before the kill.
async fn binary_delivers_after_kill(url: String) {
    let rx = Receiver::start().await;
    rx.script("crash", &[Reply::Stall(Duration::from_secs(30))]);
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
            &[
                "--allow-private-webhooks",
                "--webhook-timeout-ms",
                "1000",
                "--webhook-backoff-ms",
                "100",
                "--log",
                "warn",
            ],
        )
    };
    let http = format!("http://127.0.0.1:{http_port}");
    let ready = |http: String| async move {
        until("risk-server ready", Duration::from_secs(20), async || {
            reqwest::get(format!("{http}/readyz"))
                .await
                .is_ok_and(|r| r.status() == Status::OK)
        })
        .await;
    };
    let mut child = spawn();
    ready(http.clone()).await;
    let id = subscribe(&http, &rx.url("crash"), "HIGH").await;
    let store = store::open(&url).await.unwrap();
    let first = raise(
        &store.db_pool(),
        "5001",
        "HIGH",
        "account.risk_level_raised",
    )
    .await;
    until("the first attempt", Duration::from_secs(10), async || {
        !rx.seen("crash").is_empty()
    })
    .await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");
    let second = raise(
        &store.db_pool(),
        "5002",
        "CRITICAL",
        "account.risk_level_raised",
    )
    .await;

    let _child = spawn();
    ready(http.clone()).await;
    // The first waits for its lease (2 x 1 s + 2 s) to expire.
    until("both events", Duration::from_secs(20), async || {
        let seen = rx.seen("crash");
        seen.iter().filter(|r| r.id == first).count() >= 2 && seen.iter().any(|r| r.id == second)
    })
    .await;
    let seen = rx.seen("crash");
    assert!(seen.iter().all(|r| r.verified), "{seen:?}");
    assert_eq!(seen[0].id, first);
    until(
        "both recorded as delivered",
        Duration::from_secs(10),
        async || {
            let items = deliveries(&http, id).await;
            items.len() == 2 && items.iter().all(|d| d["status"] == "delivered")
        },
    )
    .await;
    // This process delivered both: the first again, with its webhook-id.
    until(
        "the delivered counter",
        Duration::from_secs(10),
        async || {
            reqwest::get(format!("{http}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .lines()
                .any(|l| l == "riskgate_webhook_delivered_total 2")
        },
    )
    .await;
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/trades.csv");
const EXAMPLE_ACCOUNTS: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/accounts.csv");

/// The signal service's own events, end to end: the example export posted to the service
/// (accounts, then the trades in one batch) with a subscription at HIGH to
/// `account.risk_score_exceeded`, `user.risk_level_raised` and
/// `challenge.risk_level_raised`. The receiver gets, signed, exactly one event per
/// account whose score ends above 80 (the default `risk_threshold`) with the FastAPI body
/// (the four fields equal to what `GET /risk-report/{login}` answers), and one per user
/// and challenge that ends HIGH or above.
async fn service_events_are_delivered(url: String) {
    let rx = Receiver::start().await;
    let s = Service::start_with(&url, true, Some(quick(true)), true).await;
    let (status, body) = send(
        reqwest::Client::new().post(format!("{}/v1/webhooks", s.http)),
        Some(
            json!({"url": rx.url("svc"), "secret": SECRET, "min_level": "HIGH",
                    "event_types": ["account.risk_score_exceeded", "user.risk_level_raised",
                                    "challenge.risk_level_raised"]}),
        ),
    )
    .await;
    assert_eq!(status, Status::CREATED, "{body}");
    for (route, file) in [("accounts", EXAMPLE_ACCOUNTS), ("trades", EXAMPLE)] {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/{route}", s.http))
            .bearer_auth(TOKEN)
            .header("content-type", "text/csv")
            .body(std::fs::read(file).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), Status::OK);
    }
    let get = |path: String| {
        let http = s.http.clone();
        async move {
            let r = reqwest::get(format!("{http}{path}")).await.unwrap();
            assert_eq!(r.status(), Status::OK, "{path}");
            r.json::<Value>().await.unwrap()
        }
    };
    let page = get("/risk/accounts?limit=1000".into()).await;
    let accounts = page["items"].as_array().unwrap().clone();
    let mut want: Vec<(String, String, Value)> = Vec::new();
    let mut users = std::collections::BTreeSet::new();
    let mut challenges = std::collections::BTreeSet::new();
    for a in &accounts {
        let login = a["account_login"].as_str().unwrap().to_owned();
        if a["risk_score"].as_f64().unwrap() > 80.0 {
            let fastapi = json!({
                "trading_account_login": a["trading_account_login"],
                "risk_signals": a["risk_signals"],
                "risk_score": a["risk_score"],
                "last_trade_at": a["last_trade_at"],
            });
            want.push(("account.risk_score_exceeded".into(), login, fastapi));
        }
        users.insert(a["user_id"].as_str().unwrap().to_owned());
        challenges.extend(a["challenge_id"].as_str().map(str::to_owned));
    }
    for (kind, ids) in [("user", users), ("challenge", challenges)] {
        for id in ids {
            let g = get(format!("/risk/{kind}/{id}")).await;
            if matches!(g["risk_level"].as_str(), Some("HIGH" | "CRITICAL")) {
                let fields = json!({
                    "risk_level": g["risk_level"],
                    "risk_score": g["risk_score"],
                    "trading_account_login": g["trading_account_login"],
                    "risk_signals": g["risk_signals"],
                    "last_trade_at": g["last_trade_at"],
                });
                want.push((format!("{kind}.risk_level_raised"), id, fields));
            }
        }
    }
    assert!(want.iter().any(|w| w.0 == "account.risk_score_exceeded"));
    assert!(want.iter().any(|w| w.0 == "user.risk_level_raised"));
    assert!(want.iter().any(|w| w.0 == "challenge.risk_level_raised"));
    until("every event", Duration::from_secs(30), async || {
        rx.seen("svc").len() >= want.len()
    })
    .await;
    // Nothing more arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = rx.seen("svc");
    assert_eq!(seen.len(), want.len(), "{seen:?}");
    let mut got: Vec<(String, String, Value)> = Vec::new();
    for r in &seen {
        assert!(r.verified, "{r:?}");
        let body: Value = serde_json::from_str(&r.body).unwrap();
        let kind = body["type"].as_str().unwrap().to_owned();
        let data = &body["data"];
        let (id, fields) = if kind == "account.risk_score_exceeded" {
            let fields: Value = [
                "trading_account_login",
                "risk_signals",
                "risk_score",
                "last_trade_at",
            ]
            .iter()
            .map(|k| ((*k).to_owned(), data[*k].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into();
            (data["account_login"].as_str().unwrap().to_owned(), fields)
        } else {
            let key = if kind.starts_with("user.") {
                "user_id"
            } else {
                "challenge_id"
            };
            let fields: Value = [
                "risk_level",
                "risk_score",
                "trading_account_login",
                "risk_signals",
                "last_trade_at",
            ]
            .iter()
            .map(|k| ((*k).to_owned(), data[*k].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into();
            (data[key].as_str().unwrap().to_owned(), fields)
        };
        got.push((kind, id, fields));
    }
    let key = |w: &(String, String, Value)| (w.0.clone(), w.1.clone());
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want);
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::common::sqlite_url()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let url = super::common::postgres_url().await;
                    super::$name(url.clone()).await;
                    super::common::drop_postgres(&url).await;
                }
            )*
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn late_commits_are_not_lost() {
                let url = super::common::postgres_url().await;
                super::late_commits_are_not_lost(url.clone()).await;
                super::common::drop_postgres(&url).await;
            }
        }
    };
}

both_backends!(
    routes,
    retries_and_outcomes,
    private_targets_are_refused_when_sending,
    two_dispatchers_share_the_work,
    binary_delivers_after_kill,
    service_events_are_delivered,
);
