"""The writer keeps ``trigger`` events (issue 14) in the ``triggers`` table (migration 005)."""

from __future__ import annotations

import json

import redis

from core.protocol import Keys
from core.writer import Writer

from .conftest import DbTarget, db_conn
from .helpers import Engine, run_until_caught_up, settings, xadd


def _trigger(status: str, **kw) -> dict:
    data = {
        "trigger_id": "tabc1",
        "code": "005930",
        "side": "sell",
        "qty": "position",
        "kind": "stop",
        "trigger_price": 68000,
        "level": 68000,
        "mark": 0,
        "oco": "bkt-b1",
        "status": status,
        "reason": "",
        "cmd_id": "",
        "order_id": "",
        "outcome": "",
    }
    data.update(kw)
    return data


async def test_trigger_events_land_in_the_audit_trail(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    eng = Engine()
    xadd(
        rconn,
        keys,
        [
            eng.env("trigger", _trigger("armed")),
            eng.env("trigger", _trigger("firing", cmd_id="trg-tabc1-1")),
            eng.env(
                "trigger",
                _trigger("fired", cmd_id="trg-tabc1-1", order_id="S000001", outcome="sent", qty=7),
            ),
            eng.env("trigger", _trigger("armed", qty=True)),  # poison: a bool is no quantity
        ],
    )
    writer = Writer(settings(redis_url, keys, pg))
    await run_until_caught_up(writer, rconn, keys)
    async with db_conn(pg) as conn:
        rows = await conn.fetch("SELECT * FROM triggers ORDER BY seq")
        assert [r["status"] for r in rows] == ["armed", "firing", "fired"]
        assert [r["qty"] for r in rows] == ["position", "position", "7"]
        assert rows[2]["order_id"] == "S000001" and rows[2]["cmd_id"] == "trg-tabc1-1"
        assert json.loads(rows[2]["data"])["outcome"] == "sent"
        assert rows[0]["oco"] == "bkt-b1"
        assert await conn.fetchval("SELECT count(*) FROM dead_letters") == 1
