//! riskgate's `RiskEngine::check` and NautilusTrader's `RiskEngine` pre-trade checks on the
//! same account, positions, open orders and instrument, in one binary and one run.
//!
//! The scenario is riskgate's reference scenario (`riskgate_benches::scenario(10, 20)`):
//! an account with a 1,000,000 wallet, 10 open positions across 10 perpetuals (long 2.5 on
//! even symbols, short 1.5 on odd ones, entered 10 below the mark), 5 open limit buys of
//! 0.5 (20 below the mark), and a limit buy of 1 at 1,000 on `SYM00` at 10x leverage that
//! both engines approve. NautilusTrader gets the same instruments (tick 0.1, lot 0.001,
//! quantity 0.001..1000, initial margin at 10x), a quote per instrument at the mark, a
//! margin account with the same balance, the same positions (from fills) and the same
//! open orders (accepted), and the order as a `SubmitOrder` command through
//! `RiskEngine::execute`, the path its own `tests/risk_engine.rs` drives. An approved
//! order leaves NautilusTrader's engine on the message bus towards the execution
//! engine's queue; a handler there counts it.
//!
//! Each check is timed on its own with `Instant` (the timer costs about 20-30 ns of each
//! figure, for both); throughput is over the whole loop, which also builds each request
//! (riskgate: a `CheckRequest` with a fresh order id; NautilusTrader: a clone of the
//! `SubmitOrder` command and a clock step). Both engines see a simulated clock that moves
//! 1 us a check.
//!
//! Usage: `cargo run --release -- [MILLIONS] [both|riskgate|nautilus]` (default 1, both).
//! The third argument lets `valgrind --tool=callgrind` count one engine at a time.
#![allow(clippy::expect_used, clippy::disallowed_methods)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::str::FromStr;
use std::time::Instant;

use ahash::AHashMap;
use hdrhistogram::Histogram;
use nautilus_common::cache::Cache;
use nautilus_common::clock::{Clock, TestClock};
use nautilus_common::messages::execution::{SubmitOrder, TradingCommand};
use nautilus_common::msgbus::{self, MessagingSwitchboard, TypedIntoHandler};
use nautilus_common::throttler::RateLimit;
use nautilus_core::{UnixNanos, UUID4};
use nautilus_model::accounts::{AccountAny, MarginAccount};
use nautilus_model::data::QuoteTick;
use nautilus_model::enums::{AccountType, LiquiditySide, OmsType, OrderSide, OrderType};
use nautilus_model::events::{
    AccountState, OrderAccepted, OrderEventAny, OrderFilled, OrderSubmitted,
};
use nautilus_model::identifiers::{
    AccountId, ClientId, ClientOrderId, InstrumentId, PositionId, StrategyId, Symbol, TradeId,
    TraderId, VenueOrderId,
};
use nautilus_model::instruments::{CryptoPerpetual, Instrument, InstrumentAny};
use nautilus_model::orders::{Order, OrderAny, OrderTestBuilder};
use nautilus_model::position::Position;
use nautilus_model::types::{AccountBalance, Currency, Money, Price, Quantity};
use nautilus_portfolio::Portfolio;
use nautilus_risk::engine::config::RiskEngineConfig;
use nautilus_risk::engine::RiskEngine as NautilusRiskEngine;
use risk_core::model::Decision;
use risk_core::pretrade::CheckRequest;
use riskgate_benches::{account_id, scenario, OrderIds, Scenario};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

const VENUE: &str = "BENCH";

fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("histogram bounds")
}

/// Latencies, wall seconds of the measured loop, and how many checks were approved.
struct Run {
    hist: Histogram<u64>,
    secs: f64,
    approved: u64,
}

