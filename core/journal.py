"""The trading journal: every fill with its costs and realised P&L, and the day/code/period figures.

Built with pandas from the writer's ``fills`` rows (``core.history.fills_between``); used by
``kc report`` and the console's journal screen, so both show the same figures to the won.

Arithmetic (the same as the simulator's ledger, ``engine32/brokers/sim/account.py``, and
Kiwoom's screens for domestic stocks):

- **Moving-average cost (이동평균법).** Each code carries the cost basis of the shares held,
  without fees. A buy adds ``qty × price``; a sell removes ``cost × qty_sold // qty_held``
  (the proportional share, truncated to the won), so the average cost (cost ÷ qty) does not
  change on a sell. It is shown after each fill (``avg_cost``, rounded to the won).
- **Commission** on every fill: ``krx.commission(qty × price, commission_pct)``, truncated to
  10 KRW as Kiwoom does. **Transaction tax** on sells: ``krx.sell_tax(value, rate)`` with the
  rate of the code's market (KOSPI/KOSDAQ; 0.20 % for both in 2026). The rates are the
  configured ones (``[sim] commission_pct``, ``tax_kospi_pct``, ``tax_kosdaq_pct``); what the
  broker recorded on each fill is kept beside them (``broker_fee``/``broker_tax``) so that a
  difference shows.
- **Realised P&L of a sell** = value − its commission − its tax − the cost basis of the shares
  sold. The buy's commission was paid when bought and is not counted again (so the cash change
  of a closed round trip is realised P&L − the buys' commission).
- A sell of shares bought before the first recorded fill has no known cost basis: its realised
  P&L is left empty (NaN) and counted in ``unknown_basis``, never guessed.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from core.protocol import krx

KOSDAQ = "KOSDAQ"

#: Columns of the journal, in display order.
JOURNAL_COLUMNS = [
    "ts",
    "date",
    "code",
    "name",
    "side",
    "qty",
    "price",
    "value",
    "venue",
    "fee",
    "tax",
    "position_qty",
    "avg_cost",
    "realized_pnl",
    "broker_fee",
    "broker_tax",
    "order_id",
]

#: Columns of the per-day and per-code summaries.
SUMMARY_COLUMNS = [
    "realized_pnl",
    "fees",
    "tax",
    "turnover",
    "trades",
    "sells",
    "wins",
    "losses",
    "win_rate",
    "avg_win",
    "avg_loss",
]


@dataclasses.dataclass(frozen=True)
class Costs:
    """Commission and tax rates (percent) and which codes are KOSDAQ (the rest: KOSPI)."""

    commission_pct: float = 0.015
    tax_kospi_pct: float = 0.20
    tax_kosdaq_pct: float = 0.20
    markets: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Any, markets: Mapping[str, str] | None = None) -> Costs:
        return cls(
            commission_pct=float(cfg.sim.commission_pct),
            tax_kospi_pct=float(cfg.sim.tax_kospi_pct),
            tax_kosdaq_pct=float(cfg.sim.tax_kosdaq_pct),
            markets=dict(markets or {}),
        )

    def fee(self, value: int) -> int:
        return krx.commission(value, self.commission_pct)

    def tax(self, code: str, value: int) -> int:
        kosdaq = self.markets.get(code) == KOSDAQ
        return krx.sell_tax(value, self.tax_kosdaq_pct if kosdaq else self.tax_kospi_pct)


def _kst(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return t.tz_convert(krx.KST)


def journal(
    fills: Iterable[Mapping[str, Any]] | pd.DataFrame,
    costs: Costs | None = None,
    names: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per fill, oldest first, with costs, position and average cost after the fill,
    and the realised P&L of sells. ``fills`` need ``ts, code, side, qty, price``; ``fee``,
    ``tax``, ``venue``, ``order_id``, ``name``, ``seq`` are used when present."""
    costs = costs or Costs()
    names = names or {}
    frame = fills if isinstance(fills, pd.DataFrame) else pd.DataFrame(list(fills))
    if frame.empty:
        return pd.DataFrame(columns=JOURNAL_COLUMNS)
    order = [c for c in ("ts", "run", "seq") if c in frame.columns]
    frame = frame.sort_values(order, kind="stable")
    held: dict[str, tuple[int, int]] = {}  # code → (qty, cost basis without fees)
    rows = []
    for f in frame.to_dict("records"):
        code, side = str(f["code"]), str(f["side"])
        qty, price = int(f["qty"]), int(f["price"])
        value = qty * price
        fee = costs.fee(value)
        tax = costs.tax(code, value) if side == "sell" else 0
        have, cost = held.get(code, (0, 0))
        realized: float = math.nan
        if side == "buy":
            have, cost = have + qty, cost + value
        elif qty <= have:
            basis = cost * qty // have
            have, cost = have - qty, cost - basis
            realized = value - fee - tax - basis
        else:  # shares bought before the records begin: no basis to compute P&L from
            have, cost = 0, 0
        held[code] = (have, cost)
        ts = _kst(f["ts"])
        rows.append(
            {
                "ts": ts,
                "date": ts.date(),
                "code": code,
                "name": names.get(code) or str(f.get("name") or ""),
                "side": side,
                "qty": qty,
                "price": price,
                "value": value,
                "venue": str(f.get("venue") or ""),
                "fee": fee,
                "tax": tax,
                "position_qty": have,
                "avg_cost": int(round(cost / have)) if have else 0,
                "realized_pnl": realized,
                "broker_fee": _int_or_nan(f.get("fee")),
                "broker_tax": _int_or_nan(f.get("tax")),
                "order_id": str(f.get("order_id") or ""),
            }
        )
    return pd.DataFrame(rows, columns=JOURNAL_COLUMNS)


