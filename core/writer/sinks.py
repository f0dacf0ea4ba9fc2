"""How rows get into the tables: COPY into a staging table, or ``INSERT … SELECT FROM unnest``.

Both end in ``INSERT … ON CONFLICT DO NOTHING`` on the table's key, so a batch written twice
lands once. Which one is used is decided by :func:`probe_copy`, by capability:

- a server that identifies itself as a WebAssembly build (PGlite: ``version()`` says
  ``Emscripten``) is known to lose the whole backend on ``COPY FROM STDIN``, so it is never
  tried there;
- anywhere else a real ``COPY`` of one row into a temporary table, on a throwaway connection,
  decides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import asyncpg

from .fastpath import CopyRows
from .tables import Table

log = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class Sink(Protocol):
    name: str
    #: takes rows already in the binary COPY format (:meth:`write_copy`)
    binary_copy: bool

    async def write(self, conn: asyncpg.Connection, table: Table, rows: Sequence[tuple]) -> None:
        """Insert ``rows`` (in ``table.columns`` order), skipping ones already there. Runs
        inside the caller's transaction."""

    async def write_copy(self, conn: asyncpg.Connection, rows: CopyRows) -> None:
        """Like :meth:`write`, for rows already encoded (only when :attr:`binary_copy`)."""

    def reset(self) -> None:
        """Forget per-connection state (called after a reconnect)."""


def _conflict(table: Table) -> str:
    return "ON CONFLICT ({}) DO NOTHING".format(", ".join(table.key))


class UnnestSink:
    """One ``INSERT … SELECT * FROM unnest($1::t1[], $2::t2[], …)`` per table and batch: one
    round trip, one prepared statement per table, works on every server (PGlite included)."""

    name = "unnest"
    binary_copy = False

    def __init__(self) -> None:
        self._sql: dict[str, str] = {}

    def reset(self) -> None:
        pass

    def sql(self, table: Table) -> str:
        text = self._sql.get(table.name)
        if text is None:
            cols = ", ".join(table.column_names)
            args = ", ".join(f"${n}::{t}[]" for n, (_, t) in enumerate(table.columns, 1))
            text = f"INSERT INTO {table.name} ({cols}) SELECT * FROM unnest({args}) " + _conflict(
                table
            )
            self._sql[table.name] = text
        return text

    async def write(self, conn: asyncpg.Connection, table: Table, rows: Sequence[tuple]) -> None:
        if not rows:
            return
        columns = [list(c) for c in zip(*rows)]
        await conn.execute(self.sql(table), *columns)

    async def write_copy(self, conn: asyncpg.Connection, rows: CopyRows) -> None:
        raise TypeError("the unnest sink takes rows as tuples, not binary COPY data")


class CopySink:
    """Binary ``COPY`` straight into the table; when a row is already there, ``COPY`` into a
    temporary staging table (emptied at commit) and one ``INSERT … SELECT … ON CONFLICT DO
    NOTHING`` from it. The fastest path where the server supports COPY."""

    name = "copy"
    binary_copy = True

    def __init__(self) -> None:
        self._staged: set[tuple[int, str]] = set()

    def reset(self) -> None:
        self._staged.clear()

    async def _stage(self, conn: asyncpg.Connection, table: Table) -> str:
        stage = f"_kc_stage_{table.name}"
        key = (id(conn), table.name)
        if key not in self._staged:
            cols = ", ".join(f"{c} {t}" for c, t in table.columns)
            await conn.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ({cols}) ON COMMIT DELETE ROWS"
            )
            self._staged.add(key)
        return stage

    async def write(self, conn: asyncpg.Connection, table: Table, rows: Sequence[tuple]) -> None:
        if not rows:
            return
        columns = list(table.column_names)

        async def copy(into: str) -> None:
            await conn.copy_records_to_table(into, records=rows, columns=columns)

        await self._write(conn, table, copy)

    async def write_copy(self, conn: asyncpg.Connection, rows: CopyRows) -> None:
        if not rows.count:
            return
        data = rows.payload()
        columns = list(rows.columns)

        async def copy(into: str) -> None:
            await conn.copy_to_table(into, source=data, columns=columns, format="binary")

        await self._write(conn, rows.table, copy)

    async def _write(
        self, conn: asyncpg.Connection, table: Table, copy: Callable[[str], Awaitable[None]]
    ) -> None:
        # Usually none of the rows is there yet: COPY straight into the table, in a savepoint.
        # If one is (a batch written again after a crash), the COPY fails as a whole, the
        # savepoint undoes it, and the rows go through the staging table and ON CONFLICT.
        try:
            async with conn.transaction():
                await copy(table.name)
            return
        except asyncpg.UniqueViolationError:
            pass
        stage = await self._stage(conn, table)
        await copy(stage)
        cols = ", ".join(table.column_names)
        await conn.execute(
            f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {stage} " + _conflict(table)
        )
        # ON COMMIT DELETE ROWS empties it at commit; a second write of the same table in the
        # same transaction must not see these rows again.
        await conn.execute(f"TRUNCATE {stage}")


WASM_MARKERS = ("emscripten", "wasm", "pglite")


async def is_wasm_build(conn: asyncpg.Connection) -> bool:
    """True for PostgreSQL compiled to WebAssembly (PGlite), which cannot do COPY FROM STDIN."""
    version = (await conn.fetchval("SELECT version()") or "").lower()
    return any(m in version for m in WASM_MARKERS)


async def probe_copy(connect: Connect, timeout: float = 5.0) -> tuple[bool, str]:
    """Can this server take ``COPY FROM STDIN``? Returns (answer, why). Uses its own
    connection, closed afterwards, so a failure cannot hurt the writer's."""
    conn = await connect()
    try:
        if await is_wasm_build(conn):
            return False, "the server is a WebAssembly build (PGlite): no COPY FROM STDIN"
        try:
            await conn.execute("CREATE TEMPORARY TABLE _kc_copy_probe (a int8, b text)")
            await asyncio.wait_for(
                conn.copy_records_to_table("_kc_copy_probe", records=[(1, "x")]), timeout
            )
            n = await conn.fetchval("SELECT count(*) FROM _kc_copy_probe")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError) as e:
            return False, f"COPY FROM STDIN failed on this server ({type(e).__name__}: {e})"
        if n != 1:
            return False, f"COPY FROM STDIN stored {n} rows instead of 1"
        return True, "COPY FROM STDIN works"
    finally:
        await close_quietly(conn)


async def choose_sink(connect: Connect, prefer: str = "auto") -> Sink:
    """``prefer``: ``auto`` (probe), ``copy`` or ``unnest``."""
    if prefer == "unnest":
        return UnnestSink()
    ok, why = await probe_copy(connect)
    if prefer == "copy" and not ok:
        raise RuntimeError(f"COPY was asked for, but {why}")
    log.info("writer: insert method %s (%s)", "copy" if ok else "unnest", why)
    return CopySink() if ok else UnnestSink()


async def close_quietly(conn: asyncpg.Connection | None, timeout: float = 2.0) -> None:
    """Close a connection, never hanging: a dead server gets a hard close after ``timeout``."""
    if conn is None or conn.is_closed():
        return
    try:
        await asyncio.wait_for(conn.close(), timeout)
    except Exception:  # noqa: BLE001 - closing a broken connection may fail in many ways
        conn.terminate()
