"""TierLadder figures equal to the Rust vectors (risk-core/src/margin.rs tests)."""

from decimal import Decimal

import pytest

import riskgate
from conftest import NOW, engine, tier

# Binance "BTCUSDT 125x perpetual" brackets, 2021-03-18 (the margin.rs test vector).
BTCUSDT_2021 = [
    tier("0", "50000", "0.004", "125"),
    tier("50000", "250000", "0.005", "100"),
    tier("250000", "1000000", "0.01", "50"),
    tier("1000000", "10000000", "0.025", "20"),
    tier("10000000", "20000000", "0.05", "10"),
    tier("20000000", "50000000", "0.10", "5"),
    tier("50000000", "100000000", "0.125", "4"),
    tier("100000000", "200000000", "0.15", "3"),
    tier("200000000", "300000000", "0.25", "2"),
    tier("300000000", "500000000", "0.50", "1"),
]


@pytest.fixture
def btc():
    return riskgate.TierLadder(BTCUSDT_2021)


def test_maintenance_amounts_to_the_cent(btc):
    assert btc.maintenance_amounts == [
        Decimal(x)
        for x in ["0", "50", "1300", "16300", "266300", "1266300", "2516300", "5016300", "25016300", "100016300"]
    ]
    assert len(btc) == 10


def test_maintenance_margin_worked_example(btc):
    # 264,000 USDT in tier 2: 264,000 x 1% - 1,300 = 1,340; bracket by bracket
    # 50,000 x 0.4% + 200,000 x 0.5% + 14,000 x 1% = 200 + 1,000 + 140.
    assert btc.maintenance_margin(264000) == Decimal("1340")
    assert btc.maintenance_margin("264000") == Decimal("1340")
    assert btc.maintenance_margin(Decimal("264000")) == Decimal("1340")
    assert btc.tier_index(264000) == 2
    assert btc.max_leverage(264000) == Decimal("50")
    assert btc.maintenance_margin(0) == Decimal("0")


def test_tier_lookup_is_floor_inclusive(btc):
    assert btc.tier_index("49999.99") == 0
    assert btc.tier_index(50000) == 1
    assert btc.max_leverage(50000) == Decimal("100")
    assert btc.is_open_at(500000000) and not btc.is_open_at("500000000.01")


def test_initial_margin_is_notional_over_leverage(btc):
    assert btc.initial_margin(60000, 125) == Decimal("480")
    assert btc.initial_margin("1000", "3") * 3 == Decimal("1000")


def test_liquidation_prices(btc):
    # Long 1 BTC at 60,000 with 6,000 isolated: (6,000 + 50 - 60,000) / (0.005 - 1).
    long = btc.liquidation_price("BUY", 1, 60000, 6000)
    assert long.quantize(Decimal("0.01")) == Decimal("54221.11")
    # Short: (6,000 + 50 + 60,000) / (1 + 0.005).
    short = btc.liquidation_price("SELL", "1", "60000", "6000", multiplier=1)
    assert short.quantize(Decimal("0.01")) == Decimal("65721.39")
    # Fully collateralised long: no positive liquidation price.
    assert btc.liquidation_price("BUY", 1, 60000, 60000) is None


def test_tiers_round_trip_exactly(btc):
    tiers = btc.tiers
    assert tiers[0] == {
        "floor": Decimal("0"),
        "cap": Decimal("50000"),
        "maintenance_rate": Decimal("0.004"),
        "max_leverage": Decimal("125"),
        "active": True,
    }
    assert str(tiers[5]["maintenance_rate"]) == "0.10"  # the scale survives
    assert riskgate.TierLadder(tiers).maintenance_amounts == btc.maintenance_amounts


def test_the_engine_exposes_its_ladders():
    e = engine()
    assert e.ladder("BTCUSDT").maintenance_margin(264000) == Decimal("1340")
    assert e.ladder("ANYTHING").tiers[0]["maintenance_rate"] == Decimal("0.01")


@pytest.mark.parametrize(
    "tiers,needle",
    [
        ([], "at least one tier"),
        ([tier("0", None, "1.5", "20")], "1.5"),
        ([tier("10", None, "0.01", "20")], "tier 0 must start at notional 0"),
        ([tier("0", "100", "0.01", "20"), tier("200", None, "0.02", "10")], "gap before tier 1"),
        ([tier("0", "100", "0.01", "20"), tier("100", None, "0.02", "30")], "must not increase"),
    ],
)
def test_invalid_ladders_raise_config_error(tiers, needle):
    with pytest.raises(riskgate.ConfigError, match=needle):
        riskgate.TierLadder(tiers)


def test_bad_arguments_raise_invalid_input(btc):
    with pytest.raises(riskgate.InvalidInput, match="notional"):
        btc.maintenance_margin("-1")
    with pytest.raises(riskgate.InvalidInput, match="leverage"):
        btc.initial_margin(100, "0.5")
    with pytest.raises(riskgate.InvalidInput, match="side"):
        btc.liquidation_price("LONG", 1, 60000, 6000)
    with pytest.raises(riskgate.InvalidInput, match="overflow"):
        btc.liquidation_price("BUY", "79228162514264337593543950335", 2, 1)
    with pytest.raises(riskgate.InvalidInput, match="tiers"):
        riskgate.TierLadder([{"floor": "0", "rate": "0.01"}])
