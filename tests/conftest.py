"""Real servers for the whole test suite: Redis, PostgreSQL and TimescaleDB.

Session fixtures start each server once, on a free 127.0.0.1 port, the first time a
test asks for it (a run that never asks for PostgreSQL never starts it), and stop it
at the end of the session. See ``core/devservers.py`` for the servers themselves.

- ``redis_server``: a :class:`core.devservers.RedisServer` (``.url .host .port .binary
  .cli_binary``); ``redis_url``: its URL.
- ``redis_client`` / ``aredis``: a sync ``redis.Redis`` / a ``redis.asyncio.Redis``
  on it, ``decode_responses=True``, after FLUSHALL (function scope).
- ``postgres_server`` / ``postgres_dsn``: plain PostgreSQL, trust auth, user ``postgres``.
- ``timescale_server`` / ``timescale_dsn``: TimescaleDB in PGlite. ONE connection at a
  time (use one connection or a pool of size 1), no TLS (the DSN has
  ``sslmode=disable``), no COPY FROM STDIN.

Environment overrides, to test against servers started elsewhere: ``REDIS_URL`` (the
tests FLUSHALL it!), ``DATABASE_URL``, ``TIMESCALE_URL``. ``KC_TEST_POSTGRES_BINDIR``
picks the PostgreSQL build (a directory holding ``initdb`` and ``postgres``).

A server that cannot start fails the tests that need it, with the reason; nothing is
skipped silently.
"""

import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import AsyncIterator, Iterator, Optional

import pytest
import redis
import redis.asyncio

from core.devservers import (
    DevServerError,
    PostgresServer,
    RedisServer,
    TimescaleServer,
    find_redis_server,
)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


class ExternalRedis:
    """The attributes of a :class:`RedisServer`, for a server given by ``REDIS_URL``."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.password = urllib.parse.unquote(parts.password) if parts.password else None
        self.binary: Optional[str] = find_redis_server()
        self.cli_binary: Optional[str] = shutil.which("redis-cli")

    def __repr__(self) -> str:
        return f"<ExternalRedis {self.host}:{self.port}>"


class ExternalPostgres:
    """The attributes tests use of a PostgreSQL/Timescale server given by a URL."""

    def __init__(self, dsn: str) -> None:
        parts = urllib.parse.urlsplit(dsn)
        self.dsn = self.url = dsn
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 5432

    def __repr__(self) -> str:
        return f"<ExternalPostgres {self.host}:{self.port}>"


def _start(server, what: str):
    try:
        return server.start()
    except DevServerError as exc:
        problem = str(exc)
    pytest.fail(f"cannot start {what} for the tests:\n{problem}", pytrace=False)


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The session's Redis: a started RedisServer, or ExternalRedis for ``REDIS_URL``."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield ExternalRedis(url)
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        _start(server, "Redis")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A sync client (``decode_responses=True``) on an empty Redis."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio client (``decode_responses=True``) on an empty Redis."""
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()


# --------------------------------------------------------------------------------------------
# PostgreSQL and TimescaleDB
# --------------------------------------------------------------------------------------------


def _postgres_data_dir(tmp_path_factory: pytest.TempPathFactory) -> "tuple[Path, bool]":
    """(directory, remove it at the end?)."""
    if not PostgresServer.runs_as_other_user():
        return tmp_path_factory.mktemp("postgres"), False
    # As root without user namespaces, PostgreSQL runs as another user, who cannot enter
    # pytest's private /tmp/pytest-of-root: use a directory under /tmp.
    return Path(tempfile.mkdtemp(prefix="kc-test-postgres-")), True


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The session's plain PostgreSQL (or ExternalPostgres for ``DATABASE_URL``)."""
    dsn = os.environ.get("DATABASE_URL")
    if dsn:
        yield ExternalPostgres(dsn)
        return
    data_dir, remove = _postgres_data_dir(tmp_path_factory)
    bindir = os.environ.get("KC_TEST_POSTGRES_BINDIR")
    server = PostgresServer(data_dir, bindir=Path(bindir) if bindir else None)
    try:
        _start(server, "PostgreSQL")
        yield server
    finally:
        server.stop()
        if remove:
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server) -> str:
    """``postgresql://postgres@127.0.0.1:PORT/postgres`` (trust auth)."""
    return postgres_server.dsn


@pytest.fixture(scope="session")
def timescale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The session's TimescaleDB (PGlite): ONE connection at a time, no TLS, no COPY FROM
    STDIN (see core.devservers.TimescaleServer). ExternalPostgres for ``TIMESCALE_URL``."""
    dsn = os.environ.get("TIMESCALE_URL")
    if dsn:
        yield ExternalPostgres(dsn)
        return
    server = TimescaleServer(tmp_path_factory.mktemp("timescale"))
    try:
        _start(server, "TimescaleDB (PGlite)")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def timescale_dsn(timescale_server) -> str:
    """``postgresql://postgres:postgres@127.0.0.1:PORT/postgres?sslmode=disable``."""
    return timescale_server.dsn
