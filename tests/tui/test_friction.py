"""Issue 10's friction list: the ticket helpers, risk blocking, price separators and safe
snapping, the Orders panel (order, overflow, cursor, reason), notifications. Real Redis, seeded
engine state, and a stand-in engine that answers commands the way the engine does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tui_seed
from test_defects import connected, plain_static, seeded
from tui_helpers import until

from core.protocol import Keys, encode_reply, make_reply, parse_command
from core.protocol.errors import RISK_REJECTED, ProtocolError
from tui.screens.confirm import PickScreen
from tui.screens.ticket import TicketScreen

pytestmark = pytest.mark.timeout(90)
SIZE = (120, 40)


class Responder:
    """Answers every command on ``P:cmd`` with ``answer(cmd)`` (a result, or a ProtocolError)."""

    def __init__(self, aredis, prefix: str, answer) -> None:
        self.aredis = aredis
        self.keys = Keys(prefix)
        self.answer = answer
        self.commands: list[Any] = []
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        while True:
            got = await self.aredis.blpop([self.keys.cmd], timeout=1)
            if not got:
                continue
            cmd = parse_command(got[1])
            self.commands.append(cmd)
            out = self.answer(cmd)
            reply = (
                make_reply(cmd.id, cmd.cmd, error=out)
                if isinstance(out, ProtocolError)
                else make_reply(cmd.id, cmd.cmd, result=out)
            )
            await self.aredis.lpush(self.keys.reply(cmd.id), encode_reply(reply))

    async def close(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass


async def open_ticket(app, pilot, key: str, row: int = 0) -> TicketScreen:
    app.main.watchlist.focus()
    app.main.watchlist.action_jump(row)
    await pilot.press(key)
    await until(pilot.pause, lambda: isinstance(app.screen, TicketScreen), 10, "the ticket")
    await pilot.pause(0.05)
    return app.screen  # type: ignore[return-value]


def info(ticket: TicketScreen) -> str:
    return "\n".join(
        plain_static(ticket.query_one(sel))
        for sel in ("#ticket-means", "#ticket-info", "#ticket-error")
    )


# --- sell ticket ----------------------------------------------------------------------------


async def test_sell_ticket_shows_holding_sellable_and_fraction_keys(
    redis_url, redis_client, prefix
) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        # An open sell of 20 of the 120 held shares of 005930.
        sell = dict(tui_seed.orders()[0], order_id="0000102", side="sell", qty=20)
        sell["remaining_qty"] = 20
        tui_seed.publish(redis_client, prefix, "order", sell, seq=101)
        await until(pilot.pause, lambda: "0000102" in app.store.orders, 10, "the open sell")
        ticket = await open_ticket(app, pilot, "s")
        assert ticket.code_value == "005930"
        assert ticket.qty_value == 100  # the whole sellable amount, not 1
        text = info(ticket)
        assert "Holding 120" in text and "Sellable 100" in text, text
        await pilot.press("f6")
        assert ticket.qty_value == 50
        await pilot.press("f7")
        assert ticket.qty_value == 25
        await pilot.press("f5")
        assert ticket.qty_value == 100


# --- buy ticket -----------------------------------------------------------------------------


async def test_buy_ticket_shows_orderable_and_turns_an_amount_into_shares(
    redis_url, redis_client, prefix
) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        ticket = await open_ticket(app, pilot, "b")
        assert "Orderable 86,944,321 KRW" in info(ticket)
        assert ticket.price_value == 71200
        ticket.query_one("#qty").value = "1000000"
        await pilot.press("f8")
        assert ticket.qty_value == 1_000_000 // 71200 == 14
        assert "1,000,000 KRW at 71,200 = 14 shares" in info(ticket)
        await pilot.press("f5")  # as many as orderable cash buys, commission included
        qty = ticket.qty_value
        assert qty is not None and qty * 71200 <= 86_944_321 < (qty + 1) * 71200 * 1.00015


# --- price input -----------------------------------------------------------------------------


@pytest.mark.parametrize("key,typed,expect", [("b", "71050", 71000), ("s", "71050", 71100)])
async def test_off_tick_price_snaps_to_the_safe_side_and_says_so(
    redis_url, redis_client, prefix, key, typed, expect
) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        ticket = await open_ticket(app, pilot, key)
        price = ticket.query_one("#price")
        assert price.value == "71,200"  # thousands separators
        price.value = typed
        await pilot.pause(0.05)
        assert price.value == "71,050"
        ticket.submit()
        await pilot.pause(0.05)
        assert ticket.price_value == expect and not ticket.reviewing
        way = "down" if key == "b" else "up"
        assert f"snapped {way} to {expect:,}" in info(ticket)


# --- risk blocking and refusals ---------------------------------------------------------------


async def test_a_red_risk_line_blocks_until_overridden(redis_url, redis_client, prefix) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        ticket = await open_ticket(app, pilot, "b")
        ticket.set_qty(20_000)  # over max_order_qty 10,000 and max_order_value
        await pilot.pause(0.05)
        await pilot.press("enter")
        assert not ticket.reviewing
        assert "Over the limit" in info(ticket) and "order qty" in info(ticket)
        await pilot.press("ctrl+o")
        await pilot.press("enter")
        assert ticket.reviewing


async def test_after_a_refusal_the_ticket_stays_open_with_its_values(
    redis_url, redis_client, prefix, aredis
) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        responder = Responder(
            aredis, prefix, lambda c: ProtocolError(RISK_REJECTED, "daily loss limit reached")
        )
        try:
            ticket = await open_ticket(app, pilot, "b")
            ticket.set_qty(7)
            await pilot.press("up")
            await pilot.press("enter", "enter")
            await until(pilot.pause, lambda: ticket.last_reply is not None, 10, "the reply")
            await pilot.pause(0.1)
            assert app.screen is ticket
            assert ticket.qty_value == 7 and ticket.price_value == 71300
            assert "Refused: daily loss limit reached" in info(ticket)
            refusals = [n for n in app.notices if n[0] == "error"]
            assert len(refusals) == 1, refusals
        finally:
            await responder.close()


async def test_one_rejection_gives_one_notification(redis_url, redis_client, prefix) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        app.my_cmd_ids.add("tui-aaaa")
        rejected = dict(
            tui_seed.orders()[0],
            order_id="0000200",
            cmd_id="tui-aaaa",
            status="rejected",
            reason="insufficient orderable cash",
        )
        tui_seed.publish(redis_client, prefix, "order", rejected, seq=101)
        await until(pilot.pause, lambda: "0000200" in app.store.orders, 10, "the order")
        await pilot.pause(0.1)
        err = ProtocolError("BROKER_ERROR", "insufficient orderable cash")
        app.notify_reply(make_reply("tui-aaaa", "buy", error=err), {})
        assert len([n for n in app.notices if n[0] == "error"]) == 1, list(app.notices)


def edges(table) -> str:
    """A panel's title and bottom line (compact panels carry both in the title)."""
    return f"{table.border_title} {table.border_subtitle}"


