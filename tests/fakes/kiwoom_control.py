"""A fake Kiwoom OpenAPI+ control that behaves like ``KHOPENAPI.KHOpenAPICtrl.1`` on Linux.

It is a ``QObject`` with the OCX's signals (same names, same argument types) and a
``dynamicCall`` that accepts exactly the real method signatures (spaces after commas allowed,
as Qt normalises them), with positional arguments or one list as ``QAxBase.dynamicCall``
does, and raises on anything else. Events come later through the Qt event loop, one per
turn, never from inside the call, as the real control's do.

The quirks the adapter must survive are here: -200 past 5 queries a second, -308 past 5
orders a second, ``A005930`` in chejan 9001, an empty order number in the first chejan of
an order, chejan events of one action in any order (``chejan_order``), signed strings in
real-time data, zero- and space-padded numbers from ``GetCommData``, continuation pages,
and answers that are only readable inside the slot that receives them.

A small market model fills orders: a buy at or above the last price (or at market) fills at
the last price, in ``fill_parts`` pieces; others rest until ``trade(code, price)`` crosses them.

Hooks for tests: ``login_plan`` (per attempt: 0 ok, a negative code, or ``"never"``),
``close_socket()``, ``daily_notice()``, ``trade()``, ``condition_hit()``, ``calls`` (every
dynamicCall made) and ``violations`` (rules the caller broke, e.g. 101 codes on a screen).

The order of an order's events is the real control's, as koapy's test against it records
(tests/test_koapy.py and its tutorial's trace): OnReceiveMsg ("[100000] 모의투자 매수주문완료")
→ OnReceiveTrData with the order number → 접수 with that number → 체결 → 잔고. The odd orders
stay as options: ``empty_first_order_no`` (a first 접수 without its number) and
``chejan_before_answer`` (KOA's guide: "주문건수가 폭증하는 경우 OnReceiveChejan 이벤트가
OnReceiveTRData 이벤트보다 앞서 수신될 수 있습니다"). After -106 the process is done for:
``CommConnect`` never answers again (koapy's dialog handler: "통신 연결이 끊겼습니다. 프로그램
종료후 재접속 해주시기 바랍니다.").

Used by the engine too: ``[engine.kiwoom] control = "tests.fakes.kiwoom_control:create_fake_control"``.
"""

import collections
import datetime
import json
import os
import random
import re
import time
from typing import IO, Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple, Union

from PyQt5.QtCore import QObject, QTimer, pyqtSignal

from core.protocol import krx

QString = str

#: signature (whitespace removed) → argument types.
SIGNATURES: Dict[str, Tuple[type, ...]] = {
    "CommConnect()": (),
    "GetConnectState()": (),
    "GetLoginInfo(QString)": (str,),
    "SetInputValue(QString,QString)": (str, str),
    "CommRqData(QString,QString,int,QString)": (str, str, int, str),
    "GetCommData(QString,QString,int,QString)": (str, str, int, str),
    "GetRepeatCnt(QString,QString)": (str, str),
    "SendOrder(QString,QString,QString,int,QString,int,int,QString,QString)": (
        str,
        str,
        str,
        int,
        str,
        int,
        int,
        str,
        str,
    ),  # fmt: skip
    "GetChejanData(int)": (int,),
    "SetRealReg(QString,QString,QString,QString)": (str, str, str, str),
    "SetRealRemove(QString,QString)": (str, str),
    "GetCommRealData(QString,int)": (str, int),
    "DisconnectRealData(QString)": (str,),
    "GetMasterCodeName(QString)": (str,),
    "GetCodeListByMarket(QString)": (str,),
    "GetMasterLastPrice(QString)": (str,),
    "GetConditionLoad()": (),
    "GetConditionNameList()": (),
    "SendCondition(QString,QString,int,int)": (str, str, int, int),
    "SendConditionStop(QString,QString,int)": (str, str, int),
}

DEFAULT_STOCKS: Dict[str, Tuple[str, int]] = {
    "005930": ("삼성전자", 70000),
    "000660": ("SK하이닉스", 180000),
    "035420": ("NAVER", 200000),
    "035720": ("카카오", 40000),
    "005380": ("현대차", 250000),
    "051910": ("LG화학", 300000),
    "006400": ("삼성SDI", 350000),
    "068270": ("셀트리온", 180000),
}

#: Codes of ``stocks`` that GetCodeListByMarket lists under "10" (코스닥); the others under "0"
#: (장내, KOSPI). Real KOSDAQ names, so a test may give the fake any of them.
KOSDAQ_CODES = frozenset({"086520", "247540", "196170", "028300", "263750", "293490", "041510",
                          "035900", "091990"})  # fmt: skip

#: 주식호가잔량's FIDs in the control's order (koapy metadata realtype_by_desc.json,
#: gidc 0D); the fake sends the ones it has, in this order, as the event's data string.
HOGA_FID_ORDER: Tuple[int, ...] = (
    21, 41, 61, 81, 51, 71, 91, 42, 62, 82, 52, 72, 92, 43, 63, 83, 53, 73, 93, 44, 64, 84, 54,
    74, 94, 45, 65, 85, 55, 75, 95, 46, 66, 86, 56, 76, 96, 47, 67, 87, 57, 77, 97, 48, 68, 88,
    58, 78, 98, 49, 69, 89, 59, 79, 99, 50, 70, 90, 60, 80, 100, 121, 122, 125, 126, 23, 24, 128,
    129, 138, 139, 200, 201, 238, 291, 292, 293, 294, 295, 621, 631, 622, 632, 623, 633, 624,
    634, 625, 635, 626, 636, 627, 637, 628, 638, 629, 639, 630, 640, 13, 299, 215, 216,
)  # fmt: skip
HOGA_FID_SET = {str(f) for f in HOGA_FID_ORDER if f not in (13,)}

COMMISSION_PCT = 0.015
TAX_PCT = 0.20


class FakeControlError(TypeError):
    """A call the real control would not accept (unknown signature, wrong argument types)."""


