"""Chejan (``OnReceiveChejanData``): order and balance events into orders, fills and positions.

The OCX's chejan stream is hard to read naively: events of one order can arrive in any order,
the first one may have an empty order number, codes carry a prefix (``A005930``), quantities
come both cumulative (910/911) and per fill (914/915), and a cancel or modify is an order of
its own (new number, original in 904) whose confirmation (913 ``확인``) takes quantity away
from the original. So :class:`OrderBook` keeps *facts* per order number that only grow (the
largest cumulative fill, the set of confirmed reductions, a rejection) and derives the order's
status from them: whatever the arrival order, the same events give the same final order.
"""

from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple

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
# Added for issue 17 (names from koapy's fid.csv, dumped from the real control):
FID_CUM_AMOUNT = 903  # 체결누계금액: the sum of price x qty of every fill so far
FID_LAST_FILL_PRICE = 910  # 체결가: the price of the latest fill (FID_CUM_PRICE is the old name)
FID_CREDIT = 917  # 신용구분 on balance events: "00" cash, other values a credit lot
FID_REALIZED_CASH = 990  # 당일실현손익(유가): today's realised P&L of the cash lot
FID_REALIZED_CREDIT = 992  # 당일실현손익(신용): the same for a credit lot
CREDIT_CASH = "00"

ORDER_FIDS = (
    FID_ACCOUNT, FID_ORDER_NO, FID_CODE, FID_NAME, FID_STATUS, FID_ORDER_QTY, FID_ORDER_PRICE,
    FID_UNFILLED, FID_ORIG_ORDER_NO, FID_ORDER_KIND, FID_HOGA_KIND, FID_SIDE, FID_TIME,
    FID_CUM_PRICE, FID_CUM_QTY, FID_FILL_PRICE, FID_FILL_QTY, FID_FEE, FID_TAX, FID_REJECT_REASON,
    FID_CUM_AMOUNT,
)  # fmt: skip
BALANCE_FIDS = (
    FID_ACCOUNT, FID_CODE, FID_NAME, FID_CURRENT_PRICE, FID_HELD_QTY, FID_AVG_PRICE,
    FID_SELLABLE_QTY, FID_REALIZED_TODAY, FID_CREDIT, FID_REALIZED_CASH, FID_REALIZED_CREDIT,
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
        self.cum_amount = 0  # 903 체결누계금액, the largest seen
        self.confirmed = False  # a 확인 was seen (cancel and modify legs)
        self.closed = False  # a 체결/확인 said 902 미체결수량 = 0: nothing of it rests any more
        #: 938/939 are "cumulative" (per order) or "per_fill"; decided from the numbers (see _charges).
        self.charge_mode = ""
        self.fee_rate = 0.0

    def reduced(self) -> int:
        return sum(r.qty for r in self.reductions.values())

    def status(self) -> str:
        if self.reject_reason:
            return REJECTED
        if self.qty > 0 and self.filled >= self.qty:
            return FILLED
        if self.qty > 0 and (self.qty - self.filled - self.reduced() <= 0 or self.closed):
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

    def leg_outcome(self, order_id: str) -> Optional[str]:
        """A cancel or modify leg: None while its fate is unknown, "" once confirmed, or the
        refusal reason (919) when Kiwoom refused it."""
        facts = self._facts.get(order_id)
        if facts is None:
            return None
        if facts.reject_reason:
            return facts.reject_reason
        return "" if facts.confirmed else None

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
        orig = order_no(fields.get(FID_ORIG_ORDER_NO, ""))
        if role != ROLE_ORDER and orig and (facts.confirmed or facts.reject_reason):
            parent = self._facts_for(orig, ROLE_ORDER)
            if facts.reject_reason:
                # A refused cancel or modify (확인 with a 919 거부사유): the parent stays as it was.
                if parent.reductions.pop(order_id, None) is not None:
                    parent.updated_ts = self.clock_ms()
            elif facts.qty > 0 and order_id not in parent.reductions:
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
        if status == STATUS_CONFIRMED:
            facts.confirmed = True
        reason = fields.get(FID_REJECT_REASON, "").strip()
        if status == STATUS_REJECTED or (reason and reason.strip("0")):
            facts.reject_reason = reason if reason.strip("0") else "rejected by the exchange"
        # 902 미체결수량 = 0 on a fill or a confirmation: nothing rests any more (a cancel of the
        # rest, an IOC remainder, a close the reductions alone would not explain).
        unfilled = fields.get(FID_UNFILLED, "").strip()
        if (
            facts.role == ROLE_ORDER
            and status in (STATUS_FILLED, STATUS_CONFIRMED)
            and unfilled
            and to_int(unfilled) == 0
        ):
            facts.closed = True

    def _fill_from(self, facts: OrderFacts, fields: Fields) -> List[Fill]:
        """A fill from the cumulative 911 체결량; its price from 914/915 (this fill) or from the
        growth of 903 체결누계금액. 910 체결가 is the price of the latest fill, not an average
        (koapy's recorded real-control events: 903 77000, 910 77000, 911 1, 914 77000, 915 1),
        so the order's average is 903 / 911."""
        cum = to_int(fields.get(FID_CUM_QTY, ""))
        if cum <= facts.filled:
            return []  # nothing new, or an older event arriving late
        delta = cum - facts.filled
        cum_amount = to_int(fields.get(FID_CUM_AMOUNT, ""))
        last_price = to_price(fields.get(FID_LAST_FILL_PRICE, ""))
        this_qty = to_int(fields.get(FID_FILL_QTY, ""))
        this_price = to_price(fields.get(FID_FILL_PRICE, ""))
        known_amount = facts.cum_amount or facts.avg_price * facts.filled
        if this_qty == delta and this_price > 0:
            price = this_price
        elif cum_amount > known_amount:
            # Events were skipped or reordered: the price of the missing part from the amounts.
            price = int(round((cum_amount - known_amount) / float(delta)))
        else:
            price = last_price or this_price
        if cum_amount <= 0:
            cum_amount = known_amount + price * delta
        fee, tax = self._charges(facts, fields, price * delta, cum_amount)
        facts.filled = cum
        facts.cum_amount = cum_amount
        facts.avg_price = int(round(cum_amount / float(cum)))
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

    @staticmethod
    def _charges(
        facts: OrderFacts, fields: Fields, fill_value: int, cum_value: int
    ) -> Tuple[int, int]:
        """This fill's fee and tax from 938 당일매매수수료 / 939 당일매매세금.

        The sources disagree on whether these are the order's running totals or this fill's
        own: KOA names them 당일 (today's), and koapy's recorded events show a single fill only.
        So both are handled: on the first fill the two readings agree and give the fee rate; from
        the second fill on, a value below the running total can only be per fill, otherwise the
        reading closer to rate x value decides, once per order."""
        fee_value = to_int(fields.get(FID_FEE, ""))
        tax_value = to_int(fields.get(FID_TAX, ""))
        if facts.filled == 0 and not facts.fee_total and not facts.tax_total:
            facts.fee_total, facts.tax_total = fee_value, tax_value
            facts.fee_rate = fee_value / float(fill_value) if fill_value else 0.0
            return fee_value, tax_value
        if not facts.charge_mode and (fee_value or tax_value):
            if fee_value < facts.fee_total or tax_value < facts.tax_total:
                facts.charge_mode = "per_fill"
            elif facts.fee_rate > 0:
                as_total = abs(fee_value - facts.fee_rate * cum_value)
                as_fill = abs(fee_value - facts.fee_rate * fill_value)
                facts.charge_mode = "cumulative" if as_total <= as_fill else "per_fill"
            else:
                facts.charge_mode = "cumulative"
        if facts.charge_mode == "per_fill":
            facts.fee_total += fee_value
            facts.tax_total += tax_value
            return fee_value, tax_value
        fee = max(0, fee_value - facts.fee_total)
        tax = max(0, tax_value - facts.tax_total)
        facts.fee_total = max(facts.fee_total, fee_value)
        facts.tax_total = max(facts.tax_total, tax_value)
        return fee, tax

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
                         realized_of(fields))  # fmt: skip


