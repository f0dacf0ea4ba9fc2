"""The defects B1-B12 of issue 10, each as the trader saw it: real Redis, seeded engine state,
the console driven with Pilot. Each test failed before its fix."""

from __future__ import annotations

import datetime

import pytest
import tui_seed
from rich.text import Text
from tui_helpers import make_config, until

from core.protocol import Keys
from core.protocol.krx import tick_size
from tui import app as app_module
from tui.app import KiwoomConsole
from tui.screens import chart as chart_screen
from tui.screens.chart import ChartScreen
from tui.screens.ticket import TicketScreen
from tui.widgets.status import AccountLine, StatusBar

pytestmark = pytest.mark.timeout(90)
SIZE = (120, 40)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime.datetime = tui_seed.FROZEN) -> None:
        self.now = start

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


def seeded(redis_url, redis_client, prefix, clock=None, **seed_kw) -> KiwoomConsole:
    tui_seed.seed(redis_client, prefix, **seed_kw)
    return KiwoomConsole(
        make_config(redis_url, prefix), clock=clock or (lambda: tui_seed.FROZEN), poll_s=3600
    )


async def connected(app: KiwoomConsole, pilot) -> None:
    await until(pilot.pause, lambda: app.feed.connected.is_set(), 10, "the feed")
    await until(pilot.pause, lambda: app.store.status.rtt_ms is not None, 10, "the first poll")
    await until(pilot.pause, lambda: app.main.ready, 10, "the main screen")
    app.flush()
    await pilot.pause(0.1)


def plain(widget) -> str:
    rendered = widget.render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


def row_text(table, key: str) -> str:
    return " ".join(table.cell(key, col)[0] for col, _ in table._columns_for(table.size.width))


# --- B1 ---------------------------------------------------------------------------------------


async def test_b1_a_position_follows_its_position_events_after_quotes_stop(
    redis_url, redis_client, prefix
) -> None:
    """005930 left the watchlist: its quotes stopped at 71,200 but position events go on."""
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        pos = dict(tui_seed.positions()[0], last_price=76300, unrealized_pnl=774000)
        tui_seed.publish(
            redis_client, prefix, "position", pos, seq=101, ts=tui_seed.FROZEN_MS + 20_000
        )
        await until(
            pilot.pause,
            lambda: app.store.positions["005930"].last_price == 76300,
            10,
            "the position event",
        )
        app.flush()
        row = row_text(app.main.positions, "005930")
        assert "76,300" in row and "+774,000" in row, row
        # A newer quote wins again.
        quote = tui_seed.quote("005930", 76400, 6100, 13_000_000)
        tui_seed.publish(
            redis_client,
            prefix,
            "quotes",
            {"items": [quote]},
            seq=102,
            ts=tui_seed.FROZEN_MS + 21_000,
        )
        await until(pilot.pause, lambda: app.store.last_price("005930") == 76400, 10, "quote")
        row = row_text(app.main.positions, "005930")
        assert "76,400" in row and "+786,000" in row, row


# --- B3 ---------------------------------------------------------------------------------------


