//! Planted rulebook patterns, and the guard that keeps every other account clean.
//!
//! With planting on ([`super::generate_planted`]) the generated accounts stay inside the
//! rulebook of [`PLANTED_RULEBOOK`] and trip no detector: each user holds one direction
//! per instrument in all its accounts (no hedge), each account trades one lot size (no
//! martingale), and a losing trade is shrunk, or turned into a small win, when it could
//! take a day's losses past 4.5 % of the initial balance or the balance below 90.5 % of
//! the highest balance it may have reached. Then a few accounts are added, each carrying
//! one pattern at exact times, and every expected signal is written to the planted file
//! (`login,signal,at`).

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{DateTime, TimeDelta, Utc};

use super::{Leg, INSTRUMENTS};

/// The rulebook the planted patterns are made for (a `risk report --config` file).
pub const PLANTED_RULEBOOK: &str = "[rulebook]\n\
daily_loss_limit = \"0.05\"\n\
max_loss_limit = \"0.10\"\n\
max_loss_mode = \"trailing\"\n";

/// Per account: the lot size it trades and what the guard knows of its balance curve, in
/// cents (balances are lower bounds and the mark an upper bound, so the guard errs on the
/// safe side).
#[derive(Debug, Clone)]
pub(super) struct Guard {
    initial: i128,
    balance: i128,
    mark: i128,
    lots: Option<i64>,
    day_losses: BTreeMap<i64, i128>,
}

impl Guard {
    pub(super) fn new(initial_dollars: i64) -> Self {
        let cents = i128::from(initial_dollars) * 100;
        Self {
            initial: cents,
            balance: cents,
            mark: cents,
            lots: None,
            day_losses: BTreeMap::new(),
        }
    }
}

/// The direction a user holds in an instrument: the top bit of a multiplicative hash of
/// the pair (Fibonacci hashing), so it stays fixed whatever generator drives the rest.
pub(super) fn user_sells(user: u64, instrument: usize) -> bool {
    let pair = user.wrapping_mul(31).wrapping_add(instrument as u64);
    pair.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 63 == 1
}

fn pow10(decimals: u32) -> i128 {
    10_i128.pow(decimals)
}

/// Bounds of a leg's net P&L in cents: (lowest, highest), costs included.
fn net_bounds(leg: &Leg) -> (i128, i128) {
    let inst = &INSTRUMENTS[leg.instrument];
    let raw = i128::from(leg.outcome_ticks)
        * i128::from(leg.lots_hundredths)
        * i128::from(inst.contract_size);
    let p = pow10(inst.decimals);
    let (lo, hi) = (raw.div_euclid(p) - 1, raw.div_euclid(p) + 1);
    // Commission 3.5 and swap 1.2 a lot, each rounded to the cent.
    let costs = i128::from(leg.lots_hundredths) * 47 / 10 + 2;
    (lo - costs, hi)
}

/// Makes one session of a background account clean (see the module documentation).
pub(super) fn clean(guard: &mut Guard, user: u64, legs: &mut [Leg]) {
    let lots = *guard
        .lots
        .get_or_insert_with(|| legs.first().map_or(1, |l| l.lots_hundredths));
    for leg in legs.iter_mut() {
        leg.sell = user_sells(user, leg.instrument);
        leg.lots_hundredths = lots;
    }
    let gains: i128 = legs.iter().map(|l| net_bounds(l).1.max(0)).sum();
    let mark = guard.mark.max(guard.balance + gains);
    let mut trailing = (guard.balance - (mark * 905 + 999).div_euclid(1000)).max(0);
    let daily_cap = guard.initial * 45 / 1000;
    let mut net = 0;
    for leg in legs.iter_mut() {
        // The close falls within a second after opened + held.
        let close = leg.opened + TimeDelta::seconds(leg.held_secs + 1);
        let day = close.timestamp().div_euclid(86_400);
        let spent = guard.day_losses.get(&day).copied().unwrap_or(0);
        let allowed = trailing.min(daily_cap - spent).max(0);
        let (mut lo, _) = net_bounds(leg);
        if lo < -allowed {
            // Raise the outcome until the lowest net is at least -allowed: jump by the
            // estimate, then step (rounding).
            let inst = &INSTRUMENTS[leg.instrument];
            let per_tick = i128::from(leg.lots_hundredths) * i128::from(inst.contract_size);
            let need = (-allowed - lo) * pow10(inst.decimals) / per_tick.max(1);
            leg.outcome_ticks = leg
                .outcome_ticks
                .saturating_add(i64::try_from(need).unwrap_or(0));
            while net_bounds(leg).0 < -allowed {
                leg.outcome_ticks += 1;
            }
            lo = net_bounds(leg).0;
        }
        if lo < 0 {
            trailing -= -lo;
            *guard.day_losses.entry(day).or_default() += -lo;
        }
        net += lo;
    }
    guard.balance += net;
    guard.mark = mark;
}

