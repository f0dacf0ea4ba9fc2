"""Issue 9: no client input can break "one reply per command", and nothing one client sends
costs another client a reply or an event. Real Redis, the real sim engine."""

import json
import threading
import time
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.protocol import COMMANDS

#: Text that breaks naive encoders: lone surrogates (sent as JSON ``\ud800`` escapes, the
#: only way they can reach the engine), NUL and control characters, Korean, quotes.
hostile_char = st.one_of(
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),
    st.characters(exclude_categories=()),
    st.sampled_from(list('가\x00\n\r\t"\\\u2028\ufffe')),
)
hostile_text = st.text(alphabet=hostile_char, max_size=12)
hostile_value = st.one_of(
    hostile_text,
    st.lists(hostile_text, max_size=3),
    st.integers(-5, 10**6),
    st.dictionaries(hostile_text, hostile_text, max_size=2),
)
#: Every command but the two that rightly touch other clients' orders (halt, cancel_all).
CMDS = tuple(c for c in COMMANDS if c not in ("halt", "cancel_all"))
FIELDS = ("cmd", "ts", "ttl_ms", "client", "code", "qty", "price", "type", "order_id", "codes")


@st.composite
def hostile_command(draw: Any) -> Dict[str, Any]:
    """A command with arbitrary unicode in some (maybe every) field, a valid-looking one
    sometimes, and possibly an unknown key of hostile text."""
    obj: Dict[str, Any] = {
        "cmd": draw(st.one_of(st.sampled_from(CMDS), hostile_text)),
    }
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=len(FIELDS), unique=True)):
        obj[name] = draw(hostile_value)
    if draw(st.booleans()):
        obj[draw(hostile_text)] = draw(hostile_value)
    return obj


def _replies_after(engine: Any, start: str) -> List[Dict[str, Any]]:
    entries = engine.redis.xrange(engine.keys.events, min="(" + start)
    return [json.loads(f["e"]) for _, f in entries]


