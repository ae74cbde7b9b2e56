//! The producers of the check events: `risk.pretrade_decision.v1` for every decision,
//! and `risk.exposure_snapshot.v1`, `risk.violation.v1`, `risk.margin_call.v1`,
//! `risk.liquidation.v1` as the core's [`CheckResponse::events`] yield them. Keyed by
//! account, Avro single-object encoded.
//!
//! A check never waits for Kafka: [`DecisionPublisher::publish`] only tries to put the
//! request and response on a bounded queue. One thread encodes and hands them to
//! librdkafka, whose own queue holds them while the broker is away (messages never time
//! out) and sends them when it returns. When both queues are full the newest events are
//! dropped, counted and logged, and checks go on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use risk_core::pretrade::{CheckRequest, CheckResponse, RiskEvent};
use risk_core::rules::RuleHit;
use risk_core::Decimal;
use serde::Serialize;

use super::avro;
use super::topics::{OutputTopic, Topics};
use super::{client_config, KafkaAdapterError};

/// Counters of the publisher, shared with the server.
#[derive(Debug, Default)]
pub struct PublishStatus {
    /// Checks queued for publishing.
    pub queued: AtomicU64,
    /// Checks dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Messages the broker acknowledged.
    pub delivered: AtomicU64,
    /// Messages that failed delivery or encoding.
    pub failed: AtomicU64,
}

/// How the publisher connects and how much it holds.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// `HOST:PORT[,HOST:PORT...]`.
    pub brokers: String,
    /// Topic names with their environment suffix.
    pub topics: Topics,
    /// Checks held in the publisher's queue before new ones are dropped.
    pub queue_capacity: usize,
    /// Messages librdkafka holds (in flight or waiting for the broker).
    pub producer_queue_messages: usize,
    /// The config version written on every decision.
    pub config_version: String,
    /// Encoding threads (at least 1); an account's events always go through the same one.
    pub encoder_threads: usize,
}

struct Counting(Arc<PublishStatus>);

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.0.delivered
        } else {
            &self.0.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

type Job = (CheckRequest, CheckResponse);

/// Publishes check events without making a check wait. Accounts are spread over
/// [`PublisherOptions::encoder_threads`] encoding threads, each with its own bounded
/// queue, so one account's events keep their order. Dropping it flushes what is queued
/// (for up to 10 s) and stops its threads.
#[derive(Debug)]
pub struct DecisionPublisher {
    queues: Vec<SyncSender<Job>>,
    status: Arc<PublishStatus>,
    threads: Vec<JoinHandle<()>>,
}

impl DecisionPublisher {
    /// Creates the producer and starts the encoding threads.
    ///
    /// # Errors
    /// [`KafkaAdapterError`] when the producer cannot be created.
    pub fn start(options: &PublisherOptions) -> Result<Self, KafkaAdapterError> {
        let status = Arc::new(PublishStatus::default());
        let producer: ThreadedProducer<Counting> = client_config(&options.brokers)
            .set("linger.ms", "5")
            .set("message.timeout.ms", "0")
            .set(
                "queue.buffering.max.messages",
                options.producer_queue_messages.to_string(),
            )
            .create_with_context(Counting(Arc::clone(&status)))?;
        let shards = options.encoder_threads.max(1);
        let per_shard = (options.queue_capacity / shards).max(1);
        let (mut queues, mut threads) = (Vec::new(), Vec::new());
        for i in 0..shards {
            let (queue, jobs) = mpsc::sync_channel(per_shard);
            let worker = Encoder {
                producer: producer.clone(),
                topics: options.topics.clone(),
                config_version: options.config_version.clone(),
                status: Arc::clone(&status),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("kafka-publish-{i}"))
                    .spawn(move || worker.run(&jobs))?,
            );
            queues.push(queue);
        }
        Ok(Self {
            queues,
            status,
            threads,
        })
    }

    /// Queues a check's events; never blocks. A full queue drops them (counted, logged).
    pub fn publish(&self, request: &CheckRequest, response: &CheckResponse) {
        // FNV-1a of the account id picks the shard: stable, cheap, one account one thread.
        let hash = response
            .account_id
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        let Some(queue) = usize::try_from(hash % self.queues.len().max(1) as u64)
            .ok()
            .and_then(|i| self.queues.get(i))
        else {
            return;
        };
        match queue.try_send((request.clone(), response.clone())) {
            Ok(()) => {
                self.status.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let dropped = self.status.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(dropped, "kafka: publish queue full, check events dropped");
                }
            }
        }
    }

    /// The publisher's counters.
    #[must_use]
    pub fn status(&self) -> Arc<PublishStatus> {
        Arc::clone(&self.status)
    }
}

