"""The chart reads its candles from the database when one is configured (core.history)."""

from __future__ import annotations

import datetime

import asyncpg
import pytest
import tui_seed
from tui_helpers import make_config, until

from core.writer.schema import migrate, use_schema
from core.writer.tables import QUOTES, quote_row
from tui.app import KiwoomConsole
from tui.screens.chart import ChartScreen

pytestmark = pytest.mark.timeout(120)


async def test_chart_candles_come_from_the_database(
    postgres_dsn, redis_url, redis_client, prefix
) -> None:
    schema = "tui_" + prefix
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await use_schema(conn, schema)
        await migrate(conn)
        minute0 = tui_seed.FROZEN.replace(second=0).astimezone(datetime.timezone.utc)
        start = minute0 - datetime.timedelta(minutes=30)
        rows = []
        for minute in range(30):
            for k, price in enumerate((60000, 60500, 59500, 60100 + minute * 10)):
                ts = start + datetime.timedelta(minutes=minute, seconds=10 * k)
                q = {"code": "005930", "price": price, "trade_qty": 5}
                rows.append(quote_row(ts, "hist", minute * 10 + k, 0, q))
        cols = QUOTES.column_names
        marks = ", ".join(f"${i + 1}" for i in range(len(cols)))
        await conn.executemany(f"INSERT INTO quotes ({', '.join(cols)}) VALUES ({marks})", rows)
    finally:
        await conn.close()
    sep = "&" if "?" in postgres_dsn else "?"
    dsn = f"{postgres_dsn}{sep}search_path={schema},public"
    tui_seed.seed(redis_client, prefix)
    app = KiwoomConsole(
        make_config(redis_url, prefix, database__url=dsn), clock=lambda: tui_seed.FROZEN
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot.pause, lambda: app.store.quotes, 10, "the snapshot")
        await pilot.press("enter")
        chart = app.screen
        assert isinstance(chart, ChartScreen) and chart.code == "005930"
        await until(
            pilot.pause,
            lambda: chart.source == "database",
            20,
            f"database candles ({chart.source})",
        )
        bars = chart.bars()
        assert len(bars) == 30
        assert all(b[1] == 60000 and b[2] == 60500 and b[3] == 59500 for b in bars)
        assert [b[4] for b in bars] == [60100 + m * 10 for m in range(30)]
