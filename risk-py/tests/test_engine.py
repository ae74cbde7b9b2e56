"""Engine decisions equal to the Rust integration tests' (risk-core/tests/it/pretrade.rs)."""

from datetime import timedelta
from decimal import Decimal

import pytest

import riskgate
from conftest import DROP, NOW, engine, position, request


def assert_reject(result, reason, needle):
    assert result.decision == "REJECTED", result
    assert result.reject_reason == reason, result.message
    assert not result.accepted
    assert needle in result.message, result.message


def run(**changes):
    return engine().check(request(**changes), now=NOW)


def test_approves_a_plain_limit_order_with_exact_figures(eng):
    r = eng.check(request(), now=NOW)
    assert r.decision == "APPROVED", r.message
    assert r.accepted
    assert r.reject_reason is None
    assert r.required_initial_margin == Decimal("500")
    m = r.metrics
    assert m["order_notional"] == Decimal("5000")
    assert m["available_margin"] == Decimal("10000")
    assert m["projected_exposure"] == Decimal("5000")
    # 5,000 notional in the first BTC bracket: 5,000 x 0.004 = 20; 20 / 10,000.
    assert m["projected_maintenance_margin"] == Decimal("20")
    assert r.projected_margin_ratio == Decimal("0.002")
    assert not r.liquidation_risk and not r.margin_call
    assert r.trace_id == "T1"
    assert (r.account_id, r.order_id, r.symbol) == ("A1", "O1", "BTCUSDT")
    assert r.checked_at == NOW
    assert r.rule_hits == []
    assert all(isinstance(v, Decimal) for v in m.values() if v is not None)
    d = r.to_dict()
    assert d["decision"] == "APPROVED" and d["metrics"] == m


def test_market_orders_are_valued_at_the_mark_widened_by_slippage():
    buy = run(order_type="MARKET", price=DROP)
    assert buy.metrics["order_price"] == Decimal("50500")
    sell = run(order_type="MARKET", price=DROP, side="SELL")
    assert sell.metrics["order_price"] == Decimal("49500")
    # Order type and leverage are required, as on every surface: nothing is guessed.
    with pytest.raises(riskgate.InvalidInput, match="^order_type: is required$"):
        run(order_type=DROP, price=None)
    with pytest.raises(riskgate.InvalidInput, match="^leverage: is required$"):
        run(leverage=DROP)


@pytest.mark.parametrize(
    "changes,needle",
    [
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "-1"}, "quantity"),
        ({"price": DROP}, "price is required"),
        ({"price": "-5"}, "price"),
        ({"leverage": "0.5"}, "leverage"),
        ({"order_id": ""}, "order_id"),
        ({"order_type": "MARKET"}, "MARKET"),
        ({"order_type": "MARKET", "price": DROP, "post_only": True}, "post_only"),
        ({"quantity": "0.0005"}, "minimum"),
        ({"quantity": "0.1005"}, "lot size"),
        ({"price": "50000.05"}, "tick size"),
        ({"user_id": "U2"}, "does not belong"),
    ],
)
def test_invalid_requests_are_rejected_naming_the_field(changes, needle):
    assert_reject(run(**changes), "INVALID_REQUEST", needle)


def test_unknown_account_and_symbol_fail_closed():
    r = run(account_id="A9")
    assert_reject(r, "UNKNOWN_ACCOUNT", "A9")
    assert r.metrics == {} and r.required_initial_margin is None
    assert_reject(run(symbol="DOGEUSDT"), "UNKNOWN_SYMBOL", "DOGEUSDT")


def test_kill_switch_levels():
    e = engine()
    assert e.apply({"type": "global_trading_state", "state": "HALTED"}) == "applied"
    assert_reject(e.check(request(), now=NOW), "TRADING_HALTED", "global")

    e = engine()
    assert e.apply({"type": "trading_state", "account_id": "A1", "seq": 3, "state": "HALTED"}) == "applied"
    assert_reject(e.check(request(), now=NOW), "TRADING_HALTED", "account")

    halted = engine(instruments={"BTCUSDT": {"status": "HALTED"}})
    assert_reject(halted.check(request(), now=NOW), "INSTRUMENT_NOT_TRADING", "symbol")


def test_reducing_state_passes_only_reducing_orders():
    e = engine(
        positions=[position("BTCUSDT", "0.5", "50000", "10")],
        profile={"trading_state": "REDUCING"},
    )
    assert e.check(request(side="SELL"), now=NOW).decision == "APPROVED"
    assert_reject(e.check(request(order_id="O2"), now=NOW), "TRADING_HALTED", "REDUCING")


