//! The dispatcher: a tokio task that fans new outbox rows out into deliveries, claims the
//! due ones with a lease, POSTs each (signed, with a timeout), and records the outcome.
//!
//! The body is `{"type": ..., "timestamp": ..., "data": ...}`: the event type, the time the
//! event was raised (RFC 3339) and the outbox payload. It is the same on every attempt;
//! `webhook-timestamp` is the attempt's time, as Standard Webhooks asks (receivers refuse
//! a signature older than their tolerance, typically 5 minutes).
//!
//! Retry schedule: after failed attempt `n`, the next is due after
//! `min(backoff_base * 2^(n-1), backoff_max)`, jittered uniformly into its upper half
//! (`[d/2, d]`), and never before the receiver's `Retry-After` (seconds or an HTTP date;
//! honoured up to [`DispatchOptions::retry_after_max`]). With the defaults (30 s base, 1 h
//! cap, 8 attempts) the attempts span about an hour before the delivery is dead-lettered.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::Utc;
use rand::Rng as _;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use super::guard::{Guard, GuardedResolver};
use super::store::{Claimed, Recorded, WebhookStore};

/// The dispatcher's settings.
#[derive(Debug, Clone)]
pub struct DispatchOptions {
    /// Per attempt: connect, send, and read the answer (default 10 s).
    pub timeout: Duration,
    /// Attempts before a delivery is dead-lettered (default 8).
    pub max_attempts: u32,
    /// The delay after the first failed attempt; doubled after each (default 30 s).
    pub backoff_base: Duration,
    /// The longest computed delay (default 1 h).
    pub backoff_max: Duration,
    /// The longest `Retry-After` honoured (default 24 h).
    pub retry_after_max: Duration,
    /// How often the outbox and the due deliveries are looked for (default 250 ms).
    pub poll_every: Duration,
    /// Deliveries in flight at once (default 16).
    pub concurrency: usize,
    /// Outbox rows fanned out per round (default 500).
    pub fanout_batch: u32,
    /// How long a missing outbox id is waited for before it is taken to be a rolled-back
    /// transaction's (default 5 min; an ingest transaction must commit within it).
    pub gap_grace: Duration,
    /// Target address policy.
    pub guard: Guard,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(3_600),
            retry_after_max: Duration::from_secs(24 * 3_600),
            poll_every: Duration::from_millis(250),
            concurrency: 16,
            fanout_batch: 500,
            gap_grace: Duration::from_secs(300),
            guard: Guard::default(),
        }
    }
}

impl DispatchOptions {
    /// How long a claim holds a delivery: twice the timeout plus 2 s. A dispatcher that
    /// died with a delivery claimed delays it by at most this much.
    #[must_use]
    pub fn lease(&self) -> Duration {
        self.timeout
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(2))
    }

    /// The computed delay after failed attempt `attempt` (1-based) before jitter.
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1_u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_max)
    }
}

/// The deliveries' counters, on `/metrics` through [`WebhookMetrics`].
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    /// Deliveries the receiver accepted (2xx).
    pub delivered: AtomicU64,
    /// Failed attempts scheduled for another.
    pub retried: AtomicU64,
    /// Deliveries whose last attempt failed.
    pub dead_lettered: AtomicU64,
    /// Deliveries refused by an answer that is not retried (4xx other than 408 and 429).
    pub failed: AtomicU64,
    /// Outbox events fanned out.
    pub events: AtomicU64,
}

/// What happened to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Delivered,
    /// Retry after the delay.
    Retry(Duration),
    /// An answer that is not retried.
    Failed,
    /// The last attempt failed.
    DeadLettered,
}

/// What an attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    /// The error (network, timeout, refused address) or an excerpt of a failed answer.
    pub error: Option<String>,
    /// `Retry-After`, when given.
    pub retry_after: Option<Duration>,
    /// The attempt could not be made for a reason a retry cannot change (an unusable
    /// secret or payload, a refused literal address).
    pub permanent: bool,
}

