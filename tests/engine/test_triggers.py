"""Triggers (issue 14) on a real engine process over real Redis: redis-cli end to end, brackets
growing with fills, closing a position by hand, halt/resume, and bad input."""

import json
import time

import pytest

from core.protocol import krx
from tests.engine.test_redis_cli import Cli

CODE = "005930"


def _state(engine, tid):
    raw = engine.redis.hget(engine.keys.state_triggers, tid)
    return json.loads(raw) if raw else None


def _wait_status(engine, tid, status, timeout=10.0):
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = _state(engine, tid)
        if got and got["status"] == status:
            return got
        time.sleep(0.02)
    raise AssertionError(
        "trigger {} not {} within {} s: {}\n{}".format(tid, status, timeout, got, engine.tail())
    )


def _last(engine, code=CODE):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        raw = engine.redis.hget(engine.keys.state_quotes, code)
        if raw:
            return json.loads(raw)["price"]
        time.sleep(0.02)
    raise AssertionError("no quote of " + code)


def _buy(engine, tap, qty, **extra):
    reply = engine.send(dict({"cmd": "buy", "code": CODE, "qty": qty, "type": "market"}, **extra))
    assert reply["ok"], reply
    order_id = reply["result"]["order_id"]
    tap.wait_for(
        lambda e: (
            e["type"] == "order"
            and e["data"]["order_id"] == order_id
            and e["data"]["status"] == "filled"
        ),
        what="buy filled",
    )
    return reply


def _trailing_on_position(engine, pct):
    """A sell trailing stop of ``pct`` % on the whole position; its trigger id."""
    cmd = {"cmd": "trigger_add", "code": CODE, "side": "sell", "qty": "position"}
    return engine.send(dict(cmd, kind="trailing", trail_pct=pct))["result"]["trigger_id"]


def _position(engine, code=CODE):
    raw = engine.redis.hget(engine.keys.state_positions, code)
    return json.loads(raw)["qty"] if raw else 0


