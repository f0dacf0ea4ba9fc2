"""Schema migrations and TimescaleDB features, on plain PostgreSQL and on TimescaleDB."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.writer import schema, timescale

from .conftest import DbTarget, db_conn

EVENT_TABLES = {
    "quotes",
    "orders",
    "fills",
    "positions",
    "account",
    "surge_alerts",
    "commands",
    "engine_logs",
    "engine_status",
    "dead_letters",
    "gaps",
    "writer_runs",
    "kc_schema_migrations",
}


async def _tables(conn) -> set[str]:
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    )
    return {r["table_name"] for r in rows}


async def _columns(conn) -> list[tuple]:
    rows = await conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    )
    return [tuple(r) for r in rows]


async def test_migrations_apply_once_and_twice_is_a_no_op(db: DbTarget) -> None:
    async with db_conn(db) as conn:
        first = await schema.migrate(conn)
        assert first == [m.version for m in schema.load_migrations()]
        tables, columns = await _tables(conn), await _columns(conn)
        assert tables >= EVENT_TABLES
        second = await schema.migrate(conn)
        assert second == []
        assert await _tables(conn) == tables
        assert await _columns(conn) == columns
        recorded = await conn.fetch("SELECT version, checksum FROM kc_schema_migrations")
        assert {r["version"]: r["checksum"] for r in recorded} == {
            m.version: m.checksum for m in schema.load_migrations()
        }


async def test_a_newer_database_is_refused(pg: DbTarget) -> None:
    async with db_conn(pg) as conn:
        await schema.use_schema(conn, pg.schema)
        await schema.migrate(conn)
        await conn.execute(
            "INSERT INTO kc_schema_migrations (version, name, checksum) VALUES (999, 'x', 'y')"
        )
        with pytest.raises(schema.SchemaError, match="newer than this writer"):
            await schema.migrate(conn)


def test_migration_files_are_numbered(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 1")
    (tmp_path / "002_b.sql").write_text("SELECT 2")
    assert [m.version for m in schema.load_migrations(tmp_path)] == [1, 2]
    (tmp_path / "two.sql").write_text("SELECT 3")
    with pytest.raises(schema.SchemaError, match="NNN_name.sql"):
        schema.load_migrations(tmp_path)
    (tmp_path / "two.sql").unlink()
    (tmp_path / "0002_c.sql").write_text("SELECT 4")
    with pytest.raises(schema.SchemaError, match="used twice"):
        schema.load_migrations(tmp_path)


async def test_plain_postgresql_degrades_with_a_warning(
    pg: DbTarget, caplog: pytest.LogCaptureFixture
) -> None:
    async with db_conn(pg) as conn:
        await schema.migrate(conn)
        with caplog.at_level(logging.WARNING, logger="core.writer.timescale"):
            f = await timescale.apply(conn, await timescale.detect(conn))
    assert not f.extension and not f.hypertables and not f.continuous_aggregates
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "TimescaleDB is not installed" in warning and "candles are computed" in warning


async def _timescale_objects(conn) -> dict[str, object]:
    hypertables = await conn.fetch(
        "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables "
        "WHERE hypertable_schema = current_schema()"
    )
    jobs = await conn.fetch(
        "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs "
        "WHERE hypertable_schema = current_schema() ORDER BY job_id"
    )
    caggs = await conn.fetch(
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates "
        "WHERE view_schema = current_schema()"
    )
    dims = await conn.fetch(
        "SELECT hypertable_name, column_name, time_interval FROM timescaledb_information.dimensions "
        "WHERE hypertable_schema = current_schema()"
    )
    return {
        "hypertables": {r["hypertable_name"]: r["compression_enabled"] for r in hypertables},
        "jobs": [(r["proc_name"], r["hypertable_name"]) for r in jobs],
        "caggs": {r["view_name"]: r["materialized_only"] for r in caggs},
        "dims": {r["hypertable_name"]: (r["column_name"], r["time_interval"]) for r in dims},
    }


async def test_timescale_features_are_set_up_once(ts: DbTarget) -> None:
    async with db_conn(ts) as conn:
        version = await conn.fetchval(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        )
        assert version, "the TimescaleDB server has no timescaledb extension"
        await schema.migrate(conn)
        f = await timescale.apply(conn, await timescale.detect(conn), 30, 7)
        assert f.license == "timescale"
        assert f.hypertables and f.compression and f.retention and f.continuous_aggregates
        objs = await _timescale_objects(conn)
        assert set(objs["hypertables"]) == set(timescale.HYPERTABLES)
        assert objs["hypertables"]["quotes"] is True  # compression enabled
        assert objs["dims"]["quotes"][0] == "ts"
        assert objs["dims"]["quotes"][1].days == 1
        assert set(objs["caggs"]) == {"candles_1m", "candles_1d"}
        assert not any(objs["caggs"].values())  # real-time: recent quotes show at once
        procs = [p for p, _ in objs["jobs"]]
        assert procs.count("policy_compression") == 1
        assert procs.count("policy_retention") == 1
        assert procs.count("policy_refresh_continuous_aggregate") == 2
        retention = await conn.fetchval(
            "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema()"
        )
        assert retention == "30 days"
        # again, as at every start: nothing changes
        await schema.migrate(conn)
        await timescale.apply(conn, await timescale.detect(conn), 30, 7)
        assert await _timescale_objects(conn) == objs
        # a new retention period in the config replaces the policy
        await timescale.apply(conn, await timescale.detect(conn), 90, 7)
        retention = await conn.fetchval(
            "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema()"
        )
        assert retention == "90 days"
