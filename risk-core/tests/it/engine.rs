//! The engine driven through realistic event sequences on a simulated clock.

use chrono::TimeDelta;
use risk_core::account::OpenOrder;
use risk_core::config::{CheckLimits, CheckLimitsSpec};
use risk_core::engine::{
    AccountEvent, Applied, EngineEvent, EventError, MarketEvent, RiskEngine, Seq,
};
use risk_core::ids::{AccountId, OrderId, Symbol};
use risk_core::margin::TierLadder;
use risk_core::market::MarketView;
use risk_core::model::{Decision, RejectReason, Side, TradingState};
use risk_core::num::{Leverage, Money, Price, Quantity, Ratio};
use risk_core::pretrade::CheckRequest;

use crate::fixture::*;

fn acct(engine: &RiskEngine, seq: u64, event: AccountEvent) -> Result<Applied, EventError> {
    engine.apply(&EngineEvent::Account {
        account_id: AccountId::new("A1"),
        seq: Seq::lit(seq),
        event,
    })
}

fn mark(
    engine: &RiskEngine,
    symbol: &str,
    price: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Applied {
    engine
        .apply(&EngineEvent::Market(MarketEvent::Mark {
            symbol: Symbol::new(symbol),
            price: Price::lit(price),
            at,
        }))
        .expect("mark applies")
}

fn order(id: &str) -> CheckRequest {
    CheckRequest {
        order_id: OrderId::new(id),
        ..request()
    }
}

#[test]
fn open_fill_mark_moves_margin_call_then_liquidation_risk() {
    let engine = engine(config());
    let mut t = now();
    // Buy 1 BTC at 50,000 with 10x: needs 5,000 of the 10,000 wallet.
    let buy = CheckRequest {
        quantity: d("1"),
        ..order("B1")
    };
    let resp = engine.check_and_reserve(&buy, t);
    assert_eq!(resp.decision, Decision::Approved, "{}", resp.message);
    let (a, _) = engine.account(&AccountId::new("A1")).expect("account");
    assert_eq!(a.reservations.len(), 1);
    assert_eq!(a.reservations[0].amount, Money::lit("5000"));

    // The order rests, then fills; the reservation is released and a position appears.
    let resting = OpenOrder {
        order_id: OrderId::new("B1"),
        symbol: Symbol::new("BTCUSDT"),
        side: Side::Buy,
        quantity: Quantity::lit("1"),
        price: Price::lit("50000"),
        leverage: Leverage::lit("10"),
        reduce_only: false,
    };
    assert_eq!(
        acct(&engine, 3, AccountEvent::OrderOpened(resting)),
        Ok(Applied::Applied)
    );
    let fill = AccountEvent::OrderFilled {
        order_id: OrderId::new("B1"),
        symbol: Symbol::new("BTCUSDT"),
        side: Side::Buy,
        quantity: Quantity::lit("1"),
        price: Price::lit("50000"),
        leverage: Leverage::lit("10"),
    };
    assert_eq!(acct(&engine, 4, fill.clone()), Ok(Applied::Applied));
    // The same fill again (redelivered) is ignored.
    assert_eq!(
        acct(&engine, 4, fill),
        Ok(Applied::Duplicate { last_seq: 4 })
    );
    let (a, seq) = engine.account(&AccountId::new("A1")).expect("account");
    assert_eq!(seq, 4);
    assert!(a.open_orders.is_empty() && a.reservations.is_empty());
    assert_eq!(a.positions.len(), 1);
    assert_eq!(a.positions[0].size.get(), d("1"));

    // The mark falls to 41,000: margin balance 1,000 against a position initial margin of
    // 4,100, so nothing new can be opened.
    t += TimeDelta::seconds(10);
    mark(&engine, "BTCUSDT", "41000", t);
    let small = CheckRequest {
        quantity: d("0.001"),
        price: Some(d("41000")),
        leverage: d("50"),
        ..order("S1")
    };
    let resp = engine.check(&small, t);
    assert_eq!(
        resp.reject_reason,
        Some(RejectReason::InsufficientMargin),
        "{}",
        resp.message
    );
    let m = resp.metrics.expect("priced");
    assert_eq!(m.margin_balance, d("1000"));

    // Falls further to 40,160: margin balance 160 against maintenance 40,160 x 0.004 = 160.64.
    t += TimeDelta::seconds(1);
    mark(&engine, "BTCUSDT", "40160", t);
    let exit = CheckRequest {
        side: Side::Sell,
        quantity: d("0.001"),
        price: Some(d("40160")),
        reduce_only: true,
        ..order("X1")
    };
    let resp = engine.check(&exit, t);
    // The exit reduces, so it passes, but the account is flagged for liquidation.
    assert_eq!(resp.decision, Decision::Approved, "{}", resp.message);
    assert!(
        resp.liquidation_risk,
        "ratio {:?}",
        resp.projected_margin_ratio()
    );
    let add = CheckRequest {
        quantity: d("0.001"),
        price: Some(d("40160")),
        leverage: d("50"),
        ..order("Y1")
    };
    let resp = engine.check(&add, t);
    assert!(matches!(
        resp.reject_reason,
        Some(RejectReason::InsufficientMargin | RejectReason::LiquidationRisk)
    ));
}

#[test]
fn realized_pnl_flows_to_the_wallet_on_a_close() {
    let engine = engine(config());
    let fill = |seq, side, qty: &str, price: &str| {
        acct(
            &engine,
            seq,
            AccountEvent::OrderFilled {
                order_id: OrderId::new(&format!("F{seq}")),
                symbol: Symbol::new("ETHUSDT"),
                side,
                quantity: Quantity::lit(qty),
                price: Price::lit(price),
                leverage: Leverage::lit("5"),
            },
        )
    };
    assert_eq!(fill(3, Side::Buy, "2", "3000"), Ok(Applied::Applied));
    assert_eq!(fill(4, Side::Buy, "2", "3200"), Ok(Applied::Applied));
    let (a, _) = engine.account(&AccountId::new("A1")).expect("account");
    assert_eq!(a.positions[0].entry_price.get(), d("3100"));
    // Sell 5: closes 4 at +100 each (+400) and flips to short 1 at 3,200.
    assert_eq!(fill(5, Side::Sell, "5", "3200"), Ok(Applied::Applied));
    let (a, _) = engine.account(&AccountId::new("A1")).expect("account");
    assert_eq!(a.wallet_balance.get(), d("10400"));
    assert_eq!(a.positions[0].size.get(), d("-1"));
    assert_eq!(a.positions[0].entry_price.get(), d("3200"));
    assert_eq!(a.positions[0].leverage.get(), d("5"));
}

#[test]
fn events_are_idempotent_and_refused_events_change_nothing() {
    let engine = engine(config());
    // Unknown account: only an upsert creates one.
    let err = engine.apply(&EngineEvent::Account {
        account_id: AccountId::new("NOPE"),
        seq: Seq::lit(1),
        event: AccountEvent::BalanceChange {
            delta: Money::lit("1"),
        },
    });
    assert_eq!(err, Err(EventError::UnknownAccount(AccountId::new("NOPE"))));
    // An older balance change is a duplicate and does not double the deposit.
    assert_eq!(
        acct(
            &engine,
            2,
            AccountEvent::BalanceChange {
                delta: Money::lit("10000")
            }
        ),
        Ok(Applied::Duplicate { last_seq: 2 })
    );
    // A fill for an unknown symbol is refused and the sequence does not advance.
    let bad = AccountEvent::OrderFilled {
        order_id: OrderId::new("Z"),
        symbol: Symbol::new("NOPE"),
        side: Side::Buy,
        quantity: Quantity::lit("1"),
        price: Price::lit("1"),
        leverage: Leverage::lit("1"),
    };
    assert_eq!(
        acct(&engine, 3, bad),
        Err(EventError::UnknownSymbol(Symbol::new("NOPE")))
    );
    assert_eq!(
        acct(
            &engine,
            3,
            AccountEvent::BalanceChange {
                delta: Money::lit("-500")
            }
        ),
        Ok(Applied::Applied)
    );
    let (a, seq) = engine.account(&AccountId::new("A1")).expect("account");
    assert_eq!((a.wallet_balance.get(), seq), (d("9500"), 3));
    // Marks: an older or equal timestamp is stale.
    assert_eq!(
        mark(&engine, "BTCUSDT", "1", now() - TimeDelta::seconds(5)),
        Applied::Stale
    );
    assert_eq!(mark(&engine, "BTCUSDT", "50001", now()), Applied::Applied);
}

#[test]
fn duplicate_ids_and_rate_limits_are_remembered_across_checks() {
    let engine = engine(config());
    let t = now();
    assert_eq!(engine.check(&order("D1"), t).decision, Decision::Approved);
    assert_eq!(
        engine.check(&order("D1"), t).reject_reason,
        Some(RejectReason::DuplicateOrder)
    );
    // A rejected order is not remembered: the id may be retried once fixed.
    let bad = CheckRequest {
        leverage: d("60"),
        ..order("D2")
    };
    assert_eq!(
        engine.check(&bad, t).reject_reason,
        Some(RejectReason::MaxLeverageExceeded)
    );
    assert_eq!(engine.check(&order("D2"), t).decision, Decision::Approved);
    let mut limited = 0;
    for i in 0..60 {
        if engine.check(&order(&format!("R{i}")), t).reject_reason
            == Some(RejectReason::RateLimited)
        {
            limited += 1;
        }
    }
    // 50 per second: two approved already, so 48 more pass and 12 are limited.
    assert_eq!(limited, 12);
    assert_eq!(
        engine
            .check(&order("later"), t + TimeDelta::seconds(2))
            .decision,
        Decision::Approved
    );
}

#[test]
fn kill_switch_events_at_every_level() {
    let engine = engine(config());
    let t = now();
    engine
        .apply(&EngineEvent::Market(MarketEvent::GlobalTradingState(
            TradingState::Halted,
        )))
        .expect("global");
    assert_eq!(
        engine.check(&order("K1"), t).reject_reason,
        Some(RejectReason::TradingHalted)
    );
    engine
        .apply(&EngineEvent::Market(MarketEvent::GlobalTradingState(
            TradingState::Active,
        )))
        .expect("global");
    assert_eq!(
        acct(
            &engine,
            3,
            AccountEvent::TradingState(TradingState::Reducing)
        ),
        Ok(Applied::Applied)
    );
    assert_eq!(
        engine.check(&order("K2"), t).reject_reason,
        Some(RejectReason::TradingHalted)
    );
}

#[test]
fn an_invalid_config_is_refused_and_the_old_one_stays() {
    let engine = engine(config());
    let mut bad = config();
    bad.metrics.hft_threshold_seconds = 0;
    assert!(engine.replace_config(bad).is_err());
    let err = CheckLimits::new(CheckLimitsSpec {
        margin_call_ratio: Ratio::lit("2"),
        ..CheckLimitsSpec::default()
    })
    .expect_err("above the liquidation ratio");
    assert_eq!(
        err.to_string(),
        "margin_call_ratio: 2 is not valid: must be at most liquidation_ratio (1)"
    );
    assert_eq!(*engine.config(), config());
    let mut tighter = config();
    tighter.default_ladder = TierLadder::new(vec![tier("0", None, "0.02", "5")]).expect("ladder");
    tighter.ladders.clear();
    assert!(engine.replace_config(tighter).is_ok());
    // 10x is now above the 5x ladder cap.
    assert_eq!(
        engine.check(&order("C1"), now()).reject_reason,
        Some(RejectReason::MaxLeverageExceeded)
    );
}

#[test]
fn released_reservations_free_margin() {
    let engine = engine(config());
    let t = now();
    // Each 1 BTC order at 10x reserves 5,000 of the 10,000.
    let one = |id: &str| CheckRequest {
        quantity: d("1"),
        ..order(id)
    };
    assert_eq!(
        engine.check_and_reserve(&one("M1"), t).decision,
        Decision::Approved
    );
    assert_eq!(
        engine.check_and_reserve(&one("M2"), t).decision,
        Decision::Approved
    );
    assert_eq!(
        engine.check_and_reserve(&one("M3"), t).reject_reason,
        Some(RejectReason::InsufficientMargin)
    );
    assert_eq!(
        acct(
            &engine,
            3,
            AccountEvent::ReservationReleased {
                order_id: OrderId::new("M1")
            }
        ),
        Ok(Applied::Applied)
    );
    assert_eq!(
        engine.check_and_reserve(&one("M4"), t).decision,
        Decision::Approved
    );
    // Without reservation the same account would approve again and again.
    assert_eq!(
        engine.check(&one("M5"), t).reject_reason,
        Some(RejectReason::InsufficientMargin)
    );
}

/// A symbol's instrument and mark share one market entry: a mark may come first, is
/// held, and does not list the symbol; the instrument listed later finds it; both go
/// through an exported and restored state.
#[test]
fn a_mark_before_its_instrument_is_held_and_lists_nothing() {
    let engine = engine(config());
    let sol = Symbol::new("SOLUSDT");
    assert_eq!(mark(&engine, "SOLUSDT", "150", now()), Applied::Applied);
    assert_eq!(
        engine.market().mark(&sol).map(|m| m.price),
        Some(Price::lit("150"))
    );
    assert!(engine.market().instrument(&sol).is_none());
    let position = AccountEvent::PositionUpdate {
        symbol: sol.clone(),
        size: risk_core::num::SignedQuantity::lit("1"),
        entry_price: Price::lit("150"),
        leverage: Leverage::lit("10"),
    };
    assert_eq!(
        acct(&engine, 3, position.clone()),
        Err(EventError::UnknownSymbol(sol.clone()))
    );
    let on_sol = CheckRequest {
        symbol: sol.clone(),
        quantity: d("1"),
        price: Some(d("150")),
        ..order("SOL-1")
    };
    let refused = engine.check(&on_sol, now());
    assert_eq!(refused.reject_reason, Some(RejectReason::UnknownSymbol));

    let listed = instrument("SOLUSDT", "0.01", "0.01", "10000");
    engine
        .apply(&EngineEvent::Market(MarketEvent::Instrument(
            listed.clone(),
        )))
        .expect("instrument");
    assert_eq!(acct(&engine, 3, position), Ok(Applied::Applied));
    let approved = engine.check(
        &CheckRequest {
            order_id: OrderId::new("SOL-2"),
            ..on_sol
        },
        now(),
    );
    assert_eq!(
        approved.decision,
        Decision::Approved,
        "{}",
        approved.message
    );
    // An older mark is stale against the one held before the listing.
    assert_eq!(
        mark(&engine, "SOLUSDT", "140", now() - TimeDelta::seconds(1)),
        Applied::Stale
    );

    let state = engine.export_state();
    assert_eq!(state.market.instruments.get(&sol), Some(&listed));
    assert_eq!(
        state.market.marks.get(&sol).map(|m| (m.price, m.at)),
        Some((Price::lit("150"), now()))
    );
    let restored = RiskEngine::new(config()).expect("valid config");
    restored.restore_state(state).expect("restores");
    assert_eq!(restored.market().instrument(&sol), Some(listed));
    assert_eq!(
        restored.market().mark(&sol).map(|m| m.price),
        Some(Price::lit("150"))
    );
}
