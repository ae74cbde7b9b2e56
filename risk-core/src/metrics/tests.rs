//! Hand-computed examples for every metric and edge case, and batch == incremental.
#![allow(clippy::unwrap_used)]

use super::*;
use chrono::TimeZone;
use proptest::prelude::*;
use rust_decimal_macros::dec;

fn at(secs: i64) -> DateTime<Utc> {
    // 2025-05-05 00:00:00 UTC plus `secs`.
    Utc.timestamp_opt(1_746_403_200 + secs, 0).unwrap()
}

fn trade(id: &str, opened: i64, closed: i64, profit: Decimal) -> ClosedTrade {
    ClosedTrade {
        id: TradeId::new(id),
        account: AccountId::new("1001"),
        symbol: Symbol::new("EURUSD"),
        side: Side::Buy,
        volume: dec!(0.10),
        opened_at: at(opened),
        closed_at: at(closed),
        open_price: dec!(1.1000),
        close_price: dec!(1.1010),
        stop_loss: None,
        take_profit: None,
        profit,
        commission: Decimal::ZERO,
        swap: Decimal::ZERO,
    }
}

fn cfg(initial: Decimal) -> MetricsConfig {
    MetricsConfig {
        initial_balance: initial,
        ..MetricsConfig::default()
    }
}

fn batch(trades: &[ClosedTrade], config: &MetricsConfig) -> TradeMetrics {
    TradeMetrics::compute(trades, config).unwrap()
}

fn incremental(trades: &[ClosedTrade], config: &MetricsConfig) -> TradeMetrics {
    let mut acc = MetricsAccumulator::new(*config).unwrap();
    for t in trades {
        acc.push(t).unwrap();
    }
    acc.metrics().unwrap()
}

/// Both forms, checked equal.
fn both(trades: &[ClosedTrade], config: &MetricsConfig) -> TradeMetrics {
    let b = batch(trades, config);
    let facts: Vec<_> = trades
        .iter()
        .map(|t| TradeFacts::of(t, config.pnl_basis).unwrap())
        .collect();
    assert_eq!(
        b,
        TradeMetrics::compute_facts(&facts, config).unwrap(),
        "facts differ"
    );
    let mut reversed = trades.to_vec();
    reversed.reverse();
    assert_eq!(
        b,
        incremental(trades, config),
        "accumulator differs from batch"
    );
    assert_eq!(
        b,
        incremental(&reversed, config),
        "accumulator (reversed) differs from batch"
    );
    b
}

#[test]
fn no_trades() {
    let m = both(&[], &MetricsConfig::default());
    assert_eq!(m.trades, 0);
    assert_eq!(m.win_ratio, Decimal::ZERO);
    assert_eq!(m.profit_factor, None);
    assert_eq!(m.expectancy, None);
    assert_eq!(m.average_win, None);
    assert_eq!(m.average_holding_seconds, None);
    assert_eq!(m.max_relative_drawdown, Decimal::ZERO);
    assert_eq!(m.final_balance, dec!(100000));
    assert_eq!(m.max_concurrent_trades, 0);
    assert_eq!(m.max_daily_loss_day, None);
}

#[test]
fn one_winning_trade() {
    let m = both(&[trade("1", 0, 90, dec!(25.50))], &MetricsConfig::default());
    assert_eq!((m.trades, m.wins, m.losses, m.break_even), (1, 1, 0, 0));
    assert_eq!(m.win_ratio, Decimal::ONE);
    assert_eq!(m.profit_factor, None, "no loss: profit factor undefined");
    assert_eq!(m.average_win, Some(dec!(25.50)));
    assert_eq!(m.largest_win, Some(dec!(25.50)));
    assert_eq!(m.largest_loss, None);
    assert_eq!(m.expectancy, Some(dec!(25.50)));
    assert_eq!(m.average_holding_seconds, Some(dec!(90)));
    assert_eq!(m.hft_trades, 0, "90 s is not HFT");
    assert_eq!(m.max_concurrent_trades, 1);
    assert_eq!(m.max_relative_drawdown, Decimal::ZERO);
    assert_eq!(m.final_balance, dec!(100025.50));
}

