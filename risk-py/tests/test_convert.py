"""The boundary: exact decimals, floats from their repr, datetimes, exceptions."""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

import riskgate
from conftest import BASE_CONFIG, NOW, engine, request


def same(a, b):
    """Equal in value and in representation (digits and exponent)."""
    return a.as_tuple() == b.as_tuple()


@pytest.mark.parametrize("text", ["0.100", "0.004", "0.1234567890123456789012345678", "0.0000000000000000000000000001"])
def test_decimals_round_trip_exactly_through_a_ladder(text):
    ladder = riskgate.TierLadder([{"floor": 0, "maintenance_rate": Decimal(text), "max_leverage": 1}])
    assert same(ladder.tiers[0]["maintenance_rate"], Decimal(text))


def test_decimals_round_trip_exactly_through_a_check(eng):
    r = eng.check(request(quantity=Decimal("0.100"), price=Decimal("50000.0")), now=NOW)
    assert r.decision == "APPROVED", r.message
    assert same(r.metrics["order_quantity"], Decimal("0.100"))
    assert same(r.metrics["order_price"], Decimal("50000.0"))
    assert same(r.metrics["order_notional"], Decimal("5000.0000"))  # 0.100 x 50000.0, exact


def test_scientific_notation_and_big_ints():
    ladder = riskgate.TierLadder([{"floor": 0, "maintenance_rate": Decimal("4E-3"), "max_leverage": "125"}])
    assert ladder.maintenance_margin("1E+3") == Decimal("4")
    assert ladder.initial_margin(2**70, 1) == Decimal(2**70)  # beyond i64, within 96 bits
    with pytest.raises(riskgate.InvalidInput, match="notional"):
        ladder.initial_margin(2**100, 1)


def test_floats_are_converted_from_their_repr(eng):
    # 0.1 is 0.1000000000000000055511151231257827... in binary; riskgate takes the 0.1
    # that Python prints.
    r = eng.check(request(quantity=0.1, price=50000.0, leverage=10.0), now=NOW)
    assert r.decision == "APPROVED", r.message
    assert str(r.metrics["order_quantity"]) == "0.1"
    assert r.required_initial_margin == Decimal("500")
    ladder = riskgate.TierLadder([{"floor": 0.0, "maintenance_rate": 0.004, "max_leverage": 125}])
    assert str(ladder.tiers[0]["maintenance_rate"]) == "0.004"
    assert ladder.maintenance_margin(1e-05) == Decimal("0.00000004")
    assert ladder.maintenance_margin(1e16) == Decimal("4E+13")
    class Price(float):
        def __repr__(self):
            return f"Price({float(self)!r})"

    class Lots:
        def __index__(self):
            return 3

    # Float subclasses (numpy.float64) use float's repr; integer-likes their __index__.
    assert str(ladder.initial_margin(Price(0.3), 1)) == "0.3"
    assert ladder.initial_margin(Lots(), 1) == Decimal(3)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(riskgate.InvalidInput, match="quantity"):
            eng.check(request(quantity=bad), now=NOW)


def test_bad_values_raise_invalid_input_naming_the_field(eng):
    cases = [
        ({"quantity": "abc"}, "quantity"),
        ({"quantity": " 1"}, "quantity"),
        ({"quantity": True}, "bool"),
        ({"quantity": Decimal("NaN")}, "quantity"),
        ({"price": [1]}, "price"),
        ({"side": "LONG"}, "side"),
        ({"side": 1}, "side"),
        ({"reduce_only": 1}, "reduce_only"),
        ({"account_id": 7}, "account_id"),
        ({"qty": "1"}, "unknown key `qty`"),
        ({"symbol": None}, "symbol: is required"),
    ]
    for changes, needle in cases:
        with pytest.raises(riskgate.InvalidInput, match=needle):
            eng.check(request(**changes), now=NOW)
    with pytest.raises(riskgate.InvalidInput, match="expected a dict"):
        eng.check([("account_id", "A1")], now=NOW)


def test_exceptions_are_riskgate_errors_with_the_rust_message(eng):
    with pytest.raises(riskgate.RiskgateError) as info:
        eng.check(request(quantity="1.2.3"), now=NOW)
    assert isinstance(info.value, riskgate.InvalidInput)
    assert "`1.2.3` is not a decimal number" in str(info.value)


def test_now_must_be_an_aware_datetime(eng):
    with pytest.raises(riskgate.InvalidInput, match="naive"):
        eng.check(request(), now=datetime(2026, 11, 23, 12))
    with pytest.raises(riskgate.InvalidInput, match="datetime"):
        eng.check(request(), now="2026-11-23T12:00:00Z")
    # Any tzinfo: the same instant at +02:00.
    plus2 = NOW.astimezone(timezone(timedelta(hours=2)))
    r = eng.check(request(), now=plus2)
    assert r.decision == "APPROVED", r.message
    assert r.checked_at == NOW and r.checked_at.utcoffset() == timedelta(0)
    # Microseconds survive.
    r = eng.check(request(order_id="O2"), now=NOW + timedelta(microseconds=123457))
    assert r.checked_at == NOW + timedelta(microseconds=123457)


def test_now_defaults_to_the_current_utc_time():
    e = engine()
    # The fixture's marks are from 2026-11-23 11:59:59: stale against the real clock unless
    # the machine's clock is within 5 s of that, so look only at checked_at.
    before = datetime.now(timezone.utc)
    r = e.check(request())
    after = datetime.now(timezone.utc)
    assert before - timedelta(seconds=1) <= r.checked_at <= after + timedelta(seconds=1)


def test_config_errors():
    bad = json.loads(json.dumps(BASE_CONFIG, default=str))
    bad["engine"]["limits"] = {"margin_call_ratio": "1.5"}
    with pytest.raises(riskgate.ConfigError, match="margin_call_ratio"):
        riskgate.RiskEngine(bad)
    typo = dict(BASE_CONFIG, engin={})
    with pytest.raises(riskgate.ConfigError, match="engin"):
        riskgate.RiskEngine(typo)
    with pytest.raises(riskgate.InvalidInput, match="dict or a path"):
        riskgate.RiskEngine(42)
    with pytest.raises(riskgate.InvalidInput, match="no config form"):
        riskgate.RiskEngine({"engine": {"default_ladder": object()}})
    # A config that serializes its datetimes as RFC 3339 text works the same.
    e = riskgate.RiskEngine(json.loads(json.dumps(BASE_CONFIG, default=lambda d: d.isoformat())), now=NOW)
    assert e.check(request(), now=NOW).decision == "APPROVED"
