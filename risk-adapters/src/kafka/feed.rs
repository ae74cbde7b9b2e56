//! A feed for newcomers and tests: writes a scenario's instruments, users, balances,
//! positions and marks to the input topics, Avro single-object encoded, in the payloads
//! the consumers read (`risk feed --brokers HOST:PORT --scenario demo`).
//!
//! The `demo` scenario is `examples/config/demo.toml` (compiled in): its instruments,
//! its accounts (profile on `user.created.v1`, balance on `wallet.balance_changed.v1`,
//! positions on `position.updated.v1`) and its marks on `md.mark.v1`, stamped with the
//! time of writing; then, if asked, fresh marks at a steady rate.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::util::Timeout;
use serde::Serialize;

use super::avro;
use super::topics::{InputTopic, Topics};
use super::{client_config, ensure_topics, KafkaAdapterError};
use crate::config_file::{ConfigFile, Format};

/// The demo scenario's config file.
pub const DEMO: &str = include_str!("../../../examples/config/demo.toml");

/// What went wrong while feeding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The client failed.
    #[error(transparent)]
    Kafka(#[from] KafkaAdapterError),
    /// A payload did not fit its schema (a bug).
    #[error(transparent)]
    Avro(#[from] avro::AvroError),
    /// The scenario does not parse.
    #[error("scenario: {0}")]
    Scenario(String),
    /// Messages were left unacknowledged.
    #[error("{0} messages not acknowledged by the broker")]
    Unsent(String),
}

/// One message: topic, key, Avro single-object payload.
pub type FeedMessage = (InputTopic, String, Vec<u8>);

#[derive(Serialize)]
struct Profile<'a> {
    event_id: String,
    event_ts_ms: i64,
    account_id: &'a str,
    user_id: &'a str,
    kyc_level: Option<&'a str>,
    exposure_limit: Option<String>,
    max_leverage: Option<String>,
    risk_score: Option<String>,
    frozen: Option<bool>,
    trading_state: Option<&'a str>,
}

#[derive(Serialize)]
struct Balance<'a> {
    account_id: &'a str,
    user_id: &'a str,
    event_id: String,
    currency: &'a str,
    delta: String,
    balance: Option<String>,
    version: i64,
    event_ts_ms: i64,
}

#[derive(Serialize)]
struct PositionMsg<'a> {
    account_id: &'a str,
    user_id: &'a str,
    symbol: &'a str,
    size: String,
    entry_price: String,
    leverage: String,
    version: i64,
    event_ts_ms: i64,
}

#[derive(Serialize)]
struct InstrumentMsg<'a> {
    symbol: &'a str,
    tick_size: String,
    lot_size: String,
    min_quantity: String,
    max_quantity: String,
    contract_multiplier: String,
    max_leverage: String,
    required_kyc: &'a str,
    status: &'a str,
    price_band: Option<String>,
    version: i64,
    event_ts_ms: i64,
}

#[derive(Serialize)]
struct MarkMsg<'a> {
    symbol: &'a str,
    price: String,
    ts_ms: i64,
}

/// The demo scenario's messages at `now`: instruments, then per account its profile,
/// balance and positions, then one mark per symbol.
///
/// # Errors
/// [`FeedError`] when the compiled-in scenario does not parse or encode (a bug).
pub fn demo_messages(now: DateTime<Utc>) -> Result<Vec<FeedMessage>, FeedError> {
    let file = ConfigFile::parse(DEMO, Format::Toml, "demo")
        .map_err(|e| FeedError::Scenario(e.to_string()))?;
    let ts = now.timestamp_millis();
    let mut out = Vec::new();
    let mut push = |topic: InputTopic, key: &str, bytes: Vec<u8>| {
        out.push((topic, key.to_owned(), bytes));
    };
    for i in file
        .instruments
        .iter()
        .map(risk_core::market::Instrument::spec)
    {
        let msg = InstrumentMsg {
            symbol: i.symbol.as_str(),
            tick_size: i.tick_size.get().to_string(),
            lot_size: i.lot_size.get().to_string(),
            min_quantity: i.min_quantity.get().to_string(),
            max_quantity: i.max_quantity.get().to_string(),
            contract_multiplier: i.contract_multiplier.get().to_string(),
            max_leverage: i.max_leverage.get().to_string(),
            required_kyc: i.required_kyc.as_str(),
            status: i.status.as_str(),
            price_band: i.price_band.map(|b| b.get().to_string()),
            version: 1,
            event_ts_ms: ts,
        };
        let topic = InputTopic::InstrumentCreated;
        push(topic, i.symbol.as_str(), avro::encode(topic.base(), &msg)?);
    }
    for a in &file.accounts {
        let (account, user) = (a.id.as_str(), a.user_id.as_str());
        let p = &a.profile;
        let msg = Profile {
            event_id: format!("demo-user-{account}"),
            event_ts_ms: ts,
            account_id: account,
            user_id: user,
            kyc_level: Some(p.kyc_level.as_str()),
            exposure_limit: Some(p.exposure_limit.get().to_string()),
            max_leverage: Some(p.max_leverage.get().to_string()),
            risk_score: Some(p.risk_score.get().to_string()),
            frozen: Some(p.frozen),
            trading_state: Some(p.trading_state.as_str()),
        };
        let topic = InputTopic::UserCreated;
        push(topic, account, avro::encode(topic.base(), &msg)?);
        let msg = Balance {
            account_id: account,
            user_id: user,
            event_id: format!("demo-deposit-{account}"),
            currency: "USDT",
            delta: a.wallet_balance.get().to_string(),
            balance: Some(a.wallet_balance.get().to_string()),
            version: 1,
            event_ts_ms: ts,
        };
        let topic = InputTopic::WalletBalanceChanged;
        push(topic, account, avro::encode(topic.base(), &msg)?);
        for pos in &a.positions {
            let msg = PositionMsg {
                account_id: account,
                user_id: user,
                symbol: pos.symbol.as_str(),
                size: pos.size.get().to_string(),
                entry_price: pos.entry_price.get().to_string(),
                leverage: pos.leverage.get().to_string(),
                version: 1,
                event_ts_ms: ts,
            };
            let topic = InputTopic::PositionUpdated;
            push(topic, account, avro::encode(topic.base(), &msg)?);
        }
    }
    for m in &file.marks {
        push(
            InputTopic::Mark,
            m.symbol.as_str(),
            mark(m.symbol.as_str(), &m.price.get().to_string(), ts)?,
        );
    }
    Ok(out)
}

