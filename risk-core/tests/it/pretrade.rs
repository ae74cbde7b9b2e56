//! The pure check: every reject reason reached, in phase order, with its explanation.

use chrono::TimeDelta;
use risk_core::account::{OpenOrder, Reservation};
use risk_core::config::RateLimit;
use risk_core::ids::{OrderId, Symbol, UserId};
use risk_core::market::{Instrument, InstrumentSpec, Mark};
use risk_core::model::{
    Decision, InstrumentStatus, KycLevel, OrderType, RejectReason, RuleAction, Side, TradingState,
};
use risk_core::num::{Leverage, Money, Notional, Price, Quantity};
use risk_core::pretrade::{check, CheckMetric, CheckRequest, CheckResponse, RiskEvent};
use risk_core::rules::Operator;
use risk_core::Decimal;

use crate::fixture::*;

fn run(req: &CheckRequest) -> CheckResponse {
    check(&config(), Some(&account()), &market(), req, now())
}

fn assert_reject(resp: &CheckResponse, reason: RejectReason, needle: &str) {
    assert_eq!(resp.decision, Decision::Rejected, "{resp:?}");
    assert_eq!(resp.reject_reason, Some(reason), "{}", resp.message);
    assert!(
        resp.message.to_string().contains(needle),
        "message {:?} lacks {needle:?}",
        resp.message
    );
}

#[test]
fn approves_a_plain_limit_order_with_exact_figures() {
    let resp = run(&request());
    assert_eq!(resp.decision, Decision::Approved, "{}", resp.message);
    assert_eq!(resp.reject_reason, None);
    assert_eq!(resp.required_initial_margin(), Some(d("500")));
    let m = resp.metrics.as_ref().expect("priced");
    assert_eq!(m.order_notional, d("5000"));
    assert_eq!(m.available_margin, d("10000"));
    assert_eq!(m.projected_exposure, d("5000"));
    // 5,000 notional in the first BTC bracket: 5,000 x 0.004 = 20; 20 / 10,000.
    assert_eq!(m.projected_maintenance_margin, d("20"));
    assert_eq!(resp.projected_margin_ratio(), Some(d("0.002")));
    assert!(!resp.liquidation_risk && !resp.margin_call);
    assert_eq!(resp.trace_id.as_str(), "T1");
    // One audit and one exposure snapshot, nothing else.
    let events: Vec<_> = resp.events().collect();
    assert!(matches!(
        events[..],
        [
            RiskEvent::DecisionAudit(_),
            RiskEvent::ExposureSnapshot { .. }
        ]
    ));
}

#[test]
fn market_orders_are_valued_at_the_mark_widened_by_slippage() {
    let req = CheckRequest {
        order_type: OrderType::Market,
        price: None,
        ..request()
    };
    let m = run(&req).metrics.expect("priced");
    assert_eq!(m.order_price, d("50500"));
    let sell = CheckRequest {
        side: Side::Sell,
        ..req
    };
    assert_eq!(run(&sell).metrics.expect("priced").order_price, d("49500"));
}

