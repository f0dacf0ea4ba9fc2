"""KiwoomBroker: the broker contract (:mod:`engine32.brokers.base`) over the OpenAPI+ control.

Everything runs on the Qt thread and nothing waits: requests go out through rate-limited
queues, answers come back through the OCX's signals. The life of a session:

1. ``connect`` → ``CommConnect`` → ``OnEventConnect(0)`` (or a timeout / error: said in words,
   then a new attempt after ``relogin_delay_s``).
2. The account from config is checked against ``GetLoginInfo("ACCNO")``; mock or real from
   ``GetLoginInfo("GetServerGubun")`` (``"1"`` = mock).
3. Real-time registrations are (re)sent; reconciliation runs ``opw00018`` (all pages),
   ``opw00001`` and ``opt10075`` and publishes positions, account and orders.
4. ``on_connection(True)``: only now are orders accepted.

A lost connection (``-106``, ``GetConnectState() == 0``, Kiwoom's daily reconnect notice)
fails what was waiting and says so through ``on_connection(False, words)``. It does not log in
again: after -106 the control shows "통신 연결이 끊겼습니다. 프로그램 종료후 재접속 해주시기
바랍니다." and ``CommConnect`` in the same process does not recover (koapy restarts its
process on that dialog: KiwoomOpenApiPlusDialogHandler). So it asks the listener for a new
process (``on_restart_needed(words)``); ``python -m engine32 --supervise`` starts one. The same
after a login that timed out (the login window may still be open: a second CommConnect would
only stack another one). Login errors that the server answered (-100 … -105) are retried here.
"""

import itertools
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence

from PyQt5.QtCore import QTimer

from core.protocol import krx, now_ms
from core.protocol.errors import BROKER_ERROR, INVALID_ARGUMENT, NOT_READY, RATE_LIMITED
from core.protocol.events import BUY, LIMIT, MARKET, SELL, Order, Position, mask_account

from ..base import (
    KOSDAQ,
    KOSPI,
    Broker,
    BrokerInfo,
    BrokerListener,
    Done,
    Listing,
    ModifyRequest,
    OrderRequest,
    Result,
)
from . import chejan, tr
from . import history as chart
from . import venues as venue_rules
from .control import Control
from .errors import ORDER_RATE_CODES, QUERY_RATE_EXCEEDED, SOCKET_CLOSED, describe, is_refusal
from .hoga import BOOK_FIDS, BOOK_SCREENS, BOOK_SCREENS_FROM, STOCK_HOGA, parse_stock_hoga
from .holdings import KiwoomHoldings
from .popups import PopupWatcher
from .ratelimit import (
    CLOCK,
    CONDITION_WINDOWS,
    ORDER_WINDOWS,
    TR_WINDOWS,
    RateQueue,
    SlidingWindows,
    Windows,
)
from .realtime import QUOTE_FIDS, STOCK_TRADE, parse_stock_trade
from .screens import MAX_SCREENS, RealScreens, ScreenError, ScreenNumbers
from .values import to_code, to_price

log = logging.getLogger("engine32.brokers.kiwoom")

#: Order types of SendOrder.
BUY_NEW, SELL_NEW, BUY_CANCEL, SELL_CANCEL, BUY_MODIFY, SELL_MODIFY = 1, 2, 3, 4, 5, 6
HOGA_LIMIT = "00"
HOGA_MARKET = "03"
#: The mock-trading server accepts only these.
MOCK_HOGAS = (HOGA_LIMIT, HOGA_MARKET)

TR_SCREEN = "0101"
#: One screen per TR request in flight, borrowed and given back (koapy's screen manager does
#: the same: KiwoomOpenApiPlusScreenManager.borrow_screen / return_screen).
TR_SCREENS = tuple("{:04d}".format(n) for n in range(101, 121))
CONDITION_SCREEN = "0150"
ORDER_SCREENS = tuple("{:04d}".format(n) for n in range(201, 211))
RESERVED_SCREENS = len(TR_SCREENS) + 1 + len(ORDER_SCREENS)
#: How long a refused order waits for the OnReceiveMsg that says why.
REASON_WAIT_MS = 300
#: After -308/-311 (order rate) the order goes again after this pause, at most this often.
ORDER_RATE_RETRY_S = 1.1
ORDER_RATE_RETRIES = 5
#: A cancel names the quantity it cancels: KOA's SendOrder takes nQty 주문수량 for every order
#: type, and no OpenAPI+ reference says 0 means "all that is left" (Kiwoom's REST API says so
#: for its cancel, kt10003 cncl_qty "0"; the OCX does not). So a race with a fill is handled
#: by reading the order again and sending once more.
#: Words of a cancel or modify refused because a fill took the quantity it named
#: ("[00Z924] 취소수량이 취소가능수량을 초과", "[RC4033] 모의투자 정정/취소할 수량이 없습니다",
#: "[RC4042] 모의투자 정정수량이 정정가능수량을 초과합니다"): re-read the order, try once more.
QTY_RACE_WORDS = ("초과", "가능수량", "수량이 없")

#: The master list's markets: GetCodeListByMarket("0") 장내 (KOSPI) and ("10") 코스닥 — koapy's
#: GetCodeListByMarket docs ("시장 구분: 0: 장내 … 10: 코스닥", codes separated by ';', usable
#: after login) and pykiwoom's Kiwoom.GetCodeListByMarket (sharebook-kr/pykiwoom
#: pykiwoom/kiwoom.py: "0: 코스피 … 10: 코스닥", ``data.split(';')[:-1]`` for the trailing ';').
MASTER_MARKETS = (("0", KOSPI), ("10", KOSDAQ))
#: GetMasterCodeName calls per turn of the Qt loop while the master list is read (the calls
#: are local, but 2,700 of them in one go would hold the Qt thread and every quote behind it).
MASTER_CHUNK = 300

IDLE = "idle"
LOGIN = "login"
RECONCILE = "reconcile"
READY = "ready"
LOST = "lost"


def _guarded(slot: Callable[..., None]) -> Callable[..., None]:
    """A slot that logs instead of raising: PyQt5 aborts the process on an exception in a slot."""

    def run(*args: Any) -> None:
        try:
            slot(*args)
        except Exception:  # noqa: BLE001 - one bad event must not take the engine down
            log.exception("error in %s", getattr(slot, "__name__", "slot"))

    run.__name__ = getattr(slot, "__name__", "slot")
    return run


