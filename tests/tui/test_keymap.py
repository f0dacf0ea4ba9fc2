"""The action registry, the keymap from config.toml, and the command palette."""

from __future__ import annotations

import pytest
from tui_helpers import make_config, until

from tui.actions import ACTIONS, ALL_ACTIONS, APP, CHART, DIALOG, MAIN, TICKET, bindings
from tui.app import KiwoomConsole
from tui.keymap import KeymapError, display_keys, effective_keys, load_keymap
from tui.screens.help import HelpScreen
from tui.screens.ticket import TicketScreen


def test_every_action_has_a_unique_id_key_and_help() -> None:
    ids = [a.id for a in ALL_ACTIONS]
    assert len(ids) == len(set(ids))
    for a in ALL_ACTIONS:
        assert a.key and a.title and a.help.endswith(".")
    scopes = {MAIN, APP, TICKET, CHART, DIALOG} | {a.scope for a in ALL_ACTIONS}
    bound = {b.id for scope in scopes for b in bindings(scope)}
    assert bound == set(ids)


def test_keymap_overrides_defaults_and_names_bad_entries() -> None:
    km = load_keymap({"buy": "ctrl+b", "help": " f1 , question_mark "})
    keys = effective_keys(km)
    assert keys["buy"] == "ctrl+b" and keys["help"] == "f1,question_mark" and keys["sell"] == "s"
    with pytest.raises(KeymapError, match="no such action.*buy"):
        load_keymap({"bye": "x"})
    with pytest.raises(KeymapError, match="not a Textual key name"):
        load_keymap({"buy": "ctrl b"})
    assert display_keys("question_mark,ctrl+l") == "? / Ctrl+L"


async def test_remapped_key_opens_the_ticket_and_the_old_one_does_not(redis_url, prefix) -> None:
    cfg = make_config(redis_url, prefix)
    cfg.tui.keymap.update(buy="f2", ticket_tick_up="f6")  # as if set in [tui.keymap]
    app = KiwoomConsole(cfg, feed=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("b")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, TicketScreen)
        await pilot.press("f2")
        await until(pilot.pause, lambda: isinstance(app.screen, TicketScreen), 5, "the ticket")
        app.screen.set_price(70000)
        await pilot.press("f6")
        assert app.screen.price_value == 70100  # one 100 KRW tick up, on the remapped key
        await pilot.press("escape")
        await pilot.press("question_mark")
        await until(pilot.pause, lambda: isinstance(app.screen, HelpScreen), 5, "help")
        rows = {row[4]: row for row in app.screen.rows}
        assert rows["buy"][1] == "F2" and rows["sell"][1] == "s"
        assert rows["ticket_tick_up"][1] == "F6" and rows["chart_interval"][1] == "i"  # screens too


async def test_command_palette_offers_every_action(redis_url, prefix) -> None:
    app = KiwoomConsole(make_config(redis_url, prefix), feed=False)
    async with app.run_test(size=(120, 40)):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for a in ACTIONS:
            assert any(t.startswith(a.title) for t in titles), a.id
