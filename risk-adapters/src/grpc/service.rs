//! The `risk.v1.RiskService` implementation over a shared [`RiskEngine`].
//!
//! It holds no risk logic: it converts the wire request ([`super::convert`]), reads the
//! system clock for `now` (the core never does), calls the engine and converts back.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use risk_core::engine::{Applied, EngineEvent, RiskEngine};
use risk_core::ids::AccountId;
use risk_core::model::{Decision, RejectReason};
use risk_core::pretrade::{CheckRequest, CheckResponse};
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use super::convert;
use super::proto::v1 as pb;
use crate::config_file::{ConfigFile, Format};

/// How many rejection messages an [`pb::ApplyEventsSummary`] carries at most.
pub const SUMMARY_ERRORS: usize = 10;

/// Counters of the checks served, for the periodic log line.
#[derive(Debug, Default)]
pub struct CheckCounters {
    /// Checks answered.
    pub checks: AtomicU64,
    /// Of which rejected (including malformed requests).
    pub rejected: AtomicU64,
    /// Of which flagged.
    pub flagged: AtomicU64,
}

/// What a transport plugs into the check path: the Kafka adapter (its readiness gate and
/// decision publisher) and the HTTP adapter (its `/metrics`). Several are combined with
/// the `CheckHooks` impl on `Vec<Arc<dyn CheckHooks>>`.
pub trait CheckHooks: Send + Sync + std::fmt::Debug {
    /// `None` (the default) when checks may run; otherwise why not: every check then
    /// answers `REJECTED` / `STALE_DATA` with this message, without reaching the engine.
    fn not_ready(&self) -> Option<&'static str> {
        None
    }
    /// Called once per answered check; must not block. `checked` is the converted request
    /// and the engine's (or the readiness gate's) answer, `None` when the request did not
    /// convert (answered `INVALID_REQUEST`); `answer` is the wire answer; `elapsed` how
    /// long the check took, conversions included.
    fn on_check(
        &self,
        checked: Option<(&CheckRequest, &CheckResponse)>,
        answer: &pb::PreTradeCheckResponse,
        elapsed: std::time::Duration,
    );
}

/// Every hook in turn: not ready when any is (the first reason), each sees every check.
impl CheckHooks for Vec<Arc<dyn CheckHooks>> {
    fn not_ready(&self) -> Option<&'static str> {
        self.iter().find_map(|h| h.not_ready())
    }

    fn on_check(
        &self,
        checked: Option<(&CheckRequest, &CheckResponse)>,
        answer: &pb::PreTradeCheckResponse,
        elapsed: std::time::Duration,
    ) {
        for hook in self {
            hook.on_check(checked, answer, elapsed);
        }
    }
}

/// The service: an engine, whether approved checks reserve margin, and how many messages
/// a client may send on one stream.
#[derive(Debug, Clone)]
pub struct RiskService {
    engine: Arc<RiskEngine>,
    reserve_margin: bool,
    max_stream_messages: Option<u64>,
    counters: Arc<CheckCounters>,
    hooks: Option<Arc<dyn CheckHooks>>,
}

impl RiskService {
    /// A service over `engine`. With `reserve_margin`, a check that approves reserves the
    /// order's initial margin ([`RiskEngine::check_and_reserve`]) until the order service
    /// reports the order opened, filled, cancelled or released; without it, checks are
    /// read-only apart from the duplicate-id and rate history ([`RiskEngine::check`]).
    #[must_use]
    pub fn new(engine: Arc<RiskEngine>, reserve_margin: bool) -> Self {
        Self {
            engine,
            reserve_margin,
            max_stream_messages: None,
            counters: Arc::default(),
            hooks: None,
        }
    }

