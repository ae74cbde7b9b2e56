//! The snapshot's encoding: what goes under each Redis key, and back.
//!
//! * `<prefix>:snapshot:state`: JSON `{"format": 1, "engine": {...}, "applier": {...}}`
//!   (the engine's accounts and market, the consumer's entity versions and held positions);
//!   decimals are strings, so nothing is rounded.
//! * `<prefix>:snapshot:offsets`: a hash, field `<topic>/<partition>`, value the next
//!   offset to read (Kafka topic names cannot hold `/`).
//! * `<prefix>:snapshot:meta`: a hash: `format`, `written_at_ms`, `accounts`, `entities`,
//!   `state_bytes`, for people and tools; `format` is checked first.
//!
//! [`FORMAT`] changes whenever the state's form changes incompatibly; a snapshot of
//! another format is refused as [`SnapshotError::Incompatible`], never half-read.

use std::collections::HashMap;

use risk_core::engine::EngineState;
use serde::{Deserialize, Serialize};

use super::SnapshotError;
use crate::kafka::{ApplierState, Checkpoint, Offsets};

/// The snapshot format this build writes and reads.
pub const FORMAT: u32 = 1;

/// The values of one snapshot, ready for Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The state key's value (JSON).
    pub state: Vec<u8>,
    /// The offsets hash: `<topic>/<partition>` to the next offset.
    pub offsets: Vec<(String, String)>,
    /// The meta hash.
    pub meta: Vec<(String, String)>,
}

#[derive(Serialize)]
struct StateOut<'a> {
    format: u32,
    engine: &'a EngineState,
    applier: &'a ApplierState,
}

#[derive(Deserialize)]
struct StateIn {
    engine: EngineState,
    applier: ApplierState,
}

/// Only the format, read before the rest.
#[derive(Deserialize)]
struct FormatOnly {
    format: Option<u32>,
}

/// Encodes `checkpoint`, stamped `written_at_ms`.
///
/// # Errors
/// [`SnapshotError::Encode`] when the state does not serialize (it always does for the
/// engine's own types).
pub fn encode(checkpoint: &Checkpoint, written_at_ms: i64) -> Result<Encoded, SnapshotError> {
    let state = serde_json::to_vec(&StateOut {
        format: FORMAT,
        engine: &checkpoint.engine,
        applier: &checkpoint.applier,
    })
    .map_err(|e| SnapshotError::Encode(e.to_string()))?;
    let offsets = checkpoint
        .offsets
        .iter()
        .map(|((topic, partition), next)| (format!("{topic}/{partition}"), next.to_string()))
        .collect();
    let meta = vec![
        ("format".to_owned(), FORMAT.to_string()),
        ("written_at_ms".to_owned(), written_at_ms.to_string()),
        (
            "accounts".to_owned(),
            checkpoint.engine.accounts.len().to_string(),
        ),
        (
            "entities".to_owned(),
            checkpoint.applier.entity_count().to_string(),
        ),
        ("state_bytes".to_owned(), state.len().to_string()),
    ];
    Ok(Encoded {
        state,
        offsets,
        meta,
    })
}

