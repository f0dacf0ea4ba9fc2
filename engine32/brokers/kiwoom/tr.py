"""TR queries the broker needs, with their inputs and the readers of their answers.

``opw00018`` (holdings and valuation, continued with ``next=2``), ``opw00001`` (deposit),
``opt10075`` (today's orders with their unfilled quantity). Values come zero- or
space-padded (``000000070000``), codes with a prefix (``A005930``).
"""

from typing import Callable, List, NamedTuple, Tuple

from core.protocol.events import (
    ACCEPTED,
    BUY,
    CANCELLED,
    FILLED,
    LIMIT,
    MARKET,
    PARTIALLY_FILLED,
    REJECTED,
    SELL,
    Order,
    Position,
)

from .chejan import CREDIT_CASH, ROLE_CANCEL, make_position, role_of
from .values import to_code, to_int, to_price

BALANCE = "opw00018"
DEPOSIT = "opw00001"
ORDERS = "opt10075"
#: 체결요청: today's orders with their fills, for orders that opt10075 no longer lists.
HISTORY = "opt10076"

Inputs = List[Tuple[str, str]]


class Page:
    """One ``OnReceiveTrData`` answer, read through ``GetCommData`` / ``GetRepeatCnt``.

    Valid only inside the slot that received it: the OCX forgets the data afterwards.
    """

    def __init__(
        self,
        trcode: str,
        rqname: str,
        get: Callable[[str, str, int, str], str],
        count: Callable[[str, str], int],
        has_next: bool,
    ) -> None:
        self.trcode = trcode
        self.rqname = rqname
        self._get = get
        self._count = count
        self.has_next = has_next

    def get(self, item: str, index: int = 0) -> str:
        return (self._get(self.trcode, self.rqname, index, item) or "").strip()

    def count(self) -> int:
        return int(self._count(self.trcode, self.rqname) or 0)


def balance_inputs(account: str) -> Inputs:
    return [
        ("계좌번호", account),
        ("비밀번호", ""),
        ("비밀번호입력매체구분", "00"),
        ("조회구분", "2"),
    ]


def deposit_inputs(account: str) -> Inputs:
    return [
        ("계좌번호", account),
        ("비밀번호", ""),
        ("비밀번호입력매체구분", "00"),
        ("조회구분", "2"),
    ]


def orders_inputs(account: str) -> Inputs:
    """All of today's orders (체결구분 0), so orders closed while disconnected are found too."""
    return [
        ("계좌번호", account),
        ("전체종목구분", "0"),
        ("매매구분", "0"),
        ("종목코드", ""),
        ("체결구분", "0"),
    ]


def history_inputs(account: str) -> Inputs:
    """All of today's orders of every code (조회구분 0), both sides, filled or not (체결구분 0);
    주문번호 empty: from the first (koapy trinfo_by_code.json: opt10076 inputs)."""
    return [
        ("종목코드", ""),
        ("조회구분", "0"),
        ("매도수구분", "0"),
        ("계좌번호", account),
        ("비밀번호", ""),
        ("주문번호", ""),
        ("체결구분", "0"),
    ]


class BalanceSummary(NamedTuple):
    total_cost: int
    total_value: int
    unrealized_pnl: int
    estimated_assets: int


def read_balance(page: Page) -> Tuple[BalanceSummary, List[Position]]:
    summary = BalanceSummary(
        total_cost=to_int(page.get("총매입금액")),
        total_value=to_int(page.get("총평가금액")),
        unrealized_pnl=to_int(page.get("총평가손익금액")),
        estimated_assets=to_int(page.get("추정예탁자산")),
    )
    positions = []
    # 조회구분 "2" lists each lot (cash, and each 신용구분 credit lot) on its own row: the broker
    # sums them per code (chejan.merge_lots).
    for i in range(page.count()):
        code = to_code(page.get("종목번호", i))
        if not code:
            continue
        positions.append(
            make_position(
                code,
                page.get("종목명", i),
                to_int(page.get("보유수량", i)),
                to_price(page.get("매입가", i)),
                to_price(page.get("현재가", i)),
            )
        )
    return summary, positions


