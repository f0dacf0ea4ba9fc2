"""The four main panels, each a :class:`KeyedTable` that reads its rows from the store."""

from __future__ import annotations

from collections.abc import Callable

from rich.style import Style

from core.protocol.events import (
    BUY,
    CANCELLED,
    FILLED,
    OPEN_STATUSES,
    PARTIALLY_FILLED,
    REJECTED,
    Surge,
)

from ..state import Store
from . import fmt
from .table import Cell, Column, KeyedTable
from .venues import nxt_codes

STATUS_WORDS = {
    "pending": "pending",
    "accepted": "open",
    "partially_filled": "partial",
    "filled": "filled",
    "cancelled": "cancelled",
    "rejected": "rejected",
}
STATUS_STYLES = {
    FILLED: Style(color="rgb(120,200,120)"),
    PARTIALLY_FILLED: Style(color="rgb(230,190,80)"),
    CANCELLED: fmt.DIM,
    REJECTED: Style(color="rgb(255,120,60)", bold=True),
}
FLASH = Style(bgcolor="rgb(90,30,30)", bold=True)
#: How long a new surge alert stays highlighted (ms).
FLASH_MS = 3000


class StoreTable(KeyedTable):
    def __init__(self, store: Store, now_ms: Callable[[], int], **kw: str) -> None:
        super().__init__(**kw)
        self.store = store
        self.now_ms = now_ms

    def code_at_cursor(self) -> str | None:
        return self.cursor_key


class WatchlistTable(StoreTable):
    columns = (
        Column("code", "Code", 6),
        # Up to 13 cells where there is room: "N·SK하이닉스" whole (the N· mark takes two);
        # longer names are cut in the middle
        Column("name", "Name", 10, priority=2, cut="middle", grow=3),
        Column("price", "Price", 9, "right"),
        Column("change", "Chg", 8, "right", priority=3),
        Column("pct", "Chg%", 7, "right"),
        Column("volume", "Volume", 7, "right", priority=4),
        Column("spark", "Trend", 11, priority=5, grow=40),
    )
    placeholder = "watchlist is empty - press a to add a code"

    def cell(self, key: str, column: Column) -> Cell:
        c = column.key
        if c == "code":
            return key, fmt.PLAIN
        if c == "name":
            # "N·" marks codes that also trade on Nextrade (issue 12: P:engine nxt_codes)
            mark = "N·" if key in nxt_codes(self.store.status.info) else ""
            return mark + self.store.name_of(key), fmt.PLAIN
        q = self.store.quotes.get(key)
        if q is None:
            return ("-" if c == "price" else ""), fmt.DIM
        chg = q.get("change") or 0
        # Not live (engine down, Redis gone, or no quote for a while): dimmed, not coloured.
        style = fmt.sign_style(chg) if self.store.is_live(key) else fmt.DIM
        if c == "price":
            return fmt.krw(q.get("price") or 0), style
        if c == "change":
            return fmt.change(chg), style
        if c == "pct":
            return fmt.pct(q.get("change_pct") or 0.0), style
        if c == "volume":
            return fmt.compact(q.get("volume") or 0), fmt.PLAIN
        if c == "spark":
            spark = self.store.spark.get(key)
            values = spark.values() if spark else []
            trend = values[-1] - values[0] if len(values) > 1 else 0
            return fmt.sparkline(values, column.width), fmt.sign_style(trend)
        return "", fmt.PLAIN


class PositionsTable(StoreTable):
    columns = (
        Column("code", "Code", 6),
        Column("name", "Name", 12, priority=2, cut="middle"),
        Column("qty", "Qty", 7, "right"),
        Column("avg", "Avg", 9, "right"),
        Column("last", "Last", 9, "right"),
        Column("pnl", "Unreal P&L", 12, "right"),
        Column("pnl_pct", "P&L%", 7, "right"),
        Column("value", "Value", 12, "right", priority=4),
        Column("realized", "Realised", 11, "right", priority=3),
        Column("triggers", "Stop/TP", 18, priority=1, grow=12),
    )
    placeholder = "no positions"

    def cell(self, key: str, column: Column) -> Cell:
        pos = self.store.positions.get(key)
        if pos is None:
            return "", fmt.PLAIN
        c = column.key
        last = self.store.position_price(key) or pos.last_price
        if c == "code":
            return key, fmt.PLAIN
        if c == "name":
            return pos.name or self.store.name_of(key), fmt.PLAIN
        if c == "qty":
            return f"{pos.qty:,}", fmt.PLAIN
        if c == "avg":
            return fmt.krw(pos.avg_price), fmt.PLAIN
        if c == "last":
            live = self.store.is_live(key)
            return fmt.krw(last), fmt.sign_style(last - pos.avg_price) if live else fmt.DIM
        pnl = (last - pos.avg_price) * pos.qty if last and pos.qty else pos.unrealized_pnl
        if c == "pnl":
            return fmt.signed(pnl), fmt.sign_style(pnl)
        if c == "pnl_pct":
            p = (last - pos.avg_price) / pos.avg_price * 100 if pos.avg_price and last else 0.0
            return fmt.pct(p), fmt.sign_style(p)
        if c == "value":
            return fmt.krw(last * pos.qty), fmt.PLAIN
        if c == "realized":
            return fmt.signed(pos.realized_pnl), fmt.sign_style(pos.realized_pnl)
        if c == "triggers":  # issue 14: S stop, T take-profit, ~ trailing level
            return self.store.triggers.marks(key), fmt.DIM
        return "", fmt.PLAIN


