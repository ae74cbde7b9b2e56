//! The consumers: one over the state topics, one over `md.mark.v1`, each on its own
//! thread, each applying to the shared engine through an [`Applier`].
//!
//! * Both assign every partition of their topics from the beginning: without a snapshot the
//!   engine's state is rebuilt by replaying the topics. No group rebalance is waited for.
//! * At least once: a message's offset is stored (and auto-committed to the group) only
//!   after it was applied, refused as a duplicate, or dead-lettered.
//! * A message that does not decode or that the engine refuses goes to `risk.dlq.v1`
//!   with `topic`, `partition`, `offset` and `reason` headers and the original key and
//!   bytes; it is counted and logged, and the partition moves on.
//! * Ready: the state consumer records each partition's end offset (high watermark) at
//!   start and reports ready once it has consumed up to all of them. Until then a check
//!   answers `REJECTED` / `STALE_DATA` (the `KafkaCheckHooks` of the gRPC service). Marks do not gate
//!   readiness: a missing or old mark already rejects a check with `STALE_DATA`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use risk_core::engine::RiskEngine;

use super::apply::{Applier, Outcome};
use super::topics::{InputTopic, OutputTopic, Topics};
use super::{client_config, KafkaAdapterError};

/// How the consumers connect.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// `HOST:PORT[,HOST:PORT...]`.
    pub brokers: String,
    /// Topic names with their environment suffix.
    pub topics: Topics,
    /// The consumer group the state consumer commits its offsets to; the mark reader
    /// uses `<group_id>.marks`.
    pub group_id: String,
    /// How long to wait for metadata and watermarks at start.
    pub timeout: Duration,
}

/// Counters and readiness of the consumers; shared with the server.
#[derive(Debug, Default)]
pub struct IngestStatus {
    ready: AtomicBool,
    /// State-topic messages applied.
    pub applied: AtomicU64,
    /// State-topic messages ignored as redelivered or older.
    pub duplicates: AtomicU64,
    /// Positions held until their instrument is listed.
    pub parked: AtomicU64,
    /// Marks applied.
    pub marks_applied: AtomicU64,
    /// Marks ignored as not newer than the mark held.
    pub marks_stale: AtomicU64,
    /// Messages sent to the dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Dead letters that could not be queued (the producer stayed full); logged.
    pub dead_letter_failures: AtomicU64,
}

impl IngestStatus {
    /// True once the state consumer reached the end offsets seen at start.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// The running consumers. Dropping it stops them and waits for their threads.
#[derive(Debug)]
pub struct KafkaIngest {
    status: Arc<IngestStatus>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl KafkaIngest {
    /// Creates the topics that are missing, then starts the state consumer and the mark
    /// reader on their own threads.
    ///
    /// # Errors
    /// [`KafkaAdapterError`] when a client cannot be created or the topics' metadata and
    /// watermarks cannot be read within the timeout.
    pub fn start(
        engine: Arc<RiskEngine>,
        options: &ConsumerOptions,
    ) -> Result<Self, KafkaAdapterError> {
        super::ensure_topics(&options.brokers, &options.topics.all(), options.timeout)?;
        let status = Arc::new(IngestStatus::default());
        let stop = Arc::new(AtomicBool::new(false));
        let dlq: ThreadedProducer<DefaultProducerContext> = client_config(&options.brokers)
            .set("linger.ms", "5")
            .create()?;
        let dlq = DeadLetters {
            producer: dlq,
            topic: options.topics.output(OutputTopic::DeadLetter),
        };
        let dlq = Arc::new(dlq);

        let state_topics: Vec<String> = InputTopic::STATE
            .iter()
            .map(|t| options.topics.input(*t))
            .collect();
        let state = consumer(&options.brokers, &options.group_id)?;
        let pending = assign_from_start(&state, &state_topics, options.timeout)?;
        let marks = consumer(&options.brokers, &format!("{}.marks", options.group_id))?;
        assign_from_start(
            &marks,
            &[options.topics.input(InputTopic::Mark)],
            options.timeout,
        )?;
        if pending.is_empty() {
            status.ready.store(true, Ordering::Release);
            tracing::info!("kafka: input topics are empty; ready");
        } else {
            tracing::info!(partitions = pending.len(), "kafka: replaying input topics");
        }

        let mut threads = Vec::new();
        let worker = Worker {
            consumer: state,
            inner: Handler {
                applier: Applier::new(Arc::clone(&engine)),
                topics: options.topics.clone(),
                status: Arc::clone(&status),
                stop: Arc::clone(&stop),
                dlq: Arc::clone(&dlq),
                pending: Some((pending, Instant::now())),
            },
        };
        threads.push(
            std::thread::Builder::new()
                .name("kafka-state".into())
                .spawn(move || worker.run())?,
        );
        let worker = Worker {
            consumer: marks,
            inner: Handler {
                applier: Applier::new(engine),
                topics: options.topics.clone(),
                status: Arc::clone(&status),
                stop: Arc::clone(&stop),
                dlq,
                pending: None,
            },
        };
        threads.push(
            std::thread::Builder::new()
                .name("kafka-marks".into())
                .spawn(move || worker.run())?,
        );
        Ok(Self {
            status,
            stop,
            threads,
        })
    }

    /// The consumers' counters and readiness.
    #[must_use]
    pub fn status(&self) -> Arc<IngestStatus> {
        Arc::clone(&self.status)
    }
}

impl Drop for KafkaIngest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn consumer(brokers: &str, group_id: &str) -> Result<BaseConsumer, KafkaError> {
    client_config(brokers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
}

/// The end offset of each partition (topic, partition) still to be reached.
type EndOffsets = HashMap<(String, i32), i64>;

/// Assigns every partition of `topics` from the beginning; returns the partitions that
/// hold messages, with their end offsets now.
fn assign_from_start(
    consumer: &BaseConsumer,
    topics: &[String],
    timeout: Duration,
) -> Result<EndOffsets, KafkaAdapterError> {
    let mut tpl = TopicPartitionList::new();
    let mut pending = HashMap::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
        for t in metadata.topics() {
            if let Some(e) = t.error() {
                return Err(KafkaAdapterError::Topic {
                    topic: topic.clone(),
                    reason: format!("{e:?}"),
                });
            }
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
                let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
                if high > low {
                    pending.insert((topic.clone(), p.id()), high);
                }
            }
        }
    }
    consumer.assign(&tpl)?;
    Ok(pending)
}

struct DeadLetters {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
}

/// A consumer thread: the client, and what handles its messages.
struct Worker {
    consumer: BaseConsumer,
    inner: Handler,
}

struct Handler {
    applier: Applier,
    topics: Topics,
    status: Arc<IngestStatus>,
    stop: Arc<AtomicBool>,
    dlq: Arc<DeadLetters>,
    /// The state consumer's partitions still below their start end offset, and when the
    /// replay began; `None` for the mark reader.
    pending: Option<(EndOffsets, Instant)>,
}

impl Worker {
    fn run(self) {
        let Self {
            consumer,
            mut inner,
        } = self;
        while !inner.stop.load(Ordering::Acquire) {
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(message)) => {
                    inner.handle(&consumer, &message);
                    let reached = message.offset() + 1;
                    let key = (message.topic().to_owned(), message.partition());
                    inner.progress(key, reached);
                }
                Some(Err(e)) => tracing::warn!(error = %e, "kafka consumer error"),
            }
        }
    }
}

