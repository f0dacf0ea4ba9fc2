"""Hypothesis over random price paths: the trigger engine's own code (engine32.trigger_engine
and engine32.triggers), driven quote by quote, against a plain reference model.

The engine around it is a small harness: real :class:`Books` and :class:`EngineStatus`, a
recorder for what would be written to Redis, and every order command answered ``ok`` at once
(the end-to-end and kill -9 tests run the real engine process).
"""

import json
import time
from typing import Any, Dict, List

from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import load_config
from core.protocol import Keys, krx, make_command
from core.protocol.events import Position, Quote
from engine32.books import Books
from engine32.dispatcher import EngineStatus
from engine32.trigger_engine import TriggerEngine

CODE = "005930"
START = 70000


class _Publisher:
    def __init__(self) -> None:
        self.items: List[Any] = []

    def put(self, item: Any) -> None:
        self.items.append(item)

    def wait_idle(self, timeout: float) -> bool:
        return True


class _Broker:
    session = krx.CONTINUOUS

    def market_session(self) -> str:
        return self.session

    def base_price(self, code: str) -> int:
        return START

    def subscribe(self, codes: Any) -> None:
        pass


class _Consumer:
    def server_now_ms(self) -> int:
        return int(time.time() * 1000)


class Harness:
    """What TriggerEngine needs from :class:`engine32.app.Engine`."""

    def __init__(self, **overrides: Any) -> None:
        self.config = load_config(overrides=dict({"redis.prefix": "hyp"}, **overrides))
        self.keys = Keys("hyp")
        self.books = Books([CODE])
        self.status = EngineStatus()
        self.status.connected = True
        self.publisher = _Publisher()
        self.broker = _Broker()
        self.consumer = _Consumer()
        self.events: List[Dict[str, Any]] = []
        self.marks: List[List[Any]] = []  # trigger_marks rows: [trigger_id, mark, level]
        self.marks_state: List[Any] = []
        self.orders: List[Dict[str, Any]] = []
        self.books.on_position(Position(CODE, 1000, START))
        self.trig = TriggerEngine(self, "redis://127.0.0.1:1/0")
        self.trig.loaded = True

    def emit(self, etype: str, data: Dict[str, Any], state: Any = ()) -> None:
        if etype == "trigger_marks":
            self.marks.extend(data["marks"])
            self.marks_state.extend(state)
        else:
            self.events.append(dict(data))

    def publish_watchlist(self) -> None:
        pass

    def add(self, **args: Any) -> str:
        command = make_command("trigger_add", id="a", code=CODE, **args)
        return self.trig.cmd_add(command)["trigger_id"]

    def quote(self, price: int) -> None:
        q = Quote(CODE, price, bid=price, ask=krx.next_tick(price))
        self.books.quotes[CODE] = q
        f = self.trig.filters.get(CODE)  # the engine's O(1) test, as in Engine.on_quote
        if f is not None and not f.lo < price < f.hi:
            self.trig.on_quote(q)
        # answer every order command pushed by the trigger engine, as the engine would
        while self.publisher.items:
            item = self.publisher.items.pop(0)
            for op in item.build(self.keys, 0):
                if op[0] == "RPUSH":
                    command = json.loads(op[2])
                    self.orders.append(command)
                    self.trig.on_reply(
                        {
                            "id": command["id"],
                            "cmd": command["cmd"],
                            "ok": True,
                            "result": {"order_id": "O{}".format(len(self.orders))},
                        }
                    )

    def status_of(self, tid: str) -> str:
        return self.trig.book.get(tid).status


def _path(steps: List[int]) -> List[int]:
    prices = []
    p = START
    for s in steps:
        p = krx.next_tick(p, s) if s else p
        p = min(max(p, 50000), 90000)
        prices.append(p)
    return prices


steps_st = st.lists(st.integers(-6, 6), min_size=1, max_size=120)


@settings(max_examples=120, deadline=None)
@given(steps=steps_st, below=st.integers(1, 40), above=st.integers(1, 40))
def test_oco_pair_fires_once_at_the_first_crossing_and_cancels_its_partner(steps, below, above):
    h = Harness()
    stop = krx.prev_tick(START, below)
    tp = krx.next_tick(START, above)
    s_id = h.add(side="sell", qty=10, kind="stop", trigger_price=stop, oco="g")
    t_id = h.add(side="sell", qty=10, kind="take_profit", trigger_price=tp, oco="g")
    prices = _path(steps)
    sent_at = []
    for i, p in enumerate(prices):
        before = len(h.orders)
        h.quote(p)
        sent_at.extend([i] * (len(h.orders) - before))
    first = next((i for i, p in enumerate(prices) if p <= stop or p >= tp), None)
    if first is None:
        assert h.orders == [] and h.status_of(s_id) == h.status_of(t_id) == "armed"
        return
    assert sent_at == [first]  # one order, at the first crossing quote
    winner, loser = (s_id, t_id) if prices[first] <= stop else (t_id, s_id)
    assert h.status_of(winner) == "fired" and h.status_of(loser) == "cancelled"
    assert h.orders[0]["id"] == "trg-{}-1".format(winner)
    assert h.orders[0]["cmd"] == "sell" and h.orders[0]["qty"] == 10


