"""The journal's arithmetic against hand-computed figures and against the sim's own ledger."""

from __future__ import annotations

import datetime
import math

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from core import journal
from core.protocol import krx
from engine32.brokers.sim.account import Ledger
from engine32.brokers.sim.universe import KOSDAQ, KOSPI

KST = krx.KST


def fill(day: int, hh: int, side: str, qty: int, price: int, code: str = "005930") -> dict:
    ts = datetime.datetime(2026, 12, day, hh, 0, tzinfo=KST)
    return {"ts": ts, "code": code, "side": side, "qty": qty, "price": price}


# Hand-computed (commission 0.015 % truncated to 10 KRW, tax 0.20 % on sells):
#   buy 10 @ 70,000  value 700,000  fee 105→100          held 10 cost 700,000 avg 70,000
#   buy  5 @ 71,000  value 355,000  fee 53→50            held 15 cost 1,055,000 avg 70,333
#   sell 6 @ 72,000  value 432,000  fee 64→60 tax 864    basis 1,055,000×6//15 = 422,000
#                    realised 432,000-60-864-422,000 = 9,076; held 9 cost 633,000 avg 70,333
#   sell 9 @ 69,500  value 625,500  fee 93→90 tax 1,251  basis 633,000
#                    realised 625,500-90-1,251-633,000 = -8,841; held 0
ROUND_TRIP = [
    fill(1, 9, "buy", 10, 70000),
    fill(1, 10, "buy", 5, 71000),
    fill(1, 11, "sell", 6, 72000),
    fill(1, 12, "sell", 9, 69500),
]


def test_moving_average_cost_fees_and_tax_by_hand() -> None:
    j = journal.journal(ROUND_TRIP)
    assert list(j["fee"]) == [100, 50, 60, 90]
    assert list(j["tax"]) == [0, 0, 864, 1251]
    assert list(j["position_qty"]) == [10, 15, 9, 0]
    assert list(j["avg_cost"]) == [70000, 70333, 70333, 0]
    assert math.isnan(j["realized_pnl"][0]) and math.isnan(j["realized_pnl"][1])
    assert list(j["realized_pnl"][2:]) == [9076, -8841]
    days = journal.by_day(j)
    day = days.loc[datetime.date(2026, 12, 1)]
    assert day["realized_pnl"] == 235
    assert (day["fees"], day["tax"], day["trades"], day["sells"]) == (300, 2115, 4, 2)
    assert day["turnover"] == 700000 + 355000 + 432000 + 625500
    assert day["win_rate"] == 0.5 and day["avg_win"] == 9076 and day["avg_loss"] == -8841


def test_times_are_kst_and_days_are_korean_days() -> None:
    # 23:30 UTC on Dec 1 is 08:30 KST on Dec 2: it belongs to the Korean day Dec 2.
    utc = datetime.datetime(2026, 12, 1, 23, 30, tzinfo=datetime.timezone.utc)
    j = journal.journal([{"ts": utc, "code": "005930", "side": "buy", "qty": 1, "price": 1000}])
    assert j["date"][0] == datetime.date(2026, 12, 2)
    assert j["ts"][0].hour == 8


def test_kosdaq_rate_and_recorded_costs_kept_beside() -> None:
    costs = journal.Costs(tax_kospi_pct=0.20, tax_kosdaq_pct=0.15, markets={"247540": KOSDAQ})
    rows = [
        {**fill(1, 9, "buy", 10, 100000, "247540"), "fee": 150, "tax": 0},
        {**fill(1, 10, "sell", 10, 100000, "247540"), "fee": 150, "tax": 2000},
    ]
    j = journal.journal(rows, costs)
    assert list(j["tax"]) == [0, 1500]  # the configured KOSDAQ rate
    assert list(j["broker_tax"]) == [0, 2000]  # what the broker said, kept to compare
    assert list(j["fee"]) == [150, 150]


def test_sell_without_known_basis_is_not_guessed() -> None:
    j = journal.journal([fill(2, 9, "sell", 3, 50000)])
    assert math.isnan(j["realized_pnl"][0])
    p = journal.period(j)
    assert p.unknown_basis == 1 and p.realized_pnl == 0


