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

/// Starts the consumers and the publisher; the hooks for the check path.
#[cfg(feature = "kafka")]
fn start_kafka(
    engine: &Arc<risk_core::engine::RiskEngine>,
    brokers: &str,
    args: &Args,
    config_version: String,
) -> anyhow::Result<(
    Arc<risk_adapters::kafka::KafkaCheckHooks>,
    risk_adapters::kafka::KafkaIngest,
)> {
    use risk_adapters::kafka::{
        ConsumerOptions, DecisionPublisher, KafkaCheckHooks, KafkaIngest, PublisherOptions, Topics,
    };
    let topics = Topics::new(&args.topic_suffix);
    let ingest = KafkaIngest::start(
        Arc::clone(engine),
        &ConsumerOptions {
            brokers: brokers.to_owned(),
            topics: topics.clone(),
            group_id: args.group_id.clone(),
            timeout: Duration::from_secs(10),
        },
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
    let hooks = KafkaCheckHooks {
        ingest: Some(ingest.status()),
        publisher: Some(publisher),
    };
    Ok((Arc::new(hooks), ingest))
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
        let (kafka, _ingest) = match &args.kafka_brokers {
            Some(brokers) => {
                let (hooks, ingest) = start_kafka(&engine, brokers, &args, config_version.clone())?;
                (Some(hooks), Some(ingest))
            }
            None => (None, None),
        };
        #[cfg(all(feature = "kafka", feature = "http"))]
        let collector = kafka.as_ref().map(|k| {
            let collector: Box<dyn prometheus_client::collector::Collector> =
                Box::new(risk_adapters::kafka::KafkaMetrics {
                    ingest: k.ingest.clone(),
                    publisher: k.publisher.as_ref().map(|p| p.status()),
                });
            collector
        });
        #[cfg(all(not(feature = "kafka"), feature = "http"))]
        let collector = None;
        #[cfg(feature = "kafka")]
        let hooks = kafka.map(|k| {
            let hooks: Arc<dyn risk_adapters::grpc::service::CheckHooks> = k;
            hooks
        });
        #[cfg(not(feature = "kafka"))]
        let hooks = None;
        #[cfg(feature = "http")]
        let (metrics, http) = plane
            .start(Arc::clone(&engine), hooks.clone(), collector)
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
        signals: ReportConfig,
    }

    /// The running HTTP server.
    pub struct Running {
        stop: tokio::sync::watch::Sender<bool>,
        server: tokio::task::JoinHandle<std::io::Result<()>>,
        follow: tokio::task::JoinHandle<()>,
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
                signals,
            })
        }

        /// Opens the store, loads its config into `engine`, follows other writers and
        /// serves HTTP (`/readyz` gated on `readiness`, `collector` on `/metrics`); the
        /// metrics are check hooks for the gRPC service.
        pub async fn start(
            self,
            engine: Arc<RiskEngine>,
            readiness: Option<Arc<dyn CheckHooks>>,
            collector: Option<Box<dyn prometheus_client::collector::Collector>>,
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
            if let Some(collector) = collector {
                metrics.register_collector(collector);
            }
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
        }
    }
}
