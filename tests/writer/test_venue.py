"""Migration 003: orders and fills keep their venue (KRX when an older engine sent none)."""

from __future__ import annotations

import redis

from core.protocol import Keys
from core.writer import Writer

from .conftest import DbTarget, db_conn
from .helpers import Engine, run_until_caught_up, settings, xadd


def _order(order_id: str, **extra: object) -> dict:
    return {"order_id": order_id, "code": "005930", "side": "buy", "qty": 1, "price": 70000,
            "status": "filled", "filled_qty": 1, **extra}  # fmt: skip


def _fill(fill_id: str, order_id: str, **extra: object) -> dict:
    return {"fill_id": fill_id, "order_id": order_id, "code": "005930", "side": "buy",
            "qty": 1, "price": 70000, **extra}  # fmt: skip


async def test_orders_and_fills_store_their_venue(
    db: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    eng = Engine()
    envs = [
        eng.env("order", _order("N1", venue="NXT")),
        eng.env("fill", _fill("N1-1", "N1", venue="NXT")),
        eng.env("order", _order("K1")),  # an engine from before issue 12: no venue
        eng.env("fill", _fill("K1-1", "K1")),
        eng.env("order", _order("B1", venue="LSE")),  # not a venue: dead letter, said why
    ]
    xadd(rconn, keys, envs)
    writer = Writer(settings(redis_url, keys, db))
    await run_until_caught_up(writer, rconn, keys)
    async with db_conn(db) as conn:
        orders = await conn.fetch("SELECT order_id, venue FROM orders ORDER BY seq")
        assert [(r["order_id"], r["venue"]) for r in orders] == [("N1", "NXT"), ("K1", "KRX")]
        fills = await conn.fetch("SELECT fill_id, venue FROM fills ORDER BY seq")
        assert [(r["fill_id"], r["venue"]) for r in fills] == [("N1-1", "NXT"), ("K1-1", "KRX")]
        dead = await conn.fetch("SELECT * FROM dead_letters")
        assert len(dead) == 1 and "venue must be KRX, NXT or SOR" in str(dict(dead[0]))
