"""SimBroker: the broker contract over :class:`SimExchange`, ticked by a QTimer.

Every ``tick_ms`` (default 20 ms) the timer advances the market by exactly ``tick_ms`` of
market time and makes ``quote_rate * tick_ms / 1000`` quotes, then hands what happened to the
listener. If the event loop falls behind, up to :data:`MAX_CATCH_UP` ticks run in one timer
call; beyond that the deficit is dropped (counted in ``dropped_ticks``) rather than letting
the engine spiral. The market itself never reads the wall clock (see ``exchange``).
"""

import datetime
import logging
import random
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from PyQt5.QtCore import QObject, Qt, QTimer

from core.protocol import krx, sessions
from core.protocol.errors import BROKER_ERROR, INVALID_ARGUMENT, NOT_READY
from core.protocol.events import Order

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
from .clock import SimClock
from .exchange import Clock, SimExchange, kst_hhmmss, kst_time
from .history import past_candles
from .orderbook import build_book
from .universe import build_universe

log = logging.getLogger(__name__)

MAX_CATCH_UP = 5
ACCOUNT_NO = "SIM0000001"

#: ``[sim]`` defaults, used for keys a plain mapping leaves out.
SIM_DEFAULTS: Dict[str, Any] = {
    "seed": 0,
    "sessions": "always",
    "quote_rate": 200,
    "universe": [],
    "extra_codes": 0,
    "cash": 100000000,
    "commission_pct": 0.015,
    "tax_kospi_pct": 0.20,
    "tax_kosdaq_pct": 0.20,
    "slippage_ticks": 1,
    "volatility": 1.0,
    "burst_every_s": 30.0,
    "start_at": "",
    "speed": 1.0,
}

# Rejections that are the caller's mistake (the order itself is wrong).
_ARGUMENT_REASONS = ("unknown code", "side must", "type must", "qty must", "price", "modify qty")


def sim_settings(config: Any) -> Dict[str, Any]:
    """The ``[sim]`` values from a :class:`core.config.Config`, a mapping, or None (defaults)."""
    settings = dict(SIM_DEFAULTS)
    if config is None:
        return settings
    if hasattr(config, "section"):
        settings.update(config.section("sim"))
    elif isinstance(config, Mapping):
        settings.update(config)
    else:
        raise TypeError("config must be a Config or a mapping of [sim] keys")
    return settings


def exchange_from_settings(sim: Mapping[str, Any], clock: Optional[Clock] = None) -> SimExchange:
    """A :class:`SimExchange` configured by ``[sim]`` values (seed 0: a random seed)."""
    seed = sim["seed"] or random.SystemRandom().randrange(1, 2**31)
    if clock is None:
        clock = sim_clock(sim)
    return SimExchange(
        build_universe(sim["universe"], sim["extra_codes"]),
        seed=seed,
        sessions=sim["sessions"],
        cash=sim["cash"],
        commission_pct=sim["commission_pct"],
        tax_kospi_pct=sim["tax_kospi_pct"],
        tax_kosdaq_pct=sim["tax_kosdaq_pct"],
        slippage_ticks=sim["slippage_ticks"],
        volatility=sim["volatility"],
        burst_every_s=sim["burst_every_s"],
        quote_rate=sim["quote_rate"],
        clock=clock,
        account_no=ACCOUNT_NO,
    )


def sim_clock(sim: Mapping[str, Any]) -> Optional[Clock]:
    """The exchange clock ``[sim] start_at`` and ``[sim] speed`` ask for (None: the wall)."""
    start_at = str(sim.get("start_at") or "")
    speed = float(sim.get("speed") or 1.0)
    if not start_at and speed == 1.0:
        return None
    start_ms = None
    if start_at:
        when = sessions.parse_start_at(start_at, krx.now_kst())
        start_ms = int(when.timestamp() * 1000)
    return SimClock(start_ms, speed)