def _int_or_nan(v: Any) -> float:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return math.nan
    return int(v)


def _summary(groups: Any) -> pd.DataFrame:
    def one(g: pd.DataFrame) -> pd.Series:
        sells = g[(g["side"] == "sell") & g["realized_pnl"].notna()]
        wins = sells[sells["realized_pnl"] > 0]["realized_pnl"]
        losses = sells[sells["realized_pnl"] < 0]["realized_pnl"]
        return pd.Series(
            {
                "realized_pnl": int(sells["realized_pnl"].sum()),
                "fees": int(g["fee"].sum()),
                "tax": int(g["tax"].sum()),
                "turnover": int(g["value"].sum()),
                "trades": len(g),
                "sells": len(sells),
                "wins": len(wins),
                "losses": len(losses),
                "win_rate": len(wins) / len(sells) if len(sells) else math.nan,
                "avg_win": wins.mean() if len(wins) else math.nan,
                "avg_loss": losses.mean() if len(losses) else math.nan,
            }
        )

    out = groups.apply(one, include_groups=False)
    if out.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    ints = ["realized_pnl", "fees", "tax", "turnover", "trades", "sells", "wins", "losses"]
    return out[SUMMARY_COLUMNS].astype({c: "int64" for c in ints})


def by_day(j: pd.DataFrame) -> pd.DataFrame:
    """Per KST day: realised P&L, fees, tax, turnover, trades, win rate, average win/loss."""
    if j.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    return _summary(j.groupby("date", sort=True))


def by_code(j: pd.DataFrame) -> pd.DataFrame:
    """Per code, the same figures as :func:`by_day`."""
    if j.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    return _summary(j.groupby("code", sort=True))


@dataclasses.dataclass(frozen=True)
class Period:
    """Figures over the whole period."""

    realized_pnl: int
    fees: int
    tax: int
    turnover: int
    trades: int
    days: int
    max_drawdown: int  # ≤ 0: the deepest fall of cumulative realised P&L from its peak
    best_day: datetime.date | None
    best_day_pnl: int
    worst_day: datetime.date | None
    worst_day_pnl: int
    unknown_basis: int  # sells whose cost basis is not in the records


def cumulative(days: pd.DataFrame) -> pd.Series:
    """Cumulative realised P&L at the end of each day (the daily equity curve, from 0)."""
    return days["realized_pnl"].astype("int64").cumsum()


def max_drawdown(equity: pd.Series) -> int:
    """The deepest fall from a running peak (the curve starts at 0), as a number ≤ 0."""
    if equity.empty:
        return 0
    peak = equity.cummax().clip(lower=0)
    return int(min(0, (equity - peak).min()))


def period(j: pd.DataFrame, days: pd.DataFrame | None = None) -> Period:
    days = by_day(j) if days is None else days
    if days.empty:
        return Period(0, 0, 0, 0, 0, 0, 0, None, 0, None, 0, 0)
    pnl = days["realized_pnl"].astype("int64")
    unknown = int(((j["side"] == "sell") & j["realized_pnl"].isna()).sum())
    return Period(
        realized_pnl=int(pnl.sum()),
        fees=int(days["fees"].sum()),
        tax=int(days["tax"].sum()),
        turnover=int(days["turnover"].sum()),
        trades=int(days["trades"].sum()),
        days=len(days),
        max_drawdown=max_drawdown(cumulative(days)),
        best_day=pnl.idxmax(),
        best_day_pnl=int(pnl.max()),
        worst_day=pnl.idxmin(),
        worst_day_pnl=int(pnl.min()),
        unknown_basis=unknown,
    )
