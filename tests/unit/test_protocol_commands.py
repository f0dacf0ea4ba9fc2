"""The command parser: every input becomes a Command or a ProtocolError naming field and problem."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.protocol import ProtocolError, make_command, make_reply, parse_command
from core.protocol.commands import COMMANDS, decode_reply, encode_reply
from core.protocol.errors import BAD_JSON, ERROR_CODES, INVALID_ARGUMENT, UNKNOWN_COMMAND
from tests.strategies import field_names, json_values


def error_of(raw):
    with pytest.raises(ProtocolError) as info:
        parse_command(raw)
    return info.value


def test_the_protocol_example_parses():
    cmd = parse_command('{"id":"s1","cmd":"buy","code":"005930","qty":10,"price":70000}')
    assert (cmd.id, cmd.cmd, cmd.code, cmd.qty, cmd.price, cmd.type) == (
        "s1",
        "buy",
        "005930",
        10,
        70000,
        "limit",
    )
    assert cmd.side == "buy" and cmd.is_trading


def test_market_order_takes_no_price():
    cmd = parse_command({"cmd": "sell", "code": "000660", "qty": 3, "type": "market"})
    assert cmd.price == 0 and cmd.side == "sell"
    err = error_of({"cmd": "sell", "code": "000660", "qty": 3, "type": "market", "price": 1000})
    assert err.field == "price" and "market order takes no price" in err.message


@pytest.mark.parametrize(
    "raw, code, field, words",
    [
        (b"\xff\xfe", BAD_JSON, None, "not UTF-8"),
        ("{not json", BAD_JSON, None, "not valid JSON"),
        ("[1, 2]", BAD_JSON, None, "must be a JSON object"),
        ('"buy"', BAD_JSON, None, "must be a JSON object"),
        ("{}", UNKNOWN_COMMAND, "cmd", "cmd is required"),
        ('{"cmd":"launch"}', UNKNOWN_COMMAND, "cmd", "unknown command"),
        ('{"cmd":"ping","id":"bad id!"}', INVALID_ARGUMENT, "id", "id must be"),
        ('{"cmd":"ping","id":""}', INVALID_ARGUMENT, "id", "id must be"),
        ('{"cmd":"ping","id":"' + "x" * 65 + '"}', INVALID_ARGUMENT, "id", "id must be"),
        (
            '{"cmd":"buy","code":"5930","qty":1,"price":70000}',
            INVALID_ARGUMENT,
            "code",
            "6-character",
        ),
        ('{"cmd":"buy","code":"005930","qty":-5,"price":70000}', INVALID_ARGUMENT, "qty", "got -5"),
        (
            '{"cmd":"buy","code":"005930","qty":1.5,"price":70000}',
            INVALID_ARGUMENT,
            "qty",
            "whole number",
        ),
        (
            '{"cmd":"buy","code":"005930","qty":"10","price":70000}',
            INVALID_ARGUMENT,
            "qty",
            "whole number",
        ),
        (
            '{"cmd":"buy","code":"005930","qty":true,"price":70000}',
            INVALID_ARGUMENT,
            "qty",
            "whole number",
        ),
        ('{"cmd":"buy","code":"005930","qty":1}', INVALID_ARGUMENT, "price", "price is required"),
        (
            '{"cmd":"buy","code":"005930","qty":1,"price":70010}',
            INVALID_ARGUMENT,
            "price",
            "100 KRW tick",
        ),
        (
            '{"cmd":"buy","code":"005930","qty":1,"price":70000,"type":"stop"}',
            INVALID_ARGUMENT,
            "type",
            "limit or market",
        ),
        (
            '{"cmd":"buy","code":"005930","qty":1,"prcie":70000}',
            INVALID_ARGUMENT,
            "prcie",
            "unknown field",
        ),
        ('{"cmd":"cancel"}', INVALID_ARGUMENT, "order_id", "order_id is required"),
        ('{"cmd":"modify","order_id":"S1"}', INVALID_ARGUMENT, "qty", "new qty, a new price"),
        ('{"cmd":"subscribe","codes":"005930"}', INVALID_ARGUMENT, "codes", "list"),
        ('{"cmd":"subscribe","codes":[]}', INVALID_ARGUMENT, "codes", "non-empty"),
        ('{"cmd":"subscribe","codes":["005930", 5930]}', INVALID_ARGUMENT, "codes", "6-character"),
        ('{"cmd":"halt","cancel_open":"yes"}', INVALID_ARGUMENT, "cancel_open", "true or false"),
        ('{"cmd":"ping","ttl_ms":0}', INVALID_ARGUMENT, "ttl_ms", "positive"),
        ('{"cmd":"ping","ts":-1}', INVALID_ARGUMENT, "ts", "milliseconds"),
    ],
)
def test_bad_commands_name_the_field_and_problem(raw, code, field, words):
    err = error_of(raw)
    assert err.code == code
    assert err.field == field
    assert words in err.message


def test_errors_keep_the_id_so_the_reply_can_be_addressed():
    err = error_of('{"id":"abc","cmd":"buy","code":"005930","qty":0,"price":70000}')
    assert err.cmd_id == "abc" and err.cmd == "buy"
    err = error_of('{"id":"abc","cmd":"fly"}')
    assert err.cmd_id == "abc" and err.cmd is None
    err = error_of('{"id":"a b","cmd":"ping"}')
    assert err.cmd_id is None  # an invalid id is never used as a key


def test_subscribe_deduplicates_codes_in_order():
    cmd = parse_command({"cmd": "subscribe", "codes": ["005930", "000660", "005930"]})
    assert cmd.codes == ("005930", "000660")


def test_make_command_round_trips_through_the_wire_form():
    cmd = make_command("modify", id="m-1", order_id="S000001", price=70100)
    assert parse_command(cmd.encode()) == cmd
    assert json.loads(cmd.encode())["price"] == 70100


def test_make_command_raises_like_the_engine_would_reply():
    with pytest.raises(ProtocolError) as info:
        make_command("buy", code="005930", qty=10, price=70050)
    assert info.value.code == INVALID_ARGUMENT


def test_reply_shapes():
    ok = make_reply("s1", "buy", result={"order_id": "S1"}, ts=5)
    assert ok == {"id": "s1", "cmd": "buy", "ok": True, "ts": 5, "result": {"order_id": "S1"}}
    bad = make_reply("s1", "buy", error=ProtocolError(INVALID_ARGUMENT, "qty must be ..."), ts=5)
    assert bad["ok"] is False and bad["error"] == {
        "code": INVALID_ARGUMENT,
        "message": "qty must be ...",
    }
    assert decode_reply(encode_reply(bad)) == bad
    with pytest.raises(ProtocolError):
        decode_reply('{"ok": false, "error": {"code": "NOPE"}}')


plausible = st.dictionaries(
    field_names,
    st.one_of(
        json_values,
        st.sampled_from(COMMANDS),
        st.sampled_from(["005930", "000660", "A005930", "limit", "market", "s1"]),
        st.integers(min_value=-10, max_value=10**9),
    ),
    max_size=7,
)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(st.binary(max_size=200), st.text(max_size=200), plausible, plausible.map(json.dumps))
)
def test_no_input_makes_the_parser_raise_anything_but_its_own_error(raw):
    try:
        cmd = parse_command(raw)
    except ProtocolError as err:
        assert err.code in ERROR_CODES
        assert err.message
        assert err.cmd_id is None or isinstance(err.cmd_id, str)
    else:
        assert cmd.cmd in COMMANDS
        # a valid command survives its own wire form unchanged
        assert parse_command(cmd.encode()) == cmd


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["buy", "sell"]),
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=1, max_value=3_000_000),
)
def test_valid_orders_round_trip(side, qty, raw_price):
    from core.protocol import krx

    cmd = make_command(side, id="o1", code="005930", qty=qty, price=krx.snap_down(raw_price))
    assert parse_command(cmd.encode()) == cmd