def _stream_end(engine: Any) -> str:
    last = engine.redis.xrevrange(engine.keys.events, count=1)
    return last[0][0] if last else "0-0"


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batches=st.lists(
        st.lists(
            st.tuples(hostile_command(), st.sampled_from(["id", "bad-id", "none"])),
            min_size=1,
            max_size=8,
        ),
        min_size=3,
        max_size=4,
    ),
    bad_ids=st.lists(hostile_text.filter(lambda t: t != ""), min_size=1, max_size=4),
)
def test_hostile_unicode_from_several_clients_costs_no_one_anything(engine, batches, bad_ids):
    """Several clients at once: each sends hostile commands (surrogates in any field, the id
    valid, hostile or absent) mixed with valid market buys. Every command is answered exactly
    once (on its reply list when its id is valid, always as a ``reply`` event), nothing is
    left in ``P:cmd:processing``, and every buyer gets its reply and its fills."""
    start = _stream_end(engine)
    r = engine.redis
    run = "h{}".format(int(time.time() * 1000) % 10**9)
    sent: List[Tuple[str, Any]] = []  # (kind, id)
    lock = threading.Lock()

    def client(n: int, batch: List[Tuple[Dict[str, Any], str]]) -> None:
        raws: List[bytes] = []
        mine: List[Tuple[str, Any]] = []
        for i, (obj, id_kind) in enumerate(batch):
            body = dict(obj)
            if id_kind == "id":
                body["id"] = "{}-c{}-{}".format(run, n, i)
            elif id_kind == "bad-id":
                body["id"] = bad_ids[i % len(bad_ids)]
            # ensure_ascii: a lone surrogate travels as a JSON escape, as a hostile client sends it
            raws.append(json.dumps(body).encode())
            mine.append(("hostile", body.get("id") if id_kind == "id" else None))
            buy_id = "{}-c{}-buy{}".format(run, n, i)
            buy = {"id": buy_id, "cmd": "buy", "code": "005930", "qty": 1, "type": "market"}
            buy["ts"] = int(time.time() * 1000)
            raws.append(json.dumps(buy).encode())
            mine.append(("buy", buy_id))
        if raws:
            r.rpush(engine.keys.cmd, *raws)
        with lock:
            sent.extend(mine)

    threads = [threading.Thread(target=client, args=(n, b)) for n, b in enumerate(batches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    deadline = time.monotonic() + 30
    events: List[Dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = _replies_after(engine, start)
        replies = [e for e in events if e["type"] == "reply"]
        if len(replies) >= len(sent) and r.llen(engine.keys.cmd_processing) == 0:
            break
        time.sleep(0.05)
    replies = [e["data"] for e in events if e["type"] == "reply"]
    assert len(replies) == len(sent), (len(replies), len(sent), engine.tail())
    assert r.llen(engine.keys.cmd) == 0 and r.llen(engine.keys.cmd_processing) == 0
    by_id: Dict[str, int] = {}
    for reply in replies:
        if reply.get("id"):
            by_id[reply["id"]] = by_id.get(reply["id"], 0) + 1
        assert reply["ok"] or (reply["error"]["code"] and reply["error"]["message"])
    for kind, cmd_id in sent:
        if cmd_id is None:
            continue
        assert by_id.get(cmd_id) == 1, (kind, cmd_id)
        assert r.llen(engine.keys.reply(cmd_id)) == 1, (kind, cmd_id)
    # Every buyer: its reply is ok (or a risk/halt refusal in words), and an accepted order
    # has its fill in the stream.
    orders = {}
    for reply in replies:
        if reply.get("id", "") and "-buy" in (reply.get("id") or "") and reply["ok"]:
            orders[reply["result"]["order_id"]] = reply["id"]
    assert orders, "no buy was accepted"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        filled = {
            e["data"]["order_id"] for e in _replies_after(engine, start) if e["type"] == "fill"
        }
        if set(orders) <= filled:
            break
        time.sleep(0.05)
    assert set(orders) <= filled, set(orders) - filled
    assert engine.alive()
    if engine.send({"cmd": "ping"})["result"]["state"] == "halted":
        engine.send({"cmd": "resume"})


def test_lone_surrogate_in_a_buy_is_answered_on_its_list(engine):
    """The issue's exact case: ``"code":"\\ud800"`` is answered INVALID_ARGUMENT on its reply
    list, the error text encodable, and a valid buy right after it is answered too."""
    r = engine.redis
    r.rpush(
        engine.keys.cmd,
        '{"id":"s1","cmd":"buy","code":"\\ud800","qty":1,"price":70000}',
        json.dumps({"id": "s2", "cmd": "buy", "code": "005930", "qty": 1, "type": "market"}),
    )
    first = engine.reply("s1")
    assert first["error"]["code"] == "INVALID_ARGUMENT" and "code" in first["error"]["message"]
    assert "\\ud800" in first["error"]["message"]  # shown as its escape, not echoed raw
    assert engine.reply("s2")["ok"]
    assert r.llen(engine.keys.cmd_processing) == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"id": "n1", "cmd": "buy", "code": "005930\n", "qty": 1, "price": 70000}, "code"),
        ({"id": "n2", "cmd": "cancel", "order_id": "o1\n"}, "order_id"),
        ({"id": "n3", "cmd": "subscribe", "codes": ["005930\n"]}, "codes"),
    ],
)
def test_trailing_newline_is_refused(engine, body, field):
    engine.redis.rpush(engine.keys.cmd, json.dumps(body))
    reply = engine.reply(body["id"])
    assert not reply["ok"] and reply["error"]["code"] == "INVALID_ARGUMENT"
    assert field in reply["error"]["message"]


def test_trailing_newline_in_the_id_makes_no_reply_key(engine):
    start = _stream_end(engine)
    engine.redis.rpush(engine.keys.cmd, json.dumps({"id": "n9\n", "cmd": "ping"}))
    deadline = time.monotonic() + 10
    replies: List[Dict[str, Any]] = []
    while time.monotonic() < deadline and not replies:
        replies = [e["data"] for e in _replies_after(engine, start) if e["type"] == "reply"]
        time.sleep(0.02)
    assert (
        replies and replies[0]["id"] is None and replies[0]["error"]["code"] == "INVALID_ARGUMENT"
    )
    assert not engine.redis.keys(engine.keys.prefix + ":reply:n9*")
    assert not engine.redis.keys(engine.keys.prefix + ":seen:n9*")