#: Rows per page of the chart TRs (KOA Studio's max_repeat_count: koapy trinfo_by_code.json).
CHART_PAGE_ROWS = {"opt10081": 600, "opt10080": 900}
#: How much history the fake has per code (daily rows, minute rows).
CHART_HISTORY_ROWS = {"opt10081": 1500, "opt10080": 2000}
KST = datetime.timezone(datetime.timedelta(hours=9))


def _tick_price(value: float) -> int:
    return krx.snap(max(1.0, value))


def _pad(value: int, width: int = 12) -> str:
    """GetCommData style: zero-padded, sign in front for negatives."""
    return ("-" if value < 0 else "") + str(abs(value)).zfill(width)


def _signed(value: int) -> str:
    return ("+" if value > 0 else "-" if value < 0 else "") + str(abs(value))


class FakeOrder:
    def __init__(self, no: str, code: str, side: str, qty: int, price: int, hoga: str, orig: str = "",
                 kind_words: str = "") -> None:  # fmt: skip
        self.no = no
        self.code = code
        self.side = side  # "buy" / "sell"
        self.qty = qty
        self.price = price
        self.hoga = hoga
        self.orig = orig
        self.kind_words = kind_words or ("+매수" if side == "buy" else "-매도")
        self.filled = 0
        self.value = 0  # sum of fill price × qty
        self.last_price = 0  # the latest fill's price (what 910 체결가 says)
        self.removed = 0  # cancelled or moved away by a modify
        self.fee = 0
        self.tax = 0
        self.rejected = ""
        self.state = "접수"

    @property
    def open_qty(self) -> int:
        return 0 if self.rejected else self.qty - self.filled - self.removed

    @property
    def avg(self) -> int:
        return self.value // self.filled if self.filled else 0


