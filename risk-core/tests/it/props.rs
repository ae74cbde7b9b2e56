//! Property tests: invariants of the check and the engine.

use std::sync::Arc;

use proptest::prelude::*;
use risk_core::account::AccountSnapshot;
use risk_core::engine::{AccountEvent, EngineEvent, Seq};
use risk_core::ids::{AccountId, OrderId, Symbol};
use risk_core::model::{Decision, OrderType, RejectReason, Side};
use risk_core::num::{Leverage, Money, Price, SignedQuantity};
use risk_core::pretrade::{check, CheckRequest};
use risk_core::Decimal;

use crate::fixture::*;

/// Any Decimal at all: every mantissa, sign and scale.
fn any_decimal() -> impl Strategy<Value = Decimal> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        0u32..=28,
    )
        .prop_map(|(lo, mid, hi, neg, scale)| Decimal::from_parts(lo, mid, hi, neg, scale))
}

/// Decimals in a realistic range (0.001 to ~10^7, 3 decimals).
fn plausible(max: i64) -> impl Strategy<Value = Decimal> {
    (1..max * 1000).prop_map(|n| Decimal::new(n, 3))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// No decimal input, however absurd, makes the check panic; a reject always names a
    /// reason and an accept never carries one.
    #[test]
    fn the_check_never_panics_on_arbitrary_decimals(
        quantity in any_decimal(), price in any_decimal(), leverage in any_decimal(),
        wallet in any_decimal(), size in any_decimal(), entry in any_decimal(), mark in any_decimal(),
        market_order in any::<bool>(), sell in any::<bool>(), reduce_only in any::<bool>(),
    ) {
        let mut a = account();
        a.wallet_balance = Money::new(wallet).unwrap_or(Money::ZERO);
        if let (Ok(size), Ok(entry)) = (SignedQuantity::new(size), Price::new(entry)) {
            a.positions.push(risk_core::account::Position {
                symbol: Symbol::new("BTCUSDT"), size, entry_price: entry, leverage: Leverage::ONE,
            });
        }
        let mut m = market();
        if let Ok(p) = Price::new(mark) {
            m.marks.insert(Symbol::new("BTCUSDT"), risk_core::market::Mark { price: p, at: now() });
        }
        let req = CheckRequest {
            quantity, leverage, reduce_only,
            price: if market_order { None } else { Some(price) },
            order_type: if market_order { OrderType::Market } else { OrderType::Limit },
            side: if sell { Side::Sell } else { Side::Buy },
            ..request()
        };
        let resp = check(&config(), Some(&a), &m, &req, now());
        prop_assert_eq!(resp.decision == Decision::Rejected, resp.reject_reason.is_some());
        prop_assert!(!resp.message.to_string().is_empty());
    }

    /// An accepted order that opens exposure never exceeds a limit it was checked against.
    #[test]
    fn an_approved_order_is_within_every_limit_it_was_checked_against(
        quantity in plausible(50), price_offset in -2000i64..2000, leverage in 1i64..60,
        wallet in plausible(200_000), exposure_limit in plausible(2_000_000),
        position in -5_000i64..5_000, sell in any::<bool>(),
    ) {
        let mut a = account();
        a.wallet_balance = Money::new(wallet).unwrap_or(Money::ZERO);
        a.profile.exposure_limit = risk_core::num::Notional::new(exposure_limit).unwrap_or_default();
        if position != 0 {
            a.positions.push(position_of(Decimal::new(position, 3)));
        }
        let req = CheckRequest {
            quantity: quantity.round_dp(3).max(Decimal::new(1, 3)),
            price: Some(Decimal::from(50_000 + price_offset)),
            leverage: Decimal::from(leverage),
            side: if sell { Side::Sell } else { Side::Buy },
            ..request()
        };
        let resp = check(&config(), Some(&a), &market(), &req, now());
        if resp.is_accepted() {
            let m = resp.metrics.as_ref().expect("an accepted order was priced");
            if !m.opening_quantity.is_zero() {
                prop_assert!(m.required_initial_margin <= m.available_margin);
                prop_assert!(m.projected_exposure <= exposure_limit);
                prop_assert!(m.leverage <= m.max_leverage_allowed);
                prop_assert!(m.projected_margin_ratio.is_some_and(|r| r < Decimal::ONE));
            }
            prop_assert!(m.price_deviation <= Decimal::new(5, 2));
            prop_assert!(m.order_quantity <= Decimal::from(100));
        }
    }
}

