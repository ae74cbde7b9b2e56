//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations, and
//! the bearer security scheme the admin routes declare.

use risk_core::model::{KycLevel, RuleAction, Severity};
use risk_core::pretrade::CheckMetric;
use risk_core::rules::Operator;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
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
        (name = "webhooks", description = "Standard Webhooks subscriptions and their deliveries"),
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "risk-signals", description = "Prop-firm risk signals: trades and accounts in, per-account results, users and challenges out"),
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

/// Lists the core's names as each enumerated text field's `enum` (metric, operator,
/// severity, action, KYC level), read from the core so the document cannot drift from it.
/// Requests may spell them in any case; responses carry these spellings. Applied after the
/// router has added the handlers' schemas.
#[derive(Debug)]
pub struct CoreNames;

fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<serde_json::Value> {
    all.iter()
        .map(|v| serde_json::Value::from(name(*v)))
        .collect()
}

impl Modify for CoreNames {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let fields: [(&str, Vec<serde_json::Value>); 5] = [
            ("metric", names(CheckMetric::ALL, CheckMetric::as_str)),
            ("operator", names(Operator::ALL, Operator::as_str)),
            ("severity", names(Severity::ALL, Severity::as_str)),
            ("action", names(RuleAction::ALL, RuleAction::as_str)),
            ("kyc_level", names(KycLevel::ALL, KycLevel::as_str)),
        ];
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for schema in [
            "NewRule",
            "RulePatch",
            "RuleRow",
            "ProfilePatch",
            "ProfileRow",
        ] {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
                continue;
            };
            for (field, values) in &fields {
                if let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(*field)
                {
                    let mut values = values.clone();
                    if matches!(&property.schema_type, SchemaType::Array(types) if types.contains(&Type::Null))
                    {
                        values.push(serde_json::Value::Null);
                    }
                    property.enum_values = Some(values);
                }
            }
        }
    }
}
