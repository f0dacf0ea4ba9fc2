"""The feed worker on a real Redis, without the UI: every order event arrives, in order; seq gaps
and a new engine run rebuild the store from the snapshot."""

from __future__ import annotations

import asyncio

import pytest
import tui_seed
from tui_helpers import until

from core.bus import Bus
from core.protocol import Envelope, Keys
from tui.feed import Feed, FeedConnected, OrderEvent, Resynced
from tui.state import Store

pytestmark = pytest.mark.timeout(60)


async def sleep(s: float) -> None:
    await asyncio.sleep(s)


@pytest.fixture
async def running_feed(redis_url, redis_client, aredis, prefix):
    # Both flushing client fixtures are set up before the seed, so neither wipes it.
    tui_seed.seed(redis_client, prefix)
    store = Store()
    got: list = []
    feed = Feed(lambda: Bus(redis_url, prefix), store, got.append, poll_s=0.2)
    task = asyncio.create_task(feed.run())
    await until(sleep, lambda: any(isinstance(m, FeedConnected) for m in got), 10, "connected")
    yield feed, store, got
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_every_order_event_reaches_the_app_in_order(running_feed, aredis, prefix) -> None:
    feed, store, got = running_feed
    k = Keys(prefix)
    n = 300
    async with aredis.pipeline(transaction=False) as pipe:
        for i in range(n):
            seq = 101 + 2 * i
            quotes = {"items": [{"code": "005930", "price": 70000 + i}]}
            pipe.publish(k.ev("quotes"), Envelope("quotes", tui_seed.RUN, seq, 1, quotes).encode())
            order = {
                "order_id": "X1",
                "code": "005930",
                "side": "buy",
                "qty": n,
                "filled_qty": i + 1,
                "remaining_qty": n - i - 1,
                "status": "partially_filled" if i + 1 < n else "filled",
            }
            pipe.publish(k.ev("order"), Envelope("order", tui_seed.RUN, seq + 1, 1, order).encode())
        await pipe.execute()
    await until(
        sleep, lambda: sum(isinstance(m, OrderEvent) for m in got) == n, 10, "all order events"
    )
    filled = [m.order.filled_qty for m in got if isinstance(m, OrderEvent)]
    assert filled == list(range(1, n + 1))
    assert store.orders["X1"].status == "filled" and store.last_price("005930") == 70000 + n - 1
    assert not any(isinstance(m, Resynced) and m.reason != "connect" for m in got)


async def test_a_seq_gap_and_a_new_run_rebuild_from_the_snapshot(
    running_feed, aredis, redis_client, prefix
) -> None:
    feed, store, got = running_feed
    k = Keys(prefix)
    assert store.last_seq == 100
    # Something the engine published was lost (seq 101-104): the snapshot has the truth.
    redis_client.hset(k.state_quotes, "000660", '{"code":"000660","price":190000,"change":5000}')
    redis_client.hset(k.engine, "seq", "105")
    await aredis.publish(
        k.ev("log"),
        Envelope(
            "log", tui_seed.RUN, 105, 1, {"level": "INFO", "logger": "x", "message": "m"}
        ).encode(),
    )
    await until(
        sleep,
        lambda: any(isinstance(m, Resynced) and m.reason == "gap" for m in got),
        10,
        "a resync",
    )
    assert store.last_price("000660") == 190000
    # The engine restarted: a new run id.
    redis_client.hset(k.engine, mapping={"run_id": "run-2", "seq": "3"})
    await aredis.publish(
        k.ev("log"),
        Envelope("log", "run-2", 4, 1, {"level": "INFO", "logger": "x", "message": "m"}).encode(),
    )
    await until(
        sleep,
        lambda: any(isinstance(m, Resynced) and m.reason == "new run" for m in got),
        10,
        "the new run's snapshot",
    )
    assert store.run == "run-2" and store.status.info["run_id"] == "run-2"
