"""The simulator's core: market + matching + account, pure Python and free of Qt.

Tests drive it directly; :class:`~engine32.brokers.sim.broker.SimBroker` only adds a QTimer.
Two clocks, kept apart on purpose:

- the **market clock** ``t`` (seconds) moves only by the ``dt`` given to :meth:`step`, so the
  market depends on the seed and on the sequence of calls, not on wall-clock jitter;
- the **exchange clock** ``clock()`` (ms since the epoch, injectable) stamps orders and quotes
  (``HHMMSS`` in KST) and, with ``sessions="krx"`` or ``"krx+nxt"``, says which phase each
  venue is in (:mod:`core.protocol.sessions`).

Venues (issue 12): every order is routed to KRX or NXT (SOR picks the venue that takes it,
KRX first). NXT has its own state per eligible code (its own volume and, when KRX is not
trading, its own price walk); while both trade continuously NXT follows the KRX price.
Quotes come from KRX, or from NXT when only NXT trades (as Kiwoom's HTS switches after
15:30). Auctions (opening, closing, NXT after-market opening, 시간외 단일가 every 10 min)
fill every crossing order at one price; 장후 시간외 종가 fills at today's close. Orders
expire when their session ends.

Every event the outside world should hear about (quotes, orders, fills, positions, account)
is appended to an outbox in the order it happened; :meth:`drain` hands it over.

Cost per quote is O(1): an event picks one *active* code at random (subscribed, with open
orders or held), evolves it and matches that code's open orders only. Codes that are not
active are not touched; when one becomes active it catches up with one draw for the time it
was left alone, so the whole universe evolves without a loop over it.
"""

import datetime
import random
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from core.protocol import krx
from core.protocol import sessions as S
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
    Account,
    Fill,
    Order,
    Payload,
    Position,
    Quote,
)

from .account import Ledger
from .market import CodeState, Market
from .matching import SimOrder, auction_fills, check_order, match
from .universe import Instrument, nxt_eligible

Clock = Callable[[], int]

#: Share of events given to bursting codes (when some are bursting).
BURST_EVENT_SHARE = 0.3
#: Positions and the account are revalued at most this often (market seconds).
REVALUE_EVERY_S = 1.0
MARKET_CLOSED = "market closed (KRX regular session: orders 08:30-15:30 KST on weekdays)"
SESSIONS = ("always", "krx", "krx+nxt")
KRX = S.KRX
NXT = S.NXT

#: ``sessions = "always"``: both venues trade continuously, day and night.
ALWAYS_KRX = S.Phase(KRX, "continuous", 0, S.DAY_END, "장중", "continuous",
                     (LIMIT, MARKET), S.CONTINUOUS_MATCH)  # fmt: skip
ALWAYS_NXT = S.Phase(NXT, "main", 0, S.DAY_END, "메인마켓", "main market",
                     (LIMIT, MARKET), S.CONTINUOUS_MATCH)  # fmt: skip
#: ``sessions = "krx"``: NXT is not simulated.
NXT_OFF = S.closed_phase(NXT)
KRX_ONLY_REASON = 'the simulator trades KRX only ([sim] sessions = "krx"): {} orders are refused'

#: KRX phases whose orders live and die together (the regular day, the after-hours close
#: session, the single-price session); every NXT phase of a day is one session.
_KRX_GROUPS = {
    "pre_open": "regular",
    "continuous": "regular",
    "closing_auction": "regular",
    "post_close_wait": "post_close",
    "post_close_price": "post_close",
    "after_hours_single": "single",
}


def group_of(phase: S.Phase) -> str:
    """The session an order placed in ``phase`` lives in ('' when closed)."""
    if phase.name == "closed":
        return ""
    if phase.venue == NXT:
        return "nxt"
    return _KRX_GROUPS.get(phase.name, phase.name)


