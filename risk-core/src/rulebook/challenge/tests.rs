//! Hand-computed examples for every challenge rule, with their boundaries, and the rules
//! checked against the metrics they restate.

use super::*;
use crate::metrics::{TradeFacts, TradeMetrics};
use crate::model::Side;
use crate::rulebook::{NewsWindow, RulebookSpec};
use chrono::TimeZone;
use proptest::prelude::*;
use rust_decimal_macros::dec;

/// 2025-05-05 00:00:00 UTC (a Monday), in seconds.
const MONDAY: i64 = 1_746_403_200;
const DAY: i64 = 86_400;
const NS: i64 = 1_000_000_000;

fn ns(secs: i64) -> i64 {
    (MONDAY + secs) * NS
}

fn time(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns(secs))
}

fn t(open: i64, close: i64, net: Decimal) -> RuleTrade {
    RuleTrade {
        opened_at_ns: ns(open),
        closed_at_ns: ns(close),
        pnl: net,
        lots: dec!(1),
        side: Side::Buy,
        symbol: 0,
    }
}

fn book(spec: RulebookSpec) -> Rulebook {
    Rulebook::new(spec).unwrap()
}

fn run(spec: RulebookSpec, trades: &[RuleTrade]) -> Outcome {
    evaluate(&book(spec), trades, dec!(100000)).unwrap()
}

fn kinds(o: &Outcome) -> Vec<RuleKind> {
    o.signals.iter().map(|s| s.kind).collect()
}

fn daily(limit: Decimal) -> RulebookSpec {
    RulebookSpec {
        daily_loss_limit: Some(limit),
        ..RulebookSpec::default()
    }
}

#[test]
fn a_rule_left_out_is_not_checked() {
    let trades = [
        t(0, 10, dec!(-99000)),
        t(0, 10, dec!(5)),
        t(20, 30, dec!(1)),
    ];
    let o = evaluate(&Rulebook::empty(), &trades, dec!(100000)).unwrap();
    assert!(o.signals.is_empty());
    assert_eq!(o.status, ChallengeStatus::Active);
    let none = evaluate(&Rulebook::standard(), &[], dec!(100000)).unwrap();
    assert!(none.signals.is_empty());
    assert_eq!(none.status, ChallengeStatus::Active);
}

/// 5 % of 100,000 is 5,000 a day. A fall of exactly 5,000 is allowed; 5,100 breaks it.
#[test]
fn daily_loss_exactly_at_the_limit_then_past_it() {
    let at_limit = [t(0, 100, dec!(-3000)), t(0, 200, dec!(-2000))];
    let o = run(daily(dec!(0.05)), &at_limit);
    assert!(o.signals.is_empty(), "exactly at the limit is not a breach");
    let past = [
        t(0, 100, dec!(-3000)),
        t(0, 200, dec!(-2000)),
        t(0, 300, dec!(100)),
        t(0, 400, dec!(-200)),
    ];
    let o = run(daily(dec!(0.05)), &past);
    assert_eq!(o.status, ChallengeStatus::Failed);
    let b = o.first_breach.unwrap();
    assert_eq!(b.kind, RuleKind::DailyLossLimitBreached);
    assert_eq!(b.at, time(400));
    // 100,000 - 94,900 = 5,100 = 5.1 % of the initial balance.
    assert_eq!((b.value, b.limit), (dec!(0.051), dec!(0.05)));
}

/// The day opens at the previous day's closing balance, and the allowance stays 5 % of
/// the initial balance (not of the day's opening balance).
#[test]
fn daily_loss_is_measured_from_the_days_opening_balance() {
    let trades = [
        t(0, 100, dec!(20000)),            // day 1 closes at 120,000
        t(DAY, DAY + 100, dec!(-5000)),    // 115,000: 5,000 down
        t(DAY, DAY + 200, dec!(3000)),     // 118,000
        t(DAY, DAY + 300, dec!(-3000.01)), // 114,999.99: 5,000.01 down
    ];
    let o = run(daily(dec!(0.05)), &trades);
    let b = o.first_breach.unwrap();
    assert_eq!(b.at, time(DAY + 300));
    assert_eq!(b.value, dec!(0.0500001));
}