def test_ts_far_ahead_is_refused_saying_whose_clock(engine):
    now = int(engine.redis.time()[0]) * 1000
    reply = engine.send({"cmd": "ping", "ts": now + 10 * 60 * 1000})
    assert not reply["ok"] and reply["error"]["code"] == "INVALID_ARGUMENT"
    message = reply["error"]["message"]
    assert "ahead of the Redis server's clock" in message and "max_clock_ahead_ms" in message
    assert "clock is wrong" in message
    # Within the allowance: run.
    assert engine.send({"cmd": "ping", "ts": now + 20000})["ok"]
    # The refused id was not claimed: a corrected command may use it again.
    again = engine.send({"id": reply["id"], "cmd": "ping"})
    assert again["ok"], again


def test_oversized_command_is_answered_on_its_reply_list_without_a_claim(engine):
    """An entry over 64 KB is refused BAD_JSON on its reply list; the take script does not
    decode it (so it claims nothing: its id stays free for a corrected command)."""
    r = engine.redis
    big = json.dumps({"id": "big1", "cmd": "ping", "pad": "x" * 900000})
    nested = json.dumps({"cmd": "ping", "x": {"id": "victim"}, "pad": "y" * 70000})
    r.rpush(engine.keys.cmd, big, nested)
    reply = engine.reply("big1")
    assert reply["error"]["code"] == "BAD_JSON" and "too long" in reply["error"]["message"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and r.llen(engine.keys.cmd_processing):
        time.sleep(0.02)
    assert r.llen(engine.keys.cmd_processing) == 0
    # An id nested in a value does not address someone else's reply list.
    assert r.llen(engine.keys.reply("victim")) == 0
    assert engine.send({"id": "big1", "cmd": "ping"})["ok"]


def test_take_script_does_not_decode_an_oversized_entry(redis_url):
    """Straight against Redis: the script returns the entry without its id (it never ran
    cjson.decode on it) and sets no claim."""
    import redis as redis_lib

    from core.protocol import Keys
    from core.protocol.commands import MAX_RAW_BYTES
    from engine32.consumer import TAKE_SCRIPT

    keys = Keys("take{}".format(int(time.time() * 1000) % 10**8))
    r = redis_lib.Redis.from_url(redis_url)
    try:
        big = json.dumps({"id": "huge", "cmd": "ping", "pad": "z" * (MAX_RAW_BYTES + 1)})
        small = json.dumps({"id": "small", "cmd": "ping"})
        r.rpush(keys.cmd, big, small)
        args = (keys.seen(""), 3600, MAX_RAW_BYTES)
        got = r.eval(TAKE_SCRIPT, 2, keys.cmd, keys.cmd_processing, *args)
        assert got == [big.encode()]
        assert not r.exists(keys.seen("huge"))
        got = r.eval(TAKE_SCRIPT, 2, keys.cmd, keys.cmd_processing, *args)
        assert got[:3] == [small.encode(), b"small", 1]
    finally:
        r.delete(keys.cmd, keys.cmd_processing, keys.seen("small"))
        r.close()


def test_stream_budget_keeps_the_newest_entries_that_fit():
    from engine32.publisher import StreamBudget

    b = StreamBudget(budget=10000, cap=1000000)
    b.seed(50, 50 * 100.0)  # what the stream held at start: 5,000 bytes
    assert b.maxlen == 50
    b.add(10, 10 * 400.0)  # 4,000 more: 9,000, all fit
    assert b.maxlen == 60
    b.add(5, 5 * 400.0)  # 11,000: 1,000 over, the oldest (100 B each) go first
    assert b.maxlen == 65 - 10 and b.bytes <= 10000
    b.add(30, 30 * 400.0)  # 12,000 of new entries alone: only the newest 25 fit
    assert b.maxlen == 25 and b.bytes <= 10000
    capped = StreamBudget(budget=10**9, cap=40)
    capped.add(100, 100.0)
    assert capped.maxlen == 40


def test_engine_keeps_the_stream_within_its_memory_budget(engine_factory):
    """At 5,000 quotes/s a 1 MB budget holds about 20 quote batches: the stream stays there
    (measured by Redis itself), whatever the count limit says."""
    eng = engine_factory(
        settings={
            "sim.quote_rate": 5000,
            "engine.stream_budget_mb": 1,
            "engine.stream_maxlen": 10**6,
        }
    )
    eng.wait_ready()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and int(eng.engine_hash().get("seq") or 0) < 150:
        time.sleep(0.1)
    assert int(eng.engine_hash()["seq"]) >= 150
    used = eng.redis.memory_usage(eng.keys.events, samples=0)
    entries = eng.redis.xlen(eng.keys.events)
    assert used < 2 * 1024 * 1024, (used, entries)
    assert entries < 150


def test_one_bad_item_costs_the_rest_of_its_round_nothing(redis_url, redis_client):
    """The publisher encodes each item on its own: a surrogate anywhere is written as U+FFFD,
    a reply that cannot be encoded at all is still answered (an error, on its list, and its
    command leaves processing), and the other items of the same round are all written."""
    from core.protocol import Envelope, Keys
    from engine32.publisher import Event, Publisher, ReplyEvent

    keys = Keys("pub9")
    pub = Publisher(redis_url, keys)
    redis_client.rpush(keys.cmd_processing, "raw-bad", "raw-ok")
    # queued before the thread starts, so that they go out in one round
    pub.put(Event(Envelope("log", "run-9", 1, 1, {"level": "INFO", "message": "a\ud800b"})))
    bad = {"id": "r-bad", "cmd": "ping", "ok": True, "ts": 1, "result": {"x": object()}}
    pub.put(ReplyEvent(Envelope("reply", "run-9", 2, 2, bad), b"raw-bad", 60))
    good = {"id": "r-ok", "cmd": "ping", "ok": True, "ts": 1, "result": {"s": "\udfff"}}
    pub.put(ReplyEvent(Envelope("reply", "run-9", 3, 3, good), b"raw-ok", 60))
    pub.start()
    try:
        assert pub.wait_idle(10)
    finally:
        pub.stop()
    events = [json.loads(f["e"]) for _, f in redis_client.xrange(keys.events)]
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert events[0]["data"]["message"] == "a\ufffdb"
    failed = json.loads(redis_client.lindex(keys.reply("r-bad"), 0))
    assert not failed["ok"] and failed["error"]["code"] == "BROKER_ERROR"
    assert json.loads(redis_client.lindex(keys.reply("r-ok"), 0))["result"]["s"] == "\ufffd"
    assert redis_client.llen(keys.cmd_processing) == 0


def test_engine_trims_what_the_writer_committed_and_nothing_it_has_not(engine_factory):
    """With a writer group on the stream, entries it has not acknowledged are never trimmed
    (however many there are, within the byte budget); once acknowledged they go."""
    eng = engine_factory(settings={"sim.quote_rate": 3000, "engine.stream_maxlen": 10**6})
    eng.wait_ready()
    r, stream = eng.redis, eng.keys.events
    r.xgroup_create(stream, "writer", id="0")
    deadline = time.monotonic() + 60
    while r.xlen(stream) < 400 and time.monotonic() < deadline:
        time.sleep(0.05)
    # the writer has taken 200 entries and committed 100 of them
    taken = r.xreadgroup("writer", "w1", {stream: ">"}, count=200)[0][1]
    r.xack(stream, "writer", *[i for i, _ in taken[:100]])
    first_unacked = taken[100][0]
    time.sleep(2.5)  # a few publisher rounds, each with its floor refreshed every second
    assert r.xrange(stream, first_unacked, first_unacked), "a delivered, unacked entry was trimmed"
    assert r.xrange(stream, "-", "+", count=1)[0][0] <= first_unacked
    kept = {i for i, _ in r.xrange(stream, first_unacked, "+")}
    assert {i for i, _ in taken[100:]} <= kept  # every unacknowledged entry is still there
    # now it commits everything it was given and reads the rest: the stream shrinks
    r.xack(stream, "writer", *[i for i, _ in taken[100:]])
    while True:
        more = r.xreadgroup("writer", "w1", {stream: ">"}, count=1000)
        if not more or not more[0][1]:
            break
        r.xack(stream, "writer", *[i for i, _ in more[0][1]])
    deadline = time.monotonic() + 10
    while r.xlen(stream) > 300 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r.xlen(stream) <= 300  # whole 100-entry nodes go with MINID ~