    /// Plugs `hooks` into every check (see [`CheckHooks`]).
    #[must_use]
    pub fn with_hooks(mut self, hooks: Option<Arc<dyn CheckHooks>>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Ends a `PreTradeCheckStream` or `ApplyEvents` stream with `RESOURCE_EXHAUSTED` when
    /// the client sends more than `limit` messages on it (after answering or applying the
    /// first `limit`); `None` (the default) or `Some(0)` sets no limit. See
    /// [`super::server::ServerOptions::max_stream_messages`].
    #[must_use]
    pub fn with_max_stream_messages(mut self, limit: Option<u64>) -> Self {
        self.max_stream_messages = limit.filter(|max| *max > 0);
        self
    }

    /// The counters of checks served.
    #[must_use]
    pub fn counters(&self) -> Arc<CheckCounters> {
        Arc::clone(&self.counters)
    }

    /// Answers one check request: converts it, checks it at the system clock's `now`,
    /// converts the answer; a request that does not convert is `INVALID_REQUEST`.
    fn answer(&self, request: &pb::PreTradeCheckRequest) -> pb::PreTradeCheckResponse {
        self.counters.checks.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let hooks = self.hooks.as_deref();
        let (checked, response) = match convert::check_request(request) {
            Ok(check) => {
                let now = now();
                let response = if let Some(why) = hooks.and_then(|h| h.not_ready()) {
                    not_ready(&check, now, why)
                } else if self.reserve_margin {
                    self.engine.check_and_reserve(&check, now)
                } else {
                    self.engine.check(&check, now)
                };
                let answer = convert::check_response(&response);
                (Some((check, response)), answer)
            }
            Err(e) => (None, convert::invalid_request(&e, &request.trace_id)),
        };
        if response.decision == pb::RiskDecision::Rejected as i32 {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                account_id = %request.account_id,
                order_id = %request.order_id,
                trace_id = %request.trace_id,
                reason = response.reject_reason().as_str_name(),
                message = %response.message,
                "check rejected"
            );
        } else if response.decision == pb::RiskDecision::Flagged as i32 {
            self.counters.flagged.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(hooks) = hooks {
            hooks.on_check(
                checked.as_ref().map(|(c, r)| (c, r)),
                &response,
                started.elapsed(),
            );
        }
        response
    }

    /// Applies one converted event; the result with the account's sequence as this apply
    /// left it (read by the apply itself, so a later event cannot show through), or the
    /// error message.
    fn apply(&self, event: &EngineEvent) -> Result<pb::ApplyEventResult, String> {
        let (outcome, last_seq) = self
            .engine
            .apply_with_seq(event)
            .map_err(|e| e.to_string())?;
        Ok(convert::applied(outcome, last_seq.unwrap_or(0)))
    }
}

/// The answer while the engine's state is still loading: `REJECTED` / `STALE_DATA`.
fn not_ready(check: &CheckRequest, now: DateTime<Utc>, why: &'static str) -> CheckResponse {
    CheckResponse {
        decision: Decision::Rejected,
        reject_reason: Some(RejectReason::StaleData),
        message: why.into(),
        liquidation_risk: false,
        margin_call: false,
        rule_hits: Default::default(),
        trace_id: check.trace_id.clone(),
        account_id: check.account_id.clone(),
        order_id: check.order_id.clone(),
        symbol: check.symbol.clone(),
        checked_at: now,
        metrics: None,
    }
}

/// The system clock as the core's `now`.
#[must_use]
pub fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(SystemTime::now())
}

#[tonic::async_trait]
impl pb::risk_service_server::RiskService for RiskService {
    async fn pre_trade_check(
        &self,
        request: Request<pb::PreTradeCheckRequest>,
    ) -> Result<Response<pb::PreTradeCheckResponse>, Status> {
        Ok(Response::new(self.answer(request.get_ref())))
    }

    type PreTradeCheckStreamStream =
        Pin<Box<dyn Stream<Item = Result<pb::PreTradeCheckResponse, Status>> + Send + 'static>>;

    async fn pre_trade_check_stream(
        &self,
        request: Request<Streaming<pb::PreTradeCheckRequest>>,
    ) -> Result<Response<Self::PreTradeCheckStreamStream>, Status> {
        // Lazy: a request is read only when the transport wants the next response, so a
        // client that does not read its answers stops being read (HTTP/2 flow control then
        // holds its requests back) instead of making the server buffer answers.
        let service = self.clone();
        let limit = self.max_stream_messages;
        let mut received = 0_u64;
        let responses = request.into_inner().map(move |request| {
            let request = request?;
            received += 1;
            match limit {
                // tonic ends the response stream with the first error status.
                Some(max) if received > max => Err(Status::resource_exhausted(format!(
                    "PreTradeCheckStream: more than {max} requests on one stream \
                     (max_stream_messages = {max}); the first {max} were answered, \
                     send the rest on a new stream"
                ))),
                _ => Ok(service.answer(&request)),
            }
        });
        Ok(Response::new(Box::pin(responses)))
    }

