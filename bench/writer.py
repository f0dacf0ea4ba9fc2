"""Rows/s the writer persists end to end (stream → PostgreSQL), against a raw insert.

Fills ``P:events`` with ``--rows`` quote rows in protocol envelopes (``quotes`` batches of
``--items`` items, as the engine sends them every 50 ms), runs the real writer in process until
every entry is written and acknowledged, and compares with a raw asyncpg insert of the same
rows, by the same method (binary COPY where the server supports it, ``unnest`` otherwise), in
transactions of the same size, into an identical table, in the same run. The raw side starts
from ready-made tuples: no Redis, no JSON, no checks, no ON CONFLICT.

    .venv/bin/python bench/writer.py [--dsn DSN] [--redis URL] [--rows 200000] [--items 20]

Without --dsn/--redis it starts its own PostgreSQL and Redis (core.devservers). Prints its
figure on the last line. Goal: >= 100,000 rows/s and a ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402
import redis  # noqa: E402

from core.protocol import Envelope, Keys  # noqa: E402
from core.writer import Writer, WriterSettings  # noqa: E402
from core.writer.schema import migrate, use_schema  # noqa: E402
from core.writer.sinks import UnnestSink, probe_copy  # noqa: E402
from core.writer.tables import QUOTES, decode, rows_of  # noqa: E402

GOAL_RATE = 100000
GOAL_RATIO = 0.5


def cpu_times() -> List[int]:
    """The machine's CPU counters (/proc/stat: user nice system idle iowait irq softirq steal),
    to tell how busy the machine was while the figures were taken; [] where there is none."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return []


def process_cpu(pid: int) -> float | None:
    """CPU seconds of a local process (the writer's PostgreSQL backend), None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def machine_busy(before: List[int], after: List[int]) -> str:
    """'busy N %, steal M %' of all cores between two :func:`cpu_times`."""
    if not before or not after:
        return "machine load unknown"
    d = [b - a for a, b in zip(before, after)]
    total = sum(d) or 1
    busy = total - d[3] - d[4]
    return "machine busy {:.0%}, steal {:.0%}".format(busy / total, d[7] / total)


def make_envelopes(rows: int, items: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    codes = [f"{100000 + i:06d}" for i in range(500)]
    run = "20261123-0900-bench"
    ts = 1795400000000
    out, seq, left = [], 0, rows
    while left > 0:
        n = min(items, left)
        seq += 1
        ts += 50
        batch = []
        for _ in range(n):
            price = rng.randrange(100, 3000) * 100
            batch.append(
                {
                    "code": rng.choice(codes),
                    "price": price,
                    "change": rng.randint(-5000, 5000),
                    "change_pct": round(rng.uniform(-5, 5), 2),
                    "volume": rng.randint(1, 10**7),
                    "trade_qty": rng.randint(-500, 500),
                    "open": price,
                    "high": price + 100,
                    "low": price - 100,
                    "ask": price + 100,
                    "bid": price,
                    "time": "091500",
                }
            )
        out.append(Envelope("quotes", run, seq, ts, {"items": batch}).encode())
        left -= n
    return out


def fill_stream(url: str, keys: Keys, envelopes: list[str]) -> None:
    r = redis.Redis.from_url(url)
    r.delete(keys.events, keys.writer)
    for k in range(0, len(envelopes), 1000):
        pipe = r.pipeline(transaction=False)
        for e in envelopes[k : k + 1000]:
            pipe.xadd(keys.events, {"e": e})
        pipe.execute()
    r.close()


async def run_writer(url: str, dsn: str, keys: Keys, schema: str, rows: int, batch: int):
    settings = WriterSettings(
        redis_url=url, dsn=dsn, prefix=keys.prefix, db_schema=schema, batch_rows=batch
    )
    writer = Writer(settings)
    task = asyncio.create_task(writer.run())
    await writer.ready.wait()  # schema and setup done: the clock starts with the first read
    backend = writer._db.get_server_pid() if writer._db is not None else 0
    t0, cpu0, pg0 = time.perf_counter(), time.process_time(), process_cpu(backend)
    while writer.stats.rows < rows or writer._unacked:
        if task.done():
            task.result()
            raise RuntimeError("the writer stopped")
        await asyncio.sleep(0.005)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    pg1 = process_cpu(backend)
    pg_cpu = pg1 - pg0 if pg0 is not None and pg1 is not None else None
    writer.stop()
    await task
    return elapsed, cpu, pg_cpu, writer.sink.name


async def run_raw(dsn: str, schema: str, tuples: list[tuple], batch: int, method: str) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await use_schema(conn, schema)
        await migrate(conn)
        cols = list(QUOTES.column_names)
        unnest = UnnestSink()
        t0 = time.perf_counter()
        for k in range(0, len(tuples), batch):
            chunk = tuples[k : k + batch]
            async with conn.transaction():
                if method == "copy":
                    await conn.copy_records_to_table("quotes", records=chunk, columns=cols)
                else:
                    await unnest.write(conn, QUOTES, chunk)
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def count_rows(dsn: str, schema: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(f'SELECT count(*) FROM "{schema}".quotes')
    finally:
        await conn.close()


async def settle(dsn: str) -> None:
    """CHECKPOINT, so that neither side pays for writing out the other's dirty pages (needs a
    superuser; skipped without)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.PostgresError:
        pass
    finally:
        await conn.close()


