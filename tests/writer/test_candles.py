"""Candles from the writer's tables equal candles computed by hand from the same quotes:
from ``quotes`` on both servers, and from the continuous aggregates on TimescaleDB."""

from __future__ import annotations

import datetime
import random

import pytest
import redis

from core import history
from core.protocol import Keys
from core.protocol.krx import KST
from core.writer import Writer

from .conftest import DbTarget, db_conn
from .helpers import Engine, quote, run_until_caught_up, settings, xadd

UTC = datetime.timezone.utc
# 2026-11-23 23:50 KST: a day boundary (KST) falls inside the data
START = datetime.datetime(2026, 11, 23, 23, 50, tzinfo=KST)


def make_quotes(seed: int) -> tuple[Engine, list, list[tuple[int, int, int, str, int, int]]]:
    """Batched quote envelopes over ~25 minutes; returns the flat list of
    (ts_ms, seq, i, code, price, trade_qty) in stream order."""
    rng = random.Random(seed)
    eng = Engine(run=f"20261123-2350-{seed:04x}", ts=int(START.timestamp() * 1000))
    envs, flat = [], []
    ts = eng.ts
    for _ in range(120):
        ts += rng.randint(1000, 25000)
        items = [
            quote(
                rng.choice(("005930", "000660")),
                rng.randrange(600, 800) * 100,
                trade_qty=rng.randint(-300, 300),
            )
            for _ in range(rng.randint(1, 6))
        ]
        env = eng.env("quotes", {"items": items}, ts=ts)
        envs.append(env)
        for i, q in enumerate(items):
            flat.append((ts, env.seq, i, q["code"], q["price"], q["trade_qty"]))
    return eng, envs, flat


def by_hand(flat, code: str, minutes: int) -> list[tuple]:
    """(bucket start, open, high, low, close, volume) per bucket, buckets aligned to KST."""
    origin = int(datetime.datetime(2000, 1, 3, tzinfo=KST).timestamp() * 1000)
    width = minutes * 60000
    out: dict[int, list] = {}
    for ts, _seq, _i, c, price, qty in sorted(flat, key=lambda t: (t[0], t[1], t[2])):
        if c != code:
            continue
        b = origin + (ts - origin) // width * width
        bar = out.get(b)
        if bar is None:
            out[b] = [price, price, price, price, abs(qty)]
        else:
            bar[1] = max(bar[1], price)
            bar[2] = min(bar[2], price)
            bar[3] = price
            bar[4] += abs(qty)
    return [
        (datetime.datetime.fromtimestamp(b / 1000, UTC), *bar) for b, bar in sorted(out.items())
    ]


def as_tuples(rows: list[dict]) -> list[tuple]:
    for r in rows:
        assert r["bucket"].tzinfo is not None
    return [(r["bucket"], r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows]


@pytest.mark.parametrize("seed", [1, 2])
async def test_candles_equal_those_computed_by_hand(
    db: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis, seed: int
) -> None:
    eng, envs, flat = make_quotes(seed)
    xadd(rconn, keys, envs)
    await run_until_caught_up(Writer(settings(redis_url, keys, db, batch_rows=97)), rconn, keys)

    lo = START - datetime.timedelta(days=1)
    hi = START + datetime.timedelta(days=1)
    async with db_conn(db) as conn:
        assert await history.has_candle_views(conn) is db.timescale
        if db.timescale:
            for view in ("candles_1m", "candles_1d"):
                await conn.execute(
                    f"CALL refresh_continuous_aggregate('{view}', $1::timestamptz, $2::timestamptz)",
                    lo,
                    hi,
                )
        sources = ["quotes", "aggregate"] if db.timescale else ["quotes"]
        for code in ("005930", "000660"):
            for interval in ("1m", "5m", "15m", "1d"):
                minutes = history.INTERVALS[interval]
                want = by_hand(flat, code, minutes)
                assert want, "the data set has quotes of every code"
                for source in sources:
                    got = await history.candles(conn, code, interval, lo, hi, source=source)
                    assert as_tuples(got) == want, (code, interval, source)
        # a range cut in the middle: only buckets starting inside it
        cut = START + datetime.timedelta(minutes=12)
        got = await history.candles(conn, "005930", "5m", cut, hi)
        assert [g["bucket"] for g in got] == [
            w[0] for w in by_hand(flat, "005930", 5) if w[0] >= cut
        ]
        # the day boundary is midnight in Seoul
        days = await history.candles(conn, "005930", "1d", lo, hi)
        assert len(days) == 2
        assert days[1]["bucket"].astimezone(KST).time() == datetime.time(0, 0)


async def test_aggregates_follow_new_quotes_without_a_refresh(
    ts: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    """candles_1m is real-time: quotes not yet materialised still show."""
    eng, envs, flat = make_quotes(3)
    xadd(rconn, keys, envs)
    await run_until_caught_up(Writer(settings(redis_url, keys, ts)), rconn, keys)
    lo, hi = START - datetime.timedelta(hours=1), START + datetime.timedelta(hours=1)
    async with db_conn(ts) as conn:
        got = await history.candles(conn, "000660", "1m", lo, hi, source="aggregate")
    assert as_tuples(got) == by_hand(flat, "000660", 1)


async def test_fills_and_orders_of_today(
    db: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    today = datetime.datetime.now(KST).replace(hour=10, minute=0, second=0, microsecond=0)
    yesterday = today - datetime.timedelta(days=1)
    eng = Engine(ts=int(yesterday.timestamp() * 1000))

    def order(oid: str, status: str, filled: int) -> dict:
        return {
            "order_id": oid,
            "code": "005930",
            "side": "buy",
            "qty": 10,
            "price": 70000,
            "filled_qty": filled,
            "remaining_qty": 10 - filled,
            "status": status,
        }

    def fill(fid: str, oid: str, qty: int) -> dict:
        return {
            "fill_id": fid,
            "order_id": oid,
            "code": "005930",
            "side": "buy",
            "qty": qty,
            "price": 70000,
        }

    t0 = int(today.timestamp() * 1000)
    envs = [
        eng.env("order", order("old", "filled", 10)),
        eng.env("fill", fill("f0", "old", 10)),
        eng.env("order", order("A", "accepted", 0), ts=t0),
        eng.env("order", order("A", "partially_filled", 4), ts=t0 + 1000),
        eng.env("fill", fill("f1", "A", 4), ts=t0 + 1000),
        eng.env("order", order("B", "accepted", 0), ts=t0 + 2000),
        eng.env("order", order("A", "filled", 10), ts=t0 + 3000),
        eng.env("fill", fill("f2", "A", 6), ts=t0 + 3000),
    ]
    xadd(rconn, keys, envs)
    await run_until_caught_up(Writer(settings(redis_url, keys, db)), rconn, keys)
    async with db_conn(db) as conn:
        fills = await history.fills_today(conn)
        latest = await history.orders_today(conn)
        every = await history.orders_today(conn, latest_only=False)
        old = await history.fills_today(conn, day=yesterday.date())
    assert [f["fill_id"] for f in fills] == ["f1", "f2"]
    assert all(f["ts"].tzinfo is not None for f in fills)
    assert [(o["order_id"], o["status"]) for o in latest] == [("B", "accepted"), ("A", "filled")]
    assert [o["status"] for o in every] == ["accepted", "partially_filled", "accepted", "filled"]
    assert [f["fill_id"] for f in old] == ["f0"]
