"""Rule 1: whatever lands on ``P:cmd`` gets exactly one reply, and the engine stays alive and
correct. Hypothesis pushes junk (bytes, text, JSON of any shape, near-miss commands)."""

import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.protocol import COMMANDS
from tests.strategies import field_names, json_values

near_miss = st.dictionaries(field_names, json_values, max_size=6).flatmap(
    lambda d: st.sampled_from(COMMANDS + ("", "BUY", "launch")).map(lambda c: dict(d, cmd=c))
)
plausible = st.fixed_dictionaries(
    {
        "cmd": st.sampled_from(
            ["buy", "sell", "cancel", "modify", "cancel_all", "subscribe", "ping"]
        ),
        "code": st.sampled_from(["005930", "000660", "999999", "5930", "A05930"]),
        "qty": st.integers(-3, 30),
        "price": st.integers(0, 3).map(lambda n: [0, 70000, 70050, 123][n]),
        "id": st.from_regex(r"\Aj[a-z0-9]{1,6}\Z"),
    }
)
junk = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda t: t.encode("utf-8")),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_miss.map(lambda d: json.dumps(d).encode()),
    plausible.map(lambda d: json.dumps(d).encode()),
)


def _replies_in_stream(engine, after):
    entries = engine.redis.xrange(engine.keys.events, min="(" + after)
    replies = [json.loads(f["e"]) for _, f in entries]
    return [e for e in replies if e["type"] == "reply"], (entries[-1][0] if entries else after)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(items=st.lists(junk, min_size=1, max_size=12))
def test_every_item_is_answered_once_and_the_engine_stays_correct(engine, items):
    last = engine.redis.xrevrange(engine.keys.events, count=1)
    start = last[0][0] if last else "0-0"
    engine.redis.rpush(engine.keys.cmd, *items)
    deadline = time.monotonic() + 10
    replies = []
    cursor = start
    while time.monotonic() < deadline:
        more, cursor = _replies_in_stream(engine, cursor)
        replies += more
        if len(replies) >= len(items) and engine.redis.llen(engine.keys.cmd_processing) == 0:
            break
        time.sleep(0.02)
    assert len(replies) == len(items), (len(replies), items)
    for event in replies:
        reply = event["data"]
        assert isinstance(reply["ok"], bool)
        assert reply["ok"] or reply["error"]["code"] and reply["error"]["message"]
    assert engine.redis.llen(engine.keys.cmd) == 0
    assert engine.redis.llen(engine.keys.cmd_processing) == 0
    # Still alive and still correct.
    assert engine.alive()
    pong = engine.send({"cmd": "ping"})
    assert pong["ok"] and pong["result"]["state"] in ("ready", "halted")
    if pong["result"]["state"] == "halted":
        engine.send({"cmd": "resume"})
