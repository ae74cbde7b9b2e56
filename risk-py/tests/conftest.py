"""The Rust integration tests' fixture (risk-core/tests/it/fixture.rs), as a config dict.

BTCUSDT uses the USD-M style bracket ladder (0.40% / 125x up to 50k notional, then
0.50% / 100x, 1% / 50x, 2.5% / 20x, 5% / 10x); every other symbol a flat 1% / 20x ladder.
Account A1 (user U1): wallet 10,000, KYC L1, exposure limit 1,000,000, max leverage 50.
Marks are one second old at NOW: BTCUSDT 50,000 and ETHUSDT 3,000.
"""

import copy
from datetime import datetime, timedelta, timezone

import pytest

import riskgate

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)


def tier(floor, cap, mmr, lev):
    return {"floor": floor, "cap": cap, "maintenance_rate": mmr, "max_leverage": lev}


BTC_LADDER = [
    tier("0", "50000", "0.004", "125"),
    tier("50000", "250000", "0.005", "100"),
    tier("250000", "1000000", "0.01", "50"),
    tier("1000000", "10000000", "0.025", "20"),
    tier("10000000", None, "0.05", "10"),
]


def instrument(symbol, tick, lot, max_qty):
    return {
        "symbol": symbol,
        "tick_size": tick,
        "lot_size": lot,
        "min_quantity": lot,
        "max_quantity": max_qty,
        "contract_multiplier": "1",
        "max_leverage": "125",
        "required_kyc": "L1",
        "status": "TRADING",
        "price_band": "0.05",
    }


PROFILE = {
    "kyc_level": "L1",
    "exposure_limit": "1000000",
    "frozen": False,
    "max_leverage": "50",
    "risk_score": "10",
    "trading_state": "ACTIVE",
}

BASE_CONFIG = {
    "engine": {
        "default_ladder": [tier("0", None, "0.01", "20")],
        "ladders": {"BTCUSDT": BTC_LADDER},
    },
    "instruments": [
        instrument("BTCUSDT", "0.1", "0.001", "100"),
        instrument("ETHUSDT", "0.01", "0.01", "10000"),
    ],
    "marks": [
        {"symbol": "BTCUSDT", "price": "50000", "at": NOW - timedelta(seconds=1)},
        {"symbol": "ETHUSDT", "price": "3000", "at": NOW - timedelta(seconds=1)},
    ],
    "accounts": [
        {"id": "A1", "user_id": "U1", "wallet_balance": "10000", "profile": PROFILE},
    ],
}


def config(**changes):
    """A deep copy of the base config with `changes` applied: `limits`, `rules`,
    `profile`, `wallet_balance`, `positions` or `instruments` (a symbol -> changes map)."""
    c = copy.deepcopy(BASE_CONFIG)
    if "limits" in changes:
        c["engine"]["limits"] = changes["limits"]
    if "rules" in changes:
        c["engine"]["rules"] = changes["rules"]
    account = c["accounts"][0]
    account["profile"].update(changes.get("profile", {}))
    if "wallet_balance" in changes:
        account["wallet_balance"] = changes["wallet_balance"]
    if "positions" in changes:
        account["positions"] = changes["positions"]
    for inst in c["instruments"]:
        inst.update(changes.get("instruments", {}).get(inst["symbol"], {}))
    return c


def engine(**changes):
    return riskgate.RiskEngine(config(**changes), now=NOW)


def request(**changes):
    """Buy 0.1 BTCUSDT limit 50,000 at 10x: notional 5,000, initial margin 500."""
    r = {
        "user_id": "U1",
        "account_id": "A1",
        "order_id": "O1",
        "symbol": "BTCUSDT",
        "side": "BUY",
        "order_type": "LIMIT",
        "quantity": "0.1",
        "price": "50000",
        "leverage": "10",
        "trace_id": "T1",
    }
    r.update(changes)
    return {k: v for k, v in r.items() if v is not DROP}


DROP = object()
"""Pass as a request change to remove the key."""


def position(symbol, size, entry, lev):
    return {"symbol": symbol, "size": size, "entry_price": entry, "leverage": lev}


@pytest.fixture
def eng():
    return engine()
