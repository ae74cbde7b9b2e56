//! Trade metrics: the batch calculator over every account of 10k, 100k and 1M trades,
//! and the incremental accumulator per trade.
#![allow(missing_docs, clippy::expect_used)]

use std::collections::HashMap;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use risk_core::ids::AccountId;
use risk_core::metrics::{ClosedTrade, MetricsAccumulator, MetricsConfig, TradeMetrics};
use riskgate_benches::closed_trades;

fn by_account(trades: &[ClosedTrade]) -> Vec<Vec<ClosedTrade>> {
    let mut groups: HashMap<AccountId, Vec<ClosedTrade>> = HashMap::new();
    for t in trades {
        groups.entry(t.account.clone()).or_default().push(t.clone());
    }
    groups.into_values().collect()
}

fn batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics/batch_all_accounts");
    group.sample_size(10);
    let config = MetricsConfig::default();
    for n in [10_000u64, 100_000, 1_000_000] {
        let accounts = by_account(&closed_trades(n));
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &accounts, |b, accounts| {
            b.iter(|| {
                for t in accounts {
                    black_box(TradeMetrics::compute(black_box(t), &config).expect("metrics"));
                }
            })
        });
    }
    group.finish();
}

fn accumulator(c: &mut Criterion) {
    let trades = closed_trades(10_000);
    let mut group = c.benchmark_group("metrics/accumulator");
    group.throughput(Throughput::Elements(trades.len() as u64));
    group.bench_function("push_10k_then_metrics", |b| {
        b.iter(|| {
            let mut acc = MetricsAccumulator::new(MetricsConfig::default()).expect("config");
            for t in &trades {
                acc.push(black_box(t)).expect("push");
            }
            acc.metrics().expect("metrics")
        })
    });
    group.finish();
}

criterion_group!(benches, batch, accumulator);
criterion_main!(benches);
