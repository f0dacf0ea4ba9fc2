"""The simulator over the whole Korean day: both venues, auctions, after-hours, the sim clock."""

from typing import List

import pytest

from core.protocol import sessions
from core.protocol.events import Fill, Order, Quote
from engine32.brokers.sim.broker import sim_clock
from engine32.brokers.sim.clock import SimClock

from .helpers import FakeClock, kst, make_exchange

DAY = (2026, 12, 2)  # a Wednesday


def of(kind, payloads: List[object]) -> list:
    return [p for p in payloads if isinstance(p, kind)]


def exchange(clock: FakeClock, **kw):
    kw.setdefault("sessions", "krx+nxt")
    kw.setdefault("codes", ["005930", "000660", "032820"])
    ex = make_exchange(clock, 7, **kw)
    ex.subscribe(list(ex.market.states))
    ex.drain()
    return ex


def run(ex, clock: FakeClock, seconds: float, dt: float = 0.5) -> list:
    out: list = []
    for _ in range(int(seconds / dt)):
        clock.advance(dt)
        ex.step(dt)
        out.extend(ex.drain())
    return out


# -- orders accepted or refused as each phase says, for start_at across every boundary -----------

CASES = [
    # (time, venue, kind, accepted?)
    ("07:59:59", "NXT", "limit", False),
    ("08:00:00", "NXT", "limit", True),
    ("08:00:00", "NXT", "market", False),
    ("08:29:59", "KRX", "limit", False),
    ("08:30:00", "KRX", "market", True),
    ("08:50:00", "NXT", "limit", False),
    ("09:00:30", "NXT", "market", True),
    ("15:20:00", "NXT", "limit", False),
    ("15:20:00", "KRX", "market", True),
    ("15:30:00", "NXT", "limit", True),
    ("15:40:00", "KRX", "market", False),
    ("16:00:00", "KRX", "market", False),
    ("17:59:59", "KRX", "limit", True),
    ("18:00:00", "KRX", "limit", False),
    ("19:59:59", "NXT", "limit", True),
    ("20:00:00", "NXT", "limit", False),
    ("19:00:00", "SOR", "limit", True),  # SOR finds NXT open
]


@pytest.mark.parametrize("hhmmss,venue,kind,ok", CASES)
def test_orders_are_accepted_or_refused_as_the_phase_says(hhmmss, venue, kind, ok) -> None:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    clock = FakeClock(kst(*DAY, h, m, s))
    ex = exchange(clock)
    st = ex.market.states["005930"]
    price = st.price  # on the grid and inside every band
    if kind == "market":
        price = 0
    elif venue == "KRX" and (h, m) >= (15, 30):
        price = ex._close_of(st)  # the after-hours sessions trade at or around the close
    order_id, reason = ex.place("005930", "buy", 1, price, kind, venue=venue)
    assert (reason == "") is ok, reason
    status = [o.status for o in of(Order, ex.drain()) if o.order_id == order_id]
    assert status == (["accepted"] if ok else ["rejected"])


def test_nxt_limit_buy_at_1730_fills_on_nxt_and_krx_is_refused_at_1900() -> None:
    clock = FakeClock(kst(*DAY, 17, 30))
    ex = exchange(clock)
    nst = ex.nxt_market.states["005930"]
    order_id, reason = ex.place("005930", "buy", 3, sessions.price_band(
        ex.nxt_phase, nst.base)[1], "limit", venue="NXT")  # fmt: skip
    assert reason == ""
    out = run(ex, clock, 5)
    fills = [f for f in of(Fill, out) if f.order_id == order_id]
    assert fills and all(f.venue == "NXT" for f in fills)
    assert sum(f.qty for f in fills) == 3
    quotes = of(Quote, out)
    assert quotes and {q.venue for q in quotes} == {"NXT"}  # after 15:30 quotes come from NXT
    assert "032820" not in {q.code for q in quotes}  # KRX-only code: no NXT quotes
    clock.set(kst(*DAY, 19, 0))
    ex.step(0.1)
    _, reason = ex.place("005930", "buy", 1, nst.price, "limit", venue="KRX")
    assert reason.startswith("KRX is closed at 19:00 KST")
    _, reason = ex.place("032820", "buy", 1, 1500, "limit", venue="NXT")
    assert "not NXT-eligible" in reason


def test_market_order_in_a_single_price_session_is_refused_with_the_reason() -> None:
    clock = FakeClock(kst(*DAY, 16, 5))
    ex = exchange(clock)
    _, reason = ex.place("005930", "buy", 1, 0, "market", venue="KRX")
    assert reason == (
        "KRX after-hours single price accepts limit orders only, within ±10% of today's close"
    )


def test_single_price_session_fills_every_crossing_order_at_one_price_every_ten_minutes() -> None:
    clock = FakeClock(kst(*DAY, 16, 1))
    ex = exchange(clock, codes=["005930"])
    st = ex.market.states["005930"]
    close = ex._close_of(st)
    low, high = sessions.price_band(ex.krx_phase, st.base, close)
    ids = [ex.place("005930", "buy", q, high, "limit")[0] for q in (1, 2, 3)]
    far, _ = ex.place("005930", "buy", 1, low, "limit")
    out = run(ex, clock, 8 * 60, dt=5)  # to 16:09: no match yet
    assert of(Fill, out) == []
    out = run(ex, clock, 2 * 60, dt=5)  # through 16:10
    fills = of(Fill, out)
    assert set(ids) <= {f.order_id for f in fills}
    assert far not in {f.order_id for f in fills} or fills[0].price == low
    assert len({f.price for f in fills}) == 1  # one price for all
    assert low <= fills[0].price <= high
    assert {f.venue for f in fills} == {"KRX"}