#[test]
fn one_losing_trade() {
    let m = both(&[trade("1", 0, 30, dec!(-1000))], &MetricsConfig::default());
    assert_eq!(m.profit_factor, Some(Decimal::ZERO));
    assert_eq!(m.win_ratio, Decimal::ZERO);
    assert_eq!(
        m.max_relative_drawdown,
        dec!(0.01),
        "1,000 of the 100,000 start"
    );
    assert_eq!(m.max_drawdown, dec!(1000));
    assert_eq!(m.max_consecutive_losses, 1);
    assert_eq!(m.hft_trades, 1);
    assert_eq!(m.max_daily_loss, dec!(1000));
    assert_eq!(m.max_daily_loss_ratio, dec!(0.01));
    assert_eq!(m.max_daily_loss_day, NaiveDate::from_ymd_opt(2025, 5, 5));
}

#[test]
fn all_break_even() {
    let trades: Vec<_> = (0..3)
        .map(|i| trade(&i.to_string(), i * 100, i * 100 + 70, Decimal::ZERO))
        .collect();
    let m = both(&trades, &MetricsConfig::default());
    assert_eq!((m.wins, m.losses, m.break_even), (0, 0, 3));
    assert_eq!(
        m.win_ratio,
        Decimal::ZERO,
        "break-even stays in the denominator"
    );
    assert_eq!(m.profit_factor, None);
    assert_eq!(m.expectancy, Some(Decimal::ZERO));
    assert_eq!(m.max_consecutive_losses, 0);
    assert_eq!(m.max_relative_drawdown, Decimal::ZERO);
    assert_eq!(m.max_daily_loss, Decimal::ZERO);
    assert_eq!(m.max_daily_loss_day, None);
}

#[test]
fn no_losses_profit_factor_is_none() {
    let trades = [trade("1", 0, 100, dec!(10)), trade("2", 200, 300, dec!(0))];
    let m = both(&trades, &MetricsConfig::default());
    assert_eq!(m.profit_factor, None);
    assert_eq!(m.win_ratio, dec!(0.5));
}

/// Balance 1,000 -> 1,100 (peak) -> 900 -> 950 -> 650 -> 1,150.
/// Max drawdown 450 from the 1,100 peak: 450 / 1,100.
#[test]
fn mixed_curve_hand_computed() {
    let mut t1 = trade("1", 0, 100, dec!(101));
    t1.commission = dec!(-1); // net +100
    let t2 = trade("2", 150, 200, dec!(-200));
    let mut t3 = trade("3", 250, 300, dec!(50.5));
    t3.swap = dec!(-0.5); // net +50
    let t4 = trade("4", 350, 400, dec!(-300));
    let t5 = trade("5", 450, 500, dec!(500));
    let m = both(&[t3, t1, t5, t2, t4], &cfg(dec!(1000)));
    assert_eq!((m.trades, m.wins, m.losses), (5, 3, 2));
    assert_eq!(m.win_ratio, dec!(0.6));
    assert_eq!(m.gross_profit, dec!(650));
    assert_eq!(m.gross_loss, dec!(-500));
    assert_eq!(m.net_profit, dec!(150));
    assert_eq!(m.profit_factor, Some(dec!(1.3)));
    assert_eq!(m.average_win, Some(dec!(650) / dec!(3)));
    assert_eq!(m.average_loss, Some(dec!(-250)));
    assert_eq!(m.expectancy, Some(dec!(30)));
    assert_eq!(m.largest_win, Some(dec!(500)));
    assert_eq!(m.largest_loss, Some(dec!(-300)));
    assert_eq!(m.max_consecutive_losses, 1);
    assert_eq!(m.max_drawdown, dec!(450));
    assert_eq!(m.max_relative_drawdown, dec!(450) / dec!(1100));
    assert_eq!(m.final_balance, dec!(1150));
    assert_eq!(
        m.average_holding_seconds,
        Some(dec!(60)),
        "(100 + 4 x 50) / 5"
    );
    assert_eq!(m.hft_trades, 4, "the 100 s trade is not HFT");
    assert_eq!(m.max_concurrent_trades, 1);
    // One day: opened at 1,000, lowest 650.
    assert_eq!(m.max_daily_loss, dec!(350));
    assert_eq!(m.max_daily_loss_ratio, dec!(0.35));
}

