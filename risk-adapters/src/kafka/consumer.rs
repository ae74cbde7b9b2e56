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
//! * Resume: started with a [`Checkpoint`] (a snapshot: the engine's and the applier's
//!   state and the offsets they include), the engine and the applier take its state and
//!   each partition is read from the checkpoint's offset instead; a checkpoint that names
//!   other topics, or an offset past a partition's end, is refused (logged) and the
//!   topics are replayed from the start.
//! * Checkpoints: with a [`CheckpointPolicy`], the state consumer hands a consistent
//!   [`Checkpoint`] to a [`CheckpointSink`] every so many events or milliseconds,
//!   whichever comes first, taken between two messages on its own thread (so the offsets
//!   and the state match); only when the sink is idle, so a slow sink never stalls it.
//! * Ready: the state consumer records each partition's end offset (high watermark) at
//!   start and reports ready once it has consumed up to all of them. Until then a check
//!   answers `REJECTED` / `STALE_DATA` (the `KafkaCheckHooks` of the gRPC service). Marks do not gate
//!   readiness: a missing or old mark already rejects a check with `STALE_DATA`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use risk_core::engine::{EngineState, RiskEngine};

use super::apply::{Applier, ApplierState, Outcome};
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

/// The next offset to read, per (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

/// What the consumers built and the offsets it includes: the engine's state, the
/// applier's entity versions and held positions, and for each partition read (state
/// topics and marks) the next offset to read. A snapshot is one of these.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// The engine's accounts and market.
    pub engine: EngineState,
    /// The state consumer's entity versions and held positions.
    pub applier: ApplierState,
    /// The next offset to read per partition; a partition absent is read from the start.
    pub offsets: Offsets,
}

/// Takes the state consumer's checkpoints (the Redis snapshot writer).
pub trait CheckpointSink: Send + Sync + std::fmt::Debug {
    /// True when a checkpoint offered now would be taken at once; the consumer builds
    /// none otherwise and tries again later.
    fn is_idle(&self) -> bool;
    /// Takes a checkpoint to write. Must not block.
    fn offer(&self, checkpoint: Checkpoint);
}

/// When the state consumer checkpoints: after `every_events` messages or `every` time
/// with something new, whichever comes first.
#[derive(Debug, Clone)]
pub struct CheckpointPolicy {
    /// The longest time between two checkpoints while offsets move.
    pub every: Duration,
    /// The most messages (state topics) between two checkpoints.
    pub every_events: u64,
    /// Where checkpoints go.
    pub sink: Arc<dyn CheckpointSink>,
}

/// Counters and readiness of the consumers; shared with the server.
#[derive(Debug, Default)]
pub struct IngestStatus {
    ready: AtomicBool,
    resumed: AtomicBool,
    /// Messages read from the input topics (both readers), whatever became of them.
    pub consumed: AtomicU64,
    /// Checkpoints handed to the sink.
    pub checkpoints: AtomicU64,
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

    /// True when the consumers resumed from a checkpoint rather than replaying from the
    /// start.
    #[must_use]
    pub fn is_resumed(&self) -> bool {
        self.resumed.load(Ordering::Acquire)
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
        Self::start_with(engine, options, None, None)
    }

