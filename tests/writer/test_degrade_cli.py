"""The Apache-only TimescaleDB path (acted out by its capability check) and the command line."""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from core import history
from core.protocol import Keys
from core.writer import Writer, timescale

from .conftest import DbTarget, db_conn
from .helpers import Engine, quote, run_until_caught_up, settings, xadd

ROOT = Path(__file__).resolve().parents[2]


async def apache_only(conn) -> timescale.Features:
    """What :func:`timescale.detect` says on the ``-oss`` build: the extension, Apache license."""
    f = await timescale.detect(conn)
    f.license = "apache"
    return f


async def test_apache_only_build_degrades_and_works(
    ts: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    eng = Engine()
    envs = [eng.env("quote", quote(price=70000 + 100 * k)) for k in range(5)]
    xadd(rconn, keys, envs)
    writer = Writer(settings(redis_url, keys, ts), features_probe=apache_only)
    with caplog.at_level(logging.WARNING, logger="core.writer.timescale"):
        await run_until_caught_up(writer, rconn, keys)
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "apache-licensed build" in warning
    for consequence in ("no compression", "no retention", "no continuous aggregates"):
        assert consequence in warning
    f = writer.features
    assert f.hypertables and not (f.compression or f.retention or f.continuous_aggregates)
    assert "hypertables" in rconn.hget(keys.writer, "database").decode()

    async with db_conn(ts) as conn:
        hypertables = await conn.fetch(
            "SELECT hypertable_name FROM timescaledb_information.hypertables "
            "WHERE hypertable_schema = current_schema()"
        )
        assert {r["hypertable_name"] for r in hypertables} == set(timescale.HYPERTABLES)
        assert not await history.has_candle_views(conn)
        lo = datetime.datetime.fromtimestamp(envs[0].ts / 1000 - 3600, datetime.timezone.utc)
        hi = lo + datetime.timedelta(hours=2)
        bars = await history.candles(conn, "005930", "1m", lo, hi)  # from quotes
    assert len(bars) == 1
    assert (bars[0]["open"], bars[0]["high"], bars[0]["low"], bars[0]["close"]) == (
        70000,
        70400,
        70000,
        70400,
    )


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core.writer", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_names_the_flags() -> None:
    done = _run("--help")
    assert done.returncode == 0
    for flag in ("--redis", "--dsn", "--config", "--prefix", "--batch-rows", "--batch-ms"):
        assert flag in done.stdout


def test_no_database_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[database]\nurl = ''\n")
    done = _run("--config", str(cfg), env={"KC_DATABASE_URL": ""})
    assert done.returncode == 2 and "no database" in done.stderr


def test_a_bad_config_value_names_key_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[writer]\nbatch_rows = -1\n")
    done = _run("--config", str(cfg), "--dsn", "postgresql://x@127.0.0.1:1/x")
    assert done.returncode == 2
    assert "batch_rows" in done.stderr and str(cfg) in done.stderr


async def test_passwords_stay_out_of_the_log(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # A DSN with a password that the server does not check (trust auth), and a dead Redis
    # port, so the writer logs both URLs and an error.
    dsn = pg.dsn.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pw@")
    s = settings("redis://:r3dis-pw@127.0.0.1:1/0", keys, pg, dsn=dsn, max_backoff_s=0.1)
    writer = Writer(s)
    with caplog.at_level(logging.DEBUG):
        task = asyncio.create_task(writer.run())
        for _ in range(100):
            if writer.last_error:
                break
            await asyncio.sleep(0.05)
        writer.stop()
        await asyncio.wait_for(task, 30)
    text = caplog.text + writer.last_error
    assert writer.last_error.startswith("redis:")
    assert "s3cret-pw" not in text and "r3dis-pw" not in text


def test_settings_from_config(tmp_path: Path) -> None:
    from core.config import load_config
    from core.writer import WriterSettings

    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(
        "[redis]\nprefix = 'zz'\n[database]\nurl = 'postgresql://kc@db:5432/kc'\n"
        "[writer]\nbatch_rows = 123\nbatch_ms = 45\nquotes_retention_days = 0\n"
    )
    cfg = load_config(cfg_file, environ={"KC_DATABASE_PASSWORD": "pw"})
    s = WriterSettings.from_config(cfg, db_schema="x", consumer=None)
    assert (s.prefix, s.batch_rows, s.batch_ms, s.retention_days) == ("zz", 123, 45, 0)
    assert s.dsn == "postgresql://kc:pw@db:5432/kc" and s.db_schema == "x"
    assert s.consumer == ""  # None overrides are ignored: host-pid is used