fn run_riskgate(s: &Scenario, checks: u64) -> Run {
    let engine = s.engine(1);
    let mut ids = OrderIds::new(1 << 20);
    let mut tick = 0i64;
    let base = CheckRequest {
        account_id: account_id(1),
        ..s.approve.clone()
    };
    for _ in 0..100_000 {
        let (order_id, at) = ids.next(&mut tick);
        let _ = engine.check(
            &CheckRequest {
                order_id,
                ..base.clone()
            },
            at,
        );
    }
    let mut hist = histogram();
    let mut approved = 0;
    let start = Instant::now();
    for _ in 0..checks {
        let (order_id, at) = ids.next(&mut tick);
        let req = CheckRequest {
            order_id,
            ..base.clone()
        };
        let t0 = Instant::now();
        let r = engine.check(&req, at);
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        approved += u64::from(r.decision == Decision::Approved);
        hist.record(ns.max(1)).expect("in range");
    }
    Run {
        hist,
        secs: start.elapsed().as_secs_f64(),
        approved,
    }
}

fn instrument_id(symbol: &str) -> InstrumentId {
    InstrumentId::from(format!("{symbol}-PERP.{VENUE}").as_str())
}

fn usdt() -> Currency {
    Currency::USDT()
}

/// The NautilusTrader twin of the scenario's instrument: a linear perpetual quoted and
/// settled in USDT, tick 0.1, lot 0.001, quantity 0.001..1000, initial margin rate 1 (so
/// margin = notional / leverage, as riskgate's), maintenance 0.004 (the first tier's).
fn perpetual(symbol: &str) -> InstrumentAny {
    InstrumentAny::CryptoPerpetual(CryptoPerpetual::new(
        instrument_id(symbol),
        Symbol::from(symbol),
        Currency::BTC(),
        usdt(),
        usdt(),
        false,
        1,
        3,
        Price::from("0.1"),
        Quantity::from("0.001"),
        None,
        None,
        Some(Quantity::from("1000.000")),
        Some(Quantity::from("0.001")),
        None,
        None,
        None,
        None,
        Some(Decimal::ONE),
        Some(Decimal::new(4, 3)),
        Some(Decimal::ZERO),
        Some(Decimal::ZERO),
        None,
        UnixNanos::default(),
        UnixNanos::default(),
    ))
}

fn ids() -> (TraderId, StrategyId, ClientId, AccountId) {
    (
        TraderId::from("TRADER-001"),
        StrategyId::from("S-001"),
        ClientId::from(VENUE),
        AccountId::from(format!("{VENUE}-001").as_str()),
    )
}

/// Nautilus fixed-point values from riskgate's decimals (same digits).
fn price(d: Decimal) -> Price {
    Price::from_str(&format!("{:.1}", d)).expect("price")
}

fn quantity(d: Decimal) -> Quantity {
    Quantity::from_str(&format!("{:.3}", d)).expect("quantity")
}

struct NautilusSetup {
    engine: NautilusRiskEngine,
    clock: Rc<RefCell<TestClock>>,
    submit: SubmitOrder,
    approved: Rc<Cell<u64>>,
    denied: Rc<Cell<u64>>,
}