/// One planted trade, at exact times.
struct Planted {
    symbol: usize,
    sell: bool,
    lots: &'static str,
    opened: DateTime<Utc>,
    held: i64,
    profit: &'static str,
}

/// An account carrying a pattern, with its expected signals.
struct PlantedAccount {
    login: u64,
    user: &'static str,
    group: &'static str,
    trades: Vec<Planted>,
    expected: Vec<(&'static str, DateTime<Utc>)>,
}

const H: i64 = 3_600;

/// `day` days after Monday 2025-05-05, at `secs` past midnight UTC.
fn at(day: i64, secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_746_403_200 + day * 86_400 + secs, 0).unwrap_or_default()
}

fn trade(
    symbol: usize,
    sell: bool,
    lots: &'static str,
    opened: DateTime<Utc>,
    held: i64,
    profit: &'static str,
) -> Planted {
    Planted {
        symbol,
        sell,
        lots,
        opened,
        held,
        profit,
    }
}

// Instrument indices in `INSTRUMENTS`.
const XAU: usize = 0;
const EUR: usize = 1;
const GBP: usize = 2;
const NDX: usize = 3;
const GER: usize = 4;

#[allow(clippy::too_many_lines)] // One literal table of patterns.
fn patterns() -> Vec<PlantedAccount> {
    let mut out = vec![
        // Daily loss: 2,000 + 2,500 (4,500: allowed), then 1,000 more: 5,500 > 5,000.
        PlantedAccount {
            login: 10_990_001,
            user: "P-DL1",
            group: "",
            trades: vec![
                trade(EUR, false, "1.00", at(1, 9 * H), H, "300"),
                trade(EUR, false, "1.00", at(1, 13 * H), H, "200"),
                trade(EUR, false, "1.00", at(2, 10 * H), 1_800, "-2000"),
                trade(EUR, false, "1.00", at(2, 11 * H), 1_800, "-2500"),
                trade(EUR, false, "1.00", at(2, 12 * H), 1_800, "-1000"),
                trade(EUR, false, "1.00", at(3, 9 * H), H, "100"),
            ],
            expected: vec![("DAILY_LOSS_LIMIT_BREACHED", at(2, 12 * H + 1_800))],
        },
        // Daily loss: exactly 5,000 (allowed), then 150 more.
        PlantedAccount {
            login: 10_990_002,
            user: "P-DL2",
            group: "",
            trades: vec![
                trade(EUR, false, "1.00", at(3, 14 * H), 1_200, "-5000"),
                trade(EUR, false, "1.00", at(3, 16 * H), 300, "-150"),
                trade(EUR, false, "1.00", at(4, 9 * H), H, "50"),
            ],
            expected: vec![("DAILY_LOSS_LIMIT_BREACHED", at(3, 16 * H + 300))],
        },
        // Trailing max loss: mark 110,000, floor 99,000; 98,500 breaks it (4 % a day at most).
        PlantedAccount {
            login: 10_990_003,
            user: "P-TR1",
            group: "",
            trades: vec![
                trade(NDX, false, "1.00", at(1, 10 * H), H, "6000"),
                trade(NDX, false, "1.00", at(2, 10 * H), H, "4000"),
                trade(NDX, false, "1.00", at(3, 10 * H), H, "-4000"),
                trade(NDX, false, "1.00", at(4, 10 * H), H, "-4000"),
                trade(NDX, false, "1.00", at(7, 10 * H), H, "-3500"),
            ],
            expected: vec![("MAX_LOSS_LIMIT_BREACHED", at(7, 11 * H))],
        },
        // Trailing max loss: mark 105,000, floor 94,500 reached exactly (allowed), then 1 more.
        PlantedAccount {
            login: 10_990_004,
            user: "P-TR2",
            group: "",
            trades: vec![
                trade(NDX, false, "1.00", at(8, 10 * H), H, "2000"),
                trade(NDX, false, "1.00", at(9, 10 * H), H, "3000"),
                trade(NDX, false, "1.00", at(10, 10 * H), H, "-3000"),
                trade(NDX, false, "1.00", at(11, 10 * H), H, "-3000"),
                trade(NDX, false, "1.00", at(14, 10 * H), H, "-3000"),
                trade(NDX, false, "1.00", at(15, 10 * H), H, "-1500"),
                trade(NDX, false, "1.00", at(16, 10 * H), H, "-1"),
            ],
            expected: vec![("MAX_LOSS_LIMIT_BREACHED", at(16, 11 * H))],
        },
    ];
    // Hedging, one user, two accounts: four overlapping buy/sell pairs (N = 3).
    let hedge_at = at(3, 8 * H + 60);
    for (login, sell, profit) in [(10_990_011, false, "50"), (10_990_012, true, "-45")] {
        out.push(PlantedAccount {
            login,
            user: "P-HG",
            group: "",
            trades: (1..=4)
                .map(|d| {
                    let open = if sell { 8 * H + 60 } else { 8 * H };
                    trade(XAU, sell, "0.50", at(d, open), 10 * H - open, profit)
                })
                .collect(),
            expected: vec![("CROSS_ACCOUNT_HEDGING", hedge_at)],
        });
    }
    // Hedging across two users linked by a group: three pairs.
    let group_at = at(10, 9 * H + 1_800);
    for (login, user, sell, open, held, profit) in [
        (10_990_013, "P-GA", true, 9 * H, 3 * H, "20"),
        (10_990_014, "P-GB", false, 9 * H + 1_800, 5_400, "-25"),
    ] {
        out.push(PlantedAccount {
            login,
            user,
            group: "GRP-7",
            trades: (8..=10)
                .map(|d| trade(EUR, sell, "0.30", at(d, open), held, profit))
                .collect(),
            expected: vec![("CROSS_ACCOUNT_HEDGING", group_at)],
        });
    }
    // A copy-trading ring: three users open the same buys 0, 4 and 9 s apart, six times.
    let slots: Vec<DateTime<Utc>> = (0..6)
        .map(|k| at(1 + k / 2, if k % 2 == 0 { 13 * H } else { 17 * H }))
        .collect();
    for (login, user, delay, profit) in [
        (10_990_021, "P-C1", 0, "40"),
        (10_990_022, "P-C2", 4, "35"),
        (10_990_023, "P-C3", 9, "-10"),
    ] {
        out.push(PlantedAccount {
            login,
            user,
            group: "",
            trades: slots
                .iter()
                .map(|&s| {
                    trade(
                        GBP,
                        false,
                        "0.20",
                        s + TimeDelta::seconds(delay),
                        1_200,
                        profit,
                    )
                })
                .collect(),
            expected: vec![("COPY_TRADING", slots[4] + TimeDelta::seconds(delay))],
        });
    }
    // Martingale: lots doubled after each of three losses, then a win.
    out.push(PlantedAccount {
        login: 10_990_031,
        user: "P-MG1",
        group: "",
        trades: vec![
            trade(GER, false, "0.50", at(1, 10 * H), 1_800, "-100"),
            trade(GER, false, "1.00", at(1, 11 * H), 1_800, "-200"),
            trade(GER, false, "2.00", at(1, 12 * H), 1_800, "-400"),
            trade(GER, false, "4.00", at(1, 13 * H), 1_800, "1000"),
            trade(GER, false, "0.50", at(2, 10 * H), 1_800, "50"),
        ],
        expected: vec![("MARTINGALE", at(1, 13 * H))],
    });
    // Martingale: a run of four.
    out.push(PlantedAccount {
        login: 10_990_032,
        user: "P-MG2",
        group: "",
        trades: vec![
            trade(GER, true, "0.10", at(8, 10 * H), 600, "-10"),
            trade(GER, true, "0.20", at(8, 11 * H), 600, "-20"),
            trade(GER, true, "0.40", at(8, 12 * H), 600, "-40"),
            trade(GER, true, "0.80", at(8, 13 * H), 600, "-80"),
            trade(GER, true, "1.60", at(8, 14 * H), 600, "300"),
        ],
        expected: vec![("MARTINGALE", at(8, 13 * H))],
    });
    out
}

