//! Load generator for `risk-server`: N concurrent tasks send `PreTradeCheck` over loopback
//! for a fixed time and report throughput and latency percentiles.
//!
//! ```text
//! cargo run --release -p risk-adapters --features grpc --bin risk-server -- \
//!     --config examples/config/demo.toml &
//! cargo run --release -p risk-adapters --features grpc --example loadgen -- --secs 10
//! ```
//!
//! Setup: it creates `--accounts` accounts of its own (`loadgen-N`, through one
//! `ApplyEvents` stream) so the per-account order-rate limit is not what is measured, and
//! it feeds a BTCUSDT mark every 500 ms, as a market-data feed would, so marks stay fresh.
//! Every order id is unique. Only 127.0.0.1 (or another loopback address) is a sensible target.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Parser;
use hdrhistogram::Histogram;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use pb::account_event::Change;
use pb::account_or_market_event::Event;
use pb::risk_service_client::RiskServiceClient;
use risk_adapters::grpc::proto::v1 as pb;
use tonic::codegen::{http, Body, Bytes, Context, Future, Pin, Poll, Service, StdError};
use tonic::transport::{Channel, Endpoint};

/// Drives PreTradeCheck load against a risk-server.
#[derive(Debug, Parser)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Concurrent request tasks (requests in flight).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// HTTP/2 connections the tasks share round-robin.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Accounts to create and spread orders over.
    #[arg(long, default_value_t = 2_000)]
    accounts: usize,
    /// Send checks over one `PreTradeCheckStream` per task (request, then its response)
    /// instead of unary `PreTradeCheck` calls.
    #[arg(long)]
    stream: bool,
    /// Client runtime threads (1: a current-thread runtime, the cheapest per request).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// How the check tasks reach the server: `h2`, the generated client straight over a
    /// hyper HTTP/2 connection (the cheapest client, so the server is what is measured),
    /// or `channel`, over tonic's `Channel` (what most applications use: it adds a
    /// buffer task and reconnection between the client and the connection).
    #[arg(long, value_enum, default_value_t = Transport::H2)]
    transport: Transport,
    /// The server's process id: also print the server's CPU time per check over the
    /// measured seconds (Linux `/proc/PID/stat`), beside the client's own.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
}

/// The check tasks' transport (see `--transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Transport {
    H2,
    Channel,
}

/// A tonic client transport over one hyper HTTP/2 connection: each call is one
/// `send_request`, with no buffer task or reconnect layer in between.
#[derive(Clone)]
struct H2Connection(SendRequest<tonic::body::Body>);

impl H2Connection {
    /// Connects to `addr` (`http://host:port`) with `TCP_NODELAY` and spawns the
    /// connection's task.
    async fn connect(addr: &str) -> anyhow::Result<Self> {
        let uri: http::Uri = addr.parse().context("--addr")?;
        let authority = uri.authority().context("--addr has no host:port")?.as_str();
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (send, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(TokioIo::new(stream))
            .await
            .context("HTTP/2 handshake")?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("loadgen: connection: {e}");
            }
        });
        Ok(Self(send))
    }
}

impl Service<http::Request<tonic::body::Body>> for H2Connection {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(request))
    }
}

