//! `risk-server`: the riskgate engine behind gRPC (`risk.v1.RiskService`), with health
//! and reflection.
//!
//! ```text
//! risk-server --config examples/config/demo.toml --listen 127.0.0.1:50051
//! ```
//!
//! With the `http` feature it also serves the admin REST API (`--http-listen`) over a
//! config store (`--database`, default `sqlite://riskgate.db`): the first start seeds an
//! empty store from the config file's ladders, rules and profiles; afterwards the store
//! wins and follows every admin write live. The same database holds the prop-firm
//! risk-signal service's accounts, trades and results (`POST /v1/trades`,
//! `GET /risk-report/{login}`, ...); its rulebook and initial signal settings come from
//! the config file's `[engine.metrics]`, `[engine.score]`, `[rulebook]`, `[rulebooks.*]`,
//! `[detectors]` and `[rule_weights]` tables, as for `risk report --config`.
//!
//! With the `kafka` feature, `--kafka-brokers` feeds the engine from the input topics and
//! publishes every check; with the `redis` feature too, `--redis` keeps snapshots of that
//! state and the offsets it includes, and a restart resumes from them
//! (`risk-adapters/README-kafka.md`).
//!
//! Logs go to stderr; `RUST_LOG` (or `--log`) sets the filter, e.g. `risk_adapters=debug`
//! for one line per rejected check.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use risk_adapters::config_file::ConfigFile;
use risk_adapters::grpc::server::{self, ServerOptions};
use risk_adapters::grpc::service::now;
use risk_core::ids::Symbol;
use tracing_subscriber::EnvFilter;