async def test_b3_no_reply_is_not_called_a_redis_error(
    redis_url, redis_client, prefix, monkeypatch
) -> None:
    """The engine is down: the command waits in P:cmd; the console says so, not 'Redis'."""
    monkeypatch.setattr(app_module, "REPLY_TIMEOUT_S", 1.0)
    app = seeded(redis_url, redis_client, prefix, alive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        await app.send_command("buy", code="005930", qty=1, price=71000)
        assert redis_client.llen(Keys(prefix).cmd) == 1  # the command is there, unanswered
        sev, _title, text = app.notices[-1]
        assert sev == "error"
        assert "Redis" not in text, text
        assert "No reply" in text and "Orders panel" in text and "engine is down" in text


# --- B4 ---------------------------------------------------------------------------------------


async def test_b4_rebuild_keeps_every_alert_and_its_time(redis_url, redis_client, prefix) -> None:
    k = Keys(prefix)
    app = seeded(redis_url, redis_client, prefix)
    # Two alerts for LG화학 in the same millisecond, as a fast burst stores them.
    lg = {
        "code": "051910",
        "name": "LG화학",
        "price": 372500,
        "change_pct": 2.1,
        "volume_ratio": 4.0,
        "window_s": 60,
        "reason": "x",
        "ts": tui_seed.FROZEN_MS - 60_000,
    }
    redis_client.lpush(k.state_surge, tui_seed.json.dumps(lg), tui_seed.json.dumps(lg))
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        app.action_resync()  # Ctrl+L
        await until(pilot.pause, lambda: app.store.status.resyncs >= 2, 10, "the rebuild")
        app.flush()
        surge = app.main.surge
        assert len(surge.keys) == redis_client.llen(k.state_surge) == 4
        times = [surge.cell(key, surge.columns[0])[0] for key in surge.keys]
        assert times == ["10:14", "10:14", "10:15", "10:08"], times


# --- B5 ---------------------------------------------------------------------------------------


def test_b5_price_ticks_sit_on_the_krx_grid_and_span_the_data() -> None:
    price_ticks, time_ticks = chart_screen.price_ticks, chart_screen.time_ticks
    for lo, hi in ((372_000, 389_500), (48_950, 49_100), (1_990, 2_050), (700, 700), (99, 131)):
        ys = price_ticks(lo, hi, 5)
        assert ys[0] <= lo and ys[-1] >= hi, (lo, hi, ys)
        assert len(ys) <= 8
        for y in ys:
            assert y % tick_size(y) == 0, (lo, hi, y)
    assert time_ticks(1, 6) == [0]
    assert time_ticks(100, 6)[0] == 0 and time_ticks(100, 6)[-1] == 99


async def test_b5_one_candle_gives_sane_axes_in_kst(redis_url, redis_client, prefix) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(app, pilot)
        # One quote: one 1m candle, at 10:15 KST.
        q = tui_seed.quote("051910", 380500, 1500, 300_000)
        tui_seed.publish(redis_client, prefix, "quotes", {"items": [q]}, seq=101)
        await until(pilot.pause, lambda: app.store.candles.get("051910"), 10, "the candle")
        app.main.watchlist.select_key("051910")
        await pilot.press("enter")
        await until(pilot.pause, lambda: isinstance(app.screen, ChartScreen), 10, "the chart")
        await pilot.pause(0.3)
        plot = app.screen.query_one("#chart")
        text = "\n".join(
            "".join(seg.text for seg in plot.render_line(y)) for y in range(plot.size.height)
        )
        assert "10:15" in text, text  # KST, whatever the host's zone
        assert "1963" not in text and "2090" not in text
        assert "380,500" in text or "380,000" in text, text
        assert ".3" not in text and "380583" not in text, text


# --- B6 ---------------------------------------------------------------------------------------


async def test_b6_a_click_selects_the_row_under_the_pointer(
    redis_url, redis_client, prefix
) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        wl = app.main.watchlist
        wl.action_jump(-1)  # start away from the first row
        # Screen offsets inside the panel: border at y 0, header at y 1, first row at y 2.
        await pilot.click(wl, offset=(5, 2))
        assert wl.cursor_key == tui_seed.WATCHLIST[0]
        await pilot.click(wl, offset=(5, 1 + len(tui_seed.WATCHLIST)))
        assert wl.cursor_key == tui_seed.WATCHLIST[-1]
        await pilot.click(wl, offset=(5, 1))  # the header: nothing moves
        assert wl.cursor_key == tui_seed.WATCHLIST[-1]
        await pilot.click(wl, offset=(5, 0))  # the border: nothing moves
        assert wl.cursor_key == tui_seed.WATCHLIST[-1]


# --- B7 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [120, 80])
async def test_b7_the_account_line_keeps_what_matters_when_narrow(
    redis_url, redis_client, prefix, width
) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=(width, 24)) as pilot:
        await connected(app, pilot)
        tui_seed.publish(
            redis_client,
            prefix,
            "account",
            {"realized_pnl_today": -1_234_567, "unrealized_pnl": 12_345_678},
            seq=101,
        )
        await until(
            pilot.pause, lambda: app.store.account.unrealized_pnl == 12_345_678, 10, "account"
        )
        app.flush()
        line = app.screen.query_one(AccountLine)
        text = plain(line)
        assert len(text) <= line.size.width
        assert "…" not in text
        assert "P&L today +11,111,111" in text, text
        assert "Orderable 86,944,321" in text, text
        if width >= 120:
            assert "Equity 99,930,821" in text and "unreal +12,345,678" in text, text