class FakeKiwoomControl(QObject):
    """The fake OCX. See the module docstring."""

    OnEventConnect = pyqtSignal(int)
    OnReceiveTrData = pyqtSignal(str, str, str, str, str, int, str, str, str)
    OnReceiveRealData = pyqtSignal(str, str, str)
    OnReceiveChejanData = pyqtSignal(str, int, str)
    OnReceiveMsg = pyqtSignal(str, str, str, str)
    OnReceiveConditionVer = pyqtSignal(int, str)
    OnReceiveRealCondition = pyqtSignal(str, str, str, str)
    OnReceiveTrCondition = pyqtSignal(str, str, str, int, int)

    def __init__(
        self,
        accounts: Sequence[str] = ("8012345611", "8012345622"),
        server_gubun: str = "1",
        stocks: Optional[Dict[str, Tuple[str, int]]] = None,
        cash: int = 100000000,
        holdings: Optional[Dict[str, Tuple[int, int]]] = None,
        page_size: int = 2,
        fill_parts: int = 1,
        chejan_order: str = "natural",
        empty_first_order_no: bool = False,
        credit_holdings: Optional[Dict[str, Tuple[int, int]]] = None,
        fee_mode: str = "cumulative",
        seed: int = 7,
        login_delay_ms: int = 5,
        tr_per_second: int = 5,
        orders_per_second: int = 5,
        conditions: Sequence[str] = ("급등주", "거래량폭증"),
    ) -> None:
        super().__init__()
        self.accounts = list(accounts)
        self.server_gubun = server_gubun
        self.stocks = {
            code: [name, base, base] for code, (name, base) in (stocks or DEFAULT_STOCKS).items()
        }
        self.cash = cash
        self.holdings: Dict[str, List[int]] = {c: [q, a] for c, (q, a) in (holdings or {}).items()}
        #: Credit lots (신용구분 "03" 유통융자), listed and reported apart from the cash lots.
        self.credit_holdings: Dict[str, List[int]] = {
            c: [q, a] for c, (q, a) in (credit_holdings or {}).items()
        }
        #: 938/939 as the order's running totals ("cumulative") or this fill's ("per_fill").
        self.fee_mode = fee_mode
        #: KOA's 역전현상: the first chejan comes before the order number's OnReceiveTrData.
        self.chejan_before_answer = False
        #: opt10075 lists only orders with an unfilled rest (as its name 미체결 says).
        self.unfilled_only = False
        #: Chejan events are lost (a gap in the session): the state changes, nobody hears.
        self.mute_chejan = False
        #: The next cancel/modify is taken (it gets a number) but refused: 확인 with this 919.
        self.leg_refusal = ""
        #: The process saw -106: CommConnect never answers again.
        self.dead = False
        #: What SendOrder returns past the order rate: -308, or -311 (KOA's OP_ERR_ORD_OVERFLOW).
        self.order_rate_code = -308
        self.realized: Dict[str, int] = {}
        self.page_size = page_size
        self.fill_parts = fill_parts
        self.chejan_order = chejan_order
        self.empty_first_order_no = empty_first_order_no
        self.random = random.Random(seed)
        self.login_delay_ms = login_delay_ms
        self.login_plan: List[Union[int, str]] = []
        self.tr_per_second = tr_per_second
        self.orders_per_second = orders_per_second
        self.conditions = list(conditions)
        #: Send a refused order's OnReceiveMsg after its OnReceiveTrData instead of before.
        self.reason_after_answer = False
        self.connected = False
        self.orders: Dict[str, FakeOrder] = {}
        self.screens: Dict[str, List[str]] = {}
        #: screen → the FID list of its last SetRealReg (which real types its codes get).
        self.screen_fids: Dict[str, str] = {}
        self.calls: List[Tuple[str, Tuple[Any, ...]]] = []
        self.violations: List[str] = []
        self.login_attempts = 0
        self.tr_requests: List[Tuple[str, str, int, str]] = []
        self._next_no = 1000
        self._inputs: Dict[str, str] = {}
        self._tr_times: Deque[float] = collections.deque()
        self._order_times: Deque[float] = collections.deque()
        self._cursor: Dict[str, int] = {}
        self._tr_current: Dict[str, Tuple[Dict[str, str], List[Dict[str, str]]]] = {}
        self._chejan_current: Dict[int, str] = {}
        self._real_current: Dict[str, Dict[int, str]] = {}
        self._volume: Dict[str, int] = {}
        self.active_condition: Optional[Tuple[str, str, int]] = None
        self.auto_condition_hits: List[str] = []
        #: When set (``KC_FAKE_KIWOOM_CALL_LOG``), every dynamicCall is also written here as a
        #: JSON line ``[signature, args]``, so tests outside the engine process can check them.
        self.call_log: Optional[IO[str]] = None
        self._outbox: Deque[Callable[[], None]] = collections.deque()
        self._pump = QTimer(self)
        self._pump.setInterval(0)
        self._pump.timeout.connect(self._deliver_one)
        self._ticker: Optional[QTimer] = None

    # ------------------------------------------------------------------------------------
    # the dynamicCall seam
    # ------------------------------------------------------------------------------------
    def dynamicCall(self, signature: str, *args: Any) -> Any:  # noqa: N802 - the Qt name
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = tuple(args[0])
        elif len(args) > 8:
            raise FakeControlError(
                "QAxBase.dynamicCall takes at most 8 values (or one list), got {}".format(len(args))
            )
        normalized = re.sub(r"\s+", "", signature)
        types = SIGNATURES.get(normalized)
        if types is None:
            self.violations.append("unknown signature " + signature)
            raise FakeControlError("the Kiwoom control has no method {!r}".format(signature))
        if len(args) != len(types):
            self.violations.append("{} with {} arguments".format(signature, len(args)))
            raise FakeControlError(
                "{} takes {} arguments, got {}".format(signature, len(types), len(args))
            )
        for i, (value, kind) in enumerate(zip(args, types)):
            if type(value) is not kind:
                self.violations.append("{} argument {} is {!r}".format(signature, i + 1, value))
                raise FakeControlError("{} argument {} must be {}, got {!r}".format(
                    signature, i + 1, "QString" if kind is str else kind.__name__, value))  # fmt: skip
        self.calls.append((normalized.split("(")[0], tuple(args)))
        if self.call_log is not None:
            self.call_log.write(json.dumps([normalized, list(args)], ensure_ascii=False) + "\n")
            self.call_log.flush()
        method = getattr(self, "_" + normalized.split("(")[0])
        return method(*args)

    def calls_of(self, name: str) -> List[Tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]

    # ------------------------------------------------------------------------------------
    # event delivery: one event per turn of the Qt loop, in order
    # ------------------------------------------------------------------------------------
    def _later(self, event: Callable[[], None]) -> None:
        self._outbox.append(event)
        if not self._pump.isActive():
            self._pump.start()

    def _deliver_one(self) -> None:
        if not self._outbox:
            self._pump.stop()
            return
        self._outbox.popleft()()

    def idle(self) -> bool:
        return not self._outbox

    # ------------------------------------------------------------------------------------
    # session
    # ------------------------------------------------------------------------------------
    def _CommConnect(self) -> int:  # noqa: N802
        self.login_attempts += 1
        plan: Union[int, str] = self.login_plan.pop(0) if self.login_plan else 0
        if plan == "never" or self.dead:
            return 0  # the login window waits for someone who is not there

        def answer() -> None:
            self.connected = plan == 0
            self.OnEventConnect.emit(int(plan))

        QTimer.singleShot(self.login_delay_ms, answer)
        return 0

    def _GetConnectState(self) -> int:  # noqa: N802
        return 1 if self.connected else 0

    def _GetLoginInfo(self, tag: str) -> str:  # noqa: N802
        if not self.connected:
            return ""
        return {
            "ACCNO": "".join(a + ";" for a in self.accounts),
            "ACCOUNT_CNT": str(len(self.accounts)),
            "USER_ID": "fakeuser",
            "USER_NAME": "홍길동",
            "GetServerGubun": self.server_gubun,
        }.get(tag, "")

    def close_socket(self, notify: bool = True) -> None:
        """The connection drops (-106): registrations are gone; ``notify`` sends OnEventConnect(-106)."""
        self.connected = False
        self.dead = True
        self.screens.clear()
        self._outbox.clear()
        if notify:
            self._later(lambda: self.OnEventConnect.emit(-106))

    def drop_after(self, ms: int) -> None:
        """The daily maintenance disconnect, compressed: ``ms`` after each login the socket
        closes with -106 (an "overnight" run in seconds)."""

        def arm(err: int) -> None:
            if err == 0:
                QTimer.singleShot(ms, self.close_socket)

        self.OnEventConnect.connect(arm)

    def daily_notice(self) -> None:
        """Kiwoom's daily server restart: a message, then the socket closes without a word."""
        self._later(
            lambda: self.OnReceiveMsg.emit(
                "", "", "", "[-106] 서버 점검으로 접속이 종료되었습니다. 재접속 후 이용하십시오."
            )
        )
        self._later(lambda: self.close_socket(notify=False))

    # ------------------------------------------------------------------------------------
    # reference data
    # ------------------------------------------------------------------------------------
    def _GetMasterCodeName(self, code: str) -> str:  # noqa: N802
        return self.stocks[code][0] if code in self.stocks else ""

    def _GetCodeListByMarket(self, market: str) -> str:  # noqa: N802
        """``"0"`` 장내 (KOSPI) or ``"10"`` 코스닥: the codes joined by ';' **with a trailing
        ';'** (pykiwoom and most callers drop the empty last item: ``split(';')[:-1]``), ""
        for a market without codes. Only after login, like every master call ("로그인 한
        후에 사용할 수 있는 함수입니다": koapy's GetCodeListByMarket docs): "" before."""
        if not self.connected:
            return ""
        if market == "10":
            codes = [c for c in self.stocks if c in KOSDAQ_CODES]
        elif market == "0":
            codes = [c for c in self.stocks if c not in KOSDAQ_CODES]
        else:
            codes = []
        return "".join(c + ";" for c in sorted(codes))

    def _GetMasterLastPrice(self, code: str) -> str:  # noqa: N802
        return str(self.stocks[code][1]).zfill(8) if code in self.stocks else ""

    # ------------------------------------------------------------------------------------
    # TR queries
    # ------------------------------------------------------------------------------------
    def _SetInputValue(self, item: str, value: str) -> None:  # noqa: N802
        self._inputs[item] = value

    def _rate_ok(self, times: Deque[float], per_second: int) -> bool:
        now = time.monotonic()
        while times and now - times[0] >= 1.0:
            times.popleft()
        if len(times) >= per_second:
            return False
        times.append(now)
        return True

    def _check_screen(self, screen: str) -> bool:
        if len(screen) != 4 or not screen.isdigit() or screen == "0000":
            self.violations.append("bad screen number {!r}".format(screen))
            return False
        return True

    def _CommRqData(self, rqname: str, trcode: str, prev_next: int, screen: str) -> int:  # noqa: N802
        if not self.connected:
            return -106
        if not self._check_screen(screen):
            return -201
        if not self._rate_ok(self._tr_times, self.tr_per_second):
            return -200
        inputs, self._inputs = self._inputs, {}
        self.tr_requests.append((trcode, rqname, prev_next, screen))
        builder = {
            "opw00018": self._tr_balance,
            "opw00001": self._tr_deposit,
            "opt10075": self._tr_orders,
            "opt10076": self._tr_history,
            "opt10081": lambda: self._tr_chart(trcode, inputs),
            "opt10080": lambda: self._tr_chart(trcode, inputs),
        }.get(trcode)
        if builder is None:
            return -201
        if trcode not in CHART_PAGE_ROWS and inputs.get("계좌번호") not in self.accounts:
            self._later(
                lambda: self.OnReceiveMsg.emit(screen, rqname, trcode, "[-340] 계좌정보가 없습니다")
            )
            single: Dict[str, str] = {}
            rows: List[Dict[str, str]] = []
            more = False
        else:
            single, all_rows = builder()
            size = CHART_PAGE_ROWS.get(trcode, self.page_size)
            start = self._cursor.get(trcode, 0) if prev_next == 2 else 0
            rows = all_rows[start : start + size]
            more = start + size < len(all_rows)
            self._cursor[trcode] = start + size

        def answer() -> None:
            self._tr_current[rqname] = (single, rows)
            try:
                self.OnReceiveTrData.emit(
                    screen, rqname, trcode, "", "2" if more else "0", 0, "", "", ""
                )
            finally:
                del self._tr_current[rqname]  # like the OCX: readable only inside the slot

        self._later(answer)
        return 0

    def _GetCommData(self, trcode: str, record: str, index: int, item: str) -> str:  # noqa: N802
        current = self._tr_current.get(record)
        if current is None:
            return ""
        single, rows = current
        if item in single:
            return single[item]
        if 0 <= index < len(rows):
            return rows[index].get(item, "")
        return ""

    def _GetRepeatCnt(self, trcode: str, record: str) -> int:  # noqa: N802
        current = self._tr_current.get(record)
        return len(current[1]) if current else 0

    def _tr_balance(self) -> Tuple[Dict[str, str], List[Dict[str, str]]]:
        rows = []
        cost = value = 0
        lots = [(c, q, a, "00") for c, (q, a) in self.holdings.items()]
        lots += [(c, q, a, "03") for c, (q, a) in self.credit_holdings.items()]
        for code, qty, avg, credit in lots:
            if qty <= 0:
                continue
            name, _, last = self.stocks[code]
            pnl = (last - avg) * qty
            cost += avg * qty
            value += last * qty
            rows.append({
                "종목번호": "A" + code, "종목명": " " + name + "   ", "보유수량": _pad(qty), "매입가": _pad(avg),
                "현재가": _pad(last), "평가손익": _pad(pnl), "매매가능수량": _pad(qty),
                "수익률(%)": "{:.2f}".format(pnl * 100.0 / (avg * qty) if avg else 0.0),
                "신용구분": credit, "신용구분명": "" if credit == "00" else "유통융자",
            })  # fmt: skip
        single = {"총매입금액": _pad(cost, 15), "총평가금액": _pad(value, 15), "총평가손익금액": _pad(value - cost, 15),
                  "추정예탁자산": _pad(self.cash + value, 15)}  # fmt: skip
        return single, rows

    def _tr_deposit(self) -> Tuple[Dict[str, str], List[Dict[str, str]]]:
        single = {"예수금": _pad(self.cash, 15), "주문가능금액": _pad(self.orderable(), 15),
                  "d+2추정예수금": _pad(self.cash, 15)}  # fmt: skip
        return single, []

    def _tr_orders(self) -> Tuple[Dict[str, str], List[Dict[str, str]]]:
        rows = []
        for order in self.orders.values():
            if self.unfilled_only and order.open_qty <= 0:
                continue
            rows.append({
                "주문번호": order.no, "종목코드": order.code, "종목명": self.stocks[order.code][0],
                "주문수량": str(order.qty), "주문가격": str(order.price), "미체결수량": str(order.open_qty),
                "체결량": str(order.filled), "주문구분": order.kind_words, "원주문번호": order.orig or "0000000",
                "주문상태": "거부" if order.rejected else order.state, "체결가": str(order.avg) if order.filled else "",
                "매매구분": "시장가" if order.hoga == "03" else "보통",
            })  # fmt: skip
        return {}, rows

    def _tr_history(self) -> Tuple[Dict[str, str], List[Dict[str, str]]]:
        """opt10076 체결요청: every order of today (koapy trinfo_by_code.json: its outputs)."""
        rows = []
        for order in self.orders.values():
            rows.append({
                "주문번호": order.no, "종목명": self.stocks[order.code][0], "주문구분": order.kind_words,
                "주문가격": str(order.price), "주문수량": str(order.qty), "체결가": str(order.avg) if order.filled else "",
                "체결량": str(order.filled), "미체결수량": str(order.open_qty), "당일매매수수료": str(order.fee),
                "당일매매세금": str(order.tax), "주문상태": "거부" if order.rejected else order.state,
                "매매구분": "시장가" if order.hoga == "03" else "보통", "원주문번호": order.orig or "0000000",
                "주문시간": "090000", "종목코드": order.code,
            })  # fmt: skip
        return {}, rows

    def _tr_chart(
        self, trcode: str, inputs: Dict[str, str]
    ) -> Tuple[Dict[str, str], List[Dict[str, str]]]:
        """Daily (opt10081) or one-minute (opt10080) candles, newest first, today's forming
        candle on top, as the real control sends them: zero-padded daily prices, signed minute
        prices (+/- against the previous close), 일자 YYYYMMDD / 체결시간 YYYYMMDDHHMMSS."""
        code = inputs.get("종목코드", "")
        if code not in self.stocks:
            return {"종목코드": code}, []
        base = self.stocks[code][1]
        rng = random.Random("{}:{}".format(code, trcode))
        now = datetime.datetime.now(KST)
        rows: List[Dict[str, str]] = []
        close = base
        if trcode == "opt10081":
            day = now.date()
            for _ in range(CHART_HISTORY_ROWS[trcode]):
                while day.weekday() >= 5:
                    day -= datetime.timedelta(days=1)
                o = _tick_price(close * (1 + rng.uniform(-0.01, 0.01)))
                rows.append({"종목코드": code if not rows else "", "일자": day.strftime("%Y%m%d"),
                             "현재가": _pad(close), "시가": _pad(o), "고가": _pad(max(o, close) + 100),
                             "저가": _pad(max(1, min(o, close) - 100)), "거래량": _pad(rng.randint(1, 9) * 10000)})  # fmt: skip
                close = _tick_price(close / (1 + rng.uniform(-0.02, 0.02)))
                day -= datetime.timedelta(days=1)
        else:
            minute = now.replace(second=0, microsecond=0)
            for _ in range(CHART_HISTORY_ROWS[trcode]):
                while (
                    not datetime.time(9, 0) <= minute.time() <= datetime.time(15, 30)
                    or minute.weekday() >= 5
                ):
                    minute -= datetime.timedelta(minutes=1)
                o = _tick_price(close * (1 + rng.uniform(-0.001, 0.001)))

                def sign(p: int) -> str:
                    return ("+" if p >= base else "-") + str(p)

                rows.append({"현재가": sign(close), "시가": sign(o), "고가": sign(max(o, close)),
                             "저가": sign(min(o, close)), "거래량": str(rng.randint(1, 900)),
                             "체결시간": minute.strftime("%Y%m%d%H%M%S")})  # fmt: skip
                close = _tick_price(close / (1 + rng.uniform(-0.002, 0.002)))
                minute -= datetime.timedelta(minutes=1)
        return {"종목코드": code}, rows

    def orderable(self) -> int:
        reserved = sum(o.open_qty * (o.price or self.stocks[o.code][2]) for o in self.orders.values()
                       if o.side == "buy" and "취소" not in o.kind_words)  # fmt: skip
        return self.cash - reserved

    # ------------------------------------------------------------------------------------
    # orders
    # ------------------------------------------------------------------------------------
    def _SendOrder(self, rqname: str, screen: str, account: str, order_type: int, code: str, qty: int,  # noqa: N802
                   price: int, hoga: str, orig: str) -> int:  # fmt: skip
        if not self.connected:
            return -106
        if not self._check_screen(screen):
            return -300
        if account not in self.accounts:
            return -302
        if order_type not in (1, 2, 3, 4, 5, 6) or qty < 0 or price < 0:
            return -300
        if not self._rate_ok(self._order_times, self.orders_per_second):
            return self.order_rate_code
        trcode = "KOA_NORMAL_{}_KP_ORD".format("BUY" if order_type in (1, 3, 5) else "SELL")
        side = "buy" if order_type in (1, 3, 5) else "sell"
        problem = self._order_problem(order_type, code, side, qty, price, hoga, orig)
        if problem:
            say = lambda: self.OnReceiveMsg.emit(screen, rqname, trcode, problem)  # noqa: E731
            answer = lambda: self._answer_order(screen, rqname, trcode, "")  # noqa: E731
            for event in (answer, say) if self.reason_after_answer else (say, answer):
                self._later(event)
            return 0
        no = self._new_no()
        if order_type in (1, 2):
            order = FakeOrder(no, code, side, qty, price if hoga == "00" else 0, hoga)
            self.orders[no] = order
            events = [
                self._order_event(order, "접수", number="" if self.empty_first_order_no else no)
            ]
            lower, upper = krx.limit_band(self.stocks[code][1])
            if hoga == "00" and not lower <= price <= upper:
                order.rejected = "[{}] 주문가격이 상하한가 범위를 벗어났습니다".format(code)
                events.append(self._order_event(order, "거부"))
            else:
                events.extend(self._match(order))
            words = "[100000] 모의투자 {}주문완료".format("매수" if side == "buy" else "매도")
            self._later(lambda: self.OnReceiveMsg.emit(screen, rqname, trcode, words))
            if self.chejan_before_answer:
                self._emit_chejan(events[:1])
                self._later(lambda: self._answer_order(screen, rqname, trcode, no))
                self._emit_chejan(events[1:])
            else:
                self._later(lambda: self._answer_order(screen, rqname, trcode, no))
                self._emit_chejan(events)
            return 0
        target = self.orders[orig]
        take = qty if qty > 0 else target.open_qty
        words = "[100000] 모의투자 {}주문완료".format("취소" if order_type in (3, 4) else "정정")
        self._later(lambda: self.OnReceiveMsg.emit(screen, rqname, trcode, words))
        if self.leg_refusal:
            # Taken, then refused at the exchange: the leg's 확인 carries 919; the parent stays.
            reason, self.leg_refusal = self.leg_refusal, ""
            kind = ("매수" if side == "buy" else "매도") + (
                "취소" if order_type in (3, 4) else "정정"
            )
            leg = FakeOrder(no, code, side, take, price if order_type in (5, 6) else 0, "00", orig,
                            kind if order_type in (3, 4) else ("+" if side == "buy" else "-") + kind)  # fmt: skip
            leg.removed = take
            self.orders[no] = leg
            confirm = self._order_event(leg, "확인")
            confirm[1][919] = reason
            self._later(lambda: self._answer_order(screen, rqname, trcode, no))
            self._emit_chejan([self._order_event(leg, "접수"), confirm])
            return 0
        if order_type in (3, 4):
            leg = FakeOrder(
                no, code, side, take, 0, "00", orig, "매수취소" if side == "buy" else "매도취소"
            )
            leg.removed = take
            self.orders[no] = leg
            target.removed += take
            events = [
                self._order_event(leg, "접수"),
                self._order_event(leg, "확인"),
                self._order_event(target, "확인"),
            ]
        else:
            leg = FakeOrder(
                no,
                code,
                side,
                take,
                price,
                "00",
                orig,
                "+매수정정" if side == "buy" else "-매도정정",
            )
            self.orders[no] = leg
            target.removed += take
            events = [
                self._order_event(leg, "접수"),
                self._order_event(leg, "확인"),
                self._order_event(target, "확인"),
            ]
            events.extend(self._match(leg))
        self._later(lambda: self._answer_order(screen, rqname, trcode, no))
        self._emit_chejan(events)
        return 0

    def _order_problem(self, order_type: int, code: str, side: str, qty: int, price: int, hoga: str,
                       orig: str) -> str:  # fmt: skip
        if code not in self.stocks:
            return "[800001] 종목코드가 없습니다"
        if self.server_gubun == "1" and hoga not in ("00", "03"):
            return "[571489] 모의투자에서는 지정가와 시장가 주문만 가능합니다"
        if order_type in (1, 2):
            if qty <= 0:
                return "[800002] 주문수량이 없습니다"
            if hoga == "00" and not krx.is_on_tick(price):
                return "[505217] 주문가격이 호가단위에 맞지 않습니다"
            if hoga == "03" and price != 0:
                return "[505218] 시장가 주문은 가격을 입력하지 않습니다"
            if side == "buy" and qty * (price or self.stocks[code][2]) > self.orderable():
                return "[800033] 모의투자 주문가능금액이 부족합니다"
            held = self.holdings.get(code, [0, 0])[0]
            selling = sum(o.open_qty for o in self.orders.values() if o.code == code and o.side == "sell"
                          and "취소" not in o.kind_words)  # fmt: skip
            if side == "sell" and qty > held - selling:
                return "[800100] 모의투자 매도가능수량이 부족합니다"
            return ""
        # Words of the mock server (blueswamp.tistory.com, "OnReceiveMsg 모의투자 코드 번호":
        # RC4033, RC4042) and of the trace ([00Z924]).
        target = self.orders.get(orig)
        if target is None or target.code != code or target.side != side or target.open_qty <= 0:
            return "[RC4033] 모의투자 정정/취소할 수량이 없습니다"
        if qty > target.open_qty:
            if order_type in (3, 4):
                return "[00Z924] 모의투자 취소수량이 취소가능수량을 초과합니다"
            return "[RC4042] 모의투자 정정수량이 정정가능수량을 초과합니다"
        if order_type in (5, 6) and not krx.is_on_tick(price):
            return "[505217] 주문가격이 호가단위에 맞지 않습니다"
        return ""

    def _answer_order(self, screen: str, rqname: str, trcode: str, no: str) -> None:
        self._tr_current[rqname] = ({"주문번호": no}, [])
        try:
            self.OnReceiveTrData.emit(screen, rqname, trcode, "", "", 0, "", "", "")
        finally:
            del self._tr_current[rqname]

    def _new_no(self) -> str:
        self._next_no += 1
        return str(self._next_no).zfill(7)

    def _match(self, order: FakeOrder) -> List[Tuple[str, Dict[int, str]]]:
        """Fill what crosses the last price, in ``fill_parts`` pieces; chejan and balance events."""
        name, _, last = self.stocks[order.code]
        if order.open_qty <= 0:
            return []
        crosses = order.hoga == "03" or (
            last <= order.price if order.side == "buy" else last >= order.price
        )
        if not crosses:
            return []
        events = []
        left = order.open_qty
        parts = max(1, min(self.fill_parts, left))
        for i in range(parts):
            qty = left // (parts - i)
            left -= qty
            events.extend(self._fill(order, qty, last))
        return events

    def _fill(self, order: FakeOrder, qty: int, price: int) -> List[Tuple[str, Dict[int, str]]]:
        value = qty * price
        fee = krx.commission(value, COMMISSION_PCT)
        tax = krx.sell_tax(value, TAX_PCT) if order.side == "sell" else 0
        order.filled += qty
        order.value += value
        order.last_price = price
        order.fee += fee
        order.tax += tax
        order.state = "체결"
        held = self.holdings.setdefault(order.code, [0, 0])
        if order.side == "buy":
            held[1] = (held[0] * held[1] + value) // (held[0] + qty)
            held[0] += qty
            self.cash -= value + fee
        else:
            self.realized[order.code] = (
                self.realized.get(order.code, 0) + (price - held[1]) * qty - fee - tax
            )
            held[0] -= qty
            self.cash += value - fee - tax
        event = self._order_event(order, "체결")
        event[1].update({914: str(price), 915: str(qty)})
        if self.fee_mode == "per_fill":
            event[1].update({938: str(fee), 939: str(tax)})
        return [event, self._balance_event(order.code)]

    def _order_event(
        self, order: FakeOrder, status: str, number: Optional[str] = None
    ) -> Tuple[str, Dict[int, str]]:
        name, base, last = self.stocks[order.code]
        fields = {
            9201: self.accounts[0], 9203: order.no if number is None else number, 9001: "A" + order.code,
            302: name, 913: status, 900: str(order.qty), 901: str(order.price), 902: str(max(order.open_qty, 0)),
            904: order.orig or "0000000", 905: order.kind_words, 906: "시장가" if order.hoga == "03" else "보통",
            907: "2" if order.side == "buy" else "1", 908: time.strftime("%H%M%S"),
            910: str(order.last_price) if order.filled else "", 911: str(order.filled) if order.filled else "",
            903: str(order.value),
            914: "", 915: "", 938: str(order.fee), 939: str(order.tax), 919: order.rejected if status == "거부" else "",
            10: ("+" if last >= base else "-") + str(last),
        }  # fmt: skip
        return "0", fields

    def _balance_event(self, code: str) -> Tuple[str, Dict[int, str]]:
        name, base, last = self.stocks[code]
        qty, avg = self.holdings.get(code, [0, 0])
        fields = {9201: self.accounts[0], 9001: "A" + code, 302: name, 10: ("+" if last >= base else "-") + str(last),
                  930: str(qty), 931: str(avg), 933: str(qty), 950: str(self.realized.get(code, 0)),
                  917: "00", 990: str(self.realized.get(code, 0)), 992: "0"}  # fmt: skip
        return "1", fields

    def credit_balance_event(self, code: str) -> None:
        """A balance event about the credit lot of ``code`` (917 신용구분 "03")."""
        name, base, last = self.stocks[code]
        qty, avg = self.credit_holdings.get(code, [0, 0])
        fields = {9201: self.accounts[0], 9001: "A" + code, 302: name, 10: "+" + str(last), 930: str(qty),
                  931: str(avg), 933: str(qty), 950: "0", 917: "03", 990: "0", 992: "0"}  # fmt: skip
        self._emit_chejan([("1", fields)])

    def _emit_chejan(self, events: List[Tuple[str, Dict[int, str]]]) -> None:
        if self.mute_chejan:
            return
        events = list(events)
        if self.chejan_order == "reversed":
            events.reverse()
        elif self.chejan_order == "shuffled":
            self.random.shuffle(events)
        for gubun, fields in events:
            self._later(lambda g=gubun, f=fields: self._deliver_chejan(g, f))

    def _deliver_chejan(self, gubun: str, fields: Dict[int, str]) -> None:
        self._chejan_current = fields
        try:
            self.OnReceiveChejanData.emit(gubun, len(fields), ";".join(str(f) for f in fields))
        finally:
            self._chejan_current = {}

    def _GetChejanData(self, fid: int) -> str:  # noqa: N802
        return self._chejan_current.get(fid, "")

    # ------------------------------------------------------------------------------------
    # real-time
    # ------------------------------------------------------------------------------------
    def _SetRealReg(self, screen: str, codes: str, fids: str, opt: str) -> int:  # noqa: N802
        if not self._check_screen(screen):
            return -1
        code_list = [c for c in codes.split(";") if c]
        if len(code_list) > 100:
            self.violations.append(
                "SetRealReg with {} codes on screen {}".format(len(code_list), screen)
            )
            return -1
        if opt not in ("0", "1"):
            self.violations.append("SetRealReg opt {!r}".format(opt))
            return -1
        if opt == "0":
            self.screens[screen] = []
        self.screen_fids[screen] = fids
        existing = self.screens.setdefault(screen, [])
        existing.extend(c for c in code_list if c not in existing)
        if len(existing) > 100:
            self.violations.append("screen {} holds {} codes".format(screen, len(existing)))
        if len(self.screens) > 200:
            self.violations.append("{} screens in use".format(len(self.screens)))
        return 0

    def _SetRealRemove(self, screen: str, code: str) -> None:  # noqa: N802
        for s in list(self.screens):
            if screen in ("ALL", s):
                if code == "ALL":
                    self.screens[s] = []
                elif code in self.screens[s]:
                    self.screens[s].remove(code)
                if not self.screens[s]:
                    del self.screens[s]

    def _DisconnectRealData(self, screen: str) -> None:  # noqa: N802
        self.screens.pop(screen, None)

    def registered(self) -> List[str]:
        return [c for codes in self.screens.values() for c in codes]

    def _GetCommRealData(self, code: str, fid: int) -> str:  # noqa: N802
        return self._real_current.get(code, {}).get(fid, "")

    def trade(self, code: str, price: int, qty: int = 10, unasked: bool = False) -> None:
        """A trade on the exchange at ``price`` (a negative ``qty``: sell-initiated).

        Streams a 주식체결 event if the code is registered (or ``unasked``: as if a TR had
        registered it) and fills resting orders that the price crosses.
        """
        stock = self.stocks[code]
        name, base, _ = stock
        stock[2] = price
        volume = self._volume.get(code, 0) + abs(qty)
        self._volume[code] = volume
        if self.connected and (code in self.registered() or unasked):
            sign = "+" if price >= base else "-"
            fields = {
                20: time.strftime("%H%M%S"), 10: sign + str(price), 11: _signed(price - base),
                12: "{:+.2f}".format((price - base) * 100.0 / base), 15: _signed(qty) if qty else "0",
                13: str(volume), 14: str(volume * price // 1000000), 16: sign + str(base), 17: "+" + str(max(price, base)),
                18: "-" + str(min(price, base)), 27: sign + str(krx.next_tick(price)), 28: sign + str(price), 228: "+101.50",
            }  # fmt: skip
            self._later(lambda: self._deliver_real(code, fields))
        for order in list(self.orders.values()):
            if order.code == code and order.open_qty > 0 and "취소" not in order.kind_words:
                self._emit_chejan(self._match(order))

    def _deliver_real(self, code: str, fields: Dict[int, str]) -> None:
        self._real_current[code] = fields
        try:
            self.OnReceiveRealData.emit(
                code, "주식체결", "\t".join(fields[f] for f in sorted(fields))
            )
        finally:
            self._real_current.pop(code, None)

    def start_ticker(self, interval_ms: int = 200) -> None:
        """A random walk on the registered codes, for running the engine against the fake."""
        self._ticker = QTimer(self)
        self._ticker.timeout.connect(self._tick)
        self._ticker.start(interval_ms)

    def _tick(self) -> None:
        for code in self.registered():
            if code in self.stocks:
                last = self.stocks[code][2]
                price = krx.next_tick(last, self.random.choice((-1, 0, 1)))
                lower, upper = krx.limit_band(self.stocks[code][1])
                self.trade(
                    code,
                    min(max(price, lower), upper),
                    self.random.choice((-1, 1)) * self.random.randint(1, 50),
                )
        for code in self.book_codes():
            if code in self.stocks:
                self.hoga(code)

    # ------------------------------------------------------------------------------------
    # real-time order books: 주식호가잔량
    # ------------------------------------------------------------------------------------
    def book_codes(self) -> List[str]:
        """Codes registered on a screen whose FIDs include a 주식호가잔량 FID (41 매도호가1)."""
        out: List[str] = []
        for screen, codes in self.screens.items():
            fids = set(self.screen_fids.get(screen, "").split(";"))
            if fids & HOGA_FID_SET:
                out.extend(c for c in codes if c not in out)
        return out

    def book_levels(self, code: str) -> Tuple[List[List[int]], List[List[int]]]:
        """Ten asks from one tick above the last price up, ten bids from the last price down
        (as ``trade`` quotes them: 27 = next tick, 28 = last), never beyond the daily limits;
        a standing 100-1,000 shares per level plus the open quantity of resting orders."""
        name, base, last = self.stocks[code]
        lower, upper = krx.limit_band(base)
        asks: List[List[int]] = []
        bids: List[List[int]] = []
        p = krx.next_tick(last)
        while len(asks) < 10 and p <= upper:
            asks.append([p, 100 * (1 + (p // krx.tick_size(p)) % 10)])
            p = krx.next_tick(p)
        p = last
        while len(bids) < 10 and p >= lower:
            bids.append([p, 100 * (1 + (p // krx.tick_size(p) * 7) % 10)])
            p = krx.prev_tick(p)
        for order in self.orders.values():
            if (
                order.code != code
                or order.open_qty <= 0
                or order.hoga != "00"
                or "취소" in order.kind_words
            ):
                continue
            for price_qty in asks if order.side == "sell" else bids:
                if price_qty[0] == order.price:
                    price_qty[1] += order.open_qty
        return asks, bids

    def hoga(
        self,
        code: str,
        asks: Optional[List[List[int]]] = None,
        bids: Optional[List[List[int]]] = None,
    ) -> None:
        """A 주식호가잔량 event for ``code`` (its own levels unless given) if a book screen has it.

        Values as the control sends them: prices signed against the previous close, empty
        levels ``0``, quantities and totals unsigned; the data string in koapy's FID order."""
        if not self.connected or code not in self.book_codes():
            return
        if asks is None or bids is None:
            own_asks, own_bids = self.book_levels(code)
            asks = own_asks if asks is None else asks
            bids = own_bids if bids is None else bids
        base = self.stocks[code][1]

        def signed(price: int) -> str:
            return "0" if price <= 0 else ("+" if price >= base else "-") + str(price)

        fields: Dict[int, str] = {21: time.strftime("%H%M%S")}
        for i in range(10):
            ap, aq = asks[i] if i < len(asks) else (0, 0)
            bp, bq = bids[i] if i < len(bids) else (0, 0)
            fields[41 + i] = signed(ap)
            fields[61 + i] = str(aq)
            fields[51 + i] = signed(bp)
            fields[71 + i] = str(bq)
        fields[121] = str(sum(q for _, q in asks[:10]))
        fields[125] = str(sum(q for _, q in bids[:10]))
        self._later(lambda: self._deliver_hoga(code, fields))

    def _deliver_hoga(self, code: str, fields: Dict[int, str]) -> None:
        self._real_current[code] = fields
        try:
            data = "\t".join(fields[f] for f in HOGA_FID_ORDER if f in fields)
            self.OnReceiveRealData.emit(code, "주식호가잔량", data)
        finally:
            self._real_current.pop(code, None)

    # ------------------------------------------------------------------------------------
    # condition search
    # ------------------------------------------------------------------------------------
    def _GetConditionLoad(self) -> int:  # noqa: N802
        self._later(lambda: self.OnReceiveConditionVer.emit(1, ""))
        return 1

    def _GetConditionNameList(self) -> str:  # noqa: N802
        return "".join("{:03d}^{};".format(i, name) for i, name in enumerate(self.conditions))

    def _SendCondition(self, screen: str, name: str, index: int, search: int) -> int:  # noqa: N802
        if not self._check_screen(screen) or name not in self.conditions:
            return 0
        self.active_condition = (screen, name, index)
        self._later(lambda: self.OnReceiveTrCondition.emit(screen, "", name, index, 0))
        for code in self.auto_condition_hits:
            self.condition_hit(code)
        return 1

    def _SendConditionStop(self, screen: str, name: str, index: int) -> None:  # noqa: N802
        self.active_condition = None

    def condition_hit(self, code: str) -> None:
        active = self.active_condition
        if active:
            self._later(
                lambda: self.OnReceiveRealCondition.emit(code, "I", active[1], str(active[2]))
            )


def create_fake_control() -> FakeKiwoomControl:
    """The factory for ``[engine.kiwoom] control``: a fake with a moving market.

    ``KC_FAKE_KIWOOM_TICK_MS`` sets how often prices move (default 200; 0: never).
    ``KC_FAKE_KIWOOM_CONDITION_HITS`` (comma-separated codes) enter the condition search as
    soon as the engine starts it, as a real condition would report matching stocks.
    """
    control = FakeKiwoomControl()
    log_path = os.environ.get("KC_FAKE_KIWOOM_CALL_LOG")
    if log_path:
        control.call_log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the control
    hits = os.environ.get("KC_FAKE_KIWOOM_CONDITION_HITS", "")
    control.auto_condition_hits = [c for c in hits.split(",") if c]
    tick_ms = int(os.environ.get("KC_FAKE_KIWOOM_TICK_MS", "200"))
    if tick_ms > 0:
        control.start_ticker(tick_ms)
    drop_ms = int(os.environ.get("KC_FAKE_KIWOOM_DROP_AFTER_MS", "0"))
    if drop_ms > 0:
        control.drop_after(drop_ms)
    return control