#[derive(Default)]
struct Tally {
    latency_us: Option<Histogram<u64>>,
    approved: u64,
    flagged: u64,
    rejected: u64,
    errors: u64,
    first_reject: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.concurrency > 0 && args.connections > 0 && args.accounts > 0,
        "counts must be positive"
    );
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("tokio runtime")?;
    runtime.block_on(run(args))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut channels = Vec::new();
    for _ in 0..args.connections {
        let channel = Endpoint::from_shared(args.addr.clone())?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("connecting to {}", args.addr))?;
        channels.push(channel);
    }
    let run_id = unix_ms();
    setup(&channels[0], args.accounts, run_id).await?;

    let warmup_end = Instant::now() + Duration::from_secs(args.warmup_secs);
    let end = warmup_end + Duration::from_secs(args.secs);
    let marks = tokio::spawn(feed_marks(channels[0].clone(), end));
    let mut tasks = Vec::new();
    let mut connections = Vec::new();
    if args.transport == Transport::H2 {
        for _ in 0..args.connections {
            connections.push(H2Connection::connect(&args.addr).await?);
        }
    }
    let origin: http::Uri = args.addr.parse().context("--addr")?;
    for task in 0..args.concurrency {
        let plan = Plan {
            task,
            tasks: args.concurrency,
            accounts: args.accounts,
            run_id,
            measure_from: warmup_end,
            end,
        };
        tasks.push(match args.transport {
            Transport::H2 => {
                let connection = connections[task % connections.len()].clone();
                let client = RiskServiceClient::with_origin(connection, origin.clone());
                tokio::spawn(worker(client, plan, args.stream))
            }
            Transport::Channel => {
                let client = RiskServiceClient::new(channels[task % channels.len()].clone());
                tokio::spawn(worker(client, plan, args.stream))
            }
        });
    }
    // CPU time is read when measuring starts and again when every task has ended, so
    // setup and warm-up are left out and the per-check figures are steady under load.
    let server_pid = args.server_pid;
    let cpu_start = tokio::spawn(async move {
        tokio::time::sleep_until(warmup_end.into()).await;
        cpu_ticks(server_pid)
    });
    let mut total = Tally::default();
    for t in tasks {
        let tally = t.await.context("worker task")??;
        match (&mut total.latency_us, tally.latency_us) {
            (Some(h), Some(other)) => h.add(other).context("merging histograms")?,
            (slot @ None, other) => *slot = other,
            (Some(_), None) => {}
        }
        total.approved += tally.approved;
        total.flagged += tally.flagged;
        total.rejected += tally.rejected;
        total.errors += tally.errors;
        if total.first_reject.is_none() {
            total.first_reject = tally.first_reject;
        }
    }
    let cpu_end = cpu_ticks(server_pid);
    let cpu_start = cpu_start.await.context("CPU reading")?;
    marks.await.context("mark feed")??;

    let h = total.latency_us.context("no samples")?;
    let secs = args.secs as f64;
    println!(
        "loadgen: {} {} tasks over {} {} connections, {} client thread(s), {} s measured after {} s warm-up, {} accounts",
        args.concurrency,
        if args.stream { "stream" } else { "unary" },
        args.connections,
        match args.transport {
            Transport::H2 => "h2",
            Transport::Channel => "channel",
        },
        args.threads.max(1),
        args.secs,
        args.warmup_secs,
        args.accounts
    );
    println!(
        "checks: {} ({:.0}/s)  approved {}  flagged {}  rejected {}  errors {}",
        h.len(),
        h.len() as f64 / secs,
        total.approved,
        total.flagged,
        total.rejected,
        total.errors
    );
    println!(
        "latency us: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.90),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
    let checks = h.len().max(1) as f64;
    let per_check = |start: Option<u64>, end: Option<u64>| {
        start
            .zip(end)
            .map(|(s, e)| e.saturating_sub(s) as f64 * 1e6 / TICKS_PER_SEC / checks)
    };
    if let Some(client) = per_check(cpu_start.client, cpu_end.client) {
        print!("cpu us/check: client {client:.1}");
        match per_check(cpu_start.server, cpu_end.server) {
            Some(server) => println!("  server {server:.1}"),
            None => println!(),
        }
    }
    if let Some(reject) = total.first_reject {
        println!("first reject: {reject}");
    }
    Ok(())
}

/// Linux's `USER_HZ`: the unit of `utime` and `stime` in `/proc/PID/stat` (100 on every
/// architecture's user ABI).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU time (user + system, in ticks) used so far by this process and by the server.
#[derive(Debug, Clone, Copy)]
struct CpuTicks {
    client: Option<u64>,
    server: Option<u64>,
}

fn cpu_ticks(server_pid: Option<u32>) -> CpuTicks {
    CpuTicks {
        client: proc_cpu_ticks("self"),
        server: server_pid.and_then(|pid| proc_cpu_ticks(&pid.to_string())),
    }
}

/// `utime + stime` of a process from `/proc/{pid}/stat` (all its threads); `None` when it
/// cannot be read (not Linux, no such process).
fn proc_cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields
    // after its closing parenthesis, where field 3 (state) comes first.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Creates the load accounts: KYC L2, ample balance and limits, 20x.
async fn setup(channel: &Channel, accounts: usize, run_id: u64) -> anyhow::Result<()> {
    let mut events = Vec::with_capacity(accounts * 2);
    for i in 0..accounts {
        let account_id = format!("loadgen-{i}");
        let event = |seq, change| pb::AccountOrMarketEvent {
            event: Some(Event::Account(pb::AccountEvent {
                account_id: account_id.clone(),
                seq,
                change: Some(change),
            })),
        };
        events.push(event(
            run_id * 2,
            Change::ProfileUpsert(pb::ProfileUpsert {
                user_id: format!("loadgen-user-{i}"),
                profile: Some(pb::RiskProfile {
                    kyc_level: pb::KycLevel::L2 as i32,
                    exposure_limit: "100000000".into(),
                    frozen: false,
                    max_leverage: "20".into(),
                    risk_score: "0".into(),
                    trading_state: pb::TradingState::Active as i32,
                }),
            }),
        ));
        events.push(event(
            run_id * 2 + 1,
            Change::BalanceChange(pb::BalanceChange {
                delta: "1000000".into(),
            }),
        ));
    }
    let summary = RiskServiceClient::new(channel.clone())
        .apply_events(tokio_stream::iter(events))
        .await
        .context("creating the load accounts")?
        .into_inner();
    anyhow::ensure!(
        summary.rejected == 0,
        "setup events rejected: {:?}",
        summary.errors
    );
    send_mark(&mut RiskServiceClient::new(channel.clone())).await
}

