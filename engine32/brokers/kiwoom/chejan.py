"""Chejan (``OnReceiveChejanData``): order and balance events into orders, fills and positions.

The OCX's chejan stream is hard to read naively: events of one order can arrive in any order,
the first one may have an empty order number, codes carry a prefix (``A005930``), quantities
come both cumulative (910/911) and per fill (914/915), and a cancel or modify is an order of
its own (new number, original in 904) whose confirmation (913 ``확인``) takes quantity away
from the original. So :class:`OrderBook` keeps *facts* per order number that only grow (the
largest cumulative fill, the set of confirmed reductions, a rejection) and derives the order's
status from them: whatever the arrival order, the same events give the same final order.
"""

from typing import Callable, Dict, Iterable, List, NamedTuple, Optional

from core.protocol.envelope import now_ms
from core.protocol.events import (
    ACCEPTED,
    BUY,
    CANCELLED,
    FILLED,
    LIMIT,
    MARKET,
    OPEN_STATUSES,
    PARTIALLY_FILLED,
    PENDING,
    REJECTED,
    SELL,
    Fill,
    Order,
    Position,
)

from .values import to_code, to_int, to_price

GUBUN_ORDER = "0"
GUBUN_BALANCE = "1"

FID_ACCOUNT = 9201
FID_ORDER_NO = 9203
FID_CODE = 9001
FID_NAME = 302
FID_STATUS = 913
FID_ORDER_QTY = 900
FID_ORDER_PRICE = 901
FID_UNFILLED = 902
FID_ORIG_ORDER_NO = 904
FID_ORDER_KIND = 905
FID_HOGA_KIND = 906
FID_SIDE = 907
FID_TIME = 908
FID_CUM_PRICE = 910
FID_CUM_QTY = 911
FID_FILL_PRICE = 914
FID_FILL_QTY = 915
FID_FEE = 938
FID_TAX = 939
FID_REJECT_REASON = 919
FID_CURRENT_PRICE = 10
FID_HELD_QTY = 930
FID_AVG_PRICE = 931
FID_SELLABLE_QTY = 933
FID_REALIZED_TODAY = 950

ORDER_FIDS = (
    FID_ACCOUNT, FID_ORDER_NO, FID_CODE, FID_NAME, FID_STATUS, FID_ORDER_QTY, FID_ORDER_PRICE,
    FID_UNFILLED, FID_ORIG_ORDER_NO, FID_ORDER_KIND, FID_HOGA_KIND, FID_SIDE, FID_TIME,
    FID_CUM_PRICE, FID_CUM_QTY, FID_FILL_PRICE, FID_FILL_QTY, FID_FEE, FID_TAX, FID_REJECT_REASON,
)  # fmt: skip
BALANCE_FIDS = (
    FID_ACCOUNT, FID_CODE, FID_NAME, FID_CURRENT_PRICE, FID_HELD_QTY, FID_AVG_PRICE,
    FID_SELLABLE_QTY, FID_REALIZED_TODAY,
)  # fmt: skip

STATUS_RECEIVED = "접수"
STATUS_FILLED = "체결"
STATUS_CONFIRMED = "확인"
STATUS_REJECTED = "거부"

ROLE_ORDER = "order"
ROLE_CANCEL = "cancel"
ROLE_MODIFY = "modify"

Fields = Dict[int, str]


def read_fields(get: Callable[[int], str], fids: Iterable[int]) -> Fields:
    """Every FID of one event through ``get`` (``GetChejanData``)."""
    return {fid: get(fid) or "" for fid in fids}


def role_of(order_kind: str) -> str:
    """905 ``+매수`` / ``-매도`` / ``매수취소`` / ``+매수정정`` … → order, cancel or modify."""
    if "취소" in order_kind:
        return ROLE_CANCEL
    if "정정" in order_kind:
        return ROLE_MODIFY
    return ROLE_ORDER


