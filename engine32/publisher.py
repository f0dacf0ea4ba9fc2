"""The publisher thread: drains an in-process buffer and pipelines it to Redis.

The Qt thread only appends :class:`Item` objects (never waits on the network); this thread
turns them into Redis commands (PUBLISH ``P:ev:<topic>``, XADD ``P:events``, the
``P:state:*`` writes, reply lists, the dedupe record) and sends them in one pipeline per
round. While Redis is away the buffer holds up to ``capacity`` items: beyond it the oldest
*quote* batches are dropped and counted, never orders, fills or replies (those are dropped
only past ``10 × capacity``, when memory is the real risk, and then logged as errors).
After a reconnect ``on_reconnect`` is called (from this thread) so the engine can republish
its snapshots.
"""

import collections
import itertools
import json
import logging
import math
import re
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Sequence, Tuple

import redis

from core.config import redact
from core.protocol import Envelope, Keys
from core.protocol.names import REPLY_TTL_S, WRITER_GROUP

log = logging.getLogger("engine32.publisher")

Op = Tuple[Any, ...]

#: Rounds of at most this many items go into one pipeline.
MAX_BATCH_ITEMS = 2000
#: Reconnect backoff (seconds): doubles from the first to the last value.
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 2.0


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def held_connection(client: "redis.Redis") -> Any:
    """A connection taken from ``client``'s pool for the caller alone (released when the
    client is closed). redis-py before 5.3 wants a command name here; later ones warn on it."""
    pool = client.connection_pool
    try:
        return pool.get_connection()
    except TypeError:
        return pool.get_connection("PING")