/// Sends a fresh BTCUSDT mark every 500 ms until `end`.
async fn feed_marks(channel: Channel, end: Instant) -> anyhow::Result<()> {
    let mut client = RiskServiceClient::new(channel);
    while Instant::now() < end {
        send_mark(&mut client).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// A BTCUSDT mark at 50,000, stamped by the server on receipt.
async fn send_mark(client: &mut RiskServiceClient<Channel>) -> anyhow::Result<()> {
    let mark = pb::AccountOrMarketEvent {
        event: Some(Event::Mark(pb::MarkPrice {
            symbol: "BTCUSDT".into(),
            price: "50000".into(),
            at_unix_ms: 0,
        })),
    };
    client.apply_event(mark).await.context("mark")?;
    Ok(())
}

/// What one task sends, and when.
#[derive(Debug, Clone, Copy)]
struct Plan {
    task: usize,
    tasks: usize,
    accounts: usize,
    run_id: u64,
    measure_from: Instant,
    end: Instant,
}

impl Plan {
    /// The task's `n`th order: unique id, accounts round-robin, alternating sides.
    fn request(&self, n: usize) -> pb::PreTradeCheckRequest {
        let account = (n * self.tasks + self.task) % self.accounts;
        pb::PreTradeCheckRequest {
            user_id: format!("loadgen-user-{account}"),
            account_id: format!("loadgen-{account}"),
            order_id: format!("lg-{}-{}-{n}", self.run_id, self.task),
            symbol: "BTCUSDT".into(),
            side: if n.is_multiple_of(2) {
                pb::Side::Buy
            } else {
                pb::Side::Sell
            } as i32,
            order_type: pb::OrderType::Limit as i32,
            quantity: "0.01".into(),
            price: "50000".into(),
            leverage: "10".into(),
            reduce_only: false,
            post_only: false,
            trace_id: String::new(),
        }
    }
}

impl Tally {
    fn record(
        &mut self,
        started: Instant,
        elapsed: Duration,
        plan: &Plan,
        result: Result<pb::PreTradeCheckResponse, tonic::Status>,
    ) {
        if started < plan.measure_from {
            return;
        }
        if let Some(h) = self.latency_us.as_mut() {
            h.saturating_record(
                u64::try_from(elapsed.as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1),
            );
        }
        match result {
            Ok(r) => match r.decision() {
                pb::RiskDecision::Approved => self.approved += 1,
                pb::RiskDecision::Flagged => self.flagged += 1,
                _ => {
                    self.rejected += 1;
                    if self.first_reject.is_none() {
                        self.first_reject = Some(format!(
                            "{}: {}",
                            r.reject_reason().as_str_name(),
                            r.message
                        ));
                    }
                }
            },
            Err(_) => self.errors += 1,
        }
    }
}

async fn worker<T>(
    mut client: RiskServiceClient<T>,
    plan: Plan,
    stream: bool,
) -> anyhow::Result<Tally>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let mut tally = Tally {
        latency_us: Some(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        ..Tally::default()
    };
    if stream {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut responses = client
            .pre_trade_check_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .context("opening the check stream")?
            .into_inner();
        for n in 0.. {
            let started = Instant::now();
            if started >= plan.end {
                break;
            }
            tx.send(plan.request(n)).await.context("stream closed")?;
            let result = match responses.message().await {
                Ok(Some(r)) => Ok(r),
                Ok(None) => anyhow::bail!("the server ended the check stream"),
                Err(status) => Err(status),
            };
            tally.record(started, started.elapsed(), &plan, result);
        }
        return Ok(tally);
    }
    for n in 0.. {
        let started = Instant::now();
        if started >= plan.end {
            break;
        }
        let result = client
            .pre_trade_check(plan.request(n))
            .await
            .map(tonic::Response::into_inner);
        tally.record(started, started.elapsed(), &plan, result);
    }
    Ok(tally)
}