def side_of(fields: Fields) -> str:
    """907 is ``1`` sell, ``2`` buy; 905 says it in words when 907 is missing."""
    side = fields.get(FID_SIDE, "").strip()
    if side == "1":
        return SELL
    if side == "2":
        return BUY
    return SELL if "매도" in fields.get(FID_ORDER_KIND, "") else BUY


RECEIVED_STATUSES = (STATUS_RECEIVED, STATUS_CONFIRMED)


def order_no(text: str) -> str:
    """An order number, or '' for an empty or all-zero one (904 of a new order is ``0000000``)."""
    no = (text or "").strip()
    return "" if no.strip("0") == "" else no


class Reduction(NamedTuple):
    qty: int
    role: str  # ROLE_CANCEL or ROLE_MODIFY


class OrderFacts:
    """What is known of one order number; only ever grows."""

    def __init__(self, order_id: str, role: str = ROLE_ORDER) -> None:
        self.order_id = order_id
        self.role = role
        self.code = ""
        self.name = ""
        self.side = ""
        self.kind = LIMIT
        self.qty = 0
        self.price = 0
        self.cmd_id = ""
        self.orig_order_id = ""
        self.created_ts = 0
        self.updated_ts = 0
        self.filled = 0
        self.avg_price = 0
        self.fee_total = 0
        self.tax_total = 0
        self.accepted = False
        self.reject_reason = ""
        self.reductions: Dict[str, Reduction] = {}
        self.reported_open = 0  # from reconciliation: unfilled qty when no chejan says more

    def reduced(self) -> int:
        return sum(r.qty for r in self.reductions.values())

    def status(self) -> str:
        if self.reject_reason:
            return REJECTED
        if self.qty > 0 and self.filled >= self.qty:
            return FILLED
        if self.qty > 0 and self.qty - self.filled - self.reduced() <= 0:
            return CANCELLED
        if self.filled > 0:
            return PARTIALLY_FILLED
        return ACCEPTED if self.accepted else PENDING

    def to_order(self) -> Order:
        status = self.status()
        remaining = (
            max(0, self.qty - self.filled - self.reduced()) if status in OPEN_STATUSES else 0
        )
        reason = self.reject_reason
        if status == CANCELLED:
            replaced = sorted(n for n, r in self.reductions.items() if r.role == ROLE_MODIFY)
            reason = "replaced by " + ", ".join(replaced) if replaced else "cancelled"
        return Order(
            order_id=self.order_id,
            code=self.code,
            side=self.side or BUY,
            qty=self.qty,
            price=self.price,
            kind=self.kind,
            cmd_id=self.cmd_id,
            name=self.name,
            filled_qty=self.filled,
            avg_fill_price=self.avg_price,
            remaining_qty=remaining,
            status=status,
            reason=reason,
            orig_order_id=self.orig_order_id,
            created_ts=self.created_ts,
            updated_ts=self.updated_ts,
        )


class BookUpdate(NamedTuple):
    """What one chejan event changed: orders as they now stand, and new fills."""

    orders: List[Order]
    fills: List[Fill]