def send_packed(conn: Any, packed: Any, count: int) -> List[Any]:
    """Send commands packed by ``conn.pack_commands`` and read their ``count`` replies: what
    a redis-py pipeline does, without its per-command Python work (about 0.1 ms a round on
    a slow core, on the path of every reply). An error reply comes back as its
    :class:`redis.ResponseError`, the connection kept in step; a broken connection raises."""
    conn.send_packed_command(packed, check_health=False)
    replies: List[Any] = []
    try:
        for _ in range(count):
            try:
                replies.append(conn.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
    except BaseException:
        conn.disconnect()  # replies left unread: never reuse the connection out of step
        raise
    return replies


_SURROGATE = re.compile("[\ud800-\udfff]")


def wire(arg: Any) -> Any:
    """One command argument as Redis will get it: text as UTF-8 bytes. Text that cannot be
    encoded (a lone surrogate, e.g. from a ``"\\ud800"`` escape a client sent) has each such
    character replaced by U+FFFD, so no input can make an item unwritable."""
    if type(arg) is str:
        try:
            return arg.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE.sub("\ufffd", arg).encode("utf-8")
    return arg


#: Bytes a stream entry costs besides its envelope text (id, field name, listpack headers and
#: the radix tree's share), measured with MEMORY USAGE (docs/operations.md, "Redis memory").
ENTRY_OVERHEAD_BYTES = 48


#: How often the publisher asks where the writer is (XINFO GROUPS, XPENDING), seconds.
FLOOR_EVERY_S = 1.0


def writer_floor(client: "redis.Redis", stream: str) -> Optional[Any]:
    """The oldest entry of ``stream`` the writer's group has not acknowledged (committed):
    the smallest pending id, or else the last delivered one (everything before it is
    committed). None when there is no stream or no writer group: nothing is known to be safe.
    """
    try:
        groups = client.xinfo_groups(stream)
        group = next((g for g in groups if _text(g.get("name")) == WRITER_GROUP), None)
        if group is None:
            return None
        if group.get("pending"):
            return client.xpending(stream, WRITER_GROUP)["min"]
        return group.get("last-delivered-id")
    except redis.ResponseError:
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class StreamBudget:
    """How many of the newest ``P:events`` entries fit in ``budget`` bytes: the MAXLEN the
    publisher trims the stream to after each round (``XTRIM MAXLEN ~``).

    ``MAXLEN`` alone counts entries, and an entry holds one event or up to a few hundred
    quotes, so a count bounds nothing. This keeps the sizes of the entries it wrote, oldest
    first, in one bucket per round (plus one for what the stream held at start, its size
    estimated from its newest entries) and drops the oldest while the total is over budget.
    """

    def __init__(self, budget: int, cap: int) -> None:
        self.budget = budget
        self.cap = cap
        self._buckets: Deque[List[float]] = collections.deque()  # [count, bytes], oldest first
        self.count = 0
        self.bytes = 0.0

    def seed(self, count: int, nbytes: float) -> None:
        """What the stream holds already (older than anything :meth:`add` is told)."""
        if count > 0:
            self._buckets.appendleft([count, nbytes])
            self.count += count
            self.bytes += nbytes
            self._fit()

    def add(self, count: int, nbytes: float) -> None:
        if count > 0:
            self._buckets.append([count, nbytes])
            self.count += count
            self.bytes += nbytes
            self._fit()

    def _fit(self) -> None:
        while self.bytes > self.budget and self._buckets:
            oldest = self._buckets[0]
            excess = self.bytes - self.budget
            if oldest[1] <= excess or oldest[0] <= 1:
                self._buckets.popleft()
                self.count -= int(oldest[0])
                self.bytes -= oldest[1]
                continue
            per = oldest[1] / oldest[0]
            drop = min(int(oldest[0]) - 1, int(math.ceil(excess / per)))
            oldest[0] -= drop
            oldest[1] -= drop * per
            self.count -= drop
            self.bytes -= drop * per

    @property
    def maxlen(self) -> int:
        return max(1, min(self.cap, self.count))


def dumps(obj: Any) -> str:
    """Compact JSON, Korean kept as it is (one shared encoder: much faster than json.dumps)."""
    return _ENCODER.encode(obj)


class Item:
    """Something to write. ``ops()`` is computed once (on the publisher thread) and cached,
    so a round that failed is retried with exactly the same commands."""

    __slots__ = ("order", "seq", "droppable", "weight", "_ops")

    def __init__(self, seq: int = -1, droppable: bool = False, weight: int = 1) -> None:
        self.order = 0  # enqueue order, set by the publisher
        self.seq = seq  # the envelope's seq, -1 for plain writes
        self.droppable = droppable
        self.weight = weight  # quotes it carries (for the dropped counter)
        self._ops: Optional[List[Op]] = None

    def ops(self, keys: Keys, maxlen: int) -> List[Op]:
        """The item's commands, every text argument encoded (:func:`wire`): encoding never
        fails later, inside a round, where one bad item would cost every other item."""
        if self._ops is None:
            try:
                built = self.build(keys, maxlen)
            except Exception:  # noqa: BLE001 - one item's bug must not cost the round
                built = self.fallback(keys, maxlen)
            self._ops = [tuple(wire(arg) for arg in op) for op in built]
        return self._ops

    def fallback(self, keys: Keys, maxlen: int) -> List[Op]:
        """What to write when :meth:`build` failed: by default nothing (logged)."""
        log.exception("publisher could not build item seq %s; dropped", self.seq)
        return []

    def build(self, keys: Keys, maxlen: int) -> List[Op]:
        raise NotImplementedError


class Writes(Item):
    """Plain Redis commands (heartbeat, ``P:engine``, snapshots)."""

    __slots__ = ("_writes",)

    def __init__(self, writes: Sequence[Op]) -> None:
        super().__init__()
        self._writes = list(writes)

    def build(self, keys: Keys, maxlen: int) -> List[Op]:
        return self._writes


class Event(Item):
    """One envelope: published on its topic, appended to the stream, plus state writes."""

    __slots__ = ("envelope", "state")

    def __init__(self, envelope: Envelope, state: Sequence[Op] = ()) -> None:
        super().__init__(envelope.seq)
        self.envelope = envelope
        self.state = list(state)

    def build(self, keys: Keys, maxlen: int) -> List[Op]:
        text = dumps(self.envelope.to_dict())  # the shared encoder: faster than encode()
        return [
            ("PUBLISH", keys.ev(self.envelope.topic), text),
            ("XADD", keys.events, "MAXLEN", "~", maxlen, "*", "e", text),
        ] + self.state


class ReplyEvent(Event):
    """A reply: its list (``LPUSH`` + ``EXPIRE``), the ``reply`` event, the dedupe record
    and the removal of the raw command from ``P:cmd:processing``."""

    __slots__ = ("raw", "remember_s")

    def __init__(self, envelope: Envelope, raw: Optional[bytes], remember_s: int) -> None:
        super().__init__(envelope)
        self.raw = raw  # the command as taken from P:cmd, or None (no processing entry)
        self.remember_s = remember_s  # > 0: store the reply in P:seen:<id> for that long

    def build(self, keys: Keys, maxlen: int) -> List[Op]:
        reply = self.envelope.data
        env = self.envelope
        text = dumps(reply)
        event = '{{"v":{},"type":"reply","run":{},"seq":{},"ts":{},"data":{}}}'.format(
            env.v, dumps(env.run), env.seq, env.ts, text
        )
        ops: List[Op] = []
        cmd_id = reply.get("id")
        if cmd_id:
            # The reply list first: the sender is waiting on it.
            ops.append(("LPUSH", keys.reply(cmd_id), text))
            ops.append(("EXPIRE", keys.reply(cmd_id), REPLY_TTL_S))
        ops.append(("PUBLISH", keys.ev("reply"), event))
        ops.append(("XADD", keys.events, "MAXLEN", "~", maxlen, "*", "e", event))
        if cmd_id and self.remember_s > 0:
            ops.append(("SET", keys.seen(cmd_id), text, "EX", self.remember_s))
        if self.raw is not None:
            ops.append(("LREM", keys.cmd_processing, 1, self.raw))
        return ops

    def fallback(self, keys: Keys, maxlen: int) -> List[Op]:
        """The reply could not be encoded (a bug): the sender still gets exactly one reply,
        an error that says so, and the command still leaves ``P:cmd:processing``."""
        log.exception("publisher could not encode the reply to %r; answering an error", self.seq)
        reply = self.envelope.data if isinstance(self.envelope.data, dict) else {}
        cmd_id = reply.get("id") if isinstance(reply.get("id"), str) else None
        cmd = reply.get("cmd") if isinstance(reply.get("cmd"), str) else None
        safe = {
            "id": cmd_id,
            "cmd": cmd,
            "ok": False,
            "ts": self.envelope.ts,
            "error": {
                "code": "BROKER_ERROR",
                "message": "the engine could not encode its reply to this command; check "
                "orders and positions before resending with a new id",
            },
        }
        self.envelope = Envelope(
            type="reply", data=safe, run=self.envelope.run, seq=self.envelope.seq,
            ts=self.envelope.ts, v=self.envelope.v,
        )  # fmt: skip
        return ReplyEvent.build(self, keys, maxlen)


_QUOTE_FORMAT = (
    '{"code":"%s","price":%d,"change":%d,"change_pct":%r,"volume":%d,"trade_qty":%d,'
    '"open":%d,"high":%d,"low":%d,"ask":%d,"bid":%d,"time":"%s"}'
)


def quote_json(quote: Any) -> str:
    """One quote as JSON (its ``__dict__`` is the wire form). The hot path of the engine: a
    format string when every field is plain (codes and times alphanumeric, integers, a finite
    float); anything else goes through the JSON encoder."""
    d = quote.__dict__
    try:
        ints = (
            d["price"], d["change"], d["volume"], d["trade_qty"],
            d["open"], d["high"], d["low"], d["ask"], d["bid"],
        )  # fmt: skip
        pct = d["change_pct"]
        code = d["code"]
        hhmmss = d["time"]
    except KeyError:
        return _ENCODER.encode(d)
    if (
        len(d) == 12
        and type(sum(ints)) is int  # a float anywhere makes the sum a float
        and type(pct) is float
        and -1e15 < pct < 1e15  # finite (NaN fails too)
        and type(code) is str
        and code.isalnum()
        and type(hhmmss) is str
        and (hhmmss.isalnum() or not hhmmss)
    ):
        return _QUOTE_FORMAT % ((code,) + ints[:2] + (pct,) + ints[2:] + (hhmmss,))
    return _ENCODER.encode(d)


class QuotesEvent(Item):
    """A batch of quotes: one ``quotes`` envelope holding every quote in arrival order, and
    the latest quote per code into ``P:state:quotes``. Droppable while Redis is away."""

    __slots__ = ("run", "ts", "quotes")

    def __init__(self, run: str, seq: int, ts: int, quotes: List[Any]) -> None:
        super().__init__(seq, droppable=True, weight=len(quotes))
        self.run = run
        self.ts = ts
        self.quotes = quotes

    def build(self, keys: Keys, maxlen: int) -> List[Op]:
        parts = [quote_json(q) for q in self.quotes]
        latest: Dict[str, str] = {}
        for quote, part in zip(self.quotes, parts):
            latest[quote.code] = part
        text = '{{"v":1,"type":"quotes","run":{},"seq":{},"ts":{},"data":{{"items":[{}]}}}}'.format(
            dumps(self.run), self.seq, self.ts, ",".join(parts)
        )
        ops: List[Op] = [
            ("PUBLISH", keys.ev("quotes"), text),
            ("XADD", keys.events, "MAXLEN", "~", maxlen, "*", "e", text),
        ]
        hset: List[Any] = ["HSET", keys.state_quotes]
        for code, part in latest.items():
            hset.append(code)
            hset.append(part)
        ops.append(tuple(hset))
        return ops


class Publisher:
    """Owns one Redis connection and one thread; thread-safe :meth:`put`."""

    def __init__(
        self,
        redis_url: str,
        keys: Keys,
        capacity: int = 100000,
        stream_maxlen: int = 2000000,
        on_reconnect: Optional[Callable[[], None]] = None,
        client_factory: Optional[Callable[[], "redis.Redis"]] = None,
        on_removed: Optional[Callable[[bytes], None]] = None,
        stream_budget_bytes: int = 0,
    ) -> None:
        self.keys = keys
        self.on_removed = on_removed  # told each raw command removed from P:cmd:processing
        self.capacity = capacity
        self.hard_capacity = capacity * 10
        self.maxlen = stream_maxlen
        #: the memory budget of P:events (0: none, only ``stream_maxlen``)
        self.budget: Optional[StreamBudget] = (
            StreamBudget(stream_budget_bytes, stream_maxlen) if stream_budget_bytes > 0 else None
        )
        self._budget_seeded = False
        #: the oldest P:events id the writer has not committed yet (None: no writer group),
        #: refreshed every FLOOR_EVERY_S; entries older than it are trimmed (XTRIM MINID)
        self._floor: Optional[Any] = None
        self._floor_at = 0.0
        self.on_reconnect = on_reconnect
        self._url = redis_url
        self._factory = client_factory or (
            lambda: redis.Redis.from_url(
                redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=0
            )
        )
        self._cond = threading.Condition()
        self._quotes: Deque[Item] = collections.deque()
        self._others: Deque[Item] = collections.deque()
        self._counter = itertools.count(1)
        self._stopping = False
        self._busy = False
        self._thread: Optional[threading.Thread] = None
        # Counters (read by the engine for P:engine; plain ints, written by one thread each).
        self.dropped_quotes = 0
        self.dropped_events = 0
        self.reconnects = 0
        self.written_items = 0
        self.last_seq_written = -1
        self.connected = False
        self.last_error = ""

    # -- producer side (any thread, normally the Qt thread) ----------------------------------
    def put(self, item: Item) -> None:
        with self._cond:
            item.order = next(self._counter)
            (self._quotes if item.droppable else self._others).append(item)
            if len(self._quotes) + len(self._others) > self.capacity:
                self._shed()
            self._cond.notify()

    def put_many(self, items: Iterable[Item]) -> None:
        for item in items:
            self.put(item)

    def _shed(self) -> None:
        """Called with the lock held when the buffer is over capacity."""
        while self._quotes and len(self._quotes) + len(self._others) > self.capacity:
            self.dropped_quotes += self._quotes.popleft().weight
        while len(self._others) > self.hard_capacity:
            lost = self._others.popleft()
            self.dropped_events += 1
            log.error("publish buffer exhausted: dropped event seq %s", lost.seq)

    def pending(self) -> int:
        with self._cond:
            return len(self._quotes) + len(self._others) + (1 if self._busy else 0)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Write what is buffered (while Redis answers) and end the thread; True if drained."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.pending() == 0

    def wait_idle(self, timeout: float) -> bool:
        """Block until everything put so far is written (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.001)
        return False

    # -- the thread ------------------------------------------------------------------------
    def _take(self) -> List[Item]:
        with self._cond:
            while not self._quotes and not self._others:
                if self._stopping:
                    return []
                self._cond.wait(0.5)
            batch: List[Item] = []
            quotes, others = self._quotes, self._others
            while (quotes or others) and len(batch) < MAX_BATCH_ITEMS:
                if not others or (quotes and quotes[0].order < others[0].order):
                    batch.append(quotes.popleft())
                else:
                    batch.append(others.popleft())
            self._busy = True
            return batch

    def _give_back(self, batch: List[Item]) -> None:
        """Put a failed round back at the front, in order, then shed if over capacity."""
        with self._cond:
            for item in reversed(batch):
                (self._quotes if item.droppable else self._others).appendleft(item)
            if len(self._quotes) + len(self._others) > self.capacity:
                self._shed()
            self._busy = False

    def _run(self) -> None:
        client = None
        conn = None
        backoff = BACKOFF_FIRST_S
        ever_connected = False
        while True:
            batch = self._take()
            if not batch:
                with self._cond:
                    self._busy = False
                break
            try:
                if client is None:
                    client = self._factory()
                    client.ping()
                    conn = held_connection(client)
                    if ever_connected:
                        self.reconnects += 1
                        log.warning(
                            "publisher reconnected to Redis at %s (reconnect %d); republishing",
                            redact(self._url),
                            self.reconnects,
                        )
                        if self.on_reconnect is not None:
                            self.on_reconnect()
                    ever_connected = True
                    self.connected = True
                    if self.budget is not None and not self._budget_seeded:
                        self._seed_budget(client)
                if self.budget is not None and time.monotonic() - self._floor_at >= FLOOR_EVERY_S:
                    self._floor = writer_floor(client, self.keys.events)
                    self._floor_at = time.monotonic()
                self._write(conn, batch)
                backoff = BACKOFF_FIRST_S
                with self._cond:
                    self._busy = False
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self._give_back(batch)
                if self.connected:
                    log.warning(
                        "publisher lost Redis at %s: %s; buffering up to %d events",
                        redact(self._url),
                        exc,
                        self.capacity,
                    )
                self.connected = False
                self.last_error = "redis: {}".format(exc)
                if client is not None:
                    try:
                        client.close()
                    except Exception:  # noqa: BLE001 - the connection is gone anyway
                        pass
                client = None
                with self._cond:
                    if self._stopping:
                        # Stopping while Redis is away: what cannot be written is lost; say so.
                        lost = len(self._quotes) + len(self._others)
                        log.error("stopping with Redis away: %d unwritten events", lost)
                        break
                time.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            except Exception:  # noqa: BLE001 - a bug must not kill the thread silently
                log.exception("publisher failed on a round of %d items; skipped", len(batch))
                with self._cond:
                    self._busy = False
        if client is not None:
            client.close()

    def _seed_budget(self, client: "redis.Redis") -> None:
        """Tell the budget what ``P:events`` holds from before this run (XLEN, and the size
        of its newest 50 entries as the estimate of each)."""
        length = client.xlen(self.keys.events)
        newest = client.xrevrange(self.keys.events, count=50) if length else []
        sizes = [sum(len(k) + len(v) for k, v in fields.items()) for _, fields in newest]
        per = (sum(sizes) / len(sizes) if sizes else 0) + ENTRY_OVERHEAD_BYTES
        assert self.budget is not None
        self.budget.seed(length, length * per)
        self._budget_seeded = True

    def _write(self, conn: Any, batch: List[Item]) -> None:
        """One round: every item's commands in one write, then their replies."""
        packed: List[Any] = []
        count = 0
        top = -1
        entries = 0  # stream entries added this round, and their bytes (for the budget)
        nbytes = 0
        for item in batch:
            # Each item is packed on its own: one that cannot be (a bug) is dropped and
            # logged, and costs the others in the round nothing.
            try:
                ops = item.ops(self.keys, self.maxlen)
                packed.extend(conn.pack_commands(ops))
            except Exception:  # noqa: BLE001
                log.exception("publisher could not encode item seq %s; dropped", item.seq)
                self.dropped_events += 1
                continue
            count += len(ops)
            if item.seq > top:
                top = item.seq
            for op in ops:
                if op[0] == b"XADD":
                    entries += 1
                    nbytes += len(op[-1]) + ENTRY_OVERHEAD_BYTES
        tail: List[Op] = []
        if top >= 0:
            tail.append(("HSET", self.keys.engine, "seq", top))
        if self.budget is not None and entries:
            self.budget.add(entries, nbytes)
            # What the writer has committed goes at once; the byte budget is the hard cap for
            # what it has not (a writer down for long: the oldest go, and it records the gap).
            if self._floor is not None:
                tail.append(("XTRIM", self.keys.events, "MINID", "~", self._floor))
            tail.append(("XTRIM", self.keys.events, "MAXLEN", "~", self.budget.maxlen))
        if tail:
            packed.extend(conn.pack_commands(tail))
            count += len(tail)
        # one buffer, one sendall (per-item packing would otherwise mean a syscall per item)
        results = send_packed(conn, [b"".join(packed)], count)
        for result in results:
            if isinstance(result, Exception):
                log.error("Redis refused a write: %s", result)
                self.last_error = "redis: {}".format(result)
        self.written_items += len(batch)
        if self.on_removed is not None:
            for item in batch:
                raw = getattr(item, "raw", None)
                if raw is not None:
                    self.on_removed(raw)
        if top > self.last_seq_written:
            self.last_seq_written = top
