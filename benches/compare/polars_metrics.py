"""A vectorized polars implementation of riskgate's trade metrics, for comparison.

Written the way a quant who knows polars would: read only the columns the metrics need
(multi-threaded reader, dates parsed by the reader), drop the rows riskgate skips (a price
that is not a number, closed before opened, no login), keep the first row of each
identifier, then whole-frame expressions with window functions per account; no Python
loop over accounts. Same conventions as risk-core's `metrics` module and
`pandas_metrics.py`: net P&L = profit + commission + swap decides wins and drives the
balance curve (trades in close-time order, losses first on ties); drawdown is relative to
the running peak from the initial balance; HFT = held strictly under 60 s; concurrency
counts [open, close) intervals (a close before an open at the same instant); a day's loss
is its opening balance minus its lowest balance after a trade, floored at 0 (UTC days).
Floats (f64) throughout, as polars computes, with the net P&L rounded to 8 decimals (the
exports' amounts have fewer) so that float noise does not turn a break-even trade into a
win; riskgate's figures are exact decimals.

Usage: python polars_metrics.py TRADES.csv [ACCOUNTS.csv] [--out METRICS.json]
  -> prints one JSON summary line; --out writes every account's metrics.
"""
import json
import sys
import time

import polars as pl

DEFAULT_INITIAL = 100_000.0
HFT_SECONDS = 60


def read(trades: str, accounts: str | None) -> pl.DataFrame:
    df = pl.read_csv(
        trades,
        columns=[
            "identifier", "open_price", "opened_at", "closed_at", "price_sl", "price_tp",
            "profit", "commission", "swap", "trading_account_login",
        ],
        schema_overrides={
            "identifier": pl.Utf8, "trading_account_login": pl.Utf8,
            "open_price": pl.Float64, "price_sl": pl.Float64, "price_tp": pl.Float64,
            "profit": pl.Float64, "commission": pl.Float64, "swap": pl.Float64,
        },
        try_parse_dates=True,
        # A cell that is not a number becomes null; such rows are dropped below, as
        # riskgate skips them.
        ignore_errors=True,
    )
    df = (
        df.filter(
            pl.col("open_price").is_not_null()
            & pl.col("trading_account_login").is_not_null()
            & (pl.col("closed_at") >= pl.col("opened_at"))
        )
        .unique("identifier", keep="first", maintain_order=True)
        .rename({"trading_account_login": "login"})
    )
    initial = pl.lit(DEFAULT_INITIAL)
    if accounts:
        acc = pl.read_csv(accounts, schema_overrides={"login": pl.Utf8})
        if "initial_balance" in acc.columns:
            acc = acc.select("login", pl.col("initial_balance").cast(pl.Float64))
            df = df.join(acc, on="login", how="left")
            initial = pl.col("initial_balance").fill_null(DEFAULT_INITIAL)
    return df.with_columns(
        initial=initial,
        # Rounded to 8 decimals: the f64 sum of three amounts carries noise (0.07 - 0.07 + 0.0
        # may come out 1e-17), which would turn break-even trades into wins.
        net=(pl.col("profit") + pl.col("commission") + pl.col("swap")).round(8),
    )


def metrics(df: pl.DataFrame) -> pl.DataFrame:
    held = (pl.col("closed_at") - pl.col("opened_at")).dt.total_microseconds()
    curve = (
        df.sort(["login", "closed_at", "net"])
        .with_columns(balance=pl.col("initial") + pl.col("net").cum_sum().over("login"))
        .with_columns(
            peak=pl.max_horizontal(pl.col("initial"), pl.col("balance").cum_max().over("login")),
            day=pl.col("closed_at").dt.truncate("1d"),
        )
    )
    per_account = curve.group_by("login").agg(
        trades=pl.len(),
        win_ratio=(pl.col("net") > 0).mean(),
        gross_profit=pl.col("net").filter(pl.col("net") > 0).sum(),
        gross_loss=-pl.col("net").filter(pl.col("net") < 0).sum(),
        max_relative_drawdown=((pl.col("peak") - pl.col("balance")) / pl.col("peak")).max().clip(0.0),
        stop_loss_ratio=(pl.col("price_sl").fill_null(0.0) != 0.0).mean(),
        take_profit_ratio=(pl.col("price_tp").fill_null(0.0) != 0.0).mean(),
        hft_trades=(held < HFT_SECONDS * 1_000_000).sum(),
        net_profit=pl.col("net").sum(),
    )
    # A day opens at the balance before its first trade; its loss is that minus its low.
    daily = (
        curve.group_by(["login", "day"])
        .agg(
            start=(pl.col("balance") - pl.col("net")).first(),
            low=pl.col("balance").min(),
        )
        .group_by("login")
        .agg(max_daily_loss=(pl.col("start") - pl.col("low")).clip(0.0).max())
    )
    # Concurrency: +1 at each open, -1 at each close, closes first at the same instant.
    events = pl.concat([
        df.select("login", at=pl.col("opened_at"), delta=pl.lit(1, pl.Int32)),
        df.select("login", at=pl.col("closed_at"), delta=pl.lit(-1, pl.Int32)),
    ])
    concurrent = (
        events.sort(["login", "at", "delta"])
        .with_columns(open=pl.col("delta").cum_sum().over("login"))
        .group_by("login")
        .agg(max_concurrent_trades=pl.col("open").max().clip(0))
    )
    return (
        per_account.join(daily, on="login").join(concurrent, on="login")
        .with_columns(
            profit_factor=pl.when(pl.col("gross_loss") > 0)
            .then(pl.col("gross_profit") / pl.col("gross_loss"))
            .otherwise(None)
        )
        .drop("gross_profit", "gross_loss")
    )


def main() -> None:
    args = sys.argv[1:]
    out_path = None
    if "--out" in args:
        i = args.index("--out")
        out_path = args[i + 1]
        del args[i:i + 2]
    t0 = time.perf_counter()
    df = read(args[0], args[1] if len(args) > 1 else None)
    t1 = time.perf_counter()
    result = metrics(df)
    t2 = time.perf_counter()
    if out_path:
        with open(out_path, "w") as f:
            json.dump({r["login"]: r for r in result.to_dicts()}, f)
    print(json.dumps({"accounts": result.height, "trades": df.height, "read_s": round(t1 - t0, 3),
                      "metrics_s": round(t2 - t1, 3), "total_s": round(t2 - t0, 3)}))


if __name__ == "__main__":
    main()
