"""Envelopes, names and payloads."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.protocol import (
    Envelope,
    Keys,
    Order,
    ProtocolError,
    Quote,
    decode_envelope,
    mask_account,
    new_run_id,
)
from core.protocol.envelope import EVENT_TYPES


def test_keys_follow_the_protocol_names():
    k = Keys("kc")
    assert (
        k.cmd == "kc:cmd"
        and k.cmd_processing == "kc:cmd:processing"
        and k.cmd_dead == "kc:cmd:dead"
    )
    assert k.reply("s1") == "kc:reply:s1" and k.ev("quotes") == "kc:ev:quotes"
    assert k.events == "kc:events" and k.state_watchlist == "kc:state:watchlist"
    assert k.engine == "kc:engine" and k.engine_alive == "kc:engine:alive"
    assert Keys("demo").state_orders == "demo:state:orders"
    assert k.topic_of("kc:ev:fill") == "fill"
    with pytest.raises(ValueError):
        k.ev("nope")
    with pytest.raises(ValueError):
        Keys("a*b")


def test_run_ids_are_unique_and_dated():
    ids = {new_run_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i.split("-")) == 3 for i in ids)


def test_korean_names_stay_readable_on_the_wire():
    env = Envelope(
        "order", "r1", 1, 1795400000123, Order("S1", "005930", "buy", 10, name="삼성전자").to_dict()
    )
    assert "삼성전자" in env.encode()
    assert decode_envelope(env.encode().encode("utf-8")) == env


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"\xff", "UTF-8"),
        ("nope", "JSON"),
        ("[]", "object"),
        ('{"v":2,"type":"order","run":"r","seq":1,"ts":1,"data":{}}', "version"),
        ('{"v":1,"type":"x","run":"r","seq":1,"ts":1,"data":{}}', "unknown event type"),
        ('{"v":1,"type":"order","run":"","seq":1,"ts":1,"data":{}}', "run"),
        ('{"v":1,"type":"order","run":"r","seq":-1,"ts":1,"data":{}}', "seq"),
        ('{"v":1,"type":"order","run":"r","seq":true,"ts":1,"data":{}}', "seq"),
        ('{"v":1,"type":"order","run":"r","seq":1,"ts":1,"data":[]}', "data"),
    ],
)
def test_bad_envelopes_are_refused_with_a_reason(raw, words):
    with pytest.raises(ProtocolError) as info:
        decode_envelope(raw)
    assert words in info.value.message


quotes = st.builds(
    Quote,
    code=st.from_regex(r"\A[0-9]{6}\Z"),
    price=st.integers(1, 3_000_000),
    change=st.integers(-900_000, 900_000),
    change_pct=st.floats(-30, 30),
    volume=st.integers(0, 10**12),
    trade_qty=st.integers(-(10**6), 10**6),
    time=st.from_regex(r"\A[0-2][0-9][0-5][0-9][0-5][0-9]\Z"),
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(EVENT_TYPES),
    st.text(min_size=1, max_size=30),
    st.integers(0, 2**62),
    st.integers(0, 2**50),
    st.lists(quotes, max_size=5),
)
def test_envelopes_round_trip(etype, run, seq, ts, items):
    env = Envelope(etype, run, seq, ts, {"items": [q.to_dict() for q in items]})
    back = decode_envelope(env.encode())
    assert back == env
    assert [Quote.from_dict(d) for d in back.data["items"]] == items


def test_payloads_ignore_unknown_fields_and_fill_defaults():
    q = Quote.from_dict({"code": "005930", "price": 70000, "future_field": 1})
    assert q.volume == 0 and q.price == 70000


def test_account_numbers_are_masked():
    assert mask_account("8012345611") == "8012****11"
    assert "345" not in mask_account("8012345611")
