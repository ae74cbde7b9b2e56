//! Heap allocations on the check path, counted by a global allocator.
#![allow(clippy::expect_used, missing_docs, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use risk_core::model::Decision;
use risk_core::pretrade::{check, CheckRequest};
use riskgate_benches::{now, scenario, OrderIds};

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

#[test]
fn an_approved_engine_check_allocates_nothing_in_steady_state() {
    let s = scenario(10, 20);
    let engine = s.engine(1);
    let mut ids = OrderIds::new(1 << 14);
    let mut tick = 0i64;
    // Warm up: the recent-order queue and index reach their steady size for the horizon.
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

#[test]
fn the_counter_sees_allocations_a_reject_message_makes() {
    let s = scenario(10, 20);
    let req = CheckRequest {
        leverage: risk_core::Decimal::from(60),
        ..s.approve.clone()
    };
    let (r, n) = allocations(|| check(&s.config, Some(&s.account), &s.market, &req, now()));
    assert_eq!(r.decision, Decision::Rejected);
    assert!(
        n > 0,
        "a formatted reject message must show up as an allocation"
    );
}
