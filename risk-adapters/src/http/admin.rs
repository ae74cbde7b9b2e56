//! The `/v1` admin routes: risk profiles, risk rules and margin tiers.
//!
//! Every route needs an admin bearer token. Lists page by id (`limit`, `cursor`: the
//! `next_cursor` of the previous page) and rules and tiers filter by `symbol` (`*` is the
//! default ladder) and `active`. A single object comes with an `ETag` of its version; a
//! `PATCH` with `If-Match` answers 412 when the object has moved on. A write is validated
//! by the core in the store's transaction (422 naming the field when refused) and is in
//! force for the next check once it answers.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{ETAG, IF_MATCH, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use super::problem::Problem;
use super::AppState;
use crate::store::{
    ListQuery, NewRule, NewTier, ProfilePatch, ProfileRow, RulePatch, RuleRow, StoreError,
    TierPatch, TierRow,
};

/// The largest page.
pub const MAX_LIMIT: u32 = 1_000;
/// The page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 100;

/// Paging of a list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Rows per page, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Paging and filters of the rule and tier lists.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterParams {
    /// Rows per page, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only this symbol (`*`: the default ladder's tiers).
    pub symbol: Option<String>,
    /// Only active (`true`) or inactive (`false`) rows.
    pub active: Option<bool>,
}

/// A text parameter: no control characters (a NUL cannot be stored, and no id holds one).
fn text_param(field: &str, value: String) -> Result<String, Problem> {
    if value.chars().any(char::is_control) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("{field} must not contain control characters"),
        )
        .field(field));
    }
    Ok(value)
}

fn list_query(
    limit: Option<u32>,
    cursor: Option<&str>,
    symbol: Option<String>,
    active: Option<bool>,
) -> Result<ListQuery, Problem> {
    let symbol = symbol.map(|s| text_param("symbol", s)).transpose()?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("limit must be between 1 and {MAX_LIMIT}, not {limit}"),
        )
        .field("limit"));
    }
    let after_id = cursor
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    "cursor must be the next_cursor of a previous page",
                )
                .field("cursor")
            })
        })
        .transpose()?;
    Ok(ListQuery {
        limit,
        after_id,
        symbol,
        active,
    })
}

macro_rules! page {
    ($name:ident, $row:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            /// The rows, by id.
            pub items: Vec<$row>,
            /// Pass as `cursor` for the next page; `null` on the last page.
            pub next_cursor: Option<String>,
        }

        impl $name {
            fn of(items: Vec<$row>, limit: u32) -> Self {
                let full = u32::try_from(items.len()).is_ok_and(|n| n >= limit);
                let next_cursor = items.last().filter(|_| full).map(|r| r.id.to_string());
                Self { items, next_cursor }
            }
        }
    };
}

page!(ProfilePage, ProfileRow, "A page of risk profiles.");
page!(RulePage, RuleRow, "A page of risk rules.");
page!(TierPage, TierRow, "A page of margin tiers.");

/// The `If-Match` version: `"3"` or `3`; `*` (or no header) matches any.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Problem> {
    let Some(value) = headers.get(IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                "If-Match must be the ETag of the object (its version, e.g. \"3\") or *",
            )
            .field("If-Match")
        })
}

fn with_etag(status: StatusCode, version: i64, body: impl Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(ETAG, v);
    }
    response
}

fn created(location: String, version: i64, body: impl Serialize) -> Response {
    let mut response = with_etag(StatusCode::CREATED, version, body);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}

/// Runs a write through the live config and counts it by route and outcome.
async fn write<T, F, Fut>(
    state: &AppState,
    route: &'static str,
    ok: StatusCode,
    f: F,
) -> Result<T, Problem>
where
    F: FnOnce(std::sync::Arc<dyn crate::store::Store>) -> Fut,
    Fut: std::future::Future<Output = Result<crate::store::Committed<T>, StoreError>>,
{
    let result = state.live.write(f).await.map_err(Problem::from);
    let status = result.as_ref().map_or_else(|p| p.status, |_| ok.as_u16());
    state.metrics.admin_write(route, status);
    result
}

const PROBLEM: &str = "application/problem+json";