def _wait(predicate, timeout=10.0, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def test_redis_cli_stop_fires_once_and_the_order_and_fill_follow(redis_server, engine, tap):
    cli = Cli(redis_server, engine)
    _buy(engine, tap, 10)
    _wait(lambda: _position(engine) == 10, what="position 10")
    last = _last(engine)
    stop = krx.prev_tick(last, 5)
    reply = cli.send(
        "c-trg",
        {
            "cmd": "trigger_add",
            "code": CODE,
            "side": "sell",
            "qty": "position",
            "kind": "stop",
            "trigger_price": stop,
        },
    )
    assert reply["ok"], reply
    tid = reply["result"]["trigger_id"]
    armed = json.loads(cli("HGET", engine.keys.state_triggers, tid))
    assert armed["status"] == "armed" and armed["trigger_price"] == stop
    # sim-only: trade the code through the stop
    moved = cli.send("c-px", {"cmd": "sim_price", "code": CODE, "price": krx.prev_tick(stop, 2)})
    assert moved["ok"], moved
    fired = _wait_status(engine, tid, "fired")
    assert fired["outcome"] == "sent" and fired["order_id"]
    assert fired["cmd_id"] == "trg-{}-1".format(tid)
    tap.wait_for(
        lambda e: e["type"] == "fill" and e["data"]["order_id"] == fired["order_id"],
        what="the stop's fill",
    )
    _wait(lambda: _position(engine) == 0, what="position closed")
    # more crossings: nothing fires again
    cli.send("c-px2", {"cmd": "sim_price", "code": CODE, "price": krx.prev_tick(stop, 4)})
    time.sleep(0.3)
    trigger_orders = {
        e["data"]["order_id"]
        for e in tap.of_type("order")
        if e["data"]["cmd_id"].startswith("trg-")
    }
    assert trigger_orders == {fired["order_id"]}
    statuses = [
        e["data"]["status"] for e in tap.of_type("trigger") if e["data"]["trigger_id"] == tid
    ]
    assert statuses[0] == "armed" and statuses[-1] == "fired" and "firing" in statuses
    assert statuses.count("fired") == 1


def test_bracket_on_a_buy_grows_with_fills_and_the_take_profit_cancels_the_stop(engine, tap):
    last = _last(engine)
    reply = _buy(engine, tap, 30, id="bkt-buy-1", stop_loss_pct=3, take_profit_pct=3)
    legs = [e["data"] for e in tap.of_type("trigger") if e["data"]["parent"] == "bkt-buy-1"]
    assert {leg["kind"] for leg in legs} == {"stop", "take_profit"}
    fills = [
        e["data"]
        for e in tap.of_type("fill")
        if e["data"]["order_id"] == reply["result"]["order_id"]
    ]
    assert sum(f["qty"] for f in fills) == 30
    time.sleep(0.2)
    triggers = [json.loads(v) for v in engine.redis.hvals(engine.keys.state_triggers)]
    legs = {t["kind"]: t for t in triggers if t["parent"] == "bkt-buy-1"}
    assert legs["stop"]["qty"] == 30 and legs["take_profit"]["qty"] == 30
    assert legs["stop"]["oco"] == legs["take_profit"]["oco"]
    assert legs["stop"]["trigger_price"] < last < legs["take_profit"]["trigger_price"]
    # each partial fill moved the bracket's quantity: one trigger event per fill per leg
    qty_seen = sorted(
        {
            e["data"]["qty"]
            for e in tap.of_type("trigger")
            if e["data"]["trigger_id"] == legs["stop"]["trigger_id"]
        }
    )
    running = 0
    expected = [0]
    for f in fills:
        running += f["qty"]
        expected.append(running)
    assert qty_seen == sorted(set(expected))
    engine.send(
        {
            "cmd": "sim_price",
            "code": CODE,
            "price": krx.next_tick(legs["take_profit"]["trigger_price"], 1),
        }
    )
    tp = _wait_status(engine, legs["take_profit"]["trigger_id"], "fired")
    stop = _wait_status(engine, legs["stop"]["trigger_id"], "cancelled")
    assert tp["trigger_id"] in stop["reason"]
    _wait(lambda: _position(engine) == 0, what="position sold by the take-profit")


def test_closing_a_position_by_hand_cancels_its_triggers(engine, tap):
    _buy(engine, tap, 5)
    last = _last(engine)
    tid = engine.send(
        {
            "cmd": "trigger_add",
            "code": CODE,
            "side": "sell",
            "qty": 5,
            "kind": "stop",
            "trigger_price": krx.prev_tick(last, 20),
        }
    )["result"]["trigger_id"]
    trail = engine.send(
        {
            "cmd": "trigger_add",
            "code": CODE,
            "side": "sell",
            "qty": "position",
            "kind": "trailing",
            "trail_pct": 5,
        }
    )["result"]["trigger_id"]
    _wait(lambda: _position(engine) == 5, what="position")
    assert engine.send({"cmd": "sell", "code": CODE, "qty": 5, "type": "market"})["ok"]
    for t in (tid, trail):
        got = _wait_status(engine, t, "cancelled")
        assert "closed" in got["reason"]


def test_halt_suspends_and_resume_asks_when_the_price_crossed(engine, tap):
    _buy(engine, tap, 5)
    _wait(lambda: _position(engine) == 5, what="position")
    last = _last(engine)
    stop = krx.prev_tick(last, 5)
    tid = engine.send(
        {
            "cmd": "trigger_add",
            "code": CODE,
            "side": "sell",
            "qty": "position",
            "kind": "stop",
            "trigger_price": stop,
        }
    )["result"]["trigger_id"]
    assert engine.send({"cmd": "halt"})["ok"]
    _wait_status(engine, tid, "suspended")
    engine.send({"cmd": "sim_price", "code": CODE, "price": krx.prev_tick(stop, 40)})
    time.sleep(0.3)
    assert _state(engine, tid)["status"] == "suspended"  # halted: fires nothing
    assert engine.send({"cmd": "resume"})["ok"]
    time.sleep(0.3)
    asked = _state(engine, tid)
    assert asked["status"] == "suspended" and "during the halt" in asked["reason"]
    assert _position(engine) == 5
    # the trader confirms: trigger_modify arms it again, and it fires on the next quote
    assert engine.send({"cmd": "trigger_modify", "trigger_id": tid, "trigger_price": stop})["ok"]
    engine.send({"cmd": "sim_price", "code": CODE, "price": krx.prev_tick(stop, 40)})
    _wait_status(engine, tid, "fired")
    _wait(lambda: _position(engine) == 0, what="sold after the confirmation")


def test_resume_fires_at_once_when_configured(engine_factory):
    from tests.engine.conftest import EventTap

    eng = engine_factory(settings={"triggers.on_resume": "fire"})
    eng.wait_ready()
    tap = EventTap(eng.redis_url, eng.prefix)
    try:
        time.sleep(0.05)
        _buy(eng, tap, 5)
        _wait(lambda: _position(eng) == 5, what="position")
        stop = krx.prev_tick(_last(eng), 5)
        tid = eng.send(
            {
                "cmd": "trigger_add",
                "code": CODE,
                "side": "sell",
                "qty": "position",
                "kind": "stop",
                "trigger_price": stop,
            }
        )["result"]["trigger_id"]
        eng.send({"cmd": "halt"})
        _wait_status(eng, tid, "suspended")
        eng.send({"cmd": "sim_price", "code": CODE, "price": krx.prev_tick(stop, 3)})
        eng.send({"cmd": "resume"})
        _wait_status(eng, tid, "fired")
    finally:
        tap.close()


def test_cancel_modify_and_bad_input_get_clear_answers(engine, tap):
    last = _last(engine)
    reply = engine.send(
        {
            "cmd": "trigger_add",
            "code": CODE,
            "side": "buy",
            "qty": 1,
            "kind": "stop",
            "trigger_price": krx.next_tick(last, 50),
            "order_type": "limit",
            "limit_offset_ticks": 2,
            "oco": "g1",
            "expires": "2099-01-01T15:00",
        }
    )
    assert reply["ok"], reply
    tid = reply["result"]["trigger_id"]
    mod = engine.send(
        {"cmd": "trigger_modify", "trigger_id": tid, "trigger_price": krx.next_tick(last, 60)}
    )
    assert mod["ok"] and mod["result"]["trigger"]["trigger_price"] == krx.next_tick(last, 60)
    assert engine.send({"cmd": "trigger_cancel", "trigger_id": tid})["ok"]
    again = engine.send({"cmd": "trigger_cancel", "trigger_id": tid})
    assert (
        again["error"]["code"] == "INVALID_ARGUMENT"
        and "already cancelled" in again["error"]["message"]
    )
    bad = [
        ({"kind": "stop", "trigger_price": 70001}, "tick"),
        ({"kind": "trailing"}, "trail_pct or trail_ticks"),
        ({"kind": "stop"}, "trigger_price is required"),
        ({"kind": "stop", "trigger_price": 70000, "order_type": "stop"}, "order_type must be"),
        ({"kind": "stop", "trigger_price": 70000, "expires": "tomorrow"}, "KST date-time"),
        ({"kind": "moon", "trigger_price": 70000}, "kind must be"),
    ]
    for extra, words in bad:
        body = dict({"cmd": "trigger_add", "code": CODE, "side": "sell", "qty": 1}, **extra)
        got = engine.send(body)
        assert not got["ok"] and words in got["error"]["message"], (extra, got)
    unknown = engine.send({"cmd": "trigger_modify", "trigger_id": "nope", "qty": 3})
    assert "unknown trigger" in unknown["error"]["message"]
    assert engine.redis.ping()  # the engine is still there


@pytest.mark.parametrize("pct", [2.0])
def test_trailing_mark_is_flushed_to_redis(engine, tap, pct):
    _buy(engine, tap, 3)
    _wait(lambda: _position(engine) == 3, what="position")
    last = _last(engine)
    tid = _trailing_on_position(engine, pct)
    high = krx.next_tick(last, 10)
    engine.send({"cmd": "sim_price", "code": CODE, "price": high})
    # Saved within one flush (1 s) in P:state:trigger_marks, told in a trigger_marks event.
    _wait(
        lambda: int(engine.redis.hget(engine.keys.state_trigger_marks, tid) or 0) >= high,
        timeout=5,
        what="mark flushed",
    )
    moved = tap.wait_for(
        lambda e: (
            e["type"] == "trigger_marks"
            and any(row[0] == tid and row[1] >= high for row in e["data"]["marks"])
        ),
        what="trigger_marks with the new high",
    )
    row = next(r for r in moved["data"]["marks"] if r[0] == tid)
    # the level that fires it now, on the tick grid (the highest price at or under it)
    assert row[2] == krx.snap_down(int(row[1] * (100 - pct) / 100))
    drop = krx.snap_down(int(high * (100 - pct) / 100) - 1)
    engine.send({"cmd": "sim_price", "code": CODE, "price": drop})
    fired = _wait_status(engine, tid, "fired")
    assert fired["fired_price"] <= high * (100 - pct) / 100


def test_a_modified_bracket_buy_keeps_its_bracket_and_a_refused_one_cancels_it(engine, tap):
    last = _last(engine)
    low = krx.prev_tick(last, 30)
    reply = engine.send(
        {
            "cmd": "buy",
            "id": "bkt-mod",
            "code": CODE,
            "qty": 4,
            "price": low,
            "stop_loss": krx.prev_tick(low, 20),
            "take_profit": krx.next_tick(last, 40),
        }
    )
    assert reply["ok"], reply
    high = krx.next_tick(_last(engine), 3)
    mod = engine.send({"cmd": "modify", "order_id": reply["result"]["order_id"], "price": high})
    assert mod["ok"], mod
    _wait(lambda: _position(engine) == 4, what="the modified buy filled")
    time.sleep(0.3)
    legs = [json.loads(v) for v in engine.redis.hvals(engine.keys.state_triggers)]
    legs = [t for t in legs if t["parent"] == "bkt-mod"]
    assert [t["status"] for t in legs] == ["armed", "armed"]
    assert [t["qty"] for t in legs] == [4, 4]

    refused = engine.send(
        {
            "cmd": "buy",
            "id": "bkt-big",
            "code": CODE,
            "qty": 10**7,
            "type": "market",
            "stop_loss_pct": 2,
        }
    )
    assert refused["error"]["code"] == "RISK_REJECTED"
    time.sleep(0.3)
    legs = [json.loads(v) for v in engine.redis.hvals(engine.keys.state_triggers)]
    leg = next(t for t in legs if t["parent"] == "bkt-big")
    assert leg["status"] == "cancelled" and "refused" in leg["reason"]


def test_a_restart_keeps_the_saved_trailing_mark(engine_factory):
    """The mark saved in P:state:trigger_marks (not in the trigger JSON) survives a kill -9:
    the restarted engine arms the trailing stop from it, and a fall below its level fires."""
    first = engine_factory()
    first.wait_ready()
    assert first.send({"cmd": "buy", "code": CODE, "qty": 2, "type": "market"})["ok"]
    _wait(lambda: _position(first) == 2, what="position")
    last = _last(first)
    pct = 5.0
    tid = _trailing_on_position(first, pct)
    _wait(lambda: _state(first, tid) is not None, what="trigger saved")
    high = krx.next_tick(last, 20)
    first.send({"cmd": "sim_price", "code": CODE, "price": high})
    _wait(
        lambda: int(first.redis.hget(first.keys.state_trigger_marks, tid) or 0) >= high,
        what="mark flushed",
    )
    assert _state(first, tid)["mark"] < high  # only the marks hash has it
    first.kill()
    second = engine_factory(prefix=first.prefix)
    second.wait_ready()
    _wait(lambda: (_state(second, tid) or {}).get("mark", 0) >= high, what="mark reloaded")
    level = high * (100 - pct) / 100
    assert _state(second, tid)["level"] == krx.snap_down(int(level))
    # Between the old mark's level and the saved one's: fires only with the saved mark.
    between = krx.snap_down(int(level) - 1)
    assert between > int(last * (100 - pct) / 100)
    second.send({"cmd": "sim_price", "code": CODE, "price": between})
    fired = _wait_status(second, tid, "fired")
    assert fired["fired_price"] <= level
