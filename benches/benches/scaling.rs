//! How tier lookup and rule evaluation grow with the ladder and the rule set.
#![allow(missing_docs, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use risk_core::ids::Symbol;
use risk_core::model::KycLevel;
use risk_core::num::Notional;
use risk_core::pretrade::check;
use riskgate_benches::{ladder, now, rules, scenario, SYMBOL};

fn tiers(c: &mut Criterion) {
    let mut group = c.benchmark_group("tiers");
    for n in [1usize, 10, 100] {
        let l = ladder(n);
        // A notional in the top tier: the worst case for the lookup.
        let top = l.tiers().last().map_or(Notional::ZERO, |t| t.floor);
        group.bench_with_input(BenchmarkId::new("maintenance_margin", n), &top, |b, top| {
            b.iter(|| l.maintenance_margin(black_box(*top)))
        });
        group.bench_with_input(BenchmarkId::new("max_leverage_at", n), &top, |b, top| {
            b.iter(|| l.max_leverage_at(black_box(*top)))
        });
        let s = scenario(n, 20);
        group.bench_with_input(BenchmarkId::new("full_check", n), &s, |b, s| {
            b.iter(|| {
                check(
                    &s.config,
                    Some(&s.account),
                    &s.market,
                    black_box(&s.approve),
                    now(),
                )
            })
        });
    }
    group.finish();
}

fn rule_sets(c: &mut Criterion) {
    let mut group = c.benchmark_group("rules");
    let s = scenario(10, 20);
    let metrics = check(&s.config, Some(&s.account), &s.market, &s.approve, now())
        .metrics
        .expect("priced");
    let symbol = Symbol::new(SYMBOL);
    for n in [1usize, 20, 200] {
        let set = rules(n);
        let mut hits = risk_core::rules::RuleHits::new();
        group.bench_with_input(BenchmarkId::new("evaluate", n), &set, |b, set| {
            b.iter(|| {
                hits.clear();
                set.evaluate(black_box(&metrics), KycLevel::L1, &symbol, &mut hits);
            })
        });
        let s = scenario(10, n);
        group.bench_with_input(BenchmarkId::new("full_check", n), &s, |b, s| {
            b.iter(|| {
                check(
                    &s.config,
                    Some(&s.account),
                    &s.market,
                    black_box(&s.approve),
                    now(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, tiers, rule_sets);
criterion_main!(benches);