/// Decodes what the three keys held; `Ok(None)` when none of them exists (no snapshot).
///
/// # Errors
/// [`SnapshotError::Incompatible`] for another format (in the meta hash or the state),
/// [`SnapshotError::Corrupt`] for a missing key or a value that does not decode, naming
/// the key and, for the state, the path of the bad value.
pub fn decode(
    state: Option<&[u8]>,
    offsets: &HashMap<String, String>,
    meta: &HashMap<String, String>,
) -> Result<Option<Checkpoint>, SnapshotError> {
    if state.is_none() && offsets.is_empty() && meta.is_empty() {
        return Ok(None);
    }
    let format = meta.get("format").ok_or_else(|| SnapshotError::Corrupt {
        key: "meta",
        reason: "no `format` field".to_owned(),
    })?;
    let format: u32 = format.parse().map_err(|_| SnapshotError::Corrupt {
        key: "meta",
        reason: format!("`format` is `{format}`, not a number"),
    })?;
    if format != FORMAT {
        return Err(SnapshotError::Incompatible {
            found: format,
            expected: FORMAT,
        });
    }
    let state = state.ok_or_else(|| SnapshotError::Corrupt {
        key: "state",
        reason: "missing".to_owned(),
    })?;
    let header: FormatOnly = serde_json::from_slice(state).map_err(|e| SnapshotError::Corrupt {
        key: "state",
        reason: e.to_string(),
    })?;
    if header.format != Some(FORMAT) {
        return Err(SnapshotError::Incompatible {
            found: header.format.unwrap_or(0),
            expected: FORMAT,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(state);
    let body: StateIn =
        serde_path_to_error::deserialize(&mut de).map_err(|e| SnapshotError::Corrupt {
            key: "state",
            reason: e.to_string(),
        })?;
    let mut parsed = Offsets::new();
    for (field, value) in offsets {
        let bad = |why: &str| SnapshotError::Corrupt {
            key: "offsets",
            reason: format!("`{field}` = `{value}`: {why}"),
        };
        let (topic, partition) = field
            .rsplit_once('/')
            .ok_or_else(|| bad("the field is not <topic>/<partition>"))?;
        let partition: i32 = partition
            .parse()
            .map_err(|_| bad("the partition is not a number"))?;
        let next: i64 = value
            .parse()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad("the offset is not a number >= 0"))?;
        if topic.is_empty() || partition < 0 {
            return Err(bad("no topic, or a negative partition"));
        }
        parsed.insert((topic.to_owned(), partition), next);
    }
    Ok(Some(Checkpoint {
        engine: body.engine,
        applier: body.applier,
        offsets: parsed,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;
    use risk_core::account::{OpenOrder, RiskProfile};
    use risk_core::engine::{AccountEvent, EngineEvent, MarketEvent, RiskEngine, Seq};
    use risk_core::ids::{AccountId, OrderId, Symbol, UserId};
    use risk_core::model::{KycLevel, Side};
    use risk_core::num::{Leverage, Money, Price, Quantity, SignedQuantity};
    use risk_core::Decimal;

    use super::*;
    use crate::config_file::{ConfigFile, Format};
    use crate::kafka::apply::Applier;
    use crate::kafka::feed::DEMO;
    use crate::kafka::InputTopic;

    fn engine() -> Arc<RiskEngine> {
        let file = ConfigFile::parse(DEMO, Format::Toml, "demo").expect("demo");
        Arc::new(RiskEngine::new(file.engine).expect("engine"))
    }

    const ETH: &str = r#"{"symbol":"ETHUSDT","tick_size":"0.01","lot_size":"0.001","min_quantity":"0.001",
        "max_quantity":"1000","contract_multiplier":"1","max_leverage":"100","required_kyc":"L0",
        "status":"TRADING","version":3,"event_ts_ms":1}"#;

    fn position(account: &str, symbol: &str, size: &str, version: i64) -> String {
        format!(
            r#"{{"account_id":"{account}","user_id":"u-{account}","symbol":"{symbol}","size":"{size}",
            "entry_price":"3000.125","leverage":"10","version":{version},"event_ts_ms":1}}"#
        )
    }

    /// An applier that went through every kind of entity, with a position held for an
    /// instrument not listed yet.
    fn busy_applier() -> Applier {
        let mut a = Applier::new(engine());
        let profile = r#"{"event_id":"u1","event_ts_ms":1000,"account_id":"acc-1","user_id":"u-acc-1",
            "kyc_level":"L2","exposure_limit":"50000.5","max_leverage":"20","risk_score":"10"}"#;
        let deposit = r#"{"account_id":"acc-1","user_id":"u-acc-1","event_id":"d1","currency":"USDT",
            "delta":"100.000000001","version":4,"event_ts_ms":1}"#;
        let opened = r#"{"account_id":"acc-1","user_id":"u-acc-1","event_id":"e1","order_id":"o1",
            "type":"ORDER_OPENED","symbol":"ETHUSDT","side":"SELL","quantity":"0.5","price":"3100",
            "leverage":"5","version":1,"event_ts_ms":1}"#;
        for (topic, json) in [
            (InputTopic::InstrumentCreated, ETH.to_owned()),
            (InputTopic::UserCreated, profile.to_owned()),
            (InputTopic::WalletBalanceChanged, deposit.to_owned()),
            (
                InputTopic::PositionUpdated,
                position("acc-1", "ETHUSDT", "-2.5", 7),
            ),
            (
                InputTopic::PositionUpdated,
                position("acc-2", "SOLUSDT", "4", 2),
            ),
            (InputTopic::EngineEvent, opened.to_owned()),
            (
                InputTopic::Mark,
                r#"{"symbol":"ETHUSDT","price":"3000.5","ts_ms":1700000000000}"#.to_owned(),
            ),
        ] {
            a.apply(topic, json.as_bytes()).expect("applies");
        }
        a
    }

    fn checkpoint(a: &Applier) -> Checkpoint {
        let mut offsets = Offsets::new();
        offsets.insert(("position.updated.v1.dev".to_owned(), 0), 7);
        offsets.insert(("md.mark.v1.dev".to_owned(), 3), 1_234_567_890_123);
        Checkpoint {
            engine: a.engine().export_state(),
            applier: a.export(),
            offsets,
        }
    }

    fn maps(e: &Encoded) -> (HashMap<String, String>, HashMap<String, String>) {
        (
            e.offsets.iter().cloned().collect(),
            e.meta.iter().cloned().collect(),
        )
    }

    #[test]
    fn a_busy_state_round_trips_and_the_restored_applier_goes_on_where_it_stopped() {
        let a = busy_applier();
        let cp = checkpoint(&a);
        assert_eq!(cp.applier.parked_count(), 1);
        let encoded = encode(&cp, 42).expect("encodes");
        let text = String::from_utf8(encoded.state.clone()).expect("utf8");
        // Exact decimals, as strings.
        assert!(text.contains(r#""100.000000001""#), "{text}");
        assert!(text.starts_with(r#"{"format":1,"#), "{text}");
        let (offsets, meta) = maps(&encoded);
        assert_eq!(
            offsets.get("md.mark.v1.dev/3").map(String::as_str),
            Some("1234567890123")
        );
        assert_eq!(meta.get("written_at_ms").map(String::as_str), Some("42"));
        let back = decode(Some(&encoded.state), &offsets, &meta)
            .expect("decodes")
            .expect("present");
        assert_eq!(back, cp);

        // Restored: redeliveries are duplicates, the held position waits for its
        // instrument, and the engine's sequences carry on.
        let restored_engine = engine();
        restored_engine
            .restore_state(back.engine)
            .expect("restores");
        let mut b = Applier::restore(Arc::clone(&restored_engine), back.applier);
        assert_eq!(
            b.apply(
                InputTopic::PositionUpdated,
                position("acc-1", "ETHUSDT", "-2.5", 7).as_bytes()
            )
            .ok(),
            Some(crate::kafka::apply::Outcome::Duplicate)
        );
        // The same next messages on the restored applier and on the original.
        let sol = ETH
            .replace("ETHUSDT", "SOLUSDT")
            .replace("\"version\":3", "\"version\":1");
        let mut fresh = a;
        for applier in [&mut b, &mut fresh] {
            applier
                .apply(InputTopic::InstrumentCreated, sol.as_bytes())
                .expect("instrument");
            applier
                .apply(
                    InputTopic::PositionUpdated,
                    position("acc-1", "ETHUSDT", "1", 8).as_bytes(),
                )
                .expect("applies");
        }
        assert_eq!(b.engine().export_state(), fresh.engine().export_state());
        assert_eq!(b.export(), fresh.export());
        let acc2 = b
            .engine()
            .account(&AccountId::new("acc-2"))
            .expect("acc-2")
            .0;
        assert_eq!(acc2.positions.len(), 1, "the held position was released");
    }

    #[test]
    fn no_keys_is_no_snapshot() {
        assert_eq!(
            decode(None, &HashMap::new(), &HashMap::new()).expect("ok"),
            None
        );
    }

    #[test]
    fn another_format_or_a_damaged_value_is_refused_with_its_key() {
        let a = busy_applier();
        let encoded = encode(&checkpoint(&a), 1).expect("encodes");
        let (offsets, meta) = maps(&encoded);

        let mut newer = meta.clone();
        newer.insert("format".into(), "2".into());
        let e = decode(Some(&encoded.state), &offsets, &newer).expect_err("format 2");
        assert!(
            matches!(
                e,
                SnapshotError::Incompatible {
                    found: 2,
                    expected: 1
                }
            ),
            "{e}"
        );
        let old_state = String::from_utf8(encoded.state.clone())
            .expect("utf8")
            .replacen(r#""format":1"#, r#""format":0"#, 1);
        let e = decode(Some(old_state.as_bytes()), &offsets, &meta).expect_err("state format");
        assert!(
            matches!(e, SnapshotError::Incompatible { found: 0, .. }),
            "{e}"
        );

        let truncated = &encoded.state[..encoded.state.len() / 2];
        let e = decode(Some(truncated), &offsets, &meta).expect_err("truncated");
        assert!(e.to_string().contains("state"), "{e}");

        // A value the core refuses names its path.
        let text = String::from_utf8(encoded.state.clone()).expect("utf8");
        let bad = text.replacen(r#""tick_size":"0.01""#, r#""tick_size":"-1""#, 1);
        assert_ne!(bad, text);
        let e = decode(Some(bad.as_bytes()), &offsets, &meta).expect_err("negative tick");
        let message = e.to_string();
        assert!(message.contains("engine.market.instruments"), "{message}");

        let mut bad_offsets = offsets.clone();
        bad_offsets.insert("no-partition".into(), "1".into());
        let e = decode(Some(&encoded.state), &bad_offsets, &meta).expect_err("offset field");
        assert!(e.to_string().contains("no-partition"), "{e}");
        let mut negative = offsets;
        negative.insert("t/0".into(), "-3".into());
        assert!(decode(Some(&encoded.state), &negative, &meta).is_err());

        let e = decode(None, &HashMap::new(), &meta).expect_err("no state");
        assert!(e.to_string().contains("missing"), "{e}");
        let e =
            decode(Some(&encoded.state), &HashMap::new(), &HashMap::new()).expect_err("no meta");
        assert!(e.to_string().contains("format"), "{e}");
    }

    fn decimal(max_scale: u32) -> impl Strategy<Value = Decimal> {
        (any::<i64>(), 0..=max_scale).prop_map(|(m, s)| Decimal::new(m, s))
    }

    proptest! {
        /// Any engine state built by events (balances and prices at any scale, positions,
        /// resting orders, marks) comes back equal through the encoding.
        #[test]
        fn any_state_round_trips_exactly(
            accounts in proptest::collection::vec(
                (decimal(12), decimal(6), 1u64..1_000, any::<bool>(), 0u8..3),
                0..8,
            ),
            mark in decimal(8),
            mark_ms in 0i64..4_000_000_000_000,
            offsets in proptest::collection::btree_map((0i32..4, 0usize..3), 0i64..i64::MAX, 0..6),
        ) {
            let a = busy_applier();
            let engine = a.engine();
            if let Ok(price) = Price::new(mark.abs()) {
                let at = Utc.timestamp_millis_opt(mark_ms).single().expect("time");
                let _ = engine.apply(&EngineEvent::Market(MarketEvent::Mark {
                    symbol: Symbol::new("ETHUSDT"),
                    price,
                    at,
                }));
            }
            for (i, (balance, size, seq, order, kyc)) in accounts.iter().enumerate() {
                let id = AccountId::new(&format!("p-{i}"));
                let event = |seq: u64, event| EngineEvent::Account {
                    account_id: id.clone(),
                    seq: Seq::lit(seq),
                    event,
                };
                let profile = RiskProfile {
                    kyc_level: KycLevel::ALL[usize::from(*kyc)],
                    ..RiskProfile::default()
                };
                engine
                    .apply(&event(*seq, AccountEvent::ProfileUpsert {
                        user_id: UserId::new("u"),
                        profile,
                    }))
                    .expect("profile");
                engine
                    .apply(&event(seq + 1, AccountEvent::BalanceChange {
                        delta: Money::new(*balance).expect("money"),
                    }))
                    .expect("balance");
                if let (Ok(size), false) = (SignedQuantity::new(*size), size.is_zero()) {
                    engine
                        .apply(&event(seq + 2, AccountEvent::PositionUpdate {
                            symbol: Symbol::new("ETHUSDT"),
                            size,
                            entry_price: Price::lit("2999.99"),
                            leverage: Leverage::lit("3"),
                        }))
                        .expect("position");
                }
                if *order {
                    engine
                        .apply(&event(seq + 3, AccountEvent::OrderOpened(OpenOrder {
                            order_id: OrderId::new(&format!("o-{i}")),
                            symbol: Symbol::new("ETHUSDT"),
                            side: Side::Buy,
                            quantity: Quantity::lit("0.001"),
                            price: Price::lit("1.01"),
                            leverage: Leverage::lit("1"),
                            reduce_only: true,
                        })))
                        .expect("order");
                }
            }
            let topics = ["user.created.v1", "position.updated.v1", "md.mark.v1"];
            let cp = Checkpoint {
                engine: engine.export_state(),
                applier: a.export(),
                offsets: offsets
                    .into_iter()
                    .map(|((p, t), o)| ((topics[t].to_owned(), p), o))
                    .collect(),
            };
            let encoded = encode(&cp, 7).expect("encodes");
            let (offsets, meta) = maps(&encoded);
            let back = decode(Some(&encoded.state), &offsets, &meta)
                .expect("decodes")
                .expect("present");
            prop_assert_eq!(&back, &cp);
            let copy = self::engine();
            copy.restore_state(back.engine).expect("restores");
            prop_assert_eq!(copy.export_state(), cp.engine);
        }
    }
}
