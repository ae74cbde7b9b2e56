//! The Rust batch of `--bench metrics` (`batch_all_accounts`) timed in process CPU time as
//! well as wall time, so it can be set beside a Python figure measured the same way in the
//! same run on a loaded machine (`risk-py/bench/vs_rust.sh`).
//!
//! Usage: `cargo run --release -p riskgate-benches --bin metrics_cpu -- [TRADES] [RUNS]`
//! (default 1,000,000 trades, 5 runs). The trades are the criterion bench's (the sample
//! generator's, parsed by the CSV reader, grouped per account in memory); each run computes
//! every account's full metric set on one thread, and the best wall and the best CPU time
//! of the runs are printed.
#![allow(clippy::expect_used, clippy::disallowed_methods)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use risk_core::ids::AccountId;
use risk_core::metrics::{ClosedTrade, MetricsConfig, TradeMetrics};
use riskgate_benches::closed_trades;
use rustix::time::{clock_gettime, ClockId};

/// The process's CPU time so far, in seconds.
fn cpu_seconds() -> f64 {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// Every account's metrics, once: the timed work, kept out of line so that callgrind can
/// count it alone (`--toggle-collect='*metrics_cpu::batch*'`).
#[inline(never)]
fn batch(accounts: &[Vec<ClosedTrade>], config: &MetricsConfig) {
    for trades in accounts {
        black_box(TradeMetrics::compute(black_box(trades), config).expect("metrics"));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("TRADES: a count"));
    let runs: usize = args.next().map_or(5, |a| a.parse().expect("RUNS: a count"));
    let mut groups: HashMap<AccountId, Vec<ClosedTrade>> = HashMap::new();
    for t in closed_trades(n) {
        groups.entry(t.account.clone()).or_default().push(t);
    }
    let accounts: Vec<Vec<ClosedTrade>> = groups.into_values().collect();
    let config = MetricsConfig::default();
    let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..runs {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        batch(&accounts, &config);
        wall = wall.min(t0.elapsed().as_secs_f64());
        cpu = cpu.min(cpu_seconds() - c0);
    }
    println!(
        "Rust batch (TradeMetrics::compute per account, one thread): {n} trades, {} accounts: best of {runs} {:.0} ms wall, {:.0} ms CPU",
        accounts.len(),
        wall * 1e3,
        cpu * 1e3
    );
}