/// A trade closing exactly at midnight belongs to the new day; with a +120 minute day
/// offset both closes fall on the same (shifted) day.
#[test]
fn a_trade_closing_exactly_at_midnight_starts_the_new_day() {
    let trades = [t(0, DAY - 1, dec!(-4000)), t(DAY - 10, DAY, dec!(-4000))];
    let o = run(daily(dec!(0.05)), &trades);
    assert!(o.signals.is_empty(), "4,000 on each of two days");
    let shifted = RulebookSpec {
        day_offset_minutes: 120,
        ..daily(dec!(0.05))
    };
    let o = run(shifted, &trades);
    let b = o.first_breach.unwrap();
    assert_eq!((b.at, b.value), (time(DAY), dec!(0.08)));
}

fn max_loss(limit: Decimal, mode: MaxLossMode, lock: bool) -> RulebookSpec {
    RulebookSpec {
        max_loss_limit: Some(limit),
        max_loss_mode: mode,
        trailing_lock_at_initial: lock,
        ..RulebookSpec::default()
    }
}

/// Static 10 %: the floor is 90,000. Exactly 90,000 is allowed; 89,999.99 breaks it.
#[test]
fn static_max_loss_at_and_below_the_floor() {
    let spec = || max_loss(dec!(0.10), MaxLossMode::Static, false);
    let at_floor = [t(0, 10, dec!(-6000)), t(0, 20, dec!(-4000))];
    assert!(run(spec(), &at_floor).signals.is_empty());
    let below = [
        t(0, 10, dec!(-6000)),
        t(0, 20, dec!(-4000)),
        t(30, 40, dec!(-0.01)),
    ];
    let o = run(spec(), &below);
    assert_eq!(o.status, ChallengeStatus::Failed);
    let b = o.first_breach.unwrap();
    assert_eq!((b.kind, b.at), (RuleKind::MaxLossLimitBreached, time(40)));
    assert_eq!((b.value, b.limit), (dec!(0.1000001), dec!(0.1)));
}

/// Trailing 10 %: +10,000 lifts the mark to 110,000 and the floor to 99,000.
#[test]
fn trailing_max_loss_follows_the_high_water_mark() {
    let spec = || max_loss(dec!(0.10), MaxLossMode::Trailing, false);
    let at_floor = [t(0, 10, dec!(10000)), t(20, 30, dec!(-11000))];
    assert!(
        run(spec(), &at_floor).signals.is_empty(),
        "99,000 is the floor"
    );
    let below = [
        t(0, 10, dec!(10000)),
        t(20, 30, dec!(-11000)),
        t(40, 50, dec!(-1)),
    ];
    let b = run(spec(), &below).first_breach.unwrap();
    assert_eq!(b.at, time(50));
    assert_eq!(b.value, dec!(11001) / dec!(110000));
    assert_eq!(b.limit, dec!(0.1));
    // The static rule sees nothing: 98,999 is above 90,000.
    let st = max_loss(dec!(0.10), MaxLossMode::Static, false);
    assert!(run(st, &below).signals.is_empty());
}

