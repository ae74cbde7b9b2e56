//! Redis L2 snapshots and readiness, end to end: `risk-server` processes on the real
//! tansu broker (`RISKGATE_KAFKA_BROKERS`, started by `scripts/tansu.sh`; skipped locally
//! without it, a failure when `CI` is set) and the machine's Redis at 127.0.0.1:6379, each
//! test under its own topic suffix and Redis key prefix. The Redis outage test runs its
//! own `redis-server` on a free loopback port and stops it; the machine's is never touched.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use redis::Commands as _;
use risk_adapters::grpc::proto::v1 as pb;
use risk_adapters::kafka::feed::{demo_messages, Feeder};
use risk_adapters::kafka::{InputTopic, Topics};

const TIMEOUT: Duration = Duration::from_secs(30);
const REDIS: &str = "redis://127.0.0.1:6379/0";
/// The demo's state-topic messages (3 instruments, 3 users, 3 balances, 2 positions)
/// and marks.
const DEMO_STATE: u64 = 11;
const DEMO_MARKS: u64 = 3;

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!(
        "{prefix}{}-{}-{micros}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The broker; `None` (skip) locally without one, a failure in CI.
fn tansu() -> Option<String> {
    match std::env::var("RISKGATE_KAFKA_BROKERS") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "RISKGATE_KAFKA_BROKERS is not set in CI: scripts/test.sh starts tansu"
            );
            eprintln!("skipped: RISKGATE_KAFKA_BROKERS is not set (scripts/tansu.sh start)");
            None
        }
    }
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// A child process killed (SIGKILL) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `risk-server`: its gRPC and HTTP addresses and its log file.
struct Server {
    _proc: Proc,
    grpc: SocketAddr,
    http: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// Starts risk-server on the demo config, the input topics of `suffix`, consumer
    /// group `group`, with `extra` flags (`--redis ...`).
    fn start(brokers: &str, suffix: &str, group: &str, extra: &[&str]) -> Self {
        let (grpc, http) = (free_addr(), free_addr());
        let log = std::env::temp_dir().join(format!("{}.log", unique("risk-server-snap-")));
        let db = std::env::temp_dir().join(format!("{}.db", unique("riskgate-snap-")));
        let child = Command::new(env!("CARGO_BIN_EXE_risk-server"))
            .args([
                "--config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/config/demo.toml"),
            ])
            .args(["--kafka-brokers", brokers, "--topic-suffix", suffix])
            .args(["--group-id", group, "--summary-secs", "0"])
            .args(["--listen", &grpc.to_string()])
            .args(["--http-listen", &http.to_string()])
            .args(["--database", &format!("sqlite://{}", db.display())])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("risk-server starts");
        Self {
            _proc: Proc(child),
            grpc,
            http,
            log,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn client(&self) -> Client {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(c) = Client::connect(format!("http://{}", self.grpc)).await {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "risk-server did not listen: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `/readyz`'s status code and body (`None` while HTTP is not up).
    async fn readyz(&self) -> Option<(u16, String)> {
        let r = reqwest::get(format!("http://{}/readyz", self.http))
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.unwrap_or_default()))
    }

    /// Waits for `/readyz` to answer 200; returns the statuses seen before.
    async fn wait_ready(&self) -> Vec<(u16, String)> {
        let deadline = Instant::now() + TIMEOUT;
        let mut before = Vec::new();
        loop {
            match self.readyz().await {
                Some((200, _)) => return before,
                Some(other) => before.push(other),
                None => {}
            }
            assert!(
                Instant::now() < deadline,
                "not ready: {before:?}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of an unlabelled metric on `/metrics`.
    async fn metric(&self, name: &str) -> Option<u64> {
        let text = reqwest::get(format!("http://{}/metrics", self.http))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    /// Waits until `name` satisfies `ok`; returns its value.
    async fn wait_metric(&self, name: &str, ok: impl Fn(u64) -> bool) -> u64 {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let v = self.metric(name).await;
            if let Some(v) = v.filter(|v| ok(*v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{name} stays at {v:?}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

type Client = pb::risk_service_client::RiskServiceClient<tonic::transport::Channel>;

const ACCOUNTS: [&str; 4] = ["acc-alice", "acc-bob", "acc-carol", "acc-dave"];

/// Every account's `GetAccount` (`last_seq` left out: it counts the engine's applied
/// events, which depend on the order the topics were read in; the state does not).
async fn accounts(client: &mut Client) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for id in ACCOUNTS {
        let text = match client
            .get_account(pb::GetAccountRequest {
                account_id: id.into(),
            })
            .await
        {
            Ok(a) => format!(
                "{:?}",
                pb::GetAccountResponse {
                    last_seq: 0,
                    ..a.into_inner()
                }
            ),
            Err(status) => format!("{:?}", status.code()),
        };
        out.insert(id.to_owned(), text);
    }
    out
}

/// The accounts once two reads in a row agree and `done` holds (tansu can report the
/// end offsets one producer batch early, so ready can come a little before the state).
async fn settled(
    client: &mut Client,
    done: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    let deadline = Instant::now() + TIMEOUT;
    let mut last = accounts(client).await;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = accounts(client).await;
        if now == last && done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "state does not settle: {now:?}");
        last = now;
    }
}

/// A producer on the topics of `suffix` (created when missing: that runs a runtime of its
/// own, hence outside the test's).
fn feeder(brokers: &str, suffix: &str) -> Feeder {
    tokio::task::block_in_place(|| {
        Feeder::connect(brokers, Topics::new(suffix), TIMEOUT).expect("feeder")
    })
}

/// The demo scenario, written one message at a time (tansu reports the end of a
/// partition exactly when each batch holds one record).
fn feed_demo(feeder: &Feeder, suffix: &str) {
    let topics = Topics::new(suffix);
    let now = risk_adapters::grpc::service::now();
    for (topic, key, payload) in demo_messages(now).expect("demo") {
        feeder
            .send_raw(&topics.input(topic), key.as_bytes(), &payload)
            .expect("send");
        feeder.flush(TIMEOUT).expect("flush");
    }
}

/// Five state messages after the demo: two balance changes, a position, a new account
/// with a deposit of nine decimals.
fn feed_more(feeder: &Feeder, suffix: &str) {
    let topics = Topics::new(suffix);
    let messages = [
        (
            InputTopic::WalletBalanceChanged,
            r#"{"account_id":"acc-alice","user_id":"alice","event_id":"w2","currency":"USDT",
               "delta":"1000","version":2,"event_ts_ms":2}"#,
        ),
        (
            InputTopic::WalletBalanceChanged,
            r#"{"account_id":"acc-bob","user_id":"bob","event_id":"w3","currency":"USDT",
               "delta":"-500.25","version":2,"event_ts_ms":2}"#,
        ),
        (
            InputTopic::PositionUpdated,
            r#"{"account_id":"acc-bob","user_id":"bob","symbol":"ETHUSDT","size":"3",
               "entry_price":"3010.5","leverage":"5","version":5,"event_ts_ms":2}"#,
        ),
        (
            InputTopic::UserCreated,
            r#"{"event_id":"dave-1","event_ts_ms":2,"account_id":"acc-dave","user_id":"dave",
               "kyc_level":"L1","exposure_limit":"10000","max_leverage":"5","risk_score":"1"}"#,
        ),
        (
            InputTopic::WalletBalanceChanged,
            r#"{"account_id":"acc-dave","user_id":"dave","event_id":"w4","currency":"USDT",
               "delta":"777.000000001","version":1,"event_ts_ms":2}"#,
        ),
    ];
    for (topic, json) in messages {
        feeder
            .send_raw(&topics.input(topic), b"k", json.as_bytes())
            .expect("send");
        feeder.flush(TIMEOUT).expect("flush");
    }
}

/// The snapshot's offsets hash: `<topic>/<partition>` to the next offset.
fn snapshot_offsets(url: &str, prefix: &str) -> HashMap<String, i64> {
    let client = redis::Client::open(url).expect("redis url");
    let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
        return HashMap::new();
    };
    con.hgetall(format!("{prefix}:snapshot:offsets"))
        .unwrap_or_default()
}

