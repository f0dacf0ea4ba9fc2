"""The command thread takes and claims a command in one round trip (BLMOVE + the take
script), with the same at-most-once rules as taking and claiming separately: what is not run
(invalid, stale) keeps its id free, a repeated id gets the first reply, an id the script
cannot read is claimed by Python, and a Redis that refuses scripts still gets every rule."""

import json
import time
import uuid

import redis

from core.protocol import Keys
from engine32.consumer import CommandConsumer


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _run(redis_url, keys, commands, expect, **kw):
    got = []
    consumer = CommandConsumer(redis_url, keys, got.append, **kw)
    consumer.start()
    try:
        assert _wait(consumer.restart_rule_done.is_set)
        client = redis.Redis.from_url(redis_url)
        try:
            for c in commands:
                client.rpush(keys.cmd, c if isinstance(c, str) else json.dumps(c))
        finally:
            client.close()
        assert _wait(lambda: len(got) >= expect), got
    finally:
        consumer.stop()
        consumer.join(3)
    return consumer, got


def test_one_round_trip_take_keeps_the_rules(redis_url, redis_client):
    keys = Keys("tc1")
    first = {"id": "done", "ok": True, "result": {"state": "ready"}}
    redis_client.set(keys.seen("done"), json.dumps(first))
    now = int(time.time() * 1000)
    consumer, got = _run(
        redis_url,
        keys,
        [
            {"id": "run-1", "cmd": "ping"},
            {"id": "stale-1", "cmd": "ping", "ts": now - 60000},
            {"id": "bad-1", "cmd": "ping", "qty": 1},  # unknown field: invalid
            {"id": "done", "cmd": "ping"},  # answered before
            {"id": "run-1", "cmd": "ping"},  # still running
            {"cmd": "ping"},  # no id
            '{"id": "nl\\n", "cmd": "ping"}',  # Python's id check takes it, the script not
        ],
        7,
    )
    assert consumer.take_script
    run, stale, bad, done, again, anon, nl = got
    assert run.command.id == "run-1" and run.remember
    assert redis_client.get(keys.seen("run-1")) == "running"
    # never run: the id stays free for a corrected command
    assert stale.reply["error"]["code"] == "STALE"
    assert bad.reply["error"]["code"] == "INVALID_ARGUMENT"
    assert not redis_client.exists(keys.seen("stale-1"), keys.seen("bad-1"))
    assert done.reply["error"]["code"] == "DUPLICATE" and done.reply["first"] == first
    assert done.reply["result"] == first["result"]
    assert again.reply["error"]["code"] == "DUPLICATE"
    assert "running" in again.reply["error"]["message"]
    assert anon.command is not None and anon.command.id is None and not anon.remember
    # a trailing newline is not part of a valid id (full match, issue 9): refused, not claimed
    assert nl.command is None and nl.reply["error"]["code"] == "INVALID_ARGUMENT"
    assert not redis_client.exists(keys.seen("nl\n"), keys.seen("nl"))
    # every taken command waits in P:cmd:processing until its reply is written; none is lost
    assert redis_client.llen(keys.cmd_processing) == 7 and redis_client.llen(keys.cmd) == 0


def test_a_redis_that_refuses_scripts_gets_the_same_rules(redis_url, redis_client):
    keys = Keys("tc2")
    user, password = "noeval" + uuid.uuid4().hex[:6], uuid.uuid4().hex
    redis_client.execute_command(
        "ACL", "SETUSER", user, "on", ">" + password, "~tc2:*", "+@all", "-eval", "-evalsha"
    )
    try:
        url = redis_url.replace("redis://", "redis://{}:{}@".format(user, password), 1)
        consumer, got = _run(
            url,
            keys,
            [
                {"id": "a", "cmd": "ping"},
                {"id": "a", "cmd": "ping"},
                {"id": "s", "cmd": "ping", "ts": 1},
                {"id": "b", "cmd": "ping"},
            ],
            4,
        )
    finally:
        redis_client.execute_command("ACL", "DELUSER", user)
    assert not consumer.take_script
    a, dup, stale, b = got
    assert a.command.id == "a" and b.command.id == "b"
    assert dup.reply["error"]["code"] == "DUPLICATE"
    assert stale.reply["error"]["code"] == "STALE"
    assert redis_client.get(keys.seen("a")) == "running"
    assert not redis_client.exists(keys.seen("s"))
    assert redis_client.llen(keys.cmd_processing) == 4