/// +20,000: the mark is 120,000 and the trailing floor 108,000; locked at the initial
/// balance the floor stays 100,000. A fall to 105,000 breaks only the unlocked rule.
#[test]
fn trailing_lock_at_initial_freezes_the_floor() {
    let trades = [t(0, 10, dec!(20000)), t(20, 30, dec!(-15000))];
    let unlocked = run(max_loss(dec!(0.10), MaxLossMode::Trailing, false), &trades);
    let b = unlocked.first_breach.unwrap();
    assert_eq!((b.at, b.value, b.limit), (time(30), dec!(0.125), dec!(0.1)));
    let locked = run(max_loss(dec!(0.10), MaxLossMode::Trailing, true), &trades);
    assert!(locked.signals.is_empty());
    let lower = [t(0, 10, dec!(20000)), t(20, 30, dec!(-20000.5))];
    let b = run(max_loss(dec!(0.10), MaxLossMode::Trailing, true), &lower)
        .first_breach
        .unwrap();
    // Floor 100,000 = the mark less 20,000 / 120,000.
    assert_eq!(b.limit, dec!(20000) / dec!(120000));
    assert_eq!(b.value, dec!(20000.5) / dec!(120000));
}

fn target(days: Option<u32>, consistency: Option<Decimal>) -> RulebookSpec {
    RulebookSpec {
        profit_target: Some(dec!(0.08)),
        min_trading_days: days,
        consistency_limit: consistency,
        ..RulebookSpec::default()
    }
}

/// Target 8 % = 108,000, exactly reached on day 2 with 2 of 3 trading days; day 3 passes.
#[test]
fn profit_target_and_min_trading_days() {
    let two_days = [t(0, 10, dec!(5000)), t(DAY, DAY + 10, dec!(3000))];
    let o = run(target(Some(3), None), &two_days);
    assert_eq!(o.status, ChallengeStatus::Active);
    assert_eq!(
        kinds(&o),
        [
            RuleKind::ProfitTargetReached,
            RuleKind::MinTradingDaysNotMet
        ]
    );
    let reached = &o.signals[0];
    assert_eq!(
        (reached.at, reached.value, reached.limit),
        (time(DAY + 10), dec!(0.08), dec!(0.08))
    );
    let short = &o.signals[1];
    assert_eq!(
        (short.at, short.value, short.limit),
        (time(DAY + 10), dec!(2), dec!(3))
    );

    let mut three = two_days.to_vec();
    three.push(t(2 * DAY, 2 * DAY + 10, dec!(-100)));
    let o = run(target(Some(3), None), &three);
    assert_eq!(
        o.status,
        ChallengeStatus::Active,
        "107,900: below the target again"
    );
    assert_eq!(
        o.signals[1].at,
        time(DAY + 10),
        "first time the days fell short"
    );
    let o2 = {
        let mut v = two_days.to_vec();
        v.push(t(2 * DAY, 2 * DAY + 10, dec!(100)));
        run(target(Some(3), None), &v)
    };
    assert_eq!(o2.status, ChallengeStatus::Passed);
    assert_eq!(o2.passed_at, Some(time(2 * DAY + 10)));
    assert_eq!(kinds(&o2), [RuleKind::ProfitTargetReached]);
}

/// Consistency 50 %: 7,000 of 8,000 on one day (87.5 %) blocks the pass; another 6,000
/// day makes it 7,000 / 14,000 = exactly 50 %, which passes.
#[test]
fn consistency_blocks_the_pass_until_the_best_day_is_half() {
    let uneven = [t(0, 10, dec!(7000)), t(DAY, DAY + 10, dec!(1000))];
    let o = run(target(None, Some(dec!(0.5))), &uneven);
    assert_eq!(o.status, ChallengeStatus::Active);
    let c = o
        .signals
        .iter()
        .find(|s| s.kind == RuleKind::ConsistencyRuleBreached)
        .unwrap();
    assert_eq!(
        (c.at, c.value, c.limit),
        (time(DAY + 10), dec!(0.875), dec!(0.5))
    );
    let mut even = uneven.to_vec();
    even.push(t(2 * DAY, 2 * DAY + 10, dec!(6000)));
    let o = run(target(None, Some(dec!(0.5))), &even);
    assert_eq!(o.status, ChallengeStatus::Passed);
    assert_eq!(o.passed_at, Some(time(2 * DAY + 10)));
    assert_eq!(kinds(&o), [RuleKind::ProfitTargetReached]);
}