def test_frozen_and_kyc():
    assert_reject(engine(profile={"frozen": True}).check(request(), now=NOW), "USER_FROZEN", "frozen")
    assert_reject(
        engine(profile={"kyc_level": "L0"}).check(request(), now=NOW),
        "KYC_INSUFFICIENT",
        "requires KYC L1",
    )


def test_duplicate_order_ids_within_the_horizon(eng):
    assert eng.check(request(), now=NOW).decision == "APPROVED"
    assert_reject(eng.check(request(), now=NOW + timedelta(minutes=5)), "DUPLICATE_ORDER", "O1")
    # Beyond the 10-minute horizon the id may be reused (with a fresh mark).
    later = NOW + timedelta(minutes=11)
    assert eng.apply({"type": "mark", "symbol": "BTCUSDT", "price": "50000", "at": later}) == "applied"
    assert eng.check(request(), now=later).decision == "APPROVED"


def test_order_rate_limit_over_the_window():
    e = engine(limits={"rate_limit": {"max_orders": 3, "window_ms": 1000}})
    for i in range(3):
        at = NOW - timedelta(milliseconds=900 - i * 100)
        assert e.check(request(order_id=f"P{i}"), now=at).decision == "APPROVED"
    assert_reject(e.check(request(), now=NOW), "RATE_LIMITED", "3 orders")
    # 200 ms later the oldest has left the window.
    assert e.check(request(), now=NOW + timedelta(milliseconds=200)).decision == "APPROVED"


def test_stale_or_missing_marks(eng):
    r = eng.check(request(), now=NOW + timedelta(seconds=5))
    assert_reject(r, "STALE_DATA", "6000 ms old")
    assert r.metrics == {}


def test_reduce_only_must_reduce_and_then_bypasses_margin_and_exposure():
    assert_reject(run(side="SELL", reduce_only=True), "REDUCE_ONLY_VIOLATION", "would open")
    e = engine(
        positions=[position("BTCUSDT", "2", "50000", "50")],
        wallet_balance="100",
        profile={"exposure_limit": "10"},
    )
    r = e.check(request(side="SELL", reduce_only=True), now=NOW)
    assert r.decision == "APPROVED", r.message
    assert r.required_initial_margin == Decimal("0")


def test_price_band_and_max_order_size():
    assert_reject(run(price="52600"), "PRICE_OUT_OF_BAND", "band is 0.05")
    assert run(price="52500").decision == "APPROVED"
    assert_reject(run(quantity="100.001"), "MAX_ORDER_SIZE_EXCEEDED", "maximum 100")


def test_leverage_cap_is_the_minimum_of_profile_instrument_and_tier():
    assert_reject(run(leverage="51"), "MAX_LEVERAGE_EXCEEDED", "cap 50")
    # 30 BTC = 1,500,000 notional lands in the 20x bracket.
    e = engine(wallet_balance="1000000", profile={"exposure_limit": "100000000"})
    assert_reject(e.check(request(quantity="30", leverage="25"), now=NOW), "MAX_LEVERAGE_EXCEEDED", "cap 20")
    assert e.check(request(quantity="30", leverage="20"), now=NOW).decision == "APPROVED"


def test_exposure_counts_positions_open_orders_and_reservations():
    e = engine(profile={"exposure_limit": "20000"}, positions=[position("ETHUSDT", "-3", "3000", "10")])
    assert e.apply({
        "type": "order_opened", "account_id": "A1", "seq": 4, "order_id": "R1",
        "symbol": "ETHUSDT", "side": "BUY", "quantity": "1", "price": "2900", "leverage": "10",
    }) == "applied"
    eth_sell = request(order_id="R2", symbol="ETHUSDT", side="SELL", quantity="1", price="3100")
    reserved = e.check(eth_sell, now=NOW, reserve=True)
    assert reserved.decision == "APPROVED", reserved.message
    assert e.account("A1")["reservations"] == [
        {"order_id": "R2", "amount": Decimal("310"), "notional": Decimal("3100")}
    ]
    # 9,000 + 2,900 + 3,100 + 5,000 = 20,000: at the limit passes.
    r = e.check(request(), now=NOW)
    assert r.decision == "APPROVED", r.message
    assert r.metrics["projected_exposure"] == Decimal("20000")
    assert r.metrics["exposure_utilization"] == Decimal("1")
    assert_reject(e.check(request(order_id="O2", quantity="0.101"), now=NOW), "EXPOSURE_LIMIT_EXCEEDED", "limit 20000")
    # Releasing the reservation frees its exposure.
    assert e.apply({"type": "reservation_released", "account_id": "A1", "seq": 5, "order_id": "R2"}) == "applied"
    assert e.check(request(order_id="O3", quantity="0.101"), now=NOW).decision == "APPROVED"


