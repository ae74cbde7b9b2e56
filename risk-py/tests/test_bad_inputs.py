"""The cross-adapter table (risk-adapters/tests/data/bad_inputs.json) through the Python
bindings: every bad input is refused by ``RiskEngine.apply`` or ``RiskEngine.check`` with a
message naming the same field and giving the same reason as the config file loader and
the gRPC server (risk-adapters/tests/bad_inputs.rs)."""

import json
import pathlib

import pytest

import riskgate

ROOT = pathlib.Path(__file__).resolve().parents[2]
TABLE = json.loads((ROOT / "risk-adapters" / "tests" / "data" / "bad_inputs.json").read_text())
DEMO = ROOT / "examples" / "config" / "demo.toml"


def case_value(case):
    value = dict(TABLE["bases"][case["target"]])
    value.update(case.get("set", {}))
    for key in case.get("unset", []):
        value.pop(key, None)
    return value


def event(case):
    """The event dict for a case, in the engine's serde form, or None for an order."""
    v = case_value(case)
    target = case["target"]
    if target in ("instrument", "mark"):
        return {"type": target, **v}
    if target == "position":
        return {"type": "position_update", "account_id": "acc-alice", "seq": 100, **v}
    if target == "profile":
        return {"type": "profile_upsert", "account_id": "acc-alice", "seq": 100,
                "user_id": "alice", "profile": v}
    if target == "balance_change":
        return {"type": "balance_change", **v}
    return None


def refusal(engine, case):
    """The message with which the engine refuses the case."""
    ev = event(case)
    if ev is not None:
        with pytest.raises(riskgate.RiskgateError) as info:
            engine.apply(ev)
        return str(info.value)
    try:
        result = engine.check(case_value(case))
    except riskgate.InvalidInput as e:
        return str(e)
    assert result.decision == "REJECTED" and result.reject_reason == "INVALID_REQUEST", result
    return result.message


def test_the_table_has_at_least_30_inputs():
    assert len(TABLE["cases"]) >= 30


def test_the_valid_bases_are_accepted():
    engine = riskgate.RiskEngine(DEMO)
    assert engine.check(TABLE["bases"]["order"]).decision == "APPROVED"


@pytest.mark.parametrize("case", TABLE["cases"], ids=lambda c: c["name"])
def test_every_bad_input_is_refused_naming_the_field_and_reason(case):
    engine = riskgate.RiskEngine(DEMO)
    message = refusal(engine, case)
    assert case["field"] in message and case["reason"] in message, message
    # A refused input changes nothing.
    assert engine.account("acc-alice")["last_seq"] == 3


def test_a_zero_multiplier_instrument_is_refused_as_by_the_config_file():
    """Issue 12: the demo's BTCUSDT with contract_multiplier "0" was accepted by
    RiskEngine.apply; it is refused the way the config file refuses it."""
    engine = riskgate.RiskEngine(DEMO)
    case = next(c for c in TABLE["cases"] if c["name"] == "zero multiplier")
    with pytest.raises(riskgate.InvalidInput) as info:
        engine.apply(event(case))
    assert str(info.value) == "contract_multiplier: 0 is not valid: must be greater than zero"
    bad = DEMO.read_text().replace('contract_multiplier = "1"', 'contract_multiplier = "0"', 1)
    with pytest.raises(riskgate.ConfigError, match=r"instruments\[0\]\.contract_multiplier: 0 is not valid"):
        riskgate.RiskEngine(_write(bad))


def _write(text):
    import tempfile

    f = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    f.write(text)
    f.close()
    return f.name