#[test]
fn the_start_counts_as_a_peak() {
    // First trade loses: drawdown from the initial balance, not from the first point.
    let trades = [
        trade("1", 0, 100, dec!(-100)),
        trade("2", 200, 300, dec!(-100)),
    ];
    let m = both(&trades, &cfg(dec!(1000)));
    assert_eq!(m.max_relative_drawdown, dec!(0.2));
    assert_eq!(m.max_consecutive_losses, 2);
}

#[test]
fn drawdown_is_capped_at_one() {
    let m = both(&[trade("1", 0, 100, dec!(-150))], &cfg(dec!(100)));
    assert_eq!(m.max_relative_drawdown, Decimal::ONE);
    assert_eq!(m.max_drawdown, dec!(150));
    assert_eq!(m.final_balance, dec!(-50));
}

#[test]
fn identical_timestamps_overlap_and_apply_losses_first() {
    let a = trade("a", 0, 100, dec!(100));
    let b = trade("b", 0, 100, dec!(-100));
    let m = both(&[a, b], &cfg(dec!(1000)));
    assert_eq!(m.max_concurrent_trades, 2);
    // Losses first at the same instant: 1,000 -> 900 -> 1,000, drawdown 10%.
    assert_eq!(m.max_relative_drawdown, dec!(0.1));
    assert_eq!(m.average_holding_seconds, Some(dec!(100)));
}

#[test]
fn close_and_open_at_the_same_instant_do_not_overlap() {
    let trades = [
        trade("1", 0, 100, dec!(1)),
        trade("2", 100, 200, dec!(1)),
        trade("3", 200, 300, dec!(1)),
    ];
    assert_eq!(
        both(&trades, &MetricsConfig::default()).max_concurrent_trades,
        1
    );
    // One more trade spanning them all gives 2; nested ones add up.
    let mut more = trades.to_vec();
    more.push(trade("4", 50, 250, dec!(1)));
    more.push(trade("5", 60, 70, dec!(1)));
    assert_eq!(
        both(&more, &MetricsConfig::default()).max_concurrent_trades,
        3
    );
}

#[test]
fn zero_length_and_reversed_trades_are_never_open() {
    let trades = [
        trade("1", 100, 100, dec!(1)),
        trade("2", 200, 150, dec!(1)),
        trade("3", 0, 500, dec!(1)),
    ];
    let m = both(&trades, &MetricsConfig::default());
    assert_eq!(m.max_concurrent_trades, 1);
    assert_eq!(
        m.hft_trades, 2,
        "0 s and negative holding times are under 60 s"
    );
}

#[test]
fn hft_threshold_is_strict_and_configurable() {
    let mut t = trade("1", 0, 60, dec!(1));
    let mut quick = trade("2", 0, 59, dec!(1));
    quick.closed_at = at(59) + TimeDelta::milliseconds(999);
    let m = both(&[t.clone(), quick.clone()], &MetricsConfig::default());
    assert_eq!(m.hft_trades, 1, "exactly 60 s is not HFT, 59.999 s is");
    assert_eq!(m.hft_ratio, dec!(0.5));
    let ten = MetricsConfig {
        hft_threshold_seconds: 10,
        ..MetricsConfig::default()
    };
    assert_eq!(both(&[t.clone(), quick], &ten).hft_trades, 0);
    t.closed_at = at(9);
    assert_eq!(both(&[t], &ten).hft_trades, 1);
}

#[test]
fn stop_loss_and_take_profit_zero_means_not_set() {
    let mut a = trade("1", 0, 100, dec!(1));
    a.stop_loss = Some(dec!(1.0950));
    a.take_profit = Some(Decimal::ZERO);
    let mut b = trade("2", 0, 100, dec!(1));
    b.stop_loss = Some(Decimal::ZERO);
    b.take_profit = Some(dec!(1.2));
    let c = trade("3", 0, 100, dec!(1));
    let mut d = trade("4", 0, 100, dec!(1));
    d.stop_loss = Some(dec!(1.09));
    let m = both(&[a, b, c, d], &MetricsConfig::default());
    assert_eq!((m.stop_loss_trades, m.take_profit_trades), (2, 1));
    assert_eq!(m.stop_loss_ratio, dec!(0.5));
    assert_eq!(m.take_profit_ratio, dec!(0.25));
}

