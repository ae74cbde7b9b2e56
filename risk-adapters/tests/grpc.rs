//! The gRPC adapter end to end: an in-process `risk-server` on an ephemeral loopback port
//! with the demo config, driven by the generated client.
#![cfg(feature = "grpc")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pb::account_event::Change;
use pb::account_or_market_event::Event;
use pb::risk_service_client::RiskServiceClient;
use risk_adapters::config_file::ConfigFile;
use risk_adapters::grpc::proto::v1 as pb;
use risk_adapters::grpc::server::{serve, ServerOptions};
use risk_adapters::grpc::service::now;
use tokio_stream::StreamExt as _;
use tonic::transport::Channel;
use tonic::Code;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/config/demo.toml");

type Client = RiskServiceClient<Channel>;

/// Starts a server with the demo config on 127.0.0.1:0; returns its address.
async fn start_with(
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let file = ConfigFile::load(Path::new(DEMO)).expect("demo config");
    let engine = Arc::new(file.into_engine(now(), "demo.toml").expect("demo engine"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        serve(engine, listener, options, shutdown)
            .await
            .expect("serve");
    });
    (addr, task)
}

async fn connect(addr: SocketAddr) -> Client {
    let channel = tokio::time::timeout(
        Duration::from_secs(10),
        Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    RiskServiceClient::new(channel)
}

async fn start() -> Client {
    let (addr, _task) = start_with(ServerOptions::default(), std::future::pending()).await;
    connect(addr).await
}

/// alice buys 0.01 BTCUSDT at 50000, 10x: approved on the demo config.
fn order(order_id: &str) -> pb::PreTradeCheckRequest {
    pb::PreTradeCheckRequest {
        user_id: "alice".into(),
        account_id: "acc-alice".into(),
        order_id: order_id.into(),
        symbol: "BTCUSDT".into(),
        side: pb::Side::Buy as i32,
        order_type: pb::OrderType::Limit as i32,
        quantity: "0.01".into(),
        price: "50000".into(),
        leverage: "10".into(),
        reduce_only: false,
        post_only: false,
        trace_id: format!("trace-{order_id}"),
    }
}

async fn check(
    client: &mut Client,
    request: pb::PreTradeCheckRequest,
) -> pb::PreTradeCheckResponse {
    client
        .pre_trade_check(request)
        .await
        .expect("a check always answers")
        .into_inner()
}

#[track_caller]
fn assert_rejected(r: &pb::PreTradeCheckResponse, reason: pb::RejectReason, needle: &str) {
    assert_eq!(r.decision(), pb::RiskDecision::Rejected, "{r:?}");
    assert_eq!(r.reject_reason(), reason, "{r:?}");
    assert!(
        r.message.contains(needle),
        "message {:?} lacks {needle:?}",
        r.message
    );
}

fn unix_ms(offset_ms: i64) -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    i64::try_from(ms).unwrap() + offset_ms
}

fn account_event(account_id: &str, seq: u64, change: Change) -> pb::AccountOrMarketEvent {
    pb::AccountOrMarketEvent {
        event: Some(Event::Account(pb::AccountEvent {
            account_id: account_id.into(),
            seq,
            change: Some(change),
        })),
    }
}

fn deposit(account_id: &str, seq: u64, delta: &str) -> pb::AccountOrMarketEvent {
    account_event(
        account_id,
        seq,
        Change::BalanceChange(pb::BalanceChange {
            delta: delta.into(),
        }),
    )
}

#[tokio::test]
async fn approves_a_plain_order_and_echoes_the_trace_id() {
    let mut client = start().await;
    let r = check(&mut client, order("o-1")).await;
    assert_eq!(r.decision(), pb::RiskDecision::Approved, "{r:?}");
    assert_eq!(r.reject_reason(), pb::RejectReason::Unspecified);
    assert_eq!(r.trace_id, "trace-o-1");
    assert_eq!(r.required_initial_margin, "50");
    assert!(!r.projected_margin_ratio.is_empty());
    assert!(r.rule_hits.is_empty());
}

