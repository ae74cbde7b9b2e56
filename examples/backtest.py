"""A small backtest loop that gates every simulated order through riskgate.

    python examples/backtest.py [--steps N] [--seed S]

Needs the `riskgate` package (risk-py/scripts/test.sh builds it into risk-py/.venv, or
`pip install ./risk-py`). Nothing is downloaded: prices are synthetic, a seeded random walk
per symbol, one bar a minute on a simulated clock.

The engine is configured from examples/config/demo.toml (ladders, rules, instruments,
limits), plus one backtest account created through events. The "strategy" is deliberately
naive, a noisy momentum rule with random sizes and leverage: it is there to exercise the
gate, not to make money. An accepted order is filled at once at its limit price (a
marketable limit order with no queue or slippage model) and the fill is fed back to the
engine, so positions, realized PnL and margin evolve as in a live loop. Every decision is
counted by reason and summarized at the end.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import riskgate

ROOT = Path(__file__).resolve().parent
START = datetime(2026, 1, 5, 0, 0, tzinfo=timezone.utc)
ACCOUNT, USER = "acc-backtest", "quant"
SYMBOLS = {
    # symbol: (start price, tick, lot, per-bar volatility)
    "BTCUSDT": (Decimal("50000"), Decimal("0.1"), Decimal("0.001"), 0.002),
    "ETHUSDT": (Decimal("3000"), Decimal("0.01"), Decimal("0.001"), 0.003),
}


def on_grid(value: Decimal, step: Decimal) -> Decimal:
    """`value` rounded down to a multiple of `step` (tick or lot)."""
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


class Backtest:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.engine = riskgate.RiskEngine(ROOT / "config" / "demo.toml", now=START)
        self.seq = 0
        self.prices = {s: p for s, (p, _, _, _) in SYMBOLS.items()}
        self.history: dict[str, list[Decimal]] = {s: [] for s in SYMBOLS}
        self.decisions: Counter[str] = Counter()
        self.flags: Counter[str] = Counter()
        self.orders = 0
        self.account_event(
            "profile_upsert",
            user_id=USER,
            profile={"kyc_level": "L2", "exposure_limit": "400000", "max_leverage": "50", "risk_score": "20"},
        )
        self.account_event("balance_change", delta="20000")

    def account_event(self, kind: str, **fields: object) -> None:
        self.seq += 1
        outcome = self.engine.apply({"type": kind, "account_id": ACCOUNT, "seq": self.seq, **fields})
        assert outcome == "applied", outcome

    def step(self, now: datetime) -> None:
        for symbol, (_, tick, _, vol) in SYMBOLS.items():
            move = Decimal(repr(self.rng.gauss(0.0, vol)))
            price = max(on_grid(self.prices[symbol] * (1 + move), tick), tick)
            self.prices[symbol] = price
            self.history[symbol].append(price)
            self.engine.apply({"type": "mark", "symbol": symbol, "price": price, "at": now})
        if self.rng.random() < 0.6:
            self.trade(now)

    def trade(self, now: datetime) -> None:
        symbol = self.rng.choice(list(SYMBOLS))
        _, tick, lot, _ = SYMBOLS[symbol]
        recent = self.history[symbol][-20:]
        mark = self.prices[symbol]
        trend_up = mark >= sum(recent) / len(recent)
        side = "BUY" if trend_up ^ (self.rng.random() < 0.3) else "SELL"
        # Target notional from 500 to ~150,000 USDT (log-uniform), random leverage, and
        # now and then a fat-fingered price far from the mark.
        notional = Decimal(repr(round(10 ** self.rng.uniform(2.7, 5.2), 2)))
        quantity = max(on_grid(notional / mark, lot), lot)
        leverage = self.rng.choice([2, 5, 10, 20, 50, 75])
        offset = Decimal("0.001") if self.rng.random() > 0.03 else Decimal("0.08")
        limit = mark * (1 + offset) if side == "BUY" else mark * (1 - offset)
        price = on_grid(limit, tick)
        self.orders += 1
        order_id = f"bt-{self.orders}"
        result = self.engine.check(
            {
                "user_id": USER,
                "account_id": ACCOUNT,
                "order_id": order_id,
                "symbol": symbol,
                "side": side,
                "order_type": "LIMIT",
                "quantity": quantity,
                "price": price,
                "leverage": leverage,
                "trace_id": f"{now:%H%M}",
            },
            now=now,
        )
        self.decisions[result.reject_reason or result.decision] += 1
        for rule in result.rule_hits:
            self.flags[rule] += 1
        if result.accepted:
            self.account_event(
                "order_filled",
                order_id=order_id,
                symbol=symbol,
                side=side,
                quantity=quantity,
                price=price,
                leverage=leverage,
            )

    def report(self, steps: int) -> None:
        print(f"{steps:,} one-minute bars, {self.orders:,} orders checked")
        accepted = self.decisions["APPROVED"] + self.decisions["FLAGGED"]
        print(f"  accepted  {accepted:6,}  (approved {self.decisions['APPROVED']:,}, flagged {self.decisions['FLAGGED']:,})")
        print(f"  rejected  {self.orders - accepted:6,}")
        for reason, count in self.decisions.most_common():
            if reason not in ("APPROVED", "FLAGGED"):
                print(f"    {reason:<26}{count:6,}")
        if self.flags:
            print("  rule hits: " + ", ".join(f"{r} {n:,}" for r, n in self.flags.most_common()))
        account = self.engine.account(ACCOUNT)
        assert account is not None
        print(f"  wallet balance {account['wallet_balance']:,.2f} USDT (started at 20,000; realized PnL only)")
        for p in account["positions"]:
            mark = self.prices[p["symbol"]]
            upnl = p["size"] * (mark - p["entry_price"])
            print(f"  position {p['symbol']} {p['size']:+} @ {p['entry_price']:.2f}, mark {mark}, uPnL {upnl:+,.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    bt = Backtest(args.seed)
    for i in range(args.steps):
        bt.step(START + timedelta(minutes=i + 1))
    bt.report(args.steps)


if __name__ == "__main__":
    main()