/// Without a profit target the pass conditions are checked once, at the last close.
#[test]
fn without_a_target_conditions_are_checked_at_the_end() {
    let spec = RulebookSpec {
        min_trading_days: Some(2),
        consistency_limit: Some(dec!(0.4)),
        ..RulebookSpec::default()
    };
    let o = run(spec, &[t(0, 10, dec!(100)), t(20, 30, dec!(50))]);
    assert_eq!(o.status, ChallengeStatus::Active);
    assert_eq!(
        kinds(&o),
        [
            RuleKind::MinTradingDaysNotMet,
            RuleKind::ConsistencyRuleBreached
        ]
    );
    assert!(o.signals.iter().all(|s| s.at == time(30)));
    assert_eq!(o.signals[1].value, dec!(1), "one day holds all the profit");
}

/// A breach before the pass fails the account; a pass before the breach stands (and the
/// later breach is still reported).
#[test]
fn the_first_decisive_event_sets_the_status() {
    let spec = || RulebookSpec {
        daily_loss_limit: Some(dec!(0.05)),
        profit_target: Some(dec!(0.08)),
        ..RulebookSpec::default()
    };
    let fail_first = [t(0, 10, dec!(-6000)), t(DAY, DAY + 10, dec!(20000))];
    let o = run(spec(), &fail_first);
    assert_eq!(o.status, ChallengeStatus::Failed);
    assert_eq!(o.first_breach.as_ref().map(|b| b.at), Some(time(10)));
    assert_eq!(o.passed_at, None);
    let pass_first = [t(0, 10, dec!(9000)), t(DAY, DAY + 10, dec!(-6000))];
    let o = run(spec(), &pass_first);
    assert_eq!(o.status, ChallengeStatus::Passed);
    assert_eq!(o.passed_at, Some(time(10)));
    assert_eq!(
        kinds(&o),
        [
            RuleKind::ProfitTargetReached,
            RuleKind::DailyLossLimitBreached
        ]
    );
}

#[test]
fn max_lot_size_at_and_above() {
    let spec = RulebookSpec {
        max_lot_size: Some(dec!(2)),
        ..RulebookSpec::default()
    };
    let mut a = t(100, 200, dec!(1));
    a.lots = dec!(2);
    let mut b = t(50, 300, dec!(1));
    b.lots = dec!(2.01);
    let mut c = t(10, 400, dec!(1));
    c.lots = dec!(5);
    assert!(run(spec.clone(), &[a]).signals.is_empty(), "exactly 2 lots");
    let o = run(spec, &[a, b, c]);
    let s = o.first_breach.unwrap();
    assert_eq!(
        (s.kind, s.at, s.value, s.limit),
        (RuleKind::MaxLotSizeExceeded, time(10), dec!(5), dec!(2))
    );
}

#[test]
fn max_open_trades_counts_half_open_intervals() {
    let spec = RulebookSpec {
        max_open_trades: Some(2),
        ..RulebookSpec::default()
    };
    let touching = [t(0, 100, dec!(1)), t(0, 100, dec!(1)), t(100, 200, dec!(1))];
    assert!(run(spec.clone(), &touching).signals.is_empty());
    let three = [
        t(0, 100, dec!(1)),
        t(10, 100, dec!(1)),
        t(100, 200, dec!(1)),
        t(50, 60, dec!(1)),
    ];
    let s = run(spec, &three).first_breach.unwrap();
    assert_eq!(
        (s.kind, s.at, s.value, s.limit),
        (RuleKind::MaxOpenTradesExceeded, time(50), dec!(3), dec!(2))
    );
}