#[test]
fn losing_streak_is_broken_by_break_even() {
    let p = [
        dec!(-1),
        dec!(-1),
        dec!(0),
        dec!(-1),
        dec!(-1),
        dec!(-1),
        dec!(5),
        dec!(-1),
    ];
    let trades: Vec<_> = p
        .iter()
        .enumerate()
        .map(|(i, &x)| trade(&i.to_string(), i as i64 * 10, i as i64 * 10 + 5, x))
        .collect();
    assert_eq!(
        both(&trades, &MetricsConfig::default()).max_consecutive_losses,
        3
    );
}

#[test]
fn daily_loss_uses_the_day_opening_balance_and_the_offset() {
    let day = 86_400;
    // Day 1: 1,000 -> 700 -> 800 (loss 300, 30%). Day 2 opens at 800: -> 550 (loss 250,
    // 31.25%). The money maximum and the ratio maximum come from different days.
    let trades = [
        trade("1", 0, 3600, dec!(-300)),
        trade("2", 3600, 7200, dec!(100)),
        trade("3", day, day + 60, dec!(-250)),
    ];
    let m = both(&trades, &cfg(dec!(1000)));
    assert_eq!(m.max_daily_loss, dec!(300));
    assert_eq!(m.max_daily_loss_day, NaiveDate::from_ymd_opt(2025, 5, 5));
    assert_eq!(
        m.max_daily_loss_ratio,
        dec!(0.3125),
        "250 / 800 beats 300 / 1000"
    );
    // Two losses either side of midnight UTC: separate UTC days, one day at UTC+2.
    let late = [
        trade("1", day - 7200, day - 1800, dec!(-100)),
        trade("2", day, day + 1800, dec!(-100)),
    ];
    assert_eq!(both(&late, &cfg(dec!(1000))).max_daily_loss, dec!(100));
    let plus2 = MetricsConfig {
        day_offset_minutes: 120,
        ..cfg(dec!(1000))
    };
    let m = both(&late, &plus2);
    assert_eq!(m.max_daily_loss, dec!(200));
    assert_eq!(m.max_daily_loss_day, NaiveDate::from_ymd_opt(2025, 5, 6));
}

#[test]
fn config_validation() {
    assert_eq!(MetricsConfig::default().validate(), Ok(()));
    assert_eq!(MetricsConfig::default().initial_balance, dec!(100000));
    assert_eq!(MetricsConfig::default().hft_threshold_seconds, 60);
    let bad = [
        MetricsConfig {
            initial_balance: Decimal::ZERO,
            ..MetricsConfig::default()
        },
        MetricsConfig {
            hft_threshold_seconds: 0,
            ..MetricsConfig::default()
        },
        MetricsConfig {
            day_offset_minutes: 1440,
            ..MetricsConfig::default()
        },
    ];
    for c in bad {
        assert!(c.validate().is_err(), "{c:?}");
        assert!(TradeMetrics::compute(&[], &c).is_err());
        assert!(MetricsAccumulator::new(c).is_err());
    }
}

#[test]
fn overflow_is_an_error_and_leaves_the_accumulator_unchanged() {
    let mut acc = MetricsAccumulator::new(MetricsConfig::default()).unwrap();
    acc.push(&trade("1", 0, 10, Decimal::MAX)).unwrap();
    let before = acc.clone();
    assert!(acc.push(&trade("2", 0, 10, Decimal::MAX)).is_err());
    assert_eq!(acc, before);
    assert!(TradeMetrics::compute(
        &[
            trade("1", 0, 10, Decimal::MAX),
            trade("2", 0, 10, Decimal::MAX)
        ],
        &MetricsConfig::default()
    )
    .is_err());
}

#[test]
fn accumulator_can_be_read_between_pushes() {
    let trades: Vec<_> = (0..20)
        .map(|i| {
            trade(
                &i.to_string(),
                (i * 37) % 200,
                (i * 37) % 200 + 50 + i,
                Decimal::from(i - 10),
            )
        })
        .collect();
    let mut acc = MetricsAccumulator::new(MetricsConfig::default()).unwrap();
    for (i, t) in trades.iter().enumerate() {
        acc.push(t).unwrap();
        assert_eq!(
            acc.metrics().unwrap(),
            batch(&trades[..=i], &MetricsConfig::default())
        );
    }
    assert_eq!(acc.len(), 20);
}

