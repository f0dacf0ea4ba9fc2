"""KiwoomRestBroker: the broker contract over Kiwoom's REST + WebSocket API (any OS).

Two threads, one rule: the Qt thread owns every fact the engine sees (the order book,
positions, the account) and never waits; the network thread (:mod:`.net`) runs the REST
client (:mod:`.rest`) and the WebSocket session (:mod:`.ws`) and posts what they learn to
the Qt thread as queued signals.

The life of a session:

1. The WebSocket connects and LOGINs with a token from ``au10001`` (issued on first use,
   renewed before ``expires_dt``, re-issued once on 8005), and registers ``00``/``04``
   (orders, balance) and ``0B`` for the watchlist.
2. Reconciliation over REST: ``ka00001`` (account), ``kt00018`` (positions, every page),
   ``kt00001`` (cash), ``ka10075`` (open orders). Only then ``on_connection(True)``.
3. A drop, an idle session or a kick: ``on_connection(False, words)``; the session comes back
   (backoff, or ``kick_retry_s`` after a kick), registers everything again and reconciles again.

Orders go out as ``kt10000``..``kt10003``; the answer's ``ord_no`` is the order id. The
``00`` frames are chejan events with the OCX's FIDs and go through the OCX adapter's
:class:`~engine32.brokers.kiwoom.chejan.OrderBook`, so a ``접수`` that beats the HTTP answer
only creates the order once: the answer then adds the command id to the same order.
"""

import asyncio
import concurrent.futures
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from PyQt5.QtCore import QTimer

from core.protocol import krx, sessions
from core.protocol.errors import BROKER_ERROR, INVALID_ARGUMENT, NOT_READY, RATE_LIMITED
from core.protocol.events import (
    BUY,
    LIMIT,
    MARKET,
    SELL,
    Fill,
    Order,
    Position,
    mask_account,
)

from ..base import (
    Broker,
    BrokerInfo,
    BrokerListener,
    Done,
    Listing,
    ModifyRequest,
    OrderRequest,
    Result,
)
from ..kiwoom import chejan, tr
from ..kiwoom.hoga import parse_stock_hoga
from ..kiwoom.holdings import KiwoomHoldings
from ..kiwoom.realtime import parse_stock_trade
from ..kiwoom.values import to_code, to_price
from . import chart, trs
from .credentials import load_credentials
from .errors import BATCH_TOO_LARGE_CODE, KiwoomRestError
from .net import NetThread, QtPost
from .rest import REST_HOSTS, WS_URLS, Page, RestClient
from .ws import BOOK_TYPE, CONDITION_TYPE, QUOTE_TYPE, WsSession

log = logging.getLogger("engine32.brokers.kiwoom_rest")

IDLE = "idle"
CONNECTING = "connecting"
RECONCILE = "reconcile"
READY = "ready"
LOST = "lost"

BUY_ID, SELL_ID, MODIFY_ID, CANCEL_ID = "kt10000", "kt10001", "kt10002", "kt10003"
FID_CONDITION_EVENT = "843"  # I (in) / D (out)
#: A history request gives up this long after it started (the dispatcher waits 60 s):
#: a rate-limit refusal is retried until then, never reported before.
HISTORY_BUDGET_S = 55.0
#: return_code 20: "조회할 자료가 없습니다" (no data; the design note §3.2, [BRD client.py]).
NO_DATA_RC = 20
#: chejan FIDs of the venue on ``00`` frames: 2134 0 combined / 1 KRX / 2 NXT, 2136 SOR Y/N
#: (design note §1.2 and §4.2).
FID_VENUE, FID_SOR = 2134, 2136


class _OrderJob:
    """One order request on its way to Kiwoom, until its HTTP answer."""

    def __init__(self, role: str, code: str, side: str, qty: int, price: int, kind: str,
                 orig: str, cmd_id: str, done: Done, venue: str = "KRX") -> None:  # fmt: skip
        self.role = role
        self.venue = venue
        self.code = code
        self.side = side
        self.qty = qty
        self.price = price
        self.kind = kind
        self.orig = orig
        self.cmd_id = cmd_id
        self.done = done
        self.finished = False
        self.then: Optional[Callable[[str], None]] = None


