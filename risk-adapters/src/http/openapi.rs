//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations, and
//! the bearer security scheme the admin routes declare.

use risk_core::model::{KycLevel, RuleAction, Severity};
use risk_core::pretrade::CheckMetric;
use risk_core::rules::Operator;
use utoipa::openapi::schema::{Object, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

use super::problem::Problem;
use crate::store::{Bound, Column, IDENT_PATTERN, N10_4, N30_8};

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
        for schema in [
            "NewRule",
            "RulePatch",
            "RuleRow",
            "ProfilePatch",
            "ProfileRow",
        ] {
            for (field, values) in &fields {
                if let Some(property) = text_field(openapi, schema, field) {
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

/// Gives text fields the form the server takes: a `pattern` on each decimal field (from
/// its storage column, so the document follows the store) and on identifiers; for the
/// webhook routes, the event types, levels and delivery statuses as `enum`s and the
/// secret's and URL's forms. The patterns describe the canonical text; the server is more
/// lenient (a `+`, scientific notation, trailing zeros, spaces around identifiers).
/// Applied after the router has added the handlers' schemas and paths.
#[derive(Debug)]
pub struct TextForms;

/// Each decimal field: the schemas that carry it, its name, its column and its range.
const DECIMALS: &[(&[&str], &str, Column, Bound)] = &[
    (
        &["ProfilePatch"],
        "exposure_limit_usdt",
        N30_8,
        Bound::NonNegative,
    ),
    (&["ProfilePatch"], "risk_score", N10_4, Bound::UpToHundred),
    (
        &["ProfilePatch", "NewTier", "TierPatch"],
        "max_leverage",
        N30_8,
        Bound::AtLeastOne,
    ),
    (&["NewRule", "RulePatch"], "threshold", N30_8, Bound::Signed),
    (
        &["NewTier", "TierPatch"],
        "max_notional",
        N30_8,
        Bound::NonNegative,
    ),
    (
        &["NewTier", "TierPatch"],
        "maintenance_margin_pct",
        N10_4,
        Bound::UpToHundred,
    ),
];

/// Each identifier field and the schemas that carry it.
const IDENTS: &[(&[&str], &str)] = &[
    (&["NewRule"], "name"),
    (&["NewRule", "RulePatch", "NewTier"], "symbol"),
];

/// The (string) property `field` of component `schema`, if the document has it (a route
/// left out by a feature leaves its schemas out).
fn text_field<'a>(
    openapi: &'a mut utoipa::openapi::OpenApi,
    schema: &str,
    field: &str,
) -> Option<&'a mut Object> {
    let components = openapi.components.as_mut()?;
    let RefOr::T(Schema::Object(object)) = components.schemas.get_mut(schema)? else {
        return None;
    };
    match object.properties.get_mut(field)? {
        RefOr::T(Schema::Object(property)) => Some(property),
        _ => None,
    }
}

impl Modify for TextForms {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (schemas, field, column, bound) in DECIMALS {
            for schema in *schemas {
                if let Some(property) = text_field(openapi, schema, field) {
                    property.pattern = Some(column.pattern(*bound));
                }
            }
        }
        for (schemas, field) in IDENTS {
            for schema in *schemas {
                if let Some(property) = text_field(openapi, schema, field) {
                    property.pattern = Some(IDENT_PATTERN.to_owned());
                }
            }
        }
        #[cfg(feature = "webhooks")]
        webhook_forms(openapi);
    }
}

/// The webhook routes' enumerations and forms.
#[cfg(feature = "webhooks")]
fn webhook_forms(openapi: &mut utoipa::openapi::OpenApi) {
    use risk_core::score::RiskLevel;
    use utoipa::openapi::schema::ArrayItems;

    use crate::webhook::{DELIVERY_STATUSES, EVENT_TYPES, SECRET_PATTERN};

    let texts = |all: &[&str]| all.iter().map(|t| serde_json::Value::from(*t)).collect();
    if let Some(property) = text_field(openapi, "NewSubscription", "min_level") {
        property.enum_values = Some(names(RiskLevel::ALL, RiskLevel::as_str));
    }
    if let Some(property) = text_field(openapi, "NewSubscription", "secret") {
        property.pattern = Some(SECRET_PATTERN.to_owned());
    }
    if let Some(property) = text_field(openapi, "NewSubscription", "url") {
        property.pattern = Some("^[hH][tT][tT][pP][sS]?://".to_owned());
    }
    if let Some(RefOr::T(Schema::Object(object))) = openapi
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("NewSubscription"))
    {
        if let Some(RefOr::T(Schema::Array(array))) = object.properties.get_mut("event_types") {
            array.min_items = Some(1);
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                if let RefOr::T(Schema::Object(item)) = items.as_mut() {
                    item.enum_values = Some(texts(EVENT_TYPES));
                }
            }
        }
    }
    let deliveries = openapi
        .paths
        .paths
        .get_mut("/v1/webhooks/{id}/deliveries")
        .and_then(|item| item.get.as_mut())
        .and_then(|op| op.parameters.as_mut());
    for parameter in deliveries.into_iter().flatten() {
        let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() else {
            continue;
        };
        match parameter.name.as_str() {
            "status" => schema.enum_values = Some(texts(DELIVERY_STATUSES)),
            "cursor" => schema.pattern = Some("^[0-9]{1,18}$".to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::string::string_regex;

    use rust_decimal::Decimal;

    use super::{DECIMALS, IDENTS};
    use crate::store::{decimal, ident, Bound, IDENT_PATTERN};

    /// Strings matching a whole-text pattern (proptest generates whole strings and takes
    /// no anchors).
    fn generate(pattern: &str) -> proptest::string::RegexGeneratorStrategy<String> {
        let body = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$'));
        string_regex(body.expect("an anchored pattern")).expect("a valid pattern")
    }

    proptest! {
        /// Whatever a decimal field's pattern admits, the server parses into its column:
        /// the document never invites a body the store refuses for its form.
        #[test]
        fn decimal_patterns_admit_only_what_the_store_takes(
            (i, text) in (0..DECIMALS.len()).prop_flat_map(|i| {
                let (_, _, column, bound) = DECIMALS[i];
                (Just(i), generate(&column.pattern(bound)))
            })
        ) {
            let (_, field, column, bound) = DECIMALS[i];
            let parsed = decimal(field, &text, column);
            prop_assert!(parsed.is_ok(), "{field}: {text:?}: {parsed:?}");
            let Ok(value) = parsed else { return Ok(()) };
            let in_range = match bound {
                Bound::Signed => true,
                Bound::NonNegative => !value.is_sign_negative(),
                Bound::AtLeastOne => value >= Decimal::ONE,
                Bound::UpToHundred => !value.is_sign_negative() && value <= Decimal::ONE_HUNDRED,
            };
            prop_assert!(in_range, "{field}: {text:?} outside {bound:?}");
        }

        /// Whatever the identifier pattern admits is an identifier, unchanged.
        #[test]
        fn ident_pattern_admits_only_identifiers(
            text in generate(IDENT_PATTERN)
        ) {
            for (_, field) in IDENTS {
                let checked = ident(field, &text).ok();
                prop_assert_eq!(checked.as_deref(), Some(text.as_str()));
            }
        }
    }

    #[cfg(feature = "webhooks")]
    proptest! {
        /// Whatever the secret pattern admits is a secret the server takes.
        #[test]
        fn secret_pattern_admits_only_valid_secrets(
            text in generate(crate::webhook::SECRET_PATTERN)
        ) {
            let checked = crate::webhook::check_secret(&text);
            prop_assert!(checked.is_ok(), "{text:?}: {checked:?}");
        }
    }

    #[test]
    fn decimal_patterns_follow_the_columns() {
        assert_eq!(
            crate::store::N30_8.pattern(Bound::Signed),
            r"^-?(0|[1-9][0-9]{0,19})(\.[0-9]{1,8})?$"
        );
        assert_eq!(
            crate::store::N10_4.pattern(Bound::UpToHundred),
            r"^(100(\.0{1,4})?|(0|[1-9][0-9]?)(\.[0-9]{1,4})?)$"
        );
    }
}
