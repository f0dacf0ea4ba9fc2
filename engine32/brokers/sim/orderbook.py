"""The simulator's order book (호가창): ten ask and ten bid levels around its quote.

The book is the matching engine's own view of the market, so it is consistent with its
quotes and trades by construction:

- the best ask and best bid are the quote's ``ask`` and ``bid`` (the prices the matching
  engine fills marketable orders at; a trade is at one of them);
- the quantity at the best levels is the touch's ``depth``, what the matching engine lets the
  user's orders take at that quote (:func:`engine32.brokers.sim.matching.match`);
- deeper levels are one KRX tick apart (:func:`core.protocol.krx.next_tick` /
  ``prev_tick``), never beyond the daily limits (an empty level is ``[0, 0]``), with a
  standing quantity that depends only on the code and the price, so a level keeps its size
  while the market moves through it;
- the user's resting limit orders are added to the quantity at their price. A remainder that
  still crosses the touch (it fills on the code's next quote) is not shown on the other side,
  so the book is never crossed.
"""

import zlib
from typing import Iterable, List, Optional

from core.protocol import krx
from core.protocol.events import BOOK_LEVELS, BUY, LIMIT, SELL, Book

from .market import CodeState
from .matching import SimOrder


def standing_qty(code: str, price: int, lot: int, distance: int) -> int:
    """The market's resting quantity ``distance`` levels from the touch (not the touch)."""
    spread = zlib.crc32("{}:{}".format(code, price).encode()) % 25
    return lot * (3 + spread + distance)


def _ladder(first: int, levels: int, up: bool, lower: int, upper: int) -> List[int]:
    prices: List[int] = []
    p = first
    while len(prices) < levels and lower <= p <= upper and p > 0:
        prices.append(p)
        nxt = krx.next_tick(p) if up else krx.prev_tick(p)
        if nxt == p:
            break
        p = nxt
    return prices


def build_book(
    st: CodeState,
    resting: Iterable[SimOrder] = (),
    hhmmss: str = "",
    now_ms: int = 0,
    levels: int = BOOK_LEVELS,
) -> Book:
    """The book of ``st`` with the user's open orders ``resting`` in the quantities."""
    ask, bid = st.ask, st.bid
    if bid >= ask:  # never happens with the market's quotes; a book must not be crossed
        bid = krx.prev_tick(ask)
    ask_prices = _ladder(ask, levels, True, st.lower, st.upper)
    bid_prices = _ladder(bid, levels, False, st.lower, st.upper)
    asks = {
        p: (st.depth if i == 0 else standing_qty(st.code, p, st.lot, i))
        for i, p in enumerate(ask_prices)
    }
    bids = {
        p: (st.depth if i == 0 else standing_qty(st.code, p, st.lot, i))
        for i, p in enumerate(bid_prices)
    }
    for order in resting:
        if order.kind != LIMIT or not order.is_open or order.remaining <= 0:
            continue
        if order.side == BUY and order.price in bids:
            bids[order.price] += order.remaining
        elif order.side == SELL and order.price in asks:
            asks[order.price] += order.remaining
    ask_rows = [[p, asks[p]] for p in ask_prices]
    bid_rows = [[p, bids[p]] for p in bid_prices]
    total_ask = sum(q for _, q in ask_rows)
    total_bid = sum(q for _, q in bid_rows)
    ask_rows += [[0, 0]] * (levels - len(ask_rows))
    bid_rows += [[0, 0]] * (levels - len(bid_rows))
    return Book(
        code=st.code,
        ts=now_ms,
        time=hhmmss,
        asks=ask_rows,
        bids=bid_rows,
        total_ask=total_ask,
        total_bid=total_bid,
    )


def best(book: Book, side: str) -> Optional[int]:
    """The best ask (``side`` sell) or best bid (buy) price of a book, None if empty."""
    rows = book.asks if side == SELL else book.bids
    return rows[0][0] if rows and rows[0][0] else None
