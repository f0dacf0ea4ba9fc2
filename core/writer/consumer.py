"""The writer: ``P:events`` (consumer group ``writer``) → PostgreSQL/TimescaleDB, exactly once.

The loop, and why nothing is lost or doubled:

1. On start, finish this consumer's own pending entries (``XREADGROUP … 0``), then take over
   what dead consumers left: at once from consumers of this host whose process is gone, and
   by ``XAUTOCLAIM`` (entries idle longer than ``claim_idle_ms``) from any other, again every
   ``claim_every_s``.
2. Read new entries (``>``) into a :class:`Batch` until it holds ``batch_rows`` rows or is
   ``batch_ms`` old.
3. Write the batch in ONE transaction: the rows (idempotent on the envelope identity), dead
   letters, gaps and the per-run highest seq.
4. ``XACK`` only after the commit. A crash between 3 and 4 redelivers entries that are
   already stored; the inserts skip them.

Faults: a database error that is not about the data (connection lost, server restarting)
keeps the batch, retries with backoff and acknowledges nothing until it is written. A data
error (a value PostgreSQL refuses) writes the entries one by one and sends the bad ones to
``dead_letters``. Redis going away: the batch in hand is still written, acknowledged when
Redis is back; the connection is re-established with backoff.

Health goes to the ``P:writer`` hash every ``health_every_s``: state, lag (entries, seconds),
rows/s, last error, last commit time, consumer name, gaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable

import asyncpg
import redis.asyncio as aredis
from redis import exceptions as rexc

from core.config import Config, redact
from core.protocol import Keys
from core.protocol.names import WRITER_GROUP

from . import schema, timescale
from .batching import Batch, BatchPolicy, DeadLetter
from .gaps import Gap, seq_gaps, stream_id_key, trimmed_gap
from .sinks import Sink, choose_sink, close_quietly
from .tables import Poison

log = logging.getLogger("core.writer")

GROUP = WRITER_GROUP

#: Entries asked for by the first read, before the rows an entry brings are known.
FIRST_READ_COUNT = 50

#: Stream entries decoded between two yields to the event loop (about 1 ms of work).
DECODE_SLICE = 8

# Writer states (field ``state`` of ``P:writer``).
STARTING = "starting"
RECOVERING = "recovering"
RUNNING = "running"
CATCHING_UP = "catching_up"
DB_DOWN = "db_down"
REDIS_DOWN = "redis_down"
STOPPED = "stopped"

#: Errors that mean "the database is not reachable right now" (retry), not "bad data".
DB_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.OperatorInterventionError,
    # A wrong password or user, or a database that does not exist: the writer waits in
    # db_down with the reason in last_error and retries with backoff (someone may fix the
    # secret or create the database), instead of crashing at start with a traceback.
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidCatalogNameError,
)
#: What to tell the operator after the server's own words, for errors they must fix.
_DB_HINTS: tuple[tuple[type[BaseException], str], ...] = (
    (
        asyncpg.InvalidAuthorizationSpecificationError,
        "check the user in [database] url and the password in KC_DATABASE_PASSWORD or "
        "[database] password_file",
    ),
    (asyncpg.exceptions.InvalidCatalogNameError, "check the database name in [database] url"),
)
#: Errors about the data itself: write the entries one by one, dead-letter the bad ones.
DB_DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    OverflowError,
)
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    OSError,
)


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _text(v: Any) -> str:
    return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)


def local_consumer_is_dead(name: str, me: str) -> bool:
    """True for a consumer named ``<this host>-<pid>`` whose process no longer exists."""
    host, _, pid = name.rpartition("-")
    if name == me or host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    return False


@dataclass
class WriterSettings:
    """Everything the writer needs; :meth:`from_config` fills it from ``config.toml``."""

    redis_url: str
    dsn: str
    prefix: str = "kc"
    consumer: str = ""
    batch_rows: int = 5000
    batch_ms: int = 100
    retention_days: int = 365
    compress_after_days: int = 7
    #: database schema for all tables ("public" normally; tests use one per test)
    db_schema: str = "public"
    #: "auto" (probe the server), "copy" or "unnest"
    sink: str = "auto"
    #: entries per XREADGROUP call
    read_count: int = 2000
    #: XAUTOCLAIM entries idle this long (another consumer died with them)
    claim_idle_ms: int = 30000
    claim_every_s: float = 30.0
    health_every_s: float = 1.0
    #: longest XREADGROUP BLOCK while idle (ms)
    block_ms: int = 500
    max_backoff_s: float = 5.0
    connect_timeout_s: float = 5.0

    @classmethod
    def from_config(cls, cfg: Config, **overrides: Any) -> WriterSettings:
        w = cfg.writer
        s = cls(
            redis_url=cfg.redis_url_with_auth(),
            dsn=cfg.database_url_with_auth(),
            prefix=cfg.redis.prefix,
            consumer=w.consumer,
            batch_rows=w.batch_rows,
            batch_ms=w.batch_ms,
            retention_days=w.quotes_retention_days,
            compress_after_days=w.compress_after_days,
        )
        return replace(s, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class WriterStats:
    rows: int = 0
    envelopes: int = 0
    entries: int = 0
    batches: int = 0
    dead_letters: int = 0
    gaps: int = 0
    db_errors: int = 0
    redis_errors: int = 0
    started: float = field(default_factory=time.monotonic)


class Backoff:
    """0.1 s, 0.2 s, 0.4 s … up to ``cap``; :meth:`reset` after a success."""

    def __init__(self, cap: float, first: float = 0.1) -> None:
        self.cap = cap
        self.first = first
        self.next = first

    def reset(self) -> None:
        self.next = self.first

    def take(self) -> float:
        delay = self.next
        self.next = min(self.cap, self.next * 2)
        return delay


Probe = Callable[[asyncpg.Connection], Awaitable[timescale.Features]]


class Writer:
    """The stream consumer. ``await Writer(settings).run()`` until :meth:`stop` (or cancel).

    ``features_probe`` replaces :func:`timescale.detect` (tests use it to act out an
    Apache-only TimescaleDB).
    """

    def __init__(self, settings: WriterSettings, features_probe: Probe | None = None) -> None:
        if not settings.dsn:
            raise ValueError("the writer needs a database DSN ([database] url or --dsn)")
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self.consumer = settings.consumer or default_consumer_name()
        self.policy = BatchPolicy(settings.batch_rows, settings.batch_ms)
        self.stats = WriterStats()
        self.state = STARTING
        self.last_error = ""
        self.last_error_ms = 0
        self.last_commit_ms = 0
        self.features: timescale.Features | None = None
        self.sink: Sink | None = None
        self._probe = features_probe or timescale.detect
        self._stop = asyncio.Event()
        self._redis: aredis.Redis | None = None
        self._db: asyncpg.Connection | None = None
        self._known_seq: dict[str, int] = {}
        self._gaps_to_write: list[Gap] = []
        self._unacked: list[str] = []
        self._last_claim = 0.0
        self._trim_checked = 0.0
        self._health_at = 0.0
        self._health_rows = 0
        self._health_t = time.monotonic()
        self._rows_per_s = 0.0
        self._lag_entries: int | None = None
        self._lag_s: float | None = None
        self._db_backoff = Backoff(settings.max_backoff_s)
        self._redis_backoff = Backoff(settings.max_backoff_s)
        self.ready = asyncio.Event()  # set once the schema is in place and recovery is done
        self.caught_up = asyncio.Event()  # set whenever a read finds nothing new

    # --- public ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish: the batch in hand is written and acknowledged first."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        log.info(
            "writer %s: %s → %s (group %s)",
            self.consumer,
            redact(self.settings.redis_url),
            redact(self.settings.dsn),
            GROUP,
        )
        self._redis = aredis.from_url(
            self.settings.redis_url,
            socket_connect_timeout=self.settings.connect_timeout_s,
            health_check_interval=10,
        )
        try:
            await self._setup_database()
            if self.stopping:
                return
            await self._with_redis(self._ensure_group)
            self.state = RECOVERING
            await self._publish_health(force=True)
            await self._recover()
            self.ready.set()
            # One batch is written (and then acknowledged) while the next one is read and
            # decoded: the database works on one core while Python works on the other.
            inflight: asyncio.Task[None] | None = None
            try:
                while not self.stopping:
                    batch = self._new_batch()
                    await self._fill(batch)
                    if inflight is not None:
                        await inflight
                        inflight = None
                    if not batch.empty or self._gaps_to_write:
                        inflight = asyncio.create_task(self._commit_and_ack(batch))
                    if time.monotonic() - self._last_claim >= self.settings.claim_every_s:
                        if inflight is not None:
                            await inflight
                            inflight = None
                        await self._claim_idle()
                    await self._publish_health()
            finally:
                if inflight is not None:
                    await inflight
        finally:
            self.state = STOPPED
            with contextlib.suppress(Exception):
                await self._ack_pending(retry=False)
            with contextlib.suppress(Exception):
                await self._publish_health(force=True)
            await close_quietly(self._db)
            self._db = None
            with contextlib.suppress(Exception):
                await self._redis.aclose()
            log.info(
                "writer %s stopped: %d rows from %d envelopes in %d batches, %d dead letters, "
                "%d gaps",
                self.consumer,
                self.stats.rows,
                self.stats.envelopes,
                self.stats.batches,
                self.stats.dead_letters,
                self.stats.gaps,
            )

    # --- database -------------------------------------------------------------------------

    async def _connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self.settings.dsn, timeout=self.settings.connect_timeout_s)
        try:
            # Exactly-once needs a commit to be durable before the entries are acknowledged
            # in Redis: with the server (or the DSN, or the role) at synchronous_commit=off an
            # immediate restart lost 9 acknowledged envelopes. The writer's own session
            # overrides whatever the server says.
            await conn.execute("SET synchronous_commit TO on")
            await schema.use_schema(conn, self.settings.db_schema)
        except BaseException:
            await close_quietly(conn)
            raise
        return conn

    async def _setup_database(self) -> None:
        """Pick the insert method, migrate, set up TimescaleDB; retries while unreachable."""
        while not self.stopping:
            try:
                self.sink = await choose_sink(self._connect, self.settings.sink)
                self._db = await self._connect()
                applied = await schema.migrate(self._db)
                if applied:
                    log.info("writer: schema migrated to version %d", applied[-1])
                self.features = await timescale.apply(
                    self._db,
                    await self._probe(self._db),
                    self.settings.retention_days,
                    self.settings.compress_after_days,
                )
                self._db_backoff.reset()
                return
            except DB_CONNECTION_ERRORS as exc:
                await self._db_trouble(exc, "connecting to the database")

    async def _db_trouble(self, exc: BaseException, doing: str) -> None:
        self.stats.db_errors += 1
        self.state = DB_DOWN
        hint = next((h for kind, h in _DB_HINTS if isinstance(exc, kind)), "")
        self._error(f"database: {doing}: {exc} ({type(exc).__name__}){'; ' + hint if hint else ''}")
        await close_quietly(self._db)
        self._db = None
        with contextlib.suppress(Exception):
            await self._publish_health(force=True)
        await self._sleep(self._db_backoff.take())

    async def _commit_and_ack(self, batch: Batch) -> None:
        await self._commit(batch)
        await self._ack_pending()

    async def _commit(self, batch: Batch) -> None:
        """Write the batch in one transaction; retries until it is written or we stop."""
        written_gaps = list(self._gaps_to_write)  # more may be found while this one is written
        while True:
            try:
                if self._db is None or self._db.is_closed():
                    self._db = await self._connect()
                    self.sink.reset()
                known = await self._write(
                    self._db, batch, batch.dead, self._known_seq, written_gaps
                )
                break
            except DB_DATA_ERRORS as exc:
                log.warning("writer: batch refused (%s); writing entry by entry", exc)
                known = await self._salvage(batch, written_gaps)
                if known is None:
                    continue  # connection trouble while salvaging: start over
                break
            except DB_CONNECTION_ERRORS as exc:
                await self._db_trouble(exc, "writing a batch")
                if self.stopping:
                    return  # nothing acknowledged: the entries come back on restart
            except asyncpg.PostgresError as exc:
                # Neither the connection nor the data: a server-side problem (disk full, a
                # table dropped by hand). Keep the batch and retry; say so.
                await self._db_trouble(exc, "writing a batch")
                if self.stopping:
                    return
        self._known_seq = known
        self._gaps_to_write = [g for g in self._gaps_to_write if g not in written_gaps]
        self._db_backoff.reset()
        self.last_commit_ms = int(time.time() * 1000)
        self.stats.batches += 1
        self.stats.rows += batch.row_count
        self.stats.envelopes += batch.envelopes
        self.stats.entries += len(batch.ids)
        self._unacked.extend(batch.ids)
        if self.state == DB_DOWN:
            self.state = RUNNING
            log.info("writer: database back; writing again")

    async def _write(
        self,
        conn: asyncpg.Connection,
        batch: Batch,
        dead: list[DeadLetter],
        known_before: dict[str, int],
        found_gaps: list[Gap] = (),  # type: ignore[assignment]
    ) -> dict[str, int]:
        """One transaction: rows, dead letters, gaps, per-run seqs. Returns the new known
        highest seq per run (the caller keeps it only after the commit)."""
        assert self.sink is not None
        try:
            return await self._write_tx(conn, batch, dead, known_before, list(found_gaps))
        except BaseException:
            self.sink.reset()  # temporary staging tables made in the failed transaction are gone
            raise

    async def _write_tx(
        self,
        conn: asyncpg.Connection,
        batch: Batch,
        dead: list[DeadLetter],
        known_before: dict[str, int],
        found_gaps: list[Gap],
    ) -> dict[str, int]:
        assert self.sink is not None
        known = dict(known_before)
        async with conn.transaction():
            for table, rows in batch.by_table():
                await self.sink.write(conn, table, rows)
            for encoded in batch.encoded.values():
                await self.sink.write_copy(conn, encoded)
            if dead:
                await conn.execute(
                    "INSERT INTO dead_letters (stream_id, reason, raw, run, seq) "
                    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
                    "$5::int8[]) ON CONFLICT (stream_id) DO NOTHING",
                    [d.stream_id for d in dead],
                    [d.reason for d in dead],
                    [d.raw for d in dead],
                    [d.run for d in dead],
                    [d.seq for d in dead],
                )
            gaps = list(found_gaps)
            if batch.seqs:
                missing = [r for r in batch.seqs if r not in known]
                if missing:
                    for r in await conn.fetch(
                        "SELECT run, last_seq FROM writer_runs WHERE run = ANY($1::text[])",
                        missing,
                    ):
                        known[r["run"]] = r["last_seq"]
                seq_found, bounds = seq_gaps(known, batch.seqs)
                gaps.extend(seq_found)
                late = {
                    run: sorted({s for s in seqs if s <= known[run]})
                    for run, seqs in batch.seqs.items()
                    if run in known
                }
                for run, seqs in late.items():
                    if seqs:
                        await self._fill_gaps(conn, run, seqs)
                runs = list(bounds)
                await conn.execute(
                    "INSERT INTO writer_runs AS w (run, first_seq, last_seq) "
                    "SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[]) "
                    "ON CONFLICT (run) DO UPDATE SET "
                    "first_seq = LEAST(w.first_seq, EXCLUDED.first_seq), "
                    "last_seq = GREATEST(w.last_seq, EXCLUDED.last_seq), updated_at = now()",
                    runs,
                    [bounds[r][0] for r in runs],
                    [bounds[r][1] for r in runs],
                )
                for r in runs:
                    known[r] = max(known.get(r, bounds[r][1]), bounds[r][1])
            if gaps:
                await self._write_gaps(conn, gaps)
        if dead:
            self.stats.dead_letters += len(dead)
            for d in dead:
                log.warning("writer: dead letter %s: %s", d.stream_id, d.reason)
        return known

    async def _fill_gaps(self, conn: asyncpg.Connection, run: str, seqs: list[int]) -> None:
        """Late envelopes (claimed from a dead consumer after newer ones were written) that
        fall into a recorded seq gap: shrink or split the gap, or drop it when filled."""
        rows = await conn.fetch(
            "SELECT gap_key, first_missing_seq AS a, last_missing_seq AS b FROM gaps "
            "WHERE kind = 'seq' AND run = $1 AND last_missing_seq >= $2 "
            "AND first_missing_seq <= $3",
            run,
            seqs[0],
            seqs[-1],
        )
        for row in rows:
            a, b = row["a"], row["b"]
            inside = [s for s in seqs if a <= s <= b]
            if not inside:
                continue
            remaining: list[tuple[int, int]] = []
            start = a
            for s in inside:
                if s > start:
                    remaining.append((start, s - 1))
                start = s + 1
            if start <= b:
                remaining.append((start, b))
            await conn.execute("DELETE FROM gaps WHERE gap_key = $1", row["gap_key"])
            self.stats.gaps -= 1
            if remaining:
                await self._write_gaps(
                    conn,
                    [
                        Gap(
                            "seq",
                            run,
                            x,
                            y,
                            detail=f"{y - x + 1} event(s) of run {run} never reached the writer",
                        )
                        for x, y in remaining
                    ],
                )
            log.info("writer: late events filled part of gap %s..%s of run %s", a, b, run)

    async def _write_gaps(self, conn: asyncpg.Connection, gaps: list[Gap]) -> None:
        rows = [g.row() for g in gaps]
        cols = list(zip(*rows))
        status = await conn.execute(
            "INSERT INTO gaps AS g (gap_key, kind, run, first_missing_seq, last_missing_seq, "
            "lost_entries, after_stream_id, before_stream_id, detail) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], "
            "$6::int8[], $7::text[], $8::text[], $9::text[]) "
            "ON CONFLICT (gap_key) DO UPDATE SET "
            "lost_entries = GREATEST(g.lost_entries, EXCLUDED.lost_entries), "
            "before_stream_id = EXCLUDED.before_stream_id, detail = EXCLUDED.detail "
            "WHERE g.kind = 'trimmed'",
            *[list(c) for c in cols],
        )
        for g in gaps:
            log.error("writer: GAP in the history: %s", g.detail)
        # "INSERT 0 n": new gaps only (a trimmed gap seen again updates its row)
        with contextlib.suppress(ValueError, IndexError):
            self.stats.gaps += int(status.split()[-1])

    async def _salvage(self, batch: Batch, found_gaps: list[Gap]) -> dict[str, int] | None:
        """Write a refused batch entry by entry; an entry the database refuses becomes a dead
        letter. Returns the known seqs, or None on connection trouble."""
        assert self._db is not None
        known = self._known_seq
        dead = list(batch.dead)
        try:
            for sid, raw in batch.raws:
                one = self._new_batch()
                one.add(sid, {b"e": raw})
                try:
                    known = await self._write(self._db, one, [], known)
                except DB_DATA_ERRORS as exc:
                    run, seq = next(iter(one.seqs.items()), (None, [None]))
                    reason = f"the database refused it: {type(exc).__name__}: {exc}"
                    dead.append(DeadLetter(sid, reason, _text(raw), run, seq[0]))
            return await self._write(self._db, self._new_batch(), dead, known, found_gaps)
        except DB_CONNECTION_ERRORS as exc:
            await self._db_trouble(exc, "writing entry by entry")
            return None

    # --- redis ----------------------------------------------------------------------------

    async def _with_redis(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``fn`` until it works (or we stop), reconnecting with backoff."""
        while not self.stopping:
            try:
                result = await fn()
                if self.state == REDIS_DOWN:
                    self.state = RUNNING
                    log.info("writer: Redis back")
                self._redis_backoff.reset()
                return result
            except REDIS_ERRORS as exc:
                self.stats.redis_errors += 1
                self.state = REDIS_DOWN
                self._error(f"redis: {type(exc).__name__}: {exc}")
                await self._sleep(self._redis_backoff.take())
            except rexc.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    log.warning("writer: the consumer group is gone (Redis restarted?); recreating")
                    await self._ensure_group()
                    continue
                raise
        return None

    async def _ensure_group(self) -> None:
        assert self._redis is not None
        try:
            await self._redis.xgroup_create(self.keys.events, GROUP, id="0", mkstream=True)
            log.info("writer: created consumer group %s on %s", GROUP, self.keys.events)
        except rexc.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _recover(self) -> None:
        """Own pending entries first, then those of dead consumers."""
        assert self._redis is not None
        r = self._redis
        start = "0"
        while not self.stopping:
            reply = await self._with_redis(
                lambda s=start: r.xreadgroup(
                    GROUP, self.consumer, {self.keys.events: s}, count=self.settings.read_count
                )
            )
            entries = reply[0][1] if reply else []
            if not entries:
                break
            log.info("writer: re-writing %d pending entries of this consumer", len(entries))
            await self._write_entries(entries)
            start = _text(entries[-1][0])
        await self._claim_dead_local()
        await self._claim_idle()

    async def _write_entries(self, entries: list) -> None:
        for chunk_start in range(0, len(entries), max(1, self.policy.max_rows)):
            batch = self._new_batch()
            for sid, fields in entries[chunk_start : chunk_start + self.policy.max_rows]:
                batch.add(sid, fields or None)
            await self._commit(batch)
            await self._ack_pending()
            if self.stopping:
                return

    async def _claim_dead_local(self) -> None:
        """Take at once what consumers of this host whose process is gone left pending."""
        assert self._redis is not None
        r = self._redis
        consumers = await self._with_redis(lambda: r.xinfo_consumers(self.keys.events, GROUP))
        for c in consumers or []:
            name = _text(c.get("name", b""))
            if not local_consumer_is_dead(name, self.consumer):
                continue
            while not self.stopping:
                pend = await self._with_redis(
                    lambda n=name: r.xpending_range(
                        self.keys.events, GROUP, "-", "+", self.settings.read_count, consumername=n
                    )
                )
                if not pend:
                    break
                ids = [p["message_id"] for p in pend]
                claimed = await self._with_redis(
                    lambda i=ids: r.xclaim(self.keys.events, GROUP, self.consumer, 0, i)
                )
                log.info("writer: took over %d entries of dead consumer %s", len(ids), name)
                got = {_text(sid) for sid, _ in claimed or []}
                gone = [i for i in ids if _text(i) not in got]
                if gone:  # deleted from the stream while pending: nothing left to write
                    await self._write_entries([(i, None) for i in gone])
                await self._write_entries(claimed or [])
            with contextlib.suppress(*REDIS_ERRORS, rexc.ResponseError):
                await r.xgroup_delconsumer(self.keys.events, GROUP, name)

    async def _claim_idle(self) -> None:
        """XAUTOCLAIM entries idle longer than ``claim_idle_ms`` (a consumer died with them)."""
        assert self._redis is not None
        r = self._redis
        self._last_claim = time.monotonic()
        start = "0-0"
        while not self.stopping:
            reply = await self._with_redis(
                lambda s=start: r.xautoclaim(
                    self.keys.events,
                    GROUP,
                    self.consumer,
                    self.settings.claim_idle_ms,
                    s,
                    count=self.settings.read_count,
                )
            )
            if not reply:
                return
            start = _text(reply[0])
            entries = reply[1]
            if entries:
                log.info("writer: claimed %d idle entries of another consumer", len(entries))
                await self._write_entries(entries)
            if start == "0-0":
                return

    async def _fill(self, batch: Batch) -> None:
        """Read new entries into ``batch`` until it is full or due (or we stop)."""
        assert self._redis is not None
        r = self._redis
        while not self.stopping:
            if batch.full():
                return
            if batch.empty:
                block = self.settings.block_ms
                if self._gaps_to_write:
                    block = 0
            else:
                remaining = batch.remaining_s()
                if remaining <= 0:
                    return
                block = max(1, int(remaining * 1000))
            try:
                await self._check_trimmed()
                # entries to ask for: the rows still wanted over the rows an entry brings
                # (until an entry has been seen, a few: entries of 20 quotes each would
                # otherwise make a first batch of read_count x 20 rows, decoded with no
                # database work to overlap)
                seen_entries = self.stats.entries + len(batch.ids)
                room = self.policy.max_rows - batch.row_count - len(batch.dead)
                if seen_entries:
                    per_entry = (self.stats.rows + batch.row_count) / seen_entries
                    room = int(room / max(1.0, per_entry))
                else:
                    room = min(room, FIRST_READ_COUNT)
                reply = await r.xreadgroup(
                    GROUP,
                    self.consumer,
                    {self.keys.events: ">"},
                    count=max(1, min(self.settings.read_count, room)),
                    block=block or None,
                )
                if self.state == REDIS_DOWN:
                    self.state = RUNNING
                    log.info("writer: Redis back")
                self._redis_backoff.reset()
            except REDIS_ERRORS as exc:
                self.stats.redis_errors += 1
                self.state = REDIS_DOWN
                self._error(f"redis: {type(exc).__name__}: {exc}")
                if not batch.empty:
                    return  # write what we have; acknowledge when Redis is back
                with contextlib.suppress(Exception):
                    await self._publish_health(force=True)
                await self._sleep(self._redis_backoff.take())
                continue
            except rexc.ResponseError as exc:
                # NOGROUP: the group is gone; UNBLOCKED: the stream was deleted under our read
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                log.warning("writer: the consumer group is gone (Redis restarted?); recreating")
                await self._with_redis(self._ensure_group)
                continue
            entries = reply[0][1] if reply else []
            if not entries:
                self.caught_up.set()
                if self.state == CATCHING_UP:
                    self.state = RUNNING
                if batch.empty:
                    if self._gaps_to_write:
                        return
                    await self._publish_health()
                    continue
                return
            self.caught_up.clear()
            for k, (sid, fields) in enumerate(entries, 1):
                batch.add(sid, fields)
                if k % DECODE_SLICE == 0:
                    # Let the batch being written take its next step (its COPY, its COMMIT)
                    # now, not after all of this read is decoded: the database then works
                    # while Python decodes.
                    await asyncio.sleep(0)
            if self.state in (STARTING, RECOVERING):
                self.state = RUNNING

    async def _check_trimmed(self) -> None:
        """Before reading on: did the stream lose entries this group never read?"""
        assert self._redis is not None
        now = time.monotonic()
        if now - self._trim_checked < self.settings.health_every_s:
            return
        self._trim_checked = now
        pipe = self._redis.pipeline(transaction=False)
        pipe.xinfo_stream(self.keys.events)
        pipe.xinfo_groups(self.keys.events)
        try:
            stream, groups = await pipe.execute()
        except rexc.ResponseError:
            return  # no stream (Redis lost it): the read below recreates the group
        group = next((g for g in groups if _text(g.get("name")) == GROUP), None)
        if group is None:
            return
        self._update_lag(stream, group)
        gap = trimmed_gap(stream, group)
        if gap is not None and all(g.key != gap.key for g in self._gaps_to_write):
            self._gaps_to_write.append(gap)

    async def _ack_pending(self, retry: bool = True) -> None:
        if not self._unacked or self._redis is None:
            return
        r = self._redis
        while self._unacked:
            chunk = self._unacked[:10000]
            if retry:
                done = await self._with_redis(lambda c=chunk: r.xack(self.keys.events, GROUP, *c))
                if done is None:
                    return  # stopping; the entries come back on restart (already written)
            else:
                await r.xack(self.keys.events, GROUP, *chunk)
            del self._unacked[: len(chunk)]

    # --- health ---------------------------------------------------------------------------

    def _update_lag(self, stream: dict, group: dict) -> None:
        """Entries not yet written: undelivered plus delivered but unacknowledged.

        Undelivered is decided from what the group has delivered against the stream's last
        id: nothing when the delivered id is at (or past) the last entry, whatever the group's
        ``lag`` says (after a trim past the group Redis 7.0 keeps reporting the trimmed count
        there forever); the whole stream when its first entry is past the delivered id (a trim
        gap); else the group's ``lag`` bounded by the length (the length when Redis has none)."""
        length = int(stream.get("length") or 0)
        pending = int(group.get("pending") or 0)
        delivered = stream_id_key(_text(group.get("last-delivered-id") or "0-0"))
        last = stream.get("last-entry")
        first = stream.get("first-entry")
        if not length or not last or stream_id_key(_text(last[0])) <= delivered:
            undelivered = 0
        elif first and stream_id_key(_text(first[0])) > delivered:
            undelivered = length
        else:
            lag = group.get("lag")
            undelivered = length if lag is None else min(int(lag), length)
        self._lag_entries = undelivered + pending

    async def _publish_health(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._health_at < self.settings.health_every_s:
            return
        if self._redis is None:
            return
        self._health_at = now
        span = now - self._health_t
        if span >= 0.5:
            self._rows_per_s = (self.stats.rows - self._health_rows) / span
            self._health_rows = self.stats.rows
            self._health_t = now
        r = self._redis
        try:
            if self.state not in (REDIS_DOWN,):
                pipe = r.pipeline(transaction=False)
                pipe.time()
                pipe.xinfo_stream(self.keys.events)
                pipe.xinfo_groups(self.keys.events)
                pipe.xpending(self.keys.events, GROUP)
                try:
                    (sec, usec), stream, groups, pend = await pipe.execute()
                except rexc.ResponseError:
                    # No stream or group yet (e.g. db_down before the group was made): the
                    # state and last_error below must still reach kc status.
                    groups = []
                group = next((g for g in groups if _text(g.get("name")) == GROUP), None)
                if group is not None:
                    self._update_lag(stream, group)
                    redis_now_ms = int(sec) * 1000 + int(usec) // 1000
                    oldest = pend.get("min") if pend else None
                    oldest_ms = None
                    if oldest:
                        oldest_ms = stream_id_key(_text(oldest))[0]
                    if self._lag_entries:
                        if oldest_ms is None:
                            oldest_ms = self._next_undelivered_ms(stream, group)
                        self._lag_s = max(0.0, (redis_now_ms - (oldest_ms or redis_now_ms)) / 1e3)
                    else:
                        self._lag_s = 0.0
                if self.state == RUNNING and (self._lag_entries or 0) > 2 * self.policy.max_rows:
                    self.state = CATCHING_UP
                elif self.state == CATCHING_UP and (self._lag_entries or 0) <= self.policy.max_rows:
                    self.state = RUNNING
            fields = self.health()
            pipe = r.pipeline(transaction=False)
            pipe.hset(self.keys.writer, mapping=fields)
            await pipe.execute()
        except REDIS_ERRORS:
            pass  # said on the next successful write
        except rexc.ResponseError as exc:
            log.debug("writer: health not published: %s", exc)

    def _next_undelivered_ms(self, stream: dict, group: dict) -> int | None:
        first = stream.get("first-entry")
        delivered = _text(group.get("last-delivered-id") or "0-0")
        if first is not None and stream_id_key(_text(first[0])) > stream_id_key(delivered):
            return stream_id_key(_text(first[0]))[0]
        # an entry right after the delivered one is at least as new as the delivered id
        return stream_id_key(delivered)[0] or None

    def health(self) -> dict[str, str]:
        """The ``P:writer`` fields (all strings)."""
        lag_s = self._lag_s
        f = {
            "state": self.state,
            "consumer": self.consumer,
            "pid": str(os.getpid()),
            "lag_entries": "" if self._lag_entries is None else str(self._lag_entries),
            "lag_s": "" if lag_s is None else f"{lag_s:.3f}",
            "lag_ms": "" if lag_s is None else str(int(lag_s * 1000)),
            "rows_per_s": f"{self._rows_per_s:.0f}",
            "rows": str(self.stats.rows),
            "envelopes": str(self.stats.envelopes),
            "batches": str(self.stats.batches),
            "dead_letters": str(self.stats.dead_letters),
            "gaps": str(self.stats.gaps),
            "last_error": self.last_error,
            "last_error_ms": str(self.last_error_ms) if self.last_error_ms else "",
            "last_commit_ms": str(self.last_commit_ms) if self.last_commit_ms else "",
            "last_commit_ts": str(self.last_commit_ms) if self.last_commit_ms else "",
            "sink": self.sink.name if self.sink else "",
            "database": self.features.summary() if self.features else "",
            "updated_ms": str(int(time.time() * 1000)),
        }
        return f

    # --- helpers --------------------------------------------------------------------------

    def _new_batch(self) -> Batch:
        """A batch that keeps quotes as binary COPY rows when the sink takes them."""
        return Batch(self.policy, copy_quotes=bool(self.sink and self.sink.binary_copy))

    def _error(self, text: str) -> None:
        text = redact(text)
        if text != self.last_error:
            log.warning("writer: %s", text)
        self.last_error = text
        self.last_error_ms = int(time.time() * 1000)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


__all__ = ["GROUP", "Writer", "WriterSettings", "WriterStats", "Poison"]
