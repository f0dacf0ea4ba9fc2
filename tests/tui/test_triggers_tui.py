"""Triggers in the console (issue 14), against a real Redis and the real sim engine, with Pilot:
a stop set from a position row fires; the buy ticket attaches a bracket; the triggers list
cancels."""

from __future__ import annotations

import json

import pytest
from tui_helpers import until

from core.protocol.krx import next_tick, prev_tick, snap_down
from tui.app import KiwoomConsole
from tui.screens.confirm import PromptScreen
from tui.screens.ticket import TicketScreen
from tui.screens.triggers import TriggersScreen
from tui.triggers import parse_level

pytestmark = pytest.mark.timeout(120)
SIZE = (140, 40)
CODE = "005930"


async def started(app: KiwoomConsole, pilot) -> None:
    await until(pilot.pause, lambda: app.feed.connected.is_set(), 10, "the feed to connect")
    await until(pilot.pause, lambda: app.store.status.alive, 10, "engine alive")
    await until(pilot.pause, lambda: app.store.last_price(CODE), 10, "a price")


def test_parse_level_snaps_and_refuses_the_wrong_side() -> None:
    assert parse_level("68,020", "stop", 70000, 70000) == ({"trigger_price": 68000}, "")
    assert parse_level("3%", "stop", 70000, 71000) == ({"trigger_price": 67900}, "")
    assert parse_level("-5%", "take_profit", 70000, 71000) == ({"trigger_price": 73500}, "")
    assert parse_level("10t", "trailing", 0, 0) == ({"trail_ticks": 10}, "")
    assert parse_level("2.5%", "trailing", 0, 0) == ({"trail_pct": 2.5}, "")
    assert "not below" in parse_level("72000", "stop", 70000, 71000)[1]
    assert "not above" in parse_level("70000", "take_profit", 70000, 71000)[1]
    assert parse_level("abc", "stop", 70000, 71000)[1]
    assert parse_level("40%", "trailing", 0, 0)[1]


async def test_stop_set_from_a_position_row_fires_and_notifies(tui_config, engine) -> None:
    assert engine.send({"cmd": "buy", "code": CODE, "qty": 4, "type": "market"})["ok"]
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await until(pilot.pause, lambda: app.store.positions.get(CODE), 10, "the position")
        await pilot.press("3")  # the Positions panel
        await until(pilot.pause, lambda: app.main.selected_code() == CODE, 5, "row selected")
        await pilot.press("l")
        assert isinstance(app.screen, PromptScreen)
        last = app.store.last_price(CODE)
        stop = prev_tick(last, 5)
        await pilot.press(*str(stop), "enter")
        try:
            await until(
                pilot.pause, lambda: app.store.triggers.live(CODE), 10, "the stop in the store"
            )
        except AssertionError:
            raise AssertionError(str(list(app.notices)) + str(app.screen)) from None
        await until(
            pilot.pause,
            lambda: f"S{stop:,}" in app.store.triggers.marks(CODE),
            5,
            "the S mark on the position",
        )
        row = app.main.positions
        assert (
            f"S{stop:,}" in row.cell(CODE, next(c for c in row.columns if c.key == "triggers"))[0]
        )
        # the price trades through the stop (sim-only command)
        assert engine.send({"cmd": "sim_price", "code": CODE, "price": prev_tick(stop, 30)})["ok"]
        await until(
            pilot.pause,
            lambda: any(t == "Trigger fired" for _, t, _ in app.notices),
            10,
            "the fire notification",
        )
        fired = next(m for _, t, m in app.notices if t == "Trigger fired")
        assert f"Stop SELL {CODE} position fired" in fired and "(sent)" in fired
        await until(
            pilot.pause,
            lambda: not app.store.positions.get(CODE) or not app.store.positions[CODE].qty,
            10,
            "position closed",
        )
        assert app.store.triggers.marks(CODE) == ""