#[test]
fn invalid_requests_name_the_field() {
    assert_reject(
        &run(&CheckRequest {
            quantity: d("0"),
            ..request()
        }),
        RejectReason::InvalidRequest,
        "quantity",
    );
    assert_reject(
        &run(&CheckRequest {
            quantity: d("-1"),
            ..request()
        }),
        RejectReason::InvalidRequest,
        "quantity",
    );
    assert_reject(
        &run(&CheckRequest {
            price: None,
            ..request()
        }),
        RejectReason::InvalidRequest,
        "price is required",
    );
    assert_reject(
        &run(&CheckRequest {
            price: Some(d("-5")),
            ..request()
        }),
        RejectReason::InvalidRequest,
        "price",
    );
    assert_reject(
        &run(&CheckRequest {
            leverage: d("0.5"),
            ..request()
        }),
        RejectReason::InvalidRequest,
        "leverage",
    );
    assert_reject(
        &run(&CheckRequest {
            order_id: OrderId::new(""),
            ..request()
        }),
        RejectReason::InvalidRequest,
        "order_id",
    );
    let market_with_price = CheckRequest {
        order_type: OrderType::Market,
        ..request()
    };
    assert_reject(
        &run(&market_with_price),
        RejectReason::InvalidRequest,
        "MARKET",
    );
    let post_only_market = CheckRequest {
        order_type: OrderType::Market,
        price: None,
        post_only: true,
        ..request()
    };
    assert_reject(
        &run(&post_only_market),
        RejectReason::InvalidRequest,
        "post_only",
    );
    assert_reject(
        &run(&CheckRequest {
            quantity: d("0.0005"),
            ..request()
        }),
        RejectReason::InvalidRequest,
        "minimum",
    );
    assert_reject(
        &run(&CheckRequest {
            quantity: d("0.1005"),
            ..request()
        }),
        RejectReason::InvalidRequest,
        "lot size",
    );
    assert_reject(
        &run(&CheckRequest {
            price: Some(d("50000.05")),
            ..request()
        }),
        RejectReason::InvalidRequest,
        "tick size",
    );
    let other_user = CheckRequest {
        user_id: UserId::new("U2"),
        ..request()
    };
    assert_reject(
        &run(&other_user),
        RejectReason::InvalidRequest,
        "does not belong",
    );
}

#[test]
fn arithmetic_overflow_is_invalid_request_not_a_panic() {
    let mut m = market();
    let btc = Symbol::new("BTCUSDT");
    if let Some(i) = m.instruments.get_mut(&btc) {
        *i = Instrument::new(InstrumentSpec {
            max_quantity: Quantity::new(Decimal::MAX).expect("max"),
            price_band: None,
            ..i.spec()
        })
        .expect("valid");
    }
    let req = CheckRequest {
        quantity: Decimal::MAX,
        price: Some(d("50000")),
        ..request()
    };
    let resp = check(&config(), Some(&account()), &m, &req, now());
    assert_reject(&resp, RejectReason::InvalidRequest, "overflow");
}

#[test]
fn unknown_account_and_symbol_fail_closed() {
    let resp = check(&config(), None, &market(), &request(), now());
    assert_reject(&resp, RejectReason::UnknownAccount, "A1");
    assert!(resp.metrics.is_none());
    assert_reject(
        &run(&CheckRequest {
            symbol: Symbol::new("DOGEUSDT"),
            ..request()
        }),
        RejectReason::UnknownSymbol,
        "DOGEUSDT",
    );
}

#[test]
fn kill_switch_levels_and_the_strictest_wins() {
    let mut m = market();
    m.global_state.0 = TradingState::Halted;
    assert_reject(
        &check(&config(), Some(&account()), &m, &request(), now()),
        RejectReason::TradingHalted,
        "global",
    );

    let mut a = account();
    a.profile.trading_state = TradingState::Halted;
    assert_reject(
        &check(&config(), Some(&a), &market(), &request(), now()),
        RejectReason::TradingHalted,
        "account",
    );

    let mut m = market();
    if let Some(i) = m.instruments.get_mut(&Symbol::new("BTCUSDT")) {
        *i = Instrument::new(InstrumentSpec {
            status: InstrumentStatus::Halted,
            ..i.spec()
        })
        .expect("valid");
    }
    assert_reject(
        &check(&config(), Some(&account()), &m, &request(), now()),
        RejectReason::InstrumentNotTrading,
        "symbol",
    );

    // Account REDUCING and symbol HALTED: the halt is stricter and decides.
    let mut a = account();
    a.profile.trading_state = TradingState::Reducing;
    assert_reject(
        &check(&config(), Some(&a), &m, &request(), now()),
        RejectReason::InstrumentNotTrading,
        "HALTED",
    );
}

