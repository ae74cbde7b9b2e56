//! The Kafka data plane: the engine learns state from Kafka and publishes what its checks
//! decide. It converts and transports; every decision stays in the core.
//!
//! * [`consumer`]: the state-topic consumer and the mark reader (at least once, dead
//!   letters, readiness). [`apply`]: payloads to engine events, idempotent per entity.
//! * [`producer`]: the check events, Avro single-object encoded, never making a check
//!   wait.
//! * [`avro`]: the schemas (`risk-adapters/schemas/<topic>.avsc`) and the codecs.
//! * [`topics`]: the topic names and their environment suffix.
//! * [`feed`]: the demo scenario written to the input topics (`risk feed`).
//!
//! The payloads of every topic are described in `risk-adapters/README-kafka.md`.

pub mod apply;
pub mod avro;
pub mod consumer;
pub mod feed;
pub mod producer;
pub mod topics;

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

pub use apply::ApplierState;
pub use consumer::{
    Checkpoint, CheckpointPolicy, CheckpointSink, ConsumerOptions, IngestStatus, KafkaIngest,
    Offsets,
};
pub use producer::{DecisionPublisher, PublishStatus, PublisherOptions};
pub use topics::{InputTopic, OutputTopic, Topics};

/// A Kafka client could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaAdapterError {
    /// The client library refused or failed.
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// A topic could not be created or read.
    #[error("kafka topic `{topic}`: {reason}")]
    Topic {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// A worker thread could not be started.
    #[error("starting a kafka thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The settings every client shares: the brokers, and IPv4 for loopback names.
#[must_use]
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("broker.address.family", "v4")
        .set("log_level", "4");
    config
}

/// Creates the topics of `names` that do not exist (one partition each; brokers such as
/// tansu do not create topics on first use).
///
/// # Errors
/// [`KafkaAdapterError`] when the admin client fails or a topic cannot be created for a
/// reason other than existing already.
pub fn ensure_topics(
    brokers: &str,
    names: &[String],
    timeout: Duration,
) -> Result<(), KafkaAdapterError> {
    let admin: AdminClient<DefaultClientContext> = client_config(brokers).create()?;
    let metadata = admin.inner().fetch_metadata(None, timeout)?;
    let existing: std::collections::HashSet<&str> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| t.name())
        .collect();
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .filter(|n| !existing.contains(n.as_str()))
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let results = runtime.block_on(admin.create_topics(&new, &options))?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaAdapterError::Topic {
                    topic,
                    reason: code.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// The Kafka side of the check path: readiness and publishing, for the gRPC service.
#[cfg(feature = "grpc")]
#[derive(Debug)]
pub struct KafkaCheckHooks {
    /// The consumers' status (`None`: no consumers, always ready).
    pub ingest: Option<std::sync::Arc<IngestStatus>>,
    /// The publisher (`None`: nothing published).
    pub publisher: Option<DecisionPublisher>,
}

#[cfg(feature = "grpc")]
impl crate::grpc::service::CheckHooks for KafkaCheckHooks {
    fn not_ready(&self) -> Option<&'static str> {
        match &self.ingest {
            Some(status) if !status.is_ready() => Some(
                "state is still loading from Kafka: the consumers have not reached the end \
                 offsets seen at start",
            ),
            _ => None,
        }
    }

    fn on_check(
        &self,
        checked: Option<(
            &risk_core::pretrade::CheckRequest,
            &risk_core::pretrade::CheckResponse,
        )>,
        _answer: &crate::grpc::proto::v1::PreTradeCheckResponse,
        _elapsed: std::time::Duration,
    ) {
        if let (Some(p), Some((request, response))) = (&self.publisher, checked) {
            p.publish(request, response);
        }
    }
}

/// The consumers' and the publisher's counters on `/metrics` (read at each scrape):
/// `riskgate_kafka_*`. Register it with [`crate::http::metrics::Metrics::register_collector`].
#[cfg(feature = "http")]
#[derive(Debug)]
pub struct KafkaMetrics {
    /// The consumers' status (`None`: no consumers; nothing exposed for them).
    pub ingest: Option<std::sync::Arc<IngestStatus>>,
    /// The publisher's status (`None`: nothing published; nothing exposed for it).
    pub publisher: Option<std::sync::Arc<PublishStatus>>,
}

