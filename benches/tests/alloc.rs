//! Heap allocations on the check path, counted by a global allocator.
#![allow(clippy::expect_used, missing_docs, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use chrono::{DateTime, TimeDelta, Utc};
use risk_core::account::AccountSnapshot;
use risk_core::config::RiskConfig;
use risk_core::engine::RiskEngine;
use risk_core::ids::{OrderId, Symbol, UserId};
use risk_core::model::{Decision, KycLevel, RejectReason, TradingState};
use risk_core::num::Notional;
use risk_core::pretrade::{check, CheckRequest};
use risk_core::Decimal;
use riskgate_benches::{now, scenario, OrderIds, Scenario};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    (r, ALLOCATIONS.with(Cell::get) - before)
}

#[test]
fn an_approved_pure_check_with_no_rule_hits_allocates_nothing() {
    let s = scenario(10, 20);
    let (r, n) = allocations(|| check(&s.config, Some(&s.account), &s.market, &s.approve, now()));
    assert_eq!(r.decision, Decision::Approved, "{}", r.message);
    assert!(r.rule_hits.is_empty());
    assert_eq!(n, 0, "allocations on the approved pure check");
}

/// The scenario's engine after 5,000 approved checks: the recent-order queue and index
/// have reached their steady size for the horizon, so what is counted next is the check.
fn warmed_engine(s: &Scenario) -> (RiskEngine, OrderIds, i64) {
    let engine = s.engine(1);
    let mut ids = OrderIds::new(1 << 14);
    let mut tick = 0i64;
    for _ in 0..5_000 {
        let (order_id, at) = ids.next(&mut tick);
        let _ = engine.check(
            &CheckRequest {
                order_id,
                ..s.approve.clone()
            },
            at,
        );
    }
    (engine, ids, tick)
}

#[test]
fn an_approved_engine_check_allocates_nothing_in_steady_state() {
    let s = scenario(10, 20);
    let (engine, mut ids, mut tick) = warmed_engine(&s);
    let mut total = 0;
    for _ in 0..1_000 {
        let (order_id, at) = ids.next(&mut tick);
        let req = CheckRequest {
            order_id,
            ..s.approve.clone()
        };
        let (r, n) = allocations(|| engine.check(&req, at));
        assert_eq!(r.decision, Decision::Approved, "{}", r.message);
        total += n;
    }
    assert_eq!(total, 0, "allocations over 1,000 approved engine checks");
}

/// A reject to provoke: the reason expected, and what the check is given.
type RejectCase = (
    RejectReason,
    RiskConfig,
    Option<AccountSnapshot>,
    CheckRequest,
    DateTime<Utc>,
);

