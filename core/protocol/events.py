"""Typed payloads of the events (the ``data`` of an envelope), as immutable dataclasses.

Prices and amounts are integer KRW, quantities integers. ``to_dict`` gives the wire form;
``from_dict`` reads it back, ignoring unknown fields (newer engines may add some) and
filling missing ones with defaults.
"""

import dataclasses
from typing import Any, ClassVar, Dict, Type, TypeVar

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


PAYLOAD_TYPES: Dict[str, Type[Payload]] = {
    cls.TYPE: cls for cls in (Quote, Order, Fill, Position, Account, Surge, LogRecord)
}


def mask_account(account: str) -> str:
    """``8012345611`` → ``8012****11``: enough to recognise, not enough to misuse."""
    a = account.strip()
    if len(a) <= 6:
        return "*" * len(a)
    return a[:4] + "*" * (len(a) - 6) + a[-2:]
