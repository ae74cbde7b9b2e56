//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations, and
//! the bearer security scheme the admin routes declare.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::problem::Problem;

/// The document's fixed parts; the paths are added by the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "riskgate admin API",
        description = "Risk profiles, risk rules and margin tiers of the riskgate pre-trade \
            risk engine. Decimals are JSON strings. Errors are application/problem+json \
            (RFC 9457) naming the field at fault.",
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "risk-profiles", description = "Per-user limits and flags"),
        (name = "risk-rules", description = "Dynamic rules on check metrics"),
        (name = "margin-tiers", description = "Margin-tier ladders"),
        (name = "health", description = "Liveness, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme.
#[derive(Debug)]
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