    /// [`KafkaIngest::start`], resuming from `resume` when it fits the topics (the
    /// engine and the state applier take its state, each partition is read from its
    /// offset), and handing checkpoints to `checkpoints`' sink.
    ///
    /// A checkpoint that names a topic or partition not read here, or an offset past a
    /// partition's end (the topic was recreated), or a state the engine refuses, is not
    /// used: the reason is logged and the topics are replayed from the start.
    ///
    /// # Errors
    /// As [`KafkaIngest::start`].
    pub fn start_with(
        engine: Arc<RiskEngine>,
        options: &ConsumerOptions,
        resume: Option<Checkpoint>,
        checkpoints: Option<CheckpointPolicy>,
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
        let mark_topics = [options.topics.input(InputTopic::Mark)];
        let state = consumer(&options.brokers, &options.group_id)?;
        let marks = consumer(&options.brokers, &format!("{}.marks", options.group_id))?;
        let state_ends = watermarks(&state, &state_topics, options.timeout)?;
        let mark_ends = watermarks(&marks, &mark_topics, options.timeout)?;
        let (applier, start) = match resume {
            Some(checkpoint) => match resume_from(&engine, checkpoint, &state_ends, &mark_ends) {
                Ok((applier, offsets)) => {
                    status.resumed.store(true, Ordering::Release);
                    (applier, offsets)
                }
                Err(reason) => {
                    tracing::warn!(
                        %reason,
                        "kafka: the snapshot is not used; replaying the input topics from the start"
                    );
                    (Applier::new(Arc::clone(&engine)), Offsets::new())
                }
            },
            None => (Applier::new(Arc::clone(&engine)), Offsets::new()),
        };
        let pending = assign(&state, &state_ends, &start)?;
        assign(&marks, &mark_ends, &start)?;
        if status.is_resumed() {
            tracing::info!(
                behind = pending.len(),
                "kafka: resuming from the snapshot's offsets"
            );
        } else if !pending.is_empty() {
            tracing::info!(partitions = pending.len(), "kafka: replaying input topics");
        }
        if pending.is_empty() {
            status.ready.store(true, Ordering::Release);
            tracing::info!("kafka: nothing to read up to the end offsets; ready");
        }
        let progress = Arc::new(Mutex::new(start));

        let mut threads = Vec::new();
        let worker = Worker {
            consumer: state,
            inner: Handler {
                applier,
                topics: options.topics.clone(),
                status: Arc::clone(&status),
                stop: Arc::clone(&stop),
                dlq: Arc::clone(&dlq),
                pending: Some((pending, Instant::now())),
                progress: Arc::clone(&progress),
                checkpoints: checkpoints.map(|policy| Checkpointer::new(policy, &progress)),
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
                progress,
                checkpoints: None,
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

/// The low and high watermarks of each partition (topic, partition).
type Watermarks = BTreeMap<(String, i32), (i64, i64)>;

/// The low and high watermarks of every partition of `topics`, now.
fn watermarks(
    consumer: &BaseConsumer,
    topics: &[String],
    timeout: Duration,
) -> Result<Watermarks, KafkaAdapterError> {
    let mut out = BTreeMap::new();
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
                let marks = consumer.fetch_watermarks(topic, p.id(), timeout)?;
                out.insert((topic.clone(), p.id()), marks);
            }
        }
    }
    Ok(out)
}

/// Assigns every partition of `ends` from its offset in `start` (from the beginning when
/// absent); returns the partitions with messages still to read, with their end offsets.
fn assign(
    consumer: &BaseConsumer,
    ends: &Watermarks,
    start: &Offsets,
) -> Result<EndOffsets, KafkaAdapterError> {
    let mut tpl = TopicPartitionList::new();
    let mut pending = HashMap::new();
    for ((topic, partition), (low, high)) in ends {
        let key = (topic.clone(), *partition);
        let (offset, from) = match start.get(&key) {
            Some(next) => (Offset::Offset(*next), *next),
            None => (Offset::Beginning, *low),
        };
        tpl.add_partition_offset(topic, *partition, offset)?;
        if *high > from {
            pending.insert(key, *high);
        }
    }
    consumer.assign(&tpl)?;
    Ok(pending)
}

/// Restores the engine from `checkpoint` when its offsets fit the partitions read here;
/// the applier and the offsets to start from. On an error nothing was restored.
fn resume_from(
    engine: &Arc<RiskEngine>,
    checkpoint: Checkpoint,
    state_ends: &Watermarks,
    mark_ends: &Watermarks,
) -> Result<(Applier, Offsets), String> {
    for ((topic, partition), next) in &checkpoint.offsets {
        let key = (topic.clone(), *partition);
        let Some((low, high)) = state_ends.get(&key).or_else(|| mark_ends.get(&key)) else {
            return Err(format!(
                "it holds an offset for {topic} partition {partition}, which is not an input \
                 topic partition here (another --topic-suffix or --snapshot-key?)"
            ));
        };
        if next > high {
            return Err(format!(
                "its offset {next} for {topic} partition {partition} is past the partition's \
                 end {high} (the topic was recreated?)"
            ));
        }
        if next < low {
            tracing::warn!(
                topic,
                partition,
                offset = next,
                low,
                "kafka: messages after the snapshot's offset were deleted by retention; \
                 the state misses them"
            );
        }
    }
    let Checkpoint {
        engine: state,
        applier,
        offsets,
    } = checkpoint;
    let accounts = state.accounts.len();
    engine
        .restore_state(state)
        .map_err(|e| format!("the engine refuses its state: {e}"))?;
    tracing::info!(
        accounts,
        entities = applier.entity_count(),
        parked = applier.parked_count(),
        partitions = offsets.len(),
        "kafka: state restored from the snapshot"
    );
    Ok((Applier::restore(Arc::clone(engine), applier), offsets))
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
    /// The next offset to read of every partition either reader has handled, shared by
    /// both: a reader records a message's offset after applying it.
    progress: Arc<Mutex<Offsets>>,
    /// The state consumer's checkpoints; `None` for the mark reader or without a policy.
    checkpoints: Option<Checkpointer>,
}

/// Decides when the state consumer checkpoints and builds the checkpoints.
struct Checkpointer {
    policy: CheckpointPolicy,
    /// Messages handled since the last checkpoint.
    events: u64,
    last: Instant,
    /// The offsets of the last checkpoint (nothing new: no checkpoint).
    last_offsets: Offsets,
}

impl Checkpointer {
    fn new(policy: CheckpointPolicy, progress: &Mutex<Offsets>) -> Self {
        Self {
            policy,
            events: 0,
            last: Instant::now(),
            last_offsets: lock(progress).clone(),
        }
    }