#[test]
fn reducing_state_passes_only_reducing_orders_and_halted_exits_are_configurable() {
    let mut a = account();
    a.positions.push(position("BTCUSDT", "0.5", "50000", "10"));
    a.profile.trading_state = TradingState::Reducing;
    let sell = CheckRequest {
        side: Side::Sell,
        ..request()
    };
    assert_eq!(
        check(&config(), Some(&a), &market(), &sell, now()).decision,
        Decision::Approved
    );
    assert_reject(
        &check(&config(), Some(&a), &market(), &request(), now()),
        RejectReason::TradingHalted,
        "REDUCING",
    );

    a.profile.trading_state = TradingState::Halted;
    assert_reject(
        &check(&config(), Some(&a), &market(), &sell, now()),
        RejectReason::TradingHalted,
        "HALTED",
    );
    let mut c = config();
    c.limits = limits(|l| l.halted_allows_exits = true);
    assert_eq!(
        check(&c, Some(&a), &market(), &sell, now()).decision,
        Decision::Approved
    );
    // A sell larger than the position flips it: not an exit.
    let flip = CheckRequest {
        side: Side::Sell,
        quantity: d("0.6"),
        ..request()
    };
    assert_reject(
        &check(&c, Some(&a), &market(), &flip, now()),
        RejectReason::TradingHalted,
        "HALTED",
    );
}

#[test]
fn frozen_and_kyc() {
    let mut a = account();
    a.profile.frozen = true;
    assert_reject(
        &check(&config(), Some(&a), &market(), &request(), now()),
        RejectReason::UserFrozen,
        "frozen",
    );
    let mut a = account();
    a.profile.kyc_level = KycLevel::L0;
    assert_reject(
        &check(&config(), Some(&a), &market(), &request(), now()),
        RejectReason::KycInsufficient,
        "requires KYC L1",
    );
}

#[test]
fn duplicate_order_ids_within_the_horizon() {
    let mut a = account();
    a.recent_orders
        .push(OrderId::new("O1"), now() - TimeDelta::minutes(5));
    assert_reject(
        &check(&config(), Some(&a), &market(), &request(), now()),
        RejectReason::DuplicateOrder,
        "O1",
    );
    // Beyond the 10-minute horizon the id may be reused.
    let mut a = account();
    a.recent_orders
        .push(OrderId::new("O1"), now() - TimeDelta::minutes(11));
    assert_eq!(
        check(&config(), Some(&a), &market(), &request(), now()).decision,
        Decision::Approved
    );
    // An id that rests on the book or holds a reservation is a duplicate too.
    let mut a = account();
    a.reservations.push(Reservation {
        order_id: OrderId::new("O1"),
        amount: Money::lit("1"),
        notional: Notional::lit("1"),
    });
    assert_reject(
        &check(&config(), Some(&a), &market(), &request(), now()),
        RejectReason::DuplicateOrder,
        "O1",
    );
}

#[test]
fn order_rate_limit_over_the_window() {
    let mut c = config();
    c.limits = limits(|l| {
        l.rate_limit = Some(RateLimit {
            max_orders: 3,
            window_ms: 1_000,
        })
    });
    let mut a = account();
    for i in 0..3 {
        a.recent_orders.push(
            OrderId::new(&format!("P{i}")),
            now() - TimeDelta::milliseconds(900 - i * 100),
        );
    }
    assert_reject(
        &check(&c, Some(&a), &market(), &request(), now()),
        RejectReason::RateLimited,
        "3 orders",
    );
    // 200 ms later the oldest has left the window.
    let later = now() + TimeDelta::milliseconds(200);
    assert_eq!(
        check(&c, Some(&a), &market(), &request(), later).decision,
        Decision::Approved
    );
}

#[test]
fn stale_or_missing_marks() {
    let mut m = market();
    m.marks.insert(
        Symbol::new("BTCUSDT"),
        Mark {
            price: Price::lit("50000"),
            at: now() - TimeDelta::seconds(6),
        },
    );
    let resp = check(&config(), Some(&account()), &m, &request(), now());
    assert_reject(&resp, RejectReason::StaleData, "6000 ms old");
    assert!(resp.metrics.is_none());
    // A stale mark on another held position is stale data too.
    let mut m = market();
    m.marks.remove(&Symbol::new("ETHUSDT"));
    let mut a = account();
    a.positions.push(position("ETHUSDT", "1", "3000", "10"));
    assert_reject(
        &check(&config(), Some(&a), &m, &request(), now()),
        RejectReason::StaleData,
        "no mark price for ETHUSDT",
    );
}

