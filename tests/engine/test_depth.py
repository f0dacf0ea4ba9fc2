"""Order books and price alerts through the real engine and simulator, as redis-cli would:
``book_subscribe`` → ``book`` events and ``P:state:book``; ``alert_add`` → one ``alert`` event."""

import json
import time

from core.protocol import krx

CODE = "005930"


def _book(engine, code=CODE, timeout=5.0, predicate=lambda b: True):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = engine.redis.hget(engine.keys.state_book, code)
        if raw:
            book = json.loads(raw)
            if predicate(book):
                return book
        time.sleep(0.02)
    raise AssertionError(
        "no matching book of {} in P:state:book; log:\n{}".format(code, engine.tail())
    )


def _check_shape(book):
    assert set(book) >= {"code", "ts", "time", "asks", "bids", "total_ask", "total_bid"}
    assert len(book["asks"]) == 10 and len(book["bids"]) == 10
    asks = [p for p, _ in book["asks"] if p]
    bids = [p for p, _ in book["bids"] if p]
    assert asks == sorted(asks) and bids == sorted(bids, reverse=True)
    assert asks[0] > bids[0]
    assert all(krx.is_on_tick(p) for p in asks + bids)
    assert book["total_ask"] == sum(q for _, q in book["asks"])
    assert book["total_bid"] == sum(q for _, q in book["bids"])


def test_book_subscribe_streams_coalesced_books_and_state(engine, tap):
    reply = engine.send({"cmd": "book_subscribe", "codes": [CODE]})
    assert reply["ok"], reply
    assert reply["result"] == {"books": [CODE], "added": [CODE]}
    assert engine.redis.lrange(engine.keys.state_book_codes, 0, -1) == [CODE]
    book = _book(engine)
    _check_shape(book)
    tap.wait_for(lambda e: e["type"] == "book" and e["data"]["code"] == CODE, what="book event")
    time.sleep(1.0)
    by_seq = {e["seq"]: e for e in tap.events}
    books = [e for e in tap.of_type("book") if e["data"]["code"] == CODE]
    compared = 0
    for book_event in books:
        _check_shape(book_event["data"])
        # Right after its flush's quotes batch; the best levels are the last quote's ask/bid.
        before = by_seq.get(book_event["seq"] - 1)
        if before is None or before["type"] != "quotes":
            continue
        mine = [q for q in before["data"]["items"] if q["code"] == CODE]
        if mine:
            assert book_event["data"]["asks"][0][0] == mine[-1]["ask"]
            assert book_event["data"]["bids"][0][0] == mine[-1]["bid"]
            compared += 1
    assert compared >= 3
    # Coalesced: at most one book per code between two quote flushes.
    flushes = [e["seq"] for e in tap.of_type("quotes")]
    for a, b in zip(flushes, flushes[1:]):
        assert len([e for e in books if a < e["seq"] < b]) <= 1
    # The writer never stores them, but they are in the stream (seq has no gaps).
    types = {json.loads(f["e"])["type"] for _, f in engine.redis.xrange(engine.keys.events)}
    assert "book" in types

    reply = engine.send({"cmd": "book_unsubscribe", "codes": [CODE, "000660"]})
    assert reply["ok"] and reply["result"] == {"books": [], "removed": [CODE]}
    deadline = time.monotonic() + 3
    while engine.redis.hexists(engine.keys.state_book, CODE) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not engine.redis.hexists(engine.keys.state_book, CODE)
    assert engine.redis.lrange(engine.keys.state_book_codes, 0, -1) == []


def test_resting_order_appears_in_the_book_at_its_price(engine):
    assert engine.send({"cmd": "book_subscribe", "codes": [CODE]})["ok"]
    book = _book(engine)
    price = krx.prev_tick(book["bids"][0][0], 3)  # three ticks below the best bid: it rests
    qty = 77
    reply = engine.send({"cmd": "buy", "code": CODE, "qty": qty, "price": price})
    assert reply["ok"], reply

    def shows(b):
        levels = dict((p, q) for p, q in b["bids"])
        return price in levels and levels[price] >= qty

    book = _book(engine, predicate=shows)
    _check_shape(book)
    engine.send({"cmd": "cancel", "order_id": reply["result"]["order_id"]})