@settings(max_examples=120, deadline=None)
@given(steps=steps_st, pct=st.sampled_from([0.5, 1.0, 2.5, 5.0]))
def test_trailing_stop_fires_at_the_right_drawdown_from_the_high(steps, pct):
    h = Harness()
    h.quote(START)
    tid = h.add(side="sell", qty="position", kind="trailing", trail_pct=pct)
    prices = _path(steps)
    high = START
    first = None
    for i, p in enumerate(prices):
        high = max(high, p)
        if first is None and p <= high * (100 - pct) / 100:
            first = i
    sent_at = []
    for i, p in enumerate(prices):
        before = len(h.orders)
        h.quote(p)
        sent_at.extend([i] * (len(h.orders) - before))
    if first is None:
        assert sent_at == [] and h.status_of(tid) == "armed"
        assert h.trig.book.get(tid).mark == high
    else:
        assert sent_at == [first]
        assert h.orders[0]["qty"] == 1000  # follows the position
        assert h.status_of(tid) == "fired"


@settings(max_examples=80, deadline=None)
@given(steps=steps_st, levels=st.lists(st.integers(-30, 30).filter(bool), min_size=1, max_size=8))
def test_many_triggers_on_one_code_each_fire_once_at_their_own_first_crossing(steps, levels):
    h = Harness()
    ids = {}
    for n in levels:
        if n < 0:
            level = krx.prev_tick(START, -n)
            ids[h.add(side="sell", qty=1, kind="stop", trigger_price=level)] = ("down", level)
        else:
            level = krx.next_tick(START, n)
            ids[h.add(side="buy", qty=1, kind="stop", trigger_price=level)] = ("up", level)
    prices = _path(steps)
    for p in prices:
        h.quote(p)
    sent = [o["id"] for o in h.orders]
    assert len(sent) == len(set(sent))  # never twice
    for tid, (way, level) in ids.items():
        first = next(
            (i for i, p in enumerate(prices) if (p <= level if way == "down" else p >= level)),
            None,
        )
        assert ("trg-{}-1".format(tid) in sent) == (first is not None), (tid, way, level)


def test_a_quote_older_than_max_quote_age_by_its_exchange_time_fires_nothing():
    import datetime

    h = Harness()
    tid = h.add(side="sell", qty=10, kind="stop", trigger_price=krx.prev_tick(START, 2))
    low = krx.prev_tick(START, 5)
    old = (krx.now_kst() - datetime.timedelta(seconds=60)).strftime("%H%M%S")
    q = Quote(CODE, low, bid=low, ask=krx.next_tick(low), time=old)
    h.books.quotes[CODE] = q
    h.trig.on_quote(q)
    assert h.publisher.items == [] and h.status_of(tid) == "armed"
    assert "60 s old" in h.trig.book.get(tid).reason or "61 s old" in h.trig.book.get(tid).reason
    fresh = krx.now_kst().strftime("%H%M%S")
    h.quote(START)  # a fresh quote without crossing, then one that crosses
    q = Quote(CODE, low, bid=low, ask=krx.next_tick(low), time=fresh)
    h.books.quotes[CODE] = q
    h.trig.on_quote(q)
    h.quote(low)
    assert h.status_of(tid) == "fired" and len(h.orders) == 1


def test_no_quote_fires_while_the_broker_is_disconnected_or_halted():
    h = Harness()
    tid = h.add(side="sell", qty=10, kind="stop", trigger_price=krx.prev_tick(START, 2))
    h.status.connected = False
    h.quote(krx.prev_tick(START, 5))
    assert h.orders == [] and h.status_of(tid) == "armed"
    h.status.connected = True
    h.status.halted = True
    h.trig.on_status()
    assert h.status_of(tid) == "suspended"
    h.quote(krx.prev_tick(START, 6))
    assert h.orders == []
    h.status.halted = False
    h.trig.on_status()  # resume: the price is beyond the stop -> "ask": stays suspended
    assert h.status_of(tid) == "suspended" and "during the halt" in h.trig.book.get(tid).reason


