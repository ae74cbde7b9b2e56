//! Standard Webhooks delivery of the events in the outbox (`webhook_outbox`, written by the
//! signal service in the same transaction as the result that raised them).
//!
//! * **Subscriptions** ([`api`]): `POST /v1/webhooks`, `GET /v1/webhooks`,
//!   `DELETE /v1/webhooks/{id}` (admin token) with a `url`, a `secret` (`whsec_` + base64
//!   of 24 to 64 bytes; never returned), a `min_level` (LOW..CRITICAL) and the
//!   `event_types` wanted. `GET /v1/webhooks/{id}/deliveries` shows each delivery, its
//!   attempts and outcomes.
//! * **Fan-out** ([`store::WebhookStore::fan_out`]): the dispatcher reads new outbox rows
//!   in id order and writes one delivery per matching subscription (the event type is
//!   wanted and the event's level is at least `min_level`), in one transaction with the
//!   fan-out position. An outbox id that is missing while later ones are present may
//!   belong to a transaction still open (PostgreSQL allocates ids before commit), so the
//!   later rows are fanned out at once and the position waits for the missing id for a
//!   grace period ([`DispatchOptions::gap_grace`]) before taking it to be rolled back.
//! * **Delivery** ([`dispatch`]): a due delivery is claimed with a lease (owner and
//!   expiry in its row; `FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on
//!   SQLite), POSTed with `webhook-id` (the outbox `event_id`, the same on every attempt),
//!   `webhook-timestamp` and `webhook-signature` (signed by the `standardwebhooks` crate),
//!   and its outcome recorded, with the attempt, only if the lease is still its own. A 2xx
//!   is delivered; a network error, a timeout, a 5xx, 408 or 429 is retried with
//!   exponential backoff and jitter, never sooner than `Retry-After`, up to
//!   [`DispatchOptions::max_attempts`], then dead-lettered; any other answer fails the
//!   delivery without retry.
//! * **At least once**: the delivery rows are the state. A process killed between the
//!   outbox commit and the POST, or during it, leaves the delivery pending (or leased
//!   until its lease expires); the next dispatcher, in this process after a restart or in
//!   another instance, sends it with the same `webhook-id`. A receiver may see an event
//!   twice (killed after the POST, before the outcome was stored) and should deduplicate
//!   by `webhook-id`.
//! * **Several instances** share the work through the leases: a delivery is claimed by
//!   one dispatcher at a time; another takes it over only after the lease expired
//!   ([`DispatchOptions::lease`], twice the timeout plus 2 s), so in normal operation
//!   nothing is sent twice.
//! * **SSRF** ([`guard`]): non-public target addresses are refused, when subscribing and
//!   on every connection, unless `--allow-private-webhooks`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod api;
pub mod dispatch;
pub mod guard;
pub mod store;

pub use dispatch::{DeliveryCounters, DispatchOptions, Dispatcher, WebhookMetrics};
pub use guard::{Guard, GuardError};
pub use store::WebhookStore;

/// The event types a subscription may ask for.
pub const EVENT_TYPES: &[&str] = &[
    "account.risk_level_raised",
    "account.risk_score_exceeded",
    "account.signal_fired",
    "user.risk_level_raised",
    "challenge.risk_level_raised",
];

/// The shortest and longest secret, in bytes (Standard Webhooks: 24 to 64).
pub const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// The secrets [`check_secret`] takes, as a regular expression for the OpenAPI document:
/// `whsec_` and canonical padded base64 of 24 to 64 bytes (8 to 21 whole groups of four
/// characters and an optional last group holding one or two bytes, whose unused bits are
/// zero).
pub const SECRET_PATTERN: &str = "^whsec_(([A-Za-z0-9+/]{4}){8,21}([A-Za-z0-9+/][AQgw]==)?\
    |([A-Za-z0-9+/]{4}){8,20}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$";

/// A delivery's states, as `GET /v1/webhooks/{id}/deliveries?status=` takes them.
pub const DELIVERY_STATUSES: &[&str] = &["pending", "delivered", "failed", "dead_lettered"];

