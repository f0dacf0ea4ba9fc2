"""Typed payloads of the events (the ``data`` of an envelope), as immutable dataclasses.

Prices and amounts are integer KRW, quantities integers. ``to_dict`` gives the wire form;
``from_dict`` reads it back, ignoring unknown fields (newer engines may add some) and
filling missing ones with defaults.
"""

import dataclasses
from typing import Any, ClassVar, Dict, List, Type, TypeVar

T = TypeVar("T", bound="Payload")

# Order sides, kinds and statuses (protocol.md, "order").
BUY = "buy"
SELL = "sell"
SIDES = (BUY, SELL)
LIMIT = "limit"
MARKET = "market"
KINDS = (LIMIT, MARKET)

PENDING = "pending"
ACCEPTED = "accepted"
PARTIALLY_FILLED = "partially_filled"
FILLED = "filled"
CANCELLED = "cancelled"
REJECTED = "rejected"
ORDER_STATUSES = (PENDING, ACCEPTED, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED)
OPEN_STATUSES = (PENDING, ACCEPTED, PARTIALLY_FILLED)

# Engine states (``P:engine`` field ``state``).
STARTING = "starting"
READY = "ready"
HALTED = "halted"
STOPPING = "stopping"
ENGINE_STATES = (STARTING, READY, HALTED, STOPPING)


@dataclasses.dataclass(frozen=True)
class Payload:
    """Base of all payloads: the envelope ``type`` and dict conversion."""

    TYPE: ClassVar[str] = ""

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: Type[T], data: Dict[str, Any]) -> T:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Quote(Payload):
    TYPE: ClassVar[str] = "quote"
    code: str
    price: int
    change: int = 0
    change_pct: float = 0.0
    volume: int = 0
    trade_qty: int = 0  # negative when sell-initiated
    open: int = 0
    high: int = 0
    low: int = 0
    ask: int = 0
    bid: int = 0
    time: str = ""  # exchange time HHMMSS
    venue: str = "KRX"  # the venue the quote is from: KRX | NXT


@dataclasses.dataclass(frozen=True)
class Order(Payload):
    TYPE: ClassVar[str] = "order"
    order_id: str
    code: str
    side: str
    qty: int
    price: int = 0
    kind: str = LIMIT
    cmd_id: str = ""
    name: str = ""
    filled_qty: int = 0
    avg_fill_price: int = 0
    remaining_qty: int = 0
    status: str = PENDING
    reason: str = ""
    orig_order_id: str = ""
    created_ts: int = 0
    updated_ts: int = 0
    venue: str = "KRX"  # KRX | NXT | SOR (as routed; core.protocol.sessions)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclasses.dataclass(frozen=True)
class Fill(Payload):
    TYPE: ClassVar[str] = "fill"
    fill_id: str
    order_id: str
    code: str
    side: str
    qty: int
    price: int
    fee: int = 0
    tax: int = 0
    venue: str = "KRX"  # where it traded: KRX | NXT


@dataclasses.dataclass(frozen=True)
class Position(Payload):
    TYPE: ClassVar[str] = "position"
    code: str
    qty: int
    avg_price: int = 0
    name: str = ""
    last_price: int = 0
    unrealized_pnl: int = 0
    unrealized_pnl_pct: float = 0.0
    realized_pnl: int = 0


@dataclasses.dataclass(frozen=True)
class Account(Payload):
    TYPE: ClassVar[str] = "account"
    account: str = ""  # masked, e.g. 8012****11
    cash: int = 0
    orderable: int = 0
    equity: int = 0
    realized_pnl_today: int = 0
    unrealized_pnl: int = 0


@dataclasses.dataclass(frozen=True)
class Surge(Payload):
    TYPE: ClassVar[str] = "surge"
    code: str
    price: int
    change_pct: float
    volume_ratio: float
    window_s: int
    reason: str
    name: str = ""


@dataclasses.dataclass(frozen=True)
class LogRecord(Payload):
    TYPE: ClassVar[str] = "log"
    level: str
    logger: str
    message: str


#: Levels of a book on each side (Kiwoom's 주식호가잔량 carries 10 asks and 10 bids).
BOOK_LEVELS = 10


@dataclasses.dataclass(frozen=True)
class Book(Payload):
    """The order book (호가창) of one code: ``asks`` and ``bids`` are ``[[price, qty], ...]``,
    best first, ten each (a missing level is ``[0, 0]``); totals over the levels shown."""

    TYPE: ClassVar[str] = "book"
    code: str
    ts: int = 0  # ms epoch when the engine's broker read the book
    time: str = ""  # exchange time HHMMSS (FID 21 호가시간 on Kiwoom)
    asks: List[List[int]] = dataclasses.field(default_factory=list)
    bids: List[List[int]] = dataclasses.field(default_factory=list)
    total_ask: int = 0
    total_bid: int = 0


# Price alert conditions (``alert_add``): exactly one per alert.
ABOVE = "above"
BELOW = "below"
CHANGE_PCT = "change_pct"
ALERT_CONDITIONS = (ABOVE, BELOW, CHANGE_PCT)


@dataclasses.dataclass(frozen=True)
class PriceAlert(Payload):
    """A price alert set by the trader; the ``alert`` event carries it once, when it fires
    (``status`` ``fired`` with the quote that fired it)."""

    TYPE: ClassVar[str] = "alert"
    alert_id: str
    code: str
    condition: str  # above | below | change_pct
    threshold: float  # a price for above/below, a signed percentage for change_pct
    name: str = ""
    status: str = "active"  # active | fired
    created_ts: int = 0
    fired_ts: int = 0
    price: int = 0  # the price that fired it
    change_pct: float = 0.0  # the change that day when it fired
    message: str = ""


PAYLOAD_TYPES: Dict[str, Type[Payload]] = {
    cls.TYPE: cls
    for cls in (Quote, Order, Fill, Position, Account, Surge, LogRecord, Book, PriceAlert)
}


def mask_account(account: str) -> str:
    """``8012345611`` → ``8012****11``: enough to recognise, not enough to misuse."""
    a = account.strip()
    if len(a) <= 6:
        return "*" * len(a)
    return a[:4] + "*" * (len(a) - 6) + a[-2:]
