"""`risk report --pnl gross --window N` against an independent pandas reference of the
FastAPI risk-signal service that riskgate replaces (issue 18, README "Migrating from a
FastAPI risk-signal service").

`service_metrics` is written the way such a service computes its seven metrics: plain
pandas over the `profit` column of the last N trades by close time, one initial balance
for the drawdown curve. Its three conventions where riskgate deliberately differs are
parameters whose defaults are the service's:

- a stop-loss or take-profit price of 0 counts as set (riskgate: 0 means not set);
- profit factor without a loss is infinity (riskgate: null);
- a close and an open at the same instant overlap (riskgate: they do not; a trade of
  zero length is never open).

With riskgate's three conventions the reference must equal `risk report` on every metric
of every account; with the service's, exactly the documented metrics differ, on the
accounts built to show it. Run by scripts/test.sh with the risk-py virtualenv (pandas,
pytest); RISKGATE_RISK_BIN names the `risk` binary (default target/debug/risk).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DATA = HERE.parent / "data" / "fastapi_parity"
SAMPLE = REPO / ".." / "shared" / "data" / "prop_trades_sample.csv"
RISK = Path(os.environ.get("RISKGATE_RISK_BIN", REPO / "target" / "debug" / "risk"))

SEVEN = [
    "win_ratio",
    "profit_factor",
    "max_relative_drawdown",
    "stop_loss_ratio",
    "take_profit_ratio",
    "hft_trades",
    "max_concurrent_trades",
]

RISKGATE_CONVENTIONS = dict(
    zero_price_is_set=False, profit_factor_without_loss=None, touching_overlap=False
)


def load_trades(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"trading_account_login": str, "identifier": str})
    df["opened_at"] = pd.to_datetime(df["opened_at"])
    df["closed_at"] = pd.to_datetime(df["closed_at"])
    return df


def service_metrics(
    trades: pd.DataFrame,
    initial_balance: float = 100_000.0,
    window_size: int = 100,
    hft_duration: float = 60.0,
    zero_price_is_set: bool = True,
    profit_factor_without_loss: float | None = math.inf,
    touching_overlap: bool = True,
) -> dict:
    """The seven metrics of one account as the replaced service computes them."""
    df = trades.sort_values("closed_at", kind="stable").tail(window_size)
    n = len(df)
    if n == 0:
        return dict(
            win_ratio=0.0,
            profit_factor=profit_factor_without_loss,
            max_relative_drawdown=0.0,
            stop_loss_ratio=0.0,
            take_profit_ratio=0.0,
            hft_trades=0,
            max_concurrent_trades=0,
            last_trade_at=None,
        )
    profit = df["profit"].astype(float)
    win_ratio = float((profit > 0).sum()) / n
    gross_profit = profit[profit > 0].sum()
    gross_loss = -profit[profit < 0].sum()
    profit_factor = gross_profit / gross_loss if gross_loss > 0 else profit_factor_without_loss

    equity = pd.concat(
        [pd.Series([initial_balance]), initial_balance + profit.cumsum()], ignore_index=True
    )
    peak = equity.cummax()
    max_relative_drawdown = float(((peak - equity) / peak).max())

    def is_set(prices: pd.Series) -> pd.Series:
        return prices.notna() if zero_price_is_set else prices.notna() & (prices != 0)

    stop_loss_ratio = float(is_set(df["price_sl"]).sum()) / n
    take_profit_ratio = float(is_set(df["price_tp"]).sum()) / n

    held = (df["closed_at"] - df["opened_at"]).dt.total_seconds()
    hft_trades = int((held < hft_duration).sum())

    events = [(t, 1) for t in df["opened_at"]] + [(t, -1) for t in df["closed_at"]]
    # At one instant the service counts opens before closes (touching trades overlap).
    events.sort(key=lambda e: (e[0], -e[1] if touching_overlap else e[1]))
    open_now = max_concurrent = 0
    for _, step in events:
        open_now += step
        max_concurrent = max(max_concurrent, open_now)

    return dict(
        win_ratio=win_ratio,
        profit_factor=profit_factor,
        max_relative_drawdown=max_relative_drawdown,
        stop_loss_ratio=stop_loss_ratio,
        take_profit_ratio=take_profit_ratio,
        hft_trades=hft_trades,
        max_concurrent_trades=max_concurrent,
        last_trade_at=trades["closed_at"].max(),
    )


def risk_report(*args: str) -> dict:
    if not RISK.exists():
        pytest.fail(
            f"{RISK} does not exist: build it (cargo build -p risk-adapters --features cli "
            "--bin risk) or set RISKGATE_RISK_BIN"
        )
    out = subprocess.run(
        [str(RISK), "report", "--pnl", "gross", "--format", "json", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and math.isinf(a):
        return isinstance(b, float) and math.isinf(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def differing(ours: dict, theirs: dict) -> list[str]:
    return [m for m in SEVEN if not same(ours[m], theirs[m])]


def at(text: str | None) -> pd.Timestamp | None:
    """A report time (RFC 3339, UTC) as a naive UTC timestamp like the export's."""
    return None if text is None else pd.Timestamp(text).tz_convert("UTC").tz_localize(None)