def test_initial_margin_against_available_margin():
    # upnl -200, IM 600: margin balance 1,300; available 700; the order needs 500.
    e = engine(wallet_balance="1500", positions=[position("ETHUSDT", "2", "3100", "10")])
    r = e.check(request(), now=NOW)
    assert r.decision == "APPROVED", r.message
    assert r.metrics["available_margin"] == Decimal("700")
    assert_reject(e.check(request(order_id="O2", quantity="0.141"), now=NOW), "INSUFFICIENT_MARGIN", "705")


def test_liquidation_risk_when_the_fill_itself_sinks_the_margin_balance():
    e = engine(instruments={"BTCUSDT": {"price_band": None}})
    r = e.check(request(quantity="1", price="100000", leverage="50"), now=NOW)
    assert_reject(r, "LIQUIDATION_RISK", "not positive")
    assert r.liquidation_risk and r.margin_call
    assert r.projected_margin_ratio is None
    assert r.metrics["projected_margin_ratio"] is None


def test_margin_call_and_liquidation_thresholds_from_config():
    r = engine(limits={"margin_call_ratio": "0.001"}).check(request(), now=NOW)
    assert r.decision == "APPROVED"
    assert r.margin_call and not r.liquidation_risk
    e = engine(limits={"margin_call_ratio": "0.001", "liquidation_ratio": "0.002"})
    assert_reject(e.check(request(), now=NOW), "LIQUIDATION_RISK", "0.002")


def rule(id, metric, op, threshold, action):
    return {"id": id, "metric": metric, "operator": op, "threshold": threshold, "severity": "HIGH", "action": action}


def test_reject_rules_reject_warn_rules_flag_and_hits_survive_earlier_rejects():
    rules = [
        rule("notional-cap", "order_notional", ">", "4000", "REJECT"),
        rule("lev-watch", "leverage", ">=", "10", "WARN"),
    ]
    r = engine(rules=rules).check(request(), now=NOW)
    assert_reject(r, "RISK_RULE_VIOLATION", "notional-cap")
    assert r.rule_hits == ["lev-watch", "notional-cap"]
    hit = r.rule_hit_details[1]
    assert hit["value"] == Decimal("5000") and hit["threshold"] == Decimal("4000")
    assert hit["operator"] == ">" and hit["action"] == "REJECT"

    flagged = engine(rules=rules[1:]).check(request(), now=NOW)
    assert flagged.decision == "FLAGGED" and flagged.accepted
    assert flagged.reject_reason is None

    frozen = engine(rules=rules, profile={"frozen": True}).check(request(), now=NOW)
    assert frozen.reject_reason == "USER_FROZEN"
    assert len(frozen.rule_hits) == 2


def test_fills_move_positions_and_the_wallet(eng):
    def fill(seq, side, qty, price):
        return {
            "type": "order_filled", "account_id": "A1", "seq": seq, "order_id": f"F{seq}",
            "symbol": "BTCUSDT", "side": side, "quantity": qty, "price": price, "leverage": "10",
        }

    assert eng.apply(fill(3, "BUY", "0.2", "50000")) == "applied"
    assert eng.apply(fill(4, "SELL", "0.1", "51000")) == "applied"
    a = eng.account("A1")
    assert a["positions"] == [
        {"symbol": "BTCUSDT", "size": Decimal("0.1"), "entry_price": Decimal("50000"), "leverage": Decimal("10")}
    ]
    assert a["wallet_balance"] == Decimal("10100")  # 0.1 x (51,000 - 50,000) realized
    assert a["profile"] == {  # the core's account view, as gRPC GetAccount carries it
        "kyc_level": "L1", "exposure_limit": Decimal("1000000"), "frozen": False,
        "max_leverage": Decimal("50"), "risk_score": Decimal("10"), "trading_state": "ACTIVE",
    }
    assert a["last_seq"] == 4
    assert eng.account("nobody") is None
    assert eng.account_count == 1


