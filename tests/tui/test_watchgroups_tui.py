"""The console's watchlist groups and add-by-name from the broker's master list (issue 10).

A seeded engine state plus ``P:state:names`` / ``P:state:watchgroups``, and a responder in the
engine's place that answers the console's commands the way the engine does.
"""

from __future__ import annotations

import json

import pytest
import tui_seed
from test_defects import connected, seeded
from test_friction import Responder
from tui_helpers import until

from core.protocol import Keys
from core.protocol import watchgroups as wg
from tui.screens.confirm import ConfirmScreen, PickScreen, PromptScreen
from tui.state import Store

pytestmark = pytest.mark.timeout(90)
SIZE = (120, 40)

#: A slice of a KOSPI/KOSDAQ master list; none of these is one of the console's built-in names.
MASTER = {
    "003230": "삼양식품",
    "145990": "삼양사",
    "000070": "삼양홀딩스",
    "900140": "엘브이엠씨홀딩스",
    "005930": "삼성전자",
}


def seed_names(client, prefix: str, names: dict[str, str]) -> None:
    k = Keys(prefix)
    client.hset(k.state_names, mapping=names)
    client.hset(k.engine, "names", str(len(names)))
    client.hset(k.engine, "names_at", "1795400000000")


def seed_groups(client, prefix: str, groups: list[tuple[str, list[str]]], active: str) -> None:
    k = Keys(prefix)
    fields = wg.encode([wg.Group(n, c) for n, c in groups], active)
    client.delete(k.state_watchgroups)
    client.hset(k.state_watchgroups, mapping=fields)
    client.delete(k.state_watchlist)
    client.rpush(k.state_watchlist, *dict(groups)[active])


def typed(app, text: str) -> None:
    app.screen.query_one("Input").insert_text_at_cursor(text)


def test_find_names_searches_the_master_list_by_name_and_code_prefix() -> None:
    store = Store()
    assert store.find_names("삼양") == []  # the built-in names do not know it
    store.load_master(MASTER)
    assert [c for c, _ in store.find_names("삼양")] == ["145990", "003230", "000070"]
    assert store.find_names("삼양식품") == [("003230", "삼양식품")]  # exact name alone
    assert store.find_names("0032") == [("003230", "삼양식품")]  # the start of a code
    assert store.find_names("엘브이") == [("900140", "엘브이엠씨홀딩스")]
    assert store.name_of("900140") == "엘브이엠씨홀딩스"  # names shown where codes were bare
    # ~2,700 names stay quick enough to search on every keystroke (no timing: just works)
    store.load_master({f"{i:06d}": f"종목{i}번" for i in range(2700)})
    assert len(store.find_names("종목12")) == 111


async def test_add_by_name_uses_the_master_list_and_a_pick_list(
    redis_url, redis_client, prefix, aredis
) -> None:
    app = seeded(redis_url, redis_client, prefix)
    seed_names(redis_client, prefix, MASTER)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        await until(pilot.pause, lambda: app.store.master, 10, "the master list")
        responder = Responder(
            aredis,
            prefix,
            lambda c: {"watchlist": [*tui_seed.WATCHLIST, *c.codes], "added": list(c.codes)},
        )
        try:
            # one match: added at once
            await pilot.press("a")
            typed(app, "삼양식")
            await pilot.press("enter")
            await until(pilot.pause, lambda: responder.commands, 10, "the subscribe")
            assert list(responder.commands[-1].codes) == ["003230"]
            # several: a pick list, the trader picks the second
            await pilot.press("a")
            typed(app, "삼양")
            await pilot.press("enter")
            await until(pilot.pause, lambda: isinstance(app.screen, PickScreen), 10, "picks")
            assert [c for c, _ in app.screen.choices] == ["145990", "003230", "000070"]
            await pilot.press("down")
            await pilot.press("enter")
            await until(pilot.pause, lambda: len(responder.commands) == 2, 10, "the pick")
            assert list(responder.commands[-1].codes) == ["003230"]
            # Esc on the pick list sends nothing
            await pilot.press("a")
            typed(app, "삼양")
            await pilot.press("enter")
            await until(pilot.pause, lambda: isinstance(app.screen, PickScreen), 10, "picks")
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert len(responder.commands) == 2
        finally:
            await responder.close()


def group_reply(groups, active, codes):
    return {"groups": groups, "active": active, "watchlist": codes}


