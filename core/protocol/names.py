"""Redis key and channel names, built from the configurable prefix (protocol.md, "Keys and channels")."""

from typing import Tuple

DEFAULT_PREFIX = "kc"

#: Topics published on ``P:ev:<topic>``.
TOPICS: Tuple[str, ...] = (
    "quotes",
    "order",
    "fill",
    "position",
    "account",
    "surge",
    "status",
    "log",
    "reply",
    "candles",
    "book",
    "alert",
    "trigger",
)

#: Seconds a reply list lives before Redis drops it.
REPLY_TTL_S = 300
#: The writer's consumer group on ``P:events`` (the engine trims only what it has committed).
WRITER_GROUP = "writer"
#: Number of surge alerts kept in ``P:state:surge``.
SURGE_KEEP = 200
#: Default stream trim length for ``P:events``.
EVENTS_MAXLEN = 2000000


class Keys:
    """Every Redis name the console uses, for one prefix.

    >>> Keys("kc").reply("s1")
    'kc:reply:s1'
    """

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if not prefix or any(c in prefix for c in " *?[]"):
            raise ValueError("prefix must be a non-empty string without spaces or glob characters")
        self.prefix = prefix
        p = prefix
        self.cmd = p + ":cmd"
        self.cmd_processing = p + ":cmd:processing"
        self.cmd_dead = p + ":cmd:dead"
        self.events = p + ":events"
        self.state_quotes = p + ":state:quotes"
        self.state_positions = p + ":state:positions"
        self.state_orders = p + ":state:orders"
        self.state_account = p + ":state:account"
        self.state_surge = p + ":state:surge"
        self.state_watchlist = p + ":state:watchlist"
        self.engine = p + ":engine"
        self.engine_alive = p + ":engine:alive"
        self.writer = p + ":writer"
        self.ev_pattern = p + ":ev:*"
        self.state_book = p + ":state:book"
        self.state_book_codes = p + ":state:book_codes"
        self.state_alerts = p + ":state:alerts"
        self.state_triggers = p + ":state:triggers"
        self.state_trigger_marks = p + ":state:trigger_marks"
        #: code → Korean name: the broker's master list (KOSPI + KOSDAQ), for search by name
        self.state_names = p + ":state:names"
        #: group name → JSON {"pos", "active", "codes"}: the named watchlist groups
        self.state_watchgroups = p + ":state:watchgroups"

    def reply(self, cmd_id: str) -> str:
        """The list the engine LPUSHes the reply to command ``cmd_id`` onto."""
        return "{}:reply:{}".format(self.prefix, cmd_id)

    def ev(self, topic: str) -> str:
        """The Pub/Sub channel for one topic."""
        if topic not in TOPICS:
            raise ValueError("unknown topic {!r}".format(topic))
        return "{}:ev:{}".format(self.prefix, topic)

    def seen(self, cmd_id: str) -> str:
        """Where the engine remembers a command id (at-most-once rule); holds the first reply."""
        return "{}:seen:{}".format(self.prefix, cmd_id)

    def topic_of(self, channel: str) -> str:
        """The topic of a ``P:ev:<topic>`` channel name (the inverse of :meth:`ev`)."""
        head = self.prefix + ":ev:"
        if not channel.startswith(head):
            raise ValueError(
                "{!r} is not an event channel of prefix {!r}".format(channel, self.prefix)
            )
        return channel[len(head) :]

    def all_state(self) -> Tuple[str, ...]:
        return (
            self.state_quotes,
            self.state_positions,
            self.state_orders,
            self.state_account,
            self.state_surge,
            self.state_watchlist,
            self.state_book,
            self.state_book_codes,
            self.state_alerts,
            self.state_triggers,
            self.state_trigger_marks,
            self.state_names,
            self.state_watchgroups,
        )