class OrdersTable(StoreTable):
    columns = (
        Column("time", "Time", 8),
        Column("order_id", "Order", 10),
        Column("code", "Code", 6),
        Column("name", "Name", 10, priority=5, cut="middle"),
        Column("side", "Side", 4),
        Column("kind", "Type", 4, priority=6),
        Column("qty", "Qty", 7, "right"),
        Column("price", "Price", 9, "right"),
        Column("filled", "Filled", 7, "right"),
        Column("remaining", "Left", 7, "right", priority=2),
        Column("avg", "Avg fill", 9, "right", priority=7),
        Column("status", "Status", 9),
        Column("age", "Age", 4, "right", priority=4),
        Column("reason", "Reason", 18, priority=3),
    )
    placeholder = "no orders today"

    def cell(self, key: str, column: Column) -> Cell:
        o = self.store.orders.get(key)
        if o is None:
            return "", fmt.PLAIN
        c = column.key
        side_style = fmt.UP if o.side == BUY else fmt.DOWN
        if c == "time":
            return fmt.kst_time(o.created_ts or o.updated_ts), fmt.DIM
        if c == "order_id":
            return o.order_id, fmt.PLAIN
        if c == "code":
            return o.code, fmt.PLAIN
        if c == "name":
            return o.name or self.store.name_of(o.code), fmt.PLAIN
        if c == "side":
            return ("BUY" if o.side == BUY else "SELL"), side_style
        if c == "kind":
            return ("MKT" if o.kind == "market" else "LMT"), fmt.PLAIN
        if c == "qty":
            return f"{o.qty:,}", fmt.PLAIN
        if c == "price":
            return ("market" if o.kind == "market" else fmt.krw(o.price)), fmt.PLAIN
        if c == "filled":
            return f"{o.filled_qty:,}", fmt.PLAIN
        if c == "remaining":
            left = o.remaining_qty if o.status in OPEN_STATUSES else 0
            return f"{left:,}", fmt.PLAIN
        if c == "avg":
            return (fmt.krw(o.avg_fill_price) if o.avg_fill_price else ""), fmt.PLAIN
        if c == "status":
            return STATUS_WORDS.get(o.status, o.status), STATUS_STYLES.get(o.status, fmt.PLAIN)
        if c == "age":
            ts = o.created_ts or o.updated_ts
            return (fmt.age(self.now_ms() - ts) if ts else ""), fmt.DIM
        if c == "reason":
            return fmt.reason(o.reason), fmt.DIM
        return "", fmt.PLAIN

    def detail(self) -> str:
        """The selected order's whole reason, for the panel's bottom line and tooltip."""
        o = self.store.orders.get(self.cursor_key or "")
        if o is None or not o.reason:
            return ""
        why = fmt.reason(o.reason)
        return f"{o.order_id} {STATUS_WORDS.get(o.status, o.status)}: {why}" if why else ""

    def row_style(self, key: str) -> Style | None:
        o = self.store.orders.get(key)
        if o is not None and o.status not in OPEN_STATUSES:
            return fmt.DIM
        return None


class SurgeTable(StoreTable):
    columns = (
        Column("time", "Time", 5),
        Column("code", "Code", 6),
        Column("name", "Name", 10, priority=3, cut="middle"),
        Column("price", "Price", 9, "right"),
        Column("pct", "Chg%", 7, "right"),
        Column("ratio", "Vol×", 5, "right", priority=2),
        Column("reason", "Reason", 28, priority=4),
    )
    placeholder = "no surge alerts yet"

    def __init__(self, store: Store, now_ms: Callable[[], int], **kw: str) -> None:
        super().__init__(store, now_ms, **kw)
        self.by_key: dict[str, tuple[int, Surge]] = {}

    def rebuild(self) -> None:
        """One row per alert, newest first. Keys are ``ts:code:n``: two alerts for one code in
        the same millisecond (or rebuilt without a time) are still two rows (B4)."""
        keys = []
        self.by_key = {}
        for ts, alert in self.store.surge:
            base = f"{ts}:{alert.code}"
            n = 0
            while f"{base}:{n}" in self.by_key:
                n += 1
            key = f"{base}:{n}"
            self.by_key[key] = (ts, alert)
            keys.append(key)
        self.set_keys(keys)

    def code_at_cursor(self) -> str | None:
        item = self.by_key.get(self.cursor_key or "")
        return item[1].code if item else None

    def cell(self, key: str, column: Column) -> Cell:
        item = self.by_key.get(key)
        if item is None:
            return "", fmt.PLAIN
        ts, a = item
        c = column.key
        if c == "time":
            return fmt.kst_time(ts, seconds=False), fmt.DIM
        if c == "code":
            return a.code, fmt.PLAIN
        if c == "name":
            return a.name or self.store.name_of(a.code), fmt.PLAIN
        if c == "price":
            return fmt.krw(a.price), fmt.sign_style(a.change_pct)
        if c == "pct":
            return fmt.pct(a.change_pct), fmt.sign_style(a.change_pct)
        if c == "ratio":
            return f"{a.volume_ratio:.1f}x", fmt.BOLD_UP
        if c == "reason":
            return a.reason, fmt.DIM
        return "", fmt.PLAIN

    def row_style(self, key: str) -> Style | None:
        item = self.by_key.get(key)
        if item and self.now_ms() - item[0] < FLASH_MS:
            return FLASH
        return None
