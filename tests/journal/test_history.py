"""The ``history`` command: parsing, the simulator's seeded past, and the backfill end to end
(engine → ``candles`` event → writer's ``candle_history`` → ``core.history.candles``)."""

from __future__ import annotations

import asyncio
import datetime
import time

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from core import history
from core.protocol import ProtocolError, krx, parse_command
from core.protocol.krx import KST
from core.writer import Writer
from engine32.brokers.sim.history import past_candles
from tests.helpers.engine_process import EngineProcess
from tests.writer.conftest import DbTarget, db_conn
from tests.writer.helpers import settings as writer_settings

TODAY = datetime.date(2026, 12, 2)  # a Wednesday


def test_history_command_is_parsed_and_checked() -> None:
    c = parse_command({"cmd": "history", "code": "005930", "interval": "1m", "count": 900})
    assert (c.code, c.interval, c.count) == ("005930", "1m", 900)
    d = parse_command({"cmd": "history", "code": "005930"})
    assert (d.interval, d.count) == ("1d", 250)
    for bad, field in (
        ({"interval": "5m"}, "interval"),
        ({"count": 0}, "count"),
        ({"count": 5001}, "count"),
        ({"count": "10"}, "count"),
        ({"code": "5930"}, "code"),
    ):
        with pytest.raises(ProtocolError) as err:
            parse_command({"cmd": "history", "code": "005930", **bad})
        assert err.value.field == field


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 2**31),
    st.sampled_from(["005930", "035720", "000660"]),
    st.integers(1000, 900000),
    st.sampled_from(["1d", "1m"]),
    st.integers(1, 800),
)
def test_sim_past_is_seeded_on_the_tick_grid_and_ends_at_the_base(
    seed: int, code: str, base: int, interval: str, count: int
) -> None:
    base = krx.snap(base)
    candles = past_candles(seed, code, base, interval, count, TODAY)
    assert len(candles) == count
    assert candles[-1][4] == base  # the last close is today's previous close
    starts = [c[0] for c in candles]
    assert starts == sorted(set(starts))
    for start, o, h, lo, c, v in candles:
        assert lo <= min(o, c) <= max(o, c) <= h and v > 0
        assert all(krx.is_on_tick(p) for p in (o, h, lo, c))
        when = datetime.datetime.fromtimestamp(start / 1000, KST)
        assert when.weekday() < 5 and when.date() < TODAY
        if interval == "1m":
            assert datetime.time(9, 0) <= when.time() <= datetime.time(15, 29)
    # the same seed gives the same past, and asking for more only reaches further back
    assert past_candles(seed, code, base, interval, count, TODAY) == candles
    longer = past_candles(seed, code, base, interval, count + 7, TODAY)
    assert longer[-count:] == candles


@pytest.mark.slow
async def test_backfill_is_stored_once_and_read_by_the_chart_query(
    pg: DbTarget, redis_url: str, tmp_path
) -> None:
    rconn = redis.Redis.from_url(redis_url)
    with EngineProcess(
        redis_url, settings={"sim.seed": 3, "sim.quote_rate": 50}, log_dir=str(tmp_path)
    ) as eng:
        eng.wait_ready(timeout=60)
        writer = Writer(writer_settings(redis_url, eng.keys, pg))
        task = asyncio.create_task(writer.run())
        try:
            await asyncio.wait_for(writer.ready.wait(), 60)
            replies = []
            for count in (120, 120, 60):  # twice the same, then a shorter one: nothing new
                r = await asyncio.to_thread(
                    eng.send, {"cmd": "history", "code": "005930", "interval": "1d", "count": count}
                )
                assert r["ok"], r
                replies.append(r["result"])
            minute = await asyncio.to_thread(
                eng.send, {"cmd": "history", "code": "005930", "interval": "1m", "count": 400}
            )
            assert minute["ok"] and minute["result"]["count"] == 400
            unknown = await asyncio.to_thread(
                eng.send, {"cmd": "history", "code": "999999", "interval": "1d"}
            )
            assert not unknown["ok"] and "unknown code" in unknown["error"]["message"]
        finally:
            await asyncio.to_thread(eng.stop)
        deadline = time.monotonic() + 60
        while True:
            g = rconn.xinfo_groups(eng.keys.events)[0]
            last = rconn.xrevrange(eng.keys.events, count=1)[0][0]
            if g["pending"] == 0 and g["last-delivered-id"] == last:
                break
            assert time.monotonic() < deadline, g
            await asyncio.sleep(0.05)
        writer.stop()
        await asyncio.wait_for(task, 30)
    assert replies[0]["count"] == 120 and replies[0]["source"] == "sim"
    assert replies[0]["last"] == replies[1]["last"] == replies[2]["last"]
    async with db_conn(pg) as conn:
        n_day = await conn.fetchval("SELECT count(*) FROM candle_history WHERE interval = '1d'")
        n_min = await conn.fetchval("SELECT count(*) FROM candle_history WHERE interval = '1m'")
        dead = await conn.fetchval("SELECT count(*) FROM dead_letters")
        end = datetime.datetime.now(KST) + datetime.timedelta(days=1)
        days = await history.candles(conn, "005930", "1d", end - datetime.timedelta(days=400), end)
        five = await history.candles(
            conn, "005930", "5m", end - datetime.timedelta(days=10), end, source="quotes"
        )
    assert (n_day, n_min, dead) == (120, 400, 0)
    past = [c for c in days if c["ticks"] == 0]
    assert len(past) == 120
    assert past[-1]["bucket"].astimezone(KST).time() == datetime.time(0, 0)
    assert int(past[-1]["bucket"].timestamp() * 1000) == replies[0]["last"]
    # 400 one-minute candles → 5-minute candles, aligned to the hour
    hist5 = [c for c in five if c["ticks"] == 0]
    assert 80 <= len(hist5) <= 81
    assert all(c["bucket"].minute % 5 == 0 for c in hist5)
