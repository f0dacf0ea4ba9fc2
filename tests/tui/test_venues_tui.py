"""Issue 12 in the console: both venues in the status bar, the ticket's venue, NXT marks.

A real sim engine trades KRX and NXT with its clock started at 19:00 KST on a trading day:
KRX is closed, NXT's after-market is open.
"""

from __future__ import annotations

import pytest
from tui_helpers import ENGINE_SETTINGS, EngineProcess, make_config, until

from core.protocol.events import FILLED, READY
from tui.app import KiwoomConsole
from tui.screens.ticket import TicketScreen
from tui.widgets.status import StatusBar

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def evening_engine(redis_url: str, prefix: str):
    settings = dict(ENGINE_SETTINGS)
    settings.update({"sim.sessions": "krx+nxt", "sim.start_at": "2026-12-02 19:00"})
    eng = EngineProcess(redis_url, prefix=prefix, settings=settings)
    eng.start()
    try:
        eng.wait_ready(timeout=30)
        yield eng
    finally:
        eng.close()


async def test_evening_ticket_opens_on_nxt_cycles_venues_and_sends_to_nxt(
    redis_url: str, prefix: str, evening_engine
) -> None:
    app = KiwoomConsole(make_config(redis_url, prefix))
    async with app.run_test(size=(140, 40)) as pilot:
        await until(
            pilot.pause,
            lambda: app.store.status.state == READY and app.store.status.alive,
            15,
            "engine ready",
        )
        await until(pilot.pause, lambda: app.store.status.info.get("nxt_codes"), 10, "nxt codes")
        await until(pilot.pause, lambda: app.store.quotes, 10, "quotes")
        await pilot.pause(0.5)
        bar = str(app.screen.query_one(StatusBar).render())
        assert "KRX 장마감 │ NXT 애프터마켓" in bar
        main = app.screen
        code = main.watchlist.cursor_key
        assert code in app.store.status.info["nxt_codes"].split(",")
        assert main.watchlist.cell(code, main.watchlist.columns[1])[0].startswith("N·")

        await until(pilot.pause, lambda: app.store.last_price(code), 10, "a price")
        await pilot.press("b")
        ticket = app.screen
        assert isinstance(ticket, TicketScreen)
        assert ticket.venue == "NXT"  # KRX takes nothing at 19:00: the ticket opens on NXT
        assert "NXT 애프터마켓: limit orders only" in str(
            ticket.query_one("#ticket-title").render()
        )
        await pilot.press("ctrl+n")
        assert ticket.venue == "SOR"
        await pilot.press("ctrl+n")
        assert ticket.venue == "KRX"
        assert "KRX takes no orders now" in str(ticket.query_one("#ticket-error").render())
        await pilot.press("ctrl+n")
        assert ticket.venue == "NXT"
        await pilot.press("up", "up", "up", "enter")
        order, _ = ticket.build_order()
        assert order is not None and order["venue"] == "NXT"
        await pilot.press("enter")  # send
        await until(
            pilot.pause,
            lambda: any(o.venue == "NXT" and o.status == FILLED for o in app.store.orders.values()),
            15,
            "the NXT order filled",
        )