/// The next offsets of the state topics and of the marks, summed.
fn offsets_sum(offsets: &HashMap<String, i64>) -> (i64, i64) {
    offsets.iter().fold((0, 0), |(state, marks), (k, v)| {
        if k.starts_with("md.mark.v1") {
            (state, marks + v)
        } else {
            (state + v, marks)
        }
    })
}

async fn wait_snapshot(url: &str, prefix: &str, state: i64, marks: i64) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let sums = offsets_sum(&snapshot_offsets(url, prefix));
        if sums == (state, marks) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the snapshot's offsets stay at {sums:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn delete_snapshot(prefix: &str) {
    let client = redis::Client::open(REDIS).expect("redis url");
    let mut con = client.get_connection().expect("redis at 127.0.0.1:6379");
    let _: usize = con
        .del(&[
            format!("{prefix}:snapshot:state"),
            format!("{prefix}:snapshot:offsets"),
            format!("{prefix}:snapshot:meta"),
        ])
        .expect("del");
}

fn has_balance(accounts: &BTreeMap<String, String>, id: &str, balance: &str) -> bool {
    accounts
        .get(id)
        .is_some_and(|a| a.contains(&format!("wallet_balance: \"{balance}\"")))
}

/// Snapshot, `kill -9`, more events, restart with `--redis`: the state equals that of a
/// server that replayed everything from offset 0, and the restarted server read only
/// the events after the snapshot's offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_restart_resumes_from_the_redis_snapshot_and_equals_a_full_replay() {
    let Some(brokers) = tansu() else { return };
    let suffix = format!(".{}", unique("snap"));
    let prefix = unique("riskgate-test-");
    let redis_flags = [
        "--redis",
        REDIS,
        "--snapshot-key",
        &prefix,
        "--snapshot-every-ms",
        "100",
    ];
    let feed = feeder(&brokers, &suffix);
    feed_demo(&feed, &suffix);

    let first = Server::start(&brokers, &suffix, &unique("g"), &redis_flags);
    first.wait_ready().await;
    let mut client = first.client().await;
    settled(&mut client, |a| has_balance(a, "acc-alice", "25000")).await;
    wait_snapshot(REDIS, &prefix, DEMO_STATE as i64, DEMO_MARKS as i64).await;
    assert!(first.metric("riskgate_snapshot_written_total").await >= Some(1));
    drop(first); // kill -9

    feed_more(&feed, &suffix);
    let restarted = Server::start(&brokers, &suffix, &unique("g"), &redis_flags);
    restarted.wait_ready().await;
    let mut client = restarted.client().await;
    let after = settled(&mut client, |a| has_balance(a, "acc-dave", "777.000000001")).await;

    let fresh = Server::start(&brokers, &suffix, &unique("fresh"), &[]);
    fresh.wait_ready().await;
    let mut fresh_client = fresh.client().await;
    let replayed = settled(&mut fresh_client, |a| {
        has_balance(a, "acc-dave", "777.000000001")
    })
    .await;
    assert_eq!(after, replayed);
    assert!(has_balance(&after, "acc-bob", "1499.75"), "{after:?}");

    // The restarted server read the five new messages and nothing before them.
    assert_eq!(restarted.metric("riskgate_kafka_resumed").await, Some(1));
    assert_eq!(
        restarted.metric("riskgate_kafka_consumed_total").await,
        Some(5)
    );
    assert_eq!(
        restarted.metric("riskgate_kafka_applied_total").await,
        Some(5)
    );
    assert_eq!(
        restarted.metric("riskgate_kafka_duplicates_total").await,
        Some(0)
    );
    let log = restarted.log_text();
    assert!(log.contains("state restored from the snapshot"), "{log}");
    assert!(
        log.contains("resuming from the snapshot's offsets"),
        "{log}"
    );
    // The fresh server read everything.
    assert_eq!(fresh.metric("riskgate_kafka_resumed").await, Some(0));
    assert_eq!(
        fresh.metric("riskgate_kafka_consumed_total").await,
        Some(DEMO_STATE + DEMO_MARKS + 5)
    );
    // And the restarted server's next snapshot includes the new messages.
    wait_snapshot(REDIS, &prefix, DEMO_STATE as i64 + 5, DEMO_MARKS as i64).await;
    delete_snapshot(&prefix);
}

