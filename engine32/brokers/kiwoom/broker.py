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
fails what was waiting, says so through ``on_connection(False, words)`` and goes back to 1.
"""

import itertools
import logging
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from PyQt5.QtCore import QTimer

from core.protocol import krx
from core.protocol.errors import BROKER_ERROR, INVALID_ARGUMENT, NOT_READY, RATE_LIMITED
from core.protocol.events import BUY, LIMIT, MARKET, SELL, Account, Order, Position, mask_account

from ..base import Broker, BrokerInfo, BrokerListener, Done, ModifyRequest, OrderRequest, Result
from . import chejan, tr
from .control import Control
from .errors import QUERY_RATE_EXCEEDED, SOCKET_CLOSED, describe
from .hoga import BOOK_FIDS, BOOK_SCREENS, BOOK_SCREENS_FROM, STOCK_HOGA, parse_stock_hoga
from .ratelimit import (
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
CONDITION_SCREEN = "0150"
ORDER_SCREENS = tuple("{:04d}".format(n) for n in range(201, 211))
RESERVED_SCREENS = 1 + 1 + len(ORDER_SCREENS)
#: How long a refused order waits for the OnReceiveMsg that says why.
REASON_WAIT_MS = 300

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
        on_page: Callable[[tr.Page], None],
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


class KiwoomBroker(Broker):
    """The Kiwoom OpenAPI+ adapter. ``control`` is the OCX (or a fake) the engine built."""

    name = "kiwoom"

    def __init__(
        self,
        listener: BrokerListener,
        config: Any,
        control: Any,
        tr_windows: Windows = TR_WINDOWS,
        order_windows: Windows = ORDER_WINDOWS,
        clock: Callable[[], float] = time.monotonic,
        relogin_delay_s: float = 10.0,
        order_timeout_s: float = 10.0,
        tr_timeout_s: float = 20.0,
        watchdog_ms: int = 5000,
        account_refresh_ms: int = 2000,
        max_waiting_queries: int = 50,
        max_waiting_orders: int = 20,
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
        self.order_queue = RateQueue(
            "order", order_windows, self._order_timer.start, max_waiting_orders, clock
        )
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
        was = self.state
        self.state = IDLE  # first: queued orders answer NOT_READY instead of going out
        self.last_message = "disconnected from Kiwoom"
        self._fail_waiting("the engine is disconnecting from Kiwoom", NOT_READY)
        if was in (RECONCILE, READY):
            self.control.set_real_remove("ALL", "ALL")
        self.listener.on_connection(False, "disconnected from Kiwoom")

    def info(self) -> BrokerInfo:
        mode = ("mock" if self.mock else "real") if self.account else "unknown"
        return BrokerInfo("kiwoom", mode, mask_account(self.account), self.state == READY)

    @property
    def ready(self) -> bool:
        return self.state == READY

    def _login(self) -> None:
        if not self._want_connected or self.state in (RECONCILE, READY):
            return
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
        self._lost(
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
            self._lost(describe(err))
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
            self._lost(describe(SOCKET_CLOSED))

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
        if self._want_connected:
            # 1, 2, 4 … times relogin_delay_s between attempts, at most 5 minutes.
            delay = min(self.relogin_delay_s * (2 ** min(self._failed_logins, 10)), 300.0)
            self._failed_logins += 1
            self._relogin_timer.start(int(delay * 1000))

    def _fatal(self, words: str) -> None:
        """A problem a new login does not fix (the configuration must change)."""
        self.state = IDLE
        self._want_connected = False
        self.last_message = words
        log.error("kiwoom: %s", words)
        self.listener.on_connection(False, words)

    def _fail_waiting(self, message: str, code: str) -> None:
        for job in list(self._orders.values()) + list(self._rejecting.values()):
            self._finish_order(job, Result.failure(message, code))
        self._orders.clear()
        self._rejecting.clear()
        self._messages.clear()
        for request in self.order_queue.clear():
            request()  # the queued request answers NOT_READY itself when not connected
        for job in list(self._trs.values()):
            if job.timer is not None:
                job.timer.stop()
        self._trs.clear()
        self.tr_queue.clear()
        self._refreshing = False

    # ------------------------------------------------------------------------------------
    # reconciliation
    # ------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Holdings (all pages), deposit, today's orders; then ready."""
        positions: List[Position] = []
        summary: List[tr.BalanceSummary] = []

        def failed(words: str) -> None:
            if self.state == RECONCILE:
                self._lost("reconciliation failed: " + words)

        def balance_page(page: tr.Page) -> None:
            s, ps = tr.read_balance(page)
            if not summary:
                summary.append(s)
            positions.extend(ps)

        def balance_done() -> None:
            self._apply_positions(positions)
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
                changed = self.book.seed(order)
                if changed is not None:
                    self.listener.on_order(changed)

        def orders_done() -> None:
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

    def _apply_positions(self, positions: List[Position]) -> None:
        seen = set()
        for pos in positions:
            seen.add(pos.code)
            self._remember_position(pos)
        for code in list(self._positions):
            if code not in seen and self._positions[code].qty:
                self._remember_position(
                    self._positions[code].replace(qty=0, unrealized_pnl=0, unrealized_pnl_pct=0.0)
                )

    def _remember_position(self, pos: Position) -> None:
        realized = self._realized.get(pos.code, 0)
        if pos.realized_pnl == 0 and realized:
            pos = pos.replace(realized_pnl=realized)
        if not pos.name and pos.code in self._positions:
            pos = pos.replace(name=self._positions[pos.code].name)
        if self._positions.get(pos.code) == pos:
            return
        self._positions[pos.code] = pos
        if pos.name:
            self._learn_name(pos.code, pos.name)
        self.listener.on_position(pos)

    def _read_deposit(self, page: tr.Page) -> None:
        self._deposit = tr.read_deposit(page)

    def _publish_account(self, summary: Optional[tr.BalanceSummary] = None) -> None:
        deposit = self._deposit or tr.Deposit(0, 0, 0)
        held = [p for p in self._positions.values() if p.qty]
        market_value = sum(p.qty * p.last_price for p in held)
        unrealized = sum(p.unrealized_pnl for p in held)
        cash = deposit.settled_d2 or deposit.cash
        self.listener.on_account(
            Account(
                account=mask_account(self.account),
                cash=cash,
                orderable=deposit.orderable,
                equity=cash + market_value,
                realized_pnl_today=sum(self._realized.values()),
                unrealized_pnl=summary.unrealized_pnl if summary and not held else unrealized,
            )
        )

    # ------------------------------------------------------------------------------------
    # TR queries
    # ------------------------------------------------------------------------------------
    def query_positions(self) -> None:
        if self.state != READY:
            return
        positions: List[Position] = []
        self._query(tr.BALANCE, tr.balance_inputs(self.account),
                    lambda page: positions.extend(tr.read_balance(page)[1]),
                    lambda: (self._apply_positions(positions), self._publish_account()),
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
        positions: List[Position] = []

        def done() -> None:
            self._apply_positions(positions)
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
                    lambda page: positions.extend(tr.read_balance(page)[1]), done, failed)  # fmt: skip

    def query_account(self) -> None:
        if self.state != READY:
            return
        self._query(tr.DEPOSIT, tr.deposit_inputs(self.account), self._read_deposit,
                    self._publish_account, self._log_query_error)  # fmt: skip

    def query_open_orders(self) -> None:
        if self.state != READY:
            return

        def page(p: tr.Page) -> None:
            for order in tr.read_orders(p):
                changed = self.book.seed(order)
                if changed is not None:
                    self.listener.on_order(changed)

        self._query(
            tr.ORDERS, tr.orders_inputs(self.account), page, lambda: None, self._log_query_error
        )

    def _log_query_error(self, words: str) -> None:
        log.warning("kiwoom query failed: %s", words)

    def _query(
        self,
        trcode: str,
        inputs: tr.Inputs,
        on_page: Callable[[tr.Page], None],
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
            job.on_error("not connected")
            return
        for item, value in job.inputs:
            self.control.set_input_value(item, value)
        ret = self.control.comm_rq_data(job.rqname, job.trcode, job.prev_next, TR_SCREEN)
        if ret == QUERY_RATE_EXCEEDED:
            log.info("kiwoom refused %s for its rate (-200); trying again in 1 s", job.trcode)
            self.tr_queue.retry_front(lambda: self._send_tr(job), 1.0)
            return
        if ret != 0:
            job.on_error("{} failed: {}".format(job.trcode, describe(ret)))
            return
        self._trs[job.rqname] = job
        job.timer = self._timer(
            lambda: self._tr_timed_out(job), start_ms=int(self.tr_timeout_s * 1000)
        )

    def _tr_timed_out(self, job: _TrJob) -> None:
        if self._trs.pop(job.rqname, None) is job:
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
        job.on_page(page)
        if page.has_next:
            job.prev_next = 2
            if not self.tr_queue.submit(lambda: self._send_tr(job)):
                job.on_error("too many queries waiting: query rate exceeded")
            return
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
            int(time.time() * 1000),
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

    def place_order(self, request: OrderRequest, done: Done) -> None:
        problem = self._not_ready()
        if problem:
            done(Result.failure(problem, NOT_READY))
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
        if ret != 0:
            job.finished = True
            job.done(Result.failure("Kiwoom refused the order: " + describe(ret), BROKER_ERROR))
            return
        self._orders[job.rqname] = job
        job.timer = self._timer(
            lambda: self._order_timed_out(job), start_ms=int(self.order_timeout_s * 1000)
        )

    def _order_timed_out(self, job: _OrderJob) -> None:
        if self._orders.pop(job.rqname, None) is not None:
            self._finish_order(job, Result.failure(
                "Kiwoom did not confirm the order within {:g} s; the order list is being checked".format(
                    self.order_timeout_s), BROKER_ERROR))  # fmt: skip
            self.query_open_orders()

    def _order_answer(self, job: _OrderJob, trcode: str) -> None:
        """OnReceiveTrData for a SendOrder: the order number, or empty when Kiwoom refused it."""
        number = self.control.get_comm_data(trcode, job.rqname, 0, "주문번호").strip()
        if number:
            self._bind(job, number)
            return
        self._orders.pop(job.rqname, None)
        words = self._messages.pop(job.rqname, "")
        if words:
            self._reject(job, words)
            return
        # Kiwoom says why in OnReceiveMsg, which may come just after: wait for it a moment.
        self._rejecting[job.rqname] = job
        if job.timer is not None:
            job.timer.stop()
        job.timer = self._timer(lambda: self._reject(job, ""), start_ms=REASON_WAIT_MS)

    def _reject(self, job: _OrderJob, words: str) -> None:
        self._rejecting.pop(job.rqname, None)
        words = words or "no order number was given"
        self._finish_order(job, Result.failure("Kiwoom rejected the order: " + words, BROKER_ERROR))

    def _bind(self, job: _OrderJob, number: str) -> None:
        self._orders.pop(job.rqname, None)
        self._messages.pop(job.rqname, None)
        if job.finished:
            return
        changed = self.book.note_sent(number, job.code, job.side, job.qty, job.price, job.kind,
                                      job.cmd_id, job.orig, job.role, job.received)  # fmt: skip
        if changed is not None:
            self.listener.on_order(changed)
        if job.role == chejan.ROLE_CANCEL:
            result = Result.success(order_id=job.orig, cancel_order_id=number)
        else:
            result = Result.success(order_id=number)
        job.order_id = number
        self._finish_order(job, result)
        if job.then is not None:
            job.then(number)

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
        for job in self._orders.values():
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
        elif gubun == chejan.GUBUN_BALANCE:
            fields = chejan.read_fields(self.control.get_chejan_data, chejan.BALANCE_FIDS)
            pos = chejan.parse_balance(fields)
            if pos is None:
                return
            self._realized[pos.code] = pos.realized_pnl
            self._remember_position(pos)
            self._schedule_refresh()

    # ------------------------------------------------------------------------------------
    # messages and faults
    # ------------------------------------------------------------------------------------
    def _on_msg(self, screen: str, rqname: str, trcode: str, msg: str) -> None:
        rejecting = self._rejecting.get(rqname)
        if rejecting is not None:
            self._reject(rejecting, msg.strip())
        elif rqname in self._orders:
            self._messages[rqname] = msg.strip()
        log.info("kiwoom message [%s %s]: %s", rqname, trcode, msg.strip())
        if "재접속" in msg and self.state in (RECONCILE, READY):
            self._lost("Kiwoom asked for a reconnect (daily server restart): " + msg.strip())

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
