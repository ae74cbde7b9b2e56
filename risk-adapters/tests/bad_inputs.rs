//! The cross-adapter table (`tests/data/bad_inputs.json`): every bad input is refused by
//! the config file loader and by a real gRPC server (`ApplyEvent`, `PreTradeCheck`) with
//! a message naming the same field and giving the same reason. The Python bindings run
//! the same table in `risk-py/tests/test_bad_inputs.py`.
#![cfg(feature = "grpc")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::Arc;

use pb::account_event::Change;
use pb::account_or_market_event::Event;
use pb::risk_service_client::RiskServiceClient;
use risk_adapters::config_file::{ConfigFile, Format};
use risk_adapters::grpc::proto::v1 as pb;
use risk_adapters::grpc::server::{serve, ServerOptions};
use risk_adapters::grpc::service::now;
use serde_json::{Map, Value};
use tonic::transport::Channel;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/config/demo.toml");
const TABLE: &str = include_str!("data/bad_inputs.json");

struct Case {
    name: String,
    target: String,
    /// The base with the case's changes applied.
    value: Map<String, Value>,
    field: String,
    reason: String,
}

fn cases() -> Vec<Case> {
    let table: Value = serde_json::from_str(TABLE).expect("table is JSON");
    let bases = table["bases"].as_object().expect("bases");
    table["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let target = c["target"].as_str().expect("target").to_owned();
            let mut value = bases[&target].as_object().expect("base").clone();
            if let Some(set) = c.get("set").and_then(Value::as_object) {
                for (k, v) in set {
                    value.insert(k.clone(), v.clone());
                }
            }
            if let Some(unset) = c.get("unset").and_then(Value::as_array) {
                for k in unset {
                    value.remove(k.as_str().expect("key"));
                }
            }
            Case {
                name: c["name"].as_str().expect("name").to_owned(),
                target,
                value,
                field: c["field"].as_str().expect("field").to_owned(),
                reason: c["reason"].as_str().expect("reason").to_owned(),
            }
        })
        .collect()
}

#[track_caller]
fn assert_names(case: &Case, surface: &str, message: &str) {
    assert!(
        message.contains(&case.field) && message.contains(&case.reason),
        "{surface} refused `{}` with {message:?}, which does not name {:?} and {:?}",
        case.name,
        case.field,
        case.reason
    );
}

#[test]
fn the_table_has_at_least_30_inputs_over_every_target() {
    let cases = cases();
    assert!(cases.len() >= 30, "{}", cases.len());
    for target in [
        "instrument",
        "mark",
        "position",
        "profile",
        "balance_change",
        "order",
    ] {
        assert!(cases.iter().any(|c| c.target == target), "{target}");
    }
}

/// Where a target lives in the config file, if it does.
fn config_slot<'a>(file: &'a mut Value, target: &str) -> Option<&'a mut Value> {
    match target {
        "instrument" => Some(&mut file["instruments"][0]),
        "mark" => Some(&mut file["marks"][0]),
        "position" => Some(&mut file["accounts"][0]["positions"][0]),
        "profile" => Some(&mut file["accounts"][0]["profile"]),
        _ => None,
    }
}

#[test]
fn the_config_file_refuses_every_input() {
    let demo = ConfigFile::load(Path::new(DEMO)).expect("demo config");
    let json: Value = serde_json::from_str(&demo.to_text(Format::Json).expect("json")).unwrap();
    let mut tried = 0;
    for case in cases() {
        let mut file = json.clone();
        let Some(slot) = config_slot(&mut file, &case.target) else {
            continue;
        };
        *slot = Value::Object(case.value.clone());
        let err = ConfigFile::parse(&file.to_string(), Format::Json, "table.json")
            .expect_err(&case.name)
            .to_string();
        assert_names(&case, "the config file", &err);
        tried += 1;
    }
    assert!(tried >= 25, "{tried}");
}