/// With the `mimalloc` feature, mimalloc serves every allocation (see the feature's note).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The riskgate pre-trade risk server (gRPC).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Engine config file (TOML, or JSON by extension), with optional initial state.
    #[arg(long)]
    config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Approved checks reserve the order's initial margin until the order service reports
    /// the order opened, filled, cancelled or released (ApplyEvent). Off: checks only.
    #[arg(long)]
    reserve_margin: bool,
    /// DEMO AID: every N ms, re-stamp the marks held for the config file's `[[marks]]`
    /// symbols with the current time, so a server without a mark feed keeps answering.
    /// Never use with a real mark feed: it hides a dead feed from the staleness check.
    #[arg(long, value_name = "N")]
    refresh_marks_ms: Option<u64>,
    /// Calls handled at once per connection; more wait.
    #[arg(long, default_value_t = 256)]
    concurrency_limit: usize,
    /// HTTP/2 streams (calls) open at once per connection.
    #[arg(long, default_value_t = 1_024)]
    max_concurrent_streams: u32,
    /// Largest request message, in bytes (OUT_OF_RANGE above it).
    #[arg(long, default_value_t = 1 << 20)]
    max_message_bytes: usize,
    /// Most messages a client may send on one PreTradeCheckStream or ApplyEvents stream;
    /// the next ends the stream with RESOURCE_EXHAUSTED (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_stream_messages: u64,
    /// Seconds between info-level check summaries (0: none).
    #[arg(long, default_value_t = 60)]
    summary_secs: u64,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    worker_threads: Option<usize>,
    /// Threads serving the gRPC connections, each on its own current-thread runtime, new
    /// connections handed to them in turn (default: one per core; 0: serve them on the
    /// main runtime's workers instead).
    #[arg(long, value_name = "N")]
    connection_threads: Option<usize>,
    /// Log filter when RUST_LOG is not set.
    #[arg(long, default_value = "info")]
    log: String,
    /// Kafka brokers (HOST:PORT[,...]): learn state from the input topics (replayed from
    /// the start; checks answer STALE_DATA until caught up) and publish every check's
    /// events (Avro). Needs the `kafka` feature.
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "HOST:PORT")]
    kafka_brokers: Option<String>,
    /// Environment suffix of every topic name (e.g. `.dev`).
    #[cfg(feature = "kafka")]
    #[arg(long, default_value = "")]
    topic_suffix: String,
    /// Consumer group the state consumer commits its offsets to.
    #[cfg(feature = "kafka")]
    #[arg(long, default_value = "riskgate")]
    group_id: String,
    /// Checks held for publishing before new ones are dropped (counted, logged).
    #[cfg(feature = "kafka")]
    #[arg(long, default_value_t = 100_000)]
    publish_queue: usize,
    /// Threads encoding check events (an account's events always use the same one).
    #[cfg(feature = "kafka")]
    #[arg(long, default_value_t = 2)]
    publish_threads: usize,
    /// Redis for L2 snapshots (redis://HOST:PORT/DB): the consumers' state and the
    /// offsets it includes are written there, and a restart resumes from them instead of
    /// replaying the topics. Redis away at start: logged, replay from the start, writes
    /// retried. Needs --kafka-brokers and the `redis` feature.
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "URL", requires = "kafka_brokers")]
    redis: Option<String>,
    /// Longest time between two snapshots while the input moves, ms.
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "MS", default_value_t = 1_000)]
    snapshot_every_ms: u64,
    /// Most state-topic messages between two snapshots.
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "M", default_value_t = 10_000)]
    snapshot_every_events: u64,
    /// Prefix of the snapshot's Redis keys (`PREFIX:snapshot:state`, `:offsets`, `:meta`).
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "PREFIX", default_value = risk_adapters::snapshot::DEFAULT_PREFIX)]
    snapshot_key: String,
    /// Address of the admin HTTP API (/v1, /healthz, /readyz, /metrics, /docs).
    #[cfg(feature = "http")]
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_listen: SocketAddr,
    /// The config store: sqlite://PATH (created when missing) or postgres://...
    #[cfg(feature = "http")]
    #[arg(long, default_value = "sqlite://riskgate.db")]
    database: String,
    /// Admin bearer tokens, one `name:token` a line. Without it (or --insecure-admin) the
    /// admin routes answer 403.
    #[cfg(feature = "http")]
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// Admin routes without a token: for local experiments only.
    #[cfg(feature = "http")]
    #[arg(long, conflicts_with = "admin_token_file")]
    insecure_admin: bool,
    /// Allow webhook targets on loopback, private, link-local and other non-public
    /// addresses (refused by default, when subscribing and when connecting).
    #[cfg(feature = "webhooks")]
    #[arg(long)]
    allow_private_webhooks: bool,
    /// Webhook attempt timeout in milliseconds (connect, send, answer).
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    webhook_timeout_ms: u64,
    /// Attempts before a webhook delivery is dead-lettered.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    webhook_max_attempts: u32,
    /// Delay after a webhook's first failed attempt, in milliseconds; doubled after each
    /// (capped at an hour), jittered, never before the receiver's Retry-After.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    webhook_backoff_ms: u64,
}

/// The config version written on every decision: the file's name and a hash of its
/// bytes (FNV-1a, 64 bits), so two servers on the same file agree.
#[cfg(feature = "kafka")]
fn config_version(path: &std::path::Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Ok(format!("{name}@{hash:016x}"))
}

/// The snapshot writer: where the consumer's checkpoints go, and its counters.
#[cfg(feature = "redis")]
type Snapshots = (
    risk_adapters::kafka::CheckpointPolicy,
    Arc<risk_adapters::snapshot::SnapshotStatus>,
);