/// Friday 2025-05-09 22:00 UTC is 4 days 22 hours after Monday 00:00.
#[test]
fn weekend_holding_from_friday_22_to_sunday_22() {
    let friday_22 = 4 * DAY + 22 * 3600;
    let sunday_22 = friday_22 + 2 * DAY;
    let forbid = || RulebookSpec {
        weekend_holding: Some(false),
        ..RulebookSpec::default()
    };
    let clean = [
        t(friday_22 - 3600, friday_22, dec!(1)), // closes exactly as the weekend starts
        t(sunday_22, sunday_22 + 60, dec!(1)),   // opens exactly as it ends
    ];
    assert!(run(forbid(), &clean).signals.is_empty());
    let held = [
        t(friday_22 - 3600, friday_22 + 1, dec!(1)),
        t(friday_22 + DAY, friday_22 + DAY + 60, dec!(1)), // opened on Saturday
        t(0, 10, dec!(1)),
    ];
    let s = run(forbid(), &held).first_breach.unwrap();
    assert_eq!(
        (s.kind, s.at, s.value, s.limit),
        (RuleKind::WeekendHolding, time(friday_22), dec!(2), dec!(0))
    );
    // A trade opened on Wednesday and closed a week later is caught at Friday 22:00.
    let long = [t(2 * DAY, 9 * DAY, dec!(1))];
    assert_eq!(run(forbid(), &long).signals[0].at, time(friday_22));
    let allowed = RulebookSpec {
        weekend_holding: Some(true),
        ..RulebookSpec::default()
    };
    assert!(run(allowed, &held).signals.is_empty());
    let w = weekend_entry(ns(friday_22 - 1), ns(friday_22 + 1));
    assert_eq!(w, Some(ns(friday_22)));
    assert_eq!(
        Utc.timestamp_opt(MONDAY + friday_22, 0)
            .unwrap()
            .format("%a %H:%M")
            .to_string(),
        "Fri 22:00"
    );
}

#[test]
fn news_trading_inside_a_window_ends_included() {
    let window = |a: i64, b: i64| NewsWindow {
        start: time(a),
        end: time(b),
    };
    let spec = RulebookSpec {
        // Two overlapping windows merge into 36,000..=36,400.
        news_blackout: vec![window(36_300, 36_400), window(36_000, 36_300)],
        ..RulebookSpec::default()
    };
    let clean = [
        t(30_000, 40_000, dec!(1)), // spans the window without opening or closing in it
        t(36_401, 36_500, dec!(1)),
        t(30_000, 35_999, dec!(1)),
    ];
    assert!(run(spec.clone(), &clean).signals.is_empty());
    let hit = [
        t(30_000, 36_400, dec!(1)), // closes at the end instant
        t(36_000, 50_000, dec!(1)), // opens at the start instant
        t(30_000, 40_000, dec!(1)),
    ];
    let s = run(spec, &hit).first_breach.unwrap();
    assert_eq!(
        (s.kind, s.at, s.value),
        (RuleKind::NewsTrading, time(36_000), dec!(2))
    );
}

