//! A deterministic generator of realistic prop-firm exports, for examples and benchmarks.
//!
//! It writes a trades file in the export format of `shared/data/` (an unnamed index column
//! first, the same column set) and an accounts file
//! (`login,user_id,challenge_id,initial_balance`). The same seed and sizes always give the
//! same bytes.
//!
//! Randomness comes from [`SampleRng`]: PCG from `rand_pcg` with rand's uniform ranges.
//! Cargo.lock pins both; a rand release that changes how ranges are drawn would change the
//! bytes (then `examples/data` is regenerated).
//!
//! Accounts follow one of five behaviours: disciplined traders (stop-loss on most trades,
//! longer holds), HFT scalpers (bursts of trades held seconds), layering traders (many
//! positions opened together on one symbol), gamblers without stop-losses (oversized lots,
//! deep drawdowns) and occasional traders with a handful of trades. With `defects` on, a
//! few malformed and repeated rows are added, as real exports have.
//!
//! [`generate_planted`] also plants the rulebook patterns (daily-loss and trailing
//! max-loss breaches, hedging pairs, a copy-trading ring, martingale runs) in added
//! accounts, keeps every other account clean (see the `plant` module) and writes the expected
//! signals.

mod plant;
pub use plant::PLANTED_RULEBOOK;

use std::io::{self, Write};

use chrono::{DateTime, TimeDelta, Utc};
use rand::distr::uniform::SampleUniform;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use risk_core::Decimal;

/// The generator's random numbers: a PCG stream (`rand_pcg`, whose output is fixed by its
/// algorithm) seeded from [`SampleConfig::seed`], with rand's uniform ranges.
#[derive(Debug, Clone)]
pub struct SampleRng(Pcg64Mcg);