async def test_buy_ticket_bracket_and_the_triggers_list_cancels(tui_config, engine) -> None:
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("b")
        ticket = app.screen
        assert isinstance(ticket, TicketScreen)
        ticket.query_one("#code").value = CODE
        ticket.action_toggle_kind()  # market
        ticket.query_one("#stop_loss").value = "3%"
        ticket.query_one("#take_profit").value = "5%"
        order, why = ticket.build_order()
        assert why == "" and order["stop_loss_pct"] == 3.0 and order["take_profit_pct"] == 5.0
        ticket.submit()  # the review names the bracket it will attach
        await until(pilot.pause, lambda: ticket.has_class("-reviewing"), 5, "the review")
        review = str(ticket.query_one("#ticket-hint").render())
        assert "stop -3% of the fill / take-profit +5% of the fill" in review, review
        ticket.submit()
        await until(pilot.pause, lambda: len(app.store.triggers.live(CODE)) == 2, 10, "the bracket")
        await until(
            pilot.pause,
            lambda: all(t["qty"] == 1 for t in app.store.triggers.live(CODE)),
            10,
            "the bracket follows the fill",
        )
        await pilot.press("T")
        screen = app.screen
        assert isinstance(screen, TriggersScreen)
        await pilot.pause(0.1)
        assert screen.query_one("#triggers-table").row_count == 2
        await pilot.press("c")
        await until(
            pilot.pause, lambda: len(app.store.triggers.live(CODE)) == 1, 10, "one cancelled"
        )
        raw = engine.redis.hvals(engine.keys.state_triggers)
        assert sorted(json.loads(v)["status"] for v in raw) == ["armed", "cancelled"]


async def test_a_trailing_stop_on_a_position_row_follows_a_new_high(tui_config, engine) -> None:
    """The trailing mark moves in the engine; the position row's ``~level`` follows it within
    a flush (a ``trigger_marks`` event), with no full trigger event for the move."""
    assert engine.send({"cmd": "buy", "code": CODE, "qty": 2, "type": "market"})["ok"]
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await until(pilot.pause, lambda: app.store.positions.get(CODE), 10, "the position")
        await pilot.press("3")
        await until(pilot.pause, lambda: app.main.selected_code() == CODE, 5, "row selected")
        await pilot.press("t")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"5%", "enter")
        await until(pilot.pause, lambda: app.store.triggers.live(CODE), 10, "the trailing stop")
        high = next_tick(app.store.last_price(CODE), 40)
        assert engine.send({"cmd": "sim_price", "code": CODE, "price": high})["ok"]
        level = snap_down(int(high * 95 / 100))  # on the tick grid
        await until(
            pilot.pause,
            lambda: f"~{level:,}" in app.store.triggers.marks(CODE),
            10,
            f"the row's trailing level {level:,}",
        )
        row = app.main.positions
        column = next(c for c in row.columns if c.key == "triggers")
        await until(
            pilot.pause, lambda: f"~{level:,}" in row.cell(CODE, column)[0], 5, "the row repainted"
        )


async def test_the_stop_tp_column_shows_all_three_marks_at_120_columns(tui_config, engine) -> None:
    """S, T and ~ together are wider than the column's 18 cells: on a 120-column screen the
    column takes the spare width instead of cutting the take-profit to ``T74,80…``."""
    assert engine.send({"cmd": "buy", "code": CODE, "qty": 2, "type": "market"})["ok"]
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(app, pilot)
        await until(pilot.pause, lambda: app.store.positions.get(CODE), 10, "the position")
        last = app.store.last_price(CODE)
        for kind, extra in (
            ("stop", {"trigger_price": prev_tick(last, 20)}),
            ("take_profit", {"trigger_price": next_tick(last, 30)}),
            ("trailing", {"trail_pct": 2}),
        ):
            cmd = {"cmd": "trigger_add", "code": CODE, "side": "sell", "qty": "position"}
            assert engine.send(dict(cmd, kind=kind, **extra))["ok"]
        await until(pilot.pause, lambda: len(app.store.triggers.live(CODE)) == 3, 10, "3 live")
        marks = app.store.triggers.marks(CODE)
        assert len(marks) > 18 and "…" not in marks
        table = app.main.positions
        await until(
            pilot.pause,
            lambda: marks in table.render_line(1).text,
            5,
            f"the whole {marks!r} on the row",
        )
        await pilot.press("T")  # the list: status and why are on screen at 120 columns
        screen = app.screen
        assert isinstance(screen, TriggersScreen)
        await pilot.pause(0.1)
        dt = screen.query_one("#triggers-table")
        right = 0
        for column in dt.columns.values():
            right += column.get_render_width(dt)
            if str(column.label) == "Why":
                break
        assert right <= dt.size.width, (right, dt.size.width)
        assert dt.get_row_at(0)[6] == "armed"
