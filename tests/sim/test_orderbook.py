"""The simulator's order book (호가창) is consistent with its quotes, trades and the user's
orders, whatever the order flow (hypothesis): levels on the KRX tick grid, asks ascending
above bids descending, never crossed, inside the daily band, the best levels equal to the
quote's ask and bid, every trade at a best level, the user's resting orders in the quantities."""

from hypothesis import given, settings
from hypothesis import strategies as st

from core.protocol import krx
from core.protocol.events import BOOK_LEVELS, BUY, LIMIT, MARKET, SELL
from engine32.brokers.sim.exchange import SimExchange
from engine32.brokers.sim.orderbook import build_book

from .helpers import FakeClock, kst, make_exchange

CODES = ("005930", "035720")  # 70,000-ish and 40,000-ish: two different tick sizes around

OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("limit"),
            st.sampled_from(CODES),
            st.sampled_from((BUY, SELL)),
            st.integers(-12, 12),
            st.integers(1, 400),
        ),  # fmt: skip
        st.tuples(st.just("market"), st.sampled_from(CODES), st.integers(1, 300)),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("modify"), st.integers(0, 30), st.integers(-5, 5)),
        st.tuples(st.just("step"), st.integers(1, 40)),
    ),
    min_size=1,
    max_size=40,
)


def check_book(ex: SimExchange, code: str) -> None:
    s = ex.market.states[code]
    resting = ex.resting(code)
    book = build_book(s, resting)
    assert len(book.asks) == BOOK_LEVELS and len(book.bids) == BOOK_LEVELS
    for side in (book.asks, book.bids):
        prices = [p for p, _ in side]
        shown = [p for p in prices if p]
        assert prices[: len(shown)] == shown, "an empty level only after the last real one"
        assert all(krx.is_on_tick(p) and s.lower <= p <= s.upper for p in shown)
        assert all(q > 0 for p, q in side if p) and all(q == 0 for p, q in side if not p)
    asks = [p for p, _ in book.asks if p]
    bids = [p for p, _ in book.bids if p]
    assert asks == sorted(set(asks)) and bids == sorted(set(bids), reverse=True)
    for lower, higher in zip(asks, asks[1:]):
        assert higher == krx.next_tick(lower)  # one tick apart: no hole in the ladder
    for higher, lower in zip(bids, bids[1:]):
        assert lower == krx.prev_tick(higher)
    assert asks and bids and bids[0] < asks[0], "never crossed"
    assert (asks[0], bids[0]) == (s.ask, s.bid), "the best levels are the quote's"
    if s.trade_qty:
        assert s.price in (asks[0], bids[0]), "a trade happens at a best level"
    assert book.total_ask == sum(q for _, q in book.asks)
    assert book.total_bid == sum(q for _, q in book.bids)
    # The user's resting limit orders are in the quantities at their prices.
    mine = {}
    for o in resting:
        if o.kind == LIMIT and o.is_open:
            mine[(o.side, o.price)] = mine.get((o.side, o.price), 0) + o.remaining
    levels = {(SELL, p): q for p, q in book.asks if p}
    levels.update({(BUY, p): q for p, q in book.bids if p})
    for (side, price), qty in mine.items():
        if (side, price) in levels:
            assert levels[(side, price)] >= qty + 1, "the market's own quantity is there too"
        else:
            # not shown: beyond the ten levels, or a remainder still crossing the touch
            far = price < bids[-1] if side == BUY else price > asks[-1]
            crossing = price >= s.ask if side == BUY else price <= s.bid
            assert far or crossing, (side, price, asks, bids)


def run(seed: int, ops) -> None:
    clock = FakeClock(kst(2026, 11, 23, 10, 0))
    ex = make_exchange(clock, seed=seed, codes=CODES, cash=10**10)
    ex.subscribe(list(CODES))
    placed = []
    for op in ops:
        kind = op[0]
        if kind == "limit":
            _, code, side, offset, qty = op
            s = ex.market.states[code]
            touch = s.bid if side == BUY else s.ask
            price = krx.next_tick(touch, offset) if offset >= 0 else krx.prev_tick(touch, -offset)
            price = min(max(price, s.lower), s.upper)
            oid, _ = ex.place(code, side, qty, price, LIMIT)
            placed.append(oid)
        elif kind == "market":
            _, code, qty = op
            placed.append(ex.place(code, BUY, qty, 0, MARKET)[0])
        elif kind == "cancel":
            if placed:
                ex.cancel(placed[op[1] % len(placed)])
        elif kind == "modify":
            if placed:
                old = ex.orders[placed[op[1] % len(placed)]]
                if old.is_open and old.kind == LIMIT:
                    p = old.price
                    p = krx.next_tick(p, op[2]) if op[2] >= 0 else krx.prev_tick(p, -op[2])
                    new_id, _ = ex.modify(old.order_id, price=p)
                    if new_id:
                        placed.append(new_id)
        else:
            for _ in range(op[1]):
                ex.step(0.02)
                clock.advance(0.02)
                for code in CODES:
                    check_book(ex, code)
        ex.drain()
        for code in CODES:
            check_book(ex, code)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(1, 10**6), ops=OPS)
def test_the_book_stays_consistent_with_quotes_trades_and_orders(seed, ops) -> None:
    run(seed, ops)


def test_a_resting_buy_shows_at_its_price_and_leaves_with_its_cancel() -> None:
    clock = FakeClock(kst(2026, 11, 23, 10, 0))
    ex = make_exchange(clock, seed=3, codes=("005930",))
    ex.subscribe(["005930"])
    s = ex.market.states["005930"]
    price = krx.prev_tick(s.bid, 2)
    before = dict(map(tuple, build_book(s).bids))[price]
    oid, reason = ex.place("005930", BUY, 123, price, LIMIT)
    assert not reason
    book = build_book(s, ex.resting("005930"))
    assert dict(map(tuple, book.bids))[price] == before + 123
    ex.cancel(oid)
    assert dict(map(tuple, build_book(s, ex.resting("005930")).bids))[price] == before


def test_levels_stop_at_the_daily_limit() -> None:
    clock = FakeClock(kst(2026, 11, 23, 10, 0))
    ex = make_exchange(clock, seed=3, codes=("005930",))
    s = ex.market.states["005930"]
    s.price = s.ask = s.upper  # at the upper limit: nothing to sell above it
    s.bid = krx.prev_tick(s.upper)
    book = build_book(s)
    assert book.asks[0] == [s.upper, s.depth] and book.asks[1:] == [[0, 0]] * 9
    assert [p for p, _ in book.bids][:2] == [s.bid, krx.prev_tick(s.bid)]
