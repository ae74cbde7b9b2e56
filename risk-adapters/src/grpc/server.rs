//! The tonic server: `risk.v1.RiskService`, `grpc.health.v1.Health` and server
//! reflection (v1 and v1alpha, so grpcurl works without the proto), with request limits and
//! graceful shutdown.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use risk_core::engine::{EngineEvent, MarketEvent, RiskEngine};
use risk_core::ids::Symbol;
use risk_core::market::MarketView as _;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::StreamExt as _;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::transport::Server;

use super::proto::v1::risk_service_server::RiskServiceServer;
use super::proto::FILE_DESCRIPTOR_SET;
use super::service::{now, RiskService};

/// Server limits and behaviour.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Approved checks reserve margin ([`RiskEngine::check_and_reserve`]). Default false.
    pub reserve_margin: bool,
    /// Calls handled at once per connection; more wait. A call counts until its handler
    /// has answered: a unary call until its response, `ApplyEvents` until its stream
    /// ends, `PreTradeCheckStream` only while it starts. Default 256.
    pub concurrency_limit_per_connection: usize,
    /// HTTP/2 streams (calls of any kind) open at once per connection, announced to the
    /// client, which waits for a free one. Default 1,024.
    pub max_concurrent_streams: u32,
    /// Largest request message accepted, in bytes, by every service (risk, health,
    /// reflection); a larger one is refused with `OUT_OF_RANGE`. Default 1 MiB.
    pub max_message_bytes: usize,
    /// Most messages a client may send on one `PreTradeCheckStream` or `ApplyEvents`
    /// stream; the next one ends the stream with `RESOURCE_EXHAUSTED` naming the limit,
    /// after the first ones were answered or applied. Default `None` (as is `Some(0)`): no
    /// limit. What a stream holds in memory does not grow with its length (requests are
    /// read only as fast as the client reads the answers, and HTTP/2 flow control bounds
    /// what is in flight), and a check stream is meant to live as long as a trading
    /// session, so a default count would end healthy streams at an arbitrary point; set
    /// one to make long-lived clients reconnect (to rebalance them across servers, or to
    /// bound the work one stream may ask for).
    pub max_stream_messages: Option<u64>,
    /// Period of the info-level check summary; `None` disables it. Default 60 s.
    pub summary_every: Option<Duration>,
    /// Hooks into every check (the Kafka readiness gate and publisher, the HTTP adapter's
    /// `/metrics`). Default none.
    pub hooks: Option<Arc<dyn super::service::CheckHooks>>,
    /// Threads that serve the connections, each running its own current-thread runtime;
    /// the caller's runtime only accepts and hands each new connection to the next thread
    /// in turn. A connection and all its calls then stay on one thread: no call is spawned
    /// onto, stolen by or woken from another worker, and the answers that become ready
    /// together leave in one write. One connection uses at most one thread. `0` (the
    /// default): the connections are served on the caller's runtime.
    pub connection_threads: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            reserve_margin: false,
            concurrency_limit_per_connection: 256,
            max_concurrent_streams: 1_024,
            max_message_bytes: 1 << 20,
            max_stream_messages: None,
            summary_every: Some(Duration::from_secs(60)),
            hooks: None,
            connection_threads: 0,
        }
    }
}

/// The server failed to start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The reflection service could not be built from the descriptor sets.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A connection thread or its runtime could not be started, or the thread panicked.
    #[error("connection thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Serves `engine` on `listener` until `shutdown` completes, then drains in-flight