/// A mark exactly as old as the limit is fresh; one nanosecond older is stale, on the
/// order's symbol and on a held position's.
#[test]
fn a_mark_is_stale_only_past_the_age_limit() {
    let max_age = config().limits.max_mark_age();
    let mut a = account();
    a.positions.push(position("ETHUSDT", "1", "3000", "10"));
    for (symbol, price) in [("BTCUSDT", "50000"), ("ETHUSDT", "3000")] {
        for (older, stale) in [
            (TimeDelta::zero(), false),
            (TimeDelta::nanoseconds(1), true),
        ] {
            let mut m = market();
            m.marks.insert(
                Symbol::new(symbol),
                Mark {
                    price: Price::lit(price),
                    at: now() - max_age - older,
                },
            );
            let resp = check(&config(), Some(&a), &m, &request(), now());
            if stale {
                let ms = max_age.num_milliseconds();
                assert_reject(
                    &resp,
                    RejectReason::StaleData,
                    &format!("is {ms} ms old (max {ms} ms)"),
                );
            } else {
                assert_ne!(
                    resp.reject_reason,
                    Some(RejectReason::StaleData),
                    "{}",
                    resp.message
                );
            }
        }
    }
}

#[test]
fn reduce_only_must_reduce_and_then_bypasses_margin_and_exposure() {
    let ro = CheckRequest {
        side: Side::Sell,
        reduce_only: true,
        ..request()
    };
    assert_reject(&run(&ro), RejectReason::ReduceOnlyViolation, "would open");
    let mut a = account();
    a.positions.push(position("BTCUSDT", "0.05", "50000", "10"));
    assert_reject(
        &check(&config(), Some(&a), &market(), &ro, now()),
        RejectReason::ReduceOnlyViolation,
        "flip",
    );

    // A truly reducing order passes although the account is over every limit.
    let mut a = account();
    a.positions.push(position("BTCUSDT", "2", "50000", "50"));
    a.wallet_balance = Money::lit("100");
    a.profile.exposure_limit = Notional::lit("10");
    let resp = check(&config(), Some(&a), &market(), &ro, now());
    assert_eq!(resp.decision, Decision::Approved, "{}", resp.message);
    assert_eq!(resp.required_initial_margin(), Some(d("0")));
    // The same order without the flag is just as reducing and passes too.
    let plain = CheckRequest {
        reduce_only: false,
        ..ro
    };
    assert_eq!(
        check(&config(), Some(&a), &market(), &plain, now()).decision,
        Decision::Approved
    );
}

#[test]
fn price_band_and_max_order_size() {
    assert_reject(
        &run(&CheckRequest {
            price: Some(d("52600")),
            ..request()
        }),
        RejectReason::PriceOutOfBand,
        "band is 0.05",
    );
    assert_eq!(
        run(&CheckRequest {
            price: Some(d("52500")),
            ..request()
        })
        .decision,
        Decision::Approved
    );
    assert_reject(
        &run(&CheckRequest {
            quantity: d("100.001"),
            ..request()
        }),
        RejectReason::MaxOrderSizeExceeded,
        "maximum 100",
    );
}

#[test]
fn leverage_cap_is_the_minimum_of_profile_instrument_and_tier() {
    assert_reject(
        &run(&CheckRequest {
            leverage: d("51"),
            ..request()
        }),
        RejectReason::MaxLeverageExceeded,
        "cap 50",
    );
    // 30 BTC = 1,500,000 notional lands in the 20x bracket.
    let mut a = account();
    a.wallet_balance = Money::lit("1000000");
    a.profile.exposure_limit = Notional::lit("100000000");
    let big = CheckRequest {
        quantity: d("30"),
        leverage: d("25"),
        ..request()
    };
    assert_reject(
        &check(&config(), Some(&a), &market(), &big, now()),
        RejectReason::MaxLeverageExceeded,
        "cap 20",
    );
    let ok = CheckRequest {
        leverage: d("20"),
        ..big
    };
    assert_eq!(
        check(&config(), Some(&a), &market(), &ok, now()).decision,
        Decision::Approved
    );
}