#[tokio::test]
async fn rejects_with_each_common_reason() {
    let mut client = start().await;
    let cases = [
        (
            pb::PreTradeCheckRequest {
                account_id: "acc-nobody".into(),
                ..order("r-1")
            },
            pb::RejectReason::UnknownAccount,
            "acc-nobody",
        ),
        (
            pb::PreTradeCheckRequest {
                symbol: "DOGEUSDT".into(),
                ..order("r-2")
            },
            pb::RejectReason::UnknownSymbol,
            "DOGEUSDT",
        ),
        (
            // 1 BTC at 1x needs 50,000 of margin; alice has about 22,500 free.
            pb::PreTradeCheckRequest {
                quantity: "1".into(),
                leverage: "1".into(),
                ..order("r-3")
            },
            pb::RejectReason::InsufficientMargin,
            "",
        ),
        (
            pb::PreTradeCheckRequest {
                leverage: "100".into(),
                ..order("r-4")
            },
            pb::RejectReason::MaxLeverageExceeded,
            "",
        ),
        (
            pb::PreTradeCheckRequest {
                price: "60000".into(),
                ..order("r-5")
            },
            pb::RejectReason::PriceOutOfBand,
            "",
        ),
        (
            // carol's risk score (85) trips the `risky-account` REJECT rule.
            pb::PreTradeCheckRequest {
                user_id: "carol".into(),
                account_id: "acc-carol".into(),
                ..order("r-6")
            },
            pb::RejectReason::RiskRuleViolation,
            "",
        ),
    ];
    for (request, reason, needle) in cases {
        let r = check(&mut client, request).await;
        assert_rejected(&r, reason, needle);
    }
}

#[tokio::test]
async fn duplicate_order_ids_are_rejected() {
    let mut client = start().await;
    let first = check(&mut client, order("dup-1")).await;
    assert_eq!(first.decision(), pb::RiskDecision::Approved, "{first:?}");
    let second = check(&mut client, order("dup-1")).await;
    assert_rejected(&second, pb::RejectReason::DuplicateOrder, "dup-1");
}

#[tokio::test]
async fn an_old_mark_makes_the_check_stale() {
    let mut client = start().await;
    let listing = pb::AccountOrMarketEvent {
        event: Some(Event::Instrument(pb::Instrument {
            symbol: "XRPUSDT".into(),
            tick_size: "0.0001".into(),
            lot_size: "1".into(),
            min_quantity: "1".into(),
            max_quantity: "1000000".into(),
            contract_multiplier: "1".into(),
            max_leverage: "20".into(),
            required_kyc: pb::KycLevel::L0 as i32,
            status: pb::InstrumentStatus::Trading as i32,
            price_band: "0.1".into(),
        })),
    };
    let r = client
        .apply_event(listing)
        .await
        .expect("listing")
        .into_inner();
    assert_eq!(r.outcome(), pb::EventOutcome::Applied);
    let old_mark = pb::AccountOrMarketEvent {
        event: Some(Event::Mark(pb::MarkPrice {
            symbol: "XRPUSDT".into(),
            price: "0.5".into(),
            at_unix_ms: unix_ms(-60_000),
        })),
    };
    let r = client
        .apply_event(old_mark.clone())
        .await
        .expect("mark")
        .into_inner();
    assert_eq!(r.outcome(), pb::EventOutcome::Applied);
    // The same mark again is not newer: stale, ignored.
    let r = client
        .apply_event(old_mark)
        .await
        .expect("mark")
        .into_inner();
    assert_eq!(r.outcome(), pb::EventOutcome::Stale);
    let request = pb::PreTradeCheckRequest {
        symbol: "XRPUSDT".into(),
        quantity: "100".into(),
        price: "0.5".into(),
        leverage: "5".into(),
        ..order("xrp-1")
    };
    let r = check(&mut client, request.clone()).await;
    assert_rejected(&r, pb::RejectReason::StaleData, "XRPUSDT");
    // A fresh mark (stamped by the server) cures it.
    let fresh = pb::AccountOrMarketEvent {
        event: Some(Event::Mark(pb::MarkPrice {
            symbol: "XRPUSDT".into(),
            price: "0.5".into(),
            at_unix_ms: 0,
        })),
    };
    client.apply_event(fresh).await.expect("fresh mark");
    let r = check(
        &mut client,
        pb::PreTradeCheckRequest {
            order_id: "xrp-2".into(),
            ..request
        },
    )
    .await;
    assert_eq!(r.decision(), pb::RiskDecision::Approved, "{r:?}");
}

#[tokio::test]
async fn a_warn_rule_flags_the_order() {
    let mut client = start().await;
    let r = check(
        &mut client,
        pb::PreTradeCheckRequest {
            leverage: "50".into(),
            ..order("f-1")
        },
    )
    .await;
    assert_eq!(r.decision(), pb::RiskDecision::Flagged, "{r:?}");
    assert_eq!(r.reject_reason(), pb::RejectReason::Unspecified);
    assert_eq!(r.rule_hits, vec!["high-leverage-watch".to_owned()]);
}