impl Handler {
    fn progress(&mut self, key: (String, i32), reached: i64) {
        if let Some((pending, _)) = &mut self.pending {
            if pending.get(&key).is_some_and(|end| reached >= *end) {
                pending.remove(&key);
            }
        }
        self.check_ready();
    }

    fn check_ready(&mut self) {
        if let Some((pending, since)) = &self.pending {
            if pending.is_empty() {
                self.status.ready.store(true, Ordering::Release);
                tracing::info!(
                    applied = self.status.applied.load(Ordering::Relaxed),
                    dead_lettered = self.status.dead_lettered.load(Ordering::Relaxed),
                    secs = since.elapsed().as_secs_f64(),
                    "kafka: caught up with the input topics; ready"
                );
                self.pending = None;
            }
        }
    }

    fn handle(&mut self, consumer: &BaseConsumer, message: &BorrowedMessage<'_>) {
        let topic = message.topic();
        let result = match self.topics.parse_input(topic) {
            Some(input) => self
                .applier
                .apply(input, message.payload().unwrap_or_default())
                .map_err(|e| e.to_string()),
            None => Err(format!("`{topic}` is not an input topic")),
        };
        let counter = match result {
            Ok(Outcome::Applied) if topic.starts_with(InputTopic::Mark.base()) => {
                &self.status.marks_applied
            }
            Ok(Outcome::Applied) => &self.status.applied,
            Ok(Outcome::Stale) => &self.status.marks_stale,
            Ok(Outcome::Duplicate) => &self.status.duplicates,
            Ok(Outcome::Parked) => &self.status.parked,
            Err(reason) => {
                self.dead_letter(message, &reason);
                &self.status.dead_lettered
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = consumer.store_offset_from_message(message) {
            tracing::warn!(error = %e, topic, offset = message.offset(), "storing the offset");
        }
    }

    fn dead_letter(&self, message: &BorrowedMessage<'_>, reason: &str) {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        tracing::warn!(topic, partition, offset, reason, "kafka: dead-lettered");
        let partition_text = partition.to_string();
        let offset_text = offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "topic",
                value: Some(topic),
            })
            .insert(Header {
                key: "partition",
                value: Some(&partition_text),
            })
            .insert(Header {
                key: "offset",
                value: Some(&offset_text),
            })
            .insert(Header {
                key: "reason",
                value: Some(reason),
            });
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.dlq.topic)
            .payload(message.payload().unwrap_or_default())
            .headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        // The producer's queue is large; if it stays full (broker away for long), give
        // up on this dead letter after a second rather than stall the partition.
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match self.dlq.producer.send(record) {
                Ok(()) => return,
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) if Instant::now() < deadline => {
                    record = r;
                    self.dlq.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => {
                    self.status
                        .dead_letter_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, topic, partition, offset, "kafka: dead letter not queued");
                    return;
                }
            }
        }
    }
}

impl Drop for DeadLetters {
    fn drop(&mut self) {
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}