impl Drop for DecisionPublisher {
    fn drop(&mut self) {
        self.queues.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct Encoder {
    producer: ThreadedProducer<Counting>,
    topics: Topics,
    config_version: String,
    status: Arc<PublishStatus>,
}

impl Encoder {
    fn run(self, jobs: &Receiver<Job>) {
        let stop = AtomicBool::new(false);
        loop {
            match jobs.recv_timeout(Duration::from_millis(200)) {
                Ok((request, response)) => self.send_all(&request, &response, &stop),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Err(e) = self.producer.flush(Duration::from_secs(10)) {
            tracing::warn!(error = %e, "kafka: check events left unsent at shutdown");
        }
    }

    fn send_all(&self, request: &CheckRequest, response: &CheckResponse, stop: &AtomicBool) {
        for event in response.events() {
            let (topic, bytes) = match self.encode(request, response, event) {
                Ok(encoded) => encoded,
                Err(e) => {
                    self.status.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "kafka: encoding a check event");
                    continue;
                }
            };
            let topic = self.topics.output(topic);
            let mut record = BaseRecord::to(&topic)
                .key(response.account_id.as_str())
                .payload(&bytes);
            // librdkafka's queue is full (the broker is away): wait here, so the bounded
            // queue in front fills and drops instead of the check waiting.
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                        if !stop.load(Ordering::Relaxed) =>
                    {
                        record = r;
                        self.producer.poll(Duration::from_millis(50));
                    }
                    Err((e, _)) => {
                        self.status.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, %topic, "kafka: producing a check event");
                        break;
                    }
                }
            }
        }
    }

    fn encode(
        &self,
        request: &CheckRequest,
        response: &CheckResponse,
        event: RiskEvent<'_>,
    ) -> Result<(OutputTopic, Vec<u8>), avro::AvroError> {
        encode_event(&self.config_version, request, response, event)
    }
}

/// One check event as its topic and Avro single-object bytes.
fn encode_event(
    config_version: &str,
    request: &CheckRequest,
    response: &CheckResponse,
    event: RiskEvent<'_>,
) -> Result<(OutputTopic, Vec<u8>), avro::AvroError> {
    let ctx = Context::of(response);
    let decision = response.decision.as_str();
    let ratio = response.projected_margin_ratio().map(text);
    match event {
        RiskEvent::DecisionAudit(r) => {
            let record = Decision {
                ctx,
                user_id: request.user_id.as_str(),
                side: request.side.as_str(),
                order_type: request.order_type.as_str(),
                quantity: text(request.quantity),
                price: request.price.map(text),
                leverage: text(request.leverage),
                reduce_only: request.reduce_only,
                post_only: request.post_only,
                decision,
                reject_reason: r.reject_reason.map(|x| x.as_str()),
                message: r.message.to_string(),
                projected_margin_ratio: ratio,
                required_initial_margin: r.required_initial_margin().map(text),
                liquidation_risk: r.liquidation_risk,
                margin_call: r.margin_call,
                rule_hits: r.rule_hits.iter().map(Hit::of).collect(),
                config_version,
            };
            let topic = OutputTopic::Decision;
            Ok((topic, avro::encode(topic.base(), &record)?))
        }
        RiskEvent::ExposureSnapshot { metrics: m, .. } => {
            let record = Exposure {
                ctx,
                mark_price: text(m.mark_price),
                order_price: text(m.order_price),
                order_quantity: text(m.order_quantity),
                order_notional: text(m.order_notional),
                opening_notional: text(m.opening_notional),
                leverage: text(m.leverage),
                required_initial_margin: text(m.required_initial_margin),
                margin_balance: text(m.margin_balance),
                available_margin: text(m.available_margin),
                projected_exposure: text(m.projected_exposure),
                projected_maintenance_margin: text(m.projected_maintenance_margin),
                projected_margin_balance: text(m.projected_margin_balance),
                exposure_utilization: m.exposure_utilization.map(text),
                projected_margin_ratio: m.projected_margin_ratio.map(text),
            };
            let topic = OutputTopic::ExposureSnapshot;
            Ok((topic, avro::encode(topic.base(), &record)?))
        }
        RiskEvent::RuleViolation { hit, .. } => {
            let h = Hit::of(hit);
            let record = Violation {
                ctx,
                rule_id: h.rule_id,
                metric: h.metric,
                value: h.value,
                operator: h.operator,
                threshold: h.threshold,
                severity: h.severity,
                action: h.action,
                decision,
            };
            let topic = OutputTopic::Violation;
            Ok((topic, avro::encode(topic.base(), &record)?))
        }
        RiskEvent::MarginCall { ratio, .. } | RiskEvent::LiquidationSignal { ratio, .. } => {
            let topic = if matches!(event, RiskEvent::MarginCall { .. }) {
                OutputTopic::MarginCall
            } else {
                OutputTopic::Liquidation
            };
            let record = Signal {
                ctx,
                projected_margin_ratio: ratio.map(text),
                decision,
            };
            Ok((topic, avro::encode(topic.base(), &record)?))
        }
    }
}