/// Whether an answer's status is retried: 408, 429 and 5xx.
#[must_use]
pub fn retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// Decides the outcome of attempt `attempt` (1-based). `jitter` in [0, 1] places a retry's
/// delay in the upper half of the computed backoff.
#[must_use]
pub fn decide(answer: &Answer, attempt: u32, options: &DispatchOptions, jitter: f64) -> Outcome {
    let retry = match answer.status {
        _ if answer.permanent => false,
        Some(s) if (200..300).contains(&s) => return Outcome::Delivered,
        Some(s) => retryable_status(s),
        None => true,
    };
    if !retry {
        return Outcome::Failed;
    }
    if attempt >= options.max_attempts {
        return Outcome::DeadLettered;
    }
    let computed = options.backoff(attempt);
    let half = computed / 2;
    let jittered = half.saturating_add(half.mul_f64(jitter.clamp(0.0, 1.0)));
    let floor = answer
        .retry_after
        .map_or(Duration::ZERO, |r| r.min(options.retry_after_max));
    Outcome::Retry(jittered.max(floor))
}

/// Reads `Retry-After`: delay-seconds, or an HTTP date (a past date is no delay).
#[must_use]
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The signed request of one attempt: the body and the three Standard Webhooks headers.
///
/// # Errors
/// The payload is not JSON, or the secret cannot sign.
pub fn signed_request(claimed: &Claimed, timestamp: i64) -> Result<(String, HeaderMap), String> {
    let data: serde_json::Value = serde_json::from_str(&claimed.payload)
        .map_err(|e| format!("the outbox payload is not JSON: {e}"))?;
    let body = serde_json::json!({
        "type": claimed.event_type,
        "timestamp": claimed.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string();
    let signature = standardwebhooks::Webhook::new(&claimed.secret)
        .and_then(|w| w.sign(&claimed.event_id, timestamp, body.as_bytes()))
        .map_err(|e| format!("signing: {e}"))?;
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (
            standardwebhooks::HEADER_WEBHOOK_ID,
            claimed.event_id.clone(),
        ),
        (
            standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
            timestamp.to_string(),
        ),
        (standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature),
        ("content-type", "application/json".to_owned()),
    ] {
        let value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|e| format!("header {name}: {e}"))?;
        headers.insert(name, value);
    }
    Ok((body, headers))
}

/// The dispatcher.
#[derive(Debug)]
pub struct Dispatcher {
    store: Arc<dyn WebhookStore>,
    client: reqwest::Client,
    options: DispatchOptions,
    owner: String,
    claims: AtomicU64,
    counters: Arc<DeliveryCounters>,
}

impl Dispatcher {
    /// A dispatcher over `store`, counting into `counters`.
    ///
    /// # Errors
    /// The HTTP client cannot be built (TLS set-up).
    pub fn new(
        store: Arc<dyn WebhookStore>,
        options: DispatchOptions,
        counters: Arc<DeliveryCounters>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                guard: options.guard,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .user_agent(concat!("riskgate-webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        let owner = format!(
            "{}-{:016x}",
            std::process::id(),
            rand::rng().random::<u64>()
        );
        Ok(Self {
            store,
            client,
            options,
            owner,
            claims: AtomicU64::new(0),
            counters,
        })
    }

    /// Starts the dispatcher on the current runtime; abort the handle to stop it (the
    /// deliveries in flight stop too, and are sent again after their lease).
    #[must_use]
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(Arc::new(self).run())
    }

