//! The webhook routes: `POST /v1/webhooks`, `GET /v1/webhooks`, `DELETE /v1/webhooks/{id}`
//! and `GET /v1/webhooks/{id}/deliveries`. Admin token, as every `/v1` route; errors are
//! problem+json; a subscription's secret is never returned.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::store::DeliveryQuery;
use super::{Delivery, NewSubscription, Subscription, Webhooks};
use crate::http::admin::{PageParams, DEFAULT_LIMIT, MAX_LIMIT};
use crate::http::auth::Admin;
use crate::http::problem::Problem;
use crate::http::AppState;

const PROBLEM: &str = "application/problem+json";

/// A page of subscriptions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionPage {
    /// The subscriptions, by id.
    pub items: Vec<Subscription>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A page of deliveries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPage {
    /// The deliveries, newest first.
    pub items: Vec<Delivery>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Paging and the status filter of the deliveries.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Rows per page, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only `pending`, `delivered`, `failed` or `dead_lettered` deliveries.
    pub status: Option<String>,
}

/// The webhook tables, or 404 when this server runs without them.
fn webhooks(state: &AppState) -> Result<&Webhooks, Problem> {
    state.webhooks.as_deref().ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "webhooks-off",
            "webhooks are not enabled on this server",
        )
    })
}

fn malformed(field: &str, detail: String) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "malformed", detail).field(field)
}

fn limit(limit: Option<u32>) -> Result<u32, Problem> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(malformed(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}, not {limit}"),
        ))
    }
}

fn cursor(cursor: Option<&str>) -> Result<Option<i64>, Problem> {
    cursor
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                malformed(
                    "cursor",
                    "cursor must be the next_cursor of a previous page".to_owned(),
                )
            })
        })
        .transpose()
}

/// Subscribes a URL to events.
///
/// The URL must be `https` or `http`, without credentials or fragment, and its address
/// (or every address its host resolves to) must be public unless the server runs with
/// `--allow-private-webhooks`. Events are POSTed with the Standard Webhooks headers,
/// signed with the secret.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body = NewSubscription,
    responses(
        (status = 201, description = "The subscription (without its secret)", body = Subscription),
        (status = 400, description = "Malformed request", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 404, description = "Webhooks are not enabled", body = Problem, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid url, secret, min_level or event_types; nothing stored", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn create_subscription(
    admin: Admin,
    State(state): State<AppState>,
    body: Result<Json<NewSubscription>, JsonRejection>,
) -> Result<Response, Problem> {
    let w = webhooks(&state)?;
    let Json(new) = body?;
    let valid = new.validate(&w.guard).await;
    let result = match valid {
        Ok(valid) => w
            .store
            .create_subscription(&valid, &admin.0)
            .await
            .map_err(Problem::from),
        Err(e) => Err(Problem::from(e)),
    };
    let status = result
        .as_ref()
        .map_or_else(|p| p.status, |_| StatusCode::CREATED.as_u16());
    state.metrics.admin_write("POST /v1/webhooks", status);
    let created = result?;
    let mut response = (StatusCode::CREATED, Json(&created)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/webhooks/{}", created.id)) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(response)
}

/// Lists the subscriptions (without their secrets).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    params(PageParams),
    responses(
        (status = 200, description = "A page of subscriptions", body = SubscriptionPage),
        (status = 400, description = "Bad paging", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 404, description = "Webhooks are not enabled", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn list_subscriptions(
    _admin: Admin,
    State(state): State<AppState>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<SubscriptionPage>, Problem> {
    let w = webhooks(&state)?;
    let Query(p) = params?;
    let limit = limit(p.limit)?;
    let after = cursor(p.cursor.as_deref())?;
    let items = w.store.list_subscriptions(after, limit).await?;
    let full = u32::try_from(items.len()).is_ok_and(|n| n >= limit);
    let next_cursor = items.last().filter(|_| full).map(|s| s.id.to_string());
    Ok(Json(SubscriptionPage { items, next_cursor }))
}

/// Deletes a subscription and its deliveries: its pending deliveries are not sent.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such subscription", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn delete_subscription(
    _admin: Admin,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, Problem> {
    let w = webhooks(&state)?;
    let Path(id) = id?;
    let result = w.store.delete_subscription(id).await.map_err(Problem::from);
    let status = result
        .as_ref()
        .map_or_else(|p| p.status, |_| StatusCode::NO_CONTENT.as_u16());
    state
        .metrics
        .admin_write("DELETE /v1/webhooks/{id}", status);
    result?;
    Ok(StatusCode::NO_CONTENT)
}

/// A subscription's deliveries, newest first: status, attempts, the next attempt's time,
/// the last answer or error, and every attempt's outcome.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path, description = "The subscription's id"), DeliveryParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "Malformed id, paging or status", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No or wrong token", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such subscription", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    _admin: Admin,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    params: Result<Query<DeliveryParams>, QueryRejection>,
) -> Result<Json<DeliveryPage>, Problem> {
    let w = webhooks(&state)?;
    let Path(id) = id?;
    let Query(p) = params?;
    let limit = limit(p.limit)?;
    let before_id = cursor(p.cursor.as_deref())?;
    let status = match p.status.as_deref() {
        None => None,
        Some(s) if super::DELIVERY_STATUSES.contains(&s) => Some(s.to_owned()),
        Some(other) => {
            return Err(malformed(
                "status",
                format!(
                    "status must be one of {}, not `{}`",
                    super::DELIVERY_STATUSES.join(", "),
                    other.chars().take(50).collect::<String>()
                ),
            ))
        }
    };
    let items = w
        .store
        .deliveries(
            id,
            &DeliveryQuery {
                limit,
                before_id,
                status,
            },
        )
        .await?;
    let full = u32::try_from(items.len()).is_ok_and(|n| n >= limit);
    let next_cursor = items.last().filter(|_| full).map(|d| d.id.to_string());
    Ok(Json(DeliveryPage { items, next_cursor }))
}