fn arb_trade() -> impl Strategy<Value = ClosedTrade> {
    (
        0_i64..400,
        0_i64..200,
        -500_i64..500,
        -3_i64..=0,
        prop::option::of(0_i64..3),
        prop::option::of(0_i64..3),
    )
        .prop_map(|(open, held, cents, fee, sl, tp)| {
            // Coarse times and P&L so that ties are frequent.
            let mut t = trade(
                "x",
                open * 30,
                open * 30 + held,
                Decimal::new(cents * 100, 2),
            );
            t.commission = Decimal::new(fee * 50, 2);
            t.stop_loss = sl.map(Decimal::from);
            t.take_profit = tp.map(Decimal::from);
            t
        })
}

proptest! {
    #[test]
    fn batch_equals_incremental_in_any_order(
        (trades, shuffled) in prop::collection::vec(arb_trade(), 0..60)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        initial in 1_i64..5_000,
        hft in 1_u32..120,
        offset in -1439_i32..1440,
        split in 0_usize..60,
    ) {
        let config = MetricsConfig {
            initial_balance: Decimal::from(initial),
            hft_threshold_seconds: hft,
            day_offset_minutes: offset,
            ..MetricsConfig::default()
        };
        let b = TradeMetrics::compute(&trades, &config).unwrap();
        let mut acc = MetricsAccumulator::new(config).unwrap();
        let split = split.min(shuffled.len());
        for t in &shuffled[..split] {
            acc.push(t).unwrap();
        }
        // Reading midway must not disturb the result.
        let _ = acc.metrics().unwrap();
        for t in &shuffled[split..] {
            acc.push(t).unwrap();
        }
        prop_assert_eq!(&acc.metrics().unwrap(), &b);
        prop_assert_eq!(b.wins + b.losses + b.break_even, b.trades);
        prop_assert!(b.max_relative_drawdown >= Decimal::ZERO && b.max_relative_drawdown <= Decimal::ONE);
        prop_assert!(b.max_concurrent_trades <= b.trades);
    }
}

/// A deliberately naive reference for the order-dependent metrics, to check the fast
/// passes against: O(n^2) concurrency, a division at every point of the curve.
fn reference(
    trades: &[ClosedTrade],
    config: &MetricsConfig,
) -> (Decimal, Decimal, u64, Decimal, u64) {
    let mut curve: Vec<_> = trades
        .iter()
        .map(|t| (t.closed_at, t.net_pnl().unwrap(), t.opened_at))
        .collect();
    curve.sort();
    let (mut balance, mut peak) = (config.initial_balance, config.initial_balance);
    let (mut rel, mut dd, mut streak, mut longest) = (Decimal::ZERO, Decimal::ZERO, 0, 0);
    let mut days: Vec<(i64, Decimal, Decimal)> = Vec::new(); // (day, opening, low)
    for (closed, net, _) in &curve {
        let day =
            (closed.timestamp() + i64::from(config.day_offset_minutes) * 60).div_euclid(86_400);
        if days.last().map(|d| d.0) != Some(day) {
            days.push((day, balance, balance));
        }
        balance += net;
        if let Some(d) = days.last_mut() {
            d.2 = d.2.min(balance);
        }
        peak = peak.max(balance);
        dd = dd.max(peak - balance);
        rel = rel.max(((peak - balance) / peak).min(Decimal::ONE));
        streak = if *net < Decimal::ZERO { streak + 1 } else { 0 };
        longest = longest.max(streak);
    }
    let daily = days.iter().map(|d| d.1 - d.2).max().unwrap_or_default();
    let concurrent = trades
        .iter()
        .map(|t| {
            trades
                .iter()
                .filter(|u| u.opened_at <= t.opened_at && t.opened_at < u.closed_at)
                .count() as u64
        })
        .max()
        .unwrap_or(0);
    (rel, dd, concurrent, daily, longest)
}

