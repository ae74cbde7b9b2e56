//! Redis L2 snapshots of the Kafka-fed engine (`risk-server --redis`).
//!
//! A snapshot is a [`Checkpoint`]: the engine's accounts and market, the state
//! consumer's entity versions and held positions, and per input partition the next
//! offset to read. The state consumer builds one between two messages (so the state and
//! the offsets match) every `--snapshot-every-ms` or `--snapshot-every-events`, whichever
//! comes first, and hands it to the [`SnapshotWriter`], whose own thread encodes it
//! ([`mod@format`]) and writes the three keys in one `MULTI`/`EXEC`. At start,
//! [`RedisSnapshots::load`] reads them back in one `MULTI`/`EXEC`, and the consumers
//! resume from the offsets.
//!
//! Failures never touch the check path: the writer only takes a checkpoint when it is
//! idle (the consumer builds none otherwise); a failed write is logged, counted and
//! retried on a new connection after a backoff (250 ms doubling to 2 s), or replaced by
//! a newer checkpoint if one comes first; checks never wait for any of it.

pub mod format;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::Commands as _;

use crate::kafka::{Checkpoint, CheckpointSink};
use format::Encoded;

/// The key prefix when none is given.
pub const DEFAULT_PREFIX: &str = "riskgate";

/// A snapshot could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Redis refused, is unreachable, or the URL is invalid.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The snapshot was written by a build with another format.
    #[error("the snapshot has format {found}; this build reads format {expected}")]
    Incompatible {
        /// The format found.
        found: u32,
        /// The format this build reads and writes.
        expected: u32,
    },
    /// A key is missing or its value does not decode.
    #[error("the snapshot's `{key}` key is damaged: {reason}")]
    Corrupt {
        /// `state`, `offsets` or `meta`.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The state did not serialize.
    #[error("encoding the snapshot: {0}")]
    Encode(String),
    /// The writer thread could not be started.
    #[error("starting the snapshot writer: {0}")]
    Thread(#[from] std::io::Error),
}

/// The three keys of a snapshot under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// `<prefix>:snapshot:state`: the state, JSON.
    pub state: String,
    /// `<prefix>:snapshot:offsets`: a hash of `<topic>/<partition>` to the next offset.
    pub offsets: String,
    /// `<prefix>:snapshot:meta`: a hash with the format and figures.
    pub meta: String,
}

impl Keys {
    /// The keys under `prefix`.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self {
            state: format!("{prefix}:snapshot:state"),
            offsets: format!("{prefix}:snapshot:offsets"),
            meta: format!("{prefix}:snapshot:meta"),
        }
    }
}

/// A Redis database that holds snapshots under a key prefix.
#[derive(Debug, Clone)]
pub struct RedisSnapshots {
    client: redis::Client,
    keys: Keys,
    timeout: Duration,
}