/// A new subscription, as posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where events are POSTed: `https://` (or `http://`), a public address unless the
    /// server allows private targets.
    #[schema(example = "https://hooks.example.com/riskgate")]
    pub url: String,
    /// The signing secret: `whsec_` followed by the base64 of 24 to 64 random bytes.
    /// Never returned.
    #[schema(example = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")]
    pub secret: String,
    /// The lowest event level sent: `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    #[schema(example = "HIGH")]
    pub min_level: String,
    /// The event types wanted (at least one).
    #[schema(example = json!(["account.risk_level_raised"]))]
    pub event_types: Vec<String>,
}

/// A subscription as stored (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscription {
    /// Its id.
    pub id: i64,
    /// The target URL.
    pub url: String,
    /// The lowest event level sent.
    pub min_level: String,
    /// The event types sent.
    pub event_types: Vec<String>,
    /// The admin token's name that created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// One event's delivery to one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Its id.
    pub id: i64,
    /// The subscription.
    pub subscription_id: i64,
    /// The event's `webhook-id` (the same on every attempt).
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// The account the event is about (the user or challenge id for the `user.` and
    /// `challenge.` events).
    pub account_login: String,
    /// The event's level.
    pub level: String,
    /// `pending`, `delivered`, `failed` (an answer that is not retried) or `dead_lettered`
    /// (the last attempt failed).
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt, when it got an answer.
    pub last_status_code: Option<i32>,
    /// What went wrong in the last attempt, when it did.
    pub last_error: Option<String>,
    /// When the delivery was created (the event fanned out).
    pub created_at: DateTime<Utc>,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
    /// Every attempt, first to last.
    pub attempt_log: Vec<Attempt>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub attempt: i32,
    /// When the request started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The HTTP status, when there was an answer.
    pub status_code: Option<i32>,
    /// The network error, timeout or answer body excerpt, when it failed.
    pub error: Option<String>,
    /// `delivered`, `retry`, `failed` or `dead_lettered`.
    pub outcome: String,
}

/// A subscription checked and in canonical form, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSubscription {
    /// The URL, parsed and normalized.
    pub url: String,
    /// The secret, as given.
    pub secret: String,
    /// `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub min_level: String,
    /// Known event types, without repeats, in the order given.
    pub event_types: Vec<String>,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> crate::store::StoreError {
    crate::store::StoreError::Invalid {
        field: field.to_owned(),
        message: message.to_string(),
    }
}

/// Checks a secret: `whsec_` + standard base64 of 24 to 64 bytes.
///
/// # Errors
/// [`crate::store::StoreError::Invalid`] on `secret`.
pub fn check_secret(secret: &str) -> Result<(), crate::store::StoreError> {
    let Some(body) = secret.strip_prefix("whsec_") else {
        return Err(invalid(
            "secret",
            "must start with `whsec_` followed by base64 (Standard Webhooks)",
        ));
    };
    standardwebhooks::Webhook::new(secret).map_err(|e| {
        invalid(
            "secret",
            format!("the part after `whsec_` is not standard base64: {e}"),
        )
    })?;
    // Valid padded base64 (checked above): 3 bytes per 4 characters, less the padding.
    let pad = body.bytes().rev().take_while(|b| *b == b'=').count();
    let bytes = (body.len() / 4 * 3).saturating_sub(pad);
    if !SECRET_BYTES.contains(&bytes) {
        return Err(invalid(
            "secret",
            format!(
                "must hold {} to {} bytes of key (base64 after `whsec_`), not {bytes}",
                SECRET_BYTES.start(),
                SECRET_BYTES.end()
            ),
        ));
    }
    Ok(())
}

impl NewSubscription {
    /// Checks every field (the URL with `guard`, which may resolve its host) and returns
    /// the canonical form.
    ///
    /// # Errors
    /// [`crate::store::StoreError::Invalid`] naming the field (`url`, `secret`,
    /// `min_level`, `event_types`).
    pub async fn validate(
        &self,
        guard: &Guard,
    ) -> Result<ValidSubscription, crate::store::StoreError> {
        let url = guard
            .check_url(&self.url)
            .await
            .map_err(|e| invalid("url", e))?;
        check_secret(&self.secret)?;
        let min_level: risk_core::score::RiskLevel =
            self.min_level.trim().parse().map_err(|e| {
                invalid(
                    "min_level",
                    format!("{e}; expected LOW, MEDIUM, HIGH or CRITICAL"),
                )
            })?;
        if self.event_types.is_empty() {
            return Err(invalid(
                "event_types",
                format!("name at least one of {}", EVENT_TYPES.join(", ")),
            ));
        }
        let mut event_types: Vec<String> = Vec::with_capacity(self.event_types.len());
        for (i, t) in self.event_types.iter().enumerate() {
            let Some(known) = EVENT_TYPES.iter().find(|k| **k == t.trim()) else {
                return Err(invalid(
                    &format!("event_types[{i}]"),
                    format!(
                        "unknown event type `{}`; expected one of {}",
                        t.chars().take(100).collect::<String>(),
                        EVENT_TYPES.join(", ")
                    ),
                ));
            };
            if !event_types.iter().any(|e| e == known) {
                event_types.push((*known).to_owned());
            }
        }
        Ok(ValidSubscription {
            url: url.to_string(),
            secret: self.secret.clone(),
            min_level: min_level.as_str().to_owned(),
            event_types,
        })
    }
}

