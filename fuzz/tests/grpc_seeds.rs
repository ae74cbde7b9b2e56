//! The `grpc_request` seeds in `corpus/grpc_request/` are protobuf frames; this test says
//! what each one holds and what the demo engine answers to it, and checks the committed
//! files against that. To rewrite them after changing a seed here:
//!
//! ```sh
//! WRITE_GRPC_SEEDS=1 cargo test --manifest-path fuzz/Cargo.toml --test grpc_seeds
//! ```

use std::path::Path;

use prost::Message as _;
use risk_adapters::grpc::proto::v1 as pb;
use riskgate_fuzz::{grpc_answers, grpc_frames, FrameKind};

use pb::account_event::Change;
use pb::account_or_market_event::Event;

/// alice buys 0.01 BTCUSDT at 50,000 with 10x: approved on the demo config.
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
        trace_id: format!("t-{order_id}"),
    }
}

fn check(request: &pb::PreTradeCheckRequest) -> (FrameKind, Vec<u8>) {
    (FrameKind::Check, request.encode_to_vec())
}

fn event(event: Event) -> (FrameKind, Vec<u8>) {
    let message = pb::AccountOrMarketEvent { event: Some(event) };
    (FrameKind::Event, message.encode_to_vec())
}

type Expected = Vec<(pb::RiskDecision, pb::RejectReason)>;

/// A seed: its file name, its frames, and the answers to its check frames.
type Seed = (&'static str, Vec<(FrameKind, Vec<u8>)>, Expected);

fn seeds() -> Vec<Seed> {
    use pb::RejectReason as R;
    use pb::RiskDecision as D;
    let bob = pb::PreTradeCheckRequest {
        user_id: "bob".into(),
        account_id: "acc-bob".into(),
        symbol: "ETHUSDT".into(),
        quantity: "1".into(),
        price: "3000".into(),
        leverage: "2".into(),
        ..order("b-1")
    };
    vec![
        (
            "approved_limit_order",
            vec![check(&order("o-1"))],
            vec![(D::Approved, R::Unspecified)],
        ),
        (
            "malformed_quantity",
            vec![check(&pb::PreTradeCheckRequest {
                quantity: "1,5".into(),
                ..order("o-2")
            })],
            vec![(D::Rejected, R::InvalidRequest)],
        ),
        (
            "flagged_high_leverage",
            vec![check(&pb::PreTradeCheckRequest {
                leverage: "50".into(),
                ..order("o-3")
            })],
            vec![(D::Flagged, R::Unspecified)],
        ),
        (
            "reserve_then_duplicate_id",
            vec![
                (FrameKind::CheckAndReserve, order("o-4").encode_to_vec()),
                check(&order("o-4")),
            ],
            vec![
                (D::Approved, R::Unspecified),
                (D::Rejected, R::DuplicateOrder),
            ],
        ),
        (
            "risky_account_rule",
            vec![check(&pb::PreTradeCheckRequest {
                user_id: "carol".into(),
                account_id: "acc-carol".into(),
                ..order("o-5")
            })],
            vec![(D::Rejected, R::RiskRuleViolation)],
        ),
        (
            "listing_mark_then_order",
            vec![
                event(Event::Instrument(pb::Instrument {
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
                event(Event::Mark(pb::MarkPrice {
                    symbol: "XRPUSDT".into(),
                    price: "0.5".into(),
                    at_unix_ms: 0,
                })),
                check(&pb::PreTradeCheckRequest {
                    symbol: "XRPUSDT".into(),
                    quantity: "100".into(),
                    price: "0.5".into(),
                    leverage: "5".into(),
                    ..order("o-6")
                }),
            ],
            vec![(D::Approved, R::Unspecified)],
        ),
        (
            "deposit_halt_then_order",
            vec![
                check(&bob),
                event(Event::Account(pb::AccountEvent {
                    account_id: "acc-bob".into(),
                    seq: 10,
                    change: Some(Change::BalanceChange(pb::BalanceChange {
                        delta: "1e3".into(),
                    })),
                })),
                event(Event::Account(pb::AccountEvent {
                    account_id: "acc-bob".into(),
                    seq: 11,
                    change: Some(Change::TradingState(pb::TradingState::Halted as i32)),
                })),
                check(&pb::PreTradeCheckRequest {
                    order_id: "b-2".into(),
                    ..bob.clone()
                }),
            ],
            vec![
                (D::Approved, R::Unspecified),
                (D::Rejected, R::TradingHalted),
            ],
        ),
        (
            "market_order_with_a_price",
            vec![check(&pb::PreTradeCheckRequest {
                order_type: pb::OrderType::Market as i32,
                ..order("o-7")
            })],
            vec![(D::Rejected, R::InvalidRequest)],
        ),
    ]
}

#[test]
fn grpc_request_seeds_are_the_documented_frames() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/grpc_request");
    let write = std::env::var_os("WRITE_GRPC_SEEDS").is_some();
    for (name, frames, expected) in seeds() {
        let bytes = grpc_frames(&frames);
        let path = dir.join(name);
        if write {
            std::fs::write(&path, &bytes).expect("seed written");
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert_eq!(committed, bytes, "{name}: the committed seed differs");
        let decisions: Expected = grpc_answers(&bytes)
            .into_iter()
            .map(|a| {
                let a = a.expect("every seed frame decodes as a request");
                (a.decision(), a.reject_reason())
            })
            .collect();
        assert_eq!(decisions, expected, "{name}");
    }
}
