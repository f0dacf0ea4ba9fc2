"""The Redis side of the gateway: one Pub/Sub subscription to ``P:ev:*``, and snapshots.

Every event is read once and offered to each connection of the channels its topic routes to
(:mod:`.routes`); a connection's filter and queue decide the rest. When Redis goes away the
hub tells every client (``{"type": "gateway", "data": {"redis": "down"}}``), retries with
backoff (0.1 s doubling to 2 s) and, once back, tells them again and sends each a fresh
snapshot: what happened meanwhile is in the snapshot, and the ``seq`` gap shows it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.bus import Bus
from core.protocol import Keys, now_ms

from .routes import channels_for, is_droppable

log = logging.getLogger("kc.gateway")

_RUN = re.compile(r'"run"\s*:\s*"([^"]*)"')
_SEQ = re.compile(r'"seq"\s*:\s*(\d+)')


class Live:
    """One event from Pub/Sub, decoded once and shared by every connection it goes to."""

    __slots__ = ("topic", "text", "run", "seq", "droppable", "_obj", "_count")

    def __init__(self, topic: str, text: str) -> None:
        self.topic = topic
        self.text = text
        head = text[:300]  # the engine writes v, type, run, seq, ts before data
        run, seq = _RUN.search(head), _SEQ.search(head)
        self.run = run.group(1) if run else ""
        self.seq = int(seq.group(1)) if seq else -1
        self.droppable = is_droppable(topic)
        self._obj: dict[str, Any] | None = None
        self._count = -1

    @property
    def obj(self) -> dict[str, Any]:
        if self._obj is None:
            try:
                obj = json.loads(self.text)
            except ValueError:
                obj = {}
            self._obj = obj if isinstance(obj, dict) else {}
        return self._obj

    def items(self) -> list[Any] | None:
        data = self.obj.get("data")
        items = data.get("items") if isinstance(data, dict) else None
        return items if isinstance(items, list) else None

    @property
    def count(self) -> int:
        """Quotes carried (1 for anything that is not a batch)."""
        if self._count < 0:
            self._count = self.text.count('"code"') or 1 if self.droppable else 1
        return self._count

    def for_codes(self, codes: set[str]) -> tuple[str | None, int]:
        """(text with only ``codes``' items, how many), ``(None, 0)`` when nothing is left.

        The envelope is unchanged but for ``data.items`` (or the whole event is kept or not, by
        ``data.code``, for single-code events).
        """
        items = self.items()
        if items is None:
            data = self.obj.get("data")
            code = data.get("code") if isinstance(data, dict) else None
            if code is None or code in codes:
                return self.text, 1
            return None, 0
        kept = [q for q in items if isinstance(q, dict) and q.get("code") in codes]
        if not kept:
            return None, 0
        if len(kept) == len(items):
            return self.text, len(kept)
        out = dict(self.obj)
        out["data"] = dict(out["data"], items=kept)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":")), len(kept)


def notice(kind: str, **data: Any) -> str:
    """A message the gateway itself makes (``gateway``, ``dropped``, ``stats``, ``error``)."""
    return json.dumps(
        {"v": 1, "type": kind, "ts": now_ms(), "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
    )


class Hub:
    """Reads ``P:ev:*`` and the snapshots; ``on_event``/``on_redis`` are the server's hooks."""

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        on_event: Callable[[str, Live], None],
        on_redis: Callable[[bool, str], None],
    ) -> None:
        self.keys = Keys(prefix)
        self.redis = aioredis.from_url(
            redis_url, socket_connect_timeout=2.0, health_check_interval=5
        )
        self.bus = Bus(redis_url, prefix, client=self.redis)
        self.on_event = on_event
        self.on_redis = on_redis
        self.up = False
        self._reported_down = False
        self.events = 0
        self.reconnects = 0

    async def close(self) -> None:
        await self.redis.aclose()

    async def run(self) -> None:
        """Follow ``P:ev:*`` forever, through outages."""
        head = self.keys.prefix + ":ev:"
        delay = 0.1
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(self.keys.ev_pattern)
                if not self.up:
                    self.up, delay = True, 0.1
                    if self._reported_down:  # not at start: clients were told it was down
                        self._reported_down = False
                        self.on_redis(True, "")
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is None or msg.get("type") != "pmessage":
                        continue
                    channel = msg["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode("utf-8", "replace")
                    data = msg["data"]
                    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
                    topic = channel[len(head) :]
                    self.events += 1
                    for ch in channels_for(topic):
                        self.on_event(ch, Live(topic, text))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.up or not self._reported_down:
                    self.reconnects += int(self.up)
                    self.up, self._reported_down = False, True
                    self.on_redis(False, type(exc).__name__)
                    log.warning("Redis unreachable (%s); retrying", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # noqa: BLE001 - the connection is already gone
                    pass

    async def snapshot(self, channel: str, codes: set[str] | None) -> str:
        """The ``snapshot`` message for a channel: the state it shows and the ``seq`` it reflects.

        ``codes`` (market only): the quotes of these codes (``None``: every code).
        """
        snap = await self.bus.read_snapshot()
        data: dict[str, Any] = {"channel": channel, "engine": snap.engine, "alive": snap.alive}
        if channel == "market":
            quotes = snap.quotes
            if codes is not None:
                quotes = {c: q for c, q in quotes.items() if c in codes}
            data["quotes"] = quotes
            data["watchlist"] = snap.watchlist
        elif channel == "orders":
            data["orders"] = snap.orders
        elif channel == "positions":
            data["positions"] = snap.positions
            data["account"] = snap.account
        elif channel == "surge":
            data["surge"] = snap.surge
        return json.dumps(
            {
                "v": 1,
                "type": "snapshot",
                "run": snap.run,
                "seq": snap.last_seq,
                "ts": now_ms(),
                "data": data,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
