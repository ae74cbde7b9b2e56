"""A straightforward pandas implementation of riskgate's trade metrics, for comparison.

Written the way an analyst would: read the export with pandas, net P&L per trade, then a
groupby per account. Same conventions as risk-core's `metrics` module: net P&L = profit +
commission + swap decides wins and drives the balance curve (trades in close-time order,
losses first on ties); drawdown is relative to the running peak from the initial balance;
HFT = held strictly under 60 s; concurrency counts [open, close) intervals.

Rows riskgate skips (a price that is not a number, closed before opened, no login) are
dropped, and the first row of each identifier kept, so that the two count the same trades.

Usage: python pandas_metrics.py TRADES.csv [ACCOUNTS.csv] [--out METRICS.json]
  -> prints one JSON summary line; --out writes every account's metrics.
"""
import json
import sys
import time

import numpy as np
import pandas as pd


def max_concurrent(opened: np.ndarray, closed: np.ndarray) -> int:
    events = np.concatenate([np.stack([closed, np.zeros_like(closed)], 1), np.stack([opened, np.ones_like(opened)], 1)])
    order = np.lexsort((events[:, 1], events[:, 0]))  # closes before opens at the same instant
    deltas = np.where(events[order, 1] == 1, 1, -1)
    return int(np.cumsum(deltas).max(initial=0))


def account_metrics(g: pd.DataFrame, initial: float) -> dict:
    g = g.sort_values(["closed_at", "net"], kind="mergesort")
    net = g["net"].to_numpy()
    balance = initial + np.cumsum(net)
    peak = np.maximum.accumulate(np.concatenate([[initial], balance]))[1:]
    drawdown = float(np.max((peak - balance) / peak, initial=0.0))
    wins, losses = net[net > 0], net[net < 0]
    held = (g["closed_at"] - g["opened_at"]).dt.total_seconds().to_numpy()
    day = g["closed_at"].dt.floor("D").to_numpy()
    start_of_day = np.concatenate([[initial], balance[:-1]])
    daily = pd.DataFrame({"day": day, "start": start_of_day, "bal": balance}).groupby("day").agg(start=("start", "first"), low=("bal", "min"))
    return {
        "trades": len(g),
        "win_ratio": len(wins) / len(g),
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else None,
        "max_relative_drawdown": drawdown,
        "stop_loss_ratio": float((g["price_sl"].fillna(0) != 0).mean()),
        "take_profit_ratio": float((g["price_tp"].fillna(0) != 0).mean()),
        "hft_trades": int((held < 60).sum()),
        "max_concurrent_trades": max_concurrent(g["opened_at"].astype("int64").to_numpy(), g["closed_at"].astype("int64").to_numpy()),
        "net_profit": float(net.sum()),
        "max_daily_loss": float((daily["start"] - daily["low"]).clip(lower=0).max()),
    }


def main() -> None:
    args = sys.argv[1:]
    out_path = None
    if "--out" in args:
        i = args.index("--out")
        out_path = args[i + 1]
        del args[i:i + 2]
    t0 = time.perf_counter()
    df = pd.read_csv(args[0], parse_dates=["opened_at", "closed_at"], dtype={"identifier": str, "trading_account_login": str})
    df["open_price"] = pd.to_numeric(df["open_price"], errors="coerce")
    df = df[df["open_price"].notna() & df["trading_account_login"].notna() & (df["closed_at"] >= df["opened_at"])]
    df = df.drop_duplicates("identifier")
    # Rounded to 8 decimals: the f64 sum carries noise that would turn break-even trades
    # into wins (riskgate's sums are exact decimals).
    df["net"] = (df["profit"] + df["commission"] + df["swap"]).round(8)
    initial = {}
    if len(args) > 1:
        acc = pd.read_csv(args[1], dtype={"login": str})
        if "initial_balance" in acc:
            initial = dict(zip(acc["login"], acc["initial_balance"]))
    t1 = time.perf_counter()
    out = {login: account_metrics(g, float(initial.get(login, 100_000.0))) for login, g in df.groupby("trading_account_login")}
    t2 = time.perf_counter()
    if out_path:
        with open(out_path, "w") as f:
            json.dump(out, f)
    print(json.dumps({"accounts": len(out), "trades": int(len(df)), "read_s": t1 - t0, "metrics_s": t2 - t1, "total_s": t2 - t0}))


if __name__ == "__main__":
    main()