#[cfg(feature = "http")]
impl prometheus_client::collector::Collector for KafkaMetrics {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric as _;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
        let mut counter = |name: &str, help: &str, value: &AtomicU64| {
            let counter = ConstCounter::new(value.load(Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)
        };
        if let Some(i) = &self.ingest {
            counter(
                "kafka_consumed",
                "Messages read from the input topics (state and marks)",
                &i.consumed,
            )?;
            counter("kafka_applied", "State-topic messages applied", &i.applied)?;
            counter(
                "kafka_duplicates",
                "State-topic messages ignored as redelivered or older",
                &i.duplicates,
            )?;
            counter("kafka_marks_applied", "Marks applied", &i.marks_applied)?;
            counter(
                "kafka_marks_stale",
                "Marks ignored as not newer than the mark held",
                &i.marks_stale,
            )?;
            counter(
                "kafka_dead_lettered",
                "Messages sent to the dead-letter topic",
                &i.dead_lettered,
            )?;
            counter(
                "kafka_dead_letter_failures",
                "Dead letters that could not be queued",
                &i.dead_letter_failures,
            )?;
            counter(
                "kafka_checkpoints",
                "Checkpoints (state and offsets) handed to the snapshot writer",
                &i.checkpoints,
            )?;
        }
        if let Some(p) = &self.publisher {
            counter(
                "kafka_checks_queued",
                "Checks queued for publishing",
                &p.queued,
            )?;
            counter(
                "kafka_checks_dropped",
                "Checks not published because the queue was full",
                &p.dropped,
            )?;
            counter(
                "kafka_delivered",
                "Decision messages the broker acknowledged",
                &p.delivered,
            )?;
            counter(
                "kafka_failed",
                "Decision messages that failed delivery or encoding",
                &p.failed,
            )?;
        }
        if let Some(i) = &self.ingest {
            let ready = ConstGauge::new(i64::from(i.is_ready()));
            let metric = encoder.encode_descriptor(
                "kafka_ready",
                "1 once the state consumer reached the end offsets seen at start",
                None,
                ready.metric_type(),
            )?;
            ready.encode(metric)?;
            let resumed = ConstGauge::new(i64::from(i.is_resumed()));
            let metric = encoder.encode_descriptor(
                "kafka_resumed",
                "1 when the consumers resumed from a snapshot's offsets instead of replaying",
                None,
                resumed.metric_type(),
            )?;
            resumed.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::Arc;

    use super::{IngestStatus, KafkaMetrics, PublishStatus};
    use crate::http::metrics::Metrics;

    /// The counters are read at each scrape, under the `riskgate_kafka_` names.
    #[test]
    fn kafka_counters_are_on_metrics() {
        let ingest = Arc::new(IngestStatus::default());
        let publisher = Arc::new(PublishStatus::default());
        let mut metrics = Metrics::new();
        metrics.register_collector(Box::new(KafkaMetrics {
            ingest: Some(Arc::clone(&ingest)),
            publisher: Some(Arc::clone(&publisher)),
        }));
        ingest.applied.store(7, Relaxed);
        ingest.dead_lettered.store(2, Relaxed);
        publisher.delivered.store(5, Relaxed);
        publisher.dropped.store(1, Relaxed);
        let text = metrics.render(1);
        for line in [
            "riskgate_kafka_applied_total 7",
            "riskgate_kafka_dead_lettered_total 2",
            "riskgate_kafka_delivered_total 5",
            "riskgate_kafka_checks_dropped_total 1",
            "riskgate_kafka_checks_queued_total 0",
            "riskgate_kafka_ready 0",
            "riskgate_kafka_resumed 0",
            "riskgate_kafka_consumed_total 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        ingest.applied.store(9, Relaxed);
        assert!(metrics
            .render(1)
            .lines()
            .any(|l| l == "riskgate_kafka_applied_total 9"));
    }
}