/// A snapshot of another format, then a damaged one: each is refused with a log line
/// naming why, the server replays from the start, and its next snapshot replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_an_incompatible_or_damaged_snapshot_falls_back_to_a_full_replay() {
    let Some(brokers) = tansu() else { return };
    let suffix = format!(".{}", unique("snapbad"));
    let prefix = unique("riskgate-test-");
    let redis_flags = [
        "--redis",
        REDIS,
        "--snapshot-key",
        &prefix,
        "--snapshot-every-ms",
        "100",
    ];
    let feed = feeder(&brokers, &suffix);
    feed_demo(&feed, &suffix);
    let client = redis::Client::open(REDIS).expect("url");
    let mut con = client.get_connection().expect("redis at 127.0.0.1:6379");
    let (state_key, meta_key) = (
        format!("{prefix}:snapshot:state"),
        format!("{prefix}:snapshot:meta"),
    );
    let offsets_key = format!("{prefix}:snapshot:offsets");

    let damaged: [(&str, &str, &str); 2] = [
        (
            "999",
            r#"{"format":999}"#,
            "format 999; this build reads format 1",
        ),
        (
            "1",
            r#"{"format":1,"engine":{"accounts":[{"#,
            "`state` key is damaged",
        ),
    ];
    for (format, state, why) in damaged {
        let () = redis::pipe()
            .atomic()
            .set(&state_key, state)
            .ignore()
            .hset(&meta_key, "format", format)
            .ignore()
            // Offsets that would skip everything, were they used.
            .hset(&offsets_key, format!("user.created.v1{suffix}/0"), 3)
            .ignore()
            .query(&mut con)
            .expect("write");
        let server = Server::start(&brokers, &suffix, &unique("g"), &redis_flags);
        server.wait_ready().await;
        let mut grpc = server.client().await;
        settled(&mut grpc, |a| has_balance(a, "acc-carol", "100000")).await;
        let log = server.log_text();
        assert!(log.contains("the snapshot is refused"), "{log}");
        assert!(log.contains(why), "{why}: {log}");
        assert_eq!(server.metric("riskgate_kafka_resumed").await, Some(0));
        assert_eq!(
            server
                .wait_metric("riskgate_kafka_consumed_total", |n| n
                    == DEMO_STATE + DEMO_MARKS)
                .await,
            DEMO_STATE + DEMO_MARKS
        );
        // Its own snapshot replaces the refused one.
        wait_snapshot(REDIS, &prefix, DEMO_STATE as i64, DEMO_MARKS as i64).await;
        let format: String = con.hget(&meta_key, "format").expect("format");
        assert_eq!(format, "1");
    }
    delete_snapshot(&prefix);
}