fn nautilus_setup(s: &Scenario) -> NautilusSetup {
    let (trader, strategy, client, account) = ids();
    let mut cache = Cache::default();
    let mut instruments = AHashMap::new();
    for (symbol, inst) in &s.market.instruments {
        let ours = perpetual(symbol.as_str());
        assert_eq!(
            (inst.tick_size().get(), inst.lot_size().get()),
            (Decimal::new(1, 1), Decimal::new(1, 3)),
            "the twin instrument has the scenario's tick and lot"
        );
        cache.add_instrument(ours.clone()).expect("instrument");
        let mark = s.market.marks[symbol].price.get();
        cache
            .add_quote(QuoteTick::new(
                ours.id(),
                price(mark),
                price(mark + Decimal::new(1, 1)),
                Quantity::from("100.000"),
                Quantity::from("100.000"),
                UnixNanos::default(),
                UnixNanos::default(),
            ))
            .expect("quote");
        instruments.insert(symbol.as_str().to_string(), ours);
    }
    let wallet = s.account.wallet_balance.get();
    let balance = Money::new(wallet.to_f64().expect("f64"), usdt());
    let state = AccountState::new(
        account,
        AccountType::Margin,
        vec![AccountBalance::new(
            balance,
            Money::new(0.0, usdt()),
            balance,
        )],
        vec![],
        true,
        UUID4::new(),
        UnixNanos::default(),
        UnixNanos::default(),
        Some(usdt()),
    );
    let mut margin = MarginAccount::new(state, true);
    for inst in instruments.values() {
        margin.set_leverage(inst.id(), Decimal::from(10));
    }
    cache
        .add_account(AccountAny::Margin(margin))
        .expect("account");

    // The positions, each from one fill at the scenario's entry price.
    for (n, p) in s.account.positions.iter().enumerate() {
        let inst = &instruments[p.symbol.as_str()];
        let size = p.size.get();
        let side = if size > Decimal::ZERO {
            OrderSide::Buy
        } else {
            OrderSide::Sell
        };
        let fill = OrderFilled::new(
            trader,
            strategy,
            inst.id(),
            ClientOrderId::from(format!("O-POS-{n}").as_str()),
            VenueOrderId::from(format!("V-POS-{n}").as_str()),
            account,
            TradeId::from(format!("T-POS-{n}").as_str()),
            side,
            OrderType::Market,
            quantity(size.abs()),
            price(p.entry_price.get()),
            usdt(),
            LiquiditySide::Taker,
            UUID4::new(),
            UnixNanos::default(),
            UnixNanos::default(),
            false,
            Some(PositionId::from(format!("P-{n}").as_str())),
            Some(Money::new(0.0, usdt())),
        );
        let position = Position::new(inst, fill);
        cache
            .add_position(&position, OmsType::Netting)
            .expect("position");
    }

    // The open orders, submitted and accepted.
    for (n, o) in s.account.open_orders.iter().enumerate() {
        let inst = &instruments[o.symbol.as_str()];
        let mut order = OrderTestBuilder::new(OrderType::Limit)
            .trader_id(trader)
            .strategy_id(strategy)
            .instrument_id(inst.id())
            .client_order_id(ClientOrderId::from(format!("O-OPEN-{n}").as_str()))
            .side(OrderSide::Buy)
            .quantity(quantity(o.quantity.get()))
            .price(price(o.price.get()))
            .build();
        order
            .apply(OrderEventAny::Submitted(OrderSubmitted::new(
                trader,
                strategy,
                inst.id(),
                order.client_order_id(),
                account,
                UUID4::new(),
                UnixNanos::default(),
                UnixNanos::default(),
            )))
            .expect("submitted");
        order
            .apply(OrderEventAny::Accepted(OrderAccepted::new(
                trader,
                strategy,
                inst.id(),
                order.client_order_id(),
                VenueOrderId::from(format!("V-OPEN-{n}").as_str()),
                account,
                UUID4::new(),
                UnixNanos::default(),
                UnixNanos::default(),
                false,
            )))
            .expect("accepted");
        cache
            .add_order(order, None, Some(client), false)
            .expect("open order");
    }

    // The checked order: the scenario's limit buy.
    let req = &s.approve;
    let inst = &instruments[req.symbol.as_str()];
    let order: OrderAny = OrderTestBuilder::new(OrderType::Limit)
        .trader_id(trader)
        .strategy_id(strategy)
        .instrument_id(inst.id())
        .client_order_id(ClientOrderId::from("O-CHECK"))
        .side(OrderSide::Buy)
        .quantity(quantity(req.quantity))
        .price(price(req.price.expect("a limit order")))
        .build();
    cache
        .add_order(order.clone(), None, Some(client), false)
        .expect("checked order");

    let clock = Rc::new(RefCell::new(TestClock::new()));
    let cache = Rc::new(RefCell::new(cache));
    let dyn_clock: Rc<RefCell<dyn Clock>> = clock.clone();
    let portfolio = Portfolio::new(cache.clone(), dyn_clock.clone(), None);
    let mut max_notional = AHashMap::new();
    max_notional.insert(inst.id(), s.account.profile.exposure_limit.get());
    let config = RiskEngineConfig {
        debug: false,
        bypass: false,
        // At most 10,000 orders a millisecond: the clock moves 1 us a check, so the
        // throttle is consulted on every order and never holds one back.
        max_order_submit: RateLimit::new(10_000, 1_000_000),
        max_order_modify: RateLimit::new(10_000, 1_000_000),
        max_notional_per_order: max_notional,
    };
    let engine = NautilusRiskEngine::new(config, portfolio, dyn_clock, cache);

    let approved = Rc::new(Cell::new(0u64));
    let denied = Rc::new(Cell::new(0u64));
    {
        let approved = approved.clone();
        msgbus::register_trading_command_endpoint(
            MessagingSwitchboard::exec_engine_queue_execute(),
            TypedIntoHandler::from(move |_: TradingCommand| approved.set(approved.get() + 1)),
        );
        let denied = denied.clone();
        msgbus::register_order_event_endpoint(
            MessagingSwitchboard::exec_engine_process(),
            TypedIntoHandler::from(move |_: OrderEventAny| denied.set(denied.get() + 1)),
        );
    }
    let submit = SubmitOrder::new(
        trader,
        Some(client),
        strategy,
        inst.id(),
        order.client_order_id(),
        order.init_event().clone(),
        None,
        None,
        None,
        UUID4::new(),
        UnixNanos::default(),
    );
    NautilusSetup {
        engine,
        clock,
        submit,
        approved,
        denied,
    }
}