def test_a_day_with_no_trades_and_an_empty_period() -> None:
    empty = journal.journal([])
    assert empty.empty and journal.by_day(empty).empty
    p = journal.period(empty)
    assert p.days == 0 and p.realized_pnl == 0 and p.best_day is None


def test_period_drawdown_best_and_worst_days() -> None:
    # day 1: +9,076 -8,841 = +235; day 2: loss; day 3: gain.
    rows = list(ROUND_TRIP)
    rows += [fill(2, 9, "buy", 10, 50000), fill(2, 10, "sell", 10, 49000)]
    rows += [fill(3, 9, "buy", 10, 10000), fill(3, 10, "sell", 10, 10500)]
    j = journal.journal(rows)
    days = journal.by_day(j)
    d2 = 490000 - 70 - 980 - 500000  # value - fee(73→70) - tax - basis
    d3 = 105000 - 10 - 210 - 100000
    assert list(days["realized_pnl"]) == [235, d2, d3]
    p = journal.period(j, days)
    assert p.realized_pnl == 235 + d2 + d3
    assert p.max_drawdown == d2  # from the peak 235 down to 235 + d2
    assert (p.best_day, p.worst_day) == (datetime.date(2026, 12, 3), datetime.date(2026, 12, 2))


def test_max_drawdown_against_a_loop() -> None:
    curve = pd.Series([100, 50, 300, -200, -100, 250])
    peak, worst = 0, 0
    for v in curve:
        peak = max(peak, v)
        worst = min(worst, v - peak)
    assert journal.max_drawdown(curve) == worst == -500


# --- properties ----------------------------------------------------------------------------

trades = st.lists(
    st.tuples(
        st.integers(1, 3),  # day
        st.sampled_from(["005930", "035720"]),
        st.booleans(),  # buy?
        st.integers(1, 40),
        st.integers(200, 4000),  # price / 10
    ),
    min_size=1,
    max_size=40,
)


def _feasible(raw: list) -> list[dict]:
    """Turn random tuples into fills that never sell more than is held, in time order."""
    held: dict[str, int] = {}
    out = []
    for n, (day, code, buy, qty, p) in enumerate(sorted(raw, key=lambda r: r[0])):
        price = krx.snap(p * 10)
        if not buy:
            qty = min(qty, held.get(code, 0))
            if not qty:
                continue
        held[code] = held.get(code, 0) + (qty if buy else -qty)
        ts = datetime.datetime(2026, 12, day, 9, 0, tzinfo=KST) + datetime.timedelta(seconds=n)
        out.append(
            {"ts": ts, "code": code, "side": "buy" if buy else "sell", "qty": qty, "price": price}
        )
    return out


@settings(max_examples=150, deadline=None)
@given(trades)
def test_daily_pnl_sums_to_total_and_matches_the_sim_ledger(raw: list) -> None:
    fills = _feasible(raw)
    if not fills:
        return
    j = journal.journal(fills)
    days = journal.by_day(j)
    p = journal.period(j, days)
    assert int(days["realized_pnl"].sum()) == p.realized_pnl
    assert int(journal.by_code(j)["realized_pnl"].sum()) == p.realized_pnl
    # The simulator's ledger (independent code) books the same fills to the same P&L and costs.
    ledger = Ledger(10**12, 0.015, 0.20, 0.20)
    fees = taxes = 0
    for f in fills:
        fee, tax = ledger.apply_fill(f["code"], "", KOSPI, f["side"], f["qty"], f["price"])
        fees, taxes = fees + fee, taxes + tax
    assert ledger.realized_today == p.realized_pnl
    assert (fees, taxes) == (p.fees, p.tax)
    # Cash: what went out and came back = realised P&L − buy commissions − cost of what is held.
    held_cost = sum(h.cost for h in ledger.holdings.values())
    buy_fees = int(j[j["side"] == "buy"]["fee"].sum())
    assert ledger.cash - 10**12 == p.realized_pnl - buy_fees - held_cost