/// Whether a subscription (its `min_level` and `event_types`) wants an event of
/// `event_type` at `level`. An unknown level is never sent.
#[must_use]
pub fn wants(min_level: &str, event_types: &[String], event_type: &str, level: &str) -> bool {
    use risk_core::score::RiskLevel;
    let (Ok(min), Ok(level)) = (min_level.parse::<RiskLevel>(), level.parse::<RiskLevel>()) else {
        return false;
    };
    level >= min && event_types.iter().any(|t| t == event_type)
}

/// What the webhook routes share: the tables and the address policy.
#[derive(Debug, Clone)]
pub struct Webhooks {
    /// The subscriptions and deliveries.
    pub store: std::sync::Arc<dyn WebhookStore>,
    /// The target address policy applied when subscribing.
    pub guard: Guard,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_checked() {
        assert!(check_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_ok());
        let msg = |s: &str| check_secret(s).expect_err(s).to_string();
        assert!(msg("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").contains("whsec_"));
        assert!(msg("whsec_not base64!").contains("base64"));
        // 12 bytes: too short.
        assert!(msg("whsec_MTIzNDU2Nzg5MDEy").contains("not 12"));
        let long = format!("whsec_{}", "QUFB".repeat(22));
        assert!(msg(&long).contains("not 66"));
    }

    #[test]
    fn levels_and_types_select_events() {
        let types = vec!["account.risk_level_raised".to_owned()];
        assert!(wants("HIGH", &types, "account.risk_level_raised", "HIGH"));
        assert!(wants(
            "HIGH",
            &types,
            "account.risk_level_raised",
            "CRITICAL"
        ));
        assert!(!wants(
            "HIGH",
            &types,
            "account.risk_level_raised",
            "MEDIUM"
        ));
        assert!(!wants("LOW", &types, "account.signal_fired", "CRITICAL"));
        assert!(!wants(
            "HIGH",
            &types,
            "account.risk_level_raised",
            "EXTREME"
        ));
    }

    #[tokio::test]
    async fn subscriptions_are_validated_field_by_field() {
        let good = NewSubscription {
            url: "http://127.0.0.1:9/hook".into(),
            secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".into(),
            min_level: "high".into(),
            event_types: vec![
                "account.risk_level_raised".into(),
                "account.risk_level_raised".into(),
            ],
        };
        let open = Guard::new(true);
        let v = good.validate(&open).await.expect("valid");
        assert_eq!(v.min_level, "HIGH");
        assert_eq!(v.event_types, ["account.risk_level_raised"]);
        assert_eq!(v.url, "http://127.0.0.1:9/hook");
        let field = |e: crate::store::StoreError| match e {
            crate::store::StoreError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        };
        let e = good
            .validate(&Guard::new(false))
            .await
            .expect_err("loopback");
        assert_eq!(field(e), "url");
        let mut bad = good.clone();
        bad.min_level = "SEVERE".into();
        assert_eq!(
            field(bad.validate(&open).await.expect_err("level")),
            "min_level"
        );
        let mut bad = good.clone();
        bad.event_types = vec!["account.risk_level_raised".into(), "x.y".into()];
        assert_eq!(
            field(bad.validate(&open).await.expect_err("type")),
            "event_types[1]"
        );
        let mut bad = good.clone();
        bad.event_types.clear();
        assert_eq!(
            field(bad.validate(&open).await.expect_err("none")),
            "event_types"
        );
        let mut bad = good;
        bad.secret = "whsec_".into();
        assert_eq!(
            field(bad.validate(&open).await.expect_err("secret")),
            "secret"
        );
    }
}
