"""The real engine (sim broker) and the real writer together: every envelope the engine
puts on P:events lands in its table, none is a dead letter, no gap."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis

from core.protocol import Keys
from core.writer import Writer
from tests.helpers.engine_process import EngineProcess

from .conftest import DbTarget, db_conn
from .helpers import settings


@pytest.mark.slow
async def test_sim_engine_events_are_stored(
    pg: DbTarget, redis_url: str, rconn: redis.Redis, tmp_path
) -> None:
    with EngineProcess(
        redis_url, settings={"sim.seed": 11, "sim.quote_rate": 400}, log_dir=str(tmp_path)
    ) as eng:
        eng.wait_ready(timeout=60)
        keys = Keys(eng.prefix)
        writer = Writer(settings(redis_url, keys, pg))
        task = asyncio.create_task(writer.run())
        try:
            await asyncio.wait_for(writer.ready.wait(), 60)
            reply = await asyncio.to_thread(
                eng.send, {"cmd": "buy", "code": "005930", "qty": 1, "type": "market"}
            )
            assert reply["ok"], reply
            bad = await asyncio.to_thread(eng.send, {"cmd": "buy", "code": "005930", "qty": -5})
            assert not bad["ok"]
            await asyncio.sleep(1.5)
        finally:
            await asyncio.to_thread(eng.stop)
        # the engine has stopped: let the writer take in the rest
        deadline = time.monotonic() + 30
        while True:
            g = rconn.xinfo_groups(keys.events)[0]
            last = rconn.xrevrange(keys.events, count=1)[0][0]
            if g["pending"] == 0 and g["last-delivered-id"] == last:
                break
            assert time.monotonic() < deadline, g
            await asyncio.sleep(0.05)
        writer.stop()
        await asyncio.wait_for(task, 30)
    # the stream keeps only what the writer has not committed (XTRIM MINID): its last entry
    # is the run's last envelope
    last_entry = rconn.xrevrange(keys.events, count=1)[0][1]
    n_entries = json.loads(last_entry[b"e"])["seq"]
    async with db_conn(pg) as conn:
        counts = {
            t: await conn.fetchval(f"SELECT count(*) FROM {t}")
            for t in ("quotes", "orders", "fills", "commands", "engine_status", "dead_letters")
        }
        gaps = await conn.fetch("SELECT * FROM gaps")
        cmds = await conn.fetch("SELECT cmd, ok, error_code FROM commands ORDER BY seq")
        runs = await conn.fetch("SELECT first_seq, last_seq FROM writer_runs")
    assert counts["dead_letters"] == 0, counts
    assert gaps == []
    assert counts["quotes"] > 0 and counts["orders"] >= 1 and counts["fills"] >= 1, counts
    assert ("buy", True, "") in [tuple(c) for c in cmds]
    assert ("buy", False, "INVALID_ARGUMENT") in [tuple(c) for c in cmds]
    assert counts["engine_status"] >= 1
    # every envelope of the run is there: seqs 1..last without a hole, each written once
    assert len(runs) == 1 and runs[0]["first_seq"] == 1
    assert runs[0]["last_seq"] == n_entries == writer.stats.envelopes
