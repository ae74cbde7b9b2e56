//! Hand-computed examples for every detector, with their boundaries, and the sweeps
//! checked against pairwise references.

use super::*;
use crate::rulebook::RuleKind;
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use rust_decimal_macros::dec;

const START: i64 = 1_746_403_200;
const NS: i64 = 1_000_000_000;

fn time(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos((START + secs) * NS)
}

fn t(open: i64, close: i64, side: Side, symbol: u32) -> RuleTrade {
    RuleTrade {
        opened_at_ns: (START + open) * NS,
        closed_at_ns: (START + close) * NS,
        pnl: dec!(1),
        lots: dec!(1),
        side,
        symbol,
    }
}

#[derive(Debug, Clone)]
struct Acc {
    id: AccountId,
    user: String,
    group: Option<String>,
    trades: Vec<RuleTrade>,
}

fn acc(id: &str, user: &str, group: Option<&str>, trades: Vec<RuleTrade>) -> Acc {
    Acc {
        id: AccountId::new(id),
        user: user.to_owned(),
        group: group.map(str::to_owned),
        trades,
    }
}

fn run(accounts: &[Acc], config: &DetectorConfig) -> Vec<Vec<RuleSignal>> {
    let view: Vec<DetectAccount<'_>> = accounts
        .iter()
        .map(|a| DetectAccount {
            account: &a.id,
            user: &a.user,
            group: a.group.as_deref(),
            trades: &a.trades,
        })
        .collect();
    detect(&view, config).unwrap()
}

fn only(kind: RuleKind) -> impl Fn(&Vec<RuleSignal>) -> Vec<&RuleSignal> {
    move |list| list.iter().filter(|s| s.kind == kind).collect()
}

fn cfg() -> DetectorConfig {
    DetectorConfig {
        hedging_min_trades: 1,
        ..DetectorConfig::default()
    }
}

fn names(s: &RuleSignal) -> Vec<&str> {
    s.related.iter().map(AccountId::as_str).collect()
}

#[test]
fn hedging_between_accounts_of_one_user() {
    let accounts = [
        acc("A1", "u", None, vec![t(0, 100, Side::Buy, 7)]),
        acc("A2", "u", None, vec![t(50, 150, Side::Sell, 7)]),
        // Another user: never linked to u.
        acc("B1", "v", None, vec![t(60, 150, Side::Sell, 7)]),
    ];
    let out = run(&accounts, &cfg());
    let hedge = only(RuleKind::CrossAccountHedging);
    let a1 = hedge(&out[0]);
    assert_eq!(a1.len(), 1);
    assert_eq!(
        (a1[0].at, a1[0].value, a1[0].limit),
        (time(50), dec!(1), dec!(1))
    );
    assert_eq!(names(a1[0]), ["A2"]);
    assert_eq!(names(hedge(&out[1])[0]), ["A1"]);
    assert!(out[2].is_empty());
}

#[test]
fn hedging_boundaries() {
    let hedge = only(RuleKind::CrossAccountHedging);
    // Touching intervals ([0,100) and [100,200)) do not overlap; another symbol, the same
    // direction and the same account are not hedges.
    let accounts = [
        acc(
            "A1",
            "u",
            None,
            vec![t(0, 100, Side::Buy, 7), t(0, 100, Side::Sell, 7)],
        ),
        acc(
            "A2",
            "u",
            None,
            vec![
                t(100, 200, Side::Sell, 7),
                t(0, 100, Side::Sell, 8),
                t(10, 90, Side::Buy, 7),
            ],
        ),
    ];
    let out = run(&accounts, &cfg());
    // Only A2's buy [10,90) against A1's sell [0,100).
    let a2 = hedge(&out[1]);
    assert_eq!((a2[0].value, a2[0].at), (dec!(1), time(10)));
    assert_eq!(hedge(&out[0])[0].value, dec!(1));
}

#[test]
fn hedging_through_a_shared_group_needs_n_trades() {
    let three = |side| {
        (0..3)
            .map(|k| t(k * 1000, k * 1000 + 500, side, 1))
            .collect()
    };
    let accounts = [
        acc("A", "u1", Some("g"), three(Side::Buy)),
        acc("B", "u2", Some("g"), three(Side::Sell)),
        acc("C", "u3", None, three(Side::Sell)),
    ];
    let config = DetectorConfig::default(); // N = 3
    let out = run(&accounts, &config);
    let hedge = only(RuleKind::CrossAccountHedging);
    let a = hedge(&out[0]);
    assert_eq!(
        (a[0].value, a[0].limit, a[0].at),
        (dec!(3), dec!(3), time(2000))
    );
    assert_eq!(names(a[0]), ["B"]);
    assert!(hedge(&out[2]).is_empty(), "C is in no group");
    let fewer = [
        acc("A", "u1", Some("g"), three(Side::Buy)),
        acc(
            "B",
            "u2",
            Some("g"),
            vec![t(0, 500, Side::Sell, 1), t(1000, 1500, Side::Sell, 1)],
        ),
    ];
    assert!(
        run(&fewer, &config).iter().all(|s| hedge(s).is_empty()),
        "2 < 3"
    );
}

