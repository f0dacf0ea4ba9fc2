"""One connection's bounded queue: quotes are dropped first, the rest is never dropped.

A connection's writer task takes from its :class:`Outbox` and awaits the socket, so a slow
client only fills its own outbox. The outbox is full at ``limit`` messages or ``max_bytes`` of
text (quote batches of a whole market are ~150 kB each: the byte bound keeps both memory and
the delay of a lagging client small). When full, an arriving droppable message (market data)
is dropped; an arriving essential one (order, fill, reply, position, ...) evicts the oldest
droppable messages queued; if there are none, an essential message is still queued up to
``limit`` messages and twice ``max_bytes``, beyond which the outbox is *overflowing*: the client
cannot keep up even with what must not be lost, and the server disconnects it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass


@dataclass
class Item:
    text: str
    droppable: bool
    run: str = ""
    seq: int = -1
    count: int = 1  # quotes in it (for the drop counters)
    snapshot: bool = False


class Outbox:
    def __init__(self, limit: int, max_bytes: int = 8 << 20) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()
        self.overflowing = False
        self.dropped_messages = 0  # since the last report to the client
        self.dropped_quotes = 0
        self.dropped_seqs: tuple[int, int] | None = None  # (first, last) seq since then
        self.total_dropped_messages = 0
        self.total_dropped_quotes = 0

    def __len__(self) -> int:
        return len(self._items)

    def _drop(self, item: Item) -> None:
        if item.seq >= 0:
            low, high = self.dropped_seqs or (item.seq, item.seq)
            self.dropped_seqs = (min(low, item.seq), max(high, item.seq))
        self.dropped_messages += 1
        self.dropped_quotes += item.count
        self.total_dropped_messages += 1
        self.total_dropped_quotes += item.count

    def _full(self, size: int, hard: bool = False) -> bool:
        limit = self.max_bytes * (2 if hard else 1)
        return len(self._items) >= self.limit or (self.bytes + size > limit and bool(self._items))

    def put(self, item: Item, front: bool = False) -> bool:
        """Queue ``item``; ``False`` when the outbox overflows with essential messages."""
        size = len(item.text)
        if self._full(size):
            if item.droppable:
                self._drop(item)
                return True
            while self._full(size):
                for i, queued in enumerate(self._items):
                    if queued.droppable:
                        del self._items[i]
                        self.bytes -= len(queued.text)
                        self._drop(queued)
                        break
                else:
                    if self._full(size, hard=True):
                        self.overflowing = True
                        return False
                    break
        self.bytes += size
        if front:
            self._items.appendleft(item)
        else:
            self._items.append(item)
        self._ready.set()
        return True

    async def get(self) -> Item:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        self.bytes -= len(item.text)
        return item

    def take_drop_report(self) -> tuple[int, int]:
        """(messages, quotes) dropped since the last call (``dropped_seqs`` is reset with it)."""
        report = (self.dropped_messages, self.dropped_quotes)
        self.dropped_messages = self.dropped_quotes = 0
        return report
