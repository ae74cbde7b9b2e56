//! `/metrics` in the Prometheus text format (OpenMetrics, from `prometheus-client`): checks
//! by decision and reason, a check-latency histogram, admin writes by route and status,
//! the config version in force and, with Kafka on, the Kafka adapter's counters
//! (`kafka::KafkaMetrics`, registered with [`Metrics::register_collector`]).

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::AppState;
use crate::grpc::proto::v1::PreTradeCheckResponse;
use crate::grpc::service::CheckHooks;
use risk_core::pretrade::{CheckRequest, CheckResponse};

/// The content type of the exposition.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    decision: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    route: String,
    status: String,
}

/// The service's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    checks: Family<CheckLabels, Counter>,
    latency: Histogram,
    writes: Family<WriteLabels, Counter>,
    config_version: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("riskgate");
        let checks = Family::<CheckLabels, Counter>::default();
        registry.register(
            "checks",
            "Pre-trade checks answered, by decision and reject reason",
            checks.clone(),
        );
        // 10 us to ~0.3 s.
        let latency = Histogram::new(exponential_buckets(0.000_01, 2.0, 15));
        registry.register(
            "check_duration_seconds",
            "Time to answer one pre-trade check, conversion included",
            latency.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "admin_writes",
            "Admin API writes, by route and HTTP status",
            writes.clone(),
        );
        let config_version = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "config_version",
            "The config store's version in force in the engine",
            config_version.clone(),
        );
        Self {
            registry,
            checks,
            latency,
            writes,
            config_version,
        }
    }

    /// Adds metrics read at each scrape (the Kafka adapter's counters).
    pub fn register_collector(
        &mut self,
        collector: Box<dyn prometheus_client::collector::Collector>,
    ) {
        self.registry.register_collector(collector);
    }

    /// Counts an admin write.
    pub fn admin_write(&self, route: &str, status: u16) {
        self.writes
            .get_or_create(&WriteLabels {
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
    }

    /// The exposition text, with the config version set to `version`.
    #[must_use]
    pub fn render(&self, version: i64) -> String {
        self.config_version.set(version);
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        text
    }
}

impl CheckHooks for Metrics {
    fn on_check(
        &self,
        _checked: Option<(&CheckRequest, &CheckResponse)>,
        answer: &PreTradeCheckResponse,
        elapsed: Duration,
    ) {
        let decision = answer.decision().as_str_name();
        let reason = answer.reject_reason().as_str_name();
        let reason = if reason == "REJECT_REASON_UNSPECIFIED" {
            "NONE"
        } else {
            reason
        };
        self.checks
            .get_or_create(&CheckLabels {
                decision: decision.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
        self.latency.observe(elapsed.as_secs_f64());
    }
}

/// The metrics in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(state.live.version());
    ([(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)], text).into_response()
}