/// The snapshot to resume from and the snapshot writer, with `--redis`. Redis away or a
/// snapshot that cannot be used: logged, and the consumers replay from the start.
#[cfg(feature = "redis")]
fn start_snapshots(
    args: &Args,
) -> anyhow::Result<(Option<risk_adapters::kafka::Checkpoint>, Option<Snapshots>)> {
    use risk_adapters::kafka::CheckpointPolicy;
    use risk_adapters::snapshot::{RedisSnapshots, SnapshotError, SnapshotWriter};
    let Some(url) = &args.redis else {
        return Ok((None, None));
    };
    let store =
        RedisSnapshots::open(url, &args.snapshot_key).with_context(|| format!("--redis {url}"))?;
    let key = store.keys().state.clone();
    let resume = match store.load() {
        Ok(Some(checkpoint)) => {
            tracing::info!(
                key,
                accounts = checkpoint.engine.accounts.len(),
                partitions = checkpoint.offsets.len(),
                "redis: snapshot loaded"
            );
            Some(checkpoint)
        }
        Ok(None) => {
            tracing::info!(
                key,
                "redis: no snapshot; replaying the input topics from the start"
            );
            None
        }
        Err(e @ SnapshotError::Redis(_)) => {
            tracing::error!(
                error = %e,
                url,
                "redis: unavailable at start; replaying the input topics from the start \
                 (snapshots are retried while running)"
            );
            None
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                key,
                "redis: the snapshot is refused; replaying the input topics from the start \
                 (the next snapshot replaces it)"
            );
            None
        }
    };
    let writer = SnapshotWriter::start(store).context("starting the Redis snapshot writer")?;
    let status = writer.status();
    tracing::info!(
        key,
        every_ms = args.snapshot_every_ms,
        every_events = args.snapshot_every_events,
        "redis: snapshots on"
    );
    let policy = CheckpointPolicy {
        every: Duration::from_millis(args.snapshot_every_ms.max(1)),
        every_events: args.snapshot_every_events.max(1),
        sink: Arc::new(writer),
    };
    Ok((resume, Some((policy, status))))
}

/// The Kafka side of the server: the check hooks, the running consumers and, with
/// `--redis`, the snapshot writer's counters.
#[cfg(feature = "kafka")]
struct KafkaParts {
    hooks: Arc<risk_adapters::kafka::KafkaCheckHooks>,
    ingest: risk_adapters::kafka::KafkaIngest,
    #[cfg(all(feature = "redis", feature = "http"))]
    snapshots: Option<Arc<risk_adapters::snapshot::SnapshotStatus>>,
}

