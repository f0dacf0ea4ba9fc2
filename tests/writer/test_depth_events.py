"""Issue 13's events in the writer: ``alert`` envelopes land in ``price_alerts`` (migration
004); ``book`` envelopes are read and acknowledged but never stored (and are not gaps)."""

from __future__ import annotations

import redis

from core.protocol import Keys
from core.writer import Writer

from .conftest import DbTarget, db_conn
from .helpers import BASE_TS, Engine, quote, run_until_caught_up, settings, xadd


def _book(code: str) -> dict:
    asks = [[70100 + 100 * i, 10 + i] for i in range(10)]
    bids = [[70000 - 100 * i, 20 + i] for i in range(10)]
    return {
        "code": code,
        "ts": BASE_TS,
        "time": "091500",
        "asks": asks,
        "bids": bids,
        "total_ask": sum(q for _, q in asks),
        "total_bid": sum(q for _, q in bids),
    }


async def test_alerts_are_stored_and_books_are_skipped(
    db: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    eng = Engine()
    alert = {
        "alert_id": "A1795400000123001",
        "code": "005930",
        "name": "삼성전자",
        "condition": "above",
        "threshold": 71000.0,
        "status": "fired",
        "created_ts": BASE_TS - 60000,
        "fired_ts": BASE_TS,
        "price": 71000,
        "change_pct": 1.43,
        "message": "005930 at or above 71,000 - last 71,000 KRW (+1.43%)",
    }
    envs = [
        eng.env("quotes", {"items": [quote("005930", 70000)]}),
        eng.env("book", _book("005930")),
        eng.env("book", _book("000660")),
        eng.env("alert", alert),
        eng.env("alert", {**alert, "alert_id": "A2", "condition": "change_pct", "threshold": -3}),
    ]
    xadd(rconn, keys, envs)
    writer = Writer(settings(redis_url, keys, db))
    await run_until_caught_up(writer, rconn, keys)
    async with db_conn(db) as conn:
        rows = await conn.fetch("SELECT * FROM price_alerts ORDER BY seq")
        assert [(r["seq"], r["alert_id"], r["condition"], r["threshold"]) for r in rows] == [
            (4, "A1795400000123001", "above", 71000.0),
            (5, "A2", "change_pct", -3.0),
        ]
        assert rows[0]["price"] == 71000 and rows[0]["name"] == "삼성전자"
        assert rows[0]["message"].startswith("005930 at or above 71,000")
        assert rows[0]["fired_at"] is not None and rows[0]["created_at"] < rows[0]["fired_at"]
        assert await conn.fetchval("SELECT count(*) FROM dead_letters") == 0
        assert await conn.fetchval("SELECT count(*) FROM gaps") == 0
        assert await conn.fetchval("SELECT count(*) FROM quotes") == 1
        assert await conn.fetchval("SELECT last_seq FROM writer_runs WHERE run = $1", eng.run) == 5
    # every entry acknowledged, books included
    pending = rconn.xpending(keys.events, "writer")
    assert pending["pending"] == 0
