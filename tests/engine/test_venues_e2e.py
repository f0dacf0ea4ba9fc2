"""End to end with redis-cli: the whole Korean day through the engine (issue 12).

A real engine process runs the simulator on both venues with its clock started at a fixed
KST date-time (``[sim] start_at``); a script types JSON into ``redis-cli`` and reads replies.
"""

import json
import time

from core.protocol import krx
from tests.engine.test_redis_cli import Cli

CODE = "005930"
#: A Wednesday, a trading day.
DAY = "2026-12-02"


def _engine(engine_factory, hhmm: str):
    eng = engine_factory(settings={"sim.sessions": "krx+nxt", "sim.start_at": DAY + " " + hhmm})
    eng.wait_ready()
    return eng


def _when(read, what: str, timeout: float = 10.0) -> str:
    """``read()`` once it gives something: the first quote is written at the engine's first
    quote flush (up to 50 ms after ready), which a fast script can beat."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = read()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("no {} within {} s".format(what, timeout))


def _order_when(cli, eng, order_id: str, status: str, timeout: float = 20.0) -> dict:
    """The order from ``P:state:orders`` once it has ``status`` (waits on the condition)."""
    deadline = time.monotonic() + timeout
    order: dict = {}
    while time.monotonic() < deadline:
        raw = cli("HGET", eng.keys.state_orders, order_id).strip()
        order = json.loads(raw) if raw else {}
        if order.get("status") == status:
            return order
        time.sleep(0.1)
    raise AssertionError("order {} never {}: {}".format(order_id, status, order))


def test_nxt_limit_buy_at_1730_fills_and_a_market_order_is_refused(
    redis_server, engine_factory
) -> None:
    eng = _engine(engine_factory, "17:30")
    cli = Cli(redis_server, eng)
    fields = eng.engine_hash()
    assert fields["session"] == "after_hours_single"
    assert fields["session_nxt"] == "after_market"
    assert fields["session_note"] == ""
    assert cli.send("v-sub", {"cmd": "subscribe", "codes": [CODE]})["ok"]
    quote = json.loads(_when(lambda: cli("HGET", eng.keys.state_quotes, CODE).strip(), "a quote"))
    price = krx.next_tick(quote["price"], 3)  # a marketable limit, inside every band

    buy = cli.send("v-nxt", {"cmd": "buy", "code": CODE, "qty": 2, "price": price, "venue": "NXT"})
    assert buy["ok"], buy
    order = _order_when(cli, eng, buy["result"]["order_id"], "filled")
    assert order["venue"] == "NXT" and order["filled_qty"] == 2

    market = cli.send("v-mkt", {"cmd": "buy", "code": CODE, "qty": 1, "type": "market"})
    assert not market["ok"]
    assert market["error"] == {
        "code": "RISK_REJECTED",
        "message": "KRX after-hours single price accepts limit orders only, "
        "within ±10% of today's close",
    }
    nxt_market = cli.send(
        "v-mkt2", {"cmd": "sell", "code": CODE, "qty": 1, "type": "market", "venue": "NXT"}
    )
    assert nxt_market["error"]["message"] == "NXT after-market accepts limit orders only"
    bad = cli.send("v-bad", {"cmd": "buy", "code": CODE, "qty": 1, "price": price, "venue": "nxt"})
    assert bad["error"]["code"] == "INVALID_ARGUMENT"
    assert bad["error"]["message"] == "venue must be KRX, NXT or SOR, got 'nxt'"


def test_a_krx_order_at_1900_is_refused_as_closed(redis_server, engine_factory) -> None:
    eng = _engine(engine_factory, "19:00")
    cli = Cli(redis_server, eng)
    fields = eng.engine_hash()
    assert fields["session"] == "closed" and fields["session_nxt"] == "after_market"
    reply = cli.send("v-krx", {"cmd": "buy", "code": CODE, "qty": 1, "price": 70000})
    assert reply["error"]["code"] == "RISK_REJECTED"
    assert reply["error"]["message"].startswith("KRX is closed at 19:00 KST")
    assert "again at 2026-12-03 08:30 KST" in reply["error"]["message"]
    sor = cli.send("v-sor", {"cmd": "buy", "code": CODE, "qty": 1, "price": 70000, "venue": "SOR"})
    assert sor["ok"], sor  # SOR finds NXT open
    order = json.loads(cli("HGET", eng.keys.state_orders, sor["result"]["order_id"]))
    assert order["venue"] == "NXT"
    if order["status"] in ("accepted", "partially_filled"):  # 70,000 may rest below the market
        mod = cli.send("v-mod", {"cmd": "modify", "order_id": order["order_id"], "price": 69900})
        assert mod["ok"], mod  # NXT still takes it at 19:00
        new = _order_when(cli, eng, mod["result"]["order_id"], "accepted")
        assert new["venue"] == "NXT"


def test_a_holiday_closes_both_venues_and_says_why(redis_server, engine_factory) -> None:
    eng = engine_factory(settings={"sim.sessions": "krx+nxt", "sim.start_at": "2026-12-25 10:00"})
    eng.wait_ready()
    cli = Cli(redis_server, eng)
    fields = eng.engine_hash()
    assert fields["session_note"] == "휴장: 성탄절"
    reply = cli.send(
        "v-hol", {"cmd": "buy", "code": CODE, "qty": 1, "price": 70000, "venue": "NXT"}
    )
    assert "휴장: 성탄절" in reply["error"]["message"]
