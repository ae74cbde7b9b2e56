//! The prop-firm risk-signal routes over [`crate::signal::SignalService`].
//!
//! | Route | |
//! |---|---|
//! | `GET /health` | the service answers; accounts, trades and the settings version |
//! | `GET /risk-report/{account_login}` | the account object of `risk report --format json`, plus `trading_account_login` and `risk_signals` |
//! | `GET /risk/user/{user_id}`, `GET /risk/challenge/{challenge_id}` | its `users[]` / `challenges[]` objects, plus `trading_account_login` and `risk_signals` |
//! | `GET /risk/accounts?min_level=&limit=&cursor=` | accounts at a level or above, riskiest first |
//! | `POST /v1/accounts`, `POST /v1/trades` (admin) | ingestion: `text/csv` (the export format) or a JSON array |
//! | `POST /admin/update-config` (admin) | new `metrics` / `score` settings (or the FastAPI service's flat keys); every account rescored |
//!
//! Unknown logins, users and challenges answer 404 problem+json. The fields the FastAPI
//! risk-signal service's clients read (`trading_account_login`, `risk_score`,
//! `risk_signals`, `last_trade_at`) are in all three GET answers
//! ([`crate::signal::fastapi`]).

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header::CONTENT_TYPE, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use risk_core::score::RiskLevel;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use super::problem::Problem;
use super::AppState;
use crate::signal::input::{self, Format, InputError, Parsed};
use crate::signal::{
    ConfigOutcome, IngestOutcome, Rejection, SignalCounts, SignalError, SignalService,
};

const PROBLEM: &str = "application/problem+json";

/// The largest ingestion body: 64 MiB (about 400,000 export rows).
pub const MAX_INGEST_BYTES: usize = 64 * 1024 * 1024;

/// The largest page of `/risk/accounts`.
pub const MAX_LIMIT: usize = 1_000;

impl From<SignalError> for Problem {
    fn from(e: SignalError) -> Self {
        match e {
            SignalError::Store(e) => e.into(),
            SignalError::Invalid { field, message } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("{field}: {message}"),
            )
            .field(field),
            SignalError::Compute(message) => {
                tracing::error!(error = %message, "signal computation failed");
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "overflow", message)
            }
        }
    }
}

impl From<InputError> for Problem {
    fn from(e: InputError) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string()).field("body")
    }
}

fn service(state: &AppState) -> Result<&SignalService, Problem> {
    state.signal.as_deref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "signal-off",
            "the risk-signal service is not running on this server",
        )
    })
}

/// JSON text as a response.
fn json_text(text: impl Into<String>) -> Response {
    ([(CONTENT_TYPE, "application/json")], text.into()).into_response()
}

fn not_found(what: &str, key: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("{what} `{key}` not found"),
    )
}

/// The answer of `GET /risk-report/{account_login}` (its main fields; the answer holds every
/// field of the account object of `risk report --format json`, in its order, then the
/// two fields the FastAPI risk-signal service's clients read that the contract has under
/// other names).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountAnswer {
    /// The login.
    pub account_login: String,
    /// The owner.
    pub user_id: String,
    /// The challenge, `null` when unknown.
    pub challenge_id: Option<String>,
    /// The latest close time of the account's trades, `null` without trades.
    pub last_trade_at: Option<DateTime<Utc>>,
    /// Trades scored (the window's, with a window).
    pub trades: u64,
    /// 0 to 100.
    pub risk_score: f64,
    /// `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub risk_level: String,
    /// The signals that fired, with their values and thresholds.
    pub signals: Vec<serde_json::Value>,
    /// The challenge status: `ACTIVE`, `PASSED` or `FAILED`.
    pub status: String,
    /// FastAPI: the login (= `account_login`).
    pub trading_account_login: String,
    /// FastAPI: the names of `signals`, each once, in their order.
    pub risk_signals: Vec<String>,
}

/// The answer of `GET /risk/user/{user_id}` (its main fields; the answer holds every field
/// of the `users[]` object of `risk report --format json`, then the FastAPI fields).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserAnswer {
    /// The user.
    pub user_id: String,
    /// The user's score: its riskiest account's plus the breadth points, at most 100.
    pub risk_score: f64,
    /// `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub risk_level: String,
    /// Trades scored over its accounts.
    pub trades: u64,
    /// The latest `last_trade_at` of its accounts, `null` when none has a trade.
    pub last_trade_at: Option<DateTime<Utc>>,
    /// Its accounts, riskiest first.
    pub accounts: Vec<serde_json::Value>,
    /// FastAPI: the login of its riskiest account (the first of `accounts`), the one its
    /// score starts from.
    pub trading_account_login: String,
    /// FastAPI: the signal names of its accounts, each once, sorted.
    pub risk_signals: Vec<String>,
}

