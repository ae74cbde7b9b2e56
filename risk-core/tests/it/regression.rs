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
        assert!(!again.message.to_string().is_empty());
    }
}

/// Issue 12: a zero contract multiplier loaded, and every notional, margin and exposure
/// of the symbol became 0, so a 99 BTC order was APPROVED with no margin. An instrument
/// can no longer be built with a multiplier <= 0, nor with a zero lot, a min above the
/// max or a band outside (0, 1).
#[test]
fn an_instrument_cannot_be_built_invalid() {
    use risk_core::market::{Instrument, InstrumentSpec};
    use risk_core::num::{LotSize, Multiplier, PriceBand, Quantity};
    let valid = crate::fixture::instrument("BTCUSDT", "0.1", "0.001", "100").spec();
    for (text, expected) in [
        ("0", "0 is not valid: must be greater than zero"),
        ("-1", "-1 is not valid: must be greater than zero"),
    ] {
        assert_eq!(
            text.parse::<Multiplier>().map_err(|e| e.to_string()),
            Err(expected.to_owned())
        );
        let e = risk_core::num::field::<Multiplier>(
            "contract_multiplier",
            text.parse().expect("decimal"),
        );
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err(format!("contract_multiplier: {expected}"))
        );
    }
    assert!("0".parse::<LotSize>().is_err());
    for band in ["0", "1", "1.5", "-0.1"] {
        assert!(band.parse::<PriceBand>().is_err(), "{band}");
    }
    assert!("0.999".parse::<PriceBand>().is_ok());
    let err = Instrument::new(InstrumentSpec {
        min_quantity: Quantity::lit("5"),
        max_quantity: Quantity::lit("1"),
        ..valid.clone()
    })
    .expect_err("min above max");
    assert_eq!(
        err.to_string(),
        "min_quantity: 5 is not valid: must be at most max_quantity (1)"
    );
    let err = Instrument::new(InstrumentSpec {
        symbol: risk_core::ids::Symbol::new(""),
        ..valid.clone()
    })
    .expect_err("empty symbol");
    assert_eq!(err.field, "symbol");
    assert!(Instrument::new(valid).is_ok());
}

/// Issue 12: a position could name a symbol that is no instrument, and every later check
/// of the account failed with UNKNOWN_SYMBOL. The engine now refuses the event, and the
/// sequence does not advance; sequence 0 cannot be built.
#[test]
fn a_position_on_an_unknown_symbol_is_refused() {
    use risk_core::engine::{AccountEvent, Applied, EngineEvent, EventError, Seq};
    use risk_core::ids::{AccountId, OrderId, Symbol};
    use risk_core::model::Side;
    use risk_core::num::{Leverage, Price, Quantity, SignedQuantity};
    let e = engine(config());
    let account = AccountId::new("A1");
    let event = |seq, event| EngineEvent::Account {
        account_id: account.clone(),
        seq: Seq::lit(seq),
        event,
    };
    let position = AccountEvent::PositionUpdate {
        symbol: Symbol::new("DOGEUSDT"),
        size: SignedQuantity::lit("1"),
        entry_price: Price::lit("1"),
        leverage: Leverage::lit("2"),
    };
    assert_eq!(
        e.apply(&event(10, position)),
        Err(EventError::UnknownSymbol(Symbol::new("DOGEUSDT")))
    );
    let order = AccountEvent::OrderOpened(risk_core::account::OpenOrder {
        order_id: OrderId::new("o"),
        symbol: Symbol::new("DOGEUSDT"),
        side: Side::Buy,
        quantity: Quantity::lit("1"),
        price: Price::lit("1"),
        leverage: Leverage::lit("2"),
        reduce_only: false,
    });
    assert_eq!(
        e.apply(&event(10, order)),
        Err(EventError::UnknownSymbol(Symbol::new("DOGEUSDT")))
    );
    let (_, last) = e.account(&account).expect("account");
    assert_eq!(last, 2, "the refused events did not advance the sequence");
    assert!(e.check(&request(), crate::fixture::now()).is_accepted());
    // The apply reports the sequence it left, from the same lock.
    let deposit = AccountEvent::BalanceChange {
        delta: risk_core::num::Money::lit("1"),
    };
    assert_eq!(
        e.apply_with_seq(&event(7, deposit.clone())),
        Ok((Applied::Applied, Some(7)))
    );
    assert_eq!(
        e.apply_with_seq(&event(5, deposit)),
        Ok((Applied::Duplicate { last_seq: 7 }, Some(7)))
    );
    assert_eq!(
        Seq::new(0).map_err(|e| e.to_string()),
        Err("seq: 0 is not valid: must be at least 1 (sequences start at 1)".to_owned())
    );
}
