"""The console's plain state: what the engine has told us, with change tracking per panel.

The feed worker applies envelopes here (no widgets involved); the app's refresh timer takes the
dirty sets at most ``refresh_hz`` times a second and repaints only the rows that changed. Order,
fill and reply events are applied one by one, never merged, and handed back to the caller so the
app can tell the trader about each.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.bus import Snapshot
from core.protocol import Envelope
from core.protocol.events import (
    OPEN_STATUSES,
    Account,
    Fill,
    Order,
    Position,
    Surge,
)

from .names import KNOWN_NAMES
from .triggers import TriggerChange, TriggerMarksMoved, TriggerStore

#: Points in a watchlist sparkline.
SPARK_POINTS = 24
#: Surge alerts kept (the engine keeps 200 too).
SURGE_KEEP = 200
#: Recent fills kept in memory.
FILLS_KEEP = 500
#: A quote older than this (ms) is shown dimmed: it may no longer be the price.
STALE_MS = 60_000
#: One-minute candles kept per code (built from the quotes seen, for charts without a database).
CANDLES_KEEP = 480


@dataclass
class Dirty:
    """What changed since the last repaint. Keys are stock codes or order ids."""

    quotes: set[str] = field(default_factory=set)
    positions: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)
    watchlist: bool = False  # the set or order of rows changed
    positions_rows: bool = False
    orders_rows: bool = False
    surge: bool = False
    account: bool = False
    status: bool = False

    def __bool__(self) -> bool:
        return bool(
            self.quotes
            or self.positions
            or self.orders
            or self.watchlist
            or self.positions_rows
            or self.orders_rows
            or self.surge
            or self.account
            or self.status
        )

    def everything(self) -> None:
        self.watchlist = self.positions_rows = self.orders_rows = True
        self.surge = self.account = self.status = True


class Spark:
    """The last :data:`SPARK_POINTS` bucket closes of one code (latest wins inside a bucket)."""

    __slots__ = ("bucket_ms", "points")

    def __init__(self, bucket_ms: int) -> None:
        self.bucket_ms = max(1, bucket_ms)
        self.points: deque[tuple[int, int]] = deque(maxlen=SPARK_POINTS)

    def add(self, ts_ms: int, price: int) -> None:
        bucket = ts_ms // self.bucket_ms
        pts = self.points
        if pts and pts[-1][0] >= bucket:
            pts[-1] = (pts[-1][0], price)
        else:
            pts.append((bucket, price))

    def values(self) -> list[int]:
        return [p for _, p in self.points]


@dataclass
class EngineStatus:
    """The status bar's facts: engine hash, heartbeat, Redis and writer health."""

    info: dict[str, str] = field(default_factory=dict)
    alive: bool = False
    heartbeat_age_ms: int | None = None
    #: Console clock (ms) when ``heartbeat_age_ms`` was read: the age keeps counting from there
    #: while Redis cannot be asked (B11).
    heartbeat_read_ms: int = 0
    redis_up: bool = False
    redis_error: str = ""
    rtt_ms: float | None = None
    writer: dict[str, str] = field(default_factory=dict)
    resyncs: int = 0

    @property
    def state(self) -> str:
        return self.info.get("state", "")

    def heartbeat_age_now(self, now_ms: int) -> int | None:
        """The heartbeat's age now: the last read age plus the time since it was read."""
        if self.heartbeat_age_ms is None:
            return None
        return self.heartbeat_age_ms + max(0, now_ms - self.heartbeat_read_ms)

    @property
    def broker(self) -> str:
        return self.info.get("broker", "")

    @property
    def mode(self) -> str:
        return self.info.get("mode", "")