/// The answer of `GET /risk/challenge/{challenge_id}`: as [`UserAnswer`], for a challenge.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChallengeAnswer {
    /// The challenge.
    pub challenge_id: String,
    /// The challenge's score: its riskiest account's plus the breadth points, at most 100.
    pub risk_score: f64,
    /// `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub risk_level: String,
    /// Trades scored over its accounts.
    pub trades: u64,
    /// The latest `last_trade_at` of its accounts, `null` when none has a trade.
    pub last_trade_at: Option<DateTime<Utc>>,
    /// Its accounts, riskiest first.
    pub accounts: Vec<serde_json::Value>,
    /// FastAPI: the login of its riskiest account (the first of `accounts`).
    pub trading_account_login: String,
    /// FastAPI: the signal names of its accounts, each once, sorted.
    pub risk_signals: Vec<String>,
}

/// The body of `POST /admin/update-config`: the tables, the FastAPI service's flat keys,
/// or both (every key optional; README-signals.md has the mapping).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigPatch {
    /// Keys of the config file's `[engine.metrics]`.
    pub metrics: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    /// Keys of the config file's `[engine.score]`.
    pub score: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    /// FastAPI: `metrics.window_size` (the last N trades by close time; `null`: the whole
    /// history).
    pub window_size: Option<u32>,
    /// FastAPI: `score.drawdown_max` (a fraction, 0.1 = 10 %).
    pub drawdown_threshold: Option<f64>,
    /// FastAPI: `score.stop_loss_ratio_min` (a fraction).
    pub stop_loss_threshold: Option<f64>,
    /// FastAPI: `score.risk_threshold` (0 to 100).
    pub risk_threshold: Option<f64>,
    /// FastAPI: `metrics.initial_balance`.
    pub initial_balance: Option<f64>,
    /// FastAPI: `metrics.hft_threshold_seconds` (whole seconds).
    pub hft_duration: Option<u32>,
    /// FastAPI: refused (422): no win-ratio signal here.
    pub win_ratio_threshold: Option<f64>,
    /// FastAPI: refused (422): no take-profit signal here.
    pub take_profit_threshold: Option<f64>,
}

/// The service answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignalHealth {
    /// `ok`.
    pub status: String,
    /// The store's backend.
    pub backend: String,
    /// Accounts with a result.
    pub accounts: u64,
    /// Trades stored.
    pub trades: u64,
    /// The signal settings version in force.
    pub config_version: i64,
}

/// The risk-signal service is up, with what it holds.
#[utoipa::path(get, path = "/health", tag = "risk-signals",
    responses(
        (status = 200, description = "Up", body = SignalHealth),
        (status = 503, description = "The service is not running", body = Problem, content_type = PROBLEM),
    ))]
pub async fn health(State(state): State<AppState>) -> Result<Json<SignalHealth>, Problem> {
    let service = service(&state)?;
    let SignalCounts {
        accounts,
        trades,
        config_version,
    } = service.counts();
    Ok(Json(SignalHealth {
        status: "ok".into(),
        backend: service.backend().into(),
        accounts,
        trades,
        config_version,
    }))
}

/// One account's result: the account object of `risk report --format json`, with the
/// FastAPI fields `trading_account_login` and `risk_signals` added last.
#[utoipa::path(get, path = "/risk-report/{account_login}", tag = "risk-signals",
    params(("account_login" = String, Path, description = "The trading account's login")),
    responses(
        (status = 200, description = "The account object", body = AccountAnswer),
        (status = 400, description = "Bad path", body = Problem, content_type = PROBLEM),
        (status = 404, description = "Unknown login", body = Problem, content_type = PROBLEM),
    ))]
pub async fn risk_report(
    State(state): State<AppState>,
    login: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(login) = login?;
    service(&state)?
        .account(&login)
        .map(json_text)
        .ok_or_else(|| not_found("account", &login))
}

/// One user's aggregate: the `users[]` object of `risk report --format json`, with the
/// FastAPI fields `trading_account_login` and `risk_signals` added last.
#[utoipa::path(get, path = "/risk/user/{user_id}", tag = "risk-signals",
    params(("user_id" = String, Path, description = "The user")),
    responses(
        (status = 200, description = "The user object", body = UserAnswer),
        (status = 400, description = "Bad path", body = Problem, content_type = PROBLEM),
        (status = 404, description = "Unknown user", body = Problem, content_type = PROBLEM),
    ))]