fn text(value: &Map<String, Value>, key: &str) -> String {
    match value.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A wire enum from its name; an unknown name is a number no enum uses.
fn wire_enum(value: &Map<String, Value>, key: &str, parse: fn(&str) -> Option<i32>) -> i32 {
    match value.get(key) {
        None | Some(Value::Null) => 0,
        Some(v) => parse(&text(value, key)).unwrap_or_else(|| {
            assert!(v.is_string());
            99
        }),
    }
}

fn kyc(name: &str) -> Option<i32> {
    pb::KycLevel::from_str_name(&format!("KYC_LEVEL_{name}")).map(|k| k as i32)
}

fn account(value: &Map<String, Value>, seq: u64, change: Change) -> pb::AccountOrMarketEvent {
    pb::AccountOrMarketEvent {
        event: Some(Event::Account(pb::AccountEvent {
            account_id: "acc-alice".into(),
            seq: value.get("seq").and_then(Value::as_u64).unwrap_or(seq),
            change: Some(change),
        })),
    }
}

/// The wire event for a case, or `None` for the order target.
fn wire_event(case: &Case) -> Option<pb::AccountOrMarketEvent> {
    let v = &case.value;
    let event = match case.target.as_str() {
        "instrument" => pb::AccountOrMarketEvent {
            event: Some(Event::Instrument(pb::Instrument {
                symbol: text(v, "symbol"),
                tick_size: text(v, "tick_size"),
                lot_size: text(v, "lot_size"),
                min_quantity: text(v, "min_quantity"),
                max_quantity: text(v, "max_quantity"),
                contract_multiplier: text(v, "contract_multiplier"),
                max_leverage: text(v, "max_leverage"),
                required_kyc: wire_enum(v, "required_kyc", kyc),
                status: wire_enum(v, "status", |n| {
                    pb::InstrumentStatus::from_str_name(&format!("INSTRUMENT_STATUS_{n}"))
                        .map(|s| s as i32)
                }),
                price_band: text(v, "price_band"),
            })),
        },
        "mark" => pb::AccountOrMarketEvent {
            event: Some(Event::Mark(pb::MarkPrice {
                symbol: text(v, "symbol"),
                price: text(v, "price"),
                at_unix_ms: 0,
            })),
        },
        "position" => account(
            v,
            100,
            Change::PositionUpdate(pb::PositionUpdate {
                symbol: text(v, "symbol"),
                size: text(v, "size"),
                entry_price: text(v, "entry_price"),
                leverage: text(v, "leverage"),
            }),
        ),
        "profile" => account(
            v,
            100,
            Change::ProfileUpsert(pb::ProfileUpsert {
                user_id: "alice".into(),
                profile: Some(pb::RiskProfile {
                    kyc_level: wire_enum(v, "kyc_level", kyc),
                    exposure_limit: text(v, "exposure_limit"),
                    frozen: false,
                    max_leverage: text(v, "max_leverage"),
                    risk_score: text(v, "risk_score"),
                    trading_state: 0,
                }),
            }),
        ),
        "balance_change" => account(
            v,
            100,
            Change::BalanceChange(pb::BalanceChange {
                delta: text(v, "delta"),
            }),
        ),
        _ => return None,
    };
    Some(event)
}

fn wire_order(v: &Map<String, Value>) -> pb::PreTradeCheckRequest {
    pb::PreTradeCheckRequest {
        user_id: text(v, "user_id"),
        account_id: text(v, "account_id"),
        order_id: text(v, "order_id"),
        symbol: text(v, "symbol"),
        side: wire_enum(v, "side", |n| pb::Side::from_str_name(n).map(|s| s as i32)),
        order_type: wire_enum(v, "order_type", |n| {
            pb::OrderType::from_str_name(n).map(|t| t as i32)
        }),
        quantity: text(v, "quantity"),
        price: text(v, "price"),
        leverage: text(v, "leverage"),
        reduce_only: false,
        post_only: false,
        trace_id: String::new(),
    }
}

#[tokio::test]
async fn grpc_apply_event_and_pre_trade_check_refuse_every_input() {
    let file = ConfigFile::load(Path::new(DEMO)).expect("demo config");
    let engine = Arc::new(file.into_engine(now(), "demo.toml").expect("demo engine"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Arc::clone(&engine);
    tokio::spawn(async move {
        serve(
            server,
            listener,
            ServerOptions::default(),
            std::future::pending(),
        )
        .await
        .expect("serve");
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = RiskServiceClient::new(channel);
    // The valid base order is approved, so a refusal below is the bad input's.
    let base = cases()
        .into_iter()
        .find(|c| c.target == "order")
        .expect("an order case");
    let table: Value = serde_json::from_str(TABLE).unwrap();
    let valid = wire_order(table["bases"]["order"].as_object().unwrap());
    let ok = client.pre_trade_check(valid).await.unwrap().into_inner();
    assert_eq!(
        ok.decision(),
        pb::RiskDecision::Approved,
        "{ok:?} ({})",
        base.name
    );

    let (mut events, mut orders) = (0, 0);
    for case in cases() {
        match wire_event(&case) {
            Some(event) => {
                let status = client.apply_event(event).await.expect_err(&case.name);
                assert_names(&case, "gRPC ApplyEvent", status.message());
                events += 1;
            }
            None => {
                let r = client
                    .pre_trade_check(wire_order(&case.value))
                    .await
                    .expect("a check always answers")
                    .into_inner();
                assert_eq!(r.decision(), pb::RiskDecision::Rejected, "{}", case.name);
                assert_eq!(
                    r.reject_reason(),
                    pb::RejectReason::InvalidRequest,
                    "{}",
                    case.name
                );
                assert_names(&case, "gRPC PreTradeCheck", &r.message);
                orders += 1;
            }
        }
    }
    assert!(
        events >= 25 && orders >= 10,
        "{events} events, {orders} orders"
    );
    // Nothing refused changed the account.
    let (_, last_seq) = engine
        .account(&risk_core::ids::AccountId::new("acc-alice"))
        .expect("alice");
    assert_eq!(
        last_seq, 3,
        "profile, balance and one position from the demo config"
    );
}

/// Issue 12: the zero-multiplier instrument is refused by ApplyEvent as by the file.
#[tokio::test]
async fn apply_event_refuses_a_zero_multiplier_naming_the_field() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "zero multiplier")
        .expect("case");
    let file = ConfigFile::load(Path::new(DEMO)).expect("demo config");
    let engine = Arc::new(file.into_engine(now(), "demo.toml").expect("demo engine"));
    let service = risk_adapters::grpc::service::RiskService::new(engine, false);
    use pb::risk_service_server::RiskService as _;
    let status = service
        .apply_event(tonic::Request::new(wire_event(&case).expect("event")))
        .await
        .expect_err("zero multiplier");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "instrument.contract_multiplier: 0 is not valid: must be greater than zero"
    );
}