def compare_all(report: dict, trades: pd.DataFrame, balances: dict, window: int) -> dict:
    """Asserts riskgate == reference (riskgate conventions) for every account; returns,
    per account, the metrics where the service's own conventions give another value."""
    by_login = {login: g for login, g in trades.groupby("trading_account_login")}
    differences = {}
    for account in report["accounts"]:
        login = account["account_login"]
        group = by_login.get(login, trades.iloc[0:0])
        balance = balances.get(login, 100_000.0)
        assert account["initial_balance"] == balance, login
        assert account["trades"] == min(len(group), window), login
        ours = service_metrics(group, balance, window, **RISKGATE_CONVENTIONS)
        assert differing(account, ours) == [], (login, account, ours)
        assert at(account["last_trade_at"]) == ours["last_trade_at"], login
        theirs = service_metrics(group, balance, window)
        differences[login] = differing(account, theirs)
    return differences


def test_own_accounts_file_with_account_size_and_a_window():
    trades = load_trades(DATA / "trades.csv")
    accounts = pd.read_csv(DATA / "accounts.csv", dtype={"login": str})
    sizes = dict(zip(accounts["login"], accounts["account_size"].astype(float)))
    window = 10
    report = risk_report(
        "--trades",
        str(DATA / "trades.csv"),
        "--accounts",
        str(DATA / "accounts.csv"),
        "--window",
        str(window),
    )
    assert (report["pnl_basis"], report["window_size"]) == ("gross", window)
    assert len(report["accounts"]) == 5
    differences = compare_all(report, trades, sizes, window)
    # The service's conventions differ exactly where the fixture was built to show it:
    # 20000002's window has no loss (infinity vs null); 20000003 has stop-loss and
    # take-profit prices of 0 and trades opening the instant another closes.
    assert differences == {
        "20000001": [],
        "20000002": ["profit_factor"],
        "20000003": ["stop_loss_ratio", "take_profit_ratio", "max_concurrent_trades"],
        "20000004": [],
        "20000005": ["profit_factor"],
    }
    # The window matters: over the whole history the metrics differ.
    whole = risk_report(
        "--trades", str(DATA / "trades.csv"), "--accounts", str(DATA / "accounts.csv")
    )
    assert whole["window_size"] is None
    first = {a["account_login"]: a for a in whole["accounts"]}
    assert first["20000002"]["profit_factor"] is not None
    assert first["20000001"]["trades"] == 30
    # Account attributes and last_trade_at, and the latest over a user's accounts.
    by_login = {a["account_login"]: a for a in report["accounts"]}
    assert (by_login["20000003"]["platform"], by_login["20000003"]["phase"]) == (
        "ctrader",
        "funded",
    )
    assert by_login["20000005"]["last_trade_at"] is None
    users = {u["user_id"]: u for u in report["users"]}
    u1 = trades[trades["trading_account_login"].isin(["20000001", "20000002"])]
    assert at(users["U1"]["last_trade_at"]) == u1["closed_at"].max()
    challenges = {c["challenge_id"]: c for c in report["challenges"]}
    assert challenges["CH-5K"]["last_trade_at"] == by_login["20000001"]["last_trade_at"]


def test_real_sample_export():
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is absent")
    trades = load_trades(SAMPLE)
    report = risk_report("--trades", str(SAMPLE), "--window", "100")
    assert len(report["accounts"]) == trades["trading_account_login"].nunique() == 1064
    differences = compare_all(report, trades, {}, 100)
    # On the real export only the profit factor of accounts without a loss and the
    # concurrency of zero-length trades (a close at the instant of the open) differ.
    kinds = {m for ms in differences.values() for m in ms}
    assert kinds <= {"profit_factor", "max_concurrent_trades"}, kinds
    no_loss = {
        login
        for login, g in trades.groupby("trading_account_login")
        if (g["profit"] < 0).sum() == 0
    }
    assert {l for l, ms in differences.items() if "profit_factor" in ms} == no_loss
