"""Fixtures for the writer's tests: a database target (plain PostgreSQL or TimescaleDB, one
fresh schema per test) and a unique Redis key prefix per test.

The TimescaleDB server (PGlite) takes ONE connection at a time, so a test never holds a
connection while a writer runs: :func:`db_conn` opens one, uses it, and closes it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import pytest
import redis

from core.protocol import Keys
from core.writer.schema import quote_ident


@dataclass(frozen=True)
class DbTarget:
    kind: str  # "postgres" or "timescale"
    dsn: str
    schema: str

    @property
    def timescale(self) -> bool:
        return self.kind == "timescale"


@contextlib.asynccontextmanager
async def db_conn(target: DbTarget) -> AsyncIterator[asyncpg.Connection]:
    """One connection with the test's schema first on the search path; closed on exit."""
    conn = await asyncpg.connect(target.dsn, timeout=30)
    try:
        await conn.execute(f"SET search_path TO {quote_ident(target.schema)}, public")
        yield conn
    finally:
        try:
            await conn.close(timeout=5)
        except Exception:  # noqa: BLE001
            conn.terminate()


async def _drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
    finally:
        await conn.close(timeout=5)


@pytest.fixture(params=["postgres", "timescale"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[DbTarget]:
    """A fresh schema on plain PostgreSQL, then on TimescaleDB (PGlite)."""
    dsn = request.getfixturevalue(
        "postgres_dsn" if request.param == "postgres" else "timescale_dsn"
    )
    target = DbTarget(request.param, dsn, "w_" + uuid.uuid4().hex[:10])
    yield target
    await _drop_schema(dsn, target.schema)


@pytest.fixture
async def pg(postgres_dsn: str) -> AsyncIterator[DbTarget]:
    """A fresh schema on plain PostgreSQL only."""
    target = DbTarget("postgres", postgres_dsn, "w_" + uuid.uuid4().hex[:10])
    yield target
    await _drop_schema(postgres_dsn, target.schema)


@pytest.fixture
async def ts(timescale_dsn: str) -> AsyncIterator[DbTarget]:
    """A fresh schema on TimescaleDB (PGlite) only."""
    target = DbTarget("timescale", timescale_dsn, "w_" + uuid.uuid4().hex[:10])
    yield target
    await _drop_schema(timescale_dsn, target.schema)


@pytest.fixture
def keys() -> Keys:
    """A Redis key prefix of this test alone."""
    return Keys("wt" + uuid.uuid4().hex[:8])


@pytest.fixture
def rconn(redis_url: str, keys: Keys) -> Iterator[redis.Redis]:
    """A sync client (bytes, as the writer reads them); deletes this test's keys after."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        with contextlib.suppress(redis.RedisError):
            client.delete(keys.events, keys.writer)
        client.close()


os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