/// Lists risk profiles.
#[utoipa::path(get, path = "/v1/risk-profiles", tag = "risk-profiles",
    params(PageParams),
    responses(
        (status = 200, description = "A page of profiles", body = ProfilePage),
        (status = 400, description = "Bad paging", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn list_profiles(
    _admin: Admin,
    State(state): State<AppState>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<ProfilePage>, Problem> {
    let Query(p) = params?;
    let q = list_query(p.limit, p.cursor.as_deref(), None, None)?;
    let rows = state.live.store().list_profiles(&q).await?;
    Ok(Json(ProfilePage::of(rows, q.limit)))
}

/// One user's risk profile.
#[utoipa::path(get, path = "/v1/risk-profiles/{user_id}", tag = "risk-profiles",
    params(("user_id" = String, Path, description = "The user")),
    responses(
        (status = 200, description = "The profile; ETag is its version", body = ProfileRow),
        (status = 400, description = "Malformed user id", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No profile for this user", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn get_profile(
    _admin: Admin,
    State(state): State<AppState>,
    user_id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(user_id) = user_id?;
    let user_id = text_param("user_id", user_id)?;
    let row = state.live.store().profile(&user_id).await?;
    Ok(with_etag(StatusCode::OK, row.version, row))
}

/// Changes a user's risk profile; absent fields keep their value. In force for the next
/// check of every account of the user.
#[utoipa::path(patch, path = "/v1/risk-profiles/{user_id}", tag = "risk-profiles",
    params(
        ("user_id" = String, Path, description = "The user"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the profile changed since"),
    ),
    request_body = ProfilePatch,
    responses(
        (status = 200, description = "The profile as stored", body = ProfileRow),
        (status = 400, description = "Malformed request", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No profile for this user", body = Problem, content_type = PROBLEM),
        (status = 412, description = "The profile changed since the ETag given", body = Problem, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Refused by the core; nothing changed", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn patch_profile(
    admin: Admin,
    State(state): State<AppState>,
    user_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<ProfilePatch>, JsonRejection>,
) -> Result<Response, Problem> {
    let Path(user_id) = user_id?;
    let user_id = text_param("user_id", user_id)?;
    let if_match = if_match(&headers)?;
    let Json(patch) = body?;
    let route = "PATCH /v1/risk-profiles/{user_id}";
    let ctx = state.live.ctx(route, &admin.0, if_match);
    let row = write(&state, route, StatusCode::OK, |s| async move {
        s.patch_profile(&user_id, &patch, &ctx).await
    })
    .await?;
    Ok(with_etag(StatusCode::OK, row.version, row))
}

/// Lists risk rules.
#[utoipa::path(get, path = "/v1/risk-rules", tag = "risk-rules",
    params(FilterParams),
    responses(
        (status = 200, description = "A page of rules", body = RulePage),
        (status = 400, description = "Bad paging or filter", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn list_rules(
    _admin: Admin,
    State(state): State<AppState>,
    params: Result<Query<FilterParams>, QueryRejection>,
) -> Result<Json<RulePage>, Problem> {
    let Query(p) = params?;
    let q = list_query(p.limit, p.cursor.as_deref(), p.symbol, p.active)?;
    let rows = state.live.store().list_rules(&q).await?;
    Ok(Json(RulePage::of(rows, q.limit)))
}

/// Adds a rule; in force for the next check.
#[utoipa::path(post, path = "/v1/risk-rules", tag = "risk-rules",
    request_body = NewRule,
    responses(
        (status = 201, description = "The rule as stored, with its id", body = RuleRow),
        (status = 400, description = "Malformed request", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 409, description = "A rule with this name exists", body = Problem, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Refused by the core; nothing changed", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn create_rule(
    admin: Admin,
    State(state): State<AppState>,
    body: Result<Json<NewRule>, JsonRejection>,
) -> Result<Response, Problem> {
    let Json(new) = body?;
    let route = "POST /v1/risk-rules";
    let ctx = state.live.ctx(route, &admin.0, None);
    let row = write(&state, route, StatusCode::CREATED, |s| async move {
        s.create_rule(&new, &ctx).await
    })
    .await?;
    Ok(created(
        format!("/v1/risk-rules/{}", row.id),
        row.version,
        row,
    ))
}

/// One rule.
#[utoipa::path(get, path = "/v1/risk-rules/{id}", tag = "risk-rules",
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "The rule; ETag is its version", body = RuleRow),
        (status = 400, description = "Malformed id", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such rule", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn get_rule(
    _admin: Admin,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(id) = id?;
    let row = state.live.store().rule(id).await?;
    Ok(with_etag(StatusCode::OK, row.version, row))
}

/// Changes a rule; absent fields keep their value, `null` removes a scope.
#[utoipa::path(patch, path = "/v1/risk-rules/{id}", tag = "risk-rules",
    params(
        ("id" = i64, Path, description = "The rule's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the rule changed since"),
    ),
    request_body = RulePatch,
    responses(
        (status = 200, description = "The rule as stored", body = RuleRow),
        (status = 400, description = "Malformed request", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such rule", body = Problem, content_type = PROBLEM),
        (status = 412, description = "The rule changed since the ETag given", body = Problem, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Refused by the core; nothing changed", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn patch_rule(
    admin: Admin,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<RulePatch>, JsonRejection>,
) -> Result<Response, Problem> {
    let Path(id) = id?;
    let if_match = if_match(&headers)?;
    let Json(patch) = body?;
    let route = "PATCH /v1/risk-rules/{id}";
    let ctx = state.live.ctx(route, &admin.0, if_match);
    let row = write(&state, route, StatusCode::OK, |s| async move {
        s.patch_rule(id, &patch, &ctx).await
    })
    .await?;
    Ok(with_etag(StatusCode::OK, row.version, row))
}

/// Lists margin tiers.
#[utoipa::path(get, path = "/v1/margin-tiers", tag = "margin-tiers",
    params(FilterParams),
    responses(
        (status = 200, description = "A page of tiers", body = TierPage),
        (status = 400, description = "Bad paging or filter", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn list_tiers(
    _admin: Admin,
    State(state): State<AppState>,
    params: Result<Query<FilterParams>, QueryRejection>,
) -> Result<Json<TierPage>, Problem> {
    let Query(p) = params?;
    let q = list_query(p.limit, p.cursor.as_deref(), p.symbol, p.active)?;
    let rows = state.live.store().list_tiers(&q).await?;
    Ok(Json(TierPage::of(rows, q.limit)))
}

/// Adds a tier to a ladder; the ladder it makes must pass the core's checks.
#[utoipa::path(post, path = "/v1/margin-tiers", tag = "margin-tiers",
    request_body = NewTier,
    responses(
        (status = 201, description = "The tier as stored, with its id", body = TierRow),
        (status = 400, description = "Malformed request", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The ladder has a tier with this number", body = Problem, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Refused by the core; nothing changed", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn create_tier(
    admin: Admin,
    State(state): State<AppState>,
    body: Result<Json<NewTier>, JsonRejection>,
) -> Result<Response, Problem> {
    let Json(new) = body?;
    let route = "POST /v1/margin-tiers";
    let ctx = state.live.ctx(route, &admin.0, None);
    let row = write(&state, route, StatusCode::CREATED, |s| async move {
        s.create_tier(&new, &ctx).await
    })
    .await?;
    Ok(created(
        format!("/v1/margin-tiers/{}", row.id),
        row.version,
        row,
    ))
}

/// One tier.
#[utoipa::path(get, path = "/v1/margin-tiers/{id}", tag = "margin-tiers",
    params(("id" = i64, Path, description = "The tier's id")),
    responses(
        (status = 200, description = "The tier; ETag is its version", body = TierRow),
        (status = 400, description = "Malformed id", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such tier", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn get_tier(
    _admin: Admin,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(id) = id?;
    let row = state.live.store().tier(id).await?;
    Ok(with_etag(StatusCode::OK, row.version, row))
}

/// Changes a tier; the ladder it makes must pass the core's checks.
#[utoipa::path(patch, path = "/v1/margin-tiers/{id}", tag = "margin-tiers",
    params(
        ("id" = i64, Path, description = "The tier's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the tier changed since"),
    ),
    request_body = TierPatch,
    responses(
        (status = 200, description = "The tier as stored", body = TierRow),
        (status = 400, description = "Malformed request", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such tier", body = Problem, content_type = PROBLEM),
        (status = 412, description = "The tier changed since the ETag given", body = Problem, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Refused by the core; nothing changed", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn patch_tier(
    admin: Admin,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<TierPatch>, JsonRejection>,
) -> Result<Response, Problem> {
    let Path(id) = id?;
    let if_match = if_match(&headers)?;
    let Json(patch) = body?;
    let route = "PATCH /v1/margin-tiers/{id}";
    let ctx = state.live.ctx(route, &admin.0, if_match);
    let row = write(&state, route, StatusCode::OK, |s| async move {
        s.patch_tier(id, &patch, &ctx).await
    })
    .await?;
    Ok(with_etag(StatusCode::OK, row.version, row))
}