fn position_of(size: Decimal) -> risk_core::account::Position {
    risk_core::account::Position {
        symbol: Symbol::new("BTCUSDT"),
        size: SignedQuantity::new(size).unwrap_or(SignedQuantity::ZERO),
        entry_price: Price::lit("50000"),
        leverage: Leverage::lit("20"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Two or more threads reserving on one account never commit more initial margin than
    /// the account had free: the sum of reservations stays within the available margin.
    #[test]
    fn concurrent_reservations_never_over_commit(
        threads in 2usize..5, per_thread in 5usize..40, wallet in 1_000i64..50_000,
        sizes in proptest::collection::vec(1i64..400, 8),
    ) {
        let engine = Arc::new(engine(config()));
        let id = AccountId::new("A1");
        engine.apply(&EngineEvent::Account {
            account_id: id.clone(), seq: Seq::lit(3),
            event: AccountEvent::BalanceChange { delta: Money::new(Decimal::from(wallet - 10_000)).unwrap_or(Money::ZERO) },
        }).expect("balance");
        let mut c = config();
        c.limits = limits(|l| l.rate_limit = None);
        engine.replace_config(c).expect("config");
        let handles: Vec<_> = (0..threads).map(|t| {
            let engine = Arc::clone(&engine);
            let sizes = sizes.clone();
            std::thread::spawn(move || {
                let mut approved = Decimal::ZERO;
                for i in 0..per_thread {
                    let req = CheckRequest {
                        order_id: OrderId::new(&format!("T{t}-{i}")),
                        quantity: Decimal::new(sizes[(t + i) % sizes.len()], 3),
                        ..request()
                    };
                    let resp = engine.check_and_reserve(&req, now());
                    if resp.is_accepted() {
                        approved += resp.required_initial_margin().unwrap_or_default();
                    } else {
                        assert_eq!(resp.reject_reason, Some(RejectReason::InsufficientMargin), "{}", resp.message);
                    }
                }
                approved
            })
        }).collect();
        let approved: Decimal = handles.into_iter().map(|h| h.join().expect("thread")).sum();
        let (a, _): (AccountSnapshot, u64) = engine.account(&id).expect("account");
        let reserved: Decimal = a.reservations.iter().map(|r| r.amount.get()).sum();
        prop_assert_eq!(approved, reserved);
        prop_assert!(reserved <= Decimal::from(wallet), "reserved {} of {}", reserved, wallet);
    }
}

/// One step of a random engine session.
#[derive(Debug, Clone)]
enum Step {
    Mark { btc: i64, eth: i64 },
    Fill { sell: bool, qty: i64, eth: bool },
    Balance(i64),
    Check { qty: i64, sell: bool, reserve: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (40_000i64..60_000, 2_000i64..4_000).prop_map(|(btc, eth)| Step::Mark { btc, eth }),
        (any::<bool>(), 1i64..2_000, any::<bool>()).prop_map(|(sell, qty, eth)| Step::Fill {
            sell,
            qty,
            eth
        }),
        (-5_000i64..5_000).prop_map(Step::Balance),
        (1i64..3_000, any::<bool>(), any::<bool>()).prop_map(|(qty, sell, reserve)| Step::Check {
            qty,
            sell,
            reserve
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The engine prices accounts from a per-account cache that lives across checks until
    /// a mark, instrument or account event; the pure check prices everything each time.
    /// Whatever the sequence, both give the same response.
    #[test]
    fn the_engine_cache_equals_the_pure_check(steps in proptest::collection::vec(step(), 1..40)) {
        use risk_core::engine::{AccountEvent, EngineEvent, MarketEvent};
        use risk_core::num::Quantity;
        let engine = engine(config());
        let mut mirror = market();
        let mut seq = 2;
        let mut t = now();
        for (i, s) in steps.into_iter().enumerate() {
            t += chrono::TimeDelta::milliseconds(10);
            match s {
                Step::Mark { btc, eth } => {
                    for (sym, p) in [("BTCUSDT", btc), ("ETHUSDT", eth)] {
                        let price = Price::new(Decimal::from(p)).expect("price");
                        engine.apply(&EngineEvent::Market(MarketEvent::Mark { symbol: Symbol::new(sym), price, at: t })).expect("mark");
                        mirror.marks.insert(Symbol::new(sym), risk_core::market::Mark { price, at: t });
                    }
                }
                Step::Fill { sell, qty, eth } => {
                    seq += 1;
                    let (sym, price) = if eth { ("ETHUSDT", "3000") } else { ("BTCUSDT", "50000") };
                    let _ = engine.apply(&EngineEvent::Account {
                        account_id: AccountId::new("A1"), seq: Seq::lit(seq),
                        event: AccountEvent::OrderFilled {
                            order_id: OrderId::new(&format!("F{i}")), symbol: Symbol::new(sym),
                            side: if sell { Side::Sell } else { Side::Buy },
                            quantity: Quantity::new(Decimal::new(qty, 3)).expect("qty"),
                            price: Price::lit(price), leverage: Leverage::lit("10"),
                        },
                    });
                }
                Step::Balance(delta) => {
                    seq += 1;
                    let delta = Money::new(Decimal::from(delta)).expect("money");
                    engine.apply(&EngineEvent::Account { account_id: AccountId::new("A1"), seq: Seq::lit(seq), event: AccountEvent::BalanceChange { delta } }).expect("balance");
                }
                Step::Check { qty, sell, reserve } => {
                    let mark = mirror.marks.get(&Symbol::new("BTCUSDT")).map(|m| m.price.get()).unwrap_or_default();
                    let req = CheckRequest {
                        order_id: OrderId::new(&format!("C{i}")),
                        quantity: Decimal::new(qty, 3),
                        price: Some(mark),
                        side: if sell { Side::Sell } else { Side::Buy },
                        ..request()
                    };
                    let (snapshot, _) = engine.account(&AccountId::new("A1")).expect("account");
                    let expected = check(&engine.config(), Some(&snapshot), &mirror, &req, t);
                    let got = if reserve { engine.check_and_reserve(&req, t) } else { engine.check(&req, t) };
                    prop_assert_eq!(got, expected);
                }
            }
        }
    }
}

/// One step of a random session for the fixed-point differential: prices, sizes,
/// balances and leverages written at assorted scales.
#[derive(Debug, Clone)]
enum Event {
    /// A mark in ticks (BTC 0.1, ETH 0.01).
    Mark { eth: bool, ticks: i64 },
    /// A fill in lots at a price in ticks, leverage in tenths.
    Fill {
        eth: bool,
        sell: bool,
        lots: i64,
        ticks: i64,
        leverage: i64,
    },
    /// A balance change in hundredths.
    Balance(i64),
    /// A resting limit order.
    Open {
        eth: bool,
        sell: bool,
        lots: i64,
        ticks: i64,
        leverage: i64,
    },
    /// A check: a limit order `offset` ticks from the mark, or a market order.
    Check {
        eth: bool,
        sell: bool,
        lots: i64,
        offset: i64,
        market: bool,
        leverage: i64,
        reserve: bool,
    },
    /// The instrument relisted with other figures (`RELISTS`): its prepared fixed-point
    /// form must follow.
    Relist { eth: bool, variant: usize },
    /// A profile update between checks (`CAPS`, `LIMITS`): the cached exposure and its
    /// prepared profile limits must not outlive it.
    Profile { cap: usize, limit: usize },
}

/// The profile's leverage caps at assorted scales, equal to a tier's or the instrument's
/// cap in value but not in scale: the caps' minimum keeps the first of equal caps (its
/// scale is in the response).
const CAPS: [&str; 6] = ["50", "50.0", "20.00", "125.0", "100", "10.0"];
/// Exposure limits at assorted scales, and zero (no utilization).
const LIMITS: [&str; 5] = ["1000000", "1000000.00", "250000.0", "60000", "0"];
/// Instrument figures a relisting may take, BTC then ETH: multiplier, leverage cap, tick,
/// lot. The last multiplier's mantissa (10^25) does not fit 64 bits, so that instrument
/// has no prepared form and its checks take the `Decimal` path.
const RELISTS: [[(&str, &str, &str, &str); 2]; 4] = [
    [("1", "125", "0.1", "0.001"), ("1", "125", "0.01", "0.01")],
    [("0.5", "20.0", "0.5", "0.010"), ("10", "50", "0.05", "0.1")],
    [
        ("2.00", "125.0", "1.0", "0.002"),
        ("0.01", "75", "0.10", "0.01"),
    ],
    [
        ("1.0000000000000000000000000", "100", "0.1", "0.001"),
        ("1", "20", "0.01", "0.01"),
    ],
];

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (any::<bool>(), 1i64..600_000).prop_map(|(eth, ticks)| Event::Mark { eth, ticks }),
        (
            any::<bool>(),
            any::<bool>(),
            1i64..3_000,
            1i64..600_000,
            10i64..500
        )
            .prop_map(|(eth, sell, lots, ticks, leverage)| Event::Fill {
                eth,
                sell,
                lots,
                ticks,
                leverage
            }),
        (-1_000_000i64..1_000_000).prop_map(Event::Balance),
        (
            any::<bool>(),
            any::<bool>(),
            1i64..3_000,
            1i64..600_000,
            10i64..500
        )
            .prop_map(|(eth, sell, lots, ticks, leverage)| Event::Open {
                eth,
                sell,
                lots,
                ticks,
                leverage
            }),
        (
            any::<bool>(),
            any::<bool>(),
            1i64..5_000,
            -3_000i64..3_000,
            any::<bool>(),
            10i64..800,
            any::<bool>()
        )
            .prop_map(|(eth, sell, lots, offset, market, leverage, reserve)| {
                Event::Check {
                    eth,
                    sell,
                    lots,
                    offset,
                    market,
                    leverage,
                    reserve,
                }
            }),
        (any::<bool>(), 0..RELISTS.len()).prop_map(|(eth, variant)| Event::Relist { eth, variant }),
        (0..CAPS.len(), 0..LIMITS.len()).prop_map(|(cap, limit)| Event::Profile { cap, limit }),
    ]
}

/// Rules on assorted metrics with thresholds at assorted scales, some of which fire.
fn session_rules() -> impl Strategy<Value = Vec<risk_core::rules::Rule>> {
    use risk_core::pretrade::CheckMetric;
    use risk_core::rules::Operator;
    let operators = [
        Operator::Gt,
        Operator::Ge,
        Operator::Lt,
        Operator::Le,
        Operator::Eq,
        Operator::Ne,
    ];
    proptest::collection::vec(
        (
            0usize..CheckMetric::ALL.len(),
            0usize..6,
            -2_000_000i64..20_000_000,
            0u32..=8,
            any::<bool>(),
        ),
        0..8,
    )
    .prop_map(move |specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (metric, op, mantissa, scale, warn))| {
                let mut r = rule(
                    &format!("r{i}"),
                    CheckMetric::ALL[metric],
                    operators[op],
                    "0",
                    if warn {
                        risk_core::model::RuleAction::Warn
                    } else {
                        risk_core::model::RuleAction::Reject
                    },
                );
                r.threshold = Decimal::new(mantissa, scale);
                r
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The fixed-point check (integer division, rules compared on integer mantissas,
    /// the engine's cached exposure) answers every check of a random session exactly as
    /// the `Decimal` reference does: same decision, reason, message, hits and every
    /// figure to its last digit (the responses' `Debug` text, which writes each decimal
    /// at its scale, is compared, not only numeric equality).
    #[test]
    fn fixed_point_check_equals_the_decimal_reference(
        rules in session_rules(),
        events in proptest::collection::vec(event(), 1..60),
        // The profile's leverage cap and exposure limit at assorted scales (`CAPS`,
        // `LIMITS`); sessions may change both later (`Event::Profile`).
        cap in 0..CAPS.len(),
        exposure_limit in 0..LIMITS.len(),
    ) {
        use risk_core::engine::MarketEvent;
        use risk_core::num::{Notional, Quantity};
        use risk_core::pretrade::check_reference;
        let engine = engine(with_rules(rules));
        let mut mirror = market();
        let id = AccountId::new("A1");
        let limited = |cap: usize, limit: usize| {
            let mut p = profile();
            p.max_leverage = Leverage::lit(CAPS[cap]);
            p.exposure_limit = Notional::lit(LIMITS[limit]);
            p
        };
        let profile = limited(cap, exposure_limit);
        engine.apply(&EngineEvent::Account {
            account_id: id.clone(),
            seq: Seq::lit(3),
            event: AccountEvent::ProfileUpsert { user_id: risk_core::ids::UserId::new("U1"), profile },
        }).expect("profile");
        let mut seq = 3;
        let mut t = now();
        let scales = |eth: bool| if eth { ("ETHUSDT", 2u32, 2u32) } else { ("BTCUSDT", 1, 3) };
        for (i, e) in events.into_iter().enumerate() {
            t += chrono::TimeDelta::milliseconds(7);
            let mut account = |event| {
                seq += 1;
                let _ = engine.apply(&EngineEvent::Account { account_id: id.clone(), seq: Seq::lit(seq), event });
            };
            match e {
                Event::Mark { eth, ticks } => {
                    let (sym, tick, _) = scales(eth);
                    let price = Price::new(Decimal::new(ticks, tick)).expect("price");
                    engine.apply(&EngineEvent::Market(MarketEvent::Mark { symbol: Symbol::new(sym), price, at: t })).expect("mark");
                    mirror.marks.insert(Symbol::new(sym), risk_core::market::Mark { price, at: t });
                }
                Event::Fill { eth, sell, lots, ticks, leverage } => {
                    let (sym, tick, lot) = scales(eth);
                    account(AccountEvent::OrderFilled {
                        order_id: OrderId::new(&format!("F{i}")), symbol: Symbol::new(sym),
                        side: if sell { Side::Sell } else { Side::Buy },
                        quantity: Quantity::new(Decimal::new(lots, lot)).expect("qty"),
                        price: Price::new(Decimal::new(ticks, tick)).expect("price"),
                        leverage: Leverage::new(Decimal::new(leverage, 1)).expect("leverage"),
                    });
                }
                Event::Balance(cents) => {
                    account(AccountEvent::BalanceChange { delta: Money::new(Decimal::new(cents, 2)).expect("money") });
                }
                Event::Open { eth, sell, lots, ticks, leverage } => {
                    let (sym, tick, lot) = scales(eth);
                    account(AccountEvent::OrderOpened(risk_core::account::OpenOrder {
                        order_id: OrderId::new(&format!("R{i}")), symbol: Symbol::new(sym),
                        side: if sell { Side::Sell } else { Side::Buy },
                        quantity: Quantity::new(Decimal::new(lots, lot)).expect("qty"),
                        price: Price::new(Decimal::new(ticks, tick)).expect("price"),
                        leverage: Leverage::new(Decimal::new(leverage, 1)).expect("leverage"),
                        reduce_only: false,
                    }));
                }
                Event::Relist { eth, variant } => {
                    let (sym, _, _) = scales(eth);
                    let (multiplier, cap, tick, lot) = RELISTS[variant][usize::from(eth)];
                    let mut spec = mirror.instruments[&Symbol::new(sym)].spec();
                    spec.contract_multiplier = risk_core::num::Multiplier::lit(multiplier);
                    spec.max_leverage = Leverage::lit(cap);
                    spec.tick_size = Price::lit(tick);
                    spec.lot_size = risk_core::num::LotSize::lit(lot);
                    spec.min_quantity = Quantity::lit(lot);
                    let listed = risk_core::market::Instrument::new(spec).expect("instrument");
                    engine.apply(&EngineEvent::Market(MarketEvent::Instrument(listed.clone()))).expect("instrument");
                    mirror.instruments.insert(Symbol::new(sym), listed);
                }
                Event::Profile { cap, limit } => {
                    account(AccountEvent::ProfileUpsert {
                        user_id: risk_core::ids::UserId::new("U1"),
                        profile: limited(cap, limit),
                    });
                }
                Event::Check { eth, sell, lots, offset, market, leverage, reserve } => {
                    let (sym, tick, lot) = scales(eth);
                    let mark = mirror.marks[&Symbol::new(sym)].price.get();
                    let price = (mark + Decimal::new(offset, tick)).max(Decimal::new(1, tick));
                    let req = CheckRequest {
                        order_id: OrderId::new(&format!("C{i}")),
                        symbol: Symbol::new(sym),
                        quantity: Decimal::new(lots, lot),
                        price: (!market).then_some(price),
                        order_type: if market { OrderType::Market } else { OrderType::Limit },
                        side: if sell { Side::Sell } else { Side::Buy },
                        leverage: Decimal::new(leverage, 1),
                        ..request()
                    };
                    let (snapshot, _) = engine.account(&id).expect("account");
                    let expected = check_reference(&engine.config(), Some(&snapshot), &mirror, &req, t);
                    let pure = check(&engine.config(), Some(&snapshot), &mirror, &req, t);
                    let got = if reserve { engine.check_and_reserve(&req, t) } else { engine.check(&req, t) };
                    prop_assert_eq!(format!("{pure:?}"), format!("{expected:?}"));
                    prop_assert_eq!(format!("{got:?}"), format!("{expected:?}"));
                }
            }
        }
    }
}