#[test]
fn invalid_settings_name_their_field() {
    let field = |spec: RulebookSpec| Rulebook::new(spec).map(|_| ()).map_err(|e| e.field);
    assert_eq!(field(daily(dec!(1))), Err("daily_loss_limit".to_owned()));
    assert_eq!(field(daily(dec!(0))), Err("daily_loss_limit".to_owned()));
    assert_eq!(
        field(max_loss(dec!(0.1), MaxLossMode::Static, true)),
        Err("trailing_lock_at_initial".to_owned())
    );
    assert_eq!(
        field(max_loss(dec!(1.5), MaxLossMode::Trailing, false)),
        Err("max_loss_limit".to_owned())
    );
    let w = NewsWindow {
        start: time(10),
        end: time(10),
    };
    assert_eq!(
        field(RulebookSpec {
            news_blackout: vec![w],
            ..RulebookSpec::default()
        }),
        Err("news_blackout[0].end".to_owned())
    );
    for (spec, name) in [
        (
            RulebookSpec {
                day_offset_minutes: 1440,
                ..RulebookSpec::default()
            },
            "day_offset_minutes",
        ),
        (
            RulebookSpec {
                profit_target: Some(dec!(0)),
                ..RulebookSpec::default()
            },
            "profit_target",
        ),
        (
            RulebookSpec {
                min_trading_days: Some(0),
                ..RulebookSpec::default()
            },
            "min_trading_days",
        ),
        (
            RulebookSpec {
                max_open_trades: Some(0),
                ..RulebookSpec::default()
            },
            "max_open_trades",
        ),
        (
            RulebookSpec {
                max_lot_size: Some(dec!(-1)),
                ..RulebookSpec::default()
            },
            "max_lot_size",
        ),
        (
            RulebookSpec {
                consistency_limit: Some(dec!(1)),
                ..RulebookSpec::default()
            },
            "consistency_limit",
        ),
    ] {
        assert_eq!(field(spec), Err(name.to_owned()));
    }
    let e = Rulebook::new(daily(dec!(2))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid setting `daily_loss_limit`: must be within 0 and 1, both excluded"
    );
}

fn arb_trade() -> impl Strategy<Value = RuleTrade> {
    // Within four days, P&L in cents up to ±3,000.
    (0_i64..4 * DAY, 0_i64..20_000, -300_000_i64..300_000)
        .prop_map(|(open, hold, cents)| t(open, open + hold, Decimal::new(cents, 2)))
}

proptest! {
    /// The daily-loss and trailing max-loss rules restate two metrics: they fire exactly
    /// when the metric is past the limit, and the order of the trades does not matter.
    #[test]
    fn rules_agree_with_the_metrics(
        (trades, shuffled) in prop::collection::vec(arb_trade(), 0..40)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        daily_bp in 1_i64..900,
        max_bp in 1_i64..2_000,
        offset in -1439_i32..1440,
    ) {
        let initial = dec!(10000);
        let spec = RulebookSpec {
            daily_loss_limit: Some(Decimal::new(daily_bp, 4)),
            max_loss_limit: Some(Decimal::new(max_bp, 4)),
            max_loss_mode: MaxLossMode::Trailing,
            day_offset_minutes: offset,
            ..RulebookSpec::default()
        };
        let book = Rulebook::new(spec).unwrap();
        let o = evaluate(&book, &trades, initial).unwrap();
        prop_assert_eq!(&o, &evaluate(&book, &shuffled, initial).unwrap());
        let facts: Vec<TradeFacts> = trades.iter().map(|r| TradeFacts {
            opened_at_ns: r.opened_at_ns,
            closed_at_ns: r.closed_at_ns,
            pnl: r.pnl,
            stop_loss_set: false,
            take_profit_set: false,
        }).collect();
        let config = crate::metrics::MetricsConfig {
            initial_balance: initial,
            day_offset_minutes: offset,
            ..crate::metrics::MetricsConfig::default()
        };
        let m = TradeMetrics::compute_facts(&facts, &config).unwrap();
        let has = |k| o.signals.iter().any(|s| s.kind == k);
        prop_assert_eq!(
            has(RuleKind::DailyLossLimitBreached),
            m.max_daily_loss > Decimal::new(daily_bp, 4) * initial
        );
        prop_assert_eq!(
            has(RuleKind::MaxLossLimitBreached),
            m.max_relative_drawdown > Decimal::new(max_bp, 4)
        );
        // FAILED exactly when a failing signal exists (nothing can pass without a target),
        // and the first breach is the earliest one.
        let failing: Vec<_> = o.signals.iter().filter(|s| s.kind.fails_account()).collect();
        prop_assert_eq!(o.status == ChallengeStatus::Failed, !failing.is_empty());
        if let Some(b) = &o.first_breach {
            prop_assert!(failing.iter().all(|s| s.at >= b.at));
        }
    }
}