# --- Orders panel -----------------------------------------------------------------------------


async def test_orders_newest_first_overflow_follow_and_reason(
    redis_url, redis_client, prefix, aredis
) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(app, pilot)
        orders = app.main.orders
        assert orders.keys == ["0000101", "0000100", "0000099"]  # newest created first
        # The rejected order: its whole reason on the panel's bottom line.
        orders.select_key("0000099")
        await pilot.pause(0.05)
        assert "price below the daily lower limit" in edges(orders)
        # Twelve more orders: more rows than fit, and the panel says so.
        for i in range(12):
            o = dict(
                tui_seed.orders()[1],
                order_id=f"00002{i:02d}",
                created_ts=tui_seed.FROZEN_MS - 50_000 + i,
            )
            tui_seed.publish(redis_client, prefix, "order", o, seq=101 + i)
        await until(pilot.pause, lambda: len(app.store.orders) == 15, 10, "the orders")
        app.flush()
        await pilot.pause(0.05)
        assert "▲11 more" in edges(orders), edges(orders)

        # An order placed from this console: the cursor goes to it when its row comes.
        def accept(cmd: Any) -> dict[str, str]:
            o = dict(
                tui_seed.orders()[0],
                order_id="0000300",
                cmd_id=cmd.id,
                created_ts=tui_seed.FROZEN_MS,
            )
            tui_seed.publish(redis_client, prefix, "order", o, seq=113)
            return {"order_id": "0000300"}

        responder = Responder(aredis, prefix, accept)
        try:
            await open_ticket(app, pilot, "b")
            await pilot.press("enter", "enter")
            await until(pilot.pause, lambda: not isinstance(app.screen, TicketScreen), 10, "sent")
            await until(pilot.pause, lambda: orders.cursor_key == "0000300", 10, "the cursor")
            assert orders.keys[0] == "0000300"
        finally:
            await responder.close()