/// A `redis-server` of this test's own on a free loopback port, stopped (SIGKILL) when
/// dropped.
fn own_redis(port: u16) -> Proc {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (Debian package redis-server) runs");
    let deadline = Instant::now() + TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proc(child)
}

/// Redis away at start: the server replays and serves; its snapshots fail, are counted
/// and retried; Redis arrives: they are written; Redis goes away mid-run: checks go on,
/// failures are counted; Redis returns: the latest state is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_redis_away_at_start_and_mid_run_never_stops_checks() {
    let Some(brokers) = tansu() else { return };
    let suffix = format!(".{}", unique("snapaway"));
    let prefix = unique("riskgate-test-");
    let port = free_addr().port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let feed = feeder(&brokers, &suffix);
    feed_demo(&feed, &suffix);
    let server = Server::start(
        &brokers,
        &suffix,
        &unique("g"),
        &[
            "--redis",
            &url,
            "--snapshot-key",
            &prefix,
            "--snapshot-every-ms",
            "100",
        ],
    );
    server.wait_ready().await;
    let mut client = server.client().await;
    settled(&mut client, |a| has_balance(a, "acc-alice", "25000")).await;
    let log = server.log_text();
    assert!(log.contains("redis: unavailable at start"), "{log}");
    server
        .wait_metric("riskgate_snapshot_failures_total", |n| n >= 1)
        .await;
    assert_eq!(
        server.metric("riskgate_snapshot_written_total").await,
        Some(0)
    );

    // Redis arrives: the snapshot held is written.
    let redis = own_redis(port);
    server
        .wait_metric("riskgate_snapshot_written_total", |n| n >= 1)
        .await;
    wait_snapshot(&url, &prefix, DEMO_STATE as i64, DEMO_MARKS as i64).await;
    assert!(server.log_text().contains("snapshots are written again"));

    // Redis goes away mid-run; new events still apply, checks still answer.
    drop(redis);
    let failures = server
        .metric("riskgate_snapshot_failures_total")
        .await
        .expect("failures");
    feed_more(&feed, &suffix);
    settled(&mut client, |a| has_balance(a, "acc-dave", "777.000000001")).await;
    server
        .wait_metric("riskgate_snapshot_failures_total", |n| n > failures)
        .await;
    let started = Instant::now();
    let answer = client
        .pre_trade_check(pb::PreTradeCheckRequest {
            user_id: "alice".into(),
            account_id: "acc-alice".into(),
            order_id: "o-away".into(),
            symbol: "ETHUSDT".into(),
            side: pb::Side::Buy as i32,
            order_type: pb::OrderType::Limit as i32,
            quantity: "0.01".into(),
            price: "3000".into(),
            leverage: "10".into(),
            reduce_only: false,
            post_only: false,
            trace_id: "t-away".into(),
        })
        .await
        .expect("check")
        .into_inner();
    assert!(started.elapsed() < Duration::from_secs(1), "a check waited");
    assert!(!answer.message.contains("loading"), "{answer:?}");

    // Redis returns (empty: it keeps nothing): the latest state is written.
    let _redis = own_redis(port);
    wait_snapshot(&url, &prefix, DEMO_STATE as i64 + 5, DEMO_MARKS as i64).await;
}