/// One `md.mark.v1` payload.
///
/// # Errors
/// [`FeedError::Avro`] (a bug: the payload fits its schema).
pub fn mark(symbol: &str, price: &str, ts_ms: i64) -> Result<Vec<u8>, FeedError> {
    let msg = MarkMsg {
        symbol,
        price: price.to_owned(),
        ts_ms,
    };
    Ok(avro::encode(InputTopic::Mark.base(), &msg)?)
}

/// Writes messages and waits (up to `timeout`) until the broker acknowledged them all.
pub struct Feeder {
    producer: BaseProducer,
    topics: Topics,
}

impl std::fmt::Debug for Feeder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feeder")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Feeder {
    /// Connects and creates the missing topics.
    ///
    /// # Errors
    /// [`FeedError`] when the producer cannot be created or the topics cannot be made.
    pub fn connect(brokers: &str, topics: Topics, timeout: Duration) -> Result<Self, FeedError> {
        ensure_topics(brokers, &topics.all(), timeout)?;
        let producer = client_config(brokers)
            .set("linger.ms", "5")
            .create()
            .map_err(KafkaAdapterError::from)?;
        Ok(Self { producer, topics })
    }

    /// Queues `messages` (waiting for room when librdkafka's queue is full).
    ///
    /// # Errors
    /// [`FeedError`] when a message cannot be queued.
    pub fn send(&self, messages: &[FeedMessage]) -> Result<(), FeedError> {
        for (topic, key, payload) in messages {
            let name = self.topics.input(*topic);
            self.send_raw(&name, key.as_bytes(), payload)?;
        }
        Ok(())
    }

    /// Queues one message with raw bytes (tests write garbage this way).
    ///
    /// # Errors
    /// [`FeedError`] when the message cannot be queued.
    pub fn send_raw(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<(), FeedError> {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .key(key)
            .payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(KafkaAdapterError::from(e).into()),
            }
        }
    }

    /// Waits until every queued message is acknowledged.
    ///
    /// # Errors
    /// [`FeedError::Unsent`] when some are still waiting after `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), FeedError> {
        self.producer
            .flush(Timeout::After(timeout))
            .map_err(|_| FeedError::Unsent(self.producer.in_flight_count().to_string()))
    }

    /// Writes the demo scenario, then fresh marks for its symbols at `marks_per_second`
    /// for `secs` seconds (each mark within 0.1% of the scenario's price), reading the
    /// clock through `now`.
    ///
    /// # Errors
    /// [`FeedError`] when writing fails.
    pub fn demo(
        &self,
        now: impl Fn() -> DateTime<Utc>,
        marks_per_second: u32,
        secs: u64,
        timeout: Duration,
    ) -> Result<usize, FeedError> {
        let messages = demo_messages(now())?;
        self.send(&messages)?;
        let mut count = messages.len();
        let marks: Vec<_> = messages
            .iter()
            .filter(|(t, _, _)| *t == InputTopic::Mark)
            .map(|(_, key, payload)| {
                avro::decode::<super::apply::MarkPayload>(InputTopic::Mark.base(), payload)
                    .map(|m| (key.clone(), m.price))
            })
            .collect::<Result<_, _>>()?;
        if marks_per_second > 0 && secs > 0 && !marks.is_empty() {
            let start = Instant::now();
            let period = Duration::from_secs_f64(1.0 / f64::from(marks_per_second));
            let mut n: u64 = 0;
            while start.elapsed() < Duration::from_secs(secs) {
                let (symbol, price) = &marks[(n as usize) % marks.len()];
                let base: risk_core::Decimal = risk_core::num::parse_decimal(price)
                    .map_err(|e| FeedError::Scenario(e.to_string()))?;
                // A small deterministic wiggle: 0, +0.05%, -0.05%, ...
                let step = risk_core::Decimal::new(5 * (i64::from((n % 3) as u8) - 1), 4);
                let price = (base + base * step).round_dp(2).normalize().to_string();
                let payload = mark(symbol, &price, now().timestamp_millis())?;
                self.send_raw(
                    &self.topics.input(InputTopic::Mark),
                    symbol.as_bytes(),
                    &payload,
                )?;
                count += 1;
                n += 1;
                let next = period.mul_f64(n as f64);
                if let Some(wait) = next.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
                self.producer.poll(Duration::ZERO);
            }
        }
        self.flush(timeout)?;
        Ok(count)
    }
}