def realized_of(fields: Fields) -> int:
    """Today's realised P&L of a balance event: 990 당일실현손익(유가) + 992 (신용), which KOA
    names 실현손익; 950 당일총매도손익 (total sell P&L) only when neither is sent."""
    cash = fields.get(FID_REALIZED_CASH, "").strip()
    credit = fields.get(FID_REALIZED_CREDIT, "").strip()
    if cash or credit:
        return to_int(cash) + to_int(credit)
    return to_int(fields.get(FID_REALIZED_TODAY, ""))


def credit_of(fields: Fields) -> str:
    """917 신용구분 of a balance event ("00" cash when missing)."""
    return fields.get(FID_CREDIT, "").strip() or CREDIT_CASH


def merge_lots(lots: Iterable[Position]) -> List[Position]:
    """Positions of one code held in several lots (cash and credit: opw00018 조회구분 2 lists
    each lot on its own row; 917 says which lot a balance event is about) summed into one
    position per code: quantities add, the average price is weighted by quantity."""
    by_code: Dict[str, List[Position]] = {}
    for lot in lots:
        by_code.setdefault(lot.code, []).append(lot)
    out = []
    for code, group in by_code.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        qty = sum(p.qty for p in group)
        cost = sum(p.qty * p.avg_price for p in group)
        avg = int(round(cost / float(qty))) if qty else 0
        last = next((p.last_price for p in group if p.last_price), 0)
        name = next((p.name for p in group if p.name), "")
        out.append(make_position(code, name, qty, avg, last, sum(p.realized_pnl for p in group)))
    return out


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
