//! The admin HTTP API on axum, beside gRPC on its own port.
//!
//! | Route | |
//! |---|---|
//! | `GET /v1/risk-profiles`, `GET/PATCH /v1/risk-profiles/{user_id}` | [`admin`] |
//! | `GET/POST /v1/risk-rules`, `GET/PATCH /v1/risk-rules/{id}` | [`admin`] |
//! | `GET/POST /v1/margin-tiers`, `GET/PATCH /v1/margin-tiers/{id}` | [`admin`] |
//! | `GET/POST /v1/webhooks`, `DELETE /v1/webhooks/{id}`, `GET /v1/webhooks/{id}/deliveries` | `webhook::api` (feature `webhooks`) |
//! | `GET /healthz`, `GET /readyz` | [`health`] |
//! | `GET /metrics` | [`metrics`] (Prometheus text) |
//! | `GET /openapi.json`, `GET /docs` | [`openapi`], Swagger UI served from the binary |
//! | `GET /health`, `GET /risk-report/{account_login}`, `GET /risk/user/{user_id}`, `GET /risk/challenge/{challenge_id}`, `GET /risk/accounts` | [`signal`]: the prop-firm risk signals |
//! | `POST /v1/accounts`, `POST /v1/trades`, `POST /admin/update-config` | [`signal`]: ingestion and settings (admin) |
//!
//! It converts and transports: validation is the core's, run by the store inside each
//! write's transaction ([`crate::store`]).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::store::live::LiveConfig;

pub mod admin;
pub mod auth;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod signal;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The store and the engine it feeds.
    pub live: Arc<LiveConfig>,
    /// Who may use the admin routes.
    pub admin: auth::AdminAccess,
    /// The metrics (also check hooks of the gRPC service).
    pub metrics: Arc<metrics::Metrics>,
    /// Check hooks that gate readiness (the Kafka consumers): `/readyz` answers 503 while
    /// their [`not_ready`](crate::grpc::service::CheckHooks::not_ready) gives a reason.
    pub readiness: Option<Arc<dyn crate::grpc::service::CheckHooks>>,
    /// The webhook subscriptions and deliveries (`None`: the webhook routes answer 404).
    #[cfg(feature = "webhooks")]
    pub webhooks: Option<Arc<crate::webhook::Webhooks>>,
    /// The risk-signal service (its routes answer 503 without it).
    pub signal: Option<Arc<crate::signal::SignalService>>,
}

/// The router and the OpenAPI document generated from its handlers. Request bodies are
/// limited to 64 KiB, except the ingestion routes' ([`signal::MAX_INGEST_BYTES`]).
pub fn router_and_api(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let routes = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(admin::list_profiles))
        .routes(routes!(admin::get_profile, admin::patch_profile))
        .routes(routes!(admin::list_rules, admin::create_rule))
        .routes(routes!(admin::get_rule, admin::patch_rule))
        .routes(routes!(admin::list_tiers, admin::create_tier))
        .routes(routes!(admin::get_tier, admin::patch_tier))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(signal::health))
        .routes(routes!(signal::risk_report))
        .routes(routes!(signal::risk_user))
        .routes(routes!(signal::risk_challenge))
        .routes(routes!(signal::risk_accounts))
        .routes(routes!(signal::update_config));
    #[cfg(feature = "webhooks")]
    let routes = {
        use crate::webhook::api;
        routes
            .routes(routes!(api::list_subscriptions, api::create_subscription))
            .routes(routes!(api::delete_subscription))
            .routes(routes!(api::list_deliveries))
    };
    let (router, mut api) = routes.with_state(state.clone()).split_for_parts();
    let (ingest, ingest_api) = OpenApiRouter::new()
        .routes(routes!(signal::post_trades))
        .routes(routes!(signal::post_accounts))
        .with_state(state)
        .split_for_parts();
    api.merge(ingest_api);
    utoipa::Modify::modify(&openapi::CoreNames, &mut api);
    utoipa::Modify::modify(&openapi::TextForms, &mut api);
    let router = router
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .merge(
            ingest
                .layer(axum::extract::DefaultBodyLimit::max(
                    signal::MAX_INGEST_BYTES,
                ))
                .layer(tower_http::limit::RequestBodyLimitLayer::new(
                    signal::MAX_INGEST_BYTES,
                )),
        );
    (router, api)
}

/// The whole service: the API, `/openapi.json` and Swagger UI at `/docs`.
pub fn router(state: AppState) -> Router {
    let (router, api) = router_and_api(state);
    router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Serves `state` on `listener` until `shutdown` completes.
///
/// # Errors
/// The listener's I/O error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