/// The cases of [`every_reject_path_allocates_nothing`]: each fails first in the phase
/// its reason names, with the config and account it needs (built outside the count).
fn reject_cases(s: &Scenario) -> Vec<RejectCase> {
    let base = &s.approve;
    let with = |f: &dyn Fn(&mut CheckRequest)| {
        let mut r = base.clone();
        f(&mut r);
        r
    };
    let account_with = |f: &dyn Fn(&mut AccountSnapshot)| {
        let mut a = s.account.clone();
        f(&mut a);
        Some(a)
    };
    let ok = Some(s.account.clone());
    let cfg = || s.config.clone();
    let t = now();
    let mut cases = vec![
        (
            RejectReason::InvalidRequest,
            cfg(),
            ok.clone(),
            with(&|r| r.quantity = Decimal::ZERO),
            t,
        ),
        (
            RejectReason::InvalidRequest,
            cfg(),
            ok.clone(),
            with(&|r| r.user_id = UserId::new("")),
            t,
        ),
        (
            RejectReason::InvalidRequest,
            cfg(),
            ok.clone(),
            with(&|r| r.leverage = Decimal::new(5, 1)),
            t,
        ),
        (
            RejectReason::InvalidRequest,
            cfg(),
            ok.clone(),
            with(&|r| r.price = None),
            t,
        ),
        (
            RejectReason::InvalidRequest,
            cfg(),
            ok.clone(),
            with(&|r| r.quantity = Decimal::new(10_005, 4)),
            t,
        ),
        (
            RejectReason::InvalidRequest,
            cfg(),
            ok.clone(),
            with(&|r| r.price = Some(Decimal::new(100_005, 2))),
            t,
        ),
        (
            RejectReason::InvalidRequest,
            cfg(),
            ok.clone(),
            with(&|r| r.quantity = Decimal::new(1, 4)),
            t,
        ),
        (
            RejectReason::InvalidRequest,
            cfg(),
            ok.clone(),
            with(&|r| r.user_id = UserId::new("USER-2")),
            t,
        ),
        (RejectReason::UnknownAccount, cfg(), None, base.clone(), t),
        (
            RejectReason::UnknownSymbol,
            cfg(),
            ok.clone(),
            with(&|r| r.symbol = Symbol::new("NOPE")),
            t,
        ),
        (
            RejectReason::TradingHalted,
            cfg(),
            account_with(&|a| a.profile.trading_state = TradingState::Halted),
            base.clone(),
            t,
        ),
        (
            RejectReason::UserFrozen,
            cfg(),
            account_with(&|a| a.profile.frozen = true),
            base.clone(),
            t,
        ),
        (
            RejectReason::KycInsufficient,
            cfg(),
            account_with(&|a| a.profile.kyc_level = KycLevel::L0),
            base.clone(),
            t,
        ),
        (
            RejectReason::DuplicateOrder,
            cfg(),
            ok.clone(),
            with(&|r| r.order_id = OrderId::new("open-0")),
            t,
        ),
        (
            RejectReason::StaleData,
            cfg(),
            ok.clone(),
            base.clone(),
            t + TimeDelta::hours(2),
        ),
        (
            RejectReason::ReduceOnlyViolation,
            cfg(),
            ok.clone(),
            with(&|r| r.reduce_only = true),
            t,
        ),
        (
            RejectReason::MaxOrderSizeExceeded,
            cfg(),
            ok.clone(),
            with(&|r| r.quantity = Decimal::from(2_000)),
            t,
        ),
        (
            RejectReason::PriceOutOfBand,
            cfg(),
            ok.clone(),
            with(&|r| r.price = Some(Decimal::from(1_100))),
            t,
        ),
        (
            RejectReason::ExposureLimitExceeded,
            cfg(),
            account_with(&|a| a.profile.exposure_limit = Notional::lit("1000")),
            base.clone(),
            t,
        ),
        (
            RejectReason::RiskRuleViolation,
            s.config_with_firing_rule(),
            ok.clone(),
            base.clone(),
            t,
        ),
    ];
    for (name, request) in s.late_rejects() {
        let reason = match name {
            "insufficient_margin" => RejectReason::InsufficientMargin,
            "max_leverage" => RejectReason::MaxLeverageExceeded,
            _ => RejectReason::RiskRuleViolation,
        };
        let config = match reason {
            RejectReason::RiskRuleViolation => s.config_with_firing_rule(),
            _ => cfg(),
        };
        cases.push((reason, config, ok.clone(), request, t));
    }
    cases
}

#[test]
fn every_reject_path_allocates_nothing() {
    let s = scenario(10, 20);
    let mut seen = Vec::new();
    for (reason, config, account, request, at) in reject_cases(&s) {
        let (r, n) = allocations(|| check(&config, account.as_ref(), &s.market, &request, at));
        assert_eq!(r.reject_reason, Some(reason), "{request:?}: {}", r.message);
        assert_eq!(n, 0, "allocations on a {reason} reject: {}", r.message);
        seen.push(reason);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 15, "reasons covered: {seen:?}");
}

/// A rule reject fires its rule and the response keeps the hit inline.
#[test]
fn a_rule_reject_holds_its_hits_without_allocating() {
    let s = scenario(10, 20);
    let config = s.config_with_firing_rule();
    let (r, n) = allocations(|| check(&config, Some(&s.account), &s.market, &s.approve, now()));
    assert_eq!(r.reject_reason, Some(RejectReason::RiskRuleViolation));
    assert_eq!(r.rule_hits.len(), 1);
    assert_eq!(n, 0);
    // Writing the message out is where its text is built: the counter sees that.
    let (text, n) = allocations(|| r.message.to_string());
    assert!(
        text.starts_with("rule zz-fires fired: order_notional = 1000 >= 1"),
        "{text}"
    );
    assert!(n > 0, "the counter must see the text being built");
}

#[test]
fn engine_rejects_allocate_nothing_in_steady_state() {
    let s = scenario(10, 20);
    let (engine, mut ids, mut tick) = warmed_engine(&s);
    let mut total = 0;
    for (_, request) in s.late_rejects().iter().take(2) {
        for _ in 0..100 {
            let (order_id, at) = ids.next(&mut tick);
            let req = CheckRequest {
                order_id,
                ..request.clone()
            };
            let (r, n) = allocations(|| engine.check(&req, at));
            assert_eq!(r.decision, Decision::Rejected, "{}", r.message);
            total += n;
        }
    }
    assert_eq!(total, 0, "allocations over 200 rejected engine checks");
}