fn run_nautilus(s: &Scenario, checks: u64) -> Run {
    let NautilusSetup {
        mut engine,
        clock,
        submit,
        approved,
        denied,
    } = nautilus_setup(s);
    let mut t: u64 = 1_000_000_000;
    let mut step = |engine: &mut NautilusRiskEngine| {
        t += 1_000;
        let _ = clock.borrow_mut().advance_time(UnixNanos::from(t), true);
        let cmd = TradingCommand::SubmitOrder(submit.clone());
        let t0 = Instant::now();
        engine.execute(cmd);
        u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    };
    for _ in 0..100_000 {
        let _ = step(&mut engine);
    }
    assert_eq!(
        denied.get(),
        0,
        "NautilusTrader denied the scenario's order"
    );
    approved.set(0);
    let mut hist = histogram();
    let start = Instant::now();
    for _ in 0..checks {
        let ns = step(&mut engine);
        hist.record(ns.max(1)).expect("in range");
    }
    Run {
        hist,
        secs: start.elapsed().as_secs_f64(),
        approved: approved.get(),
    }
}

fn row(label: &str, checks: u64, r: &Run) {
    println!(
        "{label:<12} {checks:>9} {:>11.0} {:>7} {:>7} {:>7} {:>8} {:>9}",
        checks as f64 / r.secs,
        r.hist.value_at_quantile(0.50),
        r.hist.value_at_quantile(0.90),
        r.hist.value_at_quantile(0.99),
        r.hist.value_at_quantile(0.999),
        r.approved
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let millions: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let which = args.next().unwrap_or_else(|| "both".to_string());
    let checks = (millions * 1_000_000.0) as u64;
    let s = scenario(10, 20);
    println!(
        "scenario: 10 positions, 5 open orders, 10 instruments; limit buy 1 @ 1000 at 10x; one thread"
    );
    println!(
        "{:<12} {:>9} {:>11} {:>7} {:>7} {:>7} {:>8} {:>9}",
        "engine", "checks", "checks/s", "p50 ns", "p90 ns", "p99 ns", "p99.9 ns", "approved"
    );
    let ours = (which != "nautilus").then(|| run_riskgate(&s, checks));
    if let Some(r) = &ours {
        row("riskgate", checks, r);
    }
    let theirs = (which != "riskgate").then(|| run_nautilus(&s, checks));
    if let Some(r) = &theirs {
        row("nautilus", checks, r);
    }
    if let (Some(a), Some(b)) = (&ours, &theirs) {
        let q = |r: &Run, q: f64| r.hist.value_at_quantile(q) as f64;
        println!(
            "nautilus / riskgate: p50 {:.2}x, p99 {:.2}x, checks/s {:.2}x riskgate's",
            q(b, 0.5) / q(a, 0.5),
            q(b, 0.99) / q(a, 0.99),
            (checks as f64 / a.secs) / (checks as f64 / b.secs)
        );
    }
}