/// Starts the consumers (resuming from the Redis snapshot with `--redis`) and the
/// publisher; the hooks for the check path.
#[cfg(feature = "kafka")]
fn start_kafka(
    engine: &Arc<risk_core::engine::RiskEngine>,
    brokers: &str,
    args: &Args,
    config_version: String,
) -> anyhow::Result<KafkaParts> {
    use risk_adapters::kafka::{
        ConsumerOptions, DecisionPublisher, KafkaCheckHooks, KafkaIngest, PublisherOptions, Topics,
    };
    let topics = Topics::new(&args.topic_suffix);
    #[cfg(feature = "redis")]
    let (resume, snapshots) = start_snapshots(args)?;
    #[cfg(feature = "redis")]
    let (checkpoints, snapshots) = snapshots.unzip();
    #[cfg(not(feature = "redis"))]
    let (resume, checkpoints) = (None, None);
    let ingest = KafkaIngest::start_with(
        Arc::clone(engine),
        &ConsumerOptions {
            brokers: brokers.to_owned(),
            topics: topics.clone(),
            group_id: args.group_id.clone(),
            timeout: Duration::from_secs(10),
        },
        resume,
        checkpoints,
    )
    .context("starting the Kafka consumers")?;
    let publisher = DecisionPublisher::start(&PublisherOptions {
        brokers: brokers.to_owned(),
        topics,
        queue_capacity: args.publish_queue,
        producer_queue_messages: 500_000,
        config_version,
        encoder_threads: args.publish_threads,
    })
    .context("starting the Kafka publisher")?;
    tracing::info!(brokers, suffix = %args.topic_suffix, "kafka: consuming and publishing");
    if args.summary_secs > 0 {
        let (ingest, published) = (ingest.status(), publisher.status());
        let every = Duration::from_secs(args.summary_secs);
        tokio::spawn(async move {
            use std::sync::atomic::Ordering::Relaxed;
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                tracing::info!(
                    ready = ingest.is_ready(),
                    applied = ingest.applied.load(Relaxed),
                    duplicates = ingest.duplicates.load(Relaxed),
                    marks = ingest.marks_applied.load(Relaxed),
                    dead_lettered = ingest.dead_lettered.load(Relaxed),
                    checks_queued = published.queued.load(Relaxed),
                    checks_dropped = published.dropped.load(Relaxed),
                    delivered = published.delivered.load(Relaxed),
                    failed = published.failed.load(Relaxed),
                    "kafka summary"
                );
            }
        });
    }
    #[cfg(feature = "redis")]
    if let (Some(status), true) = (&snapshots, args.summary_secs > 0) {
        let status = Arc::clone(status);
        let every = Duration::from_secs(args.summary_secs);
        tokio::spawn(async move {
            use std::sync::atomic::Ordering::Relaxed;
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                tracing::info!(
                    written = status.written.load(Relaxed),
                    failures = status.failures.load(Relaxed),
                    bytes = status.bytes.load(Relaxed),
                    write_micros = status.write_micros.load(Relaxed),
                    "redis snapshot summary"
                );
            }
        });
    }
    let hooks = KafkaCheckHooks {
        ingest: Some(ingest.status()),
        publisher: Some(publisher),
    };
    Ok(KafkaParts {
        hooks: Arc::new(hooks),
        ingest,
        #[cfg(all(feature = "redis", feature = "http"))]
        snapshots,
    })
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("risk-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&args.log))
        .context("--log")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let origin = args.config.display().to_string();
    #[cfg(feature = "kafka")]
    let config_version = config_version(&args.config)?;
    // The config error's text already names the file, the key and the problem.
    let file = ConfigFile::load(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    // With Kafka, state comes from the input topics only: the file's initial state would
    // be applied twice (a balance is a sum of deltas).
    #[cfg(feature = "kafka")]
    let file = if args.kafka_brokers.is_some() {
        let mut file = file;
        if !(file.instruments.is_empty() && file.marks.is_empty() && file.accounts.is_empty()) {
            eprintln!(
                "risk-server: --kafka-brokers: the config file's instruments, marks and \
                 accounts are ignored; state comes from the input topics"
            );
        }
        file.instruments.clear();
        file.marks.clear();
        file.accounts.clear();
        file
    } else {
        file
    };
    #[cfg(feature = "http")]
    let plane = config_plane::Plan::new(&args, &file)?;
    let mark_symbols: Vec<Symbol> = file.marks.iter().map(|m| m.symbol.clone()).collect();
    let engine = Arc::new(
        file.into_engine(now(), &origin)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    tracing::info!(
        config = %origin,
        accounts = engine.account_count(),
        "config loaded"
    );

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.worker_threads.filter(|n| *n > 0) {
        runtime.worker_threads(n);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        tracing::info!(listen = %listener.local_addr()?, "risk-server listening");
        if let Some(ms) = args.refresh_marks_ms.filter(|ms| *ms > 0) {
            tracing::warn!(every_ms = ms, "demo aid: re-stamping configured marks");
            tokio::spawn(server::refresh_marks(
                Arc::clone(&engine),
                mark_symbols,
                Duration::from_millis(ms),
            ));
        }
        #[cfg(feature = "kafka")]
        let parts = match &args.kafka_brokers {
            Some(brokers) => Some(start_kafka(
                &engine,
                brokers,
                &args,
                config_version.clone(),
            )?),
            None => None,
        };
        #[cfg(all(feature = "kafka", feature = "http"))]
        let collectors = {
            let mut collectors: Vec<Box<dyn prometheus_client::collector::Collector>> = Vec::new();
            if let Some(k) = &parts {
                collectors.push(Box::new(risk_adapters::kafka::KafkaMetrics {
                    ingest: k.hooks.ingest.clone(),
                    publisher: k.hooks.publisher.as_ref().map(|p| p.status()),
                }));
                #[cfg(feature = "redis")]
                if let Some(status) = &k.snapshots {
                    collectors.push(Box::new(risk_adapters::snapshot::SnapshotMetrics {
                        status: Arc::clone(status),
                    }));
                }
            }
            collectors
        };
        #[cfg(all(not(feature = "kafka"), feature = "http"))]
        let collectors = Vec::new();
        #[cfg(feature = "kafka")]
        let (kafka, _ingest) = match parts {
            Some(p) => (Some(p.hooks), Some(p.ingest)),
            None => (None, None),
        };
        #[cfg(feature = "kafka")]
        let hooks = kafka.map(|k| {
            let hooks: Arc<dyn risk_adapters::grpc::service::CheckHooks> = k;
            hooks
        });
        #[cfg(not(feature = "kafka"))]
        let hooks = None;
        #[cfg(feature = "http")]
        let (metrics, http) = plane
            .start(Arc::clone(&engine), hooks.clone(), collectors)
            .await?;
        #[cfg(feature = "http")]
        let hooks: Option<Arc<dyn risk_adapters::grpc::service::CheckHooks>> = match hooks {
            Some(kafka) => Some(Arc::new(vec![kafka, metrics])),
            None => Some(metrics),
        };
        let options = ServerOptions {
            hooks,
            reserve_margin: args.reserve_margin,
            concurrency_limit_per_connection: args.concurrency_limit,
            max_concurrent_streams: args.max_concurrent_streams,
            max_message_bytes: args.max_message_bytes,
            max_stream_messages: Some(args.max_stream_messages).filter(|n| *n > 0),
            summary_every: (args.summary_secs > 0).then(|| Duration::from_secs(args.summary_secs)),
            connection_threads: args.connection_threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            }),
        };
        #[cfg(feature = "http")]
        let shutdown = http.shutdown_signal();
        #[cfg(not(feature = "http"))]
        let shutdown = server::shutdown_signal();
        server::serve(engine, listener, options, shutdown).await?;
        #[cfg(feature = "http")]
        http.stop().await;
        tracing::info!("risk-server stopped");
        anyhow::Ok(())
    })
}