    /// Runs until dropped: fan out, claim what the free slots can take, send, repeat.
    pub async fn run(self: Arc<Self>) {
        let slots = Arc::new(tokio::sync::Semaphore::new(self.options.concurrency.max(1)));
        let mut in_flight = tokio::task::JoinSet::new();
        tracing::info!(
            owner = %self.owner,
            timeout_ms = self.options.timeout.as_millis(),
            max_attempts = self.options.max_attempts,
            allow_private = self.options.guard.allow_private,
            "webhook dispatcher running"
        );
        loop {
            while in_flight.try_join_next().is_some() {}
            let now_ms = Utc::now().timestamp_millis();
            match self
                .store
                .fan_out(
                    now_ms,
                    self.options.fanout_batch,
                    millis(self.options.gap_grace),
                )
                .await
            {
                Ok(f) if f.events > 0 => {
                    self.counters.events.fetch_add(f.events, Relaxed);
                    tracing::debug!(
                        events = f.events,
                        deliveries = f.deliveries,
                        upto = f.upto,
                        "webhook fan-out"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "webhook fan-out failed"),
            }
            let free = slots.available_permits();
            if free > 0 {
                let token = format!("{}#{}", self.owner, self.claims.fetch_add(1, Relaxed));
                let lease_until = now_ms.saturating_add(millis(self.options.lease()));
                let limit = u32::try_from(free).unwrap_or(u32::MAX);
                match self.store.claim(&token, now_ms, lease_until, limit).await {
                    Ok(claimed) => {
                        for c in claimed {
                            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                                return;
                            };
                            let me = Arc::clone(&self);
                            let token = token.clone();
                            in_flight.spawn(async move {
                                me.deliver(&token, c).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
                }
            }
            tokio::time::sleep(self.options.poll_every).await;
        }
    }

    /// Sends one claimed delivery and records the outcome.
    async fn deliver(&self, token: &str, c: Claimed) {
        let attempt = u32::try_from(c.attempts).unwrap_or(0).saturating_add(1);
        let started_at = Utc::now();
        let clock = Instant::now();
        let answer = self.attempt(&c).await;
        let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
        let outcome = decide(&answer, attempt, &self.options, rand::rng().random::<f64>());
        let (status, label, next_ms) = match &outcome {
            Outcome::Delivered => ("delivered", "delivered", 0),
            Outcome::Failed => ("failed", "failed", 0),
            Outcome::DeadLettered => ("dead_lettered", "dead_lettered", 0),
            Outcome::Retry(delay) => (
                "pending",
                "retry",
                Utc::now().timestamp_millis().saturating_add(millis(*delay)),
            ),
        };
        let recorded = Recorded {
            delivery_id: c.delivery_id,
            attempt: i32::try_from(attempt).unwrap_or(i32::MAX),
            status,
            outcome: label,
            next_attempt_at_ms: next_ms,
            status_code: answer.status.map(i32::from),
            error: answer.error.clone(),
            started_at,
            duration_ms,
        };
        tracing::info!(
            event_id = %c.event_id,
            delivery = c.delivery_id,
            attempt,
            status_code = answer.status,
            error = answer.error.as_deref().unwrap_or(""),
            outcome = label,
            "webhook attempt"
        );
        match self.store.record(token, &recorded).await {
            Ok(true) => {
                let counter = match outcome {
                    Outcome::Delivered => &self.counters.delivered,
                    Outcome::Failed => &self.counters.failed,
                    Outcome::DeadLettered => &self.counters.dead_lettered,
                    Outcome::Retry(_) => &self.counters.retried,
                };
                counter.fetch_add(1, Relaxed);
            }
            Ok(false) => tracing::warn!(
                delivery = c.delivery_id,
                "webhook delivery's lease was lost (or its subscription deleted): outcome not recorded"
            ),
            // The lease expires and the delivery is sent again: at least once.
            Err(e) => tracing::warn!(error = %e, delivery = c.delivery_id, "recording a webhook attempt failed"),
        }
    }

    /// Makes the HTTP request.
    async fn attempt(&self, c: &Claimed) -> Answer {
        let permanent = |error: String| Answer {
            status: None,
            error: Some(error),
            retry_after: None,
            permanent: true,
        };
        let url = match reqwest::Url::parse(&c.url) {
            Ok(u) => u,
            Err(e) => return permanent(format!("url: {e}")),
        };
        if let Err(e) = self.options.guard.check_literal(&url) {
            return permanent(e.to_string());
        }
        let (body, headers) = match signed_request(c, Utc::now().timestamp()) {
            Ok(r) => r,
            Err(e) => return permanent(e),
        };
        let response = self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        match response {
            Err(e) => Answer {
                status: None,
                error: Some(describe(&e)),
                retry_after: None,
                permanent: false,
            },
            Ok(mut response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                let error = if status.is_success() {
                    None
                } else {
                    Some(excerpt(&mut response, status).await)
                };
                Answer {
                    status: Some(status.as_u16()),
                    error,
                    retry_after,
                    permanent: false,
                }
            }
        }
    }
}

/// The first 200 characters of a failed answer's body (within the attempt's timeout).
async fn excerpt(response: &mut reqwest::Response, status: StatusCode) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < 1_024 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    }
}

/// A reqwest error with its causes (the refused address, the timeout).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The webhook counters on `/metrics` (read at each scrape): `riskgate_webhook_*`.
/// Register it with [`crate::http::metrics::Metrics::register_collector`].
#[derive(Debug)]
pub struct WebhookMetrics(pub Arc<DeliveryCounters>);

impl prometheus_client::collector::Collector for WebhookMetrics {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric as _;
        use prometheus_client::metrics::counter::ConstCounter;
        let c = &self.0;
        for (name, help, value) in [
            (
                "webhook_events",
                "Outbox events fanned out to subscriptions",
                &c.events,
            ),
            (
                "webhook_delivered",
                "Webhook deliveries the receiver accepted (2xx)",
                &c.delivered,
            ),
            (
                "webhook_retried",
                "Webhook attempts that failed and were scheduled again",
                &c.retried,
            ),
            (
                "webhook_dead_lettered",
                "Webhook deliveries dead-lettered after their last attempt",
                &c.dead_lettered,
            ),
            (
                "webhook_failed",
                "Webhook deliveries refused by an answer that is not retried",
                &c.failed,
            ),
        ] {
            let counter = ConstCounter::new(value.load(Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: Option<u16>) -> Answer {
        Answer {
            status,
            error: None,
            retry_after: None,
            permanent: false,
        }
    }

    #[test]
    fn outcomes_follow_the_status() {
        let o = DispatchOptions::default();
        assert_eq!(decide(&answer(Some(200)), 1, &o, 0.5), Outcome::Delivered);
        assert_eq!(decide(&answer(Some(204)), 8, &o, 0.5), Outcome::Delivered);
        for s in [400, 401, 403, 404, 410, 422, 301, 302] {
            assert_eq!(decide(&answer(Some(s)), 1, &o, 0.5), Outcome::Failed, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(decide(&answer(Some(s)), 1, &o, 0.5), Outcome::Retry(_)),
                "{s}"
            );
            assert_eq!(decide(&answer(Some(s)), 8, &o, 0.5), Outcome::DeadLettered);
        }
        assert!(matches!(
            decide(&answer(None), 7, &o, 0.5),
            Outcome::Retry(_)
        ));
        assert_eq!(decide(&answer(None), 8, &o, 0.5), Outcome::DeadLettered);
        let mut refused = answer(None);
        refused.permanent = true;
        assert_eq!(decide(&refused, 1, &o, 0.5), Outcome::Failed);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_respects_retry_after() {
        let o = DispatchOptions::default();
        let delay = |attempt, jitter| match decide(&answer(Some(503)), attempt, &o, jitter) {
            Outcome::Retry(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(delay(1, 0.0), Duration::from_secs(15));
        assert_eq!(delay(1, 1.0), Duration::from_secs(30));
        assert_eq!(delay(2, 1.0), Duration::from_secs(60));
        assert_eq!(delay(3, 0.5), Duration::from_secs(90));
        assert_eq!(delay(7, 1.0), Duration::from_secs(1_920));
        // Capped at an hour (before jitter).
        let mut long = o.clone();
        long.max_attempts = 40;
        assert_eq!(long.backoff(30), Duration::from_secs(3_600));
        // Retry-After wins when later, is capped at retry_after_max.
        let mut a = answer(Some(429));
        a.retry_after = Some(Duration::from_secs(120));
        assert_eq!(
            decide(&a, 1, &o, 1.0),
            Outcome::Retry(Duration::from_secs(120))
        );
        a.retry_after = Some(Duration::from_secs(1));
        assert_eq!(
            decide(&a, 1, &o, 1.0),
            Outcome::Retry(Duration::from_secs(30))
        );
        a.retry_after = Some(Duration::from_secs(10 * 24 * 3_600));
        assert_eq!(
            decide(&a, 1, &o, 1.0),
            Outcome::Retry(Duration::from_secs(24 * 3_600))
        );
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        // 2015-10-21 07:28:00 is `now`; 07:30:00 is two minutes later.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn requests_are_signed_as_standard_webhooks_verify() {
        let c = Claimed {
            delivery_id: 1,
            attempts: 0,
            event_id: "msg_2b8fR2fQ".into(),
            event_type: "account.risk_level_raised".into(),
            payload: r#"{"account_login":"1001","level":"HIGH"}"#.into(),
            created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
            url: "https://hooks.example.com/".into(),
            secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".into(),
        };
        let now = Utc::now().timestamp();
        let (body, headers) = signed_request(&c, now).expect("signed");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["type"], "account.risk_level_raised");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["data"]["account_login"], "1001");
        assert_eq!(headers["webhook-id"], "msg_2b8fR2fQ");
        assert_eq!(headers["webhook-timestamp"], now.to_string().as_str());
        let wh = standardwebhooks::Webhook::new(&c.secret).expect("secret");
        wh.verify(body.as_bytes(), &headers).expect("verifies");
        let mut bad = c;
        bad.payload = "not json".into();
        assert!(signed_request(&bad, now).is_err());
    }
}
