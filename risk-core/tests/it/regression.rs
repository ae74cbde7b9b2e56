//! Bugs once found, each with how it was found.

use chrono::{DateTime, TimeDelta, Utc};

use crate::fixture::{config, engine, market, request};

/// Found while hardening (issue 7): `now` is the caller's, and a check near the start of
/// chrono's range computed `now - duplicate_horizon` (and the rate-limit and history
/// cutoffs) with the panicking operator. The cutoffs now saturate.
#[test]
fn a_check_at_the_start_of_time_does_not_panic() {
    let e = engine(config());
    for now in [
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MIN_UTC + TimeDelta::milliseconds(1),
    ] {
        let pure = risk_core::pretrade::check(&config(), None, &market(), &request(), now);
        assert!(!pure.is_accepted());
        let checked = e.check(&request(), now);
        let reserved = e.check_and_reserve(&request(), now);
        assert_eq!(checked.decision, reserved.decision);
        // A second order at the same instant still goes through the duplicate and rate
        // checks without overflowing.
        let again = e.check_and_reserve(&request(), now);
        assert!(!again.message.is_empty());
    }
}