class KiwoomRestBroker(KiwoomHoldings, Broker):
    name = "kiwoom_rest"
    #: Routed with ``dmst_stex_tp`` (issue 12). Phases are left to Kiwoom (``checks_phases``
    #: stays False); NXT eligibility comes from the ka10099 master list (``nxtEnable``) once
    #: it is read: an NXT order for a listed code that NXT does not trade is refused here.
    venues = trs.ORDER_VENUES

    def __init__(
        self,
        listener: BrokerListener,
        config: Any,
        env: Optional[Dict[str, str]] = None,
        transport: Optional[Any] = None,
        reconnect_base_s: float = 1.0,
        refresh_ms: int = 300,
        renew_check_s: float = 30.0,
        recover_s: float = 5.0,
    ) -> None:
        super().__init__(listener)
        section = config.engine_kiwoom_rest
        self.server = str(section.server)
        self.credentials = load_credentials(section, env)
        self.cmd_ttl_s = float(config.engine.cmd_ttl_ms) / 1000.0
        self.condition_name = str(getattr(config.surge, "condition", "") or "")
        self.wanted_account = str(config.engine.account or "").replace("-", "").strip()
        self.rest = RestClient(
            section.base_url or REST_HOSTS[self.server],
            self.credentials,
            query_per_s=float(section.query_per_s),
            order_per_s=float(section.order_per_s),
            token_margin_s=float(section.token_margin_s),
            timeout_s=float(section.timeout_s),
            transport=transport,
        )
        self.ws = WsSession(
            section.ws_url or WS_URLS[self.server],
            self.rest.token,
            self.rest.renew,
            on_row=self._net_row,
            on_state=self._net_state,
            idle_s=float(section.ws_idle_s),
            kick_retry_s=float(section.kick_retry_s),
            reconnect_base_s=reconnect_base_s,
        )
        if self.condition_name:
            self.ws.want_condition(self.condition_name)
        self.renew_check_s = renew_check_s
        self.recover_s = recover_s
        self._reconcile_failures = 0
        self.net = NetThread()
        self.qt = QtPost()
        self.state = IDLE
        self.account = ""
        self.last_message = "not connected yet"
        self.book = chejan.OrderBook()
        self._want = False
        self._subscribed: Dict[str, bool] = {}
        self._book_codes: Dict[str, bool] = {}
        self._names: Dict[str, str] = {}
        #: ka10099's codes (KOSPI, KOSDAQ) → whether NXT trades them; empty until read.
        self._nxt: Dict[str, bool] = {}
        self._base: Dict[str, int] = {}
        self._positions: Dict[str, Position] = {}
        self._realized: Dict[str, int] = {}
        self._deposit: Optional[tr.Deposit] = None
        self._jobs: List[_OrderJob] = []
        #: order number → the venue it was routed to (orders, fills, reconciled orders).
        self._venues: Dict[str, str] = {}
        self._net_tasks: List[Any] = []
        self._refresh_timer = QTimer()
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(refresh_ms)
        self._refresh_timer.timeout.connect(self.query_positions)
        self._refreshing = False
        self.reconciles = 0
        #: KST "now" for history (which candle is still forming); tests pin it.
        self.now_kst: Callable[[], Any] = krx.now_kst

    # ------------------------------------------------------------------------------------
    # session
    # ------------------------------------------------------------------------------------
    def info(self) -> BrokerInfo:
        return BrokerInfo("kiwoom_rest", self.server, mask_account(self.account), self.ready)

    @property
    def ready(self) -> bool:
        return self.state == READY

    def connect(self) -> None:
        if self._want:
            return
        self._want = True
        self.state = CONNECTING
        self.net.start()
        self.net.submit(self._net_start(list(self._subscribed)))
        log.info("kiwoom_rest: connecting to Kiwoom's %s server (%s)",
                 "mock-trading" if self.server == "mock" else "REAL", self.rest.base_url)  # fmt: skip

    async def _net_start(self, codes: List[str]) -> None:
        await self.rest.start()
        await self.ws.subscribe(codes)  # registered once the session is up
        if self._book_codes:
            await self.ws.subscribe_book(list(self._book_codes))
        self._net_tasks = [
            asyncio.ensure_future(self.ws.run()),
            asyncio.ensure_future(self._renew_loop()),
            asyncio.ensure_future(self._exit_watch()),
        ]

    async def _exit_watch(self) -> None:
        """The network thread is not a daemon (a clean stop revokes the token before the
        process ends); if the program ends without ``disconnect()``, it stops on its own."""
        while threading.main_thread().is_alive():
            await asyncio.sleep(0.5)
        if self._want:
            log.warning("kiwoom_rest: the engine ended without disconnecting; stopping")
            await self._net_stop()

    async def _renew_loop(self) -> None:
        """Renew the token before ``expires_dt`` even when nothing is being sent."""
        while True:
            await asyncio.sleep(self.renew_check_s)
            if self.rest.token_due():
                try:
                    await self.rest.token()
                except KiwoomRestError as exc:
                    log.warning("kiwoom_rest: token renewal failed: %s", exc)

    def disconnect(self) -> None:
        if not self._want:
            return
        self._want = False
        self.state = IDLE
        self.last_message = "disconnected from Kiwoom"
        self._refresh_timer.stop()
        for job in list(self._jobs):
            self._finish(job, Result.failure("the engine is disconnecting from Kiwoom; "
                                             "reconciliation will tell what happened", NOT_READY))  # fmt: skip
        self.listener.on_connection(False, "disconnected from Kiwoom")
        if self.net.running:
            self.net.submit(self._net_stop())

    async def _net_stop(self) -> None:
        self.ws.stop()
        current = asyncio.current_task()
        for task in self._net_tasks:
            if task is not current:
                task.cancel()
        await self.rest.close(revoke=True)
        self.net.stop_soon()

    def _post(self, fn: Callable[[], Any]) -> None:
        self.qt.post(fn)

    def _net_state(self, event: str, words: str) -> None:
        """The WebSocket session changed (network thread)."""
        if event == "up":
            self.net.submit(self._net_reconcile())
        self._post(lambda: self._on_ws_state(event, words))

    def _on_ws_state(self, event: str, words: str) -> None:
        if not self._want:
            return
        if event == "up":
            if self.state != READY:
                self.state = RECONCILE
            return
        self._lost(words)

    def _lost(self, words: str) -> None:
        if self.state == LOST and self.last_message == words:
            return  # said already (a session failure is reported once, not per retry)
        self.state = LOST
        self.last_message = words
        log.warning("kiwoom_rest: %s", words)
        self.listener.on_connection(False, words)

    # ------------------------------------------------------------------------------------
    # reconciliation
    # ------------------------------------------------------------------------------------
    async def _net_reconcile(self) -> None:
        try:
            account = await self.rest.call("ka00001", {})
            balance, rows = await self.rest.call_all(
                "kt00018", trs.balance_body(), trs.BALANCE_ROWS
            )
            deposit = await self.rest.call("kt00001", trs.deposit_body())
            _first, orders = await self.rest.call_all("ka10075", trs.open_orders_body(),
                                                      trs.ORDER_ROWS)  # fmt: skip
        except KiwoomRestError as exc:
            words = "reconciliation failed: {}".format(exc)
            self._post(lambda: self._reconcile_failed(words))
            return
        self._post(lambda: self._reconciled(account, balance, rows, deposit, orders))

    def _reconcile_failed(self, words: str) -> None:
        if not self._want:
            return
        self._lost(words)
        self._schedule_reconcile()

    def _schedule_reconcile(self) -> None:
        """Try reconciling again later: recover_s, doubling up to 5 minutes (a problem that
        needs the user, such as an unregistered IP, is not hammered)."""
        delay = min(self.recover_s * (2 ** min(self._reconcile_failures, 10)), 300.0)
        self._reconcile_failures += 1
        QTimer.singleShot(int(delay * 1000), self._retry_reconcile)

    def _retry_reconcile(self) -> None:
        if self._want and self.state == LOST and self.ws.connected:
            self.state = RECONCILE
            self.net.submit(self._net_reconcile())

    def _reconciled(self, account: Page, balance: Dict[str, Any], rows: List[Dict[str, Any]],
                    deposit: Page, orders: List[Dict[str, Any]]) -> None:  # fmt: skip
        if not self._want:
            return
        self.reconciles += 1
        self._reconcile_failures = 0
        number = str(account.body.get("acctNo", "")).strip()
        if self.wanted_account and number and number != self.wanted_account:
            self._lost("account {} from the config is not this app key's account ({})".format(
                mask_account(self.wanted_account), mask_account(number)))  # fmt: skip
            return
        self.account = number or self.account
        summary, positions = tr.read_balance(
            trs.RestPage("kt00018", balance, trs.BALANCE_KEYS, rows=rows)
        )
        self._apply_positions(positions)
        self._deposit = tr.read_deposit(trs.RestPage("kt00001", deposit.body, trs.DEPOSIT_KEYS))
        self._seed_orders(orders)
        self._publish_account(summary)
        self.state = READY
        self.last_message = "connected to Kiwoom's {} server over REST, account {}".format(
            "mock-trading" if self.server == "mock" else "REAL", mask_account(self.account)
        )
        log.info("kiwoom_rest: %s", self.last_message)
        self.listener.on_connection(True, self.last_message)
        self._learn_quotes(list(self._subscribed))

    # ------------------------------------------------------------------------------------
    # queries
    # ------------------------------------------------------------------------------------
    def query_positions(self) -> None:
        if self.state != READY or self._refreshing:
            return
        self._refreshing = True

        async def run() -> None:
            try:
                balance, rows = await self.rest.call_all("kt00018", trs.balance_body(),
                                                         trs.BALANCE_ROWS)  # fmt: skip
                deposit = await self.rest.call("kt00001", trs.deposit_body())
            except KiwoomRestError as exc:
                words = str(exc)
                self._post(lambda: self._refresh_failed(words))
                return
            self._post(lambda: self._refreshed(balance, rows, deposit))

        self.net.submit(run())

    def _refresh_failed(self, words: str) -> None:
        self._refreshing = False
        log.warning("kiwoom_rest query failed: %s", words)

    def _refreshed(
        self, balance: Dict[str, Any], rows: List[Dict[str, Any]], deposit: Page
    ) -> None:
        self._refreshing = False
        summary, positions = tr.read_balance(
            trs.RestPage("kt00018", balance, trs.BALANCE_KEYS, rows=rows)
        )
        self._apply_positions(positions)
        self._deposit = tr.read_deposit(trs.RestPage("kt00001", deposit.body, trs.DEPOSIT_KEYS))
        self._publish_account(summary)

    def query_account(self) -> None:
        self.query_positions()

    def query_open_orders(self) -> None:
        if self.state != READY:
            return

        async def run() -> None:
            try:
                _f, rows = await self.rest.call_all("ka10075", trs.open_orders_body(),
                                                    trs.ORDER_ROWS)  # fmt: skip
            except KiwoomRestError as exc:
                words = str(exc)
                self._post(lambda: self._refresh_failed(words))
                return
            self._post(lambda: self._seed_orders(rows))

        self.net.submit(run())

    def _seed_orders(self, rows: List[Dict[str, Any]]) -> None:
        for row in rows:  # ka10075 stex_tp / sor_yn: the venue of each open order
            number = trs.normalize_order_no(row.get("ord_no", ""))
            if number and number not in self._venues:
                self._venues[number] = trs.venue_of(row.get("stex_tp", ""), row.get("sor_yn", ""))
        for order in tr.read_orders(trs.RestPage("ka10075", {}, trs.ORDER_KEYS, rows=rows)):
            order = order.replace(order_id=trs.normalize_order_no(order.order_id) or order.order_id)
            changed = self.book.seed(order)
            if changed is not None:
                self._emit_order(changed)

    def _venue(self, order_id: str) -> str:
        return self._venues.get(order_id, sessions.DEFAULT_VENUE)

    def _emit_order(self, order: Order) -> None:
        self.listener.on_order(order.replace(venue=self._venue(order.order_id)))

    def _schedule_refresh(self) -> None:
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    # ------------------------------------------------------------------------------------
    # market data
    # ------------------------------------------------------------------------------------
    def subscribe(self, codes: Sequence[str]) -> None:
        wanted = [c for c in codes if krx.is_valid_code(c) and c not in self._subscribed]
        if not wanted:
            return
        for code in wanted:
            self._subscribed[code] = True

        async def run() -> None:
            refused = await self.ws.subscribe(wanted)
            if refused:
                log.warning("kiwoom_rest: Kiwoom streams at most 200 items per connection; "
                            "not streaming %s", ", ".join(refused))  # fmt: skip

        if self.net.running:
            self.net.submit(run())
        if self.state == READY:
            self._learn_quotes(wanted)

    def unsubscribe(self, codes: Sequence[str]) -> None:
        gone = [c for c in codes if self._subscribed.pop(c, None)]
        if gone and self.net.running:
            self.net.submit(self.ws.unsubscribe(gone))

    def subscribed(self) -> List[str]:
        return list(self._subscribed)

    def subscribe_book(self, codes: Sequence[str]) -> None:
        """Order books: the WebSocket's ``0D`` (주식호가잔량, the OCX's FIDs), issue 13."""
        wanted = [c for c in codes if krx.is_valid_code(c) and c not in self._book_codes]
        if not wanted:
            return
        for code in wanted:
            self._book_codes[code] = True

        async def run() -> None:
            refused = await self.ws.subscribe_book(wanted)
            if refused:
                log.warning("kiwoom_rest: Kiwoom streams at most 200 items per connection; "
                            "no book for %s", ", ".join(refused))  # fmt: skip

        if self.net.running:
            self.net.submit(run())

    def unsubscribe_book(self, codes: Sequence[str]) -> None:
        gone = [c for c in codes if self._book_codes.pop(c, None)]
        if gone and self.net.running:
            self.net.submit(self.ws.unsubscribe_book(gone))

    def name_of(self, code: str) -> str:
        return self._names.get(code, "")

    # -- the master list (ka10099) -----------------------------------------------------------
    def master_list(self, done: Done) -> None:
        """KOSPI and KOSDAQ from ``ka10099`` (every page), read on the network thread."""
        if self.state not in (RECONCILE, READY) or not self.net.running:
            done(Result.failure("not connected to Kiwoom: no master list yet", NOT_READY))
            return
        future = self.net.submit(self._net_master())
        future.add_done_callback(lambda f: self._post(lambda: self._master_answered(f, done)))

    async def _net_master(self) -> List[Tuple[str, List[Dict[str, Any]]]]:
        out = []
        for mrkt_tp, market in trs.MASTER_MARKETS:
            _first, rows = await self.rest.call_all(trs.MASTER_ID, trs.master_body(mrkt_tp),
                                                    trs.MASTER_ROWS, trs.MASTER_MAX_PAGES)  # fmt: skip
            out.append((market, rows))
        return out

    def _master_answered(self, future: "concurrent.futures.Future[Any]", done: Done) -> None:
        if future.cancelled():
            done(Result.failure("the engine stopped before Kiwoom sent the master list"))
            return
        exc = future.exception()
        if exc is not None:
            done(Result.failure("master list (ka10099): {}".format(exc)))
            return
        listings: Dict[str, Listing] = {}
        for market, rows in future.result():
            for row in rows:
                code = to_code(str(row.get("code", "")))
                name = str(row.get("name", "")).strip()
                if not krx.is_valid_code(code) or not name or code in listings:
                    continue
                nxt = str(row.get("nxtEnable", "")).strip().upper() == "Y"
                listings[code] = Listing(name, market, nxt)
        if listings:
            self._nxt = {code: bool(item.nxt) for code, item in listings.items()}
            for code, item in listings.items():
                self._names.setdefault(code, item.name)
        done(Result.success(listings=listings))

    def nxt_eligible(self, code: str) -> bool:
        """ka10099's ``nxtEnable`` for a listed code; True for a code the list does not hold
        (an ETF, or the list not read yet): Kiwoom then decides."""
        return self._nxt.get(code, True)

    def check_venue(self, code: str, venue: str, kind: str) -> str:
        why = super().check_venue(code, venue, kind)
        if why or venue != sessions.NXT or self.nxt_eligible(code):
            return why
        return (
            "{} does not trade on NXT (Kiwoom's master list ka10099 says nxtEnable is not Y); "
            "send it to KRX or SOR".format(code)
        )

    def base_price(self, code: str) -> int:
        return self._base.get(code, 0)

    def _learn_quotes(self, codes: List[str]) -> None:
        """Names and previous closes of codes (ka10095, at most 100 a call; 1634 splits)."""
        codes = [c for c in codes if c not in self._base]
        if not codes:
            return

        async def run() -> None:
            rows = await self.multi_quote(codes)
            self._post(lambda: self._learned(rows))

        self.net.submit(run())

    async def multi_quote(self, codes: Sequence[str]) -> List[Dict[str, Any]]:
        step = trs.MAX_CODES_PER_QUOTE
        batches = [list(codes[i : i + step]) for i in range(0, len(codes), step)]
        out: List[Dict[str, Any]] = []
        while batches:
            batch = batches.pop(0)
            try:
                _first, rows = await self.rest.call_all("ka10095", trs.multi_quote_body(batch),
                                                        trs.MULTI_QUOTE_ROWS)  # fmt: skip
            except KiwoomRestError as exc:
                if exc.code == BATCH_TOO_LARGE_CODE and len(batch) > 1:
                    half = len(batch) // 2
                    batches[:0] = [batch[:half], batch[half:]]
                    continue
                log.warning("kiwoom_rest: names and closes of %d codes: %s", len(batch), exc)
                continue
            out.extend(rows)
        return out

    def _learned(self, rows: List[Dict[str, Any]]) -> None:
        names = {}
        for row in rows:
            code = to_code(str(row.get("stk_cd", "")))
            if not code:
                continue
            base = to_price(str(row.get("base_pric", "") or row.get("pred_close_pric", "")))
            if base:
                self._base[code] = base
            name = str(row.get("stk_nm", "")).strip()
            if name and self._names.get(code) != name:
                self._names[code] = names[code] = name
        if names:
            self.listener.on_names(names)

    # ------------------------------------------------------------------------------------
    # history (ka10081 daily / ka10080 minute)
    # ------------------------------------------------------------------------------------
    def history(self, code: str, interval: str, count: int, done: Done) -> None:
        """Past candles, paged on the network thread; the answer comes back as a queued call."""
        problem = self._not_ready()
        if problem:
            done(Result.failure(problem, NOT_READY))
            return
        if not krx.is_valid_code(code) or interval not in ("1d", "1m") or count <= 0:
            done(Result.failure("history needs a stock code, 1d or 1m and a positive count",
                                INVALID_ARGUMENT))  # fmt: skip
            return
        now = self.now_kst()
        deadline = time.monotonic() + HISTORY_BUDGET_S
        future = self.net.submit(self._net_history(code, interval, count, now, deadline))
        future.add_done_callback(
            lambda f: self._post(lambda: self._history_answered(code, f, done))
        )

    async def _net_history(
        self, code: str, interval: str, count: int, now: Any, deadline: float
    ) -> List[List[int]]:
        """Pages (``cont-yn``/``next-key`` response headers) until ``count`` complete candles
        are in hand or Kiwoom has no more; every page through the paced, retrying client."""
        api_id, rows_key = chart.api_id_of(interval), chart.rows_key_of(interval)
        body = chart.body(code, interval, now.date())
        collected: List[List[int]] = []
        cont_yn, next_key = "", ""
        for _ in range(chart.max_pages(interval, count)):
            try:
                page = await self.rest.call(api_id, body, deadline=deadline,
                                            cont_yn=cont_yn, next_key=next_key)  # fmt: skip
            except KiwoomRestError as exc:
                if exc.return_code == NO_DATA_RC and collected:
                    break  # "조회할 자료가 없습니다" on a later page: the end of the past
                raise
            rows = page.body.get(rows_key) or []
            got = chart.read_rows(rows if isinstance(rows, list) else [], interval)
            collected.extend(got)
            if not got or len(chart.finish(collected, interval, count, now)) >= count:
                break
            if page.cont_yn != "Y" or not page.next_key:
                break
            cont_yn, next_key = "Y", page.next_key
        return chart.finish(collected, interval, count, now)

    def _history_answered(
        self, code: str, future: "concurrent.futures.Future[Any]", done: Done
    ) -> None:
        if future.cancelled():
            done(Result.failure("the engine stopped before Kiwoom sent the history of "
                                "{}".format(code), BROKER_ERROR))  # fmt: skip
            return
        exc = future.exception()
        if isinstance(exc, KiwoomRestError) and exc.rate_limited:
            done(Result.failure("Kiwoom's rate limit held the history of {} for too long; "
                                "try again".format(code), RATE_LIMITED))  # fmt: skip
            return
        if exc is not None:
            done(Result.failure("history of {}: {}".format(code, exc), BROKER_ERROR))
            return
        done(Result.success(candles=future.result(), source=self.name))

    def _learn_name(self, code: str, name: str) -> None:
        if name and self._names.get(code) != name:
            self._names[code] = name
            self.listener.on_names({code: name})

    # ------------------------------------------------------------------------------------
    # real-time rows (00 orders, 04 balance, 0B quotes, 02 condition search)
    # ------------------------------------------------------------------------------------
    def _net_row(self, row: Dict[str, Any]) -> None:
        self._post(lambda: self._on_row(row))

    def _on_row(self, row: Dict[str, Any]) -> None:
        kind = str(row.get("type", ""))
        values = row.get("values")
        if not isinstance(values, dict):
            return

        def get(fid: int) -> str:
            value = values.get(str(fid), "")
            return value if isinstance(value, str) else str(value)

        if kind == "00":
            self._on_order_event(chejan.read_fields(get, chejan.ORDER_FIDS),
                                 (get(FID_VENUE).strip(), get(FID_SOR).strip()))  # fmt: skip
        elif kind == "04":
            pos = chejan.parse_balance(chejan.read_fields(get, chejan.BALANCE_FIDS))
            if pos is not None:
                self._realized[pos.code] = pos.realized_pnl
                self._remember_position(pos)
                self._schedule_refresh()
        elif kind == QUOTE_TYPE:
            code = to_code(str(row.get("item", "")))
            if code in self._subscribed:
                quote = parse_stock_trade(code, get)
                if quote is not None:
                    self.listener.on_quote(quote)
        elif kind == BOOK_TYPE:
            code = to_code(str(row.get("item", "")))
            if code in self._book_codes:
                book = parse_stock_hoga(code, get, int(time.time() * 1000))
                if book is not None:
                    self.listener.on_book(book)
        elif (
            kind == CONDITION_TYPE
            and get(int(FID_CONDITION_EVENT)).strip() == "I"
            and self.condition_name
        ):
            code = to_code(get(chejan.FID_CODE) or str(row.get("item", "")))
            if code:
                self.listener.on_condition(code, self.name_of(code), self.condition_name)

    def _on_order_event(self, fields: chejan.Fields, venue: Tuple[str, str] = ("", "")) -> None:
        for fid in (chejan.FID_ORDER_NO, chejan.FID_ORIG_ORDER_NO):
            number = trs.normalize_order_no(fields.get(fid, ""))
            if number:
                fields[fid] = number
        number = fields.get(chejan.FID_ORDER_NO, "")
        stex, sor = venue
        if number and number not in self._venues and (stex or sor):
            self._venues[number] = trs.venue_of(stex, sor)  # an order placed elsewhere
        update = self.book.on_order_event(fields)
        for order in update.orders:
            if order.name:
                self._learn_name(order.code, order.name)
            self._emit_order(order)
        for fill in update.fills:
            self.listener.on_fill(self._fill_venue(fill, stex))
        if update.fills:
            self._schedule_refresh()

    # ------------------------------------------------------------------------------------
    # orders
    # ------------------------------------------------------------------------------------
    def _fill_venue(self, fill: Fill, stex: str) -> Fill:
        """Where the fill traded: FID 2134 (1 KRX / 2 NXT) when the frame says, else the
        order's venue (an SOR order's fill without 2134 is reported as KRX)."""
        where = trs.STEX_VENUES.get(stex) or self._venue(fill.order_id)
        return fill.replace(venue=sessions.KRX if where == "SOR" else where)

    def open_orders(self) -> List[Order]:
        return [o.replace(venue=self._venue(o.order_id)) for o in self.book.open_orders()]

    def _not_ready(self) -> str:
        if self.state == READY:
            return ""
        if self.state == RECONCILE:
            return "Kiwoom is reconciling positions and orders; orders are accepted once it is done"
        return "not connected to Kiwoom: " + self.last_message

    def place_order(self, request: OrderRequest, done: Done) -> None:
        problem = self._not_ready()
        if problem:
            done(Result.failure(problem, NOT_READY))
            return
        if request.side not in (BUY, SELL):
            done(Result.failure("side must be buy or sell, got {!r}".format(request.side),
                                INVALID_ARGUMENT))  # fmt: skip
            return
        if not krx.is_valid_code(request.code):
            done(Result.failure("not a stock code: {!r}".format(request.code), INVALID_ARGUMENT))
            return
        if request.qty <= 0:
            done(Result.failure("qty must be positive, got {}".format(request.qty),
                                INVALID_ARGUMENT))  # fmt: skip
            return
        if request.kind not in (LIMIT, MARKET):
            done(Result.failure("kind must be limit or market, got {!r}".format(request.kind),
                                INVALID_ARGUMENT))  # fmt: skip
            return
        if request.kind == LIMIT and request.price <= 0:
            done(Result.failure("a limit order needs a positive price", INVALID_ARGUMENT))
            return
        if request.venue not in trs.ORDER_VENUES:
            done(Result.failure("venue must be KRX, NXT or SOR, got {!r}; nothing was sent to "
                                "Kiwoom".format(request.venue), INVALID_ARGUMENT))  # fmt: skip
            return
        market = request.kind == MARKET
        price = 0 if market else request.price
        job = _OrderJob(chejan.ROLE_ORDER, request.code, request.side, request.qty, price,
                        request.kind, "", request.cmd_id, done, request.venue)  # fmt: skip
        api_id = BUY_ID if request.side == BUY else SELL_ID
        body = trs.order_body(request.code, request.qty, price, market, request.venue)
        self._send(job, api_id, body)

    def cancel_order(self, order_id: str, cmd_id: str, done: Done) -> None:
        order, problem = self._open_order(order_id)
        if order is None:
            done(problem)
            return
        venue = self._venue(order_id)  # a cancel goes to the venue of the original order
        job = _OrderJob(chejan.ROLE_CANCEL, order.code, order.side, order.remaining_qty, 0,
                        LIMIT, order_id, cmd_id, done, venue)  # fmt: skip
        self._send(job, CANCEL_ID, trs.cancel_body(order_id, order.code, None, venue))

    def modify_order(self, request: ModifyRequest, done: Done) -> None:
        order, problem = self._open_order(request.order_id)
        if order is None:
            done(problem)
            return
        qty = order.remaining_qty if request.qty is None else request.qty
        price = order.price if request.price is None else request.price
        if qty <= 0 or price <= 0:
            done(Result.failure("qty and price must be positive", INVALID_ARGUMENT))
            return
        if qty > order.remaining_qty:
            done(Result.failure("Kiwoom can only lower an order's quantity: {} remain, asked for {}".format(
                order.remaining_qty, qty), INVALID_ARGUMENT))  # fmt: skip
            return
        rest = order.remaining_qty - qty
        venue = self._venue(order.order_id)  # modify/cancel legs carry the original's venue
        if price == order.price:
            if rest == 0:
                done(Result.failure("nothing to change: same qty and price", INVALID_ARGUMENT))
                return
            job = _OrderJob(chejan.ROLE_CANCEL, order.code, order.side, rest, 0, LIMIT,
                            order.order_id, request.cmd_id,
                            lambda r: done(Result.success(order_id=order.order_id) if r.ok else r),
                            venue)  # fmt: skip
            self._send(job, CANCEL_ID, trs.cancel_body(order.order_id, order.code, rest, venue))
            return
        job = _OrderJob(chejan.ROLE_MODIFY, order.code, order.side, qty, price, LIMIT,
                        order.order_id, request.cmd_id, done, venue)  # fmt: skip
        if rest:
            # The modify moves `qty` shares to the new price; what stays behind is cancelled.
            def cancel_rest(_new_id: str) -> None:
                leg = _OrderJob(chejan.ROLE_CANCEL, order.code, order.side, rest, 0, LIMIT,
                                order.order_id, request.cmd_id, lambda r: None, venue)  # fmt: skip
                self._send(leg, CANCEL_ID, trs.cancel_body(order.order_id, order.code, None, venue))

            job.then = cancel_rest
        body = trs.modify_body(order.order_id, order.code, None if rest == 0 else qty, price, venue)
        self._send(job, MODIFY_ID, body)

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

    def _send(self, job: _OrderJob, api_id: str, body: Dict[str, str]) -> None:
        """Hand the order to the network thread; its answer comes back as a queued call."""
        self._jobs.append(job)
        deadline = time.monotonic() + self.cmd_ttl_s
        future = self.net.submit(self.rest.call(api_id, body, deadline=deadline))
        future.add_done_callback(lambda f: self._post(lambda: self._answered(job, api_id, f)))

    def _answered(
        self, job: _OrderJob, api_id: str, future: "concurrent.futures.Future[Any]"
    ) -> None:
        if job.finished:
            return
        if future.cancelled():
            self._finish(job, Result.failure("the engine stopped before Kiwoom answered; "
                                             "reconciliation will tell what happened", BROKER_ERROR))  # fmt: skip
            return
        exc = future.exception()
        if isinstance(exc, KiwoomRestError):
            self._refused(job, exc)
            return
        if exc is not None:
            self._finish(job, Result.failure("{} failed: {}".format(api_id, exc), BROKER_ERROR))
            return
        page = future.result()
        number = trs.normalize_order_no(page.body.get("ord_no", ""))
        if not number:
            self._finish(job, Result.failure("Kiwoom gave no order number: {}".format(
                str(page.body.get("return_msg", "")).strip()), BROKER_ERROR))  # fmt: skip
            self.query_open_orders()
            return
        self._venues[number] = job.venue
        changed = self.book.note_sent(number, job.code, job.side, job.qty, job.price, job.kind,
                                      job.cmd_id, job.orig, job.role)  # fmt: skip
        if changed is not None:
            self._emit_order(changed)
        if job.role == chejan.ROLE_CANCEL:
            result = Result.success(order_id=job.orig, cancel_order_id=number)
        else:
            result = Result.success(order_id=number)
        self._finish(job, result)
        if job.then is not None:
            job.then(number)

    def _refused(self, job: _OrderJob, exc: KiwoomRestError) -> None:
        if exc.rate_limited:
            self._finish(job, Result.failure(
                "Kiwoom's rate limit held the order until its time to live ran out; it was "
                "not placed", RATE_LIMITED))  # fmt: skip
        elif exc.token_problem or exc.fatal:
            # Re-issued once already (RestClient.call): the broker is lost until a new
            # reconciliation gets through.
            self._finish(job, Result.failure(str(exc), BROKER_ERROR))
            if self.state == READY:
                self._lost(str(exc))
                self._schedule_reconcile()
        elif exc.sent and (exc.status == 0 or exc.status >= 500):
            # No answer (a timeout, a broken connection): the order may or may not be placed.
            # It is never sent again; the order list and the 00 stream will tell.
            self._finish(job, Result.failure("{}; the order list is being checked".format(exc),
                                             BROKER_ERROR))  # fmt: skip
            self.query_open_orders()
        elif exc.status == 0:
            self._finish(job, Result.failure(str(exc), BROKER_ERROR))
        else:
            self._finish(
                job, Result.failure("Kiwoom rejected the order: " + str(exc), BROKER_ERROR)
            )

    def _finish(self, job: _OrderJob, result: Result) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        if job.finished:
            return
        job.finished = True
        job.done(result)