impl RedisSnapshots {
    /// Checks the URL (`redis://HOST:PORT/DB`); connects only when used.
    ///
    /// # Errors
    /// [`SnapshotError::Redis`] when the URL is not a Redis URL.
    pub fn open(url: &str, prefix: &str) -> Result<Self, SnapshotError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            keys: Keys::new(prefix),
            timeout: Duration::from_secs(10),
        })
    }

    /// The keys written.
    #[must_use]
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A new connection, with connect, read and write timeouts.
    ///
    /// # Errors
    /// [`SnapshotError::Redis`] when Redis does not answer in time.
    pub fn connect(&self) -> Result<redis::Connection, SnapshotError> {
        let con = self
            .client
            .get_connection_with_timeout(Duration::from_secs(2))?;
        con.set_read_timeout(Some(self.timeout))?;
        con.set_write_timeout(Some(self.timeout))?;
        Ok(con)
    }

    /// Reads the snapshot (the three keys in one `MULTI`/`EXEC`); `Ok(None)` when there
    /// is none.
    ///
    /// # Errors
    /// [`SnapshotError::Redis`] when Redis is unreachable, [`SnapshotError::Incompatible`]
    /// or [`SnapshotError::Corrupt`] when the snapshot cannot be used.
    pub fn load(&self) -> Result<Option<Checkpoint>, SnapshotError> {
        let mut con = self.connect()?;
        type Read = (
            Option<Vec<u8>>,
            std::collections::HashMap<String, String>,
            std::collections::HashMap<String, String>,
        );
        let (state, offsets, meta): Read = redis::pipe()
            .atomic()
            .get(&self.keys.state)
            .hgetall(&self.keys.offsets)
            .hgetall(&self.keys.meta)
            .query(&mut con)?;
        format::decode(state.as_deref(), &offsets, &meta)
    }

    /// Writes an encoded snapshot: the three keys replaced in one `MULTI`/`EXEC`, so a
    /// reader sees the old snapshot or the new one, never a mix.
    ///
    /// # Errors
    /// [`SnapshotError::Redis`] when the transaction fails; nothing was written then.
    pub fn write(
        &self,
        con: &mut redis::Connection,
        encoded: &Encoded,
    ) -> Result<(), SnapshotError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(&self.keys.offsets)
            .ignore()
            .del(&self.keys.meta)
            .ignore();
        if !encoded.offsets.is_empty() {
            pipe.hset_multiple(&self.keys.offsets, &encoded.offsets)
                .ignore();
        }
        pipe.hset_multiple(&self.keys.meta, &encoded.meta)
            .ignore()
            .set(&self.keys.state, encoded.state.as_slice())
            .ignore();
        pipe.exec(con)?;
        Ok(())
    }

    /// Deletes the snapshot (the next start replays from the start).
    ///
    /// # Errors
    /// [`SnapshotError::Redis`] when Redis is unreachable.
    pub fn delete(&self) -> Result<(), SnapshotError> {
        let mut con = self.connect()?;
        let _: usize = con.del(&[&self.keys.state, &self.keys.offsets, &self.keys.meta])?;
        Ok(())
    }
}

/// The writer's counters; shared with the server (`/metrics`).
#[derive(Debug, Default)]
pub struct SnapshotStatus {
    /// Snapshots written.
    pub written: AtomicU64,
    /// Snapshots not written (Redis unreachable or refusing); each is logged or counted.
    pub failures: AtomicU64,
    /// The size of the last snapshot's state, in bytes.
    pub bytes: AtomicU64,
    /// How long the last write took (encoding and the transaction), in microseconds.
    pub write_micros: AtomicU64,
}

/// Writes the consumer's checkpoints to Redis on its own thread; a [`CheckpointSink`].
/// Dropping it lets the thread finish the snapshot in hand and waits for it.
#[derive(Debug)]
pub struct SnapshotWriter {
    tx: Option<SyncSender<Checkpoint>>,
    idle: Arc<AtomicBool>,
    status: Arc<SnapshotStatus>,
    thread: Option<JoinHandle<()>>,
}

impl SnapshotWriter {
    /// Starts the writer thread. It connects when it has a snapshot to write, and again
    /// after a failure.
    ///
    /// # Errors
    /// [`SnapshotError::Thread`] when the thread cannot start.
    pub fn start(store: RedisSnapshots) -> Result<Self, SnapshotError> {
        let (tx, rx) = sync_channel(1);
        let idle = Arc::new(AtomicBool::new(false));
        let status = Arc::new(SnapshotStatus::default());
        let thread = {
            let (idle, status) = (Arc::clone(&idle), Arc::clone(&status));
            std::thread::Builder::new()
                .name("redis-snapshots".into())
                .spawn(move || write_loop(&store, &rx, &idle, &status))?
        };
        Ok(Self {
            tx: Some(tx),
            idle,
            status,
            thread: Some(thread),
        })
    }

