"""kill -9 the engine at each step of a trigger's firing, restart it on the same Redis prefix,
and check that at most one order went out and that the trigger ends in the right status.

The kill is a real SIGKILL of the real engine process, sent by the engine to itself at the
step named by ``KC_TRIGGER_CRASH_AT`` (engine32.trigger_engine; never set in production):

- ``before_firing``: the crossing is seen, nothing written → still ``armed`` after the restart;
  it fires (once) on the next crossing;
- ``after_firing``: ``firing`` is in Redis, the order command is not → the restart sends it
  (same id) → ``fired``, one order;
- ``after_send``: the broker has the order, its reply is not written (``P:seen`` says
  running) → ``fired`` with outcome ``unknown``, never sent again;
- ``after_answer``: the reply is in ``P:seen``, the ``fired`` record is not → ``fired`` with
  the order id from the reply, never sent again.
"""

import json
import time

import pytest

from core.protocol import krx

CODE = "005930"


def _events(eng):
    out = []
    for _, fields in eng.redis.xrange(eng.keys.events):
        out.append(json.loads(fields["e"]))
    return out


def _trigger(eng, tid):
    raw = eng.redis.hget(eng.keys.state_triggers, tid)
    return json.loads(raw) if raw else None


def _wait(predicate, timeout, what, eng):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for {}\n{}".format(what, eng.tail()))


def _last(eng):
    _wait(lambda: eng.redis.hget(eng.keys.state_quotes, CODE), 5, "a quote", eng)
    return json.loads(eng.redis.hget(eng.keys.state_quotes, CODE))["price"]


@pytest.mark.parametrize(
    "step,status,outcome,orders_after_restart",
    [
        ("before_firing", "fired", "sent", 1),
        ("after_firing", "fired", "sent", 1),
        ("after_send", "fired", "unknown", 0),
        ("after_answer", "fired", "sent", 0),
    ],
)
def test_kill9_at_each_step_gives_at_most_one_order(
    engine_factory, step, status, outcome, orders_after_restart
):
    first = engine_factory(env={"KC_TRIGGER_CRASH_AT": step})
    first.wait_ready()
    last = _last(first)
    level = krx.next_tick(last, 5)
    reply = first.send(
        {
            "cmd": "trigger_add",
            "code": CODE,
            "side": "buy",
            "qty": 1,
            "kind": "stop",
            "trigger_price": level,
        }
    )
    assert reply["ok"], reply
    tid = reply["result"]["trigger_id"]
    first.push({"cmd": "sim_price", "code": CODE, "price": krx.next_tick(level, 3)})
    first.proc.wait(20)
    assert first.proc.returncode == -9, first.tail()
    assert "test crash point " + step in first.stderr_text()
    before = _trigger(first, tid)
    assert before["status"] == ("armed" if step == "before_firing" else "firing")
    run1 = first.engine_hash()["run_id"]

    second = engine_factory(prefix=first.prefix)
    second.wait_ready(timeout=30)
    if step == "before_firing":
        second.send({"cmd": "sim_price", "code": CODE, "price": krx.next_tick(level, 3)})
    _wait(lambda: (_trigger(second, tid) or {}).get("status") == status, 15, status, second)
    time.sleep(0.5)  # anything a second copy would do has happened by now
    final = _trigger(second, tid)
    assert final["outcome"] == outcome, final
    assert final["attempt"] == 1
    if outcome == "sent":
        assert final["order_id"]

    events = _events(second)
    cmd_prefix = "trg-{}-".format(tid)
    replies_ok = [
        e
        for e in events
        if e["type"] == "reply"
        and str(e["data"].get("id", "")).startswith(cmd_prefix)
        and e["data"]["ok"]
    ]
    run2 = second.engine_hash()["run_id"]
    orders_run2 = {
        e["data"]["order_id"]
        for e in events
        if e["type"] == "order" and e["run"] == run2 and e["data"]["cmd_id"].startswith(cmd_prefix)
    }
    orders_run1 = {
        e["data"]["order_id"]
        for e in events
        if e["type"] == "order" and e["run"] == run1 and e["data"]["cmd_id"].startswith(cmd_prefix)
    }
    assert len(orders_run2) == orders_after_restart, (orders_run1, orders_run2)
    # at most one order in all: one ok reply at most, and never orders in both runs
    assert len(replies_ok) <= 1, replies_ok
    assert not (orders_run1 and orders_run2)
    seen = second.redis.get(second.keys.seen(cmd_prefix + "1"))
    assert seen is not None and seen != "running"
    assert second.redis.get(second.keys.seen(cmd_prefix + "2")) is None


def test_an_order_in_flight_at_a_crash_that_the_broker_had_accepted_is_sent_not_unknown(
    engine_factory,
):
    """The crash came after the broker's acceptance reached ``P:state:orders`` (a Kiwoom REST
    접수 can arrive before the order's HTTP answer) but before the reply: ``P:seen`` says
    running. The restarted engine finds the order the previous run recorded and says ``sent``
    with its id, instead of ``unknown``; it never sends it again."""
    first = engine_factory(env={"KC_TRIGGER_CRASH_AT": "after_send"})
    first.wait_ready()
    last = _last(first)
    level = krx.next_tick(last, 5)
    tid = first.send(
        {"cmd": "trigger_add", "code": CODE, "side": "buy", "qty": 1, "kind": "stop",
         "trigger_price": level}
    )["result"]["trigger_id"]  # fmt: skip
    first.push({"cmd": "sim_price", "code": CODE, "price": krx.next_tick(level, 3)})
    first.proc.wait(20)
    assert first.proc.returncode == -9, first.tail()
    cmd_id = "trg-{}-1".format(tid)
    assert first.redis.get(first.keys.seen(cmd_id)) == "running"
    # what the broker's acceptance had written before the kill (the sim answers first)
    accepted = {"order_id": "0000123", "cmd_id": cmd_id, "code": CODE, "side": "buy", "qty": 1,
                "status": "accepted", "kind": "market", "price": 0}  # fmt: skip
    first.redis.hset(first.keys.state_orders, "0000123", json.dumps(accepted))

    second = engine_factory(prefix=first.prefix)
    second.wait_ready(timeout=30)
    _wait(lambda: (_trigger(second, tid) or {}).get("status") == "fired", 15, "fired", second)
    time.sleep(0.5)
    final = _trigger(second, tid)
    assert final["outcome"] == "sent" and final["order_id"] == "0000123", final
    assert "accepted before the engine restarted" in final["reason"]
    assert second.redis.get(second.keys.seen("trg-{}-2".format(tid))) is None
    orders = [
        e for e in _events(second)
        if e["type"] == "order" and e["data"]["cmd_id"].startswith("trg-{}-".format(tid))
        and e["run"] == second.engine_hash()["run_id"]
    ]  # fmt: skip
    # only the recorded order, restored by the sim's account: no second one
    assert {e["data"]["order_id"] for e in orders} <= {"0000123"}, orders