impl SampleRng {
    /// A generator from a seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(Pcg64Mcg::seed_from_u64(seed))
    }

    /// A value in `lo..hi` (`lo` when the range is empty).
    pub fn range<T: SampleUniform + PartialOrd + Copy>(&mut self, lo: T, hi: T) -> T {
        if hi <= lo {
            return lo;
        }
        self.0.random_range(lo..hi)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.0.random_ratio(percent.min(100), 100)
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleConfig {
    /// Number of good trade rows.
    pub trades: u64,
    /// Number of users; each has 1 to 3 accounts. `None`: one user per 150 trades, at least 6.
    pub users: Option<u64>,
    /// The seed.
    pub seed: u64,
    /// Add 3 malformed rows and 2 repeated rows at the end (when there are at least 20 trades).
    pub defects: bool,
}

impl Default for SampleConfig {
    fn default() -> Self {
        Self {
            trades: 3_000,
            users: None,
            seed: 42,
            defects: true,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SampleSummary {
    /// Good trade rows.
    pub trades: u64,
    /// Malformed rows.
    pub malformed_rows: u64,
    /// Repeated rows.
    pub duplicate_rows: u64,
    /// Accounts.
    pub accounts: u64,
    /// Users.
    pub users: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Disciplined,
    Scalper,
    Layering,
    Gambler,
    Occasional,
}

struct Instrument {
    symbol: &'static str,
    /// Price in ticks and the number of decimals of a tick.
    base_ticks: i64,
    decimals: u32,
    contract_size: i64,
    /// Typical move of a trade, in ticks.
    move_ticks: i64,
    /// Ticks per pip.
    pip_ticks: i64,
}

const INSTRUMENTS: [Instrument; 5] = [
    Instrument {
        symbol: "XAUUSD",
        base_ticks: 333_290,
        decimals: 2,
        contract_size: 100,
        move_ticks: 400,
        pip_ticks: 10,
    },
    Instrument {
        symbol: "EURUSD",
        base_ticks: 113_143,
        decimals: 5,
        contract_size: 100_000,
        move_ticks: 25,
        pip_ticks: 10,
    },
    Instrument {
        symbol: "GBPUSD",
        base_ticks: 133_020,
        decimals: 5,
        contract_size: 100_000,
        move_ticks: 30,
        pip_ticks: 10,
    },
    Instrument {
        symbol: "NDX100",
        base_ticks: 1_952_340,
        decimals: 2,
        contract_size: 1,
        move_ticks: 4_000,
        pip_ticks: 100,
    },
    Instrument {
        symbol: "GER40",
        base_ticks: 2_321_050,
        decimals: 2,
        contract_size: 1,
        move_ticks: 3_000,
        pip_ticks: 100,
    },
];

const CHALLENGES: [(&str, i64); 4] = [
    ("CH-10K", 10_000),
    ("CH-25K", 25_000),
    ("CH-50K", 50_000),
    ("CH-100K", 100_000),
];

struct Account {
    login: u64,
    /// The user's number (from 1).
    user: u64,
    /// With planting on: keeps the account inside the rulebook.
    guard: Option<plant::Guard>,
    balance: i64,
    behaviour: Behaviour,
    clock: DateTime<Utc>,
    platform: u8,
}

struct Writer<'a, W: Write> {
    out: &'a mut W,
    rows: u64,
    next_id: u64,
    next_big_id: u64,
}

struct Leg {
    opened: DateTime<Utc>,
    held_secs: i64,
    instrument: usize,
    sell: bool,
    lots_hundredths: i64,
    outcome_ticks: i64,
    stop_ticks: Option<i64>,
    take_ticks: Option<i64>,
}

fn price(ticks: i64, decimals: u32) -> Decimal {
    Decimal::new(ticks, decimals)
}

fn time(t: DateTime<Utc>) -> impl std::fmt::Display {
    t.format("%Y-%m-%d %H:%M:%S%.6f")
}

impl<W: Write> Writer<'_, W> {
    fn leg(&mut self, account: &Account, leg: &Leg, rng: &mut SampleRng) -> io::Result<()> {
        let inst = &INSTRUMENTS[leg.instrument];
        let drift = rng.range(-inst.move_ticks * 20, inst.move_ticks * 20);
        let open_ticks = inst.base_ticks + drift;
        let dir = if leg.sell { -1 } else { 1 };
        let close_ticks = open_ticks + dir * leg.outcome_ticks;
        let lots = Decimal::new(leg.lots_hundredths, 2);
        let profit = (price(close_ticks - open_ticks, inst.decimals)
            * Decimal::from(dir)
            * lots
            * Decimal::from(inst.contract_size))
        .round_dp(2);
        let commission = -(lots * Decimal::new(35, 1)).round_dp(2);
        let closed = leg.opened
            + TimeDelta::seconds(leg.held_secs)
            + TimeDelta::microseconds(rng.range(0, 1_000_000));
        let swap = if closed.date_naive() == leg.opened.date_naive() {
            Decimal::ZERO
        } else {
            -(lots * Decimal::new(12, 1)).round_dp(2)
        };
        let sl = leg
            .stop_ticks
            .map(|s| price(open_ticks - dir * s, inst.decimals));
        let tp = leg
            .take_ticks
            .map(|t| price(open_ticks + dir * t, inst.decimals));
        let pips = Decimal::new((close_ticks - open_ticks).abs() * 10 / inst.pip_ticks, 1);
        let id = if account.platform == 2 {
            self.next_big_id += rng.range(1, 5_001);
            self.next_big_id
        } else {
            self.next_id += rng.range(1, 41);
            self.next_id
        };
        let reason = match rng.range(0, 4) {
            0 => "",
            1 => "0.0",
            _ => "16.0",
        };
        writeln!(
            self.out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}.0,1.0,{},{}",
            self.rows,
            id,
            u8::from(leg.sell),
            reason,
            price(open_ticks, inst.decimals),
            price(close_ticks, inst.decimals),
            commission,
            lots,
            time(leg.opened),
            time(closed),
            pips,
            sl.map(|p| p.to_string()).unwrap_or_default(),
            tp.map(|p| p.to_string()).unwrap_or_default(),
            profit,
            swap,
            inst.symbol,
            inst.contract_size,
            account.platform,
            account.login,
        )?;
        self.rows += 1;
        Ok(())
    }
}

/// Writes a trades export to `trades` and the matching accounts file to `accounts`.
///
/// # Errors
/// Any error of the writers.
pub fn generate<T: Write, A: Write>(
    config: &SampleConfig,
    trades: &mut T,
    accounts_out: &mut A,
) -> io::Result<SampleSummary> {
    generate_inner(config, trades, accounts_out, None)
}

/// [`generate`] with the rulebook patterns planted: the accounts file gains a `group_id`
/// column, the planted accounts (user ids `P-...`, challenge `CH-100K`) are appended, and
/// `planted` receives the expected signals as `login,signal,at` (RFC 3339), for
/// [`PLANTED_RULEBOOK`] and the default detector thresholds. The summary counts the
/// planted trades and accounts.
///
/// # Errors
/// Any error of the writers.
pub fn generate_planted<T: Write, A: Write, P: Write>(
    config: &SampleConfig,
    trades: &mut T,
    accounts_out: &mut A,
    planted: &mut P,
) -> io::Result<SampleSummary> {
    generate_inner(config, trades, accounts_out, Some(planted))
}

fn generate_inner<T: Write, A: Write>(
    config: &SampleConfig,
    trades: &mut T,
    accounts_out: &mut A,
    planted: Option<&mut dyn Write>,
) -> io::Result<SampleSummary> {
    let plant = planted.is_some();
    let mut rng = SampleRng::new(config.seed);
    let users = config.users.unwrap_or((config.trades / 150).max(6)).max(1);
    let start = DateTime::from_timestamp(1_746_403_200, 0).unwrap_or_default(); // 2025-05-05
    let mut accounts = Vec::new();
    let group_column = if plant { ",group_id" } else { "" };
    writeln!(
        accounts_out,
        "login,user_id,challenge_id,initial_balance{group_column}"
    )?;
    let mut login = 10_400_000_u64;
    for u in 0..users {
        for _ in 0..rng.range(1, 4) {
            login += rng.range(1, 3_001);
            let (challenge, balance) = CHALLENGES[rng.range(0, 4) as usize];
            let behaviour = match rng.range(0, 100) {
                0..=44 => Behaviour::Disciplined,
                45..=59 => Behaviour::Scalper,
                60..=69 => Behaviour::Layering,
                70..=84 => Behaviour::Gambler,
                _ => Behaviour::Occasional,
            };
            let platform = match rng.range(0, 10) {
                0..=5 => 0,
                6..=8 => 1,
                _ => 2,
            };
            writeln!(
                accounts_out,
                "{login},U{:04},{challenge},{balance}{}",
                u + 1,
                if plant { "," } else { "" }
            )?;
            accounts.push(Account {
                login,
                user: u + 1,
                guard: plant.then(|| plant::Guard::new(balance)),
                balance,
                behaviour,
                clock: start + TimeDelta::seconds(rng.range(0, 86_400)),
                platform,
            });
        }
    }

    writeln!(
        trades,
        ",identifier,action,reason,open_price,close_price,commission,lot_size,opened_at,closed_at,pips,price_sl,price_tp,profit,swap,symbol,contract_size,profit_rate,platform,trading_account_login"
    )?;
    let mut w = Writer {
        out: trades,
        rows: 0,
        next_id: 44_000_000,
        next_big_id: 1_742_642_088_741_327_865,
    };
    let mut legs: Vec<Leg> = Vec::new();
    let mut written = 0_u64;
    while written < config.trades {
        let a = rng.range(0, accounts.len() as i64) as usize;
        let account = &mut accounts[a];
        // Occasional traders trade rarely: skip most of their draws.
        if account.behaviour == Behaviour::Occasional && !rng.chance(10) {
            continue;
        }
        legs.clear();
        session(account, &mut rng, &mut legs);
        if let Some(guard) = &mut account.guard {
            plant::clean(guard, account.user, &mut legs);
        }
        for leg in &legs {
            if written == config.trades {
                break;
            }
            w.leg(account, leg, &mut rng)?;
            written += 1;
        }
        if let Some(last) = legs
            .iter()
            .map(|l| l.opened + TimeDelta::seconds(l.held_secs + 1))
            .max()
        {
            account.clock = last + TimeDelta::seconds(rng.range(60, 6 * 3_600));
        }
    }
    let mut summary = SampleSummary {
        trades: written,
        accounts: accounts.len() as u64,
        users,
        ..SampleSummary::default()
    };
    if let Some(planted) = planted {
        let (rows, added, users) = plant::write(w.out, w.rows, accounts_out, planted)?;
        w.rows += rows;
        summary.trades += rows;
        summary.accounts += added;
        summary.users += users;
    }
    if config.defects && config.trades >= 20 {
        let a = &accounts[0];
        let bad = [
            format!("{},90000001,0,,n/a,1.13157,-0.02,0.01,2025-05-06 05:42:06.000000,2025-05-06 06:00:59.000000,1.4,,,0.12,0.0,EURUSD,100000.0,1.0,0,{}", w.rows, a.login),
            format!("{},90000002,1,,1.13143,1.13157,-0.02,0.01,2025-05-06 05:42:06.000000,2025-05-06 04:00:59.000000,1.4,,,0.12,0.0,EURUSD,100000.0,1.0,0,{}", w.rows + 1, a.login),
            format!("{},90000003,1,,1.13143,1.13157,-0.02,0.01,2025-05-06 05:42:06.000000,2025-05-06 06:00:59.000000,1.4,,,0.12,0.0,EURUSD,100000.0,1.0,0,", w.rows + 2),
        ];
        for row in bad {
            writeln!(w.out, "{row}")?;
        }
        w.rows += 3;
        summary.malformed_rows = 3;
        // Re-send the last platform-0/1 trade twice, as a flaky export tool would.
        if w.next_id > 44_000_000 {
            let repeated = w.next_id;
            for k in 0..2 {
                writeln!(
                    w.out,
                    "{},{repeated},0,,1.13143,1.13157,-0.02,0.01,2025-05-06 05:42:06.000000,2025-05-06 06:00:59.000000,1.4,,,0.12,0.0,EURUSD,100000.0,1.0,0,{}",
                    w.rows + k,
                    a.login
                )?;
            }
            summary.duplicate_rows = 2;
        }
    }
    Ok(summary)
}

/// One trading session of an account: the legs it opens.
fn session(account: &Account, rng: &mut SampleRng, legs: &mut Vec<Leg>) {
    let scale = account.balance / 10_000; // lots in hundredths per 10k of balance
    let instrument = rng.range(0, INSTRUMENTS.len() as i64) as usize;
    let inst = &INSTRUMENTS[instrument];
    let mv = inst.move_ticks;
    let outcome = |rng: &mut SampleRng, win_pct: u32, size: i64| {
        if rng.chance(win_pct) {
            rng.range(1, size * 2)
        } else if rng.chance(4) {
            0
        } else {
            -rng.range(1, size * 2)
        }
    };
    match account.behaviour {
        Behaviour::Disciplined | Behaviour::Occasional => {
            let stop = rng.range(mv / 2, mv * 2);
            let has_sl = rng.chance(92);
            let mut result = outcome(rng, 52, mv);
            if has_sl && result < -stop {
                result = -stop;
            }
            legs.push(Leg {
                opened: account.clock,
                held_secs: rng.range(5 * 60, 2 * 86_400),
                instrument,
                sell: rng.chance(45),
                lots_hundredths: (scale * rng.range(1, 4)).max(1),
                outcome_ticks: result,
                stop_ticks: has_sl.then_some(stop),
                take_ticks: rng.chance(60).then(|| rng.range(mv, mv * 3)),
            });
        }
        Behaviour::Scalper => {
            let mut t = account.clock;
            for _ in 0..rng.range(4, 20) {
                let held = rng.range(2, 45);
                legs.push(Leg {
                    opened: t,
                    held_secs: held,
                    instrument,
                    sell: rng.chance(50),
                    lots_hundredths: (scale * rng.range(2, 8)).max(1),
                    outcome_ticks: outcome(rng, 58, mv / 8 + 1),
                    stop_ticks: rng.chance(40).then(|| mv / 4 + 1),
                    take_ticks: rng.chance(30).then(|| mv / 4 + 1),
                });
                t += TimeDelta::seconds(held + rng.range(0, 20));
            }
        }
        Behaviour::Layering => {
            let sell = rng.chance(50);
            let close_after = rng.range(10 * 60, 8 * 3_600);
            for k in 0..rng.range(6, 13) {
                let opened = account.clock + TimeDelta::seconds(k * rng.range(1, 30));
                legs.push(Leg {
                    opened,
                    held_secs: close_after - k * 10,
                    instrument,
                    sell,
                    lots_hundredths: (scale * rng.range(1, 3)).max(1),
                    outcome_ticks: outcome(rng, 50, mv),
                    stop_ticks: rng.chance(50).then_some(mv * 2),
                    take_ticks: None,
                });
            }
        }
        Behaviour::Gambler => {
            legs.push(Leg {
                opened: account.clock,
                held_secs: rng.range(2 * 60, 3 * 86_400),
                instrument,
                sell: rng.chance(50),
                lots_hundredths: (scale * rng.range(30, 100)).max(1),
                outcome_ticks: outcome(rng, 42, mv * 2),
                stop_ticks: None,
                take_ticks: rng.chance(20).then(|| rng.range(mv, mv * 4)),
            });
        }
    }
}