fn five(offset: i64, side: Side) -> Vec<RuleTrade> {
    (0..5)
        .map(|k| t(k * 3600 + offset, k * 3600 + offset + 600, side, 3))
        .collect()
}

#[test]
fn copy_trading_within_the_window_exactly() {
    let copy = only(RuleKind::CopyTrading);
    // 30 s apart with a 30 s window: copies (the window is inclusive); 31 s: not.
    let ring = [
        acc("C1", "u1", None, five(0, Side::Buy)),
        acc("C2", "u2", None, five(30, Side::Buy)),
        acc("C3", "u3", None, five(61, Side::Buy)),
    ];
    let thirty = DetectorConfig {
        copy_window_seconds: 30,
        ..DetectorConfig::default()
    };
    let out = run(&ring, &thirty);
    let c1 = copy(&out[0]);
    assert_eq!((c1[0].value, c1[0].limit), (dec!(1), dec!(0.5)));
    // The fifth copy is the first moment with 5 copies.
    assert_eq!(c1[0].at, time(4 * 3600));
    assert_eq!(names(c1[0]), ["C2"]);
    assert_eq!(names(copy(&out[1])[0]), ["C1"], "C3 opens 31 s after C2");
    assert!(copy(&out[2]).is_empty());
}

#[test]
fn copy_trading_needs_other_users_the_same_direction_and_the_share() {
    let copy = only(RuleKind::CopyTrading);
    let same_user = [
        acc("C1", "u", None, five(0, Side::Buy)),
        acc("C2", "u", None, five(10, Side::Buy)),
        acc("C3", "w", None, five(10, Side::Sell)),
    ];
    assert!(run(&same_user, &DetectorConfig::default())
        .iter()
        .all(|s| copy(s).is_empty()));
    // C1 has 10 trades, 5 of them copied by C2: exactly the 50 % share fires; with
    // copy_min_share 0.6 it does not.
    let mut many = five(0, Side::Buy);
    many.extend(five(100_000, Side::Sell));
    let half = [
        acc("C1", "u1", None, many),
        acc("C2", "u2", None, five(5, Side::Buy)),
    ];
    let out = run(&half, &DetectorConfig::default());
    assert_eq!(copy(&out[0])[0].value, dec!(0.5));
    let strict = DetectorConfig {
        copy_min_share: dec!(0.6),
        ..DetectorConfig::default()
    };
    let out = run(&half, &strict);
    assert!(copy(&out[0]).is_empty());
    assert_eq!(copy(&out[1])[0].value, dec!(1));
}

fn lossy(open: i64, close: i64, lots: Decimal, net: Decimal) -> RuleTrade {
    RuleTrade {
        lots,
        pnl: net,
        ..t(open, close, Side::Buy, 0)
    }
}

#[test]
fn martingale_runs_of_raised_lots_after_losses() {
    let m = only(RuleKind::Martingale);
    let doubling = vec![
        lossy(0, 10, dec!(1), dec!(-10)),
        lossy(20, 30, dec!(2), dec!(-20)),
        lossy(40, 50, dec!(4), dec!(-40)),
        lossy(60, 70, dec!(8), dec!(200)),
    ];
    let out = run(
        &[acc("M", "u", None, doubling.clone())],
        &DetectorConfig::default(),
    );
    let s = m(&out[0]);
    assert_eq!(
        (s[0].at, s[0].value, s[0].limit),
        (time(60), dec!(3), dec!(3))
    );
    assert!(s[0].related.is_empty());
    // A win in the middle breaks the run.
    let mut broken = doubling.clone();
    broken[1].pnl = dec!(5);
    assert!(run(&[acc("M", "u", None, broken)], &DetectorConfig::default())[0].is_empty());
    // A raise opened before the loss closed is not a reaction to it.
    let mut early = doubling.clone();
    early[2].opened_at_ns = early[1].closed_at_ns - NS;
    assert!(run(&[acc("M", "u", None, early)], &DetectorConfig::default())[0].is_empty());
    // An equal lot is not a raise.
    let mut flat = doubling;
    flat[3].lots = dec!(4);
    assert!(run(&[acc("M", "u", None, flat)], &DetectorConfig::default())[0].is_empty());
}