class Store:
    """Plain state. Not thread-safe: the feed worker and the app share one asyncio loop."""

    def __init__(self, sparkline_s: int = 300, clock_ms: Callable[[], int] | None = None) -> None:
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.spark_bucket_ms = max(1000, sparkline_s * 1000 // SPARK_POINTS)
        self.quotes: dict[str, dict[str, Any]] = {}
        self.quote_ts: dict[str, int] = {}
        self.spark: dict[str, Spark] = {}
        # code -> 1-minute bars [minute, open, high, low, close, cum volume first, cum volume last]
        self.candles: dict[str, deque[list[int]]] = {}
        self.names: dict[str, str] = dict(KNOWN_NAMES)
        self.watchlist: list[str] = []
        self.positions: dict[str, Position] = {}
        self.position_ts: dict[str, int] = {}
        self.orders: dict[str, Order] = {}
        self.fills: deque[Fill] = deque(maxlen=FILLS_KEEP)
        self.fill_ids: set[str] = set()
        self.account = Account()
        self.surge: deque[tuple[int, Surge]] = deque(
            maxlen=SURGE_KEEP
        )  # (ts_ms, alert), newest first
        self.status = EngineStatus()
        self.triggers = TriggerStore()  # stops and take-profits (issue 14, tui/triggers.py)
        self.run = ""
        self.last_seq = -1
        self.events_applied = 0
        self.dirty = Dirty()
        #: The watchlist's order ("" as added, "pct", "volume").
        self.watch_sort = ""
        #: An order id the Orders cursor should move to when its row appears ('' none).
        self.follow = ""
        #: The engine's watchlist groups in order and the active one (the one shown and
        #: streamed); empty while the engine keeps none (an older engine).
        self.groups: list[str] = []
        self.group = ""
        #: The broker's master list (``P:state:names``): code → name, and for search
        #: (code, name, lower-case name).
        self.master: dict[str, str] = {}
        self._search: list[tuple[str, str, str]] = []

    # --- reading --------------------------------------------------------------------------------

    def take_dirty(self) -> Dirty:
        dirty, self.dirty = self.dirty, Dirty()
        return dirty

    def name_of(self, code: str) -> str:
        return self.names.get(code, "")

    #: Watchlist orders: (key, label); "" is the order codes were added in.
    SORTS = (("", "as added"), ("pct", "by change %"), ("volume", "by volume"))

    def watch_rows(self) -> list[str]:
        """The watchlist in the chosen order (biggest first for change % and volume)."""
        if not self.watch_sort:
            return list(self.watchlist)
        field = "change_pct" if self.watch_sort == "pct" else "volume"

        def key(code: str) -> float:
            q = self.quotes.get(code)
            return -(q.get(field) or 0) if q else float("inf")

        return sorted(self.watchlist, key=key)

    def find_names(self, part: str) -> list[tuple[str, str]]:
        """``(code, name)`` of the codes whose name contains ``part`` (case-insensitive) or whose
        code starts with it, from the broker's master list and the names seen in events: an
        exact name alone, else the shortest names first. About a millisecond for 2,700 names."""
        needle = part.strip().lower()
        if not needle:
            return []
        prefix = needle.upper() if len(needle) < 6 and needle[0].isdigit() else ""
        hits: dict[str, str] = {}
        for code, name, lower in self._search:
            if needle in lower or (prefix and code.startswith(prefix)):
                hits[code] = name
        for code, name in self.names.items():  # names learnt from events and the built-ins
            if (
                code not in hits
                and name
                and (needle in name.lower() or (prefix and code.startswith(prefix)))
            ):
                hits[code] = self.master.get(code) or name
        exact = [(c, n) for c, n in hits.items() if n.lower() == needle]
        return exact or sorted(hits.items(), key=lambda cn: (len(cn[1]), cn[0]))

    def load_master(self, names: dict[str, str]) -> None:
        """Take the broker's master list (``P:state:names``); names the console showed as
        unknown get their names."""
        self.master = {c: n for c, n in names.items() if n}
        self._search = [(c, n, n.lower()) for c, n in sorted(self.master.items())]
        for code, name in self.master.items():
            if not self.names.get(code):
                self.names[code] = name
                self.dirty.quotes.add(code)

    def set_groups(self, groups: list[str], active: str) -> None:
        """The engine's groups and the active one (from a snapshot or a command's reply)."""
        groups = [str(g) for g in groups]
        if groups != self.groups or active != self.group:
            self.groups = groups
            self.group = active
            self.dirty.watchlist = True

    def last_price(self, code: str) -> int:
        q = self.quotes.get(code)
        if q:
            return int(q.get("price") or 0)
        pos = self.positions.get(code)
        return pos.last_price if pos else 0

    def is_live(self, code: str, now_ms: int | None = None) -> bool:
        """True when the engine is up, Redis answers and the code's quote is recent."""
        st = self.status
        if not (st.alive and st.redis_up):
            return False
        ts = self.quote_ts.get(code)
        if ts is None:
            return False
        now = self.clock_ms() if now_ms is None else now_ms
        return now - ts <= STALE_MS

    def position_price(self, code: str) -> int:
        """The last price of a held code: the newer of its last quote and its position event.

        A held code that left the watchlist may get no more quotes on an older engine; its
        position events still carry the price the engine values it at (B1).
        """
        pos = self.positions.get(code)
        q = self.quotes.get(code)
        if (
            pos is not None
            and pos.last_price
            and (q is None or self.position_ts.get(code, 0) > self.quote_ts.get(code, 0))
        ):
            return pos.last_price
        return self.last_price(code)

    def base_price(self, code: str) -> int:
        """Previous close (price minus today's change), the base of the daily limits."""
        q = self.quotes.get(code)
        if not q:
            return 0
        return int(q.get("price") or 0) - int(q.get("change") or 0)

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.status in OPEN_STATUSES]

    def order_rows(self) -> list[str]:
        """Order ids by time of creation, newest first (a row never jumps when it fills)."""
        return [
            o.order_id
            for o in sorted(
                self.orders.values(),
                key=lambda o: (-(o.created_ts or o.updated_ts), o.order_id),
            )
        ]

    def position_rows(self) -> list[str]:
        return sorted(code for code, p in self.positions.items() if p.qty or p.realized_pnl)

    # --- snapshot ------------------------------------------------------------------------------

    def load_snapshot(self, snap: Snapshot, now_ms: int | None = None) -> None:
        """Replace everything with the engine's ``P:state:*`` (on (re)connect and seq gaps)."""
        now = now_ms if now_ms is not None else self.clock_ms()
        self.status.info = dict(snap.engine)
        self.status.alive = snap.alive
        self.run = snap.run
        self.last_seq = snap.last_seq
        # Quotes replace the last prices; sparklines and candles keep the history already seen.
        self.quotes = {}
        for q in snap.quotes.values():
            self._quote(q, now, history=False)
        self.positions = {}
        for data in snap.positions.values():
            self._position(data, now)
        self.orders = {}
        for data in snap.orders.values():
            self._order(data)
        self.account = Account.from_dict(snap.account) if snap.account else Account()
        self.surge.clear()
        for data in snap.surge:
            try:
                alert = Surge.from_dict(data)
            except TypeError:
                continue
            ts = int(data.get("ts") or 0)  # 0: an alert stored without its time (older engine)
            self.surge.append((ts, alert))
            self._learn_name(alert.code, alert.name)
        self.watchlist = list(dict.fromkeys(snap.watchlist))
        self.groups = [name for name, _codes in snap.groups]
        self.group = snap.active_group if snap.active_group in self.groups else ""
        self.dirty.everything()
        self.dirty.quotes.update(self.quotes)

    # --- events --------------------------------------------------------------------------------

    def seq_check(self, env: Envelope) -> str:
        """``'ok'``, ``'old'`` (already covered by the snapshot) or ``'gap'`` (resync needed)."""
        if self.run and env.run != self.run:
            return "gap"
        if self.last_seq < 0 or not self.run:
            return "ok"
        if env.seq <= self.last_seq:
            return "old"
        if env.seq > self.last_seq + 1:
            return "gap"
        return "ok"

    def apply(self, env: Envelope) -> list[Any]:
        """Apply one envelope; returns the notable payloads (orders, fills, replies, surges)."""
        if not self.run:
            self.run = env.run
        if env.seq > self.last_seq or env.run != self.run:
            self.last_seq = env.seq
        self.run = env.run
        self.events_applied += 1
        t = env.type
        data = env.data
        if t == "quotes":
            for item in data.get("items") or ():
                if isinstance(item, dict):
                    self._quote(item, env.ts)
            return []
        if t == "quote":
            self._quote(data, env.ts)
            return []
        if t == "order":
            order = self._order(data)
            return [order] if order else []
        if t == "fill":
            try:
                fill = Fill.from_dict(data)
            except TypeError:
                return []
            if fill.fill_id in self.fill_ids:
                return []
            self.fill_ids.add(fill.fill_id)
            self.fills.appendleft(fill)
            return [fill]
        if t == "position":
            self._position(data, env.ts)
            return []
        if t == "account":
            self.account = Account.from_dict({**self.account.to_dict(), **data})
            self.dirty.account = True
            return []
        if t == "surge":
            try:
                alert = Surge.from_dict(data)
            except TypeError:
                return []
            self.surge.appendleft((env.ts, alert))
            self._learn_name(alert.code, alert.name)
            self.dirty.surge = True
            return [alert]
        if t == "status":
            self.status.info.update({k: str(v) for k, v in data.items()})
            self.dirty.status = True
            return []
        if t == "reply":
            return [dict(data)]
        if t == "trigger":
            trigger = self.triggers.apply(data)
            return [TriggerChange(trigger)] if trigger else []
        if t == "trigger_marks":
            codes = self.triggers.apply_marks(data)
            if not codes:
                return []
            self.dirty.positions.update(codes)
            self.dirty.positions_rows = True
            return [TriggerMarksMoved()]
        return []

    def set_watchlist(self, codes: list[str]) -> None:
        codes = list(dict.fromkeys(codes))
        if codes != self.watchlist:
            self.watchlist = codes
            self.dirty.watchlist = True

    # --- internals -----------------------------------------------------------------------------

    def _learn_name(self, code: str, name: str) -> None:
        if name and self.names.get(code) != name:
            self.names[code] = name
            self.dirty.quotes.add(code)

    def _quote(self, q: dict[str, Any], ts_ms: int, history: bool = True) -> None:
        code = q.get("code")
        price = q.get("price")
        if not isinstance(code, str) or not isinstance(price, int):
            return
        self.quotes[code] = q
        self.quote_ts[code] = ts_ms
        name = q.get("name")
        if name:
            self.names[code] = name
        self.dirty.quotes.add(code)
        if code in self.positions:
            self.dirty.positions.add(code)
        if not history:
            return
        spark = self.spark.get(code)
        if spark is None:
            spark = self.spark[code] = Spark(self.spark_bucket_ms)
        spark.add(ts_ms, price)
        bars = self.candles.get(code)
        if bars is None:
            bars = self.candles[code] = deque(maxlen=CANDLES_KEEP)
        minute = ts_ms // 60000
        volume = q.get("volume") or 0
        if bars and bars[-1][0] == minute:
            bar = bars[-1]
            if price > bar[2]:
                bar[2] = price
            elif price < bar[3]:
                bar[3] = price
            bar[4] = price
            bar[6] = volume
        else:
            bars.append([minute, price, price, price, price, volume, volume])

    def _position(self, data: dict[str, Any], ts_ms: int = 0) -> None:
        try:
            pos = Position.from_dict(data)
        except TypeError:
            return
        old = self.positions.get(pos.code)
        self.positions[pos.code] = pos
        self.position_ts[pos.code] = ts_ms
        self._learn_name(pos.code, pos.name)
        if old is None or (old.qty == 0) != (pos.qty == 0):
            self.dirty.positions_rows = True
        self.dirty.positions.add(pos.code)

    def _order(self, data: dict[str, Any]) -> Order | None:
        try:
            order = Order.from_dict(data)
        except TypeError:
            return None
        old = self.orders.get(order.order_id)
        self.orders[order.order_id] = order
        self._learn_name(order.code, order.name)
        if old is None or old.status != order.status:
            self.dirty.orders_rows = True
        self.dirty.orders.add(order.order_id)
        return order
