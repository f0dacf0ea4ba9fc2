"""Fixtures of the gateway tests: the real sim engine, the gateway in the test's event loop,
and ``websockets`` clients.

``start_gateway(url, prefix, **settings)`` runs :class:`core.gateway.server.Gateway` on a free
port of 127.0.0.1 until the test ends; tokens: ``reader`` (read) and ``alice`` (trade).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from core.gateway.auth import TokenStore, hash_line
from core.gateway.server import Gateway
from core.gateway.settings import GatewaySettings
from tests.helpers.engine_process import EngineProcess

READ_TOKEN = "read-token-0123456789abcdef"
TRADE_TOKEN = "trade-token-0123456789abcdef"
#: the read token stored hashed, the trade token in clear (both forms are accepted)
TOKENS = "\n".join(
    [hash_line("reader", "read", READ_TOKEN), "alice:trade:" + TRADE_TOKEN, "# a comment", ""]
)
ENGINE_SETTINGS = {"sim.seed": 7, "sim.quote_rate": 200, "sim.burst_every_s": 0}


@pytest.fixture
def prefix() -> str:
    return "gw" + uuid.uuid4().hex[:8]


@pytest.fixture
def engine(redis_url: str, prefix: str, tmp_path: Any) -> Iterator[EngineProcess]:
    eng = EngineProcess(redis_url, prefix=prefix, settings=ENGINE_SETTINGS, log_dir=str(tmp_path))
    eng.start()
    try:
        eng.wait_ready(timeout=30)
        yield eng
    finally:
        eng.close()


@pytest.fixture
async def start_gateway() -> AsyncIterator[Callable[..., Any]]:
    running: list[tuple[asyncio.Event, asyncio.Task[Any]]] = []

    async def start(url: str, prefix: str, **settings: Any) -> Gateway:
        s = GatewaySettings(redis_url=url, prefix=prefix, port=0, **settings)
        gw = Gateway(s, TokenStore.parse(TOKENS, "test tokens"))
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.ensure_future(gw.run(stop, ready))
        running.append((stop, task))
        await asyncio.wait_for(ready.wait(), 10)
        return gw

    yield start
    for stop, task in running:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


def ws_url(gw: Gateway, channel: str, query: str = "") -> str:
    assert gw.address is not None
    host, port = gw.address
    return "ws://{}:{}/ws/{}{}".format(host, port, channel, "?" + query if query else "")


def open_ws(gw: Gateway, channel: str, token: str | None = READ_TOKEN, query: str = "", **kw: Any):
    headers = {"Authorization": "Bearer " + token} if token else None
    return connect(ws_url(gw, channel, query), additional_headers=headers, **kw)


async def next_of(ws: Any, kind: str | None = None, *, timeout: float = 20.0) -> dict[str, Any]:
    """The next message (of ``type`` ``kind``), skipping others."""

    async def wait() -> dict[str, Any]:
        while True:
            msg = json.loads(await ws.recv())
            if kind is None or msg.get("type") == kind:
                return msg

    return await asyncio.wait_for(wait(), timeout)