pub async fn risk_user(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(id) = id?;
    service(&state)?
        .user(&id)
        .map(json_text)
        .ok_or_else(|| not_found("user", &id))
}

/// One challenge's aggregate: the `challenges[]` object of `risk report --format json`,
/// with the FastAPI fields `trading_account_login` and `risk_signals` added last.
#[utoipa::path(get, path = "/risk/challenge/{challenge_id}", tag = "risk-signals",
    params(("challenge_id" = String, Path, description = "The challenge")),
    responses(
        (status = 200, description = "The challenge object", body = ChallengeAnswer),
        (status = 400, description = "Bad path", body = Problem, content_type = PROBLEM),
        (status = 404, description = "Unknown challenge", body = Problem, content_type = PROBLEM),
    ))]
pub async fn risk_challenge(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(id) = id?;
    service(&state)?
        .challenge(&id)
        .map(json_text)
        .ok_or_else(|| not_found("challenge", &id))
}

/// Filter and paging of the ranked list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RankedParams {
    /// Only accounts at this level or above: LOW (default), MEDIUM, HIGH, CRITICAL.
    pub min_level: Option<String>,
    /// Accounts per page, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of the ranked list (the schema; the handler writes the account objects' text
/// as they are).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RankedAccounts {
    /// Account answers (as `GET /risk-report/{account_login}`), riskiest first (ties by
    /// login).
    pub items: Vec<AccountAnswer>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Accounts at `min_level` or above, riskiest first: a risk desk's work list.
#[utoipa::path(get, path = "/risk/accounts", tag = "risk-signals",
    params(RankedParams),
    responses(
        (status = 200, description = "A page of account objects", body = RankedAccounts),
        (status = 400, description = "Bad level, limit or cursor", body = Problem, content_type = PROBLEM),
        (status = 503, description = "The service is not running", body = Problem, content_type = PROBLEM),
    ))]
pub async fn risk_accounts(
    State(state): State<AppState>,
    params: Result<Query<RankedParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(params) = params?;
    let bad = |field: &str, detail: String| {
        Problem::new(StatusCode::BAD_REQUEST, "malformed", detail).field(field)
    };
    let min_level = match params.min_level.as_deref() {
        None => RiskLevel::Low,
        Some(text) => text
            .parse::<RiskLevel>()
            .map_err(|e| bad("min_level", e.to_string()))?,
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}, not {limit}"),
        ));
    }
    let page = service(&state)?
        .ranked(min_level, limit, params.cursor.as_deref())
        .map_err(|e| bad("cursor", e.to_string()))?;
    let items: Vec<&str> = page.items.iter().map(AsRef::as_ref).collect();
    let cursor = page
        .next_cursor
        .map_or_else(|| "null".to_owned(), |c| format!("\"{c}\""));
    Ok(json_text(format!(
        "{{\"items\":[{}],\"next_cursor\":{cursor}}}",
        items.join(",")
    )))
}

fn format_of(headers: &HeaderMap) -> Result<Format, Problem> {
    let media = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = media
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "text/csv" => Ok(Format::Csv),
        "application/json" => Ok(Format::Json),
        _ => Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media-type",
            format!("Content-Type must be text/csv or application/json, not `{media}`"),
        )
        .field("Content-Type")),
    }
}

/// The parse's rejections and duplicates added to the ingest's.
fn answer<T>(parsed: Parsed<T>, mut out: IngestOutcome) -> IngestOutcome {
    out.duplicates += parsed.duplicates;
    out.rejected += parsed.rejected;
    let mut rejections: Vec<Rejection> = parsed.rejections;
    rejections.append(&mut out.rejections);
    rejections.truncate(crate::csv_input::MAX_KEPT_ROW_ERRORS);
    out.rejections = rejections;
    out
}