#[tokio::test]
async fn malformed_decimals_are_invalid_requests_naming_the_field() {
    let mut client = start().await;
    let long = "9".repeat(200);
    let cases: Vec<(pb::PreTradeCheckRequest, &str)> = vec![
        (
            pb::PreTradeCheckRequest {
                quantity: "abc".into(),
                ..order("m")
            },
            "quantity",
        ),
        (
            pb::PreTradeCheckRequest {
                quantity: "1,5".into(),
                ..order("m")
            },
            "quantity",
        ),
        (
            pb::PreTradeCheckRequest {
                quantity: " 1".into(),
                ..order("m")
            },
            "quantity",
        ),
        (
            pb::PreTradeCheckRequest {
                quantity: String::new(),
                ..order("m")
            },
            "quantity",
        ),
        (
            pb::PreTradeCheckRequest {
                quantity: "-1".into(),
                ..order("m")
            },
            "quantity",
        ),
        (
            pb::PreTradeCheckRequest {
                quantity: "0".into(),
                ..order("m")
            },
            "quantity",
        ),
        (
            pb::PreTradeCheckRequest {
                price: "NaN".into(),
                ..order("m")
            },
            "price",
        ),
        (
            pb::PreTradeCheckRequest {
                price: "inf".into(),
                ..order("m")
            },
            "price",
        ),
        (
            pb::PreTradeCheckRequest {
                price: "-50000".into(),
                ..order("m")
            },
            "price",
        ),
        (
            pb::PreTradeCheckRequest {
                price: long.clone(),
                ..order("m")
            },
            "price",
        ),
        (
            pb::PreTradeCheckRequest {
                price: "1e99999".into(),
                ..order("m")
            },
            "price",
        ),
        (
            pb::PreTradeCheckRequest {
                leverage: "0x10".into(),
                ..order("m")
            },
            "leverage",
        ),
        (
            pb::PreTradeCheckRequest {
                leverage: "0.5".into(),
                ..order("m")
            },
            "leverage",
        ),
        (
            pb::PreTradeCheckRequest {
                leverage: "10.0.1".into(),
                ..order("m")
            },
            "leverage",
        ),
        (
            pb::PreTradeCheckRequest {
                side: 0,
                ..order("m")
            },
            "side",
        ),
        (
            pb::PreTradeCheckRequest {
                side: 9,
                ..order("m")
            },
            "side",
        ),
        (
            pb::PreTradeCheckRequest {
                order_type: 0,
                ..order("m")
            },
            "order_type",
        ),
        (
            pb::PreTradeCheckRequest {
                order_type: pb::OrderType::Market as i32,
                ..order("m")
            },
            "price",
        ),
    ];
    for (request, field) in cases {
        let r = check(&mut client, request.clone()).await;
        assert_rejected(&r, pb::RejectReason::InvalidRequest, field);
        assert_eq!(r.trace_id, "trace-m", "{request:?}");
        assert!(r.message.len() < 200, "message too long: {}", r.message);
    }
}

#[tokio::test]
async fn account_events_are_idempotent_over_the_wire() {
    let mut client = start().await;
    // The demo config applied seqs 1-3 to acc-alice.
    let r = client
        .apply_event(deposit("acc-alice", 10, "1000"))
        .await
        .expect("apply")
        .into_inner();
    assert_eq!((r.outcome(), r.last_seq), (pb::EventOutcome::Applied, 10));
    let r = client
        .apply_event(deposit("acc-alice", 10, "1000"))
        .await
        .expect("apply")
        .into_inner();
    assert_eq!((r.outcome(), r.last_seq), (pb::EventOutcome::Duplicate, 10));
    let account = client
        .get_account(pb::GetAccountRequest {
            account_id: "acc-alice".into(),
        })
        .await
        .expect("account")
        .into_inner();
    assert_eq!(account.wallet_balance, "26000", "applied once");

    // Unary errors: malformed is INVALID_ARGUMENT, refused by the engine is FAILED_PRECONDITION.
    let e = client
        .apply_event(deposit("acc-alice", 11, "lots"))
        .await
        .expect_err("malformed");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("account.balance_change.delta"),
        "{}",
        e.message()
    );
    let e = client
        .apply_event(deposit("acc-ghost", 1, "5"))
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Code::FailedPrecondition);

    // The stream: counts and first errors.
    let events = vec![
        deposit("acc-bob", 7, "10"),
        deposit("acc-bob", 7, "10"),
        deposit("acc-bob", 8, "not-a-number"),
        deposit("acc-ghost", 1, "5"),
        pb::AccountOrMarketEvent { event: None },
        account_event(
            "acc-bob",
            9,
            Change::TradingState(pb::TradingState::Halted as i32),
        ),
    ];
    let summary = client
        .apply_events(tokio_stream::iter(events))
        .await
        .expect("stream")
        .into_inner();
    assert_eq!(
        (
            summary.received,
            summary.applied,
            summary.duplicate,
            summary.stale,
            summary.rejected
        ),
        (6, 2, 1, 0, 3),
        "{summary:?}"
    );
    assert!(
        summary.errors[0].starts_with("event 2: account.balance_change.delta"),
        "{summary:?}"
    );
    let bob = pb::PreTradeCheckRequest {
        user_id: "bob".into(),
        account_id: "acc-bob".into(),
        symbol: "ETHUSDT".into(),
        price: "3000".into(),
        leverage: "2".into(),
        ..order("bob-1")
    };
    let r = check(&mut client, bob).await;
    assert_rejected(&r, pb::RejectReason::TradingHalted, "account");
}

