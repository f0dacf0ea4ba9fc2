"""One connection's bounded queue: quotes are dropped first, the rest is never dropped.

A connection's writer task takes from its :class:`Outbox` and awaits the socket, so a slow
client only fills its own outbox. At ``limit`` messages, an arriving droppable message (market
data) is dropped; an arriving essential one (order, fill, reply, position, ...) evicts the
oldest droppable message queued; if there is none, the outbox is *overflowing*: the client
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
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()
        self.overflowing = False
        self.dropped_messages = 0  # since the last report to the client
        self.dropped_quotes = 0
        self.total_dropped_messages = 0
        self.total_dropped_quotes = 0

    def __len__(self) -> int:
        return len(self._items)

    def _drop(self, item: Item) -> None:
        self.dropped_messages += 1
        self.dropped_quotes += item.count
        self.total_dropped_messages += 1
        self.total_dropped_quotes += item.count

    def put(self, item: Item, front: bool = False) -> bool:
        """Queue ``item``; ``False`` when the outbox overflows with essential messages."""
        if len(self._items) >= self.limit:
            if item.droppable:
                self._drop(item)
                return True
            for i, queued in enumerate(self._items):
                if queued.droppable:
                    del self._items[i]
                    self._drop(queued)
                    break
            else:
                self.overflowing = True
                return False
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
        return self._items.popleft()

    def take_drop_report(self) -> tuple[int, int]:
        """(messages, quotes) dropped since the last call."""
        report = (self.dropped_messages, self.dropped_quotes)
        self.dropped_messages = self.dropped_quotes = 0
        return report