    /// The writer's counters.
    #[must_use]
    pub fn status(&self) -> Arc<SnapshotStatus> {
        Arc::clone(&self.status)
    }
}

impl CheckpointSink for SnapshotWriter {
    fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Acquire)
    }

    fn offer(&self, checkpoint: Checkpoint) {
        if let Some(tx) = &self.tx {
            // Busy (or stopped): drop it; the next checkpoint will be newer anyway.
            let _ = tx.try_send(checkpoint);
        }
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Failures in a row between two error lines while Redis stays away.
const LOG_EVERY_FAILURES: u64 = 60;

fn write_loop(
    store: &RedisSnapshots,
    rx: &Receiver<Checkpoint>,
    idle: &AtomicBool,
    status: &SnapshotStatus,
) {
    let mut con: Option<redis::Connection> = None;
    // A snapshot that failed, retried after `backoff` unless a newer one comes first.
    let mut pending: Option<Checkpoint> = None;
    let mut in_a_row: u64 = 0;
    let mut backoff = Duration::ZERO;
    loop {
        idle.store(true, Ordering::Release);
        let received = if pending.is_some() {
            match rx.recv_timeout(backoff) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(c) => Some(c),
                Err(_) => break,
            }
        };
        idle.store(false, Ordering::Release);
        let Some(checkpoint) = received.or_else(|| pending.take()) else {
            continue;
        };
        let started = Instant::now();
        let result = format::encode(&checkpoint, now_ms()).and_then(|encoded| {
            let c = match &mut con {
                Some(c) => c,
                None => con.insert(store.connect()?),
            };
            store.write(c, &encoded).map(|()| encoded.state.len())
        });
        match result {
            Ok(bytes) => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                status.written.fetch_add(1, Ordering::Relaxed);
                status
                    .bytes
                    .store(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
                status.write_micros.store(micros, Ordering::Relaxed);
                if in_a_row > 0 {
                    tracing::info!(failures = in_a_row, "redis: snapshots are written again");
                }
                tracing::debug!(
                    bytes,
                    micros,
                    accounts = checkpoint.engine.accounts.len(),
                    partitions = checkpoint.offsets.len(),
                    "redis: snapshot written"
                );
                pending = None;
                in_a_row = 0;
                backoff = Duration::ZERO;
            }
            Err(e) => {
                con = None;
                status.failures.fetch_add(1, Ordering::Relaxed);
                in_a_row += 1;
                if in_a_row == 1 || in_a_row.is_multiple_of(LOG_EVERY_FAILURES) {
                    tracing::error!(
                        error = %e,
                        failures_in_a_row = in_a_row,
                        key = %store.keys().state,
                        "redis: snapshot not written; checks go on, retrying"
                    );
                }
                pending = Some(checkpoint);
                backoff = (backoff * 2).clamp(Duration::from_millis(250), Duration::from_secs(2));
            }
        }
    }
}

/// The snapshot writer's counters on `/metrics` (read at each scrape):
/// `riskgate_snapshot_*`.
#[cfg(feature = "http")]
#[derive(Debug)]
pub struct SnapshotMetrics {
    /// The writer's counters.
    pub status: Arc<SnapshotStatus>,
}

#[cfg(feature = "http")]
impl prometheus_client::collector::Collector for SnapshotMetrics {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric as _;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let s = &self.status;
        for (name, help, value) in [
            ("snapshot_written", "Redis snapshots written", &s.written),
            (
                "snapshot_failures",
                "Redis snapshots not written (Redis unreachable or refusing)",
                &s.failures,
            ),
        ] {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        for (name, help, value) in [
            (
                "snapshot_bytes",
                "Size of the last snapshot's state, bytes",
                &s.bytes,
            ),
            (
                "snapshot_write_micros",
                "Duration of the last snapshot write (encoding and MULTI/EXEC), microseconds",
                &s.write_micros,
            ),
        ] {
            let gauge =
                ConstGauge::new(i64::try_from(value.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}