#[tokio::test]
async fn config_can_be_read_and_replaced_atomically() {
    let mut client = start().await;
    let json = client
        .get_config(pb::GetConfigRequest {})
        .await
        .expect("get")
        .into_inner()
        .json;
    let mut config: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(config["engine"]["limits"]["max_mark_age_ms"], 5000);

    // Invalid: refused, precisely, and the old config stays.
    let mut bad = config.clone();
    bad["engine"]["limits"]["margin_call_ratio"] = "1.5".into();
    let e = client
        .replace_config(pb::ReplaceConfigRequest {
            text: bad.to_string(),
            format: String::new(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("margin_call_ratio"), "{}", e.message());
    let e = client
        .replace_config(pb::ReplaceConfigRequest {
            text: "[engine]\nbogus = 1".into(),
            format: "toml".into(),
        })
        .await
        .expect_err("unparsable");
    assert_eq!(e.code(), Code::InvalidArgument);
    let with_state = std::fs::read_to_string(DEMO).unwrap();
    let e = client
        .replace_config(pb::ReplaceConfigRequest {
            text: with_state,
            format: "toml".into(),
        })
        .await
        .expect_err("state");
    assert!(e.message().contains("instruments"), "{}", e.message());
    let r = check(&mut client, order("c-1")).await;
    assert_eq!(
        r.decision(),
        pb::RiskDecision::Approved,
        "old config in force: {r:?}"
    );

    // Valid: takes effect on the next check. A 1 ms mark age makes the load-time marks stale.
    config["engine"]["limits"]["max_mark_age_ms"] = 1.into();
    tokio::time::sleep(Duration::from_millis(5)).await;
    client
        .replace_config(pb::ReplaceConfigRequest {
            text: config.to_string(),
            format: "json".into(),
        })
        .await
        .expect("valid config");
    let json = client
        .get_config(pb::GetConfigRequest {})
        .await
        .expect("get")
        .into_inner()
        .json;
    assert!(json.contains("\"max_mark_age_ms\": 1,"), "{json}");
    let r = check(&mut client, order("c-2")).await;
    assert_rejected(&r, pb::RejectReason::StaleData, "");
}

#[tokio::test]
async fn get_account_shows_the_engine_view_with_reservations() {
    let options = ServerOptions {
        reserve_margin: true,
        ..ServerOptions::default()
    };
    let (addr, _task) = start_with(options, std::future::pending()).await;
    let mut client = connect(addr).await;
    let r = check(&mut client, order("res-1")).await;
    assert_eq!(r.decision(), pb::RiskDecision::Approved, "{r:?}");
    let a = client
        .get_account(pb::GetAccountRequest {
            account_id: "acc-alice".into(),
        })
        .await
        .expect("account")
        .into_inner();
    assert_eq!(
        (a.user_id.as_str(), a.wallet_balance.as_str(), a.last_seq),
        ("alice", "25000", 3)
    );
    let profile = a.profile.clone().expect("profile");
    assert_eq!(profile.kyc_level(), pb::KycLevel::L2);
    assert_eq!(profile.trading_state(), pb::TradingState::Active);
    assert_eq!(a.positions.len(), 1);
    assert_eq!(
        (a.positions[0].symbol.as_str(), a.positions[0].size.as_str()),
        ("ETHUSDT", "10")
    );
    assert_eq!(a.reservations.len(), 1, "{a:?}");
    assert_eq!(
        (
            a.reservations[0].order_id.as_str(),
            a.reservations[0].amount.as_str()
        ),
        ("res-1", "50")
    );
    // The order service opens the order: the reservation becomes an open order.
    let opened = account_event(
        "acc-alice",
        4,
        Change::OrderOpened(pb::Order {
            order_id: "res-1".into(),
            symbol: "BTCUSDT".into(),
            side: pb::Side::Buy as i32,
            quantity: "0.01".into(),
            price: "50000".into(),
            leverage: "10".into(),
            reduce_only: false,
        }),
    );
    client.apply_event(opened).await.expect("opened");
    let a = client
        .get_account(pb::GetAccountRequest {
            account_id: "acc-alice".into(),
        })
        .await
        .expect("account")
        .into_inner();
    assert!(a.reservations.is_empty(), "{a:?}");
    assert_eq!(a.open_orders.len(), 1);
    assert_eq!(a.open_orders[0].side(), pb::Side::Buy);

    let e = client
        .get_account(pb::GetAccountRequest {
            account_id: "acc-nobody".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn health_is_serving_and_shutdown_is_graceful() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let (addr, task) = start_with(
        ServerOptions::default(),
        tokio::time::sleep(Duration::from_millis(500)),
    )
    .await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "risk.v1.RiskService"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner();
        assert_eq!(r.status(), ServingStatus::Serving, "{service:?}");
    }
    drop(health);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the server stops after the shutdown signal")
        .expect("serve returned Ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_malformed_requests_never_stops_the_server() {
    let options = ServerOptions {
        max_message_bytes: 64 * 1024,
        ..ServerOptions::default()
    };
    let (addr, _task) = start_with(options, std::future::pending()).await;
    let client = connect(addr).await;
    let garbage = [
        "",
        "x",
        "-",
        "1e",
        "NaN",
        "∞",
        "١٢",
        "0x1",
        "1_000",
        "9999999999999999999999999999999",
    ];
    let flood = async {
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let mut client = client.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..250_usize {
                    let g = garbage[(i + worker) % garbage.len()];
                    let request = pb::PreTradeCheckRequest {
                        quantity: g.into(),
                        price: garbage[(i * 7 + worker) % garbage.len()].into(),
                        side: i32::try_from(i % 5).unwrap(),
                        order_type: i32::try_from(i % 4).unwrap(),
                        ..order(&format!("flood-{worker}-{i}"))
                    };
                    let r = client
                        .pre_trade_check(request)
                        .await
                        .expect("answered")
                        .into_inner();
                    assert_ne!(r.decision(), pb::RiskDecision::Approved, "{r:?}");
                }
            }));
        }
        for t in tasks {
            t.await.expect("flood task");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), flood)
        .await
        .expect("flood in time");

    // An oversized request is refused by the transport, not by a crash.
    let mut c = client.clone();
    let huge = pb::PreTradeCheckRequest {
        order_id: "x".repeat(200 * 1024),
        ..order("huge")
    };
    let e = c.pre_trade_check(huge).await.expect_err("too large");
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");

    let mut c = client.clone();
    let r = check(&mut c, order("after-flood")).await;
    assert_eq!(r.decision(), pb::RiskDecision::Approved, "{r:?}");
}

