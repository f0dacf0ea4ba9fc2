"""The engine's parts in this process, on real Redis: the publisher's buffer while Redis is
away, the command thread's rules, the dispatcher before the broker is ready."""

import json
import os
import threading
import time

import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import load_config
from core.devservers import RedisServer, free_port
from core.protocol import Envelope, Keys, Order, Quote, make_command, parse_command
from engine32.consumer import CommandConsumer, Taken
from engine32.publisher import Event, Publisher, QuotesEvent, ReplyEvent, quote_json

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _order_event(seq):
    order = Order("S{}".format(seq), "005930", "buy", 1, 70000, status="accepted")
    return Event(
        Envelope("order", "run-1", seq, 1, order.to_dict()),
        [("HSET", "x:state:orders", order.order_id, "{}")],
    )


def test_publisher_writes_topic_stream_state_and_seq(redis_url, redis_client):
    keys = Keys("pub1")
    pub = Publisher(redis_url, keys)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe("pub1:ev:*")
    pub.start()
    try:
        quotes = [Quote("005930", 70000 + i * 100, volume=i) for i in range(5)] + [
            Quote("000660", 200000)
        ]
        pub.put(QuotesEvent("run-1", 1, 123, quotes))
        reply = {"id": "r1", "cmd": "ping", "ok": True, "ts": 1, "result": {}}
        redis_client.rpush(keys.cmd_processing, b"raw-r1")
        pub.put(ReplyEvent(Envelope("reply", "run-1", 2, 124, reply), b"raw-r1", 3600))
        assert pub.wait_idle(5)
    finally:
        pub.stop()
    batch = json.loads(redis_client.xrange(keys.events)[0][1]["e"])
    assert batch["type"] == "quotes" and batch["seq"] == 1
    assert [q["price"] for q in batch["data"]["items"]][:5] == [70000, 70100, 70200, 70300, 70400]
    assert (
        json.loads(redis_client.hget(keys.state_quotes, "005930"))["price"] == 70400
    )  # latest wins
    assert 0 < redis_client.ttl(keys.reply("r1")) <= 300
    assert json.loads(redis_client.lpop(keys.reply("r1"))) == reply
    assert json.loads(redis_client.get(keys.seen("r1"))) == reply
    assert redis_client.llen(keys.cmd_processing) == 0
    assert redis_client.hget(keys.engine, "seq") == "2"
    messages = []
    assert _wait(
        lambda: messages.extend(filter(None, [pubsub.get_message()])) or len(messages) >= 2
    )
    assert [m["channel"] for m in messages] == ["pub1:ev:quotes", "pub1:ev:reply"]
    pubsub.close()


def test_publisher_buffer_drops_oldest_quotes_never_orders_and_reconnects(tmp_path):
    own = RedisServer(tmp_path / "own-redis", port=free_port())  # not started yet: Redis is away
    reconnected = threading.Event()
    keys = Keys("pub2")
    pub = Publisher(own.url, keys, capacity=10, on_reconnect=reconnected.set)
    pub.start()
    try:
        seq = 0
        for _ in range(3):
            seq += 1
            pub.put(_order_event(seq))
            for _ in range(6):
                seq += 1
                pub.put(
                    QuotesEvent("run-1", seq, 1, [Quote("005930", 70000), Quote("000660", 200000)])
                )
        assert pub.pending() <= 11
        assert pub.dropped_quotes == (18 - 7) * 2  # 11 batches of 2 quotes over the capacity of 10
        own.start()
        assert _wait(lambda: pub.pending() == 0, timeout=10)
        # The first connection is not a reconnect; a restart is.
        client = redis.Redis(port=own.port, decode_responses=True)
        events = [json.loads(f["e"]) for _, f in client.xrange(keys.events)]
        assert [e["seq"] for e in events if e["type"] == "order"] == [1, 8, 15]
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs)
        own.stop()
        pub.put(_order_event(100))
        time.sleep(0.3)
        own.start()
        assert reconnected.wait(10) and pub.reconnects == 1
        assert _wait(lambda: pub.pending() == 0, timeout=10)
        client = redis.Redis(port=own.port, decode_responses=True)
        assert [json.loads(f["e"])["seq"] for _, f in client.xrange(keys.events)] == [100]
    finally:
        pub.stop(timeout=2)
        own.stop()


def test_consumer_restart_rule_fifo_stale_and_duplicates(redis_url, redis_client):
    keys = Keys("con1")
    answered = make_command("ping", id="done-1").encode()
    redis_client.set(keys.seen("done-1"), json.dumps({"id": "done-1", "ok": True}))
    pending = make_command("ping", id="dead-1").encode()
    redis_client.rpush(keys.cmd_processing, answered, pending, b"{oops")
    now = int(time.time() * 1000)
    redis_client.rpush(
        keys.cmd,
        json.dumps({"id": "a", "cmd": "ping", "ts": now}),
        json.dumps({"id": "b", "cmd": "ping", "ts": now - 60000}),
        json.dumps({"id": "a", "cmd": "ping"}),
        json.dumps({"id": "c", "cmd": "ping"}),
    )
    got = []
    consumer = CommandConsumer(redis_url, keys, got.append)
    consumer.start()
    try:
        assert _wait(lambda: len(got) == 6)
    finally:
        consumer.stop()
        consumer.join(3)
    dead = got[:2]
    assert [t.reply["id"] for t in dead] == ["dead-1", None]
    assert all(t.reply["error"]["code"] == "ENGINE_RESTARTED" and t.raw is None for t in dead)
    assert dead[0].remember and not dead[1].remember
    assert redis_client.lrange(keys.cmd_dead, 0, -1) == [pending, "{oops"]
    run_a, stale_b, dup_a, run_c = got[2:]
    assert run_a.command.id == "a" and run_a.remember
    assert stale_b.reply["error"]["code"] == "STALE" and not stale_b.remember
    assert (
        dup_a.reply["error"]["code"] == "DUPLICATE" and "running" in dup_a.reply["error"]["message"]
    )
    assert run_c.command.id == "c"
    # Every taken command is in P:cmd:processing until its reply is written.
    assert redis_client.llen(keys.cmd_processing) == 4
    assert abs(consumer.clock_offset_ms) < 1000


