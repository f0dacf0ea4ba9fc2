"""Which event topic goes to which WebSocket channel.

``P:ev:<topic>`` (protocol.md) → ``/ws/<channel>``. Topics other engineers add later are routed
by what they are: market data (``quote*``, ``book``) to ``market``, ``trigger`` and ``alert`` to
``surge``; ``status`` (the engine's state) goes to every channel; a topic nobody knows (``log``
included) goes nowhere. Only market data may be dropped for a slow client.
"""

from __future__ import annotations

#: Channels a client can open, by URL path.
CHANNELS = ("market", "orders", "positions", "surge", "stats", "commands")
#: Channels fed from Pub/Sub (``stats`` and ``commands`` are made by the gateway itself).
FEED_CHANNELS = ("market", "orders", "positions", "surge")

ROUTES: dict[str, tuple[str, ...]] = {
    "quotes": ("market",),
    "quote": ("market",),
    "book": ("market",),
    "order": ("orders",),
    "fill": ("orders",),
    "reply": ("orders",),
    "position": ("positions",),
    "account": ("positions",),
    "surge": ("surge",),
    "trigger": ("surge",),
    "alert": ("surge",),
    "status": FEED_CHANNELS,
}

#: Topics whose messages may be dropped for a client that falls behind (counted and reported).
DROPPABLE = frozenset({"quotes", "quote", "book"})


def channels_for(topic: str) -> tuple[str, ...]:
    """The channels that carry ``topic`` (empty: none)."""
    found = ROUTES.get(topic)
    if found is not None:
        return found
    if topic.startswith(("quote", "book")):
        return ("market",)
    if topic.startswith(("surge", "trigger", "alert")):
        return ("surge",)
    return ()


def is_droppable(topic: str) -> bool:
    return topic in DROPPABLE or topic.startswith(("quote", "book"))


def channel_of_path(path: str) -> str | None:
    """``/ws/market`` → ``market``; anything else → ``None``."""
    head, _, name = path.rstrip("/").rpartition("/")
    if head != "/ws" or name not in CHANNELS:
        return None
    return name