#[test]
fn exposure_counts_positions_open_orders_and_reservations() {
    let mut a = account();
    a.profile.exposure_limit = Notional::lit("20000");
    a.positions.push(position("ETHUSDT", "-3", "3000", "10")); // 9,000
    a.open_orders.push(OpenOrder {
        order_id: OrderId::new("R1"),
        symbol: Symbol::new("ETHUSDT"),
        side: Side::Buy,
        quantity: Quantity::lit("1"),
        price: Price::lit("2900"),
        leverage: Leverage::lit("10"),
        reduce_only: false,
    }); // 2,900
    a.reservations.push(Reservation {
        order_id: OrderId::new("R2"),
        amount: Money::lit("310"),
        notional: Notional::lit("3100"),
    });
    // 9,000 + 2,900 + 3,100 + 5,000 = 20,000: at the limit passes.
    let resp = check(&config(), Some(&a), &market(), &request(), now());
    assert_eq!(resp.decision, Decision::Approved, "{}", resp.message);
    assert_eq!(
        resp.metrics.as_ref().map(|m| m.projected_exposure),
        Some(d("20000"))
    );
    assert_eq!(
        resp.metrics.as_ref().and_then(|m| m.exposure_utilization),
        Some(d("1"))
    );
    let more = CheckRequest {
        quantity: d("0.101"),
        ..request()
    };
    assert_reject(
        &check(&config(), Some(&a), &market(), &more, now()),
        RejectReason::ExposureLimitExceeded,
        "limit 20000",
    );
}

#[test]
fn initial_margin_against_available_margin() {
    let mut a = account();
    a.wallet_balance = Money::lit("1500");
    a.positions.push(position("ETHUSDT", "2", "3100", "10")); // upnl -200, IM 600
                                                              // margin balance 1,300; available 1,300 - 600 = 700; order needs 500.
    let resp = check(&config(), Some(&a), &market(), &request(), now());
    assert_eq!(resp.decision, Decision::Approved, "{}", resp.message);
    assert_eq!(
        resp.metrics.as_ref().map(|m| m.available_margin),
        Some(d("700"))
    );
    let bigger = CheckRequest {
        quantity: d("0.141"),
        ..request()
    }; // needs 705
    assert_reject(
        &check(&config(), Some(&a), &market(), &bigger, now()),
        RejectReason::InsufficientMargin,
        "705",
    );
}

#[test]
fn liquidation_risk_when_the_fill_itself_sinks_the_margin_balance() {
    // No price band on this venue: a buy at twice the mark loses 50,000 on the fill.
    let mut m = market();
    if let Some(i) = m.instruments.get_mut(&Symbol::new("BTCUSDT")) {
        *i = Instrument::new(InstrumentSpec {
            price_band: None,
            ..i.spec()
        })
        .expect("valid");
    }
    let req = CheckRequest {
        quantity: d("1"),
        price: Some(d("100000")),
        leverage: d("50"),
        ..request()
    };
    let resp = check(&config(), Some(&account()), &m, &req, now());
    assert_reject(&resp, RejectReason::LiquidationRisk, "not positive");
    assert!(resp.liquidation_risk && resp.margin_call);
    assert_eq!(resp.projected_margin_ratio(), None);
    let kinds: Vec<_> = resp.events().map(|e| std::mem::discriminant(&e)).collect();
    assert_eq!(
        kinds.len(),
        4,
        "audit, exposure, margin call, liquidation signal"
    );
}

