"""The console against a real Redis and the real sim engine, driven with Pilot like a trader."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from tui_helpers import ENGINE_SETTINGS, EngineProcess, make_config, until

from core.protocol.events import CANCELLED, FILLED, HALTED, OPEN_STATUSES, READY
from core.protocol.krx import snap_down
from tui.app import KiwoomConsole
from tui.screens.confirm import ConfirmScreen
from tui.screens.main import MainScreen
from tui.screens.ticket import TicketScreen
from tui.widgets.status import Banner

pytestmark = pytest.mark.timeout(120)
SIZE = (120, 40)


def notices_text(app: KiwoomConsole) -> str:
    return "\n".join(f"{sev}|{title}|{msg}" for sev, title, msg in app.notices)


async def started(app: KiwoomConsole, pilot) -> None:
    await until(pilot.pause, lambda: app.feed.connected.is_set(), 10, "the feed to connect")
    await until(
        pilot.pause,
        lambda: app.store.status.state == READY and app.store.status.alive,
        10,
        "engine ready",
    )
    await until(pilot.pause, lambda: app.store.quotes, 10, "quotes")
    await pilot.pause(2.5 / app.cfg.tui.refresh_hz)  # let a repaint happen


async def test_order_through_ticket_shows_notification_order_fill_and_position(
    tui_config, engine
) -> None:
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        code = main.watchlist.cursor_key
        assert code
        await until(
            pilot.pause, lambda: app.store.last_price(code), 10, "a price for the first code"
        )
        await pilot.press("b")
        ticket = app.screen
        assert isinstance(ticket, TicketScreen)
        assert ticket.code_value == code and ticket.qty_value == 1
        # A marketable limit: a few ticks above the last price, so the sim fills it.
        await pilot.press("up", "up", "up")
        price = ticket.price_value
        assert price and price > app.store.last_price(code) - 1
        await pilot.press("enter")  # review
        assert ticket.reviewing and isinstance(app.screen, TicketScreen)
        await pilot.press("enter")  # send
        await until(
            pilot.pause,
            lambda: any(t == "Order accepted" for _, t, _ in app.notices),
            10,
            "accepted",
        )
        accepted = next(m for _, t, m in app.notices if t == "Order accepted")
        assert f"BUY {code} 1 @ {price:,} KRW - order id " in accepted
        order_id = accepted.rsplit(" ", 1)[-1]
        await until(pilot.pause, lambda: app.store.orders.get(order_id), 10, "the order row")
        await until(
            pilot.pause, lambda: app.store.orders[order_id].status == FILLED, 10, "the fill"
        )
        await until(
            pilot.pause,
            lambda: app.store.positions.get(code) and app.store.positions[code].qty == 1,
            10,
            "the position",
        )
        await until(
            pilot.pause,
            lambda: any(t.startswith("Fill - order " + order_id) for _, t, _ in app.notices),
            10,
            "the fill notification",
        )
        await pilot.pause(0.3)  # one refresh
        assert order_id in main.orders.keys
        assert code in main.positions.keys


async def test_cancel_selected_order(tui_config, engine) -> None:
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        code = main.watchlist.cursor_key
        await until(pilot.pause, lambda: app.store.last_price(code), 10, "a price")
        low = snap_down(int(app.store.last_price(code) * 0.95))  # rests in the book
        await pilot.press("b")
        ticket = app.screen
        assert isinstance(ticket, TicketScreen)
        ticket.set_price(low)
        await pilot.press("enter", "enter")
        await until(pilot.pause, lambda: app.store.open_orders(), 10, "an open order")
        order = app.store.open_orders()[0]
        await pilot.pause(0.3)
        await pilot.press("4")  # focus Orders
        assert main.orders.has_focus and main.orders.cursor_key == order.order_id
        await pilot.press("c")
        await until(
            pilot.pause,
            lambda: app.store.orders[order.order_id].status == CANCELLED,
            10,
            "cancelled",
        )
        assert any(t == "Cancel accepted" for _, t, _ in app.notices), notices_text(app)


async def test_kill_switch_halts_and_resume_needs_confirmation(tui_config, engine) -> None:
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        banner = app.screen.query_one(Banner)
        assert not banner.display
        await pilot.press("X")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # declining sends nothing
        await pilot.pause(0.5)
        assert engine.engine_hash()["state"] == READY
        await pilot.press("X", "y")
        await until(pilot.pause, lambda: app.store.status.state == HALTED, 10, "halted")
        await pilot.pause(0.3)
        assert banner.display and "HALTED" in str(banner.render())
        # An order while halted: the engine's words reach the trader.
        await pilot.press("b", "enter", "enter")
        await until(
            pilot.pause, lambda: any(t == "Buy refused" for _, t, _ in app.notices), 10, "refusal"
        )
        refusal = next(m for _, t, m in app.notices if t == "Buy refused")
        assert "HALTED" in refusal
        # The refused ticket stays open with its values; Esc closes it.
        assert isinstance(app.screen, TicketScreen)
        await pilot.press("escape")
        await pilot.press("R", "y")
        await until(pilot.pause, lambda: app.store.status.state == READY, 10, "resumed")
        await pilot.pause(0.3)
        assert not banner.display


async def test_rejected_order_shows_the_engines_message(tui_config, engine) -> None:
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("b")
        ticket = app.screen
        assert isinstance(ticket, TicketScreen)
        too_many = tui_config.risk.max_order_qty + 1
        ticket.query_one("#qty").value = str(too_many)
        await pilot.press("enter")  # the red risk line blocks it here...
        assert not ticket.reviewing
        await pilot.press("ctrl+o", "enter", "enter")  # ...until overridden: the engine decides
        await until(
            pilot.pause, lambda: any(sev == "error" for sev, _, _ in app.notices), 10, "an error"
        )
        sev, title, msg = next(n for n in app.notices if n[0] == "error")
        assert title == "Buy refused"
        assert "RISK_REJECTED" in msg and f"{too_many:,}" in msg
        assert not [o for o in app.store.orders.values() if o.status in OPEN_STATUSES]


async def test_engine_down_and_back_shows_and_clears_the_banner(redis_url, prefix, engine) -> None:
    app = KiwoomConsole(make_config(redis_url, prefix), poll_s=0.25)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        banner = app.screen.query_one(Banner)
        engine.kill()
        await until(pilot.pause, lambda: not app.store.status.alive, 10, "the heartbeat to expire")
        await pilot.pause(0.3)
        assert banner.display and "ENGINE DOWN" in str(banner.render())
        again = EngineProcess(redis_url, prefix=prefix, settings=ENGINE_SETTINGS)
        again.start()
        try:
            await asyncio.to_thread(again.wait_ready, 30)
            await until(
                pilot.pause,
                lambda: app.store.status.alive and app.store.status.state == READY,
                10,
                "the engine back",
            )
            await pilot.pause(0.3)
            assert not banner.display
            run = again.engine_hash()["run_id"]
            await until(pilot.pause, lambda: app.store.run == run, 10, "the new run's snapshot")
        finally:
            again.close()


async def test_late_start_rebuilds_from_snapshots(tui_config, engine) -> None:
    code = "005930"
    q = None
    for _ in range(200):
        q = engine.redis.hget(engine.keys.state_quotes, code)
        if q:
            break
        time.sleep(0.05)
    assert q, "the engine never published a quote for " + code
    bought = engine.send({"cmd": "buy", "code": code, "qty": 3, "type": "market"})
    assert bought["ok"], bought
    # A resting order placed before the console exists.
    price = snap_down(int(json.loads(q)["price"] * 0.95))
    resting = engine.send({"cmd": "buy", "code": code, "qty": 2, "price": price})
    assert resting["ok"], resting
    resting_id = resting["result"]["order_id"]
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await until(
            pilot.pause, lambda: app.store.positions.get(code), 10, "the position from the snapshot"
        )
        assert app.store.positions[code].qty == 3
        assert app.store.orders[resting_id].status in OPEN_STATUSES
        await pilot.pause(0.3)
        main = app.screen
        assert isinstance(main, MainScreen)
        assert resting_id in main.orders.keys and main.orders.keys[0] == resting_id  # newest first
        assert code in main.positions.keys
        assert app.store.account.account and app.store.account.cash < 100_000_000


async def test_modify_selected_order_changes_its_price(tui_config, engine) -> None:
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        code = main.watchlist.cursor_key
        await until(pilot.pause, lambda: app.store.last_price(code), 10, "a price")
        low = snap_down(int(app.store.last_price(code) * 0.95))
        await pilot.press("b")
        app.screen.set_price(low)
        await pilot.press("enter", "enter")
        await until(pilot.pause, lambda: app.store.open_orders(), 10, "an open order")
        first = app.store.open_orders()[0]
        await pilot.pause(0.3)
        await pilot.press("4", "m")
        ticket = app.screen
        assert isinstance(ticket, TicketScreen) and ticket.modify is not None
        assert ticket.price_value == low and ticket.qty_value == 1
        await pilot.press("down", "enter", "enter")  # one tick lower
        await until(
            pilot.pause,
            lambda: any(t == "Modify accepted" for _, t, _ in app.notices),
            10,
            "the modify reply",
        )
        lower = snap_down(low - 1)
        await until(
            pilot.pause,
            lambda: any(
                o.price == lower and o.status in OPEN_STATUSES for o in app.store.orders.values()
            ),
            10,
            "the order at the new price",
        )
        assert (
            app.store.orders[first.order_id].price == low
            or app.store.orders[first.order_id].status == CANCELLED
        )


async def test_watchlist_add_and_remove_send_subscribe_and_unsubscribe(tui_config, engine) -> None:
    app = KiwoomConsole(tui_config)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        new = "373220"
        assert new not in app.store.watchlist
        await pilot.press("a")
        await pilot.press(*new, "enter")
        await until(
            pilot.pause, lambda: new in app.store.watchlist, 10, "the code in the watchlist"
        )
        await until(pilot.pause, lambda: app.store.last_price(new), 10, "its quotes")
        assert new in engine.redis.lrange(engine.keys.state_watchlist, 0, -1)
        await pilot.pause(0.3)
        assert main.watchlist.select_key(new)
        await pilot.press("d")
        await until(pilot.pause, lambda: new not in app.store.watchlist, 10, "the code removed")
        assert new not in engine.redis.lrange(engine.keys.state_watchlist, 0, -1)
        await pilot.press("a", "1", "2", "3", "enter")
        await until(
            pilot.pause, lambda: any("No such code" in m for _, _, m in app.notices), 5, "refusal"
        )
