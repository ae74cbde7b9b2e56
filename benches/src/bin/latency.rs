//! Latency percentiles of `RiskEngine::check` on the reference scenario, on one thread and
//! on two, with throughput. Criterion reports means; risk engineers ask for tails.
//!
//! Usage: `cargo run --release -p riskgate-benches --bin latency -- [MILLIONS_PER_THREAD]`
//! (default 2). Each check is timed individually with `Instant` (about 20-30 ns of the
//! figure is the timer itself); throughput is measured over the whole run.
#![allow(clippy::expect_used, clippy::disallowed_methods)]

use std::sync::{Arc, Barrier};
use std::time::Instant;

use hdrhistogram::Histogram;
use risk_core::engine::RiskEngine;
use risk_core::ids::{Symbol, TraceId, UserId};
use risk_core::model::Decision;
use risk_core::pretrade::CheckRequest;
use riskgate_benches::{account_id, scenario, OrderIds, Scenario};

fn run_thread(
    engine: &RiskEngine,
    s: &Scenario,
    account: usize,
    checks: u64,
    start_line: Option<&Barrier>,
) -> (Histogram<u64>, f64, u64) {
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("histogram bounds");
    let mut ids = OrderIds::new(1 << 20);
    let mut tick = 0i64;
    // Each thread's ids are its own strings, as requests decoded by separate connections
    // are: a clone of the scenario's would share their reference counts between threads.
    let base = CheckRequest {
        account_id: account_id(account),
        user_id: UserId::new(s.approve.user_id.as_str()),
        symbol: Symbol::new(s.approve.symbol.as_str()),
        trace_id: TraceId::new(s.approve.trace_id.as_str()),
        ..s.approve.clone()
    };
    let mut approved = 0u64;
    // Warm up caches and the account's recent-order queue.
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
    // Every thread ends its warm-up before any starts the measured checks, so the
    // two-thread throughput counts measured checks over the time they took.
    if let Some(line) = start_line {
        line.wait();
    }
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
    (hist, start.elapsed().as_secs_f64(), approved)
}

fn report(label: &str, hist: &Histogram<u64>, checks: u64, secs: f64, approved: u64) {
    println!(
        "{label:<10} {checks:>10} {:>12.0} {:>7} {:>7} {:>7} {:>8} {:>9} {:>9}",
        checks as f64 / secs,
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.90),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max(),
        approved
    );
}

fn main() {
    let millions: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    let per_thread = (millions * 1_000_000.0) as u64;
    let s = Arc::new(scenario(10, 20));
    println!("scenario: 10 positions, 5 open orders, 10-tier ladder, 20 rules; approve path, no reservation");
    println!(
        "{:<10} {:>10} {:>12} {:>7} {:>7} {:>7} {:>8} {:>9} {:>9}",
        "threads",
        "checks",
        "checks/s",
        "p50 ns",
        "p90 ns",
        "p99 ns",
        "p99.9 ns",
        "max ns",
        "approved"
    );

    let engine = s.engine(2);
    let (hist, secs, approved) = run_thread(&engine, &s, 1, per_thread, None);
    report("1", &hist, per_thread, secs, approved);

    let engine = Arc::new(s.engine(2));
    // The two threads and this one: the clock starts when both threads have warmed up.
    let start_line = Arc::new(Barrier::new(3));
    let handles: Vec<_> = (1..=2)
        .map(|account| {
            let engine = Arc::clone(&engine);
            let s = Arc::clone(&s);
            let line = Arc::clone(&start_line);
            std::thread::spawn(move || run_thread(&engine, &s, account, per_thread, Some(&line)))
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    let mut total =
        Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("histogram bounds");
    let mut approved = 0;
    for h in handles {
        let (hist, _, a) = h.join().expect("thread");
        total.add(&hist).expect("same bounds");
        approved += a;
    }
    // From the end of both warm-ups to the last thread's end: the measured checks only.
    let secs = start.elapsed().as_secs_f64();
    report("2", &total, per_thread * 2, secs, approved);
}