async def test_groups_title_switch_add_new_and_delete(
    redis_url, redis_client, prefix, aredis
) -> None:
    app = seeded(redis_url, redis_client, prefix)
    seed_groups(
        redis_client,
        prefix,
        [("관심종목 1", tui_seed.WATCHLIST), ("관심종목 2", ["000270"])],
        "관심종목 1",
    )
    state = {"groups": ["관심종목 1", "관심종목 2"], "codes": {"관심종목 1": list(tui_seed.WATCHLIST),
             "관심종목 2": ["000270"]}, "active": "관심종목 1"}  # fmt: skip

    def answer(c):
        if c.cmd == "watchgroup_select":
            state["active"] = c.group
        elif c.cmd == "watchgroup_save":
            state["groups"].append(c.group)
            state["codes"][c.group] = list(c.codes)
        elif c.cmd == "watchgroup_delete":
            state["groups"].remove(c.group)
            state["active"] = state["groups"][0]
        elif c.cmd == "subscribe":
            state["codes"][c.group].extend(c.codes)
            return {"watchlist": state["codes"][state["active"]], "added": list(c.codes),
                    "group": c.group, "codes": state["codes"][c.group], "unknown": []}  # fmt: skip
        return group_reply(state["groups"], state["active"], state["codes"][state["active"]])

    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        wl = app.main.watchlist
        assert app.store.groups == ["관심종목 1", "관심종목 2"]
        assert wl.border_title == "Watchlist · 관심종목 1 (1/2)"
        responder = Responder(aredis, prefix, answer)
        try:
            await pilot.press("g")
            await until(pilot.pause, lambda: wl.keys == ["000270"], 10, "the other group")
            assert responder.commands[-1].cmd == "watchgroup_select"
            assert responder.commands[-1].group == "관심종목 2"
            assert wl.border_title == "Watchlist · 관심종목 2 (2/2)"
            # add acts on the group shown
            await pilot.press("a")
            assert "관심종목 2" in str(app.screen.question)
            typed(app, "005380")
            await pilot.press("enter")
            await until(pilot.pause, lambda: wl.keys == ["000270", "005380"], 10, "the add")
            assert responder.commands[-1].group == "관심종목 2"
            # a new group: Enter takes the next default name, then it is shown
            await pilot.press("N")
            assert isinstance(app.screen, PromptScreen)
            await pilot.press("enter")
            await until(pilot.pause, lambda: app.store.group == "관심종목 3", 10, "the new group")
            assert [c.cmd for c in responder.commands[-2:]] == [
                "watchgroup_save",
                "watchgroup_select",
            ]
            assert wl.keys == [] and wl.border_title == "Watchlist · 관심종목 3 (3/3)"
            # delete asks first
            await pilot.press("D")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await until(pilot.pause, lambda: app.store.group == "관심종목 1", 10, "the delete")
            assert responder.commands[-1].cmd == "watchgroup_delete"
            assert responder.commands[-1].group == "관심종목 3"
            assert wl.border_title == "Watchlist · 관심종목 1 (1/2)"
        finally:
            await responder.close()


async def test_without_groups_the_title_stays_and_g_says_why(
    redis_url, redis_client, prefix
) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        assert app.main.watchlist.border_title == "Watchlist"
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for shown in ("Next group  [g]", "Previous group  [G]", "New group  [N]",
                      "Delete group  [D]"):  # fmt: skip
            assert shown in titles, titles
        await pilot.press("g")
        await pilot.pause(0.1)
        assert any("N makes another" in m for _, _, m in app.notices), list(app.notices)


def test_group_names_are_stored_as_the_engine_reads_them() -> None:
    fields = wg.encode([wg.Group("관심종목 1", ["005930"]), wg.Group("단타", [])], "단타")
    assert json.loads(fields["단타"]) == {"pos": 2, "active": True, "codes": []}
    groups, active = wg.decode({k.encode(): v.encode() for k, v in fields.items()})
    assert [g.name for g in groups] == ["관심종목 1", "단타"] and active == "단타"


async def test_a_switch_by_another_console_is_followed(redis_url, redis_client, prefix) -> None:
    app = seeded(redis_url, redis_client, prefix)
    groups = [("관심종목 1", tui_seed.WATCHLIST), ("관심종목 2", ["000270"])]
    seed_groups(redis_client, prefix, groups, "관심종목 1")
    redis_client.hset(Keys(prefix).engine, "watchgroup", "관심종목 1")
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        assert app.store.group == "관심종목 1"
        # what the engine writes when someone else selects 관심종목 2
        seed_groups(redis_client, prefix, groups, "관심종목 2")
        redis_client.hset(Keys(prefix).engine, "watchgroup", "관심종목 2")
        assert app.feed.bus is not None
        await app.feed._poll(app.feed.bus)  # the once-a-second poll of P:engine
        await until(pilot.pause, lambda: app.store.group == "관심종목 2", 10, "the resync")
        app.flush()
        await pilot.pause(0.1)
        assert app.main.watchlist.keys == ["000270"]
        assert app.main.watchlist.border_title == "Watchlist · 관심종목 2 (2/2)"
