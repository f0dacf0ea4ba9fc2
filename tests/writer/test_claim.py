"""Pending entries first, then what dead consumers left; never what a live one holds."""

from __future__ import annotations

import asyncio
import time

import redis

from core.protocol import Keys
from core.writer import Writer

from .conftest import DbTarget, db_conn
from .helpers import Engine, quote, run_until_caught_up, settings, xadd


def stream_with_pending(r: redis.Redis, keys: Keys, consumer: str, n_pending: int, n_new: int):
    eng = Engine()
    r.xgroup_create(keys.events, "writer", id="0", mkstream=True)
    xadd(r, keys, [eng.env("quote", quote(price=70000 + k)) for k in range(n_pending)])
    got = r.xreadgroup("writer", consumer, {keys.events: ">"}, count=n_pending)
    assert len(got[0][1]) == n_pending  # read, never written or acknowledged: a crash
    xadd(r, keys, [eng.env("quote", quote(price=80000 + k)) for k in range(n_new)])
    return eng


async def seqs(db: DbTarget) -> list[int]:
    async with db_conn(db) as conn:
        return [r["seq"] for r in await conn.fetch("SELECT seq FROM quotes ORDER BY seq")]


async def test_own_pending_entries_are_written_first(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    stream_with_pending(rconn, keys, "w1", 10, 5)
    writer = Writer(settings(redis_url, keys, pg, consumer="w1"))
    await run_until_caught_up(writer, rconn, keys)
    assert await seqs(pg) == list(range(1, 16))
    assert writer.stats.gaps == 0


async def test_idle_entries_of_another_consumer_are_claimed(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    stream_with_pending(rconn, keys, "otherhost-1", 10, 5)
    time.sleep(0.2)
    writer = Writer(settings(redis_url, keys, pg, consumer="w2", claim_idle_ms=100))
    await run_until_caught_up(writer, rconn, keys)
    assert await seqs(pg) == list(range(1, 16))
    assert writer.stats.gaps == 0


async def test_entries_of_a_live_consumer_are_left_alone(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    stream_with_pending(rconn, keys, "otherhost-2", 10, 5)
    writer = Writer(settings(redis_url, keys, pg, consumer="w3", claim_idle_ms=600000))
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(writer.ready.wait(), 60)
        await asyncio.wait_for(writer.caught_up.wait(), 30)
        while writer.stats.rows < 5:
            await asyncio.sleep(0.05)
    finally:
        writer.stop()
        await asyncio.wait_for(task, 30)
    assert await seqs(pg) == list(range(11, 16))
    pending = rconn.xpending(keys.events, "writer")
    assert pending["pending"] == 10
    assert [c["name"] for c in pending["consumers"]] == [b"otherhost-2"]


async def test_a_gap_seen_early_shrinks_when_the_late_entries_come(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    """A writer that reads on while another consumer still holds entries 1-10 records them
    as a gap; when they are claimed later, the gap shrinks to what is really missing."""
    stream_with_pending(rconn, keys, "otherhost-3", 10, 5)
    held = rconn.xpending_range(keys.events, "writer", "-", "+", 10)
    # that consumer loses seqs 3 and 7 for good (acknowledged, never written)
    rconn.xack(keys.events, "writer", held[2]["message_id"], held[6]["message_id"])
    first = Writer(settings(redis_url, keys, pg, consumer="w4", claim_idle_ms=600000))
    task = asyncio.create_task(first.run())
    try:
        await asyncio.wait_for(first.ready.wait(), 60)
        while first.stats.rows < 5:
            await asyncio.sleep(0.05)
    finally:
        first.stop()
        await asyncio.wait_for(task, 30)
    async with db_conn(pg) as conn:
        before = await conn.fetch("SELECT first_missing_seq, last_missing_seq FROM gaps")
    assert [tuple(r) for r in before] == [(1, 10)]

    time.sleep(0.2)
    second = Writer(settings(redis_url, keys, pg, consumer="w5", claim_idle_ms=100))
    await run_until_caught_up(second, rconn, keys)
    async with db_conn(pg) as conn:
        after = await conn.fetch("SELECT first_missing_seq, last_missing_seq FROM gaps ORDER BY 1")
    assert [tuple(r) for r in after] == [(3, 3), (7, 7)]
    assert await seqs(pg) == [1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15]


async def test_a_lost_stream_and_group_are_made_again(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    """Redis restarted without its data: the group is gone. The writer makes it again (from id
    0) and goes on with what the engine adds next."""
    eng = Engine()
    writer = Writer(settings(redis_url, keys, pg))
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(writer.ready.wait(), 60)
        xadd(rconn, keys, [eng.env("quote", quote()) for _ in range(5)])
        while writer.stats.rows < 5:
            await asyncio.sleep(0.05)
        rconn.delete(keys.events)
        xadd(rconn, keys, [eng.env("quote", quote()) for _ in range(5)])
        for _ in range(200):
            if writer.stats.rows >= 10:
                break
            await asyncio.sleep(0.05)
    finally:
        writer.stop()
        await asyncio.wait_for(task, 30)
    assert await seqs(pg) == list(range(1, 11))
    assert rconn.xinfo_groups(keys.events)[0]["pending"] == 0
