"""The trigger_* commands and the buy bracket fields: parsing, round trips, clear errors."""

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.protocol import ProtocolError, krx, parse_command
from core.protocol.triggers import (
    end_of_day_ms,
    fire_cmd_id,
    parse_expires,
    parse_fire_cmd_id,
)

ADD = {
    "cmd": "trigger_add",
    "code": "005930",
    "side": "sell",
    "qty": 10,
    "kind": "stop",
    "trigger_price": 68000,
}


def test_a_valid_trigger_add_round_trips():
    for extra in (
        {},
        {"qty": "position"},
        {"order_type": "limit", "limit_offset_ticks": 3, "oco": "g1"},
        {"kind": "trailing", "trigger_price": None, "trail_pct": 2.5},
        {"kind": "trailing", "trigger_price": None, "trail_ticks": 10},
        {"expires": "2026-12-03T15:00"},
    ):
        body = {k: v for k, v in dict(ADD, **extra).items() if v is not None}
        cmd = parse_command(body)
        assert parse_command(cmd.to_dict()) == cmd
        assert cmd.args["code"] == "005930"


@pytest.mark.parametrize(
    "extra,field,words",
    [
        ({"side": "short"}, "side", "side must be"),
        ({"qty": 0}, "qty", "positive number of shares"),
        ({"qty": "position", "side": "buy"}, "qty", "only for side sell"),
        ({"kind": "trailing"}, "trigger_price", "no trigger_price"),
        ({"trigger_price": 68001}, "trigger_price", "tick"),
        ({"trail_pct": 3}, "trail_pct", "only for kind trailing"),
        ({"limit_offset_ticks": 2}, "limit_offset_ticks", "only for order_type limit"),
        ({"oco": "a b"}, "oco", "group name"),
        ({"expires": "soon"}, "expires", "KST date-time"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_bad_trigger_add_names_the_field(extra, field, words):
    with pytest.raises(ProtocolError) as info:
        parse_command(dict(ADD, **extra))
    assert info.value.field == field and words in info.value.message


def test_bracket_fields_on_a_buy():
    cmd = parse_command(
        {
            "cmd": "buy",
            "id": "b1",
            "code": "005930",
            "qty": 3,
            "type": "market",
            "stop_loss": 68000,
            "take_profit_pct": 5,
        }
    )
    assert cmd.stop_loss == 68000 and cmd.take_profit_pct == 5.0
    assert parse_command(cmd.to_dict()) == cmd
    bad = [
        ({"stop_loss": 70000, "take_profit": 69000}, "below take_profit"),
        ({"stop_loss": 68000, "stop_loss_pct": 3}, "not both"),
        ({"stop_loss_pct": 31}, "at most 30"),
    ]
    for extra, words in bad:
        with pytest.raises(ProtocolError) as info:
            parse_command(
                dict(
                    {"cmd": "buy", "id": "b2", "code": "005930", "qty": 1, "type": "market"},
                    **extra,
                )
            )
        assert words in info.value.message
    limit = {"cmd": "buy", "id": "b3", "code": "005930", "qty": 1, "price": 71000}
    for extra, field in (
        ({"stop_loss": 71000}, "stop_loss"),
        ({"take_profit": 70900}, "take_profit"),
    ):
        with pytest.raises(ProtocolError, match="sell as soon as the buy fills") as info:
            parse_command(dict(limit, **extra))
        assert info.value.field == field
    ok = parse_command(dict(limit, stop_loss=70900, take_profit=71100))
    assert (ok.stop_loss, ok.take_profit) == (70900, 71100)
    with pytest.raises(ProtocolError, match="needs an id"):
        parse_command(
            {"cmd": "buy", "code": "005930", "qty": 1, "type": "market", "stop_loss_pct": 3}
        )
    with pytest.raises(ProtocolError, match="unknown field"):
        parse_command(
            {"cmd": "sell", "code": "005930", "qty": 1, "type": "market", "stop_loss": 68000}
        )


@given(st.from_regex(r"[A-Za-z0-9_]{1,40}", fullmatch=True), st.integers(1, 10**6))
def test_fire_command_ids_parse_back(tid, n):
    cmd_id = fire_cmd_id(tid, n)
    assert parse_fire_cmd_id(cmd_id) == (tid, n)
    assert parse_command({"cmd": "ping", "id": cmd_id}).id == cmd_id  # a valid command id


def test_other_ids_are_not_fire_ids():
    for other in ("s1", "trg-", "trg-x", "trg-a b-1", "trg-x-y", None, 5):
        assert parse_fire_cmd_id(other) is None


def test_expires_and_the_default_end_of_day():
    kst = krx.KST
    at = parse_expires("2026-12-03T15:00")
    assert at == int(datetime.datetime(2026, 12, 3, 15, 0, tzinfo=kst).timestamp() * 1000)
    assert parse_expires("2026-12-03") == int(
        datetime.datetime(2026, 12, 3, 15, 30, tzinfo=kst).timestamp() * 1000
    )
    assert parse_expires("2026-12-03T06:00+00:00") == at  # an explicit offset is honoured
    # Wednesday 10:00 KST → 15:30 the same day; 16:00 → Thursday; Friday 16:00 → Monday
    wed = datetime.datetime(2026, 12, 2, 10, 0, tzinfo=kst)

    def eod(when):
        return datetime.datetime.fromtimestamp(
            end_of_day_ms(int(when.timestamp() * 1000)) / 1000, kst
        )

    assert eod(wed) == wed.replace(hour=15, minute=30)
    assert eod(wed.replace(hour=16)).day == 3
    assert eod(datetime.datetime(2026, 12, 4, 16, 0, tzinfo=kst)).weekday() == 0