def test_phase_rules_marketable_limit_in_an_auction_wait_and_closed():
    h = Harness()
    h.broker.session = krx.CLOSED
    tid = h.add(side="sell", qty=10, kind="stop", trigger_price=krx.prev_tick(START, 2))
    low = krx.prev_tick(START, 5)
    h.quote(low)
    assert h.orders == [] and "closed" in h.trig.book.get(tid).reason
    h.broker.session = krx.CLOSING_AUCTION  # no market order in a single-price session
    h.quote(low)
    assert h.orders[0]["type"] == "limit"
    assert h.orders[0]["price"] == krx.prev_tick(low, 5)  # marketable_ticks through the price

    w = Harness(**{"triggers.auction": "wait"})
    w.broker.session = krx.PRE_OPEN
    tid = w.add(side="sell", qty=10, kind="stop", trigger_price=krx.prev_tick(START, 2))
    w.quote(low)
    assert w.orders == [] and "single-price" in w.trig.book.get(tid).reason
    w.broker.session = krx.CONTINUOUS
    w.quote(low)
    assert w.orders[0]["type"] == "market" and w.status_of(tid) == "fired"


def test_daily_limits_cap_a_limit_price_and_sells_never_exceed_what_is_sellable():
    h = Harness()
    lower, _ = krx.limit_band(START)
    h.add(
        side="sell",
        qty=5000,
        kind="stop",
        trigger_price=krx.next_tick(lower, 2),
        order_type="limit",
        limit_offset_ticks=50,
    )
    h.quote(lower)
    assert h.orders[0]["price"] == lower  # 50 ticks below would be under the daily limit
    assert h.orders[0]["qty"] == 1000  # held 1,000: never more than the position
    g = Harness()
    from core.protocol.events import Order

    g.books.on_order(Order("S1", CODE, "sell", 900, 71000, remaining_qty=900, status="accepted"))
    g.add(side="sell", qty="position", kind="stop", trigger_price=krx.prev_tick(START, 2))
    g.quote(krx.prev_tick(START, 4))
    assert g.orders[0]["qty"] == 100  # 1,000 held - 900 already offered


def test_expiry_and_the_trailing_mark_flush_happen_on_the_timer():
    h = Harness()
    h.quote(START)
    stop = h.add(side="sell", qty=1, kind="stop", trigger_price=krx.prev_tick(START, 9))
    trail = h.add(side="sell", qty=1, kind="trailing", trail_ticks=20)
    h.quote(START)  # code tracked from now on
    h.events.clear()
    h.marks.clear()
    h.quote(krx.next_tick(START, 1))
    h.quote(krx.next_tick(START, 3))
    assert h.events == [] and h.marks == []  # a mark move alone writes nothing at once
    h.trig.tick()
    high = krx.next_tick(START, 3)
    # one row per moved trigger (two moves, one row), no full trigger event
    assert h.marks == [[trail, high, krx.prev_tick(high, 20)]] and h.events == []
    assert h.marks_state == [("HSET", h.keys.state_trigger_marks, trail, high)]
    h.trig.tick()
    assert len(h.marks) == 1  # nothing moved: nothing written
    h.trig.book.get(stop).expires = 1
    h.trig.tick()
    assert h.status_of(stop) == "expired" and h.status_of(trail) == "armed"


def test_a_crossing_during_the_halt_is_remembered_even_if_the_price_came_back():
    h = Harness()
    tid = h.add(side="sell", qty=10, kind="stop", trigger_price=krx.prev_tick(START, 2))
    h.quote(START)
    h.status.halted = True
    h.trig.on_status()
    h.quote(krx.prev_tick(START, 5))  # crossed while halted
    h.quote(START)  # and back
    h.status.halted = False
    h.trig.on_status()
    assert h.status_of(tid) == "suspended" and "during the halt" in h.trig.book.get(tid).reason
    assert h.orders == []

    f = Harness(**{"triggers.on_resume": "fire"})
    tid = f.add(side="sell", qty=10, kind="stop", trigger_price=krx.prev_tick(START, 2))
    f.quote(START)
    f.status.halted = True
    f.trig.on_status()
    f.quote(krx.prev_tick(START, 5))
    f.quote(START)
    f.status.halted = False
    f.trig.on_status()
    f.quote(START)  # (the harness answers queued orders as quotes come)
    assert f.status_of(tid) == "fired" and len(f.orders) == 1


def test_a_trailing_mark_keeps_following_the_price_while_halted():
    """A halt stops sending, not watching: the high made during the halt moves the mark (and is
    saved), and a fall below the level from that high counts as a crossing for resume."""
    h = Harness()
    h.quote(START)
    tid = h.add(side="sell", qty=1, kind="trailing", trail_ticks=5)
    h.quote(START)
    h.status.halted = True
    h.trig.on_status()
    assert h.status_of(tid) == "suspended"
    high = krx.next_tick(START, 10)
    h.quote(high)
    t = h.trig.book.get(tid)
    assert t.mark == high and t.level == krx.prev_tick(high, 5)
    h.marks.clear()
    h.trig.tick()
    assert h.marks == [[tid, high, krx.prev_tick(high, 5)]]  # saved while halted too
    h.quote(krx.prev_tick(high, 6))  # below the level from the new high, above the old one
    h.quote(high)  # and back up
    h.status.halted = False
    h.trig.on_status()
    assert h.status_of(tid) == "suspended" and "during the halt" in t.reason
    assert h.orders == []