def _error_code(reason: str) -> str:
    if reason.startswith(_ARGUMENT_REASONS):
        return INVALID_ARGUMENT
    return BROKER_ERROR


class SimBroker(Broker):
    """The KRX market simulator behind the broker contract (Qt thread only)."""

    name = "sim"

    def __init__(
        self,
        listener: BrokerListener,
        config: Any = None,
        clock: Optional[Clock] = None,
        tick_ms: int = 20,
        parent: Optional[QObject] = None,
    ) -> None:
        super().__init__(listener)
        self.settings = sim_settings(config)
        self.exchange = exchange_from_settings(self.settings, clock)
        self.tick_ms = tick_ms
        self.dropped_ticks = 0
        self._dispatching = False
        self._connected = False
        self._started = 0.0
        self._ticks_done = 0
        self._timer = QTimer(parent)
        self._timer.setTimerType(Qt.PreciseTimer)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self._on_timer)
        # Quote and book subscriptions are kept apart; the exchange streams their union.
        self._quote_codes: Dict[str, None] = {}
        self._book_codes: Dict[str, None] = {}
        self._routes: Dict[str, Callable[[Any], None]] = {
            "quote": listener.on_quote,
            "order": listener.on_order,
            "fill": listener.on_fill,
            "position": listener.on_position,
            "account": listener.on_account,
        }

    @property
    def seed(self) -> int:
        return self.exchange.seed

    # -- session ------------------------------------------------------------------------------
    def connect(self) -> None:
        """Reconcile at once (account, positions, open orders), then report connected."""
        names = {code: st.name for code, st in self.exchange.market.states.items()}
        self._call(self.listener.on_names, names)
        self._call(self.listener.on_account, self.exchange.account())
        for position in self.exchange.positions():
            self._call(self.listener.on_position, position)
        for order in self.exchange.all_orders():  # today's, restored ones included
            self._call(self.listener.on_order, order)
        if not self._connected:
            self._connected = True
            self._started = time.monotonic()
            self._ticks_done = 0
            self._timer.start()
        self._call(
            self.listener.on_connection,
            True,
            "simulator ready: {} codes, seed {}, sessions {}, {} quotes/s".format(
                len(self.exchange.market.states),
                self.exchange.seed,
                self.exchange.sessions,
                self.settings["quote_rate"],
            ),
        )

    def restore(
        self,
        account: Dict[str, Any],
        positions: Sequence[Dict[str, Any]],
        orders: Sequence[Dict[str, Any]],
    ) -> int:
        """Take back the previous run's paper account (see ``SimExchange.restore``)."""
        return self.exchange.restore(account, positions, orders)

    def disconnect(self) -> None:
        if not self._connected:
            return
        self._timer.stop()
        self._connected = False
        self._call(self.listener.on_connection, False, "simulator stopped")

    def info(self) -> BrokerInfo:
        return BrokerInfo("sim", "sim", self.exchange.ledger.account().account, self._connected)

    # -- market data ----------------------------------------------------------------------------
    def subscribe(self, codes: Sequence[str]) -> None:
        self._quote_codes.update(dict.fromkeys(codes))
        unknown = self.exchange.subscribe(codes)
        if unknown:
            log.warning("not in the simulator's universe, no quotes: %s", ", ".join(unknown))
        self._dispatch()

    def unsubscribe(self, codes: Sequence[str]) -> None:
        for code in codes:
            self._quote_codes.pop(code, None)
        self.exchange.unsubscribe([c for c in codes if c not in self._book_codes])

    def subscribe_book(self, codes: Sequence[str]) -> None:
        """Books of these codes from the matching engine (:mod:`.orderbook`). A book code is
        streamed by the exchange too (its quotes move the book), so its quotes arrive as well."""
        known = [c for c in codes if c in self.exchange.market.states]
        unknown = [c for c in codes if c not in self.exchange.market.states]
        if unknown:
            log.warning("not in the simulator's universe, no book: %s", ", ".join(unknown))
        self._book_codes.update(dict.fromkeys(known))
        self.exchange.subscribe(known)
        self._dispatch()
        for code in known:
            self._send_book(code)

    def unsubscribe_book(self, codes: Sequence[str]) -> None:
        for code in codes:
            self._book_codes.pop(code, None)
        self.exchange.unsubscribe([c for c in codes if c not in self._quote_codes])

    def book(self, code: str) -> Any:
        """The current book of ``code`` (None if unknown)."""
        st = self.exchange.market.get(code)
        if st is None:
            return None
        now = self.exchange.clock()
        return build_book(st, self.exchange.resting(code), kst_hhmmss(now), now)

    def _send_book(self, code: str) -> None:
        book = self.book(code)
        if book is not None:
            self._call(self.listener.on_book, book)

    def name_of(self, code: str) -> str:
        return self.exchange.name_of(code)

    def unknown_codes(self, codes: Sequence[str]) -> List[str]:
        return [c for c in codes if c not in self.exchange.market.states]

    def master_list(self, done: Done) -> None:
        """The simulator's universe (``[sim] universe`` / ``extra_codes``), at once."""
        listings = {
            code: Listing(st.name, st.market, self.exchange.nxt_eligible(code))
            for code, st in self.exchange.market.states.items()
        }
        done(Result.success(listings=listings))

    def base_price(self, code: str) -> int:
        return self.exchange.base_price(code)

    def market_session(self) -> str:
        return self.exchange.phase_at(self.exchange.clock())

    # -- venues (issue 12) ----------------------------------------------------------------------
    checks_phases = True

    @property
    def venues(self) -> Tuple[str, ...]:  # type: ignore[override]
        if self.exchange.sessions == "krx":
            return (sessions.KRX,)
        return sessions.VENUES

    def market_clock(self) -> datetime.datetime:
        return kst_time(self.exchange.clock())

    def market_session_nxt(self) -> str:
        return self.exchange.nxt_phase_at(self.exchange.clock())

    def market_note(self) -> str:
        if self.exchange.sessions == "always":
            return ""
        return sessions.closed_reason(self.market_clock().date())

    def nxt_eligible(self, code: str) -> bool:
        return self.exchange.nxt_eligible(code)

    def check_venue(self, code: str, venue: str, kind: str) -> str:
        if self.exchange.market.get(code) is None:
            return ""  # the exchange answers unknown codes itself
        return self.exchange.check_venue(code, venue, kind, self.exchange.clock())[0]

    # -- orders -------------------------------------------------------------------------------------
    def place_order(self, request: OrderRequest, done: Done) -> None:
        if not self._connected:
            self._call(done, Result.failure("simulator not connected", NOT_READY))
            return
        try:
            order_id, reason = self.exchange.place(
                request.code, request.side, request.qty, request.price, request.kind,
                request.cmd_id, request.venue,
            )  # fmt: skip
        except Exception as exc:  # done must be called exactly once, whatever happens
            log.exception("simulator place_order failed")
            self._call(done, Result.failure("simulator error: {}".format(exc)))
            return
        if reason:
            self._call(done, Result.failure(reason, _error_code(reason)))
        else:
            self._call(done, Result.success(order_id=order_id))
        self._dispatch()

    def cancel_order(self, order_id: str, cmd_id: str, done: Done) -> None:
        if not self._connected:
            self._call(done, Result.failure("simulator not connected", NOT_READY))
            return
        try:
            reason = self.exchange.cancel(order_id, cmd_id)
        except Exception as exc:
            log.exception("simulator cancel_order failed")
            self._call(done, Result.failure("simulator error: {}".format(exc)))
            return
        if reason:
            code = INVALID_ARGUMENT if reason.startswith("unknown order") else BROKER_ERROR
            self._call(done, Result.failure(reason, code))
        else:
            self._call(done, Result.success(order_id=order_id))
        self._dispatch()

    def modify_order(self, request: ModifyRequest, done: Done) -> None:
        if not self._connected:
            self._call(done, Result.failure("simulator not connected", NOT_READY))
            return
        try:
            new_id, reason = self.exchange.modify(
                request.order_id, request.qty, request.price, request.cmd_id
            )
        except Exception as exc:
            log.exception("simulator modify_order failed")
            self._call(done, Result.failure("simulator error: {}".format(exc)))
            return
        if reason:
            code = _error_code(reason)
            if reason.startswith(("unknown order", "market orders cannot")):
                code = INVALID_ARGUMENT
            self._call(done, Result.failure(reason, code))
        else:
            self._call(done, Result.success(order_id=new_id, orig_order_id=request.order_id))
        self._dispatch()

    def open_orders(self) -> List[Order]:
        return self.exchange.open_orders()

    def history(self, code: str, interval: str, count: int, done: Done) -> None:
        """Past candles generated from the seed, ending at the previous close (``history``)."""
        base = self.exchange.base_price(code)
        if not base:
            self._call(done, Result.failure("unknown code {}".format(code), INVALID_ARGUMENT))
            return
        today = datetime.datetime.fromtimestamp(self.exchange.clock() / 1000.0, krx.KST).date()
        candles = past_candles(
            self.seed, code, base, interval, count, today, self.settings["volatility"]
        )
        self._call(done, Result.success(candles=candles, source="sim"))

    def set_price(self, code: str, price: int) -> str:
        """SIM ONLY: trade ``code`` at ``price`` now (the ``sim_price`` command); '' or why not."""
        reason = self.exchange.set_price(code, price)
        self._dispatch()
        return reason

    # -- queries ------------------------------------------------------------------------------------
    def query_positions(self) -> None:
        for position in self.exchange.positions():
            self._call(self.listener.on_position, position)

    def query_open_orders(self) -> None:
        for order in self.exchange.open_orders():
            self._call(self.listener.on_order, order)

    def query_account(self) -> None:
        self._call(self.listener.on_account, self.exchange.account())

    # -- the clock ----------------------------------------------------------------------------------
    def _on_timer(self) -> None:
        due = int((time.monotonic() - self._started) * 1000 / self.tick_ms) - self._ticks_done
        if due <= 0:
            return
        if due > MAX_CATCH_UP:
            self.dropped_ticks += due - MAX_CATCH_UP
            self._ticks_done += due - MAX_CATCH_UP
            due = MAX_CATCH_UP
        dt = self.tick_ms / 1000.0
        quotes = self.settings["quote_rate"] * dt  # per real second, whatever the speed
        market_dt = dt * float(self.settings.get("speed") or 1.0)
        for _ in range(due):
            try:
                self.exchange.step(market_dt, quotes)
            except Exception:  # a bug must not stop the market or kill the Qt loop
                log.exception("simulator step failed")
            self._ticks_done += 1
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand the outbox to the listener in order. Not re-entrant: if the listener calls
        back into the broker (an order from ``on_quote``), what that causes is delivered
        after the events already being delivered, by the outer loop."""
        if self._dispatching:
            return
        self._dispatching = True
        routes = self._routes
        books = self._book_codes
        touched: Dict[str, None] = {}
        try:
            while True:
                batch = self.exchange.drain()
                if not batch:
                    break
                for payload in batch:
                    self._call(routes[payload.TYPE], payload)
                    if books and getattr(payload, "code", None) in books:
                        touched[payload.code] = None  # type: ignore[attr-defined]
            for code in touched:  # the book after everything this round changed
                self._send_book(code)
        finally:
            self._dispatching = False

    @staticmethod
    def _call(fn: Callable[..., None], *args: Any) -> None:
        """Call the listener; an exception there is logged, never raised into Qt."""
        try:
            fn(*args)
        except Exception:
            log.exception("broker listener failed in %s", getattr(fn, "__name__", fn))
