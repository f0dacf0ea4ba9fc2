"""Schema migrations: the numbered ``migrations/*.sql`` files, applied once each, in order.

Applied versions are recorded in ``kc_schema_migrations`` (version, name, checksum, when), in
the same transaction as the migration itself and under an advisory lock, so two writers
starting together, or one started twice, apply each file exactly once. Re-running is a no-op.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATIONS_TABLE = "kc_schema_migrations"
#: Key of the advisory lock that serialises migrations (any constant shared by all writers).
LOCK_KEY = 0x6B63_5752  # "kcWR"

_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()[:16]


class SchemaError(RuntimeError):
    """The database holds a schema this writer cannot work with."""


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files, by version; refuses two files with one version."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise SchemaError(f"{path}: migration files are named NNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise SchemaError(f"{path}: version {version} is used twice")
        found[version] = Migration(version, m.group(2), path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def use_schema(conn: asyncpg.Connection, schema: str) -> None:
    """Create ``schema`` if needed and put it first on the search path (``public`` stays second,
    where the timescaledb extension's functions live)."""
    if schema and schema != "public":
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        await conn.execute(f"SET search_path TO {quote_ident(schema)}, public")


async def applied_versions(conn: asyncpg.Connection) -> dict[int, str]:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", MIGRATIONS_TABLE)
    if not exists:
        return {}
    rows = await conn.fetch(f"SELECT version, checksum FROM {MIGRATIONS_TABLE}")
    return {r["version"]: r["checksum"] for r in rows}


async def migrate(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply what is missing; returns the versions applied now (empty when up to date)."""
    migrations = load_migrations() if migrations is None else migrations
    done: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
                    version     integer     PRIMARY KEY,
                    name        text        NOT NULL,
                    checksum    text        NOT NULL,
                    applied_at  timestamptz NOT NULL DEFAULT now()
                )"""
        )
        have = await applied_versions(conn)
        newest = max((m.version for m in migrations), default=0)
        beyond = [v for v in have if v > newest]
        if beyond:
            raise SchemaError(
                f"the database has schema version {max(beyond)}, newer than this writer knows "
                f"({newest}); upgrade the writer"
            )
        for m in migrations:
            if m.version in have:
                if have[m.version] != m.checksum:
                    log.warning(
                        "migration %03d_%s changed since it was applied (checksum %s, now %s); "
                        "not applying it again",
                        m.version,
                        m.name,
                        have[m.version],
                        m.checksum,
                    )
                continue
            log.info("applying migration %03d_%s", m.version, m.name)
            await conn.execute(m.sql)
            await conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum) VALUES ($1, $2, $3)",
                m.version,
                m.name,
                m.checksum,
            )
            done.append(m.version)
    return done
