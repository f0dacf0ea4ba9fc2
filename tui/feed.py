"""The one feed worker: Redis → :class:`~tui.state.Store`, plus typed messages for what matters.

It PSUBSCRIBEs to ``P:ev:*``, then reads the ``P:state:*`` snapshot, then follows the events,
dropping those the snapshot already covered and re-reading the snapshot when a ``seq`` gap or a
new engine run shows it missed some. Once a second it polls the heartbeat, ``P:engine``,
``P:writer`` and the Redis round trip. When Redis goes away it says so and reconnects with
exponential backoff. Quotes only mark rows dirty (the app repaints on a timer); every order, fill,
reply and surge alert also becomes a message, one per event.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from textual.message import Message

from core.bus import Bus
from core.config import redact
from core.protocol import decode_envelope
from core.protocol.errors import ProtocolError
from core.protocol.events import Fill, Order, Surge

from .state import Store
from .triggers import TriggerChange, TriggerEvent, TriggerMarksEvent, TriggerMarksMoved

log = logging.getLogger(__name__)

#: Seconds between status polls (heartbeat, P:engine, P:writer, RTT).
POLL_S = 1.0
#: Reconnect backoff: first wait, ceiling.
BACKOFF_FIRST_S = 0.25
BACKOFF_MAX_S = 5.0
#: At most one snapshot re-read per this many seconds after seq gaps.
RESYNC_MIN_S = 1.0
#: The longest the worker waits for an event before it looks at requests (Ctrl+L) again.
WAKE_S = 0.25


# --- messages ---------------------------------------------------------------------------------


class FeedMessage(Message):
    """Base of the feed's messages (bubble to the app)."""


class FeedConnected(FeedMessage):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url


class FeedLost(FeedMessage):
    def __init__(self, error: str, retry_in: float) -> None:
        super().__init__()
        self.error = error
        self.retry_in = retry_in


class Resynced(FeedMessage):
    """The store was rebuilt from the snapshot (``reason``: connect, gap, new run)."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class OrderEvent(FeedMessage):
    def __init__(self, order: Order) -> None:
        super().__init__()
        self.order = order


class FillEvent(FeedMessage):
    def __init__(self, fill: Fill) -> None:
        super().__init__()
        self.fill = fill


class ReplyEvent(FeedMessage):
    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__()
        self.reply = reply


class SurgeEvent(FeedMessage):
    def __init__(self, surge: Surge) -> None:
        super().__init__()
        self.surge = surge


class EngineChanged(FeedMessage):
    """The engine's liveness or state changed (up/down, ready/halted)."""

    def __init__(self, alive: bool, state: str) -> None:
        super().__init__()
        self.alive = alive
        self.state = state


def message_for(item: Any) -> FeedMessage | None:
    if isinstance(item, Order):
        return OrderEvent(item)
    if isinstance(item, Fill):
        return FillEvent(item)
    if isinstance(item, Surge):
        return SurgeEvent(item)
    if isinstance(item, dict):
        return ReplyEvent(item)
    if isinstance(item, TriggerChange):
        return TriggerEvent(item.data)
    if isinstance(item, TriggerMarksMoved):
        return TriggerMarksEvent()
    return None


# --- the worker -------------------------------------------------------------------------------