# --- B8 ---------------------------------------------------------------------------------------


async def test_b8_an_unknown_code_is_named_not_added(redis_url, redis_client, prefix) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        reply = {
            "id": "x1",
            "cmd": "subscribe",
            "ok": True,
            "result": {"watchlist": tui_seed.WATCHLIST, "added": [], "unknown": ["999999"]},
        }
        app.notify_reply(reply, {"codes": ["999999"]})
        texts = [m for _, _, m in app.notices]
        assert any("No such code: 999999" in t for t in texts), texts
        assert not any(t.startswith("Added") for t in texts), texts


# --- B9 ---------------------------------------------------------------------------------------


async def test_b9_no_engine_means_the_session_is_unknown(redis_url, redis_client, prefix) -> None:
    # 08:45 KST on a Monday: the wall clock alone would say pre-open auction.
    clock = Clock(tui_seed.FROZEN.replace(hour=8, minute=45))
    app = seeded(redis_url, redis_client, prefix, clock=clock, alive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        text = plain(app.screen.query_one(StatusBar))
        assert "ENGINE DOWN" in text
        assert "동시호가" not in text and "pre-open" not in text, text
        assert "session unknown" in text, text


# --- B10 --------------------------------------------------------------------------------------


async def test_b10_modify_does_not_count_an_extra_open_order(
    redis_url, redis_client, prefix
) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        assert len(app.store.open_orders()) == 1
        await pilot.press("4")  # Orders: the open order is the first row
        assert app.main.orders.cursor_key == "0000101"
        await pilot.press("m")
        await until(pilot.pause, lambda: isinstance(app.screen, TicketScreen), 10, "the ticket")
        info = plain_static(app.screen.query_one("#ticket-info"))
        assert "open orders" in info
        line = next(x for x in info.splitlines() if "open orders" in x)
        assert " 1 of " in line, line


def plain_static(widget) -> str:
    content = widget.render()
    return content.plain if isinstance(content, Text) else str(content)


# --- B11 --------------------------------------------------------------------------------------


async def test_b11_heartbeat_age_counts_up_while_redis_is_down(
    redis_url, redis_client, prefix
) -> None:
    clock = Clock()
    app = seeded(redis_url, redis_client, prefix, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        st = app.store.status
        st.heartbeat_age_ms = 100
        st.heartbeat_read_ms = app.now_ms()
        st.redis_up = False  # what the feed sets when Redis stops answering
        bar = app.screen.query_one(StatusBar)
        bar.update_from_store()
        assert "♥ 0.1s" in plain(bar)
        clock.advance(7)
        bar.update_from_store()
        assert "♥ 7.1s" in plain(bar), plain(bar)


# --- B12 --------------------------------------------------------------------------------------


async def test_b12_falling_candles_are_the_panels_blue(redis_url, redis_client, prefix) -> None:
    app = seeded(redis_url, redis_client, prefix)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        # A falling minute then a rising one.
        for seq, (minute, price) in enumerate(((0, 183000), (0, 182000), (1, 182000)), 101):
            q = tui_seed.quote("000660", price, price - 185000, 3_300_000)
            ts = tui_seed.FROZEN_MS + minute * 60_000 + seq
            tui_seed.publish(redis_client, prefix, "quotes", {"items": [q]}, seq=seq, ts=ts)
        await until(pilot.pause, lambda: len(app.store.candles.get("000660", ())) >= 2, 10, "bars")
        app.main.watchlist.select_key("000660")
        await pilot.press("enter")
        await until(pilot.pause, lambda: isinstance(app.screen, ChartScreen), 10, "the chart")
        await pilot.pause(0.3)
        plot = app.screen.query_one("#chart")
        colours = set()
        for y in range(plot.size.height):
            for seg in plot.render_line(y):
                if seg.style and seg.style.color and seg.text.strip() in ("│", "█", "▌", "▐"):
                    colours.add(seg.style.color.triplet or seg.style.color.name)
        names = {str(c) for c in colours}
        assert any("84" in n and "148" in n and "255" in n for n in names), names
        assert not any(n in ("color(135)", "magenta", "purple") for n in names), names