/// The config store and the admin HTTP API.
#[cfg(feature = "http")]
mod config_plane {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use anyhow::Context as _;
    use risk_adapters::config_file::ConfigFile;
    use risk_adapters::grpc::service::CheckHooks;
    use risk_adapters::http::auth::{AdminAccess, Tokens};
    use risk_adapters::http::{self, metrics::Metrics, AppState};
    use risk_adapters::report_config::ReportConfig;
    use risk_adapters::signal::{self, SignalService, SignalSettings};
    use risk_adapters::store::{self, live::LiveConfig, Seed};
    use risk_core::config::RiskConfig;
    use risk_core::engine::RiskEngine;

    use super::Args;

    /// What to start, checked before anything is.
    pub struct Plan {
        listen: SocketAddr,
        database: String,
        admin: AdminAccess,
        base: RiskConfig,
        seed: Seed,
        #[cfg(feature = "webhooks")]
        webhooks: risk_adapters::webhook::DispatchOptions,
        signals: ReportConfig,
    }

    /// The running HTTP server.
    pub struct Running {
        stop: tokio::sync::watch::Sender<bool>,
        server: tokio::task::JoinHandle<std::io::Result<()>>,
        follow: tokio::task::JoinHandle<()>,
        #[cfg(feature = "webhooks")]
        dispatcher: tokio::task::JoinHandle<()>,
    }

    impl Plan {
        pub fn new(args: &Args, file: &ConfigFile) -> anyhow::Result<Self> {
            let admin = match (&args.admin_token_file, args.insecure_admin) {
                (Some(path), _) => {
                    AdminAccess::Tokens(Arc::new(Tokens::load(path).context("--admin-token-file")?))
                }
                (None, true) => {
                    tracing::warn!("--insecure-admin: admin routes need no token");
                    AdminAccess::Insecure
                }
                (None, false) => {
                    tracing::warn!(
                        "no --admin-token-file: admin routes are off (403); health, metrics and docs are served"
                    );
                    AdminAccess::Off
                }
            };
            let text = std::fs::read_to_string(&args.config)
                .with_context(|| format!("reading {}", args.config.display()))?;
            let signals = ReportConfig::from_file_text(&text, &args.config)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(Self {
                listen: args.http_listen,
                database: args.database.clone(),
                admin,
                base: file.engine.clone(),
                seed: Seed::from_file(file),
                #[cfg(feature = "webhooks")]
                webhooks: {
                    use std::time::Duration;
                    if args.allow_private_webhooks {
                        tracing::warn!(
                            "--allow-private-webhooks: webhook targets may be loopback or private addresses"
                        );
                    }
                    risk_adapters::webhook::DispatchOptions {
                        timeout: Duration::from_millis(args.webhook_timeout_ms),
                        max_attempts: args.webhook_max_attempts,
                        backoff_base: Duration::from_millis(args.webhook_backoff_ms),
                        guard: risk_adapters::webhook::Guard::new(args.allow_private_webhooks),
                        ..risk_adapters::webhook::DispatchOptions::default()
                    }
                },
                signals,
            })
        }

