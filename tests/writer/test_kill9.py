"""kill -9 the writer process at random points while the engine keeps writing; restart it.
The tables end up holding exactly the events of the stream: nothing lost, nothing twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
import redis

from core.protocol import Keys

from .conftest import DbTarget, db_conn
from .helpers import Engine, random_quotes, xadd

ROOT = Path(__file__).resolve().parents[2]


def start_writer(redis_url: str, keys: Keys, db: DbTarget, log: Path) -> subprocess.Popen:
    # A password never goes on the command line (kc writer refuses it): the environment.
    parts = urllib.parse.urlsplit(db.dsn)
    dsn = db.dsn.replace(":{}@".format(parts.password), "@", 1) if parts.password else db.dsn
    env = dict(os.environ, PYTHONPATH=str(ROOT), KC_DATABASE_PASSWORD=parts.password or "")
    argv = [
        sys.executable, "-m", "core.writer",
        "--redis", redis_url, "--dsn", dsn, "--prefix", keys.prefix,
        "--schema", db.schema, "--batch-rows", "400", "--batch-ms", "20",
    ]  # fmt: skip
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),  # noqa: SIM115
    )


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def caught_up(r: redis.Redis, keys: Keys) -> bool:
    groups = r.xinfo_groups(keys.events)
    if not groups:
        return False
    last = r.xrevrange(keys.events, count=1)
    return groups[0]["pending"] == 0 and groups[0]["last-delivered-id"] == last[0][0]


@pytest.mark.slow
async def test_kill_9_at_random_points_loses_and_duplicates_nothing(
    db: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    n_envelopes = 1500 if db.timescale else 4000
    eng = Engine()
    expected_quotes: set[tuple[str, int, int]] = set()
    expected_orders: set[tuple[str, int]] = set()
    envelopes = []
    for _ in range(n_envelopes):
        if rng.random() < 0.9:
            items = random_quotes(rng, rng.randint(1, 12))
            env = eng.env("quotes", {"items": items})
            expected_quotes.update((env.run, env.seq, i) for i in range(len(items)))
        else:
            env = eng.env(
                "order",
                {"order_id": f"o{eng.seq}", "code": "005930", "side": "buy", "qty": 1,
                 "price": 70000, "status": "accepted"},
            )  # fmt: skip
            expected_orders.add((env.run, env.seq))
        envelopes.append(env)

    # The "engine": keeps adding envelopes while the writer is killed and restarted.
    def produce() -> None:
        r = redis.Redis.from_url(redis_url)
        for k in range(0, len(envelopes), 20):
            xadd(r, keys, envelopes[k : k + 20])
            time.sleep(0.02)
        r.close()

    producer = threading.Thread(target=produce, daemon=True)
    log = tmp_path / "writer.log"
    kills = 0
    producer.start()
    try:
        for _ in range(4):
            proc = start_writer(redis_url, keys, db, log)
            # let it get going (it must have made the group), then kill it at a random point
            wait_for(lambda: rconn.exists(keys.writer), 60, "the writer to start")
            time.sleep(rng.uniform(0.1, 1.0))
            assert proc.poll() is None, log.read_text()[-3000:]
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            rconn.delete(keys.writer)
        producer.join(120)
        assert not producer.is_alive()
        proc = start_writer(redis_url, keys, db, log)
        wait_for(lambda: rconn.exists(keys.writer), 60, "the last writer to start")
        wait_for(lambda: caught_up(rconn, keys), 180, "the writer to catch up")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    async with db_conn(db) as conn:
        quotes = await conn.fetch("SELECT run, seq, i FROM quotes")
        orders = await conn.fetch("SELECT run, seq FROM orders")
        gaps = await conn.fetchval("SELECT count(*) FROM gaps")
        dead = await conn.fetchval("SELECT count(*) FROM dead_letters")
    got_quotes = [tuple(r) for r in quotes]
    got_orders = [tuple(r) for r in orders]
    note = f"seed {seed}, {kills} kills"
    assert len(got_quotes) == len(set(got_quotes)) == len(expected_quotes), note
    assert set(got_quotes) == expected_quotes, note
    assert sorted(got_orders) == sorted(expected_orders), note
    assert gaps == 0 and dead == 0, note
    assert kills == 4