#[test]
fn disabled_and_invalid_configs() {
    let accounts = [
        acc("A1", "u", None, vec![t(0, 100, Side::Buy, 7)]),
        acc("A2", "u", None, vec![t(50, 150, Side::Sell, 7)]),
    ];
    let off = DetectorConfig {
        enabled: false,
        ..cfg()
    };
    assert!(run(&accounts, &off).iter().all(Vec::is_empty));
    for (config, field) in [
        (
            DetectorConfig {
                hedging_min_trades: 0,
                ..cfg()
            },
            "hedging_min_trades",
        ),
        (
            DetectorConfig {
                copy_min_share: dec!(0),
                ..cfg()
            },
            "copy_min_share",
        ),
        (
            DetectorConfig {
                copy_min_share: dec!(1.1),
                ..cfg()
            },
            "copy_min_share",
        ),
        (
            DetectorConfig {
                copy_min_trades: 0,
                ..cfg()
            },
            "copy_min_trades",
        ),
        (
            DetectorConfig {
                martingale_min_run: 0,
                ..cfg()
            },
            "martingale_min_run",
        ),
    ] {
        assert_eq!(
            config.validate().map_err(|e| e.field),
            Err(field.to_owned())
        );
    }
}

/// Pairwise references: the number of hedged trades per account, and the most of an
/// account's trades copied by one partner, by comparing every pair.
fn reference(accounts: &[Acc], window_s: i64) -> (Vec<usize>, Vec<usize>) {
    let group_link =
        |a: &Acc, b: &Acc| a.user == b.user || (a.group.is_some() && a.group == b.group);
    // Linked is transitive over users and groups: close it by repeated passes.
    let n = accounts.len();
    let mut linked = vec![vec![false; n]; n];
    for i in 0..n {
        for j in 0..n {
            linked[i][j] = group_link(&accounts[i], &accounts[j]);
        }
    }
    for k in 0..n {
        for i in 0..n {
            for j in 0..n {
                if linked[i][k] && linked[k][j] {
                    linked[i][j] = true;
                }
            }
        }
    }
    let mut hedged = vec![0; n];
    // Per account, the most of its trades copied by one partner.
    let mut copied = vec![0; n];
    for (i, a) in accounts.iter().enumerate() {
        let mut by_partner = vec![0; n];
        for x in &a.trades {
            let mut h = false;
            for (j, b) in accounts.iter().enumerate() {
                if i == j {
                    continue;
                }
                let mut c = false;
                for y in &b.trades {
                    if x.symbol != y.symbol {
                        continue;
                    }
                    if linked[i][j]
                        && x.side != y.side
                        && x.closed_at_ns > x.opened_at_ns
                        && y.closed_at_ns > y.opened_at_ns
                        && x.opened_at_ns < y.closed_at_ns
                        && y.opened_at_ns < x.closed_at_ns
                    {
                        h = true;
                    }
                    if a.user != b.user
                        && x.side == y.side
                        && (x.opened_at_ns - y.opened_at_ns).abs() <= window_s * NS
                    {
                        c = true;
                    }
                }
                by_partner[j] += usize::from(c);
            }
            hedged[i] += usize::from(h);
        }
        copied[i] = by_partner.into_iter().max().unwrap_or(0);
    }
    (hedged, copied)
}

fn arb_accounts() -> impl Strategy<Value = Vec<Acc>> {
    let trade = (0_i64..600, 0_i64..200, any::<bool>(), 0_u32..2)
        .prop_map(|(o, h, buy, sym)| t(o, o + h, if buy { Side::Buy } else { Side::Sell }, sym));
    prop::collection::vec(
        (
            0_u8..4,
            prop::option::of(0_u8..2),
            prop::collection::vec(trade, 0..6),
        ),
        0..7,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (u, g, trades))| Acc {
                id: AccountId::new(&format!("A{i}")),
                user: format!("u{u}"),
                group: g.map(|g| format!("g{g}")),
                trades,
            })
            .collect()
    })
}