    async fn apply_events(
        &self,
        request: Request<Streaming<pb::AccountOrMarketEvent>>,
    ) -> Result<Response<pb::ApplyEventsSummary>, Status> {
        let mut stream = request.into_inner();
        let mut summary = pb::ApplyEventsSummary::default();
        while let Some(event) = stream.message().await? {
            if let Some(max) = self
                .max_stream_messages
                .filter(|max| summary.received >= *max)
            {
                tracing::info!(max, "event stream over its message limit");
                return Err(Status::resource_exhausted(format!(
                    "ApplyEvents: more than {max} events on one stream \
                     (max_stream_messages = {max}); the first {max} were processed \
                     (applied {}, duplicate {}, stale {}, rejected {}), \
                     send the rest on a new stream",
                    summary.applied, summary.duplicate, summary.stale, summary.rejected
                )));
            }
            let index = summary.received;
            summary.received += 1;
            let result = convert::event(&event, now())
                .map_err(|e| e.to_string())
                .and_then(|e| self.engine.apply(&e).map_err(|e| e.to_string()));
            match result {
                Ok(Applied::Applied) => summary.applied += 1,
                Ok(Applied::Duplicate { .. }) => summary.duplicate += 1,
                Ok(Applied::Stale) => summary.stale += 1,
                Err(message) => {
                    summary.rejected += 1;
                    if summary.errors.len() < SUMMARY_ERRORS {
                        summary.errors.push(format!("event {index}: {message}"));
                    }
                }
            }
        }
        tracing::info!(
            received = summary.received,
            applied = summary.applied,
            duplicate = summary.duplicate,
            stale = summary.stale,
            rejected = summary.rejected,
            "event stream ended"
        );
        Ok(Response::new(summary))
    }

    async fn apply_event(
        &self,
        request: Request<pb::AccountOrMarketEvent>,
    ) -> Result<Response<pb::ApplyEventResult>, Status> {
        let event = convert::event(request.get_ref(), now())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        self.apply(&event)
            .map(Response::new)
            .map_err(Status::failed_precondition)
    }

    async fn get_config(
        &self,
        _request: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::GetConfigResponse>, Status> {
        let file = ConfigFile {
            engine: (*self.engine.config()).clone(),
            instruments: Vec::new(),
            marks: Vec::new(),
            accounts: Vec::new(),
            rulebook: None,
            rulebooks: std::collections::BTreeMap::new(),
            detectors: None,
            rule_weights: None,
        };
        let json = file
            .to_text(Format::Json)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::GetConfigResponse { json }))
    }

    async fn replace_config(
        &self,
        request: Request<pb::ReplaceConfigRequest>,
    ) -> Result<Response<pb::ReplaceConfigResponse>, Status> {
        let request = request.into_inner();
        let format = match request.format.to_ascii_lowercase().as_str() {
            "" | "json" => Format::Json,
            "toml" => Format::Toml,
            other => {
                return Err(Status::invalid_argument(format!(
                    "format: `{}` is not json or toml",
                    other.chars().take(16).collect::<String>()
                )))
            }
        };
        let file = ConfigFile::parse(&request.text, format, "ReplaceConfig")
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        for (table, present) in [
            ("instruments", !file.instruments.is_empty()),
            ("marks", !file.marks.is_empty()),
            ("accounts", !file.accounts.is_empty()),
        ] {
            if present {
                return Err(Status::invalid_argument(format!(
                    "ReplaceConfig: `{table}` is initial state, not config: send it as events"
                )));
            }
        }
        self.engine
            .replace_config(file.engine)
            .map_err(|e| Status::invalid_argument(format!("ReplaceConfig: engine: {e}")))?;
        tracing::info!("config replaced");
        Ok(Response::new(pb::ReplaceConfigResponse {}))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let id = &request.get_ref().account_id;
        let (snapshot, last_seq) = self
            .engine
            .account(&AccountId::new(id))
            .ok_or_else(|| Status::not_found(format!("account {id} is not known")))?;
        Ok(Response::new(convert::account(&snapshot, last_seq)))
    }
}
