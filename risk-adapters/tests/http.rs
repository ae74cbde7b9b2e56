//! The admin HTTP API and the live config, end to end: in-process servers (HTTP and gRPC
//! over one engine) on SQLite files and PostgreSQL schemas, and the real `risk-server`
//! binary killed with SIGKILL and restarted on the same database.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use risk_adapters::config_file::ConfigFile;
use risk_adapters::grpc::proto::v1 as pb;
use risk_adapters::grpc::server::{serve, ServerOptions};
use risk_adapters::grpc::service::{now, CheckHooks};
use risk_adapters::http::auth::{AdminAccess, Tokens};
use risk_adapters::http::metrics::Metrics;
use risk_adapters::http::{self, AppState};
use risk_adapters::store::live::LiveConfig;
use risk_adapters::store::{self, Seed};
use risk_core::engine::{RiskEngine, Seq};
use serde_json::{json, Value};
use tonic::transport::Channel;

use pb::risk_service_client::RiskServiceClient;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/config/demo.toml");
const TOKEN: &str = "0123456789abcdef0123";

/// One in-process service: the engine, its live config, the HTTP and gRPC addresses.
struct Service {
    live: Arc<LiveConfig>,
    engine: Arc<RiskEngine>,
    http: String,
    grpc: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn start(url: &str) -> Service {
    start_with(url, None).await
}

/// [`start`] with `/readyz` gated on `readiness`.
async fn start_with(url: &str, readiness: Option<Arc<dyn CheckHooks>>) -> Service {
    let file = ConfigFile::load(Path::new(DEMO)).expect("demo config");
    let base = file.engine.clone();
    let seed = Seed::from_file(&file);
    let engine = Arc::new(file.into_engine(now(), "demo.toml").expect("engine"));
    let store = store::open(url).await.expect("store");
    let live = LiveConfig::start(store, Arc::clone(&engine), base, Some(&seed))
        .await
        .expect("live config");
    let follow = live.follow();
    let metrics = Arc::new(Metrics::new());
    let tokens = Tokens::parse(&format!("ops:{TOKEN}\n"), "tokens").expect("tokens");
    let state = AppState {
        live: Arc::clone(&live),
        admin: AdminAccess::Tokens(Arc::new(tokens)),
        metrics: Arc::clone(&metrics),
        readiness: readiness.clone(),
        #[cfg(feature = "webhooks")]
        webhooks: None,
        signal: None,
    };
    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let http = format!("http://{}", http_listener.local_addr().expect("addr"));
    let http_task = tokio::spawn(async move {
        http::serve(http_listener, state, std::future::pending())
            .await
            .expect("http");
    });
    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let grpc = grpc_listener.local_addr().expect("addr");
    let metrics: Arc<dyn CheckHooks> = metrics;
    // As risk-server: the readiness hooks gate the checks too, beside the metrics.
    let hooks: Arc<dyn CheckHooks> = match readiness {
        Some(gate) => Arc::new(vec![gate, metrics]),
        None => metrics,
    };
    let options = ServerOptions {
        hooks: Some(hooks),
        summary_every: None,
        ..ServerOptions::default()
    };
    let grpc_engine = Arc::clone(&engine);
    let grpc_task = tokio::spawn(async move {
        serve(grpc_engine, grpc_listener, options, std::future::pending())
            .await
            .expect("grpc");
    });
    Service {
        live,
        engine,
        http,
        grpc,
        tasks: vec![follow, http_task, grpc_task],
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client")
}

async fn send(
    req: reqwest::RequestBuilder,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let req = req.bearer_auth(TOKEN);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let resp = req.send().await.expect("http answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

/// `user` (account `acc-{user}`) buys `quantity` BTCUSDT at 50,000, 10x.
async fn grpc_check(addr: SocketAddr, order_id: &str, quantity: &str) -> pb::PreTradeCheckResponse {
    grpc_check_as(addr, "alice", order_id, quantity).await
}

async fn grpc_check_as(
    addr: SocketAddr,
    user: &str,
    order_id: &str,
    quantity: &str,
) -> pb::PreTradeCheckResponse {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    RiskServiceClient::new(channel)
        .pre_trade_check(pb::PreTradeCheckRequest {
            user_id: user.into(),
            account_id: format!("acc-{user}"),
            order_id: order_id.into(),
            symbol: "BTCUSDT".into(),
            side: pb::Side::Buy as i32,
            order_type: pb::OrderType::Limit as i32,
            quantity: quantity.into(),
            price: "50000".into(),
            leverage: "10".into(),
            reduce_only: false,
            post_only: false,
            trace_id: format!("t-{order_id}"),
        })
        .await
        .expect("check answers")
        .into_inner()
}

fn tiny() -> Value {
    json!({"name": "tiny", "metric": "order_notional", "operator": ">", "threshold": "1000",
           "severity": "HIGH", "action": "REJECT", "active": true})
}

/// The tier row of `symbol`'s ladder numbered `tier`.
async fn tier_row(http: &str, symbol: &str, tier: i64) -> Value {
    let (status, _, page) = send(
        client().get(format!("{http}/v1/margin-tiers?symbol={symbol}&limit=100")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["tier"] == tier)
        .cloned()
        .expect("tier")
}

/// The issue's acceptance: a POSTed rule rejects the next check, a tier that breaks the
/// ladder answers 422 and changes nothing, a frozen profile rejects the next check.
async fn acceptance(url: String) {
    let s = start(&url).await;
    let http = &s.http;
    let before = grpc_check(s.grpc, "a-0", "0.1").await;
    assert_eq!(before.decision(), pb::RiskDecision::Approved, "{before:?}");

    let (status, headers, rule) =
        send(client().post(format!("{http}/v1/risk-rules")), Some(tiny())).await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    assert!(rule["id"].as_i64().is_some());
    assert_eq!(headers["etag"], "\"1\"");
    let r = grpc_check(s.grpc, "a-1", "0.1").await;
    assert_eq!(r.decision(), pb::RiskDecision::Rejected, "{r:?}");
    assert_eq!(r.reject_reason(), pb::RejectReason::RiskRuleViolation);
    assert!(r.rule_hits.iter().any(|h| h == "tiny"), "{r:?}");

    let tier1 = tier_row(http, "BTCUSDT", 1).await;
    let tier2 = tier_row(http, "BTCUSDT", 2).await;
    let config_before = s.engine.config();
    let version_before = s.live.version();
    let lower: String = format!(
        "{}",
        tier1["maintenance_margin_pct"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            / 2.0
    );
    let (status, headers, problem) = send(
        client().patch(format!("{http}/v1/margin-tiers/{}", tier2["id"])),
        Some(json!({"maintenance_margin_pct": lower})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(
        problem["field"],
        "margin_tiers[BTCUSDT tier 2].maintenance_margin_pct"
    );
    assert_eq!(tier_row(http, "BTCUSDT", 2).await, tier2);
    assert_eq!(*s.engine.config(), *config_before);
    assert_eq!(s.live.version(), version_before);

    let (status, _, profile) = send(
        client().patch(format!("{http}/v1/risk-profiles/alice")),
        Some(json!({"frozen": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["frozen"], true);
    let r = grpc_check(s.grpc, "a-2", "0.1").await;
    assert_eq!(r.decision(), pb::RiskDecision::Rejected, "{r:?}");
    assert_eq!(r.reject_reason(), pb::RejectReason::UserFrozen);

    // The checks were counted.
    let text = client()
        .get(format!("{http}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"riskgate_checks_total{decision="REJECTED",reason="USER_FROZEN"} 1"#),
        "{text}"
    );
    assert!(text.contains(&format!("riskgate_config_version {}", s.live.version())));
    assert!(
        text.contains("riskgate_check_duration_seconds_count 3"),
        "{text}"
    );
    assert!(text.contains(
        r#"riskgate_admin_writes_total{route="PATCH /v1/margin-tiers/{id}",status="422"} 1"#
    ));
    assert!(
        text.contains(r#"riskgate_admin_writes_total{route="POST /v1/risk-rules",status="201"} 1"#)
    );
}

/// Every route, with its 401, 404, 409, 412 and 422 answers.
async fn routes(url: String) {
    let s = start(&url).await;
    let http = &s.http;
    let c = client();

    // 401: no token, a wrong token.
    let r = c.get(format!("{http}/v1/risk-rules")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = c
        .get(format!("{http}/v1/risk-profiles"))
        .bearer_auth("0123456789abcdef0124")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Profiles.
    let (status, _, page) = send(c.get(format!("{http}/v1/risk-profiles?limit=2")), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, _, rest) = send(
        c.get(format!("{http}/v1/risk-profiles?limit=2&cursor={cursor}")),
        None,
    )
    .await;
    assert_eq!(rest["items"][0]["user_id"], "carol");
    assert_eq!(rest["next_cursor"], Value::Null);
    let (status, headers, bob) = send(c.get(format!("{http}/v1/risk-profiles/bob")), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bob["exposure_limit_usdt"], "20000");
    assert_eq!(headers["etag"], "\"1\"");
    let (status, _, p) = send(c.get(format!("{http}/v1/risk-profiles/nobody")), None).await;
    assert_eq!(
        (status, p["status"].as_i64()),
        (StatusCode::NOT_FOUND, Some(404))
    );
    let (status, _, p) = send(
        c.patch(format!("{http}/v1/risk-profiles/bob"))
            .header("If-Match", "\"7\""),
        Some(json!({"risk_score": "50"})),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{p}");
    assert_eq!(p["field"], "If-Match");
    let (status, headers, p) = send(
        c.patch(format!("{http}/v1/risk-profiles/bob"))
            .header("If-Match", "\"1\""),
        Some(json!({"risk_score": "50", "kyc_level": "l1"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(
        (p["risk_score"].as_str(), p["kyc_level"].as_str()),
        (Some("50"), Some("L1"))
    );
    assert_eq!(headers["etag"], "\"2\"");
    let (status, _, p) = send(
        c.patch(format!("{http}/v1/risk-profiles/bob")),
        Some(json!({"max_leverage": "0"})),
    )
    .await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("max_leverage"))
    );
    let (status, _, p) = send(
        c.patch(format!("{http}/v1/risk-profiles/bob")),
        Some(json!({"frozen": "yes"})),
    )
    .await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("frozen")),
        "{p}"
    );
    let (status, _, p) = send(
        c.patch(format!("{http}/v1/risk-profiles/bob")),
        Some(json!({"colour": "red"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");

    // Rules.
    let (status, _, rule) = send(c.post(format!("{http}/v1/risk-rules")), Some(tiny())).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = rule["id"].as_i64().unwrap();
    let (status, _, p) = send(c.post(format!("{http}/v1/risk-rules")), Some(tiny())).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::CONFLICT, Some("name"))
    );
    let mut bad = tiny();
    bad["name"] = json!("other");
    bad["metric"] = json!("order_colour");
    let (status, _, p) = send(c.post(format!("{http}/v1/risk-rules")), Some(bad)).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("metric"))
    );
    let (status, _, p) = send(
        c.patch(format!("{http}/v1/risk-rules/{id}")),
        Some(json!({"threshold": "a thousand"})),
    )
    .await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("threshold"))
    );
    assert!(p["detail"].as_str().unwrap().contains("a thousand"));
    let (status, _, p) = send(
        c.patch(format!("{http}/v1/risk-rules/{id}"))
            .header("If-Match", "\"1\""),
        Some(json!({"symbol": "ETHUSDT", "active": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(
        (p["symbol"].as_str(), p["version"].as_i64()),
        (Some("ETHUSDT"), Some(2))
    );
    assert!(s
        .engine
        .config()
        .rules
        .rules()
        .iter()
        .any(|r| r.id.as_str() == "tiny" && !r.active));
    let (status, _, _) = send(
        c.patch(format!("{http}/v1/risk-rules/{id}"))
            .header("If-Match", "\"1\""),
        Some(json!({"active": true})),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, _, p) = send(c.get(format!("{http}/v1/risk-rules/{id}")), None).await;
    assert_eq!((status, p["name"].as_str()), (StatusCode::OK, Some("tiny")));
    let (status, _, _) = send(c.get(format!("{http}/v1/risk-rules/99999")), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, p) = send(c.get(format!("{http}/v1/risk-rules/abc")), None).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("path"))
    );
    let (status, _, page) = send(
        c.get(format!("{http}/v1/risk-rules?symbol=ETHUSDT&active=false")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (status, _, p) = send(c.get(format!("{http}/v1/risk-rules?limit=0")), None).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );
    let (status, _, p) = send(
        c.get(format!("{http}/v1/risk-rules?symbol=BTC%00USDT")),
        None,
    )
    .await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("symbol"))
    );
    let (status, _, p) = send(c.get(format!("{http}/v1/risk-profiles/al%00ice")), None).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("user_id"))
    );
    let (status, _, p) = send(c.get(format!("{http}/v1/risk-rules?cursor=x")), None).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("cursor"))
    );

    // Tiers.
    let (status, _, p) = send(
        c.post(format!("{http}/v1/margin-tiers")),
        Some(json!({"symbol": "SOLUSDT", "tier": 1, "maintenance_margin_pct": "1", "max_leverage": "50"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["max_notional"], Value::Null);
    let sol = s.engine.config();
    let sol = sol.ladder(&risk_core::ids::Symbol::new("SOLUSDT"));
    assert_eq!(sol.tiers()[0].maintenance_rate.get().to_string(), "0.01");
    let (status, _, p) = send(
        c.post(format!("{http}/v1/margin-tiers")),
        Some(json!({"symbol": "SOLUSDT", "tier": 2, "maintenance_margin_pct": "2", "max_leverage": "20"})),
    )
    .await;
    assert_eq!(
        (status, p["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("margin_tiers[SOLUSDT tier 1].max_notional")
        ),
        "{p}"
    );
    let (status, _, p) = send(c.get(format!("{http}/v1/margin-tiers/{}", 1)), None).await;
    assert_eq!((status, p["symbol"].clone()), (StatusCode::OK, Value::Null));
    let (status, _, _) = send(c.get(format!("{http}/v1/margin-tiers/424242")), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, page) = send(c.get(format!("{http}/v1/margin-tiers?symbol=*")), None).await;
    assert_eq!(
        (status, page["items"].as_array().unwrap().len()),
        (StatusCode::OK, 2)
    );

    // Health, docs.
    let r = c.get(format!("{http}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ready: Value = c
        .get(format!("{http}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["config_version"], s.live.version());
    let api: Value = c
        .get(format!("{http}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/risk-profiles/{user_id}",
        "/v1/risk-rules/{id}",
        "/v1/margin-tiers",
        "/readyz",
    ] {
        assert!(api["paths"][path].is_object(), "{path}");
    }
    let schemas = &api["components"]["schemas"];
    let pattern =
        |schema: &str, field: &str| schemas[schema]["properties"][field]["pattern"].clone();
    assert_eq!(
        pattern("NewTier", "max_leverage"),
        r"^[1-9][0-9]{0,19}(\.[0-9]{1,8})?$"
    );
    assert_eq!(
        pattern("ProfilePatch", "exposure_limit_usdt"),
        r"^(0|[1-9][0-9]{0,19})(\.[0-9]{1,8})?$"
    );
    assert_eq!(
        pattern("NewRule", "threshold"),
        r"^-?(0|[1-9][0-9]{0,19})(\.[0-9]{1,8})?$"
    );
    assert_eq!(
        pattern("TierPatch", "maintenance_margin_pct"),
        r"^(100(\.0{1,4})?|(0|[1-9][0-9]?)(\.[0-9]{1,4})?)$"
    );
    let docs = c.get(format!("{http}/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));

    // Every committed write is audited with the token's name.
    let audit = s.live.store().audit(100).await.unwrap();
    assert!(audit
        .iter()
        .all(|a| a.token_name == "ops" || a.token_name == "seed"));
    assert_eq!(audit.len(), 5, "{audit:#?}"); // seed, 1 profile, 1 rule + 1 patch, 1 tier
}

/// A write through one server is in force on the other within one second.
async fn propagation(url: String) {
    let a = start(&url).await;
    let b = start(&url).await;
    assert_eq!(a.live.version(), b.live.version());
    let started = Instant::now();
    let (status, _, _) = send(
        client().post(format!("{}/v1/risk-rules", a.http)),
        Some(tiny()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = send(
        client().patch(format!("{}/v1/risk-profiles/alice", a.http)),
        Some(json!({"frozen": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let target = a.live.version();
    while b.live.version() < target {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not propagated within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("propagated in {:?}", started.elapsed());
    assert_eq!(*b.engine.config(), *a.engine.config());
    assert!(b
        .engine
        .config()
        .rules
        .rules()
        .iter()
        .any(|r| r.id.as_str() == "tiny"));
    let r = grpc_check(b.grpc, "p-1", "0.1").await;
    assert_eq!(r.reject_reason(), pb::RejectReason::UserFrozen);
}

/// PostgreSQL: when the LISTEN connection drops, the follower reconnects and reloads, so
/// a write made while it was down is in force on the other server too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_listener_reconnects_and_reloads() {
    use sqlx::Connection as _;
    let url = common::postgres_url().await;
    let schema = url.rsplit_once("search_path%3D").unwrap().1.to_owned();
    let a = start(&url).await;
    let b = start(&url).await;
    let mut admin = sqlx::PgConnection::connect(common::PG_URL).await.unwrap();
    // Wait for the two listeners to be up, then cut them both.
    let listening = format!(
        "SELECT pid FROM pg_stat_activity WHERE application_name = '{schema}' AND query ILIKE 'LISTEN%'"
    );
    let started = Instant::now();
    let pids: Vec<i32> = loop {
        let pids: Vec<i32> = sqlx::query_scalar(&listening)
            .fetch_all(&mut admin)
            .await
            .unwrap();
        if pids.len() >= 2 {
            break pids;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "listeners not up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for pid in pids.iter().copied() {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let (status, _, _) = send(
        client().patch(format!("{}/v1/risk-profiles/alice", a.http)),
        Some(json!({"frozen": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let target = a.live.version();
    let written = Instant::now();
    while b.live.version() < target {
        assert!(
            written.elapsed() < Duration::from_secs(5),
            "no reload after the reconnect"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "in force on the other server {:?} after the write",
        written.elapsed()
    );
    let r = grpc_check(b.grpc, "r-1", "0.1").await;
    assert_eq!(r.reject_reason(), pb::RejectReason::UserFrozen);
    drop((a, b));
    common::drop_postgres(&url).await;
}

/// 1,000 concurrent PATCHes (valid and invalid, to a tier and a rule), spread over two
/// servers on one database: afterwards both engines run on exactly the config the store
/// holds, at the store's version.
async fn concurrent_patches(url: String) {
    let a = start(&url).await;
    let b = start(&url).await;
    let tier2 = tier_row(&a.http, "BTCUSDT", 2).await;
    let (_, _, rule) = send(
        client().post(format!("{}/v1/risk-rules", a.http)),
        Some(tiny()),
    )
    .await;
    let c = client();
    let mut tasks = Vec::new();
    for i in 0..1_000_u32 {
        let c = c.clone();
        let http = if i % 3 == 0 {
            b.http.clone()
        } else {
            a.http.clone()
        };
        let (tier_id, rule_id) = (tier2["id"].clone(), rule["id"].clone());
        tasks.push(tokio::spawn(async move {
            // Tier 1's rate is 0.4 %, tier 3's 1 %: 0.45 to 0.95 are valid, 0.05 to 0.35 not.
            let (path, body) = if i % 2 == 0 {
                let pct = format!("0.{}5", i % 10);
                (
                    format!("{http}/v1/margin-tiers/{tier_id}"),
                    json!({"maintenance_margin_pct": pct}),
                )
            } else {
                (
                    format!("{http}/v1/risk-rules/{rule_id}"),
                    json!({"threshold": format!("{}", 1000 + i)}),
                )
            };
            let resp = c
                .patch(path)
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .expect("answer");
            resp.status()
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::UNPROCESSABLE_ENTITY => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok + refused, 1_000);
    assert!(refused > 0 && ok > 500, "ok {ok}, refused {refused}");
    let snap = a.live.store().snapshot(&a.engine.config()).await.unwrap();
    // The writer's own engine is current at once; the other follows within a second.
    assert_eq!(a.live.version().max(b.live.version()), snap.version);
    let started = Instant::now();
    for s in [&a, &b] {
        while s.live.version() < snap.version {
            assert!(started.elapsed() < Duration::from_secs(1), "not caught up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(s.live.version(), snap.version);
        assert_eq!(*s.engine.config(), snap.config);
    }
}

/// An account that arrives through an engine event after the load (with a profile of its
/// own) runs on its user's stored profile within the re-assert period.
async fn late_accounts_get_the_stored_profile(url: String) {
    use risk_core::engine::{AccountEvent, EngineEvent};
    let s = start(&url).await;
    let (status, _, _) = send(
        client().patch(format!("{}/v1/risk-profiles/alice", s.http)),
        Some(json!({"frozen": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let account = risk_core::ids::AccountId::new("acc-alice-2");
    s.engine
        .apply(&EngineEvent::Account {
            account_id: account.clone(),
            seq: Seq::lit(1),
            event: AccountEvent::ProfileUpsert {
                user_id: risk_core::ids::UserId::new("alice"),
                profile: risk_core::account::RiskProfile::default(),
            },
        })
        .unwrap();
    assert!(!s.engine.account(&account).unwrap().0.profile.frozen);
    let started = Instant::now();
    while !s.engine.account(&account).unwrap().0.profile.frozen {
        assert!(
            started.elapsed() < risk_adapters::store::live::REASSERT_PROFILES_EVERY * 2,
            "stored profile not re-asserted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (profile, seq) = s.engine.account(&account).unwrap();
    assert_eq!((profile.profile.kyc_level.as_str(), seq), ("L2", 1));
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
        }
    };
}

both_backends!(
    acceptance,
    routes,
    propagation,
    concurrent_patches,
    late_accounts_get_the_stored_profile,
);

/// The real binary: the acceptance steps, then `kill -9` and a restart on the same
/// database: all three changes are still in force.
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
            &["--refresh-marks-ms", "500", "--log", "warn"],
        )
    };
    let http = format!("http://127.0.0.1:{http_port}");
    let grpc: SocketAddr = format!("127.0.0.1:{grpc_port}").parse().unwrap();
    let ready = |http: String| async move {
        for _ in 0..200 {
            if let Ok(r) = reqwest::get(format!("{http}/readyz")).await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("risk-server not ready in 10 s");
    };

    let mut child = spawn();
    ready(http.clone()).await;
    let (status, _, _) = send(client().post(format!("{http}/v1/risk-rules")), Some(tiny())).await;
    assert_eq!(status, StatusCode::CREATED);
    let r = grpc_check(grpc, "k-1", "0.1").await;
    assert_eq!(
        r.reject_reason(),
        pb::RejectReason::RiskRuleViolation,
        "{r:?}"
    );
    assert!(r.rule_hits.iter().any(|h| h == "tiny"));
    let tier2 = tier_row(&http, "BTCUSDT", 2).await;
    let (status, _, _) = send(
        client().patch(format!("{http}/v1/margin-tiers/{}", tier2["id"])),
        Some(json!({"maintenance_margin_pct": "0.1"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = send(
        client().patch(format!("{http}/v1/risk-profiles/alice")),
        Some(json!({"frozen": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r = grpc_check(grpc, "k-2", "0.1").await;
    assert_eq!(r.reject_reason(), pb::RejectReason::UserFrozen);

    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");

    let _child = spawn();
    ready(http.clone()).await;
    let r = grpc_check(grpc, "k-3", "0.1").await;
    assert_eq!(r.reject_reason(), pb::RejectReason::UserFrozen, "{r:?}");
    let r = grpc_check_as(grpc, "carol", "k-4", "0.1").await;
    assert_eq!(
        r.reject_reason(),
        pb::RejectReason::RiskRuleViolation,
        "{r:?}"
    );
    assert!(r.rule_hits.iter().any(|h| h == "tiny"), "{r:?}");
    assert_eq!(tier_row(&http, "BTCUSDT", 2).await, tier2);
    let (_, _, alice) = send(client().get(format!("{http}/v1/risk-profiles/alice")), None).await;
    assert_eq!(alice["frozen"], true);
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

/// While the Kafka consumers have not caught up, `/readyz` answers 503 naming why, as the
/// gRPC checks answer `STALE_DATA`.
#[cfg(feature = "kafka")]
#[tokio::test]
async fn readyz_is_503_while_kafka_is_loading() {
    use risk_adapters::kafka::{IngestStatus, KafkaCheckHooks};
    let hooks: Arc<dyn CheckHooks> = Arc::new(KafkaCheckHooks {
        ingest: Some(Arc::new(IngestStatus::default())),
        publisher: None,
    });
    let s = start_with(&common::sqlite_url(), Some(hooks)).await;
    let r = reqwest::get(format!("{}/readyz", s.http)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("loading from Kafka")),
        "{problem}"
    );
    let check = grpc_check(s.grpc, "a-0", "0.1").await;
    assert_eq!(
        check.reject_reason(),
        pb::RejectReason::StaleData,
        "{check:?}"
    );
}
