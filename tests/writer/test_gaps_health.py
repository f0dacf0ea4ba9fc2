"""Holes in the history are recorded, never papered over; P:writer tells the TUI how the
writer is doing."""

from __future__ import annotations

import redis

from core.protocol import Keys
from core.writer import Writer
from core.writer.gaps import Gap, seq_gaps, trimmed_gap

from .conftest import DbTarget, db_conn
from .helpers import Engine, quote, run_until_caught_up, settings, xadd


def test_seq_gaps_by_run() -> None:
    gaps, bounds = seq_gaps({"a": 5}, {"a": [6, 7, 10, 9, 13], "b": [3, 4]})
    assert [(g.run, g.first_missing_seq, g.last_missing_seq) for g in gaps] == [
        ("a", 8, 8),
        ("a", 11, 12),
        ("b", 1, 2),  # runs start at seq 1: the first two never came
    ]
    assert bounds == {"a": (6, 13), "b": (3, 4)}
    # late or repeated seqs are not gaps
    assert seq_gaps({"a": 20}, {"a": [3, 20, 21]})[0] == []


def test_trimmed_gap_from_stream_counters() -> None:
    stream = {"first-entry": (b"500-0", {}), "entries-added": 100, "length": 10}
    behind = {"last-delivered-id": b"300-0", "entries-read": 40}
    gap = trimmed_gap(stream, behind)
    assert isinstance(gap, Gap) and gap.lost_entries == 50
    assert (gap.after_stream_id, gap.before_stream_id) == ("300-0", "500-0")
    assert trimmed_gap(stream, {"last-delivered-id": b"500-0", "entries-read": 90}) is None
    fresh = {"last-delivered-id": b"0-0", "entries-read": None}
    assert trimmed_gap(stream, fresh).lost_entries == 90


async def test_dropped_seqs_and_trimmed_entries_are_recorded(
    db: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    eng = Engine()
    # The group exists (the writer ran before) and has read nothing since.
    rconn.xgroup_create(keys.events, "writer", id="0", mkstream=True)
    first = [eng.env("quote", quote(price=70000 + 100 * n)) for n in range(20)]
    xadd(rconn, keys, first)
    rconn.xtrim(keys.events, maxlen=5, approximate=False)  # 15 entries gone unread
    eng.skip(3)  # the engine dropped seqs 21-23
    later = [eng.env("quote", quote()) for _ in range(2)]
    xadd(rconn, keys, later)

    writer = Writer(settings(redis_url, keys, db))
    await run_until_caught_up(writer, rconn, keys)
    async with db_conn(db) as conn:
        gaps = await conn.fetch("SELECT * FROM gaps ORDER BY kind, first_missing_seq")
        seqs = [r["seq"] for r in await conn.fetch("SELECT seq FROM quotes ORDER BY seq")]
    assert seqs == [16, 17, 18, 19, 20, 24, 25]
    assert [(g["kind"], g["run"], g["first_missing_seq"], g["last_missing_seq"]) for g in gaps] == [
        ("seq", eng.run, 1, 15),
        ("seq", eng.run, 21, 23),
        ("trimmed", "", None, None),
    ]
    trimmed = gaps[2]
    assert trimmed["lost_entries"] == 15 and trimmed["noticed_at"] is not None
    assert writer.stats.gaps == 3
    assert rconn.hget(keys.writer, "gaps") == b"3"

    # A restarted writer does not record them again, and knows where each run stands.
    more = [eng.env("quote", quote()) for _ in range(2)]
    xadd(rconn, keys, more)
    again = Writer(settings(redis_url, keys, db))
    await run_until_caught_up(again, rconn, keys)
    async with db_conn(db) as conn:
        assert await conn.fetchval("SELECT count(*) FROM gaps") == 3
    assert again.stats.gaps == 0


async def test_health_hash(pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis) -> None:
    eng = Engine()
    xadd(rconn, keys, [eng.env("quotes", {"items": [quote()] * 3}) for _ in range(50)])
    writer = Writer(settings(redis_url, keys, pg, consumer="health-test"))
    await run_until_caught_up(writer, rconn, keys)
    h = {k.decode(): v.decode() for k, v in rconn.hgetall(keys.writer).items()}
    assert h["state"] == "stopped" and h["consumer"] == "health-test"
    assert h["rows"] == "150" and h["envelopes"] == "50"
    assert h["lag_entries"] == "0" and float(h["lag_s"]) == 0.0
    assert int(h["last_commit_ms"]) > 0 and h["last_commit_ts"] == h["last_commit_ms"]
    assert h["sink"] == "copy" and h["database"] == "plain PostgreSQL"
    assert float(h["rows_per_s"]) >= 0 and h["last_error"] == ""
    for field in ("dead_letters", "gaps", "pid", "updated_ms"):
        assert field in h


async def test_lag_is_counted_while_behind(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    eng = Engine()
    rconn.xgroup_create(keys.events, "writer", id="0", mkstream=True)
    xadd(rconn, keys, [eng.env("quote", quote()) for _ in range(30)])
    rconn.xreadgroup("writer", "someone", {keys.events: ">"}, count=10)  # 10 pending elsewhere
    writer = Writer(settings(redis_url, keys, pg))
    stream = rconn.xinfo_stream(keys.events)
    group = rconn.xinfo_groups(keys.events)[0]
    writer._update_lag(stream, group)
    assert writer._lag_entries == 30  # 20 undelivered + 10 pending
