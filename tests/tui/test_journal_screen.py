"""The journal screen shows today's fills and totals that match ``kc report`` to the won."""

from __future__ import annotations

import datetime

import asyncpg
import pytest
import tui_seed
from tui_helpers import make_config, until

from core import journal, report
from core.writer.schema import migrate, use_schema
from core.writer.tables import FILLS
from tui.app import KiwoomConsole
from tui.screens.journal import JournalScreen

pytestmark = pytest.mark.timeout(120)

TODAY = tui_seed.FROZEN.date()
DAY_BEFORE = TODAY - datetime.timedelta(days=3)  # the Friday before


def _fill(seq: int, day: datetime.date, hh: int, side: str, qty: int, price: int, code: str):
    ts = datetime.datetime.combine(day, datetime.time(hh, 0), tzinfo=tui_seed.KST)
    value = qty * price
    fee = value * 15 // 100000 // 10 * 10
    # the row in core.writer.tables.FILLS order; the last column is the venue (migration 003)
    return (ts, "jr", seq, f"f{seq}", f"o{seq}", code, side, qty, price, fee, 0, "KRX")


FILL_ROWS = [
    _fill(1, DAY_BEFORE, 9, "buy", 10, 70000, "005930"),
    _fill(2, DAY_BEFORE, 10, "sell", 5, 69000, "005930"),  # a loss on the day before
    _fill(3, TODAY, 9, "buy", 20, 44850, "035720"),
    _fill(4, TODAY, 10, "sell", 20, 46000, "035720"),  # a gain today
    _fill(5, TODAY, 10, "sell", 5, 71000, "005930"),  # and one more from Friday's lot
]


async def _dsn_with_fills(postgres_dsn: str, schema: str) -> str:
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await use_schema(conn, schema)
        await migrate(conn)
        cols = FILLS.column_names
        marks = ", ".join(f"${i + 1}" for i in range(len(cols)))
        await conn.executemany(f"INSERT INTO fills ({', '.join(cols)}) VALUES ({marks})", FILL_ROWS)
    finally:
        await conn.close()
    sep = "&" if "?" in postgres_dsn else "?"
    return f"{postgres_dsn}{sep}search_path={schema},public"


async def test_journal_screen_matches_kc_report(postgres_dsn, redis_url, redis_client, prefix):
    dsn = await _dsn_with_fills(postgres_dsn, "jr_" + prefix)
    want = await report.load(dsn, TODAY, TODAY, costs=journal.Costs())
    day = want.days.loc[TODAY]
    assert int(day["realized_pnl"]) > 0 and len(want.journal) == 3
    tui_seed.seed(redis_client, prefix)
    app = KiwoomConsole(
        make_config(redis_url, prefix, database__url=dsn), clock=lambda: tui_seed.FROZEN
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot.pause, lambda: app.store.quotes, 10, "the snapshot")
        await pilot.press("J")
        screen = app.screen
        assert isinstance(screen, JournalScreen)
        await until(pilot.pause, lambda: screen.report is not None, 20, screen.message)
        totals = str(screen.query_one("#journal-totals").render())
        assert f"realised +{int(day['realized_pnl']):,}" in totals
        assert f"fees {int(day['fees']):,}" in totals and f"tax {int(day['tax']):,}" in totals
        shown = screen.query_one("#journal-fills")
        lines = [str(shown.render_line(y).text) for y in range(shown.size.height)]
        assert sum("035720" in line or "005930" in line for line in lines) == 3  # today's only
        # 20×46,000 − fee 130 − tax 1,840 − cost 897,000; 5×71,000 − 50 − 710 − 5×70,000
        assert any("+21,030" in line for line in lines)
        assert any("+4,240" in line for line in lines)
        # the bars cover both trading days, the earlier one a loss
        assert list(screen.report.days.index) == [DAY_BEFORE, TODAY]
        assert int(screen.report.days["realized_pnl"].iloc[0]) < 0
        await pilot.press("escape")
        assert not isinstance(app.screen, JournalScreen)


async def test_journal_without_a_database_says_so(redis_url, redis_client, prefix):
    tui_seed.seed(redis_client, prefix)
    app = KiwoomConsole(make_config(redis_url, prefix), clock=lambda: tui_seed.FROZEN)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("J")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, JournalScreen)
        assert "No database configured" in str(screen.query_one("#journal-fills").render())
