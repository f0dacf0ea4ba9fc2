"""The rules of protocol.md that protect money, against the real engine: at-most-once ids,
STALE by the Redis server's clock, risk limits before the broker."""

import json
import time

import pytest

from core.protocol import krx

CODE = "005930"


def _orders_of(engine, cmd_id):
    orders = [json.loads(v) for v in engine.redis.hgetall(engine.keys.state_orders).values()]
    return [o for o in orders if o["cmd_id"] == cmd_id]


def _last(engine, code=CODE):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        raw = engine.redis.hget(engine.keys.state_quotes, code)
        if raw:
            return json.loads(raw)["price"]
        time.sleep(0.05)
    raise AssertionError("no quote for " + code)


def test_a_repeated_id_is_not_run_again_and_gets_the_first_reply(engine):
    first = engine.send({"id": "dup-1", "cmd": "buy", "code": CODE, "qty": 1, "type": "market"})
    assert first["ok"], first
    again = engine.send({"id": "dup-1", "cmd": "buy", "code": CODE, "qty": 1, "type": "market"})
    assert again["ok"] is False and again["error"]["code"] == "DUPLICATE"
    assert again["first"] == first
    assert again["result"] == first["result"]
    time.sleep(0.3)
    assert len(_orders_of(engine, "dup-1")) == 1
    stored = json.loads(engine.redis.get(engine.keys.seen("dup-1")))
    assert stored == first
    assert engine.redis.ttl(engine.keys.seen("dup-1")) > 86400


def test_an_id_still_running_is_refused(engine):
    engine.redis.set(engine.keys.seen("busy-1"), "running", ex=60)
    reply = engine.send({"id": "busy-1", "cmd": "buy", "code": CODE, "qty": 1, "type": "market"})
    assert reply["error"]["code"] == "DUPLICATE" and "running" in reply["error"]["message"]
    assert "first" not in reply
    assert _orders_of(engine, "busy-1") == []


def _server_ms(engine):
    seconds, micros = engine.redis.time()
    return seconds * 1000 + micros // 1000


@pytest.mark.parametrize(
    "age_ms, ttl_ms, runs",
    [(10000, None, False), (2000, 1000, False), (2000, 30000, True), (-10000, None, True)],
)
def test_staleness_is_judged_by_the_redis_clock(engine, age_ms, ttl_ms, runs):
    """A client whose clock is off: ``ts`` says the command is ``age_ms`` old (negative: from
    the future). Default ttl is 5000 ms."""
    cmd = {
        "cmd": "buy",
        "code": CODE,
        "qty": 1,
        "type": "market",
        "ts": _server_ms(engine) - age_ms,
    }
    if ttl_ms:
        cmd["ttl_ms"] = ttl_ms
    reply = engine.send(cmd)
    if runs:
        assert reply["ok"], reply
    else:
        assert reply["error"]["code"] == "STALE"
        assert "Redis server's clock" in reply["error"]["message"]
        time.sleep(0.2)
        assert _orders_of(engine, reply["id"]) == []
        # A stale command does not use up its id: sent again in time, it runs.
        fresh = engine.send({"id": reply["id"], "cmd": "ping"})
        assert fresh["ok"]


@pytest.fixture
def tight_engine(engine_factory):
    eng = engine_factory(
        settings={
            "risk.max_order_qty": 50,
            "risk.max_order_value": 3000000,
            "risk.max_position_value": 4000000,
            "risk.max_open_orders": 2,
            "risk.price_band_pct": 3.0,
            "risk.max_daily_loss": 1,
        }
    )
    eng.wait_ready()
    return eng


def _rejected(reply, words):
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == "RISK_REJECTED", reply
    assert words in reply["error"]["message"], reply["error"]["message"]


def test_each_risk_limit_rejects_before_the_broker(tight_engine):
    eng = tight_engine
    last = _last(eng)
    _rejected(
        eng.send({"cmd": "buy", "code": CODE, "qty": 51, "type": "market"}),
        "exceeds the 50 share limit by 1",
    )
    big = eng.send({"cmd": "buy", "code": CODE, "qty": 50, "price": last})
    _rejected(big, "exceeds the 3,000,000 KRW limit by")
    far = krx.snap_up(int(last * 1.05))
    _rejected(eng.send({"cmd": "buy", "code": CODE, "qty": 1, "price": far}), "fat-finger band")

    rest = krx.snap_down(int(last * 0.98))
    ids = [eng.send({"cmd": "buy", "code": CODE, "qty": 1, "price": rest}) for _ in range(2)]
    assert all(r["ok"] for r in ids), ids
    _rejected(
        eng.send({"cmd": "buy", "code": CODE, "qty": 1, "price": rest}), "open-order limit by 1"
    )
    assert eng.send({"cmd": "cancel_all"})["result"]["count"] == 2

    # Position value: 4,000,000 KRW per code. Buy 30 (about 2.1 M), then 40 more is too much.
    first = eng.send({"cmd": "buy", "code": CODE, "qty": 30, "type": "market"})
    assert first["ok"], first
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not eng.redis.hget(eng.keys.state_positions, CODE):
        time.sleep(0.05)
    _rejected(
        eng.send({"cmd": "buy", "code": CODE, "qty": 40, "type": "market"}), "per-code limit by"
    )
    # None of the rejected orders reached the broker: only the accepted ones exist.
    time.sleep(0.3)
    orders = [json.loads(v) for v in eng.redis.hgetall(eng.keys.state_orders).values()]
    assert sorted(o["qty"] for o in orders) == [1, 1, 30]


def test_daily_loss_limit_then_only_reducing_orders(tight_engine):
    eng = tight_engine
    assert eng.send({"cmd": "buy", "code": CODE, "qty": 20, "type": "market"})["ok"]
    time.sleep(0.3)
    # Round trip through the spread with fees and tax: a realised loss above the 1 KRW limit.
    assert eng.send({"cmd": "sell", "code": CODE, "qty": 10, "type": "market"})["ok"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pnl = int(eng.redis.hget(eng.keys.state_account, "realized_pnl_today") or 0)
        if pnl < 0:
            break
        time.sleep(0.05)
    assert pnl < 0, "the round trip should lose money"
    _rejected(eng.send({"cmd": "buy", "code": CODE, "qty": 1, "type": "market"}), "daily limit")
    _rejected(
        eng.send({"cmd": "sell", "code": CODE, "qty": 11, "type": "market"}),
        "only orders that reduce",
    )
    assert eng.send({"cmd": "sell", "code": CODE, "qty": 10, "type": "market"})["ok"]
