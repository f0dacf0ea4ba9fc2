"""Every command through redis-py against the real engine and simulator: replies, events,
snapshots."""

import json
import time

from core.protocol import decode_envelope, decode_reply, krx

CASH0 = 100000000
CODE = "005930"


def _fills_for(tap, order_id, qty, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fills = [e["data"] for e in tap.of_type("fill") if e["data"]["order_id"] == order_id]
        if sum(f["qty"] for f in fills) >= qty:
            return fills
        time.sleep(0.02)
    raise AssertionError("fills of {} did not reach {}".format(order_id, qty))


def test_ping_answers_engine_state_and_every_event_is_a_valid_envelope(engine, tap):
    reply = engine.send({"cmd": "ping"})
    assert decode_reply(json.dumps(reply))["ok"] is True
    result = reply["result"]
    assert result["state"] == "ready"
    assert result["broker"] == "sim"
    assert result["pid"] == engine.pid
    assert result["run_id"] == engine.engine_hash()["run_id"]
    # the simulator's market is always open by default, whatever the hour in Seoul
    assert engine.engine_hash()["session"] == "continuous"
    event = tap.wait_for(
        lambda e: e["type"] == "reply" and e["data"]["id"] == reply["id"], what="reply"
    )
    assert event["data"] == reply
    for raw in tap.events:
        decode_envelope(json.dumps(raw))


def test_seq_is_strictly_increasing_across_topics_in_the_stream(engine, tap):
    engine.send({"cmd": "ping"})
    time.sleep(0.3)  # some quote batches
    entries = engine.redis.xrange(engine.keys.events)
    seqs = [json.loads(fields["e"])["seq"] for _, fields in entries]
    assert len(seqs) > 3
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    runs = {json.loads(fields["e"])["run"] for _, fields in entries}
    assert runs == {engine.engine_hash()["run_id"]}


def test_heartbeat_and_engine_hash(engine):
    fields = engine.engine_hash()
    for key in (
        "run_id",
        "broker",
        "mode",
        "state",
        "pid",
        "version",
        "started_at",
        "seq",
        "dropped",
    ):
        assert key in fields, key
    ttl = engine.redis.pttl(engine.keys.engine_alive)
    assert 0 < ttl <= 3000
    assert int(engine.redis.get(engine.keys.engine_alive)) > 0


def test_quotes_are_batched_and_snapshotted(engine, tap):
    batch = tap.wait_for(lambda e: e["type"] == "quotes", what="quotes")
    items = batch["data"]["items"]
    assert items and all(krx.is_valid_code(q["code"]) for q in items)
    assert all(krx.is_on_tick(q["price"]) for q in items)
    time.sleep(0.2)
    snapshot = engine.redis.hgetall(engine.keys.state_quotes)
    for quote in items:
        assert quote["code"] in snapshot
    watch = engine.redis.lrange(engine.keys.state_watchlist, 0, -1)
    assert set(snapshot) <= set(watch)


def test_subscribe_and_unsubscribe_update_the_watchlist(engine, tap):
    reply = engine.send({"cmd": "subscribe", "codes": ["086520", "005930"]})
    assert reply["ok"], reply
    assert reply["result"]["added"] == ["086520"]
    assert "086520" in engine.redis.lrange(engine.keys.state_watchlist, 0, -1)
    tap.wait_for(
        lambda e: e["type"] == "quotes" and any(q["code"] == "086520" for q in e["data"]["items"]),
        timeout=8,
        what="a quote of the new code",
    )
    reply = engine.send({"cmd": "unsubscribe", "codes": ["086520"]})
    assert reply["ok"] and "086520" not in reply["result"]["watchlist"]
    assert "086520" not in engine.redis.lrange(engine.keys.state_watchlist, 0, -1)


def test_market_buy_then_sell_gives_consistent_order_fill_position_account(engine, tap):
    qty = 10
    buy = engine.send({"cmd": "buy", "code": CODE, "qty": qty, "type": "market"})
    assert buy["ok"], buy
    order_id = buy["result"]["order_id"]
    fills = _fills_for(tap, order_id, qty)
    value = sum(f["qty"] * f["price"] for f in fills)
    fees = sum(f["fee"] for f in fills)
    assert fees == sum(krx.commission(f["qty"] * f["price"], 0.015) for f in fills)
    assert all(f["tax"] == 0 and f["side"] == "buy" for f in fills)

    order = tap.wait_for(
        lambda e: (
            e["type"] == "order"
            and e["data"]["order_id"] == order_id
            and e["data"]["status"] == "filled"
        ),
        what="filled order",
    )["data"]
    assert (
        order["filled_qty"] == qty and order["remaining_qty"] == 0 and order["cmd_id"] == buy["id"]
    )
    position = tap.wait_for(
        lambda e: e["type"] == "position" and e["data"]["qty"] == qty, what="position"
    )["data"]
    assert position["code"] == CODE
    assert abs(position["avg_price"] * qty - value) < qty  # average price, rounded
    tap.wait_for(
        lambda e: e["type"] == "account" and e["data"]["cash"] == CASH0 - value - fees,
        what="account after buy",
    )
    time.sleep(0.1)
    stored = json.loads(engine.redis.hget(engine.keys.state_positions, CODE))
    assert stored["qty"] == qty
    assert json.loads(engine.redis.hget(engine.keys.state_orders, order_id))["status"] == "filled"
    assert int(engine.redis.hget(engine.keys.state_account, "cash")) == CASH0 - value - fees

    sell = engine.send({"cmd": "sell", "code": CODE, "qty": qty, "type": "market"})
    assert sell["ok"], sell
    sell_fills = _fills_for(tap, sell["result"]["order_id"], qty)
    proceeds = sum(f["qty"] * f["price"] for f in sell_fills)
    sell_fees = sum(f["fee"] for f in sell_fills)
    taxes = sum(f["tax"] for f in sell_fills)
    assert taxes == sum(krx.sell_tax(f["qty"] * f["price"], 0.20) for f in sell_fills) and taxes > 0
    final_cash = CASH0 - value - fees + proceeds - sell_fees - taxes
    tap.wait_for(
        lambda e: e["type"] == "account" and e["data"]["cash"] == final_cash,
        what="account after sell",
    )
    tap.wait_for(
        lambda e: e["type"] == "position" and e["data"]["qty"] == 0, what="closed position"
    )
    time.sleep(0.1)
    assert engine.redis.hget(engine.keys.state_positions, CODE) is None
    assert int(engine.redis.hget(engine.keys.state_account, "cash")) == final_cash


def _resting_buy(engine, qty=1):
    """A limit buy far enough below the market to rest (within the fat-finger band)."""
    time.sleep(0.2)
    last = json.loads(engine.redis.hget(engine.keys.state_quotes, CODE))["price"]
    price = krx.snap_down(int(last * 0.95))
    reply = engine.send({"cmd": "buy", "code": CODE, "qty": qty, "price": price})
    assert reply["ok"], reply
    return reply["result"]["order_id"], price


def test_limit_order_rests_then_cancel(engine, tap):
    order_id, price = _resting_buy(engine)
    tap.wait_for(
        lambda e: (
            e["type"] == "order"
            and e["data"]["order_id"] == order_id
            and e["data"]["status"] == "accepted"
        ),
        what="accepted",
    )
    reply = engine.send({"cmd": "cancel", "order_id": order_id})
    assert reply["ok"], reply
    tap.wait_for(
        lambda e: (
            e["type"] == "order"
            and e["data"]["order_id"] == order_id
            and e["data"]["status"] == "cancelled"
        ),
        what="cancelled",
    )
    again = engine.send({"cmd": "cancel", "order_id": order_id})
    assert not again["ok"] and again["error"]["code"] == "INVALID_ARGUMENT"
    assert "cancelled" in again["error"]["message"]


def test_cancel_of_an_unknown_order_is_a_broker_error(engine):
    reply = engine.send({"cmd": "cancel", "order_id": "NOPE123"})
    assert not reply["ok"]
    assert reply["error"]["code"] in ("BROKER_ERROR", "INVALID_ARGUMENT")
    assert reply["error"]["message"]


def test_modify_gives_a_new_order_id(engine, tap):
    order_id, price = _resting_buy(engine, qty=2)
    new_price = krx.prev_tick(price)
    reply = engine.send({"cmd": "modify", "order_id": order_id, "price": new_price, "qty": 1})
    assert reply["ok"], reply
    new_id = reply["result"]["order_id"]
    assert new_id and new_id != order_id
    new_order = tap.wait_for(
        lambda e: e["type"] == "order" and e["data"]["order_id"] == new_id, what="modified order"
    )["data"]
    assert new_order["price"] == new_price and new_order["qty"] == 1
    assert new_order["orig_order_id"] == order_id
    unknown = engine.send({"cmd": "modify", "order_id": "NOPE", "price": new_price})
    assert unknown["error"]["code"] == "INVALID_ARGUMENT"


def test_cancel_all_counts_and_filters_by_code(engine, tap):
    ids = [_resting_buy(engine)[0] for _ in range(3)]
    other = engine.send({"cmd": "cancel_all", "code": "000660"})
    assert other["ok"] and other["result"]["count"] == 0
    reply = engine.send({"cmd": "cancel_all", "code": CODE})
    assert reply["ok"] and reply["result"]["count"] == 3
    for order_id in ids:
        tap.wait_for(
            lambda e, i=order_id: (
                e["type"] == "order"
                and e["data"]["order_id"] == i
                and e["data"]["status"] == "cancelled"
            ),
            what="cancelled " + order_id,
        )
    assert engine.send({"cmd": "cancel_all"})["result"]["count"] == 0


def test_halt_blocks_new_orders_and_resume_allows_them(engine, tap):
    order_id, _ = _resting_buy(engine)
    halted = engine.send({"cmd": "halt", "cancel_open": True})
    assert (
        halted["ok"]
        and halted["result"]["state"] == "halted"
        and halted["result"]["cancelled"] == 1
    )
    assert engine.engine_hash()["state"] == "halted"
    tap.wait_for(
        lambda e: e["type"] == "status" and e["data"]["state"] == "halted", what="halted status"
    )
    logged = tap.wait_for(
        lambda e: e["type"] == "log" and "halted" in e["data"]["message"], what="log"
    )
    assert (
        logged["data"]["level"] == "WARNING" and logged["data"]["logger"] == "engine32.dispatcher"
    )
    tap.wait_for(
        lambda e: (
            e["type"] == "order"
            and e["data"]["order_id"] == order_id
            and e["data"]["status"] == "cancelled"
        ),
        what="cancelled by halt",
    )
    for cmd in (
        {"cmd": "buy", "code": CODE, "qty": 1, "type": "market"},
        {"cmd": "sell", "code": CODE, "qty": 1, "type": "market"},
    ):
        refused = engine.send(cmd)
        assert refused["error"]["code"] == "HALTED"
    assert engine.send({"cmd": "ping"})["result"]["state"] == "halted"
    assert engine.send({"cmd": "cancel_all"})["ok"]  # cancelling stays possible
    resumed = engine.send({"cmd": "resume"})
    assert resumed["ok"] and resumed["result"]["state"] == "ready"
    assert engine.send({"cmd": "buy", "code": CODE, "qty": 1, "type": "market"})["ok"]


def test_snapshot_rewrites_state_from_the_books(engine, tap):
    buy = engine.send({"cmd": "buy", "code": CODE, "qty": 1, "type": "market"})
    _fills_for(tap, buy["result"]["order_id"], 1)
    time.sleep(0.2)
    for key in (
        engine.keys.state_positions,
        engine.keys.state_orders,
        engine.keys.state_account,
        engine.keys.state_watchlist,
    ):
        engine.redis.delete(key)
    reply = engine.send({"cmd": "snapshot"})
    assert reply["ok"] and reply["result"]["positions"] == 1 and reply["result"]["orders"] >= 1
    time.sleep(0.2)
    assert json.loads(engine.redis.hget(engine.keys.state_positions, CODE))["qty"] == 1
    assert buy["result"]["order_id"] in engine.redis.hgetall(engine.keys.state_orders)
    assert int(engine.redis.hget(engine.keys.state_account, "cash")) < CASH0
    assert CODE in engine.redis.lrange(engine.keys.state_watchlist, 0, -1)
    assert int(engine.engine_hash()["seq"]) >= reply["result"]["seq"]


def test_command_without_id_is_answered_on_the_reply_channel_only(engine, tap):
    engine.redis.rpush(engine.keys.cmd, json.dumps({"cmd": "ping", "client": "no-id"}))
    event = tap.wait_for(
        lambda e: e["type"] == "reply" and e["data"]["id"] is None, what="id-less reply"
    )
    assert event["data"]["ok"] and event["data"]["cmd"] == "ping"
    time.sleep(0.1)
    assert engine.redis.llen(engine.keys.cmd_processing) == 0


def test_commands_are_taken_in_fifo_order(engine, tap):
    ids = [engine.push({"cmd": "ping"}) for _ in range(20)]
    for cmd_id in ids:
        engine.reply(cmd_id)
    tap.wait_for(lambda e: e["type"] == "reply" and e["data"]["id"] == ids[-1], what="last reply")
    replies = [e["data"]["id"] for e in tap.of_type("reply")]
    assert [i for i in replies if i in ids] == ids


def test_broker_rejection_comes_back_in_the_brokers_words(engine):
    reply = engine.send({"cmd": "sell", "code": "000660", "qty": 5, "type": "market"})
    assert not reply["ok"]
    assert reply["error"]["code"] in ("BROKER_ERROR", "INVALID_ARGUMENT")
    assert reply["error"]["message"]


def test_surge_alerts_are_published_and_listed_newest_first(engine_factory):
    from tests.engine.conftest import EventTap

    eng = engine_factory(
        settings={
            "surge.window_s": 1,
            "surge.baseline_s": 2,
            "surge.min_change_pct": 0,
            "surge.min_volume_ratio": 1,
            "surge.cooldown_s": 0,
            "sim.quote_rate": 1000,
        }
    )
    eng.wait_ready()
    tap = EventTap(eng.redis_url, eng.prefix)
    try:
        alert = tap.wait_for(lambda e: e["type"] == "surge", timeout=15, what="surge")["data"]
        assert krx.is_valid_code(alert["code"]) and alert["volume_ratio"] >= 1 and alert["reason"]
        assert alert["name"]  # the sim knows the Korean names
        time.sleep(0.3)
        stored = [json.loads(s) for s in eng.redis.lrange(eng.keys.state_surge, 0, -1)]
        assert 0 < len(stored) <= 200
        newest = dict(stored[0])
        ts = newest.pop("ts")  # the stored alert keeps the time of its event
        tap.wait_for(
            lambda e: e["type"] == "surge" and e["data"] == newest and e["ts"] == ts,
            what="newest stored surge",
        )
    finally:
        tap.close()
