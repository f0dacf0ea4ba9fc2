"""Pictures of the screens that read the database: the 1d chart with months of backfilled
history, moving averages and volume; the journal at 120×40 and 80×24."""

from __future__ import annotations

import asyncio
import datetime

import asyncpg
import pytest
import tui_seed
from test_journal_screen import FILL_ROWS
from tui_helpers import make_config, until

from core.writer.schema import migrate, use_schema
from core.writer.tables import CANDLE_HISTORY, FILLS
from engine32.brokers.sim.history import past_candles
from tui.app import KiwoomConsole
from tui.screens.chart import ChartScreen
from tui.screens.journal import JournalScreen

pytestmark = pytest.mark.timeout(120)


async def _fill_database(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await use_schema(conn, schema)
        await migrate(conn)
        candles = past_candles(1, "005930", 70300, "1d", 200, tui_seed.FROZEN.date())
        published = tui_seed.FROZEN.astimezone(datetime.timezone.utc)
        rows = [
            (published, "bf", 1, "005930", "1d", "sim",
             datetime.datetime.fromtimestamp(c[0] / 1000, datetime.timezone.utc), *c[1:])
            for c in candles
        ]  # fmt: skip
        for table, data in ((CANDLE_HISTORY, rows), (FILLS, FILL_ROWS)):
            cols = table.column_names
            marks = ", ".join(f"${i + 1}" for i in range(len(cols)))
            await conn.executemany(
                f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({marks})", data
            )
    finally:
        await conn.close()


@pytest.fixture
def db_app(postgres_dsn, redis_url, redis_client, prefix):
    schema = "snap_" + prefix
    asyncio.run(_fill_database(postgres_dsn, schema))
    sep = "&" if "?" in postgres_dsn else "?"
    dsn = f"{postgres_dsn}{sep}search_path={schema},public"
    tui_seed.seed(redis_client, prefix)
    app = KiwoomConsole(
        make_config(redis_url, prefix, database__url=dsn),
        clock=lambda: tui_seed.FROZEN,
        poll_s=3600,
    )

    async def ready(pilot) -> None:
        await until(pilot.pause, lambda: app.store.quotes, 10, "the snapshot")
        await until(pilot.pause, lambda: app.store.status.rtt_ms is not None, 10, "the first poll")
        app.store.status.rtt_ms = 0.4
        app.store.dirty.status = True

    app.ready_for_snapshot = ready
    return app


def test_chart_1d_with_history(snap_compare, db_app) -> None:
    async def run_before(pilot) -> None:
        await db_app.ready_for_snapshot(pilot)
        await pilot.press("enter")
        await until(pilot.pause, lambda: isinstance(db_app.screen, ChartScreen), 10, "chart")
        chart = db_app.screen
        await pilot.press("i", "i", "i")  # 1m → 5m → 15m → 1d
        await until(
            pilot.pause,
            lambda: chart.source == "database" and len(chart.bars()) >= 200,
            20,
            "the daily history",
        )
        await pilot.press("minus", "minus")  # 240 candles: months of them
        await pilot.pause(0.3)

    assert snap_compare(db_app, terminal_size=(120, 40), run_before=run_before)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_journal(snap_compare, db_app, size) -> None:
    async def run_before(pilot) -> None:
        await db_app.ready_for_snapshot(pilot)
        await pilot.press("J")
        screen = db_app.screen
        assert isinstance(screen, JournalScreen)
        await until(pilot.pause, lambda: screen.report is not None, 20, "the journal")
        await pilot.pause(0.3)

    assert snap_compare(db_app, terminal_size=size, run_before=run_before)