def test_auction_never_matches_outside_its_instant_and_nothing_matches_when_closed() -> None:
    clock = FakeClock(kst(*DAY, 8, 35))
    ex = exchange(clock)
    st = ex.market.states["000660"]
    oid, reason = ex.place("000660", "buy", 5, sessions.price_band(ex.krx_phase, st.base)[1])
    assert reason == ""
    out = run(ex, clock, 60)
    assert of(Fill, out) == []  # the opening auction matches at 09:00 only
    clock.set(kst(*DAY, 9, 0))
    ex.step(0.0, quotes=0)
    fills = of(Fill, ex.drain())
    assert [(f.order_id, f.qty) for f in fills] == [(oid, 5)]
    # 20:00-08:00: both closed, nothing moves
    clock.set(kst(*DAY, 21, 0))
    ex.step(1.0)
    ex.drain()  # the day's orders expire
    assert ex.step(1.0) == 0 and ex.drain() == []


def test_after_hours_close_session_trades_at_the_close_only() -> None:
    clock = FakeClock(kst(*DAY, 15, 10))
    ex = exchange(clock, codes=["005930"])
    run(ex, clock, 20)
    clock.set(kst(*DAY, 15, 30))
    ex.step(0.0, quotes=0)
    close = ex.market.states["005930"].close
    assert close > 0
    _, reason = ex.place("005930", "buy", 2, close + 100, "limit")
    assert "trades at today's close only: send price {:,}".format(close) in reason
    oid, reason = ex.place("005930", "buy", 2, close, "limit")
    assert reason == ""
    assert of(Fill, run(ex, clock, 60)) == []  # taken at 15:30, matched from 15:40
    clock.set(kst(*DAY, 15, 40))
    ex.step(0.1)
    fills = of(Fill, ex.drain())
    assert [(f.order_id, f.qty, f.price) for f in fills] == [(oid, 2, close)]


def test_regular_orders_expire_at_the_close_and_nxt_orders_at_2000() -> None:
    clock = FakeClock(kst(*DAY, 19, 50))
    ex = exchange(clock, codes=["005930"])
    nst = ex.nxt_market.states["005930"]
    oid, reason = ex.place("005930", "buy", 1, sessions.price_band(ex.nxt_phase, nst.base)[0],
                           "limit", venue="NXT")  # fmt: skip
    assert reason == ""
    clock.set(kst(*DAY, 20, 0))
    ex.step(0.1)
    orders = [o for o in of(Order, ex.drain()) if o.order_id == oid]
    assert orders[-1].status == "cancelled" and "NXT after-market ended" in orders[-1].reason


def test_the_krx_only_simulator_refuses_nxt() -> None:
    clock = FakeClock(kst(*DAY, 10, 0))
    ex = exchange(clock, sessions="krx")
    _, reason = ex.place("005930", "buy", 1, 71000, "limit", venue="NXT")
    assert (
        reason == 'the simulator trades KRX only ([sim] sessions = "krx"): NXT orders are refused'
    )


def test_always_mode_trades_both_venues_day_and_night() -> None:
    clock = FakeClock(kst(*DAY, 23, 0))
    ex = exchange(clock, sessions="always")
    st = ex.nxt_market.states["005930"]
    oid, reason = ex.place("005930", "buy", 1, 0, "market", venue="NXT")
    assert reason == ""
    fills = [f for f in of(Fill, run(ex, clock, 2)) if f.order_id == oid]
    assert fills and fills[0].venue == "NXT" and st.volume >= 0


# -- the sim clock --------------------------------------------------------------------------------


def test_sim_clock_starts_at_start_at_and_runs_at_speed() -> None:
    wall = [1000.0]
    clock = SimClock(start_ms=5000, speed=60, wall=lambda: wall[0])
    assert clock() == 5000
    wall[0] += 2.0
    assert clock() == 5000 + 120000
    assert sim_clock({"start_at": "", "speed": 1.0}) is None
    c = sim_clock({"start_at": "2026-12-02 17:30", "speed": 1.0})
    assert c is not None and abs(c() - int(kst(*DAY, 17, 30).timestamp() * 1000)) < 5000
    with pytest.raises(ValueError):
        SimClock(speed=0)


def test_a_new_subscription_gets_the_quote_of_the_venue_trading_now() -> None:
    clock = FakeClock(kst(*DAY, 19, 0))
    ex = make_exchange(clock, 7, sessions="krx+nxt", codes=["005930", "032820"])
    ex.subscribe(["005930", "032820"])
    venues = {q.code: q.venue for q in of(Quote, ex.drain())}
    assert venues == {"005930": "NXT", "032820": "KRX"}  # 032820 is KRX-only: its close
    clock.set(kst(*DAY, 10, 0))
    ex.step(0.0, quotes=0)
    ex.unsubscribe(["005930"])
    ex.subscribe(["005930"])
    assert [q.venue for q in of(Quote, ex.drain())] == ["KRX"]