def test_dispatcher_refuses_trading_before_the_broker_is_ready(redis_url, redis_client):
    from PyQt5.QtCore import QCoreApplication

    from engine32.app import Engine

    app = QCoreApplication.instance() or QCoreApplication([])
    assert app is not None
    config = load_config(overrides={"redis.url": redis_url, "redis.prefix": "disp1", "sim.seed": 3})
    engine = Engine(config, redis_url)
    engine.publisher.start()
    try:
        for cmd in (
            make_command("buy", id="nr-1", code="005930", qty=1, type="market"),
            make_command("cancel_all", id="nr-2"),
            make_command("halt", id="nr-3"),
            make_command("ping", id="nr-4"),
        ):
            engine.dispatcher.handle(Taken(None, parse_command(cmd.encode()), None, True, 0))
        assert engine.publisher.wait_idle(5)
    finally:
        engine.publisher.stop()
        engine.close()
    replies = {
        i: json.loads(redis_client.lpop("disp1:reply:" + i))
        for i in ("nr-1", "nr-2", "nr-3", "nr-4")
    }
    assert replies["nr-1"]["error"]["code"] == "NOT_READY"
    assert replies["nr-2"]["error"]["code"] == "NOT_READY"
    assert (
        replies["nr-3"]["result"]["state"] == "starting"
    )  # halt is remembered, state says starting
    assert engine.status.halted
    assert replies["nr-4"]["ok"]
    assert json.loads(redis_client.get("disp1:seen:nr-1"))["error"]["code"] == "NOT_READY"


@settings(max_examples=300, deadline=None)
@given(
    code=st.text(min_size=0, max_size=8),
    ints=st.lists(
        st.one_of(st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False)),
        min_size=9,
        max_size=9,
    ),
    pct=st.floats(allow_nan=False, allow_infinity=False),
    hhmmss=st.text(max_size=8),
)
def test_quote_json_is_the_quotes_json_whatever_the_fields(code, ints, pct, hhmmss):
    quote = Quote(code, ints[0], ints[1], pct, *ints[2:], time=hhmmss)
    assert json.loads(quote_json(quote)) == quote.to_dict()


def test_logs_never_carry_a_password(tmp_path, capsys):
    import logging

    from engine32.logsetup import setup_logging

    log_file = tmp_path / "log.jsonl"
    setup_logging("INFO", str(log_file))
    try:
        logging.getLogger("engine32.test").warning(
            "cannot reach %s", "redis://engine:s3cret-pw@vm:6379/0"
        )
        logging.getLogger("engine32.test").error("url rediss://u:hunter2@h/0 refused")
        logging.getLogger("engine32.test").error("dsn host=db password=pgpw-9 user=kc refused")
        logging.getLogger("engine32.test").error("url %s", "redis://h/0?password=qpw-9&db=1")
    finally:
        for handler in logging.getLogger().handlers:
            handler.flush()
    text = log_file.read_text(encoding="utf-8") + capsys.readouterr().err
    assert "s3cret-pw" not in text and "hunter2" not in text
    assert "pgpw-9" not in text and "qpw-9" not in text
    assert "redis://engine:***@vm:6379/0" in text
    logging.getLogger().handlers.clear()


def test_a_broker_that_never_answers_gets_the_command_answered_once(redis_url, redis_client):
    """The watchdog answers BROKER_ERROR; the broker's late answer is then ignored."""
    from PyQt5.QtCore import QCoreApplication

    from engine32.app import Engine
    from engine32.brokers.base import Result
    from engine32.brokers.sim import SimBroker

    held = []

    class SlowSim(SimBroker):
        def place_order(self, request, done):
            held.append(done)  # the real simulator, except that it never answers orders

    app = QCoreApplication.instance() or QCoreApplication([])
    assert app is not None
    config = load_config(overrides={"redis.url": redis_url, "redis.prefix": "slow1", "sim.seed": 3})
    engine = Engine(config, redis_url, broker_factory=lambda cfg, listener: SlowSim(listener, cfg))
    engine.publisher.start()
    try:
        engine.broker.connect()
        buy = make_command("buy", id="slow-1", code="005930", qty=1, type="market")
        engine.dispatcher.handle(Taken(None, parse_command(buy.encode()), None, True, 0))
        assert engine.dispatcher.in_flight == 1 and len(held) == 1
        assert engine.dispatcher.expire(time.monotonic() + 60) == 1
        assert engine.dispatcher.in_flight == 0
        held[0](Result.success(order_id="S9"))  # too late
        assert engine.publisher.wait_idle(5)
    finally:
        engine.broker.disconnect()
        engine.publisher.stop()
        engine.close()
    replies = redis_client.lrange("slow1:reply:slow-1", 0, -1)
    assert len(replies) == 1
    assert json.loads(replies[0])["error"]["code"] == "BROKER_ERROR"
    assert "no answer from the broker" in json.loads(replies[0])["error"]["message"]