proptest! {
    #[test]
    fn fast_passes_match_a_naive_reference(
        trades in prop::collection::vec(arb_trade(), 0..50),
        initial in 1_i64..5_000,
        offset in -1439_i32..1440,
    ) {
        let config = MetricsConfig {
            initial_balance: Decimal::from(initial),
            day_offset_minutes: offset,
            ..MetricsConfig::default()
        };
        let m = TradeMetrics::compute(&trades, &config).unwrap();
        let (rel, dd, concurrent, daily, longest) = reference(&trades, &config);
        prop_assert_eq!(m.max_relative_drawdown, rel);
        prop_assert_eq!(m.max_drawdown, dd);
        prop_assert_eq!(m.max_concurrent_trades, concurrent);
        prop_assert_eq!(m.max_daily_loss, daily);
        prop_assert_eq!(m.max_consecutive_losses, longest);
        // In an export's order (by close time, so the closes are one ascending run and the
        // opens nearly one), which the batch's run-adaptive sort takes its short way on.
        let mut by_close = trades.clone();
        by_close.sort_by_key(|t| t.closed_at);
        prop_assert_eq!(&TradeMetrics::compute(&by_close, &config).unwrap(), &m);
        by_close.sort_by_key(|t| t.opened_at);
        prop_assert_eq!(&TradeMetrics::compute(&by_close, &config).unwrap(), &m);
    }
}

#[test]
fn times_outside_the_nanosecond_range_are_an_error_not_a_wrap() {
    // The last representable instant works; a second later does not.
    let last = DateTime::from_timestamp_nanos(i64::MAX);
    let mut edge = trade("1", 0, 10, dec!(1));
    edge.opened_at = last - TimeDelta::seconds(10);
    edge.closed_at = last;
    assert_eq!(both(&[edge.clone()], &MetricsConfig::default()).trades, 1);
    let mut late = edge.clone();
    late.closed_at = last + TimeDelta::seconds(1);
    let expected = MetricsError::TimeOutOfRange { at: late.closed_at };
    assert_eq!(
        TradeMetrics::compute(&[edge.clone(), late.clone()], &MetricsConfig::default()),
        Err(expected.clone())
    );
    let mut acc = MetricsAccumulator::new(MetricsConfig::default()).unwrap();
    acc.push(&edge).unwrap();
    assert_eq!(acc.push(&late), Err(expected));
    assert_eq!(
        acc.len(),
        1,
        "a refused trade leaves the accumulator unchanged"
    );
    let mut early = trade("3", 0, 10, dec!(1));
    early.opened_at = DateTime::from_timestamp_nanos(i64::MIN) - TimeDelta::seconds(1);
    assert!(matches!(
        TradeFacts::of(&early, PnlBasis::Net),
        Err(MetricsError::TimeOutOfRange { .. })
    ));
    assert!(MetricsError::TimeOutOfRange { at: late.closed_at }
        .to_string()
        .contains("2262-04-11"));
}

#[test]
fn facts_are_compact() {
    assert_eq!(std::mem::size_of::<TradeFacts>(), 40);
}

#[test]
fn net_pnl_is_exact_or_an_error_never_rounded() {
    let mut t = trade("1", 0, 10, dec!(10000000000));
    t.commission = dec!(-0.0000000000000000000001); // -1e-22: 33 digits in all
    let expected = MetricsError::Arithmetic(ArithmeticError { what: "net P&L" });
    assert_eq!(
        TradeMetrics::compute(&[t.clone()], &MetricsConfig::default()),
        Err(expected)
    );
    t.commission = dec!(-0.25);
    t.swap = dec!(0.125);
    assert_eq!(t.net_pnl().unwrap().to_string(), "9999999999.875");
}

/// `fields` names each field once, in order, with its value (`None` where undefined).
#[test]
fn fields_list_every_metric_by_name() {
    let m = both(&[trade("1", 0, 30, dec!(-1000))], &MetricsConfig::default());
    let fields = m.fields();
    let names = TradeMetrics::field_names();
    assert_eq!(fields.map(|(name, _)| name), names);
    let unique: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(unique.len(), TradeMetrics::FIELD_COUNT);
    let get = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    assert_eq!(get("trades"), Some(Some(TradeValue::Count(1))));
    assert_eq!(
        get("gross_loss"),
        Some(Some(TradeValue::Decimal(dec!(-1000))))
    );
    assert_eq!(get("average_win"), Some(None));
    assert_eq!(
        get("max_daily_loss_day"),
        Some(m.max_daily_loss_day.map(TradeValue::Day))
    );
    assert_eq!(names.first(), Some(&"trades"));
    assert_eq!(names.last(), Some(&"max_daily_loss_day"));
}

