"""The ladder (호가창), the tape and price alerts in the console, against a real Redis and the
real sim engine, driven with Pilot like a trader: open the ladder, move to a level, buy there,
see the order marked at that level, move it, cancel it; alerts fire once and show."""

from __future__ import annotations

import pytest
from tui_helpers import until

from core.protocol.events import CANCELLED, OPEN_STATUSES
from core.protocol.krx import is_on_tick
from tui.app import KiwoomConsole
from tui.hts import HtsStore
from tui.screens.alerts import AlertsScreen, parse_alert
from tui.screens.ladder import LadderScreen, LadderTicket, LinesView

pytestmark = pytest.mark.timeout(120)
SIZE = (120, 40)


async def started(app: KiwoomConsole, pilot) -> str:
    await until(pilot.pause, lambda: app.feed.connected.is_set(), 10, "the feed to connect")
    await until(pilot.pause, lambda: app.store.status.alive, 10, "engine alive")
    await until(pilot.pause, lambda: app.store.quotes, 10, "quotes")
    code = app.main.watchlist.cursor_key
    assert code
    await until(pilot.pause, lambda: app.store.last_price(code), 10, "a price")
    return code


def ladder_text(app: KiwoomConsole) -> str:
    return app.screen.query_one("#ladder", LinesView).text()


def row_of(app: KiwoomConsole, price: int) -> str:
    for line in ladder_text(app).splitlines():
        if f" {price:,}" in line:
            return line
    return ""


async def open_ladder(app: KiwoomConsole, pilot, code: str) -> LadderScreen:
    await pilot.press("o")
    screen = app.screen
    assert isinstance(screen, LadderScreen) and screen.code == code
    store = app.store
    assert isinstance(store, HtsStore)
    await until(pilot.pause, lambda: code in store.books, 10, "the book")
    await until(pilot.pause, lambda: screen.cursor, 10, "the cursor on a level")
    return screen


async def test_ladder_buy_at_a_level_see_it_marked_move_it_and_cancel_it(
    tui_config, engine
) -> None:
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=SIZE) as pilot:
        code = await started(app, pilot)
        screen = await open_ladder(app, pilot, code)
        assert engine.redis.lrange(engine.keys.state_book_codes, 0, -1) == [code]
        text = ladder_text(app)
        assert "총잔량" in text and text.count("\n") == 20  # 20 levels + totals
        # Down through the bids: four levels below the best bid, on the tick grid.
        best_bid = app.store.books[code]["bids"][0][0]
        screen.cursor = best_bid
        await pilot.press("down", "down", "down", "down")
        level = screen.cursor
        assert level and level < best_bid and is_on_tick(level)
        await pilot.press("b")
        ticket = app.screen
        assert isinstance(ticket, LadderTicket)
        assert ticket.price_value == level and ticket.code_value == code
        await pilot.press("enter", "enter")  # review, send
        await until(
            pilot.pause,
            lambda: [o for o in app.store.open_orders() if o.code == code and o.price == level],
            10,
            "the order open at the level",
        )
        order = next(o for o in app.store.open_orders() if o.price == level)
        assert isinstance(app.screen, LadderScreen)
        await until(pilot.pause, lambda: "B 1" in row_of(app, level), 10, "the order marked")
        # The sim's book has it in the quantity too (the engine's resting book).
        await until(
            pilot.pause,
            lambda: dict(map(tuple, app.store.books[code]["bids"])).get(level, 0) >= 1,
            10,
            "the order in the book",
        )

        # Move it one level down: m picks it, m at the new level sends modify.
        screen.cursor = level
        await pilot.press("m")
        assert screen.picked is not None and screen.picked.order_id == order.order_id
        await pilot.press("down", "m")
        new_level = screen.cursor
        assert new_level < level
        await until(
            pilot.pause,
            lambda: [o for o in app.store.open_orders() if o.code == code and o.price == new_level],
            10,
            "the order moved",
        )
        moved = next(o for o in app.store.open_orders() if o.price == new_level)
        assert moved.orig_order_id == order.order_id
        await until(
            pilot.pause, lambda: "B 1" in row_of(app, new_level), 10, "marked at its new level"
        )
        assert "B 1" not in row_of(app, level)

        # Cancel it from the ladder.
        await pilot.press("c")
        await until(
            pilot.pause,
            lambda: app.store.orders[moved.order_id].status == CANCELLED,
            10,
            "cancelled",
        )
        await until(pilot.pause, lambda: "B 1" not in row_of(app, new_level), 10, "mark gone")
        assert not [o for o in app.store.open_orders() if o.code == code]
        # The tape shows the code's trades, newest first.
        await until(
            pilot.pause,
            lambda: len(app.screen.query_one("#tape", LinesView).text().splitlines()) > 3,
            10,
            "trades on the tape",
        )
        await pilot.press("escape")
        assert not isinstance(app.screen, LadderScreen)
        # This console added the book: it is taken away again on close.
        await until(
            pilot.pause,
            lambda: engine.redis.lrange(engine.keys.state_book_codes, 0, -1) == [],
            10,
            "book_unsubscribe",
        )


async def test_ladder_cancel_where_there_is_no_order_says_so(tui_config, engine) -> None:
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=(80, 24)) as pilot:
        code = await started(app, pilot)
        await open_ladder(app, pilot, code)
        await pilot.press("c", "m")
        texts = [m for _, _, m in app.notices]
        assert any("No open order of yours at" in m for m in texts)
        assert not [o for o in app.store.orders.values() if o.status in OPEN_STATUSES]


async def test_alert_set_from_the_console_fires_once_and_shows(tui_config, engine) -> None:
    app = KiwoomConsole(tui_config)
    bells = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        code = await started(app, pilot)
        await pilot.press("p")
        assert isinstance(app.screen, AlertsScreen)
        await pilot.press("a")
        await pilot.press(*"above 1", "enter")  # already true: fires on the next quote
        store = app.store
        assert isinstance(store, HtsStore)
        await until(pilot.pause, lambda: store.alerts_fired, 10, "the alert event")
        fired = store.alerts_fired[0]
        assert fired.code == code and fired.condition == "above" and fired.status == "fired"
        await until(
            pilot.pause,
            lambda: any(t == "Price alert" for _, t, _ in app.notices),
            10,
            "the notification",
        )
        assert bells
        await pilot.pause(1.0)  # many more quotes: no second firing
        assert len([a for a in store.alerts_fired if a.alert_id == fired.alert_id]) == 1
        assert len([t for _, t, _ in app.notices if t == "Price alert"]) == 1
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        # the open list was re-read when it fired
        await until(
            pilot.pause,
            lambda: (
                fired.alert_id in screen.alerts and screen.alerts[fired.alert_id].status == "fired"
            ),
            10,
            "the list showing it fired",
        )
        await pilot.press("d")
        await until(pilot.pause, lambda: not screen.alerts, 10, "removed")
        assert not engine.redis.hgetall(engine.keys.state_alerts)


def test_alert_text_parsing() -> None:
    assert parse_alert("above 71,000", "005930") == ({"code": "005930", "above": 71000}, "")
    assert parse_alert("000660 < 170000", "005930") == ({"code": "000660", "below": 170000}, "")
    assert parse_alert("-3.5%", "005930") == ({"code": "005930", "change_pct": -3.5}, "")
    assert parse_alert("above", "005930")[0] is None
    assert "Which code" in parse_alert("above 5", "")[1]