def test_book_set_survives_an_engine_restart(engine_factory):
    eng = engine_factory()
    eng.wait_ready()
    assert eng.send({"cmd": "book_subscribe", "codes": [CODE, "000660"]})["ok"]
    _book(eng, "000660")
    eng.stop()
    again = engine_factory(prefix=eng.prefix)
    again.wait_ready()
    assert again.redis.lrange(again.keys.state_book_codes, 0, -1) == [CODE, "000660"]
    _book(again, "000660", predicate=lambda b: True)
    assert again.send({"cmd": "ping"})["ok"]


def test_bad_book_and_alert_commands_get_clear_errors(engine):
    reply = engine.send({"cmd": "book_subscribe", "codes": "005930"})
    assert reply["error"]["code"] == "INVALID_ARGUMENT" and "codes" in reply["error"]["message"]
    reply = engine.send({"cmd": "alert_add", "code": CODE, "above": 70000, "below": 60000})
    assert reply["error"]["code"] == "INVALID_ARGUMENT"
    assert "exactly one of above" in reply["error"]["message"]
    reply = engine.send({"cmd": "alert_add", "code": CODE, "change_pct": 45})
    assert "between -30 and 30" in reply["error"]["message"]
    reply = engine.send({"cmd": "alert_remove", "alert_id": "A1"})
    assert (
        reply["error"]["code"] == "INVALID_ARGUMENT" and "no alert A1" in reply["error"]["message"]
    )
    assert engine.send({"cmd": "ping"})["ok"]


def test_alert_fires_once_and_is_kept(engine, tap):
    quote = None
    deadline = time.monotonic() + 5
    while quote is None and time.monotonic() < deadline:
        raw = engine.redis.hget(engine.keys.state_quotes, CODE)
        quote = json.loads(raw) if raw else None
        time.sleep(0.02)
    assert quote
    # Already true: fires on the code's next quote, and only once.
    reply = engine.send({"cmd": "alert_add", "code": CODE, "above": 1})
    assert reply["ok"], reply
    alert_id = reply["result"]["alert_id"]
    kept = json.loads(engine.redis.hget(engine.keys.state_alerts, alert_id))
    assert kept["status"] in ("active", "fired") and kept["condition"] == "above"
    never = engine.send({"cmd": "alert_add", "code": CODE, "below": 1})["result"]["alert_id"]
    fired = tap.wait_for(
        lambda e: e["type"] == "alert" and e["data"]["alert_id"] == alert_id, what="alert"
    )
    assert fired["data"]["status"] == "fired" and fired["data"]["price"] > 0
    assert "at or above 1" in fired["data"]["message"]
    time.sleep(0.5)  # many more quotes of the code
    assert len([e for e in tap.of_type("alert") if e["data"]["alert_id"] == alert_id]) == 1
    assert not [e for e in tap.of_type("alert") if e["data"]["alert_id"] == never]
    state = json.loads(engine.redis.hget(engine.keys.state_alerts, alert_id))
    assert state["status"] == "fired"
    assert engine.send({"cmd": "alert_remove", "alert_id": alert_id})["ok"]
    assert not engine.redis.hexists(engine.keys.state_alerts, alert_id)
    assert engine.redis.hexists(engine.keys.state_alerts, never)


def test_alerts_survive_a_restart_and_fire_without_a_console(engine_factory):
    eng = engine_factory()
    eng.wait_ready()
    # A code not on the watchlist: the alert puts it there (it needs the quotes).
    reply = eng.send({"cmd": "alert_add", "code": "035720", "change_pct": -29.9})
    assert reply["ok"], reply
    assert reply["result"]["watchlist_added"] in (["035720"], [])
    waiting = reply["result"]["alert_id"]
    eng.stop()
    again = engine_factory(prefix=eng.prefix)
    again.wait_ready()
    kept = json.loads(again.redis.hget(again.keys.state_alerts, waiting))
    assert kept["status"] == "active" and kept["threshold"] == -29.9
    reply = again.send({"cmd": "alert_add", "code": "035720", "change_pct": 29.9})
    assert reply["ok"]
    assert again.send({"cmd": "alert_remove", "alert_id": waiting})["ok"]