/// Ingests closed trades: a `text/csv` export (the format of the firm's exports) or a
/// JSON array of objects with the same field names. Rows whose identifier is stored
/// already are duplicates (no-ops); bad rows are rejected with their line (CSV) or index
/// (JSON) and reason, the good rows around them are stored. The trades, the results they
/// change and the outbox events of risen levels are committed in one transaction.
#[utoipa::path(post, path = "/v1/trades", tag = "risk-signals",
    request_body(content = String, description = "An export (text/csv) or a JSON array of trade objects", content_type = "text/csv",
        example = json!(",identifier,action,reason,open_price,close_price,commission,lot_size,opened_at,closed_at,pips,price_sl,price_tp,profit,swap,symbol,contract_size,profit_rate,platform,trading_account_login\n0,44000039,1,16.0,1.32536,1.32508,-0.35,0.10,2025-05-05 10:24:04.000000,2025-05-06 09:46:48.825125,2.8,1.32563,,2.80,-0.12,GBPUSD,100000.0,1.0,0,10431508\n")),
    responses(
        (status = 200, description = "Counts and rejections", body = IngestOutcome),
        (status = 400, description = "The body could not be read", body = String, content_type = "text/plain"),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Admin routes are off", body = Problem, content_type = PROBLEM),
        (status = 413, description = "The body is larger than 64 MiB", body = String, content_type = "text/plain"),
        (status = 415, description = "Neither text/csv nor application/json", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Not an export (a required column is missing) or not a JSON array", body = Problem, content_type = PROBLEM),
        (status = 503, description = "The store failed; nothing was stored", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn post_trades(
    _admin: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IngestOutcome>, Problem> {
    let service = service(&state)?;
    let format = format_of(&headers)?;
    let parsed = input::trades(&body, format)?;
    let out = service.ingest_trades(&parsed.items).await?;
    state.metrics.admin_write("POST /v1/trades", 200);
    Ok(Json(answer(parsed, out)))
}

/// Ingests accounts (`login,user_id,challenge_id[,initial_balance][,group_id]`, as CSV
/// or a JSON array). A login stored already is a duplicate (no-op); a login that so far
/// only had trades takes its owner, challenge and balance (its result is recomputed).
#[utoipa::path(post, path = "/v1/accounts", tag = "risk-signals",
    request_body(content = String, description = "An accounts file (text/csv) or a JSON array of account objects", content_type = "text/csv",
        example = json!("login,user_id,challenge_id,initial_balance\n10431508,U0001,CH-25K,25000\n")),
    responses(
        (status = 200, description = "Counts and rejections", body = IngestOutcome),
        (status = 400, description = "The body could not be read", body = String, content_type = "text/plain"),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Admin routes are off", body = Problem, content_type = PROBLEM),
        (status = 413, description = "The body is larger than 64 MiB", body = String, content_type = "text/plain"),
        (status = 415, description = "Neither text/csv nor application/json", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Not an accounts file or not a JSON array", body = Problem, content_type = PROBLEM),
        (status = 503, description = "The store failed; nothing was stored", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn post_accounts(
    _admin: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IngestOutcome>, Problem> {
    let service = service(&state)?;
    let format = format_of(&headers)?;
    let parsed = input::accounts(&body, format)?;
    let out = service.ingest_accounts(&parsed.items).await?;
    state.metrics.admin_write("POST /v1/accounts", 200);
    Ok(Json(answer(parsed, out)))
}

/// New signal settings: `{"metrics": {...}, "score": {...}}` with the keys of the config
/// file's `[engine.metrics]` and `[engine.score]` (each optional; keys not given keep
/// their value), and/or the FastAPI service's flat keys (`window_size`,
/// `drawdown_threshold`, `stop_loss_threshold`, `risk_threshold`, `initial_balance`,
/// `hft_duration`; `win_ratio_threshold` and `take_profit_threshold` have no counterpart
/// and are refused; a flat key and the setting it maps onto together are refused).
/// Validated (422 naming the key, nothing changed), stored as a new version
/// with who and when, swapped in; every stored account is rescored (its metrics
/// recomputed from the stored trades when a metric setting changed). Answers how many
/// accounts changed level.
#[utoipa::path(post, path = "/admin/update-config", tag = "risk-signals",
    request_body(content = ConfigPatch, description = "`metrics` and/or `score` tables, and/or the FastAPI keys", content_type = "application/json"),
    responses(
        (status = 200, description = "The new version and the level changes", body = ConfigOutcome),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Admin routes are off", body = Problem, content_type = PROBLEM),
        (status = 413, description = "The body is larger than 64 KiB", body = String, content_type = "text/plain"),
        (status = 415, description = "Not application/json", body = Problem, content_type = PROBLEM),
        (status = 422, description = "A key or value refused; nothing changed", body = Problem, content_type = PROBLEM),
        (status = 503, description = "The store failed; nothing changed", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn update_config(
    admin: Admin,
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ConfigOutcome>, Problem> {
    let service = service(&state)?;
    let Json(patch) = body?;
    let result = service.update_config(&patch, &admin.0).await;
    let status = result.as_ref().map_or_else(
        |e| {
            if matches!(e, SignalError::Invalid { .. }) {
                422
            } else {
                503
            }
        },
        |_| 200,
    );
    state
        .metrics
        .admin_write("POST /admin/update-config", status);
    Ok(Json(result?))
}