def kst_time(now_ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(now_ms / 1000.0, krx.KST)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def kst_day(now_ms: int) -> int:
    """Days since the epoch in KST (changes at midnight in Seoul)."""
    return (now_ms // 1000 + 9 * 3600) // 86400


def kst_hhmmss(now_ms: int) -> str:
    s = (now_ms // 1000 + 9 * 3600) % 86400
    return "{:02d}{:02d}{:02d}".format(s // 3600, s // 60 % 60, s % 60)


class SimExchange:
    """A KRX-like market for a universe of codes, with one paper account trading in it."""

    def __init__(
        self,
        instruments: List[Instrument],
        seed: int = 1,
        sessions: str = "always",
        cash: int = 100000000,
        commission_pct: float = 0.015,
        tax_kospi_pct: float = 0.20,
        tax_kosdaq_pct: float = 0.20,
        slippage_ticks: int = 1,
        volatility: float = 1.0,
        burst_every_s: float = 30.0,
        quote_rate: float = 200.0,
        clock: Optional[Clock] = None,
        account_no: str = "SIM0000001",
    ) -> None:
        if sessions not in SESSIONS:
            raise ValueError(
                "sessions must be 'always', 'krx' or 'krx+nxt', got {!r}".format(sessions)
            )
        self.seed = seed
        self.rng = random.Random(seed)
        self.sessions = sessions
        self.slippage_ticks = slippage_ticks
        self.burst_every_s = burst_every_s
        self.quote_rate = quote_rate
        self.clock: Clock = clock or wall_clock_ms
        self.t = 0.0
        self.market = Market(instruments, self.rng, volatility, self.t)
        #: NXT's own state of every NXT-eligible code (same random stream, drawn only when
        #: NXT trades that code, so KRX-only runs are unchanged by it).
        self.nxt_market = Market(
            [ins for ins in instruments if nxt_eligible(ins.code)], self.rng, volatility, self.t
        )
        self.ledger = Ledger(cash, commission_pct, tax_kospi_pct, tax_kosdaq_pct, account_no)
        self.orders: Dict[str, SimOrder] = {}
        self.outbox: List[Payload] = []
        self.subscribed: Dict[str, None] = {}  # insertion-ordered set
        self._open_by_code: Dict[str, List[SimOrder]] = {}
        self._nxt_open: Dict[str, int] = {}  # code → open NXT orders (NXT state moves for them)
        self._new_orders: List[SimOrder] = []
        self._active: List[str] = []
        self._active_index: Dict[str, int] = {}
        self._bursting: List[str] = []
        self._order_seq = 0
        self._quote_carry = 0.0
        self._next_revalue = REVALUE_EVERY_S
        self._revalued: Dict[str, int] = {}
        now = self.clock()
        self._day = kst_day(now)
        self._last_ms = now
        self.krx_phase, self.nxt_phase = self.phases_at(now)
        self.phase = self.krx_phase.name

    # -- reference data -------------------------------------------------------------------------
    def name_of(self, code: str) -> str:
        st = self.market.get(code)
        return st.name if st else ""

    def base_price(self, code: str) -> int:
        st = self.market.get(code)
        return st.base if st else 0

    def phases_at(self, now_ms: int) -> Tuple[S.Phase, S.Phase]:
        """(KRX phase, NXT phase) at ``now_ms`` as this simulator runs them."""
        if self.sessions == "always":
            return ALWAYS_KRX, ALWAYS_NXT
        when = kst_time(now_ms)
        nxt = S.phase_at(NXT, when) if self.sessions == "krx+nxt" else NXT_OFF
        return S.phase_at(KRX, when), nxt

    def phase_at(self, now_ms: int) -> str:
        """The KRX phase name at ``now_ms``."""
        return self.phases_at(now_ms)[0].name

    def nxt_phase_at(self, now_ms: int) -> str:
        return self.phases_at(now_ms)[1].name

    def nxt_eligible(self, code: str) -> bool:
        return code in self.nxt_market.states

    def _nxt_quotes(self) -> bool:
        """Quotes come from NXT now: NXT trades and KRX does not (before 09:00, after 15:30)."""
        return (
            self.nxt_phase.matching == S.CONTINUOUS_MATCH
            and self.krx_phase.matching != S.CONTINUOUS_MATCH
        )

    def _close_of(self, st: CodeState) -> int:
        """Today's KRX close of ``st`` (its price now if no closing auction set one)."""
        if not st.close:
            st.close = st.price
        return st.close

    def quote(self, code: str, now_ms: Optional[int] = None) -> Optional[Quote]:
        """The current quote of ``code`` (None if unknown)."""
        st = self.market.get(code)
        if st is None:
            return None
        return self._quote(st, kst_hhmmss(self.clock() if now_ms is None else now_ms))

    # -- subscriptions and the active set ---------------------------------------------------------
    def subscribe(self, codes: Sequence[str]) -> List[str]:
        """Stream quotes for ``codes``; returns those the universe does not know.

        A newly subscribed code gets its current quote at once (``trade_qty`` 0, like the
        answer to a stock-info query), so a watchlist has prices even in a closed market.
        """
        unknown = []
        hhmmss = ""
        for code in codes:
            if code not in self.market.states:
                unknown.append(code)
                continue
            if code in self.subscribed:
                continue
            self.subscribed[code] = None
            self._refresh_active(code)
            hhmmss = hhmmss or kst_hhmmss(self.clock())
            st, venue = self.market.states[code], KRX
            if self._nxt_quotes() and code in self.nxt_market.states:
                st, venue = self.nxt_market.states[code], NXT  # the venue trading now
            self.outbox.append(self._quote(st, hhmmss, venue).replace(trade_qty=0))
        return unknown

    def unsubscribe(self, codes: Sequence[str]) -> None:
        for code in codes:
            if self.subscribed.pop(code, 0) is None:
                self._refresh_active(code)

    def _refresh_active(self, code: str) -> None:
        held = self.ledger.holdings.get(code)
        want = code in self.subscribed or code in self._open_by_code or bool(held and held.qty)
        idx = self._active_index.get(code)
        if want and idx is None:
            st = self.market.states[code]
            self.market.event(st, self.t, trading=False)  # catch up for the time left alone
            self._active_index[code] = len(self._active)
            self._active.append(code)
        elif not want and idx is not None:
            last = self._active.pop()
            if last != code:
                self._active[idx] = last
                self._active_index[last] = idx
            del self._active_index[code]

    @property
    def active_codes(self) -> List[str]:
        return list(self._active)

    # -- orders -------------------------------------------------------------------------------------
    def _next_order_id(self) -> str:
        self._order_seq += 1
        return "S{:06d}".format(self._order_seq)

    def place(
        self,
        code: str,
        side: str,
        qty: int,
        price: int,
        kind: str = LIMIT,
        cmd_id: str = "",
        venue: str = KRX,
    ) -> Tuple[str, str]:
        """Place an order: ``(order_id, '')`` when accepted, ``(order_id, reason)`` when rejected.

        Either way the order is in the outbox (``accepted`` or ``rejected`` with its reason).
        Accepted orders first meet the market at the start of the next :meth:`step`.
        """
        now = self.clock()
        st = self.market.get(code) if isinstance(code, str) else None
        if kind == MARKET:
            price = 0
        reason = check_order(side, kind, qty, price, st)
        routed = venue if venue in (KRX, NXT) else KRX
        if not reason:
            reason, routed = self.check_venue(code, venue, kind, now)
        if not reason:
            reason = self._check_price_rule(code, routed, kind, price, now)
        if not reason:
            reason = self._check_means(code, side, qty, price, kind)
        name = st.name if st else ""
        phase = self.phases_at(now)[0 if routed == KRX else 1]
        order = SimOrder(
            self._next_order_id(), str(code), name, str(side), str(kind),
            qty if isinstance(qty, int) else 0, price if isinstance(price, int) else 0,
            str(cmd_id or ""), ACCEPTED, now, venue=routed, group=group_of(phase),
        )  # fmt: skip
        self.orders[order.order_id] = order
        if reason:
            order.close(REJECTED, reason, now)
            self.outbox.append(order.to_order())
            return order.order_id, reason
        self._open(order)
        self.outbox.append(order.to_order())
        self._reserved_changed(order)
        return order.order_id, ""

    def check_venue(self, code: str, venue: str, kind: str, now_ms: int) -> Tuple[str, str]:
        """``(reason, routed venue)``: why ``venue`` cannot take the order now ('' if it can)
        and where it goes (SOR: KRX when KRX takes it, else NXT)."""
        if venue not in S.VENUES:
            return "venue must be KRX, NXT or SOR, got {!r}".format(venue), KRX
        if venue != KRX and self.sessions == "krx":
            return KRX_ONLY_REASON.format(venue), KRX
        eligible = self.nxt_eligible(code)
        if venue == NXT and not eligible:
            return "{} does not trade on NXT (not NXT-eligible): send it to KRX".format(code), NXT
        kp, np_ = self.phases_at(now_ms)
        when = kst_time(now_ms)
        krx_reason = S.check_phase(kp, kind, when)
        if venue == KRX:
            return krx_reason, KRX
        nxt_reason = S.check_phase(np_, kind, when)
        if venue == NXT:
            return nxt_reason, NXT
        if not krx_reason:
            return "", KRX
        if eligible and not nxt_reason:
            return "", NXT
        return "SOR has no venue for it: " + krx_reason + (
            "; " + nxt_reason if eligible else ""
        ), KRX

    def _check_price_rule(self, code: str, venue: str, kind: str, price: int, now_ms: int) -> str:
        """The after-hours price rules: today's close only, or within ±10 % of it."""
        if kind != LIMIT:
            return ""
        phase = self.phases_at(now_ms)[0 if venue == KRX else 1]
        st = self.market.states[code]
        if phase.price_rule == S.CLOSE_ONLY:
            close = self._close_of(st)
            if price != close:
                return "{} {} trades at today's close only: send price {:,} (got {:,})".format(
                    phase.venue, phase.en, close, price
                )
        elif phase.price_rule == S.CLOSE_10PCT:
            low, high = S.price_band(phase, st.base, self._close_of(st))
            if not low <= price <= high:
                return (
                    "{} {} takes prices within ±10% of today's close {:,}: {:,} to {:,}, "
                    "got {:,}".format(phase.venue, phase.en, st.close, low, high, price)
                )
        return ""

    def _reserved_changed(self, order: SimOrder) -> None:
        """A buy reserves orderable cash when it opens and gives it back when it closes:
        every such change publishes the account, not only the next fill or price move."""
        if order.side == BUY:
            self.outbox.append(self.ledger.account())

    def _check_means(self, code: str, side: str, qty: int, price: int, kind: str) -> str:
        if side == SELL:
            sellable = self.ledger.sellable(code)
            if qty > sellable:
                return "no short selling: {:,} shares of {} sellable, order for {:,}".format(
                    sellable, code, qty
                )
            return ""
        need = self.ledger.buy_need(qty, self._reserve_price(code, price, kind))
        if need > self.ledger.orderable:
            return (
                "insufficient orderable cash: the order needs {:,} KRW, {:,} KRW orderable".format(
                    need, self.ledger.orderable
                )
            )
        return ""

    def _reserve_price(self, code: str, price: int, kind: str) -> int:
        return self.market.states[code].upper if kind == MARKET else price

    def _open(self, order: SimOrder) -> None:
        """Put an accepted order on the book and reserve what it needs."""
        if order.side == BUY:
            order.reserved = self.ledger.buy_need(
                order.qty, self._reserve_price(order.code, order.price, order.kind)
            )
            self.ledger.reserved += order.reserved
        else:
            self.ledger.holding(order.code, order.name).reserved_sell += order.qty
        self._open_by_code.setdefault(order.code, []).append(order)
        if order.venue == NXT:
            self._nxt_open[order.code] = self._nxt_open.get(order.code, 0) + 1
        self._new_orders.append(order)
        self._refresh_active(order.code)

    def _unreserve(self, order: SimOrder) -> None:
        """Release what a closing order still holds back."""
        if order.side == BUY:
            self.ledger.reserved -= order.reserved
            order.reserved = 0
        else:
            self.ledger.holding(order.code).reserved_sell -= order.remaining
        if order.venue == NXT:
            left = self._nxt_open.get(order.code, 0) - 1
            if left > 0:
                self._nxt_open[order.code] = left
            else:
                self._nxt_open.pop(order.code, None)
        book = self._open_by_code.get(order.code)
        if book is not None:
            book.remove(order)
            if not book:
                del self._open_by_code[order.code]
        self._refresh_active(order.code)

    def cancel(self, order_id: str, cmd_id: str = "") -> str:
        """Cancel an open order; returns '' or why not."""
        order = self.orders.get(order_id)
        if order is None:
            return "unknown order {}".format(order_id)
        if not order.is_open:
            return "order {} is {}, not open".format(order_id, order.status)
        self._unreserve(order)
        order.close(CANCELLED, "cancelled" + (" by " + cmd_id if cmd_id else ""), self.clock())
        self.outbox.append(order.to_order())
        self._reserved_changed(order)
        return ""

    def modify(
        self,
        order_id: str,
        qty: Optional[int] = None,
        price: Optional[int] = None,
        cmd_id: str = "",
    ) -> Tuple[str, str]:
        """Kiwoom-like modify: the old order is cancelled and a new one (new id) replaces it.

        ``qty`` (default: the old remaining, at most that) and ``price`` (default: the old
        price). Returns ``(new_order_id, '')`` or ``('', reason)``; nothing changes on failure.
        """
        old = self.orders.get(order_id)
        if old is None:
            return "", "unknown order {}".format(order_id)
        if not old.is_open:
            return "", "order {} is {}, not open".format(order_id, old.status)
        if old.kind == MARKET:
            return "", "market orders cannot be modified"
        new_qty = old.remaining if qty is None else qty
        new_price = old.price if price is None else price
        st = self.market.states[old.code]
        reason = check_order(old.side, old.kind, new_qty, new_price, st)
        if not reason and new_qty > old.remaining:
            reason = "modify qty {:,} is more than the remaining {:,}".format(
                new_qty, old.remaining
            )
        if not reason and old.side == BUY:
            need = self.ledger.buy_need(new_qty, new_price)
            if need > self.ledger.orderable + old.reserved:
                reason = "insufficient orderable cash: the order needs {:,} KRW".format(need)
        now = self.clock()
        if not reason:
            reason = self.check_venue(old.code, old.venue, old.kind, now)[0]
        if not reason:
            reason = self._check_price_rule(old.code, old.venue, old.kind, new_price, now)
        if reason:
            return "", reason
        new = SimOrder(
            self._next_order_id(), old.code, old.name, old.side, old.kind, new_qty, new_price,
            cmd_id, ACCEPTED, now, orig_order_id=old.order_id, venue=old.venue, group=old.group,
        )  # fmt: skip
        self._unreserve(old)
        old.close(CANCELLED, "modified: replaced by " + new.order_id, now)
        self.outbox.append(old.to_order())
        self.orders[new.order_id] = new
        self._open(new)
        self.outbox.append(new.to_order())
        self._reserved_changed(new)
        return new.order_id, ""

    def open_orders(self) -> List[Order]:
        return [o.to_order() for book in self._open_by_code.values() for o in book]

    def resting(self, code: str) -> List[SimOrder]:
        """The open orders of one code, in time priority (for the order book)."""
        return list(self._open_by_code.get(code, ()))

    # -- fills --------------------------------------------------------------------------------------
    def _fill(self, order: SimOrder, qty: int, price: int, now_ms: int) -> None:
        st = self.market.states[order.code]
        fee, tax = self.ledger.apply_fill(order.code, order.name, st.market, order.side, qty, price)
        order.filled_qty += qty
        order.fill_value += qty * price
        order.fills += 1
        order.updated_ts = now_ms
        self.outbox.append(
            Fill(
                fill_id="{}-{}".format(order.order_id, order.fills),
                order_id=order.order_id,
                code=order.code,
                side=order.side,
                qty=qty,
                price=price,
                fee=fee,
                tax=tax,
                venue=order.venue,
            )
        )
        if order.side == BUY:
            new_reserved = self.ledger.buy_need(
                order.remaining, self._reserve_price(order.code, order.price, order.kind)
            )
            self.ledger.reserved -= order.reserved - new_reserved
            order.reserved = new_reserved
        if order.remaining == 0:
            order.status = FILLED
            self._unreserve(order)
        else:
            order.status = PARTIALLY_FILLED
        self.outbox.append(order.to_order())
        holding = self.ledger.holdings[order.code]
        self._revalued[order.code] = holding.last_price
        self.outbox.append(holding.position())
        self.outbox.append(self.ledger.account())
        if holding.qty == 0:
            self._refresh_active(order.code)

    def _match_code(self, code: str, now_ms: int) -> None:
        """Match the open orders of ``code`` on the venues that trade continuously now."""
        book = self._open_by_code.get(code)
        if not book:
            return
        krx_on = self.krx_phase.matching == S.CONTINUOUS_MATCH
        nxt_on = self.nxt_phase.matching == S.CONTINUOUS_MATCH
        available: Dict[str, int] = {}
        for order in list(book):
            if order.venue == NXT:
                if not nxt_on:
                    continue
                st = self.nxt_market.states[code]
            else:
                if not krx_on:
                    continue
                st = self.market.states[code]
            left = available.get(order.venue, st.depth)
            if left <= 0:
                continue
            qty, price = match(order, st, left, self.slippage_ticks)
            order.resting = True
            available[order.venue] = left - qty
            if qty:
                self._fill(order, qty, price, now_ms)

    def _auction(self, venue: str, phase: S.Phase, now_ms: int) -> None:
        """Single-price match of ``venue``'s open orders: one price per code (the venue's
        current price, inside the phase's band), every crossing order filled at it."""
        for code in list(self._open_by_code):
            orders = [o for o in self._open_by_code.get(code, ()) if o.venue == venue]
            if not orders:
                continue
            st = self.market.states[code]
            price = st.price if venue == KRX else self.nxt_market.states[code].price
            if phase.price_rule == S.CLOSE_10PCT:
                low, high = S.price_band(phase, st.base, self._close_of(st))
                price = min(high, max(low, price))
            for order in orders:
                order.resting = True
                if order.is_open and auction_fills(order, price):
                    self._fill(order, order.remaining, price, now_ms)

    def _set_closes(self) -> None:
        """The closing auction has set today's KRX close of every active code."""
        for code in self._active:
            st = self.market.states[code]
            st.close = st.price

    def _at_close(self, now_ms: int) -> None:
        """장후 시간외 종가: KRX orders of the after-hours close session fill at the close."""
        for code in list(self._open_by_code):
            close = self._close_of(self.market.states[code])
            for order in list(self._open_by_code.get(code, ())):
                if order.venue == KRX and order.group == "post_close" and order.is_open:
                    order.resting = True
                    self._fill(order, order.remaining, close, now_ms)

    def _expire(self, venue: str, group: str, phase: S.Phase, now_ms: int) -> None:
        """Cancel ``venue``'s open orders of session ``group``: that session has ended."""
        why = (
            "expired at the close"
            if group == "regular"
            else "expired: {} {} ended".format(phase.venue, phase.en)
        )
        for code in list(self._open_by_code):
            for order in list(self._open_by_code.get(code, ())):
                if order.venue == venue and order.group == group:
                    self._unreserve(order)
                    order.close(CANCELLED, why, now_ms)
                    self.outbox.append(order.to_order())
                    self._reserved_changed(order)

    # -- the clock ----------------------------------------------------------------------------------
    def _advance_phase(self, now_ms: int) -> S.Phase:
        """Day roll-over and phase transitions of both venues (auctions, expiry) up to
        ``now_ms``; returns the KRX phase."""
        day = kst_day(now_ms)
        new_day = day != self._day
        kp, np_ = self.phases_at(now_ms)
        if self.sessions != "always":
            before, after = kst_time(self._last_ms), kst_time(now_ms)
            for venue, old, new in ((KRX, self.krx_phase, kp), (NXT, self.nxt_phase, np_)):
                # Every auction due since the last step, even of a phase a long step skipped.
                day_phases = S.DAYS[venue] if venue == KRX or self.sessions == "krx+nxt" else ()
                if not S.is_trading_day(before.date()):
                    day_phases = ()
                for phase in day_phases:
                    if phase.matching == S.AUCTION and S.auction_due(phase, before, after):
                        self._auction(venue, phase, now_ms)
                        if phase.name == "closing_auction":
                            self._set_closes()
                group = group_of(old)
                if group and (new_day or group != group_of(new)):
                    self._expire(venue, group, old, now_ms)
            if kp.matching == S.AT_CLOSE and not new_day:
                self._at_close(now_ms)
        if new_day:
            self.market.new_day()
            for code, nst in self.nxt_market.states.items():
                nst.new_day(self.market.states[code].base)  # NXT's band: the KRX close
            self._day = day
            self.ledger.new_day()
        self._last_ms = now_ms
        self.krx_phase, self.nxt_phase = kp, np_
        self.phase = kp.name
        return kp

    @staticmethod
    def _follow(nst: CodeState, st: CodeState) -> None:
        """NXT while KRX trades too: the same price (arbitrage keeps them together), its own
        smaller flow."""
        nst.price, nst.tick, nst.bid, nst.ask = st.price, st.tick, st.bid, st.ask
        nst.depth = max(1, st.depth // 2)
        nst.last_t = st.last_t
        qty = st.trade_qty // 3
        nst.trade_qty = qty
        if qty:
            nst.volume += abs(qty)
            if not nst.open:
                nst.open = nst.high = nst.low = st.price
            nst.high = max(nst.high, st.price)
            nst.low = min(nst.low, st.price)

    def _clamp(self, st: CodeState, phase: S.Phase) -> None:
        """Keep the indicative price of the single-price session within ±10 % of the close."""
        low, high = S.price_band(phase, st.base, self._close_of(st))
        if st.price > high or st.price < low:
            st.price = min(high, max(low, st.price))
            st.tick = krx.tick_size(st.price)
            st.bid = min(st.bid, st.price)
            st.ask = max(st.price, min(st.ask, high))

    def step(self, dt: float, quotes: Optional[float] = None) -> int:
        """Advance the market clock by ``dt`` seconds with ``quotes`` events (default
        ``quote_rate * dt``; fractions carry over to the next step). Returns the events made."""
        now = self.clock()
        kp = self._advance_phase(now)
        t0 = self.t
        self.t = t0 + dt
        krx_moves = kp.matching in (S.CONTINUOUS_MATCH, S.AUCTION)
        trading = kp.matching == S.CONTINUOUS_MATCH
        nxt_trading = self.nxt_phase.matching == S.CONTINUOUS_MATCH
        if not krx_moves and not nxt_trading:
            return 0
        if self._new_orders:
            new, self._new_orders = self._new_orders, []
            for order in new:
                if order.is_open and not order.resting:
                    self._match_code(order.code, now)
        self._quote_carry += self.quote_rate * dt if quotes is None else quotes
        n = int(self._quote_carry + 1e-9)  # 0.6 × 5 is 2.9999…
        self._quote_carry -= n
        active = self._active
        if not active:
            return 0
        market = self.market
        states = market.states
        nxt_states = self.nxt_market.states
        nxt_primary = nxt_trading and not trading  # quotes from NXT (after 15:30, before 9)
        nxt_open = self._nxt_open
        single = kp if kp.price_rule == S.CLOSE_10PCT else None
        rng = self.rng
        if self.burst_every_s > 0 and rng.random() < dt / self.burst_every_s:
            code = active[int(rng.random() * len(active))]
            market.start_burst(states[code], t0)
            if code not in self._bursting:
                self._bursting.append(code)
        bursting = self._bursting
        if bursting:
            bursting[:] = [
                c for c in bursting if states[c].burst_until > t0 and c in self._active_index
            ]
        hhmmss = kst_hhmmss(now)
        subscribed = self.subscribed
        open_by_code = self._open_by_code
        outbox = self.outbox
        n_active = len(active)
        for i in range(n):
            if bursting and rng.random() < BURST_EVENT_SHARE:
                code = bursting[int(rng.random() * len(bursting))]
            else:
                code = active[int(rng.random() * n_active)]
            st = states[code]
            t = t0 + dt * (i + 1) / n
            if krx_moves:
                market.event(st, t, trading)
                if single is not None:
                    self._clamp(st, single)
            nst = None
            if nxt_trading and (nxt_primary or code in nxt_open) and code in nxt_states:
                nst = nxt_states[code]
                if trading:
                    self._follow(nst, st)
                else:
                    market.event(nst, t, True)
            if code in subscribed:
                if nxt_primary:
                    if nst is not None:
                        outbox.append(self._quote(nst, hhmmss, NXT))
                elif krx_moves:
                    outbox.append(self._quote(st, hhmmss))
            if code in open_by_code:
                self._match_code(code, now)
                n_active = len(active)
        if self.t >= self._next_revalue:
            self._next_revalue = self.t + REVALUE_EVERY_S
            self._revalue()
        return n

    def set_price(self, code: str, price: int) -> str:
        """SIM ONLY (the ``sim_price`` command, for tests and demos): one trade of ``code``
        at ``price`` now, quoted and matched like any other; the random walk goes on from
        there. Returns why not ('' when done)."""
        st = self.market.get(code)
        if st is None:
            return "unknown code {} in the simulator".format(code)
        if not krx.is_on_tick(price) or not st.lower <= price <= st.upper:
            return "price {:,} is off the tick or outside the daily limits {:,}-{:,}".format(
                price, st.lower, st.upper
            )
        now = self.clock()
        trading = self.phase_at(now) == krx.CONTINUOUS
        st.price = price
        st.tick = krx.tick_size(price)
        st.bid = price
        st.ask = price + st.tick if price < st.upper else price
        st.trade_qty = -1 if trading else 0
        if trading:
            st.volume += 1
            if not st.open:
                st.open = st.high = st.low = price
            st.high = max(st.high, price)
            st.low = min(st.low, price)
        if code in self.subscribed:
            self.outbox.append(self._quote(st, kst_hhmmss(now)))
        if trading and code in self._open_by_code:
            self._match_code(code, now)
        return ""

    def _quote(self, st: CodeState, hhmmss: str, venue: str = KRX) -> Quote:
        change = st.price - st.base
        return Quote(
            st.code,
            st.price,
            change,
            round(change * 100.0 / st.base, 2),
            st.volume,
            st.trade_qty,
            st.open,
            st.high,
            st.low,
            st.ask,
            st.bid,
            hhmmss,
            venue,
        )

    def _revalue(self) -> None:
        """Positions whose price moved since last told, then the account (O(holdings))."""
        changed = False
        for code, h in self.ledger.holdings.items():
            if not h.qty:
                continue
            price = self.market.states[code].price
            if self._revalued.get(code) != price:
                h.last_price = price
                self._revalued[code] = price
                self.outbox.append(h.position())
                changed = True
        if changed:
            self.outbox.append(self.ledger.account())

    # -- restart ------------------------------------------------------------------------------------
    def restore(
        self,
        account: Dict[str, Any],
        positions: Sequence[Dict[str, Any]],
        orders: Sequence[Dict[str, Any]],
    ) -> int:
        """Take back the paper account a previous engine run left in ``P:state:*`` (its cash,
        realised P&L, positions and today's orders; open orders reserve again and stay on the
        book) so a restart does not wipe a paper-trading day. Order ids continue after the
        highest one seen. Returns how many orders came back. Call before any order."""
        ledger = self.ledger
        if isinstance(account.get("cash"), int):
            ledger.cash = account["cash"]
        if isinstance(account.get("realized_pnl_today"), int):
            ledger.realized_today = account["realized_pnl_today"]
        for p in positions:
            code = p.get("code")
            qty = p.get("qty")
            if code not in self.market.states or not isinstance(qty, int) or qty <= 0:
                continue
            h = ledger.holding(code, self.market.states[code].name)
            h.qty = qty
            h.cost = int(p.get("avg_price") or 0) * qty
            h.realized = int(p.get("realized_pnl") or 0)
            h.last_price = int(p.get("last_price") or 0)
            self._refresh_active(code)
        restored = 0
        for o in sorted(orders, key=lambda o: str(o.get("order_id", ""))):
            oid, code = str(o.get("order_id") or ""), o.get("code")
            if not oid or oid in self.orders or code not in self.market.states:
                continue
            try:
                order = SimOrder(
                    oid, code, self.market.states[code].name, str(o["side"]),
                    str(o.get("kind") or LIMIT), int(o["qty"]), int(o.get("price") or 0),
                    str(o.get("cmd_id") or ""), str(o["status"]),
                    int(o.get("created_ts") or self.clock()),
                    str(o.get("reason") or ""), str(o.get("orig_order_id") or ""),
                )  # fmt: skip
                order.filled_qty = int(o.get("filled_qty") or 0)
                order.fill_value = int(o.get("avg_fill_price") or 0) * order.filled_qty
                order.updated_ts = int(o.get("updated_ts") or order.created_ts)
            except (KeyError, TypeError, ValueError):
                continue
            self.orders[oid] = order
            if order.is_open:
                order.resting = True  # it had its arrival match in the previous run
                self._open(order)
            digits = oid[1:]
            if oid.startswith("S") and digits.isdigit():
                self._order_seq = max(self._order_seq, int(digits))
            restored += 1
        return restored

    def all_orders(self) -> List[Order]:
        """Every order of the day the simulator knows, oldest first."""
        return [o.to_order() for o in self.orders.values()]

    # -- snapshots ----------------------------------------------------------------------------------
    def positions(self) -> List[Position]:
        """Open positions, and today's closed ones that realised P&L."""
        return [h.position() for h in self.ledger.holdings.values() if h.qty or h.realized]

    def account(self) -> Account:
        return self.ledger.account()

    def drain(self) -> List[Payload]:
        out, self.outbox = self.outbox, []
        return out
