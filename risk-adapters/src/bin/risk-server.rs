//! `risk-server`: the riskgate engine behind gRPC (`risk.v1.RiskService`), with health
//! and reflection.
//!
//! ```text
//! risk-server --config examples/config/demo.toml --listen 127.0.0.1:50051
//! ```
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
    Arc<dyn risk_adapters::grpc::service::CheckHooks>,
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
        let (hooks, _ingest) = match &args.kafka_brokers {
            Some(brokers) => {
                let (hooks, ingest) = start_kafka(&engine, brokers, &args, config_version.clone())?;
                (Some(hooks), Some(ingest))
            }
            None => (None, None),
        };
        #[cfg(not(feature = "kafka"))]
        let hooks = None;
        let options = ServerOptions {
            hooks,
            reserve_margin: args.reserve_margin,
            concurrency_limit_per_connection: args.concurrency_limit,
            max_concurrent_streams: args.max_concurrent_streams,
            max_message_bytes: args.max_message_bytes,
            max_stream_messages: Some(args.max_stream_messages).filter(|n| *n > 0),
            summary_every: (args.summary_secs > 0).then(|| Duration::from_secs(args.summary_secs)),
        };
        server::serve(engine, listener, options, server::shutdown_signal()).await?;
        tracing::info!("risk-server stopped");
        anyhow::Ok(())
    })
}