class _TrJob:
    """One TR query, possibly over several pages."""

    def __init__(
        self,
        trcode: str,
        inputs: tr.Inputs,
        on_page: Callable[[tr.Page], Optional[bool]],
        on_done: Callable[[], None],
        on_error: Callable[[str], None],
    ) -> None:
        self.trcode = trcode
        self.inputs = inputs
        self.on_page = on_page
        self.on_done = on_done
        self.on_error = on_error
        self.rqname = ""
        self.prev_next = 0
        self.screen = ""
        self.timer: Optional[QTimer] = None


class _OrderJob:
    """One SendOrder call, waiting for its order number."""

    def __init__(
        self,
        role: str,
        order_type: int,
        code: str,
        side: str,
        qty: int,
        price: int,
        kind: str,
        orig: str,
        cmd_id: str,
        done: Done,
    ) -> None:
        self.role = role
        self.order_type = order_type
        self.code = code
        self.side = side
        self.qty = qty
        self.price = price
        self.kind = kind
        self.hoga = HOGA_MARKET if kind == MARKET else HOGA_LIMIT
        self.orig = orig
        self.cmd_id = cmd_id
        self.done = done
        self.rqname = ""
        self.screen = ""
        self.order_id = ""
        self.finished = False
        self.timer: Optional[QTimer] = None
        self.then: Optional[Callable[[str], None]] = None  # after the number is known
        self.received = False  # a chejan without number said 접수 before the number came
        self.rate_retries = 0  # -308/-311 answers so far
        self.requantified = False  # a cancel/modify re-sent once after a fill took its quantity
        self.refusal = ""  # a refusal message that came before the (empty) order number


