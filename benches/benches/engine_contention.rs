//! Two threads checking and applying events on overlapping and disjoint accounts.
#![allow(missing_docs, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use criterion::{criterion_group, criterion_main, Criterion};
use risk_core::engine::{AccountEvent, EngineEvent, MarketEvent};
use risk_core::num::{Money, Price};
use riskgate_benches::{account_id, now, scenario, SYMBOL};

/// Runs `iters` checks on each of two threads; thread `t` uses accounts from `accounts(t)`.
/// Every 16th operation on a thread is an event (a mark or a balance change) instead.
fn run(iters: u64, overlapping: bool) -> Duration {
    let s = scenario(10, 20);
    let engine = Arc::new(s.engine(4));
    let start = Instant::now();
    let handles: Vec<_> = (0..2u64)
        .map(|t| {
            let engine = Arc::clone(&engine);
            let base = s.approve.clone();
            std::thread::spawn(move || {
                let mut seq = 1_000_000 * (t + 1);
                for i in 0..iters {
                    // Overlapping: both threads use accounts 1 and 2; disjoint: 1-2 vs 3-4.
                    let n = if overlapping {
                        1 + (i % 2)
                    } else {
                        1 + 2 * t + (i % 2)
                    } as usize;
                    let at = now() + TimeDelta::microseconds(i64::try_from(i).unwrap_or(0));
                    if i % 16 == 15 {
                        seq += 1;
                        let event = if i % 32 == 31 {
                            EngineEvent::Market(MarketEvent::Mark {
                                symbol: risk_core::ids::Symbol::new(SYMBOL),
                                price: Price::lit("1000"),
                                at,
                            })
                        } else {
                            EngineEvent::Account {
                                account_id: account_id(n),
                                seq: risk_core::engine::Seq::lit(seq),
                                event: AccountEvent::BalanceChange {
                                    delta: Money::lit("0.01"),
                                },
                            }
                        };
                        let _ = engine.apply(&event);
                    } else {
                        let req = risk_core::pretrade::CheckRequest {
                            account_id: account_id(n),
                            ..base.clone()
                        };
                        std::hint::black_box(engine.check(&req, at));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    start.elapsed()
}

fn contention(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_contention");
    group.bench_function("two_threads_overlapping_accounts", |b| {
        b.iter_custom(|iters| run(iters, true))
    });
    group.bench_function("two_threads_disjoint_accounts", |b| {
        b.iter_custom(|iters| run(iters, false))
    });
    group.finish();
}

criterion_group!(benches, contention);
criterion_main!(benches);
