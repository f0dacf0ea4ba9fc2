"""The broker contract, in the spirit of vn.py's gateway.

A broker lives on the Qt main thread. Every method returns at once: nothing blocks on the
network or on the broker. What happens later flows back through the :class:`BrokerListener`
as immutable payloads (:mod:`core.protocol.events`), and each request that needs an answer
gets it through its ``done`` callback, called exactly once, on the Qt thread.
"""

import abc
import datetime
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from core.protocol import krx, sessions
from core.protocol.events import Account, Book, Fill, Order, Position, Quote


class Result(NamedTuple):
    """The answer to a request: ``ok`` with a ``value`` (e.g. ``{"order_id": "..."}``), or an error.

    ``error_code`` is a protocol error code (``BROKER_ERROR``, ``RATE_LIMITED``, ``NOT_READY``,
    ``INVALID_ARGUMENT``...); ``message`` says what happened in plain words.
    """

    ok: bool
    value: Optional[dict] = None
    error_code: str = ""
    message: str = ""

    @classmethod
    def success(cls, **value: object) -> "Result":
        return cls(True, dict(value))

    @classmethod
    def failure(cls, message: str, error_code: str = "BROKER_ERROR") -> "Result":
        return cls(False, None, error_code, message)


Done = Callable[[Result], None]


class OrderRequest(NamedTuple):
    """A new order. ``price`` is 0 for market orders."""

    code: str
    side: str  # "buy" | "sell"
    qty: int
    price: int
    kind: str = "limit"  # "limit" | "market"
    cmd_id: str = ""
    venue: str = "KRX"  # "KRX" | "NXT" | "SOR" (core.protocol.sessions); REST: dmst_stex_tp


class ModifyRequest(NamedTuple):
    """Change the quantity and/or price of an open order (``None`` keeps the current one)."""

    order_id: str
    qty: Optional[int] = None
    price: Optional[int] = None
    cmd_id: str = ""


class Listing(NamedTuple):
    """One code of the broker's master list (:meth:`Broker.master_list`)."""

    name: str  # Korean name, e.g. 삼성전자
    market: str = ""  # "KOSPI" | "KOSDAQ" | "" (unknown)
    nxt: Optional[bool] = None  # trades on NXT (REST ka10099 nxtEnable); None: not said


KOSPI = "KOSPI"
KOSDAQ = "KOSDAQ"


class BrokerInfo(NamedTuple):
    """What the engine reports about its broker in ``P:engine``."""

    broker: str  # "sim" | "kiwoom" | "kiwoom_rest"
    mode: str  # "sim" | "mock" (Kiwoom's mock-trading server) | "real"
    account: str  # masked
    connected: bool


class BrokerListener(abc.ABC):
    """What a broker tells the engine. All calls happen on the Qt thread."""

    @abc.abstractmethod
    def on_quote(self, quote: Quote) -> None: ...

    @abc.abstractmethod
    def on_order(self, order: Order) -> None:
        """Every change of an order (the full order as it now stands)."""

    @abc.abstractmethod
    def on_fill(self, fill: Fill) -> None: ...

    @abc.abstractmethod
    def on_position(self, position: Position) -> None:
        """A position as it now stands (``qty`` 0 when closed)."""

    @abc.abstractmethod
    def on_account(self, account: Account) -> None: ...

    @abc.abstractmethod
    def on_connection(self, connected: bool, message: str) -> None:
        """The broker connected (after reconciliation: ready for orders) or was lost, in words."""

    def on_names(self, names: Dict[str, str]) -> None:  # noqa: B027 - optional hook
        """Korean names of codes, when the broker learns them (code → name)."""

    def on_condition(self, code: str, name: str, condition: str) -> None:  # noqa: B027 - optional hook
        """A code entered a broker-side condition search (Kiwoom 조건검색): a second surge source."""

    def on_book(self, book: Book) -> None:  # noqa: B027 - optional hook
        """The order book (호가창) of a code on the book set, as it now stands."""


