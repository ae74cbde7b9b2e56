//! One pre-trade check on the reference scenario: 10 positions, 5 open orders, a 10-tier
//! ladder and 20 active rules with mixed scopes.
#![allow(missing_docs, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use risk_core::model::{Decision, RejectReason};
use risk_core::pretrade::{check, CheckRequest};
use riskgate_benches::{now, scenario, OrderIds};

fn pure_check(c: &mut Criterion) {
    let s = scenario(10, 20);
    let firing = s.config_with_firing_rule();
    let mut group = c.benchmark_group("pretrade/pure");
    let approved = check(&s.config, Some(&s.account), &s.market, &s.approve, now());
    assert_eq!(
        approved.decision,
        Decision::Approved,
        "{}",
        approved.message
    );
    group.bench_function("approve", |b| {
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
    for (name, req) in s.late_rejects() {
        let config = if name == "rule_violation" {
            &firing
        } else {
            &s.config
        };
        let r = check(config, Some(&s.account), &s.market, &req, now());
        assert_eq!(r.decision, Decision::Rejected, "{name}: {}", r.message);
        let expected = match name {
            "insufficient_margin" => RejectReason::InsufficientMargin,
            "max_leverage" => RejectReason::MaxLeverageExceeded,
            _ => RejectReason::RiskRuleViolation,
        };
        assert_eq!(r.reject_reason, Some(expected), "{name}: {}", r.message);
        group.bench_function(format!("reject_{name}"), |b| {
            b.iter(|| check(config, Some(&s.account), &s.market, black_box(&req), now()))
        });
    }
    group.finish();
}

fn engine_check(c: &mut Criterion) {
    let s = scenario(10, 20);
    let mut group = c.benchmark_group("pretrade/engine");
    for reserve in [false, true] {
        let engine = s.engine(1);
        let mut ids = OrderIds::new(1 << 16);
        let mut tick = 0i64;
        let name = if reserve {
            "approve_and_reserve"
        } else {
            "approve"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let (order_id, at) = ids.next(&mut tick);
                let req = CheckRequest {
                    order_id,
                    ..s.approve.clone()
                };
                let r = if reserve {
                    engine.check_and_reserve(&req, at)
                } else {
                    engine.check(&req, at)
                };
                if reserve {
                    // Keep the account from filling up: release what was just reserved.
                    let _ = engine.apply(&risk_core::engine::EngineEvent::Account {
                        account_id: req.account_id.clone(),
                        seq: risk_core::engine::Seq::lit(u64::try_from(tick).unwrap_or(0) + 1_000),
                        event: risk_core::engine::AccountEvent::ReservationReleased {
                            order_id: req.order_id.clone(),
                        },
                    });
                }
                r
            });
        });
        let (order_id, at) = ids.next(&mut tick);
        let last = engine.check(
            &CheckRequest {
                order_id,
                ..s.approve.clone()
            },
            at,
        );
        assert_eq!(
            last.decision,
            Decision::Approved,
            "{name}: {}",
            last.message
        );
    }
    group.finish();
}

criterion_group!(benches, pure_check, engine_check);
criterion_main!(benches);
