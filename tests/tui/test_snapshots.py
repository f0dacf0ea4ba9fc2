"""Screens as pictures (pytest-textual-snapshot), from fixed data in a real Redis and a frozen clock.

Update after an intended change: ``pytest tests/tui/test_snapshots.py --snapshot-update``, then
look at the SVGs under ``__snapshots__`` before committing them.
"""

from __future__ import annotations

import pytest
import tui_seed
from tui_helpers import make_config, until

from tui.app import KiwoomConsole
from tui.screens.chart import ChartScreen
from tui.screens.confirm import ConfirmScreen, PickScreen, PromptScreen
from tui.screens.help import HelpScreen
from tui.screens.ticket import TicketScreen

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def seeded_app(redis_url, redis_client, prefix):
    tui_seed.seed(redis_client, prefix)
    app = KiwoomConsole(make_config(redis_url, prefix), clock=lambda: tui_seed.FROZEN, poll_s=3600)

    async def ready(pilot) -> None:
        await until(pilot.pause, lambda: app.feed.connected.is_set(), 10, "the feed")
        await until(pilot.pause, lambda: app.store.status.rtt_ms is not None, 10, "the first poll")
        envs = tui_seed.history()
        for env in envs:
            redis_client.publish(f"{prefix}:ev:quotes", env.encode())
        await until(
            pilot.pause, lambda: app.store.last_seq == envs[-1].seq, 10, "the quote history"
        )
        app.store.status.rtt_ms = 0.4  # the one measured figure: fixed for the picture
        app.store.dirty.status = True
        await pilot.pause(0.3)

    app.ready_for_snapshot = ready
    return app


#: Every screen at the two sizes the console is built for (issue 10: 80x24 is first-class).
SIZES = [pytest.param((120, 40), id="120x40"), pytest.param((80, 24), id="80x24")]


def screen_is(app, cls) -> bool:
    return isinstance(app.screen, cls)


async def steady(pilot, app) -> None:
    """Let the screen settle, with the text cursors of its inputs steady: a blinking cursor
    is on or off depending on when the picture is taken."""
    from textual.widgets import Input

    for field in app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare, seeded_app, size) -> None:
    assert snap_compare(seeded_app, terminal_size=size, run_before=seeded_app.ready_for_snapshot)


@pytest.mark.parametrize("size", SIZES)
def test_order_ticket(snap_compare, seeded_app, size) -> None:
    async def run_before(pilot) -> None:
        await seeded_app.ready_for_snapshot(pilot)
        await pilot.press("b")
        await until(pilot.pause, lambda: screen_is(seeded_app, TicketScreen), 10, "ticket")
        await pilot.press("up", "up")
        await pilot.wait_for_scheduled_animations()
        await steady(pilot, seeded_app)

    assert snap_compare(seeded_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_order_ticket_review_step(snap_compare, seeded_app, size) -> None:
    async def run_before(pilot) -> None:
        await seeded_app.ready_for_snapshot(pilot)
        await pilot.press("s")  # 005930: 120 held, the whole holding prefilled
        await until(pilot.pause, lambda: screen_is(seeded_app, TicketScreen), 10, "ticket")
        await pilot.press("f6", "enter")
        await until(pilot.pause, lambda: seeded_app.screen.has_class("-reviewing"), 10, "review")
        await steady(pilot, seeded_app)

    assert snap_compare(seeded_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_modify_ticket(snap_compare, seeded_app, size) -> None:
    async def run_before(pilot) -> None:
        await seeded_app.ready_for_snapshot(pilot)
        await pilot.press("4", "m")
        await until(pilot.pause, lambda: screen_is(seeded_app, TicketScreen), 10, "ticket")
        await steady(pilot, seeded_app)

    assert snap_compare(seeded_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_chart(snap_compare, seeded_app, size) -> None:
    async def run_before(pilot) -> None:
        await seeded_app.ready_for_snapshot(pilot)
        await pilot.press("enter")
        await until(pilot.pause, lambda: screen_is(seeded_app, ChartScreen), 10, "chart")
        chart = seeded_app.screen
        await until(pilot.pause, lambda: chart.bars(), 10, "the candles")
        # Volume bars off here: the first live minute's volume depends on whether the snapshot
        # or the first published quote reached the store first (test_snapshots_history shows
        # them, from the database).
        await pilot.press("v")
        chart.redraw()  # the picture of the data as it now stands, not of the first frame
        await pilot.pause(0.3)

    assert snap_compare(seeded_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, seeded_app, size) -> None:
    async def run_before(pilot) -> None:
        await seeded_app.ready_for_snapshot(pilot)
        await pilot.press("question_mark")
        await until(pilot.pause, lambda: screen_is(seeded_app, HelpScreen), 10, "help")
        await steady(pilot, seeded_app)

    assert snap_compare(seeded_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_add_code_prompt(snap_compare, seeded_app, size) -> None:
    async def run_before(pilot) -> None:
        await seeded_app.ready_for_snapshot(pilot)
        await pilot.press("a")
        await until(pilot.pause, lambda: screen_is(seeded_app, PromptScreen), 10, "prompt")
        await pilot.press("0", "0", "0", "2", "7", "0")
        await steady(pilot, seeded_app)

    assert snap_compare(seeded_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_add_code_pick_list(snap_compare, seeded_app, size) -> None:
    """Part of a name matching several codes: the list to pick from (issue 10)."""

    async def run_before(pilot) -> None:
        await seeded_app.ready_for_snapshot(pilot)
        await pilot.press("a")
        await until(pilot.pause, lambda: screen_is(seeded_app, PromptScreen), 10, "prompt")
        seeded_app.screen.query_one("Input").insert_text_at_cursor("삼성")
        await pilot.press("enter")
        await until(pilot.pause, lambda: screen_is(seeded_app, PickScreen), 10, "pick list")
        await steady(pilot, seeded_app)

    assert snap_compare(seeded_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_main_with_watchlist_groups(snap_compare, seeded_app, redis_client, prefix, size) -> None:
    """The watchlist title names the group shown, and where it is among the groups."""
    from core.protocol import Keys
    from core.protocol import watchgroups as wg

    groups = [wg.Group("관심종목 1", tui_seed.WATCHLIST), wg.Group("단타", ["000270"])]
    redis_client.hset(Keys(prefix).state_watchgroups, mapping=wg.encode(groups, "관심종목 1"))

    async def run_before(pilot) -> None:
        await seeded_app.ready_for_snapshot(pilot)
        await steady(pilot, seeded_app)

    assert snap_compare(seeded_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_kill_switch_confirmation(snap_compare, seeded_app, size) -> None:
    async def run_before(pilot) -> None:
        await seeded_app.ready_for_snapshot(pilot)
        await pilot.press("X")
        await until(pilot.pause, lambda: screen_is(seeded_app, ConfirmScreen), 10, "confirm")
        await steady(pilot, seeded_app)

    assert snap_compare(seeded_app, terminal_size=size, run_before=run_before)