class Feed:
    """Runs until cancelled. ``post`` delivers messages (normally ``App.post_message``)."""

    def __init__(
        self,
        bus_factory: Callable[[], Bus],
        store: Store,
        post: Callable[[Message], Any],
        poll_s: float = POLL_S,
    ) -> None:
        self.bus_factory = bus_factory
        self.store = store
        self.post = post
        self.poll_s = poll_s
        self.bus: Bus | None = None
        self.connected = asyncio.Event()
        self._want_resync = ""
        self._last_resync = 0.0
        self._engine_seen: tuple[bool, str] | None = None
        #: ``P:engine`` ``names_at`` when the master list was last read (None: never read).
        self._names_at: str | None = None
        self.envelopes = 0
        self.bad_envelopes = 0

    def request_resync(self, reason: str = "asked") -> None:
        self._want_resync = reason

    async def run(self) -> None:
        backoff = BACKOFF_FIRST_S
        while True:
            bus = self.bus_factory()
            self.bus = bus
            try:
                await self._session(bus)
            except asyncio.CancelledError:
                await self._close(bus)
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError, RedisError) as exc:
                self.connected.clear()
                st = self.store.status
                first_failure = st.redis_up or not st.redis_error
                st.redis_up = False
                st.redis_error = _short(exc)
                st.rtt_ms = None
                self.store.dirty.status = True
                wait = backoff * (1 + random.random() * 0.2)
                self.post(FeedLost(st.redis_error, wait))
                if first_failure:
                    log.warning("redis %s lost: %s", redact(bus.url), st.redis_error)
                await self._close(bus)
                await asyncio.sleep(wait)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            backoff = BACKOFF_FIRST_S

    async def _close(self, bus: Bus) -> None:
        try:
            await bus.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail any way
            pass

    async def _session(self, bus: Bus) -> None:
        pubsub = bus.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(bus.keys.ev_pattern)
            await self._resync(bus, "connect")
            st = self.store.status
            st.redis_up = True
            st.redis_error = ""
            self.connected.set()
            self.post(FeedConnected(redact(bus.url)))
            await self._poll(bus)
            next_poll = time.monotonic() + self.poll_s
            while True:
                wake = next_poll
                if self._want_resync:  # a gap: do not wait for the next event
                    wake = min(wake, self._last_resync + RESYNC_MIN_S)
                # Wake at least every WAKE_S, so Ctrl+L acts while no event comes.
                timeout = min(WAKE_S, max(0.0, wake - time.monotonic()))
                msg = await pubsub.get_message(timeout=timeout)
                _raise_if_cancelled()
                if msg is not None and msg.get("type") == "pmessage":
                    self._handle(msg["data"])
                    # Drain what is already buffered without awaiting the poll timer.
                    for _ in range(256):
                        more = await pubsub.get_message(timeout=0)
                        if more is None:
                            break
                        if more.get("type") == "pmessage":
                            self._handle(more["data"])
                if self._want_resync and time.monotonic() - self._last_resync >= RESYNC_MIN_S:
                    await self._resync(bus, self._want_resync)
                if time.monotonic() >= next_poll:
                    await self._poll(bus)
                    next_poll = time.monotonic() + self.poll_s
        finally:
            try:
                await pubsub.aclose()
            except Exception:  # noqa: BLE001
                pass

    def _handle(self, raw: bytes | str) -> None:
        try:
            env = decode_envelope(raw)
        except ProtocolError:
            self.bad_envelopes += 1
            return
        self.envelopes += 1
        store = self.store
        verdict = store.seq_check(env)
        if verdict == "old":
            return
        if verdict == "gap" and not self._want_resync:
            self._want_resync = "new run" if store.run and env.run != store.run else "gap"
        for item in store.apply(env):
            msg = message_for(item)
            if msg is not None:
                self.post(msg)

    async def _resync(self, bus: Bus, reason: str) -> None:
        snap = await bus.read_snapshot()
        self.store.load_snapshot(snap)
        self.store.status.resyncs += 1
        self._want_resync = ""
        self._last_resync = time.monotonic()
        self.post(Resynced(reason))

    async def _poll(self, bus: Bus) -> None:
        st = self.store.status
        start = time.perf_counter()
        async with bus.redis.pipeline(transaction=False) as pipe:
            pipe.pttl(bus.keys.engine_alive)
            pipe.hgetall(bus.keys.engine)
            pipe.hgetall(bus.keys.writer)
            pttl, engine, writer = await pipe.execute()
        st.rtt_ms = (time.perf_counter() - start) * 1000.0
        st.alive = pttl is not None and pttl >= 0
        st.heartbeat_age_ms = max(0, 3000 - int(pttl)) if st.alive else None
        st.heartbeat_read_ms = self.store.clock_ms()
        if engine:
            st.info = {_text(k): _text(v) for k, v in engine.items()}
        st.writer = {_text(k): _text(v) for k, v in writer.items()}
        self.store.dirty.status = True
        active = st.info.get("watchgroup", "")
        if active and self.store.groups and active != self.store.group:
            # Another console (or a script) switched the engine's watchlist group.
            self._want_resync = self._want_resync or "watchlist group"
        names_at = st.info.get("names_at", "")
        if names_at != self._names_at:
            # At start, and when the engine (re)wrote P:state:names: read the list once.
            self._names_at = names_at
            self.store.load_master(await bus.read_names())
        seen = (st.alive, st.state)
        if seen != self._engine_seen:
            self._engine_seen = seen
            self.post(EngineChanged(st.alive, st.state))
            run = st.info.get("run_id", "")
            if st.alive and run and self.store.run and run != self.store.run:
                self._want_resync = "new run"


def _raise_if_cancelled() -> None:
    """Python 3.11's ``asyncio.timeout`` (inside redis-py's read) can swallow a cancel that
    lands as its own deadline passes: the read returns, the task stays marked cancelling, and
    the loop would read on forever (whoever cancelled waits; tests/tui/test_feed.py hung 1 run
    in 4). Honour such a cancel here (Python 3.12's asyncio.timeout no longer swallows it)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _short(exc: BaseException) -> str:
    text = redact(str(exc)) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."