/// `/readyz` answers 200 once the consumers have caught up with the input topics (and
/// 503 before, when a probe lands that early), with the readiness and the counters on
/// `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_readyz_turns_200_once_the_consumers_catch_up() {
    let Some(brokers) = tansu() else { return };
    let suffix = format!(".{}", unique("ready"));
    let feed = feeder(&brokers, &suffix);
    feed_demo(&feed, &suffix);
    let server = Server::start(&brokers, &suffix, &unique("g"), &[]);
    let before = server.wait_ready().await;
    for (status, body) in &before {
        assert_eq!(*status, 503, "{body}");
        assert!(body.contains("not-ready"), "{body}");
    }
    let (status, body) = server.readyz().await.expect("readyz");
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(health["status"], "ready", "{body}");
    assert_eq!(server.metric("riskgate_kafka_ready").await, Some(1));
    // Ready means the state topics' end offsets were reached: every state message read.
    let consumed = server
        .wait_metric("riskgate_kafka_consumed_total", |n| {
            n == DEMO_STATE + DEMO_MARKS
        })
        .await;
    assert_eq!(consumed, DEMO_STATE + DEMO_MARKS);
    let mut client = server.client().await;
    let state = settled(&mut client, |a| has_balance(a, "acc-carol", "100000")).await;
    assert!(has_balance(&state, "acc-alice", "25000"), "{state:?}");
}