class KiwoomBroker(KiwoomHoldings, Broker):
    """The Kiwoom OpenAPI+ adapter. ``control`` is the OCX (or a fake) the engine built."""

    name = "kiwoom"

    def __init__(
        self,
        listener: BrokerListener,
        config: Any,
        control: Any,
        tr_windows: Windows = TR_WINDOWS,
        order_windows: Windows = ORDER_WINDOWS,
        clock: Callable[[], float] = CLOCK,
        relogin_delay_s: float = 10.0,
        order_timeout_s: float = 10.0,
        tr_timeout_s: float = 20.0,
        watchdog_ms: int = 5000,
        account_refresh_ms: int = 2000,
        max_waiting_queries: int = 50,
        max_waiting_orders: Optional[int] = None,
        popup_watcher: Optional[PopupWatcher] = None,
    ) -> None:
        super().__init__(listener)
        self.config = config
        self.control = control if isinstance(control, Control) else Control(control)
        kiwoom = config.engine_kiwoom
        self.login_timeout_s = float(kiwoom.login_timeout_s)
        self.wanted_account = str(config.engine.account or "").replace("-", "").strip()
        self.condition_name = str(getattr(config.surge, "condition", "") or "")
        self.relogin_delay_s = relogin_delay_s
        self.order_timeout_s = order_timeout_s
        self.tr_timeout_s = tr_timeout_s
        self.account = ""
        self.mock = False
        self.state = IDLE
        self.last_message = "not connected yet"
        self.unasked_quotes = 0
        self._want_connected = False
        self._failed_logins = 0

        self.real = RealScreens(
            ScreenNumbers(int(kiwoom.real_screens_from), MAX_SCREENS - RESERVED_SCREENS)
        )
        self._subscribed: Dict[str, bool] = {}
        # Order books (주식호가잔량) on screens of their own: see .hoga.
        self.book_real = RealScreens(ScreenNumbers(BOOK_SCREENS_FROM, BOOK_SCREENS))
        self._book_codes: Dict[str, bool] = {}
        self.book = chejan.OrderBook()
        self._positions: Dict[str, Position] = {}
        self._realized: Dict[str, int] = {}
        self._deposit: Optional[tr.Deposit] = None
        self._names: Dict[str, str] = {}

        self._tr_timer = self._timer(self._pump_tr)
        self._order_timer = self._timer(self._pump_orders)
        self.tr_queue = RateQueue(
            "tr", tr_windows, self._tr_timer.start, max_waiting_queries, clock
        )
        if max_waiting_orders is None:
            # Every order the risk limits allow to be open must fit for one cancel_all, with
            # room for the new orders and modifies that may be waiting too.
            risk = getattr(config, "risk", None)
            max_waiting_orders = max(20, 2 * int(getattr(risk, "max_open_orders", 50) or 50))
        self.order_queue = RateQueue(
            "order", order_windows, self._order_timer.start, max_waiting_orders, clock
        )
        self._free_tr_screens = list(TR_SCREENS)
        self._confirming: Dict[str, _OrderJob] = {}  # cancel/modify legs waiting for 확인
        self._lots: Dict[str, Dict[str, Position]] = {}  # code → 917 신용구분 → lot
        self._login_stuck = False  # a login timed out: no CommConnect again in this process
        self.restart_reason = ""
        self.popups = popup_watcher if popup_watcher is not None else PopupWatcher.for_platform()
        self.popups.on_restart = self._restart
        self._condition_limit = SlidingWindows(CONDITION_WINDOWS, clock)
        self._login_timer = self._timer(self._login_timed_out)
        self._relogin_timer = self._timer(self._login)
        self._account_timer = self._timer(self._refresh_after_fills)
        self._refreshing = False
        self._account_refresh_ms = account_refresh_ms
        self._watchdog = QTimer()
        self._watchdog.setInterval(watchdog_ms)
        self._watchdog.timeout.connect(_guarded(self._check_connection))

        self._seq = itertools.count(1)
        self._trs: Dict[str, _TrJob] = {}
        self._orders: Dict[str, _OrderJob] = {}  # rqname → job still without its number
        self._messages: Dict[str, str] = {}  # rqname → OnReceiveMsg text, for orders in flight
        self._rejecting: Dict[str, _OrderJob] = {}  # refused orders waiting for Kiwoom's reason
        self._order_screens = itertools.cycle(ORDER_SCREENS)
        self._condition_index = -1

        for name, slot in (
            ("OnEventConnect", self._on_event_connect),
            ("OnReceiveTrData", self._on_tr_data),
            ("OnReceiveRealData", self._on_real_data),
            ("OnReceiveChejanData", self._on_chejan),
            ("OnReceiveMsg", self._on_msg),
            ("OnReceiveConditionVer", self._on_condition_ver),
            ("OnReceiveRealCondition", self._on_real_condition),
        ):
            self.control.connect_signal(name, _guarded(slot))

    # ------------------------------------------------------------------------------------
    # session
    # ------------------------------------------------------------------------------------
    def connect(self) -> None:
        self._want_connected = True
        self._login()

    def disconnect(self) -> None:
        self._want_connected = False
        for timer in (self._login_timer, self._relogin_timer, self._account_timer, self._watchdog):
            timer.stop()
        self.popups.stop()
        was = self.state
        self.state = IDLE  # first: queued orders answer NOT_READY instead of going out
        words = "disconnected from Kiwoom"
        if self.restart_reason:
            words += " ({}); a new engine process logs in again".format(self.restart_reason)
        self.last_message = words
        self._fail_waiting("the engine is disconnecting from Kiwoom", NOT_READY)
        if was in (RECONCILE, READY):
            self.control.set_real_remove("ALL", "ALL")
        self.listener.on_connection(False, words)

    def info(self) -> BrokerInfo:
        mode = ("mock" if self.mock else "real") if self.account else "unknown"
        return BrokerInfo("kiwoom", mode, mask_account(self.account), self.state == READY)

    @property
    def ready(self) -> bool:
        return self.state == READY

    def _login(self) -> None:
        if not self._want_connected or self.state in (RECONCILE, READY):
            return
        if self._login_stuck or self.restart_reason:
            return  # only a new process logs in again (see the module docstring)
        self.popups.start()
        self.state = LOGIN
        ret = self.control.comm_connect()
        if ret != 0:
            self._lost("login could not start: " + describe(ret))
            return
        self._login_timer.start(int(self.login_timeout_s * 1000))
        log.info("logging in to Kiwoom (CommConnect)")

    def _login_timed_out(self) -> None:
        if self.state != LOGIN:
            return
        self._login_stuck = True
        self._restart(
            "login did not complete within {:g} s: is the login window waiting for a password? "
            "Turn on auto-login (KOA Studio or the OpenAPI+ tray: 계좌비밀번호 저장, AUTO)".format(
                self.login_timeout_s
            )
        )

    def _on_event_connect(self, err: int) -> None:
        self._login_timer.stop()
        if err == 0:
            if self.state in (RECONCILE, READY) or not self._want_connected:
                return  # a repeated notice of the same login, or one nobody waits for now
            self._logged_in()
        elif err == SOCKET_CLOSED and self.state in (RECONCILE, READY):
            self._restart(describe(err))
        else:
            words = describe(err)
            self._lost(words if words.startswith("login") else "login failed: " + words)

    def _logged_in(self) -> None:
        self._relogin_timer.stop()
        accounts = self.control.accounts()
        if not accounts:
            self._fatal("logged in, but the login has no account: " + describe(-340))
            return
        if self.wanted_account:
            if self.wanted_account not in accounts:
                self._fatal(
                    "account {} from the config is not one of this login's accounts ({})".format(
                        mask_account(self.wanted_account),
                        ", ".join(mask_account(a) for a in accounts),
                    )
                )
                return
            self.account = self.wanted_account
        else:
            self.account = accounts[0]
        self.mock = self.control.get_login_info("GetServerGubun").strip() == "1"
        log.info("logged in: account %s on the %s server", mask_account(self.account),
                 "mock-trading" if self.mock else "REAL")  # fmt: skip
        self.state = RECONCILE
        for reg in self.real.all_registrations():
            self._set_real_reg(reg.screen, reg.codes, reg.opt)
        for reg in self.book_real.all_registrations():
            self._set_book_reg(reg.screen, reg.codes, reg.opt)
        names = {c: self.name_of(c) for c in self._subscribed}
        if any(names.values()):
            self.listener.on_names({c: n for c, n in names.items() if n})
        self._watchdog.start()
        self.reconcile()

    def _check_connection(self) -> None:
        if self.state in (RECONCILE, READY) and self.control.get_connect_state() == 0:
            self._restart(describe(SOCKET_CLOSED))

    def _lost(self, words: str) -> None:
        """Not connected (any more): fail what waits, tell, and try again later."""
        was = self.state
        self.state = LOST
        self._watchdog.stop()
        self._fail_waiting("connection to Kiwoom lost before an answer ({}); "
                           "reconciliation will tell what happened".format(words), BROKER_ERROR)  # fmt: skip
        self.last_message = words
        log.warning("kiwoom: %s (was %s)", words, was)
        self.listener.on_connection(False, words)
        if self._want_connected and not self.restart_reason and not self._login_stuck:
            # 1, 2, 4 … times relogin_delay_s between attempts, at most 5 minutes.
            delay = min(self.relogin_delay_s * (2 ** min(self._failed_logins, 10)), 300.0)
            self._failed_logins += 1
            self._relogin_timer.start(int(delay * 1000))

    def _restart(self, words: str) -> None:
        """A loss only a new process recovers from: fail what waits, tell, and ask for one."""
        if self.restart_reason:
            return
        self.restart_reason = words
        self._relogin_timer.stop()
        self._login_timer.stop()
        self._lost(words + "; the engine restarts to log in again")
        hook = getattr(self.listener, "on_restart_needed", None)
        if hook is not None:
            hook(words)
        else:
            log.error("kiwoom: %s; restart the engine (python -m engine32 --supervise does)", words)

    def _fatal(self, words: str) -> None:
        """A problem a new login does not fix (the configuration must change)."""
        self.state = IDLE
        self._want_connected = False
        self.last_message = words
        log.error("kiwoom: %s", words)
        self.listener.on_connection(False, words)

    def _fail_waiting(self, message: str, code: str) -> None:
        waiting = list(self._orders.values()) + list(self._rejecting.values())
        for job in waiting + list(self._confirming.values()):
            self._finish_order(job, Result.failure(message, code))
        self._orders.clear()
        self._rejecting.clear()
        self._confirming.clear()
        self._messages.clear()
        for request in self.order_queue.clear():
            request()  # the queued request answers NOT_READY itself when not connected
        for job in list(self._trs.values()):
            if job.timer is not None:
                job.timer.stop()
            self._give_back_screen(job)
        self._trs.clear()
        self.tr_queue.clear()
        self._free_tr_screens = list(TR_SCREENS)  # nothing is in flight any more
        self._refreshing = False

    # ------------------------------------------------------------------------------------
    # reconciliation
    # ------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Holdings (all pages), deposit, today's orders; then ready."""
        lots: List[Any] = []
        summary: List[tr.BalanceSummary] = []
        seen: set = set()

        def failed(words: str) -> None:
            if self.state == RECONCILE:
                self._lost("reconciliation failed: " + words)

        def balance_page(page: tr.Page) -> None:
            s, ps = tr.read_balance(page)
            if not summary:
                summary.append(s)
            lots.extend(tr.read_balance_lots(page))

        def balance_done() -> None:
            self._apply_lots(lots)
            self._query(
                tr.DEPOSIT,
                tr.deposit_inputs(self.account),
                self._read_deposit,
                deposit_done,
                failed,
            )

        def deposit_done() -> None:
            self._query(tr.ORDERS, tr.orders_inputs(self.account), orders_page, orders_done, failed)

        def orders_page(page: tr.Page) -> None:
            for order in tr.read_orders(page):
                seen.add(order.order_id)
                changed = self.book.seed(order)
                if changed is not None:
                    self.listener.on_order(changed)

        def orders_done() -> None:
            self._settle_missing(seen)
            self._publish_account(summary[0] if summary else None)
            if self.state != RECONCILE:
                return
            self.state = READY
            self._failed_logins = 0
            self.last_message = "connected to Kiwoom's {} server, account {}".format(
                "mock-trading" if self.mock else "REAL", mask_account(self.account)
            )
            self.listener.on_connection(True, self.last_message)
            self._start_condition()

        self._query(tr.BALANCE, tr.balance_inputs(self.account), balance_page, balance_done, failed)

    def _apply_lots(self, lots: List[Any]) -> None:
        """opw00018 rows, one per lot ((신용구분, position)): kept per lot, published per code."""
        self._lots = {}
        for credit, pos in lots:
            self._lots.setdefault(pos.code, {})[credit] = pos
        self._apply_positions(
            chejan.merge_lots(p for by_credit in self._lots.values() for p in by_credit.values())
        )

    def _apply_positions(self, positions: List[Position]) -> None:
        """Credit and cash lots of one code are one position (opw00018 lists them apart)."""
        super()._apply_positions(chejan.merge_lots(positions))

    def _read_deposit(self, page: tr.Page) -> None:
        self._deposit = tr.read_deposit(page)

    # ------------------------------------------------------------------------------------
    # TR queries
    # ------------------------------------------------------------------------------------
    def query_positions(self) -> None:
        if self.state != READY:
            return
        lots: List[Any] = []
        self._query(tr.BALANCE, tr.balance_inputs(self.account),
                    lambda page: lots.extend(tr.read_balance_lots(page)),
                    lambda: (self._apply_lots(lots), self._publish_account()),
                    self._log_query_error)  # fmt: skip

    def _schedule_refresh(self) -> None:
        """A refresh ``account_refresh_ms`` after the first fill of a burst (not postponed by more)."""
        if not self._account_timer.isActive():
            self._account_timer.start(self._account_refresh_ms)

    def _refresh_after_fills(self) -> None:
        """Balance chejan can arrive out of order too: after fills settle, ask for the truth."""
        if self.state != READY or self._refreshing:
            return
        self._refreshing = True
        lots: List[Any] = []

        def done() -> None:
            self._apply_lots(lots)
            self._query(
                tr.DEPOSIT, tr.deposit_inputs(self.account), self._read_deposit, finished, failed
            )

        def finished() -> None:
            self._refreshing = False
            self._publish_account()

        def failed(words: str) -> None:
            self._refreshing = False
            self._log_query_error(words)

        self._query(tr.BALANCE, tr.balance_inputs(self.account),
                    lambda page: lots.extend(tr.read_balance_lots(page)),
                    done, failed)  # fmt: skip

    def query_account(self) -> None:
        if self.state != READY:
            return
        self._query(tr.DEPOSIT, tr.deposit_inputs(self.account), self._read_deposit,
                    self._publish_account, self._log_query_error)  # fmt: skip

    def query_open_orders(self, then: Optional[Callable[[], None]] = None) -> None:
        """opt10075 into the book; orders it no longer lists get their final state from the
        order history (opt10076); then ``then()`` (also after a failure)."""
        if self.state != READY:
            if then is not None:
                then()
            return
        seen: set = set()

        def page(p: tr.Page) -> None:
            for order in tr.read_orders(p):
                seen.add(order.order_id)
                changed = self.book.seed(order)
                if changed is not None:
                    self.listener.on_order(changed)

        def failed(words: str) -> None:
            self._log_query_error(words)
            if then is not None:
                then()

        self._query(tr.ORDERS, tr.orders_inputs(self.account), page,
                    lambda: self._settle_missing(seen, then), failed)  # fmt: skip

    def _settle_missing(self, seen: Any, then: Optional[Callable[[], None]] = None) -> None:
        """Open orders of the book that opt10075 did not list: ask today's history (opt10076)
        for their final state instead of guessing (they may have filled or been cancelled while
        chejan events were lost)."""
        missing = {o.order_id for o in self.book.open_orders() if o.order_id not in seen}
        if not missing:
            if then is not None:
                then()
            return
        found: set = set()

        def page(p: tr.Page) -> None:
            for order in tr.read_history(p):
                if order.order_id in missing:
                    found.add(order.order_id)
                    changed = self.book.seed(order)
                    if changed is not None:
                        self.listener.on_order(changed)

        def done() -> None:
            for order_id in sorted(missing - found):
                log.warning(
                    "order %s is in neither opt10075 nor opt10076; left as it was", order_id
                )
            if then is not None:
                then()

        def failed(words: str) -> None:
            self._log_query_error(words)
            if then is not None:
                then()

        self._query(tr.HISTORY, tr.history_inputs(self.account), page, done, failed)

    def history(self, code: str, interval: str, count: int, done: Done) -> None:
        """``opt10081``/``opt10080`` with continuation, through the TR rate limits."""
        if self.state != READY:
            done(Result.failure(self._not_ready(), NOT_READY))
            return
        now = krx.now_kst()
        collected: List[List[int]] = []
        answered = [False]

        def once(result: Result) -> None:
            if not answered[0]:
                answered[0] = True
                done(result)

        def page(p: tr.Page) -> bool:
            collected.extend(chart.read_page(p, interval))
            return len(collected) <= count  # one spare row: today's candle is dropped

        def finished() -> None:
            candles = chart.finish(collected, interval, count, now)
            once(Result.success(candles=candles, source=self.name))

        self._query(
            chart.trcode_of(interval),
            chart.inputs(code, interval, now.date()),
            page,
            finished,
            lambda words: once(Result.failure("history of {}: {}".format(code, words))),
        )

    def _log_query_error(self, words: str) -> None:
        log.warning("kiwoom query failed: %s", words)

    def _query(
        self,
        trcode: str,
        inputs: tr.Inputs,
        on_page: Callable[[tr.Page], Optional[bool]],
        on_done: Callable[[], Any],
        on_error: Callable[[str], None],
    ) -> None:
        job = _TrJob(trcode, inputs, on_page, on_done, on_error)
        job.rqname = "{}-{}".format(trcode, next(self._seq))
        if not self.tr_queue.submit(lambda: self._send_tr(job)):
            on_error(
                "too many queries waiting ({}): query rate exceeded".format(len(self.tr_queue))
            )

    def _pump_tr(self) -> None:
        self.tr_queue.pump()

    def _send_tr(self, job: _TrJob) -> None:
        if self.state not in (RECONCILE, READY):
            self._give_back_screen(job)
            job.on_error("not connected")
            return
        if not job.screen:
            if not self._free_tr_screens:
                self.tr_queue.retry_front(lambda: self._send_tr(job), 0.2)
                return
            job.screen = self._free_tr_screens.pop(0)
        for item, value in job.inputs:
            self.control.set_input_value(item, value)
        ret = self.control.comm_rq_data(job.rqname, job.trcode, job.prev_next, job.screen)
        if ret == QUERY_RATE_EXCEEDED:
            log.info("kiwoom refused %s for its rate (-200); trying again in 1 s", job.trcode)
            self.tr_queue.retry_front(lambda: self._send_tr(job), 1.0)
            return
        if ret != 0:
            self._give_back_screen(job)
            job.on_error("{} failed: {}".format(job.trcode, describe(ret)))
            return
        self._trs[job.rqname] = job
        job.timer = self._timer(
            lambda: self._tr_timed_out(job), start_ms=int(self.tr_timeout_s * 1000)
        )

    def _give_back_screen(self, job: _TrJob) -> None:
        """The request is over: its screen goes back to the pool, its real data is dropped
        (a TR registers real-time data of what it asked for on its screen)."""
        if job.screen:
            screen, job.screen = job.screen, ""
            if self.state in (RECONCILE, READY):
                self.control.disconnect_real_data(screen)
            self._free_tr_screens.append(screen)

    def _tr_timed_out(self, job: _TrJob) -> None:
        if self._trs.pop(job.rqname, None) is job:
            self._give_back_screen(job)
            job.on_error("no answer to {} within {:g} s".format(job.trcode, self.tr_timeout_s))

    def _on_tr_data(
        self,
        screen: str,
        rqname: str,
        trcode: str,
        record: str,
        prev_next: str,
        length: int,
        err: str,
        msg: str,
        splm: str,
    ) -> None:
        order_job = self._orders.get(rqname)
        if order_job is not None:
            self._order_answer(order_job, trcode)
            return
        job = self._trs.pop(rqname, None)
        if job is None:
            return
        if job.timer is not None:
            job.timer.stop()
        page = tr.Page(trcode, rqname, self.control.get_comm_data, self.control.get_repeat_cnt,
                       prev_next.strip() == "2")  # fmt: skip
        more = job.on_page(page)
        if page.has_next and more is not False:  # on_page returns False when it has enough
            job.prev_next = 2
            if not self.tr_queue.submit(lambda: self._send_tr(job)):
                self._give_back_screen(job)
                job.on_error("too many queries waiting: query rate exceeded")
            return
        self._give_back_screen(job)
        job.on_done()

    # ------------------------------------------------------------------------------------
    # real-time quotes
    # ------------------------------------------------------------------------------------
    def subscribe(self, codes: Sequence[str]) -> None:
        wanted = [c for c in codes if krx.is_valid_code(c)]
        for code in wanted:
            self._subscribed[code] = True
        calls = self.real.add(wanted)
        if self.state in (RECONCILE, READY):
            for reg in calls:
                self._set_real_reg(reg.screen, reg.codes, reg.opt)
        names = {c: self.name_of(c) for c in wanted}
        names = {c: n for c, n in names.items() if n}
        if names:
            self.listener.on_names(names)

    def unsubscribe(self, codes: Sequence[str]) -> None:
        for code in codes:
            self._subscribed.pop(code, None)
        removals, _ = self.real.remove(codes)
        if self.state in (RECONCILE, READY):
            for screen, code in removals:
                self.control.set_real_remove(screen, code)

    def subscribed(self) -> List[str]:
        return list(self._subscribed)

    def _set_real_reg(self, screen: str, codes: Sequence[str], opt: str) -> None:
        ret = self.control.set_real_reg(screen, ";".join(codes), QUOTE_FIDS, opt)
        if ret != 0:
            log.warning("SetRealReg(%s, %d codes) failed: %s", screen, len(codes), describe(ret))

    def _on_real_data(self, real_key: str, real_type: str, data: str) -> None:
        if real_type == STOCK_HOGA:
            self._on_hoga(real_key)
            return
        if real_type != STOCK_TRADE:
            return
        code = to_code(real_key)
        if code not in self._subscribed:
            # A TR query registers its code too: quotes nobody asked for are dropped.
            self.unasked_quotes += 1
            return
        quote = parse_stock_trade(
            real_key, lambda fid: self.control.get_comm_real_data(real_key, fid)
        )
        if quote is not None:
            self.listener.on_quote(quote)

    # -- order books (주식호가잔량, issue 13) ---------------------------------------------------
    def subscribe_book(self, codes: Sequence[str]) -> None:
        wanted = [c for c in codes if krx.is_valid_code(c)]
        for code in wanted:
            self._book_codes[code] = True
        try:
            calls = self.book_real.add(wanted)
        except ScreenError as exc:
            log.warning("order books not registered: %s", exc)
            return
        if self.state in (RECONCILE, READY):
            for reg in calls:
                self._set_book_reg(reg.screen, reg.codes, reg.opt)

    def unsubscribe_book(self, codes: Sequence[str]) -> None:
        for code in codes:
            self._book_codes.pop(code, None)
        removals, _ = self.book_real.remove(codes)
        if self.state in (RECONCILE, READY):
            for screen, code in removals:
                self.control.set_real_remove(screen, code)

    def _set_book_reg(self, screen: str, codes: Sequence[str], opt: str) -> None:
        ret = self.control.set_real_reg(screen, ";".join(codes), BOOK_FIDS, opt)
        if ret != 0:
            log.warning("SetRealReg(%s, %d books) failed: %s", screen, len(codes), describe(ret))

    def _on_hoga(self, real_key: str) -> None:
        if to_code(real_key) not in self._book_codes:
            return  # a book nobody asked for (e.g. registered by a TR query)
        book = parse_stock_hoga(
            real_key,
            lambda fid: self.control.get_comm_real_data(real_key, fid),
            now_ms(),
        )
        if book is not None:
            self.listener.on_book(book)

    def name_of(self, code: str) -> str:
        name = self._names.get(code)
        if name is None:
            name = self.control.get_master_code_name(code) if self.state != IDLE else ""
            if name:
                self._names[code] = name
        return name or ""

    def master_list(self, done: Done) -> None:
        """KOSPI and KOSDAQ from ``GetCodeListByMarket`` ("0", "10"), named by
        ``GetMasterCodeName`` :data:`MASTER_CHUNK` codes per turn of the Qt loop."""
        if self.state not in (RECONCILE, READY):
            done(Result.failure("not logged in to Kiwoom: no master list yet", NOT_READY))
            return
        markets: Dict[str, str] = {}
        for market_id, market in MASTER_MARKETS:
            for code in self.control.get_code_list_by_market(market_id).split(";"):
                code = code.strip()  # the list ends with ';': its last item is empty
                if krx.is_valid_code(code) and code not in markets:
                    markets[code] = market
        codes = list(markets)
        listings: Dict[str, Listing] = {}

        def step(start: int) -> None:
            if self.state not in (RECONCILE, READY):
                done(Result.failure("Kiwoom's session ended while the master list was read",
                                    NOT_READY))  # fmt: skip
                return
            for code in codes[start : start + MASTER_CHUNK]:
                name = self.control.get_master_code_name(code)
                if name:
                    self._names[code] = name
                    listings[code] = Listing(name, markets[code])
            if start + MASTER_CHUNK < len(codes):
                QTimer.singleShot(0, _guarded(lambda: step(start + MASTER_CHUNK)))
            else:
                done(Result.success(listings=listings))

        QTimer.singleShot(0, _guarded(lambda: step(0)))

    def unknown_codes(self, codes: Sequence[str]) -> List[str]:
        """Codes ``GetMasterCodeName`` has no name for (it answers '' for a code it does not
        list; koapy's ``GetMasterCodeName`` docs). Unknown until logged in: [] then."""
        if self.state == IDLE:
            return []
        return [c for c in codes if not self.name_of(c)]

    def base_price(self, code: str) -> int:
        if self.state == IDLE:
            return 0
        return to_price(self.control.get_master_last_price(code))

    def _learn_name(self, code: str, name: str) -> None:
        if name and self._names.get(code) != name:
            self._names[code] = name
            self.listener.on_names({code: name})

    # ------------------------------------------------------------------------------------
    # orders
    # ------------------------------------------------------------------------------------
    def open_orders(self) -> List[Order]:
        return self.book.open_orders()

    # -- venues (issue 12): KRX only, see venues.py ----------------------------------------
    venues = venue_rules.OCX_VENUES

    def check_venue(self, code: str, venue: str, kind: str) -> str:
        return venue_rules.refusal(venue)

    def place_order(self, request: OrderRequest, done: Done) -> None:
        problem = self._not_ready()
        if problem:
            done(Result.failure(problem, NOT_READY))
            return
        problem = venue_rules.refusal(request.venue)
        if problem:
            done(Result.failure(problem, INVALID_ARGUMENT))
            return
        if request.side not in (BUY, SELL):
            done(
                Result.failure(
                    "side must be buy or sell, got {!r}".format(request.side), INVALID_ARGUMENT
                )
            )
            return
        if not krx.is_valid_code(request.code):
            done(Result.failure("not a stock code: {!r}".format(request.code), INVALID_ARGUMENT))
            return
        if request.qty <= 0:
            done(
                Result.failure("qty must be positive, got {}".format(request.qty), INVALID_ARGUMENT)
            )
            return
        if request.kind == LIMIT and request.price <= 0:
            done(Result.failure("a limit order needs a positive price", INVALID_ARGUMENT))
            return
        if request.kind not in (LIMIT, MARKET):
            done(
                Result.failure(
                    "kind must be limit or market, got {!r}".format(request.kind), INVALID_ARGUMENT
                )
            )
            return
        price = 0 if request.kind == MARKET else request.price
        job = _OrderJob(chejan.ROLE_ORDER, BUY_NEW if request.side == BUY else SELL_NEW, request.code,
                        request.side, request.qty, price, request.kind, "", request.cmd_id, done)  # fmt: skip
        self._submit_order(job)

    def cancel_order(self, order_id: str, cmd_id: str, done: Done) -> None:
        order, problem = self._open_order(order_id)
        if order is None:
            done(problem)
            return
        job = _OrderJob(chejan.ROLE_CANCEL, BUY_CANCEL if order.side == BUY else SELL_CANCEL, order.code,
                        order.side, order.remaining_qty, 0, LIMIT, order_id, cmd_id, done)  # fmt: skip
        self._submit_order(job)

    def modify_order(self, request: ModifyRequest, done: Done) -> None:
        order, problem = self._open_order(request.order_id)
        if order is None:
            done(problem)
            return
        qty = order.remaining_qty if request.qty is None else request.qty
        price = order.price if request.price is None else request.price
        if qty <= 0:
            done(Result.failure("qty must be positive, got {}".format(qty), INVALID_ARGUMENT))
            return
        if qty > order.remaining_qty:
            done(Result.failure("Kiwoom can only lower an order's quantity: {} remain, asked for {}".format(
                order.remaining_qty, qty), INVALID_ARGUMENT))  # fmt: skip
            return
        if price <= 0:
            done(Result.failure("price must be positive, got {}".format(price), INVALID_ARGUMENT))
            return
        rest = order.remaining_qty - qty
        if price == order.price:
            if rest == 0:
                done(Result.failure("nothing to change: same qty and price", INVALID_ARGUMENT))
                return
            # Only fewer shares: cancel the difference; the order keeps its number.
            cancel = _OrderJob(chejan.ROLE_CANCEL, BUY_CANCEL if order.side == BUY else SELL_CANCEL,
                               order.code, order.side, rest, 0, LIMIT, order.order_id, request.cmd_id,
                               lambda r: done(Result.success(order_id=order.order_id) if r.ok else r))  # fmt: skip
            self._submit_order(cancel)
            return
        job = _OrderJob(chejan.ROLE_MODIFY, BUY_MODIFY if order.side == BUY else SELL_MODIFY, order.code,
                        order.side, qty, price, LIMIT, order.order_id, request.cmd_id, done)  # fmt: skip
        if rest:
            # The modify moves `qty` shares to the new price; what stays behind is cancelled.
            def cancel_rest(_new_id: str) -> None:
                self._submit_order(_OrderJob(chejan.ROLE_CANCEL, BUY_CANCEL if order.side == BUY else SELL_CANCEL,
                                             order.code, order.side, rest, 0, LIMIT, order.order_id,
                                             request.cmd_id, lambda r: None))  # fmt: skip

            job.then = cancel_rest
        self._submit_order(job)

    def _not_ready(self) -> str:
        if self.state == READY:
            return ""
        if self.state == RECONCILE:
            return "Kiwoom is reconciling positions and orders; orders are accepted once it is done"
        return "not connected to Kiwoom: " + self.last_message

    def _open_order(self, order_id: str) -> Any:
        problem = self._not_ready()
        if problem:
            return None, Result.failure(problem, NOT_READY)
        order = self.book.order(order_id)
        if order is None:
            return None, Result.failure("no order {!r} is known".format(order_id), INVALID_ARGUMENT)
        if not order.is_open:
            return None, Result.failure(
                "order {} is already {}".format(order_id, order.status), INVALID_ARGUMENT
            )
        return order, None

    def _submit_order(self, job: _OrderJob) -> None:
        if self.mock and job.hoga not in MOCK_HOGAS:
            job.done(
                Result.failure(
                    "the mock-trading server accepts only limit and market orders", INVALID_ARGUMENT
                )
            )
            return
        if not self.order_queue.submit(lambda: self._send_order(job)):
            job.done(Result.failure("{} orders are already waiting to be sent (Kiwoom takes 5 a second); "
                                    "try again shortly".format(len(self.order_queue)), RATE_LIMITED))  # fmt: skip

    def _pump_orders(self) -> None:
        self.order_queue.pump()

    def _send_order(self, job: _OrderJob) -> None:
        problem = self._not_ready()
        if problem:
            job.done(Result.failure(problem, NOT_READY))
            return
        job.rqname = "kc-{}-{}".format(job.role, next(self._seq))
        job.screen = next(self._order_screens)
        ret = self.control.send_order(job.rqname, job.screen, self.account, job.order_type, job.code,
                                      job.qty, job.price, job.hoga, job.orig)  # fmt: skip
        if ret in ORDER_RATE_CODES and job.rate_retries < ORDER_RATE_RETRIES:
            # The order never left: it waits at the head of the queue and goes again.
            job.rate_retries += 1
            log.info("kiwoom refused an order for its rate (%s); sending it again in %.1f s",
                     describe(ret), ORDER_RATE_RETRY_S)  # fmt: skip
            self.order_queue.retry_front(lambda: self._send_order(job), ORDER_RATE_RETRY_S)
            return
        if ret != 0:
            job.finished = True
            job.done(Result.failure("Kiwoom refused the order: " + describe(ret), BROKER_ERROR))
            return
        self._orders[job.rqname] = job
        job.timer = self._timer(
            lambda: self._order_timed_out(job), start_ms=int(self.order_timeout_s * 1000)
        )

    def _order_timed_out(self, job: _OrderJob) -> None:
        waiting = self._orders.pop(job.rqname, None) or self._rejecting.pop(job.rqname, None)
        if job.order_id and self._confirming.get(job.order_id) is job:
            del self._confirming[job.order_id]
            waiting = job
        if waiting is not None:
            self._finish_order(job, Result.failure(
                "Kiwoom did not confirm the order within {:g} s; the order list is being checked".format(
                    self.order_timeout_s), BROKER_ERROR))  # fmt: skip
            self.query_open_orders()

    def _order_answer(self, job: _OrderJob, trcode: str) -> None:
        """OnReceiveTrData for a SendOrder: the order number, or empty when Kiwoom refused it
        (KOA guide: "주문번호 … 공백이면 주문실패"). The request is kept until its fate is
        known: a refusal message (before or after this answer) ends it; a chejan that still
        follows binds it; otherwise the order timeout answers and checks the order list."""
        number = self.control.get_comm_data(trcode, job.rqname, 0, "주문번호").strip()
        if number:
            self._bind(job, number)
            return
        self._orders.pop(job.rqname, None)
        self._rejecting[job.rqname] = job
        if job.refusal:
            self._refused(job, job.refusal)

    def _refused(self, job: _OrderJob, words: str) -> None:
        """Kiwoom refused the request, in ``words`` (a refusal message, never a success one)."""
        self._rejecting.pop(job.rqname, None)
        if self._is_quantity_race(job, words):
            self._requantify(job, words)
            return
        self._finish_order(job, Result.failure("Kiwoom rejected the order: " + words, BROKER_ERROR))

    def _reject(self, job: _OrderJob, words: str) -> None:
        """Kept for callers of the old name: a refusal in ``words``."""
        self._refused(job, words or "no order number was given")

    def _is_quantity_race(self, job: _OrderJob, words: str) -> bool:
        return (
            job.role in (chejan.ROLE_CANCEL, chejan.ROLE_MODIFY)
            and not job.requantified
            and "수량" in words  # about a quantity (not, say, a price above the limit: 초과 too)
            and any(w in words for w in QTY_RACE_WORDS)
        )

    def _requantify(self, job: _OrderJob, words: str) -> None:
        """A cancel or modify named more shares than were left (a fill came in between): read
        the order again (opt10075, or its history) and send it once more with what is left."""
        job.requantified = True
        log.info(
            "kiwoom: %s of %s refused (%s); reading the order again", job.role, job.orig, words
        )

        def again() -> None:
            order = self.book.order(job.orig)
            if order is None or not order.is_open:
                status = order.status if order is not None else "unknown"
                self._finish_order(job, Result.failure(
                    "order {} is already {}: nothing left to {}".format(job.orig, status, job.role),
                    INVALID_ARGUMENT))  # fmt: skip
                return
            job.qty = min(job.qty, order.remaining_qty)
            job.rqname = ""
            job.order_id = ""
            job.refusal = ""
            if job.timer is not None:
                job.timer.stop()
            self._submit_order(job)

        self.query_open_orders(then=again)

    def _bind(self, job: _OrderJob, number: str) -> None:
        self._orders.pop(job.rqname, None)
        self._rejecting.pop(job.rqname, None)
        self._messages.pop(job.rqname, None)
        if job.finished:
            return
        changed = self.book.note_sent(number, job.code, job.side, job.qty, job.price, job.kind,
                                      job.cmd_id, job.orig, job.role, job.received)  # fmt: skip
        if changed is not None:
            self.listener.on_order(changed)
        job.order_id = number
        if job.role == chejan.ROLE_ORDER:
            self._finish_order(job, Result.success(order_id=number))
        else:
            # A cancel or modify is answered once Kiwoom confirms it (확인), or refuses it with a
            # 919 거부사유, which leaves the original order as it was.
            outcome = self.book.leg_outcome(number)
            if outcome is None:
                self._confirming[number] = job
            else:
                self._leg_resolved(job, outcome)
        then, job.then = job.then, None  # once, even if the request is sent again
        if then is not None:
            then(number)

    def _leg_resolved(self, job: _OrderJob, reason: str) -> None:
        self._confirming.pop(job.order_id, None)
        if not reason:
            if job.role == chejan.ROLE_CANCEL:
                result = Result.success(order_id=job.orig, cancel_order_id=job.order_id)
            else:
                result = Result.success(order_id=job.order_id)
            self._finish_order(job, result)
        elif self._is_quantity_race(job, reason):
            if job.timer is not None:
                job.timer.stop()
            self._requantify(job, reason)
        else:
            self._finish_order(job, Result.failure(
                "Kiwoom refused the {} of order {}: {}; the order is unchanged".format(
                    job.role, job.orig, reason), BROKER_ERROR))  # fmt: skip

    def _finish_order(self, job: _OrderJob, result: Result) -> None:
        if job.timer is not None:
            job.timer.stop()
        if job.finished:
            return
        job.finished = True
        job.done(result)

    def _match_unbound(self, fields: chejan.Fields) -> Optional[_OrderJob]:
        """The oldest sent order this chejan (with a number we do not know yet) belongs to."""
        role = chejan.role_of(fields.get(chejan.FID_ORDER_KIND, ""))
        code = to_code(fields.get(chejan.FID_CODE, ""))
        side = chejan.side_of(fields)
        qty = int(fields.get(chejan.FID_ORDER_QTY, "0").strip() or 0)
        orig = fields.get(chejan.FID_ORIG_ORDER_NO, "").strip()
        for job in list(self._orders.values()) + list(self._rejecting.values()):
            if job.role != role or job.code != code or job.side != side or job.qty != qty:
                continue
            if role != chejan.ROLE_ORDER and job.orig != orig:
                continue
            return job
        return None

    # ------------------------------------------------------------------------------------
    # chejan
    # ------------------------------------------------------------------------------------
    def _on_chejan(self, gubun: str, count: int, fid_list: str) -> None:
        if gubun == chejan.GUBUN_ORDER:
            fields = chejan.read_fields(self.control.get_chejan_data, chejan.ORDER_FIDS)
            number = chejan.order_no(fields.get(chejan.FID_ORDER_NO, ""))
            if not number:
                # The first event of an order may come without its number: it still says
                # the order was received, which the order keeps once its number is known.
                job = self._match_unbound(fields)
                if (
                    job is not None
                    and fields.get(chejan.FID_STATUS, "").strip() in chejan.RECEIVED_STATUSES
                ):
                    job.received = True
            elif not self.book.knows(number):
                job = self._match_unbound(fields)
                if job is not None:
                    self._bind(job, number)
            update = self.book.on_order_event(fields)
            for order in update.orders:
                if order.name:
                    self._learn_name(order.code, order.name)
                self.listener.on_order(order)
            for fill in update.fills:
                self.listener.on_fill(fill)
            if update.fills:
                self._schedule_refresh()
            leg = self._confirming.get(number) if number else None
            if leg is not None:
                outcome = self.book.leg_outcome(number)
                if outcome is not None:
                    self._leg_resolved(leg, outcome)
        elif gubun == chejan.GUBUN_BALANCE:
            fields = chejan.read_fields(self.control.get_chejan_data, chejan.BALANCE_FIDS)
            lot = chejan.parse_balance(fields)
            if lot is None:
                return
            # One event is one lot (917 신용구분): keep it, publish the code's lots summed.
            self._lots.setdefault(lot.code, {})[chejan.credit_of(fields)] = lot
            (pos,) = chejan.merge_lots(self._lots[lot.code].values())
            # 990 (cash) + 992 (credit) are the code's realised P&L on every balance event of
            # it, whichever lot the event is about: the latest event's, not a sum over lots.
            pos = pos.replace(realized_pnl=lot.realized_pnl)
            self._realized[pos.code] = pos.realized_pnl
            self._remember_position(pos)
            self._schedule_refresh()

    # ------------------------------------------------------------------------------------
    # messages and faults
    # ------------------------------------------------------------------------------------
    def _on_msg(self, screen: str, rqname: str, trcode: str, msg: str) -> None:
        text = msg.strip()
        # Only a refusal is a reason: success notices ("[100000] 모의투자 매수주문완료",
        # "[00Z112] 모의투자 정상처리 되었습니다") come first for orders that went through.
        rejecting = self._rejecting.get(rqname)
        if rejecting is not None:
            if is_refusal(text):
                self._refused(rejecting, text)
        elif rqname in self._orders and is_refusal(text):
            self._orders[rqname].refusal = text
        log.info("kiwoom message [%s %s]: %s", rqname, trcode, text)
        if "재접속" in msg and self.state in (RECONCILE, READY):
            self._restart("Kiwoom asked for a reconnect (daily server restart): " + text)

    # ------------------------------------------------------------------------------------
    # condition search (optional surge source)
    # ------------------------------------------------------------------------------------
    def _start_condition(self) -> None:
        if self.condition_name and self._condition_index < 0:
            ret = self.control.get_condition_load()
            if ret != 1:
                log.warning("condition search: GetConditionLoad failed (%s)", ret)

    def _on_condition_ver(self, ret: int, msg: str) -> None:
        if ret != 1 or not self.condition_name:
            log.warning("condition search: could not load conditions: %s", msg)
            return
        for entry in self.control.get_condition_name_list().split(";"):
            index, _, name = entry.partition("^")
            if name.strip() == self.condition_name and index.strip().isdigit():
                self._condition_index = int(index)
                break
        else:
            log.warning("condition search: no condition named %r", self.condition_name)
            return
        wait = self._condition_limit.delay()
        if wait > 0:
            log.warning("condition search: once a minute; next try in %.0f s", wait)
            return
        self._condition_limit.record()
        self.tr_queue.submit(lambda: self._send_condition())

    def _send_condition(self) -> None:
        ret = self.control.send_condition(
            CONDITION_SCREEN, self.condition_name, self._condition_index, 1
        )
        if ret != 1:
            log.warning("condition search: SendCondition failed (%s)", ret)

    def _on_real_condition(self, code: str, kind: str, name: str, index: str) -> None:
        if kind.strip() != "I":
            return
        hook = getattr(self.listener, "on_condition", None)
        if hook is not None:
            code = to_code(code)
            hook(code, self.name_of(code), name)

    # ------------------------------------------------------------------------------------
    def _timer(self, slot: Callable[[], None], start_ms: Optional[int] = None) -> QTimer:
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(_guarded(slot))
        if start_ms is not None:
            timer.start(start_ms)
        return timer