class Broker(abc.ABC):
    """The contract both the simulator and the Kiwoom adapter implement."""

    name = "base"

    def __init__(self, listener: BrokerListener) -> None:
        self.listener = listener

    # -- session ---------------------------------------------------------------------------
    @abc.abstractmethod
    def connect(self) -> None:
        """Start connecting. Later: reconcile (positions, deposit, open orders are pushed to
        the listener), then ``listener.on_connection(True, ...)``: only then are orders accepted."""

    @abc.abstractmethod
    def disconnect(self) -> None: ...

    @abc.abstractmethod
    def info(self) -> BrokerInfo: ...

    # -- market data -----------------------------------------------------------------------
    @abc.abstractmethod
    def subscribe(self, codes: Sequence[str]) -> None:
        """Stream quotes for these codes (in addition to those already streamed)."""

    @abc.abstractmethod
    def unsubscribe(self, codes: Sequence[str]) -> None: ...

    def subscribe_book(self, codes: Sequence[str]) -> None:  # noqa: B027 - optional
        """Stream order books (``listener.on_book``) for these codes too; kept apart from the
        quote subscriptions because books cost the broker more (OCX screens, REST items)."""

    def unsubscribe_book(self, codes: Sequence[str]) -> None:  # noqa: B027 - optional
        """Stop the order books of these codes."""

    def name_of(self, code: str) -> str:
        """The Korean name of a code, or '' if unknown."""
        return ""

    def master_list(self, done: Done) -> None:
        """The broker's universe, KOSPI and KOSDAQ: ``done(Result.success(listings={code:
        Listing}))``, later and on the Qt thread, without holding the Qt thread for long
        (thousands of codes). Called once the broker is ready; brokers without one refuse."""
        done(Result.failure("the {} broker has no master list".format(self.name)))

    def unknown_codes(self, codes: Sequence[str]) -> List[str]:
        """Those of ``codes`` the broker's universe does not list ([] when it cannot tell)."""
        return []

    def base_price(self, code: str) -> int:
        """The previous close of a code (the base of the daily limits), or 0 if unknown."""
        return 0

    def market_session(self) -> str:
        """The KRX phase the broker trades in now (``core.protocol.sessions`` KRX names).

        The real KRX day by default; the simulator overrides it (its market may be always open).
        """
        return sessions.phase_at(sessions.KRX, self.market_clock()).name

    # -- venues (issue 12; the REST broker maps them to dmst_stex_tp) -------------------------
    #: Venues this broker can route orders to. A broker that knows NXT adds "NXT" and "SOR".
    venues: Tuple[str, ...] = (sessions.KRX,)
    #: Whether the engine refuses, before the risk limits, what the venue's phase at
    #: :meth:`market_clock` does not take. Off by default: a broker whose tests drive a fake
    #: server at wall-clock time opts in once its clock can be set (the simulator's is).
    checks_phases = False

    def market_clock(self) -> datetime.datetime:
        """The KST time the broker's market runs at (the wall clock; the simulator's own)."""
        return krx.now_kst()

    def market_session_nxt(self) -> str:
        """The NXT phase now (``core.protocol.sessions`` NXT names)."""
        return sessions.phase_at(sessions.NXT, self.market_clock()).name

    def market_note(self) -> str:
        """Why both venues are closed all day (``휴장: 성탄절``), '' on a trading day."""
        return sessions.closed_reason(self.market_clock().date())

    def nxt_eligible(self, code: str) -> bool:
        """Whether ``code`` trades on NXT (the master list's ``nxtEnable``). Brokers that do
        not know answer True when they route to NXT at all: the venue then decides."""
        return sessions.NXT in self.venues

    def check_venue(self, code: str, venue: str, kind: str) -> str:
        """Why an order for ``code`` of ``kind`` cannot go to ``venue`` now ('' when it can):
        the broker cannot route there, or (with :attr:`checks_phases`) the code does not trade
        there or the venue's phase does not accept the order. Checked by the engine before
        the risk limits."""
        if venue not in self.venues:
            return "the {} broker routes orders to {} only, not {}".format(
                self.name, "/".join(self.venues), venue
            )
        if not self.checks_phases:
            return ""
        return sessions.check_order(venue, kind, self.market_clock(), self.nxt_eligible(code))

    # -- orders ----------------------------------------------------------------------------
    @abc.abstractmethod
    def place_order(self, request: OrderRequest, done: Done) -> None:
        """``done(Result.success(order_id=...))`` once the broker has the order, or a failure."""

    @abc.abstractmethod
    def cancel_order(self, order_id: str, cmd_id: str, done: Done) -> None: ...

    @abc.abstractmethod
    def modify_order(self, request: ModifyRequest, done: Done) -> None:
        """``done(Result.success(order_id=<new id>))``."""

    # -- queries (answers arrive through the listener) ---------------------------------------
    @abc.abstractmethod
    def query_positions(self) -> None: ...

    @abc.abstractmethod
    def query_open_orders(self) -> None: ...

    @abc.abstractmethod
    def query_account(self) -> None: ...

    def open_orders(self) -> List[Order]:
        """Orders the broker knows to be open right now (for cancel_all and halt)."""
        return []

    # -- history ---------------------------------------------------------------------------
    def history(self, code: str, interval: str, count: int, done: Done) -> None:
        """Past candles of ``code``: ``done(Result.success(candles=[[start_ms, open, high,
        low, close, volume], ...], source=...))``, oldest first, the last ``count`` complete
        ``interval`` (``1d``/``1m``) candles before now. Brokers without history refuse."""
        done(Result.failure("the {} broker cannot fetch past candles".format(self.name)))