# --- notifications ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_notifications_cover_neither_orders_nor_the_status_bar(
    redis_url, redis_client, prefix, size
) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=size, notifications=True) as pilot:
        await connected(app, pilot)
        for i in range(3):
            app.notify(f"Bought 1 005930 @ 71,200 KRW ({i})", title="Fill", timeout=30)
        await pilot.pause(0.3)
        from textual.widgets._toast import Toast

        toasts = list(app.screen.query(Toast))
        assert toasts
        orders = app.main.orders.region
        status = app.screen.query_one("#status").region
        for toast in toasts:
            assert not toast.region.overlaps(orders), (toast.region, orders)
            assert not toast.region.overlaps(status), (toast.region, status)


# --- the rest of the list -------------------------------------------------------------------


def test_korean_units_and_names_cut_in_the_middle() -> None:
    from tui.widgets import fmt
    from tui.widgets.table import cut_text

    assert fmt.korean(12_345_678) == "1,235만"
    assert fmt.korean(1_234_567_890) == "12.3억"
    assert fmt.korean(99_999) == "99,999"
    a, b = cut_text("에코프로비엠", 10, "middle"), cut_text("에코프로에이치엔", 10, "middle")
    assert a != b and "…" in a and a.strip().endswith("비엠"), (a, b)


async def test_prices_dim_when_the_engine_is_down(redis_url, redis_client, prefix) -> None:
    from tui.widgets import fmt

    app = seeded(redis_url, redis_client, prefix, alive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        wl = app.main.watchlist
        price_col = next(c for c in wl.columns if c.key == "price")
        assert wl.cell("005930", price_col)[1] == fmt.DIM
        app.store.status.alive = True
        assert wl.cell("005930", price_col)[1] == fmt.UP


async def test_palette_has_no_textual_noise_and_help_shows_plus(
    redis_url, redis_client, prefix
) -> None:
    from tui.keymap import display_keys

    assert display_keys("plus,equals_sign") == "+"
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert not [t for t in titles if t.startswith(("Maximize", "Screenshot"))], titles
        assert any(t.startswith("Buy  [b]") for t in titles), titles


async def test_add_a_code_by_part_of_its_name(redis_url, redis_client, prefix, aredis) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        responder = Responder(
            aredis,
            prefix,
            lambda c: {"watchlist": [*tui_seed.WATCHLIST, *c.codes], "added": c.codes},
        )
        try:
            await pilot.press("a")
            for ch in "하이닉스":
                app.screen.query_one("Input").insert_text_at_cursor(ch)
            await pilot.press("enter")
            await until(pilot.pause, lambda: responder.commands, 10, "the subscribe")
            assert responder.commands[0].codes == ("000660",) or list(
                responder.commands[0].codes
            ) == ["000660"]
            await pilot.press("a")
            app.screen.query_one("Input").insert_text_at_cursor("삼성")
            await pilot.press("enter")
            # several matches: listed to pick from (issue 10), the shortest names first
            await until(pilot.pause, lambda: isinstance(app.screen, PickScreen), 10, "picks")
            assert ("005930", "삼성전자") in app.screen.choices
            await pilot.press("escape")
        finally:
            await responder.close()


async def test_watchlist_sorts_by_change_and_volume(redis_url, redis_client, prefix) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        wl = app.main.watchlist
        assert wl.keys == tui_seed.WATCHLIST
        await pilot.press("O")
        by_pct = sorted(
            tui_seed.WATCHLIST,
            key=lambda c: -app.store.quotes[c]["change_pct"],
        )
        assert wl.keys == by_pct and wl.keys[0] == "006400"
        await pilot.press("O")
        assert wl.keys[0] == "005930"  # 12.3M shares
        await pilot.press("O")
        assert wl.keys == tui_seed.WATCHLIST