async def drop(dsn: str, *schemas: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for s in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace, url: str, dsn: str) -> str:
    keys = Keys("bench" + uuid.uuid4().hex[:6])
    envelopes = make_envelopes(args.rows, args.items)
    tuples = [row for e in envelopes for _, row in rows_of(decode(e))]
    assert len(tuples) == args.rows
    fill_stream(url, keys, envelopes)
    w_schema, r_schema = "bench_w_" + uuid.uuid4().hex[:6], "bench_r_" + uuid.uuid4().hex[:6]

    async def connect():
        return await asyncpg.connect(dsn)

    method = "copy" if (await probe_copy(connect))[0] else "unnest"
    try:
        cpu0 = cpu_times()
        await settle(dsn)
        raw_s = await run_raw(dsn, r_schema, tuples, args.batch_rows, method)
        # The same start for the writer: the raw table's pages out of the way.
        await drop(dsn, r_schema)
        await settle(dsn)
        w_s, w_cpu, pg_cpu, sink = await run_writer(
            url, dsn, keys, w_schema, args.rows, args.batch_rows
        )
        busy = machine_busy(cpu0, cpu_times())
        stored = await count_rows(dsn, w_schema)
    finally:
        await drop(dsn, w_schema, r_schema)
        r = redis.Redis.from_url(url)
        r.delete(keys.events, keys.writer)
        r.close()
    if stored != args.rows:
        raise SystemExit(f"writer stored {stored} rows, expected {args.rows}")
    w_rate, raw_rate = args.rows / w_s, args.rows / raw_s
    ratio = w_rate / raw_rate
    print(
        f"{args.rows:,} rows in {len(envelopes):,} envelopes, batches of {args.batch_rows:,} "
        f"rows; writer sink {sink}, raw {method}"
    )
    print(
        f"writer end to end: {w_s:.2f} s (its own CPU {w_cpu:.2f} s: Redis reads, JSON, checks, "
        f"encoding); raw {method}: {raw_s:.2f} s"
    )
    if pg_cpu is not None:
        print(
            f"the writer's PostgreSQL backend: {pg_cpu:.2f} s of CPU "
            f"({pg_cpu / args.rows * 1e6:.1f} us/row; one backend, one core at most)"
        )
    goal = "meets" if w_rate >= GOAL_RATE and ratio >= GOAL_RATIO else "misses"
    print(
        f"while measuring: {busy}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"goal >= {GOAL_RATE:,} rows/s and ratio >= {GOAL_RATIO}: {goal}")
    return (
        f"writer: {w_rate:,.0f} rows/s end-to-end, ratio {ratio:.2f} vs raw insert "
        f"(raw {method} {raw_rate:,.0f} rows/s)"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dsn", help="PostgreSQL DSN (default: start one)")
    p.add_argument("--redis", help="Redis URL (default: start one)")
    p.add_argument("--rows", type=int, default=200000)
    p.add_argument("--items", type=int, default=20, help="quotes per envelope")
    p.add_argument("--batch-rows", type=int, default=5000)
    args = p.parse_args()
    servers = []
    try:
        url, dsn = args.redis, args.dsn
        if not url:
            from core.devservers import RedisServer

            servers.append(RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-"))).start())
            url = servers[-1].url
        if not dsn:
            from core.devservers import PostgresServer

            servers.append(PostgresServer(Path(tempfile.mkdtemp(prefix="bench-pg-"))).start())
            dsn = servers[-1].dsn
        line = asyncio.run(main_async(args, url, dsn))
    finally:
        for s in servers:
            s.stop()
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