#[test]
fn margin_call_and_liquidation_thresholds_from_config() {
    // Ratio 0.002 on the plain order; thresholds lowered around it.
    let mut c = config();
    c.limits = limits(|l| l.margin_call_ratio = risk_core::num::Ratio::lit("0.001"));
    let resp = check(&c, Some(&account()), &market(), &request(), now());
    assert_eq!(resp.decision, Decision::Approved);
    assert!(resp.margin_call && !resp.liquidation_risk);
    assert!(resp
        .events()
        .any(|e| matches!(e, RiskEvent::MarginCall { .. })));
    c.limits = limits(|l| {
        l.margin_call_ratio = risk_core::num::Ratio::lit("0.001");
        l.liquidation_ratio = risk_core::num::Ratio::lit("0.002");
    });
    assert_reject(
        &check(&c, Some(&account()), &market(), &request(), now()),
        RejectReason::LiquidationRisk,
        "0.002",
    );
}

#[test]
fn reject_rules_reject_warn_rules_flag_and_hits_survive_earlier_rejects() {
    let c = with_rules(vec![
        rule(
            "notional-cap",
            CheckMetric::OrderNotional,
            Operator::Gt,
            "4000",
            RuleAction::Reject,
        ),
        rule(
            "lev-watch",
            CheckMetric::Leverage,
            Operator::Ge,
            "10",
            RuleAction::Warn,
        ),
    ]);
    let resp = check(&c, Some(&account()), &market(), &request(), now());
    assert_reject(&resp, RejectReason::RiskRuleViolation, "notional-cap");
    let ids: Vec<_> = resp.rule_hits.iter().map(|h| h.rule_id.as_str()).collect();
    assert_eq!(ids, ["lev-watch", "notional-cap"]);

    let warn_only = with_rules(vec![rule(
        "lev-watch",
        CheckMetric::Leverage,
        Operator::Ge,
        "10",
        RuleAction::Warn,
    )]);
    let resp = check(&warn_only, Some(&account()), &market(), &request(), now());
    assert_eq!(resp.decision, Decision::Flagged);
    assert_eq!(resp.reject_reason, None);
    assert!(resp
        .events()
        .any(|e| matches!(e, RiskEvent::RuleViolation { .. })));

    // A frozen account is rejected for that, but the rule hits are still reported.
    let mut a = account();
    a.profile.frozen = true;
    let resp = check(&c, Some(&a), &market(), &request(), now());
    assert_eq!(resp.reject_reason, Some(RejectReason::UserFrozen));
    assert_eq!(resp.rule_hits.len(), 2);
}

#[test]
fn every_reject_reason_is_reached_by_a_test_above() {
    // Guard against a new reason slipping in untested: this list must match the enum.
    let covered = [
        RejectReason::InvalidRequest,
        RejectReason::UnknownAccount,
        RejectReason::UnknownSymbol,
        RejectReason::InstrumentNotTrading,
        RejectReason::TradingHalted,
        RejectReason::UserFrozen,
        RejectReason::KycInsufficient,
        RejectReason::StaleData,
        RejectReason::DuplicateOrder,
        RejectReason::RateLimited,
        RejectReason::ReduceOnlyViolation,
        RejectReason::PriceOutOfBand,
        RejectReason::MaxOrderSizeExceeded,
        RejectReason::MaxLeverageExceeded,
        RejectReason::ExposureLimitExceeded,
        RejectReason::InsufficientMargin,
        RejectReason::LiquidationRisk,
        RejectReason::RiskRuleViolation,
    ];
    assert_eq!(covered, RejectReason::ALL);
}

#[test]
fn an_unknown_position_symbol_fails_closed() {
    let mut a = account();
    a.positions.push(position("XRPUSDT", "10", "1", "5"));
    let mut m = market();
    m.marks.insert(
        Symbol::new("XRPUSDT"),
        Mark {
            price: Price::lit("1"),
            at: now(),
        },
    );
    assert_reject(
        &check(&config(), Some(&a), &m, &request(), now()),
        RejectReason::UnknownSymbol,
        "XRPUSDT",
    );
}
