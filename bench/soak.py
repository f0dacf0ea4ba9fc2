"""Soak: the sim engine and the writer at a quote rate for a while; is Redis memory bounded?

Starts Redis with the memory settings of ``deploy/redis/redis.conf`` (``maxmemory``,
``maxmemory-policy``, ``proto-max-bulk-len``), PostgreSQL (core.devservers, unless --dsn), the
sim engine (``python -m engine32 --broker sim`` at ``--rate`` quotes/s, as shipped otherwise)
and the writer (``python -m core.writer``), plus one Pub/Sub subscriber that counts every quote
published (as the console would be subscribed). Every half second it samples Redis
``used_memory`` and the stream length. At the end it reads the writer's lag, stops the engine,
lets the writer drain, and counts the rows written and the gaps recorded.

The same-run baseline is Redis' ``used_memory`` before anything ran (an empty server), and
the budget is ``maxmemory`` of redis.conf.

    .venv/bin/python bench/soak.py --seconds 120 --rate 5000 [--dsn DSN]

Last line: ``soak: peak <MB> MB of <budget> MB, <rows> rows, <lost> lost, lag <ms> ms at <R>
quotes/s``. Goal: 10 minutes at 5,000 quotes/s under the budget with 0 rows lost.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import redis  # noqa: E402

from core.protocol import Keys  # noqa: E402

REDIS_CONF = ROOT / "deploy" / "redis" / "redis.conf"
MEMORY_KEYS = ("maxmemory", "maxmemory-policy", "proto-max-bulk-len")
MB = 1024 * 1024


def memory_config() -> tuple[str, int]:
    """The memory lines of deploy/redis/redis.conf, and maxmemory in bytes."""
    lines = []
    budget = 0
    for line in REDIS_CONF.read_text().splitlines():
        words = line.split()
        if words and words[0] in MEMORY_KEYS:
            lines.append(line.strip())
            if words[0] == "maxmemory":
                budget = _bytes(words[1])
    return "\n".join(lines) + "\n", budget


def _bytes(text: str) -> int:
    m = re.fullmatch(r"(\d+)(kb|mb|gb)?", text.lower())
    if not m:
        raise SystemExit(f"soak: cannot read maxmemory {text!r} in {REDIS_CONF}")
    return int(m.group(1)) * {None: 1, "kb": 1024, "mb": MB, "gb": 1024 * MB}[m.group(2)]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class QuoteCounter:
    """Counts the quotes published on ``P:ev:quotes`` (a Pub/Sub subscriber thread)."""

    def __init__(self, url: str, keys: Keys) -> None:
        self.client = redis.Redis.from_url(url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(**{keys.ev("quotes"): self._on})
        self.quotes = 0
        self.envelopes = 0
        self.thread = self.pubsub.run_in_thread(sleep_time=0.01, daemon=True)

    def _on(self, message: dict) -> None:
        data = message["data"]
        self.quotes += data.count(b'"code":')
        self.envelopes += 1

    def close(self) -> None:
        self.thread.stop()
        self.thread.join(2)
        self.pubsub.close()
        self.client.close()


def child(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),  # noqa: SIM115
        start_new_session=True,
    )


def wait_for(what: str, check, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise SystemExit(f"soak: {what} within {timeout} s")


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


async def count_rows(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM quotes")
        gaps = await conn.fetchval("SELECT count(*) FROM gaps")
        return int(rows), int(gaps)
    finally:
        await conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--rate", type=int, default=5000, help="quotes per second")
    p.add_argument("--dsn", help="PostgreSQL DSN, an empty database (default: start one)")
    args = p.parse_args()

    import asyncio

    from core.devservers import PostgresServer, RedisServer

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    extra, budget = memory_config()
    servers = []
    procs: list[subprocess.Popen] = []
    counter = None
    try:
        rs = RedisServer(work / "redis", extra_config=extra).start()
        servers.append(rs)
        dsn = args.dsn
        if not dsn:
            servers.append(PostgresServer(work / "pg").start())
            dsn = servers[-1].dsn
        r = redis.Redis.from_url(rs.url)
        base_mb = int(r.info("memory")["used_memory"]) / MB
        keys = Keys("soak")
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            QT_QPA_PLATFORM="offscreen",
            KC_SIM__QUOTE_RATE=str(args.rate),
            KC_SIM__BURST_EVERY_S="0",
            KC_SIM__SEED="7",
            KC_ENGINE__LOG_LEVEL="WARNING",
        )
        common = ["--redis", rs.url, "--prefix", keys.prefix]
        writer = child(
            [sys.executable, "-m", "core.writer", "--dsn", dsn, "--log-level", "WARNING", *common],
            env,
            work / "writer.log",
        )
        procs.append(writer)
        wait_for("the writer did not start", lambda: r.hget(keys.writer, "state"), 60)
        counter = QuoteCounter(rs.url, keys)
        engine = child(
            [sys.executable, "-m", "engine32", "--broker", "sim", *common], env, work / "engine.log"
        )
        procs.append(engine)
        wait_for(
            "the engine was not ready",
            lambda: r.hget(keys.engine, "state") in (b"ready", b"halted"),
            60,
        )
        time.sleep(2)
        rss0 = (rss_mb(engine.pid), rss_mb(writer.pid))
        r.config_resetstat()
        quotes0 = counter.quotes
        peak = 0.0
        started = time.monotonic()
        samples = 0
        stop_at = started + args.seconds
        while time.monotonic() < stop_at:
            used = int(r.info("memory")["used_memory"]) / MB
            peak = max(peak, used)
            samples += 1
            if samples % 20 == 0:
                print(
                    f"soak: t={time.monotonic() - started:.0f}s used {used:.1f} MB, "
                    f"stream {r.xlen(keys.events)} entries, "
                    f"{(counter.quotes - quotes0) / (time.monotonic() - started):.0f} quotes/s, "
                    f"writer lag {(r.hget(keys.writer, 'lag_ms') or b'?').decode()} ms",
                    flush=True,
                )
            if engine.poll() is not None or writer.poll() is not None:
                raise SystemExit(f"soak: a child exited; logs in {work}")
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        info = r.info("memory")
        peak = max(peak, int(info["used_memory_peak"]) / MB)
        lag_ms = int((r.hget(keys.writer, "lag_ms") or b"0") or 0)
        rss1 = (rss_mb(engine.pid), rss_mb(writer.pid))
        rate = (counter.quotes - quotes0) / elapsed
        dropped = int(r.hget(keys.engine, "dropped") or 0)
        stop(engine)
        time.sleep(1)
        published = counter.quotes

        def drained() -> bool:
            groups = r.xinfo_groups(keys.events)
            group = next((g for g in groups if g["name"] == b"writer"), None)
            last = r.xrevrange(keys.events, count=1)
            return bool(
                group
                and group["pending"] == 0
                and last
                and group["last-delivered-id"] == last[0][0]
            )

        wait_for("the writer did not drain", drained, 120)
        rows, gaps = asyncio.run(count_rows(dsn))
        lost = max(0, published - rows)
        print(f"soak: Redis used_memory before anything ran {base_mb:.1f} MB (baseline)")
        print(f"soak: budget (maxmemory in {REDIS_CONF.name}) {budget / MB:.0f} MB")
        print(
            f"soak: {published} quotes published ({rate:.0f}/s measured), engine dropped {dropped}"
        )
        print(f"soak: {rows} rows written, {gaps} gaps recorded")
        print(
            f"soak: engine RSS {rss0[0]:.0f} -> {rss1[0]:.0f} MB, writer RSS {rss0[1]:.0f} -> {rss1[1]:.0f} MB"
        )
        print(
            f"soak: peak {peak:.1f} MB of {budget / MB:.0f} MB, {rows} rows, {lost} lost, "
            f"lag {lag_ms} ms at {args.rate} quotes/s"
        )
        return 0 if peak * MB <= budget and lost == 0 and gaps == 0 else 1
    finally:
        if counter is not None:
            counter.close()
        for proc in reversed(procs):
            stop(proc)
        for s in reversed(servers):
            s.stop()


if __name__ == "__main__":
    sys.exit(main())