def read_balance_lots(page: Page) -> List[Tuple[str, Position]]:
    """The rows of one opw00018 page as (신용구분, position of that lot); "00" is cash."""
    lots = []
    for i in range(page.count()):
        code = to_code(page.get("종목번호", i))
        if not code:
            continue
        pos = make_position(code, page.get("종목명", i), to_int(page.get("보유수량", i)),
                            to_price(page.get("매입가", i)), to_price(page.get("현재가", i)))  # fmt: skip
        lots.append((page.get("신용구분", i) or CREDIT_CASH, pos))
    return lots


class Deposit(NamedTuple):
    cash: int  # 예수금
    orderable: int  # 주문가능금액
    settled_d2: int  # d+2추정예수금


def read_deposit(page: Page) -> Deposit:
    return Deposit(
        cash=to_int(page.get("예수금")),
        orderable=to_int(page.get("주문가능금액")),
        settled_d2=to_int(page.get("d+2추정예수금")),
    )


def read_orders(page: Page) -> List[Order]:
    """Orders of one opt10075 page; cancel legs are left out (they change their original)."""
    orders = []
    for i in range(page.count()):
        order_id = page.get("주문번호", i)
        kind_words = page.get("주문구분", i)
        if not order_id or role_of(kind_words) == ROLE_CANCEL:
            continue
        qty = to_int(page.get("주문수량", i))
        remaining = to_int(page.get("미체결수량", i))
        filled = to_int(page.get("체결량", i))
        state = page.get("주문상태", i)
        if "거부" in state:
            status = REJECTED
        elif remaining > 0:
            status = PARTIALLY_FILLED if filled > 0 else ACCEPTED
        elif filled >= qty:
            status = FILLED
        else:
            status = CANCELLED
        orig = page.get("원주문번호", i)
        orders.append(
            Order(
                order_id=order_id,
                code=to_code(page.get("종목코드", i)),
                side=SELL if "매도" in kind_words else BUY,
                qty=qty,
                price=to_price(page.get("주문가격", i)),
                kind=MARKET if "시장가" in page.get("매매구분", i) else LIMIT,
                name=page.get("종목명", i),
                filled_qty=filled,
                avg_fill_price=to_price(page.get("체결가", i)),
                remaining_qty=remaining if status in (ACCEPTED, PARTIALLY_FILLED) else 0,
                status=status,
                orig_order_id="" if orig.strip("0") == "" else orig,
            )
        )
    return orders


def read_history(page: Page) -> List[Order]:
    """Orders of one opt10076 page (same reading as opt10075's; its columns are a subset)."""
    return read_orders(page)


#: Every TR input and output field the adapter uses, for ``python -m engine32 --check-trs``
#: (checked against the installed OpenAPI's own definitions) and its test (which checks that
#: this list covers every SetInputValue and GetCommData the adapter makes on the fake control).
USED_FIELDS = {
    BALANCE: (
        ("계좌번호", "비밀번호", "비밀번호입력매체구분", "조회구분"),
        ("총매입금액", "총평가금액", "총평가손익금액", "추정예탁자산", "종목번호", "종목명", "보유수량",
         "매입가", "현재가", "신용구분"),
    ),
    DEPOSIT: (
        ("계좌번호", "비밀번호", "비밀번호입력매체구분", "조회구분"),
        ("예수금", "주문가능금액", "d+2추정예수금"),
    ),
    ORDERS: (
        ("계좌번호", "전체종목구분", "매매구분", "종목코드", "체결구분"),
        ("주문번호", "주문구분", "주문수량", "미체결수량", "체결량", "주문상태", "원주문번호", "종목코드",
         "주문가격", "매매구분", "종목명", "체결가"),
    ),
    HISTORY: (
        ("종목코드", "조회구분", "매도수구분", "계좌번호", "비밀번호", "주문번호", "체결구분"),
        ("주문번호", "주문구분", "주문수량", "미체결수량", "체결량", "주문상태", "원주문번호", "종목코드",
         "주문가격", "매매구분", "종목명", "체결가"),
    ),
}  # fmt: skip
