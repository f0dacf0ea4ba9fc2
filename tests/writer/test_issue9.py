"""Issue 9, writer defects 6, 7 and 9, against real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis

from core.protocol import Keys
from core.writer import Writer
from core.writer.consumer import DB_DOWN

from .conftest import DbTarget
from .helpers import Engine, quote, run_until_caught_up, settings, xadd


async def test_no_false_lag_after_a_trim_gap(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    """Defect 6: the stream trimmed past the writer, then the writer catches up: lag is 0 (it
    stayed at the trimmed count forever, from Redis 7.0's group ``lag``)."""
    eng = Engine()
    rconn.xgroup_create(keys.events, "writer", id="0", mkstream=True)
    xadd(rconn, keys, [eng.env("quote", quote()) for _ in range(40)])
    rconn.xtrim(keys.events, maxlen=5, approximate=False)  # 35 entries gone unread
    xadd(rconn, keys, [eng.env("quote", quote()) for _ in range(3)])
    writer = Writer(settings(redis_url, keys, pg))
    # Before: behind by the whole (trimmed) stream.
    writer._update_lag(rconn.xinfo_stream(keys.events), rconn.xinfo_groups(keys.events)[0])
    assert writer._lag_entries == 8
    await run_until_caught_up(writer, rconn, keys)
    group = rconn.xinfo_groups(keys.events)[0]
    writer._update_lag(rconn.xinfo_stream(keys.events), group)
    assert writer._lag_entries == 0, group
    h = {k.decode(): v.decode() for k, v in rconn.hgetall(keys.writer).items()}
    assert h["lag_entries"] == "0", h


def _with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    user = parts.username or "postgres"
    netloc = "{}:{}@{}".format(user, password, parts.netloc.rpartition("@")[2])
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def test_wrong_password_goes_to_db_down_with_the_reason(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    """Defect 7: a wrong database password is not a crash at start: ``db_down``, the reason
    in words in ``last_error`` (without the password), retried with backoff.

    The test server trusts local connections; one line put first in its ``pg_hba.conf`` makes
    it check the password of a role made for this test only (and is taken out again)."""
    role = "w9_" + keys.prefix.replace("-", "_")[-20:].lower()
    admin = await asyncpg.connect(pg.dsn)
    hba_path = Path(await admin.fetchval("SHOW hba_file"))
    before = hba_path.read_text()
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'right-pw'")
        hba_path.write_text(
            f"host all {role} 127.0.0.1/32 scram-sha-256\n"
            f"host all {role} ::1/128 scram-sha-256\n" + before
        )
        await admin.execute("SELECT pg_reload_conf()")
        base = _with_password(pg.dsn, "Wr0ng-pw")
        dsn = base.replace(urlsplit(base).username + ":", role + ":", 1)
        with pytest.raises(asyncpg.InvalidPasswordError):  # the server really checks
            await (await asyncpg.connect(dsn)).close()
        writer = Writer(settings(redis_url, keys, pg, dsn=dsn, max_backoff_s=0.2))
        task = asyncio.create_task(writer.run())
        h: dict[str, str] = {}
        try:
            for _ in range(400):
                h = {k.decode(): v.decode() for k, v in rconn.hgetall(keys.writer).items()}
                if task.done() or (h.get("state") == DB_DOWN and writer.stats.db_errors >= 2):
                    break
                await asyncio.sleep(0.05)
            assert not task.done(), task.exception() if task.done() else None
            assert writer.state == DB_DOWN and writer.stats.db_errors >= 2  # retried
            assert h["state"] == DB_DOWN
            assert "password authentication failed" in h["last_error"]
            assert "KC_DATABASE_PASSWORD" in h["last_error"] and "Wr0ng-pw" not in h["last_error"]
        finally:
            writer.stop()
            await asyncio.wait_for(task, 30)
    finally:
        hba_path.write_text(before)
        await admin.execute("SELECT pg_reload_conf()")
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def test_writer_commits_synchronously_whatever_the_server_says(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    """Defect 9: with ``synchronous_commit=off`` asked for (here through the DSN, as a
    server or role default would), the writer's own session runs with it on."""
    sep = "&" if "?" in pg.dsn else "?"
    dsn = pg.dsn + sep + "synchronous_commit=off"
    probe = await asyncpg.connect(dsn)
    try:
        assert await probe.fetchval("SHOW synchronous_commit") == "off"  # the setup works
    finally:
        await probe.close()
    eng = Engine()
    xadd(rconn, keys, [eng.env("quote", quote()) for _ in range(5)])
    writer = Writer(settings(redis_url, keys, pg, dsn=dsn))
    seen: list[str] = []
    original = writer._write_tx

    async def spy(conn, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(await conn.fetchval("SHOW synchronous_commit"))
        return await original(conn, *args, **kwargs)

    writer._write_tx = spy  # type: ignore[method-assign]
    await run_until_caught_up(writer, rconn, keys)
    assert seen and set(seen) == {"on"}
