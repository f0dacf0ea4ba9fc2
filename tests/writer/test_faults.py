"""The database or Redis goes away under load and comes back: nothing is lost, nothing is
acknowledged before it is written, the writer says what is wrong meanwhile."""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis

from core.devservers import PostgresServer, RedisServer, free_port
from core.protocol import Keys
from core.writer import Writer

from .conftest import DbTarget, db_conn
from .helpers import Engine, random_quotes, settings, xadd


async def wait_until(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def caught_up(r: redis.Redis, keys: Keys) -> bool:
    g = r.xinfo_groups(keys.events)[0]
    return g["pending"] == 0 and g["last-delivered-id"] == r.xrevrange(keys.events, count=1)[0][0]


@pytest.fixture
def own_postgres():
    """A PostgreSQL of this test alone, on a fixed port, that the test may stop and start."""
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="kc-writer-pg-")), port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
async def test_database_stopped_and_started_under_load(
    own_postgres: PostgresServer, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    rng = random.Random(7)
    eng = Engine()
    target = DbTarget("postgres", own_postgres.dsn, "w_" + uuid.uuid4().hex[:8])
    expected: set[tuple[str, int, int]] = set()

    def produce(n: int) -> None:
        envs = []
        for _ in range(n):
            items = random_quotes(rng, rng.randint(1, 5))
            env = eng.env("quotes", {"items": items})
            expected.update((env.run, env.seq, i) for i in range(len(items)))
            envs.append(env)
        xadd(rconn, keys, envs)

    writer = Writer(settings(redis_url, keys, target, batch_rows=200, max_backoff_s=0.5))
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(writer.ready.wait(), 60)
        produce(300)
        await wait_until(lambda: caught_up(rconn, keys), 60, "the first catch-up")

        await asyncio.to_thread(own_postgres.stop)
        produce(500)  # the engine goes on while the database is down
        await wait_until(lambda: writer.state == "db_down", 30, "the writer to notice")
        await asyncio.sleep(0.5)
        pend = rconn.xpending(keys.events, "writer")["pending"]
        assert pend > 0, "entries read while the database is down stay unacknowledged"
        health = {k.decode(): v.decode() for k, v in rconn.hgetall(keys.writer).items()}
        assert health["state"] == "db_down" and "database" in health["last_error"]
        assert int(health["lag_entries"]) > 0

        await asyncio.to_thread(own_postgres.start)
        produce(300)
        await wait_until(lambda: caught_up(rconn, keys), 60, "catching up after the database")
        assert writer.state == "running"
    finally:
        writer.stop()
        await asyncio.wait_for(task, 30)

    conn = await asyncpg.connect(target.dsn)
    try:
        await conn.execute(f"SET search_path TO {target.schema}")
        got = [tuple(r) for r in await conn.fetch("SELECT run, seq, i FROM quotes")]
    finally:
        await conn.close()
    assert len(got) == len(expected) and set(got) == expected
    assert writer.stats.db_errors >= 1


@pytest.mark.slow
async def test_redis_stopped_and_started(pg: DbTarget, keys: Keys, tmp_path: Path) -> None:
    """Redis with its append-only file, stopped and started on the same port."""
    server = RedisServer(tmp_path / "redis", port=free_port(), extra_config="appendonly yes\n")
    server.start()
    r = redis.Redis.from_url(server.url)
    eng = Engine()
    expected: set[tuple[str, int, int]] = set()

    def produce(n: int) -> None:
        envs = []
        for k in range(n):
            items = [{"code": "005930", "price": 70000 + k, "trade_qty": 1}] * 3
            env = eng.env("quotes", {"items": items})
            expected.update((env.run, env.seq, i) for i in range(3))
            envs.append(env)
        xadd(r, keys, envs)

    writer = Writer(settings(server.url, keys, pg, max_backoff_s=0.3))
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(writer.ready.wait(), 60)
        produce(200)
        await wait_until(lambda: caught_up(r, keys), 60, "the first catch-up")
        await asyncio.to_thread(server.stop)
        await wait_until(lambda: writer.state == "redis_down", 30, "the writer to notice")
        assert "redis" in writer.last_error
        await asyncio.to_thread(server.start)
        produce(200)
        await wait_until(lambda: caught_up(r, keys), 60, "catching up after Redis")
        await wait_until(lambda: r.hget(keys.writer, "state") == b"running", 10, "health")
    finally:
        writer.stop()
        await asyncio.wait_for(task, 30)
        r.close()
        server.stop()
    async with db_conn(pg) as conn:
        got = [tuple(x) for x in await conn.fetch("SELECT run, seq, i FROM quotes")]
    assert len(got) == len(expected) and set(got) == expected
    assert writer.stats.redis_errors >= 1
