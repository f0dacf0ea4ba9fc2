"""Slow clients, keep-alive and Redis outages, with events published straight into Redis
(as the engine publishes them) so the test controls how many and how large."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from typing import Any

import pytest
import redis.asyncio as aioredis
from websockets.exceptions import ConnectionClosed

from core.devservers import RedisServer, free_port
from core.protocol import Keys

from .conftest import READ_TOKEN, next_of, open_ws

pytestmark = pytest.mark.slow
RUN = "20261202-0900-abcdef"


def envelope(kind: str, seq: int, data: dict[str, Any]) -> str:
    body = {"v": 1, "type": kind, "run": RUN, "seq": seq, "ts": 1795400000000 + seq, "data": data}
    return json.dumps(body, separators=(",", ":"))


def quotes(seq: int, n: int) -> str:
    items = [
        {"code": "{:06d}".format(100000 + i), "price": 70000 + seq, "volume": i, "ts": seq}
        for i in range(n)
    ]
    return envelope("quotes", seq, {"items": items})


def order(seq: int, pad: int) -> str:
    return envelope("order", seq, {"order_id": "S{:06d}".format(seq), "note": "x" * pad})


async def wait_until(predicate, what: str, timeout: float = 30.0) -> None:
    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(loop(), timeout)
    except asyncio.TimeoutError:
        pytest.fail("timed out waiting for " + what)


async def collect(ws, kind: str, count: int) -> list[int]:
    seqs: list[int] = []
    while len(seqs) < count:
        seqs.append((await next_of(ws, kind, timeout=60))["seq"])
    return seqs


async def test_slow_market_client_loses_quotes_only_and_never_delays_a_fast_one(
    redis_url, prefix, start_gateway
):
    gw = await start_gateway(redis_url, prefix, queue_max=20)
    r = aioredis.from_url(redis_url)
    ch = Keys(prefix).ev("quotes")
    async with open_ws(gw, "market", query="codes=*") as fast, open_ws(
        gw, "market", query="codes=*", max_queue=1
    ) as slow:
        await next_of(fast, "snapshot")
        await next_of(slow, "snapshot")
        flood = 300
        reader = asyncio.ensure_future(collect(fast, "quotes", flood))
        for seq in range(1, flood + 1):
            await r.publish(ch, quotes(seq, 400))  # ~25 kB each, 7.5 MB in all
        # The fast client gets every batch, in order, while the slow one reads nothing.
        assert await asyncio.wait_for(reader, 60) == list(range(1, flood + 1))
        await wait_until(
            lambda: any(c.outbox.total_dropped_quotes for c in gw.clients["market"]),
            "the slow client's quotes to be dropped",
        )
        # A status event (the engine's state) is never dropped, even for the slow client.
        await r.publish(
            Keys(prefix).ev("status"), envelope("status", flood + 1, {"state": "ready"})
        )
        dropped = None
        got: list[int] = []
        while True:
            msg = json.loads(await asyncio.wait_for(slow.recv(), 30))
            if msg["type"] == "dropped":
                dropped = msg["data"]
            elif msg["type"] == "quotes":
                got.append(msg["seq"])
            elif msg["type"] == "status":
                break
        assert dropped is not None and dropped["quotes"] > 0 and dropped["messages"] > 0
        assert 1 <= dropped["first_seq"] <= dropped["last_seq"] <= flood
        assert got == sorted(got) and len(got) < flood  # a gap the client can see in seq
        stats = gw.snapshot_stats()
        assert stats["dropped_quotes"] >= dropped["quotes"] and stats["slow_disconnects"] == 0
        assert stats["dropped_messages"] >= dropped["messages"]
        await slow.send(json.dumps({"op": "snapshot"}))  # still connected
        await next_of(slow, "snapshot")
    await r.aclose()


async def test_a_client_that_cannot_keep_up_with_orders_is_disconnected(
    redis_url, prefix, start_gateway
):
    gw = await start_gateway(redis_url, prefix, queue_max=20)
    r = aioredis.from_url(redis_url)
    ch = Keys(prefix).ev("order")
    async with open_ws(gw, "orders") as fast, open_ws(gw, "orders", max_queue=1) as slow:
        await next_of(fast, "snapshot")
        await next_of(slow, "snapshot")
        flood = 400
        reader = asyncio.ensure_future(collect(fast, "order", flood))
        for seq in range(1, flood + 1):
            await r.publish(ch, order(seq, 60000))  # 24 MB in all: more than any buffer
        assert await asyncio.wait_for(reader, 60) == list(range(1, flood + 1))
        await wait_until(
            lambda: gw.snapshot_stats()["slow_disconnects"] == 1, "the slow client to be shed"
        )
        assert gw.snapshot_stats()["connections"]["orders"] == 1
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(slow.recv(), 30)
    await r.aclose()


async def test_ping_pong_keeps_a_quiet_client_and_drops_a_dead_one(
    redis_url, prefix, start_gateway
):
    gw = await start_gateway(
        redis_url, prefix, ping_interval_s=0.1, ping_timeout_s=0.5, idle_timeout_s=0.5
    )
    async with open_ws(gw, "orders", ping_interval=None) as ws:
        await next_of(ws, "snapshot")
        # Nothing to receive for six idle timeouts: the client's automatic pongs keep it open.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), 3.0)
        await ws.send(json.dumps({"op": "ping"}))
        assert (await next_of(ws, "pong"))["type"] == "pong"

    # A peer that never answers a ping (a raw socket that stops reading) is closed with 1011.
    host, port = gw.address
    sock = socket.create_connection((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws/orders HTTP/1.1\r\nHost: {}:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n"
            "Authorization: Bearer {}\r\n\r\n"
        )
        .format(host, port, key, READ_TOKEN)
        .encode()
    )
    received = bytearray()
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    while True:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 30)
        if not chunk:
            break  # the gateway closed the connection
        received += chunk
    sock.close()
    assert b"101 Switching Protocols" in received
    assert b"\x88" in received and (1011).to_bytes(2, "big") + b"keepalive" in received


async def test_a_redis_restart_is_survived(tmp_path, start_gateway):
    server = RedisServer(tmp_path / "redis", port=free_port("127.0.0.1"))
    server.start()
    try:
        prefix = "gwr"
        gw = await start_gateway(server.url, prefix)
        async with open_ws(gw, "orders") as ws:
            first = await next_of(ws, "snapshot")
            assert first["seq"] == -1  # no engine: nothing reflected yet
            server.stop()
            down = await next_of(ws, "gateway")
            assert down["data"]["redis"] == "down"
            server.start()
            r = aioredis.from_url(server.url)
            await r.hset(Keys(prefix).engine, mapping={"run_id": RUN, "seq": 41})
            up = await next_of(ws, "gateway")
            assert up["data"]["redis"] == "up"
            snap = await next_of(ws, "snapshot")
            assert snap["seq"] in (-1, 41)

            # Live again: an event published now arrives.
            async def publish_until_seen() -> dict[str, Any]:
                while True:
                    await r.publish(Keys(prefix).ev("order"), order(42, 10))
                    try:
                        return await next_of(ws, "order", timeout=0.5)
                    except asyncio.TimeoutError:
                        continue

            got = await asyncio.wait_for(publish_until_seen(), 30)
            assert got["seq"] == 42
            assert gw.snapshot_stats()["redis_reconnects"] == 1
            await r.aclose()
    finally:
        server.stop()


async def test_future_topics_are_routed_by_what_they_are(redis_url, prefix, start_gateway):
    """Topics other issues add (trigger, alert, book) reach the channel they belong to."""
    gw = await start_gateway(redis_url, prefix)
    r = aioredis.from_url(redis_url)
    head = prefix + ":ev:"
    async with open_ws(gw, "surge") as surge, open_ws(gw, "market", query="codes=005930") as mkt:
        await next_of(surge, "snapshot")
        await next_of(mkt, "snapshot")
        await r.publish(head + "log", envelope("log", 1, {"message": "not for clients"}))
        await r.publish(head + "trigger", envelope("trigger", 2, {"code": "005930"}))
        await r.publish(head + "alert", envelope("alert", 3, {"code": "000660"}))
        await r.publish(head + "book", envelope("book", 4, {"code": "000660", "asks": []}))
        await r.publish(head + "book", envelope("book", 5, {"code": "005930", "asks": []}))
        assert [(await next_of(surge))["type"] for _ in range(2)] == ["trigger", "alert"]
        book = await next_of(mkt)
        assert book["type"] == "book" and book["seq"] == 5  # the filter applies to books too
    await r.aclose()