    /// Hands a checkpoint to the sink when one is due and the sink is idle. Runs on the
    /// state consumer's thread between two messages, so the applier and the state
    /// partitions' offsets match the engine; the mark offsets are read before the engine
    /// is copied, so every mark before them is in the copy.
    fn maybe(&mut self, applier: &Applier, progress: &Mutex<Offsets>, status: &IngestStatus) {
        let due = self.events >= self.policy.every_events.max(1)
            || self.last.elapsed() >= self.policy.every;
        if !due || !self.policy.sink.is_idle() {
            return;
        }
        let offsets = lock(progress).clone();
        self.last = Instant::now();
        if offsets == self.last_offsets {
            self.events = 0;
            return;
        }
        let checkpoint = Checkpoint {
            engine: applier.engine().export_state(),
            applier: applier.export(),
            offsets: offsets.clone(),
        };
        self.policy.sink.offer(checkpoint);
        status.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.last_offsets = offsets;
        self.events = 0;
    }

    /// The last checkpoint at a clean stop: waits up to 5 s for the sink to be idle.
    fn last(&mut self, applier: &Applier, progress: &Mutex<Offsets>, status: &IngestStatus) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.policy.sink.is_idle() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.events = u64::MAX;
        self.maybe(applier, progress, status);
    }
}

/// The offsets, whatever a panicking thread left (a plain map stays consistent).
fn lock(progress: &Mutex<Offsets>) -> std::sync::MutexGuard<'_, Offsets> {
    progress.lock().unwrap_or_else(PoisonError::into_inner)
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
                    inner.status.consumed.fetch_add(1, Ordering::Relaxed);
                    inner.handle(&consumer, &message);
                    let reached = message.offset() + 1;
                    let key = (message.topic().to_owned(), message.partition());
                    inner.progress(key, reached);
                }
                Some(Err(e)) => tracing::warn!(error = %e, "kafka consumer error"),
            }
            if let Some(c) = &mut inner.checkpoints {
                c.maybe(&inner.applier, &inner.progress, &inner.status);
            }
        }
        if let Some(c) = &mut inner.checkpoints {
            c.last(&inner.applier, &inner.progress, &inner.status);
        }
    }
}

impl Handler {
    fn progress(&mut self, key: (String, i32), reached: i64) {
        if let Some(c) = &mut self.checkpoints {
            c.events = c.events.saturating_add(1);
        }
        lock(&self.progress).insert(key.clone(), reached);
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