/// One worked example where the two P&L bases differ (initial balance 1,000):
///
/// | trade | profit | commission | swap | net | gross |
/// |-------|--------|------------|------|-----|-------|
/// | 1     | 100    | -10        | -5   | 85  | 100   |
/// | 2     | -50    | -10        | 0    | -60 | -50   |
/// | 3     | 5      | -7         | 0    | -2  | 5     |
///
/// Net: one win, two losses; profit factor 85 / 62; the curve 1,000 -> 1,085 -> 1,025 ->
/// 1,023 draws down 62 from the 1,085 peak. Gross: two wins, one loss; profit factor
/// 105 / 50 = 2.1; the curve 1,000 -> 1,100 -> 1,050 -> 1,055 draws down 50 from 1,100.
#[test]
fn net_and_gross_pnl_bases_worked_example() {
    let mut t1 = trade("1", 0, 30, dec!(100));
    t1.commission = dec!(-10);
    t1.swap = dec!(-5);
    let mut t2 = trade("2", 60, 600, dec!(-50));
    t2.commission = dec!(-10);
    let mut t3 = trade("3", 700, 1300, dec!(5));
    t3.commission = dec!(-7);
    let trades = [t1, t2, t3];
    let net = both(&trades, &cfg(dec!(1000)));
    let gross_cfg = MetricsConfig {
        pnl_basis: PnlBasis::Gross,
        ..cfg(dec!(1000))
    };
    let gross = both(&trades, &gross_cfg);
    assert_eq!((net.wins, net.losses), (1, 2));
    assert_eq!((gross.wins, gross.losses), (2, 1));
    assert_eq!(net.win_ratio, dec!(1) / dec!(3));
    assert_eq!(gross.win_ratio, dec!(2) / dec!(3));
    assert_eq!(
        (net.gross_profit, net.gross_loss, net.net_profit),
        (dec!(85), dec!(-62), dec!(23))
    );
    assert_eq!(
        (gross.gross_profit, gross.gross_loss, gross.net_profit),
        (dec!(105), dec!(-50), dec!(55))
    );
    assert_eq!(net.profit_factor, Some(dec!(85) / dec!(62)));
    assert_eq!(gross.profit_factor, Some(dec!(2.1)));
    assert_eq!(net.max_drawdown, dec!(62));
    assert_eq!(net.max_relative_drawdown, dec!(62) / dec!(1085));
    assert_eq!(gross.max_drawdown, dec!(50));
    assert_eq!(gross.max_relative_drawdown, dec!(50) / dec!(1100));
    assert_eq!(
        (net.final_balance, gross.final_balance),
        (dec!(1023), dec!(1055))
    );
    // The basis does not touch what is not money.
    assert_eq!(net.hft_trades, gross.hft_trades);
    assert_eq!(net.max_concurrent_trades, gross.max_concurrent_trades);
    // The facts and the rulebook's trades carry the P&L of the basis asked for.
    assert_eq!(trades[0].pnl(PnlBasis::Net).unwrap(), dec!(85));
    assert_eq!(trades[0].pnl(PnlBasis::Gross).unwrap(), dec!(100));
    assert_eq!(
        TradeFacts::of(&trades[2], PnlBasis::Gross).unwrap().pnl,
        dec!(5)
    );
    let rule = crate::rulebook::RuleTrade::of(&trades[2], 0, PnlBasis::Net).unwrap();
    assert_eq!(rule.pnl, dec!(-2));
}

#[test]
fn pnl_basis_names() {
    assert_eq!(PnlBasis::default(), PnlBasis::Net);
    assert_eq!("gross".parse::<PnlBasis>(), Ok(PnlBasis::Gross));
    assert_eq!("NET".parse::<PnlBasis>(), Ok(PnlBasis::Net));
    let e = "profit".parse::<PnlBasis>().unwrap_err();
    assert!(e.to_string().contains("`profit`"), "{e}");
    assert!(e.to_string().contains("net or gross"), "{e}");
    assert_eq!(PnlBasis::Gross.to_string(), "gross");
}