class OrderBook:
    """Orders by Kiwoom order number, fed by chejan events and by reconciliation."""

    def __init__(self, clock_ms: Callable[[], int] = now_ms) -> None:
        self.clock_ms = clock_ms
        self._facts: Dict[str, OrderFacts] = {}
        self._last_sent: Dict[str, Order] = {}
        self.ignored = 0  # events without an order number

    # -- queries ---------------------------------------------------------------------------
    def knows(self, order_id: str) -> bool:
        return order_id in self._facts

    def order(self, order_id: str) -> Optional[Order]:
        facts = self._facts.get(order_id)
        if facts is None or facts.role == ROLE_CANCEL or facts.qty <= 0:
            return None
        return facts.to_order()

    def orders(self) -> List[Order]:
        out = []
        for order_id in self._facts:
            order = self.order(order_id)
            if order is not None:
                out.append(order)
        return out

    def open_orders(self) -> List[Order]:
        return [o for o in self.orders() if o.is_open]

    # -- inputs ----------------------------------------------------------------------------
    def note_sent(
        self,
        order_id: str,
        code: str,
        side: str,
        qty: int,
        price: int,
        kind: str,
        cmd_id: str = "",
        orig_order_id: str = "",
        role: str = ROLE_ORDER,
        received: bool = False,
    ) -> Optional[Order]:
        """An order we sent now has its number (from the TR reply or a matched chejan);
        ``received``: a chejan without a number already said the order was received."""
        facts = self._facts_for(order_id, role)
        facts.accepted = facts.accepted or received
        facts.code = facts.code or code
        facts.side = facts.side or side
        facts.qty = facts.qty or qty
        facts.price = facts.price or price
        facts.kind = kind
        facts.cmd_id = cmd_id
        facts.orig_order_id = facts.orig_order_id or orig_order_id
        return self._changed(facts)

    def seed(self, order: Order) -> Optional[Order]:
        """An order as reconciliation found it (opt10075): replaces what was known of it,
        but keeps facts chejan brought that are newer (a larger fill)."""
        facts = self._facts_for(order.order_id, ROLE_ORDER)
        facts.code = order.code
        facts.name = order.name or facts.name
        facts.side = order.side
        facts.qty = order.qty
        facts.price = order.price or facts.price
        facts.kind = order.kind
        facts.orig_order_id = order.orig_order_id or facts.orig_order_id
        facts.accepted = True
        if order.filled_qty > facts.filled:
            facts.filled = order.filled_qty
            facts.avg_price = order.avg_fill_price
        if order.status == REJECTED:
            facts.reject_reason = order.reason or "rejected"
        unexplained = order.qty - facts.filled - order.remaining_qty - facts.reduced()
        if order.status not in OPEN_STATUSES and unexplained > 0:
            facts.reductions["reconciled"] = Reduction(unexplained, ROLE_CANCEL)
        return self._changed(facts)

    def on_order_event(self, fields: Fields) -> BookUpdate:
        """One gubun-0 event. Events without an order number are counted and dropped: the
        ones that follow carry the same facts (the fill quantities are cumulative)."""
        order_id = order_no(fields.get(FID_ORDER_NO, ""))
        if not order_id:
            self.ignored += 1
            return BookUpdate([], [])
        role = role_of(fields.get(FID_ORDER_KIND, ""))
        facts = self._facts_for(order_id, role)
        if facts.role == ROLE_ORDER and role != ROLE_ORDER:
            facts.role = role
        self._absorb(facts, fields)
        fills = self._fill_from(facts, fields)
        orders: List[Order] = []
        status = fields.get(FID_STATUS, "").strip()
        orig = order_no(fields.get(FID_ORIG_ORDER_NO, ""))
        if role != ROLE_ORDER and orig and status == STATUS_CONFIRMED and facts.qty > 0:
            parent = self._facts_for(orig, ROLE_ORDER)
            if order_id not in parent.reductions:
                parent.reductions[order_id] = Reduction(facts.qty, role)
                parent.updated_ts = self.clock_ms()
            changed = self._changed(parent)
            if changed is not None:
                orders.append(changed)
        changed = self._changed(facts)
        if changed is not None:
            orders.append(changed)
        return BookUpdate(orders, fills)

    # -- internals -------------------------------------------------------------------------
    def _facts_for(self, order_id: str, role: str) -> OrderFacts:
        facts = self._facts.get(order_id)
        if facts is None:
            facts = OrderFacts(order_id, role)
            facts.created_ts = facts.updated_ts = self.clock_ms()
            self._facts[order_id] = facts
        return facts

    def _absorb(self, facts: OrderFacts, fields: Fields) -> None:
        facts.updated_ts = self.clock_ms()
        code = to_code(fields.get(FID_CODE, ""))
        if code:
            facts.code = code
        name = fields.get(FID_NAME, "").strip()
        if name:
            facts.name = name
        if fields.get(FID_SIDE, "").strip() or fields.get(FID_ORDER_KIND, "").strip():
            facts.side = side_of(fields)
        qty = to_int(fields.get(FID_ORDER_QTY, ""))
        if qty > 0:
            facts.qty = qty
        price = to_price(fields.get(FID_ORDER_PRICE, ""))
        if price > 0:
            facts.price = price
        hoga = fields.get(FID_HOGA_KIND, "").strip()
        if hoga:
            facts.kind = MARKET if "시장가" in hoga else LIMIT
        orig = order_no(fields.get(FID_ORIG_ORDER_NO, ""))
        if orig:
            facts.orig_order_id = orig
        status = fields.get(FID_STATUS, "").strip()
        if status in (STATUS_RECEIVED, STATUS_CONFIRMED, STATUS_FILLED):
            facts.accepted = True
        reason = fields.get(FID_REJECT_REASON, "").strip()
        if status == STATUS_REJECTED or (reason and reason.strip("0")):
            facts.reject_reason = reason or "rejected by the exchange"

    def _fill_from(self, facts: OrderFacts, fields: Fields) -> List[Fill]:
        cum = to_int(fields.get(FID_CUM_QTY, ""))
        if cum <= facts.filled:
            return []  # nothing new, or an older event arriving late
        delta = cum - facts.filled
        cum_avg = to_price(fields.get(FID_CUM_PRICE, ""))
        this_qty = to_int(fields.get(FID_FILL_QTY, ""))
        this_price = to_price(fields.get(FID_FILL_PRICE, ""))
        if this_qty == delta and this_price > 0:
            price = this_price
        elif cum_avg > 0:
            # Events were skipped or reordered: the price of the missing part from the averages.
            price = int(round((cum_avg * cum - facts.avg_price * facts.filled) / float(delta)))
        else:
            price = this_price
        fee_total = to_int(fields.get(FID_FEE, ""))
        tax_total = to_int(fields.get(FID_TAX, ""))
        fee = max(0, fee_total - facts.fee_total)
        tax = max(0, tax_total - facts.tax_total)
        facts.fee_total = max(facts.fee_total, fee_total)
        facts.tax_total = max(facts.tax_total, tax_total)
        facts.filled = cum
        facts.avg_price = cum_avg or price
        return [
            Fill(
                fill_id="{}-{}".format(facts.order_id, cum),
                order_id=facts.order_id,
                code=facts.code,
                side=facts.side or BUY,
                qty=delta,
                price=price,
                fee=fee,
                tax=tax,
            )
        ]

    def _changed(self, facts: OrderFacts) -> Optional[Order]:
        """The order if it differs from what was last reported (cancel legs are never reported)."""
        if facts.role == ROLE_CANCEL or facts.qty <= 0:
            return None
        order = facts.to_order()
        last = self._last_sent.get(facts.order_id)
        if last is not None and last.replace(updated_ts=0) == order.replace(updated_ts=0):
            return None
        self._last_sent[facts.order_id] = order
        return order


def parse_balance(fields: Fields) -> Optional[Position]:
    """One gubun-1 event: the position of a code as it now stands (qty 0 when sold out)."""
    code = to_code(fields.get(FID_CODE, ""))
    if not code:
        return None
    qty = to_int(fields.get(FID_HELD_QTY, ""))
    avg = to_price(fields.get(FID_AVG_PRICE, ""))
    last = to_price(fields.get(FID_CURRENT_PRICE, ""))
    return make_position(code, fields.get(FID_NAME, "").strip(), qty, avg, last,
                         to_int(fields.get(FID_REALIZED_TODAY, "")))  # fmt: skip


def make_position(
    code: str, name: str, qty: int, avg: int, last: int, realized: int = 0
) -> Position:
    unrealized = (last - avg) * qty if qty and last and avg else 0
    cost = avg * qty
    pct = round(unrealized * 100.0 / cost, 2) if cost else 0.0
    return Position(
        code=code,
        qty=qty,
        avg_price=avg,
        name=name,
        last_price=last,
        unrealized_pnl=unrealized,
        unrealized_pnl_pct=pct,
        realized_pnl=realized,
    )
