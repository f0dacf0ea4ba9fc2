"""What the console shows depends on these engine facts (issue 10): held codes keep streaming,
every reserve change publishes the account, stored surge alerts keep their time, and
``subscribe`` names the codes that do not exist."""

import json
import time

from core.protocol import krx

CODE = "005930"


def _quotes_of(tap, code, since):
    return [
        q
        for e in tap.events[since:]
        if e["type"] == "quotes"
        for q in e["data"]["items"]
        if q["code"] == code
    ]


def _price(engine, code, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = engine.redis.hget(engine.keys.state_quotes, code)
        if raw:
            return json.loads(raw)["price"]
        time.sleep(0.02)
    raise AssertionError("no quote of {} in P:state:quotes".format(code))


def test_b1_a_held_code_keeps_streaming_after_it_leaves_the_watchlist(engine, tap):
    buy = engine.send({"cmd": "buy", "code": CODE, "qty": 1, "type": "market"})
    assert buy["ok"], buy
    tap.wait_for(
        lambda e: e["type"] == "position" and e["data"]["code"] == CODE and e["data"]["qty"] == 1,
        what="the position",
    )
    reply = engine.send({"cmd": "unsubscribe", "codes": [CODE]})
    assert reply["ok"] and CODE not in reply["result"]["watchlist"]
    time.sleep(0.3)  # quotes already batched before the unsubscribe
    mark = len(tap.events)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(_quotes_of(tap, CODE, mark)) < 3:
        time.sleep(0.05)
    assert len(_quotes_of(tap, CODE, mark)) >= 3, "no quotes for a held code after unsubscribe"


def test_b1_a_code_with_an_open_order_streams_though_never_watched(engine, tap):
    code = "000270"
    assert code not in engine.redis.lrange(engine.keys.state_watchlist, 0, -1)
    # A resting buy far under the market for a code nobody watches (its price read once).
    engine.send({"cmd": "subscribe", "codes": [code]})
    price = _price(engine, code)
    engine.send({"cmd": "unsubscribe", "codes": [code]})
    low = krx.snap_down(int(price * 0.95))
    buy = engine.send({"cmd": "buy", "code": code, "qty": 1, "price": low})
    assert buy["ok"], buy
    time.sleep(0.3)
    mark = len(tap.events)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(_quotes_of(tap, code, mark)) < 3:
        time.sleep(0.05)
    assert len(_quotes_of(tap, code, mark)) >= 3, "no quotes for a code with an open order"


def test_b2_placing_and_cancelling_a_buy_publishes_orderable_at_once(engine, tap):
    price = _price(engine, CODE)
    low = krx.snap_down(int(price * 0.95))  # rests: no fill, no price move needed
    before = int(engine.redis.hget(engine.keys.state_account, "orderable"))
    buy = engine.send({"cmd": "buy", "code": CODE, "qty": 5, "price": low})
    assert buy["ok"], buy
    need = 5 * low + krx.commission(5 * low, 0.015)
    tap.wait_for(
        lambda e: e["type"] == "account" and e["data"]["orderable"] == before - need,
        what="the account after the buy was placed",
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if int(engine.redis.hget(engine.keys.state_account, "orderable")) == before - need:
            break
        time.sleep(0.02)
    assert int(engine.redis.hget(engine.keys.state_account, "orderable")) == before - need
    assert engine.send({"cmd": "cancel", "order_id": buy["result"]["order_id"]})["ok"]
    tap.wait_for(
        lambda e: e["type"] == "account" and e["data"]["orderable"] == before,
        what="the account after the cancel",
    )


def test_b4_stored_surge_alerts_carry_the_time_of_their_event(engine_factory):
    eng = engine_factory(
        settings={
            "sim.burst_every_s": 0.5,
            "surge.window_s": 2,
            "surge.baseline_s": 4,
            "surge.min_change_pct": 0.1,
            "surge.min_volume_ratio": 1.2,
            "surge.cooldown_s": 1,
        }
    )
    eng.wait_ready()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not eng.redis.llen(eng.keys.state_surge):
        time.sleep(0.1)
    raw = eng.redis.lrange(eng.keys.state_surge, 0, -1)
    assert raw, "no surge alert in 30 s"
    now = int(time.time() * 1000)
    for item in raw:
        alert = json.loads(item)
        assert isinstance(alert.get("ts"), int) and now - 60_000 < alert["ts"] <= now, alert


def test_b8_subscribe_names_codes_the_universe_does_not_list(engine):
    reply = engine.send({"cmd": "subscribe", "codes": ["999999", "000270"]})
    assert reply["ok"], reply
    assert reply["result"]["unknown"] == ["999999"]
    assert reply["result"]["added"] == ["000270"]
    assert "999999" not in engine.redis.lrange(engine.keys.state_watchlist, 0, -1)


def test_the_paper_account_survives_an_engine_restart(engine_factory):
    """Cash, positions and orders come back; order ids continue (no S000001 again)."""
    eng = engine_factory()
    eng.wait_ready()
    bought = eng.send({"cmd": "buy", "code": CODE, "qty": 3, "type": "market"})
    assert bought["ok"], bought
    price = _price(eng, CODE)
    resting = eng.send(
        {"cmd": "buy", "code": CODE, "qty": 2, "price": krx.snap_down(int(price * 0.95))}
    )
    assert resting["ok"], resting
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pos = eng.redis.hget(eng.keys.state_positions, CODE)
        if pos and json.loads(pos)["qty"] == 3:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    cash = int(eng.redis.hget(eng.keys.state_account, "cash"))
    orderable = int(eng.redis.hget(eng.keys.state_account, "orderable"))
    assert cash < 100000000 and orderable < cash
    eng.stop()
    eng.start()
    eng.wait_ready(timeout=30)
    time.sleep(0.5)
    assert int(eng.redis.hget(eng.keys.state_account, "cash")) == cash
    assert int(eng.redis.hget(eng.keys.state_account, "orderable")) == orderable
    assert json.loads(eng.redis.hget(eng.keys.state_positions, CODE))["qty"] == 3
    orders = {k: json.loads(v) for k, v in eng.redis.hgetall(eng.keys.state_orders).items()}
    first, second = bought["result"]["order_id"], resting["result"]["order_id"]
    assert orders[first]["status"] == "filled"
    assert orders[second]["status"] == "accepted"
    again = eng.send({"cmd": "buy", "code": CODE, "qty": 1, "type": "market"})
    assert again["ok"], again
    assert again["result"]["order_id"] > second  # ids continue
    assert eng.send({"cmd": "cancel", "order_id": second})["ok"]  # the restored order is live
