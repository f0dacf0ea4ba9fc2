"""Envelope factories and a way to run the writer in-process until it has caught up."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import redis

from core.protocol import Envelope, Keys
from core.writer import Writer, WriterSettings

BASE_TS = 1795400000000  # 2026-11-17 09:13:20 KST, in ms


class Engine:
    """Makes envelopes as the engine does: one run, seq from 1, shared by all types."""

    def __init__(self, run: str = "20261123-0900-aa11", ts: int = BASE_TS) -> None:
        self.run = run
        self.seq = 0
        self.ts = ts

    def env(self, etype: str, data: dict[str, Any], ts: int | None = None) -> Envelope:
        self.seq += 1
        self.ts = self.ts + 1 if ts is None else ts
        return Envelope(etype, self.run, self.seq, self.ts, data)

    def skip(self, n: int) -> None:
        """Lose ``n`` seqs (as when the engine drops quotes from a full buffer)."""
        self.seq += n


def quote(code: str = "005930", price: int = 70000, **kw: Any) -> dict[str, Any]:
    q = {
        "code": code,
        "price": price,
        "change": kw.pop("change", 0),
        "change_pct": kw.pop("change_pct", 0.0),
        "volume": kw.pop("volume", 1000),
        "trade_qty": kw.pop("trade_qty", 10),
        "open": kw.pop("open", price),
        "high": kw.pop("high", price),
        "low": kw.pop("low", price),
        "ask": kw.pop("ask", price + 100),
        "bid": kw.pop("bid", price),
        "time": kw.pop("time", "091320"),
    }
    q.update(kw)
    return q


def random_quotes(rng: random.Random, n: int, codes: tuple[str, ...] = ("005930", "000660")):
    return [
        quote(rng.choice(codes), rng.randrange(500, 1500) * 100, trade_qty=rng.randint(-500, 500))
        for _ in range(n)
    ]


def xadd(r: redis.Redis, keys: Keys, envelopes: list[Envelope] | list[str]) -> list[str]:
    pipe = r.pipeline(transaction=False)
    for e in envelopes:
        pipe.xadd(keys.events, {"e": e if isinstance(e, str) else e.encode()})
    return [i.decode() if isinstance(i, bytes) else i for i in pipe.execute()]


def settings(redis_url: str, keys: Keys, target: Any, **kw: Any) -> WriterSettings:
    base = dict(
        redis_url=redis_url,
        dsn=target.dsn,
        prefix=keys.prefix,
        db_schema=target.schema,
        batch_rows=kw.pop("batch_rows", 5000),
        batch_ms=kw.pop("batch_ms", 50),
        claim_idle_ms=kw.pop("claim_idle_ms", 60000),
        health_every_s=kw.pop("health_every_s", 0.2),
        block_ms=kw.pop("block_ms", 100),
    )
    base.update(kw)
    return WriterSettings(**base)


async def run_until_caught_up(
    writer: Writer, r: redis.Redis, keys: Keys, timeout: float = 60.0
) -> None:
    """Run ``writer`` until every entry of the stream is written and acknowledged, then stop."""
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(writer.ready.wait(), timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if task.done():
                task.result()
                raise AssertionError("the writer stopped by itself")
            groups = r.xinfo_groups(keys.events)
            group = next(g for g in groups if g["name"] in (b"writer", "writer"))
            last = r.xrevrange(keys.events, count=1)
            last_id = last[0][0] if last else b"0-0"
            if group["pending"] == 0 and group["last-delivered-id"] == last_id:
                break
            if loop.time() > deadline:
                raise AssertionError(f"the writer did not catch up: {group}")
            await asyncio.sleep(0.05)
    finally:
        writer.stop()
        await asyncio.wait_for(task, 30)
