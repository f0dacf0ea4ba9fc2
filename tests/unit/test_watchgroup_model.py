"""The engine's watchlist groups as plain data (engine32.watchgroups, core.protocol.watchgroups)."""

import pytest

from core.protocol import parse_command
from core.protocol import watchgroups as wg
from core.protocol.errors import ProtocolError
from engine32.books import Books
from engine32.watchgroups import GroupError, WatchGroups


def test_no_kept_groups_make_one_default_group_holding_the_watchlist():
    books = Books(["005930", "000660", "005930"])
    assert books.groups.names() == [wg.DEFAULT_GROUP]
    assert books.watchlist == ["005930", "000660"]
    assert books.watch(["035720", "005930"]) == ["035720"]
    assert books.unwatch(["000660"]) == ["000660"]
    assert books.groups.codes(wg.DEFAULT_GROUP) == ["005930", "035720"]


def test_delete_the_active_group_shows_the_next_one_and_never_the_last():
    g = WatchGroups([wg.Group("a", ["005930"]), wg.Group("b", []), wg.Group("c", ["000660"])], "b")
    assert g.delete("b") == ([], "c")
    assert g.delete("c") == (["000660"], "a")
    with pytest.raises(GroupError, match="only group"):
        g.delete("a")
    with pytest.raises(GroupError, match='no group "x"'):
        g.select("x")


def test_limits_say_which_field_is_at_fault():
    g = WatchGroups(initial=["005930"])
    for n in range(2, wg.MAX_GROUPS + 1):
        g.save("g{}".format(n), [])
    with pytest.raises(GroupError) as too_many:
        g.save("one more", [])
    assert too_many.value.field == "group" and "at most 20 groups" in str(too_many.value)
    codes = ["{:06d}".format(i) for i in range(wg.MAX_GROUP_CODES)]
    g.save("g2", codes)
    with pytest.raises(GroupError) as full:
        g.add("g2", ["Z00001"])
    assert full.value.field == "codes"
    assert g.add("g2", ["Z00001"], strict=False) == ["Z00001"]  # an alert or a trigger: added


def test_decode_skips_what_it_cannot_read_and_keeps_the_order():
    raw = {
        b"b": b'{"pos":2,"active":true,"codes":["000660","bad","000660"]}',
        b"a": b'{"pos":1,"active":false,"codes":["005930"]}',
        b" bad name": b'{"pos":3,"codes":[]}',
        b"junk": b"not json",
    }
    groups, active = wg.decode(raw)
    assert groups == [wg.Group("a", ["005930"]), wg.Group("b", ["000660"])]
    assert active == "b"
    kept = WatchGroups(groups, active)
    assert kept.active_codes == ["000660"]
    assert WatchGroups(groups, "gone").active == "a"  # an unknown active: the first group


@pytest.mark.parametrize(
    "body, words",
    [
        ('{"cmd":"watchgroup_save","group":"x"}', "codes must be a list"),
        ('{"cmd":"watchgroup_save","group":"a\\tb","codes":[]}', "printable"),
        ('{"cmd":"watchgroup_select","group":""}', "1-20 characters"),
        ('{"cmd":"watchgroup_delete"}', "group is required"),
        ('{"cmd":"subscribe","codes":["005930"],"group":7}', "1-20 characters"),
        ('{"cmd":"watchgroup_select","group":"a","codes":[]}', "unknown field"),
    ],
)
def test_group_commands_are_checked_before_the_engine_sees_them(body, words):
    with pytest.raises(ProtocolError) as err:
        parse_command(body)
    assert words in err.value.message


def test_a_group_command_round_trips():
    cmd = parse_command('{"cmd":"watchgroup_save","group":"관심종목 2","codes":[]}')
    assert cmd.to_dict() == {"cmd": "watchgroup_save", "group": "관심종목 2", "codes": []}
    sub = parse_command('{"cmd":"subscribe","codes":["005930"],"group":"관심종목 2"}')
    assert sub.to_dict()["group"] == "관심종목 2"
    assert "group" not in parse_command('{"cmd":"subscribe","codes":["005930"]}').to_dict()