/// Window of 2 over three trades (initial balance 1,000) arriving out of order:
/// A closes at 100 s (-500), B at 300 s (+100), C at 400 s (-50, open since 50 s).
/// The window is B and C; its curve starts at 1,000 again: 1,100, then 1,050 (A's loss
/// before the window is forgotten), so the drawdown is 50 / 1,100, not A's 50 %.
#[test]
fn window_keeps_the_latest_trades_and_restarts_the_curve() {
    let a = trade("A", 0, 100, dec!(-500));
    let b = trade("B", 200, 300, dec!(100));
    let c = trade("C", 50, 400, dec!(-50));
    let whole = both(&[a.clone(), b.clone(), c.clone()], &cfg(dec!(1000)));
    assert_eq!(whole.max_relative_drawdown, dec!(0.5));
    let two = MetricsConfig {
        window_size: NonZeroU32::new(2),
        ..cfg(dec!(1000))
    };
    let m = both(&[c.clone(), a.clone(), b.clone()], &two);
    assert_eq!(m, both(&[b.clone(), c.clone()], &cfg(dec!(1000))));
    assert_eq!((m.trades, m.wins, m.losses), (2, 1, 1));
    assert_eq!(m.profit_factor, Some(dec!(2)));
    assert_eq!(m.max_relative_drawdown, dec!(50) / dec!(1100));
    assert_eq!(m.final_balance, dec!(1050));
    assert_eq!(m.max_concurrent_trades, 2, "B inside C");
    // A window larger than the history is the whole history.
    let ten = MetricsConfig {
        window_size: NonZeroU32::new(10),
        ..cfg(dec!(1000))
    };
    assert_eq!(both(&[a.clone(), b.clone(), c.clone()], &ten), whole);
    // The accumulator counts every push and knows the latest close of all.
    let mut acc = MetricsAccumulator::new(two).unwrap();
    assert_eq!(acc.last_closed_at(), None);
    for t in [&c, &a, &b] {
        acc.push(t).unwrap();
    }
    assert_eq!(acc.len(), 3);
    assert_eq!(acc.last_closed_at(), Some(at(400)));
    // A late trade older than the whole window changes nothing.
    let before = acc.metrics().unwrap();
    acc.push(&trade("old", 0, 10, dec!(-900))).unwrap();
    assert_eq!(acc.metrics().unwrap(), before);
    assert_eq!(acc.len(), 4);
}

/// The N latest of `trades` picked the plain way: sort everything by the close-time order
/// (close, P&L, open, stop-loss, take-profit), keep the tail.
fn last_n_by_sorting(trades: &[ClosedTrade], n: usize, basis: PnlBasis) -> Vec<ClosedTrade> {
    let mut sorted = trades.to_vec();
    sorted.sort_by_key(|t| {
        (
            t.closed_at,
            t.pnl(basis).unwrap(),
            t.opened_at,
            t.has_stop_loss(),
            t.has_take_profit(),
        )
    });
    sorted.split_off(sorted.len().saturating_sub(n))
}

proptest! {
    /// The windowed accumulator, fed a shuffled session and read midway, equals the batch
    /// calculator over the last N trades picked by sorting (no window set), and the
    /// batch calculator with the window set.
    #[test]
    fn windowed_accumulator_equals_batch_over_the_last_n(
        (trades, shuffled) in prop::collection::vec(arb_trade(), 0..80)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        window in 1_u32..40,
        initial in 1_i64..5_000,
        gross in any::<bool>(),
        split in 0_usize..80,
    ) {
        let basis = if gross { PnlBasis::Gross } else { PnlBasis::Net };
        let whole = MetricsConfig {
            initial_balance: Decimal::from(initial),
            pnl_basis: basis,
            ..MetricsConfig::default()
        };
        let windowed = MetricsConfig {
            window_size: NonZeroU32::new(window),
            ..whole
        };
        let last = last_n_by_sorting(&trades, window as usize, basis);
        let expected = TradeMetrics::compute(&last, &whole).unwrap();
        prop_assert_eq!(&TradeMetrics::compute(&shuffled, &windowed).unwrap(), &expected);
        let mut acc = MetricsAccumulator::new(windowed).unwrap();
        let split = split.min(shuffled.len());
        for t in &shuffled[..split] {
            acc.push(t).unwrap();
        }
        let _ = acc.metrics().unwrap();
        for t in &shuffled[split..] {
            acc.push(t).unwrap();
        }
        prop_assert_eq!(&acc.metrics().unwrap(), &expected);
        prop_assert_eq!(acc.len(), trades.len() as u64);
        prop_assert_eq!(acc.last_closed_at(), trades.iter().map(|t| t.closed_at).max());
        prop_assert_eq!(expected.trades, trades.len().min(window as usize) as u64);
    }
}