/// requests and returns.
///
/// # Errors
/// [`ServeError`] when a service cannot be built or the transport fails.
pub async fn serve(
    engine: Arc<RiskEngine>,
    listener: tokio::net::TcpListener,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let service = RiskService::new(engine, options.reserve_margin)
        .with_max_stream_messages(options.max_stream_messages)
        .with_hooks(options.hooks.clone());
    let counters = service.counters();
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RiskServiceServer<RiskService>>().await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let limit = options.max_message_bytes;
    let health_service = health_service.max_decoding_message_size(limit);
    let reflection_v1 = reflection().build_v1()?.max_decoding_message_size(limit);
    let reflection_v1alpha = reflection()
        .build_v1alpha()?
        .max_decoding_message_size(limit);
    let risk = RiskServiceServer::new(service).max_decoding_message_size(options.max_message_bytes);

    let summary = options.summary_every.map(|every| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            let mut last = 0;
            loop {
                tick.tick().await;
                let checks = counters.checks.load(Ordering::Relaxed);
                if checks != last {
                    tracing::info!(
                        checks,
                        rejected = counters.rejected.load(Ordering::Relaxed),
                        flagged = counters.flagged.load(Ordering::Relaxed),
                        "checks served (totals)"
                    );
                    last = checks;
                }
            }
        })
    });

    let router = Server::builder()
        .concurrency_limit_per_connection(options.concurrency_limit_per_connection)
        .max_concurrent_streams(options.max_concurrent_streams)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(risk);
    let result = if options.connection_threads == 0 {
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(ServeError::from)
    } else {
        serve_on_threads(router, listener, options.connection_threads, shutdown).await
    };
    if let Some(task) = summary {
        task.abort();
    }
    result
}

/// Accepts on `listener` until `shutdown` and hands the connections, in turn, to `threads`
/// threads that each serve theirs with `router` on a current-thread runtime; then waits
/// for every thread to drain its connections.
async fn serve_on_threads(
    router: Router,
    listener: tokio::net::TcpListener,
    threads: usize,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let mut senders = Vec::with_capacity(threads);
    let mut done = Vec::with_capacity(threads);
    for index in 0..threads {
        let (connections, incoming) = mpsc::unbounded_channel::<std::net::TcpStream>();
        let (finished, finished_rx) = oneshot::channel();
        let router = router.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name(format!("grpc-conn-{index}"))
            .spawn(move || {
                // Each stream is registered with this thread's runtime (the reactor that
                // polls it), so its wake-ups never leave the thread.
                let incoming = UnboundedReceiverStream::new(incoming).map(|stream| {
                    let stream = tokio::net::TcpStream::from_std(stream)?;
                    stream.set_nodelay(true)?;
                    Ok::<_, std::io::Error>(stream)
                });
                // The incoming stream ends when the acceptor stops: the server then
                // drains its connections gracefully and returns.
                let result = runtime.block_on(
                    router.serve_with_incoming_shutdown(incoming, std::future::pending()),
                );
                let _ = finished.send(result);
            })?;
        senders.push(connections);
        done.push(finished_rx);
    }

    let mut shutdown = std::pin::pin!(shutdown);
    let mut next = 0;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Out of this runtime's reactor, into the serving thread's.
                    match stream.into_std() {
                        Ok(stream) => {
                            if senders[next].send(stream).is_err() {
                                // The thread has stopped: its result says why.
                                break;
                            }
                            next = (next + 1) % senders.len();
                        }
                        Err(e) => tracing::debug!(error = %e, "handing over a connection"),
                    }
                }
                Err(e) => {
                    // Such as EMFILE: keep accepting, without spinning on the error.
                    tracing::debug!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    // Stop accepting (the port is released), then let every thread drain.
    drop(listener);
    drop(senders);
    let mut result = Ok(());
    for finished in done {
        let outcome = match finished.await {
            Ok(served) => served.map_err(ServeError::from),
            Err(_) => Err(ServeError::Thread(std::io::Error::other(
                "a connection thread stopped without a result (panicked)",
            ))),
        };
        if result.is_ok() {
            result = outcome;
        }
    }
    result
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}

/// DEMO AID: every `every`, re-applies the mark held for each of `symbols` stamped with the
/// system clock, so a server without a mark feed keeps answering. It does not change the
/// core's staleness check, but it hides a dead feed: never run it beside a real one.
pub async fn refresh_marks(engine: Arc<RiskEngine>, symbols: Vec<Symbol>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        for symbol in &symbols {
            if let Some(mark) = engine.market().mark(symbol) {
                let event = EngineEvent::Market(MarketEvent::Mark {
                    symbol: symbol.clone(),
                    price: mark.price,
                    at: now(),
                });
                if let Err(e) = engine.apply(&event) {
                    tracing::warn!(%symbol, error = %e, "mark refresh failed");
                }
            }
        }
    }
}
