"""Orders inside the simulator and how one of them meets the market.

- A **limit** order that crosses the touch on arrival fills at the touch (price improvement);
  what is left *rests* and fills at its own price once the market trades through it
  (a buy when the best ask falls to its price or below, a sell when the best bid rises to it).
- A **market** order fills at the touch moved ``slippage_ticks`` against it (never beyond the
  daily limit).
- Each quote offers only so much at the touch (``CodeState.depth``), shared by the orders of
  that code in time priority, so a large order fills partially over several quotes.
"""

from typing import Optional, Tuple

from core.protocol import krx
from core.protocol.events import (
    BUY,
    CANCELLED,
    FILLED,
    LIMIT,
    MARKET,
    OPEN_STATUSES,
    SIDES,
    Order,
)

from .market import CodeState


class SimOrder:
    """An order as the simulator keeps it (mutable); :meth:`to_order` gives the payload."""

    __slots__ = (
        "order_id",
        "cmd_id",
        "code",
        "name",
        "side",
        "kind",
        "qty",
        "price",
        "filled_qty",
        "fill_value",
        "fills",
        "status",
        "reason",
        "orig_order_id",
        "created_ts",
        "updated_ts",
        "resting",
        "reserved",
        "venue",
        "group",
    )

    def __init__(
        self,
        order_id: str,
        code: str,
        name: str,
        side: str,
        kind: str,
        qty: int,
        price: int,
        cmd_id: str,
        status: str,
        now_ms: int,
        reason: str = "",
        orig_order_id: str = "",
        venue: str = "KRX",
        group: str = "",
    ) -> None:
        self.order_id = order_id
        self.cmd_id = cmd_id
        self.code = code
        self.name = name
        self.side = side
        self.kind = kind
        self.qty = qty
        self.price = price
        self.filled_qty = 0
        self.fill_value = 0
        self.fills = 0
        self.status = status
        self.reason = reason
        self.orig_order_id = orig_order_id
        self.created_ts = now_ms
        self.updated_ts = now_ms
        self.resting = False  # True once it had its arrival match: later fills at its price
        self.reserved = 0  # KRW this buy order holds back from orderable cash
        self.venue = venue  # where it was routed: KRX | NXT
        self.group = group  # the session it lives in; it expires when that session ends

    @property
    def remaining(self) -> int:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def close(self, status: str, reason: str, now_ms: int) -> None:
        self.status = status
        self.reason = reason
        self.updated_ts = now_ms

    def to_order(self) -> Order:
        avg = int(round(self.fill_value / self.filled_qty)) if self.filled_qty else 0
        return Order(
            order_id=self.order_id,
            code=self.code,
            side=self.side,
            qty=self.qty,
            price=self.price,
            kind=self.kind,
            cmd_id=self.cmd_id,
            name=self.name,
            filled_qty=self.filled_qty,
            avg_fill_price=avg,
            remaining_qty=self.remaining if self.is_open else 0,
            status=self.status,
            reason=self.reason,
            orig_order_id=self.orig_order_id,
            created_ts=self.created_ts,
            updated_ts=self.updated_ts,
            venue=self.venue,
        )


def check_order(side: str, kind: str, qty: object, price: object, st: Optional[CodeState]) -> str:
    """Why an order is invalid in itself ('' when it is valid); cash and holdings aside."""
    if st is None:
        return "unknown code (not in the simulator's universe)"
    if side not in SIDES:
        return "side must be buy or sell, got {!r}".format(side)
    if kind not in (LIMIT, MARKET):
        return "type must be limit or market, got {!r}".format(kind)
    if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
        return "qty must be a positive integer, got {!r}".format(qty)
    if kind == LIMIT:
        if not isinstance(price, int) or isinstance(price, bool):
            return "price must be an integer number of KRW, got {!r}".format(price)
        return krx.check_price(price, st.base)
    return ""


def match(order: SimOrder, st: CodeState, available: int, slippage_ticks: int) -> Tuple[int, int]:
    """``(qty, price)`` that ``order`` fills against the current quote of ``st`` ((0, 0): none)."""
    if available <= 0:
        return 0, 0
    qty = order.remaining if order.remaining < available else available
    if order.kind == MARKET:
        if order.side == BUY:
            price = krx.next_tick(st.ask, slippage_ticks) if slippage_ticks else st.ask
            return qty, min(price, st.upper)
        price = krx.prev_tick(st.bid, slippage_ticks) if slippage_ticks else st.bid
        return qty, max(price, st.lower)
    if order.side == BUY:
        if st.ask <= order.price:
            return qty, order.price if order.resting else st.ask
        return 0, 0
    if st.bid >= order.price:
        return qty, order.price if order.resting else st.bid
    return 0, 0


def auction_fills(order: SimOrder, price: int) -> bool:
    """Whether ``order`` takes part in a single-price auction that uncrosses at ``price``."""
    if order.kind == MARKET:
        return True
    return order.price >= price if order.side == BUY else order.price <= price


__all__ = ["CANCELLED", "FILLED", "SimOrder", "auction_fills", "check_order", "match"]