fn text(d: Decimal) -> String {
    d.normalize().to_string()
}

#[derive(Serialize)]
struct Context<'a> {
    trace_id: &'a str,
    account_id: &'a str,
    order_id: &'a str,
    symbol: &'a str,
    checked_at_us: i64,
}

impl<'a> Context<'a> {
    fn of(r: &'a CheckResponse) -> Self {
        Self {
            trace_id: r.trace_id.as_str(),
            account_id: r.account_id.as_str(),
            order_id: r.order_id.as_str(),
            symbol: r.symbol.as_str(),
            checked_at_us: r.checked_at.timestamp_micros(),
        }
    }
}

#[derive(Serialize)]
struct Hit {
    rule_id: String,
    metric: String,
    value: String,
    operator: String,
    threshold: String,
    severity: String,
    action: String,
}

impl Hit {
    fn of(h: &RuleHit) -> Self {
        Self {
            rule_id: h.rule_id.to_string(),
            metric: h.metric.to_string(),
            value: text(h.value),
            operator: h.operator.to_string(),
            threshold: text(h.threshold),
            severity: h.severity.to_string(),
            action: h.action.to_string(),
        }
    }
}

#[derive(Serialize)]
struct Decision<'a> {
    #[serde(flatten)]
    ctx: Context<'a>,
    user_id: &'a str,
    side: &'a str,
    order_type: &'a str,
    quantity: String,
    price: Option<String>,
    leverage: String,
    reduce_only: bool,
    post_only: bool,
    decision: &'a str,
    reject_reason: Option<&'a str>,
    message: String,
    projected_margin_ratio: Option<String>,
    required_initial_margin: Option<String>,
    liquidation_risk: bool,
    margin_call: bool,
    rule_hits: Vec<Hit>,
    config_version: &'a str,
}

#[derive(Serialize)]
struct Exposure<'a> {
    #[serde(flatten)]
    ctx: Context<'a>,
    mark_price: String,
    order_price: String,
    order_quantity: String,
    order_notional: String,
    opening_notional: String,
    leverage: String,
    required_initial_margin: String,
    margin_balance: String,
    available_margin: String,
    projected_exposure: String,
    projected_maintenance_margin: String,
    projected_margin_balance: String,
    exposure_utilization: Option<String>,
    projected_margin_ratio: Option<String>,
}

#[derive(Serialize)]
struct Violation<'a> {
    #[serde(flatten)]
    ctx: Context<'a>,
    rule_id: String,
    metric: String,
    value: String,
    operator: String,
    threshold: String,
    severity: String,
    action: String,
    decision: &'a str,
}

#[derive(Serialize)]
struct Signal<'a> {
    #[serde(flatten)]
    ctx: Context<'a>,
    projected_margin_ratio: Option<String>,
    decision: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::{ConfigFile, Format};
    use risk_core::model::{OrderType, Side};

    /// Every kind of check event encodes against its schema and decodes back: a large
    /// order fires the demo's REJECT rule; the margin-call and liquidation flags are set by
    /// hand on a real response (the events are derived from them).
    #[test]
    fn every_event_kind_fits_its_schema() {
        let file = ConfigFile::parse(super::super::feed::DEMO, Format::Toml, "demo").expect("demo");
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let engine = file.into_engine(now, "demo").expect("engine");
        let request = CheckRequest {
            user_id: "alice".into(),
            account_id: "acc-alice".into(),
            order_id: "big".into(),
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            quantity: Decimal::new(6, 0),
            price: Some(Decimal::new(50_000, 0)),
            leverage: Decimal::TEN,
            reduce_only: false,
            post_only: false,
            trace_id: "t-big".into(),
        };
        let mut response = engine.check(&request, now);
        assert!(!response.rule_hits.is_empty(), "{response:?}");
        response.margin_call = true;
        response.liquidation_risk = true;
        let mut topics = Vec::new();
        for event in response.events() {
            let (topic, bytes) = encode_event("v1", &request, &response, event).expect("encodes");
            let value: serde_json::Value = avro::decode(topic.base(), &bytes).expect("decodes");
            assert_eq!(value["trace_id"], "t-big");
            assert_eq!(value["account_id"], "acc-alice");
            topics.push(topic);
        }
        for t in [
            OutputTopic::Decision,
            OutputTopic::ExposureSnapshot,
            OutputTopic::Violation,
            OutputTopic::MarginCall,
            OutputTopic::Liquidation,
        ] {
            assert!(topics.contains(&t), "{t:?} missing from {topics:?}");
        }
    }
}