        /// Opens the store, loads its config into `engine`, follows other writers and
        /// serves HTTP (`/readyz` gated on `readiness`, `collectors` on `/metrics`); the
        /// metrics are check hooks for the gRPC service.
        pub async fn start(
            self,
            engine: Arc<RiskEngine>,
            readiness: Option<Arc<dyn CheckHooks>>,
            collectors: Vec<Box<dyn prometheus_client::collector::Collector>>,
        ) -> anyhow::Result<(Arc<dyn CheckHooks>, Running)> {
            let store = store::open(&self.database)
                .await
                .with_context(|| format!("--database {}", self.database))?;
            let live = LiveConfig::start(store, engine, self.base, Some(&self.seed))
                .await
                .context("loading the config store")?;
            let follow = live.follow();
            let signal_store = signal::store::open(&self.database)
                .await
                .with_context(|| format!("--database {}", self.database))?;
            let signals = SignalService::start(
                signal_store,
                SignalSettings {
                    metrics: self.signals.metrics,
                    score: self.signals.score,
                },
                self.signals.rules,
            )
            .await
            .context("loading the risk-signal results")?;
            tracing::info!(
                accounts = signals.counts().accounts,
                trades = signals.counts().trades,
                "risk-signal service loaded"
            );
            let mut metrics = Metrics::new();
            for collector in collectors {
                metrics.register_collector(collector);
            }
            // The webhook dispatcher, over the store's database (its own tables).
            #[cfg(feature = "webhooks")]
            let (webhooks, dispatcher) = {
                use risk_adapters::webhook::{self, DeliveryCounters, Dispatcher, WebhookMetrics};
                let store = webhook::store::from_pool(live.store().db_pool());
                let counters = Arc::new(DeliveryCounters::default());
                metrics.register_collector(Box::new(WebhookMetrics(Arc::clone(&counters))));
                let guard = self.webhooks.guard;
                let dispatcher = Dispatcher::new(Arc::clone(&store), self.webhooks, counters)
                    .context("building the webhook HTTP client")?
                    .spawn();
                (
                    Some(Arc::new(webhook::Webhooks { store, guard })),
                    dispatcher,
                )
            };
            let metrics = Arc::new(metrics);
            let listener = tokio::net::TcpListener::bind(self.listen)
                .await
                .with_context(|| format!("binding --http-listen {}", self.listen))?;
            tracing::info!(http_listen = %listener.local_addr()?, database = %self.database, "admin HTTP API listening");
            let state = AppState {
                live,
                admin: self.admin,
                metrics: Arc::clone(&metrics),
                readiness,
                #[cfg(feature = "webhooks")]
                webhooks,
                signal: Some(signals),
            };
            let (stop, mut stopped) = tokio::sync::watch::channel(false);
            let server = tokio::spawn(http::serve(listener, state, async move {
                let _ = stopped.wait_for(|s| *s).await;
            }));
            let metrics: Arc<dyn CheckHooks> = metrics;
            Ok((
                metrics,
                Running {
                    stop,
                    server,
                    follow,
                    #[cfg(feature = "webhooks")]
                    dispatcher,
                },
            ))
        }
    }

    impl Running {
        /// Completes on SIGINT or SIGTERM.
        pub fn shutdown_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
            let mut stopped = self.stop.subscribe();
            async move {
                tokio::select! {
                    () = risk_adapters::grpc::server::shutdown_signal() => {}
                    _ = stopped.wait_for(|s| *s) => {}
                }
            }
        }

        /// Stops the HTTP server (draining its requests) and the store follower.
        pub async fn stop(self) {
            let _ = self.stop.send(true);
            match self.server.await {
                Ok(Err(e)) => tracing::error!(error = %e, "HTTP server failed"),
                Err(e) => tracing::error!(error = %e, "HTTP server task failed"),
                Ok(Ok(())) => {}
            }
            self.follow.abort();
            #[cfg(feature = "webhooks")]
            self.dispatcher.abort();
        }
    }
}
