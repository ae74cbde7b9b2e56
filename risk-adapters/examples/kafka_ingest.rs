//! Throughput of the Kafka data plane against a broker (e.g. `scripts/tansu.sh start`):
//!
//! 1. consume + apply: writes `--events` state messages (balances and positions of
//!    `--accounts` accounts, Avro) to fresh topics, then times a [`KafkaIngest`] from start
//!    until it has caught up with them;
//! 2. publish: `--threads` threads check orders on the demo engine for `--secs` seconds and
//!    publish every check's events through a [`DecisionPublisher`]; reports checks per
//!    second, and how many were delivered and dropped after the final flush.
//!
//! ```text
//! cargo run --release -p risk-adapters --features kafka --example kafka_ingest -- \
//!     --brokers "$(scripts/tansu.sh addr)"
//! ```

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use risk_adapters::config_file::{ConfigFile, Format};
use risk_adapters::kafka::feed::{Feeder, DEMO};
use risk_adapters::kafka::{
    avro, ConsumerOptions, DecisionPublisher, InputTopic, KafkaIngest, PublisherOptions, Topics,
};
use risk_core::engine::RiskEngine;
use risk_core::model::{OrderType, Side};
use risk_core::pretrade::CheckRequest;
use risk_core::Decimal;

/// Measures consume+apply and publish rates against a broker.
#[derive(Debug, Parser)]
struct Args {
    /// Kafka brokers.
    #[arg(long)]
    brokers: String,
    /// State messages to consume.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Accounts they are spread over.
    #[arg(long, default_value_t = 2_000)]
    accounts: u64,
    /// Seconds of checks for the publish measurement (0: skip it).
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Checking threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// The publisher's encoding threads.
    #[arg(long, default_value_t = 2)]
    encoders: usize,
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
}

#[derive(serde::Serialize)]
struct Balance {
    account_id: String,
    user_id: String,
    event_id: String,
    currency: &'static str,
    delta: &'static str,
    balance: Option<String>,
    version: i64,
    event_ts_ms: i64,
}

#[derive(serde::Serialize)]
struct Position {
    account_id: String,
    user_id: String,
    symbol: &'static str,
    size: String,
    entry_price: &'static str,
    leverage: &'static str,
    version: i64,
    event_ts_ms: i64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let suffix = format!(".bench{}", now().timestamp_micros());
    let topics = Topics::new(&suffix);
    let timeout = Duration::from_secs(60);
    let feeder = Feeder::connect(&args.brokers, topics.clone(), timeout)?;
    let ts = now().timestamp_millis();
    let started = Instant::now();
    let (balances, positions) = (
        topics.input(InputTopic::WalletBalanceChanged),
        topics.input(InputTopic::PositionUpdated),
    );
    for i in 0..args.events {
        let account = i % args.accounts;
        let version = i64::try_from(i / args.accounts + 1)?;
        let (account_id, user_id) = (format!("acc-{account}"), format!("user-{account}"));
        let (topic, payload) = if i % 2 == 0 {
            let b = Balance {
                account_id,
                user_id,
                event_id: format!("e{i}"),
                currency: "USDT",
                delta: "10",
                balance: None,
                version,
                event_ts_ms: ts,
            };
            (
                &balances,
                avro::encode(InputTopic::WalletBalanceChanged.base(), &b)?,
            )
        } else {
            let p = Position {
                account_id,
                user_id,
                symbol: "ETHUSDT",
                size: version.to_string(),
                entry_price: "3000",
                leverage: "10",
                version,
                event_ts_ms: ts,
            };
            (
                &positions,
                avro::encode(InputTopic::PositionUpdated.base(), &p)?,
            )
        };
        feeder.send_raw(topic, format!("acc-{account}").as_bytes(), &payload)?;
    }
    feeder.flush(timeout)?;
    let produced = started.elapsed();
    println!(
        "produced {} messages in {:.2} s: {:.0}/s",
        args.events,
        produced.as_secs_f64(),
        args.events as f64 / produced.as_secs_f64()
    );

    let file = ConfigFile::parse(DEMO, Format::Toml, "demo").map_err(|e| anyhow::anyhow!("{e}"))?;
    let engine = Arc::new(RiskEngine::new(file.engine.clone())?);
    let started = Instant::now();
    let ingest = KafkaIngest::start(
        Arc::clone(&engine),
        &ConsumerOptions {
            brokers: args.brokers.clone(),
            topics: topics.clone(),
            group_id: format!("bench{suffix}"),
            timeout,
        },
    )?;
    let status = ingest.status();
    while !status.is_ready() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not caught up"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = started.elapsed();
    let applied = status.applied.load(Ordering::Relaxed);
    println!(
        "consumed and applied {applied} events ({} dead-lettered) in {:.2} s: {:.0}/s; {} accounts",
        status.dead_lettered.load(Ordering::Relaxed),
        took.as_secs_f64(),
        applied as f64 / took.as_secs_f64(),
        engine.account_count()
    );
    drop(ingest);
    if args.secs == 0 {
        return Ok(());
    }

    // Publish: the demo engine with its accounts and fresh marks; checks on acc-alice.
    let engine = Arc::new(
        file.into_engine(now(), "demo")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let publisher = Arc::new(DecisionPublisher::start(&PublisherOptions {
        brokers: args.brokers.clone(),
        topics,
        queue_capacity: 100_000,
        producer_queue_messages: 1_000_000,
        config_version: "demo".into(),
        encoder_threads: args.encoders,
    })?);
    let published = publisher.status();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.secs);
    let workers: Vec<_> = (0..args.threads)
        .map(|t| {
            let (engine, publisher) = (Arc::clone(&engine), Arc::clone(&publisher));
            std::thread::spawn(move || {
                let mut n = 0u64;
                let at = now();
                while Instant::now() < deadline {
                    let request = CheckRequest {
                        user_id: "alice".into(),
                        account_id: "acc-alice".into(),
                        order_id: format!("o-{t}-{n}").as_str().into(),
                        symbol: "ETHUSDT".into(),
                        side: Side::Buy,
                        order_type: OrderType::Limit,
                        quantity: Decimal::new(1, 2),
                        price: Some(Decimal::new(3_000, 0)),
                        leverage: Decimal::TEN,
                        reduce_only: false,
                        post_only: false,
                        trace_id: format!("t-{t}-{n}").as_str().into(),
                    };
                    // A fixed `now`: the marks stay fresh and the rate limit's window
                    // never moves, so some checks are rejected, as in production.
                    let response = engine.check(&request, at);
                    publisher.publish(&request, &response);
                    n += 1;
                }
                n
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap_or(0))
        .collect();
    let checks: u64 = workers.iter().sum();
    let checked = started.elapsed();
    let publisher = Arc::try_unwrap(publisher)
        .map_err(|_| anyhow::anyhow!("publisher still shared"))
        .context("flushing")?;
    drop(publisher); // flushes
    let flushed = started.elapsed();
    println!(
        "checked and published {checks} checks in {:.2} s: {:.0} checks/s; queued {}, dropped {}; \
         {} messages delivered ({} failed) after {:.2} s: {:.0} messages/s",
        checked.as_secs_f64(),
        checks as f64 / checked.as_secs_f64(),
        published.queued.load(Ordering::Relaxed),
        published.dropped.load(Ordering::Relaxed),
        published.delivered.load(Ordering::Relaxed),
        published.failed.load(Ordering::Relaxed),
        flushed.as_secs_f64(),
        published.delivered.load(Ordering::Relaxed) as f64 / flushed.as_secs_f64(),
    );
    Ok(())
}