#[tokio::test]
async fn reflection_lists_the_services_and_serves_the_risk_proto() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let (addr, _task) = start_with(ServerOptions::default(), std::future::pending()).await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reflection = ServerReflectionClient::new(channel);
    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "risk.v1.RiskService".into(),
            )),
        },
    ];
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .expect("reflection")
        .into_inner();
    let first = responses
        .message()
        .await
        .expect("stream")
        .expect("a response");
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("not a service list: {first:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in ["risk.v1.RiskService", "grpc.health.v1.Health"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let second = responses
        .message()
        .await
        .expect("stream")
        .expect("a response");
    let Some(MessageResponse::FileDescriptorResponse(files)) = second.message_response else {
        panic!("not a file descriptor: {second:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[tokio::test]
async fn the_check_stream_answers_each_request_in_order() {
    let mut client = start().await;
    let requests = vec![
        order("s-1"),
        pb::PreTradeCheckRequest {
            quantity: "oops".into(),
            ..order("s-2")
        },
        order("s-1"),
        pb::PreTradeCheckRequest {
            leverage: "50".into(),
            ..order("s-3")
        },
    ];
    let mut responses = client
        .pre_trade_check_stream(tokio_stream::iter(requests))
        .await
        .expect("stream")
        .into_inner();
    let mut decisions = Vec::new();
    while let Some(r) = tokio::time::timeout(Duration::from_secs(10), responses.message())
        .await
        .expect("in time")
        .expect("no stream error")
    {
        decisions.push((r.decision(), r.reject_reason(), r.trace_id));
    }
    assert_eq!(
        decisions,
        vec![
            (
                pb::RiskDecision::Approved,
                pb::RejectReason::Unspecified,
                "trace-s-1".to_owned()
            ),
            (
                pb::RiskDecision::Rejected,
                pb::RejectReason::InvalidRequest,
                "trace-s-2".to_owned()
            ),
            (
                pb::RiskDecision::Rejected,
                pb::RejectReason::DuplicateOrder,
                "trace-s-1".to_owned()
            ),
            (
                pb::RiskDecision::Flagged,
                pb::RejectReason::Unspecified,
                "trace-s-3".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn the_demo_mark_refresh_keeps_configured_marks_fresh() {
    use risk_adapters::grpc::server::refresh_marks;
    use risk_core::ids::{AccountId, OrderId, Symbol, TraceId, UserId};
    use risk_core::model::{Decision, OrderType, RejectReason, Side};
    use risk_core::pretrade::CheckRequest;

    let file = ConfigFile::load(Path::new(DEMO)).expect("demo config");
    let mut config = file.engine.clone();
    config.limits = risk_core::config::CheckLimits::new(risk_core::config::CheckLimitsSpec {
        max_mark_age_ms: 200,
        ..config.limits.spec().clone()
    })
    .expect("valid limits");
    let engine = Arc::new(file.into_engine(now(), "demo.toml").expect("demo engine"));
    engine.replace_config(config).expect("valid");
    let request = |id: &str| CheckRequest {
        user_id: UserId::new("alice"),
        account_id: AccountId::new("acc-alice"),
        order_id: OrderId::new(id),
        symbol: Symbol::new("BTCUSDT"),
        side: Side::Buy,
        order_type: OrderType::Limit,
        quantity: "0.01".parse().unwrap(),
        price: Some("50000".parse().unwrap()),
        leverage: "10".parse().unwrap(),
        reduce_only: false,
        post_only: false,
        trace_id: TraceId::new(""),
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stale = engine.check(&request("m-1"), now());
    assert_eq!(
        stale.reject_reason,
        Some(RejectReason::StaleData),
        "{stale:?}"
    );
    let refresh = tokio::spawn(refresh_marks(
        Arc::clone(&engine),
        vec![Symbol::new("BTCUSDT"), Symbol::new("ETHUSDT")],
        Duration::from_millis(50),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = engine.check(&request("m-2"), now());
    refresh.abort();
    assert_eq!(fresh.decision, Decision::Approved, "{fresh:?}");
}

/// Waits until `count` stays put for `quiet`; its value then, or `None` when it passed
/// `ceiling` or kept moving until `deadline`.
async fn settled(
    count: &AtomicU64,
    quiet: Duration,
    ceiling: u64,
    deadline: Duration,
) -> Option<u64> {
    let start = tokio::time::Instant::now();
    let mut last = count.load(Ordering::Relaxed);
    let mut since = tokio::time::Instant::now();
    while start.elapsed() < deadline && last <= ceiling {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = count.load(Ordering::Relaxed);
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        } else if since.elapsed() >= quiet {
            return Some(now);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_stream_whose_client_does_not_read_holds_the_client_back() {
    let mut client = start().await;
    // An endless request stream; `sent` counts what the client transport has taken.
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let requests = tokio_stream::iter(0_u64..).map(move |i| {
        counter.fetch_add(1, Ordering::Relaxed);
        order(&format!("bp-{i}"))
    });
    let mut responses = client
        .pre_trade_check_stream(requests)
        .await
        .expect("stream")
        .into_inner();
    // Nothing is read: the server must stop reading too, so the client stops sending
    // after what the HTTP/2 windows and buffers hold (a few MiB: some tens of thousands
    // of ~80-byte requests), instead of the server answering into a growing buffer (which
    // reads some 20,000 requests a second here for as long as the client sends).
    let stalled = settled(
        &sent,
        Duration::from_secs(2),
        200_000,
        Duration::from_secs(60),
    )
    .await
    .unwrap_or_else(|| {
        panic!(
            "the client was not held back: {} requests sent",
            sent.load(Ordering::Relaxed)
        )
    });
    // Not a deadlock: reading the answers lets the stream move on.
    for _ in 0..stalled + 1_000 {
        let r = tokio::time::timeout(Duration::from_secs(10), responses.message())
            .await
            .expect("answers flow again")
            .expect("no stream error")
            .expect("an answer");
        assert!(r.trace_id.starts_with("trace-bp-"), "{r:?}");
    }
    assert!(sent.load(Ordering::Relaxed) > stalled);
}

#[tokio::test]
async fn a_check_stream_over_its_message_limit_ends_with_resource_exhausted() {
    let options = ServerOptions {
        max_stream_messages: Some(3),
        ..ServerOptions::default()
    };
    let (addr, _task) = start_with(options, std::future::pending()).await;
    let mut client = connect(addr).await;
    let requests: Vec<_> = (1..=5).map(|i| order(&format!("lim-{i}"))).collect();
    let mut responses = client
        .pre_trade_check_stream(tokio_stream::iter(requests))
        .await
        .expect("stream")
        .into_inner();
    let mut answered = Vec::new();
    let status = loop {
        match responses.message().await {
            Ok(Some(r)) => answered.push(r.trace_id),
            Ok(None) => panic!("the stream ended without an error after {answered:?}"),
            Err(status) => break status,
        }
    };
    assert_eq!(answered, ["trace-lim-1", "trace-lim-2", "trace-lim-3"]);
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("more than 3 requests")
            && status.message().contains("max_stream_messages = 3"),
        "{}",
        status.message()
    );
    // Exactly the limit is a complete, healthy stream; unary calls are not counted.
    let requests: Vec<_> = (6..=8).map(|i| order(&format!("lim-{i}"))).collect();
    let mut responses = client
        .pre_trade_check_stream(tokio_stream::iter(requests))
        .await
        .expect("stream")
        .into_inner();
    let mut n = 0;
    while let Some(r) = responses.message().await.expect("no error at the limit") {
        assert_eq!(r.decision(), pb::RiskDecision::Approved, "{r:?}");
        n += 1;
    }
    assert_eq!(n, 3);
    for i in 9..=12 {
        let r = check(&mut client, order(&format!("lim-{i}"))).await;
        assert_eq!(r.decision(), pb::RiskDecision::Approved, "{r:?}");
    }
}

#[tokio::test]
async fn an_event_stream_over_its_message_limit_ends_with_resource_exhausted() {
    let options = ServerOptions {
        max_stream_messages: Some(3),
        ..ServerOptions::default()
    };
    let (addr, _task) = start_with(options, std::future::pending()).await;
    let mut client = connect(addr).await;
    let events: Vec<_> = (10..15).map(|seq| deposit("acc-bob", seq, "1")).collect();
    let status = client
        .apply_events(tokio_stream::iter(events))
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("more than 3 events")
            && status.message().contains("max_stream_messages = 3")
            && status.message().contains("applied 3, duplicate 0"),
        "{}",
        status.message()
    );
    let bob = client
        .get_account(pb::GetAccountRequest {
            account_id: "acc-bob".into(),
        })
        .await
        .expect("account")
        .into_inner();
    assert_eq!((bob.last_seq, bob.wallet_balance.as_str()), (12, "2003"));
    // The rest, resent on a new stream (the duplicate is recognised by its seq).
    let rest: Vec<_> = (12..15).map(|seq| deposit("acc-bob", seq, "1")).collect();
    let summary = client
        .apply_events(tokio_stream::iter(rest))
        .await
        .expect("within the limit")
        .into_inner();
    assert_eq!((summary.applied, summary.duplicate), (2, 1), "{summary:?}");
}

#[tokio::test]
async fn requests_over_the_message_size_limit_are_refused_with_out_of_range() {
    let options = ServerOptions {
        max_message_bytes: 4_096,
        ..ServerOptions::default()
    };
    let (addr, _task) = start_with(options, std::future::pending()).await;
    let mut client = connect(addr).await;
    // A request of exactly `bytes` encoded bytes (padded through its trace id).
    let sized = |id: &str, bytes: usize| {
        let mut r = order(id);
        loop {
            let len = prost::Message::encoded_len(&r);
            match len.cmp(&bytes) {
                std::cmp::Ordering::Less => r.trace_id.push_str(&"x".repeat(bytes - len)),
                std::cmp::Ordering::Greater => {
                    r.trace_id.pop();
                }
                std::cmp::Ordering::Equal => return r,
            }
        }
    };
    // At the limit: answered. One byte over: refused by name and size.
    let r = check(&mut client, sized("at-limit", 4_096)).await;
    assert_eq!(r.decision(), pb::RiskDecision::Approved, "{}", r.message);
    let e = client
        .pre_trade_check(sized("over", 4_097))
        .await
        .expect_err("too large");
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    assert!(
        e.message().contains("4097") && e.message().contains("4096"),
        "{}",
        e.message()
    );
    // On a stream: the answers before it, then the stream ends with the same status.
    let requests = vec![
        order("s-1"),
        order("s-2"),
        sized("s-3", 10_000),
        order("s-4"),
    ];
    let mut responses = client
        .pre_trade_check_stream(tokio_stream::iter(requests))
        .await
        .expect("stream")
        .into_inner();
    let mut answered = 0;
    let status = loop {
        match responses.message().await {
            Ok(Some(_)) => answered += 1,
            Ok(None) => panic!("no error after {answered} answers"),
            Err(status) => break status,
        }
    };
    assert_eq!(
        (answered, status.code()),
        (2, Code::OutOfRange),
        "{status:?}"
    );
    // Events too; and the health service has the same limit.
    let huge_event = pb::AccountOrMarketEvent {
        event: Some(Event::Mark(pb::MarkPrice {
            symbol: "B".repeat(5_000),
            price: "1".into(),
            at_unix_ms: 0,
        })),
    };
    let e = client.apply_event(huge_event).await.expect_err("too large");
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let e = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "s".repeat(5_000),
        })
        .await
        .expect_err("too large");
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_per_connection_concurrency_limit_wait() {
    for limit in [1, 2] {
        let options = ServerOptions {
            concurrency_limit_per_connection: limit,
            ..ServerOptions::default()
        };
        let (addr, _task) = start_with(options, std::future::pending()).await;
        let client = connect(addr).await;
        // An ApplyEvents call holds its slot until its stream ends.
        let (events, rx) = tokio::sync::mpsc::channel(4);
        events.send(deposit("acc-bob", 10, "1")).await.unwrap();
        let mut feeder = client.clone();
        let feed = tokio::spawn(async move {
            feeder
                .apply_events(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut c = client.clone();
        let waited =
            tokio::time::timeout(Duration::from_millis(700), c.pre_trade_check(order("cc-1")))
                .await;
        if limit == 1 {
            assert!(waited.is_err(), "limit 1: the check did not wait");
        } else {
            let r = waited.expect("limit 2: answered").expect("answered");
            assert_eq!(r.into_inner().decision(), pb::RiskDecision::Approved);
        }
        drop(events);
        let summary = tokio::time::timeout(Duration::from_secs(10), feed)
            .await
            .expect("the feed ends")
            .unwrap()
            .expect("summary")
            .into_inner();
        assert_eq!(summary.applied, 1);
        let r = check(&mut c, order("cc-2")).await;
        assert_eq!(r.decision(), pb::RiskDecision::Approved, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_concurrent_stream_limit_wait_for_a_free_stream() {
    for streams in [1, 2] {
        let options = ServerOptions {
            max_concurrent_streams: streams,
            ..ServerOptions::default()
        };
        let (addr, _task) = start_with(options, std::future::pending()).await;
        let mut client = connect(addr).await;
        let (requests, rx) = tokio::sync::mpsc::channel(4);
        requests.send(order("ms-1")).await.unwrap();
        let mut responses = client
            .pre_trade_check_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("stream")
            .into_inner();
        let first = responses.message().await.expect("answer").expect("answer");
        assert_eq!(first.decision(), pb::RiskDecision::Approved, "{first:?}");
        // The check stream is open (its handler has returned, so the per-connection
        // concurrency limit is free): a second call needs a second HTTP/2 stream.
        let mut c = client.clone();
        let second =
            tokio::time::timeout(Duration::from_millis(700), c.pre_trade_check(order("ms-2")))
                .await;
        if streams == 1 {
            assert!(second.is_err(), "one stream: the second call did not wait");
        } else {
            let r = second.expect("two streams: answered").expect("answered");
            assert_eq!(r.into_inner().decision(), pb::RiskDecision::Approved);
        }
        drop(requests);
        assert!(responses.message().await.expect("clean end").is_none());
        let r = tokio::time::timeout(Duration::from_secs(10), c.pre_trade_check(order("ms-3")))
            .await
            .expect("a free stream")
            .expect("answered")
            .into_inner();
        assert_eq!(r.decision(), pb::RiskDecision::Approved, "{r:?}");
    }
}

/// With `connection_threads`, connections are served by threads of their own over the
/// one engine: every connection is answered (three connections over two threads, so one
/// thread serves two), an order id seen on one connection is a duplicate on another, and
/// at shutdown an open stream is still answered, the port is released and `serve`
/// returns once the clients are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_threads_share_the_engine_and_drain_at_shutdown() {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServerOptions {
        connection_threads: 2,
        ..ServerOptions::default()
    };
    let (addr, task) = start_with(options, async move {
        let _ = stopped.await;
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(connect(addr).await);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let id = format!("ct-{i}");
        let r = check(client, order(&id)).await;
        assert_eq!(r.decision(), pb::RiskDecision::Approved, "{id}: {r:?}");
        assert_eq!(r.trace_id, format!("trace-{id}"));
    }
    // ct-0 was approved on the first connection (thread 0); the second one is served
    // by thread 1.
    let r = check(&mut clients[1], order("ct-0")).await;
    assert_rejected(&r, pb::RejectReason::DuplicateOrder, "");

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut responses = clients[2]
        .pre_trade_check_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();
    tx.send(order("ct-s-1")).await.unwrap();
    let first = responses.message().await.expect("answer").expect("one");
    assert_eq!(first.decision(), pb::RiskDecision::Approved);

    stop.send(()).unwrap();
    // Accepting stops at once; the stream already open is still served.
    tokio::time::sleep(Duration::from_millis(200)).await;
    tx.send(order("ct-s-2")).await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(10), responses.message())
        .await
        .expect("answered in time")
        .expect("no stream error")
        .expect("one");
    assert_eq!(second.decision(), pb::RiskDecision::Approved);
    assert_eq!(second.trace_id, "trace-ct-s-2");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port is released at shutdown"
    );
    drop((tx, responses, clients));
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the server stops once its connections are drained")
        .expect("serve returned Ok");
}