proptest! {
    /// The sweeps count what a pairwise comparison counts (thresholds of 1 so that every
    /// account with a hedged or copied trade is reported with its count).
    #[test]
    fn sweeps_equal_pairwise_references(accounts in arb_accounts(), window in 0_i64..60) {
        let config = DetectorConfig {
            hedging_min_trades: 1,
            copy_min_trades: 1,
            copy_min_share: Decimal::new(1, 6),
            copy_window_seconds: u32::try_from(window).unwrap(),
            ..DetectorConfig::default()
        };
        let out = run(&accounts, &config);
        let (hedged, copied) = reference(&accounts, window);
        for (i, signals) in out.iter().enumerate() {
            let h = signals.iter().find(|s| s.kind == RuleKind::CrossAccountHedging);
            prop_assert_eq!(h.map(|s| s.value), (hedged[i] > 0).then(|| Decimal::from(hedged[i])), "hedging of A{}", i);
            let c = signals.iter().find(|s| s.kind == RuleKind::CopyTrading);
            let share = (copied[i] > 0).then(|| Decimal::from(copied[i]) / Decimal::from(accounts[i].trades.len()));
            prop_assert_eq!(c.map(|s| s.value), share, "copying of A{}", i);
        }
    }
}

fn view(accounts: &[Acc]) -> Vec<DetectAccount<'_>> {
    accounts
        .iter()
        .map(|a| DetectAccount {
            account: &a.id,
            user: &a.user,
            group: a.group.as_deref(),
            trades: &a.trades,
        })
        .collect()
}

proptest! {
    /// What an incremental caller (the risk-signal service) does gives what the whole
    /// sweeps give: an index grown by inserts equals one built at once; the accounts whose
    /// `COPY_TRADING` changed when trades were added are among the accounts that got
    /// trades and those `near` the new trades; `copy_trading_of` any accounts equals the
    /// whole detector's lists for them; hedging rerun on whole link clusters equals it too.
    #[test]
    fn partial_reruns_equal_the_whole_sweeps(
        accounts in arb_accounts(),
        window in 0_i64..60,
        split in 0_usize..6,
        pick in any::<u64>(),
    ) {
        let config = DetectorConfig {
            hedging_min_trades: 1,
            copy_min_trades: 2,
            copy_min_share: Decimal::new(3, 1),
            copy_window_seconds: u32::try_from(window).unwrap(),
            ..DetectorConfig::default()
        };
        // Each account's first `split` trades are held before; the rest arrive after.
        let before: Vec<Acc> = accounts
            .iter()
            .map(|a| Acc { trades: a.trades.iter().take(split).copied().collect(), ..a.clone() })
            .collect();
        let all = view(&accounts);
        let earlier = view(&before);
        let mut index = OpenIndex::new(&earlier);
        let added: Vec<(u32, &RuleTrade)> = accounts
            .iter()
            .enumerate()
            .flat_map(|(i, a)| a.trades.iter().skip(split).map(move |t| (i as u32, t)))
            .collect();
        index.insert(added.iter().copied());
        prop_assert_eq!(&index, &OpenIndex::new(&all));

        let whole = detect_only(&all, &config, Detector::CopyTrading).unwrap();
        let old = detect_only(&earlier, &config, Detector::CopyTrading).unwrap();
        let mut affected: Vec<usize> = Vec::new();
        for &(a, t) in &added {
            affected.push(a as usize);
            affected.extend(index.near(t, &config).map(|b| b as usize));
        }
        for (i, (new, old)) in whole.iter().zip(&old).enumerate() {
            if new != old {
                prop_assert!(affected.contains(&i), "A{} changed but was not found", i);
            }
        }
        let targets: Vec<usize> = (0..accounts.len()).filter(|i| (pick >> i) & 1 == 1).collect();
        let some = copy_trading_of(&all, &index, &config, &targets).unwrap();
        prop_assert_eq!(some.len(), targets.len());
        for (list, &i) in some.iter().zip(&targets) {
            prop_assert_eq!(list, &whole[i], "copying of A{}", i);
        }
        // A stale index is rebuilt, not trusted.
        let stale = copy_trading_of(&all, &OpenIndex::new(&earlier), &config, &targets).unwrap();
        prop_assert_eq!(&stale, &some);

        let clusters = link_clusters(&all);
        let hedged = detect_only(&all, &config, Detector::Hedging).unwrap();
        for c in clusters.iter().collect::<std::collections::BTreeSet<_>>() {
            let members: Vec<usize> = (0..all.len()).filter(|&i| clusters[i] == *c).collect();
            let sub: Vec<DetectAccount<'_>> = members.iter().map(|&i| all[i]).collect();
            let out = detect_only(&sub, &config, Detector::Hedging).unwrap();
            for (list, &i) in out.iter().zip(&members) {
                prop_assert_eq!(list, &hedged[i], "hedging of A{}", i);
            }
        }
    }
}
