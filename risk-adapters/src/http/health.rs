//! `/healthz` (the process answers) and `/readyz` (the store answers and its config is
//! in force).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::Problem;
use super::AppState;

/// A health answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: String,
    /// The store's backend (`/readyz` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The config version in force (`/readyz` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_version: Option<i64>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        backend: None,
        config_version: None,
    })
}

/// The store answers, its config is loaded and the readiness hooks (the Kafka consumers)
/// have caught up: ready for checks and admin writes.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The store does not answer, no config is loaded or the Kafka consumers are still loading", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Problem> {
    let unavailable =
        |detail: String| Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", detail);
    if !state.live.is_loaded() {
        return Err(unavailable(
            "the store's config is not loaded yet".to_owned(),
        ));
    }
    if let Some(why) = state.readiness.as_ref().and_then(|h| h.not_ready()) {
        return Err(unavailable(why.to_owned()));
    }
    state
        .live
        .store()
        .ping()
        .await
        .map_err(|e| unavailable(format!("the store does not answer: {e}")))?;
    Ok(Json(Health {
        status: "ready".to_owned(),
        backend: Some(state.live.store().backend().to_owned()),
        config_version: Some(state.live.version()),
    }))
}