def test_event_outcomes_and_errors(eng):
    mark = {"type": "mark", "symbol": "BTCUSDT", "price": "50100", "at": NOW}
    assert eng.apply(mark) == "applied"
    assert eng.apply(mark) == "stale"
    assert eng.apply({"type": "balance_change", "account_id": "A1", "seq": 2, "delta": "5"}) == "duplicate"
    assert eng.apply({"type": "balance_change", "account_id": "A1", "seq": 9, "delta": "-5.5"}) == "applied"
    assert eng.account("A1")["wallet_balance"] == Decimal("9994.5")
    with pytest.raises(riskgate.EventError, match="not known"):
        eng.apply({"type": "balance_change", "account_id": "B7", "seq": 1, "delta": "5"})
    with pytest.raises(riskgate.EventError, match="XRPUSDT"):
        eng.apply({"type": "order_filled", "account_id": "A1", "seq": 10, "order_id": "X1",
                   "symbol": "XRPUSDT", "side": "BUY", "quantity": "1", "price": "1", "leverage": "1"})
    with pytest.raises(riskgate.EventError, match="already open"):
        opened = {"type": "order_opened", "account_id": "A1", "order_id": "R1", "symbol": "BTCUSDT",
                  "side": "BUY", "quantity": "1", "price": "49000", "leverage": "10"}
        assert eng.apply({**opened, "seq": 11}) == "applied"
        eng.apply({**opened, "seq": 12})
    # A refused event leaves the sequence where it was.
    assert eng.account("A1")["last_seq"] == 11
    with pytest.raises(riskgate.InvalidInput, match="unknown variant `tick`"):
        eng.apply({"type": "tick"})
    with pytest.raises(riskgate.InvalidInput, match="unknown field `qty`"):
        eng.apply({"type": "balance_change", "account_id": "A1", "seq": 13, "delta": "1", "qty": 1})
    with pytest.raises(riskgate.InvalidInput, match="^price: -1 is not valid: must be greater than zero$"):
        eng.apply({"type": "mark", "symbol": "BTCUSDT", "price": "-1", "at": NOW})
    with pytest.raises(riskgate.InvalidInput, match="^seq: 0 is not valid: must be at least 1"):
        eng.apply({"type": "balance_change", "account_id": "A1", "seq": 0, "delta": "1"})


def test_profile_upsert_and_instrument_events_create_state():
    e = engine()
    assert e.apply({"type": "instrument", **{
        "symbol": "SOLUSDT", "tick_size": "0.01", "lot_size": "0.1", "min_quantity": "0.1",
        "max_quantity": "10000", "contract_multiplier": "1", "max_leverage": "50",
        "required_kyc": "L0", "status": "TRADING", "price_band": None,
    }}) == "applied"
    assert e.apply({"type": "mark", "symbol": "SOLUSDT", "price": 150, "at": NOW}) == "applied"
    profile = {"kyc_level": "L0", "exposure_limit": "10000", "max_leverage": "5"}
    assert e.apply({"type": "profile_upsert", "account_id": "B1", "seq": 1, "user_id": "U9", "profile": profile}) == "applied"
    assert e.apply({"type": "balance_change", "account_id": "B1", "seq": 2, "delta": 1000}) == "applied"
    req = request(user_id="U9", account_id="B1", symbol="SOLUSDT", quantity="10", price="150", leverage="5")
    r = e.check(req, now=NOW)
    assert r.decision == "APPROVED", r.message
    assert r.required_initial_margin == Decimal("300")
    with pytest.raises(riskgate.InvalidInput, match="profile"):
        e.apply({"type": "profile_upsert", "account_id": "B1", "seq": 3, "user_id": "U9",
                 "profile": {"kyc": "L1"}})


def test_demo_config_file_loads_from_a_path(tmp_path):
    import pathlib

    demo = pathlib.Path(__file__).resolve().parents[2] / "examples" / "config" / "demo.toml"
    for config in (demo, str(demo)):
        e = riskgate.RiskEngine(config, now=NOW)
        assert e.account_count == 3
        r = e.check(
            {"user_id": "alice", "account_id": "acc-alice", "order_id": "o1", "symbol": "BTCUSDT",
             "side": "BUY", "order_type": "LIMIT", "quantity": "0.1", "price": "50000", "leverage": "10"},
            now=NOW,
        )
        assert r.decision == "APPROVED", r.message
        assert r.required_initial_margin == Decimal("500")
    # The same file as JSON.
    bad = tmp_path / "bad.json"
    bad.write_text('{"engine": {"default_ladder": []}}')
    with pytest.raises(riskgate.ConfigError, match="bad.json"):
        riskgate.RiskEngine(bad)
    with pytest.raises(riskgate.ConfigError, match="missing.toml"):
        riskgate.RiskEngine(tmp_path / "missing.toml")