/// Writes the planted accounts' trades (to `trades`, continuing its row numbering), their
/// accounts rows, and the expected signals to `planted`. Returns (trades, accounts,
/// users).
pub(super) fn write<T: Write + ?Sized, A: Write + ?Sized, P: Write + ?Sized>(
    trades: &mut T,
    first_row: u64,
    accounts: &mut A,
    planted: &mut P,
) -> io::Result<(u64, u64, u64)> {
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    writeln!(planted, "login,signal,at")?;
    let mut row = first_row;
    let mut id = 96_000_000_u64;
    let list = patterns();
    for p in &list {
        writeln!(
            accounts,
            "{},{},CH-100K,100000,{}",
            p.login, p.user, p.group
        )?;
        for t in &p.trades {
            let inst = &INSTRUMENTS[t.symbol];
            let price = super::price(inst.base_ticks, inst.decimals);
            id += 1;
            writeln!(
                trades,
                "{row},{id},{},,{price},{price},0,{},{},{},0,,,{},0,{},{}.0,1.0,0,{}",
                u8::from(t.sell),
                t.lots,
                fmt(t.opened),
                fmt(t.opened + TimeDelta::seconds(t.held)),
                t.profit,
                inst.symbol,
                inst.contract_size,
                p.login
            )?;
            row += 1;
        }
        for (signal, when) in &p.expected {
            writeln!(
                planted,
                "{},{signal},{}",
                p.login,
                when.format("%Y-%m-%dT%H:%M:%SZ")
            )?;
        }
    }
    let mut users: Vec<&str> = list.iter().map(|p| p.user).collect();
    users.sort_unstable();
    users.dedup();
    Ok((row - first_row, list.len() as u64, users.len() as u64))
}
